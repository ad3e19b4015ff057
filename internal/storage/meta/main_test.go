package meta

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a test leaves a goroutine running: Pebble's
// goroutines belong to a store, and Close must end them, even on a failed
// store.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

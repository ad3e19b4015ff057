package sim

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that runs release everything they start: the production
// storage (the segmented log's committers, Pebble) runs goroutines that a
// crash or the end of a run must stop.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

package log

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: the
// committer must stop with Close.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

package replication

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if os.Getenv(nodeEnv) != "" {
		os.Exit(runNodeProcess()) // a node of TestMultiProcess...
	}
	goleak.VerifyTestMain(m)
}

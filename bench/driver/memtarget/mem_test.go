package memtarget

import (
	"context"
	"testing"

	"github.com/ferry-mq/ferry/internal/loadgen"
)

func TestARunAgainstTheInProcessQueueAccountsForEveryMessage(t *testing.T) {
	spec := loadgen.Spec{
		Topologies: []loadgen.Topology{{Route: "r", Queues: []string{"a", "b"}}},
		Producers:  2, BodyBytes: 100, InFlight: 16, Prefetch: 10, Messages: 1000, RunID: 3,
	}
	res, err := loadgen.Run(context.Background(), &Target{}, spec)
	if err != nil {
		t.Fatal(err)
	}
	if want := (loadgen.Tally{Sent: 2000, Confirmed: 2000, Received: 4000}); res.Tally != want {
		t.Errorf("tally: got %+v, want %+v", res.Tally, want)
	}
}

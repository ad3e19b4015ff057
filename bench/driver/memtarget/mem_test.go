package memtarget

import (
	"context"
	"errors"
	"testing"

	"github.com/ferry-mq/ferry/internal/base"
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

func TestPublishWaitsAtTheQueueDepth(t *testing.T) {
	target := &Target{}
	ctx := context.Background()
	s, _ := target.Connect(ctx)
	defer s.Close()
	if err := s.Declare(ctx, loadgen.Topology{Route: "r", Queues: []string{"q"}}); err != nil {
		t.Fatal(err)
	}
	done := func(error) {}
	for i := range base.LoadgenMemQueueDepth {
		if err := s.Publish(ctx, "r", []byte("m"), done); err != nil {
			t.Fatalf("publish %d of %d: %v", i+1, base.LoadgenMemQueueDepth, err)
		}
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.Publish(cancelled, "r", []byte("m"), done); !errors.Is(err, context.Canceled) {
		t.Errorf("publish past the depth: got %v, want it to wait until its context ends", err)
	}
}

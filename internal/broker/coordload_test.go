package broker

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/base/vfs"
	"github.com/ferry-mq/ferry/internal/stream"
)

// timerWatch is a fake clock that reports each timer armed for watch.
type timerWatch struct {
	*base.FakeClock
	watch time.Duration
	armed chan struct{}
}

func (c *timerWatch) NewTimer(d time.Duration) base.Timer {
	t := c.FakeClock.NewTimer(d)
	if d == c.watch {
		c.armed <- struct{}{}
	}
	return t
}

// A group call on a node whose coordinator is still loading waits for it
// BrokerCoordinatorLoadWaitMax on the node's clock, not a moment less,
// and then answers COORDINATOR_LOAD_IN_PROGRESS (Kafka's answer while a
// coordinator loads its groups; clients retry it at the same node).
func TestGroupCallWaitsTheLoadBoundOnTheNodesClock(t *testing.T) {
	fs := vfs.NewMem()
	clock := &timerWatch{FakeClock: base.NewFakeClock(epoch), watch: base.BrokerCoordinatorLoadWaitMax, armed: make(chan struct{}, 16)}
	// The reconciler's timer is the node's only other one of a second.
	slowReconcile := func(c *Config) { c.ReconcileInterval = time.Minute }
	b := openNode(t, nodeOpts{fs: fs, clock: clock, tweak: slowReconcile})
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	// Every group's log but the controller's stays closed: the node's
	// coordinators stay loading.
	gate := vfs.NewGate(func(p string) bool {
		return strings.HasPrefix(p, "/data/logs/") && !strings.HasPrefix(p, "/data/logs/00000000000000000000")
	})
	b = openNode(t, nodeOpts{fs: vfs.WithFaults(fs, gate), clock: clock, tweak: slowReconcile, loading: true})
	t.Cleanup(gate.Open) // before Close: the reconciler waits at the gate
	waitBootstrapped(t, b)
	c := guestConn(t, b)
	ctx := testCtx(t)
	res := make(chan error, 1)
	go func() { res <- c.Heartbeat(ctx, "g", "m", 1, "") }()
	select {
	case <-clock.armed:
	case <-ctx.Done():
		t.Fatalf("Heartbeat armed no wait of %v on the node's clock", base.BrokerCoordinatorLoadWaitMax)
	}
	clock.Advance(base.BrokerCoordinatorLoadWaitMax - time.Millisecond)
	select {
	case err := <-res:
		t.Fatalf("Heartbeat answered %v before the load wait was over", err)
	default:
	}
	clock.Advance(time.Millisecond)
	err := <-res
	var ge *GroupError
	if !errors.As(err, &ge) || ge.KafkaCode != stream.ErrCoordinatorLoadInProgress.KafkaCode() || base.CodeOf(err) != base.CodeUnavailable {
		t.Fatalf("Heartbeat while the coordinator loads: %v, want COORDINATOR_LOAD_IN_PROGRESS (unavailable)", err)
	}
}

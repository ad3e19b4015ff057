package broker

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-mq/ferry/internal/base"
)

func TestFlowControlBlocksAndResumesPublishers(t *testing.T) {
	clock := base.NewFakeClock(epoch)
	var mem atomic.Uint64
	var free atomic.Uint64
	free.Store(10 << 30)
	b := openNode(t, nodeOpts{clock: clock, tweak: func(c *Config) {
		c.Flow = FlowConfig{MemoryLimitBytes: 1000, DiskFreeLimitBytes: 1 << 30, SampleInterval: time.Second,
			MemoryInUse: mem.Load, DiskFree: func() (uint64, error) { return free.Load(), nil }}
	}})
	c := guestConn(t, b)
	declare(t, c, "fq")
	state, changed := b.Blocked()
	if blocked, _ := state(); blocked {
		t.Fatal("blocked at start")
	}
	mem.Store(2000)
	clock.Advance(time.Second)
	waitChanged(t, changed)
	if blocked, reason := state(); !blocked || reason == "" {
		t.Fatalf("memory over the watermark: blocked %v (%q), want true with a reason", blocked, reason)
	}
	short, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := c.Publish(short, "", []Message{{RoutingKey: "fq", Body: []byte("x")}}, PublishOptions{}); base.CodeOf(err) != base.CodeOverloaded {
		t.Fatalf("publish while blocked: %v, want CodeOverloaded", err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := c.Publish(testCtx(t), "", []Message{{RoutingKey: "fq", Body: []byte("waited")}}, PublishOptions{})
		done <- err
	}()
	_, changed = b.Blocked()
	mem.Store(10)
	free.Store(1 << 20) // now the disk is low
	clock.Advance(time.Second)
	waitChanged(t, changed)
	if blocked, reason := b.blockedNow(); !blocked {
		t.Fatalf("disk under its limit: not blocked (%q)", reason)
	}
	_, changed = b.Blocked()
	free.Store(10 << 30)
	clock.Advance(time.Second)
	waitChanged(t, changed)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("the waiting publish failed: %v", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("the waiting publish did not resume")
	}
	if d, _, ok, _ := c.Get(testCtx(t), "fq", true); !ok || string(d.Message.Body) != "waited" {
		t.Fatalf("queue holds %q %v, want waited", d.Message.Body, ok)
	}
}

func (b *Broker) blockedNow() (bool, string) {
	st, _ := b.Blocked()
	return st()
}

func waitChanged(t testing.TB, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(testTimeout):
		t.Fatal("flow state did not change")
	}
}

func TestTraceRecordsAMessagesTimeline(t *testing.T) {
	b := openNode(t, nodeOpts{})
	c := guestConn(t, b)
	ctx := testCtx(t)
	if err := c.DeclareExchange(ctx, ExchangeSpec{Name: "dlx", Type: "fanout"}); err != nil {
		t.Fatal(err)
	}
	declare(t, c, "traced", Header{"x-dead-letter-exchange", StringValue("dlx")})
	declare(t, c, "graveyard")
	if err := c.Bind(ctx, BindingSpec{Source: "dlx", Destination: "graveyard"}); err != nil {
		t.Fatal(err)
	}
	if err := b.SetTrace("/", "traced", true); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"t1", "t1-dup", "t1-dup"} {
		if _, err := c.Publish(ctx, "", []Message{{RoutingKey: "traced", MessageID: id, Body: []byte(id),
			DedupeID: id}}, PublishOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	s, col := subscribe(t, c, SubscribeOptions{Queue: "traced", Tag: "tr", PrefetchCount: 10})
	d1 := col.next(t)
	if err := s.Nack(d1.DeliveryID, false, true, "retry-me"); err != nil {
		t.Fatal(err)
	}
	d2 := col.next(t)
	d1b := col.next(t)
	for _, d := range []Delivery{d2, d1b} {
		if d.Message.MessageID == "t1" {
			if err := s.Ack(d.DeliveryID, false); err != nil {
				t.Fatal(err)
			}
		} else if err := s.Nack(d.DeliveryID, false, false, ""); err != nil {
			t.Fatal(err)
		}
	}
	waitStats(t, b, "graveyard", func(st QueueStats) bool { return st.Ready == 1 })
	kinds := func(id string) string {
		evs, _ := b.Trace("/", id)
		var out []string
		for _, e := range evs {
			out = append(out, e.Kind.String())
		}
		return fmt.Sprint(out)
	}
	waitFor(t, b, func() bool { return kinds("t1") == "[published routed enqueued delivered nacked delivered acked]" }, func() string {
		return "t1's timeline: " + kinds("t1")
	})
	waitFor(t, b, func() bool {
		return kinds("t1-dup") == "[published routed enqueued published routed deduplicated delivered nacked dead-lettered]"
	}, func() string { return "t1-dup's timeline: " + kinds("t1-dup") })
	if evs, _ := b.Trace("/", "never"); len(evs) != 0 {
		t.Fatalf("a message never published has a timeline: %v", evs)
	}
}

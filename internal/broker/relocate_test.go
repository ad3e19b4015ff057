package broker

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/base/vfs"
	"github.com/ferry-mq/ferry/internal/queue"
)

// TestRelocationFreesTheLogBehindAHeldDelivery: one delivery held
// unacknowledged keeps its queue's log from the entry that enqueued it up,
// however much traffic flows past it. A relocation pass copies its body
// forward; the next snapshot then releases the log below, and the message
// is still whole when it is redelivered, after a restart too.
func TestRelocationFreesTheLogBehindAHeldDelivery(t *testing.T) {
	fs := vfs.NewMem()
	open := func() *Broker {
		return openNode(t, nodeOpts{fs: fs, tweak: func(c *Config) {
			c.SegmentBytes = 16 << 10
			c.RelocateFreeBytes = 64 << 10
			c.RelocateInterval = time.Hour // the test runs the pass itself
			c.SnapshotEntries = 64
		}})
	}
	b := open()
	c := guestConn(t, b)
	ctx := testCtx(t)
	if _, err := c.DeclareQueue(ctx, QueueSpec{Name: "q", Durable: true}); err != nil {
		t.Fatal(err)
	}
	held := Message{RoutingKey: "q", Body: []byte("held body"), Key: []byte("k"), Headers: Headers{{Key: "h", Value: StringValue("v")}}}
	publishAll(t, c, []Message{held})
	d, h, ok, err := c.Get(ctx, "q", false)
	if err != nil || !ok {
		t.Fatalf("Get: %v %v", ok, err)
	}
	body := strings.Repeat("x", 2<<10)
	flow := func(n int) {
		t.Helper()
		for i := range n {
			publishOne(t, c, "", "q", body)
			if _, _, ok, err := c.Get(ctx, "q", true); err != nil || !ok {
				t.Fatalf("Get %d: %v %v", i, ok, err)
			}
		}
	}
	flow(150)
	ent, err := b.lookupQueue("/", "q")
	if err != nil {
		t.Fatal(err)
	}
	g := ent.group
	l, err := b.logs.get(g)
	if err != nil {
		t.Fatal(err)
	}
	first := l.FirstIndex()
	var ref queue.Ref
	b.queueLeaderOf(g).fsm.with(func(q *queue.Queue) { ref = queue.Ref{Index: q.Floor()} })
	if first > ref.Index {
		t.Fatalf("the held message at %d should hold the log, which starts at %d", ref.Index, first)
	}
	n, err := b.queueLeaderOf(g).relocate(ctx)
	if err != nil || n != 1 {
		t.Fatalf("relocate: moved %d, %v; want 1", n, err)
	}
	// The floor is past the held message now: the next snapshot (every
	// 64 entries here) releases the log below it.
	flow(40)
	waitFor(t, b, func() bool { return l.FirstIndex() > ref.Index }, func() string {
		return fmt.Sprintf("the log still starts at %d, at or below the relocated message's entry %d", l.FirstIndex(), ref.Index)
	})
	if err := h.Nack(ctx, true, ""); err != nil {
		t.Fatal(err)
	}
	check := func(c *Conn) {
		t.Helper()
		got, gh, ok, err := c.Get(ctx, "q", false)
		if err != nil || !ok {
			t.Fatalf("Get after the relocation: %v %v", ok, err)
		}
		if string(got.Message.Body) != "held body" || string(got.Message.Key) != "k" || len(got.Message.Headers) == 0 ||
			got.Message.Headers[0].Key != "h" || got.Message.Headers[0].Value.Text() != "v" || !got.Message.Timestamp.Equal(d.Message.Timestamp) {
			t.Fatalf("redelivered %+v, want %+v", got.Message, d.Message)
		}
		if err := gh.Nack(ctx, true, ""); err != nil {
			t.Fatal(err)
		}
	}
	check(c)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b = open()
	check(guestConn(t, b))
}

// TestClusterRelocationSurvivesALeaderChange: the leader proposes the
// relocation, every replica applies it and releases its log below the
// held message's entry, and after the leader stops the new one delivers
// the held message whole from where its body was moved.
func TestClusterRelocationSurvivesALeaderChange(t *testing.T) {
	cl := threeNodesWith(t, func(c *Config) {
		c.SegmentBytes = 16 << 10
		c.RelocateFreeBytes = 64 << 10
		c.RelocateInterval = time.Hour // the test runs the pass itself
		c.SnapshotEntries = 64
	})
	ctx := testCtx(t)
	if _, err := guestConn(t, cl.nodes[0]).DeclareQueue(ctx, QueueSpec{Name: "q", Durable: true}); err != nil {
		t.Fatal(err)
	}
	lead := cl.leaderOfQueue("q")
	holder := guestConn(t, cl.nodes[(lead+1)%3])
	other := (lead + 2) % 3
	fc := guestConn(t, cl.nodes[other])
	publishAll(t, holder, []Message{{RoutingKey: "q", Body: []byte("held body"), Headers: Headers{{Key: "h", Value: StringValue("v")}}}})
	if _, _, ok, err := holder.Get(ctx, "q", false); err != nil || !ok {
		t.Fatalf("Get: %v %v", ok, err)
	}
	body := strings.Repeat("x", 2<<10)
	flow := func() {
		t.Helper()
		publishOne(t, fc, "", "q", body)
		if _, _, ok, err := fc.Get(ctx, "q", true); err != nil || !ok {
			t.Fatalf("Get: %v %v", ok, err)
		}
	}
	for range 150 {
		flow()
	}
	ent, err := cl.nodes[lead].lookupQueue("/", "q")
	if err != nil {
		t.Fatal(err)
	}
	g := ent.group
	ql := cl.nodes[lead].queueLeaderOf(g)
	var held uint64
	ql.fsm.with(func(q *queue.Queue) { held = q.Floor() })
	if n, err := ql.relocate(ctx); err != nil || n != 1 {
		t.Fatalf("relocate: moved %d, %v; want 1", n, err)
	}
	// Every replica snapshots on its own (every 64 entries here): more
	// traffic brings each past the held message's old entry.
	released := func() bool {
		for _, b := range cl.nodes {
			l, err := b.logs.get(g)
			if err != nil || l.FirstIndex() <= held {
				return false
			}
		}
		return true
	}
	for i := 0; !released(); i++ {
		if i == 1000 {
			t.Fatalf("after %d more messages a replica's log still starts at or below the held message's entry %d", i, held)
		}
		flow()
	}
	cl.stop(lead)
	if err := holder.Close(ctx); err != nil {
		t.Fatal(err)
	}
	next := cl.leaderOfQueue("q")
	waitStats(t, cl.nodes[next], "q", func(st QueueStats) bool { return st.Ready == 1 && st.Unacked == 0 })
	d, _, ok, err := fc.Get(ctx, "q", true)
	if err != nil || !ok {
		t.Fatalf("Get from the new leader (node %d): %v %v", next+1, ok, err)
	}
	if string(d.Message.Body) != "held body" || len(d.Message.Headers) != 1 || d.Message.Headers[0].Value.Text() != "v" || !d.Redelivered {
		t.Fatalf("the new leader delivered %+v (redelivered %v), want the held message again", d.Message, d.Redelivered)
	}
}

// TestAnAutoAckGetKeepsItsBodyInTheLogUntilRead: an auto-ack Get takes
// its message out of the queue in the command that hands it out, so the
// floor passes the message at once; the log keeps its body (RetainFrom)
// until the getter has read it, or until BrokerGetReadPinMs of queue time
// says the getter gave up.
func TestAnAutoAckGetKeepsItsBodyInTheLogUntilRead(t *testing.T) {
	clock := base.NewFakeClock(epoch)
	b := openNode(t, nodeOpts{clock: clock})
	c := guestConn(t, b)
	declare(t, c, "q")
	publishOne(t, c, "", "q", "a")
	publishOne(t, c, "", "q", "b") // in an entry of its own, after a's
	ent, err := b.lookupQueue("/", "q")
	if err != nil {
		t.Fatal(err)
	}
	ql := b.queueLeaderOf(ent.group)
	ctx := testCtx(t)
	get := func() queue.Delivery {
		t.Helper()
		res, err := ql.propose(ctx, &queue.Get{Now: b.nowMs(), AutoAck: true})
		if err != nil || !res.Found {
			t.Fatalf("Get: %v %v", res.Found, err)
		}
		return res.Delivery
	}
	first := get()
	if got := ql.fsm.RetainFrom(); got != first.At.Index {
		t.Fatalf("with the first message taken and not read, the log is kept from %d, want its entry %d", got, first.At.Index)
	}
	m, err := ql.readMessageAt(first.Ref, first.At)
	if err != nil || string(m.Body) != "a" {
		t.Fatalf("reading the first message: %q %v", m.Body, err)
	}
	ql.fsm.unpin(first.Ref)
	var second uint64
	ql.fsm.with(func(q *queue.Queue) { second = q.Floor() })
	if got := ql.fsm.RetainFrom(); got != second || second <= first.At.Index {
		t.Fatalf("with the first message read, the log is kept from %d, want the second message's entry %d (after %d)", got, second, first.At.Index)
	}
	// A getter that never reads: its pin ends with queue time.
	if got := get(); got.At.Index != second {
		t.Fatalf("the second message lies at %d, want %d", got.At.Index, second)
	}
	if got := ql.fsm.RetainFrom(); got != second {
		t.Fatalf("with the second message taken and not read, the log is kept from %d, want %d", got, second)
	}
	clock.Advance(base.BrokerGetReadPinMs*time.Millisecond + time.Millisecond)
	if res, err := ql.propose(ctx, &queue.Tick{Now: b.nowMs()}); err != nil || res.Err != nil {
		t.Fatalf("Tick: %v %v", err, res.Err)
	}
	if got := ql.fsm.RetainFrom(); got != 0 {
		t.Fatalf("%v after the second Get, the log is kept from %d, want nothing kept", base.BrokerGetReadPinMs*time.Millisecond, got)
	}
}

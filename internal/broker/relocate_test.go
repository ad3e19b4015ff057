package broker

import (
	"fmt"
	"strings"
	"testing"
	"time"

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

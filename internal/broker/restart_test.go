package broker

import (
	"fmt"
	"testing"

	"github.com/ferry-mq/ferry/internal/base/vfs"
)

// restartScenario publishes, consumes part, leaves some unacknowledged,
// and checks after reopen (done by reopen) that every confirmed message
// is there: acked ones gone, unacked ones back as redelivered.
func restartScenario(t *testing.T, open func() *Broker, reopen func(*Broker) *Broker) {
	b := open()
	c := guestConn(t, b)
	ctx := testCtx(t)
	declare(t, c, "durable")
	var msgs []Message
	for i := range 10 {
		msgs = append(msgs, Message{RoutingKey: "durable", Body: []byte(fmt.Sprint("m", i)), MessageID: fmt.Sprint(i)})
	}
	res, err := c.Publish(ctx, "", msgs, PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	s, col := subscribe(t, c, SubscribeOptions{Queue: "durable", Tag: "x", PrefetchCount: 4})
	ds := takeN(t, col, 4)
	if err := s.Ack(ds[1].DeliveryID, true); err != nil { // m0 and m1
		t.Fatal(err)
	}
	takeN(t, col, 2) // m4 and m5, delivered once the acks freed credit
	waitStats(t, b, "durable", func(st QueueStats) bool { return st.Counters.Acked == 2 && st.Unacked == 4 })
	b = reopen(b)
	c = guestConn(t, b)
	st := waitStats(t, b, "durable", func(st QueueStats) bool { return st.Unacked == 0 && st.Ready == 8 })
	_, col = subscribe(t, c, SubscribeOptions{Queue: "durable", Tag: "y", PrefetchCount: 100})
	got := takeN(t, col, 8)
	for i, d := range got {
		want := fmt.Sprint("m", i+2)
		if string(d.Message.Body) != want || d.Message.MessageID != fmt.Sprint(i+2) {
			t.Fatalf("after restart, delivery %d: %q (id %q), want %s", i, d.Message.Body, d.Message.MessageID, want)
		}
		if redelivered := i < 4; d.Redelivered != redelivered {
			t.Fatalf("after restart, %s redelivered %v, want %v (m2 to m5 were unacked)", want, d.Redelivered, redelivered)
		}
	}
	col.none(t)
	_ = st
}

func TestRestartKeepsConfirmedMessagesOnMemFS(t *testing.T) {
	fs := vfs.NewMem()
	var cur *Broker
	restartScenario(t, func() *Broker {
		cur = openNode(t, nodeOpts{fs: fs})
		return cur
	}, func(b *Broker) *Broker {
		if err := b.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		cur = openNode(t, nodeOpts{fs: fs})
		return cur
	})
}

func TestRestartKeepsConfirmedMessagesOnDisk(t *testing.T) {
	dir := t.TempDir()
	restartScenario(t, func() *Broker {
		return openNode(t, nodeOpts{fs: vfs.Default, dir: dir})
	}, func(b *Broker) *Broker {
		if err := b.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		return openNode(t, nodeOpts{fs: vfs.Default, dir: dir})
	})
}

// A crash drops everything not synced: what was confirmed must survive.
func TestCrashKeepsConfirmedMessages(t *testing.T) {
	fs := vfs.NewMem()
	restartScenario(t, func() *Broker {
		return openNode(t, nodeOpts{fs: fs})
	}, func(b *Broker) *Broker {
		fs.Crash()
		b.Close() // fails: every file handle is from before the crash
		return openNode(t, nodeOpts{fs: fs})
	})
}

package broker

import (
	"testing"
)

func TestPublishConsumeAckOnOneNode(t *testing.T) {
	b := openNode(t, nodeOpts{})
	c := guestConn(t, b)
	ctx := testCtx(t)
	if _, err := c.DeclareQueue(ctx, QueueSpec{Name: "q", Durable: true}); err != nil {
		t.Fatalf("DeclareQueue: %v", err)
	}
	for _, body := range []string{"one", "two", "three"} {
		publishOne(t, c, "", "q", body)
	}
	col := newCollector()
	s, err := c.Subscribe(ctx, SubscribeOptions{Queue: "q", Tag: "c1", PrefetchCount: 10}, col.deliver, nil)
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	for _, want := range []string{"one", "two", "three"} {
		d := col.next(t)
		if got := string(d.Message.Body); got != want {
			t.Fatalf("delivered %q, want %q", got, want)
		}
		if err := s.Ack(d.DeliveryID, false); err != nil {
			t.Fatalf("Ack: %v", err)
		}
	}
}

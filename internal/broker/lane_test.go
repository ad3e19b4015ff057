package broker

import (
	"testing"

	"github.com/ferry-mq/ferry/internal/base"
)

// TestAConnectionDropsItsIdleLanesPastTheBound: a connection keeps a lane
// per group it publishes to; once BrokerIdleLanesPerConnectionMax are
// kept, creating one drops those with nothing in flight or waiting (an RPC
// server replying to many short-lived queues must not keep one per
// queue), keeps the busy ones, and publishes go on through the new lane.
// A lane dropped after a sender looked it up refuses the send, which
// Conn.send then makes through the connection's current lane.
func TestAConnectionDropsItsIdleLanesPastTheBound(t *testing.T) {
	b := openNode(t, nodeOpts{})
	c := guestConn(t, b)
	declare(t, c, "q")
	publishOne(t, c, "", "q", "first")
	ent, err := b.lookupQueue("/", "q")
	if err != nil {
		t.Fatal(err)
	}
	busy := newLane(b, 1<<40)
	busy.inflight = 1 // as if a send were in flight
	c.mu.Lock()
	delete(c.lanes, ent.group)
	for i := range base.BrokerIdleLanesPerConnectionMax - 1 {
		c.lanes[GroupID(1<<41+i)] = newLane(b, GroupID(1<<41+i))
	}
	c.lanes[1<<40] = busy
	c.mu.Unlock()

	publishOne(t, c, "", "q", "second") // creates q's lane again, past the bound
	c.mu.Lock()
	kept := len(c.lanes)
	_, busyKept := c.lanes[1<<40]
	c.mu.Unlock()
	if kept != 2 || !busyKept {
		t.Fatalf("after the bound: %d lanes kept (busy one kept: %v), want q's and the busy one", kept, busyKept)
	}

	idle := newLane(b, ent.group)
	if !idle.dropIfIdle() || idle.send(testCtx(t), nil) {
		t.Fatal("a dropped idle lane took a send")
	}
	if busy.dropIfIdle() {
		t.Fatal("a lane with a send in flight was dropped")
	}
	_, _, ok, err := c.Get(testCtx(t), "q", true)
	if err != nil || !ok {
		t.Fatalf("get: %v %v", ok, err)
	}
}

package server

import (
	"context"
	"fmt"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// TestClusterLeaderStopLosesNoConfirmedPublish: three nodes, a queue
// replicated on all of them, and amqp091-go publishing with confirms
// through a node that does not lead the queue. The queue's leader stops
// a third of the way through; the publisher goes on through the same
// connection, the queue elects a new leader, and a consumer then reads
// every confirmed message once, in the order published.
func TestClusterLeaderStopLosesNoConfirmedPublish(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three nodes; skipped with -short")
	}
	nodes, _ := startNodes(t, 3, 0, func(_ int, cfg *Config, _ []int) { cfg.Listeners.AMQP = "127.0.0.1:0" })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// Every client uses node clientNode, which keeps running. A
	// connection's close is replicated, so at the end clientNode stops
	// first, while the third node still makes a quorum with it; the
	// third node has no clients and stops last.
	clientNode, leader := 0, -1
	running := []bool{true, true, true}
	defer func() {
		order := []int{clientNode}
		for i := range nodes {
			if i != clientNode {
				order = append(order, i)
			}
		}
		for _, i := range order {
			if running[i] {
				shutdown(t, nodes[i])
			}
		}
	}()
	addr, _ := nodes[clientNode].Addr("amqp")
	conn, err := amqp091.Dial("amqp://guest:guest@" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { conn.Close() }() // before the nodes stop (deferred later, runs first)
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare("failover", true, false, false, false,
		amqp091.Table{"x-quorum-initial-group-size": int32(3)}); err != nil {
		t.Fatal(err)
	}
	st, err := nodes[clientNode].b.QueueStatsWait(ctx, "/", "failover")
	if err != nil {
		t.Fatal(err)
	}
	leader = int(st.Leader) - 1
	if leader == clientNode {
		// Move the clients to a node that keeps running.
		conn.Close()
		clientNode = (leader + 1) % 3
		addr, _ = nodes[clientNode].Addr("amqp")
		if conn, err = amqp091.Dial("amqp://guest:guest@" + addr + "/"); err != nil {
			t.Fatal(err)
		}
		if ch, err = conn.Channel(); err != nil {
			t.Fatal(err)
		}
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	const n = 300
	var confirmed []int
	for i := range n {
		if i == n/3 {
			shutdown(t, nodes[leader])
			running[leader] = false
		}
		conf, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", "failover", false, false,
			amqp091.Publishing{DeliveryMode: amqp091.Persistent, Body: []byte(fmt.Sprint(i))})
		if err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
		ok, err := conf.WaitContext(ctx)
		if err != nil {
			t.Fatalf("confirm of %d: %v", i, err)
		}
		if ok {
			confirmed = append(confirmed, i)
		}
	}
	// A publish the stopping leader could not take is nacked, never lost
	// silently; nearly all go through.
	if len(confirmed) < n-10 {
		t.Errorf("%d of %d publishes confirmed", len(confirmed), n)
	}
	var got []int
	for {
		d, ok, err := ch.Get("failover", true)
		if err != nil {
			t.Fatalf("get: %v", err)
		}
		if !ok {
			break
		}
		var v int
		if _, err := fmt.Sscan(string(d.Body), &v); err != nil {
			t.Fatalf("body %q: %v", d.Body, err)
		}
		got = append(got, v)
	}
	// Every confirmed message, once, in order; a nacked one may be there
	// too (a nack says only that it may not have been stored).
	at := 0
	for _, v := range got {
		switch {
		case at < len(confirmed) && v == confirmed[at]:
			at++
		case at > 0 && v <= confirmed[at-1]:
			t.Fatalf("message %d read out of order or twice, after %d: %v", v, confirmed[at-1], got)
		}
	}
	if at != len(confirmed) {
		t.Fatalf("read %d messages; confirmed %d is missing or out of order", len(got), confirmed[at])
	}
}

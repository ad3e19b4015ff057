package broker

import (
	"fmt"
	"slices"
	"testing"

	"github.com/ferry-mq/ferry/internal/base/vfs"
	"pgregory.net/rapid"
)

// naiveQueue is the model: which messages are ready, which are held by a
// get and not settled, which left, and which were ever delivered.
type naiveQueue struct {
	ready       map[string]bool
	held        map[string]*GetHandle
	delivered   map[string]bool
	acked       map[string]bool
	rejected    map[string]bool
	nextMessage int
}

// TestQueueAgainstNaiveModel runs random publishes, gets, acks, nacks,
// rejects, connection closes and node restarts on one node and compares
// the queue with a naive model after every step: a get returns a ready
// message (redelivered exactly when it was delivered before) or nothing
// when none is ready, and the queue's counts are the model's.
func TestQueueAgainstNaiveModel(t *testing.T) {
	fs := vfs.NewMem()
	b := openNode(t, nodeOpts{fs: fs})
	reopen := func() {
		if err := b.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		b = openNode(t, nodeOpts{fs: fs})
	}
	round := 0
	rapid.Check(t, func(rt *rapid.T) {
		round++
		name := fmt.Sprint("prop", round)
		c := guestConn(t, b)
		declare(t, c, name)
		m := &naiveQueue{ready: map[string]bool{}, held: map[string]*GetHandle{}, delivered: map[string]bool{},
			acked: map[string]bool{}, rejected: map[string]bool{}}
		ctx := testCtx(t)
		heldKeys := func() []string {
			keys := make([]string, 0, len(m.held))
			for k := range m.held {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			return keys
		}
		returnAll := func() {
			for k := range m.held {
				m.ready[k] = true
				delete(m.held, k)
			}
		}
		rt.Repeat(map[string]func(*rapid.T){
			"publish": func(rt *rapid.T) {
				n := rapid.IntRange(1, 4).Draw(rt, "n")
				var msgs []Message
				for range n {
					body := fmt.Sprint("m", m.nextMessage)
					m.nextMessage++
					msgs = append(msgs, Message{RoutingKey: name, Body: []byte(body)})
					m.ready[body] = true
				}
				res, err := c.Publish(ctx, "", msgs, PublishOptions{})
				if err != nil {
					rt.Fatalf("Publish: %v", err)
				}
				for _, r := range res {
					if r.Err != nil {
						rt.Fatalf("Publish: %v", r.Err)
					}
				}
			},
			"get": func(rt *rapid.T) {
				autoAck := rapid.Bool().Draw(rt, "autoAck")
				d, h, ok, err := c.Get(ctx, name, autoAck)
				if err != nil {
					rt.Fatalf("Get: %v", err)
				}
				if !ok {
					if len(m.ready) != 0 {
						rt.Fatalf("Get found nothing; the model has %d ready", len(m.ready))
					}
					return
				}
				body := string(d.Message.Body)
				if !m.ready[body] {
					rt.Fatalf("Get returned %s, which is not ready in the model", body)
				}
				if d.Redelivered != m.delivered[body] {
					rt.Fatalf("%s redelivered %v, the model says %v", body, d.Redelivered, m.delivered[body])
				}
				delete(m.ready, body)
				m.delivered[body] = true
				if autoAck {
					m.acked[body] = true
				} else {
					m.held[body] = h
				}
			},
			"settle": func(rt *rapid.T) {
				keys := heldKeys()
				if len(keys) == 0 {
					rt.Skip("nothing held")
				}
				k := rapid.SampledFrom(keys).Draw(rt, "message")
				h := m.held[k]
				delete(m.held, k)
				switch rapid.IntRange(0, 2).Draw(rt, "how") {
				case 0:
					if err := h.Ack(ctx); err != nil {
						rt.Fatalf("Ack: %v", err)
					}
					m.acked[k] = true
				case 1:
					if err := h.Nack(ctx, true, ""); err != nil {
						rt.Fatalf("Nack requeue: %v", err)
					}
					m.ready[k] = true
				default:
					if err := h.Nack(ctx, false, ""); err != nil {
						rt.Fatalf("reject: %v", err)
					}
					m.rejected[k] = true // no dead-letter target: dropped
				}
			},
			"reconnect": func(rt *rapid.T) {
				if err := c.Close(ctx); err != nil {
					rt.Fatalf("Close: %v", err)
				}
				returnAll()
				c = guestConn(t, b)
			},
			"restart": func(rt *rapid.T) {
				if rapid.IntRange(0, 4).Draw(rt, "often") != 0 {
					rt.Skip("restarts are rare")
				}
				reopen()
				returnAll()
				c = guestConn(t, b)
			},
			"": func(rt *rapid.T) {
				// A restarted replica's counts lag until it has replayed
				// its log, so wait for all three to agree.
				waitStats(t, b, name, func(st QueueStats) bool {
					return st.Ready == uint64(len(m.ready)) && st.Unacked == uint64(len(m.held)) &&
						st.Counters.Acked == uint64(len(m.acked))
				})
			},
		})
		// Delete the queue so that restarts of later cases do not reopen
		// every earlier case's group.
		if _, err := c.DeleteQueue(ctx, name, false, false); err != nil {
			rt.Fatalf("DeleteQueue: %v", err)
		}
		if err := c.Close(ctx); err != nil {
			rt.Fatalf("Close: %v", err)
		}
	})
}

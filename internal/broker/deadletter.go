package broker

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/controller"
	"github.com/ferry-mq/ferry/internal/queue"
	"github.com/ferry-mq/ferry/internal/routing"
)

// Dead-lettering is at least once, as RabbitMQ quorum queues' at-least-once
// strategy: a dead-lettered message stays in its queue (pending, holding
// the log floor) until the leader has republished it to the dead-letter
// exchange's destinations, durably; only then is DeadLetterDone proposed.
// A failure is retried after BrokerDeadLetterRetryInterval; a new leader
// re-issues every pending message.

// deadLetter queues dead-letter effects for the worker.
func (ql *queueLeader) deadLetter(effs []queue.Effect) {
	if len(effs) == 0 {
		return
	}
	ql.dlMu.Lock()
	ql.dlPending = append(ql.dlPending, effs...)
	start := !ql.dlRunning
	ql.dlRunning = true
	ql.dlMu.Unlock()
	if start {
		ql.wg.Add(1)
		go func() {
			defer ql.wg.Done()
			ql.deadLetterLoop()
		}()
	}
}

func (ql *queueLeader) deadLetterLoop() {
	for ql.ctx.Err() == nil {
		ql.dlMu.Lock()
		n := min(len(ql.dlPending), base.BrokerDeadLetterBatchMax)
		if n == 0 {
			ql.dlRunning = false
			ql.dlMu.Unlock()
			return
		}
		effs := append([]queue.Effect(nil), ql.dlPending[:n]...)
		ql.dlPending = ql.dlPending[n:]
		ql.dlMu.Unlock()
		if err := ql.republish(effs); err != nil {
			if ql.ctx.Err() != nil {
				return
			}
			ql.b.log.Warn("dead-lettering failed; retrying", "queue", ql.fsm.name, "messages", len(effs), "err", err)
			ql.dlMu.Lock()
			ql.dlPending = append(effs, ql.dlPending...)
			ql.dlMu.Unlock()
			t := ql.b.clock.NewTimer(base.BrokerDeadLetterRetryInterval)
			select {
			case <-t.C():
			case <-ql.ctx.Done():
				t.Stop()
				return
			}
			continue
		}
		refs := make([]queue.Ref, len(effs))
		for i, e := range effs {
			refs[i] = e.Ref
		}
		if _, err := ql.propose(ql.ctx, &queue.DeadLetterDone{Now: ql.b.nowMs(), Refs: refs}); err != nil && ql.ctx.Err() == nil {
			ql.b.log.Warn("DeadLetterDone failed; the new leader re-issues them", "queue", ql.fsm.name, "err", err)
		}
	}
}

// republish appends the dead-lettered messages to their targets' routes
// and waits until every copy is durable. A message whose target is unset,
// missing or routes nowhere is dropped, as RabbitMQ does.
func (ql *queueLeader) republish(effs []queue.Effect) error {
	byExchange := map[controller.DeadLetter][]Message{}
	var order []controller.DeadLetter
	for _, e := range effs {
		target, err := controller.ParseDeadLetterTarget(e.Target)
		if err != nil || !target.Set {
			ql.traceRef(e.Ref, "dropped", e.Reason.String())
			continue
		}
		m, err := ql.readMessage(e.Ref)
		if err != nil {
			if ql.ctx.Err() != nil {
				return err
			}
			ql.b.log.Warn("a dead-lettered message cannot be read; dropping it", "queue", ql.fsm.name, "ref", e.Ref.String(), "err", err)
			continue
		}
		m = copyMessage(m)
		addDeath(&m, ql.fsm.name, e.Reason.String(), time.UnixMilli(e.AtMs))
		if target.HasRoutingKey {
			// RabbitMQ drops CC with a routing key of its own: the copy goes
			// where that key alone routes it.
			m.RoutingKey = target.RoutingKey
			m.deleteHeader("CC")
		}
		ql.b.trace.record(ql.fsm.tenant, m.MessageID, TraceEvent{Kind: TraceDeadLettered, Queue: ql.fsm.name,
			Exchange: target.Exchange, Reason: e.Reason.String()})
		if _, ok := byExchange[target]; !ok {
			order = append(order, target)
		}
		byExchange[target] = append(byExchange[target], m)
	}
	for _, t := range order {
		if err := ql.b.publishInternal(ql.ctx, ql.fsm.tenant, t.Exchange, byExchange[t]); err != nil {
			return err
		}
	}
	return nil
}

// copyMessage detaches a decoded message from the cache's bytes (its
// headers table is rebuilt by addDeath).
func copyMessage(m Message) Message {
	m.Headers = append(Headers(nil), m.Headers...)
	return m
}

// addDeath records a dead-lettering in the x-death header as RabbitMQ
// does: one entry per (queue, reason), most recent first, with a count;
// x-first-death-* set once, x-last-death-* every time. The per-message
// expiration is removed (kept as original-expiration) so the message does
// not expire again at once.
func addDeath(m *Message, queueName, reason string, at time.Time) {
	var deaths []Value
	if v, ok := m.Headers.Get("x-death"); ok && v.Kind() == KindArray {
		deaths = v.Array()
	}
	count := int64(1)
	var kept []Value
	for _, d := range deaths {
		t := d.Table()
		q, _ := t.Get("queue")
		r, _ := t.Get("reason")
		if d.Kind() == KindTable && q.Text() == queueName && r.Text() == reason {
			if c, ok := t.Get("count"); ok {
				count = c.Int() + 1
			}
			continue
		}
		kept = append(kept, d)
	}
	var keys []Value // the routing key and CC's, as RabbitMQ records them
	for _, k := range senderKeys(nil, m) {
		keys = append(keys, StringValue(k))
	}
	entry := Headers{
		{Key: "count", Value: IntValue(KindInt64, count)},
		{Key: "reason", Value: StringValue(reason)},
		{Key: "queue", Value: StringValue(queueName)},
		{Key: "time", Value: TimestampValue(uint64(max(at.Unix(), 0)))},
		{Key: "exchange", Value: StringValue(m.Exchange)},
		{Key: "routing-keys", Value: ArrayValue(keys)},
	}
	if m.Expiration != "" {
		entry = append(entry, Header{Key: "original-expiration", Value: StringValue(m.Expiration)})
		m.Expiration = ""
	}
	deaths = append([]Value{TableValue(entry)}, kept...)
	m.setHeader("x-death", ArrayValue(deaths))
	if _, ok := m.Headers.Get("x-first-death-queue"); !ok {
		m.setHeader("x-first-death-exchange", StringValue(m.Exchange))
		m.setHeader("x-first-death-queue", StringValue(queueName))
		m.setHeader("x-first-death-reason", StringValue(reason))
	}
	m.setHeader("x-last-death-exchange", StringValue(m.Exchange))
	m.setHeader("x-last-death-queue", StringValue(queueName))
	m.setHeader("x-last-death-reason", StringValue(reason))
}

// deadLetterCycle reports RabbitMQ's dead-letter cycle: queueName is in
// the x-death entries (most recent first), and neither its entry nor any
// more recent one is a rejection. Such a copy would go round forever (a
// queue whose TTL dead-letters to itself, two that dead-letter to each
// other), so it is dropped; a cycle with a consumer's rejection in it is
// the application's retry loop and goes on.
func deadLetterCycle(m *Message, queueName string) bool {
	deaths, _ := m.Headers.Get("x-death")
	for _, d := range deaths.Array() {
		t := d.Table()
		r, _ := t.Get("reason")
		if r.Text() == queue.ReasonRejected.String() {
			return false
		}
		if q, _ := t.Get("queue"); q.Text() == queueName {
			return true
		}
	}
	return false
}

// deleteHeader removes every header named key.
func (m *Message) deleteHeader(key string) {
	m.Headers = slices.DeleteFunc(m.Headers, func(h Header) bool { return h.Key == key })
}

// setHeader replaces the first header named key, or appends one.
func (m *Message) setHeader(key string, v Value) {
	for i := range m.Headers {
		if m.Headers[i].Key == key {
			m.Headers[i].Value = v
			return
		}
	}
	m.Headers = append(m.Headers, Header{Key: key, Value: v})
}

// publishInternal routes and appends messages for the broker itself
// (dead-lettering): no permission checks, no flow control (the queue
// holds them until they are safe), and it waits for every copy. An
// exchange that does not exist drops them.
func (b *Broker) publishInternal(ctx context.Context, tenant, exchange string, msgs []Message) error {
	res := routePool.Get().(*routing.Result)
	defer routePool.Put(res)
	var enc recordEncoder
	var fields []routing.Field
	var keys []string
	sends := map[GroupID]*groupSend{}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for i := range msgs {
		m := &msgs[i]
		m.Exchange = exchange
		keys = senderKeys(keys, m)
		fields = routingFields(fields[:0], m.Headers)
		if err := b.route(tenant, res, exchange, keys, fields); err != nil {
			if base.CodeOf(err) == base.CodeNotFound {
				continue
			}
			return err
		}
		if len(res.Destinations) == 0 {
			continue
		}
		rec, err := enc.encode(m, 0)
		if err != nil {
			continue
		}
		for _, d := range res.Destinations {
			if deadLetterCycle(m, d.Name) {
				b.log.Debug("a dead-lettered message would cycle back to a queue with no rejection on the way; dropped as RabbitMQ does",
					"vhost", tenant, "queue", d.Name, "message_id", m.MessageID)
				continue
			}
			ent, err := b.lookupEntity(tenant, d.Kind, d.Name)
			if err != nil {
				continue
			}
			g := ent.group
			if ent.isStream {
				g = GroupID(ent.stream.Partitions[int(uint32(len(msgs)+i))%len(ent.stream.Partitions)].Group)
			}
			gs := sends[g]
			if gs == nil {
				gs = &groupSend{group: g}
				sends[g] = gs
			}
			wg.Add(1)
			gs.items = append(gs.items, &pubItem{rec: &rec, done: func(_ queue.Outcome, err error) {
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
				}
				wg.Done()
			}})
		}
	}
	for _, gs := range sends {
		newLane(b, gs.group).send(ctx, gs.items) // a lane of its own: never dropped
	}
	wg.Wait()
	return firstErr
}

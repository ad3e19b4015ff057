package broker

import (
	"context"
	"sync"
	"time"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/controller"
	"github.com/ferry-mq/ferry/internal/queue"
	"github.com/ferry-mq/ferry/internal/replication"
	"github.com/ferry-mq/ferry/internal/storage/log/batch"
)

// queueLeader is what runs for a queue on the node that leads its group:
//
//   - the publish accumulator: concurrent publishes become one data batch
//     per proposal, with one proposal in flight (DESIGN.md "Publish
//     order" says why one);
//   - the dispatcher goroutine: it carries out the effects the queue
//     emits (deliveries, the wake timer, dead-lettering, cancellations,
//     queue expiry) and sends the settlements of its consumers, coalesced
//     into one command per consumer per pass;
//   - the dead-letter worker, started when there is work;
//   - the relocation loop (relocate.go).
//
// Its goroutines end when stop is called (leadership lost, group closed,
// node closing).
type queueLeader struct {
	b   *Broker
	lg  *localGroup
	fsm *queueFSM
	g   GroupID

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	kickCh chan struct{} // size one: one pending wake-up is enough
	// ready is closed once takeOver has cleaned up after the previous
	// leader; subscriptions wait for it, so that every consumer record
	// found then belongs to nobody here.
	ready chan struct{}

	acc *accumulator

	infoMu sync.Mutex
	info   controller.QueueInfo // guarded by infoMu

	effMu      sync.Mutex
	effects    []queue.Effect // guarded by effMu: from Apply, for the dispatcher
	downs      bool           // guarded by effMu: a consumer left; check auto-delete
	subscribed bool           // guarded by effMu: a consumer subscribed

	subMu    sync.Mutex
	subs     map[queue.ConsumerID]*Subscription // guarded by subMu
	dirty    []*Subscription                    // guarded by subMu: settlements to send
	settling int                                // guarded by subMu: settle proposals in flight
	stopped  bool                               // guarded by subMu

	dlMu      sync.Mutex
	dlPending []queue.Effect // guarded by dlMu
	dlRunning bool           // guarded by dlMu

	// Owned by the dispatcher goroutine.
	timer       base.Timer
	wakeAt      int64
	hadConsumer bool
}

func newQueueLeader(b *Broker, lg *localGroup) *queueLeader {
	f := lg.fsm.(*queueFSM)
	ql := &queueLeader{b: b, lg: lg, fsm: f, g: lg.id, kickCh: make(chan struct{}, 1), ready: make(chan struct{}),
		subs: map[queue.ConsumerID]*Subscription{}}
	ql.ctx, ql.cancel = context.WithCancel(b.ctx())
	ql.acc = newAccumulator(ql.ctx, &ql.wg, "queue '"+f.name+"'", base.BrokerPublishInFlightMax, ql.submitBatch)
	b.ctrl.read(func(c *controller.Controller) { ql.info, _ = c.Queue(f.tenant, f.name) })
	f.mu.Lock()
	f.leader.Store(ql)
	f.mu.Unlock()
	ql.timer = b.clock.NewTimer(time.Hour)
	ql.timer.Stop()
	ql.wg.Add(2)
	go func() {
		defer ql.wg.Done()
		ql.run()
	}()
	go func() {
		defer ql.wg.Done()
		ql.relocateLoop()
	}()
	return ql
}

// stop ends the runtime: publishes waiting here fail with CodeNotLeader
// (their callers retry on the new leader), local consumers are cancelled.
func (ql *queueLeader) stop() {
	ql.fsm.mu.Lock()
	if ql.fsm.leader.Load() == ql {
		ql.fsm.leader.Store(nil)
	}
	ql.fsm.mu.Unlock()
	ql.cancel()
	ql.wg.Wait()
	ql.timer.Stop()
	ql.b.cache.dropGroup(ql.g)
	notLeader := base.Errorf(base.CodeNotLeader, "broker: node %d no longer leads queue '%s': %w", ql.b.node, ql.fsm.name,
		&replication.NotLeaderError{Group: ql.g})
	ql.acc.fail(notLeader)
	ql.subMu.Lock()
	ql.stopped = true
	subs := make([]*Subscription, 0, len(ql.subs))
	for _, s := range ql.subs {
		subs = append(subs, s)
	}
	ql.subs = map[queue.ConsumerID]*Subscription{}
	ql.subMu.Unlock()
	for _, s := range subs {
		s.end(base.Errorf(base.CodeUnavailable, "broker: queue '%s' moved to another node; consume again", ql.fsm.name))
	}
}

func (ql *queueLeader) kick() { kick(ql.kickCh) }

// pushEffects queues effects for the dispatcher. Called by Apply on the
// engine loop with the FSM locked: it only copies.
func (ql *queueLeader) pushEffects(effects []queue.Effect) {
	if len(effects) == 0 {
		return
	}
	ql.effMu.Lock()
	ql.effects = append(ql.effects, effects...)
	ql.effMu.Unlock()
}

// applied notes commands whose outcome the leader acts on besides their
// effects (called by Apply with the FSM locked).
func (ql *queueLeader) applied(cmd queue.Command, res queue.Result) {
	switch cmd.(type) {
	case *queue.Cancel, *queue.ConsumerDown:
		ql.effMu.Lock()
		ql.downs = true
		ql.effMu.Unlock()
	case *queue.Subscribe:
		if res.Err == nil {
			ql.effMu.Lock()
			ql.subscribed = true
			ql.effMu.Unlock()
		}
	}
}

// run is the dispatcher.
func (ql *queueLeader) run() {
	if !ql.takeOver() {
		return
	}
	for {
		select {
		case <-ql.ctx.Done():
			return
		case <-ql.kickCh:
		case <-ql.timer.C():
			ql.wakeAt = 0
			ql.proposeAsync(&queue.Tick{Now: ql.b.nowMs()}, nil)
		}
		ql.dispatch()
	}
}

// takeOver makes sure the queue state is current (a read through the
// group), then does what a new leader must: re-arm the wake timer,
// re-issue pending dead-letters, and return the deliveries of consumers
// that no longer exist: those of connections gone (a previous leader's
// node, a previous run), and every subscribed consumer, since none is
// registered with this fresh runtime. A live connection's basic.get
// deliveries stay with it.
func (ql *queueLeader) takeOver() bool {
	if _, err := ql.b.engine.ReadIndex(ql.ctx, ql.g); err != nil {
		return false
	}
	var next int64
	var dl []queue.Effect
	var owners []string
	ql.fsm.with(func(q *queue.Queue) {
		next, _ = q.NextWake()
		dl = q.DeadLetterPending()
		seen := map[string]bool{}
		for _, c := range q.Consumers() {
			if !seen[c.ID.Owner] && (c.Subscribed || !ql.b.ownerAlive(c.ID.Owner)) {
				seen[c.ID.Owner] = true
				owners = append(owners, c.ID.Owner)
			}
			ql.hadConsumer = ql.hadConsumer || c.Subscribed
		}
	})
	ql.arm(next)
	ql.deadLetter(dl)
	for _, o := range owners {
		ql.proposeAsync(&queue.ConsumerDown{Now: ql.b.nowMs(), Owner: o}, nil)
	}
	close(ql.ready)
	ql.kick()
	return true
}

func (ql *queueLeader) arm(atMs int64) {
	if atMs == 0 {
		ql.timer.Stop()
		ql.wakeAt = 0
		return
	}
	if atMs == ql.wakeAt {
		return
	}
	// A timer counts from the clock's time when Reset arms it, not from
	// the time read to compute d: a clock moving in between (a fake clock
	// advanced by a test, a real one crossing a millisecond) makes the
	// deadline late by as much, and a fake clock then fires it only after
	// the test has moved past the deadline, waiting for it (a TTL test
	// hung so about once in 300 runs). So arm again until the clock read
	// before and after arming agree.
	for range base.BrokerTimerArmAttemptsMax {
		now := ql.b.nowMs()
		d := time.Duration(atMs-now) * time.Millisecond
		if d <= 0 {
			// Due already (the effect was late, or time jumped): tick now
			// rather than through a timer, which a fake clock fires only
			// when it next moves.
			ql.timer.Stop()
			ql.wakeAt = 0
			ql.proposeAsync(&queue.Tick{Now: now}, nil)
			return
		}
		ql.wakeAt = atMs
		ql.timer.Reset(d)
		if ql.b.nowMs() == now {
			return
		}
	}
}

// dispatch carries out the pending effects and sends settlements.
func (ql *queueLeader) dispatch() {
	ql.effMu.Lock()
	effects := ql.effects
	ql.effects = nil
	downs := ql.downs
	ql.downs = false
	ql.hadConsumer = ql.hadConsumer || ql.subscribed
	ql.effMu.Unlock()
	var dl []queue.Effect
	for i := range effects {
		e := &effects[i]
		switch e.Kind {
		case queue.EffectDeliver:
			ql.deliver(e)
		case queue.EffectWake:
			ql.arm(e.AtMs)
		case queue.EffectDeadLetter:
			dl = append(dl, *e)
		case queue.EffectDrop:
			ql.traceRef(e.Ref, "dropped", e.Reason.String())
		case queue.EffectAckTimeout:
			if s := ql.sub(e.Consumer); s != nil {
				s.ackTimedOut(e.DeliveryID)
			}
		case queue.EffectConsumerCancelled:
			if s := ql.sub(e.Consumer); s != nil {
				ql.removeSub(s)
				s.end(base.Errorf(base.CodeNotFound, "broker: queue '%s' was deleted", ql.fsm.name))
			}
		case queue.EffectQueueExpired:
			ql.deleteSelf(controller.DeleteExpired)
		case queue.EffectActiveConsumer:
			if s := ql.sub(e.Consumer); s != nil {
				s.activated()
			}
		}
	}
	ql.deadLetter(dl)
	if downs {
		ql.checkAutoDelete()
	}
	ql.flushSettlements()
	ql.b.activity.Signal()
}

// deliver hands one message to its local subscription. A consumer that is
// not here (a stale one, being removed) gets nothing: its delivery comes
// back when ConsumerDown applies.
func (ql *queueLeader) deliver(e *queue.Effect) {
	s := ql.sub(e.Consumer)
	if s == nil {
		return
	}
	ql.hadConsumer = true
	m, err := ql.readMessage(e.Ref)
	if err != nil {
		if ql.ctx.Err() == nil {
			ql.b.log.Warn("reading a message to deliver failed", "queue", ql.fsm.name, "ref", e.Ref.String(), "err", err)
		}
		return
	}
	ql.b.trace.record(ql.fsm.tenant, m.MessageID, TraceEvent{Kind: TraceDelivered, Queue: ql.fsm.name,
		Consumer: s.opts.Tag, Attempt: e.DeliveryCount + 1})
	s.handle(Delivery{Queue: ql.fsm.name, ConsumerTag: s.opts.Tag, DeliveryID: e.DeliveryID,
		Redelivered: e.Redelivered, DeliveryCount: e.DeliveryCount, Message: m})
}

// readMessage returns the message ref from where its body lies (a
// Relocate may have moved it): from the cache of recent batches, or from
// the group's log. A read that fails because the body moved meanwhile
// (and its old place was released) is made again at the new place.
func (ql *queueLeader) readMessage(ref queue.Ref) (Message, error) {
	return ql.readMessageAt(ref, ql.fsm.locate(ref))
}

// readMessageAt is readMessage where the queue said the body lay.
func (ql *queueLeader) readMessageAt(ref, at queue.Ref) (Message, error) {
	cb, r, err := readStoredRecord(ql.b, ql.g, at)
	if err != nil {
		if again := ql.fsm.locate(ref); again != at {
			cb, r, err = readStoredRecord(ql.b, ql.g, again)
		}
	}
	if err != nil {
		return Message{}, err
	}
	return decodeRecord(r, cb.header.BaseTimestamp), nil
}

// readStoredRecord returns record at.Slot of the queue entry at.Index and
// its batch.
func readStoredRecord(b *Broker, g GroupID, at queue.Ref) (*cachedBatch, *batch.Record, error) {
	cb := b.cache.get(g, at.Index)
	if cb == nil {
		data, err := b.logs.readBatch(g, at.Index)
		if err != nil {
			return nil, nil, err
		}
		if cb, err = decodeStoredBatch(data); err != nil {
			return nil, nil, err
		}
		b.cache.put(g, at.Index, cb)
	}
	if int(at.Slot) >= len(cb.records) {
		return nil, nil, base.Errorf(base.CodeCorrupt, "broker: group %d: message %s: the batch has %d records", g, at, len(cb.records))
	}
	return cb, &cb.records[at.Slot], nil
}

func (ql *queueLeader) sub(id queue.ConsumerID) *Subscription {
	ql.subMu.Lock()
	defer ql.subMu.Unlock()
	return ql.subs[id]
}

// addSub registers a subscription before its Subscribe is proposed, so no
// delivery can arrive before it is known. It waits for takeOver, and fails
// once the runtime stopped.
func (ql *queueLeader) addSub(ctx context.Context, s *Subscription) error {
	select {
	case <-ql.ready:
	case <-ctx.Done():
		return base.Errorf(base.CodeTimeout, "broker: queue '%s' is still starting: %w", ql.fsm.name, ctx.Err())
	case <-ql.ctx.Done():
		return base.Errorf(base.CodeUnavailable, "broker: queue '%s' is moving to another node", ql.fsm.name)
	}
	ql.subMu.Lock()
	defer ql.subMu.Unlock()
	if ql.stopped {
		return base.Errorf(base.CodeUnavailable, "broker: queue '%s' is moving to another node", ql.fsm.name)
	}
	ql.subs[s.id] = s
	return nil
}

func (ql *queueLeader) removeSub(s *Subscription) {
	ql.subMu.Lock()
	defer ql.subMu.Unlock()
	if ql.subs[s.id] == s {
		delete(ql.subs, s.id)
	}
}

// proposeAsync proposes a queue command from the runtime; done (optional)
// gets the command's result or the proposal's error, on the engine loop.
func (ql *queueLeader) proposeAsync(cmd queue.Command, done func(queue.Result, error)) {
	data, err := encodeQueueCommand(cmd)
	if err != nil {
		base.Bugf("encoding a queue command of the leader: %v", err)
	}
	ql.b.engine.ProposeAsync(ql.g, data, func(r replication.Result) {
		if done == nil {
			return
		}
		if r.Err != nil {
			done(queue.Result{}, r.Err)
			return
		}
		qr, _ := r.Value.(*queueCmdResult)
		if qr == nil {
			done(queue.Result{}, base.Errorf(base.CodeInternal, "broker: queue command gave %T", r.Value))
			return
		}
		done(qr.res, nil)
	})
}

// propose is proposeAsync waiting for the outcome.
func (ql *queueLeader) propose(ctx context.Context, cmd queue.Command) (queue.Result, error) {
	ch := make(chan struct {
		r   queue.Result
		err error
	}, 1) // size one: the engine's callback never blocks
	ql.proposeAsync(cmd, func(r queue.Result, err error) {
		ch <- struct {
			r   queue.Result
			err error
		}{r, err}
	})
	select {
	case out := <-ch:
		if out.err != nil {
			return queue.Result{}, out.err
		}
		return out.r, out.r.Err
	case <-ctx.Done():
		return queue.Result{}, base.Errorf(base.CodeTimeout, "broker: outcome unknown: %w", ctx.Err())
	}
}

// configure proposes the controller's effective configuration when the
// queue runs another one (a policy or argument changed, or a previous
// leader did not get to it). MaxPriority never changes once created.
func (ql *queueLeader) configure(info controller.QueueInfo) {
	ql.infoMu.Lock()
	ql.info = info
	ql.infoMu.Unlock()
	want := info.Config.Queue
	var cur queue.Config
	deleted := false
	ql.fsm.read(func(q *queue.Queue) { cur, deleted = q.Config(), q.Deleted() })
	want.MaxPriority = cur.MaxPriority
	if deleted || queueConfigEqual(cur, want) {
		return
	}
	ql.proposeAsync(&queue.Configure{Now: ql.b.nowMs(), Config: want}, nil)
}

func (ql *queueLeader) orderingByKey() bool {
	ql.infoMu.Lock()
	defer ql.infoMu.Unlock()
	return ql.info.Config.OrderingByKey
}

// submitBatch appends one batch of the accumulator to the queue: the
// data batch, built straight into the buffer the engine proposes from,
// is the entry (queueFSM.Apply takes it as KindBatch). The engine orders
// a group's proposals as submitted and answers by callback, with no
// goroutine per batch.
func (ql *queueLeader) submitBatch(items []*pubItem, done func([]queue.Outcome, error)) {
	ql.b.proposeItems(ql.g, items, ql.orderingByKey(), true, func(r replication.Result) {
		if r.Err != nil {
			done(nil, r.Err)
			return
		}
		er, _ := r.Value.(*enqueueResult)
		switch {
		case er == nil:
			done(nil, base.Errorf(base.CodeInternal, "broker: data batch gave %T", r.Value))
		case er.err != nil:
			done(nil, er.err)
		default:
			done(er.outcomes, nil)
		}
	})
}

// checkAutoDelete deletes an auto-delete queue whose last consumer left
// (RabbitMQ: a queue that never had a consumer stays).
func (ql *queueLeader) checkAutoDelete() {
	ql.infoMu.Lock()
	auto := ql.info.AutoDelete
	ql.infoMu.Unlock()
	if !auto || !ql.hadConsumer {
		return
	}
	consumers := 0
	ql.fsm.read(func(q *queue.Queue) { consumers = q.Stats().Consumers })
	if consumers == 0 {
		ql.deleteSelf(controller.DeleteAutoDelete)
	}
}

// deleteSelf asks the controller to delete this queue (this incarnation
// of it: a queue declared again under the name is left alone).
func (ql *queueLeader) deleteSelf(reason controller.DeleteReason) {
	cmd := &controller.DeleteQueue{Now: ql.b.nowMs(), Tenant: ql.fsm.tenant, Name: ql.fsm.name,
		Group: controller.GroupID(ql.g), Reason: reason}
	ql.wg.Add(1)
	go func() {
		defer ql.wg.Done()
		res, err := ql.b.proposeController(ql.ctx, cmd)
		if err == nil {
			err = res.Err
		}
		if err != nil && ql.ctx.Err() == nil {
			ql.b.log.Warn("deleting a queue failed", "queue", ql.fsm.name, "reason", reason.String(), "err", err)
		}
	}()
}

// --- settlements --------------------------------------------------------

// markDirty schedules s's settlements for the next dispatch.
func (ql *queueLeader) markDirty(s *Subscription) {
	ql.subMu.Lock()
	ql.dirty = append(ql.dirty, s)
	ql.subMu.Unlock()
	ql.kick()
}

// flushSettlements proposes the settlements of the dirty subscriptions,
// one command per consumer and kind, at most BrokerSettleInFlightMax
// proposals at a time; the rest wait for the next pass.
func (ql *queueLeader) flushSettlements() {
	for {
		ql.subMu.Lock()
		if len(ql.dirty) == 0 || ql.settling >= base.BrokerSettleInFlightMax {
			ql.subMu.Unlock()
			return
		}
		s := ql.dirty[0]
		ql.dirty = ql.dirty[1:]
		ql.subMu.Unlock()
		for _, cmd := range s.takeSettlements() {
			ql.subMu.Lock()
			ql.settling++
			ql.subMu.Unlock()
			ql.proposeSettle(cmd, true)
		}
	}
}

// proposeSettle proposes one settlement. A coalesced settlement naming a
// delivery the queue no longer holds for the consumer (an ack timeout
// returned it meanwhile) fails as a whole: its ids are then proposed one
// by one, so that the others still settle.
func (ql *queueLeader) proposeSettle(cmd queue.Command, count bool) {
	ql.proposeAsync(cmd, func(r queue.Result, err error) {
		if count {
			ql.subMu.Lock()
			ql.settling--
			ql.subMu.Unlock()
			ql.kick()
		}
		if err == nil && base.CodeOf(r.Err) == base.CodePreconditionFailed {
			for _, single := range splitSettlement(cmd) {
				ql.proposeSettle(single, false)
			}
		}
	})
}

func splitSettlement(cmd queue.Command) []queue.Command {
	var out []queue.Command
	switch c := cmd.(type) {
	case *queue.Settle:
		if len(c.DeliveryIDs) > 1 {
			for _, id := range c.DeliveryIDs {
				out = append(out, &queue.Settle{Now: c.Now, Consumer: c.Consumer, DeliveryIDs: []uint64{id}})
			}
		}
	case *queue.Return:
		if len(c.DeliveryIDs) > 1 {
			for _, id := range c.DeliveryIDs {
				out = append(out, &queue.Return{Now: c.Now, Consumer: c.Consumer, DeliveryIDs: []uint64{id},
					Requeue: c.Requeue, Reason: c.Reason})
			}
		}
	}
	return out
}

package broker

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/controller"
	"github.com/ferry-mq/ferry/internal/queue"
	"github.com/ferry-mq/ferry/internal/routing"
	"github.com/ferry-mq/ferry/internal/stream"
)

// PublishOptions modify a publish.
type PublishOptions struct {
	// Mandatory reports unroutable messages (PublishResult.Unroutable)
	// instead of dropping them silently.
	Mandatory bool
}

// PublishResult is the outcome of one published message. Every routed
// copy is durable (fsynced on a quorum) before the result is given; a
// message routed nowhere is confirmed at once.
type PublishResult struct {
	Unroutable bool  // mandatory and routed nowhere (AMQP basic.return 312 NO_ROUTE)
	Rejected   bool  // a destination refused it (reject-publish overflow): AMQP nack
	Duplicate  bool  // deduplicated by a destination; confirmed, not enqueued there again
	Err        error // this message failed (its copies that were routed elsewhere may be stored)
}

// Publish routes and appends a batch of messages published to one
// exchange ("" is the default exchange) and returns once each is durable
// or failed. Concurrent publishers to a queue are coalesced into shared
// log batches, so callers should pipeline (many calls in flight, or
// PublishAsync). Flow control: while a memory or disk watermark is
// crossed, Publish waits (ctx bounds it). The returned error is about the
// call as a whole (exchange not found: CodeNotFound; access refused;
// internal exchange); per-message failures are in the results.
func (c *Conn) Publish(ctx context.Context, exchange string, msgs []Message, opts PublishOptions) ([]PublishResult, error) {
	if err := c.b.flow.wait(ctx); err != nil {
		return nil, err
	}
	type out struct {
		res []PublishResult
		err error
	}
	ch := make(chan out, 1) // size one: done never blocks
	c.publish(ctx, exchange, msgs, opts, func(res []PublishResult, err error) { ch <- out{res, err} })
	select {
	case o := <-ch:
		return o.res, o.err
	case <-ctx.Done():
		return nil, base.Errorf(base.CodeTimeout, "broker: publish outcome unknown: %w", ctx.Err())
	}
}

// PublishAsync is the pipelined form of Publish: done is called exactly
// once, from a broker goroutine (or the caller's, for failures found at
// once), when every message of the call is settled. The caller must not
// modify msgs until then; once done is called it may reuse msgs and their
// bytes (the AMQP front end recycles them): the broker keeps no reference
// to them past done (DESIGN.md "Publish buffers"). It may block the
// caller while flow control holds publishers or a destination's pending
// bound is reached, which is the backpressure a front end passes on to
// its client.
func (c *Conn) PublishAsync(exchange string, msgs []Message, opts PublishOptions, done func([]PublishResult, error)) {
	if err := c.b.flow.wait(c.b.ctx()); err != nil {
		done(nil, err)
		return
	}
	c.publish(c.b.ctx(), exchange, msgs, opts, done)
}

// publishCall tracks the messages of one call until all are settled. It
// owns the call's items: an item's slot is its message's index.
type publishCall struct {
	results []PublishResult
	left    atomic.Int64
	mu      sync.Mutex // guards results once the copies are in flight
	done    func([]PublishResult, error)
}

// itemDone records the outcome of a copy of message slot.
func (pc *publishCall) itemDone(slot int, o queue.Outcome, err error) {
	// A plain enqueue records nothing: only the count goes down. The
	// writes below happen before their own decrement, which the call's
	// last settlement observes before it reads results.
	if err != nil || o == queue.OutcomeRejected || o == queue.OutcomeDeadLettered || o == queue.OutcomeDuplicate {
		pc.mu.Lock()
		r := &pc.results[slot]
		switch {
		case err != nil:
			if r.Err == nil {
				r.Err = err
			}
		case o == queue.OutcomeDuplicate:
			r.Duplicate = true
		default:
			r.Rejected = true
		}
		pc.mu.Unlock()
	}
	pc.finishOne()
}

func (pc *publishCall) finishOne() {
	if pc.left.Add(-1) == 0 {
		pc.done(pc.results, nil)
	}
}

var routePool = sync.Pool{New: func() any { return new(routing.Result) }}

func (c *Conn) publish(ctx context.Context, exchange string, msgs []Message, opts PublishOptions, done func([]PublishResult, error)) {
	if err := c.usable(); err != nil {
		done(nil, err)
		return
	}
	if err := c.Authorize(ActionWrite, EntityExchange, exchange); err != nil {
		done(nil, err)
		return
	}
	pc := &publishCall{results: make([]PublishResult, len(msgs)), done: done}
	pc.left.Store(1) // held until every copy is dispatched
	run := publishRun{c: c, pc: pc, recs: make([]encodedRecord, len(msgs)), enc: recordEncoder{expect: len(msgs)}}
	res := routePool.Get().(*routing.Result)
	defer routePool.Put(res)
	var fields []routing.Field
	var keys []string
	now := c.b.clock.Now()
	routedKey, reuse := "", false // res and run.dests are the route of routedKey, without header fields
	for i := range msgs {
		m := msgs[i] // a copy: defaults are filled in without touching the caller's
		m.Exchange = exchange
		if err := publishDefaults(&m); err != nil {
			pc.results[i].Err = err
			continue
		}
		keys = senderKeys(keys, &m)
		fields = routingFields(fields[:0], m.Headers)
		// A batch's messages mostly share their routing key: the route
		// and its destinations are computed again only when the key or
		// the headers could change them.
		if !reuse || len(fields) > 0 || m.RoutingKey != routedKey {
			if err := c.b.route(c.p.Tenant, res, exchange, keys, fields); err != nil {
				// The same for every message (no such exchange, internal):
				// nothing has been sent yet when the first one fails.
				if i == 0 || len(run.sends) == 0 {
					done(nil, err)
					return
				}
				pc.results[i].Err, reuse = err, false
				continue
			}
			run.resolve(res.Destinations)
			routedKey, reuse = m.RoutingKey, len(fields) == 0
		}
		c.tracePublish(&m, res)
		if len(res.Destinations) == 0 {
			pc.results[i].Unroutable = opts.Mandatory
			continue
		}
		var notBefore int64
		if m.Delay > 0 {
			notBefore = now.Add(m.Delay).UnixMilli()
		}
		rec := &run.recs[i]
		var err error
		if *rec, err = run.enc.encode(&m, notBefore); err != nil {
			pc.results[i].Err = err
			continue
		}
		run.addCopies(i, rec, &m)
	}
	for _, gs := range run.sends {
		c.send(ctx, gs.group, gs.items)
	}
	pc.finishOne()
}

// publishRun is the scratch of one publish call: the records, items and
// per-group sends of its messages, allocated per call or per chunk
// rather than per message, and its destinations resolved once per route.
// The call's records and items live until its last copy is settled.
type publishRun struct {
	c     *Conn
	pc    *publishCall
	enc   recordEncoder
	recs  []encodedRecord // recs[i] is message i's
	items []pubItem       // the current chunk: never appended past its capacity, so pointers into it stay valid
	sends []*groupSend
	index map[GroupID]*groupSend          // the sends by group, once there are several
	memo  map[routing.Destination]destRef // lookups made by this call
	dests []destRef                       // the current route's destinations

	// The first send and destinations live here: a call of one message
	// to one queue allocates no slice for them.
	firstSend groupSend
	sendBuf   [1]*groupSend
	destBuf   [1]destRef
}

// destRef is where a routed copy goes: a queue's group, or the
// partitions of a stream; ok is false for a destination deleted while
// routing (skipped, as if unbound).
type destRef struct {
	name       string
	ok         bool
	group      GroupID
	partitions []controller.Placement // a stream's; nil for a queue
}

// resolve looks up the destinations of a route. The second route of a
// call starts remembering lookups, so a call whose keys alternate looks
// each destination up about once; a call of one route pays no map.
func (r *publishRun) resolve(ds []routing.Destination) {
	if r.dests == nil {
		r.dests = r.destBuf[:0]
	} else if r.memo == nil {
		r.memo = map[routing.Destination]destRef{}
	}
	r.dests = r.dests[:0]
	for _, d := range ds {
		ref, found := r.memo[d]
		if !found {
			ref = destRef{name: d.Name}
			if ent, err := r.c.b.lookupEntity(r.c.p.Tenant, d.Kind, d.Name); err == nil {
				ref.ok, ref.group = true, ent.group
				if ent.isStream {
					ref.partitions = ent.stream.Partitions
				}
			}
			if r.memo != nil {
				r.memo[d] = ref
			}
		}
		r.dests = append(r.dests, ref)
	}
}

// addCopies adds an item per destination of the current route for
// message i, whose record is rec.
func (r *publishRun) addCopies(i int, rec *encodedRecord, m *Message) {
	for _, d := range r.dests {
		if !d.ok {
			continue
		}
		g := d.group
		if d.partitions != nil {
			p, err := r.c.partitioner().Partition(-1, m.Key, int32(len(d.partitions)))
			if err != nil {
				continue
			}
			g = GroupID(d.partitions[p].Group)
		}
		if len(r.items) == cap(r.items) {
			r.items = make([]pubItem, 0, len(r.recs))
		}
		r.items = append(r.items, pubItem{rec: rec, owner: r.pc, slot: i})
		r.pc.left.Add(1)
		gs := r.send(g, len(r.recs)-i)
		gs.items = append(gs.items, &r.items[len(r.items)-1])
	}
}

// sendScanMax is how many sends a publish call looks through one by one
// for a group's; a call with more (a fan-out) indexes them in a map. Not
// a bound: a scan of a few sends is cheaper than hashing, and most calls
// have one.
const sendScanMax = 8

// send returns the call's send to group g. The call's first send gets
// room for the items of the left messages (most calls go to one group);
// later ones grow as they fill.
func (r *publishRun) send(g GroupID, left int) *groupSend {
	if n := len(r.sends); n > 0 && r.sends[n-1].group == g {
		return r.sends[n-1]
	}
	if r.index != nil {
		if gs := r.index[g]; gs != nil {
			return gs
		}
	} else {
		for _, gs := range r.sends {
			if gs.group == g {
				return gs
			}
		}
	}
	var gs *groupSend
	if len(r.sends) == 0 {
		gs = &r.firstSend
		*gs = groupSend{group: g, items: make([]*pubItem, 0, left)}
		r.sends = r.sendBuf[:0]
	} else {
		gs = &groupSend{group: g}
	}
	r.sends = append(r.sends, gs)
	if r.index == nil && len(r.sends) > sendScanMax { // a fan-out: stop scanning
		r.index = make(map[GroupID]*groupSend, len(r.sends))
		for _, s := range r.sends {
			r.index[s.group] = s
		}
	} else if r.index != nil {
		r.index[g] = gs
	}
	return gs
}

// tracePublish records a message's publication and routes when its
// exchange or one of its destinations is traced.
func (c *Conn) tracePublish(m *Message, res *routing.Result) {
	t := c.b.trace
	if m.MessageID == "" || t.active.Load() == 0 {
		return
	}
	names := []string{m.Exchange}
	for _, d := range res.Destinations {
		names = append(names, d.Name)
	}
	if !t.traced(c.p.Tenant, names...) {
		return
	}
	t.add(c.p.Tenant, m.MessageID, TraceEvent{Kind: TracePublished, Exchange: m.Exchange, RoutingKey: m.RoutingKey})
	for _, d := range res.Destinations {
		t.add(c.p.Tenant, m.MessageID, TraceEvent{Kind: TraceRouted, Exchange: m.Exchange, Queue: d.Name})
	}
}

// groupSend is the items of one publish call for one group.
type groupSend struct {
	group GroupID
	items []*pubItem
}

// senderKeys returns m's routing keys into keys: its routing key, then
// the strings of its CC and BCC headers (RabbitMQ's sender-selected
// distribution; a CC or BCC that is not an array is ignored). BCC is
// removed from m, since consumers must not see it; the raw AMQP property
// list, which still holds it, goes too, so that deliveries are built from
// the typed headers.
func senderKeys(keys []string, m *Message) []string {
	keys = append(keys[:0], m.RoutingKey)
	bcc := false
	for _, h := range m.Headers {
		if h.Key != "CC" && h.Key != "BCC" {
			continue
		}
		for _, v := range h.Value.Array() {
			if v.Kind() == KindString || v.Kind() == KindBytes {
				keys = append(keys, v.Text())
			}
		}
		bcc = bcc || h.Key == "BCC"
	}
	if bcc {
		m.Headers = slices.Clone(m.Headers) // the caller's are not ours to change
		m.deleteHeader("BCC")
		m.RawAMQPProperties = nil
	}
	return keys
}

// route computes a publish's destinations under the controller's lock.
func (b *Broker) route(tenant string, res *routing.Result, exchange string, keys []string, headers []routing.Field) error {
	var err error
	b.ctrl.read(func(c *controller.Controller) { err = c.RouteKeys(tenant, res, exchange, keys, headers) })
	if err != nil && base.CodeOf(err) == base.CodeNotFound {
		return base.Errorf(base.CodeNotFound, "no exchange '%s' in vhost '%s'", exchange, tenant)
	}
	return err
}

// partitioner returns the connection's spread of unkeyed records over
// stream partitions: round-robin, so that one connection's messages use
// every partition.
func (c *Conn) partitioner() *lockedPartitioner {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.part == nil {
		c.part = &lockedPartitioner{p: stream.NewPartitioner(stream.SpreadRoundRobin, uint32(c.b.reqSeq.Add(1)))}
	}
	return c.part
}

type lockedPartitioner struct {
	mu sync.Mutex
	p  *stream.Partitioner // guarded by mu
}

func (lp *lockedPartitioner) Partition(explicit int32, key []byte, n int32) (int32, error) {
	lp.mu.Lock()
	defer lp.mu.Unlock()
	return lp.p.Partition(explicit, key, n)
}

// localAccumulator is the accumulator of this node's leader runtime of
// queue or stream partition group g, or nil when none runs here.
func (b *Broker) localAccumulator(g GroupID) *accumulator {
	if ql := b.queueLeaderOf(g); ql != nil {
		return ql.acc
	}
	if pl := b.partitionLeaderOf(g); pl != nil {
		return pl.acc
	}
	return nil
}

// waitQueueLeader waits for this node's leader runtime of queue group g
// to start; nil when the node does not lead g (or g is not a queue).
func (b *Broker) waitQueueLeader(ctx context.Context, g GroupID) *queueLeader {
	var out *queueLeader
	b.waitRuntime(ctx, g, kindQueue, func() bool { out = b.queueLeaderOf(g); return out != nil })
	return out
}

// waitPartitionLeader is waitQueueLeader for stream partitions.
func (b *Broker) waitPartitionLeader(ctx context.Context, g GroupID) *partitionLeader {
	var out *partitionLeader
	b.waitRuntime(ctx, g, kindPartition, func() bool { out = b.partitionLeaderOf(g); return out != nil })
	return out
}

func (b *Broker) waitRuntime(ctx context.Context, g GroupID, kind groupKind, found func() bool) {
	for {
		ch := b.readyChanged()
		if found() {
			return
		}
		lg := b.group(g)
		if lg == nil || lg.kind != kind {
			return
		}
		if st, err := b.engine.Status(g); err != nil || !st.IsLeader {
			return
		}
		kick(b.leaderKick)
		select {
		case <-ch:
		case <-ctx.Done():
			return
		case <-b.stop:
			return
		}
	}
}

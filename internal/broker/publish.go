package broker

import (
	"context"
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
// modify msgs until then. It may block the caller while flow control
// holds publishers or a destination's pending bound is reached, which is
// the backpressure a front end passes on to its client.
func (c *Conn) PublishAsync(exchange string, msgs []Message, opts PublishOptions, done func([]PublishResult, error)) {
	if err := c.b.flow.wait(c.b.ctx()); err != nil {
		done(nil, err)
		return
	}
	c.publish(c.b.ctx(), exchange, msgs, opts, done)
}

// publishCall tracks the messages of one call until all are settled.
type publishCall struct {
	results []PublishResult
	left    atomic.Int64
	mu      sync.Mutex // guards results once the copies are in flight
	done    func([]PublishResult, error)
}

func (pc *publishCall) settled(i int, o queue.Outcome, err error) {
	pc.mu.Lock()
	r := &pc.results[i]
	switch {
	case err != nil:
		if r.Err == nil {
			r.Err = err
		}
	case o == queue.OutcomeRejected || o == queue.OutcomeDeadLettered:
		r.Rejected = true
	case o == queue.OutcomeDuplicate:
		r.Duplicate = true
	}
	pc.mu.Unlock()
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
	sends := map[GroupID]*groupSend{}
	var enc recordEncoder
	res := routePool.Get().(*routing.Result)
	defer routePool.Put(res)
	var fields []routing.Field
	now := c.b.clock.Now()
	for i := range msgs {
		m := msgs[i] // a copy: defaults are filled in without touching the caller's
		m.Exchange = exchange
		if err := publishDefaults(&m); err != nil {
			pc.results[i].Err = err
			continue
		}
		fields = routingFields(fields[:0], m.Headers)
		if err := c.b.route(c.p.Tenant, res, exchange, m.RoutingKey, fields); err != nil {
			// The same for every message (no such exchange, internal):
			// nothing has been sent yet when the first one fails.
			if i == 0 || len(sends) == 0 {
				done(nil, err)
				return
			}
			pc.results[i].Err = err
			continue
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
		rec, err := enc.encode(&m, notBefore)
		if err != nil {
			pc.results[i].Err = err
			continue
		}
		for _, d := range res.Destinations {
			g, err := c.destinationGroup(d, &m)
			if err != nil {
				continue // deleted while routing: as if unbound
			}
			gs := sends[g]
			if gs == nil {
				gs = &groupSend{group: g, what: d.Name}
				sends[g] = gs
			}
			idx := i
			pc.left.Add(1)
			gs.items = append(gs.items, &pubItem{rec: &rec, done: func(o queue.Outcome, err error) { pc.settled(idx, o, err) }})
		}
	}
	for _, gs := range sends {
		c.b.sendItems(ctx, gs.group, gs.what, gs.items, 0)
	}
	pc.finishOne()
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
	what  string
	items []*pubItem
}

// route computes a publish's destinations under the controller's lock.
func (b *Broker) route(tenant string, res *routing.Result, exchange, key string, headers []routing.Field) error {
	var err error
	b.ctrl.read(func(c *controller.Controller) { err = c.Route(tenant, res, exchange, key, headers) })
	if err != nil && base.CodeOf(err) == base.CodeNotFound {
		return base.Errorf(base.CodeNotFound, "no exchange '%s' in vhost '%s'", exchange, tenant)
	}
	return err
}

// destinationGroup returns the group a routed copy goes to: the queue's,
// or the partition of a stream chosen by key (murmur2) or the
// connection's spread.
func (c *Conn) destinationGroup(d routing.Destination, m *Message) (GroupID, error) {
	ent, err := c.b.lookupEntity(c.p.Tenant, d.Kind, d.Name)
	if err != nil {
		return 0, err
	}
	if !ent.isStream {
		return ent.group, nil
	}
	n := int32(len(ent.stream.Partitions))
	p, err := c.partitioner().Partition(-1, m.Key, n)
	if err != nil {
		return 0, err
	}
	return GroupID(ent.stream.Partitions[p].Group), nil
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

// sendItems appends items to group g: into the local leader's
// accumulator, or through the leader's node. Copies that fail because the
// leader moved or its node went away are sent again to the new leader, up
// to BrokerForwardRetriesMax times.
func (b *Broker) sendItems(ctx context.Context, g GroupID, what string, items []*pubItem, attempt int) {
	if acc := b.localAccumulator(g); acc != nil {
		acc.add(ctx, b.retrying(ctx, g, what, items, attempt, b.node))
		return
	}
	lead, err := b.leaderOf(ctx, g)
	if err == nil && lead == b.node {
		// The runtime awaitLeader saw has stopped since: leadership moved.
		if acc := b.localAccumulator(g); acc != nil {
			acc.add(ctx, b.retrying(ctx, g, what, items, attempt, b.node))
			return
		}
		err = base.Errorf(base.CodeNotLeader, "broker: node %d lost group %d: %w", b.node, g, leaderErr(g, 0))
	}
	if err != nil {
		failAll(items, err)
		return
	}
	b.fwd.enqueue(ctx, lead, g, b.retrying(ctx, g, what, items, attempt, lead))
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

// retrying wraps items so that a failure on node sent (the leader moved,
// the node went away) sends them again to the next leader.
func (b *Broker) retrying(ctx context.Context, g GroupID, what string, items []*pubItem, attempt int, sent NodeID) []*pubItem {
	if attempt >= base.BrokerForwardRetriesMax {
		return items
	}
	out := make([]*pubItem, len(items))
	var mu sync.Mutex
	var again []*pubItem
	var lastErr error
	left := len(items)
	for i, it := range items {
		out[i] = &pubItem{rec: it.rec, done: func(o queue.Outcome, err error) {
			mu.Lock()
			if err != nil && retriableElsewhere(err) {
				again = append(again, it)
				lastErr = err
			} else {
				it.done(o, err)
			}
			left--
			retry := left == 0 && len(again) > 0
			batch, cause := again, lastErr
			mu.Unlock()
			if retry {
				ok := b.spawn(func() {
					if _, err := b.nextLeader(ctx, g, sent, cause); err != nil {
						failAll(batch, err)
						return
					}
					b.sendItems(ctx, g, what, batch, attempt+1)
				})
				if !ok {
					failAll(batch, base.Errorf(base.CodeStopped, "broker: node %d is stopping", b.node))
				}
			}
		}}
	}
	return out
}

package broker

import (
	"context"
	"slices"
	"strconv"
	"sync"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/queue"
)

// SubscribeOptions configure a consumer.
type SubscribeOptions struct {
	Queue         string
	Tag           string // consumer tag (AMQP), unique per connection
	PrefetchCount uint32 // 0 = unlimited (auto-ack consumers: BrokerAutoAckCredit)
	PrefetchBytes uint64
	Priority      int32
	Exclusive     bool
	NoAck         bool // auto-ack: deliveries are settled when handed over
	// StreamOffset is where a consumer of a stream starts (x-stream-offset);
	// nil means next (only new messages).
	StreamOffset *StreamStart
	// AckTimeout, when set, is told which delivery the queue returned
	// because it was not acknowledged in time (RabbitMQ closes the channel
	// then). Called from the delivering goroutine.
	AckTimeout func(deliveryID uint64)
}

// Delivery is one message handed to a consumer.
type Delivery struct {
	Queue         string
	ConsumerTag   string
	DeliveryID    uint64 // per subscription, increasing; the front end maps it to its own delivery tag
	Redelivered   bool
	DeliveryCount uint32 // failed attempts before this one
	// Message's byte slices (Body, Key, RawAMQPProperties) are shared with
	// the broker's cache and must not be modified; they may be kept.
	Message Message
	// StreamOffset and Partition locate a stream consumer's message.
	StreamOffset int64
	Partition    int32
	// MessageCount is, for Get, the ready messages left in the queue.
	MessageCount uint32
}

// Subscription is one consumer of a queue (or of a stream, see
// stream_consume.go). Its methods are safe for concurrent use.
type Subscription struct {
	c         *Conn
	ql        *queueLeader // nil for stream subscriptions
	id        queue.ConsumerID
	opts      SubscribeOptions
	deliverFn func(Delivery)
	cancelFn  func(error)
	stream    *streamSub
	remote    *remoteSub // set when the queue's leader is another node (forward_consume.go)

	mu          sync.Mutex
	outstanding []uint64          // guarded by mu: unacknowledged delivery ids, ascending
	ops         []settleOp        // guarded by mu: settlements not proposed yet, in the client's order
	ended       bool              // guarded by mu: the broker cancelled it
	traceIDs    map[uint64]string // guarded by mu: message ids of outstanding deliveries, when the queue is traced
	cancelled   bool              // guarded by mu: Cancel was called
	cancelOnce  sync.Once         // the cancelled callback runs at most once
}

type settleKind uint8

const (
	settleAck settleKind = iota + 1
	settleRequeue
	settleReject
	settleRecover
)

// settleOp is a run of settlements of one kind: every outstanding id up
// to upTo, and ids (all above upTo).
type settleOp struct {
	kind   settleKind
	reason string
	upTo   uint64
	ids    []uint64
}

// Subscribe starts a consumer. deliver is called from a broker goroutine,
// in delivery order, never concurrently for one subscription; it must not
// block for long (front ends enqueue into their connection writer, whose
// buffer the prefetch bounds). cancelled is called at most once if the
// broker cancels the consumer (queue deleted, the queue's leader moved,
// node shutdown), as AMQP's basic.cancel from the server.
//
// When another node leads the queue, the consumer lives there and this
// node forwards its deliveries and settlements (forward_consume.go); its
// prefetch is then at most BrokerForwardCreditMax, and an auto-ack
// consumer's deliveries are acknowledged once handed to deliver.
// Subscribe waits for the queue's leader as every call does (DESIGN.md
// "Waiting for a leader") and follows it when it moves meanwhile.
func (c *Conn) Subscribe(ctx context.Context, o SubscribeOptions, deliver func(Delivery), cancelled func(error)) (*Subscription, error) {
	if err := c.usable(); err != nil {
		return nil, err
	}
	if deliver == nil {
		return nil, base.Errorf(base.CodeInvalidArgument, "broker: Subscribe needs a deliver function")
	}
	if err := c.Authorize(ActionRead, EntityQueue, o.Queue); err != nil {
		return nil, err
	}
	ent, err := c.b.lookupQueue(c.p.Tenant, o.Queue)
	if err != nil {
		return nil, err
	}
	if ent.isStream {
		return c.subscribeStream(ctx, o, ent, deliver, cancelled)
	}
	if ent.queue.Exclusive && ent.queue.Owner != c.owner {
		return nil, lockedErr(o.Queue, c.p.Tenant)
	}
	if o.Tag == "" {
		o.Tag = "amq.ctag-" + strconv.FormatUint(c.b.reqSeq.Add(1), 36)
	}
	if len(o.Tag) > base.QueueFieldBytesMax-32 {
		return nil, base.Errorf(base.CodeInvalidArgument, "broker: consumer tag of %d bytes is too long", len(o.Tag))
	}
	g := ent.group
	lead, err := c.b.leaderOf(ctx, g)
	for attempt := 0; err == nil; attempt++ {
		var s *Subscription
		if lead == c.b.node {
			s, err = c.subscribeLocal(ctx, g, o, deliver, cancelled)
		} else {
			s, err = c.subscribeRemote(ctx, lead, g, o, deliver, cancelled)
		}
		if err == nil || !retriableElsewhere(err) || attempt >= base.BrokerForwardRetriesMax || ctx.Err() != nil {
			return s, err
		}
		avoid := lead
		if lead == c.b.node {
			avoid = 0 // this node may lead again after the election
		}
		lead, err = c.b.nextLeader(ctx, g, avoid, err)
	}
	return nil, err
}

// subscribeLocal starts a consumer on this node's leader runtime of g.
func (c *Conn) subscribeLocal(ctx context.Context, g GroupID, o SubscribeOptions, deliver func(Delivery), cancelled func(error)) (*Subscription, error) {
	ql := c.b.queueLeaderOf(g)
	if ql == nil {
		return nil, base.Errorf(base.CodeNotLeader, "broker: node %d no longer leads queue '%s': %w", c.b.node, o.Queue, leaderErr(g, 0))
	}
	s := &Subscription{c: c, ql: ql, opts: o, deliverFn: deliver, cancelFn: cancelled,
		id: queue.ConsumerID{Owner: c.owner, Name: o.Tag + "#" + strconv.FormatUint(c.subSeq.Add(1), 10)}}
	if err := c.addSub(s); err != nil {
		return nil, err
	}
	c.touch(g)
	prefetch := o.PrefetchCount
	if o.NoAck && (prefetch == 0 || prefetch > base.BrokerAutoAckCredit) {
		prefetch = base.BrokerAutoAckCredit
	}
	if err := c.subscribeOn(ctx, ql, s, prefetch); err != nil {
		return nil, err
	}
	return s, nil
}

// subscribeOn registers s (added to c already) with ql and proposes its
// Subscribe; on failure s is removed from both.
func (c *Conn) subscribeOn(ctx context.Context, ql *queueLeader, s *Subscription, prefetch uint32) error {
	if err := ql.addSub(ctx, s); err != nil {
		c.removeSub(s)
		return err
	}
	o := s.opts
	_, err := ql.propose(ctx, &queue.Subscribe{Now: c.b.nowMs(), Consumer: s.id, PrefetchCount: prefetch,
		PrefetchBytes: o.PrefetchBytes, Priority: o.Priority, Exclusive: o.Exclusive, Tag: o.Tag})
	if err != nil {
		ql.removeSub(s)
		c.removeSub(s)
		if base.CodeOf(err) == base.CodeResourceLocked {
			return base.Errorf(base.CodeResourceLocked, "cannot obtain exclusive access to locked queue '%s' in vhost '%s'", o.Queue, c.p.Tenant)
		}
		return err
	}
	return nil
}

// Tag returns the consumer tag.
func (s *Subscription) Tag() string { return s.opts.Tag }

// handle records a delivery and passes it on (called by the dispatcher).
func (s *Subscription) handle(d Delivery) {
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return
	}
	if s.opts.NoAck {
		s.mergeAck(d.DeliveryID, true)
	} else {
		s.outstanding = append(s.outstanding, d.DeliveryID)
		if d.Message.MessageID != "" && s.c.b.trace.traced(s.c.p.Tenant, d.Queue) {
			if s.traceIDs == nil {
				s.traceIDs = map[uint64]string{}
			}
			s.traceIDs[d.DeliveryID] = d.Message.MessageID
		}
	}
	s.mu.Unlock()
	if s.opts.NoAck {
		s.ql.markDirty(s)
	}
	s.deliverFn(d)
}

// Cancel stops deliveries (AMQP basic.cancel). Deliveries not yet
// acknowledged stay with the subscription and may still be settled.
func (s *Subscription) Cancel(ctx context.Context) error {
	if s.stream != nil {
		s.stream.close()
		s.c.removeSub(s)
		return nil
	}
	s.mu.Lock()
	if s.cancelled || s.ended {
		s.mu.Unlock()
		return nil
	}
	s.cancelled = true
	s.mu.Unlock()
	s.c.releaseTag(s)
	var err error
	if s.remote != nil {
		err = s.remote.call(ctx, opSubCancel, nil)
	} else {
		_, err = s.ql.propose(ctx, &queue.Cancel{Now: s.c.b.nowMs(), Consumer: s.id})
	}
	if base.CodeOf(err) == base.CodeNotFound {
		return nil // the queue cancelled it first
	}
	return err
}

// end cancels the subscription from the broker's side.
func (s *Subscription) end(reason error) {
	s.mu.Lock()
	already := s.ended
	s.ended = true
	cancelledByClient := s.cancelled
	s.mu.Unlock()
	if already {
		return
	}
	if s.remote != nil {
		s.remote.finish()
	}
	s.c.releaseTag(s)
	if !cancelledByClient && s.cancelFn != nil {
		s.cancelOnce.Do(func() { s.cancelFn(reason) })
	}
}

func (s *Subscription) activated() {}

// ackTimedOut forgets a delivery the queue returned after its ack timeout.
func (s *Subscription) ackTimedOut(id uint64) {
	s.mu.Lock()
	i, ok := slices.BinarySearch(s.outstanding, id)
	if ok {
		s.outstanding = slices.Delete(s.outstanding, i, i+1)
	}
	s.mu.Unlock()
	if ok && s.opts.AckTimeout != nil {
		s.opts.AckTimeout(id)
	}
}

// Ack acknowledges delivery id, or with multiple every outstanding
// delivery up to id (0: all). An id that is not outstanding is
// CodePreconditionFailed ("unknown delivery tag", AMQP 406). Settlement
// is asynchronous: the broker coalesces it with others into one command.
func (s *Subscription) Ack(id uint64, multiple bool) error {
	return s.settle(settleAck, "", id, multiple)
}

// Nack returns deliveries (AMQP basic.nack / basic.reject): with requeue
// they go back to the queue as failed attempts (its retry policy and
// delivery limit apply; reason picks the retry schedule), without they are
// dead-lettered (reason rejected) or dropped.
func (s *Subscription) Nack(id uint64, multiple, requeue bool, reason string) error {
	kind := settleReject
	if requeue {
		kind = settleRequeue
	}
	if len(reason) > base.QueueFieldBytesMax {
		return base.Errorf(base.CodeInvalidArgument, "broker: return reason over %d bytes", base.QueueFieldBytesMax)
	}
	return s.settle(kind, reason, id, multiple)
}

// Recover returns every outstanding delivery to the queue (AMQP
// basic.recover). requeue=false (redeliver to the same consumer) is
// treated as true: the queue may deliver them to any consumer.
func (s *Subscription) Recover(requeue bool) {
	if s.stream != nil {
		return
	}
	s.mu.Lock()
	s.outstanding = nil
	if s.remote != nil {
		s.mu.Unlock()
		s.remote.settle(settleRecover, "", 0, false)
		return
	}
	s.ops = append(s.ops, settleOp{kind: settleRecover})
	s.mu.Unlock()
	s.ql.markDirty(s)
}

func (s *Subscription) settle(kind settleKind, reason string, id uint64, multiple bool) error {
	if s.stream != nil {
		return s.stream.ack(id, multiple)
	}
	s.mu.Lock()
	if multiple {
		if id == 0 && len(s.outstanding) > 0 {
			id = s.outstanding[len(s.outstanding)-1]
		}
		n, _ := slices.BinarySearch(s.outstanding, id+1)
		if n == 0 {
			s.mu.Unlock()
			return unknownTag(id)
		}
		s.outstanding = s.outstanding[n:]
	} else {
		i, ok := slices.BinarySearch(s.outstanding, id)
		if !ok {
			s.mu.Unlock()
			return unknownTag(id)
		}
		// Acknowledging the oldest outstanding delivery may be sent as
		// "up to", which stays valid whatever happened to older ones.
		multiple = i == 0
		s.outstanding = slices.Delete(s.outstanding, i, i+1)
	}
	if s.remote == nil {
		if kind == settleAck {
			s.mergeAck(id, multiple)
		} else {
			s.mergeOp(kind, reason, id, multiple)
		}
	}
	traced := s.settledTraceLocked(id, multiple)
	s.mu.Unlock()
	// Traced before the settlement is sent, so that what it causes (a
	// dead-lettering) is recorded after it.
	for _, msgID := range traced {
		ev := TraceEvent{Kind: TraceAcked, Queue: s.opts.Queue, Consumer: s.opts.Tag}
		if kind != settleAck {
			ev = TraceEvent{Kind: TraceNacked, Queue: s.opts.Queue, Consumer: s.opts.Tag, Reason: reason, Requeued: kind == settleRequeue}
		}
		s.c.b.trace.add(s.c.p.Tenant, msgID, ev)
	}
	if s.remote != nil {
		s.remote.settle(kind, reason, id, multiple) // the leader's consumer coalesces it
	} else {
		s.ql.markDirty(s)
	}
	return nil
}

// settledTraceLocked returns (and forgets) the message ids of traced
// deliveries a settlement covers.
func (s *Subscription) settledTraceLocked(id uint64, multiple bool) []string {
	if len(s.traceIDs) == 0 {
		return nil
	}
	var out []string
	if !multiple {
		if m, ok := s.traceIDs[id]; ok {
			out = append(out, m)
			delete(s.traceIDs, id)
		}
		return out
	}
	ids := make([]uint64, 0, len(s.traceIDs))
	for d := range s.traceIDs {
		if d <= id {
			ids = append(ids, d)
		}
	}
	slices.Sort(ids)
	for _, d := range ids {
		out = append(out, s.traceIDs[d])
		delete(s.traceIDs, d)
	}
	return out
}

func unknownTag(id uint64) error {
	return base.Errorf(base.CodePreconditionFailed, "unknown delivery tag %d", id)
}

func (s *Subscription) mergeAck(id uint64, upTo bool) { s.mergeOp(settleAck, "", id, upTo) }

// mergeOp adds a settlement, merging it into the last op when that has
// the same kind and reason. s.mu is held.
func (s *Subscription) mergeOp(kind settleKind, reason string, id uint64, upTo bool) {
	n := len(s.ops)
	if n == 0 || s.ops[n-1].kind != kind || s.ops[n-1].reason != reason {
		s.ops = append(s.ops, settleOp{kind: kind, reason: reason})
		n++
	}
	op := &s.ops[n-1]
	if upTo {
		op.upTo = max(op.upTo, id)
		op.ids = slices.DeleteFunc(op.ids, func(x uint64) bool { return x <= op.upTo })
		return
	}
	if len(op.ids) >= base.QueueSettleIDsMax {
		s.ops = append(s.ops, settleOp{kind: kind, reason: reason})
		op = &s.ops[len(s.ops)-1]
	}
	op.ids = append(op.ids, id)
}

// takeSettlements turns the pending ops into queue commands, in order.
func (s *Subscription) takeSettlements() []queue.Command {
	s.mu.Lock()
	ops := s.ops
	s.ops = nil
	s.mu.Unlock()
	now := s.c.b.nowMs()
	var out []queue.Command
	for _, op := range ops {
		switch op.kind {
		case settleAck:
			if op.upTo > 0 {
				out = append(out, &queue.Settle{Now: now, Consumer: s.id, UpTo: op.upTo})
			}
			if len(op.ids) > 0 {
				out = append(out, &queue.Settle{Now: now, Consumer: s.id, DeliveryIDs: op.ids})
			}
		case settleRequeue, settleReject:
			rq := op.kind == settleRequeue
			if op.upTo > 0 {
				out = append(out, &queue.Return{Now: now, Consumer: s.id, UpTo: op.upTo, Requeue: rq, Reason: op.reason})
			}
			if len(op.ids) > 0 {
				out = append(out, &queue.Return{Now: now, Consumer: s.id, DeliveryIDs: op.ids, Requeue: rq, Reason: op.reason})
			}
		case settleRecover:
			out = append(out, &queue.Recover{Now: now, Consumer: s.id})
		}
	}
	return out
}

// SetPrefetch changes the prefetch of a live consumer (AMQP basic.qos):
// the consumer is re-subscribed with the new credit under a new consumer
// record; deliveries outstanding stay settleable.
func (s *Subscription) SetPrefetch(ctx context.Context, count uint32, bytes uint64) error {
	if s.stream != nil {
		s.stream.setCredit(count)
		return nil
	}
	s.mu.Lock()
	done := s.cancelled || s.ended
	s.mu.Unlock()
	if done {
		return nil
	}
	if s.remote != nil {
		err := s.remote.call(ctx, opSubPrefetch, func(w *wireWriter) {
			w.uvarint(uint64(forwardCredit(count)))
			w.uvarint(bytes)
		})
		if err == nil {
			s.opts.PrefetchCount, s.opts.PrefetchBytes = count, bytes
		}
		return err
	}
	prefetch := count
	if s.opts.NoAck && (prefetch == 0 || prefetch > base.BrokerAutoAckCredit) {
		prefetch = base.BrokerAutoAckCredit
	}
	if _, err := s.ql.propose(ctx, &queue.Cancel{Now: s.c.b.nowMs(), Consumer: s.id}); err != nil {
		return err
	}
	s.opts.PrefetchCount, s.opts.PrefetchBytes = count, bytes
	_, err := s.ql.propose(ctx, &queue.Subscribe{Now: s.c.b.nowMs(), Consumer: s.id, PrefetchCount: prefetch,
		PrefetchBytes: bytes, Priority: s.opts.Priority, Exclusive: s.opts.Exclusive, Tag: s.opts.Tag})
	return err
}

// GetHandle settles a message taken with Get without auto-ack.
type GetHandle struct {
	c        *Conn
	group    GroupID
	consumer queue.ConsumerID
	id       uint64
	queue    string
	once     sync.Once
}

// Get pulls one message (AMQP basic.get). ok=false: the queue was empty.
// Without autoAck the delivery must be settled through the returned
// handle (or it comes back when the connection closes).
func (c *Conn) Get(ctx context.Context, queueName string, autoAck bool) (Delivery, *GetHandle, bool, error) {
	if err := c.usable(); err != nil {
		return Delivery{}, nil, false, err
	}
	if err := c.Authorize(ActionRead, EntityQueue, queueName); err != nil {
		return Delivery{}, nil, false, err
	}
	ent, err := c.b.lookupQueue(c.p.Tenant, queueName)
	if err != nil {
		return Delivery{}, nil, false, err
	}
	if ent.isStream {
		return Delivery{}, nil, false, base.Errorf(base.CodeNotSupported, "basic.get is not supported on stream '%s'", queueName)
	}
	if ent.queue.Exclusive && ent.queue.Owner != c.owner {
		return Delivery{}, nil, false, lockedErr(queueName, c.p.Tenant)
	}
	cons := queue.ConsumerID{Owner: c.owner, Name: "basic.get"}
	if !autoAck {
		c.touch(ent.group)
	}
	res, err := c.b.getFrom(ctx, ent.group, cons, autoAck)
	if err != nil || !res.found {
		return Delivery{}, nil, false, err
	}
	d := Delivery{Queue: queueName, DeliveryID: res.id, Redelivered: res.redelivered,
		DeliveryCount: res.count, Message: res.msg, MessageCount: res.left}
	c.b.trace.record(c.p.Tenant, d.Message.MessageID, TraceEvent{Kind: TraceDelivered, Queue: queueName,
		Consumer: "basic.get", Attempt: res.count + 1})
	if autoAck {
		return d, nil, true, nil
	}
	return d, &GetHandle{c: c, group: ent.group, consumer: cons, id: res.id, queue: queueName}, true, nil
}

// getResult is a Get's answer, from this node or the leader's.
type getResult struct {
	found       bool
	id          uint64
	redelivered bool
	count       uint32 // failed attempts before this one
	left        uint32 // ready messages left
	msg         Message
}

// getFrom runs a Get on the queue's leader: here, or forwarded.
func (b *Broker) getFrom(ctx context.Context, g GroupID, cons queue.ConsumerID, autoAck bool) (getResult, error) {
	if ql := b.queueLeaderOf(g); ql != nil {
		return ql.get(ctx, cons, autoAck)
	}
	return b.fwd.get(ctx, g, cons, autoAck)
}

func (ql *queueLeader) get(ctx context.Context, cons queue.ConsumerID, autoAck bool) (getResult, error) {
	cmd := &queue.Get{Now: ql.b.nowMs(), AutoAck: autoAck}
	if !autoAck {
		cmd.Consumer = cons
	}
	res, err := ql.propose(ctx, cmd)
	if err != nil || !res.Found {
		return getResult{}, err
	}
	m, err := ql.readMessageAt(res.Delivery.Ref, res.Delivery.At)
	if autoAck {
		ql.fsm.unpin(res.Delivery.Ref)
	}
	if err != nil {
		return getResult{}, err
	}
	return getResult{found: true, id: res.Delivery.DeliveryID, redelivered: res.Delivery.Redelivered,
		count: res.Delivery.DeliveryCount, left: uint32(min(res.Count, 1<<32-1)), msg: m}, nil
}

// Ack acknowledges the message.
func (h *GetHandle) Ack(ctx context.Context) error {
	return h.settle(ctx, &queue.Settle{Now: h.c.b.nowMs(), Consumer: h.consumer, DeliveryIDs: []uint64{h.id}})
}

// Nack returns the message (requeue) or dead-letters it.
func (h *GetHandle) Nack(ctx context.Context, requeue bool, reason string) error {
	return h.settle(ctx, &queue.Return{Now: h.c.b.nowMs(), Consumer: h.consumer, DeliveryIDs: []uint64{h.id},
		Requeue: requeue, Reason: reason})
}

// DeliveryID returns the id the queue gave the message.
func (h *GetHandle) DeliveryID() uint64 { return h.id }

func (h *GetHandle) settle(ctx context.Context, cmd queue.Command) error {
	err := unknownTag(h.id)
	h.once.Do(func() { err = h.c.b.proposeQueue(ctx, h.group, cmd) })
	return err
}

// proposeQueue proposes a queue command to its group's leader, here or
// forwarded, and returns the command's error.
func (b *Broker) proposeQueue(ctx context.Context, g GroupID, cmd queue.Command) error {
	data, err := encodeQueueCommand(cmd)
	if err != nil {
		return err
	}
	out, err := b.propose(ctx, g, data)
	if err != nil {
		return err
	}
	if out.local != nil {
		if e, ok := out.local.(interface{ Err() error }); ok {
			return e.Err()
		}
		return nil
	}
	return out.err
}

package queue

import (
	"math"
	"slices"

	"github.com/ferry-mq/ferry/internal/base"
)

// settle applies a Settle (ret == nil) or a Return.
func (q *Queue) settle(id ConsumerID, ids []uint64, upTo uint64, ret *Return) Result {
	c := q.consumers[id]
	if c == nil {
		return Result{Err: base.Errorf(base.CodeNotFound, "queue: no consumer %s", id)}
	}
	if len(ids) > 0 && upTo > 0 {
		return Result{Err: base.Errorf(base.CodeInvalidArgument, "queue: both delivery ids and up-to given")}
	}
	if len(ids) > base.QueueSettleIDsMax {
		return Result{Err: base.Errorf(base.CodeInvalidArgument, "queue: %d delivery ids is over the limit %d", len(ids), base.QueueSettleIDsMax)}
	}
	if ret != nil && len(ret.Reason) > base.QueueFieldBytesMax {
		return Result{Err: base.Errorf(base.CodeInvalidArgument, "queue: return reason over %d bytes", base.QueueFieldBytesMax)}
	}
	q.scratch = append(q.scratch[:0], ids...)
	slices.Sort(q.scratch)
	for i, d := range q.scratch {
		if i > 0 && q.scratch[i-1] == d || c.find(d) < 0 {
			return Result{Err: base.Errorf(base.CodePreconditionFailed, "queue: unknown delivery id %d for consumer %s", d, id)}
		}
	}
	n := 0
	if upTo > 0 {
		for c.count > 0 && c.unacked.Front().id <= upTo {
			q.finish(q.detach(c, 0), ret)
			n++
		}
	}
	for _, d := range ids {
		q.finish(q.detach(c, c.find(d)), ret)
		n++
	}
	q.settled(c)
	return Result{Count: n}
}

// finish ends a delivery: acked (ret nil), returned, or rejected.
func (q *Queue) finish(s uint32, ret *Return) {
	switch {
	case ret == nil:
		q.ctr.Acked++
		q.unkey(s)
		q.free(s)
	case ret.Requeue:
		q.requeue(s, ret.Reason)
	default:
		q.unkey(s)
		q.deadLetter(s, ReasonRejected)
	}
}

// requeue handles a failed attempt of delivery s (detached from its
// consumer): the delivery limit, then the retry schedule for reason.
func (q *Queue) requeue(s uint32, reason string) {
	m := q.arena.at(s)
	if m.count < math.MaxUint16 {
		m.count++
	}
	m.setRedelivered()
	q.ctr.Returned++
	if limit := q.cfg.Retry.DeliveryLimit; limit > 0 && uint32(m.count) > limit {
		q.unkey(s)
		q.deadLetter(s, ReasonDeliveryLimit)
		return
	}
	sch := q.cfg.Retry.schedule(reason)
	switch sch.Kind {
	case BackoffDeadLetter:
		q.unkey(s)
		q.deadLetter(s, ReasonRejected)
		return
	case BackoffFixed, BackoffExponential:
		if d := backoffDelay(sch, m.count, m.seed); d > 0 && (m.expireAt == 0 || m.expireAt > q.now) {
			q.toDelayed(s, q.now+int64(d), stBackoff)
			return
		}
	}
	q.backToReady(s)
}

// backoffDelay is the delay before failed attempt number attempt (1 for
// the first) of a message with jitter seed seed goes back to the queue.
func backoffDelay(sch Schedule, attempt uint16, seed uint32) uint64 {
	var d uint64
	switch sch.Kind {
	case BackoffFixed:
		d = sch.DelayMs
	case BackoffExponential:
		ceiling := sch.MaxDelayMs
		if ceiling == 0 {
			ceiling = base.QueueDurationMsMax
		}
		d = sch.DelayMs
		for i := uint16(1); i < attempt && d > 0 && d < ceiling; i++ {
			d *= 2 // d < 2^40 here, so this cannot overflow
		}
		d = min(d, ceiling)
	}
	if sch.Jitter && d > 0 {
		d = mix64(uint64(seed)<<32|uint64(attempt)) % (d + 1)
	}
	return d
}

// mix64 is SplitMix64's finalizer: a fixed, well-spread hash of x.
func mix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// jitterSeed hashes the MessageID (FNV-1a), or the Ref when there is none.
func jitterSeed(m *Message) uint32 {
	if m.MessageID == "" {
		return uint32(mix64(m.Ref.Index ^ uint64(m.Ref.Slot)<<48 ^ uint64(m.Ref.Slot)>>16))
	}
	h := uint32(2166136261)
	for i := 0; i < len(m.MessageID); i++ {
		h = (h ^ uint32(m.MessageID[i])) * 16777619
	}
	return h
}

// deadLetter ends message s (detached from every container and key) for
// reason: dead-letter pending when the queue has a target, else dropped.
func (q *Queue) deadLetter(s uint32, reason Reason) {
	m := q.arena.at(s)
	if m.key != 0 {
		base.Bugf("queue: dead-lettering %s while it holds its ordering key", m.ref())
	}
	if q.cfg.DeadLetterTarget == "" {
		q.emit(Effect{Kind: EffectDrop, Ref: m.ref(), Reason: reason, AtMs: q.now, DeliveryCount: uint32(m.count), Bytes: m.bytes})
		q.ctr.Dropped++
		q.free(s)
		return
	}
	m.setState(stDLX)
	m.setReason(reason)
	m.expireAt = q.now // when it was dead-lettered, for re-emission
	m.hidx = noPos
	ref := m.ref()
	q.dlx[ref] = s
	q.dlxOrder.PushBack(ref)
	q.ctr.DeadLettered++
	q.emit(q.deadLetterEffect(m))
}

func (q *Queue) deadLetterEffect(m *msg) Effect {
	return Effect{Kind: EffectDeadLetter, Ref: m.ref(), Reason: m.reason(), Target: q.cfg.DeadLetterTarget,
		AtMs: m.expireAt, DeliveryCount: uint32(m.count), Bytes: m.bytes}
}

// DeadLetterPending returns a DeadLetter effect for every message still
// waiting for DeadLetterDone, in the order they were dead-lettered, with
// the queue's current target. A new leader re-emits them. The caller owns
// the returned slice.
func (q *Queue) DeadLetterPending() []Effect {
	out := make([]Effect, 0, len(q.dlx))
	for i := 0; i < q.dlxOrder.Len(); i++ {
		if s, ok := q.dlx[q.dlxOrder.At(i)]; ok {
			out = append(out, q.deadLetterEffect(q.arena.at(s)))
		}
	}
	return out
}

func (q *Queue) ackTimeout(t ackTimer) {
	c := t.c
	i := c.find(t.id)
	if i < 0 {
		base.Bugf("queue: ack timer for delivery %d of %s, which is not outstanding", t.id, c.id)
	}
	s := q.detach(c, i)
	q.ctr.AckTimeouts++
	q.emit(Effect{Kind: EffectAckTimeout, Consumer: c.id, DeliveryID: t.id, Ref: q.arena.at(s).ref()})
	q.requeue(s, ReturnReasonAckTimeout)
	q.settled(c)
}

func (q *Queue) recoverAll(cmd *Recover) Result {
	c := q.consumers[cmd.Consumer]
	if c == nil {
		return Result{Err: base.Errorf(base.CodeNotFound, "queue: no consumer %s", cmd.Consumer)}
	}
	n := 0
	for c.count > 0 {
		q.requeue(q.detach(c, 0), ReturnReasonRecover)
		n++
	}
	q.settled(c)
	return Result{Count: n}
}

func (q *Queue) deadLetterDone(cmd *DeadLetterDone) Result {
	if len(cmd.Refs) > base.QueueSettleIDsMax {
		return Result{Err: base.Errorf(base.CodeInvalidArgument, "queue: %d refs is over the limit %d", len(cmd.Refs), base.QueueSettleIDsMax)}
	}
	n := 0
	for _, ref := range cmd.Refs {
		if s, ok := q.dlx[ref]; ok {
			delete(q.dlx, ref)
			q.free(s)
			q.ctr.DeadLetterDone++
			n++
		}
	}
	for q.dlxOrder.Len() > 0 {
		if _, ok := q.dlx[q.dlxOrder.Front()]; ok {
			break
		}
		q.dlxOrder.PopFront()
	}
	if q.dlxOrder.Len() > 2*len(q.dlx)+64 {
		k := 0
		for i := 0; i < q.dlxOrder.Len(); i++ {
			if ref := q.dlxOrder.At(i); q.hasDLX(ref) {
				q.dlxOrder.Set(k, ref)
				k++
			}
		}
		q.dlxOrder.Truncate(k)
	}
	return Result{Count: n}
}

func (q *Queue) hasDLX(ref Ref) bool {
	_, ok := q.dlx[ref]
	return ok
}

func (q *Queue) configure(cmd *Configure) Result {
	cfg := cmd.Config
	if err := cfg.Validate(); err != nil {
		return Result{Err: err}
	}
	if cfg.MaxPriority != q.cfg.MaxPriority {
		return Result{Err: base.Errorf(base.CodePreconditionFailed, "queue: max priority cannot change (%d to %d)", q.cfg.MaxPriority, cfg.MaxPriority)}
	}
	cfg.Retry.Reasons = slices.Clone(cfg.Retry.Reasons)
	old := q.cfg
	q.cfg = cfg
	if cfg.DedupeWindowMs == 0 {
		q.dedupe.clear()
	}
	if old.SingleActiveConsumer != cfg.SingleActiveConsumer {
		q.active = nil
		if cfg.SingleActiveConsumer && q.subscribed > 0 {
			q.handOver()
		}
		for _, c := range q.sortedConsumers(func(*consumer) bool { return true }) {
			q.reservice(c)
		}
	}
	return Result{}
}

func (q *Queue) deleteQueue(cmd *Delete) Result {
	if cmd.IfUnused && q.subscribed > 0 {
		return Result{Err: base.Errorf(base.CodePreconditionFailed, "queue: in use by %d consumers", q.subscribed)}
	}
	if cmd.IfEmpty && q.ready+q.delayed > 0 {
		return Result{Err: base.Errorf(base.CodePreconditionFailed, "queue: not empty (%d messages)", q.ready+q.delayed)}
	}
	for _, c := range q.sortedConsumers(func(c *consumer) bool { return c.subscribed }) {
		q.emit(Effect{Kind: EffectConsumerCancelled, Consumer: c.id})
	}
	n := q.live()
	q.ctr.Deleted += uint64(n)
	q.resetState()
	q.deleted = true
	return Result{Count: n}
}

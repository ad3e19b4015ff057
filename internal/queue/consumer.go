package queue

import (
	"slices"

	"github.com/ferry-mq/ferry/internal/base"
)

// consumer is a consumer record: a subscription, or a channel that holds
// deliveries from Get, or a cancelled subscription whose deliveries are not
// settled yet. The record goes when it is neither subscribed nor holding
// deliveries.
type consumer struct {
	id            ConsumerID
	tag           string
	reg           uint64 // registration order (unique; renewed on each subscribe)
	ticket        uint64 // round-robin position: among equal priorities the lowest is served next
	prio          int32
	prefetch      uint32 // 0: unlimited
	prefetchBytes uint64 // 0: unlimited
	exclusive     bool
	subscribed    bool
	lastID        uint64             // last delivery id issued
	unacked       ring[unackedEntry] // by delivery id; settled entries have slot noSlot
	count         int                // live entries in unacked
	bytes         uint64             // their bytes
	hidx          int                // position in Queue.service, -1 when absent
}

type unackedEntry struct {
	id   uint64
	slot uint32
}

// consumerBefore orders the service heap: higher priority first, then the
// consumer served least recently.
func consumerBefore(a, b *consumer) bool {
	return a.prio > b.prio || a.prio == b.prio && a.ticket < b.ticket
}

func (c *consumer) hasCredit() bool {
	return (c.prefetch == 0 || c.count < int(c.prefetch)) && (c.prefetchBytes == 0 || c.bytes < c.prefetchBytes)
}

// find returns the position of unacknowledged delivery id in c.unacked, or
// -1.
func (c *consumer) find(id uint64) int {
	lo, hi := 0, c.unacked.Len()
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if c.unacked.At(mid).id < id {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo < c.unacked.Len() {
		if e := c.unacked.At(lo); e.id == id && e.slot != noSlot {
			return lo
		}
	}
	return -1
}

// reservice keeps c in the service heap exactly when it may receive now.
func (q *Queue) reservice(c *consumer) {
	want := c.subscribed && c.hasCredit() && (!q.cfg.SingleActiveConsumer || q.active == c)
	switch {
	case want && c.hidx < 0:
		q.service.Push(c)
	case !want && c.hidx >= 0:
		q.service.Remove(c.hidx)
	case want:
		q.service.Fix(c.hidx)
	}
}

func (q *Queue) toUnacked(c *consumer, s uint32) uint64 {
	m := q.arena.at(s)
	m.setState(stUnacked)
	c.lastID++
	q.lastID = max(q.lastID, c.lastID)
	c.unacked.PushBack(unackedEntry{id: c.lastID, slot: s})
	c.count++
	c.bytes += uint64(m.bytes)
	q.unacked++
	q.unackedBytes += uint64(m.bytes)
	if q.cfg.AckTimeoutMs > 0 {
		q.acks.Push(ackTimer{at: q.now + int64(q.cfg.AckTimeoutMs), id: c.lastID, c: c, slot: s})
	}
	return c.lastID
}

// detach takes the delivery at position i out of c and returns its slot;
// the caller decides where the message goes. Positions in c.unacked are
// not stable across calls.
func (q *Queue) detach(c *consumer, i int) uint32 {
	e := c.unacked.At(i)
	m := q.arena.at(e.slot)
	c.unacked.Set(i, unackedEntry{id: e.id, slot: noSlot})
	c.count--
	c.bytes -= uint64(m.bytes)
	q.unacked--
	q.unackedBytes -= uint64(m.bytes)
	if m.hidx != noPos {
		q.acks.Remove(int(m.hidx))
	}
	for c.unacked.Len() > 0 && c.unacked.Front().slot == noSlot {
		c.unacked.PopFront()
	}
	if holes := c.unacked.Len() - c.count; holes > 32 && holes > c.count {
		n := 0
		for j := 0; j < c.unacked.Len(); j++ {
			if e := c.unacked.At(j); e.slot != noSlot {
				c.unacked.Set(n, e)
				n++
			}
		}
		c.unacked.Truncate(n)
	}
	return e.slot
}

// settled is called after deliveries of c were settled or returned.
func (q *Queue) settled(c *consumer) {
	q.reservice(c)
	q.forgetIfIdle(c)
}

func (q *Queue) forgetIfIdle(c *consumer) {
	if !c.subscribed && c.count == 0 {
		if c.hidx >= 0 {
			q.service.Remove(c.hidx)
		}
		delete(q.consumers, c.id)
	}
}

func validConsumerID(id ConsumerID) error {
	if id.IsZero() {
		return base.Errorf(base.CodeInvalidArgument, "queue: empty consumer id")
	}
	if len(id.Owner) > base.QueueFieldBytesMax || len(id.Name) > base.QueueFieldBytesMax {
		return base.Errorf(base.CodeInvalidArgument, "queue: consumer id over %d bytes", base.QueueFieldBytesMax)
	}
	return nil
}

// record returns c's record, creating an unsubscribed one.
func (q *Queue) record(id ConsumerID) (*consumer, error) {
	if c := q.consumers[id]; c != nil {
		return c, nil
	}
	if len(q.consumers) >= q.lim.consumers {
		return nil, base.Errorf(base.CodeOverloaded, "queue: %d consumers is the limit", q.lim.consumers)
	}
	// A new record's ids start above every id the queue has issued, so a
	// consumer id that comes back never reuses a delivery id.
	c := &consumer{id: id, hidx: -1, reg: q.nextReg, ticket: q.nextTicket, lastID: q.lastID}
	q.nextReg++
	q.nextTicket++
	q.consumers[id] = c
	return c, nil
}

func (q *Queue) subscribe(cmd *Subscribe) Result {
	if err := validConsumerID(cmd.Consumer); err != nil {
		return Result{Err: err}
	}
	if len(cmd.Tag) > base.QueueFieldBytesMax {
		return Result{Err: base.Errorf(base.CodeInvalidArgument, "queue: consumer tag over %d bytes", base.QueueFieldBytesMax)}
	}
	c := q.consumers[cmd.Consumer]
	if c != nil && c.subscribed {
		return Result{Err: base.Errorf(base.CodePreconditionFailed, "queue: consumer %s is already subscribed", cmd.Consumer)}
	}
	if q.exclusive != nil {
		return Result{Err: base.Errorf(base.CodeResourceLocked, "queue: exclusive consumer %s holds the queue", q.exclusive.id)}
	}
	if cmd.Exclusive && q.subscribed > 0 {
		return Result{Err: base.Errorf(base.CodeResourceLocked, "queue: cannot consume exclusively: the queue has %d consumers", q.subscribed)}
	}
	if c == nil {
		var err error
		if c, err = q.record(cmd.Consumer); err != nil {
			return Result{Err: err}
		}
	} else {
		c.reg, c.ticket = q.nextReg, q.nextTicket
		q.nextReg++
		q.nextTicket++
	}
	c.tag, c.prio, c.prefetch, c.prefetchBytes = cmd.Tag, cmd.Priority, cmd.PrefetchCount, cmd.PrefetchBytes
	c.exclusive, c.subscribed = cmd.Exclusive, true
	q.subscribed++
	if c.exclusive {
		q.exclusive = c
	}
	q.use()
	if q.cfg.SingleActiveConsumer && q.active == nil {
		q.active = c
		q.emit(Effect{Kind: EffectActiveConsumer, Consumer: c.id})
	}
	q.reservice(c)
	return Result{}
}

// unsubscribe stops deliveries to c; it does not choose a new active
// consumer.
func (q *Queue) unsubscribe(c *consumer) {
	c.subscribed = false
	q.subscribed--
	if q.exclusive == c {
		q.exclusive = nil
	}
	q.reservice(c)
	if q.subscribed == 0 {
		q.use() // idle expiry counts from the last consumer leaving
	}
}

func (q *Queue) cancel(cmd *Cancel) Result {
	c := q.consumers[cmd.Consumer]
	if c == nil || !c.subscribed {
		return Result{Err: base.Errorf(base.CodeNotFound, "queue: no consumer %s", cmd.Consumer)}
	}
	q.unsubscribe(c)
	if q.active == c {
		q.handOver()
	}
	q.forgetIfIdle(c)
	return Result{}
}

// handOver picks the next single active consumer: the highest priority,
// then the earliest registered.
func (q *Queue) handOver() {
	var next *consumer
	for _, c := range q.consumers {
		if c.subscribed && (next == nil || c.prio > next.prio || c.prio == next.prio && c.reg < next.reg) {
			next = c
		}
	}
	q.active = next
	e := Effect{Kind: EffectActiveConsumer}
	if next != nil {
		e.Consumer = next.id
		q.reservice(next)
	}
	q.emit(e)
}

// sortedConsumers returns the records matching keep, by registration.
func (q *Queue) sortedConsumers(keep func(*consumer) bool) []*consumer {
	var cs []*consumer
	for _, c := range q.consumers {
		if keep(c) {
			cs = append(cs, c)
		}
	}
	slices.SortFunc(cs, func(a, b *consumer) int {
		if a.reg < b.reg {
			return -1
		}
		return 1
	})
	return cs
}

func (q *Queue) consumerDown(cmd *ConsumerDown) Result {
	cs := q.sortedConsumers(func(c *consumer) bool { return c.id.Owner == cmd.Owner })
	activeGone := false
	for _, c := range cs {
		if c.subscribed {
			q.unsubscribe(c)
			activeGone = activeGone || q.active == c
		}
	}
	returned := 0
	for _, c := range cs {
		for c.count > 0 {
			q.requeue(q.detach(c, 0), ReturnReasonConsumerDown)
			returned++
		}
		q.forgetIfIdle(c)
	}
	if activeGone {
		q.handOver()
	}
	return Result{Count: returned}
}

func (q *Queue) get(cmd *Get) Result {
	if cmd.Consumer.IsZero() && !cmd.AutoAck {
		return Result{Err: base.Errorf(base.CodeInvalidArgument, "queue: a get without a consumer must auto-ack")}
	}
	if !cmd.AutoAck {
		if err := validConsumerID(cmd.Consumer); err != nil {
			return Result{Err: err}
		}
		if q.consumers[cmd.Consumer] == nil && len(q.consumers) >= q.lim.consumers {
			return Result{Err: base.Errorf(base.CodeOverloaded, "queue: %d consumers is the limit", q.lim.consumers)}
		}
	}
	q.use()
	if q.topLevel() < 0 {
		return Result{Count: q.ready}
	}
	s := q.takeReady()
	m := q.arena.at(s)
	d := Delivery{Consumer: cmd.Consumer, Ref: m.ref(), At: q.Locate(m.ref()), Redelivered: m.redelivered(), DeliveryCount: uint32(m.count), Bytes: m.bytes}
	if cmd.AutoAck {
		q.ctr.Delivered++
		if m.redelivered() {
			q.ctr.Redelivered++
		}
		q.ctr.Acked++
		q.unkey(s)
		q.free(s)
	} else {
		c, err := q.record(cmd.Consumer)
		if err != nil {
			base.Bugf("queue: consumer record: %v", err)
		}
		d.DeliveryID = q.deliver(c, s, false)
		q.reservice(c)
	}
	return Result{Found: true, Delivery: d, Count: q.ready}
}

// ConsumerInfo describes a consumer record, as Consumers returns it.
type ConsumerInfo struct {
	ID            ConsumerID
	Tag           string
	Priority      int32
	PrefetchCount uint32
	PrefetchBytes uint64
	Exclusive     bool
	Subscribed    bool // false: cancelled, or only holding Get deliveries
	Active        bool // the single active consumer
	Unacked       int
	UnackedBytes  uint64
}

// Consumers lists the consumer records in registration order. The caller
// owns the returned slice.
func (q *Queue) Consumers() []ConsumerInfo {
	cs := q.sortedConsumers(func(*consumer) bool { return true })
	out := make([]ConsumerInfo, len(cs))
	for i, c := range cs {
		out[i] = ConsumerInfo{ID: c.id, Tag: c.tag, Priority: c.prio, PrefetchCount: c.prefetch,
			PrefetchBytes: c.prefetchBytes, Exclusive: c.exclusive, Subscribed: c.subscribed,
			Active: q.active == c, Unacked: c.count, UnackedBytes: c.bytes}
	}
	return out
}

package queue

import (
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/ferry-mq/ferry/internal/base"
)

// model is the naive reference the property tests compare Queue against:
// every message in one slice, every decision a linear scan over it, every
// rule written as directly as the documentation states it. It is slow and
// obviously correct; it shares no code with the Queue except the types of
// the API and the hash that defines the jitter.

const (
	mReady = iota + 1
	mDelayed
	mBackoff
	mUnacked
	mDLX
)

type mMsg struct {
	ref         Ref
	bytes       uint32
	prio        uint8
	expireAt    int64
	seed        uint32
	key         string
	count       uint16
	redelivered bool
	state       int
	at          int64  // delayed/backoff: when the delay heap wakes it (min of due and expiry)
	join        uint64 // keyed: position in the key's order
	// unacknowledged
	owner    *mConsumer
	id       uint64
	deadline int64
	// dead-letter pending
	reason Reason
	dlAt   int64
	dlSeq  uint64
	// relocated: where a Relocate moved the body
	moved bool
	body  Ref
}

// loc is where the message's body lies.
func (m *mMsg) loc() Ref {
	if m.moved {
		return m.body
	}
	return m.ref
}

type mConsumer struct {
	id                    ConsumerID
	tag                   string
	reg, ticket           uint64
	prio                  int32
	prefetch              uint32
	prefetchBytes         uint64
	exclusive, subscribed bool
	lastID                uint64
}

type mDedupe struct {
	id       string
	deadline int64
}

type model struct {
	cfg                         Config
	now                         int64
	lastRef                     Ref
	hasRef, deleted             bool
	msgs                        []*mMsg
	consumers                   []*mConsumer
	active                      *mConsumer
	nextReg, nextTicket, lastID uint64
	joinSeq, dlSeq              uint64
	dedupeOrder                 []mDedupe
	dedupeSeen                  map[string]int64
	lastUsed                    int64
	expiredSent                 bool
	lastWake                    int64
	ctr                         Counters
	effects                     []Effect
	maxMessages, maxDedupe      int
	maxConsumers                int
	below                       uint64     // the relocation mark
	senders                     []*mSender // by last applied to, oldest first
	maxSenders, maxRanges       int
}

// mSender is a sender as the model keeps it: every number applied, with
// whether it was dead-lettered; ranges are worked out when needed.
type mSender struct {
	lane   uint64
	lastMs int64
	dl     map[uint64]bool
}

func newModel(cfg Config, created int64, lim limits) *model {
	return &model{cfg: cfg, now: created, lastUsed: created, nextReg: 1, nextTicket: 1,
		dedupeSeen: map[string]int64{}, maxMessages: lim.messages, maxDedupe: lim.dedupeIDs, maxConsumers: lim.consumers,
		maxSenders: lim.senders, maxRanges: lim.senderRanges}
}

func (q *model) emit(e Effect) { q.effects = append(q.effects, e) }

func (q *model) apply(cmd Command) (Result, []Effect) {
	q.effects = nil
	if q.deleted {
		return Result{Err: base.Errorf(base.CodeNotFound, "deleted")}, nil
	}
	if cmd.now() < 0 || cmd.now() > base.QueueTimeMsMax {
		return Result{Err: base.Errorf(base.CodeInvalidArgument, "time")}, nil
	}
	if cmd.now() > q.now {
		q.now = cmd.now()
	}
	q.advance()
	res := q.exec(cmd)
	if !q.deleted {
		if at, ok := q.idle(); ok && at <= q.now {
			q.expiredSent = true
			q.emit(Effect{Kind: EffectQueueExpired})
		}
		q.dispatch()
	}
	if w := q.wake(); w != q.lastWake {
		q.lastWake = w
		q.emit(Effect{Kind: EffectWake, AtMs: w})
	}
	return res, q.effects
}

func (q *model) exec(cmd Command) Result {
	switch c := cmd.(type) {
	case *Enqueue:
		return q.enqueue(c)
	case *Relocate:
		return q.relocate(c)
	case *Subscribe:
		return q.subscribe(c)
	case *Cancel:
		return q.cancel(c)
	case *ConsumerDown:
		return q.down(c)
	case *Get:
		return q.get(c)
	case *Settle:
		return q.settle(c.Consumer, c.DeliveryIDs, c.UpTo, nil)
	case *Return:
		return q.settle(c.Consumer, c.DeliveryIDs, c.UpTo, c)
	case *Recover:
		cons := q.consumer(c.Consumer)
		if cons == nil {
			return Result{Err: base.Errorf(base.CodeNotFound, "no consumer")}
		}
		n := 0
		for _, m := range q.unackedOf(cons) {
			q.requeue(m, ReturnReasonRecover)
			n++
		}
		q.forgetIfIdle(cons)
		return Result{Count: n}
	case *Tick:
		return Result{}
	case *Touch:
		q.use()
		return Result{}
	case *DeadLetterDone:
		if len(c.Refs) > base.QueueSettleIDsMax {
			return Result{Err: base.Errorf(base.CodeInvalidArgument, "refs")}
		}
		n := 0
		for _, r := range c.Refs {
			if m := q.find(func(m *mMsg) bool { return m.state == mDLX && m.ref == r }); m != nil {
				q.remove(m)
				q.ctr.DeadLetterDone++
				n++
			}
		}
		return Result{Count: n}
	case *Purge:
		n := 0
		for _, m := range slices.Clone(q.msgs) {
			if m.state == mReady || m.state == mDelayed || m.state == mBackoff {
				q.remove(m)
				n++
			}
		}
		q.ctr.Purged += uint64(n)
		return Result{Count: n}
	case *Delete:
		return q.delete(c)
	case *Configure:
		return q.configure(c)
	}
	panic("unknown command")
}

func (q *model) use() { q.lastUsed, q.expiredSent = q.now, false }

func (q *model) find(f func(*mMsg) bool) *mMsg {
	for _, m := range q.msgs {
		if f(m) {
			return m
		}
	}
	return nil
}

func (q *model) count(f func(*mMsg) bool) (n int, bytes uint64) {
	for _, m := range q.msgs {
		if f(m) {
			n++
			bytes += uint64(m.bytes)
		}
	}
	return n, bytes
}

func (q *model) remove(m *mMsg) {
	q.msgs = slices.DeleteFunc(q.msgs, func(x *mMsg) bool { return x == m })
}

func (q *model) subscribedCount() int {
	n := 0
	for _, c := range q.consumers {
		if c.subscribed {
			n++
		}
	}
	return n
}

// minBy returns the message matching f that is least by less.
func (q *model) minBy(f func(*mMsg) bool, less func(a, b *mMsg) bool) *mMsg {
	var best *mMsg
	for _, m := range q.msgs {
		if f(m) && (best == nil || less(m, best)) {
			best = m
		}
	}
	return best
}

func byRef(a, b *mMsg) bool { return a.ref.Less(b.ref) }

func (q *model) advance() {
	now := q.now
	for {
		m := q.minBy(func(m *mMsg) bool { return m.state == mUnacked && m.deadline != 0 && m.deadline <= now },
			func(a, b *mMsg) bool { return a.deadline < b.deadline || a.deadline == b.deadline && byRef(a, b) })
		if m == nil {
			break
		}
		c := m.owner
		q.ctr.AckTimeouts++
		q.emit(Effect{Kind: EffectAckTimeout, Consumer: c.id, DeliveryID: m.id, Ref: m.ref})
		q.requeue(m, ReturnReasonAckTimeout)
		q.forgetIfIdle(c)
	}
	for {
		m := q.minBy(func(m *mMsg) bool { return (m.state == mDelayed || m.state == mBackoff) && m.at <= now },
			func(a, b *mMsg) bool { return a.at < b.at || a.at == b.at && byRef(a, b) })
		if m == nil {
			break
		}
		switch {
		case m.expireAt != 0 && m.expireAt <= now:
			q.ctr.Expired++
			q.deadLetter(m, ReasonExpired)
		case m.state == mBackoff:
			q.backToReady(m)
		default:
			m.state = mReady
			q.joinKey(m)
		}
	}
	for {
		m := q.minBy(func(m *mMsg) bool { return m.state == mReady && m.expireAt != 0 && m.expireAt <= now },
			func(a, b *mMsg) bool { return a.expireAt < b.expireAt || a.expireAt == b.expireAt && byRef(a, b) })
		if m == nil {
			break
		}
		q.ctr.Expired++
		q.deadLetter(m, ReasonExpired)
	}
	for len(q.dedupeOrder) > 0 && q.dedupeOrder[0].deadline <= now {
		q.popDedupe()
	}
	if at, ok := q.idle(); ok && at <= now {
		q.expiredSent = true
		q.emit(Effect{Kind: EffectQueueExpired})
	}
}

func (q *model) popDedupe() (forgotLive bool) {
	e := q.dedupeOrder[0]
	q.dedupeOrder = q.dedupeOrder[1:]
	if d, ok := q.dedupeSeen[e.id]; ok && d == e.deadline {
		delete(q.dedupeSeen, e.id)
		return d > q.now
	}
	return false
}

func (q *model) idle() (int64, bool) {
	if q.cfg.ExpiresMs == 0 || q.subscribedCount() > 0 || q.expiredSent || q.deleted {
		return 0, false
	}
	return q.lastUsed + int64(q.cfg.ExpiresMs), true
}

func (q *model) wake() int64 {
	var at []int64
	for _, m := range q.msgs {
		switch {
		case m.state == mDelayed || m.state == mBackoff:
			at = append(at, m.at)
		case m.state == mReady && m.expireAt != 0:
			at = append(at, m.expireAt)
		case m.state == mUnacked && m.deadline != 0:
			at = append(at, m.deadline)
		}
	}
	if len(q.dedupeOrder) > 0 {
		d := q.dedupeOrder[0].deadline
		at = append(at, (d+999)/1000*1000)
	}
	if t, ok := q.idle(); ok {
		at = append(at, t)
	}
	if len(at) == 0 {
		return 0
	}
	return slices.Min(at)
}

// keyBusy: one of the key's messages is unacknowledged or in backoff.
func (q *model) keyBusy(key string) bool {
	return q.find(func(m *mMsg) bool { return m.key == key && (m.state == mUnacked || m.state == mBackoff) }) != nil
}

// keyFront is the key's first ready message in key order.
func (q *model) keyFront(key string) *mMsg {
	return q.minBy(func(m *mMsg) bool { return m.key == key && m.state == mReady },
		func(a, b *mMsg) bool { return a.join < b.join })
}

func (q *model) deliverable(m *mMsg) bool {
	if m.state != mReady {
		return false
	}
	return m.key == "" || !q.keyBusy(m.key) && q.keyFront(m.key) == m
}

func (q *model) level(m *mMsg) uint8 { return min(m.prio, q.cfg.MaxPriority) }

// next is the message to deliver next: highest level, then lowest Ref.
func (q *model) next() *mMsg {
	return q.minBy(q.deliverable, func(a, b *mMsg) bool {
		return q.level(a) > q.level(b) || q.level(a) == q.level(b) && byRef(a, b)
	})
}

func (q *model) joinKey(m *mMsg) {
	q.joinSeq++
	m.join = q.joinSeq
}

func (q *model) backToReady(m *mMsg) {
	if m.expireAt != 0 && m.expireAt <= q.now {
		q.ctr.Expired++
		q.deadLetter(m, ReasonExpired)
		return
	}
	m.state = mReady // keeps its join position: the front of its key
}

func (q *model) deadLetter(m *mMsg, r Reason) {
	if q.cfg.DeadLetterTarget == "" {
		q.emit(Effect{Kind: EffectDrop, Ref: m.ref, Reason: r, AtMs: q.now, DeliveryCount: uint32(m.count), Bytes: m.bytes})
		q.ctr.Dropped++
		q.remove(m)
		return
	}
	q.dlSeq++
	m.state, m.reason, m.dlAt, m.dlSeq, m.key = mDLX, r, q.now, q.dlSeq, ""
	q.ctr.DeadLettered++
	q.emit(Effect{Kind: EffectDeadLetter, Ref: m.ref, Reason: r, Target: q.cfg.DeadLetterTarget, AtMs: q.now,
		DeliveryCount: uint32(m.count), Bytes: m.bytes})
}

func modelBackoff(s Schedule, attempt uint16, seed uint32) uint64 {
	var d uint64
	switch s.Kind {
	case BackoffFixed:
		d = s.DelayMs
	case BackoffExponential:
		ceiling := s.MaxDelayMs
		if ceiling == 0 {
			ceiling = base.QueueDurationMsMax
		}
		f := float64(s.DelayMs) * math.Pow(2, float64(attempt)-1)
		if f >= float64(ceiling) {
			d = ceiling
		} else {
			d = s.DelayMs << (attempt - 1)
		}
	}
	if s.Jitter && d > 0 {
		d = mix64(uint64(seed)<<32|uint64(attempt)) % (d + 1)
	}
	return d
}

func (q *model) requeue(m *mMsg, reason string) {
	m.owner = nil
	if m.count < math.MaxUint16 {
		m.count++
	}
	m.redelivered = true
	q.ctr.Returned++
	if l := q.cfg.Retry.DeliveryLimit; l > 0 && uint32(m.count) > l {
		q.deadLetter(m, ReasonDeliveryLimit)
		return
	}
	sch := q.cfg.Retry.Default
	for _, r := range q.cfg.Retry.Reasons {
		if r.Reason == reason {
			sch = r.Schedule
		}
	}
	if sch.Kind == BackoffDeadLetter {
		q.deadLetter(m, ReasonRejected)
		return
	}
	if sch.Kind == BackoffFixed || sch.Kind == BackoffExponential {
		if d := modelBackoff(sch, m.count, m.seed); d > 0 && (m.expireAt == 0 || m.expireAt > q.now) {
			m.state, m.at = mBackoff, q.now+int64(d)
			if m.expireAt != 0 && m.expireAt < m.at {
				m.at = m.expireAt
			}
			return
		}
	}
	q.backToReady(m)
}

func (q *model) enqueue(c *Enqueue) Result {
	if len(c.Messages) > base.QueueEnqueueMessagesMax {
		return Result{Err: base.Errorf(base.CodeInvalidArgument, "count")}
	}
	prev, has := q.lastRef, q.hasRef
	for _, m := range c.Messages {
		if has && !prev.Less(m.Ref) || len(m.DedupeID) > base.QueueFieldBytesMax || len(m.OrderingKey) > base.QueueFieldBytesMax ||
			len(m.MessageID) > base.QueueFieldBytesMax || m.TTLms > base.QueueDurationMsMax || m.NotBeforeMs < 0 || m.NotBeforeMs > base.QueueTimeMsMax ||
			m.Sender != (SenderID{}) && (m.Sender.Lane == 0 || m.Sender.Seq == math.MaxUint64) {
			return Result{Err: base.Errorf(base.CodeInvalidArgument, "message")}
		}
		prev, has = m.Ref, true
	}
	q.senders = slices.DeleteFunc(q.senders, func(s *mSender) bool { return s.lastMs <= q.now-base.QueueSenderIdle.Milliseconds() })
	var outs []Outcome
	n := 0
	for i := range c.Messages {
		o := q.enqueueOne(&c.Messages[i])
		outs = append(outs, o)
		if o == OutcomeEnqueued {
			n++
		}
	}
	if len(c.Messages) > 0 {
		q.lastRef, q.hasRef = c.Messages[len(c.Messages)-1].Ref, true
	}
	return Result{Outcomes: outs, Count: n}
}

func (q *model) waiting() (int, uint64) {
	return q.count(func(m *mMsg) bool { return m.state == mReady || m.state == mDelayed || m.state == mBackoff })
}

func (q *model) over(n int, b uint64) bool {
	count, bytes := q.waiting()
	return q.cfg.MaxLength > 0 && uint64(count+n) > q.cfg.MaxLength || q.cfg.MaxLengthBytes > 0 && bytes+b > q.cfg.MaxLengthBytes
}

func (q *model) enqueueOne(in *Message) Outcome {
	i := slices.IndexFunc(q.senders, func(s *mSender) bool { return s.lane == in.Sender.Lane })
	if in.Sender.Lane != 0 && i >= 0 {
		if dl, ok := q.senders[i].dl[in.Sender.Seq]; ok {
			q.ctr.Resent++
			if dl {
				return OutcomeDeadLettered
			}
			return OutcomeDuplicate
		}
	}
	o := q.admit(in)
	if in.Sender.Lane == 0 || o != OutcomeEnqueued && o != OutcomeDeadLettered {
		return o
	}
	var s *mSender
	if i >= 0 {
		s = q.senders[i]
		q.senders = slices.Delete(q.senders, i, i+1)
	} else {
		if len(q.senders) >= q.maxSenders {
			q.senders = q.senders[1:]
			q.ctr.SendersEvicted++
		}
		s = &mSender{lane: in.Sender.Lane, dl: map[uint64]bool{}}
	}
	s.dl[in.Sender.Seq] = o == OutcomeDeadLettered
	s.lastMs = q.now
	s.trim(q.maxRanges)
	q.senders = append(q.senders, s)
	return o
}

// trim forgets the lowest run of consecutive numbers of one kind while
// there are more than max runs.
func (s *mSender) trim(max int) {
	for {
		seqs := slices.Sorted(maps.Keys(s.dl))
		var runs [][]uint64
		for i, n := range seqs {
			if i > 0 && n == seqs[i-1]+1 && s.dl[n] == s.dl[seqs[i-1]] {
				runs[len(runs)-1] = append(runs[len(runs)-1], n)
			} else {
				runs = append(runs, []uint64{n})
			}
		}
		if len(runs) <= max {
			return
		}
		for _, n := range runs[0] {
			delete(s.dl, n)
		}
	}
}

func (q *model) admit(in *Message) Outcome {
	dedupe := in.DedupeID != "" && q.cfg.DedupeWindowMs > 0
	if dedupe {
		if d, ok := q.dedupeSeen[in.DedupeID]; ok && d > q.now {
			q.ctr.Deduplicated++
			return OutcomeDuplicate
		}
	}
	if len(q.msgs) >= q.maxMessages {
		q.ctr.Rejected++
		return OutcomeRejected
	}
	ttl := in.TTLms
	if q.cfg.MessageTTLms > 0 && (ttl == 0 || q.cfg.MessageTTLms < ttl) {
		ttl = q.cfg.MessageTTLms
	}
	m := &mMsg{ref: in.Ref, bytes: in.Bytes, prio: in.Priority, seed: jitterSeed(in), key: in.OrderingKey}
	if ttl > 0 {
		m.expireAt = q.now + int64(ttl)
	}
	if q.cfg.Overflow != OverflowDropHead && q.over(1, uint64(in.Bytes)) {
		if q.cfg.Overflow == OverflowRejectPublish {
			q.ctr.Rejected++
			return OutcomeRejected
		}
		q.ctr.OverflowDeadLettered++
		m.key = ""
		q.msgs = append(q.msgs, m)
		q.deadLetter(m, ReasonMaxLen)
		return OutcomeDeadLettered
	}
	if dedupe {
		for len(q.dedupeOrder) >= q.maxDedupe {
			if q.popDedupe() {
				q.ctr.DedupeEvicted++
			}
		}
		q.dedupeSeen[in.DedupeID] = q.now + int64(q.cfg.DedupeWindowMs)
		q.dedupeOrder = append(q.dedupeOrder, mDedupe{in.DedupeID, q.now + int64(q.cfg.DedupeWindowMs)})
		for len(q.dedupeOrder) > 0 && q.dedupeOrder[0].deadline <= q.now {
			q.popDedupe()
		}
	}
	q.ctr.Enqueued++
	q.msgs = append(q.msgs, m)
	if in.NotBeforeMs > q.now {
		m.state, m.at = mDelayed, in.NotBeforeMs
		if m.expireAt != 0 && m.expireAt < m.at {
			m.at = m.expireAt
		}
	} else {
		m.state = mReady
		q.joinKey(m)
	}
	if q.cfg.Overflow == OverflowDropHead {
		for q.over(0, 0) {
			q.dropHead()
		}
	}
	return OutcomeEnqueued
}

func (q *model) dropHead() {
	victim := q.next()
	if victim == nil {
		victim = q.minBy(func(m *mMsg) bool { return m.state == mReady && q.keyFront(m.key) == m }, byRef)
	}
	if victim == nil {
		victim = q.minBy(func(m *mMsg) bool { return m.state == mDelayed || m.state == mBackoff },
			func(a, b *mMsg) bool { return a.at < b.at || a.at == b.at && byRef(a, b) })
	}
	q.deadLetter(victim, ReasonMaxLen)
}

func (q *model) consumer(id ConsumerID) *mConsumer {
	for _, c := range q.consumers {
		if c.id == id {
			return c
		}
	}
	return nil
}

func (q *model) unackedOf(c *mConsumer) []*mMsg {
	var out []*mMsg
	for _, m := range q.msgs {
		if m.state == mUnacked && m.owner == c {
			out = append(out, m)
		}
	}
	slices.SortFunc(out, func(a, b *mMsg) int { return int(a.id) - int(b.id) })
	return out
}

func (q *model) credit(c *mConsumer) bool {
	n, b := q.count(func(m *mMsg) bool { return m.state == mUnacked && m.owner == c })
	return (c.prefetch == 0 || n < int(c.prefetch)) && (c.prefetchBytes == 0 || b < c.prefetchBytes)
}

func (q *model) forgetIfIdle(c *mConsumer) {
	if !c.subscribed && len(q.unackedOf(c)) == 0 {
		q.consumers = slices.DeleteFunc(q.consumers, func(x *mConsumer) bool { return x == c })
	}
}

func (q *model) newRecord(id ConsumerID) *mConsumer {
	c := &mConsumer{id: id, reg: q.nextReg, ticket: q.nextTicket, lastID: q.lastID}
	q.nextReg++
	q.nextTicket++
	q.consumers = append(q.consumers, c)
	return c
}

func badID(id ConsumerID) bool {
	return id.IsZero() || len(id.Owner) > base.QueueFieldBytesMax || len(id.Name) > base.QueueFieldBytesMax
}

func (q *model) subscribe(s *Subscribe) Result {
	if badID(s.Consumer) || len(s.Tag) > base.QueueFieldBytesMax {
		return Result{Err: base.Errorf(base.CodeInvalidArgument, "id")}
	}
	c := q.consumer(s.Consumer)
	if c != nil && c.subscribed {
		return Result{Err: base.Errorf(base.CodePreconditionFailed, "subscribed")}
	}
	for _, o := range q.consumers {
		if o.subscribed && (o.exclusive || s.Exclusive) {
			return Result{Err: base.Errorf(base.CodeResourceLocked, "exclusive")}
		}
	}
	if c == nil {
		if len(q.consumers) >= q.maxConsumers {
			return Result{Err: base.Errorf(base.CodeOverloaded, "consumers")}
		}
		c = q.newRecord(s.Consumer)
	} else {
		c.reg, c.ticket = q.nextReg, q.nextTicket
		q.nextReg++
		q.nextTicket++
	}
	c.tag, c.prio, c.prefetch, c.prefetchBytes, c.exclusive, c.subscribed = s.Tag, s.Priority, s.PrefetchCount, s.PrefetchBytes, s.Exclusive, true
	q.use()
	if q.cfg.SingleActiveConsumer && q.active == nil {
		q.active = c
		q.emit(Effect{Kind: EffectActiveConsumer, Consumer: c.id})
	}
	return Result{}
}

func (q *model) unsubscribe(c *mConsumer) {
	c.subscribed = false
	if q.subscribedCount() == 0 {
		q.use()
	}
}

func (q *model) handOver() {
	var next *mConsumer
	for _, c := range q.consumers {
		if c.subscribed && (next == nil || c.prio > next.prio || c.prio == next.prio && c.reg < next.reg) {
			next = c
		}
	}
	q.active = next
	e := Effect{Kind: EffectActiveConsumer}
	if next != nil {
		e.Consumer = next.id
	}
	q.emit(e)
}

func (q *model) cancel(c *Cancel) Result {
	cons := q.consumer(c.Consumer)
	if cons == nil || !cons.subscribed {
		return Result{Err: base.Errorf(base.CodeNotFound, "consumer")}
	}
	q.unsubscribe(cons)
	if q.active == cons {
		q.handOver()
	}
	q.forgetIfIdle(cons)
	return Result{}
}

func (q *model) byReg(keep func(*mConsumer) bool) []*mConsumer {
	var cs []*mConsumer
	for _, c := range q.consumers {
		if keep(c) {
			cs = append(cs, c)
		}
	}
	slices.SortFunc(cs, func(a, b *mConsumer) int { return int(a.reg) - int(b.reg) })
	return cs
}

func (q *model) down(d *ConsumerDown) Result {
	cs := q.byReg(func(c *mConsumer) bool { return c.id.Owner == d.Owner })
	gone := false
	for _, c := range cs {
		if c.subscribed {
			q.unsubscribe(c)
			gone = gone || q.active == c
		}
	}
	n := 0
	for _, c := range cs {
		for _, m := range q.unackedOf(c) {
			q.requeue(m, ReturnReasonConsumerDown)
			n++
		}
		q.forgetIfIdle(c)
	}
	if gone {
		q.handOver()
	}
	return Result{Count: n}
}

func (q *model) readyCount() int {
	n, _ := q.count(func(m *mMsg) bool { return m.state == mReady })
	return n
}

func (q *model) deliver(c *mConsumer, m *mMsg) uint64 {
	c.lastID++
	q.lastID = max(q.lastID, c.lastID)
	m.state, m.owner, m.id, m.deadline = mUnacked, c, c.lastID, 0
	if q.cfg.AckTimeoutMs > 0 {
		m.deadline = q.now + int64(q.cfg.AckTimeoutMs)
	}
	q.ctr.Delivered++
	if m.redelivered {
		q.ctr.Redelivered++
	}
	return c.lastID
}

func (q *model) get(g *Get) Result {
	if g.Consumer.IsZero() && !g.AutoAck {
		return Result{Err: base.Errorf(base.CodeInvalidArgument, "anonymous")}
	}
	if !g.AutoAck {
		if badID(g.Consumer) {
			return Result{Err: base.Errorf(base.CodeInvalidArgument, "id")}
		}
		if q.consumer(g.Consumer) == nil && len(q.consumers) >= q.maxConsumers {
			return Result{Err: base.Errorf(base.CodeOverloaded, "consumers")}
		}
	}
	q.use()
	m := q.next()
	if m == nil {
		return Result{Count: q.readyCount()}
	}
	d := Delivery{Consumer: g.Consumer, Ref: m.ref, At: m.loc(), Redelivered: m.redelivered, DeliveryCount: uint32(m.count), Bytes: m.bytes}
	if g.AutoAck {
		q.ctr.Delivered++
		if m.redelivered {
			q.ctr.Redelivered++
		}
		q.ctr.Acked++
		q.remove(m)
	} else {
		c := q.consumer(g.Consumer)
		if c == nil {
			c = q.newRecord(g.Consumer)
		}
		d.DeliveryID = q.deliver(c, m)
	}
	return Result{Found: true, Delivery: d, Count: q.readyCount()}
}

func (q *model) settle(id ConsumerID, ids []uint64, upTo uint64, ret *Return) Result {
	c := q.consumer(id)
	switch {
	case c == nil:
		return Result{Err: base.Errorf(base.CodeNotFound, "consumer")}
	case len(ids) > 0 && upTo > 0, len(ids) > base.QueueSettleIDsMax, ret != nil && len(ret.Reason) > base.QueueFieldBytesMax:
		return Result{Err: base.Errorf(base.CodeInvalidArgument, "args")}
	}
	byID := func(d uint64) *mMsg {
		return q.find(func(m *mMsg) bool { return m.state == mUnacked && m.owner == c && m.id == d })
	}
	for i, d := range ids {
		if byID(d) == nil || slices.Contains(ids[:i], d) {
			return Result{Err: base.Errorf(base.CodePreconditionFailed, "unknown")}
		}
	}
	var todo []*mMsg
	if upTo > 0 {
		for _, m := range q.unackedOf(c) {
			if m.id <= upTo {
				todo = append(todo, m)
			}
		}
	}
	for _, d := range ids {
		todo = append(todo, byID(d))
	}
	for _, m := range todo {
		switch {
		case ret == nil:
			q.ctr.Acked++
			q.remove(m)
		case ret.Requeue:
			q.requeue(m, ret.Reason)
		default:
			m.owner = nil
			q.deadLetter(m, ReasonRejected)
		}
	}
	q.forgetIfIdle(c)
	return Result{Count: len(todo)}
}

func (q *model) delete(d *Delete) Result {
	if d.IfUnused && q.subscribedCount() > 0 {
		return Result{Err: base.Errorf(base.CodePreconditionFailed, "in use")}
	}
	if n, _ := q.waiting(); d.IfEmpty && n > 0 {
		return Result{Err: base.Errorf(base.CodePreconditionFailed, "not empty")}
	}
	for _, c := range q.byReg(func(c *mConsumer) bool { return c.subscribed }) {
		q.emit(Effect{Kind: EffectConsumerCancelled, Consumer: c.id})
	}
	n := len(q.msgs)
	q.ctr.Deleted += uint64(n)
	q.msgs, q.consumers, q.active, q.deleted = nil, nil, nil, true
	q.dedupeOrder, q.dedupeSeen = nil, map[string]int64{}
	return Result{Count: n}
}

func (q *model) configure(c *Configure) Result {
	cfg := c.Config
	if err := cfg.Validate(); err != nil {
		return Result{Err: err}
	}
	if cfg.MaxPriority != q.cfg.MaxPriority {
		return Result{Err: base.Errorf(base.CodePreconditionFailed, "priority")}
	}
	old := q.cfg
	q.cfg = cfg
	q.cfg.Retry.Reasons = slices.Clone(cfg.Retry.Reasons)
	if cfg.DedupeWindowMs == 0 {
		q.dedupeOrder, q.dedupeSeen = nil, map[string]int64{}
	}
	if old.SingleActiveConsumer != cfg.SingleActiveConsumer {
		q.active = nil
		if cfg.SingleActiveConsumer && q.subscribedCount() > 0 {
			q.handOver()
		}
	}
	return Result{}
}

func (q *model) dispatch() {
	for {
		var best *mConsumer
		for _, c := range q.consumers {
			if !c.subscribed || !q.credit(c) || q.cfg.SingleActiveConsumer && q.active != c {
				continue
			}
			if best == nil || c.prio > best.prio || c.prio == best.prio && c.ticket < best.ticket {
				best = c
			}
		}
		m := q.next()
		if best == nil || m == nil {
			return
		}
		id := q.deliver(best, m)
		q.emit(Effect{Kind: EffectDeliver, Consumer: best.id, DeliveryID: id, Ref: m.ref, Redelivered: m.redelivered,
			DeliveryCount: uint32(m.count), Bytes: m.bytes})
		best.ticket = q.nextTicket
		q.nextTicket++
	}
}

func (q *model) stats() Stats {
	s := Stats{Counters: q.ctr, Consumers: q.subscribedCount(), LastUsedMs: q.lastUsed}
	s.Ready, s.ReadyBytes = q.count(func(m *mMsg) bool { return m.state == mReady })
	s.Unacked, s.UnackedBytes = q.count(func(m *mMsg) bool { return m.state == mUnacked })
	s.Delayed, s.DelayedBytes = q.count(func(m *mMsg) bool { return m.state == mDelayed || m.state == mBackoff })
	s.DeadLetterPending, _ = q.count(func(m *mMsg) bool { return m.state == mDLX })
	return s
}

// floor is the lowest place a body lies.
func (q *model) floor() uint64 {
	f := FloorNone
	for _, m := range q.msgs {
		f = min(f, m.loc().Index)
	}
	return f
}

func (q *model) relocate(c *Relocate) Result {
	if c.Cutoff > c.Index || len(c.Refs) > base.QueueEnqueueMessagesMax {
		return Result{Err: base.Errorf(base.CodeInvalidArgument, "relocate")}
	}
	for i := 1; i < len(c.Refs); i++ {
		if !c.Refs[i-1].Less(c.Refs[i]) {
			return Result{Err: base.Errorf(base.CodeInvalidArgument, "relocate order")}
		}
	}
	// Every unlisted, unmoved body below the cutoff stays, and so does
	// every unmoved one from the lowest of them up.
	cut, n := c.Cutoff, 0
	for _, m := range q.msgs {
		if _, ok := slices.BinarySearchFunc(c.Refs, m.ref, Ref.Compare); !ok && !m.moved && m.ref.Index < c.Cutoff {
			cut = min(cut, m.ref.Index)
		}
	}
	for _, m := range q.msgs {
		k, ok := slices.BinarySearchFunc(c.Refs, m.ref, Ref.Compare)
		if ok && m.loc().Index < c.Cutoff && (m.moved || m.ref.Index < cut) {
			m.moved, m.body = true, Ref{Index: c.Index, Slot: uint32(k)}
			n++
		}
	}
	if n > 0 {
		q.below = max(q.below, cut)
		q.ctr.Relocated += uint64(n)
	}
	return Result{Count: n}
}

func (q *model) pending() []Effect {
	var dl []*mMsg
	for _, m := range q.msgs {
		if m.state == mDLX {
			dl = append(dl, m)
		}
	}
	slices.SortFunc(dl, func(a, b *mMsg) int { return int(a.dlSeq) - int(b.dlSeq) })
	out := []Effect{}
	for _, m := range dl {
		out = append(out, Effect{Kind: EffectDeadLetter, Ref: m.ref, Reason: m.reason, Target: q.cfg.DeadLetterTarget,
			AtMs: m.dlAt, DeliveryCount: uint32(m.count), Bytes: m.bytes})
	}
	return out
}

func (q *model) browse(from Ref, max int) []Browsed {
	var out []Browsed
	ms := slices.Clone(q.msgs)
	slices.SortFunc(ms, func(a, b *mMsg) int { return a.ref.Compare(b.ref) })
	for _, m := range ms {
		if m.state == mReady && !m.ref.Less(from) && len(out) < max {
			out = append(out, Browsed{Ref: m.ref, Bytes: m.bytes, Priority: m.prio, DeliveryCount: uint32(m.count),
				Redelivered: m.redelivered, ExpireAtMs: m.expireAt, OrderingKey: m.key})
		}
	}
	return out
}

// used by the property test to name things in failures
func (m *mMsg) String() string {
	var b strings.Builder
	b.WriteString(m.ref.String())
	return b.String()
}

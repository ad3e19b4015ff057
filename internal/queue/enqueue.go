package queue

import (
	"crypto/sha256"

	"github.com/ferry-mq/ferry/internal/base"
)

func (q *Queue) enqueue(cmd *Enqueue) Result {
	if err := q.validateEnqueue(cmd); err != nil {
		return Result{Err: err}
	}
	q.senders.expire(q.now - base.QueueSenderIdle.Milliseconds())
	q.outcomes = q.outcomes[:0]
	n := 0
	for i := range cmd.Messages {
		o := q.enqueueOne(&cmd.Messages[i])
		q.outcomes = append(q.outcomes, o)
		if o == OutcomeEnqueued {
			n++
		}
	}
	if len(cmd.Messages) > 0 {
		q.lastRef, q.hasRef = cmd.Messages[len(cmd.Messages)-1].Ref, true
	}
	return Result{Outcomes: q.outcomes, Count: n}
}

// validateEnqueue checks the whole command first, so that a bad message
// refuses the command without a partial effect.
func (q *Queue) validateEnqueue(cmd *Enqueue) error {
	if len(cmd.Messages) > base.QueueEnqueueMessagesMax {
		return base.Errorf(base.CodeInvalidArgument, "queue: %d messages is over the limit %d", len(cmd.Messages), base.QueueEnqueueMessagesMax)
	}
	prev, hasPrev := q.lastRef, q.hasRef
	for i := range cmd.Messages {
		m := &cmd.Messages[i]
		if hasPrev && !prev.Less(m.Ref) {
			return base.Errorf(base.CodeInvalidArgument, "queue: message ref %s is not above %s", m.Ref, prev)
		}
		prev, hasPrev = m.Ref, true
		if len(m.DedupeID) > base.QueueFieldBytesMax || len(m.OrderingKey) > base.QueueFieldBytesMax || len(m.MessageID) > base.QueueFieldBytesMax {
			return base.Errorf(base.CodeInvalidArgument, "queue: message %s has a string over %d bytes", m.Ref, base.QueueFieldBytesMax)
		}
		if m.TTLms > base.QueueDurationMsMax {
			return base.Errorf(base.CodeInvalidArgument, "queue: message %s ttl %d ms is over the limit", m.Ref, m.TTLms)
		}
		if m.NotBeforeMs < 0 || m.NotBeforeMs > base.QueueTimeMsMax {
			return base.Errorf(base.CodeInvalidArgument, "queue: message %s not-before %d out of range", m.Ref, m.NotBeforeMs)
		}
		if m.Sender != (SenderID{}) && !m.Sender.Valid() {
			return base.Errorf(base.CodeInvalidArgument, "queue: message %s has sender %d number %d", m.Ref, m.Sender.Lane, m.Sender.Seq)
		}
	}
	return nil
}

// enqueueOne enqueues in unless its sender sent it before (Message.Sender).
func (q *Queue) enqueueOne(in *Message) Outcome {
	if in.Sender.Lane == 0 {
		return q.admit(in)
	}
	if o, sent := q.senders.outcome(in.Sender); sent {
		q.ctr.Resent++
		return o
	}
	o := q.admit(in)
	if o == OutcomeEnqueued || o == OutcomeDeadLettered {
		// A refused message or a duplicate by dedupe id left nothing to
		// enqueue twice: sent again, it is judged again.
		if q.senders.record(in.Sender, o == OutcomeDeadLettered, q.now, q.lim.senders, q.lim.senderRanges) {
			q.ctr.SendersEvicted++
		}
	}
	return o
}

// admit enqueues in, dead-letters it at once or refuses it.
func (q *Queue) admit(in *Message) Outcome {
	var dk dedupeKey
	dedupe := in.DedupeID != "" && q.cfg.DedupeWindowMs > 0
	if dedupe {
		dk = dedupeKeyOf(in.DedupeID)
		if q.dedupe.contains(dk, q.now) {
			q.ctr.Deduplicated++
			return OutcomeDuplicate
		}
	}
	if q.live() >= q.lim.messages {
		q.ctr.Rejected++
		return OutcomeRejected
	}
	if q.cfg.Overflow != OverflowDropHead && q.overLimit(1, uint64(in.Bytes)) {
		if q.cfg.Overflow == OverflowRejectPublish {
			q.ctr.Rejected++
			return OutcomeRejected
		}
		q.ctr.OverflowDeadLettered++
		q.deadLetter(q.newMsg(in, false), ReasonMaxLen)
		return OutcomeDeadLettered
	}
	if dedupe {
		if q.dedupe.add(dk, q.now+int64(q.cfg.DedupeWindowMs), q.now, q.lim.dedupeIDs) {
			q.ctr.DedupeEvicted++
		}
	}
	s := q.newMsg(in, true)
	q.ctr.Enqueued++
	if in.NotBeforeMs > q.now {
		q.toDelayed(s, in.NotBeforeMs, stDelayed)
	} else {
		q.join(s, true)
	}
	if q.cfg.Overflow == OverflowDropHead {
		for q.overLimit(0, 0) {
			q.dropHead()
		}
	}
	return OutcomeEnqueued
}

// overLimit reports whether the waiting messages plus n more messages of
// b bytes exceed a length limit.
func (q *Queue) overLimit(n int, b uint64) bool {
	count := uint64(q.ready + q.delayed + n)
	bytes := q.readyBytes + q.delayedBytes + b
	return q.cfg.MaxLength > 0 && count > q.cfg.MaxLength || q.cfg.MaxLengthBytes > 0 && bytes > q.cfg.MaxLengthBytes
}

// newMsg stores in in a fresh slot (state free: the caller places it).
func (q *Queue) newMsg(in *Message, withKey bool) uint32 {
	s := q.arena.alloc()
	m := q.arena.at(s)
	*m = msg{index: in.Ref.Index, refSlot: in.Ref.Slot, bytes: in.Bytes, seed: jitterSeed(in), hidx: noPos, prio: in.Priority}
	q.places.add(in.Ref.Index)
	ttl := in.TTLms
	if q.cfg.MessageTTLms > 0 && (ttl == 0 || q.cfg.MessageTTLms < ttl) {
		ttl = q.cfg.MessageTTLms
	}
	if ttl > 0 {
		m.expireAt = q.now + int64(ttl)
	}
	if withKey && in.OrderingKey != "" {
		id := q.keys.id(in.OrderingKey)
		q.keys.keys[id].refs++
		m.key = id
	}
	return s
}

// dedupeKey is a dedupe id as stored: ids of up to QueueDedupeIDRawBytes
// as they are (n is their length), longer ones as the first 16 bytes of
// their SHA-256 (n is hashedKey), so no raw id can equal a hashed one.
type dedupeKey struct {
	b [base.QueueDedupeIDRawBytes]byte
	n uint8
}

const hashedKey = 0xFF

func dedupeKeyOf(id string) dedupeKey {
	var k dedupeKey
	if len(id) <= base.QueueDedupeIDRawBytes {
		copy(k.b[:], id)
		k.n = uint8(len(id))
		return k
	}
	sum := sha256.Sum256([]byte(id))
	copy(k.b[:], sum[:])
	k.n = hashedKey
	return k
}

type dedupeEntry struct {
	key      dedupeKey
	deadline int64
}

// dedupeWindow remembers dedupe ids until their deadline. order holds
// every insertion in insertion order; seen maps an id to its latest
// deadline. A lookup compares deadlines, so expiry through order is only
// housekeeping and may lag (when the window shrank, later entries can have
// earlier deadlines).
type dedupeWindow struct {
	seen  map[dedupeKey]int64
	order ring[dedupeEntry]
}

func (w *dedupeWindow) contains(k dedupeKey, now int64) bool {
	d, ok := w.seen[k]
	return ok && d > now
}

// add remembers k until deadline; it reports whether a live id had to be
// forgotten early because the window holds max ids.
func (w *dedupeWindow) add(k dedupeKey, deadline, now int64, max int) bool {
	evicted := false
	for w.order.Len() >= max {
		e := w.order.PopFront()
		if d, ok := w.seen[e.key]; ok && d == e.deadline {
			delete(w.seen, e.key)
			evicted = evicted || d > now
		}
	}
	w.seen[k] = deadline
	w.order.PushBack(dedupeEntry{key: k, deadline: deadline})
	w.expire(now) // an eviction may have uncovered expired entries: keep the front live
	return evicted
}

func (w *dedupeWindow) expire(now int64) {
	for w.order.Len() > 0 && w.order.Front().deadline <= now {
		e := w.order.PopFront()
		if d, ok := w.seen[e.key]; ok && d == e.deadline {
			delete(w.seen, e.key)
		}
	}
}

func (w *dedupeWindow) clear() {
	clear(w.seen)
	w.order.Clear()
}

package queue

import (
	"fmt"
	"slices"
)

// senderTable remembers, per sender (Message.Sender's Lane), which of its
// messages were applied, as ranges of their numbers, so that a message
// sent again is answered as it was the first time instead of being
// enqueued twice (DESIGN.md "Senders"). It keeps the exact set of numbers
// applied, not a high-water mark: a lane's message lost with a leader's
// uncommitted entries has a lower number than later ones applied after
// it, and its resend must be enqueued.
//
// Senders form a list by when something of theirs was last applied,
// oldest first, which the queue's clock only moves forward along: the
// oldest is the one forgotten at QueueSendersMax, and the front is the
// first to go idle.
type senderTable struct {
	byLane         map[uint64]*sender
	oldest, newest *sender
	last           *sender // the last one looked up: a batch's messages come in runs of one lane
}

type sender struct {
	lane         uint64
	lastMs       int64      // queue time of its last applied message
	ranges       []seqRange // ascending, disjoint; neighbours touch only when their kinds differ
	older, newer *sender
}

// seqRange is a sender's numbers [from, to), applied with one outcome.
type seqRange struct {
	from, to uint64
	lettered bool // dead-lettered at once (reject-publish-dlx); else enqueued
}

// outcome returns what the message id named was answered when it was
// applied, and whether it was.
func (t *senderTable) outcome(id SenderID) (Outcome, bool) {
	s := t.find(id.Lane)
	if s == nil {
		return 0, false
	}
	for i := len(s.ranges) - 1; i >= 0; i-- { // the newest numbers are the likeliest
		r := s.ranges[i]
		if id.Seq >= r.to {
			return 0, false
		}
		if id.Seq >= r.from {
			if r.lettered {
				return OutcomeDeadLettered, true
			}
			return OutcomeDuplicate, true
		}
	}
	return 0, false
}

// record remembers that id, which outcome did not find, was applied at
// now, dead-lettered or enqueued. It reports whether another sender had to
// be forgotten to make room (the table holds maxSenders).
func (t *senderTable) record(id SenderID, lettered bool, now int64, maxSenders, maxRanges int) (evicted bool) {
	s := t.find(id.Lane)
	if s == nil {
		if len(t.byLane) >= maxSenders {
			t.remove(t.oldest)
			evicted = true
		}
		if t.byLane == nil {
			t.byLane = map[uint64]*sender{}
		}
		s = &sender{lane: id.Lane}
		t.byLane[id.Lane] = s
		t.last = s
		t.pushNewest(s)
	} else if s != t.newest {
		t.unlink(s)
		t.pushNewest(s)
	}
	s.lastMs = now
	s.add(id.Seq, lettered, maxRanges)
	return evicted
}

// add puts seq, in no range yet, into s's ranges, forgetting the lowest
// range past maxRanges.
func (s *sender) add(seq uint64, lettered bool, maxRanges int) {
	n := len(s.ranges)
	if n > 0 && s.ranges[n-1].to == seq && s.ranges[n-1].lettered == lettered {
		s.ranges[n-1].to++ // the usual case: the next number
		return
	}
	i, _ := slices.BinarySearchFunc(s.ranges, seq, func(r seqRange, seq uint64) int {
		if r.from > seq {
			return 1
		}
		return -1
	})
	joinLeft := i > 0 && s.ranges[i-1].to == seq && s.ranges[i-1].lettered == lettered
	joinRight := i < n && s.ranges[i].from == seq+1 && s.ranges[i].lettered == lettered
	switch {
	case joinLeft && joinRight:
		s.ranges[i-1].to = s.ranges[i].to
		s.ranges = slices.Delete(s.ranges, i, i+1)
	case joinLeft:
		s.ranges[i-1].to++
	case joinRight:
		s.ranges[i].from--
	default:
		s.ranges = slices.Insert(s.ranges, i, seqRange{from: seq, to: seq + 1, lettered: lettered})
	}
	if len(s.ranges) > maxRanges {
		s.ranges = slices.Delete(s.ranges, 0, 1)
	}
}

// expire forgets the senders nothing was applied from after cutoff.
func (t *senderTable) expire(cutoff int64) {
	for t.oldest != nil && t.oldest.lastMs <= cutoff {
		t.remove(t.oldest)
	}
}

func (t *senderTable) len() int { return len(t.byLane) }

// find returns lane's sender, or nil.
func (t *senderTable) find(lane uint64) *sender {
	if t.last != nil && t.last.lane == lane {
		return t.last
	}
	s := t.byLane[lane]
	if s != nil {
		t.last = s
	}
	return s
}

func (t *senderTable) remove(s *sender) {
	t.unlink(s)
	delete(t.byLane, s.lane)
	if t.last == s {
		t.last = nil
	}
}

func (t *senderTable) unlink(s *sender) {
	if s.older != nil {
		s.older.newer = s.newer
	} else {
		t.oldest = s.newer
	}
	if s.newer != nil {
		s.newer.older = s.older
	} else {
		t.newest = s.older
	}
	s.older, s.newer = nil, nil
}

func (t *senderTable) pushNewest(s *sender) {
	s.older = t.newest
	if t.newest != nil {
		t.newest.newer = s
	} else {
		t.oldest = s
	}
	t.newest = s
}

// check verifies the table's invariants against the limits and the
// queue's time now.
func (t *senderTable) check(now int64, maxSenders, maxRanges int) error {
	if len(t.byLane) > maxSenders {
		return fmt.Errorf("senders: %d, limit %d", len(t.byLane), maxSenders)
	}
	if t.last != nil && t.byLane[t.last.lane] != t.last {
		return fmt.Errorf("senders: the last looked up, lane %d, is forgotten", t.last.lane)
	}
	n := 0
	var prev *sender
	for s := t.oldest; s != nil; prev, s = s, s.newer {
		n++
		if n > len(t.byLane) || t.byLane[s.lane] != s || s.older != prev {
			return fmt.Errorf("senders: the list and the map of lanes disagree at lane %d", s.lane)
		}
		if prev != nil && s.lastMs < prev.lastMs || s.lastMs > now {
			return fmt.Errorf("senders: lane %d applied at %d, out of order or after now (%d)", s.lane, s.lastMs, now)
		}
		if err := checkRanges(s.ranges, maxRanges); err != nil {
			return fmt.Errorf("senders: lane %d: %w", s.lane, err)
		}
	}
	if n != len(t.byLane) || t.newest != prev {
		return fmt.Errorf("senders: %d in the list, %d lanes", n, len(t.byLane))
	}
	return nil
}

func checkRanges(rs []seqRange, maxRanges int) error {
	if len(rs) == 0 || len(rs) > maxRanges {
		return fmt.Errorf("%d ranges, want 1 to %d", len(rs), maxRanges)
	}
	for i, r := range rs {
		if r.from >= r.to {
			return fmt.Errorf("empty range [%d, %d)", r.from, r.to)
		}
		if i > 0 && (r.from < rs[i-1].to || r.from == rs[i-1].to && r.lettered == rs[i-1].lettered) {
			return fmt.Errorf("range [%d, %d) overlaps or extends [%d, %d)", r.from, r.to, rs[i-1].from, rs[i-1].to)
		}
	}
	return nil
}

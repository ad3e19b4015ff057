package queue

import (
	"math/bits"
	"slices"

	"github.com/ferry-mq/ferry/internal/base"
)

// level holds the deliverable messages of one priority level, in Ref
// order: fifo has fresh enqueues (their Refs only grow, so appending keeps
// it sorted); back has everything that came back or was released out of
// Ref order (returns, delay releases, promoted keyed messages). The next
// message of a level is the smaller head of the two. Messages that expire
// in place stay as tombs until they reach a head (see DESIGN.md).
type level struct {
	fifo fifo[uint32]
	back heap[uint32]
	live int // messages that are not tombs
}

// keyState is one ordering key. Its ready messages form a queue in join
// order: the first is "eligible" (it sits in a level and can be delivered)
// unless one of the key's messages is out (unacknowledged, or waiting for
// a retry backoff); the rest wait here, outside the levels.
type keyState struct {
	name     string // "" for an unused table entry
	refs     int    // live messages carrying this key, in any state but dead-letter pending
	eligible uint32 // the key's message in a level, or noSlot
	out      uint32 // the key's unacknowledged or backoff message, or noSlot
	waiting  ring[uint32]
	hidx     int // position in Queue.parked, -1 when not parked
}

// keyTable interns ordering keys; messages refer to them by id.
type keyTable struct {
	keys   []keyState // by id; id 0 means "no key" and is never used
	free   []uint32
	byName map[string]uint32
}

func newKeyTable() *keyTable {
	return &keyTable{keys: make([]keyState, 1), byName: map[string]uint32{}}
}

// id returns the id of key name, creating it.
func (kt *keyTable) id(name string) uint32 {
	if id, ok := kt.byName[name]; ok {
		return id
	}
	var id uint32
	if n := len(kt.free); n > 0 {
		id = kt.free[n-1]
		kt.free = kt.free[:n-1]
	} else {
		kt.keys = append(kt.keys, keyState{})
		id = uint32(len(kt.keys) - 1)
	}
	kt.keys[id] = keyState{name: name, eligible: noSlot, out: noSlot, hidx: -1}
	kt.byName[name] = id
	return id
}

func (kt *keyTable) remove(id uint32) {
	delete(kt.byName, kt.keys[id].name)
	kt.keys[id] = keyState{hidx: -1}
	kt.free = append(kt.free, id)
}

func (kt *keyTable) parkedLess(a *arena) func(x, y uint32) bool {
	return func(x, y uint32) bool {
		return a.at(kt.keys[x].waiting.Front()).refLess(a.at(kt.keys[y].waiting.Front()))
	}
}

func (kt *keyTable) noteParked(id uint32, pos int) { kt.keys[id].hidx = pos }

func (q *Queue) levelOf(m *msg) int { return int(min(m.prio, q.cfg.MaxPriority)) }

// topLevel is the highest level with a deliverable message, or -1.
func (q *Queue) topLevel() int {
	for w := len(q.nonEmpty) - 1; w >= 0; w-- {
		if x := q.nonEmpty[w]; x != 0 {
			return w*64 + 63 - bits.LeadingZeros64(x)
		}
	}
	return -1
}

func (q *Queue) levelPush(s uint32, fresh bool) {
	l := q.levelOf(q.arena.at(s))
	lv := &q.levels[l]
	if fresh {
		lv.fifo.PushBack(s)
	} else {
		lv.back.Push(s)
	}
	lv.live++
	q.nonEmpty[l/64] |= 1 << (l % 64)
}

// takeFrom removes and returns the next message of level l, which must
// have one.
func (q *Queue) takeFrom(l int) uint32 {
	lv := &q.levels[l]
	var s uint32
	if lv.back.Len() == 0 || lv.fifo.Len() > 0 && q.arena.slotLess(lv.fifo.Front(), lv.back.Top()) {
		s = lv.fifo.PopFront()
	} else {
		s = lv.back.Pop()
	}
	lv.live--
	q.normalizeLevel(l)
	return s
}

// normalizeLevel frees the tombs at the heads of level l, so that its heads
// are live, and keeps its nonEmpty bit true.
func (q *Queue) normalizeLevel(l int) {
	lv := &q.levels[l]
	for lv.fifo.Len() > 0 && q.arena.at(lv.fifo.Front()).state() == stTomb {
		q.freeTomb(lv.fifo.PopFront())
	}
	for lv.back.Len() > 0 && q.arena.at(lv.back.Top()).state() == stTomb {
		q.freeTomb(lv.back.Pop())
	}
	if lv.live > 0 {
		q.nonEmpty[l/64] |= 1 << (l % 64)
	} else {
		if lv.fifo.Len() != 0 || lv.back.Len() != 0 {
			base.Bugf("queue: level %d has no live message but holds %d+%d slots", l, lv.fifo.Len(), lv.back.Len())
		}
		q.nonEmpty[l/64] &^= 1 << (l % 64)
	}
}

func (q *Queue) freeTomb(s uint32) {
	if q.arena.at(s).state() != stTomb {
		base.Bugf("queue: freeing slot %d that is not a tomb", s)
	}
	q.free(s)
	q.tombs--
}

// readyIn counts slot s as ready; the caller places it.
func (q *Queue) readyIn(s uint32) {
	m := q.arena.at(s)
	m.setState(stReady)
	q.ready++
	q.readyBytes += uint64(m.bytes)
	if m.expireAt != 0 {
		q.ttl.Push(s)
	}
}

// leaveReady uncounts a ready message taken out of its container.
func (q *Queue) leaveReady(m *msg) {
	q.ready--
	q.readyBytes -= uint64(m.bytes)
	if m.hidx != noPos {
		q.ttl.Remove(int(m.hidx))
	}
}

func (q *Queue) toDelayed(s uint32, at int64, state uint8) {
	m := q.arena.at(s)
	m.setState(state)
	q.delayed++
	q.delayedBytes += uint64(m.bytes)
	if m.expireAt != 0 && m.expireAt < at {
		at = m.expireAt // it will expire before it is due: wake for that instead
	}
	q.delay.Push(timed{at: at, slot: s})
}

func (q *Queue) leaveDelayed(m *msg) {
	q.delayed--
	q.delayedBytes -= uint64(m.bytes)
}

// join makes s ready as a newcomer to its key's order: fresh enqueues and
// released not-before delays. fresh means s has the highest Ref so far.
func (q *Queue) join(s uint32, fresh bool) {
	q.readyIn(s)
	m := q.arena.at(s)
	if m.key == 0 {
		q.levelPush(s, fresh)
		return
	}
	id := m.key
	k := &q.keys.keys[id]
	if k.out == noSlot && k.eligible == noSlot {
		k.eligible = s
		q.levelPush(s, fresh)
		return
	}
	k.waiting.PushBack(s)
	q.repark(id)
}

// backToReady puts a returned delivery (or a released backoff) back in its
// place: by Ref, ahead of everything enqueued after it. For a keyed
// message it becomes its key's eligible message again.
func (q *Queue) backToReady(s uint32) {
	m := q.arena.at(s)
	if m.expireAt != 0 && m.expireAt <= q.now {
		q.ctr.Expired++
		q.unkey(s)
		q.deadLetter(s, ReasonExpired)
		return
	}
	q.readyIn(s)
	if m.key != 0 {
		k := &q.keys.keys[m.key]
		if k.out != s || k.eligible != noSlot {
			base.Bugf("queue: returned keyed message %s is not its key's outstanding one", m.ref())
		}
		k.out, k.eligible = noSlot, s
		q.repark(m.key)
	}
	q.levelPush(s, false)
}

// release moves a due message out of the delay heap.
func (q *Queue) release(s uint32) {
	m := q.arena.at(s)
	q.leaveDelayed(m)
	if m.expireAt != 0 && m.expireAt <= q.now {
		q.ctr.Expired++
		q.unkey(s)
		q.deadLetter(s, ReasonExpired)
		return
	}
	if m.state() == stBackoff {
		q.backToReady(s)
	} else {
		q.join(s, false)
	}
}

// takeReady removes the next deliverable message (highest level, lowest
// Ref) and returns it, or noSlot. A keyed message is no longer its key's
// eligible one; the caller makes it the key's outstanding one (deliver) or
// releases the key (unkey).
func (q *Queue) takeReady() uint32 {
	l := q.topLevel()
	if l < 0 {
		return noSlot
	}
	s := q.takeFrom(l)
	m := q.arena.at(s)
	q.leaveReady(m)
	if m.key != 0 {
		k := &q.keys.keys[m.key]
		if k.eligible != s {
			base.Bugf("queue: level held keyed message %s that is not its key's eligible one", m.ref())
		}
		k.eligible = noSlot
	}
	return s
}

// unkey detaches s from its ordering key for good (it left the queue or is
// dead-letter pending), letting the key's next message become eligible.
func (q *Queue) unkey(s uint32) {
	m := q.arena.at(s)
	if m.key == 0 {
		return
	}
	id := m.key
	m.key = 0
	q.unkeyID(id, s)
}

func (q *Queue) unkeyID(id, s uint32) {
	k := &q.keys.keys[id]
	switch s {
	case k.out:
		k.out = noSlot
	case k.eligible:
		k.eligible = noSlot
	}
	k.refs--
	q.promote(id)
}

// promote makes the first waiting message of key id eligible when nothing
// of the key is eligible or out, and removes the key when no message
// carries it any more.
func (q *Queue) promote(id uint32) {
	k := &q.keys.keys[id]
	q.normalizeWaiting(k)
	if k.out == noSlot && k.eligible == noSlot && k.waiting.Len() > 0 {
		s := k.waiting.PopFront()
		k.eligible = s
		q.levelPush(s, false)
		q.normalizeWaiting(k)
	}
	q.repark(id)
	if k.refs == 0 {
		if k.out != noSlot || k.eligible != noSlot || k.waiting.Len() != 0 {
			base.Bugf("queue: key %q has no messages but holds some", k.name)
		}
		q.keys.remove(id)
	}
}

func (q *Queue) normalizeWaiting(k *keyState) {
	for k.waiting.Len() > 0 && q.arena.at(k.waiting.Front()).state() == stTomb {
		q.freeTomb(k.waiting.PopFront())
	}
}

// repark keeps key id in the parked heap exactly when its ready messages
// all wait behind an outstanding one.
func (q *Queue) repark(id uint32) {
	k := &q.keys.keys[id]
	want := k.out != noSlot && k.waiting.Len() > 0
	switch {
	case want && k.hidx < 0:
		q.parked.Push(id)
	case !want && k.hidx >= 0:
		q.parked.Remove(k.hidx)
	case want:
		q.parked.Fix(k.hidx)
	}
}

// expireReady handles a ready message whose TTL passed. It may sit in the
// middle of a container, so its slot becomes a tomb there and the message
// continues (to dead-letter pending, or dropped) in a fresh slot.
func (q *Queue) expireReady(s uint32) {
	m := q.arena.at(s)
	id := m.key
	inLevel := id == 0 || q.keys.keys[id].eligible == s
	l := q.levelOf(m)
	q.leaveReady(m)
	ns := q.arena.alloc()
	nm := q.arena.at(ns)
	*nm = *m
	nm.key, nm.hidx = 0, noPos
	m.setState(stTomb)
	m.key = 0
	q.tombs++
	if inLevel {
		q.levels[l].live--
	}
	if id != 0 {
		q.unkeyID(id, s)
	}
	if inLevel {
		q.normalizeLevel(l)
	}
	q.ctr.Expired++
	q.deadLetter(ns, ReasonExpired)
}

// dropHead removes one waiting message for a length limit: the next one to
// be delivered; if none is deliverable (all wait behind their keys), the
// first waiting message of the parked key with the oldest one; else the
// delayed message due first.
func (q *Queue) dropHead() {
	s := q.takeReady()
	switch {
	case s != noSlot:
	case q.parked.Len() > 0:
		k := &q.keys.keys[q.parked.Top()]
		s = k.waiting.PopFront()
		q.leaveReady(q.arena.at(s))
	case q.delay.Len() > 0:
		s = q.delay.Pop().slot
		q.leaveDelayed(q.arena.at(s))
	default:
		base.Bugf("queue: over the length limit with nothing waiting")
	}
	q.unkey(s)
	q.deadLetter(s, ReasonMaxLen)
}

// purge removes every ready and delayed message.
func (q *Queue) purge() int {
	n := q.ready + q.delayed
	for l := range q.levels {
		lv := &q.levels[l]
		for lv.fifo.Len() > 0 {
			q.free(lv.fifo.PopFront())
		}
		for _, s := range lv.back.items {
			q.free(s)
		}
		lv.fifo.Clear()
		lv.back.Clear()
		lv.live = 0
	}
	q.nonEmpty = [4]uint64{}
	q.ttl.Clear()
	for _, t := range q.delay.items {
		q.free(t.slot)
	}
	q.delay.Clear()
	q.parked.Clear()
	for id := 1; id < len(q.keys.keys); id++ {
		k := &q.keys.keys[id]
		if k.name == "" {
			continue
		}
		for k.waiting.Len() > 0 {
			q.free(k.waiting.PopFront())
		}
		k.waiting.Clear()
		k.eligible, k.hidx = noSlot, -1
		if k.out != noSlot && q.arena.at(k.out).state() == stFree {
			k.out = noSlot // a backoff message, released with the delay heap
		}
		// Only the unacknowledged message of a key survives a purge.
		k.refs = 0
		if k.out != noSlot {
			k.refs = 1
		} else {
			q.keys.remove(uint32(id))
		}
	}
	q.ready, q.delayed, q.tombs = 0, 0, 0
	q.readyBytes, q.delayedBytes = 0, 0
	q.ctr.Purged += uint64(n)
	return n
}

// dispatch delivers ready messages to consumers with credit: the next
// message to the consumer of highest priority that was served least
// recently.
func (q *Queue) dispatch() {
	for q.service.Len() > 0 {
		s := q.takeReady()
		if s == noSlot {
			return
		}
		c := q.service.Top()
		q.deliver(c, s, true)
		c.ticket = q.nextTicket
		q.nextTicket++
		q.reservice(c)
	}
}

// deliver hands s (just taken from ready) to c as an unacknowledged
// delivery and returns its delivery id.
func (q *Queue) deliver(c *consumer, s uint32, emit bool) uint64 {
	m := q.arena.at(s)
	if m.key != 0 {
		q.keys.keys[m.key].out = s
		q.repark(m.key)
	}
	id := q.toUnacked(c, s)
	q.ctr.Delivered++
	if m.redelivered() {
		q.ctr.Redelivered++
	}
	if emit {
		q.emit(Effect{Kind: EffectDeliver, Consumer: c.id, DeliveryID: id, Ref: m.ref(),
			Redelivered: m.redelivered(), DeliveryCount: uint32(m.count), Bytes: m.bytes})
	}
	return id
}

// Browsed describes a ready message, as Browse returns it.
type Browsed struct {
	Ref           Ref
	Bytes         uint32
	Priority      uint8
	DeliveryCount uint32
	Redelivered   bool
	ExpireAtMs    int64 // 0: no TTL
	OrderingKey   string
}

// Browse returns up to max ready messages with a Ref of at least from, in
// Ref order, without consuming them; max is capped at QueueBrowseMax. The
// caller owns the returned slice. It
// costs O(levels·log n + messages returned or requeued + keyed messages
// waiting behind their key).
func (q *Queue) Browse(from Ref, max int) []Browsed {
	max = min(max, base.QueueBrowseMax)
	if max <= 0 {
		return nil
	}
	var slots []uint32
	live := func(s uint32) bool {
		m := q.arena.at(s)
		return m.state() == stReady && !m.ref().Less(from)
	}
	for l := range q.levels {
		lv := &q.levels[l]
		i := q.fifoSearch(&lv.fifo, from)
		for taken := 0; i < lv.fifo.Len() && taken < max; i++ {
			if s := lv.fifo.At(i); live(s) {
				slots = append(slots, s)
				taken++
			}
		}
		for _, s := range lv.back.items {
			if live(s) {
				slots = append(slots, s)
			}
		}
	}
	for id := range q.keys.keys {
		k := &q.keys.keys[id]
		for i := 0; i < k.waiting.Len(); i++ {
			if s := k.waiting.At(i); live(s) {
				slots = append(slots, s)
			}
		}
	}
	slices.SortFunc(slots, func(x, y uint32) int { return q.arena.at(x).ref().Compare(q.arena.at(y).ref()) })
	if len(slots) > max {
		slots = slots[:max]
	}
	out := make([]Browsed, len(slots))
	for i, s := range slots {
		m := q.arena.at(s)
		out[i] = Browsed{Ref: m.ref(), Bytes: m.bytes, Priority: m.prio, DeliveryCount: uint32(m.count),
			Redelivered: m.redelivered(), ExpireAtMs: m.expireAt}
		if m.key != 0 {
			out[i].OrderingKey = q.keys.keys[m.key].name
		}
	}
	return out
}

// fifoSearch returns the first position in f whose Ref is at least from.
func (q *Queue) fifoSearch(f *fifo[uint32], from Ref) int {
	lo, hi := 0, f.Len()
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if q.arena.at(f.At(mid)).ref().Less(from) {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}

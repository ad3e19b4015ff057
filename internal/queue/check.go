package queue

import (
	"cmp"
	"fmt"

	"github.com/ferry-mq/ferry/internal/base"
)

// invariantsFullMax is the most live messages for which Apply runs the
// full O(n log n) check under ferry_invariants; above it only the counts
// are checked, so tagged tests of large queues stay fast.
const invariantsFullMax = 1 << 16

func (q *Queue) mustCheck() {
	var err error
	if q.arena.used <= invariantsFullMax {
		err = q.check()
	} else {
		err = q.checkConservation()
	}
	if err != nil {
		base.Bugf("queue: invariant broken: %v", err)
	}
}

// checker walks the whole state once, counting what it sees.
type checker struct {
	q       *Queue
	seen    []bool // by slot
	refs    []Ref  // of live messages
	keyRefs []int  // by key id
	ready   int    // live ready messages seen
	rbytes  uint64 // their bytes
	tombs   int
	withTTL int // ready messages with a TTL
}

// check verifies every structural invariant of the state and returns the
// first violation. Restore relies on it to refuse inconsistent snapshots,
// so it must not panic on any state restore can build.
func (q *Queue) check() error {
	// refs has room for every slot handed out: the live messages and tombs.
	ck := &checker{q: q, seen: make([]bool, q.arena.slots()), keyRefs: make([]int, len(q.keys.keys)),
		refs: make([]Ref, 0, q.arena.used)}
	for _, f := range []func() error{ck.levels, ck.keys, ck.ttl, ck.delayed, ck.consumers, ck.dlx, ck.arena,
		ck.totals, ck.refsUnique, ck.relocation, ck.places, ck.dedupe, ck.senders, q.checkConservation} {
		if err := f(); err != nil {
			return err
		}
	}
	return nil
}

// visit marks slot s seen and returns its message.
func (ck *checker) visit(s uint32, where string) (*msg, error) {
	if !ck.q.arena.holds(s) {
		return nil, fmt.Errorf("%s: slot %d out of the arena", where, s)
	}
	if ck.seen[s] {
		return nil, fmt.Errorf("%s: slot %d is in two places", where, s)
	}
	ck.seen[s] = true
	m := ck.q.arena.at(s)
	switch m.state() {
	case stFree:
		return nil, fmt.Errorf("%s: slot %d is free", where, s)
	case stTomb:
		ck.tombs++
	default:
		ck.refs = append(ck.refs, m.ref())
		if m.key != 0 {
			if int(m.key) >= len(ck.keyRefs) || ck.q.keys.keys[m.key].name == "" {
				return nil, fmt.Errorf("%s: message %s has unknown key %d", where, m.ref(), m.key)
			}
			ck.keyRefs[m.key]++
		}
	}
	return m, nil
}

func (ck *checker) readyMsg(m *msg, where string) error {
	if m.state() != stReady {
		return fmt.Errorf("%s: message %s in state %d, want ready", where, m.ref(), m.state())
	}
	if m.expireAt != 0 && m.expireAt <= ck.q.now {
		return fmt.Errorf("%s: ready message %s expired at %d, now %d", where, m.ref(), m.expireAt, ck.q.now)
	}
	ck.ready++
	ck.rbytes += uint64(m.bytes)
	if m.expireAt != 0 {
		ck.withTTL++
	}
	return nil
}

func (ck *checker) levels() error {
	q := ck.q
	if len(q.levels) != int(q.cfg.MaxPriority)+1 {
		return fmt.Errorf("%d levels for max priority %d", len(q.levels), q.cfg.MaxPriority)
	}
	for l := range q.levels {
		lv := &q.levels[l]
		live := 0
		var prev *msg
		where := fmt.Sprintf("level %d", l)
		check := func(s uint32, inFifo bool) error {
			m, err := ck.visit(s, where)
			if err != nil || m.state() == stTomb {
				return err
			}
			if err := ck.readyMsg(m, where); err != nil {
				return err
			}
			if q.levelOf(m) != l {
				return fmt.Errorf("level %d holds message %s of priority %d", l, m.ref(), m.prio)
			}
			if m.key != 0 && q.keys.keys[m.key].eligible != s {
				return fmt.Errorf("level %d holds keyed message %s that is not eligible", l, m.ref())
			}
			if inFifo && prev != nil && !prev.refLess(m) {
				return fmt.Errorf("level %d fifo out of Ref order at %s", l, m.ref())
			}
			if inFifo {
				prev = m
			}
			live++
			return nil
		}
		for i := 0; i < lv.fifo.Len(); i++ {
			if err := check(lv.fifo.At(i), true); err != nil {
				return err
			}
		}
		for _, s := range lv.back.items {
			if err := check(s, false); err != nil {
				return err
			}
		}
		if err := heapOrdered(&lv.back); err != nil {
			return fmt.Errorf("level %d returns: %w", l, err)
		}
		if live != lv.live {
			return fmt.Errorf("level %d counts %d live, holds %d", l, lv.live, live)
		}
		if lv.fifo.Len() > 0 && q.arena.at(lv.fifo.Front()).state() == stTomb ||
			lv.back.Len() > 0 && q.arena.at(lv.back.Top()).state() == stTomb {
			return fmt.Errorf("level %d has a tomb at a head", l)
		}
		if bit := q.nonEmpty[l/64]&(1<<(l%64)) != 0; bit != (live > 0) {
			return fmt.Errorf("level %d non-empty bit %v with %d live", l, bit, live)
		}
	}
	for l := len(q.levels); l < 256; l++ {
		if q.nonEmpty[l/64]&(1<<(l%64)) != 0 {
			return fmt.Errorf("non-empty bit set for missing level %d", l)
		}
	}
	return nil
}

func (ck *checker) keys() error {
	q := ck.q
	used := 0
	for id := 1; id < len(q.keys.keys); id++ {
		k := &q.keys.keys[id]
		if k.name == "" {
			if k.refs != 0 || k.waiting.Len() != 0 || k.hidx != -1 {
				return fmt.Errorf("free key id %d is not empty", id)
			}
			continue
		}
		used++
		if q.keys.byName[k.name] != uint32(id) {
			return fmt.Errorf("key %q is not indexed by name", k.name)
		}
		live := 0
		for i := 0; i < k.waiting.Len(); i++ {
			s := k.waiting.At(i)
			m, err := ck.visit(s, "key "+k.name)
			if err != nil {
				return err
			}
			if m.state() == stTomb {
				if i == 0 {
					return fmt.Errorf("key %q has a tomb at its head", k.name)
				}
				continue
			}
			if m.key != uint32(id) {
				return fmt.Errorf("key %q holds message %s of another key", k.name, m.ref())
			}
			if err := ck.readyMsg(m, "key "+k.name); err != nil {
				return err
			}
			live++
		}
		if err := ck.keyEnds(uint32(id), live); err != nil {
			return err
		}
	}
	if used != len(q.keys.byName) {
		return fmt.Errorf("%d keys in use, %d indexed", used, len(q.keys.byName))
	}
	if err := heapOrdered(&q.parked); err != nil {
		return fmt.Errorf("parked keys: %w", err)
	}
	return nil
}

func (ck *checker) keyEnds(id uint32, waiting int) error {
	q := ck.q
	k := &q.keys.keys[id]
	if k.eligible != noSlot && k.out != noSlot {
		return fmt.Errorf("key %q has both an eligible and an outstanding message", k.name)
	}
	if waiting > 0 && k.eligible == noSlot && k.out == noSlot {
		return fmt.Errorf("key %q has waiting messages and none eligible or outstanding", k.name)
	}
	if k.refs <= 0 {
		return fmt.Errorf("key %q in use with %d refs", k.name, k.refs)
	}
	for _, s := range []uint32{k.eligible, k.out} {
		if s != noSlot && (!q.arena.holds(s) || q.arena.at(s).key != id) {
			return fmt.Errorf("key %q names slot %d, which is not of the key", k.name, s)
		}
	}
	if k.eligible != noSlot && q.arena.at(k.eligible).state() != stReady {
		return fmt.Errorf("key %q: eligible message not ready", k.name)
	}
	if k.out != noSlot {
		if st := q.arena.at(k.out).state(); st != stUnacked && st != stBackoff {
			return fmt.Errorf("key %q: outstanding message in state %d", k.name, st)
		}
	}
	parked := k.out != noSlot && waiting > 0
	if parked != (k.hidx >= 0) || k.hidx >= q.parked.Len() || k.hidx >= 0 && q.parked.items[k.hidx] != id {
		return fmt.Errorf("key %q parked %v, heap position %d", k.name, parked, k.hidx)
	}
	return nil
}

func (ck *checker) ttl() error {
	q := ck.q
	for i, s := range q.ttl.items {
		if int64(s) >= int64(len(ck.seen)) {
			return fmt.Errorf("ttl entry for slot %d out of the arena", s)
		}
		m := q.arena.at(s)
		if m.state() != stReady || m.hidx != uint32(i) || m.expireAt == 0 {
			return fmt.Errorf("ttl entry %d (slot %d) does not match its message", i, s)
		}
	}
	if len(q.ttl.items) != ck.withTTL {
		return fmt.Errorf("ttl heap has %d entries for %d ready messages with a ttl", len(q.ttl.items), ck.withTTL)
	}
	return heapOrdered(&q.ttl)
}

func (ck *checker) delayed() error {
	q := ck.q
	n, b := 0, uint64(0)
	for _, t := range q.delay.items {
		m, err := ck.visit(t.slot, "delay heap")
		if err != nil {
			return err
		}
		if st := m.state(); st != stDelayed && st != stBackoff {
			return fmt.Errorf("delay heap holds %s in state %d", m.ref(), st)
		}
		if t.at <= q.now || m.expireAt != 0 && t.at > m.expireAt {
			return fmt.Errorf("delayed message %s due at %d (now %d, expiry %d)", m.ref(), t.at, q.now, m.expireAt)
		}
		if m.state() == stBackoff && m.key != 0 && q.keys.keys[m.key].out != t.slot {
			return fmt.Errorf("backoff message %s does not hold its key", m.ref())
		}
		if m.hidx != noPos {
			return fmt.Errorf("delayed message %s has a heap position", m.ref())
		}
		n++
		b += uint64(m.bytes)
	}
	if n != q.delayed || b != q.delayedBytes {
		return fmt.Errorf("delayed counts %d/%d bytes, holds %d/%d", q.delayed, q.delayedBytes, n, b)
	}
	return heapOrdered(&q.delay)
}

func (ck *checker) consumers() error {
	q := ck.q
	n, b, timers, subscribed, activeSeen := 0, uint64(0), 0, 0, false
	regs := map[uint64]bool{}
	tickets := map[uint64]bool{}
	for id, c := range q.consumers {
		if c.id != id || regs[c.reg] || tickets[c.ticket] || c.reg == 0 || c.reg >= q.nextReg || c.ticket >= q.nextTicket || c.lastID > q.lastID {
			return fmt.Errorf("consumer %s: bad identity or order (reg %d, ticket %d)", c.id, c.reg, c.ticket)
		}
		regs[c.reg], tickets[c.ticket] = true, true
		if err := ck.consumer(c, &n, &b, &timers); err != nil {
			return err
		}
		if c.subscribed {
			subscribed++
		}
		activeSeen = activeSeen || q.active == c
	}
	switch {
	case n != q.unacked || b != q.unackedBytes:
		return fmt.Errorf("unacked counts %d/%d bytes, holds %d/%d", q.unacked, q.unackedBytes, n, b)
	case timers != q.acks.Len():
		return fmt.Errorf("ack heap has %d entries for %d timed deliveries", q.acks.Len(), timers)
	case subscribed != q.subscribed:
		return fmt.Errorf("subscribed count %d, holds %d", q.subscribed, subscribed)
	case q.active != nil && (!activeSeen || !q.active.subscribed || !q.cfg.SingleActiveConsumer):
		return fmt.Errorf("active consumer invalid")
	case q.cfg.SingleActiveConsumer && q.subscribed > 0 && q.active == nil:
		return fmt.Errorf("single active consumer queue with consumers and none active")
	case q.exclusive != nil && (q.consumers[q.exclusive.id] != q.exclusive || !q.exclusive.subscribed || !q.exclusive.exclusive || q.subscribed != 1):
		return fmt.Errorf("exclusive consumer invalid")
	}
	for _, c := range q.consumers {
		if c.subscribed && c.exclusive && q.exclusive != c {
			return fmt.Errorf("exclusive consumer %s not recorded", c.id)
		}
	}
	for _, t := range q.acks.items {
		if t.at <= q.now {
			return fmt.Errorf("ack deadline %d not after now %d", t.at, q.now)
		}
	}
	if err := heapOrdered(&q.acks); err != nil {
		return fmt.Errorf("ack heap: %w", err)
	}
	return heapOrdered(&q.service)
}

func (ck *checker) consumer(c *consumer, n *int, b *uint64, timers *int) error {
	q := ck.q
	count, bytes := 0, uint64(0)
	prev := uint64(0)
	for i := 0; i < c.unacked.Len(); i++ {
		e := c.unacked.At(i)
		if e.id <= prev || e.id > c.lastID {
			return fmt.Errorf("consumer %s: delivery id %d out of order", c.id, e.id)
		}
		prev = e.id
		if e.slot == noSlot {
			if i == 0 {
				return fmt.Errorf("consumer %s: settled entry at the front", c.id)
			}
			continue
		}
		m, err := ck.visit(e.slot, "consumer "+c.id.String())
		if err != nil {
			return err
		}
		if m.state() != stUnacked {
			return fmt.Errorf("consumer %s holds %s in state %d", c.id, m.ref(), m.state())
		}
		if m.key != 0 && q.keys.keys[m.key].out != e.slot {
			return fmt.Errorf("unacked %s does not hold its key", m.ref())
		}
		if m.hidx != noPos {
			if int(m.hidx) >= q.acks.Len() {
				return fmt.Errorf("unacked %s: ack heap position %d out of range", m.ref(), m.hidx)
			}
			if t := q.acks.items[m.hidx]; t.slot != e.slot || t.c != c || t.id != e.id {
				return fmt.Errorf("unacked %s: ack heap entry does not match", m.ref())
			}
			*timers++
		}
		count++
		bytes += uint64(m.bytes)
	}
	if count != c.count || bytes != c.bytes {
		return fmt.Errorf("consumer %s counts %d/%d, holds %d/%d", c.id, c.count, c.bytes, count, bytes)
	}
	if !c.subscribed && c.count == 0 {
		return fmt.Errorf("consumer %s neither subscribed nor holding deliveries", c.id)
	}
	want := c.subscribed && c.hasCredit() && (!q.cfg.SingleActiveConsumer || q.active == c)
	if want != (c.hidx >= 0) || c.hidx >= q.service.Len() || c.hidx >= 0 && q.service.items[c.hidx] != c {
		return fmt.Errorf("consumer %s in service %v, heap position %d", c.id, want, c.hidx)
	}
	*n += count
	*b += bytes
	return nil
}

func (ck *checker) dlx() error {
	q := ck.q
	for ref, s := range q.dlx {
		m, err := ck.visit(s, "dead-letter pending")
		if err != nil {
			return err
		}
		if m.state() != stDLX || m.ref() != ref || m.key != 0 {
			return fmt.Errorf("dead-letter pending %s does not match its message", ref)
		}
	}
	inOrder := 0
	for i := 0; i < q.dlxOrder.Len(); i++ {
		if q.hasDLX(q.dlxOrder.At(i)) {
			inOrder++
		}
	}
	if inOrder != len(q.dlx) {
		return fmt.Errorf("dead-letter order lists %d pending of %d", inOrder, len(q.dlx))
	}
	return nil
}

func (ck *checker) arena() error {
	a := ck.q.arena
	visited := 0
	for _, v := range ck.seen {
		if v {
			visited++
		}
	}
	if visited != a.used || len(a.info) != len(a.chunks) {
		return fmt.Errorf("arena: %d slots used, %d reachable; %d chunks, %d described", a.used, visited, len(a.chunks), len(a.info))
	}
	vacant := 0
	for _, c := range a.vacant {
		if int(c) >= len(a.chunks) || a.chunks[c] != nil {
			return fmt.Errorf("arena: chunk %d listed vacant is not", c)
		}
	}
	live, empty, open := 0, 0, 0
	for c, ch := range a.chunks {
		if ch == nil {
			vacant++
			continue
		}
		ci := a.info[c]
		first, fresh := c*arenaChunkLen, int(ci.fresh)
		free := 0
		for s := ci.free; s != noSlot; s = uint32(a.at(s).index) {
			if int(s) < first || int(s) >= first+fresh || free == fresh || ck.seen[s] || a.at(s).state() != stFree {
				return fmt.Errorf("arena: chunk %d lists slot %d free, which is not", c, s)
			}
			free++
		}
		seen := 0
		for i, v := range ck.seen[first : first+arenaChunkLen] {
			if v && i >= fresh {
				return fmt.Errorf("arena: chunk %d hands out %d slots, and slot %d is in use", c, fresh, first+i)
			}
			if v {
				seen++
			}
		}
		if fresh > arenaChunkLen || int(ci.live) != seen || free+seen != fresh {
			return fmt.Errorf("arena: chunk %d counts %d live of %d handed out, has %d in use and %d free", c, ci.live, fresh, seen, free)
		}
		hasRoom := free > 0 || fresh < arenaChunkLen
		if hasRoom != (ci.open >= 0) || ci.open >= 0 && (int(ci.open) >= len(a.open) || a.open[ci.open] != uint32(c)) {
			return fmt.Errorf("arena: chunk %d with %d free slots is at %d of the open list", c, free, ci.open)
		}
		if hasRoom {
			open++
		}
		if seen == 0 {
			empty++
		}
		live += seen
	}
	if vacant != len(a.vacant) || open != len(a.open) || empty != a.empty || empty > 1 {
		return fmt.Errorf("arena: %d vacant chunks (%d listed), %d open (%d listed), %d empty (%d counted)",
			vacant, len(a.vacant), open, len(a.open), empty, a.empty)
	}
	return nil
}

func (ck *checker) totals() error {
	q := ck.q
	if ck.ready != q.ready || ck.rbytes != q.readyBytes {
		return fmt.Errorf("ready counts %d/%d bytes, holds %d/%d", q.ready, q.readyBytes, ck.ready, ck.rbytes)
	}
	if ck.tombs != q.tombs {
		return fmt.Errorf("tombs counted %d, found %d", q.tombs, ck.tombs)
	}
	for id := 1; id < len(q.keys.keys); id++ {
		if k := &q.keys.keys[id]; k.name != "" && k.refs != ck.keyRefs[id] {
			return fmt.Errorf("key %q counts %d messages, %d carry it", k.name, k.refs, ck.keyRefs[id])
		}
	}
	if q.deleted && (q.live() != 0 || len(q.consumers) != 0) {
		return fmt.Errorf("deleted queue holds state")
	}
	if q.live() > q.lim.messages {
		return fmt.Errorf("%d messages over the limit %d", q.live(), q.lim.messages)
	}
	return nil
}

func (ck *checker) refsUnique() error {
	q := ck.q
	sortRuns(ck.refs, Ref.Compare)
	for i, r := range ck.refs {
		if i > 0 && ck.refs[i-1] == r {
			return fmt.Errorf("ref %s held twice", r)
		}
	}
	if n := len(ck.refs); n > 0 && (!q.hasRef || q.lastRef.Less(ck.refs[n-1])) {
		return fmt.Errorf("ref %s above the last enqueued %s", ck.refs[n-1], q.lastRef)
	}
	return nil
}

// relocation: a live message is moved exactly below the mark, and every
// moved body is a live message's.
func (ck *checker) relocation() error {
	r := &ck.q.reloc
	live := 0
	for _, ref := range ck.refs {
		_, ok := r.moved[ref]
		if ok != (ref.Index < r.below) {
			return fmt.Errorf("message %s: moved %v, relocation mark %d", ref, ok, r.below)
		}
		if ok {
			live++
		}
	}
	if live != len(r.moved) {
		return fmt.Errorf("%d moved bodies, %d of them live messages'", len(r.moved), live)
	}
	return nil
}

// places checks the body counts Floor reads against every live message's
// place.
func (ck *checker) places() error {
	q := ck.q
	at := make([]uint64, 0, len(ck.refs))
	for _, ref := range ck.refs {
		at = append(at, q.Locate(ref).Index)
	}
	sortRuns(at, cmp.Compare[uint64])
	counts, err := q.places.above()
	if err != nil {
		return err
	}
	j := 0
	for _, c := range counts {
		for range c.n {
			if j == len(at) || at[j] != c.index {
				return fmt.Errorf("%d bodies counted at %d, fewer lie there", c.n, c.index)
			}
			j++
		}
	}
	if j != len(at) {
		return fmt.Errorf("the body at %d is not counted", at[j])
	}
	return nil
}

// above checks the counts' own invariants (indexes increasing, no zero
// count at the front, nonZero right, zero counts within the rebuild
// bound) and returns the counts above zero, in index order.
func (p *places) above() ([]placeCount, error) {
	out := make([]placeCount, 0, p.nonZero)
	for i := 0; i < p.counts.Len(); i++ {
		c := p.counts.At(i)
		switch {
		case i > 0 && p.counts.At(i-1).index >= c.index:
			return nil, fmt.Errorf("body counts out of order at %d", c.index)
		case i == 0 && c.n == 0:
			return nil, fmt.Errorf("body count at the front (%d) is zero", c.index)
		case c.n > 0:
			out = append(out, c)
		}
	}
	if len(out) != p.nonZero || p.counts.Len() > 2*len(out)+placesZeroSlack {
		return nil, fmt.Errorf("%d body counts, %d above zero, %d noted", p.counts.Len(), len(out), p.nonZero)
	}
	return out, nil
}

func (ck *checker) dedupe() error {
	q := ck.q
	w := &q.dedupe
	if w.order.Len() > q.lim.dedupeIDs || len(w.seen) > w.order.Len() {
		return fmt.Errorf("dedupe: %d ids, %d entries, limit %d", len(w.seen), w.order.Len(), q.lim.dedupeIDs)
	}
	if w.order.Len() > 0 && w.order.Front().deadline <= q.now {
		return fmt.Errorf("dedupe: expired entry at the front")
	}
	if q.cfg.DedupeWindowMs == 0 && w.order.Len() > 0 {
		return fmt.Errorf("dedupe off with %d entries", w.order.Len())
	}
	latest := make(map[dedupeKey]int64, len(w.seen))
	for i := 0; i < w.order.Len(); i++ {
		e := w.order.At(i)
		if k := e.key; k.n != hashedKey && k.n > uint8(len(k.b)) {
			return fmt.Errorf("dedupe: bad key length %d", k.n)
		}
		latest[e.key] = e.deadline
	}
	for k, d := range w.seen {
		if latest[k] != d {
			return fmt.Errorf("dedupe: id deadline %d is not its latest entry", d)
		}
	}
	return nil
}

func (ck *checker) senders() error {
	q := ck.q
	return q.senders.check(q.now, q.lim.senders, q.lim.senderRanges)
}

// checkConservation: every message accepted is somewhere or has left
// through exactly one exit.
func (q *Queue) checkConservation() error {
	c := &q.ctr
	in := c.Enqueued + c.OverflowDeadLettered
	out := uint64(q.live()) + c.Acked + c.DeadLetterDone + c.Dropped + c.Purged + c.Deleted
	if in != out {
		return fmt.Errorf("conservation: %d in (enqueued %d + overflow dead-lettered %d), %d accounted for (live %d, acked %d, dead-letter done %d, dropped %d, purged %d, deleted %d)",
			in, c.Enqueued, c.OverflowDeadLettered, out, q.live(), c.Acked, c.DeadLetterDone, c.Dropped, c.Purged, c.Deleted)
	}
	if q.ready < 0 || q.delayed < 0 || q.unacked < 0 || q.tombs < 0 {
		return fmt.Errorf("negative count")
	}
	return nil
}

func heapOrdered[T any](h *heap[T]) error {
	for i := 1; i < len(h.items); i++ {
		if h.less(h.items[i], h.items[(i-1)/2]) {
			return fmt.Errorf("heap order broken at %d", i)
		}
	}
	return nil
}

package queue

import (
	"slices"

	"github.com/ferry-mq/ferry/internal/base"
)

// relocation records the messages whose bodies a Relocate moved out of the
// entry that enqueued them (DESIGN.md "Queue log relocation").
//
// Invariant: a live message is in moved exactly when its Ref.Index is
// below the mark, so that a Relocate frees a prefix of the log (see
// relocate).
type relocation struct {
	below uint64
	moved map[Ref]Ref // a live message's Ref -> where its body is now
}

// Placed is a live message whose body lies at At (its Ref, or where a
// Relocate moved it).
type Placed struct {
	Ref   Ref
	At    Ref
	Bytes uint32
}

// Locate returns where the body of the message ref lies now: ref itself
// unless a Relocate moved it. For a message no longer live it returns ref.
func (q *Queue) Locate(ref Ref) Ref {
	if at, ok := q.reloc.moved[ref]; ok {
		return at
	}
	return ref
}

// movedBodies lists the live messages whose bodies a Relocate moved, in
// the order of where they lie (the snapshot's order).
func (q *Queue) movedBodies() []Placed {
	if len(q.reloc.moved) == 0 {
		return nil
	}
	list := make([]Placed, 0, len(q.reloc.moved))
	q.placedBelow(FloorNone, func(p Placed) bool {
		if p.At != p.Ref {
			list = append(list, p)
		}
		return true
	})
	slices.SortFunc(list, func(x, y Placed) int { return x.At.Compare(y.At) })
	return list
}

// Relocated is how many live messages have their bodies moved.
func (q *Queue) Relocated() int { return len(q.reloc.moved) }

// free releases slot s. A live message leaving takes its body's place
// from the count and forgets where its body was moved; a tomb shares its
// Ref with the live copy dead-lettering made of it (expireReady), so
// freeing the tomb changes neither.
func (q *Queue) free(s uint32) {
	if m := q.arena.at(s); m.state() != stTomb {
		at := m.index
		if len(q.reloc.moved) > 0 {
			if to, ok := q.reloc.moved[m.ref()]; ok {
				at = to.Index
				delete(q.reloc.moved, m.ref())
			}
		}
		q.places.remove(at)
	}
	q.arena.release(s)
}

// placedBelow calls fn for every live message whose body lies below
// cutoff, moved or not, in no particular order, until fn returns false.
// It reads the level fifos, which are in Ref order, only up to cutoff (a
// body lies at or after its Ref) and the other containers whole.
func (q *Queue) placedBelow(cutoff uint64, fn func(p Placed) bool) {
	see := func(s uint32) bool {
		m := q.arena.at(s)
		if m.state() == stTomb || m.index >= cutoff {
			return true
		}
		if at := q.Locate(m.ref()); at.Index < cutoff {
			return fn(Placed{Ref: m.ref(), At: at, Bytes: m.bytes})
		}
		return true
	}
	for l := range q.levels {
		lv := &q.levels[l]
		for i := 0; i < lv.fifo.Len(); i++ {
			s := lv.fifo.At(i)
			if q.arena.at(s).index >= cutoff {
				break
			}
			if !see(s) {
				return
			}
		}
		for _, s := range lv.back.items {
			if !see(s) {
				return
			}
		}
	}
	for id := range q.keys.keys {
		k := &q.keys.keys[id]
		for i := 0; i < k.waiting.Len(); i++ {
			if !see(k.waiting.At(i)) {
				return
			}
		}
	}
	for _, t := range q.delay.items {
		if !see(t.slot) {
			return
		}
	}
	for _, c := range q.sortedConsumers(func(*consumer) bool { return true }) {
		for i := 0; i < c.unacked.Len(); i++ {
			if e := c.unacked.At(i); e.slot != noSlot && !see(e.slot) {
				return
			}
		}
	}
	for i := 0; i < q.dlxOrder.Len(); i++ {
		if s, ok := q.dlx[q.dlxOrder.At(i)]; ok && !see(s) {
			return
		}
	}
}

// Relocatable lists, by where their bodies lie, the live messages whose
// bodies lie below cutoff, the oldest first: a Relocate of them lets the
// log go up to the returned cut, which is cutoff when the list holds them
// all. The list stops before maxCount messages or maxBytes of bodies
// would be passed, at an entry boundary; it holds the messages of the
// first entry past maxCount, up to maxCount+1 of them (past that, none:
// the cut is that entry). It keeps only the maxCount+1 oldest while it
// looks, so millions of old messages cost a walk, not a copy and a sort.
func (q *Queue) Relocatable(cutoff uint64, maxCount int, maxBytes uint64) (list []Placed, cut uint64) {
	cut = cutoff
	// The fifos are in Ref order: past maxCount unmoved messages of one,
	// the rest of it cannot be listed, so cut there.
	for l := range q.levels {
		lv := &q.levels[l]
		n := 0
		for i := 0; i < lv.fifo.Len() && n <= maxCount; i++ {
			m := q.arena.at(lv.fifo.At(i))
			if m.index >= cut {
				break
			}
			if m.state() == stTomb {
				continue
			}
			if _, ok := q.reloc.moved[m.ref()]; !ok {
				n++
				if n > maxCount {
					cut = m.index
				}
			}
		}
	}
	// The newest of the oldest maxCount+1 on top; a message past them
	// is left out, and the cut cannot pass its entry.
	oldest := heap[Placed]{less: func(x, y Placed) bool { return y.At.Less(x.At) }}
	q.placedBelow(cut, func(p Placed) bool {
		if oldest.Len() <= maxCount {
			oldest.Push(p)
			return true
		}
		if top := oldest.Top(); p.At.Less(top.At) {
			oldest.items[0] = p
			oldest.Fix(0)
			p = top
		}
		cut = min(cut, p.At.Index)
		return true
	})
	list = oldest.items
	slices.SortFunc(list, func(x, y Placed) int { return x.At.Compare(y.At) })
	var bytes uint64
	for i, p := range list {
		if p.At.Index >= cut {
			return list[:i], cut
		}
		if i > 0 && p.At.Index != list[i-1].At.Index && (i >= maxCount || bytes+uint64(p.Bytes) > maxBytes) {
			return list[:i], p.At.Index
		}
		bytes += uint64(p.Bytes)
	}
	return list, cut
}

// relocate applies a Relocate.
func (q *Queue) relocate(c *Relocate) Result {
	if c.Cutoff > c.Index || len(c.Refs) > base.QueueEnqueueMessagesMax {
		return Result{Err: base.Errorf(base.CodeInvalidArgument, "queue: relocate below %d in entry %d with %d messages", c.Cutoff, c.Index, len(c.Refs))}
	}
	for i := 1; i < len(c.Refs); i++ {
		if !c.Refs[i-1].Less(c.Refs[i]) {
			return Result{Err: base.Errorf(base.CodeInvalidArgument, "queue: relocate: refs out of order at %s", c.Refs[i])}
		}
	}
	r := &q.reloc
	cut := c.Cutoff
	var moves []Placed // At: record k of the entry, for every message it may move
	q.placedBelow(c.Cutoff, func(p Placed) bool {
		k, ok := slices.BinarySearchFunc(c.Refs, p.Ref, Ref.Compare)
		switch {
		case ok:
			moves = append(moves, Placed{Ref: p.Ref, At: Ref{Index: c.Index, Slot: uint32(k)}})
		case p.At == p.Ref:
			// Not listed and not moved: its body stays, and so must
			// every unmoved one from its Ref up (the mark's invariant).
			cut = min(cut, p.At.Index)
		}
		return true
	})
	moves = slices.DeleteFunc(moves, func(mv Placed) bool { return mv.Ref.Index >= cut && r.moved[mv.Ref] == Ref{} })
	if len(moves) == 0 {
		return Result{}
	}
	if r.moved == nil {
		r.moved = map[Ref]Ref{}
	}
	for _, mv := range moves {
		q.places.remove(q.Locate(mv.Ref).Index)
		q.places.add(mv.At.Index)
		r.moved[mv.Ref] = mv.At
	}
	r.below = max(r.below, cut)
	q.ctr.Relocated += uint64(len(moves))
	return Result{Count: len(moves)}
}

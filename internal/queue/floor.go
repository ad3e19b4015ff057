package queue

import (
	"cmp"
	"sort"

	"github.com/ferry-mq/ferry/internal/base"
)

// places counts the live messages' bodies at each log index, in index
// order, so that Floor is the index of its first non-zero count. A body
// arrives at its message's Ref (newMsg) or where a Relocate puts it, both
// at the newest entry, so counts are added at the back; one leaves (free,
// or a Relocate moving it on) from anywhere, and a count that reaches
// zero is removed when it reaches the front. Counts left at zero behind a
// live front are dropped by a rebuild once they outnumber the others.
//
// A tomb shares its place with the live copy dead-lettering made of it
// (expireReady): the place is counted once, for the live message, and
// freeing the tomb changes nothing.
type places struct {
	counts  fifo[placeCount]
	nonZero int // counts above zero
}

// placesZeroSlack is how many zero counts places keeps beyond as many as
// it has non-zero ones before it rebuilds: counts cost at most twice the
// live ones plus this, and a rebuild is amortised over as many removals.
const placesZeroSlack = 64

type placeCount struct {
	index uint64
	n     uint32
}

// FloorNone is what Floor returns when no message is referenced.
const FloorNone = ^uint64(0)

// Floor returns the lowest Raft index still referenced by a message in any
// state (ready, delayed, unacknowledged, dead-letter pending), or FloorNone
// when none is: where its body lies, which a Relocate may have moved. Log
// entries below both the floor and the last snapshot may be released. It
// costs O(1): see places.
func (q *Queue) Floor() uint64 {
	if q.places.counts.Len() == 0 {
		return FloorNone
	}
	return q.places.counts.Front().index
}

// add counts one more body at index.
func (p *places) add(index uint64) {
	r := &p.counts
	i := r.Len()
	for i > 0 && r.At(i-1).index > index {
		i-- // only when a Relocate names an entry below an enqueued Ref, which the broker never does
	}
	if i > 0 && r.At(i-1).index == index {
		c := r.At(i - 1)
		if c.n == 0 {
			p.nonZero++
		}
		c.n++
		r.Set(i-1, c)
		return
	}
	r.PushBack(placeCount{})
	for j := r.Len() - 1; j > i; j-- {
		r.Set(j, r.At(j-1))
	}
	r.Set(i, placeCount{index: index, n: 1})
	p.nonZero++
}

// remove counts one body fewer at index, which must hold one.
func (p *places) remove(index uint64) {
	r := &p.counts
	i := 0
	if r.Len() == 0 || r.Front().index != index {
		i = sort.Search(r.Len(), func(i int) bool { return r.At(i).index >= index })
	}
	if i == r.Len() || r.At(i).index != index || r.At(i).n == 0 {
		base.Bugf("queue: no body counted at %d", index)
	}
	c := r.At(i)
	c.n--
	r.Set(i, c)
	if c.n > 0 {
		return
	}
	p.nonZero--
	for r.Len() > 0 && r.Front().n == 0 {
		r.PopFront()
	}
	if r.Len() > 2*p.nonZero+placesZeroSlack {
		var fresh fifo[placeCount]
		for j := 0; j < r.Len(); j++ {
			if c := r.At(j); c.n > 0 {
				fresh.PushBack(c)
			}
		}
		p.counts = fresh
	}
}

// rebuildPlaces counts the bodies of every live message from scratch (Restore).
func (q *Queue) rebuildPlaces() {
	at := make([]uint64, 0, q.arena.used)
	for _, ch := range q.arena.chunks {
		if ch == nil {
			continue
		}
		for i := range ch {
			if m := &ch[i]; m.state() != stFree && m.state() != stTomb {
				at = append(at, q.Locate(m.ref()).Index)
			}
		}
	}
	sortRuns(at, cmp.Compare[uint64])
	q.places = places{}
	for _, index := range at {
		q.places.add(index)
	}
}

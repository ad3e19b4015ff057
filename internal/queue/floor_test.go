package queue

import (
	"slices"
	"testing"

	"pgregory.net/rapid"
)

// places against a sorted list of every body's index: counts added at or
// near the back (and sometimes far below it, as a Relocate naming an old
// entry would), removed from anywhere; the front is always the lowest
// index still counted, and the counts keep their own invariants (above).
func TestPlacesCountBodiesByIndex(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var p places
		var want []uint64 // sorted, with repeats
		next := uint64(1)
		for step := range rapid.IntRange(1, 400).Draw(t, "steps") {
			if len(want) == 0 || rapid.IntRange(0, 2).Draw(t, "add?") > 0 {
				index := next
				switch rapid.IntRange(0, 9).Draw(t, "where") {
				case 0:
					index = rapid.Uint64Range(1, next).Draw(t, "below")
				case 1, 2, 3:
					next++ // a new entry
					index = next
				}
				p.add(index)
				i, _ := slices.BinarySearch(want, index)
				want = slices.Insert(want, i, index)
			} else {
				i := rapid.IntRange(0, len(want)-1).Draw(t, "which")
				p.remove(want[i])
				want = slices.Delete(want, i, i+1)
			}
			floor := FloorNone
			if len(want) > 0 {
				floor = want[0]
			}
			q := &Queue{places: p}
			if got := q.Floor(); got != floor {
				t.Fatalf("step %d: floor %d, want %d", step, got, floor)
			}
			counts, err := p.above()
			if err != nil {
				t.Fatalf("step %d: %v", step, err)
			}
			var got []uint64
			for _, c := range counts {
				for range c.n {
					got = append(got, c.index)
				}
			}
			if !slices.Equal(got, want) {
				t.Fatalf("step %d: counted %v, want %v", step, got, want)
			}
		}
	})
}

// Removing a body that is not counted is a bug in the caller, never a
// silent change of the floor.
func TestPlacesRemovingAnUncountedBodyPanics(t *testing.T) {
	var p places
	p.add(5)
	defer func() {
		if recover() == nil {
			t.Fatal("removing a body at 6 did not panic")
		}
		if p.counts.Len() != 1 || p.counts.Front() != (placeCount{index: 5, n: 1}) {
			t.Fatalf("counts changed: %+v", p.counts.Front())
		}
	}()
	p.remove(6)
}

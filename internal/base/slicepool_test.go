package base

import "testing"

func TestSlicePoolClasses(t *testing.T) {
	p := NewSlicePool[int](4, 32)
	for _, tc := range []struct{ n, wantCap int }{
		{0, 4}, {1, 4}, {4, 4}, {5, 8}, {16, 16}, {17, 32}, {32, 32}, {33, 33}, {1000, 1000},
	} {
		s := p.Get(tc.n)
		if len(*s) != 0 || cap(*s) != tc.wantCap {
			t.Errorf("Get(%d): len %d cap %d, want len 0 cap %d", tc.n, len(*s), cap(*s), tc.wantCap)
		}
	}
}

// TestSlicePoolRecyclesOnlyItsClasses: Put scrubs (or, under
// ferry_invariants, poisons) a slice of a class's capacity and hands it
// back empty; a slice of any other capacity is left alone.
func TestSlicePoolRecyclesOnlyItsClasses(t *testing.T) {
	p := NewSlicePool[*int](4, 32)
	var scrubbed, poisoned [][]*int
	p.Scrub = func(s []*int) { scrubbed = append(scrubbed, s) }
	p.Poison = func(s []*int) { poisoned = append(poisoned, s) }
	x := new(int)
	for _, tc := range []struct {
		cap, len int
		recycled bool
	}{{4, 3, true}, {16, 16, true}, {32, 1, true}, {6, 6, false}, {64, 64, false}} {
		scrubbed, poisoned = nil, nil
		s := make([]*int, tc.len, tc.cap)
		for i := range s {
			s[i] = x
		}
		p.Put(&s)
		switch {
		case !tc.recycled:
			if scrubbed != nil || poisoned != nil || len(s) != tc.len {
				t.Errorf("capacity %d: Put touched a slice it does not pool", tc.cap)
			}
		case InvariantsEnabled:
			if len(poisoned) != 1 || len(poisoned[0]) != tc.cap || scrubbed != nil || len(s) != 0 {
				t.Errorf("capacity %d: poisoned %d slices, scrubbed %d, len %d after Put; want the whole capacity poisoned once, len 0",
					tc.cap, len(poisoned), len(scrubbed), len(s))
			}
		default:
			if len(scrubbed) != 1 || len(scrubbed[0]) != tc.len || poisoned != nil || len(s) != 0 {
				t.Errorf("capacity %d: scrubbed %d slices, poisoned %d, len %d after Put; want the %d elements scrubbed once, len 0",
					tc.cap, len(scrubbed), len(poisoned), len(s), tc.len)
			}
		}
	}
}

func TestNewSlicePoolRefusesClassesThatAreNotPowersOfTwo(t *testing.T) {
	for _, c := range [][2]int{{0, 8}, {3, 8}, {4, 12}, {8, 4}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("NewSlicePool(%d, %d) did not panic", c[0], c[1])
				}
			}()
			NewSlicePool[byte](c[0], c[1])
		}()
	}
}

// TestBytePoolPoisonsWhatItRecyclesUnderInvariants: a reader that kept a
// recycled buffer's bytes sees 0xa5 under ferry_invariants.
func TestBytePoolPoisonsWhatItRecyclesUnderInvariants(t *testing.T) {
	p := NewBytePool(8, 64)
	b := p.Get(5)
	*b = append(*b, "bytes"...)
	kept := (*b)[:cap(*b)]
	p.Put(b)
	for i, c := range kept {
		want := "bytes\x00\x00\x00"[i]
		if InvariantsEnabled {
			want = 0xa5
		}
		if c != want {
			t.Fatalf("byte %d after Put: %#x, want %#x (invariants %v)", i, c, want, InvariantsEnabled)
		}
	}
}

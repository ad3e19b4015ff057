package queue

import (
	"slices"
	"testing"
	"unsafe"

	"pgregory.net/rapid"
)

func TestMsgIsFortyBytes(t *testing.T) {
	if got := unsafe.Sizeof(msg{}); got != 40 {
		t.Fatalf("msg is %d bytes, want 40: the ready-message memory budget depends on it", got)
	}
}

// TestRingMatchesSlice drives ring with random operations against a plain
// slice.
func TestRingMatchesSlice(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var r ring[int]
		var want []int
		ops := rapid.IntRange(0, 300).Draw(t, "ops")
		for i := 0; i < ops; i++ {
			switch op := rapid.IntRange(0, 9).Draw(t, "op"); {
			case op < 5:
				n := rapid.IntRange(1, 600).Draw(t, "push")
				for j := 0; j < n; j++ {
					r.PushBack(i*1000 + j)
					want = append(want, i*1000+j)
				}
			case op < 8 && len(want) > 0:
				n := rapid.IntRange(1, len(want)).Draw(t, "pop")
				for j := 0; j < n; j++ {
					if got := r.PopFront(); got != want[0] {
						t.Fatalf("PopFront: got %d, want %d", got, want[0])
					}
					want = want[1:]
				}
			case op == 8:
				n := rapid.IntRange(0, len(want)).Draw(t, "truncate")
				r.Truncate(n)
				want = want[:n]
			case len(want) > 0:
				i := rapid.IntRange(0, len(want)-1).Draw(t, "set")
				r.Set(i, -i)
				want[i] = -i
			}
			if r.Len() != len(want) {
				t.Fatalf("Len: got %d, want %d", r.Len(), len(want))
			}
			for j := range want {
				if r.At(j) != want[j] {
					t.Fatalf("At(%d): got %d, want %d", j, r.At(j), want[j])
				}
			}
		}
		if len(r.buf) > 2*shrinkMinCap && r.Len() < len(r.buf)/8 {
			t.Fatalf("ring of %d holds a buffer of %d", r.Len(), len(r.buf))
		}
	})
}

func TestFifoMatchesSliceAcrossChunks(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var f fifo[uint32]
		var want []uint32
		next := uint32(0)
		ops := rapid.IntRange(0, 50).Draw(t, "ops")
		for i := 0; i < ops; i++ {
			if rapid.Bool().Draw(t, "push") {
				for j := rapid.IntRange(1, 3*fifoChunkLen).Draw(t, "n"); j > 0; j-- {
					f.PushBack(next)
					want = append(want, next)
					next++
				}
			} else if len(want) > 0 {
				for j := rapid.IntRange(1, len(want)).Draw(t, "n"); j > 0; j-- {
					if got := f.PopFront(); got != want[0] {
						t.Fatalf("PopFront: got %d, want %d", got, want[0])
					}
					want = want[1:]
				}
			}
			if f.Len() != len(want) || len(want) > 0 && (f.Front() != want[0] || f.At(len(want)-1) != want[len(want)-1]) {
				t.Fatalf("fifo disagrees with the slice at length %d", len(want))
			}
			if chunks := len(f.chunks); chunks > (len(want)+2*fifoChunkLen-1)/fifoChunkLen+1 {
				t.Fatalf("%d chunks for %d slots", chunks, len(want))
			}
		}
	})
}

// TestIndexedHeapMatchesSortedSlice checks order and the position
// callbacks that let owners remove any element.
func TestIndexedHeapMatchesSortedSlice(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		pos := map[int]int{}
		h := heap[int]{less: func(a, b int) bool { return a < b }, moved: func(x, p int) {
			if p < 0 {
				delete(pos, x)
			} else {
				pos[x] = p
			}
		}}
		var want []int
		seen := map[int]bool{}
		ops := rapid.IntRange(0, 400).Draw(t, "ops")
		for i := 0; i < ops; i++ {
			switch rapid.IntRange(0, 2).Draw(t, "op") {
			case 0:
				x := rapid.IntRange(0, 10_000).Draw(t, "x")
				if !seen[x] {
					seen[x] = true
					h.Push(x)
					want = append(want, x)
				}
			case 1:
				if len(want) > 0 {
					slices.Sort(want)
					if got := h.Pop(); got != want[0] {
						t.Fatalf("Pop: got %d, want %d", got, want[0])
					}
					want = want[1:]
				}
			case 2:
				if len(want) > 0 {
					x := want[rapid.IntRange(0, len(want)-1).Draw(t, "i")]
					if got := h.Remove(pos[x]); got != x {
						t.Fatalf("Remove(pos[%d]): removed %d", x, got)
					}
					want = slices.DeleteFunc(want, func(y int) bool { return y == x })
				}
			}
			if err := heapOrdered(&h); err != nil {
				t.Fatal(err)
			}
			for p, x := range h.items {
				if pos[x] != p {
					t.Fatalf("position of %d: noted %d, is %d", x, pos[x], p)
				}
			}
		}
	})
}

// TestSortRunsSortsAsSlicesDoes: sortRuns orders any input as
// slices.SortFunc does, whether it is a few ascending runs (what Restore's
// checks give it), more than sortRunsMax of them, or none, and equal Refs
// stay side by side.
func TestSortRunsSortsAsSlicesDoes(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		runs := rapid.IntRange(0, sortRunsMax+8).Draw(t, "runs")
		var s []Ref
		for range runs {
			run := rapid.SliceOfN(rapid.Uint64Range(0, 40), 0, 30).Draw(t, "run")
			slices.Sort(run)
			for _, i := range run {
				s = append(s, Ref{Index: i, Slot: uint32(i % 3)})
			}
		}
		want := slices.Clone(s)
		slices.SortFunc(want, Ref.Compare)
		sortRuns(s, Ref.Compare)
		if !slices.Equal(s, want) {
			t.Fatalf("sortRuns gave %v, want %v", s, want)
		}
	})
}

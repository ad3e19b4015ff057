package queue

import "slices"

// Containers used by the state machine. None of them is safe for concurrent
// use; the Queue that owns them is single-threaded by contract.

// ring is a growable FIFO with random access, backed by a power-of-two
// circular buffer. A large ring shrinks when it falls to a quarter of its
// capacity, so a burst does not pin memory; rings up to shrinkMinCap
// entries keep their buffer, so a steady workload that fills and drains
// them does not reallocate every time.
type ring[T any] struct {
	buf  []T // len(buf) is zero or a power of two
	head int
	n    int
}

const (
	ringMinCap   = 8
	shrinkMinCap = 1024
)

func (r *ring[T]) Len() int { return r.n }

// At returns the i-th element from the front; 0 <= i < Len.
func (r *ring[T]) At(i int) T { return r.buf[(r.head+i)&(len(r.buf)-1)] }

// Set replaces the i-th element from the front.
func (r *ring[T]) Set(i int, v T) { r.buf[(r.head+i)&(len(r.buf)-1)] = v }

func (r *ring[T]) Front() T { return r.buf[r.head] }

func (r *ring[T]) PushBack(v T) {
	if r.n == len(r.buf) {
		r.resize(max(ringMinCap, 2*len(r.buf)))
	}
	r.buf[(r.head+r.n)&(len(r.buf)-1)] = v
	r.n++
}

func (r *ring[T]) PopFront() T {
	v := r.buf[r.head]
	var zero T
	r.buf[r.head] = zero
	r.head = (r.head + 1) & (len(r.buf) - 1)
	r.n--
	if len(r.buf) > shrinkMinCap && r.n < len(r.buf)/4 {
		r.resize(len(r.buf) / 2)
	}
	return v
}

// Truncate keeps the first n elements.
func (r *ring[T]) Truncate(n int) {
	var zero T
	for i := n; i < r.n; i++ {
		r.Set(i, zero)
	}
	r.n = n
	if len(r.buf) > shrinkMinCap && r.n < len(r.buf)/4 {
		size := ringMinCap
		for size < 2*r.n {
			size *= 2
		}
		r.resize(size)
	}
}

func (r *ring[T]) Clear() { *r = ring[T]{} }

func (r *ring[T]) resize(size int) {
	buf := make([]T, size)
	for i := 0; i < r.n; i++ {
		buf[i] = r.At(i)
	}
	r.buf, r.head = buf, 0
}

// fifoChunkLen is the elements per fifo chunk: 4 KiB chunks of slots, so
// an empty level costs nothing and a full one wastes at most one chunk.
const fifoChunkLen = 1024

// fifo is a chunked FIFO with random access: pointer-free fixed-size
// chunks for pointer-free T, so a ready message costs 4 bytes in a fifo of
// slots, and the structure never copies its contents when it grows (a ring
// may hold twice its length).
type fifo[T any] struct {
	chunks []*[fifoChunkLen]T
	head   int // position of the front in chunks[0]
	n      int
	spare  *[fifoChunkLen]T // one emptied chunk kept to avoid churn at a chunk boundary
}

func (f *fifo[T]) Len() int { return f.n }

// At returns the i-th element from the front; 0 <= i < Len.
func (f *fifo[T]) At(i int) T {
	p := f.head + i
	return f.chunks[p/fifoChunkLen][p%fifoChunkLen]
}

// Set replaces the i-th element from the front.
func (f *fifo[T]) Set(i int, v T) {
	p := f.head + i
	f.chunks[p/fifoChunkLen][p%fifoChunkLen] = v
}

func (f *fifo[T]) Front() T { return f.chunks[0][f.head] }

func (f *fifo[T]) PushBack(v T) {
	p := f.head + f.n
	if p == len(f.chunks)*fifoChunkLen {
		c := f.spare
		f.spare = nil
		if c == nil {
			c = new([fifoChunkLen]T)
		}
		f.chunks = append(f.chunks, c)
	}
	f.chunks[p/fifoChunkLen][p%fifoChunkLen] = v
	f.n++
}

func (f *fifo[T]) PopFront() T {
	v := f.chunks[0][f.head]
	f.head++
	f.n--
	if f.head == fifoChunkLen || f.n == 0 {
		if f.n == 0 && f.head != fifoChunkLen {
			f.head = 0 // the only chunk is empty: reuse it from the start
			return v
		}
		f.spare = f.chunks[0]
		f.chunks[0] = nil
		f.chunks = f.chunks[1:]
		f.head = 0
	}
	return v
}

func (f *fifo[T]) Clear() { *f = fifo[T]{} }

// heap is a binary min-heap. When moved is set it is called with every
// element's new position, so owners can remove or fix an element by
// position (an "indexed" heap); pos -1 means the element left the heap.
type heap[T any] struct {
	items []T
	less  func(a, b T) bool
	moved func(x T, pos int)
}

func (h *heap[T]) Len() int { return len(h.items) }

func (h *heap[T]) Top() T { return h.items[0] }

func (h *heap[T]) Push(x T) {
	h.items = append(h.items, x)
	h.note(len(h.items) - 1)
	h.up(len(h.items) - 1)
}

func (h *heap[T]) Pop() T { return h.Remove(0) }

// Remove takes out the element at position i.
func (h *heap[T]) Remove(i int) T {
	x := h.items[i]
	last := len(h.items) - 1
	if i != last {
		h.items[i] = h.items[last]
		h.note(i)
	}
	var zero T
	h.items[last] = zero
	h.items = h.items[:last]
	if i != last {
		h.Fix(i)
	}
	if h.moved != nil {
		h.moved(x, -1)
	}
	if cap(h.items) > shrinkMinCap && len(h.items) < cap(h.items)/4 {
		h.items = append(make([]T, 0, cap(h.items)/2), h.items...)
	}
	return x
}

// Fix restores the order after the element at i changed its key.
func (h *heap[T]) Fix(i int) {
	if !h.down(i) {
		h.up(i)
	}
}

// Clear empties the heap without calling moved.
func (h *heap[T]) Clear() { h.items = nil }

// Init orders items (taking ownership of the slice) in O(n).
func (h *heap[T]) Init(items []T) {
	h.items = items
	for i := range h.items {
		h.note(i)
	}
	for i := len(h.items)/2 - 1; i >= 0; i-- {
		h.down(i)
	}
}

func (h *heap[T]) note(i int) {
	if h.moved != nil {
		h.moved(h.items[i], i)
	}
}

func (h *heap[T]) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !h.less(h.items[i], h.items[p]) {
			return
		}
		h.items[i], h.items[p] = h.items[p], h.items[i]
		h.note(i)
		h.note(p)
		i = p
	}
}

func (h *heap[T]) down(i int) bool {
	start := i
	n := len(h.items)
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		j := l
		if r := l + 1; r < n && h.less(h.items[r], h.items[l]) {
			j = r
		}
		if !h.less(h.items[j], h.items[i]) {
			break
		}
		h.items[i], h.items[j] = h.items[j], h.items[i]
		h.note(i)
		h.note(j)
		i = j
	}
	return i > start
}

// sortRunsMax is how many ascending runs sortRuns merges; past it the
// input is in no useful order, and it sorts from scratch.
const sortRunsMax = 64

// sortRuns sorts s like slices.SortFunc. It is for what Restore's checks
// collect: the concatenation of a few ascending runs (one per priority
// level's fifo, then the smaller containers), which it merges in
// O(n log r) for r runs instead of sorting from scratch. It allocates a
// buffer as long as s when there is more than one run.
func sortRuns[T any](s []T, cmp func(a, b T) int) {
	bounds := []int{0}
	for i := 1; i < len(s); i++ {
		if cmp(s[i-1], s[i]) > 0 {
			if len(bounds) == sortRunsMax {
				slices.SortFunc(s, cmp)
				return
			}
			bounds = append(bounds, i)
		}
	}
	if len(bounds) == 1 {
		return
	}
	bounds = append(bounds, len(s))
	src, dst := s, make([]T, len(s))
	for len(bounds) > 2 {
		next := bounds[:1]
		for i := 0; i+1 < len(bounds); i += 2 {
			lo, mid := bounds[i], bounds[i+1]
			if i+2 == len(bounds) { // an odd run out: carried over
				copy(dst[lo:mid], src[lo:mid])
				next = append(next, mid)
				continue
			}
			hi := bounds[i+2]
			mergeRuns(dst[lo:hi], src[lo:mid], src[mid:hi], cmp)
			next = append(next, hi)
		}
		bounds = next
		src, dst = dst, src
	}
	if &src[0] != &s[0] {
		copy(s, src)
	}
}

// mergeRuns merges the ascending a and b into out, len(a)+len(b) long.
func mergeRuns[T any](out, a, b []T, cmp func(x, y T) int) {
	k := 0
	for len(a) > 0 && len(b) > 0 {
		if cmp(b[0], a[0]) < 0 {
			out[k], b = b[0], b[1:]
		} else {
			out[k], a = a[0], a[1:]
		}
		k++
	}
	k += copy(out[k:], a)
	copy(out[k:], b)
}

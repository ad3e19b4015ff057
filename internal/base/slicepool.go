package base

import (
	"math/bits"
	"sync"
)

// SlicePool recycles slices of T by capacity class: powers of two from
// its smallest to its largest class. Get takes a slice from the smallest
// class that fits, so a slice in use holds at most twice what it needs,
// and buffers of one size never grow into another class's; a slice over
// the largest class is allocated and never pooled, so the pool pins no
// more than its largest class per slice in use between two garbage
// collections (sync.Pool drops what stays unused).
//
// Slices travel as *[]T, so that Get and Put allocate nothing.
type SlicePool[T any] struct {
	min, max int // capacities of the smallest and largest class
	// Scrub, when set, is called on a slice's elements as it is recycled:
	// clear, for elements holding pointers, so that a pooled slice keeps
	// nothing alive.
	Scrub func([]T)
	// Poison, when set, is called instead on a slice's whole capacity
	// under ferry_invariants (bytes overwritten with a pattern, say): a
	// reader that kept the slice past Put then sees garbage.
	Poison func([]T)
	pools  []sync.Pool
}

// NewSlicePool returns a pool of classes from min to max elements; both
// must be powers of two, min at most max.
func NewSlicePool[T any](min, max int) *SlicePool[T] {
	if min < 1 || min&(min-1) != 0 || max&(max-1) != 0 || max < min {
		Bugf("SlicePool classes from %d to %d: want powers of two, the first at most the second", min, max)
	}
	return &SlicePool[T]{min: min, max: max, pools: make([]sync.Pool, bits.Len(uint(max/min)))}
}

// class returns the class of n elements, -1 when n is over the largest.
func (p *SlicePool[T]) class(n int) int {
	switch {
	case n > p.max:
		return -1
	case n <= p.min:
		return 0
	}
	return bits.Len(uint(n-1)) - bits.Len(uint(p.min-1))
}

// Get returns an empty slice with room for at least n elements.
func (p *SlicePool[T]) Get(n int) *[]T {
	c := p.class(n)
	if c < 0 {
		s := make([]T, 0, n)
		return &s
	}
	if s, _ := p.pools[c].Get().(*[]T); s != nil {
		return s
	}
	s := make([]T, 0, p.min<<c)
	return &s
}

// Make returns a slice of length n from Get: its elements are the zero
// value when the pool's Scrub is clear (a new slice's are).
func (p *SlicePool[T]) Make(n int) *[]T {
	s := p.Get(n)
	*s = (*s)[:n]
	return s
}

// Put recycles *s, scrubbed or poisoned. The caller must hold the only
// reference to the slice's array. A slice whose capacity is not exactly a
// class (grown by append, or over the largest class) is dropped.
func (p *SlicePool[T]) Put(s *[]T) {
	c := p.class(cap(*s))
	if c < 0 || cap(*s) != p.min<<c {
		return
	}
	all := (*s)[:cap(*s)]
	switch {
	case InvariantsEnabled && p.Poison != nil:
		p.Poison(all)
	case p.Scrub != nil:
		p.Scrub(*s)
	}
	*s = all[:0]
	p.pools[c].Put(s)
}

// NewBytePool is NewSlicePool of byte buffers that are poisoned
// (poisonBytes) as they are recycled under ferry_invariants: a reader
// that kept a buffer's bytes past Put sees garbage and fails its CRC or
// comparison.
func NewBytePool(min, max int) *SlicePool[byte] {
	p := NewSlicePool[byte](min, max)
	p.Poison = poisonBytes
	return p
}

// poisonBytes overwrites b with 0xa5: a byte pool's Poison.
func poisonBytes(b []byte) {
	for i := range b {
		b[i] = 0xa5
	}
}

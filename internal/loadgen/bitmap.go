package loadgen

import (
	"math/bits"
	"sync"
	"sync/atomic"

	"github.com/ferry-mq/ferry/internal/base"
)

// chunkBits is the bits of one bitmap chunk: 8 KiB of memory, allocated
// when the first sequence number in its range is set, so a bitmap costs
// memory in proportion to the sequences actually seen.
const (
	chunkBits  = 1 << 16
	chunkWords = chunkBits / 64
)

type chunk [chunkWords]atomic.Uint64

// Bitmap is a set of sequence numbers below base.LoadgenSequencesMax, safe
// for concurrent use. Setting a bit is lock-free once its chunk exists;
// chunks are created under a mutex, once per 65,536 sequence numbers.
type Bitmap struct {
	mu     sync.Mutex               // serialises growth; readers never take it
	chunks atomic.Pointer[[]*chunk] // replaced whole under mu; a chunk pointer, once set, never changes
	count  atomic.Uint64            // bits set
}

// Set adds seq and reports whether it was already present. A seq at or
// beyond base.LoadgenSequencesMax is refused (ok false) and allocates
// nothing.
func (b *Bitmap) Set(seq uint64) (dup, ok bool) {
	if seq >= base.LoadgenSequencesMax {
		return false, false
	}
	c := b.chunkFor(seq / chunkBits)
	mask := uint64(1) << (seq % 64)
	old := c[(seq%chunkBits)/64].Or(mask)
	if old&mask != 0 {
		return true, true
	}
	b.count.Add(1)
	return false, true
}

// Has reports whether seq is present.
func (b *Bitmap) Has(seq uint64) bool {
	if seq >= base.LoadgenSequencesMax {
		return false
	}
	cs := b.chunks.Load()
	i := seq / chunkBits
	if cs == nil || i >= uint64(len(*cs)) || (*cs)[i] == nil {
		return false
	}
	return (*cs)[i][(seq%chunkBits)/64].Load()&(uint64(1)<<(seq%64)) != 0
}

// Count returns how many sequence numbers are present.
func (b *Bitmap) Count() uint64 { return b.count.Load() }

func (b *Bitmap) chunkFor(i uint64) *chunk {
	if cs := b.chunks.Load(); cs != nil && i < uint64(len(*cs)) && (*cs)[i] != nil {
		return (*cs)[i]
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	var cur []*chunk
	if cs := b.chunks.Load(); cs != nil {
		cur = *cs
	}
	if i < uint64(len(cur)) && cur[i] != nil {
		return cur[i]
	}
	next := cur
	if i >= uint64(len(cur)) {
		next = make([]*chunk, i+1, max(i+1, 2*uint64(len(cur))))
		copy(next, cur)
	} else {
		next = append([]*chunk(nil), cur...) // readers may hold cur: never write into it
	}
	next[i] = new(chunk)
	b.chunks.Store(&next)
	return next[i]
}

// CountAndNot returns how many sequence numbers below limit are in b and
// not in other. It must not race with Set on either bitmap for an exact
// answer (it is called once producers and consumers have stopped).
func (b *Bitmap) CountAndNot(other *Bitmap, limit uint64) uint64 {
	limit = min(limit, base.LoadgenSequencesMax)
	var n uint64
	mine, theirs := b.snapshot(), other.snapshot()
	for ci, c := range mine {
		if c == nil || uint64(ci)*chunkBits >= limit {
			continue
		}
		var o *chunk
		if ci < len(theirs) {
			o = theirs[ci]
		}
		for w := range chunkWords {
			lo := uint64(ci)*chunkBits + uint64(w)*64
			if lo >= limit {
				break
			}
			word := c[w].Load()
			if o != nil {
				word &^= o[w].Load()
			}
			if limit-lo < 64 {
				word &= uint64(1)<<(limit-lo) - 1
			}
			n += uint64(bits.OnesCount64(word))
		}
	}
	return n
}

// CountFrom returns how many sequence numbers at or above from are in b.
func (b *Bitmap) CountFrom(from uint64) uint64 {
	var n uint64
	for ci, c := range b.snapshot() {
		if c == nil || uint64(ci+1)*chunkBits <= from {
			continue
		}
		for w := range chunkWords {
			lo := uint64(ci)*chunkBits + uint64(w)*64
			word := c[w].Load()
			if lo+64 <= from {
				continue
			}
			if from > lo {
				word &^= uint64(1)<<(from-lo) - 1
			}
			n += uint64(bits.OnesCount64(word))
		}
	}
	return n
}

func (b *Bitmap) snapshot() []*chunk {
	if cs := b.chunks.Load(); cs != nil {
		return *cs
	}
	return nil
}

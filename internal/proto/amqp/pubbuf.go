package amqp

import (
	"math/bits"
	"sync"

	"github.com/ferry-mq/ferry/internal/base"
)

// pubBuf carries the bodies and raw properties of one publish batch to the
// broker. Its life: the reader fills it (publishBatch.add), the batch's
// broker call owns it from flush until its done callback has handled the
// outcome (channel.published), and then it goes back to the pool. Nothing
// may refer to its bytes afterwards: the broker keeps no reference past
// done (Session.PublishAsync's contract).
type pubBuf struct {
	b []byte
}

// pubBufBytesMin is the smallest pooled class: a few small messages.
const pubBufBytesMin = 4 << 10

// pubBufClasses are the pooled capacities, powers of two from
// pubBufBytesMin to base.AMQPPublishBufferBytesMax. A buffer is taken
// from the smallest class that fits, so a batch in flight holds at most
// twice the bytes it carries (a connection may have
// AMQPPublishesInFlightMax small batches in flight).
var pubBufClasses = bits.Len(uint(base.AMQPPublishBufferBytesMax / pubBufBytesMin))

var pubBufPools = make([]sync.Pool, pubBufClasses)

// pubBufClass returns the class holding n bytes, or -1 when n is over the
// largest class.
func pubBufClass(n int) int {
	if n > base.AMQPPublishBufferBytesMax {
		return -1
	}
	if n <= pubBufBytesMin {
		return 0
	}
	return bits.Len(uint(n-1)) - bits.Len(uint(pubBufBytesMin-1))
}

// getPubBuf returns an empty buffer with room for at least n bytes: a
// recycled one of its class, or a fresh one (also for n over
// base.AMQPPublishBufferBytesMax, which is then never pooled).
func getPubBuf(n int) *pubBuf {
	c := pubBufClass(n)
	if c < 0 {
		return &pubBuf{b: make([]byte, 0, n)}
	}
	if p, _ := pubBufPools[c].Get().(*pubBuf); p != nil {
		return p
	}
	return &pubBuf{b: make([]byte, 0, pubBufBytesMin<<c)}
}

// putPubBuf recycles p. The caller must hold the only reference to its
// bytes. A buffer whose capacity is not exactly a class (grown elsewhere,
// or over the largest class) is dropped.
func putPubBuf(p *pubBuf) {
	c := pubBufClass(cap(p.b))
	if c < 0 || cap(p.b) != pubBufBytesMin<<c {
		return
	}
	if base.InvariantsEnabled {
		// A reader that kept the bytes past done sees garbage, and the
		// tests comparing bodies fail.
		b := p.b[:cap(p.b)]
		for i := range b {
			b[i] = 0xa5
		}
	}
	p.b = p.b[:0]
	pubBufPools[c].Put(p)
}

// grow makes room for n more bytes, moving to a larger class when needed
// (the old buffer goes back to the pool: callers address the buffer by
// offsets until it is final).
func (p *pubBuf) grow(n int) {
	need := len(p.b) + n
	if need <= cap(p.b) {
		return
	}
	np := getPubBuf(max(need, 2*cap(p.b)))
	np.b = append(np.b, p.b...)
	old := p.b
	p.b = np.b
	np.b = old
	putPubBuf(np)
}

// callSlices are the slices one publish call hands the broker besides its
// bytes: recycled with them, by powers of two of the message count up to
// AMQPPublishBatchMessagesMax, because they are large (a Message is a few
// hundred bytes of strings and slices) and full of pointers the garbage
// collector would zero and scan for every batch.
type callSlices[T any] struct {
	s []T
}

// classPool recycles callSlices of one element type by capacity class.
type classPool[T any] struct {
	pools [callClasses]sync.Pool
}

// callClasses are the capacities 1, 2, 4 ... AMQPPublishBatchMessagesMax.
const callClasses = 9

// callClass returns the class of n elements, -1 over the largest (a
// transaction's commit may publish more at once: those are not pooled).
func callClass(n int) int {
	if n > 1<<(callClasses-1) {
		return -1
	}
	return bits.Len(uint(max(n, 1) - 1))
}

// get returns n zero elements.
func (p *classPool[T]) get(n int) *callSlices[T] {
	c := callClass(n)
	if c < 0 {
		return &callSlices[T]{s: make([]T, n)}
	}
	if cs, _ := p.pools[c].Get().(*callSlices[T]); cs != nil {
		cs.s = cs.s[:n]
		return cs
	}
	return &callSlices[T]{s: make([]T, n, 1<<c)}
}

// put recycles cs, clearing its elements (their strings and slices are
// no longer kept alive). The caller must hold the only reference.
func (p *classPool[T]) put(cs *callSlices[T]) {
	c := callClass(cap(cs.s))
	if c < 0 || cap(cs.s) != 1<<c {
		return
	}
	clear(cs.s)
	cs.s = cs.s[:0]
	p.pools[c].Put(cs)
}

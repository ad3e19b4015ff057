package amqp

import (
	"github.com/ferry-mq/ferry/internal/base"
)

// A publish batch's buffer carries the bodies and raw properties of its
// messages to the broker. Its life: the reader fills it
// (publishBatch.add), the batch's broker call owns it from flush until its
// done callback has handled the outcome (channel.published), and then it
// goes back to pubBufs. Nothing may refer to its bytes afterwards: the
// broker keeps no reference past done (Session.PublishAsync's contract).
//
// pubBufs pools them by powers of two from pubBufBytesMin to
// base.AMQPPublishBufferBytesMax: a batch in flight holds at most twice
// the bytes it carries (a connection may have AMQPPublishesInFlightMax
// small batches in flight). Under ferry_invariants a recycled buffer is
// overwritten, so a reader that kept its bytes past done sees garbage,
// and the tests comparing bodies fail.
var pubBufs = base.NewBytePool(pubBufBytesMin, base.AMQPPublishBufferBytesMax)

// pubBufBytesMin is the smallest pooled class: a few small messages.
const pubBufBytesMin = 4 << 10

// growPubBuf makes room in *p for n more bytes, moving to a larger class
// when needed (the old buffer goes back to the pool: callers address the
// buffer by offsets until it is final).
func growPubBuf(p *[]byte, n int) {
	need := len(*p) + n
	if need <= cap(*p) {
		return
	}
	np := pubBufs.Get(max(need, 2*cap(*p)))
	*np = append(*np, *p...)
	*p, *np = *np, *p
	pubBufs.Put(np)
}

// newCallPool returns a pool of the slices one publish call hands the
// broker besides its bytes, by powers of two of the message count up to
// AMQPPublishBatchMessagesMax: they are large (a Message is a few hundred
// bytes of strings and slices) and full of pointers the garbage collector
// would zero and scan for every batch. A transaction's commit may publish
// more at once: those are not pooled. A recycled slice is cleared, so it
// keeps no message's strings and slices alive.
func newCallPool[T any]() *base.SlicePool[T] {
	p := base.NewSlicePool[T](1, base.AMQPPublishBatchMessagesMax)
	p.Scrub = func(s []T) { clear(s) }
	return p
}

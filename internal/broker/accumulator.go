package broker

import (
	"context"
	"slices"
	"sync"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/queue"
	"github.com/ferry-mq/ferry/internal/storage/log/batch"
)

// pubItem is one message waiting to be appended to a queue or a stream
// partition.
type pubItem struct {
	rec  *encodedRecord
	done func(queue.Outcome, error) // called once, from a broker goroutine
}

// accumulator turns concurrent publishes to one group into shared data
// batches: publishers add items; one proposer goroutine at a time takes
// what is pending (up to BrokerPublishBatchBytesMax and
// BrokerPublishBatchRecordsMax) and proposes it as one batch, while the
// next batch accumulates. One proposal is in flight per group, which
// keeps publish order (DESIGN.md "Publish order"). Publishers wait while
// more than BrokerPublishPendingBytesMax is pending.
type accumulator struct {
	ctx     context.Context // the leader runtime's: ends the proposer
	wg      *sync.WaitGroup // the leader runtime's: waits for the proposer
	what    string
	propose func(ctx context.Context, items []*pubItem) ([]queue.Outcome, error)

	mu           sync.Mutex
	pending      []*pubItem    // guarded by mu
	pendingBytes int           // guarded by mu
	proposing    bool          // guarded by mu: the proposer goroutine runs
	space        chan struct{} // guarded by mu: closed when pendingBytes falls under the bound
	failed       error         // guarded by mu: set by fail; later adds fail with it
	maxPending   int
}

func newAccumulator(ctx context.Context, wg *sync.WaitGroup, what string,
	propose func(context.Context, []*pubItem) ([]queue.Outcome, error)) *accumulator {
	return &accumulator{ctx: ctx, wg: wg, what: what, propose: propose, space: make(chan struct{}),
		maxPending: base.BrokerPublishPendingBytesMax}
}

// add queues items, waiting while the accumulator is over its bound until
// ctx ends. Each item's done is called exactly once, also when add fails.
func (a *accumulator) add(ctx context.Context, items []*pubItem) {
	size := 0
	for _, it := range items {
		size += it.rec.size
	}
	a.mu.Lock()
	for a.failed == nil && a.pendingBytes > 0 && a.pendingBytes+size > a.maxPending {
		space := a.space
		a.mu.Unlock()
		select {
		case <-space:
		case <-ctx.Done():
			failAll(items, base.Errorf(base.CodeTimeout, "broker: %s has too many pending publishes: %w", a.what, ctx.Err()))
			return
		}
		a.mu.Lock()
	}
	if err := a.failed; err != nil {
		a.mu.Unlock()
		failAll(items, err)
		return
	}
	a.pending = append(a.pending, items...)
	a.pendingBytes += size
	start := !a.proposing
	a.proposing = true
	a.mu.Unlock()
	if start {
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			a.run()
		}()
	}
}

func failAll(items []*pubItem, err error) {
	for _, it := range items {
		it.done(0, err)
	}
}

// fail fails everything pending and every later add with err (the runtime
// stopped). The proposer, if running, ends with its context.
func (a *accumulator) fail(err error) {
	a.mu.Lock()
	a.failed = err
	pending := a.pending
	a.pending, a.pendingBytes = nil, 0
	close(a.space)
	a.space = make(chan struct{})
	a.mu.Unlock()
	failAll(pending, err)
}

// run proposes batches until nothing is pending.
func (a *accumulator) run() {
	for {
		items, bytes := a.take()
		if len(items) == 0 {
			return
		}
		outcomes, err := a.propose(a.ctx, items)
		a.release(bytes)
		for i, it := range items {
			if err != nil {
				it.done(0, err)
			} else {
				it.done(outcomes[i], nil)
			}
		}
	}
}

// take removes the next batch's worth of pending items: at least one,
// then while within the batch limits. None means the proposer ends.
func (a *accumulator) take() ([]*pubItem, int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	n, bytes := 0, 0
	for n < len(a.pending) && n < base.BrokerPublishBatchRecordsMax {
		sz := a.pending[n].rec.size
		if n > 0 && bytes+sz > base.BrokerPublishBatchBytesMax {
			break
		}
		bytes += sz
		n++
	}
	if n == 0 {
		a.proposing = false
		return nil, 0
	}
	items := slices.Clone(a.pending[:n])
	clear(a.pending[:n])
	a.pending = a.pending[n:]
	if len(a.pending) == 0 {
		a.pending = nil
	}
	return items, bytes
}

func (a *accumulator) release(bytes int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.pendingBytes -= bytes
	if a.pendingBytes < a.maxPending {
		close(a.space)
		a.space = make(chan struct{})
	}
}

// buildBatch encodes items as one data batch. Every record carries the
// same timestamp, nowMs: the time the queue uses as the Enqueue's Now.
func buildBatch(buf []byte, items []*pubItem, nowMs int64, withOrdering bool) ([]byte, error) {
	var bld batch.Builder
	size := batch.HeaderSize
	for _, it := range items {
		size += it.rec.size
	}
	if buf == nil {
		buf = make([]byte, 0, size)
	}
	bld.Begin(buf[:0], batch.Header{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1})
	for _, it := range items {
		if err := bld.Add(nowMs, it.rec.key, it.rec.value, it.rec.headersFor(withOrdering)); err != nil {
			bld.Finish()
			return nil, err
		}
	}
	return bld.Finish()
}

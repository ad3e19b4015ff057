package broker

import (
	"context"
	"slices"
	"sync"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/queue"
	"github.com/ferry-mq/ferry/internal/replication"
	"github.com/ferry-mq/ferry/internal/storage/log/batch"
)

// pubItem is one message waiting to be appended to a queue or a stream
// partition. Its outcome goes, once, from a broker goroutine, to done or,
// when owner is set, to owner.itemDone with slot: the owner form lets a
// publish call allocate its items in chunks instead of a closure each.
type pubItem struct {
	rec    *encodedRecord
	done   func(queue.Outcome, error)
	owner  pubOwner
	slot   int
	sender queue.SenderID // set by its lane (zero: none)
}

// pubOwner is told the outcomes of the items it owns.
type pubOwner interface {
	itemDone(slot int, o queue.Outcome, err error)
}

// settle reports the item's outcome; call it exactly once.
func (it *pubItem) settle(o queue.Outcome, err error) {
	if it.owner != nil {
		it.owner.itemDone(it.slot, o, err)
		return
	}
	it.done(o, err)
}

// accumulator turns concurrent publishes to one group into shared data
// batches: publishers add items; one goroutine at a time takes what is
// pending (up to BrokerPublishBatchBytesMax and
// BrokerPublishBatchRecordsMax), submits it as one batch, and keeps
// taking while fewer than inFlight batches are unconfirmed, so the next
// engine iteration always finds the next batch waiting. Batches are
// submitted in the order they were taken and the engine orders them so,
// which keeps publish order (DESIGN.md "Publish order"). Publishers wait
// while more than BrokerPublishPendingBytesMax is pending.
type accumulator struct {
	ctx      context.Context // the leader runtime's: ends the submitter
	wg       *sync.WaitGroup // the leader runtime's: waits for the submitter
	what     string
	inFlight int
	// submit proposes one batch and calls done once with an outcome per
	// item (or the error), from any goroutine, never blocking.
	submit func(items []*pubItem, done func([]queue.Outcome, error))

	mu           sync.Mutex
	pending      []*pubItem    // guarded by mu
	pendingBytes int           // guarded by mu
	running      bool          // guarded by mu: the submitter goroutine runs
	unconfirmed  int           // guarded by mu: batches submitted, not completed
	completed    []completion  // guarded by mu: batches done, to report
	space        chan struct{} // guarded by mu: closed when pendingBytes falls under the bound
	failed       error         // guarded by mu: set by fail; later adds fail with it
	kickCh       chan struct{} // size one: wakes the submitter
	maxPending   int
}

type completion struct {
	items    []*pubItem
	bytes    int
	outcomes []queue.Outcome
	err      error
}

func newAccumulator(ctx context.Context, wg *sync.WaitGroup, what string, inFlight int,
	submit func([]*pubItem, func([]queue.Outcome, error))) *accumulator {
	return &accumulator{ctx: ctx, wg: wg, what: what, inFlight: inFlight, submit: submit, space: make(chan struct{}),
		kickCh: make(chan struct{}, 1), maxPending: base.BrokerPublishPendingBytesMax}
}

// add queues items, waiting while the accumulator is over its bound until
// ctx ends. Each item's done is called exactly once, also when add fails,
// from the accumulator's goroutine (or the caller's on failure).
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
	start := !a.running
	a.running = true
	a.mu.Unlock()
	if start {
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			a.run()
		}()
	} else {
		kick(a.kickCh)
	}
}

func failAll(items []*pubItem, err error) {
	for _, it := range items {
		it.settle(0, err)
	}
}

// fail fails everything pending and every later add with err (the runtime
// stopped). Batches already submitted complete through the engine.
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

// run submits batches and reports completions until nothing is pending
// or unconfirmed. When the context ends it still waits for the submitted
// batches: their outcomes come from the engine, which fails them when
// the group or node stops.
func (a *accumulator) run() {
	for {
		a.mu.Lock()
		done := a.completed
		a.completed = nil
		var items []*pubItem
		var bytes int
		if a.unconfirmed < a.inFlight && a.ctx.Err() == nil {
			items, bytes = a.takeLocked()
		}
		if len(items) > 0 {
			a.unconfirmed++
		}
		exit := len(done) == 0 && len(items) == 0 && a.unconfirmed == 0 && (len(a.pending) == 0 || a.ctx.Err() != nil)
		if exit {
			a.running = false
		}
		a.mu.Unlock()
		for _, c := range done {
			a.report(c)
		}
		if len(items) > 0 {
			a.submit(items, func(outcomes []queue.Outcome, err error) {
				a.mu.Lock()
				a.unconfirmed--
				a.completed = append(a.completed, completion{items: items, bytes: bytes, outcomes: outcomes, err: err})
				a.mu.Unlock()
				kick(a.kickCh)
			})
			continue
		}
		if exit {
			return
		}
		if len(done) > 0 {
			continue
		}
		<-a.kickCh
	}
}

// report hands a completed batch's outcomes to its publishers.
func (a *accumulator) report(c completion) {
	a.mu.Lock()
	a.pendingBytes -= c.bytes
	if a.pendingBytes < a.maxPending {
		close(a.space)
		a.space = make(chan struct{})
	}
	a.mu.Unlock()
	if c.err == nil && len(c.outcomes) != len(c.items) {
		c.err = base.Errorf(base.CodeInternal, "broker: %d outcomes for %d messages", len(c.outcomes), len(c.items))
	}
	for i, it := range c.items {
		if c.err != nil {
			it.settle(0, c.err)
		} else {
			it.settle(c.outcomes[i], nil)
		}
	}
}

// takeLocked removes the next batch's worth of pending items: at least
// one, then while within the batch limits. a.mu is held.
func (a *accumulator) takeLocked() ([]*pubItem, int) {
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

// buildBatch makes items one data batch without senders. Every record
// carries the same timestamp, nowMs: the time the queue uses as the
// Enqueue's Now. The batch is in a buffer of its own.
func buildBatch(items []*pubItem, nowMs int64, withOrdering bool) ([]byte, error) {
	return buildBatchInto(nil, items, nowMs, withOrdering, false)
}

// buildBatchInto is buildBatch appended to dst when its array has room
// for the batch, or into a fresh one, with the items' senders when
// withSenders (a queue's batch: mapping.go "ferry.sender").
func buildBatchInto(dst []byte, items []*pubItem, nowMs int64, withOrdering, withSenders bool) ([]byte, error) {
	var bld batch.Builder
	if size := batchBytes(items, withSenders); cap(dst)-len(dst) < size {
		dst = append(make([]byte, 0, len(dst)+size), dst...)
	}
	bld.Begin(dst, batch.Header{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1})
	var prev queue.SenderID
	var hdrs []batch.RecordHeader // a record's headers behind its ferry.sender
	var val [senderValueBytesMax]byte
	for _, it := range items {
		headers := it.rec.headersFor(withOrdering)
		// A sender header starts a run of the item's lane, or ends one.
		if withSenders && !continues(prev, it.sender) && (it.sender.Lane != 0 || prev.Lane != 0) {
			hdrs = append(append(hdrs[:0], batch.RecordHeader{Key: hdrSenderKey, Value: appendSender(val[:0], it.sender)}), headers...)
			headers = hdrs
		}
		prev = it.sender
		if err := bld.Add(nowMs, it.rec.key, it.rec.value, headers); err != nil {
			bld.Finish()
			return nil, err
		}
	}
	return bld.Finish()
}

// proposeItems proposes items to group g as one data batch, stamped now
// and built straight into the buffer the engine proposes from
// (ProposeBuildAsync): the submit of a queue's (withSenders) and a
// stream partition's accumulator. done gets the engine's outcome.
func (b *Broker) proposeItems(g GroupID, items []*pubItem, withOrdering, withSenders bool, done func(replication.Result)) {
	nowMs := b.nowMs()
	b.engine.ProposeBuildAsync(g, batchBytes(items, withSenders), func(dst []byte) ([]byte, error) {
		return buildBatchInto(dst, items, nowMs, withOrdering, withSenders)
	}, nil, done)
}

// batchBytes bounds the size of the data batch buildBatchInto makes of
// items.
func batchBytes(items []*pubItem, withSenders bool) int {
	size := batch.HeaderSize
	for _, it := range items {
		size += it.rec.size
	}
	if withSenders {
		size += len(items) * senderHeaderBytesMax
	}
	return size
}

// batchBuffers recycles, by powers of two, the buffers of a forwarded
// enqueue's batches, which are copied into their frame as soon as they
// are built. (A queue's or partition's own batches are built straight
// into replication's buffers: ProposeBuildAsync.) Under ferry_invariants
// a released buffer is overwritten, so that a reader that kept its bytes
// sees garbage and fails the batch's CRC.
var batchBuffers = base.NewBytePool(batchBufBytesMin, base.BrokerBatchBufferBytesMax)

// batchBufBytesMin is batchBuffers' smallest class: a few small messages.
const batchBufBytesMin = 4 << 10

// buildTransientBatch is buildBatch into a recycled buffer. The caller
// must copy data, or be done with it, before handing buf back with
// releaseBatch; data is nil on error (buf must still be released).
func buildTransientBatch(items []*pubItem, nowMs int64, withOrdering, withSenders bool) (data []byte, buf *[]byte, err error) {
	buf = batchBuffers.Get(batchBytes(items, withSenders))
	data, err = buildBatchInto(*buf, items, nowMs, withOrdering, withSenders)
	return data, buf, err
}

// releaseBatch hands a buffer of buildTransientBatch back. Nothing may
// refer to its bytes afterwards.
func releaseBatch(buf *[]byte) { batchBuffers.Put(buf) }

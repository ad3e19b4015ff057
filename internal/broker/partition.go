package broker

import (
	"context"
	"io"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/controller"
	"github.com/ferry-mq/ferry/internal/queue"
	"github.com/ferry-mq/ferry/internal/replication"
	"github.com/ferry-mq/ferry/internal/storage/log/batch"
	"github.com/ferry-mq/ferry/internal/stream"
)

// partitionFSM is the state machine of one stream partition's group:
// every batch of the log, data or control, is one stream.Append (so the
// partition's offsets are the log's), and the stream commands riding in
// control batches are applied after their batch's Append.
//
// Raft's own entries (a new leader's empty entry, membership changes)
// take a log index and one offset but never reach an FSM; Apply fills
// such gaps with one-offset Appends of gapEntryBytes, the same on every
// replica.
type partitionFSM struct {
	b         *Broker
	group     GroupID
	tenant    string
	stream    string
	partition int32

	mu    sync.Mutex
	p     *stream.Partition // guarded by mu
	nowMs int64             // guarded by mu: the latest command time seen
	// snapshotWanted is set by a retention that moved the start, until
	// the engine asks (SnapshotRequested). Guarded by mu.
	snapshotWanted bool

	hwMu sync.Mutex
	hw   chan struct{} // guarded by hwMu: closed and replaced when the high watermark moves

	leader atomic.Pointer[partitionLeader]
}

// gapEntryBytes is the size Apply counts for a Raft entry it never sees:
// about the size of the empty entry's control batch.
const gapEntryBytes = 70

func newPartitionFSM(b *Broker, id GroupID, s controller.StreamInfo, partition int) *partitionFSM {
	return &partitionFSM{b: b, group: id, tenant: s.Tenant, stream: s.Name, partition: int32(partition),
		p: stream.NewPartition(s.Config.Partition, 1), hw: make(chan struct{})}
}

// appendResult is what a data batch gives its proposer.
type appendResult struct{ res stream.AppendResult }

func (r *appendResult) Err() error { return r.res.Status.Err(-1) }

// partitionCmdResult is what a stream command gives its proposer.
type partitionCmdResult struct{ res stream.Result }

func (r *partitionCmdResult) Err() error { return r.res.Err }

func (f *partitionFSM) Apply(entries []replication.Entry, results []any) {
	f.mu.Lock()
	for i, e := range entries {
		for f.p.NextIndex() < e.Index {
			f.p.ApplyAppend(stream.Append{Now: f.nowMs, Index: f.p.NextIndex(), Bytes: gapEntryBytes, ProducerID: stream.NoProducerID, Control: true})
		}
		if e.Index < f.p.NextIndex() {
			results[i] = &partitionCmdResult{res: stream.Result{Err: base.Errorf(base.CodeInternal, "broker: partition entry %d applied twice", e.Index)}}
			continue
		}
		if e.Kind == replication.KindBatch {
			results[i] = f.applyBatch(e)
			continue
		}
		r := f.applyCommand(e)
		// The log below the new start (RetainFrom) goes with the next
		// snapshot: ask for one now.
		f.snapshotWanted = f.snapshotWanted || r.res.Retention.Truncate
		results[i] = r
	}
	f.mu.Unlock()
	f.hwMoved()
}

// SnapshotRequested is replication.SnapshotRequester: true once after
// retention moved the partition's start.
func (f *partitionFSM) SnapshotRequested() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	w := f.snapshotWanted
	f.snapshotWanted = false
	return w
}

func (f *partitionFSM) applyBatch(e replication.Entry) *appendResult {
	h, err := batch.ParseHeader(e.Data)
	if err != nil || h.Size() != len(e.Data) {
		// The engine validated it before proposing; count it anyway so
		// offsets stay the log's.
		h = batch.Header{ProducerID: stream.NoProducerID}
	}
	now := max(f.nowMs, min(h.MaxTimestamp, base.QueueTimeMsMax))
	res := f.p.ApplyAppend(stream.Append{Now: now, Index: e.Index, LastOffsetDelta: max(h.LastOffsetDelta, 0),
		MaxTimestamp: h.MaxTimestamp, Bytes: int64(len(e.Data)), ProducerID: h.ProducerID,
		ProducerEpoch: h.ProducerEpoch, BaseSequence: h.BaseSequence})
	return &appendResult{res: res}
}

func (f *partitionFSM) applyCommand(e replication.Entry) *partitionCmdResult {
	f.p.ApplyAppend(stream.Append{Now: f.nowMs, Index: e.Index, Bytes: int64(controlBatchBytes(len(e.Data))),
		ProducerID: stream.NoProducerID, Control: true})
	if len(e.Data) == 0 || e.Data[0] != tagPartition {
		return &partitionCmdResult{res: stream.Result{Err: base.Errorf(base.CodeInvalidArgument, "broker: entry %d is not a stream command", e.Index)}}
	}
	cmd, err := stream.DecodeCommand(e.Data[1:])
	if err != nil {
		return &partitionCmdResult{res: stream.Result{Err: err}}
	}
	switch c := cmd.(type) {
	case stream.RetentionTick:
		f.nowMs = max(f.nowMs, c.Now)
	case stream.CommitOffset:
		f.nowMs = max(f.nowMs, c.Now)
	case stream.MarkGroup:
		f.nowMs = max(f.nowMs, c.Now)
	}
	return &partitionCmdResult{res: f.p.Apply(cmd)}
}

// controlBatchBytes is the size of the control batch the engine stores
// for a command payload of n bytes: the batch header, one record with a
// four-byte key, and varint lengths.
func controlBatchBytes(n int) int {
	body := 1 + 1 + 1 + 1 + 4 + varintLen(int64(n)) + n + 1
	return batch.HeaderSize + varintLen(int64(body)) + body
}

func varintLen(v int64) int {
	u := uint64(v<<1) ^ uint64(v>>63)
	n := 1
	for u >= 0x80 {
		u >>= 7
		n++
	}
	return n
}

func (f *partitionFSM) hwMoved() {
	f.hwMu.Lock()
	close(f.hw)
	f.hw = make(chan struct{})
	f.hwMu.Unlock()
	f.b.activity.Signal()
}

// hwChanged returns a channel closed when the high watermark may have
// moved.
func (f *partitionFSM) hwChanged() <-chan struct{} {
	f.hwMu.Lock()
	defer f.hwMu.Unlock()
	return f.hw
}

func (f *partitionFSM) Snapshot(w io.Writer) error {
	f.mu.Lock()
	data := f.p.Snapshot(nil)
	f.mu.Unlock()
	_, err := w.Write(data)
	return err
}

func (f *partitionFSM) Restore(r io.Reader) error {
	data, err := io.ReadAll(io.LimitReader(r, base.SnapshotBytesMax))
	if err != nil {
		return err
	}
	p, err := stream.RestorePartition(data)
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.p = p
	f.mu.Unlock()
	f.hwMoved()
	return nil
}

// RetainFrom keeps the retained data: everything from the log start.
func (f *partitionFSM) RetainFrom() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, idx := f.p.LogStart()
	return idx
}

func (f *partitionFSM) with(fn func(p *stream.Partition)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f.p)
}

// partitionLeader is what runs for a partition on its leader's node: the
// accumulator of messages published through exchanges, the idempotent
// producers' lanes (one batch of a producer at a time), and the retention timer.
type partitionLeader struct {
	b   *Broker
	fsm *partitionFSM
	g   GroupID

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	acc    *accumulator

	catchUpMu sync.Mutex // held while this leader catches up with its term's start
	caughtUp  bool       // guarded by catchUpMu: applied up to this term's start

	producersMu sync.Mutex
	producers   map[int64]*producerLane // guarded by producersMu: idempotent producers with a produce under way

	cfgMu sync.Mutex
	cfg   controller.StreamConfig // guarded by cfgMu

	// retainedMs is the clock time (Unix ms) of the last retention pass
	// run finished, proposed or found with nothing to release, or, before
	// the first, of the moment run armed its timer; the broker's activity
	// is signalled after each (tests wait for them).
	retainedMs atomic.Int64
}

func newPartitionLeader(b *Broker, lg *localGroup) *partitionLeader {
	f := lg.fsm.(*partitionFSM)
	pl := &partitionLeader{b: b, fsm: f, g: lg.id, producers: map[int64]*producerLane{}}
	pl.ctx, pl.cancel = context.WithCancel(b.ctx())
	pl.acc = newAccumulator(pl.ctx, &pl.wg, "stream '"+f.stream+"'", base.BrokerPublishInFlightMax, pl.submitBatch)
	if s, err := b.lookupStream(f.tenant, f.stream); err == nil {
		pl.cfg = s.Config
	}
	f.leader.Store(pl)
	pl.wg.Add(1)
	go func() {
		defer pl.wg.Done()
		pl.run()
	}()
	return pl
}

func (pl *partitionLeader) stop() {
	if pl.fsm.leader.Load() == pl {
		pl.fsm.leader.Store(nil)
	}
	pl.cancel()
	pl.wg.Wait()
	pl.acc.fail(base.Errorf(base.CodeNotLeader, "broker: node %d no longer leads stream '%s' partition %d: %w",
		pl.b.node, pl.fsm.stream, pl.fsm.partition, leaderErr(pl.g, 0)))
}

// run applies retention every RetentionInterval, when there is something
// to release (a tick that would change nothing is not proposed), and keeps
// the partition's configuration the controller's.
func (pl *partitionLeader) run() {
	t := pl.b.clock.NewTimer(pl.b.cfg.RetentionInterval)
	defer t.Stop()
	pl.retainedMs.Store(pl.b.nowMs()) // armed: the next advance past the interval runs a pass
	pl.b.activity.Signal()
	pl.cfgMu.Lock()
	cfg := pl.cfg
	pl.cfgMu.Unlock()
	pl.syncConfig(cfg)
	for {
		select {
		case <-pl.ctx.Done():
			return
		case <-t.C():
			t.Reset(pl.b.cfg.RetentionInterval)
			now, due := pl.b.nowMs(), false
			pl.fsm.with(func(p *stream.Partition) { due = p.RetentionDue(now) })
			if due {
				_, _ = pl.proposeCommand(pl.ctx, stream.RetentionTick{Now: now})
			}
			pl.retainedMs.Store(now)
			pl.b.activity.Signal()
		}
	}
}

// configure is called by the reconciler with the stream's description.
func (pl *partitionLeader) configure(s controller.StreamInfo) {
	pl.cfgMu.Lock()
	pl.cfg = s.Config
	pl.cfgMu.Unlock()
	pl.syncConfig(s.Config)
}

func (pl *partitionLeader) syncConfig(cfg controller.StreamConfig) {
	var cur stream.PartitionConfig
	pl.fsm.with(func(p *stream.Partition) { cur = p.Config() })
	if partitionConfigEqual(cur, cfg.Partition) {
		return
	}
	pl.wg.Add(1)
	go func() {
		defer pl.wg.Done()
		_, _ = pl.proposeCommand(pl.ctx, stream.Configure{Config: cfg.Partition})
	}()
}

// proposeCommand proposes a stream command to this partition.
func (pl *partitionLeader) proposeCommand(ctx context.Context, cmd stream.Command) (stream.Result, error) {
	res, err := pl.b.engine.Propose(ctx, pl.g, stream.EncodeCommand([]byte{tagPartition}, cmd))
	if err != nil {
		return stream.Result{}, err
	}
	r, _ := res.Value.(*partitionCmdResult)
	if r == nil {
		return stream.Result{}, base.Errorf(base.CodeInternal, "broker: stream command gave %T", res.Value)
	}
	return r.res, r.res.Err
}

// submitBatch appends a batch of messages published through exchanges.
// A stream's log holds the batch itself (Kafka fetches serve it as it is),
// built straight into the buffer the engine proposes from; the engine
// keeps the accumulator's batches in flight in order, as a queue's.
func (pl *partitionLeader) submitBatch(items []*pubItem, done func([]queue.Outcome, error)) {
	pl.b.proposeItems(pl.g, items, true, false, func(r replication.Result) {
		if r.Err != nil {
			done(nil, r.Err)
			return
		}
		done(make([]queue.Outcome, len(items)), nil) // all OutcomeEnqueued
	})
}

// produce appends a client's batch (Kafka Produce). Idempotent batches
// are checked against the partition's producer state plus the producer's
// batches still in flight on this leader, only once the leader has applied
// everything of earlier terms (stream DESIGN.md, invariant 1).
//
// admitted is called once the batch is in the engine's queue (and on every
// other path, always once, before produce returns): a caller that submits
// the producer's next batch only after admitted has run keeps the batches
// in order, and several share one fsync. An idempotent producer's batches
// are checked and submitted under its lane's lock, released at that point;
// the lane's chain (produceChain) makes them all-or-nothing in order: a
// batch after one that failed is refused, and so is a batch in a term
// other than the chain's first, so the log never holds a batch whose
// predecessor it lost. Different producers do not wait for each other:
// sequences are per producer.
func (pl *partitionLeader) produce(ctx context.Context, data []byte, h batch.Header, admitted func()) (stream.AppendResult, error) {
	if h.ProducerID < 0 {
		pa := &pendingAppend{done: make(chan struct{})}
		pl.propose(pa, data, nil, nil)
		admitted()
		return pa.wait(ctx)
	}
	if err := pl.catchUp(ctx); err != nil {
		admitted()
		return stream.AppendResult{}, err
	}
	a := stream.Append{Now: pl.b.nowMs(), LastOffsetDelta: h.LastOffsetDelta, MaxTimestamp: h.MaxTimestamp,
		Bytes: int64(len(data)), ProducerID: h.ProducerID, ProducerEpoch: h.ProducerEpoch, BaseSequence: h.BaseSequence}
	lane := pl.acquireLane(h.ProducerID)
	pa, res, err := pl.submitIdempotent(ctx, lane, data, a)
	admitted()
	if pa == nil {
		return res, err
	}
	return pa.wait(ctx)
}

// submitIdempotent checks a with lane locked, and proposes it when the
// check passes, unlocking lane. It returns the append to wait for (the
// batch's own, or the original's of a duplicate still in flight), or nil
// and the outcome when it is known at once.
func (pl *partitionLeader) submitIdempotent(ctx context.Context, lane *producerLane, data []byte, a stream.Append) (*pendingAppend, stream.AppendResult, error) {
	if lane.chain.isBroken() {
		// The chain's batches still in flight will fail or are already
		// in the log: check the next batch once their outcomes are known.
		for _, prev := range pl.inflight(lane) {
			select {
			case <-prev.done:
			case <-ctx.Done():
				pl.releaseLane(a.ProducerID, lane)
				return nil, stream.AppendResult{}, base.Errorf(base.CodeTimeout, "broker: producer %d's earlier batches still in flight: %w", a.ProducerID, ctx.Err())
			}
		}
	}
	inflight := pl.inflight(lane)
	if len(inflight) == 0 {
		lane.chain = &produceChain{}
	}
	shadow := make([]stream.Append, len(inflight))
	for i, f := range inflight {
		shadow[i] = f.a
	}
	var chk stream.AppendResult
	pl.fsm.with(func(p *stream.Partition) { chk = p.Check(a, shadow) })
	switch {
	case chk.Status == stream.AppendOK:
	case chk.Status == stream.AppendDuplicate && chk.BaseOffset < 0:
		// A retry of a batch still in flight: answer the original's outcome.
		pl.releaseLane(a.ProducerID, lane)
		for _, f := range inflight {
			if f.a.ProducerEpoch == a.ProducerEpoch && f.a.BaseSequence == a.BaseSequence && f.a.LastOffsetDelta == a.LastOffsetDelta {
				return f, stream.AppendResult{}, nil
			}
		}
		return nil, chk, base.Errorf(base.CodeInternal, "broker: producer %d's batch at sequence %d is a duplicate of none in flight", a.ProducerID, a.BaseSequence)
	case chk.Status == stream.AppendDuplicate:
		pl.releaseLane(a.ProducerID, lane)
		return nil, chk, nil
	default:
		pl.releaseLane(a.ProducerID, lane)
		return nil, chk, chk.Status.Err(a.ProducerID)
	}
	pa := &pendingAppend{a: a, done: make(chan struct{})}
	chain := lane.chain
	pl.producersMu.Lock()
	lane.inflight = append(lane.inflight, pa) // the call's use of the lane passes to pa
	pl.producersMu.Unlock()
	pl.propose(pa, data, chain.admit, func() {
		if pa.err != nil {
			chain.fail(pa.err)
		}
		pl.producersMu.Lock()
		lane.inflight = slices.DeleteFunc(lane.inflight, func(f *pendingAppend) bool { return f == pa })
		pl.dropUse(a.ProducerID, lane)
		pl.producersMu.Unlock()
	})
	lane.mu.Unlock()
	return pa, stream.AppendResult{}, nil
}

// catchUp returns once this leader has applied every entry up to the
// start of its term (a ReadIndex, once per term).
func (pl *partitionLeader) catchUp(ctx context.Context) error {
	pl.catchUpMu.Lock()
	defer pl.catchUpMu.Unlock()
	if pl.caughtUp {
		return nil
	}
	if _, err := pl.b.engine.ReadIndex(ctx, pl.g); err != nil {
		return err
	}
	pl.caughtUp = true
	return nil
}

// producerLane orders one idempotent producer's batches on this leader.
// It exists while a produce of the producer is under way or a batch of it
// is in flight.
type producerLane struct {
	mu    sync.Mutex    // held from a batch's Check until it is submitted
	chain *produceChain // guarded by mu: the chain the next batch joins
	// users and inflight are guarded by partitionLeader.producersMu.
	users    int              // calls holding or waiting for mu, and batches in flight
	inflight []*pendingAppend // submitted, outcome not yet known, in submission order
}

// pendingAppend is a data batch proposed to the partition; res and err
// are set before done is closed. a is the batch's Append for an idempotent
// producer's Check.
type pendingAppend struct {
	a    stream.Append
	done chan struct{}
	res  stream.AppendResult
	err  error
}

// propose submits data for pa. settle, when not nil, runs on the engine
// loop once the outcome is in pa, before done is closed.
func (pl *partitionLeader) propose(pa *pendingAppend, data []byte, admit func(term uint64) error, settle func()) {
	pl.b.engine.ProposeBatchAsync(pl.g, data, admit, func(r replication.Result) {
		switch ar, _ := r.Value.(*appendResult); {
		case r.Err != nil:
			pa.err = r.Err
		case ar == nil:
			pa.err = base.Errorf(base.CodeInternal, "broker: data batch gave %T", r.Value)
		default:
			pa.res, pa.err = ar.res, ar.res.Status.Err(-1)
		}
		if settle != nil {
			settle()
		}
		close(pa.done)
	})
}

// wait returns the batch's outcome, or CodeTimeout when ctx ends first.
func (pa *pendingAppend) wait(ctx context.Context) (stream.AppendResult, error) {
	select {
	case <-pa.done:
		return pa.res, pa.err
	case <-ctx.Done():
		return stream.AppendResult{}, base.Errorf(base.CodeTimeout, "broker: outcome of a produced batch unknown: %w", ctx.Err())
	}
}

// produceChain is a run of one producer's pipelined batches, made
// all-or-nothing in order through ProposeBatchAsync's admit: once a batch
// of the chain has failed, or the chain's first batch was admitted in
// another term, every later batch is refused, so none can be committed
// past a gap. A lane starts a new chain when it has no batch in flight.
type produceChain struct {
	mu     sync.Mutex
	term   uint64 // the term of the chain's first admitted batch; 0 before
	failed error  // the first failure of a batch of the chain
}

func (c *produceChain) admit(term uint64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failed != nil {
		return base.Errorf(base.CodeOf(c.failed), "broker: an earlier batch of the producer failed: %w", c.failed)
	}
	if c.term == 0 {
		c.term = term
	}
	if c.term != term {
		c.failed = base.Errorf(base.CodeNotLeader, "broker: the producer's earlier batches were proposed in term %d, not %d", c.term, term)
		return c.failed
	}
	return nil
}

func (c *produceChain) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failed == nil {
		c.failed = err
	}
}

func (c *produceChain) isBroken() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.failed != nil
}

// inflight returns a copy of lane's batches in flight.
func (pl *partitionLeader) inflight(lane *producerLane) []*pendingAppend {
	pl.producersMu.Lock()
	defer pl.producersMu.Unlock()
	return slices.Clone(lane.inflight)
}

// acquireLane returns producer id's lane, locked.
func (pl *partitionLeader) acquireLane(id int64) *producerLane {
	pl.producersMu.Lock()
	l := pl.producers[id]
	if l == nil {
		l = &producerLane{chain: &produceChain{}}
		pl.producers[id] = l
	}
	l.users++
	pl.producersMu.Unlock()
	l.mu.Lock()
	return l
}

// releaseLane unlocks l and ends the call's use of it.
func (pl *partitionLeader) releaseLane(id int64, l *producerLane) {
	l.mu.Unlock()
	pl.producersMu.Lock()
	defer pl.producersMu.Unlock()
	pl.dropUse(id, l)
}

// dropUse ends one use of l, forgetting l when it was the last; the
// caller holds producersMu.
func (pl *partitionLeader) dropUse(id int64, l *producerLane) {
	l.users--
	if l.users == 0 {
		delete(pl.producers, id)
	}
}

// leaderErr is the NotLeaderError a CodeNotLeader error wraps.
func leaderErr(g GroupID, lead NodeID) error {
	return &replication.NotLeaderError{Group: g, Leader: lead}
}

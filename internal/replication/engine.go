package replication

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"path"
	"sync"
	"sync/atomic"
	"time"

	raft "go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/base/vfs"
)

// Config configures an Engine. Zero durations and counts take the defaults
// named below.
type Config struct {
	// NodeID is this node's id (nonzero); it is the Raft id of every
	// replica the engine hosts.
	NodeID NodeID
	// Clock drives ticks, leases and stamps; nil means base.RealClock.
	Clock base.Clock
	// FS and Dir hold the snapshot files: Dir/snap/<group>/.
	FS  vfs.FS
	Dir string
	// Logs and State are the node's durable storage.
	Logs  LogProvider
	State StateStore
	// Transport carries messages to peers. It may be nil for a node whose
	// groups all have one voter.
	Transport Transport
	// Address returns a node's address for NotLeaderError; nil leaves it
	// empty.
	Address func(NodeID) string

	// Loops is the number of engine loops the groups are spread over (by a
	// hash of the group id); default 1. Each loop makes one fsync per
	// iteration for all its groups.
	Loops int
	// TickInterval is the Raft tick; default 100ms. ElectionTicks
	// (default 10) and HeartbeatTicks (default 2) are in ticks.
	TickInterval   time.Duration
	ElectionTicks  int
	HeartbeatTicks int
	// ProposalGather bounds the loop's wait for proposers after a synced
	// batch (see loop.gather); default base.RaftProposalGatherMax.
	// Negative turns the wait off: a test whose clock moves only by hand
	// sets it, since the wait is timed on Clock and nothing else would end
	// it.
	ProposalGather time.Duration
	// QuiesceTicks is how many ticks a leader's group must be idle and
	// fully replicated before it sleeps; default 2*ElectionTicks. Negative
	// disables quiescence.
	QuiesceTicks int
	// SnapshotEntries and SnapshotBytes: a replica snapshots its FSM when
	// this many entries or bytes were applied since its last snapshot
	// (defaults 10,000 and 64 MiB), and the snapshot lets the log drop
	// SnapshotEntries entries or the log grew by base.RaftSnapshotLogGrowth
	// times the last snapshot's size.
	SnapshotEntries uint64
	SnapshotBytes   uint64
	// SnapshotFreeBytes: a replica also snapshots its FSM, however little
	// it applied since the last snapshot, when the snapshot would let the
	// log free this many bytes of storage (default
	// base.RaftSnapshotFreeBytesDefault), and at least the last snapshot's
	// size: a queue drained by its consumers gives its disk space back
	// without waiting for more traffic, and a snapshot writes no more than
	// it frees.
	SnapshotFreeBytes int64
	// MaxClockRateDrift is the largest fraction by which two nodes' clocks
	// may disagree about the length of an interval (default 0.1). Leader
	// leases last (ElectionTicks-1)*TickInterval*(1-MaxClockRateDrift)
	// from the heartbeat that a quorum acknowledged; see DESIGN.md.
	MaxClockRateDrift float64

	// Manual makes the engine start no goroutine: the caller drives it by
	// calling Step (the deterministic simulator does).
	Manual bool
	// SnapshotSteps: a Manual engine writes a snapshot, or restores a
	// received one, at the SnapshotSteps-th Step after it started
	// (default 1), standing for the time the job takes off the loop.
	SnapshotSteps int
	// Logger receives the engine's and raft's warnings; nil means
	// slog.Default().
	Logger *slog.Logger

	// UnsafeAckBeforeSync breaks durability on purpose: an iteration sends
	// its messages and applies without syncing the log, which is synced at
	// the start of the next iteration instead. Only the simulator's
	// self-test sets it, to prove the checkers catch a lost acknowledged
	// write.
	UnsafeAckBeforeSync bool
}

func (c *Config) setDefaults() error {
	if c.NodeID == 0 {
		return base.Errorf(base.CodeInvalidArgument, "replication: Config.NodeID is 0")
	}
	if c.Logs == nil || c.State == nil || c.FS == nil {
		return base.Errorf(base.CodeInvalidArgument, "replication: Config needs Logs, State and FS")
	}
	if c.Clock == nil {
		c.Clock = base.RealClock{}
	}
	if c.Loops <= 0 {
		c.Loops = 1
	}
	if c.TickInterval <= 0 {
		c.TickInterval = 100 * time.Millisecond
	}
	if c.ElectionTicks <= 0 {
		c.ElectionTicks = 10
	}
	if c.HeartbeatTicks <= 0 {
		c.HeartbeatTicks = 2
	}
	if c.ElectionTicks <= c.HeartbeatTicks {
		return base.Errorf(base.CodeInvalidArgument, "replication: ElectionTicks %d must exceed HeartbeatTicks %d", c.ElectionTicks, c.HeartbeatTicks)
	}
	if c.ProposalGather == 0 {
		c.ProposalGather = base.RaftProposalGatherMax
	}
	if c.SnapshotSteps <= 0 {
		c.SnapshotSteps = 1
	}
	if c.QuiesceTicks == 0 {
		c.QuiesceTicks = 2 * c.ElectionTicks
	}
	if c.SnapshotEntries == 0 {
		c.SnapshotEntries = 10_000
	}
	if c.SnapshotBytes == 0 {
		c.SnapshotBytes = 64 << 20
	}
	if c.SnapshotFreeBytes <= 0 {
		c.SnapshotFreeBytes = base.RaftSnapshotFreeBytesDefault
	}
	if c.MaxClockRateDrift <= 0 || c.MaxClockRateDrift >= 1 {
		c.MaxClockRateDrift = 0.1
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// Engine runs the Raft groups of one node. See doc.go.
type Engine struct {
	cfg       Config
	clock     base.Clock
	log       *slog.Logger
	raftLog   raft.Logger
	loops     []*loop
	start     time.Time
	embargo   time.Time     // votes are refused before this (see DESIGN.md)
	leaseSpan time.Duration // how long a quorum-acknowledged heartbeat holds the lease
	snapSeq   atomic.Uint64 // names received snapshot files

	mu      sync.Mutex
	groups  map[GroupID]*group // guarded by mu
	stopped bool               // guarded by mu

	failed  atomic.Bool
	failErr atomic.Pointer[error] // set once, before failed

	stop chan struct{}
	wg   sync.WaitGroup

	metrics metrics
	// leaders announces leadership changes to LeadershipChanged's
	// watchers.
	leaders base.Broadcast
}

// New returns an engine; Start it (unless Manual) and open its groups.
func New(cfg Config) (*Engine, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	e := &Engine{
		cfg:    cfg,
		clock:  cfg.Clock,
		log:    cfg.Logger.With("node", cfg.NodeID),
		groups: map[GroupID]*group{},
		stop:   make(chan struct{}),
	}
	e.cfg.Logs, e.cfg.State = timedLogs{cfg.Logs, e}, timedState{cfg.State, e} // FsyncSeconds
	e.raftLog = raftLogger{e.log}
	e.start = e.clock.Now()
	e.embargo = e.start.Add(time.Duration(cfg.ElectionTicks) * cfg.TickInterval)
	e.leaseSpan = time.Duration(float64(time.Duration(cfg.ElectionTicks-1)*cfg.TickInterval) * (1 - cfg.MaxClockRateDrift))
	for i := range cfg.Loops {
		e.loops = append(e.loops, newLoop(e, i))
	}
	if err := mkdirDurable(cfg.FS, path.Join(cfg.Dir, "snap")); err != nil {
		return nil, err
	}
	return e, nil
}

// Start starts the engine loops. It does nothing in Manual mode.
func (e *Engine) Start() {
	if e.cfg.Manual {
		return
	}
	for _, l := range e.loops {
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			l.run()
		}()
	}
}

// Stop stops the loops, waits for them, fails every pending call with
// CodeStopped and closes the groups' logs. It returns the error that made
// the engine fail-stop, if any.
func (e *Engine) Stop() error {
	e.mu.Lock()
	already := e.stopped
	e.stopped = true
	e.mu.Unlock()
	if !already {
		close(e.stop)
	}
	e.wg.Wait()
	for _, l := range e.loops {
		l.shutdown(base.Errorf(base.CodeStopped, "replication: node %d is stopping", e.cfg.NodeID))
	}
	return e.Err()
}

// Err returns the storage error that stopped the engine, or nil.
func (e *Engine) Err() error {
	if p := e.failErr.Load(); p != nil {
		return *p
	}
	return nil
}

// fail makes the engine fail-stop: no loop runs another iteration, and
// every pending and later call fails with err (CodeStorageFailed). An
// fsync error is never retried (DESIGN.md §3 of the project design).
func (e *Engine) fail(err error) {
	if base.CodeOf(err) != base.CodeStorageFailed {
		err = base.Errorf(base.CodeStorageFailed, "replication: node %d: %w", e.cfg.NodeID, err)
	}
	if e.failErr.CompareAndSwap(nil, &err) {
		e.log.Error("replication engine stopped: storage failed", "err", err)
		e.failed.Store(true)
		for _, l := range e.loops {
			l.signal()
		}
	}
}

// Step runs one iteration of every loop, in order, and reports whether any
// of them did work. Only for Manual engines.
func (e *Engine) Step() bool {
	base.Assert(e.cfg.Manual, "Engine.Step called on an engine that runs its own loops")
	worked := false
	for _, l := range e.loops {
		l.runManualJobs()
		if l.iterate() || len(l.manualJobs) > 0 {
			worked = true
		}
	}
	return worked
}

func (e *Engine) loopFor(g GroupID) *loop {
	if len(e.loops) == 1 {
		return e.loops[0]
	}
	h := fnv.New64a()
	var b [8]byte
	for i := range b {
		b[i] = byte(g >> (8 * i))
	}
	h.Write(b[:])
	return e.loops[h.Sum64()%uint64(len(e.loops))]
}

// Result is the outcome of a proposal or a read.
type Result struct {
	// Index is the log index of the proposal, or the read index.
	Index uint64
	// Value is the FSM's result for the entry.
	Value any
	// Err is nil on success; otherwise it carries a base code (see the
	// methods).
	Err error
	// Lease is true for a read served from the leader's lease.
	Lease bool
}

// NotLeaderError is wrapped in the CodeNotLeader errors of this package: it
// names the leader, when one is known.
type NotLeaderError struct {
	Group   GroupID
	Leader  NodeID // 0 when unknown
	Address string // the leader's address, when known
}

func (e *NotLeaderError) Error() string {
	if e.Leader == 0 {
		return fmt.Sprintf("group %d has no known leader", e.Group)
	}
	return fmt.Sprintf("group %d is led by node %d at %q", e.Group, e.Leader, e.Address)
}

func (e *Engine) notLeader(g GroupID, lead NodeID) error {
	nl := &NotLeaderError{Group: g, Leader: lead}
	if lead != 0 && e.cfg.Address != nil {
		nl.Address = e.cfg.Address(lead)
	}
	return base.Errorf(base.CodeNotLeader, "replication: node %d is not the leader: %w", e.cfg.NodeID, nl)
}

// submit hands a request to its group's loop; done is called exactly once,
// on the loop goroutine or (for immediate failures) on the caller's.
func (e *Engine) submit(r *request) {
	if e.failed.Load() {
		r.finish(Result{Err: e.Err()})
		return
	}
	e.loopFor(r.group).enqueueRequest(r)
}

// waiter is the rendezvous of a blocking call with its callback. Waiters
// are recycled (waiters), so a result must never reach a later call than
// the one it answers: each call claims the waiter with a token of its own
// (use), and its callback sends only if it can take that token back, once.
// A result that comes too late (the call gave up) or twice (a bug: a
// request finished twice) finds another token or none and is dropped: it
// can neither answer another call nor block the engine's loop on a full
// channel. (An early version of the recycling put back waiters whose call
// had given up; the late results of those calls answered later calls:
// TestEveryProposalGetsItsOwnGroupsResultForItsOwnEntry.)
type waiter struct {
	ch chan Result // size one: the only send of a use never blocks
	// use is the token of the call that may still send into ch, 0 when
	// none may (its callback sent, or the call gave up).
	use atomic.Uint64
	// uses counts the calls that claimed the waiter; only the call that
	// holds it (between Get and Put) touches it.
	uses uint64
}

var waiters = sync.Pool{New: func() any { return &waiter{ch: make(chan Result, 1)} }}

// deliver is the callback of the waiter's call use: it sends r only if
// that call still waits for it, and never twice.
func (w *waiter) deliver(use uint64, r Result) {
	if w.use.CompareAndSwap(use, 0) {
		w.ch <- r
	}
}

// wait turns an asynchronous call into a blocking one. When ctx ends
// first the result is unknown (CodeTimeout), unless the callback had
// already claimed the waiter: then its result is returned.
func wait(ctx context.Context, submit func(done func(Result))) Result {
	w := waiters.Get().(*waiter)
	w.uses++
	use := w.uses
	w.use.Store(use)
	submit(func(r Result) { w.deliver(use, r) })
	select {
	case r := <-w.ch:
		waiters.Put(w)
		return r
	case <-ctx.Done():
		if !w.use.CompareAndSwap(use, 0) {
			// The callback took the token: its send, into the empty
			// channel of one, is under way and cannot block.
			r := <-w.ch
			waiters.Put(w)
			return r
		}
		// The callback will find no token: the waiter is free.
		waiters.Put(w)
		return Result{Err: base.Errorf(base.CodeTimeout, "replication: outcome unknown: %w", ctx.Err())}
	}
}

// Propose replicates an opaque command and returns once it is committed and
// applied on this node, with the FSM's result. Errors: CodeNotLeader (with
// a NotLeaderError naming the leader), CodeTimeout when ctx ends first (the
// outcome is then unknown), CodeOverloaded, CodeUnavailable (no quorum
// progress, or the entry was overwritten by a new leader: not committed),
// CodeStopped, CodeStorageFailed, CodeNotFound for an unknown group.
func (e *Engine) Propose(ctx context.Context, g GroupID, cmd []byte) (Result, error) {
	r := wait(ctx, func(done func(Result)) { e.ProposeAsync(g, cmd, done) })
	return r, r.Err
}

// ProposeAsync is Propose with a callback, called exactly once and never
// blocking (it runs on the engine loop).
func (e *Engine) ProposeAsync(g GroupID, cmd []byte, done func(Result)) {
	now := e.clock.Now()
	data, buf := encodeCommand(cmd, now.UnixMilli())
	e.submit(e.timeProposal(&request{kind: reqPropose, group: g, data: data, buf: buf, cmd: true, cmdLen: len(cmd), done: done}, now))
}

// ProposeBatch replicates a data batch (a record batch, stored as is as the
// entry) like Propose. It copies batch before validating it: the copy,
// which nobody else can modify, is what raft and the log receive, so the
// log need not validate it again, and the caller may reuse batch as soon as
// the call returns, even when ctx ended first.
func (e *Engine) ProposeBatch(ctx context.Context, g GroupID, batch []byte) (Result, error) {
	r := wait(ctx, func(done func(Result)) { e.ProposeBatchAsync(g, batch, nil, done) })
	return r, r.Err
}

// ProposeBatchAsync is ProposeBatch with a callback, called exactly once
// and never blocking: at once when batch is not a data batch, otherwise on
// the engine loop. It copies batch before it returns.
//
// admit, when not nil, is asked on the engine loop whether the batch may
// be proposed, once the loop has found this node the group's leader with
// room for the proposal; it is given the leader's current term, and an
// error refuses the proposal (done receives it). A group's proposals reach
// the loop in the order they were submitted, so a caller can make a chain
// of batches all-or-nothing in order (the broker's idempotent producers):
// its admit refuses every batch after one that done reported failed, and
// every batch of a term other than the first's. Raft then keeps the chain's
// entries in submission order with no gap, since an entry that never
// commits takes every later entry of its term with it.
func (e *Engine) ProposeBatchAsync(g GroupID, batch []byte, admit func(term uint64) error, done func(Result)) {
	data, buf := copyProposal(batch)
	e.proposeData(&request{kind: reqPropose, group: g, data: data, buf: buf, admit: admit, done: done}, isDataBatch(data))
}

// ProposeBuildAsync is ProposeBatchAsync of a data batch that build writes
// straight into the buffer the engine proposes from (recycled once raft
// has copied it), instead of into one of the caller's that the engine
// would copy: build appends the batch to dst, which has room for size
// bytes, and returns it, and must not keep dst. An error of build is
// done's. The batch is checked as ProposeBatchAsync checks one but for
// its records and CRC, which build has just written (under
// ferry_invariants they are checked too).
func (e *Engine) ProposeBuildAsync(g GroupID, size int, build func(dst []byte) ([]byte, error),
	admit func(term uint64) error, done func(Result)) {
	buf := proposalBufs.Get(size)
	data, err := build(*buf)
	if err == nil {
		err = isBuiltDataBatch(data)
	}
	r := &request{kind: reqPropose, group: g, data: data, buf: buf, admit: admit, done: done}
	if cap(data) == 0 || &data[:1][0] != &(*buf)[:1][0] {
		r.buf = nil // build outgrew the buffer and appended to an array of its own
		proposalBufs.Put(buf)
	}
	e.proposeData(r, err)
}

// proposeData submits r, a data batch's proposal, or when its check gave
// err, releases its buffer and fails it at once.
func (e *Engine) proposeData(r *request, err error) {
	if err != nil {
		releaseProposal(r)
		r.done(Result{Err: err})
		return
	}
	e.submit(e.timeProposal(r, e.clock.Now()))
}

// ReadIndex returns once this node has applied everything committed before
// the call (a linearizable read may then be served from the FSM). It works
// on followers too, by asking the leader.
func (e *Engine) ReadIndex(ctx context.Context, g GroupID) (Result, error) {
	r := wait(ctx, func(done func(Result)) { e.ReadAsync(g, false, done) })
	return r, r.Err
}

// LeaseRead is ReadIndex served from the leader's lease when it holds one
// (no message exchange), and through ReadIndex otherwise.
func (e *Engine) LeaseRead(ctx context.Context, g GroupID) (Result, error) {
	r := wait(ctx, func(done func(Result)) { e.ReadAsync(g, true, done) })
	return r, r.Err
}

// ReadAsync is ReadIndex (lease false) or LeaseRead (lease true) with a
// callback.
func (e *Engine) ReadAsync(g GroupID, lease bool, done func(Result)) {
	e.submit(&request{kind: reqRead, group: g, lease: lease, done: done})
}

// HandleBatch implements Handler.
func (e *Engine) HandleBatch(from NodeID, b *Batch) {
	if e.failed.Load() {
		return
	}
	if len(e.loops) == 1 {
		e.loops[0].enqueueBatch(from, b.Messages, b.Heartbeats)
		return
	}
	// Split by loop, keeping each group's messages in order.
	perLoop := make(map[*loop]*Batch, len(e.loops))
	for _, env := range b.Messages {
		l := e.loopFor(env.Group)
		if perLoop[l] == nil {
			perLoop[l] = &Batch{}
		}
		perLoop[l].Messages = append(perLoop[l].Messages, env)
	}
	for _, hb := range b.Heartbeats {
		l := e.loopFor(hb.Group)
		if perLoop[l] == nil {
			perLoop[l] = &Batch{}
		}
		perLoop[l].Heartbeats = append(perLoop[l].Heartbeats, hb)
	}
	for _, l := range e.loops { // in loop order, not map order
		if pb := perLoop[l]; pb != nil {
			l.enqueueBatch(from, pb.Messages, pb.Heartbeats)
		}
	}
}

// ReportUnreachable implements Handler.
func (e *Engine) ReportUnreachable(to NodeID, groups []GroupID) {
	for _, g := range groups {
		e.loopFor(g).enqueueRequest(&request{kind: reqUnreachable, group: g, node: to})
	}
}

// PeerDown implements Handler.
func (e *Engine) PeerDown(node NodeID) {
	e.metrics.peerDowns.Add(1)
	for _, l := range e.loops {
		l.enqueueRequest(&request{kind: reqPeerDown, node: node})
	}
}

// PeerUp implements Handler.
func (e *Engine) PeerUp(node NodeID) {
	for _, l := range e.loops {
		l.enqueueRequest(&request{kind: reqPeerUp, node: node})
	}
}

// ReceiveSnapshot implements Handler: it stores the stream as a file and
// hands the snapshot to the group's loop.
func (e *Engine) ReceiveSnapshot(from NodeID, r io.Reader) error {
	if e.failed.Load() {
		return e.Err()
	}
	in, err := e.receiveSnapshot(r)
	if err != nil {
		return err
	}
	msg := &pb.Message{
		Type: pb.MsgSnap.Enum(),
		From: new(from),
		To:   new(e.cfg.NodeID),
		Term: new(in.hdr.LeaderTerm),
		Snapshot: &pb.Snapshot{
			Data: []byte(in.file),
			Metadata: &pb.SnapshotMetadata{
				ConfState: pb.EnsureConfState(in.hdr.ConfState),
				Index:     new(in.hdr.Index),
				Term:      new(in.hdr.Term),
			},
		},
	}
	e.loopFor(in.hdr.Group).enqueueRequest(&request{kind: reqSnapMsg, group: in.hdr.Group, node: from, msg: msg, file: in.file})
	return nil
}

// GroupStatus is a group's state as last seen by its loop.
type GroupStatus struct {
	Group     GroupID
	Leader    NodeID
	IsLeader  bool
	Term      uint64
	Commit    uint64
	Applied   uint64
	Quiesced  bool
	Voters    []NodeID
	Learners  []NodeID
	LastIndex uint64
}

// Status returns the group's status, or CodeNotFound.
func (e *Engine) Status(g GroupID) (GroupStatus, error) {
	e.mu.Lock()
	grp := e.groups[g]
	e.mu.Unlock()
	if grp == nil {
		return GroupStatus{}, base.Errorf(base.CodeNotFound, "replication: node %d has no group %d", e.cfg.NodeID, g)
	}
	st := grp.pub.Load()
	if st == nil {
		return GroupStatus{Group: g}, nil
	}
	return *st, nil
}

// Groups returns the ids of the open groups, in no particular order.
func (e *Engine) Groups() []GroupID {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]GroupID, 0, len(e.groups))
	for g := range e.groups {
		out = append(out, g)
	}
	return out
}

var errGroupExists = errors.New("group is already open")

// groupLogFirst returns the first index of a group's log, for tests.
func (e *Engine) groupLogFirst(g GroupID) uint64 {
	e.mu.Lock()
	grp := e.groups[g]
	e.mu.Unlock()
	if grp == nil || grp.log == nil {
		return 0
	}
	return grp.log.FirstIndex()
}

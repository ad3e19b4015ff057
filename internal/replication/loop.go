package replication

import (
	"fmt"
	"slices"
	"sync"
	"time"

	raft "go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"

	"github.com/ferry-mq/ferry/internal/base"
)

type reqKind uint8

const (
	reqPropose     reqKind = iota + 1 // data: a batch
	reqConfChange                     // cc; promote waits for the learner first
	reqRead                           // lease: try the lease first
	reqTransfer                       // node: the transferee
	reqAddGroup                       // grp
	reqCloseGroup                     // group
	reqSnapStatus                     // node, ok: outcome of a snapshot stream
	reqUnreachable                    // node
	reqPeerDown                       // node
	reqPeerUp                         // node
	reqSnapMsg                        // msg, file: a received snapshot
	reqCampaign                       // group: campaign every tick until a leader is known
)

// request is one call into a loop. done is called exactly once; fields
// below the line are the loop's bookkeeping.
type request struct {
	kind    reqKind
	group   GroupID
	data    []byte
	cc      *pb.ConfChangeV2
	promote bool
	lease   bool
	node    NodeID
	ok      bool
	msg     *pb.Message
	file    string
	grp     *group
	admit   func(term uint64) error // proposals: may refuse it (ProposeBatchAsync)
	done    func(Result)
	// cmd is set on a command built by ProposeAsync; cmdLen is then the
	// command's length, and the command is the tail of data but one byte
	// (encodeControl's layout), which spares apply a parse.
	cmd    bool
	cmdLen int
	// buf is data's recycled buffer (encodeCommand), handed back by
	// assignProposals once raft holds its own copy; nil otherwise.
	buf *[]byte
	// timer, on a proposal made through the engine's API, is that
	// engine: finish counts the outcome and times it from start into
	// CommitSeconds (see timeProposal).
	timer *Engine
	start time.Time

	index, term uint64 // the entry (proposals) or read index (reads)
	deadline    int64  // the loop tick after which the request expires
	finished    bool
}

func (r *request) finish(res Result) {
	if r.finished {
		return
	}
	r.finished = true
	if r.timer != nil {
		r.timer.proposalDone(r.start, res.Err)
	}
	if r.done != nil {
		r.done(res)
	}
}

type inMsg struct {
	from NodeID
	env  Envelope
}

type inHeartbeat struct {
	from NodeID
	hb   Heartbeat
}

// inbox is what waits for a loop: messages from peers, requests, and
// FSM jobs that ended.
type inbox struct {
	msgs []inMsg
	hbs  []inHeartbeat
	reqs []*request
	jobs []*fsmJob
}

func (in *inbox) len() int { return len(in.msgs) + len(in.hbs) + len(in.reqs) + len(in.jobs) }

// loop drives a share of the node's groups. Everything below mu is owned
// by the goroutine running iterate (the loop's own, or Step's caller).
type loop struct {
	e      *Engine
	id     int
	wakeCh chan struct{} // size one: one pending wake-up is all a loop needs

	mu sync.Mutex
	in inbox // guarded by mu
	// gatherWant, when not 0, is the number of waiting requests at which
	// a gathering loop wants to be woken; enqueueRequest does not wake it
	// for fewer (guarded by mu).
	gatherWant int

	spare        inbox
	groups       map[GroupID]*group
	active       map[GroupID]*group // not quiesced: ticked
	activeSorted []*group
	activeStale  bool
	dirty        map[GroupID]*group // may have a Ready this iteration
	busy         map[GroupID]*group // have requests waiting; see group.updateBusy
	metaPending  []*group           // snapshot metadata waiting for a state commit
	manualJobs   []*fsmJob          // Manual engines: FSM jobs a later Step runs
	// early holds small messages for groups not open here yet, for one
	// to two ticks (see holdEarly).
	early    []heldMsg
	unsynced []LogStore // UnsafeAckBeforeSync only
	nextTick time.Time
	ticks    int64 // ticks so far, for request deadlines
	readSeq  uint64
	// For gather: the proposals the last iteration took, and whether it
	// synced logs.
	lastProposals int
	lastSynced    bool
	more          bool // another iteration is needed at once
	closed        bool
	out           outbox
	fsmBuf        []Entry
	results       []any
}

func newLoop(e *Engine, id int) *loop {
	return &loop{
		e:        e,
		id:       id,
		wakeCh:   make(chan struct{}, 1),
		groups:   map[GroupID]*group{},
		active:   map[GroupID]*group{},
		dirty:    map[GroupID]*group{},
		busy:     map[GroupID]*group{},
		nextTick: e.clock.Now().Add(e.cfg.TickInterval),
	}
}

func (l *loop) signal() {
	select {
	case l.wakeCh <- struct{}{}:
	default:
	}
}

func (l *loop) enqueueRequest(r *request) {
	l.mu.Lock()
	if l.in.len() >= base.RaftLoopInboxMax {
		l.mu.Unlock()
		r.finish(Result{Err: base.Errorf(base.CodeOverloaded, "replication: engine loop %d has %d requests waiting", l.id, base.RaftLoopInboxMax)})
		return
	}
	l.in.reqs = append(l.in.reqs, r)
	wake := l.gatherWant == 0 || len(l.in.reqs) >= l.gatherWant
	l.mu.Unlock()
	if wake {
		l.signal()
	}
}

// enqueueBatch queues a peer's messages; those beyond RaftLoopInboxMax are
// dropped (the sender's raft retransmits).
func (l *loop) enqueueBatch(from NodeID, msgs []Envelope, hbs []Heartbeat) {
	dropped := 0
	l.mu.Lock()
	for _, m := range msgs {
		if l.in.len() >= base.RaftLoopInboxMax {
			dropped++
			continue
		}
		l.in.msgs = append(l.in.msgs, inMsg{from, m})
	}
	for _, hb := range hbs {
		if l.in.len() >= base.RaftLoopInboxMax {
			dropped++
			continue
		}
		l.in.hbs = append(l.in.hbs, inHeartbeat{from, hb})
	}
	l.mu.Unlock()
	if dropped > 0 {
		l.e.metrics.inboxDrops.Add(uint64(dropped))
	}
	l.signal()
}

func (l *loop) take() inbox {
	l.mu.Lock()
	in := l.in
	l.in = l.spare
	l.mu.Unlock()
	return in
}

// recycle returns a processed inbox's slices for reuse.
func (l *loop) recycle(in inbox) {
	clear(in.msgs)
	clear(in.hbs)
	clear(in.reqs)
	clear(in.jobs)
	l.spare = inbox{msgs: in.msgs[:0], hbs: in.hbs[:0], reqs: in.reqs[:0], jobs: in.jobs[:0]}
}

// runManualJobs runs, on a Manual engine, the FSM jobs started
// Config.SnapshotSteps Steps ago.
func (l *loop) runManualJobs() {
	kept := l.manualJobs[:0]
	for _, j := range l.manualJobs {
		j.steps++
		switch {
		case j.started:
		case j.steps >= l.e.cfg.SnapshotSteps:
			j.started = true
			j.exec()
		default:
			kept = append(kept, j)
		}
	}
	clear(l.manualJobs[len(kept):])
	l.manualJobs = kept
}

// run is the loop's goroutine: iterate while there is work, then sleep
// until a request arrives, the next tick is due, or the engine stops.
func (l *loop) run() {
	var timer base.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		select {
		case <-l.e.stop:
			return
		default:
		}
		if l.e.failed.Load() {
			l.failAll()
			return
		}
		if l.iterate() || l.more {
			l.gather(&timer)
			continue
		}
		var tick <-chan time.Time
		if len(l.active) > 0 {
			d := max(l.nextTick.Sub(l.e.clock.Now()), 0)
			if timer == nil {
				timer = l.e.clock.NewTimer(d)
			} else {
				timer.Reset(d)
			}
			tick = timer.C()
		}
		select {
		case <-l.wakeCh:
		case <-tick:
		case <-l.e.stop:
			return
		}
	}
}

// gather waits, after an iteration that proposed and synced a batch, for
// the proposers it just answered to propose again: until as many requests
// have arrived since it started as the last batch held proposals, on top
// of those already waiting (proposers that missed the last batch), or for
// at most Config.ProposalGather. Otherwise the next iteration starts
// with the few that arrived first and pays a whole fsync for them, and
// batches alternate between small and large (group commit's classic
// pitfall). Counting only the last batch, and not those already waiting,
// kept that alternation going: on a single group with 64 proposers the
// batches averaged 50. It is woken once, when the count is reached, not by
// every request.
func (l *loop) gather(timer *base.Timer) {
	if l.lastProposals < 4 || !l.lastSynced || l.e.cfg.ProposalGather < 0 {
		return
	}
	l.mu.Lock()
	want := len(l.in.reqs) + l.lastProposals
	l.gatherWant = want
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		l.gatherWant = 0
		l.mu.Unlock()
	}()
	deadline := l.e.clock.Now().Add(l.e.cfg.ProposalGather)
	for {
		l.mu.Lock()
		n := len(l.in.reqs)
		l.mu.Unlock()
		d := deadline.Sub(l.e.clock.Now())
		if n >= want || d <= 0 {
			return
		}
		if *timer == nil {
			*timer = l.e.clock.NewTimer(d)
		} else {
			(*timer).Reset(d)
		}
		select {
		case <-l.wakeCh:
		case <-(*timer).C():
		case <-l.e.stop:
			return
		}
	}
}

// ready is one group's Ready of this iteration.
type ready struct {
	g  *group
	rd raft.Ready
}

// iterate runs one iteration (DESIGN.md "One iteration"): requests, tick,
// peer messages, proposals; then Ready of every group with work, persisted
// with one log sync and at most one state commit; then messages are sent,
// committed entries applied, and raft advanced. It reports whether it did
// anything.
func (l *loop) iterate() (worked bool) {
	if l.closed {
		return false
	}
	if l.e.failed.Load() {
		l.failAll()
		return false
	}
	defer l.recoverStorageFailure(&worked)
	now := l.e.clock.Now()
	l.more = false
	l.e.metrics.iterations.Add(1)
	if len(l.unsynced) > 0 {
		l.syncUnsafe()
	}
	in := l.take()
	worked = in.len() > 0
	l.lastProposals, l.lastSynced = 0, false
	for _, r := range in.reqs {
		if r.kind == reqPropose {
			l.lastProposals++
		}
	}
	for _, j := range in.jobs {
		j.g.finishJob(j)
	}
	l.handleRequests(in.reqs, now)
	if !now.Before(l.nextTick) {
		l.tick(now)
	}
	l.stepMessages(in.msgs, in.hbs, now)
	l.recycle(in)
	for _, g := range l.sortedDirty() {
		g.proposeQueued()
	}
	// A second pass takes the Readys that Advance produced at once: most
	// often the commit of what this pass made durable (a single voter's
	// entries commit on their own fsync). Applying them now instead of in
	// the next iteration saves a whole fsync of latency; the pass writes and
	// syncs nothing unless raft appended on its own (leaving a joint
	// configuration).
	for pass := 0; pass < 2; pass++ {
		rds := l.collect()
		if len(rds) == 0 && len(l.metaPending) == 0 {
			l.post(nil)
			break
		}
		worked = true
		if err := l.persist(rds); err != nil {
			l.e.fail(err)
			l.failAll()
			return true
		}
		l.send(rds, now)
		for _, r := range rds {
			r.g.applyReady(r)
		}
		l.post(rds)
	}
	l.out.flush(l.e)
	return worked
}

func (l *loop) recoverStorageFailure(worked *bool) {
	r := recover()
	if r == nil {
		return
	}
	if l.e.failed.Load() {
		// raft panicked on an error our Storage returned: the engine is
		// already failing; stop this loop instead of the process.
		l.failAll()
		*worked = false
		return
	}
	panic(r)
}

func (l *loop) sortedDirty() []*group {
	if len(l.dirty) == 0 {
		return nil
	}
	out := make([]*group, 0, len(l.dirty))
	for _, g := range l.dirty {
		out = append(out, g)
	}
	slices.SortFunc(out, func(a, b *group) int { return compareIDs(a.id, b.id) })
	return out
}

func compareIDs(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (l *loop) markDirty(g *group) { l.dirty[g.id] = g }

// collect takes the Ready of every dirty group that has one, in group id
// order, and assigns log positions to the proposals made this iteration.
func (l *loop) collect() []ready {
	groups := l.sortedDirty()
	clear(l.dirty)
	var rds []ready
	for _, g := range groups {
		if g.stopped || !g.rn.HasReady() {
			g.proposed = g.proposed[:0]
			continue
		}
		rd := g.rn.Ready()
		g.assignProposals(rd.Entries)
		rds = append(rds, ready{g: g, rd: rd})
	}
	return rds
}

// persist makes the iteration's state durable in the order DESIGN.md
// gives: snapshot installs' metadata first (their own state commit), then
// every group's log writes, one SyncAll, and one state commit for hard
// states and new snapshot metadata.
func (l *loop) persist(rds []ready) error {
	var pre []StateUpdate
	for i := range rds {
		if r := &rds[i]; !raft.IsEmptySnap(r.rd.Snapshot) {
			// The install replaces the log and the snapshot file a
			// restore reads, and the FSM either job uses.
			r.g.awaitJob()
			u, err := r.g.prepareInstall(r.rd)
			if err != nil {
				return err
			}
			pre = append(pre, u)
		}
	}
	if err := l.commitState(pre); err != nil {
		return err
	}
	for _, u := range pre {
		l.groups[u.Group].persistedState(u)
	}
	var logs []LogStore
	var ups []StateUpdate
	for i := range rds {
		r := &rds[i]
		wrote, err := r.g.writeReady(r.rd)
		if err != nil {
			return err
		}
		if wrote {
			logs = append(logs, r.g.log)
		}
		if u, ok := r.g.hardStateUpdate(r.rd); ok {
			ups = append(ups, u)
		}
	}
	pending := l.metaPending[:0]
	for _, g := range l.metaPending {
		// A snapshot installed this iteration supersedes an older one of
		// our own that waited for this commit: it must not overwrite it.
		if g.snapPending != nil && g.snapPending.Index > g.st.snap.Index && !g.stopped {
			pending = append(pending, g)
			ups = append(ups, g.snapshotUpdate())
		} else if g.snapPending != nil {
			g.removeSnapFile(g.snapPending.File, g.st.snap.File)
			g.snapPending = nil
		}
	}
	l.metaPending = nil
	if len(logs) > 0 {
		if l.e.cfg.UnsafeAckBeforeSync {
			l.unsynced = append(l.unsynced, logs...)
		} else if err := l.e.cfg.Logs.SyncAll(logs); err != nil {
			return fmt.Errorf("syncing %d logs: %w", len(logs), err)
		} else {
			l.e.metrics.logSyncs.Add(1)
			l.lastSynced = true
		}
	}
	if err := l.commitState(ups); err != nil {
		return err
	}
	for _, u := range ups {
		l.groups[u.Group].persistedState(u)
	}
	for _, g := range pending {
		if err := g.snapshotDurable(); err != nil {
			return err
		}
	}
	return nil
}

func (l *loop) commitState(ups []StateUpdate) error {
	if len(ups) == 0 {
		return nil
	}
	if err := l.e.cfg.State.Commit(ups); err != nil {
		return fmt.Errorf("committing state of %d groups: %w", len(ups), err)
	}
	l.e.metrics.stateCommits.Add(1)
	return nil
}

// syncUnsafe is the deliberately broken durability of
// UnsafeAckBeforeSync: the previous iteration's writes are synced only now,
// after their messages went out.
func (l *loop) syncUnsafe() {
	logs := l.unsynced
	l.unsynced = nil
	live := logs[:0]
	for _, lg := range logs {
		for _, g := range l.groups {
			if g.log == lg && !g.stopped {
				live = append(live, lg)
				break
			}
		}
	}
	if len(live) > 0 {
		if err := l.e.cfg.Logs.SyncAll(live); err != nil {
			l.e.fail(err)
		}
	}
}

// send queues every ready's messages into per-peer batches.
func (l *loop) send(rds []ready, now time.Time) {
	stamp := uint64(now.UnixNano())
	for i := range rds {
		g := rds[i].g
		for _, m := range rds[i].rd.Messages {
			g.sendMessage(m, stamp)
		}
	}
}

// tick advances Raft's clock of every active group by one tick; a leader
// that has been idle long enough quiesces instead.
func (l *loop) tick(now time.Time) {
	l.nextTick = now.Add(l.e.cfg.TickInterval)
	l.ticks++
	l.early = slices.DeleteFunc(l.early, func(h heldMsg) bool { return h.tick < l.ticks-1 })
	if l.activeStale {
		l.activeSorted = l.activeSorted[:0]
		for _, g := range l.active {
			l.activeSorted = append(l.activeSorted, g)
		}
		slices.SortFunc(l.activeSorted, func(a, b *group) int { return compareIDs(a.id, b.id) })
		l.activeStale = false
	}
	stamp := uint64(now.UnixNano())
	for _, g := range l.activeSorted {
		if g.quiesced || g.stopped {
			continue
		}
		if g.maybeQuiesce(stamp) {
			continue
		}
		g.rn.Tick()
		g.idleTicks++
		g.campaignEagerly()
		l.markDirty(g)
	}
	for _, g := range l.sortedBusy() {
		g.expireRequests(l.ticks)
	}
}

func (l *loop) sortedGroups() []*group {
	out := make([]*group, 0, len(l.groups))
	for _, g := range l.groups {
		out = append(out, g)
	}
	slices.SortFunc(out, func(a, b *group) int { return compareIDs(a.id, b.id) })
	return out
}

func (l *loop) setActive(g *group, active bool) {
	if active {
		l.active[g.id] = g
	} else {
		delete(l.active, g.id)
	}
	l.activeStale = true
}

// sortedBusy returns the groups with requests waiting (proposals, reads,
// promotions, transfers) in id order.
func (l *loop) sortedBusy() []*group {
	out := make([]*group, 0, len(l.busy))
	for _, g := range l.busy {
		out = append(out, g)
	}
	slices.SortFunc(out, func(a, b *group) int { return compareIDs(a.id, b.id) })
	return out
}

// post runs after apply: groups that still have a Ready need another
// iteration; pending promotions are checked. It looks only at the groups
// of this iteration and the busy ones, never at every group.
func (l *loop) post(rds []ready) {
	for _, g := range l.sortedBusy() {
		if !g.stopped && len(g.promotes) > 0 {
			g.checkPromotes()
		}
		g.updateBusy()
	}
	for i := range rds {
		g := rds[i].g
		if !g.stopped && (g.rn.HasReady() || len(g.queued) > 0) {
			l.markDirty(g)
			l.more = true
		}
	}
	if len(l.metaPending) > 0 || len(l.dirty) > 0 {
		l.more = true
	}
	if l.more {
		l.signal()
	}
}

// failAll fails every pending request of every group with the engine's
// error and stops the groups; the loop does nothing more.
func (l *loop) failAll() {
	err := l.e.Err()
	if err == nil {
		err = base.Errorf(base.CodeStopped, "replication: node %d stopped", l.e.cfg.NodeID)
	}
	l.shutdown(err)
}

// shutdown stops the loop: every group's pending requests fail with err
// and its log is closed. Only called when no iteration runs.
func (l *loop) shutdown(err error) {
	if l.closed {
		return
	}
	l.closed = true
	in := l.take()
	for _, r := range in.reqs {
		if r.kind == reqAddGroup && r.grp != nil {
			l.groups[r.grp.id] = r.grp
		}
		r.finish(Result{Err: err})
	}
	for _, g := range l.sortedGroups() {
		g.stop(err)
	}
}

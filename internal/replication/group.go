package replication

import (
	"fmt"
	"slices"
	"sync/atomic"

	"google.golang.org/protobuf/proto"

	raft "go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/quorum"
	pb "go.etcd.io/raft/v3/raftpb"

	"github.com/ferry-mq/ferry/internal/base"
)

// group is one Raft group's replica on this node. Every field is owned by
// its loop's goroutine, except pub (atomic) and what is set before the
// group is handed to the loop.
type group struct {
	id  GroupID
	e   *Engine
	l   *loop
	fsm FSM
	log LogStore
	st  *raftStorage
	rn  *raft.RawNode
	dir string // snapshot directory

	// Raft's view, from the Readys.
	lead      NodeID
	state     raft.StateType
	hs        HardState // the newest hard state raft reported
	persisted HardState // the hard state as durable in the StateStore

	confState *pb.ConfState
	confIndex uint64 // index of the last applied membership change
	// removed is true once a membership change without this node applied
	// here: it then refuses to vote, so a stale quorum cannot use it.
	removed bool
	voters  quorum.JointConfig // from confState, for lease quorums

	applied, appliedTerm uint64
	appliedSinceSnap     uint64 // entries applied since the last snapshot
	bytesSinceSnap       uint64
	freeCheckedAt        uint64 // the applied index snapshotFrees last asked at
	// snapBytes is the size of the FSM state in the last snapshot this
	// replica took (0 before its first since it opened, and after it
	// installed one), for snapshotPays.
	snapBytes uint64

	queued   []*request          // proposals to step this iteration
	proposed []*request          // stepped this iteration; positions come with the Ready
	props    []*request          // in the log, waiting to apply; sorted by index
	reads    map[uint64]*request // ReadIndex sent to raft, by request context
	readWait []*request          // read index known, waiting for apply
	promotes []*request
	transfer *request

	// ownFirst..ownLast are the indexes of the entries proposed by this
	// node in the current Ready (0, 0: none), set by assignProposals and
	// used by writeReady: their data was built by the engine or validated
	// by ProposeBatch on a copy the engine owns, so the log need not
	// validate it again.
	ownFirst, ownLast uint64

	quiesced  bool
	idleTicks int
	// wokeFor is the peer whose down report woke this sleeping group (in
	// term wokeTerm); cleared by any other wake-up or sleep.
	wokeFor  NodeID
	wokeTerm uint64

	// Leases (DESIGN.md "Leases"): per follower, the newest stamp of ours
	// it echoed in this term; and the follower's side of the echo.
	leaseTerm    uint64
	leaseAcks    map[NodeID]uint64
	transferTerm uint64 // a transfer began in this term: no lease reads in it
	echoStamp    uint64
	echoLead     NodeID
	echoTerm     uint64

	cache entryCache // entries written and not yet applied

	// job is the snapshot being written or restored off the loop; held
	// are the entries committed meanwhile, applied when it ends
	// (holdBack).
	job         *fsmJob
	held        []*pb.Entry
	heldBytes   int
	snapPending *SnapshotMeta // written, waiting for the state commit
	installing  *SnapshotMeta // a received snapshot being installed this iteration
	snapWanted  bool          // raft needs a snapshot newer than the last conf change
	recvFiles   []string      // received snapshot files not installed yet

	stopped bool
	eager   bool // campaign at every tick until a leader is known (Engine.Campaign)
	// campaignDeferred: a campaign met committed membership changes not
	// applied yet, which raft refuses to campaign over; applyReady makes it
	// again once they are.
	campaignDeferred bool
	pub              atomic.Pointer[GroupStatus]
}

// OpenGroup opens this node's replica of group id with fsm as its state
// machine, recovering it from storage. A group with no stored state is
// created: with bootstrap listing the initial voters (the same list on
// every initial node), or empty when bootstrap is nil (a replica to be
// added with AddLearner or AddVoter, which catches up from the leader).
func (e *Engine) OpenGroup(id GroupID, fsm FSM, bootstrap []NodeID) error {
	e.mu.Lock()
	switch {
	case e.stopped:
		e.mu.Unlock()
		return base.Errorf(base.CodeStopped, "replication: node %d is stopped", e.cfg.NodeID)
	case e.groups[id] != nil:
		e.mu.Unlock()
		return base.Errorf(base.CodeConflict, "replication: group %d: %w", id, errGroupExists)
	}
	e.groups[id] = &group{id: id} // reserve the id while opening
	e.mu.Unlock()
	g, err := e.openGroup(id, fsm, bootstrap)
	e.mu.Lock()
	if err != nil {
		delete(e.groups, id)
		e.mu.Unlock()
		return err
	}
	e.groups[id] = g
	e.mu.Unlock()
	g.l.enqueueRequest(&request{kind: reqAddGroup, group: id, grp: g})
	return nil
}

func (e *Engine) openGroup(id GroupID, fsm FSM, bootstrap []NodeID) (*group, error) {
	dir := e.snapDir(id)
	if err := mkdirDurable(e.cfg.FS, dir); err != nil {
		return nil, err
	}
	log, err := e.cfg.Logs.OpenLog(id)
	if err != nil {
		return nil, fmt.Errorf("replication: opening log of group %d: %w", id, err)
	}
	g := &group{id: id, e: e, l: e.loopFor(id), fsm: fsm, log: log, dir: dir,
		reads: map[uint64]*request{}, leaseAcks: map[NodeID]uint64{}}
	gs, err := g.loadState(bootstrap)
	if err != nil {
		log.Close()
		return nil, err
	}
	g.removeStaleSnapFiles(gs.Snapshot.File)
	g.st = &raftStorage{g: g, log: log, hs: gs.HardState, snap: gs.Snapshot}
	g.hs, g.persisted = gs.HardState, gs.HardState
	g.setConfState(cloneConfState(gs.Snapshot.ConfState), gs.Snapshot.Index)
	g.applied, g.appliedTerm = gs.Snapshot.Index, gs.Snapshot.Term
	rn, err := raft.NewRawNode(g.raftConfig(gs.Snapshot.Index))
	if err != nil {
		log.Close()
		return nil, fmt.Errorf("replication: starting raft for group %d: %w", id, err)
	}
	g.rn = rn
	g.publish()
	return g, nil
}

func (g *group) raftConfig(applied uint64) *raft.Config {
	c := g.e.cfg
	return &raft.Config{
		ID:                        c.NodeID,
		ElectionTick:              c.ElectionTicks,
		HeartbeatTick:             c.HeartbeatTicks,
		Storage:                   g.st,
		Applied:                   applied,
		MaxSizePerMsg:             base.RaftMessageBytesMax,
		MaxCommittedSizePerReady:  base.RaftApplyBytesMax,
		MaxUncommittedEntriesSize: base.RaftUncommittedBytesMax,
		MaxInflightMsgs:           base.RaftInflightMsgsMax,
		MaxInflightBytes:          base.RaftInflightBytesMax,
		CheckQuorum:               true,
		PreVote:                   true,
		ReadOnlyOption:            raft.ReadOnlySafe,
		DisableProposalForwarding: true,
		StepDownOnRemoval:         true,
		Logger:                    g.e.raftLog,
	}
}

// loadState reads the group's state, bootstrapping or repairing it, and
// restores the FSM from the newest snapshot.
func (g *group) loadState(bootstrap []NodeID) (GroupState, error) {
	gs, found, err := g.e.cfg.State.Load(g.id)
	if err != nil {
		return gs, fmt.Errorf("replication: loading state of group %d: %w", g.id, err)
	}
	if !found {
		// Entries without state are from a bootstrap or a first append that
		// crashed before its state commit; nothing was acknowledged (messages
		// go out after both), so they can go.
		if g.log.LastIndex() >= g.log.FirstIndex() || g.log.FirstIndex() != 1 {
			if err := g.log.Reset(1, 0); err != nil {
				return gs, err
			}
		}
		if len(bootstrap) > 0 {
			return g.bootstrap(bootstrap)
		}
		return GroupState{Snapshot: SnapshotMeta{ConfState: &pb.ConfState{}}}, nil
	}
	if gs.Snapshot.Index > 0 {
		if err := g.recoverSnapshot(gs.Snapshot); err != nil {
			return gs, err
		}
	}
	return gs, nil
}

// bootstrap writes the initial membership as the first entries of the log,
// one single-voter ConfChangeV2 each, committed at term 1, exactly as every
// other initial voter writes them.
func (g *group) bootstrap(voters []NodeID) (GroupState, error) {
	voters = slices.Clone(voters)
	slices.Sort(voters)
	voters = slices.Compact(voters)
	if !slices.Contains(voters, g.e.cfg.NodeID) {
		return GroupState{}, base.Errorf(base.CodeInvalidArgument, "replication: bootstrap voters %v of group %d do not include this node %d", voters, g.id, g.e.cfg.NodeID)
	}
	for _, v := range voters {
		cc := &pb.ConfChangeV2{Changes: []*pb.ConfChangeSingle{{Type: pb.ConfChangeAddNode.Enum(), NodeId: new(v)}}}
		data, err := proto.Marshal(cc)
		if err != nil {
			return GroupState{}, err
		}
		if _, err := g.log.WriteValidated(1, encodeControl(controlConfChangeV2, data, 0)); err != nil {
			return GroupState{}, err
		}
	}
	if err := g.e.cfg.Logs.SyncAll([]LogStore{g.log}); err != nil {
		return GroupState{}, err
	}
	gs := GroupState{
		HardState: HardState{Term: 1, Commit: uint64(len(voters))},
		Snapshot:  SnapshotMeta{ConfState: &pb.ConfState{}},
	}
	err := g.e.cfg.State.Commit([]StateUpdate{{Group: g.id, HardState: &gs.HardState, Snapshot: &gs.Snapshot}})
	return gs, err
}

// setConfState records the membership as of index.
func (g *group) setConfState(cs *pb.ConfState, index uint64) {
	wasMember := g.isMember(g.confState)
	if g.confState != nil && wasMember && !g.isMember(cs) {
		g.removed = true
	} else if g.isMember(cs) {
		g.removed = false
	}
	g.confState = cs
	g.confIndex = index
	g.voters = quorum.JointConfig{majority(cs.GetVoters()), majority(cs.GetVotersOutgoing())}
}

func (g *group) isMember(cs *pb.ConfState) bool {
	self := g.e.cfg.NodeID
	for _, ids := range [][]uint64{cs.GetVoters(), cs.GetVotersOutgoing(), cs.GetLearners(), cs.GetLearnersNext()} {
		if slices.Contains(ids, self) {
			return true
		}
	}
	return false
}

func majority(ids []uint64) quorum.MajorityConfig {
	if len(ids) == 0 {
		return nil
	}
	m := make(quorum.MajorityConfig, len(ids))
	for _, id := range ids {
		m[id] = struct{}{}
	}
	return m
}

// peers returns the other members (voters, outgoing voters, learners) in id
// order.
func (g *group) peers() []NodeID {
	var out []NodeID
	for _, ids := range [][]uint64{g.confState.GetVoters(), g.confState.GetVotersOutgoing(), g.confState.GetLearners(), g.confState.GetLearnersNext()} {
		out = append(out, ids...)
	}
	slices.Sort(out)
	out = slices.Compact(out)
	return slices.DeleteFunc(out, func(id NodeID) bool { return id == g.e.cfg.NodeID })
}

// storageFailed makes the engine fail-stop on an error of the group's
// storage met inside raft, and returns the error for raft to panic with.
func (g *group) storageFailed(err error) error {
	err = fmt.Errorf("group %d: %w: %w", g.id, errStorageFailed, err)
	g.e.fail(err)
	return err
}

// stop fails everything pending on the group and closes its log.
func (g *group) stop(err error) {
	if g.stopped {
		return
	}
	g.stopped = true
	for _, r := range g.allRequests() {
		r.finish(Result{Err: err})
	}
	g.queued, g.proposed, g.props, g.readWait, g.promotes, g.transfer = nil, nil, nil, nil, nil, nil
	clear(g.reads)
	if g.log != nil {
		g.log.Close()
	}
	if g.l != nil {
		delete(g.l.active, g.id)
		delete(g.l.busy, g.id)
		delete(g.l.dirty, g.id)
		g.l.activeStale = true
	}
}

func (g *group) allRequests() []*request {
	var out []*request
	out = append(out, g.queued...)
	out = append(out, g.proposed...)
	out = append(out, g.props...)
	for _, k := range sortedKeys(g.reads) {
		out = append(out, g.reads[k])
	}
	out = append(out, g.readWait...)
	out = append(out, g.promotes...)
	if g.transfer != nil {
		out = append(out, g.transfer)
	}
	return out
}

func sortedKeys[V any](m map[uint64]V) []uint64 {
	keys := make([]uint64, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// updateBusy keeps the loop's set of groups with waiting requests.
func (g *group) updateBusy() {
	if g.stopped {
		return
	}
	if len(g.props) > 0 || len(g.reads) > 0 || len(g.readWait) > 0 || len(g.promotes) > 0 || g.transfer != nil {
		g.l.busy[g.id] = g
	} else {
		delete(g.l.busy, g.id)
	}
}

// publish refreshes the status Status returns.
func (g *group) publish() {
	st := &GroupStatus{
		Group:    g.id,
		Leader:   g.lead,
		IsLeader: g.state == raft.StateLeader,
		Term:     g.hs.Term,
		Commit:   g.hs.Commit,
		Applied:  g.applied,
		Quiesced: g.quiesced,
		Voters:   slices.Clone(g.confState.GetVoters()),
		Learners: slices.Clone(g.confState.GetLearners()),
	}
	st.LastIndex, _ = g.st.LastIndex()
	old := g.pub.Load()
	if st.Leader != 0 && (old == nil || old.Leader != st.Leader) {
		g.e.metrics.leaderChanges.Add(1)
	}
	g.pub.Store(st)
	if leadershipMoved(old, st) {
		g.e.leaders.Signal() // after the store: a woken watcher reads the new status
	}
}

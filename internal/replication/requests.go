package replication

import (
	"bytes"
	"context"
	"encoding/binary"
	"math"
	"time"

	"google.golang.org/protobuf/proto"

	raft "go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/quorum"
	pb "go.etcd.io/raft/v3/raftpb"

	"github.com/ferry-mq/ferry/internal/base"
)

// ChangeKind is a kind of membership change.
type ChangeKind uint8

const (
	AddVoter ChangeKind = iota + 1
	AddLearner
	RemoveNode
)

// MembershipChange is one node's change in ChangeMembership.
type MembershipChange struct {
	Kind ChangeKind
	Node NodeID
}

func (c MembershipChange) single() *pb.ConfChangeSingle {
	t := pb.ConfChangeAddNode
	switch c.Kind {
	case AddLearner:
		t = pb.ConfChangeAddLearnerNode
	case RemoveNode:
		t = pb.ConfChangeRemoveNode
	}
	return &pb.ConfChangeSingle{Type: t.Enum(), NodeId: new(c.Node)}
}

// ChangeMembership proposes the changes as one ConfChangeV2: a single change
// uses Raft's simple protocol, several enter a joint configuration that
// Raft leaves automatically once it applies. It returns when the change is
// applied here; Result.Value is the resulting *raftpb.ConfState. Only one
// change may be in progress per group (CodeUnavailable otherwise).
func (e *Engine) ChangeMembership(ctx context.Context, g GroupID, changes ...MembershipChange) (Result, error) {
	r := wait(ctx, func(done func(Result)) { e.ChangeMembershipAsync(g, false, done, changes...) })
	return r, r.Err
}

// ChangeMembershipAsync is ChangeMembership with a callback. With promote,
// it first waits until every node being made a voter is a learner whose
// match index is within base.RaftPromoteLagEntriesMax of the leader's last
// index.
func (e *Engine) ChangeMembershipAsync(g GroupID, promote bool, done func(Result), changes ...MembershipChange) {
	cc := &pb.ConfChangeV2{}
	for _, c := range changes {
		cc.Changes = append(cc.Changes, c.single())
	}
	e.submit(&request{kind: reqConfChange, group: g, cc: cc, promote: promote, done: done})
}

// AddVoter adds node as a voter at once (it then catches up while already
// counting towards quorum; prefer AddLearner then Promote).
func (e *Engine) AddVoter(ctx context.Context, g GroupID, node NodeID) error {
	_, err := e.ChangeMembership(ctx, g, MembershipChange{AddVoter, node})
	return err
}

// AddLearner adds node as a learner: it receives the log but does not vote.
func (e *Engine) AddLearner(ctx context.Context, g GroupID, node NodeID) error {
	_, err := e.ChangeMembership(ctx, g, MembershipChange{AddLearner, node})
	return err
}

// RemoveNode removes a voter or learner. A leader that removes itself steps
// down once the change applies.
func (e *Engine) RemoveNode(ctx context.Context, g GroupID, node NodeID) error {
	_, err := e.ChangeMembership(ctx, g, MembershipChange{RemoveNode, node})
	return err
}

// Promote makes learner node a voter once it has caught up (see
// ChangeMembershipAsync), and returns when the promotion is applied.
func (e *Engine) Promote(ctx context.Context, g GroupID, node NodeID) error {
	r := wait(ctx, func(done func(Result)) {
		e.ChangeMembershipAsync(g, true, done, MembershipChange{AddVoter, node})
	})
	return r.Err
}

// TransferLeadership asks the leader to hand leadership to node, and
// returns when this node sees node as leader (CodeUnavailable if that did
// not happen within an election timeout).
func (e *Engine) TransferLeadership(ctx context.Context, g GroupID, node NodeID) error {
	r := wait(ctx, func(done func(Result)) { e.TransferLeadershipAsync(g, node, done) })
	return r.Err
}

// TransferLeadershipAsync is TransferLeadership with a callback.
func (e *Engine) TransferLeadershipAsync(g GroupID, node NodeID, done func(Result)) {
	e.submit(&request{kind: reqTransfer, group: g, node: node, done: done})
}

// CloseGroup stops the group's replica on this node (its pending calls fail
// with CodeStopped) and closes its log; the stored state stays.
func (e *Engine) CloseGroup(g GroupID) {
	e.loopFor(g).enqueueRequest(&request{kind: reqCloseGroup, group: g})
}

// Campaign asks this node's replica of group g to stand for election now
// and at every tick until the group has a leader, instead of after an
// election timeout: the broker asks it of a new group's preferred replica,
// so that a declared queue has a leader at once rather than after one to
// two election timeouts (a second at the defaults). A campaign raft
// refuses (the group's bootstrap not applied yet) is made again once it
// is applied; replicas that open the group after its vote requests arrive
// hold them until they do (holdEarly); what is lost anyway is tried again
// at the next tick. PreVote keeps it from disturbing a leader.
func (e *Engine) Campaign(g GroupID) {
	e.submit(&request{kind: reqCampaign, group: g})
}

// handleRequests applies the iteration's requests in arrival order.
func (l *loop) handleRequests(reqs []*request, now time.Time) {
	for _, r := range reqs {
		if r.kind == reqAddGroup {
			l.addGroup(r.grp, now)
			continue
		}
		if r.kind == reqPeerDown {
			l.wakeLedBy(r.node)
			continue
		}
		if r.kind == reqPeerUp {
			l.resleepLedBy(r.node)
			continue
		}
		g := l.groups[r.group]
		if g == nil || g.stopped {
			if r.kind == reqSnapMsg {
				l.e.removeRecvFile(r.group, r.file)
			}
			r.finish(Result{Err: base.Errorf(base.CodeNotFound, "replication: node %d has no group %d", l.e.cfg.NodeID, r.group)})
			continue
		}
		g.handleRequest(r, now)
	}
}

func (l *loop) addGroup(g *group, now time.Time) {
	l.groups[g.id] = g
	l.setActive(g, true)
	l.markDirty(g)
	// A single voter restarted with nothing to apply has no Ready, so
	// applyReady would not campaign for it: it would wait an election
	// timeout of ticks (on a fake clock, forever).
	g.maybeCampaignAlone()
	l.stepEarly(g.id, now)
}

func (g *group) handleRequest(r *request, now time.Time) {
	switch r.kind {
	case reqPropose, reqConfChange:
		g.enqueueProposal(r)
	case reqRead:
		g.handleRead(r, now)
	case reqTransfer:
		g.startTransfer(r)
	case reqCampaign:
		g.eager = true
		g.campaignEagerly()
		r.finish(Result{})
	case reqCloseGroup:
		// The group's files may go once it is closed: its snapshot must
		// not be written or read after.
		g.awaitJob()
		g.stop(base.Errorf(base.CodeStopped, "replication: group %d closed on node %d", g.id, g.e.cfg.NodeID))
		delete(g.l.groups, g.id)
		g.e.mu.Lock()
		delete(g.e.groups, g.id)
		g.e.mu.Unlock()
	case reqSnapStatus:
		status := raft.SnapshotFinish
		if !r.ok {
			status = raft.SnapshotFailure
		}
		g.rn.ReportSnapshot(r.node, status)
	case reqUnreachable:
		g.rn.ReportUnreachable(r.node)
	case reqSnapMsg:
		g.wake()
		g.recvFiles = append(g.recvFiles, r.file)
		_ = g.rn.Step(r.msg)
	}
	g.l.markDirty(g)
}

func (g *group) inFlight() int {
	return len(g.queued) + len(g.proposed) + len(g.props) + len(g.promotes)
}

func (g *group) enqueueProposal(r *request) {
	if g.state != raft.StateLeader {
		r.finish(Result{Err: g.e.notLeader(g.id, g.lead)})
		return
	}
	if g.inFlight() >= base.RaftProposalsInFlightMax {
		r.finish(Result{Err: base.Errorf(base.CodeOverloaded, "replication: group %d has %d proposals in flight", g.id, base.RaftProposalsInFlightMax)})
		return
	}
	if r.admit != nil {
		if err := r.admit(g.rn.BasicStatus().GetTerm()); err != nil {
			r.finish(Result{Err: err})
			return
		}
	}
	g.wake()
	g.idleTicks = 0
	r.deadline = g.l.ticks + int64(20*g.e.cfg.ElectionTicks)
	if r.promote {
		g.promotes = append(g.promotes, r)
		g.l.busy[g.id] = g
		return
	}
	g.queued = append(g.queued, r)
}

// proposeQueued steps all of the iteration's proposals of the group as one
// MsgProp, so they become consecutive entries at the end of this
// iteration's Ready (DESIGN.md "Proposal matching").
func (g *group) proposeQueued() {
	if len(g.queued) == 0 || g.stopped {
		return
	}
	queued := g.queued
	g.queued = nil
	ents := make([]*pb.Entry, len(queued))
	for i, r := range queued {
		if r.kind == reqConfChange {
			data, err := proto.Marshal(r.cc)
			base.Assert(err == nil, "marshalling a ConfChangeV2: %v", err)
			ents[i] = &pb.Entry{Type: pb.EntryConfChangeV2.Enum(), Data: data}
		} else {
			ents[i] = &pb.Entry{Data: r.data}
		}
	}
	err := g.rn.Step(&pb.Message{Type: pb.MsgProp.Enum(), From: new(g.e.cfg.NodeID), Entries: ents})
	if err != nil {
		fail := g.dropReason()
		for _, r := range queued {
			r.finish(Result{Err: fail})
		}
		return
	}
	g.proposed = append(g.proposed, queued...)
}

// dropReason explains why raft dropped a proposal.
func (g *group) dropReason() error {
	st := g.rn.BasicStatus()
	switch {
	case st.RaftState != raft.StateLeader:
		return g.e.notLeader(g.id, st.Lead)
	case st.LeadTransferee != 0:
		return base.Errorf(base.CodeUnavailable, "replication: group %d is transferring leadership to node %d", g.id, st.LeadTransferee)
	default:
		return base.Errorf(base.CodeOverloaded, "replication: group %d has %d bytes of uncommitted entries", g.id, base.RaftUncommittedBytesMax)
	}
}

// assignProposals gives the proposals stepped this iteration their log
// positions: they are the last len(proposed) entries of the Ready, since
// nothing is stepped between them and Ready.
func (g *group) assignProposals(entries []*pb.Entry) {
	n := len(g.proposed)
	g.ownFirst, g.ownLast = 0, 0
	if n == 0 {
		return
	}
	base.Assert(len(entries) >= n, "group %d: %d proposals but %d entries in the Ready", g.id, n, len(entries))
	tail := entries[len(entries)-n:]
	for i, r := range g.proposed {
		e := tail[i]
		if base.InvariantsEnabled && r.kind == reqPropose {
			base.Assert(bytes.Equal(e.GetData(), r.data), "group %d: entry %d does not hold proposal %d of the iteration", g.id, e.GetIndex(), i)
		}
		r.index, r.term = e.GetIndex(), e.GetTerm()
		releaseProposal(r) // raft appended a copy (proposalBufs)
		// Pending proposals at this index or later were in a log tail
		// that a newer term has replaced: they can never commit.
		for len(g.props) > 0 && g.props[len(g.props)-1].index >= r.index {
			last := g.props[len(g.props)-1]
			g.props = g.props[:len(g.props)-1]
			last.finish(Result{Err: g.overwritten(last)})
		}
		g.props = append(g.props, r)
	}
	g.ownFirst, g.ownLast = tail[0].GetIndex(), tail[n-1].GetIndex()
	clear(g.proposed)
	g.proposed = g.proposed[:0]
	g.l.busy[g.id] = g
}

func (g *group) overwritten(r *request) error {
	return base.Errorf(base.CodeNotLeader, "replication: entry %d of term %d was replaced by a newer leader, not committed: %w",
		r.index, r.term, &NotLeaderError{Group: g.id, Leader: g.lead, Address: g.e.address(g.lead)})
}

func (e *Engine) address(n NodeID) string {
	if n == 0 || e.cfg.Address == nil {
		return ""
	}
	return e.cfg.Address(n)
}

// completeProposals resolves the proposals up to the entry (index, term)
// that has just applied.
func (g *group) completeProposals(index, term uint64, value any, isConfChange bool) {
	for len(g.props) > 0 && g.props[0].index <= index {
		r := g.props[0]
		g.props = g.props[1:]
		switch {
		case r.index < index:
			// Skipped by a snapshot install: it may or may not have committed.
			r.finish(Result{Err: base.Errorf(base.CodeTimeout, "replication: outcome of entry %d unknown: a snapshot replaced the log", r.index)})
		case r.term != term:
			r.finish(Result{Err: g.overwritten(r)})
		case r.kind == reqConfChange && !isConfChange:
			r.finish(Result{Err: base.Errorf(base.CodeUnavailable, "replication: group %d refused the membership change: another one is in progress", g.id)})
		default:
			r.finish(Result{Index: index, Value: value})
		}
	}
}

// handleRead serves a read from the lease when it can, else sends it
// through raft's ReadIndex.
func (g *group) handleRead(r *request, now time.Time) {
	if len(g.reads)+len(g.readWait) >= base.RaftReadsInFlightMax {
		r.finish(Result{Err: base.Errorf(base.CodeOverloaded, "replication: group %d has %d reads in flight", g.id, base.RaftReadsInFlightMax)})
		return
	}
	g.wake()
	g.idleTicks = 0
	r.deadline = g.l.ticks + int64(2*g.e.cfg.ElectionTicks)
	if r.lease && g.leaseRead(r, now) {
		return
	}
	r.lease = false
	st := g.rn.BasicStatus()
	if st.Lead == 0 {
		r.finish(Result{Err: g.e.notLeader(g.id, 0)})
		return
	}
	g.l.readSeq++
	g.reads[g.l.readSeq] = r
	var ctx [8]byte
	binary.BigEndian.PutUint64(ctx[:], g.l.readSeq)
	g.rn.ReadIndex(ctx[:])
	g.l.busy[g.id] = g
}

// leaseRead serves r from the leader's lease: valid only on a leader that
// has applied an entry of its own term (so its commit index is current),
// is not transferring leadership, and holds a lease (DESIGN.md "Leases").
func (g *group) leaseRead(r *request, now time.Time) bool {
	st := g.rn.BasicStatus()
	if st.RaftState != raft.StateLeader || st.LeadTransferee != 0 || g.transferTerm == st.GetTerm() ||
		g.appliedTerm != st.GetTerm() || !g.leaseValid(now, st.GetTerm()) {
		return false
	}
	r.index = st.GetCommit()
	if g.applied >= r.index {
		r.finish(Result{Index: r.index, Lease: true})
		return true
	}
	g.readWait = append(g.readWait, r)
	g.l.busy[g.id] = g
	return true
}

// leaseValid reports whether a quorum of voters acknowledged a heartbeat
// of this term sent less than the lease span ago.
func (g *group) leaseValid(now time.Time, term uint64) bool {
	if g.leaseTerm != term && len(g.voters[0]) > 1 {
		return false
	}
	nowStamp := uint64(now.UnixNano())
	acked := uint64(g.voters.CommittedIndex(leaseAcks{g: g, now: nowStamp}))
	if acked == 0 || acked == math.MaxUint64 {
		return false
	}
	return now.Before(time.Unix(0, int64(acked)).Add(g.e.leaseSpan))
}

// leaseAcks lets the quorum package find the newest heartbeat time a quorum
// acknowledged: this node counts as acknowledging now.
type leaseAcks struct {
	g   *group
	now uint64
}

func (a leaseAcks) AckedIndex(id uint64) (quorum.Index, bool) {
	if id == a.g.e.cfg.NodeID {
		return quorum.Index(a.now), true
	}
	v, ok := a.g.leaseAcks[id]
	return quorum.Index(v), ok
}

// readStates matches raft's read states to the reads waiting for them.
func (g *group) readStates(rss []raft.ReadState) {
	for _, rs := range rss {
		if len(rs.RequestCtx) != 8 {
			continue
		}
		seq := binary.BigEndian.Uint64(rs.RequestCtx)
		r := g.reads[seq]
		if r == nil {
			continue
		}
		delete(g.reads, seq)
		r.index = rs.Index
		g.readWait = append(g.readWait, r)
	}
}

// completeReads finishes the reads whose index has applied.
func (g *group) completeReads() {
	kept := g.readWait[:0]
	for _, r := range g.readWait {
		if g.applied >= r.index {
			r.finish(Result{Index: r.index, Lease: r.lease})
		} else {
			kept = append(kept, r)
		}
	}
	clear(g.readWait[len(kept):])
	g.readWait = kept
}

// failReads fails the reads still waiting for a read index: raft forgets
// them when leadership changes.
func (g *group) failReads() {
	for _, seq := range sortedKeys(g.reads) {
		g.reads[seq].finish(Result{Err: g.e.notLeader(g.id, g.lead)})
	}
	clear(g.reads)
}

func (g *group) startTransfer(r *request) {
	switch {
	case g.transfer != nil:
		r.finish(Result{Err: base.Errorf(base.CodeUnavailable, "replication: group %d is already transferring leadership", g.id)})
		return
	case g.state != raft.StateLeader:
		r.finish(Result{Err: g.e.notLeader(g.id, g.lead)})
		return
	case r.node == g.e.cfg.NodeID:
		r.finish(Result{})
		return
	}
	g.wake()
	g.transferTerm = g.hs.Term
	r.deadline = g.l.ticks + int64(2*g.e.cfg.ElectionTicks)
	g.transfer = r
	g.l.busy[g.id] = g
	g.rn.TransferLeader(r.node)
}

// checkTransfer resolves a transfer when leadership changed.
func (g *group) checkTransfer() {
	r := g.transfer
	if r == nil {
		return
	}
	switch {
	case g.lead == r.node:
		r.finish(Result{})
		g.transfer = nil
	case g.lead != g.e.cfg.NodeID && g.lead != 0: // 0: the election is under way
		r.finish(Result{Err: g.e.notLeader(g.id, g.lead)})
		g.transfer = nil
	}
}

// checkPromotes proposes the waiting promotions whose learners caught up.
func (g *group) checkPromotes() {
	if g.state != raft.StateLeader {
		for _, r := range g.promotes {
			r.finish(Result{Err: g.e.notLeader(g.id, g.lead)})
		}
		g.promotes = nil
		return
	}
	match := map[NodeID]uint64{}
	learner := map[NodeID]bool{}
	g.rn.WithProgress(func(id uint64, typ raft.ProgressType, pr trackerProgress) {
		match[id] = pr.Match
		learner[id] = typ == raft.ProgressTypeLearner
	})
	last := match[g.e.cfg.NodeID]
	kept := g.promotes[:0]
	for _, r := range g.promotes {
		ready := true
		for _, c := range r.cc.GetChanges() {
			n := c.GetNodeId()
			if _, ok := match[n]; !ok || !learner[n] || !caughtUp(match[n], last) {
				ready = false
			}
		}
		if ready {
			r.promote = false
			g.queued = append(g.queued, r)
			g.l.markDirty(g)
		} else {
			kept = append(kept, r)
		}
	}
	clear(g.promotes[len(kept):])
	g.promotes = kept
}

// caughtUp says whether a learner at match is close enough to the leader's
// last index to be promoted.
func caughtUp(match, last uint64) bool { return match+base.RaftPromoteLagEntriesMax >= last }

// expireRequests fails the requests whose deadline (in loop ticks) passed.
func (g *group) expireRequests(now int64) {
	if g.job != nil {
		// The group applies nothing while its snapshot is written or
		// restored, as when the loop itself waited for it: nothing is
		// timed out meanwhile, and the ticks after the job settle the
		// rest.
		return
	}
	expired := func(r *request) bool { return r.deadline != 0 && r.deadline < now }
	kept := g.props[:0]
	for _, r := range g.props {
		if expired(r) {
			r.finish(Result{Err: base.Errorf(base.CodeTimeout, "replication: outcome of entry %d unknown: not applied here in time", r.index)})
		} else {
			kept = append(kept, r)
		}
	}
	clear(g.props[len(kept):])
	g.props = kept
	for _, seq := range sortedKeys(g.reads) {
		if r := g.reads[seq]; expired(r) {
			r.finish(Result{Err: base.Errorf(base.CodeUnavailable, "replication: group %d: no read index from the leader in time", g.id)})
			delete(g.reads, seq)
		}
	}
	g.readWait = expireList(g.readWait, expired, base.Errorf(base.CodeUnavailable, "replication: group %d did not apply up to the read index in time", g.id))
	g.promotes = expireList(g.promotes, expired, base.Errorf(base.CodeTimeout, "replication: group %d: learner did not catch up in time", g.id))
	if g.transfer != nil && expired(g.transfer) {
		g.transfer.finish(Result{Err: base.Errorf(base.CodeUnavailable, "replication: group %d: leadership transfer did not complete", g.id)})
		g.transfer = nil
	}
	g.updateBusy()
}

func expireList(rs []*request, expired func(*request) bool, err error) []*request {
	kept := rs[:0]
	for _, r := range rs {
		if expired(r) {
			r.finish(Result{Err: err})
		} else {
			kept = append(kept, r)
		}
	}
	clear(rs[len(kept):])
	return kept
}

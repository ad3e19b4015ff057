package replication

import (
	"bytes"
	"fmt"

	"google.golang.org/protobuf/proto"

	raft "go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"

	"github.com/ferry-mq/ferry/internal/base"
)

// writeReady appends the Ready's entries to the group's log (after a
// snapshot install's log reset) and reports whether it wrote anything.
// Nothing is durable until the loop's SyncAll.
func (g *group) writeReady(rd raft.Ready) (bool, error) {
	wrote := false
	last := g.log.LastIndex()
	if !raft.IsEmptySnap(rd.Snapshot) {
		if err := g.installLog(); err != nil {
			return false, err
		}
		// The retained entries the install wrote count in the log's
		// LastIndex only once flushed (the segmented log's, at the
		// loop's SyncAll): the entries of this Ready follow them.
		last = g.installing.Index
		wrote = true
	}
	if len(rd.Entries) == 0 {
		return wrote, nil
	}
	first := rd.Entries[0].GetIndex()
	if first <= last {
		if err := g.log.TruncateSuffix(first); err != nil {
			return false, fmt.Errorf("group %d: truncating log from %d: %w", g.id, first, err)
		}
		last = g.log.LastIndex()
	}
	if first < g.log.FirstIndex() || first != last+1 {
		// The log was reset by a snapshot install whose entries end below
		// first, or raft skipped ahead: both are bugs.
		base.Bugf("group %d: appending entry %d to a log holding [%d, %d]", g.id, first, g.log.FirstIndex(), last)
	}
	own0, own1 := g.ownFirst, g.ownLast
	g.ownFirst, g.ownLast = 0, 0
	for _, e := range rd.Entries {
		b, built := storedBytes(e)
		write := g.log.Write
		if i := e.GetIndex(); built || (own0 != 0 && own0 <= i && i <= own1) {
			// Built here, or proposed here and validated by ProposeBatch:
			// only entries from a leader need the log's validation.
			write = g.log.WriteValidated
		}
		idx, err := write(e.GetTerm(), b)
		if err != nil {
			return false, fmt.Errorf("group %d: writing entry %d: %w", g.id, e.GetIndex(), err)
		}
		if idx != e.GetIndex() {
			base.Bugf("group %d: log stored entry %d at index %d", g.id, e.GetIndex(), idx)
		}
	}
	g.cache.add(rd.Entries)
	g.e.metrics.entriesWritten.Add(uint64(len(rd.Entries)))
	return true, nil
}

// hardStateUpdate records raft's hard state and returns an update when its
// term or vote changed, or when a membership change is about to apply: the
// commit index alone is not worth a sync, except that a node which forgot
// that a membership change committed would restart with the configuration
// before it, and could win an election with the votes of a quorum that no
// longer is one (DESIGN.md "Lazily persisted commit index").
func (g *group) hardStateUpdate(rd raft.Ready) (StateUpdate, bool) {
	if rd.HardState != nil {
		g.hs = HardState{Term: rd.GetTerm(), Vote: rd.GetVote(), Commit: rd.GetCommit()}
	}
	confCommitted := false
	for _, e := range rd.CommittedEntries {
		if e.GetType() == pb.EntryConfChangeV2 {
			confCommitted = true
			break
		}
	}
	if g.hs.Term == g.persisted.Term && g.hs.Vote == g.persisted.Vote &&
		(!confCommitted || g.persisted.Commit >= g.hs.Commit) {
		return StateUpdate{}, false
	}
	hs := g.hs
	return StateUpdate{Group: g.id, HardState: &hs}, true
}

func (g *group) persistedState(u StateUpdate) {
	if u.HardState != nil {
		g.persisted = *u.HardState
	}
}

// applyReady runs after the iteration is durable and its messages are
// queued: it installs a snapshot into the FSM, applies committed entries,
// resolves proposals and reads, and advances raft.
func (g *group) applyReady(r ready) {
	if g.stopped {
		return
	}
	rd := r.rd
	if rd.SoftState != nil {
		g.softStateChanged(rd.SoftState)
	}
	if !raft.IsEmptySnap(rd.Snapshot) {
		g.restoreInstalled() // persist waited for any job of the group
	}
	held := g.holdBack(&rd)
	g.readStates(rd.ReadStates)
	if len(rd.Entries) > 0 || len(rd.CommittedEntries) > 0 {
		g.idleTicks = 0
	}
	if !held {
		g.applyCommitted(rd.CommittedEntries)
	}
	g.cache.dropThrough(g.applied)
	g.rn.Advance(rd)
	g.completeReads()
	g.campaignDeferredNow()
	g.maybeCampaignAlone()
	if err := g.maybeSnapshot(); err != nil {
		g.e.fail(err)
		return
	}
	g.removeStaleRecvFiles()
	g.publish()
	g.updateBusy()
}

func (g *group) softStateChanged(ss *raft.SoftState) {
	leadChanged := ss.Lead != g.lead
	g.lead, g.state = ss.Lead, ss.RaftState
	if leadChanged {
		g.failReads()
	}
	g.checkTransfer()
	if g.state != raft.StateLeader && len(g.promotes) > 0 {
		g.checkPromotes()
	}
}

// applyCommitted hands committed entries to the FSM in runs, applying
// membership changes to raft between runs, and resolves proposals in
// index order.
func (g *group) applyCommitted(ents []*pb.Entry) {
	run := g.l.fsmBuf[:0]
	pi := 0 // fsmEntryOf's cursor in g.props; completeProposals resets it
	flush := func() {
		if len(run) == 0 {
			return
		}
		results := g.l.results[:0]
		for range run {
			results = append(results, nil)
		}
		g.fsm.Apply(run, results)
		for i, e := range run {
			g.completeProposals(e.Index, e.Term, results[i], false)
		}
		pi = 0
		clear(results)
		g.l.results = results[:0]
		clear(run)
		run = run[:0]
	}
	for _, e := range ents {
		idx, term := e.GetIndex(), e.GetTerm()
		switch {
		case e.GetType() == pb.EntryConfChangeV2:
			flush()
			cs := g.applyConfChange(e)
			g.completeProposals(idx, term, cs, true)
			pi = 0
		case e.GetType() != pb.EntryNormal:
			base.Bugf("group %d: committed entry %d has type %v", g.id, idx, e.GetType())
		case len(e.GetData()) == 0:
			flush()
			g.completeProposals(idx, term, nil, false)
			pi = 0
		default:
			run = append(run, g.fsmEntryOf(e, &pi))
			g.bytesSinceSnap += uint64(len(e.GetData()))
		}
		g.applied, g.appliedTerm = idx, term
		g.appliedSinceSnap++
	}
	flush()
	g.l.fsmBuf = run[:0]
	g.e.metrics.entriesApplied.Add(uint64(len(ents)))
}

// fsmEntryOf is fsmEntry without parsing the batch when e is a command
// this node proposed, found in g.props at e's index and term (by Raft's log
// matching, the same entry): its command is the tail of the batch but one
// byte, as encodeControl laid it out, and the request knows its length.
// Other entries are parsed. *pi is a cursor into g.props for the entries of
// one run (indexes increase); the caller resets it when g.props changes.
func (g *group) fsmEntryOf(e *pb.Entry, pi *int) Entry {
	idx, term := e.GetIndex(), e.GetTerm()
	for *pi < len(g.props) && g.props[*pi].index < idx {
		*pi++
	}
	if *pi == len(g.props) {
		return fsmEntry(e)
	}
	r := g.props[*pi]
	if r.index != idx || r.term != term || !r.cmd {
		return fsmEntry(e)
	}
	d := e.GetData()
	end := len(d) - 1
	ent := Entry{Index: idx, Term: term, Kind: KindCommand, Data: d[end-r.cmdLen : end : end]}
	if base.InvariantsEnabled {
		if want := fsmEntry(e); want.Kind != KindCommand || !bytes.Equal(want.Data, ent.Data) {
			base.Bugf("group %d: entry %d: own command of %d bytes at the batch's tail is %q, the batch holds %v %q", g.id, idx, r.cmdLen, ent.Data, want.Kind, want.Data)
		}
	}
	return ent
}

func (g *group) applyConfChange(e *pb.Entry) *pb.ConfState {
	var cc pb.ConfChangeV2
	if err := proto.Unmarshal(e.GetData(), &cc); err != nil {
		base.Bugf("group %d: committed membership change %d does not decode: %v", g.id, e.GetIndex(), err)
	}
	cs := g.rn.ApplyConfChange(&cc)
	g.setConfState(cloneConfState(cs), e.GetIndex())
	return cloneConfState(cs)
}

// campaignEagerly campaigns again, for a group asked to (Engine.Campaign),
// while it has no leader and this node is not already a candidate; once a
// leader is known it stops for good.
func (g *group) campaignEagerly() {
	if !g.eager {
		return
	}
	st := g.rn.BasicStatus()
	if st.Lead != 0 || st.RaftState == raft.StateLeader {
		g.eager = false
		return
	}
	if st.RaftState == raft.StateCandidate {
		return // a vote in progress: its own timeout retries it
	}
	g.campaign()
}

// campaign starts an election now and has the loop run the Ready it makes.
// Raft does not campaign while committed membership changes wait to be
// applied, as a new group's bootstrap does in the iteration that opens it
// (when the broker asks a new group's preferred replica to campaign; it
// would log that this node cannot campaign, its bootstrap voters not
// known yet): while committed entries wait to be applied, the campaign is
// made once they are (campaignDeferredNow), not a tick later.
func (g *group) campaign() {
	st := g.rn.BasicStatus()
	if g.campaignDeferred = st.HardState.GetCommit() > st.Applied; g.campaignDeferred {
		g.l.markDirty(g)
		return
	}
	if err := g.rn.Campaign(); err == nil {
		g.l.markDirty(g)
		g.l.more = true
	}
}

// campaignDeferredNow makes a deferred campaign (see campaign) if the
// group is still without a leader and not campaigning.
func (g *group) campaignDeferredNow() {
	if !g.campaignDeferred {
		return
	}
	g.campaignDeferred = false
	if st := g.rn.BasicStatus(); st.Lead == 0 && st.RaftState == raft.StateFollower {
		g.campaign()
	}
}

// maybeCampaignAlone starts an election at once in a group whose only voter
// is this node: there is nobody to wait for.
func (g *group) maybeCampaignAlone() {
	if g.lead != 0 || len(g.confState.GetVoters()) != 1 || g.confState.GetVoters()[0] != g.e.cfg.NodeID ||
		len(g.confState.GetVotersOutgoing()) != 0 {
		return
	}
	if st := g.rn.BasicStatus(); st.RaftState != raft.StateFollower || st.Lead != 0 {
		return // already campaigning or led
	}
	g.campaign()
}

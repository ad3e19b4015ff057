package replication

import (
	"bytes"
	"slices"
	"time"

	"github.com/ferry-mq/ferry/internal/base"
	raft "go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"go.etcd.io/raft/v3/tracker"
)

type trackerProgress = tracker.Progress

var campaignTransfer = []byte("CampaignTransfer") // raft's context on a vote forced by a transfer

// refuseVote drops vote requests during the embargo after the engine
// started: a restarted node has forgotten which leaders it promised not to
// vote against (their leases), so it votes for nobody for one election
// timeout (DESIGN.md "Leases").
func (l *loop) refuseVote(m *pb.Message, now time.Time) bool {
	t := m.GetType()
	return (t == pb.MsgVote || t == pb.MsgPreVote) && now.Before(l.e.embargo) &&
		!bytes.Equal(m.GetContext(), campaignTransfer)
}

func isVoteRequest(m *pb.Message) bool {
	t := m.GetType()
	return t == pb.MsgVote || t == pb.MsgPreVote
}

// heldMsg is a message held by holdEarly since tick tick.
type heldMsg struct {
	in   inMsg
	tick int64
}

// holdEarly keeps a small message for a group not open here, for one to
// two ticks. A new group's replicas open it when they apply the entry that
// placed it, and its preferred replica campaigns as soon as it has
// (Engine.Campaign): its vote requests, and then as leader its first
// append, usually reach the others first. Held, they are stepped when the
// group opens (stepEarly), so the election ends and every replica knows
// its leader then, rather than at the candidate's next tick or the
// leader's next heartbeat; kept past the next tick, one that arrived just
// before it is not lost either. Beyond RaftEarlyMessagesHeldMax, and with
// entries of more than RaftEarlyMessageBytesMax, they are dropped as they
// were before holding (raft sends again).
func (l *loop) holdEarly(in inMsg) {
	m := in.env.Msg
	size := 0
	for _, e := range m.GetEntries() {
		size += len(e.GetData())
	}
	if m.GetType() != pb.MsgSnap && size <= base.RaftEarlyMessageBytesMax && len(l.early) < base.RaftEarlyMessagesHeldMax {
		l.early = append(l.early, heldMsg{in, l.ticks})
	}
}

// stepEarly steps the messages held for g, which has just opened.
func (l *loop) stepEarly(g GroupID, now time.Time) {
	var mine []inMsg
	l.early = slices.DeleteFunc(l.early, func(h heldMsg) bool {
		if h.in.env.Group == g {
			mine = append(mine, h.in)
			return true
		}
		return false
	})
	if len(mine) > 0 {
		l.stepMessages(mine, nil, now)
	}
}

// stepMessages steps the peer messages of the iteration into their groups.
// Any message but a quiesce heartbeat (or its response) wakes a sleeping
// group.
func (l *loop) stepMessages(msgs []inMsg, hbs []inHeartbeat, now time.Time) {
	for _, in := range msgs {
		g := l.groups[in.env.Group]
		m := in.env.Msg
		if g == nil && m != nil {
			l.holdEarly(in)
			continue
		}
		if g == nil || g.stopped || m == nil || l.refuseVote(m, now) || (g.removed && isVoteRequest(m)) {
			continue
		}
		g.wake()
		switch m.GetType() {
		case pb.MsgHeartbeat:
			g.stepHeartbeat(in.from, m, in.env.Stamp, false)
		case pb.MsgHeartbeatResp:
			g.stepHeartbeatResp(in.from, m, in.env.Stamp)
		default:
			if m.GetType() != pb.MsgAppResp || len(m.GetEntries()) > 0 {
				g.idleTicks = 0
			}
			_ = g.rn.Step(m) // errors are stale or unknown peers: nothing to do
		}
		l.markDirty(g)
	}
	for _, in := range hbs {
		g := l.groups[in.hb.Group]
		if g == nil || g.stopped {
			continue
		}
		hb := in.hb
		// A heartbeat response never wakes a sleeping leader: it may answer
		// a heartbeat sent just before the leader went to sleep (on a busy
		// node that is the common case), and carries nothing to act on; if
		// raft does react (an append to a follower it is probing), the
		// follower's answer wakes the group. A heartbeat wakes a follower
		// unless it asks it to sleep.
		if !hb.Quiesce && !hb.Resp {
			g.wake()
		}
		m := &pb.Message{From: new(in.from), To: new(l.e.cfg.NodeID), Term: new(hb.Term)}
		if hb.Resp {
			m.Type = pb.MsgHeartbeatResp.Enum()
			g.stepHeartbeatResp(in.from, m, hb.Stamp)
		} else {
			m.Type = pb.MsgHeartbeat.Enum()
			m.Commit = new(hb.Commit)
			g.stepHeartbeat(in.from, m, hb.Stamp, hb.Quiesce)
		}
		l.markDirty(g)
	}
}

// stepHeartbeat steps a leader's heartbeat. An accepted one (its sender is
// our leader in its term) renews our promise not to vote against the
// leader, so we echo its stamp; one asking us to quiesce puts the group to
// sleep if we have everything the leader committed.
func (g *group) stepHeartbeat(from NodeID, m *pb.Message, stamp uint64, quiesce bool) {
	if g.lostAcknowledged(from, m) {
		return
	}
	_ = g.rn.Step(m)
	st := g.rn.BasicStatus()
	accepted := st.GetTerm() == m.GetTerm() && st.Lead == from
	if !accepted {
		g.wake()
		return
	}
	if g.echoLead != from || g.echoTerm != st.GetTerm() {
		g.echoLead, g.echoTerm, g.echoStamp = from, st.GetTerm(), 0
	}
	g.echoStamp = max(g.echoStamp, stamp)
	if quiesce && !g.quiesced && st.RaftState == raft.StateFollower && st.GetCommit() == m.GetCommit() {
		g.setQuiesced(true)
	}
}

// lostAcknowledged fail-stops the engine when a leader's heartbeat, in
// this replica's term or a later one, says entries are committed here
// beyond this replica's log. A leader sends a follower no commit index
// past the entries that follower acknowledged, and a follower acknowledges
// only what it has stored: so this node lost stored, acknowledged state (a
// wiped or replaced data directory, an older backup restored) and still
// holds its old id. It must not go on: what it forgot may be all that
// keeps a committed entry on a quorum, and raft would panic on it anyway.
func (g *group) lostAcknowledged(from NodeID, m *pb.Message) bool {
	last, _ := g.st.LastIndex()
	if m.GetCommit() <= last || m.GetTerm() < g.rn.BasicStatus().GetTerm() {
		return false
	}
	g.e.fail(base.Errorf(base.CodeStorageFailed,
		"group %d: its leader, node %d, has entries up to %d committed on this node, whose log for it ends at %d: "+
			"this node lost data it had acknowledged (a wiped or replaced data directory, or an older copy restored), "+
			"and cannot rejoin under node id %d; restore its data directory (docs/cli.md, ferry serve)",
		g.id, from, m.GetCommit(), last, g.e.cfg.NodeID))
	return true
}

// stepHeartbeatResp steps a follower's response; on the leader, its stamp
// is a lease acknowledgement for the current term.
func (g *group) stepHeartbeatResp(from NodeID, m *pb.Message, stamp uint64) {
	_ = g.rn.Step(m)
	if stamp == 0 {
		return
	}
	st := g.rn.BasicStatus()
	if st.RaftState != raft.StateLeader || st.GetTerm() != m.GetTerm() {
		return
	}
	if g.leaseTerm != st.GetTerm() {
		clear(g.leaseAcks)
		g.leaseTerm = st.GetTerm()
	}
	g.leaseAcks[from] = max(g.leaseAcks[from], stamp)
}

// echoFor returns the stamp a heartbeat response to leader `to` in `term`
// carries: the newest stamp of that leader's accepted heartbeats.
func (g *group) echoFor(to NodeID, term uint64) uint64 {
	if to == g.echoLead && term == g.echoTerm {
		return g.echoStamp
	}
	return 0
}

// sendMessage queues one of raft's outgoing messages: snapshots go to the
// streaming path, heartbeats without context are coalesced.
func (g *group) sendMessage(m *pb.Message, stamp uint64) {
	to := m.GetTo()
	out := &g.l.out
	switch t := m.GetType(); {
	case t == pb.MsgSnap:
		g.sendSnapshot(m)
	case (t == pb.MsgHeartbeat || t == pb.MsgHeartbeatResp) && len(m.GetContext()) == 0:
		hb := Heartbeat{Group: g.id, Term: m.GetTerm(), Commit: m.GetCommit(), Resp: t == pb.MsgHeartbeatResp}
		if hb.Resp {
			hb.Stamp, hb.Quiesce = g.echoFor(to, hb.Term), g.quiesced
		} else {
			hb.Stamp = stamp
		}
		out.batch(to).Heartbeats = append(out.batch(to).Heartbeats, hb)
	default:
		env := Envelope{Group: g.id, Msg: m}
		switch t {
		case pb.MsgHeartbeat:
			env.Stamp = stamp
		case pb.MsgHeartbeatResp:
			env.Stamp = g.echoFor(to, m.GetTerm())
		}
		b := out.batch(to)
		b.Messages = append(b.Messages, env)
	}
}

// outbox collects an iteration's batches, one per peer.
type outbox struct {
	batches map[NodeID]*Batch
}

func (o *outbox) batch(to NodeID) *Batch {
	if o.batches == nil {
		o.batches = map[NodeID]*Batch{}
	}
	b := o.batches[to]
	if b == nil {
		b = &Batch{}
		o.batches[to] = b
	}
	return b
}

// flush hands the batches to the transport in peer id order.
func (o *outbox) flush(e *Engine) {
	if len(o.batches) == 0 {
		return
	}
	peers := make([]NodeID, 0, len(o.batches))
	for p := range o.batches {
		peers = append(peers, p)
	}
	slices.Sort(peers)
	for _, p := range peers {
		b := o.batches[p]
		e.metrics.messagesSent.Add(uint64(len(b.Messages) + len(b.Heartbeats)))
		if e.cfg.Transport != nil {
			e.cfg.Transport.Send(p, b)
		}
	}
	clear(o.batches)
}

// maybeQuiesce puts an idle, fully replicated leader's group to sleep and
// tells its followers to sleep too (DESIGN.md "Quiescence").
func (g *group) maybeQuiesce(stamp uint64) bool {
	qt := g.e.cfg.QuiesceTicks
	if qt < 0 || g.quiesced || g.state != raft.StateLeader || g.idleTicks < qt ||
		len(g.queued)+len(g.proposed)+len(g.props)+len(g.reads)+len(g.readWait)+len(g.promotes) > 0 ||
		g.transfer != nil || g.job != nil || g.snapPending != nil || g.rn.HasReady() {
		return false
	}
	st := g.rn.BasicStatus()
	if st.RaftState != raft.StateLeader || st.LeadTransferee != 0 || st.Applied != st.GetCommit() || g.applied != st.GetCommit() {
		return false
	}
	caughtUp := true
	g.rn.WithProgress(func(_ uint64, _ raft.ProgressType, pr tracker.Progress) {
		if pr.Match != st.GetCommit() {
			caughtUp = false
		}
	})
	if !caughtUp {
		return false
	}
	for _, p := range g.peers() {
		b := g.l.out.batch(p)
		b.Heartbeats = append(b.Heartbeats, Heartbeat{Group: g.id, Term: st.GetTerm(), Commit: st.GetCommit(), Stamp: stamp, Quiesce: true})
	}
	g.setQuiesced(true)
	return true
}

func (g *group) setQuiesced(q bool) {
	if g.quiesced == q {
		return
	}
	g.quiesced = q
	g.wokeFor, g.wokeTerm = 0, g.hs.Term
	g.idleTicks = 0
	g.l.setActive(g, !q)
	if q {
		g.e.metrics.quiesces.Add(1)
	} else {
		g.e.metrics.wakes.Add(1)
	}
	g.publish()
}

// wake makes a sleeping group tick again.
func (g *group) wake() { g.setQuiesced(false) }

// wakeLedBy wakes the sleeping groups led by a peer that stopped answering,
// so that they elect a new leader.
func (l *loop) wakeLedBy(node NodeID) {
	for _, g := range l.sortedGroups() {
		if g.quiesced && g.lead == node {
			g.wake()
			g.wokeFor, g.wokeTerm = node, g.hs.Term
			l.markDirty(g)
		}
	}
}

// resleepLedBy puts back to sleep the groups that woke only because their
// leader's node was reported down, once it is heard again: if nothing else
// happened to them since (they still follow it, in the same term, with
// nothing pending), their leader is still asleep and so may they be. This
// keeps a flapping link from waking thousands of groups into elections.
func (l *loop) resleepLedBy(node NodeID) {
	for _, g := range l.sortedGroups() {
		if g.wokeFor != node || g.quiesced || g.stopped {
			continue
		}
		g.wokeFor = 0
		st := g.rn.BasicStatus()
		if st.RaftState == raft.StateFollower && st.Lead == node && st.GetTerm() == g.wokeTerm &&
			!g.rn.HasReady() && len(g.reads)+len(g.readWait) == 0 {
			g.setQuiesced(true)
		}
	}
}

package sim

import (
	"fmt"
	"time"

	"github.com/ferry-mq/ferry/internal/replication"
)

// proposal is one client proposal and what became of it.
type proposal struct {
	id      int
	group   replication.GroupID
	payload []byte
	acked   bool
	index   uint64
}

// leaderOf returns a live node that believes it leads g, or nil.
func (s *Sim) leaderOf(g replication.GroupID) *node {
	for _, n := range s.liveNodes() {
		if !s.hosts[g][n.id] {
			continue
		}
		if st, err := n.e.Status(g); err == nil && st.IsLeader {
			return n
		}
	}
	return nil
}

// target picks the node a client sends to: mostly the leader, sometimes
// any live host (which must answer not-leader).
func (s *Sim) target(g replication.GroupID) *node {
	if l := s.leaderOf(g); l != nil && s.rng.IntN(10) < 8 {
		return l
	}
	var hosts []*node
	for _, n := range s.liveNodes() {
		if s.hosts[g][n.id] {
			hosts = append(hosts, n)
		}
	}
	if len(hosts) == 0 {
		return nil
	}
	return hosts[s.rng.IntN(len(hosts))]
}

func (s *Sim) propose() {
	g := s.groupIDs[s.rng.IntN(len(s.groupIDs))]
	n := s.target(g)
	if n == nil {
		return
	}
	p := &proposal{id: len(s.props), group: g}
	if g%2 == 0 {
		p.payload = fmt.Appendf(nil, "k%d/p%d", s.rng.IntN(5), p.id) // KV: five keys, unique payloads
	} else {
		p.payload = fmt.Appendf(nil, "p%d", p.id)
	}
	s.props = append(s.props, p)
	s.stats.Proposed++
	s.trace("propose", uint64(n.id), uint64(g), uint64(p.id))
	fsm := n.groups[g].fsm
	n.e.ProposeAsync(g, p.payload, func(r replication.Result) {
		if r.Err != nil {
			s.trace("nack", uint64(p.id))
			return
		}
		p.acked, p.index = true, r.Index
		s.stats.Acked++
		s.trace("ack", uint64(p.id), uint64(p.group), r.Index)
		s.checkAck(n, fsm, p, r)
	})
}

// checkAck checks an acknowledgement against the acknowledging replica:
// the entry it names must be the proposal, applied.
func (s *Sim) checkAck(n *node, fsm historyFSM, p *proposal, r replication.Result) {
	if !fsm.Contains(p.payload) {
		s.fail("node %d acknowledged proposal %d of group %d at index %d before applying it", n.id, p.id, p.group, r.Index)
		return
	}
	if lf, ok := fsm.(*ListFSM); ok {
		pos, _ := r.Value.(int)
		h := lf.History()
		if pos < 1 || pos > len(h) || h[pos-1].Index != r.Index || h[pos-1].Digest != digest([]byte{byte(replication.KindCommand)}, p.payload) {
			s.fail("node %d acknowledged proposal %d at index %d with position %v, which its history does not hold", n.id, p.id, r.Index, r.Value)
		}
	}
}

// read issues a ReadIndex or LeaseRead; when it returns, the node must have
// applied every proposal acknowledged before the read began
// (linearizability of reads).
func (s *Sim) read() {
	g := s.groupIDs[s.rng.IntN(len(s.groupIDs))]
	n := s.target(g)
	if n == nil {
		return
	}
	var before []*proposal
	for _, p := range s.props {
		if p.group == g && p.acked {
			before = append(before, p)
		}
	}
	lease := s.rng.IntN(2) == 0
	fsm := n.groups[g].fsm
	s.stats.Reads++
	s.trace("read", uint64(n.id), uint64(g))
	n.e.ReadAsync(g, lease, func(r replication.Result) {
		if r.Err != nil {
			return
		}
		s.stats.ReadsOK++
		for _, p := range before {
			if !fsm.Contains(p.payload) {
				s.fail("node %d served a read (lease %v, index %d) of group %d missing proposal %d acknowledged before it (index %d)",
					n.id, r.Lease, r.Index, g, p.id, p.index)
				return
			}
		}
	})
}

func (s *Sim) transfer() {
	g := s.groupIDs[s.rng.IntN(len(s.groupIDs))]
	l := s.leaderOf(g)
	if l == nil {
		return
	}
	st, _ := l.e.Status(g)
	if len(st.Voters) < 2 {
		return
	}
	to := st.Voters[s.rng.IntN(len(st.Voters))]
	s.stats.Transfers++
	s.trace("transfer", uint64(l.id), uint64(g), uint64(to))
	l.e.TransferLeadershipAsync(g, to, func(replication.Result) {})
}

// membershipScript moves one group through learner, promotion and removal:
// the spare node joins group 1 as a learner, is promoted once caught up,
// and one of the original voters is removed.
type membershipScript struct {
	spare   replication.NodeID
	step    int
	pending bool
	issued  time.Time // a call whose node crashed never answers: retry after a while
	victim  replication.NodeID
}

func (s *Sim) membershipStep() {
	m := s.member
	if m != nil && m.pending && s.clock.Now().Sub(m.issued) > time.Second {
		m.pending = false
	}
	if m == nil || m.pending || m.step > 2 {
		return
	}
	const g = replication.GroupID(1)
	l := s.leaderOf(g)
	spare := s.nodes[m.spare]
	if l == nil || spare.e == nil {
		return
	}
	var change replication.MembershipChange
	promote := false
	switch m.step {
	case 0:
		if !s.hosts[g][m.spare] {
			s.hosts[g][m.spare] = true
			s.openReplica(spare, g)
		}
		change = replication.MembershipChange{Kind: replication.AddLearner, Node: m.spare}
	case 1:
		change, promote = replication.MembershipChange{Kind: replication.AddVoter, Node: m.spare}, true
	case 2:
		if m.victim == 0 {
			m.victim = replication.NodeID(1 + s.rng.IntN(len(s.bootstrap[g])))
		}
		change = replication.MembershipChange{Kind: replication.RemoveNode, Node: m.victim}
	}
	m.pending, m.issued = true, s.clock.Now()
	step := m.step
	s.trace("membership", uint64(m.step), uint64(change.Node))
	l.e.ChangeMembershipAsync(g, promote, func(r replication.Result) {
		m.pending = false
		if r.Err == nil && m.step == step {
			m.step++
			s.stats.MembershipChanges++
			s.trace("membership-done", uint64(m.step))
		}
	}, change)
}

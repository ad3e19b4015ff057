package sim

import (
	"fmt"

	"github.com/ferry-mq/ferry/internal/replication"
)

// committedTerm returns the term of committed entry index of group g, as
// far as the checkers know it.
func (s *Sim) committedTerm(g replication.GroupID, index uint64) (uint64, bool) {
	t, ok := s.committed[g][index]
	return t, ok
}

func (s *Sim) recordCommitted(g replication.GroupID, index, term uint64, who string) {
	if t, ok := s.committed[g][index]; ok {
		if t != term {
			s.fail("group %d: committed entry %d has term %d, %s says term %d", g, index, t, who, term)
		}
		return
	}
	s.committed[g][index] = term
	if s.opts.Trace != nil {
		s.trace("committed "+who, uint64(g), index, term)
	}
}

// check runs the safety checks after every round:
//   - at most one leader per term;
//   - a committed entry never changes: every node's committed prefix agrees
//     on terms, and no log write changes or drops one (checkedLog);
//   - applied histories are prefixes of one another (each is compared
//     with a reference, the longest seen).
func (s *Sim) check() {
	for _, n := range s.liveNodes() {
		for _, g := range s.groupIDs {
			r := n.groups[g]
			if r == nil || !s.hosts[g][n.id] {
				continue
			}
			st, err := n.e.Status(g)
			if err != nil {
				continue
			}
			s.checkLeader(n, g, st)
			s.scanCommitted(n, g, r, st.Commit)
			s.checkHistory(n, g, r)
		}
	}
}

func (s *Sim) checkLeader(n *node, g replication.GroupID, st replication.GroupStatus) {
	if !st.IsLeader {
		return
	}
	prev, ok := s.leaders[g][st.Term]
	switch {
	case !ok:
		s.leaders[g][st.Term] = n.id
		s.stats.Leaders++
		s.trace("leader", uint64(g), st.Term, uint64(n.id))
	case prev != n.id:
		s.fail("group %d has two leaders in term %d: nodes %d and %d", g, st.Term, prev, n.id)
	}
}

// scanCommitted records the terms of the entries a node knows committed.
func (s *Sim) scanCommitted(n *node, g replication.GroupID, r *replica, commit uint64) {
	from := s.scanned[g][n.id] + 1
	if commit < from || r.log == nil {
		return
	}
	first := r.log.FirstIndex()
	for i := max(from, first); i <= commit && i <= r.log.LastIndex(); i++ {
		t, err := r.log.Term(i)
		if err != nil {
			break
		}
		s.recordCommitted(g, i, t, fmt.Sprintf("node %d", n.id))
	}
	s.scanned[g][n.id] = commit
}

// checkHistory compares what the node applied since the last check with
// the reference history of the group.
func (s *Sim) checkHistory(n *node, g replication.GroupID, r *replica) {
	h := r.fsm.History()
	ref := s.ref[g]
	for i := r.checked; i < len(h); i++ {
		if i > 0 && h[i].Index <= h[i-1].Index {
			s.fail("node %d group %d applied index %d after %d", n.id, g, h[i].Index, h[i-1].Index)
			return
		}
		if i < len(ref) {
			if h[i] != ref[i] {
				s.fail("node %d group %d applied %+v as its entry #%d, another node applied %+v: applied histories diverge", n.id, g, h[i], i, ref[i])
				return
			}
			continue
		}
		ref = append(ref, h[i])
		s.recordCommitted(g, h[i].Index, h[i].Term, fmt.Sprintf("node %d's applied history", n.id))
	}
	s.ref[g] = ref
	r.checked = len(h)
}

// members returns the voters and learners of g according to its leader.
func (s *Sim) members(g replication.GroupID) ([]replication.NodeID, bool) {
	l := s.leaderOf(g)
	if l == nil {
		return nil, false
	}
	st, err := l.e.Status(g)
	if err != nil {
		return nil, false
	}
	return append(append([]replication.NodeID(nil), st.Voters...), st.Learners...), true
}

// converged returns "" once every member of every group is up, has applied
// the whole reference history and every acknowledged proposal; otherwise
// what is missing.
func (s *Sim) converged() string {
	for _, g := range s.groupIDs {
		members, ok := s.members(g)
		if !ok {
			return fmt.Sprintf("group %d has no leader", g)
		}
		for _, id := range members {
			n := s.nodes[id]
			r := n.groups[g]
			if n.e == nil || r == nil {
				return fmt.Sprintf("member %d of group %d is down", id, g)
			}
			if h := r.fsm.History(); len(h) != len(s.ref[g]) {
				return fmt.Sprintf("node %d applied %d entries of group %d, the reference has %d", id, len(h), g, len(s.ref[g]))
			}
			for _, p := range s.props {
				if p.group == g && p.acked && !r.fsm.Contains(p.payload) {
					return fmt.Sprintf("node %d has not applied acknowledged proposal %d (index %d) of group %d", id, p.id, p.index, g)
				}
			}
		}
	}
	return ""
}

// checkFinal checks, once converged, that every acknowledged proposal sits
// in the reference history at the index its acknowledgement named.
func (s *Sim) checkFinal() {
	for _, p := range s.props {
		if !p.acked {
			continue
		}
		found := false
		for _, r := range s.ref[p.group] {
			if r.Index == p.index {
				found = true
				break
			}
		}
		if !found {
			s.fail("proposal %d of group %d was acknowledged at index %d, which no replica applied", p.id, p.group, p.index)
		}
	}
}

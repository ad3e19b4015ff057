package stream

import (
	"cmp"
	"slices"

	"github.com/ferry-mq/ferry/internal/base"
)

// AssignJoin adds a member to an assigned group (creating the group), or
// refreshes it. Partitions is the stream's partition count, stamped by the
// owner: when it changes, the group is reassigned.
type AssignJoin struct {
	Now        int64
	Group      string
	MemberID   string
	SessionMs  int32
	Partitions int32
}

// AssignHeartbeat keeps a member of an assigned group alive.
type AssignHeartbeat struct {
	Now      int64
	Group    string
	MemberID string
}

// AssignLeave removes a member of an assigned group.
type AssignLeave struct {
	Now      int64
	Group    string
	MemberID string
}

func (c *Coordinator) assignJoin(x AssignJoin, out *effects) GroupError {
	if x.Group == "" {
		return ErrInvalidGroupID
	}
	if x.MemberID == "" || !validIDs(x.Group, x.MemberID) || x.Partitions < 0 || x.Partitions > base.GroupPartitionsMax {
		return ErrInvalidRequest
	}
	if int64(x.SessionMs) < base.GroupSessionTimeoutMin.Milliseconds() ||
		int64(x.SessionMs) > base.GroupSessionTimeoutMax.Milliseconds() {
		return ErrInvalidSessionTimeout
	}
	g := c.groups[x.Group]
	if g == nil {
		if len(c.groups) >= base.GroupsMax {
			return ErrCoordinatorNotAvailable
		}
		g = &group{id: x.Group, kind: kindAssigned, protocolType: AssignedProtocolType, stateMs: x.Now}
		c.groups[x.Group] = g
	}
	if g.kind != kindAssigned {
		return ErrInconsistentGroupProtocol
	}
	changed := g.partitions != x.Partitions
	g.partitions = x.Partitions
	m := g.memberByID(x.MemberID)
	if m == nil {
		if len(g.members) >= base.GroupMembersMax {
			return ErrGroupMaxSizeReached
		}
		m = &member{id: x.MemberID}
		g.members = append(g.members, m)
		changed = true
	}
	m.sessionMs, m.heartbeatMs = x.SessionMs, x.Now
	if changed {
		c.reassign(g, x.Now, nil, out)
	}
	return ErrNone
}

func (c *Coordinator) assignHeartbeat(x AssignHeartbeat) GroupError {
	g := c.groups[x.Group]
	if g == nil || g.kind != kindAssigned {
		return ErrUnknownMemberID
	}
	m := g.memberByID(x.MemberID)
	if m == nil {
		return ErrUnknownMemberID
	}
	m.heartbeatMs = x.Now
	return ErrNone
}

func (c *Coordinator) assignLeave(x AssignLeave, out *effects) GroupError {
	g := c.groups[x.Group]
	if g == nil || g.kind != kindAssigned {
		return ErrUnknownMemberID
	}
	m := g.memberByID(x.MemberID)
	if m == nil {
		return ErrUnknownMemberID
	}
	g.removeMember(m)
	c.reassign(g, x.Now, []*member{m}, out)
	return ErrNone
}

func (c *Coordinator) tickAssigned(g *group, now int64, out *effects) {
	var gone []*member
	for _, m := range append([]*member(nil), g.members...) {
		if m.sessionEnded(now) {
			g.removeMember(m)
			gone = append(gone, m)
		}
	}
	if len(gone) > 0 {
		c.reassign(g, now, gone, out)
	}
}

// reassign computes the sticky assignment of the group's members and
// reports every change: members that left lose everything, then members in
// join order whose partitions changed. The generation goes up when
// anything changed.
func (c *Coordinator) reassign(g *group, now int64, gone []*member, out *effects) {
	ids := make([]string, len(g.members))
	current := make([][]int32, len(g.members))
	for i, m := range g.members {
		ids[i], current[i] = m.id, m.owned
	}
	next := AssignSticky(current, g.partitions)
	changed := false
	for _, m := range gone {
		changed = changed || len(m.owned) > 0
	}
	for i, m := range g.members {
		changed = changed || !slices.Equal(m.owned, next[i])
	}
	if changed {
		g.generation++
	}
	for _, m := range gone {
		if len(m.owned) > 0 {
			out.add(AssignmentChanged{Group: g.id, MemberID: m.id, Generation: g.generation, Revoked: m.owned})
		}
	}
	for i, m := range g.members {
		if slices.Equal(m.owned, next[i]) {
			continue
		}
		added, revoked := diffSorted(m.owned, next[i])
		m.owned = next[i]
		out.add(AssignmentChanged{Group: g.id, MemberID: m.id, Generation: g.generation,
			Partitions: slices.Clone(m.owned), Added: added, Revoked: revoked})
	}
	if len(g.members) == 0 {
		g.setState(GroupEmpty, now, out)
	} else {
		g.setState(GroupStable, now, out)
	}
}

// diffSorted returns what b has that a lacks, and what a has that b lacks;
// both inputs are sorted.
func diffSorted(a, b []int32) (added, removed []int32) {
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j == len(b) || (i < len(a) && a[i] < b[j]):
			removed = append(removed, a[i])
			i++
		case i == len(a) || b[j] < a[i]:
			added = append(added, b[j])
			j++
		default:
			i++
			j++
		}
	}
	return added, removed
}

// AssignSticky distributes partitions 0..n-1 over members (current[i] is
// member i's partitions now, sorted; members in a fixed order, which
// breaks ties). The result is balanced (counts differ by at most one),
// covers every partition exactly once when there is a member, and moves
// as few partitions as any balanced assignment can: the n%len members
// allowed one extra partition are those holding the most now (ties: the
// earlier member), each member keeps its lowest partitions up to its
// quota, and the rest go, lowest first, to members below quota in order.
// It is a pure function; result[i] is sorted and the caller's.
func AssignSticky(current [][]int32, n int32) [][]int32 {
	members := len(current)
	out := make([][]int32, members)
	if members == 0 {
		return out
	}
	taken := make([]bool, n)
	keep := make([][]int32, members)
	for i, cur := range current {
		for _, p := range cur {
			if p >= 0 && p < n && !taken[p] {
				taken[p] = true
				keep[i] = append(keep[i], p)
			}
		}
		slices.Sort(keep[i])
	}
	order := make([]int, members)
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(len(keep[b]), len(keep[a])) })
	quota := make([]int, members)
	for rank, i := range order {
		quota[i] = int(n) / members
		if rank < int(n)%members {
			quota[i]++
		}
	}
	for i := range keep {
		if len(keep[i]) > quota[i] {
			for _, p := range keep[i][quota[i]:] {
				taken[p] = false
			}
			keep[i] = keep[i][:quota[i]]
		}
	}
	next := int32(0)
	for i := range keep {
		out[i] = append(make([]int32, 0, quota[i]), keep[i]...)
		for len(out[i]) < quota[i] {
			for taken[next] {
				next++
			}
			taken[next] = true
			out[i] = append(out[i], next)
		}
		slices.Sort(out[i])
	}
	return out
}

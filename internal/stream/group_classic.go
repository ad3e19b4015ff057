package stream

import (
	"bytes"

	"github.com/ferry-mq/ferry/internal/base"
)

// JoinGroup is Kafka's JoinGroup request, stamped by the leader.
type JoinGroup struct {
	Now       int64
	RequestID uint64 // nonzero, unique among the owner's open requests; names the answer
	Group     string
	// MemberID is "" for a member joining for the first time.
	MemberID     string
	InstanceID   string // group.instance.id of a static member, or ""
	ClientID     string
	ClientHost   string
	ProtocolType string
	Protocols    []Protocol // in the member's order of preference
	SessionMs    int32
	RebalanceMs  int32
	// RequireKnownMemberID is set for JoinGroup v4+: a new dynamic member
	// gets MEMBER_ID_REQUIRED and must join again with its id (KIP-394).
	RequireKnownMemberID bool
	// NewMemberID is the id a new member gets. The caller draws it
	// (Kafka: client id, '-', a random UUID) because a state machine draws
	// no randomness; it must not be the id of a member of the group.
	NewMemberID string
}

// SyncGroup is Kafka's SyncGroup request.
type SyncGroup struct {
	Now          int64
	RequestID    uint64
	Group        string
	MemberID     string
	InstanceID   string
	Generation   int32
	ProtocolType string // "" when the client does not send it (v < 5)
	ProtocolName string
	Assignments  []MemberAssignment // from the leader only
}

// MemberAssignment is the leader's assignment for one member.
type MemberAssignment struct {
	MemberID   string
	Assignment []byte
}

// Heartbeat is Kafka's Heartbeat request.
type Heartbeat struct {
	Now        int64
	Group      string
	MemberID   string
	InstanceID string
	Generation int32
}

// LeaveGroup is Kafka's LeaveGroup request (v3+ carries several members;
// older versions one, with no instance id).
type LeaveGroup struct {
	Now     int64
	Group   string
	Members []LeavingMember
}

// LeavingMember names one member leaving; a static member by instance id.
type LeavingMember struct {
	MemberID   string
	InstanceID string
}

func (JoinGroup) groupCommand()       {}
func (SyncGroup) groupCommand()       {}
func (Heartbeat) groupCommand()       {}
func (LeaveGroup) groupCommand()      {}
func (DeleteGroup) groupCommand()     {}
func (GroupTick) groupCommand()       {}
func (AssignJoin) groupCommand()      {}
func (AssignHeartbeat) groupCommand() {}
func (AssignLeave) groupCommand()     {}

func validIDs(ids ...string) bool {
	for _, id := range ids {
		if len(id) > base.GroupIDBytesMax {
			return false
		}
	}
	return true
}

// validateJoin checks a JoinGroup's fields against the limits and Kafka's
// rules, before the group is looked at.
func validateJoin(x JoinGroup) GroupError {
	if x.Group == "" {
		return ErrInvalidGroupID
	}
	if !validIDs(x.Group, x.MemberID, x.InstanceID, x.ClientID, x.ClientHost, x.ProtocolType, x.NewMemberID) ||
		len(x.Protocols) > base.GroupProtocolsMax || x.RequestID == 0 {
		return ErrInvalidRequest
	}
	if x.ProtocolType == "" || len(x.Protocols) == 0 {
		return ErrInconsistentGroupProtocol
	}
	size := 0
	for _, p := range x.Protocols {
		if p.Name == "" || !validIDs(p.Name) {
			return ErrInvalidRequest
		}
		size += len(p.Metadata)
	}
	if size > base.GroupMemberMetadataBytesMax {
		return ErrInvalidRequest
	}
	if int64(x.SessionMs) < base.GroupSessionTimeoutMin.Milliseconds() ||
		int64(x.SessionMs) > base.GroupSessionTimeoutMax.Milliseconds() {
		return ErrInvalidSessionTimeout
	}
	if x.RebalanceMs <= 0 {
		return ErrInvalidRequest
	}
	return ErrNone
}

func (c *Coordinator) join(x JoinGroup, out *effects) {
	fail := func(e GroupError) {
		out.add(JoinResponse{RequestID: x.RequestID, Group: x.Group, Err: e, Generation: -1, MemberID: x.MemberID})
	}
	if e := validateJoin(x); e != ErrNone {
		fail(e)
		return
	}
	g := c.groups[x.Group]
	if g == nil {
		if x.MemberID != "" {
			fail(ErrUnknownMemberID)
			return
		}
		if len(c.groups) >= base.GroupsMax {
			fail(ErrCoordinatorNotAvailable)
			return
		}
		g = &group{id: x.Group, kind: kindClassic, stateMs: x.Now}
		c.groups[x.Group] = g
		defer func() {
			if len(g.members) == 0 && len(g.pending) == 0 {
				delete(c.groups, x.Group) // the join failed: leave no trace
			}
		}()
	}
	if g.kind != kindClassic || !g.supports(x.ProtocolType, x.Protocols) {
		fail(ErrInconsistentGroupProtocol)
		return
	}
	if x.MemberID == "" {
		c.joinNew(g, x, out, fail)
	} else {
		c.joinKnown(g, x, out, fail)
	}
}

// supports reports whether a member with these protocols may join: any may
// join an empty group; otherwise the protocol type must match and one
// protocol must be supported by every member.
func (g *group) supports(protocolType string, protocols []Protocol) bool {
	if len(g.members) == 0 {
		return true
	}
	if protocolType != g.protocolType {
		return false
	}
	for _, p := range protocols {
		if g.allSupport(p.Name) {
			return true
		}
	}
	return false
}

func (g *group) allSupport(name string) bool {
	for _, m := range g.members {
		if !m.offers(name) {
			return false
		}
	}
	return true
}

func (m *member) offers(name string) bool {
	for _, p := range m.protocols {
		if p.Name == name {
			return true
		}
	}
	return false
}

func (m *member) metadataFor(name string) []byte {
	for _, p := range m.protocols {
		if p.Name == name {
			return p.Metadata
		}
	}
	return nil
}

func sameProtocols(a, b []Protocol) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name || !bytes.Equal(a[i].Metadata, b[i].Metadata) {
			return false
		}
	}
	return true
}

func (c *Coordinator) joinNew(g *group, x JoinGroup, out *effects, fail func(GroupError)) {
	if x.NewMemberID == "" || g.memberByID(x.NewMemberID) != nil {
		fail(ErrInvalidRequest)
		return
	}
	if x.InstanceID != "" {
		if m := g.memberByInstance(x.InstanceID); m != nil {
			c.replaceStatic(g, m, x, out)
			return
		}
	} else if x.RequireKnownMemberID {
		if len(g.pending) >= base.GroupMembersMax {
			fail(ErrGroupMaxSizeReached)
			return
		}
		g.pending = append(g.pending, pendingMember{id: x.NewMemberID, deadlineMs: x.Now + int64(x.SessionMs)})
		out.add(JoinResponse{RequestID: x.RequestID, Group: g.id, Err: ErrMemberIDRequired, Generation: -1,
			MemberID: x.NewMemberID})
		return
	}
	c.addMember(g, x, x.NewMemberID, out, fail)
}

func (c *Coordinator) addMember(g *group, x JoinGroup, id string, out *effects, fail func(GroupError)) {
	if len(g.members) >= base.GroupMembersMax {
		fail(ErrGroupMaxSizeReached)
		return
	}
	m := &member{id: id}
	m.update(x)
	if len(g.members) == 0 {
		g.protocolType = x.ProtocolType
	}
	g.members = append(g.members, m)
	if g.leader == "" {
		g.leader = id
	}
	if g.state == GroupPreparingRebalance {
		if g.initialDelayMs != 0 {
			// A member joining during the initial delay extends it, up to
			// the rebalance deadline (Kafka's InitialDelayedJoin).
			g.initialDelayMs = min(x.Now+c.cfg.initialDelayMs(), g.deadlineMs)
		}
		c.tryCompleteJoin(g, x.Now, out)
		return
	}
	c.prepareRebalance(g, x.Now, out)
}

// update takes a JoinGroup's fields into m; m now awaits the answer.
func (m *member) update(x JoinGroup) {
	m.instanceID, m.clientID, m.clientHost = x.InstanceID, x.ClientID, x.ClientHost
	m.sessionMs, m.rebalanceMs = x.SessionMs, x.RebalanceMs
	m.protocols = cloneProtocols(x.Protocols)
	m.heartbeatMs = x.Now
	m.joinRequest = x.RequestID
}

func cloneProtocols(ps []Protocol) []Protocol {
	out := make([]Protocol, len(ps))
	for i, p := range ps {
		out[i] = Protocol{Name: p.Name, Metadata: bytes.Clone(p.Metadata)}
	}
	return out
}

// replaceStatic gives a static member, rejoining without its member id, a
// new id and fences the old one (Kafka's updateStaticMemberAndRebalance).
func (c *Coordinator) replaceStatic(g *group, m *member, x JoinGroup, out *effects) {
	c.answerFenced(g, m, out)
	old := m.id
	oldProtocols := m.protocols
	m.id = x.NewMemberID
	m.update(x)
	if g.leader == old {
		g.leader = m.id
	}
	switch g.state {
	case GroupStable:
		if sameProtocols(oldProtocols, m.protocols) {
			// Nothing an assignor sees changed: no rebalance. The member
			// gets the current generation and syncs for its assignment.
			m.joinRequest = 0
			out.add(c.joinResponse(g, m, m.id == g.leader, x.RequestID))
			return
		}
		c.prepareRebalance(g, x.Now, out)
	case GroupCompletingRebalance:
		c.prepareRebalance(g, x.Now, out)
	default:
		c.tryCompleteJoin(g, x.Now, out)
	}
}

// answerFenced answers m's open requests with FENCED_INSTANCE_ID.
func (c *Coordinator) answerFenced(g *group, m *member, out *effects) {
	if m.joinRequest != 0 {
		out.add(JoinResponse{RequestID: m.joinRequest, Group: g.id, Err: ErrFencedInstanceID, Generation: -1, MemberID: m.id})
		m.joinRequest = 0
	}
	if m.syncRequest != 0 {
		out.add(SyncResponse{RequestID: m.syncRequest, Group: g.id, Err: ErrFencedInstanceID})
		m.syncRequest = 0
	}
}

func (c *Coordinator) joinKnown(g *group, x JoinGroup, out *effects, fail func(GroupError)) {
	if x.InstanceID != "" {
		if m := g.memberByInstance(x.InstanceID); m != nil && m.id != x.MemberID {
			fail(ErrFencedInstanceID) // the instance id belongs to another member
			return
		}
	}
	if g.removePending(x.MemberID) {
		c.addMember(g, x, x.MemberID, out, fail)
		return
	}
	m := g.memberByID(x.MemberID)
	if m == nil {
		fail(ErrUnknownMemberID)
		return
	}
	if m.instanceID != x.InstanceID {
		fail(ErrFencedInstanceID)
		return
	}
	switch g.state {
	case GroupPreparingRebalance:
		if m.joinRequest != 0 && m.joinRequest != x.RequestID {
			// A retried JoinGroup supersedes the one still waiting.
			out.add(JoinResponse{RequestID: m.joinRequest, Group: g.id, Err: ErrRebalanceInProgress, Generation: -1, MemberID: m.id})
		}
		m.update(x)
		c.tryCompleteJoin(g, x.Now, out)
	case GroupCompletingRebalance:
		if sameProtocols(m.protocols, x.Protocols) {
			// The member lost the answer: give it again.
			m.heartbeatMs = x.Now
			out.add(c.joinResponse(g, m, false, x.RequestID))
			return
		}
		m.update(x)
		c.prepareRebalance(g, x.Now, out)
	case GroupStable:
		if m.id != g.leader && sameProtocols(m.protocols, x.Protocols) {
			m.heartbeatMs = x.Now
			out.add(c.joinResponse(g, m, false, x.RequestID))
			return
		}
		// The leader rejoining, or a changed subscription, rebalances.
		m.update(x)
		c.prepareRebalance(g, x.Now, out)
	default:
		fail(ErrUnknownMemberID)
	}
}

// joinResponse is the current generation's answer to m. The leader gets
// every member's metadata; skip tells a static leader to keep the current
// assignment.
func (c *Coordinator) joinResponse(g *group, m *member, skip bool, requestID uint64) JoinResponse {
	r := JoinResponse{RequestID: requestID, Group: g.id, Generation: g.generation, ProtocolType: g.protocolType,
		ProtocolName: g.protocol, LeaderID: g.leader, MemberID: m.id, SkipAssignment: skip}
	if m.id == g.leader {
		for _, x := range g.members {
			r.Members = append(r.Members, JoinMember{MemberID: x.id, InstanceID: x.instanceID,
				Metadata: bytes.Clone(x.metadataFor(g.protocol))})
		}
	}
	return r
}

// prepareRebalance starts a join phase: members must rejoin before the
// largest rebalance timeout passes.
func (c *Coordinator) prepareRebalance(g *group, now int64, out *effects) {
	if g.state == GroupCompletingRebalance {
		for _, m := range g.members {
			if m.syncRequest != 0 {
				out.add(SyncResponse{RequestID: m.syncRequest, Group: g.id, Err: ErrRebalanceInProgress})
				m.syncRequest = 0
			}
		}
	}
	fromEmpty := g.state == GroupEmpty
	var timeout int64
	for _, m := range g.members {
		timeout = max(timeout, int64(m.rebalanceMs))
	}
	g.deadlineMs = now + timeout
	g.initialDelayMs = 0
	if fromEmpty && c.cfg.initialDelayMs() > 0 {
		g.initialDelayMs = min(now+c.cfg.initialDelayMs(), g.deadlineMs)
	}
	g.setState(GroupPreparingRebalance, now, out)
	c.tryCompleteJoin(g, now, out)
}

// tryCompleteJoin ends the join phase once every member (and every
// pending member id) has joined and any initial delay is over, or once the
// deadline passes.
func (c *Coordinator) tryCompleteJoin(g *group, now int64, out *effects) {
	if g.state != GroupPreparingRebalance {
		return
	}
	all := len(g.pending) == 0
	for _, m := range g.members {
		all = all && m.joinRequest != 0
	}
	if (all && now >= g.initialDelayMs) || now >= g.deadlineMs {
		c.completeJoin(g, now, out)
	}
}

// completeJoin starts a new generation with the members that rejoined
// (static members that did not keep their place until their session
// times out, as Kafka does), and answers every waiting JoinGroup.
func (c *Coordinator) completeJoin(g *group, now int64, out *effects) {
	for _, m := range append([]*member(nil), g.members...) {
		if m.joinRequest == 0 && m.instanceID == "" {
			g.removeMember(m)
		}
	}
	g.generation++
	g.initialDelayMs = 0
	if len(g.members) == 0 {
		g.protocol, g.leader = "", ""
		g.setState(GroupEmpty, now, out)
		return
	}
	if l := g.memberByID(g.leader); l == nil || l.joinRequest == 0 {
		g.leader = g.members[0].id
		for _, m := range g.members {
			if m.joinRequest != 0 {
				g.leader = m.id
				break
			}
		}
	}
	g.protocol = g.selectProtocol()
	var timeout int64
	for _, m := range g.members {
		timeout = max(timeout, int64(m.rebalanceMs))
		m.assignment = nil
	}
	g.deadlineMs = now + timeout
	g.setState(GroupCompletingRebalance, now, out)
	for _, m := range g.members {
		if m.joinRequest != 0 {
			out.add(c.joinResponse(g, m, false, m.joinRequest))
			m.joinRequest = 0
			m.heartbeatMs = now
		}
	}
}

// selectProtocol picks the protocol all members support by Kafka's vote:
// each member votes for the first candidate in its own preference order,
// the most votes win, and a tie goes to the leader's preference order.
func (g *group) selectProtocol() string {
	leader := g.memberByID(g.leader)
	var candidates []string
	for _, p := range leader.protocols {
		if g.allSupport(p.Name) {
			candidates = append(candidates, p.Name)
		}
	}
	base.Assert(len(candidates) > 0, "group %q: members share no protocol", g.id)
	votes := make([]int, len(candidates))
	for _, m := range g.members {
	vote:
		for _, p := range m.protocols {
			for i, cand := range candidates {
				if p.Name == cand {
					votes[i]++
					break vote
				}
			}
		}
	}
	best := 0
	for i := range candidates {
		if votes[i] > votes[best] {
			best = i
		}
	}
	return candidates[best]
}

func (c *Coordinator) sync(x SyncGroup, out *effects) {
	answer := func(e GroupError, assignment []byte) {
		r := SyncResponse{RequestID: x.RequestID, Group: x.Group, Err: e}
		if e == ErrNone {
			g := c.groups[x.Group]
			r.ProtocolType, r.ProtocolName, r.Assignment = g.protocolType, g.protocol, bytes.Clone(assignment)
		}
		out.add(r)
	}
	g := c.groups[x.Group]
	if g == nil || g.kind != kindClassic || x.RequestID == 0 {
		answer(ErrUnknownMemberID, nil)
		return
	}
	m := g.memberByID(x.MemberID)
	switch {
	case m == nil:
		answer(ErrUnknownMemberID, nil)
	case m.instanceID != x.InstanceID:
		answer(ErrFencedInstanceID, nil)
	case x.Generation != g.generation:
		answer(ErrIllegalGeneration, nil)
	case (x.ProtocolType != "" && x.ProtocolType != g.protocolType) || (x.ProtocolName != "" && x.ProtocolName != g.protocol):
		answer(ErrInconsistentGroupProtocol, nil)
	case g.state == GroupPreparingRebalance:
		answer(ErrRebalanceInProgress, nil)
	case g.state == GroupStable:
		m.heartbeatMs = x.Now
		answer(ErrNone, m.assignment)
	case g.state == GroupCompletingRebalance:
		if !validAssignments(x.Assignments) {
			answer(ErrInvalidRequest, nil)
			return
		}
		m.heartbeatMs = x.Now
		if m.syncRequest != 0 && m.syncRequest != x.RequestID {
			out.add(SyncResponse{RequestID: m.syncRequest, Group: g.id, Err: ErrRebalanceInProgress})
		}
		m.syncRequest = x.RequestID
		if m.id == g.leader {
			c.completeSync(g, x, out)
		}
	default:
		answer(ErrUnknownMemberID, nil)
	}
}

func validAssignments(as []MemberAssignment) bool {
	if len(as) > base.GroupMembersMax {
		return false
	}
	for _, a := range as {
		if !validIDs(a.MemberID) || len(a.Assignment) > base.GroupAssignmentBytesMax {
			return false
		}
	}
	return true
}

// completeSync takes the leader's assignment (members it does not name get
// an empty one; names not in the group are ignored, as Kafka does), makes
// the group Stable and answers every waiting SyncGroup.
func (c *Coordinator) completeSync(g *group, x SyncGroup, out *effects) {
	for _, m := range g.members {
		m.assignment = nil
		for _, a := range x.Assignments {
			if a.MemberID == m.id {
				m.assignment = bytes.Clone(a.Assignment)
			}
		}
	}
	g.setState(GroupStable, x.Now, out)
	for _, m := range g.members {
		if m.syncRequest != 0 {
			out.add(SyncResponse{RequestID: m.syncRequest, Group: g.id, ProtocolType: g.protocolType,
				ProtocolName: g.protocol, Assignment: bytes.Clone(m.assignment)})
			m.syncRequest = 0
		}
	}
}

func (c *Coordinator) heartbeat(x Heartbeat, out *effects) GroupError {
	m, verdict := c.heartbeatOf(x)
	if m != nil {
		m.heartbeatMs = x.Now
	}
	return verdict
}

// heartbeatOf is what applying x would answer, and the member whose
// session it would renew (nil when it renews none).
func (c *Coordinator) heartbeatOf(x Heartbeat) (*member, GroupError) {
	g := c.groups[x.Group]
	if g == nil || g.kind != kindClassic {
		return nil, ErrUnknownMemberID
	}
	if x.InstanceID != "" {
		if m := g.memberByInstance(x.InstanceID); m != nil && m.id != x.MemberID {
			return nil, ErrFencedInstanceID
		}
	}
	m := g.memberByID(x.MemberID)
	if m == nil {
		return nil, ErrUnknownMemberID
	}
	if x.Generation != g.generation {
		return nil, ErrIllegalGeneration
	}
	if g.state == GroupPreparingRebalance {
		return m, ErrRebalanceInProgress
	}
	return m, ErrNone
}

// CheckHeartbeat answers a Heartbeat as applying it would, without
// applying it, and reports whether it renews a member's session. The
// leader answers heartbeats this way and keeps them in memory, proposing
// a renewal only when a session would otherwise run out (Renewals):
// Kafka's coordinator keeps heartbeats in memory too.
func (c *Coordinator) CheckHeartbeat(x Heartbeat) (renews bool, verdict GroupError) {
	m, verdict := c.heartbeatOf(x)
	return m != nil, verdict
}

// IsMember reports whether member is a member of the classic group.
func (c *Coordinator) IsMember(group, member string) bool {
	g := c.groups[group]
	return g != nil && g.kind == kindClassic && g.memberByID(member) != nil
}

// Renewals returns, for every member of a classic group whose session a
// GroupTick at now would end, the Heartbeat that renews it as of the
// last time the leader heard from it in the group's generation, if
// lastSeen knows a later time than the replicated one (0: none). The
// leader proposes them before the tick, so that heartbeats it answered
// from memory keep members alive.
func (c *Coordinator) Renewals(now int64, lastSeen func(group, member string, generation int32) int64) []Heartbeat {
	var out []Heartbeat
	for _, id := range c.sortedGroupIDs() {
		g := c.groups[id]
		if g.kind != kindClassic {
			continue
		}
		for _, m := range g.members {
			if m.waiting() || !m.sessionEnded(now) {
				continue
			}
			if at := lastSeen(id, m.id, g.generation); at > m.heartbeatMs {
				out = append(out, Heartbeat{Now: at, Group: id, MemberID: m.id, InstanceID: m.instanceID, Generation: g.generation})
			}
		}
	}
	return out
}

func (c *Coordinator) leave(x LeaveGroup, out *effects) (GroupError, []GroupError, []string) {
	g := c.groups[x.Group]
	if g == nil || g.kind != kindClassic {
		return ErrUnknownMemberID, nil, nil
	}
	if len(x.Members) == 0 || len(x.Members) > base.GroupMembersMax {
		return ErrInvalidRequest, nil, nil
	}
	errs := make([]GroupError, len(x.Members))
	ids := make([]string, len(x.Members))
	removed := false
	for i, l := range x.Members {
		var m *member
		if l.InstanceID != "" {
			m = g.memberByInstance(l.InstanceID)
			if m != nil && l.MemberID != "" && m.id != l.MemberID {
				errs[i] = ErrFencedInstanceID
				continue
			}
		} else {
			if g.removePending(l.MemberID) {
				ids[i] = l.MemberID
				continue
			}
			m = g.memberByID(l.MemberID)
		}
		if m == nil {
			errs[i] = ErrUnknownMemberID
			continue
		}
		ids[i] = m.id
		c.dropMember(g, m, out)
		removed = true
	}
	if removed {
		c.afterRemoval(g, x.Now, out)
	}
	return ErrNone, errs, ids
}

// dropMember removes m, answering its open requests with
// UNKNOWN_MEMBER_ID.
func (c *Coordinator) dropMember(g *group, m *member, out *effects) {
	if m.joinRequest != 0 {
		out.add(JoinResponse{RequestID: m.joinRequest, Group: g.id, Err: ErrUnknownMemberID, Generation: -1, MemberID: m.id})
	}
	if m.syncRequest != 0 {
		out.add(SyncResponse{RequestID: m.syncRequest, Group: g.id, Err: ErrUnknownMemberID})
	}
	g.removeMember(m)
}

// afterRemoval rebalances a group that lost members (Kafka's
// removeMemberAndUpdateGroup).
func (c *Coordinator) afterRemoval(g *group, now int64, out *effects) {
	switch g.state {
	case GroupStable, GroupCompletingRebalance:
		c.prepareRebalance(g, now, out)
	case GroupPreparingRebalance:
		c.tryCompleteJoin(g, now, out)
	}
}

// tickClassic expires pending member ids and members whose session timed
// out (a member waiting for a JoinGroup or SyncGroup answer is alive), and
// enforces the join and sync deadlines.
func (c *Coordinator) tickClassic(g *group, now int64, out *effects) {
	g.pending = deleteExpiredPending(g.pending, now)
	removed := false
	for _, m := range append([]*member(nil), g.members...) {
		if !m.waiting() && m.sessionEnded(now) {
			c.dropMember(g, m, out)
			removed = true
		}
	}
	if removed {
		c.afterRemoval(g, now, out)
	}
	switch g.state {
	case GroupPreparingRebalance:
		c.tryCompleteJoin(g, now, out)
	case GroupCompletingRebalance:
		if now < g.deadlineMs {
			return
		}
		// The leader's SyncGroup did not come in time: members that have
		// not synced are removed and the group rebalances (Kafka's
		// removePendingSyncMembers).
		for _, m := range append([]*member(nil), g.members...) {
			if m.syncRequest == 0 {
				c.dropMember(g, m, out)
			}
		}
		c.prepareRebalance(g, now, out)
	}
}

func deleteExpiredPending(ps []pendingMember, now int64) []pendingMember {
	out := ps[:0]
	for _, p := range ps {
		if !p.expired(now) {
			out = append(out, p)
		}
	}
	return out
}

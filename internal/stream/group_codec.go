package stream

import (
	"cmp"

	"github.com/ferry-mq/ferry/internal/base"
)

// Group command tags. Never renumber: they are in Raft logs.
const (
	tagJoinGroup       = 1
	tagSyncGroup       = 2
	tagHeartbeat       = 3
	tagLeaveGroup      = 4
	tagDeleteGroup     = 5
	tagGroupTick       = 6
	tagAssignJoin      = 7
	tagAssignHeartbeat = 8
	tagAssignLeave     = 9
)

// EncodeGroupCommand appends cmd's encoding to dst and returns the
// extended slice.
func EncodeGroupCommand(dst []byte, cmd GroupCommand) []byte {
	e := encoder{b: dst}
	switch x := cmd.(type) {
	case JoinGroup:
		encodeJoin(&e, x)
	case SyncGroup:
		encodeSync(&e, x)
	case Heartbeat:
		e.u8(tagHeartbeat)
		e.varint(x.Now)
		e.str(x.Group)
		e.str(x.MemberID)
		e.str(x.InstanceID)
		e.varint(int64(x.Generation))
	case LeaveGroup:
		e.u8(tagLeaveGroup)
		e.varint(x.Now)
		e.str(x.Group)
		e.uvarint(uint64(len(x.Members)))
		for _, l := range x.Members {
			e.str(l.MemberID)
			e.str(l.InstanceID)
		}
	case DeleteGroup:
		e.u8(tagDeleteGroup)
		e.varint(x.Now)
		e.str(x.Group)
	case GroupTick:
		e.u8(tagGroupTick)
		e.varint(x.Now)
	case AssignJoin:
		e.u8(tagAssignJoin)
		e.varint(x.Now)
		e.str(x.Group)
		e.str(x.MemberID)
		e.varint(int64(x.SessionMs))
		e.varint(int64(x.Partitions))
	case AssignHeartbeat:
		e.u8(tagAssignHeartbeat)
		e.varint(x.Now)
		e.str(x.Group)
		e.str(x.MemberID)
	case AssignLeave:
		e.u8(tagAssignLeave)
		e.varint(x.Now)
		e.str(x.Group)
		e.str(x.MemberID)
	default:
		base.Bugf("stream: EncodeGroupCommand of %T", cmd)
	}
	return e.b
}

func encodeJoin(e *encoder, x JoinGroup) {
	e.u8(tagJoinGroup)
	e.varint(x.Now)
	e.uvarint(x.RequestID)
	for _, s := range []string{x.Group, x.MemberID, x.InstanceID, x.ClientID, x.ClientHost, x.ProtocolType} {
		e.str(s)
	}
	encodeProtocols(e, x.Protocols)
	e.varint(int64(x.SessionMs))
	e.varint(int64(x.RebalanceMs))
	e.boolean(x.RequireKnownMemberID)
	e.str(x.NewMemberID)
}

func encodeSync(e *encoder, x SyncGroup) {
	e.u8(tagSyncGroup)
	e.varint(x.Now)
	e.uvarint(x.RequestID)
	e.str(x.Group)
	e.str(x.MemberID)
	e.str(x.InstanceID)
	e.varint(int64(x.Generation))
	e.str(x.ProtocolType)
	e.str(x.ProtocolName)
	e.uvarint(uint64(len(x.Assignments)))
	for _, a := range x.Assignments {
		e.str(a.MemberID)
		e.bytes(a.Assignment)
	}
}

func encodeProtocols(e *encoder, ps []Protocol) {
	e.uvarint(uint64(len(ps)))
	for _, p := range ps {
		e.str(p.Name)
		e.bytes(p.Metadata)
	}
}

func decodeProtocols(d *decoder) []Protocol {
	n := d.count(base.GroupProtocolsMax, 2, "protocols")
	if n == 0 {
		return nil
	}
	ps := make([]Protocol, 0, n)
	for range n {
		ps = append(ps, Protocol{Name: d.str(base.GroupIDBytesMax, "protocol name"),
			Metadata: d.bytes(base.GroupMemberMetadataBytesMax, "protocol metadata")})
	}
	return ps
}

func (d *decoder) id(what string) string { return d.str(base.GroupIDBytesMax, what) }

// DecodeGroupCommand decodes what EncodeGroupCommand wrote. Errors have
// base.CodeCorrupt. Limits are checked before anything is allocated; the
// command's semantic checks happen in Apply. The command does not alias b.
func DecodeGroupCommand(b []byte) (GroupCommand, error) {
	d := decoder{b: b}
	var cmd GroupCommand
	switch tag := d.u8(); tag {
	case tagJoinGroup:
		x := JoinGroup{Now: d.varint(), RequestID: d.uvarint(), Group: d.id("group id"), MemberID: d.id("member id"),
			InstanceID: d.id("instance id"), ClientID: d.id("client id"), ClientHost: d.id("client host"),
			ProtocolType: d.id("protocol type")}
		x.Protocols = decodeProtocols(&d)
		x.SessionMs, x.RebalanceMs = d.int32(), d.int32()
		x.RequireKnownMemberID = d.boolean()
		x.NewMemberID = d.id("new member id")
		cmd = x
	case tagSyncGroup:
		x := SyncGroup{Now: d.varint(), RequestID: d.uvarint(), Group: d.id("group id"), MemberID: d.id("member id"),
			InstanceID: d.id("instance id"), Generation: d.int32(), ProtocolType: d.id("protocol type"),
			ProtocolName: d.id("protocol name")}
		if n := d.count(base.GroupMembersMax, 2, "assignments"); n > 0 {
			x.Assignments = make([]MemberAssignment, 0, n)
			for range n {
				x.Assignments = append(x.Assignments, MemberAssignment{MemberID: d.id("member id"),
					Assignment: d.bytes(base.GroupAssignmentBytesMax, "assignment")})
			}
		}
		cmd = x
	case tagHeartbeat:
		cmd = Heartbeat{Now: d.varint(), Group: d.id("group id"), MemberID: d.id("member id"),
			InstanceID: d.id("instance id"), Generation: d.int32()}
	case tagLeaveGroup:
		x := LeaveGroup{Now: d.varint(), Group: d.id("group id")}
		if n := d.count(base.GroupMembersMax, 2, "leaving members"); n > 0 {
			x.Members = make([]LeavingMember, 0, n)
			for range n {
				x.Members = append(x.Members, LeavingMember{MemberID: d.id("member id"), InstanceID: d.id("instance id")})
			}
		}
		cmd = x
	case tagDeleteGroup:
		cmd = DeleteGroup{Now: d.varint(), Group: d.id("group id")}
	case tagGroupTick:
		cmd = GroupTick{Now: d.varint()}
	case tagAssignJoin:
		cmd = AssignJoin{Now: d.varint(), Group: d.id("group id"), MemberID: d.id("member id"),
			SessionMs: d.int32(), Partitions: d.int32()}
	case tagAssignHeartbeat:
		cmd = AssignHeartbeat{Now: d.varint(), Group: d.id("group id"), MemberID: d.id("member id")}
	case tagAssignLeave:
		cmd = AssignLeave{Now: d.varint(), Group: d.id("group id"), MemberID: d.id("member id")}
	default:
		d.fail("unknown group command tag %d", tag)
	}
	if err := d.finish(); err != nil {
		return nil, err
	}
	return cmd, nil
}

const coordinatorSnapshotVersion = 1

// Snapshot appends the coordinator's whole state to dst, deterministically
// (groups by id, members in join order).
func (c *Coordinator) Snapshot(dst []byte) []byte {
	e := encoder{b: dst}
	e.u8(coordinatorSnapshotVersion)
	e.varint(c.cfg.InitialRebalanceDelayMs)
	e.varint(c.cfg.EmptyGroupRetentionMs)
	ids := c.sortedGroupIDs()
	e.uvarint(uint64(len(ids)))
	for _, id := range ids {
		encodeGroup(&e, c.groups[id])
	}
	return e.b
}

func encodeGroup(e *encoder, g *group) {
	e.str(g.id)
	e.u8(uint8(g.kind))
	e.u8(uint8(g.state))
	e.str(g.protocolType)
	e.str(g.protocol)
	e.varint(int64(g.generation))
	e.str(g.leader)
	e.varint(g.stateMs)
	e.varint(g.deadlineMs)
	e.varint(g.initialDelayMs)
	e.varint(int64(g.partitions))
	e.uvarint(uint64(len(g.members)))
	for _, m := range g.members {
		for _, s := range []string{m.id, m.instanceID, m.clientID, m.clientHost} {
			e.str(s)
		}
		e.varint(int64(m.sessionMs))
		e.varint(int64(m.rebalanceMs))
		encodeProtocols(e, m.protocols)
		e.bytes(m.assignment)
		e.varint(m.heartbeatMs)
		e.uvarint(m.joinRequest)
		e.uvarint(m.syncRequest)
		e.uvarint(uint64(len(m.owned)))
		for _, p := range m.owned {
			e.varint(int64(p))
		}
	}
	e.uvarint(uint64(len(g.pending)))
	for _, p := range g.pending {
		e.str(p.id)
		e.varint(p.deadlineMs)
	}
}

// RestoreCoordinator rebuilds a coordinator from Snapshot's bytes,
// checking its structure so that no later command can trip an invariant.
// Errors have base.CodeCorrupt; allocation is bounded by the limits and
// len(b).
func RestoreCoordinator(b []byte) (*Coordinator, error) {
	d := decoder{b: b}
	if v := d.u8(); d.err == nil && v != coordinatorSnapshotVersion {
		d.fail("unknown coordinator snapshot version %d", v)
	}
	c := NewCoordinator(CoordinatorConfig{InitialRebalanceDelayMs: d.varint(), EmptyGroupRetentionMs: d.varint()})
	n := d.count(base.GroupsMax, 12, "groups")
	prev := ""
	for i := range n {
		g := decodeGroup(&d)
		if d.err != nil {
			break
		}
		if i > 0 && cmp.Compare(g.id, prev) <= 0 {
			d.fail("groups out of order")
			break
		}
		if err := g.check(); err != nil {
			return nil, err
		}
		prev = g.id
		c.groups[g.id] = g
	}
	if err := d.finish(); err != nil {
		return nil, err
	}
	return c, nil
}

func decodeGroup(d *decoder) *group {
	g := &group{id: d.id("group id"), kind: groupKind(d.u8()), state: GroupState(d.u8()),
		protocolType: d.id("protocol type"), protocol: d.id("protocol"), generation: d.int32(), leader: d.id("leader"),
		stateMs: d.varint(), deadlineMs: d.varint(), initialDelayMs: d.varint(), partitions: d.int32()}
	n := d.count(base.GroupMembersMax, 12, "members")
	for range n {
		m := &member{id: d.id("member id"), instanceID: d.id("instance id"), clientID: d.id("client id"),
			clientHost: d.id("client host"), sessionMs: d.int32(), rebalanceMs: d.int32()}
		m.protocols = decodeProtocols(d)
		m.assignment = d.bytes(base.GroupAssignmentBytesMax, "assignment")
		m.heartbeatMs, m.joinRequest, m.syncRequest = d.varint(), d.uvarint(), d.uvarint()
		if k := d.count(base.GroupPartitionsMax, 1, "owned partitions"); k > 0 {
			m.owned = make([]int32, 0, k)
			for range k {
				m.owned = append(m.owned, d.int32())
			}
		}
		if d.err != nil {
			return g
		}
		g.members = append(g.members, m)
	}
	k := d.count(base.GroupMembersMax, 2, "pending members")
	for range k {
		g.pending = append(g.pending, pendingMember{id: d.id("pending member id"), deadlineMs: d.varint()})
	}
	return g
}

// check verifies what the coordinator's code relies on: known kind and
// state, unique non-empty member ids, a leader among the members, a shared
// protocol in classic groups, disjoint in-range partitions in assigned
// groups.
func (g *group) check() error {
	bad := func(what string) error {
		return errf(base.CodeCorrupt, "coordinator snapshot: group %q: %s", g.id, what)
	}
	if g.id == "" || g.kind > kindAssigned || g.state > GroupStable {
		return bad("bad id, kind or state")
	}
	if g.partitions < 0 || g.partitions > base.GroupPartitionsMax || (g.kind == kindClassic && g.partitions != 0) {
		return bad("bad partition count")
	}
	seen := map[string]bool{}
	for _, p := range g.pending {
		if p.id == "" || seen[p.id] {
			return bad("bad pending member id")
		}
		seen[p.id] = true
	}
	owned := make([]bool, g.partitions)
	for _, m := range g.members {
		if m.id == "" || seen[m.id] || (m.instanceID != "" && g.memberByInstance(m.instanceID) != m) {
			return bad("duplicate or empty member id")
		}
		seen[m.id] = true
		if g.kind == kindClassic && len(m.protocols) == 0 {
			return bad("member without protocols")
		}
		for i, p := range m.owned {
			if g.kind != kindAssigned || p < 0 || p >= g.partitions || owned[p] || (i > 0 && p <= m.owned[i-1]) {
				return bad("bad owned partitions")
			}
			owned[p] = true
		}
	}
	if len(g.members) == 0 {
		if g.leader != "" || (g.state != GroupEmpty && g.kind == kindAssigned) {
			return bad("leader or state without members")
		}
		return nil
	}
	if g.kind == kindClassic {
		if g.memberByID(g.leader) == nil || g.protocolType == "" || g.state == GroupEmpty {
			return bad("bad leader, protocol type or state")
		}
		shared := false
		for _, p := range g.members[0].protocols {
			shared = shared || g.allSupport(p.Name)
		}
		if !shared {
			return bad("members share no protocol")
		}
	}
	return nil
}

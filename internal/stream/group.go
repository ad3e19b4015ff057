package stream

import (
	"slices"

	"github.com/ferry-mq/ferry/internal/base"
)

// GroupState is a consumer group's state, as Kafka's classic group
// coordinator names them.
type GroupState uint8

const (
	GroupEmpty GroupState = iota
	GroupPreparingRebalance
	GroupCompletingRebalance
	GroupStable
	GroupDead
)

var groupStateNames = [...]string{"Empty", "PreparingRebalance", "CompletingRebalance", "Stable", "Dead"}

func (s GroupState) String() string {
	if int(s) < len(groupStateNames) {
		return groupStateNames[s]
	}
	return "GroupState?"
}

// GroupError is the outcome of a group request, one of Kafka's group
// coordinator errors. KafkaCode gives the Kafka protocol's number, Code the
// base code for the other front ends.
type GroupError uint8

const (
	ErrNone GroupError = iota
	ErrUnknownMemberID
	ErrIllegalGeneration
	ErrRebalanceInProgress
	ErrInconsistentGroupProtocol
	ErrInvalidSessionTimeout
	ErrMemberIDRequired
	ErrFencedInstanceID
	ErrGroupMaxSizeReached
	ErrNonEmptyGroup
	ErrGroupIDNotFound
	ErrCoordinatorNotAvailable
	ErrInvalidRequest
	ErrInvalidGroupID
	// ErrCoordinatorLoadInProgress: the coordinator's group is still
	// loading on this node; clients retry the same node after a backoff.
	ErrCoordinatorLoadInProgress
)

var groupErrors = [...]struct {
	name  string
	kafka int16
	code  base.Code
}{
	ErrNone:                      {"NONE", 0, 0},
	ErrUnknownMemberID:           {"UNKNOWN_MEMBER_ID", 25, base.CodeNotFound},
	ErrIllegalGeneration:         {"ILLEGAL_GENERATION", 22, base.CodeConflict},
	ErrRebalanceInProgress:       {"REBALANCE_IN_PROGRESS", 27, base.CodeConflict},
	ErrInconsistentGroupProtocol: {"INCONSISTENT_GROUP_PROTOCOL", 23, base.CodePreconditionFailed},
	ErrInvalidSessionTimeout:     {"INVALID_SESSION_TIMEOUT", 26, base.CodeInvalidArgument},
	ErrMemberIDRequired:          {"MEMBER_ID_REQUIRED", 79, base.CodePreconditionFailed},
	ErrFencedInstanceID:          {"FENCED_INSTANCE_ID", 82, base.CodeConflict},
	ErrGroupMaxSizeReached:       {"GROUP_MAX_SIZE_REACHED", 81, base.CodeTooLarge},
	ErrNonEmptyGroup:             {"NON_EMPTY_GROUP", 68, base.CodePreconditionFailed},
	ErrGroupIDNotFound:           {"GROUP_ID_NOT_FOUND", 69, base.CodeNotFound},
	ErrCoordinatorNotAvailable:   {"COORDINATOR_NOT_AVAILABLE", 15, base.CodeUnavailable},
	ErrInvalidRequest:            {"INVALID_REQUEST", 42, base.CodeInvalidArgument},
	ErrInvalidGroupID:            {"INVALID_GROUP_ID", 24, base.CodeInvalidArgument},
	ErrCoordinatorLoadInProgress: {"COORDINATOR_LOAD_IN_PROGRESS", 14, base.CodeUnavailable},
}

func (e GroupError) String() string {
	if int(e) < len(groupErrors) {
		return groupErrors[e].name
	}
	return "GroupError?"
}

// KafkaCode returns the Kafka protocol error code.
func (e GroupError) KafkaCode() int16 { return groupErrors[e].kafka }

// Err returns the error as a base error (nil for ErrNone), for front ends
// other than Kafka.
func (e GroupError) Err(group string) error {
	if e == ErrNone {
		return nil
	}
	return errf(groupErrors[e].code, "group %q: %s", group, e)
}

// CoordinatorConfig is the group coordinator's configuration; like the
// partition's, it is state, set when the coordinator is created.
type CoordinatorConfig struct {
	// InitialRebalanceDelayMs holds the first rebalance of an empty group;
	// 0 means base.GroupInitialRebalanceDelayDefault, < 0 none.
	InitialRebalanceDelayMs int64
	// EmptyGroupRetentionMs forgets a group that has been empty this long
	// (its offsets expire on the same schedule); 0 means
	// base.StreamOffsetsRetentionDefault, < 0 never.
	EmptyGroupRetentionMs int64
}

func (c CoordinatorConfig) initialDelayMs() int64 {
	if c.InitialRebalanceDelayMs == 0 {
		return base.GroupInitialRebalanceDelayDefault.Milliseconds()
	}
	return max(c.InitialRebalanceDelayMs, 0)
}

func (c CoordinatorConfig) emptyRetentionMs() int64 {
	if c.EmptyGroupRetentionMs == 0 {
		return base.StreamOffsetsRetentionDefault.Milliseconds()
	}
	return c.EmptyGroupRetentionMs
}

// Coordinator is the replicated state of consumer groups: one Raft group
// hosts one Coordinator, which may hold one group or many. Groups are of
// two kinds, fixed when the group is created: classic groups run Kafka's
// JoinGroup/SyncGroup protocol (a member computes the assignment);
// assigned groups get partitions from the coordinator itself (server-side
// sticky assignment, for protocols with no client-side assignor). Not safe
// for concurrent use.
type Coordinator struct {
	cfg    CoordinatorConfig
	groups map[string]*group
}

type groupKind uint8

const (
	kindClassic groupKind = iota
	kindAssigned
)

// AssignedProtocolType is the protocol type DescribeGroups and ListGroups
// report for assigned groups.
const AssignedProtocolType = "ferry-assigned"

type group struct {
	id           string
	kind         groupKind
	state        GroupState
	protocolType string
	protocol     string // selected protocol; "" until a generation completes
	generation   int32
	leader       string
	members      []*member // in join order, which breaks every tie
	pending      []pendingMember
	stateMs      int64 // when the state last changed

	// Classic rebalances: the deadline of the current phase (join or
	// sync), and the end of the initial delay (0 when none).
	deadlineMs     int64
	initialDelayMs int64

	partitions int32 // assigned groups: partitions 0..partitions-1
}

type member struct {
	id, instanceID, clientID, clientHost string
	sessionMs, rebalanceMs               int32
	protocols                            []Protocol
	assignment                           []byte
	heartbeatMs                          int64
	joinRequest                          uint64  // the JoinGroup awaiting an answer, 0 if none
	syncRequest                          uint64  // the SyncGroup awaiting an answer, 0 if none
	owned                                []int32 // assigned groups: sorted partitions
}

// pendingMember is a member id handed out with MEMBER_ID_REQUIRED, valid
// until deadlineMs for the member to join with it (KIP-394).
type pendingMember struct {
	id         string
	deadlineMs int64
}

// The deadlines a GroupTick enforces, each said once for the tick and for
// TickDue and Renewals, which must agree with it.

// sessionEnded reports whether the member's session has run out at now.
func (m *member) sessionEnded(now int64) bool { return now-m.heartbeatMs >= int64(m.sessionMs) }

// waiting reports whether a classic member waits for the answer to its
// JoinGroup or SyncGroup: its session does not end meanwhile.
func (m *member) waiting() bool { return m.joinRequest != 0 || m.syncRequest != 0 }

// expired reports whether the pending member's deadline has passed at now.
func (p pendingMember) expired(now int64) bool { return now >= p.deadlineMs }

// emptyExpired reports whether g, Empty with no member, is forgotten at
// now under the empty-group retention ret (negative: never).
func (g *group) emptyExpired(now, ret int64) bool {
	return g.state == GroupEmpty && len(g.members) == 0 && len(g.pending) == 0 && ret >= 0 && now-g.stateMs >= ret
}

// Protocol is one assignment protocol a member supports, with its metadata
// (a Kafka consumer's subscription).
type Protocol struct {
	Name     string
	Metadata []byte
}

// NewCoordinator returns a coordinator with no groups.
func NewCoordinator(cfg CoordinatorConfig) *Coordinator {
	return &Coordinator{cfg: cfg, groups: map[string]*group{}}
}

// GroupCommand is one input of the coordinator: JoinGroup, SyncGroup,
// Heartbeat, LeaveGroup, DeleteGroup, GroupTick, AssignJoin,
// AssignHeartbeat or AssignLeave.
type GroupCommand interface{ groupCommand() }

// GroupResult is the outcome of one command.
type GroupResult struct {
	// Err is the answer to a Heartbeat, LeaveGroup (the request as a
	// whole), DeleteGroup or Assign* command. JoinGroup and SyncGroup are
	// answered through Effects, since their answers may be delayed.
	Err GroupError
	// Leave has one error per member of a LeaveGroup, in request order;
	// LeftMemberIDs the member id each one resolved to (a static member
	// leaving by instance id alone), "" where it was refused.
	Leave         []GroupError
	LeftMemberIDs []string
	// Effects are what the owner must deliver, in order: answers to
	// requests (this one's, or earlier ones' released by this command),
	// group state changes and assignment changes.
	Effects []Effect
}

// Effect is one of JoinResponse, SyncResponse, GroupStateChanged or
// AssignmentChanged.
type Effect interface{ groupEffect() }

// JoinResponse answers the JoinGroup with RequestID.
type JoinResponse struct {
	RequestID    uint64
	Group        string
	Err          GroupError
	Generation   int32
	ProtocolType string
	ProtocolName string
	LeaderID     string
	MemberID     string
	// SkipAssignment tells a static leader rejoining a stable group not to
	// compute a new assignment (KIP-814).
	SkipAssignment bool
	// Members is set for the leader only: every member and its metadata
	// for the selected protocol, in join order.
	Members []JoinMember
}

// JoinMember is one member as the leader sees it.
type JoinMember struct {
	MemberID   string
	InstanceID string
	Metadata   []byte
}

// SyncResponse answers the SyncGroup with RequestID.
type SyncResponse struct {
	RequestID    uint64
	Group        string
	Err          GroupError
	ProtocolType string
	ProtocolName string
	Assignment   []byte
}

// GroupStateChanged reports a group's new state. The owner forwards Empty
// (MarkGroup Empty) and leaving Empty (MarkGroup not Empty) to the
// partitions holding the group's offsets; Dead means the group is gone.
type GroupStateChanged struct {
	Group string
	State GroupState
	Now   int64
}

// AssignmentChanged tells a member of an assigned group its partitions in
// a new generation: all of them, and what changed. A member removed from
// the group gets one with no partitions.
type AssignmentChanged struct {
	Group      string
	MemberID   string
	Generation int32
	Partitions []int32
	Added      []int32
	Revoked    []int32
}

func (JoinResponse) groupEffect()      {}
func (SyncResponse) groupEffect()      {}
func (GroupStateChanged) groupEffect() {}
func (AssignmentChanged) groupEffect() {}

// Apply applies one command. The Effects slice is the caller's.
func (c *Coordinator) Apply(cmd GroupCommand) GroupResult {
	var out effects
	var res GroupResult
	switch x := cmd.(type) {
	case JoinGroup:
		c.join(x, &out)
	case SyncGroup:
		c.sync(x, &out)
	case Heartbeat:
		res.Err = c.heartbeat(x, &out)
	case LeaveGroup:
		res.Err, res.Leave, res.LeftMemberIDs = c.leave(x, &out)
	case DeleteGroup:
		res.Err = c.deleteGroup(x, &out)
	case GroupTick:
		c.tick(x.Now, &out)
	case AssignJoin:
		res.Err = c.assignJoin(x, &out)
	case AssignHeartbeat:
		res.Err = c.assignHeartbeat(x)
	case AssignLeave:
		res.Err = c.assignLeave(x, &out)
	default:
		base.Bugf("stream: Coordinator.Apply of %T", cmd)
	}
	res.Effects = out.list
	return res
}

// effects collects a command's effects.
type effects struct{ list []Effect }

func (e *effects) add(x Effect) { e.list = append(e.list, x) }

func (g *group) setState(s GroupState, now int64, out *effects) {
	if g.state == s {
		return
	}
	g.state, g.stateMs = s, now
	out.add(GroupStateChanged{Group: g.id, State: s, Now: now})
}

func (g *group) memberByID(id string) *member {
	for _, m := range g.members {
		if m.id == id {
			return m
		}
	}
	return nil
}

func (g *group) memberByInstance(instance string) *member {
	for _, m := range g.members {
		if m.instanceID == instance {
			return m
		}
	}
	return nil
}

func (g *group) removeMember(m *member) {
	g.members = slices.DeleteFunc(g.members, func(x *member) bool { return x == m })
	if g.leader == m.id {
		g.leader = ""
		if len(g.members) > 0 {
			g.leader = g.members[0].id
		}
	}
}

func (g *group) removePending(id string) bool {
	n := len(g.pending)
	g.pending = slices.DeleteFunc(g.pending, func(p pendingMember) bool { return p.id == id })
	return len(g.pending) != n
}

// sortedGroupIDs returns the group ids in order, so that anything done for
// every group happens in the same order on every replica.
func (c *Coordinator) sortedGroupIDs() []string {
	ids := make([]string, 0, len(c.groups))
	for id := range c.groups {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// GroupTick advances time: session timeouts, rebalance and initial-delay
// deadlines, expiry of empty groups.
type GroupTick struct{ Now int64 }

// TickDue reports whether a GroupTick at now would change anything. A
// classic group that is rebalancing has deadlines TickDue does not judge
// (the join's and the sync's), so it is always due; for any other group
// the tick is due exactly when a member's session has run out, a pending
// member's deadline has passed, or an idle Empty group's expiry has
// come. A leader proposes the tick only then, so that a coordinator whose
// groups are idle or stable writes nothing between heartbeats.
func (c *Coordinator) TickDue(now int64) bool {
	ret := c.cfg.emptyRetentionMs()
	for _, g := range c.groups {
		if g.tickDue(now, ret) {
			return true
		}
	}
	return false
}

// tickDue is TickDue for one group, with the empty-group retention ret;
// it follows tick, tickClassic and tickAssigned.
func (g *group) tickDue(now, ret int64) bool {
	classic := g.kind != kindAssigned
	if classic && (g.state == GroupPreparingRebalance || g.state == GroupCompletingRebalance) {
		return true
	}
	for _, m := range g.members {
		if !(classic && m.waiting()) && m.sessionEnded(now) {
			return true
		}
	}
	if classic {
		for _, p := range g.pending {
			if p.expired(now) {
				return true
			}
		}
	}
	return g.emptyExpired(now, ret)
}

func (c *Coordinator) tick(now int64, out *effects) {
	for _, id := range c.sortedGroupIDs() {
		g := c.groups[id]
		if g.kind == kindAssigned {
			c.tickAssigned(g, now, out)
		} else {
			c.tickClassic(g, now, out)
		}
		if g.emptyExpired(now, c.cfg.emptyRetentionMs()) {
			delete(c.groups, id)
			out.add(GroupStateChanged{Group: id, State: GroupDead, Now: now})
		}
	}
}

// DeleteGroup removes an empty group (Kafka's DeleteGroups). The owner
// deletes the group's committed offsets from its partitions.
type DeleteGroup struct {
	Now   int64
	Group string
}

func (c *Coordinator) deleteGroup(x DeleteGroup, out *effects) GroupError {
	g := c.groups[x.Group]
	if g == nil {
		return ErrGroupIDNotFound
	}
	if g.state != GroupEmpty || len(g.members) > 0 {
		return ErrNonEmptyGroup
	}
	delete(c.groups, x.Group)
	out.add(GroupStateChanged{Group: x.Group, State: GroupDead, Now: x.Now})
	return ErrNone
}

// DescribedGroup is a group as DescribeGroups reports it.
type DescribedGroup struct {
	Group        string
	State        GroupState
	ProtocolType string
	Protocol     string
	Generation   int32
	LeaderID     string
	Members      []DescribedMember
}

// DescribedMember is one member of a DescribedGroup. Metadata and
// Assignment are set only when the group is Stable, as Kafka reports them.
type DescribedMember struct {
	MemberID   string
	InstanceID string
	ClientID   string
	ClientHost string
	Metadata   []byte
	Assignment []byte
	Partitions []int32 // assigned groups
}

// Describe returns a group's description; an unknown group is Dead with
// no members, as Kafka describes it. The returned slices are the caller's.
func (c *Coordinator) Describe(id string) DescribedGroup {
	g := c.groups[id]
	if g == nil {
		return DescribedGroup{Group: id, State: GroupDead}
	}
	d := DescribedGroup{Group: id, State: g.state, ProtocolType: g.protocolType, Generation: g.generation, LeaderID: g.leader}
	if g.state == GroupStable {
		d.Protocol = g.protocol
	}
	for _, m := range g.members {
		dm := DescribedMember{MemberID: m.id, InstanceID: m.instanceID, ClientID: m.clientID, ClientHost: m.clientHost,
			Partitions: slices.Clone(m.owned)}
		if g.state == GroupStable && g.kind == kindClassic {
			dm.Metadata = slices.Clone(m.metadataFor(g.protocol))
			dm.Assignment = slices.Clone(m.assignment)
		}
		d.Members = append(d.Members, dm)
	}
	return d
}

// ListedGroup is one group as ListGroups reports it.
type ListedGroup struct {
	Group        string
	ProtocolType string
	State        GroupState
}

// List returns every group, sorted by id.
func (c *Coordinator) List() []ListedGroup {
	out := make([]ListedGroup, 0, len(c.groups))
	for _, id := range c.sortedGroupIDs() {
		g := c.groups[id]
		out = append(out, ListedGroup{Group: id, ProtocolType: g.protocolType, State: g.state})
	}
	return out
}

// ValidateCommit says whether an OffsetCommit from memberID in generation
// may be accepted, as Kafka's coordinator decides: a commit with no member
// and a negative generation (a standalone consumer or an admin) is allowed
// only while the group is empty or unknown; otherwise the member must be
// in the group's current generation, and not during CompletingRebalance.
func (c *Coordinator) ValidateCommit(groupID, memberID, instanceID string, generation int32) GroupError {
	g := c.groups[groupID]
	if g == nil || (g.state == GroupEmpty && len(g.members) == 0) {
		if generation < 0 && memberID == "" {
			return ErrNone
		}
		return ErrUnknownMemberID
	}
	if g.kind == kindAssigned {
		if g.memberByID(memberID) == nil {
			return ErrUnknownMemberID
		}
		return ErrNone
	}
	if instanceID != "" {
		if m := g.memberByInstance(instanceID); m != nil && m.id != memberID {
			return ErrFencedInstanceID
		}
	}
	if g.memberByID(memberID) == nil {
		return ErrUnknownMemberID
	}
	if g.state == GroupCompletingRebalance {
		return ErrRebalanceInProgress
	}
	if generation != g.generation {
		return ErrIllegalGeneration
	}
	return ErrNone
}

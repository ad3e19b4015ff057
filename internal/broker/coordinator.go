package broker

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/controller"
	"github.com/ferry-mq/ferry/internal/replication"
	"github.com/ferry-mq/ferry/internal/stream"
)

// coordinatorFSM is the state machine of one consumer-group coordinator
// group: stream.Coordinator. Its effects (answers to JoinGroup and
// SyncGroup, assignment changes) go to the leader runtime.
type coordinatorFSM struct {
	b     *Broker
	group GroupID

	mu sync.Mutex
	c  *stream.Coordinator // guarded by mu

	leader atomic.Pointer[coordinatorLeader]
}

func newCoordinatorFSM(b *Broker, id GroupID) *coordinatorFSM {
	return &coordinatorFSM{b: b, group: id, c: stream.NewCoordinator(stream.CoordinatorConfig{})}
}

// groupCmdResult is what a coordinator command gives its proposer.
type groupCmdResult struct {
	res stream.GroupResult
	err error
}

func (r *groupCmdResult) Err() error { return r.err }

func (f *coordinatorFSM) Apply(entries []replication.Entry, results []any) {
	f.mu.Lock()
	cl := f.leader.Load()
	for i, e := range entries {
		if e.Kind != replication.KindCommand || len(e.Data) == 0 || e.Data[0] != tagGroup {
			results[i] = &groupCmdResult{err: base.Errorf(base.CodeInvalidArgument, "broker: entry %d is not a group command", e.Index)}
			continue
		}
		cmd, err := stream.DecodeGroupCommand(e.Data[1:])
		if err != nil {
			results[i] = &groupCmdResult{err: err}
			continue
		}
		res := f.c.Apply(cmd)
		if cl != nil {
			cl.effects(res.Effects)
		}
		results[i] = &groupCmdResult{res: res}
	}
	f.mu.Unlock()
	f.b.activity.Signal()
}

func (f *coordinatorFSM) Snapshot(w io.Writer) error {
	f.mu.Lock()
	data := f.c.Snapshot(nil)
	f.mu.Unlock()
	_, err := w.Write(data)
	return err
}

func (f *coordinatorFSM) Restore(r io.Reader) error {
	data, err := io.ReadAll(io.LimitReader(r, base.SnapshotBytesMax))
	if err != nil {
		return err
	}
	c, err := stream.RestoreCoordinator(data)
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.c = c
	f.mu.Unlock()
	return nil
}

func (f *coordinatorFSM) RetainFrom() uint64 { return 0 }

// coordinatorLeader runs on the node leading a coordinator group: it
// matches effects to the requests waiting for them, tells server-assigned
// members their partitions, and lets time pass (GroupTick, proposed only
// when it is due: a coordinator whose groups are idle writes nothing).
type coordinatorLeader struct {
	b   *Broker
	fsm *coordinatorFSM
	g   GroupID

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	kickCh chan struct{} // size one: wakes run to pass on assignments

	// marker tells partitions whether the groups have members, for the
	// expiry of their offsets (group_expiry.go).
	marker *groupMarker

	mu       sync.Mutex
	waiting  map[uint64]chan stream.Effect  // guarded by mu: JoinGroup/SyncGroup answers by request id
	assigned map[assignKey]func(Assignment) // guarded by mu: server-assigned members
	notes    []assignmentNote               // guarded by mu: assignments to pass on, in order
	nextReq  uint64                         // guarded by mu

	// tickedMs is the clock time (Unix ms) of the last time pass run
	// finished, proposed or found with nothing due, or, before the first,
	// of the moment run armed its timer; the broker's activity is
	// signalled after each (tests wait for them).
	tickedMs atomic.Int64

	// Heartbeats are answered from the replicated state and kept here,
	// not proposed: the time pass proposes a renewal only for a member
	// whose replicated session would end (stream.Coordinator.Renewals).
	// A member this leader has not heard from counts as heard at
	// startMs: a new leader gives every member a fresh session, as
	// Kafka's coordinator does when it loads its groups.
	startMs  int64
	seenMu   sync.Mutex
	lastSeen map[assignKey]seenBeat // guarded by seenMu: one per member heard from
}

// seenBeat is the last heartbeat the leader accepted from a member.
type seenBeat struct {
	at         int64
	generation int32
}

type assignmentNote struct {
	fn func(Assignment)
	a  Assignment
}

type assignKey struct{ group, member string }

func newCoordinatorLeader(b *Broker, lg *localGroup) *coordinatorLeader {
	f := lg.fsm.(*coordinatorFSM)
	cl := &coordinatorLeader{b: b, fsm: f, g: lg.id, kickCh: make(chan struct{}, 1), waiting: map[uint64]chan stream.Effect{},
		assigned: map[assignKey]func(Assignment){}, marker: newGroupMarker(b, f, lg.id),
		startMs: b.nowMs(), lastSeen: map[assignKey]seenBeat{}}
	cl.ctx, cl.cancel = context.WithCancel(b.ctx())
	f.mu.Lock()
	f.leader.Store(cl)
	f.mu.Unlock()
	cl.wg.Add(2)
	go func() {
		defer cl.wg.Done()
		cl.run()
	}()
	go func() {
		defer cl.wg.Done()
		cl.marker.run(cl.ctx)
	}()
	return cl
}

func (cl *coordinatorLeader) stop() {
	cl.fsm.mu.Lock()
	if cl.fsm.leader.Load() == cl {
		cl.fsm.leader.Store(nil)
	}
	cl.fsm.mu.Unlock()
	cl.cancel()
	cl.wg.Wait()
}

func (cl *coordinatorLeader) run() {
	t := cl.b.clock.NewTimer(cl.b.cfg.GroupTickInterval)
	defer t.Stop()
	cl.tickedMs.Store(cl.b.nowMs()) // armed: the next advance past the interval runs a pass
	cl.b.activity.Signal()
	for {
		select {
		case <-cl.ctx.Done():
			return
		case <-t.C():
			t.Reset(cl.b.cfg.GroupTickInterval)
			cl.timePass(cl.b.nowMs())
		case <-cl.kickCh:
		}
		cl.mu.Lock()
		notes := cl.notes
		cl.notes = nil
		cl.mu.Unlock()
		for _, n := range notes {
			n.fn(n.a)
		}
	}
}

// effects routes a command's effects (called by Apply, FSM locked).
func (cl *coordinatorLeader) effects(effs []stream.Effect) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	for _, e := range effs {
		switch x := e.(type) {
		case stream.JoinResponse:
			if ch := cl.waiting[x.RequestID]; ch != nil {
				ch <- x
				delete(cl.waiting, x.RequestID)
			}
		case stream.SyncResponse:
			if ch := cl.waiting[x.RequestID]; ch != nil {
				ch <- x
				delete(cl.waiting, x.RequestID)
			}
		case stream.GroupStateChanged:
			cl.marker.stateChanged(x)
		case stream.AssignmentChanged:
			if fn := cl.assigned[assignKey{x.Group, x.MemberID}]; fn != nil {
				a := Assignment{Group: x.Group, MemberID: x.MemberID, Generation: x.Generation,
					Partitions: slices.Clone(x.Partitions), Added: slices.Clone(x.Added), Revoked: slices.Clone(x.Revoked)}
				cl.notes = append(cl.notes, assignmentNote{fn, a}) // passed on by run, never on the engine loop
				kick(cl.kickCh)
				if len(x.Partitions) == 0 && len(x.Added) == 0 {
					delete(cl.assigned, assignKey{x.Group, x.MemberID})
				}
			}
		}
	}
}

// await registers a request id whose answer comes as an effect.
func (cl *coordinatorLeader) await() (uint64, chan stream.Effect) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	cl.nextReq++
	id := uint64(cl.b.node)<<48 | cl.nextReq
	ch := make(chan stream.Effect, 1) // size one: effects never block the engine loop
	cl.waiting[id] = ch
	return id, ch
}

func (cl *coordinatorLeader) forget(id uint64) {
	cl.mu.Lock()
	delete(cl.waiting, id)
	cl.mu.Unlock()
}

func (cl *coordinatorLeader) propose(ctx context.Context, cmd stream.GroupCommand) (stream.GroupResult, error) {
	res, err := cl.b.engine.Propose(ctx, cl.g, stream.EncodeGroupCommand([]byte{tagGroup}, cmd))
	if err != nil {
		return stream.GroupResult{}, err
	}
	r, _ := res.Value.(*groupCmdResult)
	if r == nil {
		return stream.GroupResult{}, base.Errorf(base.CodeInternal, "broker: group command gave %T", res.Value)
	}
	return r.res, r.err
}

// GroupError is a consumer-group error: Kafka's code for the Kafka front
// end, and the base error for the others.
type GroupError struct {
	KafkaCode int16
	Err       error
}

func (e *GroupError) Error() string { return e.Err.Error() }
func (e *GroupError) Unwrap() error { return e.Err }

func groupErr(group string, e stream.GroupError) error {
	if e == stream.ErrNone {
		return nil
	}
	return &GroupError{KafkaCode: e.KafkaCode(), Err: e.Err(group)}
}

// GroupProtocol is one assignment protocol a member offers.
type GroupProtocol struct {
	Name     string
	Metadata []byte
}

// JoinGroupRequest is Kafka's JoinGroup.
type JoinGroupRequest struct {
	Group, MemberID, InstanceID, ClientID, ClientHost, ProtocolType string
	Protocols                                                       []GroupProtocol
	SessionTimeout, RebalanceTimeout                                time.Duration
	// RequireKnownMemberID is set for JoinGroup v4+ (KIP-394).
	RequireKnownMemberID bool
}

// GroupMember is one member as the group's leader sees it.
type GroupMember struct {
	MemberID, InstanceID string
	Metadata             []byte
}

// JoinGroupResponse answers a JoinGroup; Err is a *GroupError or nil.
type JoinGroupResponse struct {
	Err                                            error
	Generation                                     int32
	ProtocolType, ProtocolName, LeaderID, MemberID string
	SkipAssignment                                 bool
	Members                                        []GroupMember // for the leader only
}

// SyncGroupRequest is Kafka's SyncGroup.
type SyncGroupRequest struct {
	Group, MemberID, InstanceID string
	Generation                  int32
	ProtocolType, ProtocolName  string
	Assignments                 map[string][]byte // from the leader: member id → assignment
}

// SyncGroupResponse answers a SyncGroup; Err is a *GroupError or nil.
type SyncGroupResponse struct {
	Err                        error
	ProtocolType, ProtocolName string
	Assignment                 []byte
}

// CommittedOffset is a consumer group's position on a partition.
type CommittedOffset struct {
	Offset      int64
	LeaderEpoch int32
	Metadata    string
	CommitTime  time.Time
}

// Assignment tells a server-assigned member its partitions.
type Assignment struct {
	Group, MemberID string
	Generation      int32
	Partitions      []int32
	Added, Revoked  []int32
}

// coordinatorFor returns the coordinator leader runtime of a consumer
// group on this node. When this node holds a replica of the coordinator's
// group and that group is still loading (after a restart: the controller
// or the group replaying, the group not open or electing, its leader
// runtime not started), it waits for it, at most
// BrokerCoordinatorLoadWaitMax within ctx, and then answers a
// *GroupError with Kafka's COORDINATOR_LOAD_IN_PROGRESS (base code
// CodeUnavailable), as Kafka's coordinator does while it loads its
// groups. Another node leading it, or a coordinator without a replica
// here, is CodeNotLeader naming the leader it knows (Kafka:
// NOT_COORDINATOR; clients ask FindCoordinator again).
func (b *Broker) coordinatorFor(ctx context.Context, group string) (*coordinatorLeader, error) {
	if group == "" || len(group) > base.GroupIDBytesMax {
		return nil, &GroupError{KafkaCode: stream.ErrInvalidGroupID.KafkaCode(), Err: stream.ErrInvalidGroupID.Err(group)}
	}
	wctx, cancel := base.WithTimeout(ctx, b.clock, base.BrokerCoordinatorLoadWaitMax)
	defer cancel()
	p, err := b.coordinatorPlacement(wctx, group)
	if err != nil {
		return nil, b.coordinatorLoading(ctx, group, err)
	}
	g := GroupID(p.Group)
	if !slices.Contains(p.Replicas, controller.NodeID(b.node)) {
		return nil, b.notCoordinator(group, g, b.knownLeader(g))
	}
	lead, err := b.awaitLeader(wctx, g, 0)
	if err != nil {
		return nil, b.coordinatorLoading(ctx, group, err)
	}
	if lead != b.node {
		return nil, b.notCoordinator(group, g, lead)
	}
	if cl := b.coordinatorLeaderOf(g); cl != nil {
		return cl, nil
	}
	// The runtime stopped since awaitLeader saw it: the leadership is
	// moving.
	return nil, b.coordinatorLoading(ctx, group, base.Errorf(base.CodeUnavailable, "broker: the coordinator's leader runtime stopped"))
}

// coordinatorPlacement returns the placement of group's coordinator,
// waiting (bounded by ctx) while the controller has not replayed the
// bootstrap.
func (b *Broker) coordinatorPlacement(ctx context.Context, group string) (controller.Placement, error) {
	for {
		changed := b.ctrl.changed()
		p, err := b.coordinatorOf(group)
		if err == nil {
			return p, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return p, err
		}
	}
}

// coordinatorOf returns the placement of group's coordinator as this
// node's controller replica has it now; the error is the controller's
// (no coordinators before the bootstrap is applied).
func (b *Broker) coordinatorOf(group string) (p controller.Placement, err error) {
	b.ctrl.read(func(c *controller.Controller) { p, err = c.CoordinatorFor(group) })
	return p, err
}

// coordinatorLoading is the answer of a coordinator still loading once the
// wait for it is over: the caller's own ctx ending keeps its error.
func (b *Broker) coordinatorLoading(ctx context.Context, group string, err error) error {
	if ctx.Err() != nil || base.CodeOf(err) == base.CodeStopped {
		return err
	}
	return &GroupError{KafkaCode: stream.ErrCoordinatorLoadInProgress.KafkaCode(),
		Err: base.Errorf(base.CodeUnavailable, "broker: the coordinator of group %q is still loading on node %d: %w", group, b.node, err)}
}

func (b *Broker) notCoordinator(group string, g GroupID, lead NodeID) error {
	return base.Errorf(base.CodeNotLeader, "broker: node %d is not the coordinator of group %q: %w", b.node, group, leaderErr(g, lead))
}

// CoordinatorNode returns the node leading the coordinator of a consumer
// group (Kafka FindCoordinator), 0 when unknown.
func (b *Broker) CoordinatorNode(group string) NodeID {
	p, err := b.coordinatorOf(group)
	if err != nil {
		return 0
	}
	if lead := b.knownLeader(GroupID(p.Group)); lead != 0 {
		return lead
	}
	return NodeID(p.Preferred)
}

// JoinGroup runs Kafka's JoinGroup on the group's coordinator (which must
// be this node's: CodeNotLeader otherwise). The answer may wait for the
// rebalance to complete: the call blocks until answered or ctx ends.
func (c *Conn) JoinGroup(ctx context.Context, req JoinGroupRequest) (JoinGroupResponse, error) {
	if err := c.usable(); err != nil {
		return JoinGroupResponse{}, err
	}
	cl, err := c.b.coordinatorFor(ctx, req.Group)
	if err != nil {
		return JoinGroupResponse{}, err
	}
	id, ch := cl.await()
	defer cl.forget(id)
	cmd := stream.JoinGroup{Now: c.b.nowMs(), RequestID: id, Group: req.Group, MemberID: req.MemberID,
		InstanceID: req.InstanceID, ClientID: req.ClientID, ClientHost: req.ClientHost, ProtocolType: req.ProtocolType,
		SessionMs: int32(req.SessionTimeout.Milliseconds()), RebalanceMs: int32(req.RebalanceTimeout.Milliseconds()),
		RequireKnownMemberID: req.RequireKnownMemberID, NewMemberID: newMemberID(req.ClientID)}
	for _, p := range req.Protocols {
		cmd.Protocols = append(cmd.Protocols, stream.Protocol{Name: p.Name, Metadata: p.Metadata})
	}
	if _, err := cl.propose(ctx, cmd); err != nil {
		return JoinGroupResponse{}, err
	}
	select {
	case e := <-ch:
		x := e.(stream.JoinResponse)
		out := JoinGroupResponse{Err: groupErr(req.Group, x.Err), Generation: x.Generation, ProtocolType: x.ProtocolType,
			ProtocolName: x.ProtocolName, LeaderID: x.LeaderID, MemberID: x.MemberID, SkipAssignment: x.SkipAssignment}
		for _, m := range x.Members {
			out.Members = append(out.Members, GroupMember{MemberID: m.MemberID, InstanceID: m.InstanceID, Metadata: m.Metadata})
		}
		return out, nil
	case <-ctx.Done():
		return JoinGroupResponse{}, base.Errorf(base.CodeTimeout, "broker: JoinGroup not answered: %w", ctx.Err())
	}
}

// newMemberID draws a member id as Kafka does: client id, '-', random.
func newMemberID(clientID string) string {
	var b [16]byte
	if _, err := crand.Read(b[:]); err != nil {
		base.Bugf("crypto/rand failed: %v", err)
	}
	if len(clientID) > base.GroupIDBytesMax-40 {
		clientID = clientID[:base.GroupIDBytesMax-40]
	}
	return clientID + "-" + hex.EncodeToString(b[:])
}

// SyncGroup runs Kafka's SyncGroup; it may wait for the leader's
// assignment.
func (c *Conn) SyncGroup(ctx context.Context, req SyncGroupRequest) (SyncGroupResponse, error) {
	if err := c.usable(); err != nil {
		return SyncGroupResponse{}, err
	}
	cl, err := c.b.coordinatorFor(ctx, req.Group)
	if err != nil {
		return SyncGroupResponse{}, err
	}
	id, ch := cl.await()
	defer cl.forget(id)
	cmd := stream.SyncGroup{Now: c.b.nowMs(), RequestID: id, Group: req.Group, MemberID: req.MemberID,
		InstanceID: req.InstanceID, Generation: req.Generation, ProtocolType: req.ProtocolType, ProtocolName: req.ProtocolName}
	members := make([]string, 0, len(req.Assignments))
	for m := range req.Assignments {
		members = append(members, m)
	}
	slices.Sort(members)
	for _, m := range members {
		cmd.Assignments = append(cmd.Assignments, stream.MemberAssignment{MemberID: m, Assignment: req.Assignments[m]})
	}
	if _, err := cl.propose(ctx, cmd); err != nil {
		return SyncGroupResponse{}, err
	}
	select {
	case e := <-ch:
		x := e.(stream.SyncResponse)
		return SyncGroupResponse{Err: groupErr(req.Group, x.Err), ProtocolType: x.ProtocolType,
			ProtocolName: x.ProtocolName, Assignment: x.Assignment}, nil
	case <-ctx.Done():
		return SyncGroupResponse{}, base.Errorf(base.CodeTimeout, "broker: SyncGroup not answered: %w", ctx.Err())
	}
}

// Heartbeat keeps a classic group member alive; the error is a
// *GroupError (REBALANCE_IN_PROGRESS tells the member to rejoin).
func (c *Conn) Heartbeat(ctx context.Context, group, member string, generation int32, instanceID string) error {
	cl, err := c.b.coordinatorFor(ctx, group)
	if err != nil {
		return err
	}
	x := stream.Heartbeat{Now: c.b.nowMs(), Group: group, MemberID: member, InstanceID: instanceID, Generation: generation}
	cl.fsm.mu.Lock()
	renews, verdict := cl.fsm.c.CheckHeartbeat(x)
	cl.fsm.mu.Unlock()
	if renews {
		cl.heard(x)
	}
	return groupErr(group, verdict)
}

// timePass lets time pass for the coordinator's groups at now: it renews
// the sessions of members heard from since the replicated heartbeat that
// would end, then proposes a GroupTick if one is due, and forgets the
// heartbeats of members gone.
func (cl *coordinatorLeader) timePass(now int64) {
	cl.fsm.mu.Lock()
	renewals := cl.fsm.c.Renewals(now, cl.seen)
	cl.fsm.mu.Unlock()
	cl.renew(renewals)
	cl.fsm.mu.Lock()
	due := cl.fsm.c.TickDue(now)
	cl.prune()
	cl.fsm.mu.Unlock()
	if due {
		_, _ = cl.propose(cl.ctx, stream.GroupTick{Now: now})
	}
	cl.tickedMs.Store(now)
	cl.b.activity.Signal()
}

// renew proposes the renewals all at once, so that they share the
// engine's fsyncs, and waits for their outcomes (a failure leaves the
// member to the tick, as an unanswered heartbeat would).
func (cl *coordinatorLeader) renew(hs []stream.Heartbeat) {
	var wg sync.WaitGroup
	for _, h := range hs {
		wg.Add(1)
		cl.b.engine.ProposeAsync(cl.g, stream.EncodeGroupCommand([]byte{tagGroup}, h), func(replication.Result) { wg.Done() })
	}
	wg.Wait()
}

// heard keeps an accepted heartbeat (coordinatorLeader.lastSeen).
func (cl *coordinatorLeader) heard(x stream.Heartbeat) {
	cl.seenMu.Lock()
	defer cl.seenMu.Unlock()
	k := assignKey{x.Group, x.MemberID}
	if x.Now >= cl.lastSeen[k].at {
		cl.lastSeen[k] = seenBeat{at: x.Now, generation: x.Generation}
	}
}

// seen is the time this leader last heard from a member in generation,
// startMs if it has not (Renewals' lastSeen). Called under the FSM's lock.
func (cl *coordinatorLeader) seen(group, member string, generation int32) int64 {
	cl.seenMu.Lock()
	defer cl.seenMu.Unlock()
	if b, ok := cl.lastSeen[assignKey{group, member}]; ok && b.generation == generation {
		return max(b.at, cl.startMs)
	}
	return cl.startMs
}

// prune drops the heartbeats of members gone, so that lastSeen holds at
// most one entry per member of the coordinator's groups (GroupsMax groups
// of GroupMembersMax). A renewed member's entry may stay: Renewals
// proposes nothing more for it until a later heartbeat is kept.
// Called under the FSM's lock.
func (cl *coordinatorLeader) prune() {
	cl.seenMu.Lock()
	defer cl.seenMu.Unlock()
	for k := range cl.lastSeen {
		if !cl.fsm.c.IsMember(k.group, k.member) {
			delete(cl.lastSeen, k)
		}
	}
}

// LeavingMember is one member of a LeaveGroup: by member id, or by
// group.instance.id for a static member (KIP-345), or both (the ids must
// then match: FENCED_INSTANCE_ID otherwise).
type LeavingMember struct {
	MemberID, InstanceID string
}

// LeftMember is one member's outcome in a LeaveGroup: the member id it
// resolved to (a static member leaving by instance id alone), or Err.
type LeftMember struct {
	MemberID string
	Err      error
}

// LeaveGroup removes members; the result has one outcome per member.
func (c *Conn) LeaveGroup(ctx context.Context, group string, members []LeavingMember) ([]LeftMember, error) {
	cl, err := c.b.coordinatorFor(ctx, group)
	if err != nil {
		return nil, err
	}
	cmd := stream.LeaveGroup{Now: c.b.nowMs(), Group: group}
	for _, m := range members {
		cmd.Members = append(cmd.Members, stream.LeavingMember{MemberID: m.MemberID, InstanceID: m.InstanceID})
	}
	res, err := cl.propose(ctx, cmd)
	if err != nil {
		return nil, err
	}
	out := make([]LeftMember, len(res.Leave))
	for i, e := range res.Leave {
		out[i] = LeftMember{MemberID: res.LeftMemberIDs[i], Err: groupErr(group, e)}
	}
	return out, groupErr(group, res.Err)
}

// DescribeGroup describes a consumer group from its coordinator, which
// must be this node's (errors as for JoinGroup).
func (b *Broker) DescribeGroup(ctx context.Context, group string) (stream.DescribedGroup, error) {
	cl, err := b.coordinatorFor(ctx, group)
	if err != nil {
		return stream.DescribedGroup{}, err
	}
	var d stream.DescribedGroup
	cl.fsm.mu.Lock()
	d = cl.fsm.c.Describe(group)
	cl.fsm.mu.Unlock()
	return d, nil
}

// ListGroups lists the consumer groups of the coordinators this node
// leads.
func (b *Broker) ListGroups() []stream.ListedGroup {
	b.mu.Lock()
	var fsms []*coordinatorFSM
	for _, g := range b.groups {
		if f, ok := g.fsm.(*coordinatorFSM); ok && f.leader.Load() != nil {
			fsms = append(fsms, f)
		}
	}
	b.mu.Unlock()
	var out []stream.ListedGroup
	for _, f := range fsms {
		f.mu.Lock()
		out = append(out, f.c.List()...)
		f.mu.Unlock()
	}
	slices.SortFunc(out, func(a, b stream.ListedGroup) int {
		switch {
		case a.Group < b.Group:
			return -1
		case a.Group > b.Group:
			return 1
		}
		return 0
	})
	return out
}

// DeleteGroup deletes a consumer group and its committed offsets (Kafka
// DeleteGroups): the coordinator drops the group, which must have no
// members (NON_EMPTY_GROUP), then the group's offsets are deleted from
// every partition of the tenant holding one. A group the coordinator does
// not know but that has committed offsets (a standalone consumer's, as
// Kafka keeps such groups) is deleted too; with neither it is
// GROUP_ID_NOT_FOUND. A failure after the coordinator dropped the group
// leaves some offsets: calling again deletes the rest.
func (c *Conn) DeleteGroup(ctx context.Context, group string) error {
	cl, err := c.b.coordinatorFor(ctx, group)
	if err != nil {
		return err
	}
	res, err := cl.propose(ctx, stream.DeleteGroup{Now: c.b.nowMs(), Group: group})
	if err != nil {
		return err
	}
	if res.Err != stream.ErrNone && res.Err != stream.ErrGroupIDNotFound {
		return groupErr(group, res.Err)
	}
	found, err := c.deleteGroupOffsets(ctx, group)
	if err != nil {
		return err
	}
	if res.Err == stream.ErrGroupIDNotFound && !found {
		return groupErr(group, res.Err)
	}
	return nil
}

// JoinAssigned joins a server-assigned group over a stream's partitions
// (for protocols without a client-side assignor): the coordinator assigns
// partitions stickily and onAssign is told every change, from a broker
// goroutine. Keep the member alive with AssignedHeartbeat within
// sessionTimeout; LeaveAssigned removes it.
func (c *Conn) JoinAssigned(ctx context.Context, group, streamName, memberID string, sessionTimeout time.Duration, onAssign func(Assignment)) error {
	if err := c.Authorize(ActionRead, EntityStream, streamName); err != nil {
		return err
	}
	s, err := c.b.lookupStream(c.p.Tenant, streamName)
	if err != nil {
		return err
	}
	cl, err := c.b.coordinatorFor(ctx, group)
	if err != nil {
		return err
	}
	cl.mu.Lock()
	cl.assigned[assignKey{group, memberID}] = onAssign
	cl.mu.Unlock()
	res, err := cl.propose(ctx, stream.AssignJoin{Now: c.b.nowMs(), Group: group, MemberID: memberID,
		SessionMs: int32(sessionTimeout.Milliseconds()), Partitions: int32(len(s.Partitions))})
	if err == nil {
		err = groupErr(group, res.Err)
	}
	if err != nil {
		cl.mu.Lock()
		delete(cl.assigned, assignKey{group, memberID})
		cl.mu.Unlock()
	}
	return err
}

// AssignedHeartbeat keeps a server-assigned member alive.
func (c *Conn) AssignedHeartbeat(ctx context.Context, group, memberID string) error {
	cl, err := c.b.coordinatorFor(ctx, group)
	if err != nil {
		return err
	}
	res, err := cl.propose(ctx, stream.AssignHeartbeat{Now: c.b.nowMs(), Group: group, MemberID: memberID})
	if err != nil {
		return err
	}
	return groupErr(group, res.Err)
}

// LeaveAssigned removes a server-assigned member; its partitions go to
// the others.
func (c *Conn) LeaveAssigned(ctx context.Context, group, memberID string) error {
	cl, err := c.b.coordinatorFor(ctx, group)
	if err != nil {
		return err
	}
	res, err := cl.propose(ctx, stream.AssignLeave{Now: c.b.nowMs(), Group: group, MemberID: memberID})
	if err != nil {
		return err
	}
	return groupErr(group, res.Err)
}

// CommitOffsets records a group's positions (Kafka OffsetCommit): the
// coordinator validates the member and generation, then each partition's
// group stores its offset (replicated). The result has an entry for every
// partition: nil or its error.
func (c *Conn) CommitOffsets(ctx context.Context, group string, generation int32, member, instanceID string,
	offsets map[PartitionRef]CommittedOffset) map[PartitionRef]error {
	out := make(map[PartitionRef]error, len(offsets))
	fail := func(err error) map[PartitionRef]error {
		for p := range offsets {
			out[p] = err
		}
		return out
	}
	cl, err := c.b.coordinatorFor(ctx, group)
	if err != nil {
		return fail(err)
	}
	cl.fsm.mu.Lock()
	verdict := cl.fsm.c.ValidateCommit(group, member, instanceID, generation)
	cl.fsm.mu.Unlock()
	if err := groupErr(group, verdict); err != nil {
		return fail(err)
	}
	for p, off := range offsets {
		g, _, err := c.partitionOf(p, ActionRead)
		if err == nil {
			cmd := stream.CommitOffset{Now: c.b.nowMs(), Group: group, Offset: off.Offset, LeaderEpoch: off.LeaderEpoch, Metadata: off.Metadata}
			err = c.b.proposePartition(ctx, g, cmd)
		}
		if err == nil && member != "" && cl.marker.noteCommit(group, g) {
			c.b.markActive(ctx, g, group)
		}
		out[p] = err
	}
	return out
}

// markActive tells partition group g that group has members, for a
// commit whose partition the coordinator's leader could not track
// (BrokerGroupMarksMax). The commit itself succeeded: a failure is
// logged, and the offset then expires as a standalone consumer's would.
func (b *Broker) markActive(ctx context.Context, g GroupID, group string) {
	if err := b.proposePartition(ctx, g, stream.MarkGroup{Now: b.nowMs(), Group: group}); err != nil {
		b.log.Warn("broker: marking a consumer group's offset as in use failed", "group", group, "partition_group", g, "err", err)
	}
}

// proposePartition proposes a stream command to a partition's leader,
// here or forwarded.
func (b *Broker) proposePartition(ctx context.Context, g GroupID, cmd stream.Command) error {
	out, err := b.propose(ctx, g, stream.EncodeCommand([]byte{tagPartition}, cmd))
	if err != nil {
		return err
	}
	if out.local != nil {
		if e, ok := out.local.(interface{ Err() error }); ok {
			return e.Err()
		}
		return nil
	}
	return out.err
}

// FetchOffsets returns a group's committed offsets (Kafka OffsetFetch),
// read after a read through each partition's group: from its replica on
// this node, or, for a partition without one (a cluster), from a node
// that has one. Partitions without a committed offset are absent.
func (c *Conn) FetchOffsets(ctx context.Context, group string, parts []PartitionRef) (map[PartitionRef]CommittedOffset, error) {
	out := map[PartitionRef]CommittedOffset{}
	for _, p := range parts {
		g, _, err := c.partitionOf(p, ActionRead)
		if err != nil {
			return nil, err
		}
		if err := c.b.waitGroupReady(ctx, g); err != nil {
			return nil, err
		}
		off, found, err := c.b.fwd.fetchOffset(ctx, g, group)
		if err != nil {
			return nil, err
		}
		if found {
			out[p] = off
		}
	}
	return out, nil
}

// localCommittedOffset reads group's committed offset on partition group
// g from its replica on this node, after a read through the group so
// that it sees every commit acknowledged before the call. A node without
// a replica answers CodeNotLeader.
func (b *Broker) localCommittedOffset(ctx context.Context, g GroupID, group string) (CommittedOffset, bool, error) {
	lg := b.group(g)
	if lg == nil {
		return CommittedOffset{}, false, base.Errorf(base.CodeNotLeader, "broker: node %d has no replica of group %d: %w",
			b.node, g, leaderErr(g, b.otherLeader(g)))
	}
	if _, err := b.engine.ReadIndex(ctx, g); err != nil {
		return CommittedOffset{}, false, err
	}
	var off CommittedOffset
	var found bool
	lg.fsm.(*partitionFSM).with(func(pp *stream.Partition) {
		info, ok := pp.CommittedOffset(group)
		if ok {
			off = CommittedOffset{Offset: info.Offset, LeaderEpoch: info.LeaderEpoch, Metadata: info.Metadata,
				CommitTime: time.UnixMilli(info.CommitMs)}
		}
		found = ok
	})
	return off, found, nil
}

package broker

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/base/vfs"
	"github.com/ferry-mq/ferry/internal/controller"
	"github.com/ferry-mq/ferry/internal/stream"
)

// committedHere reads group's committed offset on partition p from this
// node's replica, without a read through the group.
func committedHere(t testing.TB, c *Conn, p PartitionRef, group string) (int64, bool) {
	t.Helper()
	g, _, err := c.partitionOf(p, ActionRead)
	if err != nil {
		t.Fatal(err)
	}
	var info stream.OffsetInfo
	ok := false
	c.b.group(g).fsm.(*partitionFSM).with(func(pp *stream.Partition) { info, ok = pp.CommittedOffset(group) })
	return info.Offset, ok
}

// waitMarked waits until the coordinator's leader has applied its marks of
// group to p and they say want (has members / empty).
func waitMarked(t testing.TB, c *Conn, p PartitionRef, group string, active bool) {
	t.Helper()
	g, _, err := c.partitionOf(p, ActionRead)
	if err != nil {
		t.Fatal(err)
	}
	mk := c.b.coordinatorHere(group).marker
	state := func() (markState, bool) {
		mk.mu.Lock()
		defer mk.mu.Unlock()
		m := mk.groups[group]
		if m == nil {
			return markState{}, false
		}
		st, ok := m.parts[g]
		return st, ok
	}
	waitFor(t, c.b, func() bool {
		st, ok := state()
		return ok && st.sent && st.active == active
	}, func() string {
		st, ok := state()
		return fmt.Sprintf("group %s on %v: mark %+v (tracked %v), want applied with active=%v", group, p, st, ok, active)
	})
}

// waitRetentionTick waits until partition p's leader has run its
// retention pass for the clock's time (proposing a tick only when it
// releases something): the leader re-arms its retention timer before the
// pass, so every advance past RetentionInterval runs exactly one pass,
// and after this wait the next advance runs the next.
func waitRetentionTick(t testing.TB, c *Conn, clock *base.FakeClock, p PartitionRef) {
	t.Helper()
	waitRetentionPass(t, c, p, clock.Now().UnixMilli())
}

// waitRetentionPass waits until partition p's leader has armed its
// retention timer (at 0) or run its pass for the time now.
func waitRetentionPass(t testing.TB, c *Conn, p PartitionRef, now int64) {
	t.Helper()
	g, _, err := c.partitionOf(p, ActionRead)
	if err != nil {
		t.Fatal(err)
	}
	f := c.b.group(g).fsm.(*partitionFSM)
	passed := func() int64 {
		if pl := f.leader.Load(); pl != nil {
			return pl.retainedMs.Load()
		}
		return 0
	}
	waitFor(t, c.b, func() bool { return passed() > 0 && passed() >= now }, func() string {
		return fmt.Sprintf("partition %v ran no retention pass at %d; its latest is at %d", p, now, passed())
	})
}

// waitTimePass is waitRetentionPass for the leader runtimes of the
// coordinator groups: armed (now 0), or their time pass run for now.
func waitTimePass(t testing.TB, b *Broker, coords []GroupID, now int64) {
	t.Helper()
	passed := func(g GroupID) int64 {
		if cl := b.coordinatorLeaderOf(g); cl != nil {
			return cl.tickedMs.Load()
		}
		return 0
	}
	waitFor(t, b, func() bool {
		for _, g := range coords {
			if p := passed(g); p == 0 || p < now {
				return false
			}
		}
		return true
	}, func() string { return fmt.Sprintf("the coordinators %v ran no time pass at %d", coords, now) })
}

// advanceWhile moves the fake clock by step (more than the retention
// interval), waits for p's retention tick and calls each after every
// step, until done reports true or limit has passed (then it fails).
func advanceWhile(t testing.TB, c *Conn, clock *base.FakeClock, p PartitionRef, step, limit time.Duration, each func(), done func() bool) {
	t.Helper()
	waitRetentionPass(t, c, p, 0) // an advance before the timer is armed would not fire it
	start := clock.Now()
	for !done() {
		if clock.Now().Sub(start) > limit {
			t.Fatalf("still waiting after the clock moved %v", limit)
		}
		clock.Advance(step)
		waitRetentionTick(t, c, clock, p)
		each()
	}
}

// TestOffsetsOfAGroupWithMembersOutliveTheRetentionUntilItEmpties pins
// KIP-211 expiry: a group that keeps its members but never commits again
// (it consumes a quiet partition) keeps its offsets past
// offsets.retention, while a standalone consumer's commit made at the same
// time expires; once the group empties, its offsets expire retention
// after that moment. Before the coordinator told the partitions (MarkGroup),
// both expired 7 days after the commit.
func TestOffsetsOfAGroupWithMembersOutliveTheRetentionUntilItEmpties(t *testing.T) {
	b, clock := fakeNode(t)
	c := guestConn(t, b)
	ctx := testCtx(t)
	if err := c.DeclareStream(ctx, StreamSpec{Name: "quiet", Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	p := PartitionRef{Stream: "quiet"}
	if err := c.JoinAssigned(ctx, "live", "quiet", "m1", base.GroupSessionTimeoutMax, func(Assignment) {}); err != nil {
		t.Fatalf("JoinAssigned: %v", err)
	}
	if err := c.CommitOffsets(ctx, "live", 1, "m1", "", map[PartitionRef]CommittedOffset{p: {Offset: 5, LeaderEpoch: -1}})[p]; err != nil {
		t.Fatalf("the member's commit: %v", err)
	}
	if err := c.CommitOffsets(ctx, "solo", -1, "", "", map[PartitionRef]CommittedOffset{p: {Offset: 3, LeaderEpoch: -1}})[p]; err != nil {
		t.Fatalf("the standalone commit: %v", err)
	}
	waitMarked(t, c, p, "live", true)

	retention := base.StreamOffsetsRetentionDefault
	step := 10 * time.Minute // a third of the member's session timeout
	heartbeat := func() {
		if err := c.AssignedHeartbeat(ctx, "live", "m1"); err != nil {
			t.Fatalf("heartbeat at %v: %v", clock.Now(), err)
		}
	}
	soloGone := func() bool { _, ok := committedHere(t, c, p, "solo"); return !ok }
	committedAt := clock.Now()
	advanceWhile(t, c, clock, p, step, retention+time.Hour, heartbeat, soloGone)
	if age := clock.Now().Sub(committedAt); age < retention {
		t.Fatalf("the standalone offset expired %v after its commit, before the retention of %v", age, retention)
	}
	if off, ok := committedHere(t, c, p, "live"); !ok || off != 5 {
		t.Fatalf("a group with a member: offset %d (present %v) %v after its commit; want 5 kept", off, ok, clock.Now().Sub(committedAt))
	}

	if err := c.LeaveAssigned(ctx, "live", "m1"); err != nil {
		t.Fatalf("LeaveAssigned: %v", err)
	}
	emptiedAt := clock.Now()
	waitMarked(t, c, p, "live", false)
	liveGone := func() bool { _, ok := committedHere(t, c, p, "live"); return !ok }
	advanceWhile(t, c, clock, p, step, retention+time.Hour, func() {}, liveGone)
	if age := clock.Now().Sub(emptiedAt); age < retention {
		t.Errorf("the emptied group's offset expired %v after it emptied, before the retention of %v", age, retention)
	}
}

// TestAMemberCommitPastTheMarksBoundIsMarkedAtEachCommit pins
// BrokerGroupMarksMax: a partition the coordinator's leader remembers is
// marked once (one more log entry after the first commit only); one past
// the bound gets its mark right after every commit.
func TestAMemberCommitPastTheMarksBoundIsMarkedAtEachCommit(t *testing.T) {
	b := openNode(t, nodeOpts{})
	c := guestConn(t, b)
	ctx := testCtx(t)
	if err := c.DeclareStream(ctx, StreamSpec{Name: "two", Partitions: 2}); err != nil {
		t.Fatal(err)
	}
	mk := b.coordinatorHere("g").marker
	mk.mu.Lock()
	mk.max = 1
	mk.mu.Unlock()
	if err := c.JoinAssigned(ctx, "g", "two", "m", base.GroupSessionTimeoutMax, func(Assignment) {}); err != nil {
		t.Fatalf("JoinAssigned: %v", err)
	}
	p0, p1 := PartitionRef{Stream: "two"}, PartitionRef{Stream: "two", Partition: 1}
	// A first command makes each partition count the Raft entries of its
	// creation, so that the figures below count only what follows.
	primer := map[PartitionRef]CommittedOffset{p0: {Offset: 0, LeaderEpoch: -1}, p1: {Offset: 0, LeaderEpoch: -1}}
	for p, err := range c.CommitOffsets(ctx, "primer", -1, "", "", primer) {
		if err != nil {
			t.Fatalf("priming %v: %v", p, err)
		}
	}
	growth := func(p PartitionRef, offset int64) int64 {
		before := logEnd(t, c, p)
		if err := c.CommitOffsets(ctx, "g", 1, "m", "", map[PartitionRef]CommittedOffset{p: {Offset: offset, LeaderEpoch: -1}})[p]; err != nil {
			t.Fatalf("commit to %v: %v", p, err)
		}
		if p == p0 {
			waitMarked(t, c, p0, "g", true)
		}
		after := logEnd(t, c, p)
		return after - before
	}
	if got := growth(p0, 1); got != 2 {
		t.Errorf("first commit to the tracked partition: its log grew by %d entries, want 2 (commit, mark)", got)
	}
	if got := growth(p0, 2); got != 1 {
		t.Errorf("second commit to the tracked partition: its log grew by %d entries, want 1 (commit)", got)
	}
	for i := range 2 {
		if got := growth(p1, int64(i+1)); got != 2 {
			t.Errorf("commit %d to the partition past the bound: its log grew by %d entries, want 2 (commit, mark)", i+1, got)
		}
	}
	mk.mu.Lock()
	tracked := mk.tracked
	mk.mu.Unlock()
	if tracked != 1 {
		t.Errorf("tracked pairs = %d, want the bound, 1", tracked)
	}
}

// TestOffsetsCommittedBeforeTheGroupHadMembersAreMarkedWhenItGetsOne: a
// membership change reaches offsets the coordinator's leader did not see
// committed (here a standalone commit under the group's id): the leader
// finds them on the partitions with a replica on its node.
func TestOffsetsCommittedBeforeTheGroupHadMembersAreMarkedWhenItGetsOne(t *testing.T) {
	b := openNode(t, nodeOpts{})
	c := guestConn(t, b)
	ctx := testCtx(t)
	if err := c.DeclareStream(ctx, StreamSpec{Name: "s", Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	p := PartitionRef{Stream: "s"}
	if err := c.CommitOffsets(ctx, "late", -1, "", "", map[PartitionRef]CommittedOffset{p: {Offset: 7, LeaderEpoch: -1}})[p]; err != nil {
		t.Fatalf("standalone commit: %v", err)
	}
	if err := c.JoinAssigned(ctx, "late", "s", "m", base.GroupSessionTimeoutMax, func(Assignment) {}); err != nil {
		t.Fatalf("JoinAssigned: %v", err)
	}
	waitMarked(t, c, p, "late", true)
}

// TestANewCoordinatorLeaderMarksTheGroupsItFindsWithMembers: after a
// restart the coordinator's new leader marks the offsets of every group
// that has members once, since a mark in flight when the previous leader
// stopped (or an offset committed by a Ferry that did not mark) would
// otherwise leave them expiring as a standalone consumer's.
func TestANewCoordinatorLeaderMarksTheGroupsItFindsWithMembers(t *testing.T) {
	fs := vfs.NewMem()
	b := openNode(t, nodeOpts{fs: fs})
	c := guestConn(t, b)
	ctx := testCtx(t)
	if err := c.DeclareStream(ctx, StreamSpec{Name: "s", Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	p := PartitionRef{Stream: "s"}
	if err := c.JoinAssigned(ctx, "kept", "s", "m", base.GroupSessionTimeoutMax, func(Assignment) {}); err != nil {
		t.Fatalf("JoinAssigned: %v", err)
	}
	if err := c.CommitOffsets(ctx, "kept", 1, "m", "", map[PartitionRef]CommittedOffset{p: {Offset: 2, LeaderEpoch: -1}})[p]; err != nil {
		t.Fatalf("commit: %v", err)
	}
	waitMarked(t, c, p, "kept", true)
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	b = openNode(t, nodeOpts{fs: fs})
	c = guestConn(t, b)
	waitMarked(t, c, p, "kept", true)
}

// An idle stream partition and idle coordinators write nothing: the
// partition's retention pass and the coordinators' time pass propose a
// tick only when it would change something. Before, every partition
// appended a control batch (an offset, an fsync, a wake-up of every long
// poll) each RetentionInterval, and every coordinator one each
// GroupTickInterval, forever.
func TestIdlePartitionsAndCoordinatorsProposeNoTicks(t *testing.T) {
	b, clock := fakeNode(t)
	c := guestConn(t, b)
	if err := c.DeclareStream(testCtx(t), StreamSpec{Name: "idle", Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	p := PartitionRef{Stream: "idle"}
	g, _, err := c.partitionOf(p, ActionRead)
	if err != nil {
		t.Fatal(err)
	}
	var coords []GroupID
	b.ctrl.read(func(c *controller.Controller) {
		for _, cp := range c.Coordinators() {
			coords = append(coords, GroupID(cp.Group))
		}
	})
	waitRetentionPass(t, c, p, 0) // the timers armed before the first advance
	waitTimePass(t, b, coords, 0)
	clock.Advance(b.cfg.RetentionInterval)
	waitRetentionTick(t, c, clock, p) // the first pass after the declaration (a Configure may precede it)
	groups := append([]GroupID{g}, coords...)
	last := func() []uint64 {
		var idx []uint64
		for _, g := range groups {
			st, err := b.engine.Status(g)
			if err != nil {
				t.Fatal(err)
			}
			idx = append(idx, st.LastIndex)
		}
		return idx
	}
	before := last()
	for range 10 {
		clock.Advance(b.cfg.RetentionInterval)
		waitRetentionTick(t, c, clock, p)
		waitTimePass(t, b, coords, clock.Now().UnixMilli())
	}
	if after := last(); !slices.Equal(after, before) {
		t.Fatalf("last log indexes of the partition and coordinators after 10 idle intervals: %v, want %v unchanged", after, before)
	}
}

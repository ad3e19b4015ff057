package broker

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// advanceUntil moves the fake clock in steps until done is closed: a pump
// for calls that wait for time to pass (a rebalance delay). Between
// steps it waits for the node to react, or a millisecond when a step
// fired no timer.
func advanceUntil(t testing.TB, b *Broker, clock interface{ Advance(time.Duration) }, step time.Duration, done <-chan struct{}) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for {
		select {
		case <-done:
			return
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the awaited call did not complete")
		}
		act := b.activity.Changed()
		clock.Advance(step)
		select {
		case <-act:
		case <-done:
		case <-time.After(time.Millisecond):
		}
	}
}

func TestClassicConsumerGroupJoinSyncCommitFetch(t *testing.T) {
	b, clock := fakeNode(t)
	c := guestConn(t, b)
	ctx := testCtx(t)
	if err := c.DeclareStream(ctx, StreamSpec{Name: "orders", Partitions: 2}); err != nil {
		t.Fatal(err)
	}
	type joined struct {
		r   JoinGroupResponse
		err error
	}
	ch := make(chan joined, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		r, err := c.JoinGroup(ctx, JoinGroupRequest{Group: "g1", ClientID: "cli", ProtocolType: "consumer",
			Protocols: []GroupProtocol{{Name: "range", Metadata: []byte("sub")}}, SessionTimeout: 10 * time.Second,
			RebalanceTimeout: 10 * time.Second})
		ch <- joined{r, err}
	}()
	advanceUntil(t, b, clock, 500*time.Millisecond, done)
	j := <-ch
	if j.err != nil || j.r.Err != nil {
		t.Fatalf("JoinGroup: %+v %v", j.r, j.err)
	}
	if j.r.LeaderID != j.r.MemberID || j.r.Generation != 1 || len(j.r.Members) != 1 || j.r.ProtocolName != "range" {
		t.Fatalf("JoinGroup answer: %+v; want this member leading generation 1 with range", j.r)
	}
	sr, err := c.SyncGroup(ctx, SyncGroupRequest{Group: "g1", MemberID: j.r.MemberID, Generation: 1,
		ProtocolType: "consumer", ProtocolName: "range", Assignments: map[string][]byte{j.r.MemberID: []byte("all")}})
	if err != nil || sr.Err != nil || string(sr.Assignment) != "all" {
		t.Fatalf("SyncGroup: %+v %v", sr, err)
	}
	if err := c.Heartbeat(ctx, "g1", j.r.MemberID, 1, ""); err != nil {
		t.Fatalf("Heartbeat: %v", err)
	}
	var ge *GroupError
	if err := c.Heartbeat(ctx, "g1", j.r.MemberID, 7, ""); !errors.As(err, &ge) || ge.KafkaCode != 22 {
		t.Fatalf("Heartbeat with a stale generation: %v, want ILLEGAL_GENERATION (22)", err)
	}
	p0, p1 := PartitionRef{Stream: "orders", Partition: 0}, PartitionRef{Stream: "orders", Partition: 1}
	errs := c.CommitOffsets(ctx, "g1", 1, j.r.MemberID, "", map[PartitionRef]CommittedOffset{
		p0: {Offset: 42, LeaderEpoch: -1, Metadata: "m"}, p1: {Offset: 7, LeaderEpoch: -1}})
	for p, err := range errs {
		if err != nil {
			t.Fatalf("commit %v: %v", p, err)
		}
	}
	errs = c.CommitOffsets(ctx, "g1", 0, "stranger", "", map[PartitionRef]CommittedOffset{p0: {Offset: 1}})
	if !errors.As(errs[p0], &ge) || ge.KafkaCode != 25 {
		t.Fatalf("commit by an unknown member: %v, want UNKNOWN_MEMBER_ID (25)", errs[p0])
	}
	got, err := c.FetchOffsets(ctx, "g1", []PartitionRef{p0, p1})
	if err != nil || got[p0].Offset != 42 || got[p0].Metadata != "m" || got[p1].Offset != 7 {
		t.Fatalf("FetchOffsets: %+v %v; want 42 (m) and 7", got, err)
	}
	if _, err := c.LeaveGroup(ctx, "g1", []LeavingMember{{MemberID: j.r.MemberID}}); err != nil {
		t.Fatalf("LeaveGroup: %v", err)
	}
	d, err := b.DescribeGroup(ctx, "g1")
	if err != nil || d.State.String() != "Empty" {
		t.Fatalf("after the last member left: %+v %v, want Empty", d, err)
	}
}

func TestServerSideAssignmentSpreadsPartitions(t *testing.T) {
	b, clock := fakeNode(t)
	_ = clock
	c := guestConn(t, b)
	ctx := testCtx(t)
	if err := c.DeclareStream(ctx, StreamSpec{Name: "logs", Partitions: 4}); err != nil {
		t.Fatal(err)
	}
	got := map[string]chan Assignment{"m1": make(chan Assignment, 16), "m2": make(chan Assignment, 16)}
	for _, m := range []string{"m1", "m2"} {
		if err := c.JoinAssigned(ctx, "readers", "logs", m, 30*time.Second, func(a Assignment) { got[a.MemberID] <- a }); err != nil {
			t.Fatalf("JoinAssigned(%s): %v", m, err)
		}
	}
	latest := func(m string) Assignment {
		var a Assignment
		select {
		case a = <-got[m]:
		case <-time.After(testTimeout):
			t.Fatalf("no assignment for %s", m)
		}
		for {
			select {
			case a = <-got[m]:
			default:
				return a
			}
		}
	}
	a1 := latest("m1")
	if len(a1.Partitions) == 4 {
		a1 = latest("m1") // the second member's join rebalanced
	}
	a2 := latest("m2")
	if len(a1.Partitions) != 2 || len(a2.Partitions) != 2 {
		t.Fatalf("assignments: m1 %v, m2 %v; want two partitions each", a1.Partitions, a2.Partitions)
	}
	if err := c.LeaveAssigned(ctx, "readers", "m2"); err != nil {
		t.Fatal(err)
	}
	if a := latest("m1"); len(a.Partitions) != 4 {
		t.Fatalf("after m2 left, m1 has %v, want all four", a.Partitions)
	}
}

// TestHeartbeatsStayInMemoryAndStillKeepTheSession: the coordinator's
// leader answers heartbeats without writing them, and proposes a renewal
// only when a member's replicated session would end. A member that keeps
// heartbeating stays, over many sessions, at far less than a log entry a
// heartbeat; one that stops is removed a session after its last
// heartbeat, not before.
func TestHeartbeatsStayInMemoryAndStillKeepTheSession(t *testing.T) {
	b, clock := fakeNode(t)
	c := guestConn(t, b)
	ctx := testCtx(t)
	const session = 10 * time.Second
	ch := make(chan JoinGroupResponse, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		r, err := c.JoinGroup(ctx, JoinGroupRequest{Group: "g", ClientID: "cli", ProtocolType: "consumer",
			Protocols: []GroupProtocol{{Name: "range"}}, SessionTimeout: session, RebalanceTimeout: session})
		if err != nil || r.Err != nil {
			t.Errorf("JoinGroup: %+v %v", r, err)
		}
		ch <- r
	}()
	advanceUntil(t, b, clock, 500*time.Millisecond, done)
	j := <-ch
	if sr, err := c.SyncGroup(ctx, SyncGroupRequest{Group: "g", MemberID: j.MemberID, Generation: j.Generation,
		ProtocolType: "consumer", ProtocolName: "range"}); err != nil || sr.Err != nil {
		t.Fatalf("SyncGroup: %+v %v", sr, err)
	}
	cp, err := b.coordinatorOf("g")
	if err != nil {
		t.Fatal(err)
	}
	cg := GroupID(cp.Group)
	lastIndex := func() uint64 {
		st, err := b.engine.Status(cg)
		if err != nil {
			t.Fatal(err)
		}
		return st.LastIndex
	}
	// step moves the clock and waits for the coordinator's time pass.
	step := func(d time.Duration) {
		clock.Advance(d)
		waitTimePass(t, b, []GroupID{cg}, clock.Now().UnixMilli())
	}
	waitTimePass(t, b, []GroupID{cg}, 0) // the timer armed before the first advance
	member := func() bool {
		d, err := b.DescribeGroup(ctx, "g")
		return err == nil && len(d.Members) == 1
	}
	before := lastIndex()
	const beats = 30 // 90 s: nine sessions
	for range beats {
		step(3 * time.Second)
		if err := c.Heartbeat(ctx, "g", j.MemberID, j.Generation, ""); err != nil {
			t.Fatalf("Heartbeat at %v: %v", clock.Now().Sub(epoch), err)
		}
	}
	if !member() {
		t.Fatalf("the member was removed while it heartbeat every 3 s with a session of %v", session)
	}
	if grew := lastIndex() - before; grew > beats/3 {
		t.Errorf("%d heartbeats added %d entries to the coordinator's log, want at most %d (a renewal a session)", beats, grew, beats/3)
	}
	for range 3 { // 9 s after the last heartbeat
		step(3 * time.Second)
		if !member() {
			t.Fatalf("the member was removed %v after its last heartbeat, within its session of %v", clock.Now().Sub(epoch)-beats*3*time.Second, session)
		}
	}
	step(3 * time.Second)
	waitFor(t, b, func() bool { return !member() }, func() string {
		return fmt.Sprintf("the member is still there 12 s after its last heartbeat, past its session of %v", session)
	})
}

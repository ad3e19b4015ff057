package replication

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/ferry-mq/ferry/internal/base"
)

func TestSingleNodeProposeCommitsAndApplies(t *testing.T) {
	c := newTestCluster(t, []NodeID{1}, nil)
	f := c.open(1, 7, []NodeID{1})
	if got := c.waitLeader(7); got != 1 {
		t.Fatalf("leader: got %d, want 1", got)
	}
	for i := range 5 {
		r := c.propose(1, 7, fmt.Sprintf("cmd-%d", i))
		if r.Err != nil {
			t.Fatalf("proposal %d: %v", i, r.Err)
		}
		if r.Value != i+1 {
			t.Errorf("proposal %d: FSM result got %v, want %d", i, r.Value, i+1)
		}
	}
	if got, want := f.datas(), []string{"cmd-0", "cmd-1", "cmd-2", "cmd-3", "cmd-4"}; !equalStrings(got, want) {
		t.Errorf("applied: got %q, want %q", got, want)
	}
}

func TestThreeNodesReplicateToEveryFSM(t *testing.T) { storeKinds(t, testThreeNodesReplicate) }

func testThreeNodesReplicate(t *testing.T, prod bool) {
	c := newTestClusterOn(t, prod, []NodeID{1, 2, 3}, nil)
	voters := []NodeID{1, 2, 3}
	for _, id := range voters {
		c.open(id, 1, voters)
	}
	lead := c.waitLeader(1)
	for i := range 10 {
		if r := c.propose(lead, 1, fmt.Sprintf("m%d", i)); r.Err != nil {
			t.Fatalf("proposal %d: %v", i, r.Err)
		}
	}
	c.runUntil("every replica applied 10 entries", 500, func() bool {
		for _, id := range voters {
			if len(c.nodes[id].fsms[1].datas()) != 10 {
				return false
			}
		}
		return true
	})
	want := c.nodes[lead].fsms[1].datas()
	for _, id := range voters {
		if got := c.nodes[id].fsms[1].datas(); !equalStrings(got, want) {
			t.Errorf("node %d applied %q, leader %q", id, got, want)
		}
	}
	follower := voters[0]
	if follower == lead {
		follower = voters[1]
	}
	r := c.propose(follower, 1, "x")
	var nl *NotLeaderError
	if base.CodeOf(r.Err) != base.CodeNotLeader || !errors.As(r.Err, &nl) || nl.Leader != lead {
		t.Errorf("proposal on follower %d: got %v, want not_leader naming %d", follower, r.Err, lead)
	}
}

func TestCrashRestartKeepsAcknowledgedEntries(t *testing.T) { storeKinds(t, testCrashRestart) }

func testCrashRestart(t *testing.T, prod bool) {
	c := newTestClusterOn(t, prod, []NodeID{1, 2, 3}, nil)
	voters := []NodeID{1, 2, 3}
	for _, id := range voters {
		c.open(id, 1, voters)
	}
	lead := c.waitLeader(1)
	var acked []string
	for i := range 20 {
		cmd := fmt.Sprintf("a%d", i)
		if r := c.propose(lead, 1, cmd); r.Err != nil {
			t.Fatalf("proposal %d: %v", i, r.Err)
		}
		acked = append(acked, cmd)
	}
	for _, id := range voters {
		c.crash(id)
	}
	for _, id := range voters {
		c.start(id)
		c.open(id, 1, voters)
	}
	lead = c.waitLeader(1)
	if r := c.propose(lead, 1, "after"); r.Err != nil {
		t.Fatalf("proposal after restart: %v", r.Err)
	}
	acked = append(acked, "after")
	c.runUntil("every replica applied everything", 1000, func() bool {
		for _, id := range voters {
			if len(c.nodes[id].fsms[1].datas()) != len(acked) {
				return false
			}
		}
		return true
	})
	for _, id := range voters {
		if got := c.nodes[id].fsms[1].datas(); !equalStrings(got, acked) {
			t.Errorf("node %d applied %q, want %q", id, got, acked)
		}
	}
}

func TestSnapshotCompactsLogAndCatchesUpLaggingFollower(t *testing.T) {
	storeKinds(t, testSnapshotCatchUp)
}

func testSnapshotCatchUp(t *testing.T, prod bool) {
	c := newTestClusterOn(t, prod, []NodeID{1, 2, 3}, func(cfg *Config) { cfg.SnapshotEntries = 10 })
	voters := []NodeID{1, 2, 3}
	for _, id := range voters {
		f := c.open(id, 1, voters)
		f.retain = 0
	}
	lead := c.waitLeader(1)
	lag := voters[0]
	if lag == lead {
		lag = voters[1]
	}
	for _, id := range voters {
		c.net.cut[[2]NodeID{id, lag}] = true
		c.net.cut[[2]NodeID{lag, id}] = true
	}
	var want []string
	for i := range 35 {
		cmd := fmt.Sprintf("s%d", i)
		if r := c.propose(lead, 1, cmd); r.Err != nil {
			t.Fatalf("proposal %d: %v", i, r.Err)
		}
		want = append(want, cmd)
	}
	c.runUntil("leader compacted its log", 200, func() bool {
		return c.nodes[lead].e.groupLogFirst(1) > 1
	})
	clear(c.net.cut)
	c.runUntil("lagging follower caught up", 3000, func() bool {
		return len(c.nodes[lag].fsms[1].datas()) == len(want)
	})
	if got := c.nodes[lag].fsms[1].datas(); !equalStrings(got, want) {
		t.Errorf("lagging follower applied %q, want %q", got, want)
	}
	if m := c.nodes[lag].e.Metrics(); m.SnapshotsInstalled == 0 {
		t.Errorf("lagging follower installed no snapshot: %+v", m)
	}
	// It restarts from its installed snapshot.
	c.crash(lag)
	c.start(lag)
	c.open(lag, 1, voters)
	c.runUntil("restarted follower restored", 500, func() bool {
		return len(c.nodes[lag].fsms[1].datas()) == len(want)
	})
}

// TestALateResultOfAnAbandonedCallReachesNoOtherCall: a call whose
// context ended gives up its waiter, which is recycled, while its callback
// may still run later; that late result must not reach a later call,
// which gets its own.
func TestALateResultOfAnAbandonedCallReachesNoOtherCall(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var late func(Result)
	r := wait(ctx, func(done func(Result)) { late = done })
	if base.CodeOf(r.Err) != base.CodeTimeout {
		t.Fatalf("abandoned call: got %v, want timeout", r.Err)
	}
	for i := range 100 {
		r := wait(context.Background(), func(done func(Result)) {
			late(Result{Index: 999}) // the abandoned call's result arrives now
			late = func(Result) {}
			done(Result{Index: uint64(i)})
		})
		if r.Index != uint64(i) {
			t.Fatalf("call %d: got the result of index %d, want its own (%d)", i, r.Index, i)
		}
	}
}

// TestASecondResultOfACallReachesNoOtherCall: if a request ever finished
// twice (a bug), its callback's second result must be dropped, not
// received by a later call that recycled the waiter (nor block the
// engine's loop on the waiter's full channel). Callbacks run on their own
// goroutines, as the loop's would, so that a wrong send cannot block the
// test.
func TestASecondResultOfACallReachesNoOtherCall(t *testing.T) {
	var callbacks sync.WaitGroup
	defer callbacks.Wait()
	for i := range 50 {
		var first func(Result)
		r := wait(context.Background(), func(done func(Result)) {
			first = done
			callbacks.Go(func() { done(Result{Index: 1}) })
		})
		if r.Index != 1 {
			t.Fatalf("round %d, first call: got the result of index %d, want its own (1)", i, r.Index)
		}
		r = wait(context.Background(), func(done func(Result)) {
			first(Result{Index: 999}) // the first call's callback runs again
			callbacks.Go(func() { done(Result{Index: 2}) })
		})
		if r.Index != 2 {
			t.Fatalf("round %d, second call: got the result of index %d, want its own (2)", i, r.Index)
		}
	}
}

// retainingNode is a one-node cluster configured by cfg whose group 1 has
// led its first election, with an FSM that retains its whole log.
func retainingNode(t *testing.T, cfg func(*Config)) (*testCluster, *listFSM) {
	t.Helper()
	c := newTestCluster(t, []NodeID{1}, cfg)
	f := c.open(1, 1, []NodeID{1})
	f.mu.Lock()
	f.retain = 1
	f.mu.Unlock()
	c.waitLeader(1)
	return c, f
}

// An FSM whose state grows with its log and which retains all of it (a
// queue filling up with no consumer) is not snapshotted every
// SnapshotEntries entries: each snapshot encodes the whole state, so that
// would be quadratic work. A snapshot waits until the log grew by
// base.RaftSnapshotLogGrowth times the last one's size, unless it lets the
// log drop SnapshotEntries entries, which it does again once the FSM stops
// retaining them (the consumer caught up).
func TestSnapshotsOfAGrowingRetainedStateAreSpacedByItsSize(t *testing.T) {
	const every = 4
	c, f := retainingNode(t, func(cfg *Config) { cfg.SnapshotEntries = every })
	n := c.nodes[1]
	cmd := strings.Repeat("x", 100)
	const entries = 200
	for i := range entries {
		if r := c.propose(1, 1, cmd); r.Err != nil {
			t.Fatalf("proposal %d: %v", i, r.Err)
		}
	}
	// The listFSM's snapshot holds every entry, so it is at least 100
	// bytes per entry applied, and the log must then grow by
	// RaftSnapshotLogGrowth (16) times that: a snapshot after 4 entries,
	// the next after about 16*4 more, not one every 4 (50 in all).
	if got := n.e.Metrics().Snapshots; got < 2 || got > 4 {
		t.Errorf("%d entries of 100 bytes, a snapshot due every %d: got %d snapshots, want 2 to 4", entries, every, got)
	}
	if m := n.e.Metrics(); m.SnapshotSeconds.Count != m.Snapshots {
		t.Errorf("snapshot durations recorded: %d, want one per snapshot (%d)", m.SnapshotSeconds.Count, m.Snapshots)
	}
	if first := n.e.groupLogFirst(1); first != 1 {
		t.Errorf("log starts at %d, want 1: the FSM retains every entry", first)
	}
	taken := n.e.Metrics().Snapshots
	st, _ := n.e.Status(1)
	f.mu.Lock()
	f.retain = st.Applied + 1
	f.mu.Unlock()
	for i := range every {
		if r := c.propose(1, 1, cmd); r.Err != nil {
			t.Fatalf("proposal %d after the release: %v", i, r.Err)
		}
	}
	c.runUntil("a snapshot that compacts the released log", 100, func() bool {
		return n.e.Metrics().Snapshots > taken && n.e.groupLogFirst(1) > st.Applied
	})
}

// An FSM that asks for a snapshot (a stream partition whose retention
// moved its start) gets one at once, though no other rule calls for it.
func TestAnFSMsRequestBringsASnapshot(t *testing.T) {
	c, f := retainingNode(t, func(cfg *Config) {
		cfg.SnapshotEntries, cfg.SnapshotBytes, cfg.SnapshotFreeBytes = 1_000_000, 1<<30, 1<<30
	})
	n := c.nodes[1]
	for i := range 20 {
		if r := c.propose(1, 1, "x"); r.Err != nil {
			t.Fatalf("proposal %d: %v", i, r.Err)
		}
	}
	released := release(t, c, f, "x")
	if got := n.e.Metrics().Snapshots; got != 0 {
		t.Fatalf("%d snapshots with no rule calling for one, want 0", got)
	}
	now, _ := n.e.Status(1)
	f.mu.Lock()
	f.requestAt = now.Applied + 1
	f.mu.Unlock()
	if r := c.propose(1, 1, "x"); r.Err != nil {
		t.Fatalf("proposal asking for a snapshot: %v", r.Err)
	}
	c.runUntil("a snapshot for the FSM's request", 100, func() bool {
		return n.e.Metrics().Snapshots == 1 && n.e.groupLogFirst(1) > released
	})
}

// A group that applied little since its last snapshot still snapshots
// when that lets its log free SnapshotFreeBytes: an FSM retained its whole
// log (a queue filling up), then let go of it (its consumers drained it)
// with only one more entry applied, and the log gives its space back.
func TestASnapshotIsTakenWhenItFreesEnoughOfTheLog(t *testing.T) {
	c, f := retainingNode(t, func(cfg *Config) {
		cfg.SnapshotEntries, cfg.SnapshotBytes, cfg.SnapshotFreeBytes = 1_000_000, 1<<30, 4000
	})
	fillAndRelease(t, c, f, strings.Repeat("x", 100))
}

// fillAndRelease proposes 60 entries of cmd to retainingNode's group,
// which retains them all (no snapshot), then releases them and waits for
// the snapshot that frees them.
func fillAndRelease(t *testing.T, c *testCluster, f *listFSM, cmd string) {
	t.Helper()
	n := c.nodes[1]
	for i := range 60 {
		if r := c.propose(1, 1, cmd); r.Err != nil {
			t.Fatalf("proposal %d: %v", i, r.Err)
		}
	}
	if got := n.e.Metrics().Snapshots; got != 0 {
		t.Fatalf("%d snapshots while the FSM retains its whole log, want 0", got)
	}
	released := release(t, c, f, cmd)
	c.runUntil("a snapshot that frees the released log", 100, func() bool {
		return n.e.Metrics().Snapshots == 1 && n.e.groupLogFirst(1) > released
	})
}

// A snapshot taken because it frees the log writes the whole state while
// its group holds its entries back, so it also waits until it frees at
// least the last snapshot's size: a queue draining a long backlog otherwise rewrote its
// state every SnapshotFreeBytes of log, work quadratic in the backlog.
func TestASnapshotThatFreesTheLogFreesAtLeastWhatItWrites(t *testing.T) {
	c, f := retainingNode(t, func(cfg *Config) {
		cfg.SnapshotEntries, cfg.SnapshotBytes, cfg.SnapshotFreeBytes = 1_000_000, 1<<30, 1000
	})
	n := c.nodes[1]
	cmd := strings.Repeat("x", 100)
	fillAndRelease(t, c, f, cmd)
	// That snapshot holds 61 entries of over 100 bytes each (6 KB). The
	// FSM retains nothing now, so every 5 entries free 1,000 bytes of log
	// (about 200 bytes an entry there); the next snapshot waits until the
	// log freed outweighs the state, about 33 entries.
	f.mu.Lock()
	f.retain = 0
	f.mu.Unlock()
	for i := 1; ; i++ {
		if r := c.propose(1, 1, cmd); r.Err != nil {
			t.Fatalf("proposal %d after the snapshot: %v", i, r.Err)
		}
		if got := n.e.Metrics().Snapshots; got > 1 {
			if i < 20 {
				t.Fatalf("a second snapshot after %d entries, want it to wait until the log they free outweighs the 61 of the first", i)
			}
			return
		}
		if i == 200 {
			t.Fatal("no second snapshot after 200 entries")
		}
	}
}

// release lets the FSM of retainingNode's group drop its whole log and
// proposes cmd; it returns the last index applied before.
func release(t *testing.T, c *testCluster, f *listFSM, cmd string) uint64 {
	t.Helper()
	st, _ := c.nodes[1].e.Status(1)
	f.mu.Lock()
	f.retain = st.Applied + 1
	f.mu.Unlock()
	if r := c.propose(1, 1, cmd); r.Err != nil {
		t.Fatalf("proposal after the release: %v", r.Err)
	}
	return st.Applied
}

package replication

import (
	"context"
	"fmt"
	"io"
	"path"
	"slices"
	"testing"
	"time"

	"github.com/ferry-mq/ferry/internal/base/vfs"
)

// gatedFSM is a listFSM whose Snapshot waits, once it has started, until
// the test opens the gate.
type gatedFSM struct {
	*listFSM
	entered chan struct{} // closed when Snapshot starts
	gate    chan struct{} // Snapshot waits for it
}

func (f *gatedFSM) Snapshot(w io.Writer) error {
	close(f.entered)
	<-f.gate
	return f.listFSM.Snapshot(w)
}

// A snapshot is written off the engine loop: while one group's FSM
// writes its snapshot, the other groups of the same loop go on (before,
// the whole loop waited), and the group itself holds back what commits
// meanwhile and applies it, in order, when the write ends. Goroutine
// mode, one loop: with the old behaviour group 2's proposal never
// completes while the gate is shut, and the test fails at its deadline.
func TestASnapshotWriteHoldsBackOnlyItsGroup(t *testing.T) {
	fs := vfs.NewMem()
	st, err := OpenSimpleState(fs, "/state")
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(Config{NodeID: 1, FS: fs, Dir: "/", Logs: &SimpleLogs{FS: fs, Dir: "/logs"}, State: st,
		Loops: 1, TickInterval: 10 * time.Millisecond, Logger: quiet, SnapshotEntries: 4})
	if err != nil {
		t.Fatal(err)
	}
	e.Start()
	t.Cleanup(func() { e.Stop(); st.Close() })
	gated := &gatedFSM{listFSM: &listFSM{}, entered: make(chan struct{}), gate: make(chan struct{})}
	opened := false
	t.Cleanup(func() {
		if !opened {
			close(gated.gate)
		}
	})
	if err := e.OpenGroup(1, gated, []NodeID{1}); err != nil {
		t.Fatal(err)
	}
	other := &listFSM{}
	if err := e.OpenGroup(2, other, []NodeID{1}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, g := range []GroupID{1, 2} {
		for {
			ch := e.LeadershipChanged()
			if s, err := e.Status(g); err == nil && s.IsLeader {
				break
			}
			select {
			case <-ch:
			case <-ctx.Done():
				t.Fatalf("group %d elected no leader", g)
			}
		}
	}
	// Group 1's entries (and its bootstrap) soon bring its first
	// snapshot, which stops at the gate; the last of them may be applied
	// before it or held back by it.
	var want []string
	for i := 0; ; i++ {
		cmd := fmt.Sprintf("a%d", i)
		want = append(want, cmd)
		res := make(chan Result, 1)
		e.ProposeAsync(1, []byte(cmd), func(r Result) { res <- r })
		select {
		case r := <-res:
			if r.Err != nil {
				t.Fatalf("group 1, proposal %s: %v", cmd, r.Err)
			}
			continue
		case <-gated.entered:
		case <-ctx.Done():
			t.Fatal("group 1 took no snapshot")
		}
		break
	}
	applied := len(gated.datas())
	held := make(chan Result, 1)
	e.ProposeAsync(1, []byte("held"), func(r Result) { held <- r })
	for i := range 3 {
		if _, err := e.Propose(ctx, 2, fmt.Appendf(nil, "b%d", i)); err != nil {
			t.Fatalf("group 2, proposal %d: %v", i, err)
		}
	}
	if got := other.datas(); !slices.Equal(got, []string{"b0", "b1", "b2"}) {
		t.Fatalf("group 2 applied %q while group 1 wrote its snapshot", got)
	}
	// Group 1 commits what it is given, but applies nothing until its
	// snapshot is written: the held proposal arrived before group 2's
	// first, so the iteration that completed that one synced it, and its
	// single voter committed it.
	s, err := e.Status(1)
	if err != nil {
		t.Fatal(err)
	}
	if s.Commit <= s.Applied {
		t.Errorf("group 1: commit %d, applied %d: want the held proposal committed and not applied", s.Commit, s.Applied)
	}
	select {
	case r := <-held:
		t.Fatalf("group 1 applied a proposal while its snapshot was being written: %+v", r)
	default:
	}
	if got := gated.datas(); len(got) != applied {
		t.Fatalf("group 1 applied %q while its snapshot was being written", got[applied:])
	}
	opened = true
	close(gated.gate)
	want = append(want, "held")
	select {
	case r := <-held:
		if r.Err != nil || r.Value != len(want) {
			t.Fatalf("the held proposal: %+v, want the FSM's result %d", r, len(want))
		}
	case <-ctx.Done():
		t.Fatal("the held proposal never completed after the write")
	}
	if got := gated.datas(); !slices.Equal(got, want) {
		t.Errorf("group 1 applied %q, want %q", got, want)
	}
	if m := e.Metrics(); m.Snapshots == 0 {
		t.Errorf("no snapshot counted: %+v", m)
	}
}

// A follower still writing its own snapshot when the leader's arrives
// (it fell behind the leader's log) waits for its write, applies what it
// held back, then installs the leader's, restoring it off the loop and
// holding back what commits meanwhile; its own snapshot, superseded, is
// deleted. The follower's jobs last 1,000 Steps (SnapshotSteps) unless
// something waits for them.
func TestAFollowerWritingASnapshotInstallsTheLeaders(t *testing.T) {
	const lag = NodeID(3)
	c := newTestCluster(t, []NodeID{1, 2, 3}, func(cfg *Config) {
		cfg.SnapshotEntries = 10
		if cfg.NodeID == lag {
			cfg.SnapshotSteps = 1000
		}
	})
	voters := []NodeID{1, 2, 3}
	for _, id := range voters {
		c.open(id, 1, voters)
	}
	c.nodes[1].e.Campaign(1)
	c.runUntil("node 1 leads", 2000, func() bool { return c.leader(1) == 1 })
	var want []string
	proposeAll := func(n int) {
		for range n {
			cmd := fmt.Sprintf("s%d", len(want))
			if r := c.propose(1, 1, cmd); r.Err != nil {
				t.Fatalf("proposal %s: %v", cmd, r.Err)
			}
			want = append(want, cmd)
		}
	}
	proposeAll(12)
	follower := c.nodes[lag].e.groupOf(1)
	c.runUntil("the follower starts a snapshot", 500, func() bool { return follower.job != nil })
	for _, id := range voters[:2] {
		c.net.cut[[2]NodeID{id, lag}] = true
		c.net.cut[[2]NodeID{lag, id}] = true
	}
	proposeAll(25)
	c.runUntil("the leader compacted its log", 500, func() bool {
		return c.nodes[1].e.groupLogFirst(1) > uint64(len(want))
	})
	if follower.job == nil {
		t.Fatal("the follower's snapshot write ended before the leader's snapshot could arrive")
	}
	leaderSnap := c.nodes[1].e.groupOf(1).st.snap.Index
	clear(c.net.cut)
	c.runUntil("the follower takes the leader's snapshot", 3000, func() bool { return follower.st.snap.Index >= leaderSnap })
	if follower.job == nil || c.nodes[lag].e.Metrics().SnapshotsInstalled != 0 {
		t.Fatal("the follower restored the leader's snapshot on the loop")
	}
	// While it restores, it commits what comes and applies nothing.
	applied := len(c.nodes[lag].fsms[1].datas())
	proposeAll(3)
	lead, _ := c.nodes[1].e.Status(1)
	c.runUntil("the follower commits the new entries", 500, func() bool {
		st, _ := c.nodes[lag].e.Status(1)
		return st.Commit >= lead.Commit
	})
	if got := len(c.nodes[lag].fsms[1].datas()); got != applied || follower.job == nil {
		t.Fatalf("the follower applied %d entries during its restore (had %d)", got-applied, applied)
	}
	c.runUntil("the follower installed the leader's snapshot", 3000, func() bool {
		return c.nodes[lag].e.Metrics().SnapshotsInstalled > 0
	})
	c.runUntil("the follower caught up", 3000, func() bool {
		return len(c.nodes[lag].fsms[1].datas()) == len(want)
	})
	if got := c.nodes[lag].fsms[1].datas(); !slices.Equal(got, want) {
		t.Errorf("the follower applied %q, want %q", got, want)
	}
	names, err := c.nodes[lag].fs.List(follower.dir)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(names, []string{follower.st.snap.File}) {
		t.Errorf("the follower's snapshot files: %q; want only the installed one, %s", names, follower.st.snap.File)
	}
}

// At open, a group's snapshot directory keeps only its current snapshot:
// a snapshot written but not committed when the node stopped (the write
// runs off the loop), or received and not installed, is deleted.
func TestOpenDeletesSnapshotFilesNobodyKnows(t *testing.T) {
	c := newTestCluster(t, []NodeID{1}, func(cfg *Config) { cfg.SnapshotEntries = 4 })
	c.open(1, 1, []NodeID{1})
	c.waitLeader(1)
	for i := range 6 {
		if r := c.propose(1, 1, fmt.Sprintf("c%d", i)); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	c.runUntil("a snapshot committed", 100, func() bool { return c.nodes[1].e.groupOf(1).st.snap.File != "" })
	g := c.nodes[1].e.groupOf(1)
	current, dir := g.st.snap.File, g.dir
	n := c.nodes[1]
	for _, name := range []string{"00000000000000000099-00000000000000000002.snap", "recv-00000000000000000099-00000000000000000002-7.snap", "x.snap.tmp"} {
		f, err := n.fs.Create(path.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	if err := n.fs.SyncDir(dir); err != nil {
		t.Fatal(err)
	}
	c.crash(1)
	c.start(1)
	c.open(1, 1, []NodeID{1})
	names, err := n.fs.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(names, []string{current}) {
		t.Errorf("after a restart the snapshot directory holds %q, want only %s", names, current)
	}
}

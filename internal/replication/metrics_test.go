package replication

import (
	"testing"
	"time"
)

func TestLatencyHistogramBucketsAtTheirBounds(t *testing.T) {
	var h latencyHistogram
	h.observe(100 * time.Microsecond)   // exactly the first bound: in it
	h.observe(100*time.Microsecond + 1) // just above: the second bucket
	h.observe(11 * time.Second)         // past the last bound: counted only
	h.observe(-time.Second)             // a clock step back counts as 0
	got := h.snapshot()
	if got.Counts[0] != 2 || got.Counts[1] != 1 || got.Count != 4 {
		t.Fatalf("counts %v total %d; want 2 in the first bucket, 1 in the second, 4 in all", got.Counts, got.Count)
	}
	var inBuckets uint64
	for _, n := range got.Counts {
		inBuckets += n
	}
	if inBuckets != 3 {
		t.Fatalf("%d observations in buckets, want 3 (11 s is above every bound)", inBuckets)
	}
	if want := 11.0002 + 1e-9; got.Sum < want-1e-6 || got.Sum > want+1e-6 {
		t.Fatalf("sum %v s, want %v s", got.Sum, want)
	}
}

func TestEngineMetricsCountProposalsLeaderChangesAndLatencies(t *testing.T) {
	c := newTestCluster(t, []NodeID{1}, nil)
	c.open(1, 7, []NodeID{1})
	c.waitLeader(7)
	e := c.nodes[1].e
	before := e.Metrics()
	if before.LeaderChanges != 1 {
		t.Fatalf("leader changes after the first election: %d, want 1", before.LeaderChanges)
	}
	if before.FsyncSeconds.Count == 0 {
		t.Fatalf("no fsync timed, though the election made its vote durable")
	}
	var res *Result
	e.ProposeAsync(7, []byte("x"), func(r Result) { res = &r })
	c.clock.Advance(30 * time.Millisecond) // the proposal waits 30 ms for its commit
	c.runUntil("the proposal resolved", 2000, func() bool { return res != nil })
	if res.Err != nil {
		t.Fatalf("proposal: %v", res.Err)
	}
	var failed *Result
	e.ProposeAsync(99, []byte("y"), func(r Result) { failed = &r }) // no such group
	c.runUntil("the failing proposal resolved", 2000, func() bool { return failed != nil })
	m := e.Metrics()
	if got := m.Proposals - before.Proposals; got != 2 {
		t.Errorf("proposals: %d, want 2", got)
	}
	if got := m.ProposalsFailed - before.ProposalsFailed; got != 1 {
		t.Errorf("failed proposals: %d, want 1 (the one to a missing group)", got)
	}
	if got := m.CommitSeconds.Count - before.CommitSeconds.Count; got != 2 {
		t.Errorf("commit latencies observed: %d, want 2", got)
	}
	if got := m.CommitSeconds.Sum - before.CommitSeconds.Sum; got < 0.030 {
		t.Errorf("commit latency sum grew by %v s, want at least the 30 ms the proposal waited", got)
	}
	if m.LeaderChanges != 1 {
		t.Errorf("leader changes: %d, want still 1", m.LeaderChanges)
	}
	if m.FsyncSeconds.Count <= before.FsyncSeconds.Count {
		t.Errorf("fsyncs timed: %d, want more than %d after a committed proposal", m.FsyncSeconds.Count, before.FsyncSeconds.Count)
	}
}

package replication

import (
	"testing"
	"time"

	"github.com/ferry-mq/ferry/internal/base"
)

func (c *testCluster) read(id NodeID, g GroupID, lease bool) Result {
	c.t.Helper()
	var res *Result
	c.nodes[id].e.ReadAsync(g, lease, func(r Result) { res = &r })
	c.runUntil("read resolved", 2000, func() bool { return res != nil })
	return *res
}

func TestReadIndexOnFollowerSeesEveryAcknowledgedWrite(t *testing.T) {
	c := newTestCluster(t, []NodeID{1, 2, 3}, nil)
	voters := []NodeID{1, 2, 3}
	for _, id := range voters {
		c.open(id, 1, voters)
	}
	lead := c.waitLeader(1)
	follower := lead%3 + 1
	// Cut the follower off from commits, write, and heal only the read path
	// implicitly: ReadIndex must wait for the follower to apply the write.
	c.net.cut[[2]NodeID{lead, follower}] = true
	if r := c.propose(lead, 1, "w1"); r.Err != nil {
		t.Fatal(r.Err)
	}
	if got := c.nodes[follower].fsms[1].datas(); len(got) != 0 {
		t.Fatalf("follower applied %q while cut off", got)
	}
	var res *Result
	c.nodes[follower].e.ReadAsync(1, false, func(r Result) { res = &r })
	for range 5 { // less than an election timeout: the follower keeps its leader
		c.step()
	}
	if res != nil && res.Err == nil {
		t.Fatalf("follower's read returned (index %d) before it could apply the write", res.Index)
	}
	delete(c.net.cut, [2]NodeID{lead, follower})
	if res == nil || res.Err != nil {
		res = nil
		c.nodes[follower].e.ReadAsync(1, false, func(r Result) { res = &r })
	}
	c.runUntil("read resolved", 2000, func() bool { return res != nil })
	if res.Err != nil {
		t.Fatalf("ReadIndex: %v", res.Err)
	}
	if got := c.nodes[follower].fsms[1].datas(); !equalStrings(got, []string{"w1"}) {
		t.Errorf("follower state at its read index %d: %q, want [w1]", res.Index, got)
	}
	if res.Lease {
		t.Errorf("a follower's read reported a lease")
	}
}

func TestLeaseReadIsServedLocallyOnlyWhileAQuorumAcknowledges(t *testing.T) {
	c := newTestCluster(t, []NodeID{1, 2, 3}, nil)
	voters := []NodeID{1, 2, 3}
	for _, id := range voters {
		c.open(id, 1, voters)
	}
	lead := c.waitLeader(1)
	if r := c.propose(lead, 1, "x"); r.Err != nil {
		t.Fatal(r.Err)
	}
	for range 40 { // a few heartbeat rounds
		c.step()
	}
	r := c.read(lead, 1, true)
	if r.Err != nil || !r.Lease {
		t.Fatalf("lease read on a healthy leader: lease=%v err=%v, want a lease read", r.Lease, r.Err)
	}
	sent := c.nodes[lead].e.Metrics().MessagesSent
	var res *Result
	c.nodes[lead].e.ReadAsync(1, true, func(x Result) { res = &x })
	c.nodes[lead].e.Step()
	if res == nil || res.Err != nil || !res.Lease {
		t.Fatalf("lease read did not complete in one iteration: %+v", res)
	}
	if got := c.nodes[lead].e.Metrics().MessagesSent; got != sent {
		t.Errorf("lease read sent %d messages", got-sent)
	}
	// Isolate the leader: once the lease runs out, reads are not served
	// from it (ReadIndex cannot complete without a quorum either).
	for _, id := range voters {
		if id != lead {
			c.net.cut[[2]NodeID{lead, id}], c.net.cut[[2]NodeID{id, lead}] = true, true
		}
	}
	c.clock.Advance(c.nodes[lead].e.leaseSpan + 10*time.Millisecond)
	res = nil
	c.nodes[lead].e.ReadAsync(1, true, func(x Result) { res = &x })
	for range 30 {
		c.step()
	}
	if res != nil && res.Err == nil {
		t.Errorf("isolated leader served a read after its lease expired: %+v", res)
	}
}

func TestReadsInFlightAreBounded(t *testing.T) {
	c := newTestCluster(t, []NodeID{1, 2, 3}, nil)
	voters := []NodeID{1, 2, 3}
	for _, id := range voters {
		c.open(id, 1, voters)
	}
	lead := c.waitLeader(1)
	for _, id := range voters { // no quorum: reads wait for ever
		if id != lead {
			c.net.cut[[2]NodeID{lead, id}], c.net.cut[[2]NodeID{id, lead}] = true, true
		}
	}
	var errs []error
	for range base.RaftReadsInFlightMax + 1 {
		c.nodes[lead].e.ReadAsync(1, false, func(r Result) { errs = append(errs, r.Err) })
	}
	c.nodes[lead].e.Step()
	if len(errs) != 1 || base.CodeOf(errs[0]) != base.CodeOverloaded {
		t.Errorf("after %d reads: %d resolved (%v), want exactly the last one overloaded", base.RaftReadsInFlightMax+1, len(errs), errs)
	}
}

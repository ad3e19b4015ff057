package replication

import (
	"bytes"
	"fmt"
	"log/slog"
	"testing"
)

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// A watcher that takes the channel before reading Status learns of every
// election and leader loss without polling: the broker's leader loop and
// bootstrap rely on it on a fake clock, where a poll never comes.
func TestLeadershipChangedAnnouncesElectionsNotSleep(t *testing.T) {
	c := newTestCluster(t, []NodeID{1, 2, 3}, func(cfg *Config) { cfg.QuiesceTicks = 5 })
	voters := []NodeID{1, 2, 3}
	var chs [4]<-chan struct{}
	for _, id := range voters {
		chs[id] = c.nodes[id].e.LeadershipChanged()
		c.open(id, 1, voters)
	}
	lead := c.waitLeader(1)
	c.runUntil("every replica knows the leader", 200, func() bool {
		for _, id := range voters {
			if st, _ := c.nodes[id].e.Status(1); st.Leader != lead {
				return false
			}
		}
		return true
	})
	for _, id := range voters {
		if !isClosed(chs[id]) {
			t.Fatalf("node %d: the channel taken before the election is open after node %d was elected", id, lead)
		}
	}
	if r := c.propose(lead, 1, "a"); r.Err != nil {
		t.Fatal(r.Err)
	}
	for _, id := range voters {
		chs[id] = c.nodes[id].e.LeadershipChanged()
	}
	c.runUntil("every replica asleep", 500, func() bool { return allQuiesced(c, 1, voters) })
	if r := c.propose(lead, 1, "b"); r.Err != nil { // wakes the group: still no leadership change
		t.Fatal(r.Err)
	}
	for _, id := range voters {
		if isClosed(chs[id]) {
			t.Fatalf("node %d: the channel closed with the same leader (quiescence, wake-up, proposals)", id)
		}
	}
	c.runUntil("every replica asleep again", 500, func() bool { return allQuiesced(c, 1, voters) })
	c.crash(lead)
	for _, id := range voters {
		if id != lead {
			c.nodes[id].e.PeerDown(lead)
		}
	}
	newLead := c.waitLeader(1)
	for _, id := range voters {
		if id == newLead && !isClosed(chs[id]) {
			t.Fatalf("node %d: the channel is open after node %d replaced crashed node %d", id, newLead, lead)
		}
	}
}

// A group whose only voter is this node elects itself at once: the
// channel taken before OpenGroup closes by the time it leads.
func TestLeadershipChangedAnnouncesASingleVoterLeadingItself(t *testing.T) {
	c := newTestCluster(t, []NodeID{1}, nil)
	e := c.nodes[1].e
	ch := e.LeadershipChanged()
	c.open(1, 7, []NodeID{1})
	c.runUntil("node 1 leads group 7", 100, func() bool {
		st, err := e.Status(7)
		return err == nil && st.IsLeader
	})
	if !isClosed(ch) {
		t.Fatalf("the channel is open after the single voter elected itself")
	}
	if st, _ := e.Status(7); st.Applied == 0 {
		t.Fatalf("leader with nothing applied: %+v", st)
	}
}

// A single voter restarted with nothing to apply (its snapshot covers its
// commit index) has no Ready to campaign after: it must still elect
// itself at once, not one election timeout later, which on a clock that
// does not move is never.
func TestSingleVoterRestartedWithNothingToApplyLeadsWithoutTicks(t *testing.T) {
	c := newTestCluster(t, []NodeID{1}, func(cfg *Config) { cfg.SnapshotEntries = 4 })
	c.open(1, 3, []NodeID{1})
	c.waitLeader(3)
	for i := range 8 {
		if r := c.propose(1, 3, fmt.Sprint("e", i)); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	n := c.nodes[1]
	c.runUntil("a snapshot at the last entry", 100, func() bool {
		st, _ := n.e.Status(3)
		return n.e.Metrics().Snapshots > 0 && st.Applied == st.LastIndex
	})
	n.e.Stop()
	n.close()
	c.start(1)
	c.open(1, 3, nil)
	for range 20 { // iterations without the clock moving: no tick
		n.e.Step()
	}
	st, err := n.e.Status(3)
	if err != nil || !st.IsLeader {
		t.Fatalf("after a restart and 20 iterations without a tick: got %+v %v, want this node leading", st, err)
	}
}

// A new group's preferred replica campaigns as soon as it opens the group
// (Engine.Campaign), usually before the other replicas have: their loops
// hold its vote requests, and as leader its first append, and step them
// when they open it, so the group elects its leader and every replica
// knows it then, without waiting for the candidate's next tick or the
// leader's next heartbeat.
func TestACampaignBeforeTheOtherReplicasOpenTheGroupEndsWhenTheyDo(t *testing.T) {
	// Every warning the engines log: raft's "cannot campaign" among them,
	// which a campaign made before the bootstrap is applied used to cause.
	var warnings bytes.Buffer
	warn := slog.New(slog.NewTextHandler(&warnings, &slog.HandlerOptions{Level: slog.LevelWarn}))
	c := newTestCluster(t, []NodeID{1, 2, 3}, func(cfg *Config) { cfg.Logger = warn })
	// Past the vote embargo after the engines' start.
	c.runUntil("the vote embargo over", 100, func() bool { return !c.clock.Now().Before(c.nodes[1].e.embargo) })
	voters := []NodeID{1, 2, 3}
	// settle runs the engines and the network until nothing moves, with
	// the clock stopped: no tick.
	settle := func() {
		for range 100 {
			worked := false
			for _, id := range voters {
				worked = c.nodes[id].e.Step() || worked
			}
			if !c.net.deliver() && !worked {
				return
			}
		}
		t.Fatal("the engines never settled")
	}
	c.open(1, 7, voters)
	c.nodes[1].e.Campaign(7)
	settle()
	// The campaign was made in the iteration that opened the group, before
	// its bootstrap was applied: it is made again once it is.
	if held := len(c.nodes[2].e.loopFor(7).early); held != 1 {
		t.Fatalf("node 2 holds %d early messages, want 1 (node 1 campaigned once its bootstrap applied)", held)
	}
	c.open(2, 7, voters)
	settle()
	if lead := c.leader(7); lead != 1 {
		t.Fatalf("leader %d after node 2 opened the group, with no tick; want 1", lead)
	}
	c.open(3, 7, voters)
	settle()
	if st, err := c.nodes[3].e.Status(7); err != nil || st.Leader != 1 {
		t.Fatalf("node 3 opened the group after the election: status %+v %v, want it to know leader 1 with no tick", st, err)
	}
	if warnings.Len() > 0 {
		t.Fatalf("the engines warned:\n%s", warnings.String())
	}
}

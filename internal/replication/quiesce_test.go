package replication

import (
	"testing"
)

func allQuiesced(c *testCluster, g GroupID, ids []NodeID) bool {
	for _, id := range ids {
		n := c.nodes[id]
		if n.e == nil {
			continue
		}
		if st, err := n.e.Status(g); err != nil || !st.Quiesced {
			return false
		}
	}
	return true
}

// sleepingCluster returns three nodes replicating group 1, which has
// committed "a" under lead and then gone to sleep on every replica.
func sleepingCluster(t *testing.T) (c *testCluster, voters []NodeID, lead NodeID) {
	t.Helper()
	c = newTestCluster(t, []NodeID{1, 2, 3}, func(cfg *Config) { cfg.QuiesceTicks = 5 })
	voters = []NodeID{1, 2, 3}
	for _, id := range voters {
		c.open(id, 1, voters)
	}
	lead = c.waitLeader(1)
	if r := c.propose(lead, 1, "a"); r.Err != nil {
		t.Fatal(r.Err)
	}
	c.runUntil("every replica asleep", 500, func() bool { return allQuiesced(c, 1, voters) })
	return c, voters, lead
}

func TestIdleGroupQuiescesSendsNothingAndWakesOnProposal(t *testing.T) {
	c, voters, lead := sleepingCluster(t)
	var sent [4]uint64
	for _, id := range voters {
		sent[id] = c.nodes[id].e.Metrics().MessagesSent
	}
	for range 200 { // ten election timeouts
		c.step()
	}
	for _, id := range voters {
		if got := c.nodes[id].e.Metrics().MessagesSent; got != sent[id] {
			t.Errorf("node %d sent %d messages while its only group slept", id, got-sent[id])
		}
	}
	if !allQuiesced(c, 1, voters) {
		t.Fatalf("a replica woke up with nothing happening")
	}
	if r := c.propose(lead, 1, "b"); r.Err != nil {
		t.Fatalf("proposal to a sleeping group: %v", r.Err)
	}
	c.runUntil("every replica applied b", 200, func() bool {
		for _, id := range voters {
			if len(c.nodes[id].fsms[1].datas()) != 2 {
				return false
			}
		}
		return true
	})
}

func TestSleepingFollowersElectANewLeaderWhenThePeerIsDown(t *testing.T) {
	c, voters, lead := sleepingCluster(t)
	c.crash(lead)
	for range 300 {
		c.step()
	}
	if got := c.leader(1); got != 0 {
		t.Fatalf("node %d became leader while everyone slept and nobody reported the crash", got)
	}
	// The transport's node-level heartbeat notices the dead peer.
	for _, id := range voters {
		if id != lead {
			c.nodes[id].e.PeerDown(lead)
		}
	}
	newLead := c.waitLeader(1)
	if newLead == lead {
		t.Fatalf("the crashed node is leader")
	}
	if r := c.propose(newLead, 1, "b"); r.Err != nil {
		t.Fatalf("proposal to the new leader: %v", r.Err)
	}
}

func TestGroupsWokenByAFalsePeerDownSleepAgainWhenThePeerIsHeard(t *testing.T) {
	c, _, lead := sleepingCluster(t)
	follower := lead%3 + 1
	c.nodes[follower].e.PeerDown(lead)
	c.step()
	if st, _ := c.nodes[follower].e.Status(1); st.Quiesced {
		t.Fatalf("PeerDown of its leader did not wake the follower")
	}
	c.nodes[follower].e.PeerUp(lead)
	c.step()
	if st, _ := c.nodes[follower].e.Status(1); !st.Quiesced {
		t.Fatalf("PeerUp did not put the follower back to sleep")
	}
	wakes := c.nodes[lead].e.Metrics().Wakes
	for range 300 {
		c.step()
	}
	if got := c.nodes[lead].e.Metrics().Wakes; got != wakes {
		t.Errorf("the leader woke %d times after a false alarm", got-wakes)
	}
}

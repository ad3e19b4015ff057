package replication

import (
	"fmt"
	"slices"
	"testing"

	"github.com/ferry-mq/ferry/internal/base"
)

// memberOp runs a membership call on the leader until it resolves.
func (c *testCluster) memberOp(g GroupID, promote bool, changes ...MembershipChange) Result {
	c.t.Helper()
	var res *Result
	lead := c.waitLeader(g)
	c.nodes[lead].e.ChangeMembershipAsync(g, promote, func(r Result) { res = &r }, changes...)
	c.runUntil("membership change resolved", 3000, func() bool { return res != nil })
	return *res
}

func TestLearnerCatchesUpIsPromotedAndAVoterIsRemoved(t *testing.T) {
	c := newTestCluster(t, []NodeID{1, 2, 3, 4}, func(cfg *Config) { cfg.SnapshotEntries = 8 })
	voters := []NodeID{1, 2, 3}
	for _, id := range voters {
		c.open(id, 1, voters)
	}
	lead := c.waitLeader(1)
	var want []string
	for i := range 20 {
		cmd := fmt.Sprintf("before-%d", i)
		if r := c.propose(lead, 1, cmd); r.Err != nil {
			t.Fatal(r.Err)
		}
		want = append(want, cmd)
	}
	c.open(4, 1, nil) // joins empty
	if r := c.memberOp(1, false, MembershipChange{AddLearner, 4}); r.Err != nil {
		t.Fatalf("AddLearner: %v", r.Err)
	}
	c.runUntil("learner caught up", 3000, func() bool { return equalStrings(c.nodes[4].fsms[1].datas(), want) })
	if st, _ := c.nodes[4].e.Status(1); !slices.Contains(st.Learners, 4) || slices.Contains(st.Voters, 4) {
		t.Errorf("node 4 after AddLearner: voters %v learners %v", st.Voters, st.Learners)
	}
	if r := c.memberOp(1, true, MembershipChange{AddVoter, 4}); r.Err != nil {
		t.Fatalf("Promote: %v", r.Err)
	}
	victim := NodeID(1)
	if victim == c.leader(1) {
		victim = 2
	}
	if r := c.memberOp(1, false, MembershipChange{RemoveNode, victim}); r.Err != nil {
		t.Fatalf("RemoveNode: %v", r.Err)
	}
	st, _ := c.nodes[c.waitLeader(1)].e.Status(1)
	wantVoters := slices.DeleteFunc([]NodeID{1, 2, 3, 4}, func(n NodeID) bool { return n == victim })
	if !slices.Equal(st.Voters, wantVoters) || len(st.Learners) != 0 {
		t.Errorf("final membership: voters %v learners %v, want voters %v", st.Voters, st.Learners, wantVoters)
	}
	// The group still commits with the new voters only.
	c.crash(victim)
	if r := c.propose(c.waitLeader(1), 1, "after"); r.Err != nil {
		t.Fatalf("proposal with the new membership: %v", r.Err)
	}
}

func TestJointConsensusReplacesAVoterAtomically(t *testing.T) {
	c := newTestCluster(t, []NodeID{1, 2, 3, 4}, nil)
	voters := []NodeID{1, 2, 3}
	for _, id := range voters {
		c.open(id, 1, voters)
	}
	c.open(4, 1, nil)
	lead := c.waitLeader(1)
	out := NodeID(3)
	if out == lead {
		out = 2
	}
	r := c.memberOp(1, false, MembershipChange{AddVoter, 4}, MembershipChange{RemoveNode, out})
	if r.Err != nil {
		t.Fatalf("joint change: %v", r.Err)
	}
	// Raft leaves the joint configuration by itself.
	c.runUntil("joint configuration left", 2000, func() bool {
		st, _ := c.nodes[c.waitLeader(1)].e.Status(1)
		return !slices.Contains(st.Voters, out) && slices.Contains(st.Voters, 4) && len(st.Voters) == 3
	})
}

func TestTransferLeadershipMovesTheLeader(t *testing.T) {
	c := newTestCluster(t, []NodeID{1, 2, 3}, nil)
	voters := []NodeID{1, 2, 3}
	for _, id := range voters {
		c.open(id, 1, voters)
	}
	lead := c.waitLeader(1)
	to := lead%3 + 1
	var res *Result
	c.nodes[lead].e.TransferLeadershipAsync(1, to, func(r Result) { res = &r })
	c.runUntil("transfer resolved", 2000, func() bool { return res != nil })
	if res.Err != nil {
		t.Fatalf("transfer to %d: %v", to, res.Err)
	}
	if got := c.leader(1); got != to {
		t.Errorf("leader after transfer: got %d, want %d", got, to)
	}
	if r := c.propose(to, 1, "on the new leader"); r.Err != nil {
		t.Errorf("proposal on the new leader: %v", r.Err)
	}
	// A follower cannot transfer.
	res = nil
	c.nodes[lead].e.TransferLeadershipAsync(1, lead, func(r Result) { res = &r })
	c.runUntil("refused transfer resolved", 100, func() bool { return res != nil })
	if base.CodeOf(res.Err) != base.CodeNotLeader {
		t.Errorf("transfer asked of a follower: got %v, want not_leader", res.Err)
	}
}

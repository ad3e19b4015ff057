package stream

import (
	"fmt"
	"slices"
	"testing"

	"pgregory.net/rapid"
)

// bestKept is the naive optimum for AssignSticky: over every choice of
// which members get the extra partition, the most partitions that can stay
// where they are (a member keeps at most its quota of what it holds).
func bestKept(current [][]int32, n int32) int {
	m := len(current)
	extra := int(n) % m
	best := -1
	for mask := 0; mask < 1<<m; mask++ {
		if popcount(mask) != extra {
			continue
		}
		kept := 0
		for i, cur := range current {
			quota := int(n) / m
			if mask&(1<<i) != 0 {
				quota++
			}
			valid := 0
			for _, p := range cur {
				if p < n {
					valid++
				}
			}
			kept += min(valid, quota)
		}
		best = max(best, kept)
	}
	return best
}

func popcount(x int) int {
	n := 0
	for ; x != 0; x &= x - 1 {
		n++
	}
	return n
}

// drawAssignment draws a valid current assignment: disjoint partitions
// below maxPart spread over members.
func drawAssignment(t *rapid.T, members int, maxPart int32) [][]int32 {
	cur := make([][]int32, members)
	for p := range maxPart {
		owner := rapid.IntRange(-1, members-1).Draw(t, "owner")
		if owner >= 0 {
			cur[owner] = append(cur[owner], p)
		}
	}
	return cur
}

func TestAssignStickyIsBalancedCompleteAndMovesTheLeast(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		members := rapid.IntRange(1, 7).Draw(t, "members")
		n := rapid.Int32Range(0, 40).Draw(t, "partitions")
		cur := drawAssignment(t, members, rapid.Int32Range(0, 45).Draw(t, "previousPartitions"))
		got := AssignSticky(cur, n)

		owner := make([]int, n)
		for i := range owner {
			owner[i] = -1
		}
		lo, hi, kept := int(n), 0, 0
		for i, ps := range got {
			if !slices.IsSorted(ps) {
				t.Fatalf("member %d: partitions %v not sorted", i, ps)
			}
			lo, hi = min(lo, len(ps)), max(hi, len(ps))
			for _, p := range ps {
				if p < 0 || p >= n || owner[p] != -1 {
					t.Fatalf("partition %d out of range or assigned twice: %v", p, got)
				}
				owner[p] = i
				if slices.Contains(cur[i], p) {
					kept++
				}
			}
		}
		if slices.Contains(owner, -1) {
			t.Fatalf("unassigned partition: got %v", got)
		}
		if hi-lo > 1 {
			t.Fatalf("unbalanced: counts from %d to %d in %v", lo, hi, got)
		}
		if want := bestKept(cur, n); kept != want {
			t.Fatalf("kept %d partitions in place, the best balanced assignment keeps %d\ncurrent %v\ngot %v", kept, want, cur, got)
		}
	})
}

// TestAssignStickyIsStableWithoutChange: assigning again with the result
// as the current assignment moves nothing.
func TestAssignStickyIsStableWithoutChange(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		members := rapid.IntRange(1, 9).Draw(t, "members")
		n := rapid.Int32Range(0, 60).Draw(t, "partitions")
		first := AssignSticky(drawAssignment(t, members, n), n)
		if again := AssignSticky(first, n); fmt.Sprint(again) != fmt.Sprint(first) {
			t.Fatalf("reassigning a balanced assignment moved partitions: got %v, want %v", again, first)
		}
	})
}

// TestCoordinatorRandomCommandsKeepInvariants drives a coordinator with
// random classic and assigned commands and checks after each one: the
// snapshot survives a restore, every JoinGroup and SyncGroup is answered
// exactly once (now or later) unless still waiting, and assigned groups
// own each partition at most once.
func TestCoordinatorRandomCommandsKeepInvariants(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		c := NewCoordinator(CoordinatorConfig{InitialRebalanceDelayMs: rapid.Int64Range(-1, 3000).Draw(t, "delay")})
		answered := map[uint64]int{}
		asked := map[uint64]bool{}
		now := int64(0)
		req := uint64(0)
		for range rapid.IntRange(1, 150).Draw(t, "steps") {
			now += rapid.Int64Range(0, 4000).Draw(t, "advance")
			cmd := drawGroupCommand(t, c, now, &req)
			if x, ok := cmd.(JoinGroup); ok {
				asked[x.RequestID] = true
			}
			if x, ok := cmd.(SyncGroup); ok {
				asked[x.RequestID] = true
			}
			r := c.Apply(roundTripGroup(t, cmd))
			for _, e := range r.Effects {
				switch x := e.(type) {
				case JoinResponse:
					answered[x.RequestID]++
				case SyncResponse:
					answered[x.RequestID]++
				}
			}
			checkCoordinatorSnapshot(t, c)
			checkAnswers(t, c, asked, answered)
		}
	})
}

func checkAnswers(t *rapid.T, c *Coordinator, asked map[uint64]bool, answered map[uint64]int) {
	waiting := map[uint64]bool{}
	for _, g := range c.groups {
		owned := map[int32]bool{}
		for _, m := range g.members {
			waiting[m.joinRequest], waiting[m.syncRequest] = true, true
			for _, p := range m.owned {
				if owned[p] {
					t.Fatalf("group %s: partition %d owned twice", g.id, p)
				}
				owned[p] = true
			}
		}
	}
	for id := range asked {
		n := answered[id]
		if n > 1 || (n == 0 && !waiting[id]) || (n == 1 && waiting[id]) {
			t.Fatalf("request %d: answered %d times, waiting=%v", id, n, waiting[id])
		}
	}
}

func drawGroupCommand(t *rapid.T, c *Coordinator, now int64, req *uint64) GroupCommand {
	group := rapid.SampledFrom([]string{"g", "h"}).Draw(t, "group")
	var ids []string
	gen := int32(0)
	if g := c.groups[group]; g != nil {
		for _, m := range g.members {
			ids = append(ids, m.id)
		}
		for _, p := range g.pending {
			ids = append(ids, p.id)
		}
		gen = g.generation
	}
	ids = append(ids, "stranger")
	member := rapid.SampledFrom(ids).Draw(t, "member")
	*req++
	switch rapid.IntRange(0, 9).Draw(t, "kind") {
	case 0, 1:
		x := JoinGroup{Now: now, RequestID: *req, Group: group, ClientID: "c", ProtocolType: "consumer",
			SessionMs: 6000, RebalanceMs: int32(rapid.IntRange(1, 20000).Draw(t, "rebalance")),
			RequireKnownMemberID: rapid.Bool().Draw(t, "requireKnown"), NewMemberID: fmt.Sprint("c-", *req),
			Protocols: []Protocol{{Name: rapid.SampledFrom([]string{"range", "rr"}).Draw(t, "protocol")}, {Name: "range"}}}
		if rapid.Bool().Draw(t, "known") {
			x.MemberID = member
		}
		if rapid.IntRange(0, 3).Draw(t, "static") == 0 {
			x.InstanceID = "host"
		}
		return x
	case 2, 3:
		x := SyncGroup{Now: now, RequestID: *req, Group: group, MemberID: member, Generation: gen}
		for _, id := range ids {
			x.Assignments = append(x.Assignments, MemberAssignment{MemberID: id, Assignment: []byte(id)})
		}
		return x
	case 4:
		return Heartbeat{Now: now, Group: group, MemberID: member, Generation: gen}
	case 5:
		return LeaveGroup{Now: now, Group: group, Members: []LeavingMember{{MemberID: member}}}
	case 6:
		return AssignJoin{Now: now, Group: group, MemberID: fmt.Sprint("m", rapid.IntRange(0, 4).Draw(t, "m")),
			SessionMs: 6000, Partitions: rapid.Int32Range(0, 12).Draw(t, "partitions")}
	case 7:
		return AssignLeave{Now: now, Group: group, MemberID: member}
	case 8:
		return DeleteGroup{Now: now, Group: group}
	default:
		return GroupTick{Now: now}
	}
}

package stream

import (
	"bytes"
	"testing"

	"pgregory.net/rapid"
)

// TestRetentionDueIsExactlyWhetherATickChangesThePartition: a partition's
// leader proposes a RetentionTick only when RetentionDue says so, so
// RetentionDue must be true whenever the tick would change anything
// (data released, a producer forgotten, a group's offsets expired), or
// the partition would keep what retention should drop; and false
// otherwise, or idle partitions would keep writing ticks.
func TestRetentionDueIsExactlyWhetherATickChangesThePartition(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		cfg := PartitionConfig{
			RetentionBytes:     rapid.Int64Range(0, 40<<20).Draw(t, "retentionBytes"),
			RetentionMs:        rapid.Int64Range(0, 5000).Draw(t, "retentionMs"),
			OffsetsRetentionMs: rapid.Int64Range(-1, 5000).Draw(t, "offsetsRetentionMs"),
			ProducerExpiryMs:   rapid.Int64Range(-1, 5000).Draw(t, "producerExpiryMs"),
		}
		p := NewPartition(cfg, 1)
		next := map[int64]int32{} // the next sequence of each producer
		now := int64(0)
		for range rapid.IntRange(1, 150).Draw(t, "steps") {
			now += rapid.Int64Range(0, 1500).Draw(t, "advance")
			group := rapid.SampledFrom([]string{"g", "h"}).Draw(t, "group")
			switch rapid.IntRange(0, 9).Draw(t, "op") {
			case 0, 1, 2:
				due := p.RetentionDue(now)
				before := p.Snapshot(nil)
				p.Apply(RetentionTick{Now: now})
				if moved := !bytes.Equal(before, p.Snapshot(nil)); moved != due {
					t.Fatalf("at %d: RetentionDue %v, but the tick changed the partition: %v", now, due, moved)
				}
			case 3:
				p.Apply(CommitOffset{Now: now, Group: group, Offset: p.HighWatermark(), LeaderEpoch: -1})
			case 4:
				p.Apply(MarkGroup{Now: now, Group: group, Empty: rapid.Bool().Draw(t, "empty")})
			default:
				pid := rapid.Int64Range(NoProducerID, 2).Draw(t, "producer")
				a := Append{Now: now, Index: p.NextIndex(), LastOffsetDelta: rapid.Int32Range(0, 4).Draw(t, "delta"),
					MaxTimestamp: now - rapid.Int64Range(-100, 2000).Draw(t, "age"),
					Bytes:        rapid.Int64Range(1, 6<<20).Draw(t, "bytes"), ProducerID: pid}
				if pid >= 0 {
					a.BaseSequence = next[pid]
					next[pid] += a.LastOffsetDelta + 1
				}
				if r := p.ApplyAppend(a); r.Status != AppendOK {
					delete(next, pid) // forgotten by retention: its next batch starts over
				}
			}
		}
	})
}

// TestTickDueIsWhetherATickChangesTheCoordinator: a coordinator's leader
// proposes a GroupTick only when TickDue says so. A tick TickDue skips
// must change nothing; when no classic group is rebalancing (the states
// whose deadlines TickDue leaves to the tick), a due tick must change
// something.
func TestTickDueIsWhetherATickChangesTheCoordinator(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		c := NewCoordinator(CoordinatorConfig{
			InitialRebalanceDelayMs: rapid.Int64Range(-1, 3000).Draw(t, "delay"),
			EmptyGroupRetentionMs:   rapid.Int64Range(-1, 20000).Draw(t, "emptyRetention"),
		})
		now, req := int64(0), uint64(0)
		for range rapid.IntRange(1, 150).Draw(t, "steps") {
			now += rapid.Int64Range(0, 4000).Draw(t, "advance")
			cmd := drawGroupCommand(t, c, now, &req)
			if rapid.IntRange(0, 3).Draw(t, "tick") == 0 {
				cmd = GroupTick{Now: now}
			}
			x, ok := cmd.(GroupTick)
			if !ok {
				c.Apply(cmd)
				continue
			}
			due, exact := c.TickDue(x.Now), !anyRebalancing(c)
			before := c.Snapshot(nil)
			r := c.Apply(x)
			moved := len(r.Effects) > 0 || !bytes.Equal(before, c.Snapshot(nil))
			if !due && moved {
				t.Fatalf("at %d: TickDue false, but the tick changed the coordinator (effects %v)", now, r.Effects)
			}
			if due && exact && !moved {
				t.Fatalf("at %d: no group rebalancing and TickDue true, but the tick changed nothing", now)
			}
		}
	})
}

func anyRebalancing(c *Coordinator) bool {
	for _, g := range c.groups {
		if g.kind != kindAssigned && (g.state == GroupPreparingRebalance || g.state == GroupCompletingRebalance) {
			return true
		}
	}
	return false
}

// TestRenewalsKeepEveryMemberTheLeaderHeardFrom plays the leader's way
// with heartbeats: answered with CheckHeartbeat and kept in memory, never
// applied, and before every GroupTick the Renewals applied. A member of a
// Stable group heard from within its session must survive the tick, and
// every renewal must be one the coordinator accepts.
func TestRenewalsKeepEveryMemberTheLeaderHeardFrom(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		c := NewCoordinator(CoordinatorConfig{InitialRebalanceDelayMs: rapid.Int64Range(-1, 3000).Draw(t, "delay")})
		type heard struct {
			at  int64
			gen int32
		}
		seen := map[[2]string]heard{}
		lastSeen := func(group, member string, gen int32) int64 {
			if h, ok := seen[[2]string{group, member}]; ok && h.gen == gen {
				return h.at
			}
			return 0
		}
		now, req := int64(0), uint64(0)
		for range rapid.IntRange(1, 200).Draw(t, "steps") {
			now += rapid.Int64Range(0, 4000).Draw(t, "advance")
			cmd := drawGroupCommand(t, c, now, &req)
			switch x := cmd.(type) {
			case Heartbeat:
				if renews, _ := c.CheckHeartbeat(x); renews {
					seen[[2]string{x.Group, x.MemberID}] = heard{x.Now, x.Generation}
				}
			case GroupTick:
				for _, h := range c.Renewals(now, lastSeen) {
					if r := c.Apply(h); r.Err != ErrNone && r.Err != ErrRebalanceInProgress {
						t.Fatalf("renewal %+v refused: %v", h, r.Err)
					}
				}
				var alive [][2]string // group, member
				for id, g := range c.groups {
					if g.kind != kindClassic || g.state != GroupStable {
						continue
					}
					for _, m := range g.members {
						if h := lastSeen(id, m.id, g.generation); h > 0 && now-h < int64(m.sessionMs) {
							alive = append(alive, [2]string{id, m.id})
						}
					}
				}
				c.Apply(x)
				for _, a := range alive {
					if !c.IsMember(a[0], a[1]) {
						t.Fatalf("at %d: member %s of group %s, heard from within its session, was removed by the tick", now, a[1], a[0])
					}
				}
			default:
				c.Apply(cmd)
			}
		}
	})
}

package stream

import (
	"bytes"
	"testing"
)

func groupSeedCommands() []GroupCommand {
	return []GroupCommand{
		JoinGroup{Now: 1, RequestID: 1, Group: "g", ClientID: "c", ClientHost: "/h", ProtocolType: "consumer",
			Protocols: []Protocol{{Name: "range", Metadata: []byte("m")}, {Name: "rr"}}, SessionMs: 6000,
			RebalanceMs: 1000, NewMemberID: "c-1"},
		JoinGroup{Now: 2, RequestID: 2, Group: "g", InstanceID: "i", ProtocolType: "consumer",
			Protocols: []Protocol{{Name: "range"}}, SessionMs: 6000, RebalanceMs: 1000, NewMemberID: "s-2",
			RequireKnownMemberID: true},
		SyncGroup{Now: 3, RequestID: 3, Group: "g", MemberID: "c-1", Generation: 1,
			Assignments: []MemberAssignment{{MemberID: "c-1", Assignment: []byte("a")}, {MemberID: "s-2"}}},
		Heartbeat{Now: 4, Group: "g", MemberID: "c-1", Generation: 2},
		LeaveGroup{Now: 5, Group: "g", Members: []LeavingMember{{MemberID: "c-1"}, {InstanceID: "i"}}},
		DeleteGroup{Now: 6, Group: "g"},
		GroupTick{Now: 7},
		AssignJoin{Now: 8, Group: "a", MemberID: "m", SessionMs: 6000, Partitions: 3},
		AssignHeartbeat{Now: 9, Group: "a", MemberID: "m"},
		AssignLeave{Now: 10, Group: "a", MemberID: "m"},
	}
}

// seededCoordinator has a classic group, stable with two members, and an
// assigned group.
func seededCoordinator() *Coordinator {
	c := NewCoordinator(CoordinatorConfig{InitialRebalanceDelayMs: -1})
	for _, cmd := range groupSeedCommands()[:3] {
		c.Apply(cmd)
	}
	c.Apply(AssignJoin{Now: 8, Group: "a", MemberID: "m", SessionMs: 6000, Partitions: 3})
	return c
}

// FuzzDecodeGroupCommand: decoding arbitrary bytes never panics; what
// decodes re-encodes stably and applies to a coordinator without breaking
// it.
func FuzzDecodeGroupCommand(f *testing.F) {
	for _, c := range groupSeedCommands() {
		f.Add(EncodeGroupCommand(nil, c))
	}
	f.Add([]byte{tagJoinGroup})
	f.Fuzz(func(t *testing.T, b []byte) {
		cmd, err := DecodeGroupCommand(b)
		if err != nil {
			return
		}
		enc := EncodeGroupCommand(nil, cmd)
		again, err := DecodeGroupCommand(enc)
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if !bytes.Equal(EncodeGroupCommand(nil, again), enc) {
			t.Fatalf("encoding not stable for %#v", cmd)
		}
		c := seededCoordinator()
		c.Apply(cmd)
		c.Apply(GroupTick{Now: 1 << 40})
		checkCoordinatorSnapshot(t, c)
	})
}

// FuzzRestoreCoordinator: restoring arbitrary bytes never panics and
// allocates within the limits; a restored coordinator snapshots stably and
// takes commands without tripping an invariant.
func FuzzRestoreCoordinator(f *testing.F) {
	f.Add(NewCoordinator(CoordinatorConfig{}).Snapshot(nil))
	f.Add(seededCoordinator().Snapshot(nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := RestoreCoordinator(b)
		if err != nil {
			return
		}
		snap := c.Snapshot(nil)
		d, err := RestoreCoordinator(snap)
		if err != nil {
			t.Fatalf("restore of a re-snapshot: %v", err)
		}
		if !bytes.Equal(d.Snapshot(nil), snap) {
			t.Fatalf("snapshot not stable")
		}
		for _, cmd := range groupSeedCommands() {
			c.Apply(cmd)
		}
		for _, l := range c.List() {
			g := c.groups[l.Group]
			for _, m := range g.members {
				c.Apply(SyncGroup{Now: 11, RequestID: 99, Group: l.Group, MemberID: m.id, InstanceID: m.instanceID,
					Generation: g.generation})
				c.Apply(JoinGroup{Now: 12, RequestID: 100, Group: l.Group, MemberID: m.id, InstanceID: m.instanceID,
					ProtocolType: g.protocolType, Protocols: m.protocols, SessionMs: 6000, RebalanceMs: 1, NewMemberID: "n"})
			}
		}
		c.Apply(GroupTick{Now: 1 << 50})
		checkCoordinatorSnapshot(t, c)
	})
}

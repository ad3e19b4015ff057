package stream

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
)

func roundTripGroup(t fataler, cmd GroupCommand) GroupCommand {
	t.Helper()
	b := EncodeGroupCommand(nil, cmd)
	got, err := DecodeGroupCommand(b)
	if err != nil {
		t.Fatalf("decode of encoded %#v: %v", cmd, err)
	}
	if !bytes.Equal(EncodeGroupCommand(nil, got), b) {
		t.Fatalf("re-encoding %#v changed the bytes", got)
	}
	return got
}

func checkCoordinatorSnapshot(t fataler, c *Coordinator) {
	t.Helper()
	snap := c.Snapshot(nil)
	d, err := RestoreCoordinator(snap)
	if err != nil {
		t.Fatalf("restore of a snapshot: %v", err)
	}
	if again := d.Snapshot(nil); !bytes.Equal(again, snap) {
		t.Fatalf("restored coordinator snapshot differs")
	}
}

func list(a args, k string) []string {
	v := a.str(k, "")
	if v == "" {
		return nil
	}
	return strings.Split(v, ",")
}

func joinOf(a args) JoinGroup {
	req := uint64(a.int("req", 1))
	def := "c"
	if m := a.str("member", ""); m != "" {
		def, _, _ = strings.Cut(m, "-") // a rejoin keeps the client id its member id starts with
	}
	client := a.str("client", def)
	x := JoinGroup{Now: a.int("now", 0), RequestID: req, Group: a.str("group", "g"), MemberID: a.str("member", ""),
		InstanceID: a.str("instance", ""), ClientID: client, ClientHost: "/10.0.0.1",
		ProtocolType: a.str("type", "consumer"), SessionMs: int32(a.int("session", 10000)),
		RebalanceMs: int32(a.int("rebalance", 30000)), RequireKnownMemberID: a.bool("require-known"),
		NewMemberID: a.str("new-id", fmt.Sprintf("%s-%d", client, req))}
	for _, p := range list(a, "protocols") {
		name, meta, _ := strings.Cut(p, ":")
		x.Protocols = append(x.Protocols, Protocol{Name: name, Metadata: []byte(meta)})
	}
	if !a.has("protocols") {
		x.Protocols = []Protocol{{Name: "range", Metadata: []byte("sub")}}
	}
	return x
}

func formatEffects(effs []Effect) string {
	var b strings.Builder
	for _, e := range effs {
		switch x := e.(type) {
		case JoinResponse:
			fmt.Fprintf(&b, "join-response req=%d err=%s", x.RequestID, x.Err)
			if x.Err == ErrNone {
				fmt.Fprintf(&b, " gen=%d protocol=%s/%s leader=%s member=%s", x.Generation, x.ProtocolType,
					x.ProtocolName, x.LeaderID, x.MemberID)
				if x.SkipAssignment {
					b.WriteString(" skip-assignment")
				}
				if x.Members != nil {
					var ms []string
					for _, m := range x.Members {
						s := m.MemberID + ":" + string(m.Metadata)
						if m.InstanceID != "" {
							s = m.MemberID + "(" + m.InstanceID + "):" + string(m.Metadata)
						}
						ms = append(ms, s)
					}
					fmt.Fprintf(&b, " members=[%s]", strings.Join(ms, " "))
				}
			} else if x.MemberID != "" {
				fmt.Fprintf(&b, " member=%s", x.MemberID)
			}
		case SyncResponse:
			fmt.Fprintf(&b, "sync-response req=%d err=%s", x.RequestID, x.Err)
			if x.Err == ErrNone {
				fmt.Fprintf(&b, " protocol=%s/%s assignment=%q", x.ProtocolType, x.ProtocolName, x.Assignment)
			}
		case GroupStateChanged:
			fmt.Fprintf(&b, "state %s %s at %d", x.Group, x.State, x.Now)
		case AssignmentChanged:
			fmt.Fprintf(&b, "assignment %s gen=%d partitions=%v added=%v revoked=%v", x.MemberID, x.Generation,
				x.Partitions, x.Added, x.Revoked)
		}
		b.WriteString("\n")
	}
	return b.String()
}

func formatGroup(c *Coordinator, id string) string {
	d := c.Describe(id)
	var b strings.Builder
	fmt.Fprintf(&b, "group %s: %s type=%s protocol=%s gen=%d leader=%s\n", d.Group, d.State, d.ProtocolType,
		d.Protocol, d.Generation, d.LeaderID)
	for _, m := range d.Members {
		fmt.Fprintf(&b, "  member %s instance=%q client=%s", m.MemberID, m.InstanceID, m.ClientID)
		if m.Metadata != nil || m.Assignment != nil {
			fmt.Fprintf(&b, " metadata=%q assignment=%q", m.Metadata, m.Assignment)
		}
		if m.Partitions != nil {
			fmt.Fprintf(&b, " partitions=%v", m.Partitions)
		}
		b.WriteString("\n")
	}
	if g := c.groups[id]; g != nil && len(g.pending) > 0 {
		for _, p := range g.pending {
			fmt.Fprintf(&b, "  pending %s until %d\n", p.id, p.deadlineMs)
		}
	}
	return b.String()
}

func TestCoordinatorDataDriven(t *testing.T) {
	datadriven.Walk(t, "testdata/group", func(t *testing.T, path string) {
		var c *Coordinator
		datadriven.RunTest(t, path, func(t *testing.T, td *datadriven.TestData) string {
			a := argsOf(t, td)
			if td.Cmd == "new" {
				c = NewCoordinator(CoordinatorConfig{InitialRebalanceDelayMs: a.int("initial-delay", -1),
					EmptyGroupRetentionMs: a.int("empty-retention", 0)})
				return ""
			}
			if c == nil {
				t.Fatalf("%s: no coordinator; start with new", td.Pos)
			}
			out := runGroupCmd(t, c, td, a)
			checkCoordinatorSnapshot(t, c)
			return out
		})
	})
}

func runGroupCmd(t *testing.T, c *Coordinator, td *datadriven.TestData, a args) string {
	group := a.str("group", "g")
	apply := func(cmd GroupCommand) GroupResult { return c.Apply(roundTripGroup(t, cmd)) }
	withErr := func(r GroupResult) string {
		return fmt.Sprintf("err=%s\n%s", r.Err, formatEffects(r.Effects))
	}
	switch td.Cmd {
	case "join":
		return formatEffects(apply(joinOf(a)).Effects)
	case "sync":
		x := SyncGroup{Now: a.int("now", 0), RequestID: uint64(a.int("req", 1)), Group: group,
			MemberID: a.str("member", ""), InstanceID: a.str("instance", ""), Generation: int32(a.int("gen", 0)),
			ProtocolType: a.str("type", ""), ProtocolName: a.str("protocol", "")}
		for _, as := range list(a, "assign") {
			m, data, _ := strings.Cut(as, ":")
			x.Assignments = append(x.Assignments, MemberAssignment{MemberID: m, Assignment: []byte(data)})
		}
		return formatEffects(apply(x).Effects)
	case "heartbeat":
		return withErr(apply(Heartbeat{Now: a.int("now", 0), Group: group, MemberID: a.str("member", ""),
			InstanceID: a.str("instance", ""), Generation: int32(a.int("gen", 0))}))
	case "leave":
		x := LeaveGroup{Now: a.int("now", 0), Group: group}
		for _, l := range list(a, "members") {
			m, inst, _ := strings.Cut(l, "|")
			x.Members = append(x.Members, LeavingMember{MemberID: m, InstanceID: inst})
		}
		r := apply(x)
		return fmt.Sprintf("err=%s members=%v left=%q\n%s", r.Err, r.Leave, r.LeftMemberIDs, formatEffects(r.Effects))
	case "delete":
		return withErr(apply(DeleteGroup{Now: a.int("now", 0), Group: group}))
	case "tick":
		return formatEffects(apply(GroupTick{Now: a.int("now", 0)}).Effects)
	case "describe":
		return formatGroup(c, group)
	case "list":
		var b strings.Builder
		for _, l := range c.List() {
			fmt.Fprintf(&b, "%s %s %s\n", l.Group, l.ProtocolType, l.State)
		}
		return b.String()
	case "validate-commit":
		return c.ValidateCommit(group, a.str("member", ""), a.str("instance", ""), int32(a.int("gen", -1))).String()
	case "assign-join":
		return withErr(apply(AssignJoin{Now: a.int("now", 0), Group: group, MemberID: a.str("member", ""),
			SessionMs: int32(a.int("session", 10000)), Partitions: int32(a.int("partitions", 0))}))
	case "assign-heartbeat":
		return withErr(apply(AssignHeartbeat{Now: a.int("now", 0), Group: group, MemberID: a.str("member", "")}))
	case "assign-leave":
		return withErr(apply(AssignLeave{Now: a.int("now", 0), Group: group, MemberID: a.str("member", "")}))
	}
	t.Fatalf("%s: unknown command %q", td.Pos, td.Cmd)
	return ""
}

package stream

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/ferry-mq/ferry/internal/base"
)

func joinAt(i int) JoinGroup {
	return JoinGroup{Now: 1, RequestID: uint64(i + 1), Group: "g", ClientID: "c", ProtocolType: "consumer",
		Protocols: []Protocol{{Name: "range"}}, SessionMs: 6000, RebalanceMs: 1000, NewMemberID: fmt.Sprint("c-", i)}
}

func lastJoinErr(r GroupResult) GroupError {
	for i := len(r.Effects) - 1; i >= 0; i-- {
		if j, ok := r.Effects[i].(JoinResponse); ok {
			return j.Err
		}
	}
	return ErrNone
}

func TestGroupMembersAtLimitRefuseOneMore(t *testing.T) {
	c := NewCoordinator(CoordinatorConfig{InitialRebalanceDelayMs: -1})
	for i := range base.GroupMembersMax {
		if e := lastJoinErr(c.Apply(joinAt(i))); e != ErrNone {
			t.Fatalf("join %d below the limit: %v", i, e)
		}
	}
	if e := lastJoinErr(c.Apply(joinAt(base.GroupMembersMax))); e != ErrGroupMaxSizeReached {
		t.Errorf("join past the limit: got %v, want %v", e, ErrGroupMaxSizeReached)
	}
	if got := len(c.Describe("g").Members); got != base.GroupMembersMax {
		t.Errorf("members: got %d, want %d", got, base.GroupMembersMax)
	}
}

func TestJoinGroupFieldLimits(t *testing.T) {
	long := strings.Repeat("x", base.GroupIDBytesMax+1)
	protocols := func(n, metaBytes int) []Protocol {
		var ps []Protocol
		for i := range n {
			ps = append(ps, Protocol{Name: fmt.Sprint("p", i), Metadata: make([]byte, metaBytes)})
		}
		return ps
	}
	for _, tc := range []struct {
		name string
		edit func(*JoinGroup)
		want GroupError
	}{
		{"protocols at the limit", func(j *JoinGroup) { j.Protocols = protocols(base.GroupProtocolsMax, 0) }, ErrNone},
		{"protocols past the limit", func(j *JoinGroup) { j.Protocols = protocols(base.GroupProtocolsMax+1, 0) }, ErrInvalidRequest},
		{"metadata at the limit", func(j *JoinGroup) { j.Protocols = protocols(2, base.GroupMemberMetadataBytesMax/2) }, ErrNone},
		{"metadata past the limit", func(j *JoinGroup) { j.Protocols = protocols(2, base.GroupMemberMetadataBytesMax/2+1) }, ErrInvalidRequest},
		{"client id at the limit", func(j *JoinGroup) { j.ClientID = long[1:] }, ErrNone},
		{"client id past the limit", func(j *JoinGroup) { j.ClientID = long }, ErrInvalidRequest},
		{"group id past the limit", func(j *JoinGroup) { j.Group = long }, ErrInvalidRequest},
		{"session at the minimum", func(j *JoinGroup) { j.SessionMs = int32(base.GroupSessionTimeoutMin.Milliseconds()) }, ErrNone},
		{"session at the maximum", func(j *JoinGroup) { j.SessionMs = int32(base.GroupSessionTimeoutMax.Milliseconds()) }, ErrNone},
		{"no request id", func(j *JoinGroup) { j.RequestID = 0 }, ErrInvalidRequest},
		{"no new member id", func(j *JoinGroup) { j.NewMemberID = "" }, ErrInvalidRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewCoordinator(CoordinatorConfig{InitialRebalanceDelayMs: -1})
			j := joinAt(0)
			tc.edit(&j)
			if got := lastJoinErr(c.Apply(j)); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
			if tc.want != ErrNone && len(c.List()) != 0 {
				t.Errorf("a refused join left a group behind: %v", c.List())
			}
		})
	}
}

func TestSyncGroupAssignmentLimit(t *testing.T) {
	for _, size := range []int{base.GroupAssignmentBytesMax, base.GroupAssignmentBytesMax + 1} {
		c := NewCoordinator(CoordinatorConfig{InitialRebalanceDelayMs: -1})
		c.Apply(joinAt(0))
		r := c.Apply(SyncGroup{Now: 2, RequestID: 9, Group: "g", MemberID: "c-0", Generation: 1,
			Assignments: []MemberAssignment{{MemberID: "c-0", Assignment: make([]byte, size)}}})
		want := ErrNone
		if size > base.GroupAssignmentBytesMax {
			want = ErrInvalidRequest
		}
		got := r.Effects[len(r.Effects)-1].(SyncResponse)
		if got.Err != want || (want == ErrNone && len(got.Assignment) != size) {
			t.Errorf("assignment of %d bytes: got %v (%d bytes), want %v", size, got.Err, len(got.Assignment), want)
		}
	}
}

func TestGroupsAndPartitionsAtLimit(t *testing.T) {
	c := NewCoordinator(CoordinatorConfig{})
	for i := range base.GroupsMax {
		if e := c.Apply(AssignJoin{Now: 1, Group: fmt.Sprint("g", i), MemberID: "m", SessionMs: 6000}).Err; e != ErrNone {
			t.Fatalf("group %d below the limit: %v", i, e)
		}
	}
	if e := c.Apply(AssignJoin{Now: 1, Group: "one-more", MemberID: "m", SessionMs: 6000}).Err; e != ErrCoordinatorNotAvailable {
		t.Errorf("group past the limit: got %v, want %v", e, ErrCoordinatorNotAvailable)
	}
	if e := lastJoinErr(c.Apply(JoinGroup{Now: 1, RequestID: 1, Group: "classic", ProtocolType: "consumer",
		Protocols: []Protocol{{Name: "r"}}, SessionMs: 6000, RebalanceMs: 1, NewMemberID: "x"})); e != ErrCoordinatorNotAvailable {
		t.Errorf("classic group past the limit: got %v, want %v", e, ErrCoordinatorNotAvailable)
	}
	d := NewCoordinator(CoordinatorConfig{})
	if e := d.Apply(AssignJoin{Now: 1, Group: "a", MemberID: "m", SessionMs: 6000, Partitions: base.GroupPartitionsMax}).Err; e != ErrNone {
		t.Errorf("partitions at the limit: got %v", e)
	}
	if e := d.Apply(AssignJoin{Now: 1, Group: "a", MemberID: "m", SessionMs: 6000, Partitions: base.GroupPartitionsMax + 1}).Err; e != ErrInvalidRequest {
		t.Errorf("partitions past the limit: got %v, want %v", e, ErrInvalidRequest)
	}
	if got := len(d.Describe("a").Members[0].Partitions); got != base.GroupPartitionsMax {
		t.Errorf("partitions owned: got %d, want %d", got, base.GroupPartitionsMax)
	}
}

func TestDecodeRefusesFieldsPastLimits(t *testing.T) {
	j := joinAt(0)
	j.ClientID = strings.Repeat("x", base.GroupIDBytesMax+1)
	if _, err := DecodeGroupCommand(EncodeGroupCommand(nil, j)); base.CodeOf(err) != base.CodeCorrupt {
		t.Errorf("join with a long client id: got %v, want %v", err, base.CodeCorrupt)
	}
	c := CommitOffset{Group: "g", Metadata: strings.Repeat("m", base.StreamOffsetMetadataBytesMax+1)}
	if _, err := DecodeCommand(EncodeCommand(nil, c)); base.CodeOf(err) != base.CodeCorrupt {
		t.Errorf("commit with long metadata: got %v, want %v", err, base.CodeCorrupt)
	}
	// A count that the remaining bytes cannot back is refused before
	// anything is allocated.
	b := []byte{tagLeaveGroup, 0, 1, 'g', 0xe8, 0x07} // 1000 members, no bytes for them
	if _, err := DecodeGroupCommand(b); err == nil || !bytes.Contains([]byte(err.Error()), []byte("cannot fit")) {
		t.Errorf("leave claiming 1000 members in 0 bytes: got %v", err)
	}
}

func TestRestoreRefusesCountsTheInputCannotBack(t *testing.T) {
	// A partition snapshot claiming the most chunks it may, with no bytes
	// for them, is refused before the chunks are allocated.
	e := encoder{}
	e.u8(partitionSnapshotVersion)
	encodeConfig(&e, PartitionConfig{})
	for _, v := range []int64{1, 0, 0, 1, 0, -1, -1} { // positions, data end, log start, max timestamp
		e.varint(v)
	}
	e.uvarint(base.StreamRetentionChunksMax)
	if _, err := RestorePartition(e.b); err == nil || !strings.Contains(err.Error(), "cannot fit") {
		t.Errorf("snapshot claiming %d chunks in no bytes: got %v", base.StreamRetentionChunksMax, err)
	}
	e.b = e.b[:len(e.b)-3]
	e.uvarint(base.StreamRetentionChunksMax + 1)
	if _, err := RestorePartition(e.b); err == nil || !strings.Contains(err.Error(), "over the limit") {
		t.Errorf("snapshot claiming too many chunks: got %v", err)
	}
	if _, err := DecodeCommand(make([]byte, partitionCommandBytesMax+1)); base.CodeOf(err) != base.CodeCorrupt {
		t.Errorf("command over the limit: got %v", err)
	}
}

// TestGroupErrorsKeepKafkaCodes pins the Kafka protocol numbers the Kafka
// front end sends.
func TestGroupErrorsKeepKafkaCodes(t *testing.T) {
	for e, want := range map[GroupError]int16{
		ErrNone: 0, ErrCoordinatorNotAvailable: 15, ErrIllegalGeneration: 22, ErrInconsistentGroupProtocol: 23,
		ErrInvalidGroupID: 24, ErrUnknownMemberID: 25, ErrInvalidSessionTimeout: 26, ErrRebalanceInProgress: 27,
		ErrInvalidRequest: 42, ErrNonEmptyGroup: 68, ErrGroupIDNotFound: 69, ErrMemberIDRequired: 79,
		ErrGroupMaxSizeReached: 81, ErrFencedInstanceID: 82,
	} {
		if got := e.KafkaCode(); got != want {
			t.Errorf("%s: got Kafka code %d, want %d", e, got, want)
		}
	}
	if err := ErrUnknownMemberID.Err("g"); base.CodeOf(err) != base.CodeNotFound {
		t.Errorf("ErrUnknownMemberID.Err: got %v", err)
	}
	if ErrNone.Err("g") != nil {
		t.Errorf("ErrNone.Err: not nil")
	}
}

// Regression: a member id handed out with MEMBER_ID_REQUIRED, used with
// the instance id of another member, made two members share one instance
// id (found by TestCoordinatorRandomCommandsKeepInvariants).
func TestPendingMemberCannotTakeAnotherMembersInstanceID(t *testing.T) {
	c := NewCoordinator(CoordinatorConfig{InitialRebalanceDelayMs: -1})
	pending := joinAt(1)
	pending.RequireKnownMemberID = true
	c.Apply(pending) // hands out c-1
	static := joinAt(2)
	static.InstanceID = "host"
	c.Apply(static) // c-2 owns instance "host"
	again := joinAt(3)
	again.MemberID, again.InstanceID = "c-1", "host"
	if e := lastJoinErr(c.Apply(again)); e != ErrFencedInstanceID {
		t.Errorf("pending id with another member's instance id: got %v, want %v", e, ErrFencedInstanceID)
	}
	checkCoordinatorSnapshot(t, c)
}

// Regression: a group left with neither members nor pending ids (its one
// pending id expired) encodes in 14 bytes, less than the per-group minimum
// the snapshot decoder assumed, so its snapshot did not restore (found by
// TestCoordinatorRandomCommandsKeepInvariants).
func TestSnapshotOfAGroupWhosePendingIDExpiredRestores(t *testing.T) {
	c := NewCoordinator(CoordinatorConfig{InitialRebalanceDelayMs: -1})
	j := JoinGroup{Now: 0, RequestID: 1, Group: "h", ProtocolType: "consumer", Protocols: []Protocol{{Name: "r"}},
		SessionMs: 6000, RebalanceMs: 1, RequireKnownMemberID: true, NewMemberID: "c-1"}
	c.Apply(j)
	c.Apply(GroupTick{Now: 6000})
	if d := c.Describe("h"); d.State != GroupEmpty || len(d.Members) != 0 {
		t.Fatalf("group after the pending id expired: %+v", d)
	}
	checkCoordinatorSnapshot(t, c)
}

package broker

import (
	"errors"
	"testing"

	"github.com/ferry-mq/ferry/internal/stream"
)

func TestDeleteGroupDeletesItsOffsetsAndTouchesNoOtherPartition(t *testing.T) {
	b := openNode(t, nodeOpts{})
	c := guestConn(t, b)
	ctx := testCtx(t)
	if err := c.DeclareStream(ctx, StreamSpec{Name: "dg", Partitions: 2}); err != nil {
		t.Fatal(err)
	}
	p0, p1 := PartitionRef{Stream: "dg"}, PartitionRef{Stream: "dg", Partition: 1}
	res := c.CommitOffsets(ctx, "solo", -1, "", "", map[PartitionRef]CommittedOffset{p0: {Offset: 5, LeaderEpoch: -1}})
	if res[p0] != nil {
		t.Fatalf("standalone commit: %v", res[p0])
	}
	hw0 := logEnd(t, c, p0)
	hw1 := logEnd(t, c, p1)
	if err := c.DeleteGroup(ctx, "solo"); err != nil {
		t.Fatalf("DeleteGroup of a group known by its offsets: %v", err)
	}
	got, err := c.FetchOffsets(ctx, "solo", []PartitionRef{p0, p1})
	if err != nil || len(got) != 0 {
		t.Fatalf("after DeleteGroup: offsets %+v %v, want none", got, err)
	}
	if after := logEnd(t, c, p0); after != hw0+1 {
		t.Errorf("partition 0's log: %d -> %d, want one DeleteOffsets entry", hw0, after)
	}
	if after := logEnd(t, c, p1); after != hw1 {
		t.Errorf("partition 1's log, which held no offset of the group: %d -> %d, want untouched", hw1, after)
	}
	var ge *GroupError
	if err := c.DeleteGroup(ctx, "solo"); !errors.As(err, &ge) || ge.KafkaCode != stream.ErrGroupIDNotFound.KafkaCode() {
		t.Errorf("deleting it again: %v, want GROUP_ID_NOT_FOUND", err)
	}
}

func TestDeleteOffsetsDeletesOnlyTheNamedPartitions(t *testing.T) {
	b := openNode(t, nodeOpts{})
	c := guestConn(t, b)
	ctx := testCtx(t)
	if err := c.DeclareStream(ctx, StreamSpec{Name: "do", Partitions: 2}); err != nil {
		t.Fatal(err)
	}
	p0, p1 := PartitionRef{Stream: "do"}, PartitionRef{Stream: "do", Partition: 1}
	c.CommitOffsets(ctx, "g", -1, "", "", map[PartitionRef]CommittedOffset{p0: {Offset: 1, LeaderEpoch: -1}, p1: {Offset: 2, LeaderEpoch: -1}})
	errs := c.DeleteOffsets(ctx, "g", []PartitionRef{p1, {Stream: "do", Partition: 9}, {Stream: "missing"}})
	if len(errs) != 3 || errs[0] != nil || errs[1] == nil || errs[2] == nil {
		t.Fatalf("DeleteOffsets: %v, want success then not-found twice", errs)
	}
	got, err := c.FetchOffsets(ctx, "g", []PartitionRef{p0, p1})
	if _, has1 := got[p1]; err != nil || got[p0].Offset != 1 || has1 {
		t.Fatalf("after deleting partition 1's offset: %+v %v, want partition 0 at 1 only", got, err)
	}
}

package stream

import (
	"fmt"
	"testing"

	"github.com/ferry-mq/ferry/internal/base"
)

func TestProducersAtLimitEvictLeastRecentlyUsed(t *testing.T) {
	p := NewPartition(PartitionConfig{}, 1)
	for id := range int64(base.StreamProducersMax) {
		// Producer 0 is used last, so producer 1 is the least recent.
		now := id + 10
		if id == 0 {
			now = 1 << 40
		}
		p.Apply(Append{Now: now, Index: p.NextIndex(), Bytes: 1, ProducerID: id})
	}
	if got := p.ProducerCount(); got != base.StreamProducersMax {
		t.Fatalf("producers at the limit: got %d, want %d", got, base.StreamProducersMax)
	}
	p.Apply(Append{Now: 1 << 41, Index: p.NextIndex(), Bytes: 1, ProducerID: 1 << 50})
	if got := p.ProducerCount(); got != base.StreamProducersMax {
		t.Errorf("producers past the limit: got %d, want %d", got, base.StreamProducersMax)
	}
	if _, ok := p.Producer(1); ok {
		t.Errorf("least recently used producer 1 still remembered")
	}
	for _, id := range []int64{0, 2, 1 << 50} {
		if _, ok := p.Producer(id); !ok {
			t.Errorf("producer %d forgotten, want remembered", id)
		}
	}
	checkSnapshot(t, p)
}

func TestCommittedGroupsAtLimitRefuseANewGroup(t *testing.T) {
	p := NewPartition(PartitionConfig{}, 1)
	for i := range base.StreamCommittedGroupsMax {
		if r := p.Apply(CommitOffset{Group: fmt.Sprint("g", i), Offset: 1}); r.Err != nil {
			t.Fatalf("commit %d below the limit: %v", i, r.Err)
		}
	}
	r := p.Apply(CommitOffset{Group: "one-more", Offset: 1})
	if got := base.CodeOf(r.Err); got != base.CodeOverloaded {
		t.Errorf("commit of one group past the limit: got code %v (%v), want %v", got, r.Err, base.CodeOverloaded)
	}
	if r := p.Apply(CommitOffset{Group: "g0", Offset: 2}); r.Err != nil {
		t.Errorf("commit of a known group at the limit: got %v, want ok", r.Err)
	}
	checkSnapshot(t, p)
}

func TestChunksAtLimitMergePairwise(t *testing.T) {
	p := NewPartition(PartitionConfig{}, 1)
	for i := range base.StreamRetentionChunksMax {
		p.Apply(Append{Now: int64(i), Index: p.NextIndex(), Bytes: base.StreamRetentionChunkBytes, MaxTimestamp: int64(i)})
	}
	if got := len(p.chunks); got != base.StreamRetentionChunksMax {
		t.Fatalf("chunks at the limit: got %d, want %d", got, base.StreamRetentionChunksMax)
	}
	p.Apply(Append{Now: 1, Index: p.NextIndex(), Bytes: 1, MaxTimestamp: 99})
	if got, want := len(p.chunks), base.StreamRetentionChunksMax/2+1; got != want {
		t.Fatalf("chunks after one more: got %d, want %d", got, want)
	}
	c := p.chunks[1]
	if c.firstOffset != 2 || c.bytes != 2*base.StreamRetentionChunkBytes || c.records != 2 || c.maxTimestamp != 3 {
		t.Errorf("merged chunk 1: got %+v, want offsets from 2, two chunks' bytes and records, max ts 3", c)
	}
	if got, want := p.RetainedBytes(), int64(base.StreamRetentionChunksMax)*base.StreamRetentionChunkBytes+1; got != want {
		t.Errorf("retained bytes: got %d, want %d", got, want)
	}
	if got, want := p.Records(), int64(base.StreamRetentionChunksMax)+1; got != want {
		t.Errorf("records: got %d, want %d", got, want)
	}
	checkSnapshot(t, p)
}

func TestApplyAppendOutOfIndexOrderIsABug(t *testing.T) {
	p := NewPartition(PartitionConfig{}, 1)
	defer func() {
		if r := recover(); r == nil {
			t.Errorf("Append with index 2 on a fresh partition: no panic")
		}
	}()
	p.Apply(Append{Index: 2, Bytes: 1})
}

// TestDefaultExpiriesAtTheirEdges: with a zero configuration, producers are
// forgotten after base.StreamProducerExpiryDefault and the offsets of a
// standalone consumer after base.StreamOffsetsRetentionDefault, not a
// millisecond earlier.
func TestDefaultExpiriesAtTheirEdges(t *testing.T) {
	p := NewPartition(PartitionConfig{}, 1)
	p.Apply(Append{Now: 0, Index: 1, Bytes: 1, ProducerID: 7})
	p.Apply(CommitOffset{Now: 0, Group: "g", Offset: 1})
	producerMs := base.StreamProducerExpiryDefault.Milliseconds()
	offsetsMs := base.StreamOffsetsRetentionDefault.Milliseconds()
	if r := p.Apply(RetentionTick{Now: producerMs - 1}).Retention; r.ExpiredProducers != 0 {
		t.Errorf("producer expired a millisecond early")
	}
	if r := p.Apply(RetentionTick{Now: producerMs}).Retention; r.ExpiredProducers != 1 {
		t.Errorf("producer not expired at %d ms", producerMs)
	}
	if r := p.Apply(RetentionTick{Now: offsetsMs - 1}).Retention; len(r.ExpiredGroups) != 0 {
		t.Errorf("offsets expired a millisecond early")
	}
	if r := p.Apply(RetentionTick{Now: offsetsMs}).Retention; len(r.ExpiredGroups) != 1 {
		t.Errorf("offsets not expired at %d ms", offsetsMs)
	}
}

func TestDefaultInitialRebalanceDelayAtItsEdge(t *testing.T) {
	c := NewCoordinator(CoordinatorConfig{})
	c.Apply(JoinGroup{Now: 0, RequestID: 1, Group: "g", ProtocolType: "consumer", Protocols: []Protocol{{Name: "r"}},
		SessionMs: 6000, RebalanceMs: 60000, NewMemberID: "m"})
	delay := base.GroupInitialRebalanceDelayDefault.Milliseconds()
	if effs := c.Apply(GroupTick{Now: delay - 1}).Effects; len(effs) != 0 {
		t.Errorf("join completed before the initial delay: %v", effs)
	}
	if d := c.Apply(GroupTick{Now: delay}); len(d.Effects) == 0 || c.Describe("g").State != GroupCompletingRebalance {
		t.Errorf("join not completed at the initial delay: %v", d.Effects)
	}
}

package broker

import (
	"reflect"
	"testing"

	"github.com/ferry-mq/ferry/internal/base"
)

// TestStreamConsumerLagReadsCommittedOffsetsAndStopsAtItsLimit: the lag
// accessor reports every group's committed offset against the partition's
// high watermark and the end of its data, by partition then group, without
// a connection of the group, and leaves out what passes its limit. Lag
// counts to the end of the data: the commits' own entries move the high
// watermark but leave nothing to read.
func TestStreamConsumerLagReadsCommittedOffsetsAndStopsAtItsLimit(t *testing.T) {
	b := openNode(t, nodeOpts{})
	c := guestConn(t, b)
	ctx := testCtx(t)
	if err := c.DeclareStream(ctx, StreamSpec{Name: "lagged", Partitions: 2}); err != nil {
		t.Fatal(err)
	}
	p0, p1 := PartitionRef{Stream: "lagged"}, PartitionRef{Stream: "lagged", Partition: 1}
	for ref, err := range c.CommitOffsets(ctx, "b-group", -1, "", "", map[PartitionRef]CommittedOffset{p0: {Offset: 0, LeaderEpoch: -1}, p1: {Offset: 1, LeaderEpoch: -1}}) {
		if err != nil {
			t.Fatalf("commit of %v: %v", ref, err)
		}
	}
	commitStandalone(t, c, "a-group", p0, 1)
	hw0, hw1 := logEnd(t, c, p0), logEnd(t, c, p1)
	want := []ConsumerLag{
		{Partition: 0, Group: "a-group", Committed: 1, HighWatermark: hw0, DataEnd: 0},
		{Partition: 0, Group: "b-group", Committed: 0, HighWatermark: hw0, DataEnd: 0},
		{Partition: 1, Group: "b-group", Committed: 1, HighWatermark: hw1, DataEnd: 0},
	}
	got, truncated, err := b.StreamConsumerLag("/", "lagged", len(want))
	if err != nil || truncated || !reflect.DeepEqual(got, want) {
		t.Fatalf("StreamConsumerLag at its limit = %+v, truncated %v, %v; want %+v, not truncated", got, truncated, err, want)
	}
	// Commits take offsets (a control batch each): partition 0 holds two,
	// and no data.
	if got[1].Lag() != 0 || hw0 < 2 {
		t.Errorf("b-group's lag on partition 0 with no data = %d (high watermark %d), want 0", got[1].Lag(), hw0)
	}
	got, truncated, err = b.StreamConsumerLag("/", "lagged", len(want)-1)
	if err != nil || !truncated || !reflect.DeepEqual(got, want[:len(want)-1]) {
		t.Errorf("StreamConsumerLag one under = %+v, truncated %v, %v; want the first %d, truncated", got, truncated, err, len(want)-1)
	}
	if _, _, err := b.StreamConsumerLag("/", "ghost", 10); err == nil {
		t.Error("StreamConsumerLag of a missing stream succeeded")
	}

	// Three records; a-group reads them all and commits the end, which
	// moves the high watermark past it: its lag is 0, b-group's the
	// offsets from its commit to the end of the data.
	base0, _, _, err := c.ProduceBatch(ctx, p0, kafkaBatch(t, plainHeader(), []int64{1, 2, 3}, "r1", "r2", "r3"), -1)
	if err != nil {
		t.Fatal(err)
	}
	end := base0 + 3
	commitStandalone(t, c, "a-group", p0, end)
	got, _, err = b.StreamConsumerLag("/", "lagged", 10)
	if err != nil || len(got) != 3 {
		t.Fatalf("StreamConsumerLag after the data = %+v, %v", got, err)
	}
	if ag, bg := got[0], got[1]; ag.DataEnd != end || ag.HighWatermark <= end || ag.Lag() != 0 || bg.Lag() != end {
		t.Errorf("after 3 records and a commit of their end %d: a-group %+v lag %d, b-group lag %d; want DataEnd %d, the high watermark past it, lags 0 and %d",
			end, ag, ag.Lag(), bg.Lag(), end, end)
	}
}

func TestConsumerLagIsZeroForACommitPastTheEnd(t *testing.T) {
	if got := (ConsumerLag{Committed: 9, HighWatermark: 5, DataEnd: 5}).Lag(); got != 0 {
		t.Errorf("Lag() = %d, want 0", got)
	}
}

// TestStreamConsumerLagLeavesOutPartitionsWithoutACommit pins the decision
// of docs/kafka.md ("Consumer lag without a commit"): a group with a
// member that never committed has no lag entry, and a group that
// committed one partition of a stream has none for the others (no -1
// sentinel, unlike kafka_exporter), whatever the partitions hold.
func TestStreamConsumerLagLeavesOutPartitionsWithoutACommit(t *testing.T) {
	b := openNode(t, nodeOpts{})
	c := guestConn(t, b)
	ctx := testCtx(t)
	if err := c.DeclareStream(ctx, StreamSpec{Name: "fresh", Partitions: 2}); err != nil {
		t.Fatal(err)
	}
	for _, g := range []string{"never", "half"} {
		if err := c.JoinAssigned(ctx, g, "fresh", "m", base.GroupSessionTimeoutMax, func(Assignment) {}); err != nil {
			t.Fatalf("JoinAssigned %s: %v", g, err)
		}
	}
	p0 := PartitionRef{Stream: "fresh"}
	if err := c.CommitOffsets(ctx, "half", 1, "m", "", map[PartitionRef]CommittedOffset{p0: {Offset: 0, LeaderEpoch: -1}})[p0]; err != nil {
		t.Fatalf("commit: %v", err)
	}
	hw0 := logEnd(t, c, p0)
	got, truncated, err := b.StreamConsumerLag("/", "fresh", 100)
	// The coordinator marks the partition after the group's first commit
	// there (group_expiry.go), asynchronously: the high watermark may
	// have moved past hw0 since.
	if len(got) == 1 && got[0].HighWatermark >= hw0 {
		got[0].HighWatermark = hw0
	}
	want := []ConsumerLag{{Partition: 0, Group: "half", Committed: 0, HighWatermark: hw0}}
	if err != nil || truncated || !reflect.DeepEqual(got, want) {
		t.Errorf("StreamConsumerLag = %+v, truncated %v, %v; want only %+v (a high watermark of at least %d)", got, truncated, err, want, hw0)
	}
}

// TestLatestIsTheEndOfTheDataPastFerrysOwnEntries: offset commits add
// Ferry's own entries to a partition's log after its last record. The
// latest offset, a fetch's data end and a stream consumer from the last
// message all stop at the data, so the offset before the latest is the
// last record, as Kafka clients (seek to the end minus one, kcat -o -1)
// and RabbitMQ stream clients (x-stream-offset last) expect.
func TestLatestIsTheEndOfTheDataPastFerrysOwnEntries(t *testing.T) {
	b := openNode(t, nodeOpts{})
	c := guestConn(t, b)
	ctx := testCtx(t)
	if err := c.DeclareStream(ctx, StreamSpec{Name: "tail"}); err != nil {
		t.Fatal(err)
	}
	p := PartitionRef{Stream: "tail"}
	base0, _, _, err := c.ProduceBatch(ctx, p, kafkaBatch(t, plainHeader(), []int64{1, 2, 3}, "r1", "r2", "r3"), -1)
	if err != nil {
		t.Fatal(err)
	}
	end := base0 + 3
	for _, g := range []string{"g1", "g2"} {
		commitStandalone(t, c, g, p, end)
	}
	if hw := logEnd(t, c, p); hw < end+2 {
		t.Fatalf("log end %d after two commits past the data's end %d, want at least %d", hw, end, end+2)
	}
	if got, _, err := c.ListOffset(ctx, p, OffsetLatest); err != nil || got != end {
		t.Errorf("latest: %d %v, want the end of the data %d", got, err, end)
	}
	res, err := c.Fetch(ctx, p, base0, 1<<20, 1, 0)
	if err != nil || res.DataEnd != end || res.HighWatermark < end+2 {
		t.Errorf("fetch: data end %d, high watermark %d, %v; want %d and at least %d", res.DataEnd, res.HighWatermark, err, end, end+2)
	}
	col := newCollector()
	s, err := c.Subscribe(ctx, SubscribeOptions{Queue: "tail", Tag: "last", PrefetchCount: 10,
		StreamOffset: &StreamStart{Kind: StreamLast}}, col.deliver, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d := col.next(t); string(d.Message.Body) != "r3" || d.StreamOffset != end-1 {
		t.Errorf("from the last message: %q at %d, want r3 at %d", d.Message.Body, d.StreamOffset, end-1)
	}
	if err := s.Cancel(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestANegativeCommitIsKeptAndHasNoLag: as Kafka's broker, Ferry keeps a
// negative committed offset (KafkaJS's resetOffsets commits -2 for the
// earliest) and returns it; it is a client's marker, not a position, so
// it has no lag.
func TestANegativeCommitIsKeptAndHasNoLag(t *testing.T) {
	b := openNode(t, nodeOpts{})
	c := guestConn(t, b)
	ctx := testCtx(t)
	if err := c.DeclareStream(ctx, StreamSpec{Name: "reset"}); err != nil {
		t.Fatal(err)
	}
	p := PartitionRef{Stream: "reset"}
	for g, off := range map[string]int64{"marker": -2, "position": 0} {
		commitStandalone(t, c, g, p, off)
	}
	got, err := c.FetchOffsets(ctx, "marker", []PartitionRef{p})
	if err != nil || got[p].Offset != -2 {
		t.Errorf("fetched %+v %v, want -2", got, err)
	}
	lags, _, err := b.StreamConsumerLag("/", "reset", 10)
	if err != nil || len(lags) != 1 || lags[0].Group != "position" {
		t.Errorf("lag series %+v %v, want only the group at a position", lags, err)
	}
}

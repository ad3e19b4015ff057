package broker

import (
	"fmt"
	"math"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/controller"
	"github.com/ferry-mq/ferry/internal/storage/log/batch"
	"github.com/ferry-mq/ferry/internal/stream"
)

// kafkaBatch builds a client batch of records with the given values and
// timestamps (ms).
func kafkaBatch(t testing.TB, h batch.Header, ts []int64, values ...string) []byte {
	t.Helper()
	var bld batch.Builder
	bld.Begin(nil, h)
	for i, v := range values {
		if err := bld.Add(ts[i], []byte(fmt.Sprint("k", i)), []byte(v), []batch.RecordHeader{{Key: []byte("h"), Value: []byte("v")}}); err != nil {
			t.Fatal(err)
		}
	}
	out, err := bld.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func plainHeader() batch.Header {
	return batch.Header{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}
}

// records decodes fetched batches into their data records' values and
// offsets, skipping control batches as Kafka clients do.
func records(t testing.TB, data []byte) (vals []string, offs []int64) {
	t.Helper()
	for len(data) > 0 {
		h, err := batch.ParseHeader(data)
		if err != nil {
			t.Fatalf("fetched bytes: %v", err)
		}
		b := data[:h.Size()]
		data = data[h.Size():]
		if h.Attributes.IsControl() {
			continue
		}
		it, err := batch.Records(b)
		if err != nil {
			t.Fatal(err)
		}
		for r, ok := it.Next(); ok; r, ok = it.Next() {
			vals = append(vals, string(r.Value))
			offs = append(offs, h.BaseOffset+int64(r.OffsetDelta))
		}
	}
	return vals, offs
}

func TestProduceFetchAndListOffsets(t *testing.T) {
	b := openNode(t, nodeOpts{})
	c := guestConn(t, b)
	ctx := testCtx(t)
	if err := c.DeclareStream(ctx, StreamSpec{Name: "events", Partitions: 2}); err != nil {
		t.Fatalf("DeclareStream: %v", err)
	}
	if err := c.DeclareStream(ctx, StreamSpec{Name: "events"}); base.CodeOf(err) == 0 {
		t.Fatalf("declaring an existing stream the Kafka way succeeded")
	}
	p0 := PartitionRef{Stream: "events", Partition: 0}
	base1, _, _, err := c.ProduceBatch(ctx, p0, kafkaBatch(t, plainHeader(), []int64{1000, 2000}, "a", "b"), -1)
	if err != nil {
		t.Fatalf("ProduceBatch: %v", err)
	}
	base2, _, _, err := c.ProduceBatch(ctx, p0, kafkaBatch(t, plainHeader(), []int64{3000}, "c"), -1)
	if err != nil || base2 <= base1+1 {
		t.Fatalf("second ProduceBatch: base %d (first %d) %v", base2, base1, err)
	}
	res, err := c.Fetch(ctx, p0, base1, 1<<20, 1, 0)
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	vals, offs := records(t, res.Records)
	if fmt.Sprint(vals) != "[a b c]" || offs[0] != base1 || offs[2] != base2 {
		t.Fatalf("fetched %v at %v; want [a b c] at %d,%d,%d", vals, offs, base1, base1+1, base2)
	}
	if res.HighWatermark != base2+1 {
		t.Fatalf("high watermark %d, want %d", res.HighWatermark, base2+1)
	}
	res, err = c.Fetch(ctx, p0, base1+1, 1<<20, 1, 0)
	if vals, _ := records(t, res.Records); err != nil || fmt.Sprint(vals) != "[a b c]" {
		t.Fatalf("fetch from the middle of a batch returns the whole batch: %v %v", vals, err)
	}
	if _, err := c.Fetch(ctx, p0, res.HighWatermark+5, 1<<20, 1, 0); base.CodeOf(err) != base.CodeOutOfRange {
		t.Fatalf("fetch past the end: %v, want CodeOutOfRange", err)
	}
	for _, tc := range []struct {
		ts, want, wantTs int64
	}{
		{OffsetLatest, base2 + 1, -1},
		{1500, base1 + 1, 2000},
		{2000, base1 + 1, 2000},
		{2500, base2, 3000},
		{OffsetMaxTimestamp, base2, 3000},
		{9000, -1, -1},
	} {
		off, ts, err := c.ListOffset(ctx, p0, tc.ts)
		if err != nil || off != tc.want || ts != tc.wantTs {
			t.Errorf("ListOffset(%d): %d, %d, %v; want %d, %d", tc.ts, off, ts, err, tc.want, tc.wantTs)
		}
	}
	if off, _, _ := c.ListOffset(ctx, p0, OffsetEarliest); off != 0 {
		t.Errorf("earliest: %d, want 0", off)
	}
	if _, _, _, err := c.ProduceBatch(ctx, PartitionRef{Stream: "events", Partition: 7}, kafkaBatch(t, plainHeader(), []int64{1}, "x"), -1); base.CodeOf(err) != base.CodeNotFound {
		t.Fatalf("produce to a missing partition: %v, want CodeNotFound", err)
	}
}

func TestFetchLongPollWakesOnProduce(t *testing.T) {
	b := openNode(t, nodeOpts{})
	c := guestConn(t, b)
	ctx := testCtx(t)
	if err := c.DeclareStream(ctx, StreamSpec{Name: "s"}); err != nil {
		t.Fatal(err)
	}
	p := PartitionRef{Stream: "s"}
	hw, _, _ := c.ListOffset(ctx, p, OffsetLatest)
	got := make(chan FetchResult, 1)
	go func() {
		res, _ := c.Fetch(ctx, p, hw, 1<<20, 1, 20*time.Second)
		got <- res
	}()
	if _, _, _, err := c.ProduceBatch(ctx, p, kafkaBatch(t, plainHeader(), []int64{1}, "late"), 1); err != nil {
		t.Fatal(err)
	}
	select {
	case res := <-got:
		if vals, _ := records(t, res.Records); fmt.Sprint(vals) != "[late]" {
			t.Fatalf("long poll returned %v, want [late]", vals)
		}
	case <-ctx.Done():
		t.Fatal("the long poll did not return after a produce")
	}
}

func TestIdempotentProducerDuplicatesAndSequenceErrors(t *testing.T) {
	b := openNode(t, nodeOpts{})
	c := guestConn(t, b)
	ctx := testCtx(t)
	p, pid, epoch := idempotentStream(t, ctx, c, StreamSpec{Name: "idem"})
	h := batch.Header{ProducerID: pid, ProducerEpoch: epoch, BaseSequence: 0}
	first := kafkaBatch(t, h, []int64{1, 2}, "a", "b")
	off1, _, _, err := c.ProduceBatch(ctx, p, first, -1)
	if err != nil {
		t.Fatal(err)
	}
	off2, _, _, err := c.ProduceBatch(ctx, p, first, -1)
	if err != nil || off2 != off1 {
		t.Fatalf("duplicate: offset %d %v, want the original %d", off2, err, off1)
	}
	h.BaseSequence = 5
	if _, _, _, err := c.ProduceBatch(ctx, p, kafkaBatch(t, h, []int64{3}, "gap"), -1); base.CodeOf(err) != base.CodeInvalidArgument {
		t.Fatalf("out-of-order sequence: %v, want CodeInvalidArgument", err)
	}
	res, _ := c.Fetch(ctx, p, 0, 1<<20, 1, 0)
	if vals, _ := records(t, res.Records); fmt.Sprint(vals) != "[a b]" {
		t.Fatalf("the log holds %v, want [a b] once", vals)
	}
}

func TestAMQPPublishToStreamUsesKeysAndConsumesFromOffsets(t *testing.T) {
	b := openNode(t, nodeOpts{})
	c := guestConn(t, b)
	ctx := testCtx(t)
	qi, err := c.DeclareQueue(ctx, QueueSpec{Name: "st", Durable: true, Arguments: Headers{
		{"x-queue-type", StringValue("stream")}, {"x-ferry-partitions", IntValue(KindInt64, 3)}}})
	if err != nil || !qi.IsStream {
		t.Fatalf("declare stream: %+v %v", qi, err)
	}
	var msgs []Message
	for i := range 6 {
		key := fmt.Sprint("key-", i%2)
		msgs = append(msgs, Message{RoutingKey: "st", Key: []byte(key), Body: []byte(fmt.Sprint("m", i)), MessageID: fmt.Sprint(i)})
	}
	publishAll(t, c, msgs)
	for k := range 2 {
		want := stream.KeyPartition([]byte(fmt.Sprint("key-", k)), 3)
		res, err := c.Fetch(ctx, PartitionRef{Stream: "st", Partition: want}, 0, 1<<20, 1, 0)
		if err != nil {
			t.Fatal(err)
		}
		vals, _ := records(t, res.Records)
		wantVals := fmt.Sprint([]string{fmt.Sprint("m", k), fmt.Sprint("m", k+2), fmt.Sprint("m", k+4)})
		if k == 1 && stream.KeyPartition([]byte("key-0"), 3) == want {
			continue // both keys hash to one partition: checked by k=0's count
		}
		if fmt.Sprint(vals) != wantVals {
			t.Fatalf("partition %d (key-%d) holds %v, want %v", want, k, vals, wantVals)
		}
	}
	col := newCollector()
	s, err := c.Subscribe(ctx, SubscribeOptions{Queue: "st", Tag: "sc", PrefetchCount: 100,
		StreamOffset: &StreamStart{Kind: StreamFirst}}, col.deliver, nil)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for range 6 {
		d := col.next(t)
		seen[string(d.Message.Body)] = true
		if d.Message.RoutingKey != "st" || d.Message.MessageID == "" {
			t.Fatalf("stream delivery lost its properties: %+v", d.Message)
		}
		if err := s.Ack(d.DeliveryID, false); err != nil {
			t.Fatal(err)
		}
	}
	if len(seen) != 6 {
		t.Fatalf("stream consumer saw %v, want 6 distinct messages", seen)
	}
	publishOne(t, c, "", "st", "after")
	if d := col.next(t); string(d.Message.Body) != "after" {
		t.Fatalf("new message: %q, want after", d.Message.Body)
	}
	if err := s.Cancel(ctx); err != nil {
		t.Fatal(err)
	}
}

// Retention releases whole chunks of StreamRetentionChunkBytes (8 MiB):
// the test writes a bit more than one chunk of old data.
func TestStreamRetentionByAgeMovesTheLogStart(t *testing.T) {
	clock := base.NewFakeClock(epoch)
	b := openNode(t, nodeOpts{clock: clock, tweak: func(c *Config) { c.RetentionInterval = time.Minute }})
	c := guestConn(t, b)
	ctx := testCtx(t)
	if err := c.DeclareStream(ctx, StreamSpec{Name: "r", Config: map[string]string{"retention.ms": "3600000", "segment.bytes": "1048576"}}); err != nil {
		t.Fatal(err)
	}
	p := PartitionRef{Stream: "r"}
	// The leader proposes the declared retention.ms as a Configure of its
	// own; until that applies, the partition retains everything, and the
	// clock below stops advancing before a late Configure would matter.
	g, _, err := c.partitionOf(p, ActionRead)
	if err != nil {
		t.Fatal(err)
	}
	var retentionMs int64
	waitFor(t, b, func() bool {
		if pl := b.partitionLeaderOf(g); pl != nil {
			pl.fsm.with(func(sp *stream.Partition) { retentionMs = sp.Config().RetentionMs })
		}
		return retentionMs == 3600000
	}, func() string { return fmt.Sprintf("retention.ms not applied: the partition has %d", retentionMs) })
	old := epoch.UnixMilli()
	big := string(make([]byte, 1<<20-1024))
	for range base.StreamRetentionChunkBytes>>20 + 1 {
		if _, _, _, err := c.ProduceBatch(ctx, p, kafkaBatch(t, plainHeader(), []int64{old}, big), -1); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(2 * time.Hour)
	newest := clock.Now()
	if _, _, _, err := c.ProduceBatch(ctx, p, kafkaBatch(t, plainHeader(), []int64{newest.UnixMilli()}, "new"), -1); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(testTimeout)
	for {
		start, _, err := c.ListOffset(ctx, p, OffsetEarliest)
		if err != nil {
			t.Fatal(err)
		}
		if start > 0 {
			res, err := c.Fetch(ctx, p, start, 64<<20, 1, 0)
			vals, _ := records(t, res.Records)
			if err != nil || len(vals) == 0 || vals[len(vals)-1] != "new" {
				t.Fatalf("after retention, fetching from %d: %d records ending %q, %v; want the newest last", start, len(vals), vals[max(0, len(vals)-1):], err)
			}
			if _, err := c.Fetch(ctx, p, 0, 1<<20, 1, 0); base.CodeOf(err) != base.CodeOutOfRange {
				t.Fatalf("fetching a released offset: %v, want CodeOutOfRange", err)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("retention by age did not move the log start")
		}
		// Each minute fires the retention timer, and its RetentionTick
		// applies later, with the time it read when it fired. The clock
		// stops short of the hour that would age "new" out too: under
		// load, the test can advance many minutes while a tick is on its
		// way.
		changed := nextChange(b)
		if clock.Now().Before(newest.Add(50 * time.Minute)) {
			clock.Advance(time.Minute)
		}
		changed()
	}
}

// TestSegmentSettingsReachTheLogs: a stream partition's log rolls at the
// stream's segment.bytes, at declaration and after AlterStream (segment.ms
// with it, no shorter than base.SegmentAgeMin); a queue's log rolls at
// Config.SegmentBytes.
func TestSegmentSettingsReachTheLogs(t *testing.T) {
	b := openNode(t, nodeOpts{tweak: func(c *Config) { c.SegmentBytes = 16 << 10 }})
	c := guestConn(t, b)
	ctx := testCtx(t)
	// segments lists the sizes of group g's segment files.
	segments := func(g GroupID) []int64 {
		t.Helper()
		dir := path.Join("/data/logs", fmt.Sprintf("%020d", g))
		names, err := b.cfg.FS.List(dir)
		if err != nil {
			t.Fatal(err)
		}
		var sizes []int64
		for _, n := range names {
			if strings.HasSuffix(n, ".seg") {
				fi, err := b.cfg.FS.Stat(path.Join(dir, n))
				if err != nil {
					t.Fatal(err)
				}
				sizes = append(sizes, fi.Size())
			}
		}
		return sizes
	}
	body := strings.Repeat("x", 20<<10)
	produce := func(p PartitionRef, n int) {
		t.Helper()
		for range n {
			if _, _, _, err := c.ProduceBatch(ctx, p, kafkaBatch(t, plainHeader(), []int64{1}, body), -1); err != nil {
				t.Fatal(err)
			}
		}
	}

	if err := c.DeclareStream(ctx, StreamSpec{Name: "s", Config: map[string]string{"segment.bytes": "65536"}}); err != nil {
		t.Fatal(err)
	}
	p := PartitionRef{Stream: "s"}
	g, _, err := c.partitionOf(p, ActionRead)
	if err != nil {
		t.Fatal(err)
	}
	produce(p, 8)
	before := segments(g)
	if len(before) < 3 {
		t.Fatalf("160 KiB in 64 KiB segments: segment sizes %v, want at least 3", before)
	}
	for _, size := range before[:len(before)-1] {
		if size <= 40<<10 || size > 64<<10 { // three batches of 20 KiB each
			t.Fatalf("segment sizes %v: want three batches in each full one, so at most 64 KiB and not the queues' 16 KiB", before)
		}
	}

	// retention.ms changes the partition's own configuration: once that
	// applies, the reconciler has passed the segment settings on too.
	if err := c.AlterStream(ctx, "s", map[string]string{"segment.bytes": "1048576", "segment.ms": "10", "retention.ms": "3600000"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, b, func() bool {
		var ms int64
		if pl := b.partitionLeaderOf(g); pl != nil {
			pl.fsm.with(func(sp *stream.Partition) { ms = sp.Config().RetentionMs })
		}
		return ms == 3600000
	}, func() string { return "AlterStream's retention.ms never reached the partition" })
	b.logs.rollMu.Lock()
	got := b.logs.rolling[g]
	b.logs.rollMu.Unlock()
	if want := (rollLimits{bytes: 1 << 20, age: base.SegmentAgeMin}); got != want {
		t.Fatalf("roll limits after AlterStream: %+v, want %+v", got, want)
	}
	produce(p, 8)
	if after := segments(g); len(after) != len(before) {
		t.Fatalf("160 KiB more with 1 MiB segments: segment sizes %v, want %d segments as before (%v)", after, len(before), before)
	}

	if _, err := c.DeclareQueue(ctx, QueueSpec{Name: "q", Durable: true}); err != nil {
		t.Fatal(err)
	}
	for range 4 {
		if _, err := c.Publish(ctx, "", []Message{{RoutingKey: "q", Body: []byte(body)}}, PublishOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	e, err := b.lookupQueue("/", "q")
	if err != nil {
		t.Fatal(err)
	}
	if sizes := segments(e.group); len(sizes) < 4 {
		t.Fatalf("80 KiB in a queue with 16 KiB segments: segment sizes %v, want at least 4", sizes)
	}
}

func TestPartitionRolling(t *testing.T) {
	for _, c := range []struct {
		ms   int64
		want time.Duration
	}{
		{0, 0}, // the log's default
		{1, base.SegmentAgeMin},
		{600_000, 10 * time.Minute},
		{math.MaxInt64, time.Duration(math.MaxInt64/int64(time.Millisecond)) * time.Millisecond},
	} {
		if got := partitionRolling(controller.StreamConfig{SegmentBytes: 4096, SegmentMs: c.ms}); got != (rollLimits{bytes: 4096, age: c.want}) {
			t.Errorf("segment.ms %d: %+v, want age %v", c.ms, got, c.want)
		}
	}
}

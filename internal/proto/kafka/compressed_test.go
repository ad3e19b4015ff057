package kafka

import (
	"context"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferry-mq/ferry/internal/broker"
	"github.com/ferry-mq/ferry/internal/storage/log/batch"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Compressed batches on the real broker: stored as produced, but
// ListOffsets by timestamp finds the exact record inside one, and a
// stream consumer (as the AMQP front end subscribes) gets its records one
// by one.

var franzCodecs = []struct {
	name  string
	codec kgo.CompressionCodec
	id    int
}{
	{"gzip", kgo.GzipCompression(), batch.CompressionGzip}, {"snappy", kgo.SnappyCompression(), batch.CompressionSnappy},
	{"lz4", kgo.Lz4Compression(), batch.CompressionLZ4}, {"zstd", kgo.ZstdCompression(), batch.CompressionZstd},
}

// produceOneCompressedBatch produces n records with timestamps base,
// base+1s, ... as one batch compressed with codec (manual flushing keeps
// them together), checks on the broker that they were stored as one
// compressed batch, and returns their offsets.
func produceOneCompressedBatch(t *testing.T, b *broker.Broker, addr, topic string, codec kgo.CompressionCodec, codecID int,
	base time.Time, n int) []int64 {
	t.Helper()
	ctx := testCtx(t)
	prod := franzClient(t, addr, kgo.DefaultProduceTopic(topic), kgo.ProducerBatchCompression(codec), kgo.ManualFlushing())
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{Key: []byte("key"), Value: []byte(topic + "-" + strconv.Itoa(i)), Timestamp: base.Add(time.Duration(i) * time.Second),
			// The padding makes compression pay: franz-go sends a batch
			// uncompressed when compressing would not shrink it.
			Headers: []kgo.RecordHeader{{Key: "seq", Value: []byte(strconv.Itoa(i))}, {Key: "pad", Value: []byte(strings.Repeat("pad ", 64))}}}
		prod.Produce(ctx, recs[i], func(_ *kgo.Record, err error) {
			if err != nil {
				t.Errorf("produce: %v", err)
			}
		})
	}
	if err := prod.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	offs := make([]int64, n)
	for i, r := range recs {
		offs[i] = r.Offset
	}
	res, err := guestBrokerConn(t, b).Fetch(ctx, broker.PartitionRef{Stream: topic}, offs[0], 1<<20, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	h, err := batch.ParseHeader(res.Records)
	if err != nil || h.Attributes.Compression() != codecID || h.BaseOffset != offs[0] || h.RecordCount != int32(n) {
		t.Fatalf("stored: %+v %v; want one batch of %d records compressed with codec %d at %d", h, err, n, codecID, offs[0])
	}
	return offs
}

func TestBrokerListOffsetsByTimestampInsideCompressedBatches(t *testing.T) {
	t.Parallel()
	b, srv := startBroker(t, nil)
	ctx := testCtx(t)
	adm := kadm.NewClient(franzClient(t, srv.addr))
	for _, tc := range franzCodecs {
		topic := "ts-" + tc.name
		createTopics(t, srv.addr, 1, topic)
		base := time.UnixMilli(1_700_000_000_000)
		offs := produceOneCompressedBatch(t, b, srv.addr, topic, tc.codec, tc.id, base, 5)
		for _, q := range []struct {
			after time.Duration
			want  int64
		}{{0, offs[0]}, {2500 * time.Millisecond, offs[3]}, {3 * time.Second, offs[3]}, {time.Hour, offs[4] + 1}} {
			lo, err := adm.ListOffsetsAfterMilli(ctx, base.Add(q.after).UnixMilli(), topic)
			l, ok := lo.Lookup(topic, 0)
			if err != nil || !ok || l.Err != nil || l.Offset != q.want {
				t.Errorf("%s: after %v: got %+v %v, want offset %d", tc.name, q.after, l, err, q.want)
			}
		}
		lo, err := adm.ListMaxTimestampOffsets(ctx, topic)
		if l, _ := lo.Lookup(topic, 0); err != nil || l.Offset != offs[4] {
			t.Errorf("%s: max timestamp: got %+v %v, want offset %d", tc.name, l, err, offs[4])
		}
	}
}

// kcat (librdkafka) starting at a timestamp inside a compressed batch
// gets the record at that timestamp first.
func TestKcatConsumesFromATimestampInsideACompressedBatch(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("kcat"); err != nil {
		t.Skip("kcat not installed: apt-get install -y kcat (Debian package kcat)")
	}
	b, srv := startBroker(t, nil)
	createTopics(t, srv.addr, 1, "kcat-ts")
	base := time.UnixMilli(1_700_000_000_000)
	produceOneCompressedBatch(t, b, srv.addr, "kcat-ts", kgo.Lz4Compression(), batch.CompressionLZ4, base, 5)
	at := base.Add(2 * time.Second).UnixMilli()
	out := kcat(t, "", "-b", srv.addr, "-C", "-t", "kcat-ts", "-p", "0", "-o", "s@"+strconv.FormatInt(at, 10), "-e", "-f", "%s\n")
	if got := strings.Fields(out); strings.Join(got, " ") != "kcat-ts-2 kcat-ts-3 kcat-ts-4" {
		t.Errorf("kcat -o s@%d printed %q, want the records from kcat-ts-2 on", at, got)
	}
}

func TestCrossProtocolCompressedKafkaBatchesReachAStreamConsumer(t *testing.T) {
	t.Parallel()
	b, srv := startBroker(t, nil)
	ctx := testCtx(t)
	createTopics(t, srv.addr, 1, "zipped")
	var want []string
	for i, tc := range franzCodecs {
		offs := produceOneCompressedBatch(t, b, srv.addr, "zipped", tc.codec, tc.id, time.UnixMilli(int64(i+1)*1_000_000), 3)
		for j := range offs {
			want = append(want, "zipped-"+strconv.Itoa(j))
		}
	}
	deliveries := make(chan broker.Delivery, len(want)+1)
	amqp := guestBrokerConn(t, b)
	sub, err := amqp.Subscribe(ctx, broker.SubscribeOptions{Queue: "zipped", Tag: "zipped", NoAck: true,
		StreamOffset: &broker.StreamStart{Kind: broker.StreamFirst}}, func(d broker.Delivery) { deliveries <- d }, func(error) {})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Cancel(context.Background())
	last := int64(-1)
	for i, w := range want {
		select {
		case d := <-deliveries:
			seq, _ := d.Message.Headers.Get("seq")
			if string(d.Message.Body) != w || seq.Text() != w[len("zipped-"):] || string(d.Message.Key) != "key" || d.StreamOffset <= last {
				t.Fatalf("delivery %d: %q seq %q key %q at offset %d (previous %d); want %q with its header and key, in order",
					i, d.Message.Body, seq.Text(), d.Message.Key, d.StreamOffset, last, w)
			}
			last = d.StreamOffset
		case <-ctx.Done():
			t.Fatalf("the stream consumer got %d of %d records", i, len(want))
		}
	}
}

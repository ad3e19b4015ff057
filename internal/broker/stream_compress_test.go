package broker

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/storage/log/batch"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// Compressed batches are stored as the Kafka producer sent them; the
// broker decompresses them only where it needs the records: stream
// consumers (AMQP x-stream-offset, the broker's subscriptions) and
// ListOffsets by timestamp.

var testCodecs = []struct {
	name  string
	codec int
}{{"gzip", batch.CompressionGzip}, {"snappy", batch.CompressionSnappy}, {"lz4", batch.CompressionLZ4}, {"zstd", batch.CompressionZstd}}

func compressPayload(t testing.TB, codec int, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	switch codec {
	case batch.CompressionGzip:
		w := gzip.NewWriter(&buf)
		w.Write(data)
		w.Close()
	case batch.CompressionSnappy:
		return s2.EncodeSnappy(nil, data)
	case batch.CompressionLZ4:
		w := lz4.NewWriter(&buf)
		w.Write(data)
		w.Close()
	case batch.CompressionZstd:
		enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
		if err != nil {
			t.Fatal(err)
		}
		defer enc.Close()
		return enc.EncodeAll(data, nil)
	}
	return buf.Bytes()
}

// withPayload returns the batch plain with its records replaced by payload
// (already compressed with codec): the header a Kafka client sends, with
// the codec bits, the length and the CRC for the new bytes.
func withPayload(plain []byte, codec int, payload []byte) []byte {
	out := append(bytes.Clone(plain[:batch.HeaderSize]), payload...)
	attrs := binary.BigEndian.Uint16(out[21:])
	binary.BigEndian.PutUint16(out[21:], attrs&^0x07|uint16(codec))
	binary.BigEndian.PutUint32(out[8:], uint32(len(out)-batch.LogOverhead))
	binary.BigEndian.PutUint32(out[17:], batch.Checksum(out[batch.CRCStart:])) // the crc field
	return out
}

// compressedBatch builds a client batch of values with timestamps ts,
// compressed with codec.
func compressedBatch(t testing.TB, codec int, ts []int64, values ...string) []byte {
	t.Helper()
	plain := kafkaBatch(t, plainHeader(), ts, values...)
	return withPayload(plain, codec, compressPayload(t, codec, plain[batch.HeaderSize:]))
}

func TestStreamConsumerDeliversTheRecordsOfCompressedBatches(t *testing.T) {
	b := openNode(t, nodeOpts{})
	c := guestConn(t, b)
	ctx := testCtx(t)
	if err := c.DeclareStream(ctx, StreamSpec{Name: "zipped"}); err != nil {
		t.Fatal(err)
	}
	p := PartitionRef{Stream: "zipped"}
	var want []string
	var wantOffs []int64
	for i, tc := range testCodecs {
		vals := []string{fmt.Sprint(tc.name, "-a"), fmt.Sprint(tc.name, "-b"), fmt.Sprint(tc.name, "-c")}
		ts := []int64{int64(i*10 + 1), int64(i*10 + 2), int64(i*10 + 3)}
		off, _, _, err := c.ProduceBatch(ctx, p, compressedBatch(t, tc.codec, ts, vals...), -1)
		if err != nil {
			t.Fatalf("%s: ProduceBatch: %v", tc.name, err)
		}
		want = append(want, vals...)
		wantOffs = append(wantOffs, off, off+1, off+2)
	}
	col := newCollector()
	s, err := c.Subscribe(ctx, SubscribeOptions{Queue: "zipped", Tag: "z", NoAck: true,
		StreamOffset: &StreamStart{Kind: StreamFirst}}, col.deliver, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Cancel(ctx)
	for i := range want {
		d := col.next(t)
		if string(d.Message.Body) != want[i] || d.StreamOffset != wantOffs[i] {
			t.Fatalf("delivery %d: %q at offset %d, want %q at %d", i, d.Message.Body, d.StreamOffset, want[i], wantOffs[i])
		}
		if v, ok := d.Message.Headers.Get("h"); !ok || v.Text() != "v" || string(d.Message.Key) != fmt.Sprint("k", i%3) {
			t.Fatalf("delivery %d: key %q, header h %v %v; want the record's key and header", i, d.Message.Key, v, ok)
		}
	}
	col.none(t)
}

func TestStreamConsumerStartsInsideACompressedBatch(t *testing.T) {
	b := openNode(t, nodeOpts{})
	c := guestConn(t, b)
	ctx := testCtx(t)
	if err := c.DeclareStream(ctx, StreamSpec{Name: "mid"}); err != nil {
		t.Fatal(err)
	}
	p := PartitionRef{Stream: "mid"}
	off, _, _, err := c.ProduceBatch(ctx, p, compressedBatch(t, batch.CompressionZstd, []int64{1, 2, 3, 4}, "a", "b", "c", "d"), -1)
	if err != nil {
		t.Fatal(err)
	}
	col := newCollector()
	s, err := c.Subscribe(ctx, SubscribeOptions{Queue: "mid", Tag: "m", NoAck: true,
		StreamOffset: &StreamStart{Kind: StreamOffset, Offset: off + 2}}, col.deliver, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Cancel(ctx)
	for i, w := range []string{"c", "d"} {
		if d := col.next(t); string(d.Message.Body) != w || d.StreamOffset != off+2+int64(i) {
			t.Fatalf("delivery %d: %q at %d, want %q at %d", i, d.Message.Body, d.StreamOffset, w, off+2+int64(i))
		}
	}
	col.none(t)
}

func TestListOffsetByTimestampFindsTheRecordInsideACompressedBatch(t *testing.T) {
	b := openNode(t, nodeOpts{})
	c := guestConn(t, b)
	ctx := testCtx(t)
	if err := c.DeclareStream(ctx, StreamSpec{Name: "times"}); err != nil {
		t.Fatal(err)
	}
	p := PartitionRef{Stream: "times"}
	for i, tc := range testCodecs {
		t0 := int64(1000 * (i + 1))
		off, _, _, err := c.ProduceBatch(ctx, p, compressedBatch(t, tc.codec, []int64{t0, t0 + 100, t0 + 200}, "x", "y", "z"), -1)
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range []struct{ ts, want, wantTs int64 }{
			{t0, off, t0}, {t0 + 50, off + 1, t0 + 100}, {t0 + 100, off + 1, t0 + 100}, {t0 + 101, off + 2, t0 + 200},
		} {
			got, gotTs, err := c.ListOffset(ctx, p, q.ts)
			if err != nil || got != q.want || gotTs != q.wantTs {
				t.Errorf("%s: ListOffset(%d) = %d, %d, %v; want the record at %d, %d", tc.name, q.ts, got, gotTs, err, q.want, q.wantTs)
			}
		}
		if got, gotTs, err := c.ListOffset(ctx, p, OffsetMaxTimestamp); err != nil || got != off+2 || gotTs != t0+200 {
			t.Errorf("%s: max timestamp = %d, %d, %v; want the batch's last record %d, %d", tc.name, got, gotTs, err, off+2, t0+200)
		}
	}
}

// A batch whose records decompress past BrokerStreamDecompressedBytesMax
// ends the subscription with too_large naming the batch, and ListOffsets
// over it fails the same way; nothing of the claimed size is allocated
// (snappy declares its size first). A batch at exactly the limit is read.
func TestCompressedBatchOverTheDecompressedLimitEndsTheConsumerWithAnError(t *testing.T) {
	b := openNode(t, nodeOpts{})
	c := guestConn(t, b)
	ctx := testCtx(t)
	if err := c.DeclareStream(ctx, StreamSpec{Name: "edge"}); err != nil {
		t.Fatal(err)
	}
	p := PartitionRef{Stream: "edge"}

	// Exactly at the limit: one record whose encoding fills it.
	limit := base.BrokerStreamDecompressedBytesMax
	valueLen := limit - 64
	plain := kafkaBatch(t, plainHeader(), []int64{5}, strings.Repeat("a", valueLen))
	valueLen += limit - (len(plain) - batch.HeaderSize)
	plain = kafkaBatch(t, plainHeader(), []int64{5}, strings.Repeat("a", valueLen))
	if got := len(plain) - batch.HeaderSize; got != limit {
		t.Fatalf("the edge batch's records are %d bytes, want %d", got, limit)
	}
	atLimit := withPayload(plain, batch.CompressionZstd, compressPayload(t, batch.CompressionZstd, plain[batch.HeaderSize:]))
	plain = nil
	okOff, _, _, err := c.ProduceBatch(ctx, p, atLimit, -1)
	if err != nil {
		t.Fatal(err)
	}

	// One byte over: a raw snappy block declaring limit+1 bytes.
	claim := binary.AppendUvarint(nil, uint64(limit+1))
	bomb := withPayload(kafkaBatch(t, plainHeader(), []int64{6}, "x"), batch.CompressionSnappy, claim)
	bombOff, _, _, err := c.ProduceBatch(ctx, p, bomb, -1)
	if err != nil {
		t.Fatal(err)
	}

	col := newCollector()
	ended := make(chan error, 1)
	s, err := c.Subscribe(ctx, SubscribeOptions{Queue: "edge", Tag: "e", NoAck: true,
		StreamOffset: &StreamStart{Kind: StreamFirst}}, col.deliver, func(err error) { ended <- err })
	if err != nil {
		t.Fatal(err)
	}
	defer s.Cancel(ctx)
	if d := col.next(t); d.StreamOffset != okOff || len(d.Message.Body) != valueLen {
		t.Fatalf("the batch at the limit: a %d-byte body at %d, want %d bytes at %d", len(d.Message.Body), d.StreamOffset, valueLen, okOff)
	}
	select {
	case err := <-ended:
		if base.CodeOf(err) != base.CodeTooLarge || !strings.Contains(err.Error(), fmt.Sprint("offsets ", bombOff)) {
			t.Fatalf("the subscription ended with %v, want too_large naming the batch at %d", err, bombOff)
		}
	case <-ctx.Done():
		t.Fatal("the subscription did not end at the batch over the limit")
	}
	if _, _, err := c.ListOffset(ctx, p, 6); base.CodeOf(err) != base.CodeTooLarge {
		t.Errorf("ListOffset over the batch: %v, want too_large", err)
	}
}

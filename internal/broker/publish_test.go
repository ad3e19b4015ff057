package broker

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/queue"
	"github.com/ferry-mq/ferry/internal/storage/log/batch"
)

// TestOnePublishCallRoutesEachMessageByItsOwnKeyAndHeaders pins that a
// call reuses a route only for messages it applies to: a run of one key
// shares it, a change of key or any header fields route again.
func TestOnePublishCallRoutesEachMessageByItsOwnKeyAndHeaders(t *testing.T) {
	b := openNode(t, nodeOpts{})
	c := guestConn(t, b)
	ctx := testCtx(t)
	if err := c.DeclareExchange(ctx, ExchangeSpec{Name: "dx", Type: "direct"}); err != nil {
		t.Fatal(err)
	}
	if err := c.DeclareExchange(ctx, ExchangeSpec{Name: "hx", Type: "headers"}); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"qa", "qb", "qh1", "qh2"} {
		declare(t, c, q)
	}
	for _, bs := range []BindingSpec{
		{Source: "dx", Destination: "qa", RoutingKey: "a"}, {Source: "dx", Destination: "qb", RoutingKey: "b"},
		{Source: "dx", Destination: "qa", RoutingKey: "both"}, {Source: "dx", Destination: "qb", RoutingKey: "both"},
		{Source: "hx", Destination: "qh1", Arguments: Headers{{"x-match", StringValue("all")}, {"k", StringValue("1")}}},
		{Source: "hx", Destination: "qh2", Arguments: Headers{{"x-match", StringValue("all")}, {"k", StringValue("2")}}},
	} {
		if err := c.Bind(ctx, bs); err != nil {
			t.Fatalf("Bind %+v: %v", bs, err)
		}
	}
	keys := []string{"a", "a", "b", "both", "both", "a", "nowhere", "b"}
	var msgs []Message
	for i, k := range keys {
		msgs = append(msgs, Message{RoutingKey: k, Body: []byte(fmt.Sprintf("%s%d", k, i))})
	}
	res, err := c.Publish(ctx, "dx", msgs, PublishOptions{Mandatory: true})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.Err != nil || r.Unroutable != (keys[i] == "nowhere") {
			t.Errorf("message %d (key %s): got %+v, want unroutable only for key nowhere", i, keys[i], r)
		}
	}
	var hmsgs []Message
	for i, k := range []string{"1", "2", "1", "", "2", "2"} {
		m := Message{Body: []byte(fmt.Sprintf("h%s-%d", k, i))}
		if k != "" {
			m.Headers = Headers{{"k", StringValue(k)}}
		}
		hmsgs = append(hmsgs, m)
	}
	if _, err := c.Publish(ctx, "hx", hmsgs, PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	for q, want := range map[string]string{"qa": "a0 a1 both3 both4 a5", "qb": "b2 both3 both4 b7",
		"qh1": "h1-0 h1-2", "qh2": "h2-1 h2-4 h2-5"} {
		var got []string
		for {
			d, _, ok, err := c.Get(ctx, q, true)
			if err != nil {
				t.Fatalf("Get(%s): %v", q, err)
			}
			if !ok {
				break
			}
			got = append(got, string(d.Message.Body))
		}
		if strings.Join(got, " ") != want {
			t.Errorf("queue %s holds %q, want %q", q, strings.Join(got, " "), want)
		}
	}
}

// TestRecordEncoderRecordsSurviveLaterEncodes encodes many messages with
// one encoder, across several arena and header chunks, and checks every
// record against its message once all are made: later records never
// write over earlier ones.
func TestRecordEncoderRecordsSurviveLaterEncodes(t *testing.T) {
	enc := recordEncoder{expect: 300}
	var msgs []Message
	var recs []encodedRecord
	arenas := map[*byte]bool{}
	for i := range 300 {
		prio := uint8(i % 10)
		m := Message{Exchange: "ex", RoutingKey: fmt.Sprint("key-", i), MessageID: fmt.Sprint("id-", i), Priority: &prio,
			Body: []byte(fmt.Sprint("body-", i)), Headers: Headers{{"n", IntValue(KindInt32, int64(i))}, {"s", StringValue(strings.Repeat("x", i%50))}}}
		if i%3 == 0 {
			m.OrderingKey = fmt.Sprint("ok-", i%7)
		}
		rec, err := enc.encode(&m, 0)
		if err != nil {
			t.Fatal(err)
		}
		arenas[&enc.arena[:1][0]] = true
		msgs, recs = append(msgs, m), append(recs, rec)
	}
	if len(arenas) < 2 {
		t.Fatalf("300 records used %d arena chunk(s): the test does not cross a chunk", len(arenas))
	}
	for i := range recs {
		items := []*pubItem{{rec: &recs[i]}}
		data, err := buildBatch(items, 1000, true)
		if err != nil {
			t.Fatal(err)
		}
		cb, err := decodeBatch(data)
		if err != nil {
			t.Fatal(err)
		}
		got := decodeRecord(&cb.records[0], cb.header.BaseTimestamp)
		want := msgs[i]
		if got.RoutingKey != want.RoutingKey || got.MessageID != want.MessageID || *got.Priority != *want.Priority ||
			string(got.Body) != string(want.Body) || got.OrderingKey != want.OrderingKey ||
			fmt.Sprint(got.Headers) != fmt.Sprint(want.Headers) {
			t.Fatalf("record %d decodes to %+v, want %+v", i, got, want)
		}
	}
}

func TestRecordEncoderStartsAnArenaChunkOnlyWhenTheEstimateDoesNotFit(t *testing.T) {
	// The estimate of a routing key of n bytes is base1 + n.
	base1 := estimateRecord(&Message{RoutingKey: "r"}) - 1
	for _, tc := range []struct {
		over     int // the second record's estimate minus the room left
		newChunk bool
	}{{0, false}, {1, true}} {
		enc := recordEncoder{expect: 1000}
		first := Message{RoutingKey: "k", Body: []byte("b")}
		if _, err := enc.encode(&first, 0); err != nil {
			t.Fatal(err)
		}
		if cap(enc.arena) != base.BrokerEncodeArenaChunkBytes {
			t.Fatalf("first chunk: got cap %d, want %d", cap(enc.arena), base.BrokerEncodeArenaChunkBytes)
		}
		room := cap(enc.arena) - len(enc.arena)
		second := Message{RoutingKey: strings.Repeat("r", room+tc.over-base1)}
		if got := estimateRecord(&second); got != room+tc.over {
			t.Fatalf("estimate %d, want %d", got, room+tc.over)
		}
		start := &enc.arena[:1][0]
		if _, err := enc.encode(&second, 0); err != nil {
			t.Fatal(err)
		}
		if got := &enc.arena[:1][0] != start; got != tc.newChunk {
			t.Errorf("a record estimated %d bytes over the room left: got a new chunk %v, want %v", tc.over, got, tc.newChunk)
		}
	}
	enc := recordEncoder{expect: 1000}
	huge := Message{RoutingKey: strings.Repeat("h", 2*base.BrokerEncodeArenaChunkBytes)}
	if _, err := enc.encode(&huge, 0); err != nil {
		t.Fatal(err)
	}
	if cap(enc.arena) != estimateRecord(&huge) {
		t.Errorf("a record over a chunk: got a chunk of %d bytes, want its estimate %d", cap(enc.arena), estimateRecord(&huge))
	}
}

// TestRecordEncoderSizesChunksForTheRecordsExpected pins that a call of
// one or a few messages does not pay for whole chunks.
func TestRecordEncoderSizesChunksForTheRecordsExpected(t *testing.T) {
	m := Message{RoutingKey: "k", MessageID: "id"}
	for _, expect := range []int{0, 1, 3} {
		enc := recordEncoder{expect: expect}
		rec, err := enc.encode(&m, 0)
		if err != nil {
			t.Fatal(err)
		}
		want := estimateRecord(&m) * max(expect, 1)
		if cap(enc.arena) != want || cap(enc.hdrs) != len(rec.headers)*max(expect, 1) {
			t.Errorf("expecting %d records: got an arena of %d and %d headers, want %d and %d",
				expect, cap(enc.arena), cap(enc.hdrs), want, len(rec.headers)*max(expect, 1))
		}
		for range expect - 1 {
			if _, err := enc.encode(&m, 0); err != nil {
				t.Fatal(err)
			}
		}
		if cap(enc.arena) != want || enc.expect != 0 {
			t.Errorf("expecting %d records: the last ones started a new chunk (cap %d, want %d), expect left %d",
				expect, cap(enc.arena), want, enc.expect)
		}
	}
}

func TestRecordEncoderCarvesHeadersInChunks(t *testing.T) {
	enc := recordEncoder{expect: 1000}
	// A routing key and user headers: half a header chunk per record.
	half := base.BrokerEncodeHeaderChunkCount / 2
	m := Message{RoutingKey: "k"}
	for i := range half - 1 {
		m.Headers = append(m.Headers, Header{fmt.Sprint("h", i), StringValue("v")})
	}
	r1, err := enc.encode(&m, 0)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := enc.encode(&m, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(r1.headers) != half || len(enc.hdrs) != base.BrokerEncodeHeaderChunkCount || cap(enc.hdrs) != base.BrokerEncodeHeaderChunkCount {
		t.Fatalf("two records of %d headers: slab len %d cap %d, want one full chunk of %d",
			len(r1.headers), len(enc.hdrs), cap(enc.hdrs), base.BrokerEncodeHeaderChunkCount)
	}
	if _, err := enc.encode(&m, 0); err != nil {
		t.Fatal(err)
	}
	if len(enc.hdrs) != half {
		t.Errorf("the record after a full chunk: slab len %d, want a new chunk holding %d", len(enc.hdrs), half)
	}
	// Headers are capped: appending to one record's never reaches the next's.
	grown := append(r1.headers, batch.RecordHeader{Key: []byte("intruder")})
	if string(r2.headers[0].Key) != hdrRoutingKey || &grown[0] == &r1.headers[0] {
		t.Errorf("appending to a record's headers wrote into the slab: next record's first key %q", r2.headers[0].Key)
	}
}

func TestHeadersWithoutOrderingKeyAreCapped(t *testing.T) {
	var enc recordEncoder
	withKey := Message{RoutingKey: "k", OrderingKey: "o"}
	r1, err := enc.encode(&withKey, 0)
	if err != nil {
		t.Fatal(err)
	}
	h := r1.headersFor(false)
	if len(h) != len(r1.headers)-1 || cap(h) != len(h) {
		t.Fatalf("headersFor(false): len %d cap %d, want %d capped", len(h), cap(h), len(r1.headers)-1)
	}
	_ = append(h, batch.RecordHeader{Key: []byte("x")})
	if string(r1.headers[len(r1.headers)-1].Key) != hdrOrderingKey {
		t.Errorf("appending to headersFor(false) overwrote the ordering key header with %q", r1.headers[len(r1.headers)-1].Key)
	}
}

// TestFanOutCallReachesEveryQueueInOrder publishes one call through a
// fan-out to one queue more than send scans (sendScanMax) before it
// indexes its groups.
func TestFanOutCallReachesEveryQueueInOrder(t *testing.T) {
	b := openNode(t, nodeOpts{})
	c := guestConn(t, b)
	ctx := testCtx(t)
	if err := c.DeclareExchange(ctx, ExchangeSpec{Name: "fan", Type: "fanout"}); err != nil {
		t.Fatal(err)
	}
	const queues = sendScanMax + 1
	for i := range queues {
		q := fmt.Sprint("fq", i)
		declare(t, c, q)
		if err := c.Bind(ctx, BindingSpec{Source: "fan", Destination: q}); err != nil {
			t.Fatal(err)
		}
	}
	msgs := []Message{{Body: []byte("m0")}, {Body: []byte("m1")}, {Body: []byte("m2")}}
	res, err := c.Publish(ctx, "fan", msgs, PublishOptions{Mandatory: true})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.Err != nil || r.Unroutable || r.Rejected {
			t.Fatalf("message %d: got %+v, want confirmed", i, r)
		}
	}
	for i := range queues {
		var got []string
		for range msgs {
			d, _, ok, err := c.Get(ctx, fmt.Sprint("fq", i), true)
			if err != nil || !ok {
				t.Fatalf("Get(fq%d): ok %v err %v", i, ok, err)
			}
			got = append(got, string(d.Message.Body))
		}
		if strings.Join(got, " ") != "m0 m1 m2" {
			t.Errorf("queue fq%d holds %v, want m0 m1 m2", i, got)
		}
	}
}

// encodeItems encodes msgs with one encoder, as a publish call does, and
// returns an item per message.
func encodeItems(t testing.TB, msgs []Message) []*pubItem {
	t.Helper()
	enc := recordEncoder{expect: len(msgs)}
	items := make([]*pubItem, len(msgs))
	for i := range msgs {
		rec, err := enc.encode(&msgs[i], 0)
		if err != nil {
			t.Fatalf("encoding message %d: %v", i, err)
		}
		items[i] = &pubItem{rec: &rec}
	}
	return items
}

func TestBatchBuiltIntoAReusedBufferMatchesAFreshOne(t *testing.T) {
	var msgs []Message
	for i := range 20 {
		msgs = append(msgs, Message{RoutingKey: fmt.Sprint("k", i), Body: []byte(strings.Repeat("b", i*10)), MessageID: fmt.Sprint(i)})
	}
	items := encodeItems(t, msgs)
	// A sender header on nearly every record: the bound's worst case.
	for i, it := range items {
		if i%4 != 3 {
			it.sender = queue.SenderID{Lane: math.MaxUint64 - uint64(i%2), Seq: math.MaxUint64 - 2 - uint64(i)}
		}
	}
	want, err := buildBatchInto(nil, items, 77, true, true)
	if err != nil {
		t.Fatal(err)
	}
	if n := batchBytes(items, true); n < len(want) {
		t.Errorf("batchBytes: %d, want at least the batch's %d bytes", n, len(want))
	}
	dirty := make([]byte, 3*len(want))
	for i := range dirty {
		dirty[i] = 0xa5
	}
	got, err := buildBatchInto(dirty[:3], items, 77, true, true)
	if err != nil {
		t.Fatal(err)
	}
	if &got[0] != &dirty[0] {
		t.Errorf("a large enough buffer was not used")
	}
	if !bytes.Equal(got[:3], dirty[:3]) || !bytes.Equal(got[3:], want) {
		t.Errorf("batch built over stale bytes differs from a fresh one, or the bytes before it changed")
	}
	small, _ := buildBatchInto([]byte("pre"), items, 77, true, true)
	if string(small[:3]) != "pre" || !bytes.Equal(small[3:], want) {
		t.Errorf("built after 3 bytes of a buffer too small: got %d bytes, want pre and the batch", len(small))
	}
}

func TestBatchBuffersHoldEveryBatchAnAccumulatorTakes(t *testing.T) {
	// Every batch an accumulator takes (up to BrokerPublishBatchBytesMax,
	// plus its last message, plus a queue's sender headers) fits a pooled
	// class.
	most := base.BrokerPublishBatchBytesMax + batch.HeaderSize + base.BrokerPublishBatchBytesMax/2 +
		base.BrokerPublishBatchRecordsMax*senderHeaderBytesMax
	if buf := batchBuffers.Get(most); cap(*buf) != base.BrokerBatchBufferBytesMax {
		t.Errorf("a batch of %d bytes gets a buffer of %d, want the largest class, %d", most, cap(*buf), base.BrokerBatchBufferBytesMax)
	}
	buf := batchBuffers.Get(100)
	*buf = append(*buf, "a batch that was proposed"...)
	data := *buf
	releaseBatch(buf)
	if base.InvariantsEnabled && data[0] != 0xa5 {
		t.Errorf("under ferry_invariants a released batch is overwritten; got %q", data)
	}
}

// TestDecodeBatchStillRefusesDamage pins that decoding checks what
// batch.Validate checks, now that it walks the records once: a damaged
// byte (the CRC) and a record count that does not match the records
// (structure, under a recomputed CRC).
func TestDecodeBatchStillRefusesDamage(t *testing.T) {
	var msgs []Message
	for i := range 3 {
		msgs = append(msgs, Message{RoutingKey: "k", Body: []byte(fmt.Sprint("body", i))})
	}
	good, err := buildBatch(encodeItems(t, msgs), 5, true)
	if err != nil {
		t.Fatal(err)
	}
	if cb, err := decodeBatch(good); err != nil || len(cb.records) != 3 {
		t.Fatalf("a good batch: %v (%d records)", err, len(cb.records))
	}
	flipped := bytes.Clone(good)
	flipped[len(flipped)-3] ^= 0x40
	if _, err := decodeBatch(flipped); base.CodeOf(err) != base.CodeCorrupt {
		t.Errorf("a flipped byte: got %v, want CodeCorrupt", err)
	}
	shortened := bytes.Clone(good)
	binary.BigEndian.PutUint32(shortened[batchLastOffsetDeltaAt:], 1)
	miscounted := withRecordCount(shortened, 2)
	if _, err := decodeBatch(miscounted); base.CodeOf(err) != base.CodeCorrupt {
		t.Errorf("a record count short of the records, under a good CRC: got %v, want CodeCorrupt", err)
	}
}

// BenchmarkDecodeQueueBatch decodes a batch of 256 messages of 1 KiB as
// a queue's Apply does:
//
//	go test ./internal/broker -run XXX -bench DecodeQueueBatch -benchmem
func BenchmarkDecodeQueueBatch(b *testing.B) {
	msgs := make([]Message, 256)
	body := make([]byte, 1024)
	for i := range msgs {
		msgs[i] = Message{RoutingKey: "bench", Body: body, RawAMQPProperties: []byte{0, 0}}
	}
	data, err := buildBatch(encodeItems(b, msgs), 5, false)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeBatch(data); err != nil {
			b.Fatal(err)
		}
	}
}

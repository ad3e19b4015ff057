package broker

import (
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/queue"
	"github.com/ferry-mq/ferry/internal/storage/log/batch"
)

// roundTrip encodes m as the broker stores it and decodes it back.
func roundTrip(t testing.TB, m Message, notBefore int64) (Message, batch.Record) {
	t.Helper()
	var enc recordEncoder
	rec, err := enc.encode(&m, notBefore)
	if err != nil {
		t.Fatalf("encode: %v", err)
	}
	data, err := buildBatch([]*pubItem{{rec: &rec}}, 1234, true)
	if err != nil {
		t.Fatalf("buildBatch: %v", err)
	}
	cb, err := decodeBatch(data)
	if err != nil || len(cb.records) != 1 {
		t.Fatalf("decodeBatch: %v (%d records)", err, len(cb.records))
	}
	return decodeRecord(&cb.records[0], cb.header.BaseTimestamp), cb.records[0]
}

func allKinds() Headers {
	return Headers{
		{"s", StringValue("text")},
		{"void", VoidValue()},
		{"t", BoolValue(true)},
		{"b", IntValue(KindInt8, -5)},
		{"B", IntValue(KindUint8, 250)},
		{"sh", IntValue(KindInt16, -30000)},
		{"u", IntValue(KindUint16, 60000)},
		{"I", IntValue(KindInt32, math.MinInt32)},
		{"i", IntValue(KindUint32, math.MaxUint32)},
		{"l", IntValue(KindInt64, math.MaxInt64)},
		{"f", Float32Value(1.25)},
		{"d", Float64Value(-0.1)},
		{"D", DecimalValue(3, -12345)},
		{"D0", DecimalValue(2, 5)},
		{"T", TimestampValue(1_700_000_000)},
		{"x", BytesValue([]byte{0, 1, 0xff})},
		{"F", TableValue(Headers{{"nested", IntValue(KindInt32, 1)}, {"arr", ArrayValue([]Value{StringValue("a"), BoolValue(false)})}})},
		{"A", ArrayValue([]Value{TableValue(Headers{{"k", StringValue("v")}}), VoidValue(), DecimalValue(0, 9)})},
		{"amqp.looks-reserved", StringValue("user's own")},
	}
}

func TestMessageRoundTripKeepsEveryPropertyAndHeaderType(t *testing.T) {
	prio := uint8(7)
	in := Message{Exchange: "ex", RoutingKey: "rk", Key: []byte("key"), ContentType: "application/json",
		ContentEncoding: "gzip", Headers: allKinds(), DeliveryMode: 2, Priority: &prio, CorrelationID: "corr",
		ReplyTo: "reply", Expiration: "60000", MessageID: "id-1", Timestamp: time.Unix(1_700_000_123, 0),
		Type: "type", UserID: "guest", AppID: "app", DedupeID: "dd", OrderingKey: "ok",
		Body: []byte("body"), RawAMQPProperties: []byte{0x80, 0x00, 1, 2}}
	out, _ := roundTrip(t, in, 0)
	out.PublishedAt = time.Time{}
	if !reflect.DeepEqual(in.Headers, out.Headers) {
		for i := range max(len(in.Headers), len(out.Headers)) {
			if i >= len(in.Headers) || i >= len(out.Headers) || !in.Headers[i].Value.Equal(out.Headers[i].Value) {
				t.Errorf("header %d: got %+v", i, out.Headers[i:])
				break
			}
		}
		t.Fatalf("headers differ after a round trip")
	}
	in.Headers, out.Headers = nil, nil
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", out, in)
	}
}

func TestKafkaConsumersSeeReadableHeaders(t *testing.T) {
	prio := uint8(3)
	_, rec := roundTrip(t, Message{RoutingKey: "rk", Priority: &prio, MessageID: "m",
		Headers: Headers{{"count", IntValue(KindInt32, 42)}, {"ok", BoolValue(true)}, {"price", DecimalValue(2, 1999)}}}, 0)
	got := map[string]string{}
	it := rec.Headers()
	for k, v, _, ok := it.Next(); ok; k, v, _, ok = it.Next() {
		got[string(k)] = string(v)
	}
	for k, want := range map[string]string{"count": "42", "ok": "true", "price": "19.99", "amqp.priority": "3",
		"amqp.message-id": "m", "ferry.routing-key": "rk"} {
		if got[k] != want {
			t.Errorf("header %s: got %q, want %q", k, got[k], want)
		}
	}
}

func TestKafkaRecordBecomesAMessageWithStringHeaders(t *testing.T) {
	var bld batch.Builder
	bld.Begin(nil, plainHeader())
	if err := bld.Add(5000, []byte("k"), []byte("v"), []batch.RecordHeader{{Key: []byte("trace"), Value: []byte("abc")},
		{Key: []byte("nil"), Value: nil}, {Key: []byte("ferry.types"), Value: []byte{0x00, byte(KindTable)}}}); err != nil {
		t.Fatal(err)
	}
	data, _ := bld.Finish()
	cb, err := decodeBatch(data)
	if err != nil {
		t.Fatal(err)
	}
	m := decodeRecord(&cb.records[0], cb.header.BaseTimestamp)
	if string(m.Key) != "k" || string(m.Body) != "v" || !m.PublishedAt.Equal(time.UnixMilli(5000)) {
		t.Fatalf("key %q body %q at %v", m.Key, m.Body, m.PublishedAt)
	}
	if v, _ := m.Headers.Get("trace"); v.Kind() != KindString || v.Text() != "abc" {
		t.Fatalf("trace header: %+v, want the string abc (a claimed table that does not parse stays a string)", v)
	}
	if v, _ := m.Headers.Get("nil"); v.Kind() != KindVoid {
		t.Fatalf("null header value: %v, want void", v.Kind())
	}
}

func TestQueueMetadataIsReadFromReservedHeaders(t *testing.T) {
	prio := uint8(9)
	_, rec := roundTrip(t, Message{Priority: &prio, Expiration: "0", MessageID: "mid", DedupeID: "dd",
		OrderingKey: "ok"}, 77)
	q := readQueueMeta(&rec)
	want := queueMeta{priority: 9, ttlMs: 1, notBeforeMs: 77, dedupeID: "dd", orderingKey: "ok", messageID: "mid"}
	if q != want {
		t.Fatalf("queue metadata: got %+v, want %+v (expiration 0 means expire at once)", q, want)
	}
	_, rec = roundTrip(t, Message{Expiration: "soon"}, 0)
	if q := readQueueMeta(&rec); q.ttlMs != 0 {
		t.Fatalf("a malformed expiration gave ttl %d, want none", q.ttlMs)
	}
}

func TestOrderingKeyIsLeftOutForQueuesWithoutOrdering(t *testing.T) {
	var enc recordEncoder
	rec, err := enc.encode(&Message{OrderingKey: "k", Body: []byte("b")}, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range rec.headersFor(false) {
		if string(h.Key) == hdrOrderingKey {
			t.Fatal("the ordering key was stored for a queue without ordering by key")
		}
	}
	if hs := rec.headersFor(true); string(hs[len(hs)-1].Key) != hdrOrderingKey {
		t.Fatal("the ordering key is missing for a queue with ordering by key")
	}
}

func TestHeaderNestingAtTheDepthLimit(t *testing.T) {
	nest := func(depth int) Value {
		v := StringValue("leaf")
		for range depth - 1 {
			v = ArrayValue([]Value{v})
		}
		return v
	}
	var enc recordEncoder
	if _, err := enc.encode(&Message{Headers: Headers{{"deep", nest(base.BrokerHeaderDepthMax)}}}, 0); err != nil {
		t.Fatalf("nesting at the limit (%d): %v", base.BrokerHeaderDepthMax, err)
	}
	if _, err := enc.encode(&Message{Headers: Headers{{"deep", nest(base.BrokerHeaderDepthMax + 1)}}}, 0); base.CodeOf(err) != base.CodeInvalidArgument {
		t.Fatalf("nesting over the limit: %v, want CodeInvalidArgument", err)
	}
	over, _ := appendNested(nil, nest(base.BrokerHeaderDepthMax+1), 0) // starting at 0 lets the encoder go one deeper
	if _, ok := decodeNested(over, KindArray); ok {
		t.Fatal("the decoder accepted a value nested one level deeper than the limit")
	}
}

func TestNestedDecoderRefusesCountsItsBytesCannotBack(t *testing.T) {
	// An array claiming a billion values in three bytes.
	bad := []byte{byte(KindArray), 0x80, 0x94, 0xeb, 0xdc, 0x03}
	if _, ok := decodeNested(bad, KindArray); ok {
		t.Fatal("decoded an array whose count exceeds its bytes")
	}
	// Exactly BrokerHeaderValuesMax voids decode; one more does not.
	mk := func(n int) []byte {
		v := make([]Value, n)
		for i := range v {
			v[i] = VoidValue()
		}
		b, err := appendNested(nil, ArrayValue(v), 1)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if _, ok := decodeNested(mk(base.BrokerHeaderValuesMax), KindArray); !ok {
		t.Fatal("an array at BrokerHeaderValuesMax did not decode")
	}
	if _, ok := decodeNested(mk(base.BrokerHeaderValuesMax+1), KindArray); ok {
		t.Fatal("an array over BrokerHeaderValuesMax decoded")
	}
}

func TestDecimalTextRoundTrips(t *testing.T) {
	for _, tc := range []struct {
		scale uint8
		v     int32
		text  string
	}{{0, 0, "0"}, {2, 5, "0.05"}, {2, -5, "-0.05"}, {3, -12345, "-12.345"}, {0, math.MinInt32, "-2147483648"},
		{1, math.MaxInt32, "214748364.7"}} {
		got := string(appendDecimal(nil, tc.scale, tc.v))
		if got != tc.text {
			t.Errorf("appendDecimal(%d, %d) = %q, want %q", tc.scale, tc.v, got, tc.text)
		}
		s, v, ok := parseDecimal([]byte(got))
		if !ok || s != tc.scale || v != tc.v {
			t.Errorf("parseDecimal(%q) = %d, %d, %v; want %d, %d", got, s, v, ok, tc.scale, tc.v)
		}
	}
	for _, bad := range []string{"", "-", ".5", "1.", "1e3", "99999999999", "1.2.3"} {
		if _, _, ok := parseDecimal([]byte(bad)); ok {
			t.Errorf("parseDecimal(%q) accepted", bad)
		}
	}
}

// A message may have one header fewer than a record, so that the
// ferry.sender header a queue's batch adds never takes its record over
// the limit (which would fail the whole batch, other publishers' too).
func TestTooManyHeadersAreRefused(t *testing.T) {
	h := make(Headers, messageHeadersMax)
	for i := range h {
		h[i] = Header{Key: strings.Repeat("k", 3), Value: StringValue("v")}
	}
	var enc recordEncoder
	if _, err := enc.encode(&Message{RoutingKey: "rk", Headers: h}, 0); base.CodeOf(err) != base.CodeTooLarge {
		t.Fatalf("%d user headers and a routing key: %v, want CodeTooLarge", len(h), err)
	}
	rec, err := enc.encode(&Message{RoutingKey: "rk", Headers: h[:messageHeadersMax-1]}, 0)
	if err != nil {
		t.Fatalf("%d user headers and a routing key: %v", messageHeadersMax-1, err)
	}
	items := []*pubItem{{rec: &rec, sender: queue.SenderID{Lane: 1, Seq: 1}}}
	if _, err := buildBatchInto(nil, items, 5, true, true); err != nil {
		t.Fatalf("the most headers a message may have, and a sender: %v", err)
	}
}

// FuzzDecodeRecord builds a valid batch around arbitrary record contents
// (the CRC would stop mutated bytes at the door) and feeds it to
// everything that reads stored messages: decodeRecord with its types
// header, readQueueMeta and the forwarded-record conversion. None may
// panic, and every message decoded must encode again.
func FuzzDecodeRecord(f *testing.F) {
	prio := uint8(1)
	for _, m := range []Message{
		{RoutingKey: "rk", Body: []byte("b"), Headers: allKinds(), Priority: &prio, Expiration: "5"},
		{Key: []byte("k"), MessageID: "id", OrderingKey: "o", DedupeID: "d"},
	} {
		var enc recordEncoder
		rec, _ := enc.encode(&m, 9)
		var flat []byte
		for _, h := range rec.headers {
			flat = append(flat, byte(len(h.Key)))
			flat = append(flat, h.Key...)
			flat = append(flat, byte(len(h.Value)))
			flat = append(flat, h.Value...)
		}
		f.Add(rec.key, rec.value, flat)
	}
	sender := appendSender(nil, queue.SenderID{Lane: 1 << 60, Seq: 300})
	f.Add([]byte{}, []byte("b"), append(append([]byte{byte(len(hdrSender))}, hdrSender...), append([]byte{byte(len(sender))}, sender...)...))
	f.Fuzz(func(t *testing.T, key, value, flat []byte) {
		var hs []batch.RecordHeader
		for len(flat) >= 2 && len(hs) < base.RecordHeadersMax {
			kl := min(int(flat[0]), len(flat)-1)
			k := flat[1 : 1+kl]
			flat = flat[1+kl:]
			if len(flat) == 0 {
				hs = append(hs, batch.RecordHeader{Key: k})
				break
			}
			vl := min(int(flat[0]), len(flat)-1)
			hs = append(hs, batch.RecordHeader{Key: k, Value: flat[1 : 1+vl]})
			flat = flat[1+vl:]
		}
		var bld batch.Builder
		bld.Begin(nil, plainHeader())
		if err := bld.Add(1, key, value, hs); err != nil {
			return
		}
		data, err := bld.Finish()
		if err != nil {
			return
		}
		cb, err := decodeBatch(data)
		if err != nil {
			t.Fatalf("a built batch does not decode: %v", err)
		}
		r := &cb.records[0]
		m := decodeRecord(r, cb.header.BaseTimestamp)
		meta := readQueueMeta(r)
		if _, mark := recordToEncoded(r); mark != meta.sender {
			t.Fatalf("the queue reads sender %+v, a forwarded batch's receiver %+v", meta.sender, mark)
		}
		if id := meta.sender.id; id != (queue.SenderID{}) && !id.Valid() {
			t.Fatalf("sender %+v, which the queue refuses", id)
		}
		var enc recordEncoder
		if _, err := enc.encode(&m, 0); err != nil && base.CodeOf(err) != base.CodeTooLarge {
			t.Fatalf("a decoded message does not encode: %v", err)
		}
	})
}

// FuzzDecodeNested checks the nested header decoder: no panic, bounded
// values, and what decodes encodes back to the same bytes.
func FuzzDecodeNested(f *testing.F) {
	for _, h := range allKinds() {
		if b, err := appendNested(nil, h.Value, 1); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte{byte(KindArray), 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, k := range []ValueKind{KindTable, KindArray} {
			v, ok := decodeNested(data, k)
			if !ok {
				continue
			}
			again, err := appendNested(nil, v, 1)
			if err != nil {
				t.Fatalf("a decoded value does not encode: %v", err)
			}
			v2, ok := decodeNested(again, k)
			if !ok || !v2.Equal(v) {
				t.Fatalf("re-encoded value decodes differently")
			}
		}
		applyTypes(Headers{{"a", StringValue(string(data))}, {"b", StringValue("1")}}, data)
	})
}

// A queue batch names each record's sender: the queue reads the senders
// back in order (runs of one lane's consecutive numbers, records without
// one between them), a forwarded batch's receiver takes them off the
// records it re-adds, and no consumer sees the header.
func TestSendersRoundTripThroughAQueueBatch(t *testing.T) {
	senders := []queue.SenderID{
		{}, {Lane: 7, Seq: 1}, {Lane: 7, Seq: 2}, {Lane: 7, Seq: 3}, {Lane: 9, Seq: 1}, {Lane: 7, Seq: 4},
		{Lane: 7, Seq: 6}, {}, {}, {Lane: 9, Seq: 2}, {Lane: 9, Seq: 3}, {Lane: math.MaxUint64, Seq: math.MaxUint64 - 1}, {},
	}
	msgs := make([]Message, len(senders))
	for i := range msgs {
		msgs[i] = Message{RoutingKey: "k", Body: []byte{byte(i)}, Headers: Headers{{"h", StringValue("v")}}}
	}
	items := encodeItems(t, msgs)
	for i, it := range items {
		it.sender = senders[i]
	}
	data, err := buildBatchInto(nil, items, 5, true, true)
	if err != nil {
		t.Fatal(err)
	}
	cb, err := decodeBatch(data)
	if err != nil {
		t.Fatal(err)
	}
	var stored, forwarded senderRun
	headers := 0
	for i := range cb.records {
		r := &cb.records[i]
		if got := stored.next(readQueueMeta(r).sender); got != senders[i] {
			t.Errorf("record %d: the queue reads sender %+v, want %+v", i, got, senders[i])
		}
		rec, mark := recordToEncoded(r)
		if got := forwarded.next(mark); got != senders[i] {
			t.Errorf("record %d: a forwarded batch's receiver reads sender %+v, want %+v", i, got, senders[i])
		}
		for _, h := range rec.headers {
			if string(h.Key) == hdrSender {
				t.Errorf("record %d: re-added with its ferry.sender header", i)
			}
		}
		if mark.set {
			headers++
		}
		if m := decodeRecord(r, cb.header.BaseTimestamp); !reflect.DeepEqual(m.Headers, msgs[i].Headers) {
			t.Errorf("record %d: a consumer sees headers %v, want %v", i, m.Headers, msgs[i].Headers)
		}
	}
	// Only where a run starts or ends: 7.1, 9.1, 7.4, 7.6, the {} after
	// it, 9.2, the last lane's and the {} after it.
	if headers != 8 {
		t.Errorf("%d ferry.sender headers, want 8", headers)
	}
	// A stream's batch carries none.
	plain, err := buildBatchInto(nil, items, 5, true, false)
	if err != nil {
		t.Fatal(err)
	}
	if cb, err := decodeBatch(plain); err != nil || readQueueMeta(&cb.records[1]).sender.set {
		t.Errorf("a batch built without senders names one (%v)", err)
	}
}

// A ferry.sender value the queue could not record names no sender, so
// the records are enqueued without one rather than refused, and a run
// that would reach the largest number ends.
func TestUnreadableSendersNameNone(t *testing.T) {
	lane7 := func(seq uint64) []byte { return appendSender(nil, queue.SenderID{Lane: 7, Seq: seq}) }
	for name, v := range map[string][]byte{
		"empty":          nil,
		"short":          {0, 0, 0, 0, 0, 0, 0, 7},
		"lane 0":         appendSender(make([]byte, 8), queue.SenderID{}),
		"largest number": lane7(math.MaxUint64),
		"trailing byte":  append(lane7(3), 0),
		"bad varint":     append(lane7(0)[:8], 0xff),
	} {
		if m := parseSender(v); !m.set || m.id != (queue.SenderID{}) {
			t.Errorf("%s: %+v, want set and no sender", name, m)
		}
	}
	var run senderRun
	if got := run.next(parseSender(lane7(math.MaxUint64 - 2))); got.Seq != math.MaxUint64-2 {
		t.Fatalf("run start: %+v", got)
	}
	if got := run.next(senderMark{}); got.Seq != math.MaxUint64-1 {
		t.Fatalf("the run's next: %+v", got)
	}
	if got := run.next(senderMark{}); got != (queue.SenderID{}) {
		t.Errorf("the run continued to %+v, which the queue refuses", got)
	}
}

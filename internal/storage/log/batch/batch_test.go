package batch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"testing"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/twmb/franz-go/pkg/kmsg"
)

type rec struct {
	ts         int64
	key, value []byte
	headers    []RecordHeader
}

var sample = []rec{
	{ts: 1700000000000, key: []byte("k1"), value: []byte("hello")},
	{ts: 1700000000005, key: nil, value: []byte("null key")},
	{ts: 1699999999990, key: []byte{}, value: nil}, // empty key, tombstone, earlier timestamp
	{ts: 1700000000001, key: []byte("h"), value: bytes.Repeat([]byte("v"), 300), headers: []RecordHeader{
		{Key: []byte("trace"), Value: []byte("abc")},
		{Key: []byte("nullvalue"), Value: nil},
		{Key: []byte("empty"), Value: []byte{}},
	}},
}

func build(t testing.TB, h Header, recs []rec) []byte {
	t.Helper()
	var b Builder
	b.Begin(nil, h)
	for _, r := range recs {
		if err := b.Add(r.ts, r.key, r.value, r.headers); err != nil {
			t.Fatalf("Add: %v", err)
		}
	}
	out, err := b.Finish()
	if err != nil {
		t.Fatalf("Finish: %v", err)
	}
	return out
}

var sampleHeader = Header{BaseOffset: 42, Epoch: 7, ProducerID: 9001, ProducerEpoch: 3, BaseSequence: 11, Attributes: AttrTransactional}

// TestBuilderOutputDecodesWithKafkaOracle decodes what the Builder writes
// with franz-go's kmsg (a test oracle only), so the bytes are Kafka's v2
// format and not merely self-consistent.
func TestBuilderOutputDecodesWithKafkaOracle(t *testing.T) {
	b := build(t, sampleHeader, sample)
	var kb kmsg.RecordBatch
	if err := kb.ReadFrom(b); err != nil {
		t.Fatalf("kmsg.RecordBatch.ReadFrom: %v", err)
	}
	if got, want := int(kb.Length)+12, len(b); got != want {
		t.Errorf("length: got %d, want %d", got, want)
	}
	if got := uint32(kb.CRC); got != crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)) {
		t.Errorf("crc %#x does not match an independent CRC-32C of bytes [21:]", got)
	}
	wantHdr := fmt.Sprint(int64(42), int32(7), int8(2), int16(AttrTransactional), int32(3), int64(1700000000000), int64(1700000000005), int64(9001), int16(3), int32(11), int32(4))
	gotHdr := fmt.Sprint(kb.FirstOffset, kb.PartitionLeaderEpoch, kb.Magic, kb.Attributes, kb.LastOffsetDelta, kb.FirstTimestamp, kb.MaxTimestamp, kb.ProducerID, kb.ProducerEpoch, kb.FirstSequence, kb.NumRecords)
	if gotHdr != wantHdr {
		t.Errorf("header fields:\n got %s\nwant %s", gotHdr, wantHdr)
	}
	rest := kb.Records
	for i, want := range sample {
		var kr kmsg.Record
		if err := kr.ReadFrom(rest); err != nil {
			t.Fatalf("record %d: kmsg.Record.ReadFrom: %v", i, err)
		}
		n := int(kr.Length) + varintLen(int64(kr.Length))
		rest = rest[n:]
		if kr.TimestampDelta64 != want.ts-1700000000000 || kr.OffsetDelta != int32(i) {
			t.Errorf("record %d: tsDelta %d offsetDelta %d, want %d %d", i, kr.TimestampDelta64, kr.OffsetDelta, want.ts-1700000000000, i)
		}
		if !sameNullable(kr.Key, want.key) || !sameNullable(kr.Value, want.value) {
			t.Errorf("record %d: key %q value %q (nil %v %v), want %q %q (nil %v %v)", i, kr.Key, kr.Value, kr.Key == nil, kr.Value == nil,
				want.key, want.value, want.key == nil, want.value == nil)
		}
		if len(kr.Headers) != len(want.headers) {
			t.Fatalf("record %d: %d headers, want %d", i, len(kr.Headers), len(want.headers))
		}
		for j, h := range want.headers {
			if kr.Headers[j].Key != string(h.Key) || !sameNullable(kr.Headers[j].Value, h.Value) {
				t.Errorf("record %d header %d: got %q=%q, want %q=%q", i, j, kr.Headers[j].Key, kr.Headers[j].Value, h.Key, h.Value)
			}
		}
	}
	if len(rest) != 0 {
		t.Errorf("%d bytes left after the records", len(rest))
	}
}

func sameNullable(a, b []byte) bool { return (a == nil) == (b == nil) && bytes.Equal(a, b) }

// TestIteratorReadsKafkaOracleBatch runs the other direction: a batch
// encoded by kmsg validates and iterates here with the same values.
func TestIteratorReadsKafkaOracleBatch(t *testing.T) {
	var records []byte
	for i, r := range sample {
		kr := kmsg.Record{TimestampDelta64: r.ts - sample[0].ts, OffsetDelta: int32(i), Key: r.key, Value: r.value}
		for _, h := range r.headers {
			kr.Headers = append(kr.Headers, kmsg.Header{Key: string(h.Key), Value: h.Value})
		}
		body := kr.AppendTo(nil)
		// kmsg's AppendTo writes the Length field as given; compute it.
		kr.Length = int32(len(body) - varintLen(0))
		records = kr.AppendTo(records)
	}
	kb := kmsg.RecordBatch{FirstOffset: 5, PartitionLeaderEpoch: 2, Magic: 2, LastOffsetDelta: int32(len(sample) - 1),
		FirstTimestamp: sample[0].ts, MaxTimestamp: sample[1].ts, ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1,
		NumRecords: int32(len(sample)), Records: records}
	kb.Length = int32(HeaderSize - LogOverhead + len(records))
	b := kb.AppendTo(nil)
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))

	h, err := Validate(b)
	if err != nil {
		t.Fatalf("Validate of a kmsg-encoded batch: %v", err)
	}
	if h.BaseOffset != 5 || h.Epoch != 2 || h.RecordCount != 4 || h.NextOffset() != 9 || h.ProducerID != -1 {
		t.Errorf("header: got %+v", h)
	}
	it, err := Records(b)
	if err != nil {
		t.Fatal(err)
	}
	i := 0
	for r, ok := it.Next(); ok; r, ok = it.Next() {
		want := sample[i]
		if h.BaseTimestamp+r.TimestampDelta != want.ts || int(r.OffsetDelta) != i {
			t.Errorf("record %d: ts %d offsetDelta %d, want %d %d", i, h.BaseTimestamp+r.TimestampDelta, r.OffsetDelta, want.ts, i)
		}
		if !bytes.Equal(r.Key, want.key) || r.KeyNull != (want.key == nil) || !bytes.Equal(r.Value, want.value) || r.ValueNull != (want.value == nil) {
			t.Errorf("record %d: key %q/%v value %q/%v, want %q %q", i, r.Key, r.KeyNull, r.Value, r.ValueNull, want.key, want.value)
		}
		hi := r.Headers()
		j := 0
		for k, v, vnull, ok := hi.Next(); ok; k, v, vnull, ok = hi.Next() {
			w := want.headers[j]
			if !bytes.Equal(k, w.Key) || !bytes.Equal(v, w.Value) || vnull != (w.Value == nil) {
				t.Errorf("record %d header %d: got %q=%q null=%v, want %q=%q", i, j, k, v, vnull, w.Key, w.Value)
			}
			j++
		}
		if j != len(want.headers) {
			t.Errorf("record %d: %d headers, want %d", i, j, len(want.headers))
		}
		i++
	}
	if it.Err() != nil || i != len(sample) {
		t.Errorf("iteration: %d records, err %v; want %d, nil", i, it.Err(), len(sample))
	}
}

func TestStampingLeavesCRCValid(t *testing.T) {
	b := build(t, sampleHeader, sample)
	SetBaseOffset(b, 1<<40)
	SetEpoch(b, 1<<30)
	h, err := Validate(b)
	if err != nil {
		t.Fatalf("Validate after stamping: %v", err)
	}
	if h.BaseOffset != 1<<40 || h.Epoch != 1<<30 || BaseOffset(b) != 1<<40 || Epoch(b) != 1<<30 {
		t.Errorf("stamped fields: got offset %d epoch %d, want %d %d", h.BaseOffset, h.Epoch, int64(1<<40), 1<<30)
	}
}

// recrc recomputes the CRC after a test mutates covered bytes, so that the
// structural check under test is the one that fails.
func recrc(b []byte) []byte {
	binary.BigEndian.PutUint32(b[offCRC:], Checksum(b[CRCStart:]))
	return b
}

func TestValidateRejectsMalformedBatches(t *testing.T) {
	good := build(t, sampleHeader, sample)
	mut := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	oneRecord := build(t, Header{}, sample[:1])
	cases := []struct {
		name string
		b    []byte
		code base.Code
	}{
		{"short header", good[:HeaderSize-1], base.CodeCorrupt},
		{"magic 1", mut(func(b []byte) []byte { b[offMagic] = 1; return b }), base.CodeCorrupt},
		{"bad crc", mut(func(b []byte) []byte { b[len(b)-1] ^= 1; return b }), base.CodeCorrupt},
		{"length shorter than header", mut(func(b []byte) []byte { binary.BigEndian.PutUint32(b[offLength:], 48); return b }), base.CodeCorrupt},
		{"length longer than bytes", mut(func(b []byte) []byte { return b[:len(b)-1] }), base.CodeCorrupt},
		{"length over BatchBytesMax", mut(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[offLength:], base.BatchBytesMax-LogOverhead+1)
			return b
		}), base.CodeTooLarge},
		{"negative lastOffsetDelta", mut(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[offLastOffsetDelta:], 0xffffffff)
			return recrc(b)
		}), base.CodeCorrupt},
		{"negative record count", mut(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[offRecordCount:], 0xffffffff)
			return recrc(b)
		}), base.CodeCorrupt},
		{"record count over BatchRecordsMax", mut(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[offRecordCount:], base.BatchRecordsMax+1)
			return recrc(b)
		}), base.CodeCorrupt},
		{"more records than counted", mut(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[offRecordCount:], 3)
			return recrc(b)
		}), base.CodeCorrupt},
		{"fewer records than counted", mut(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[offRecordCount:], 5)
			return recrc(b)
		}), base.CodeCorrupt},
		{"offset delta beyond lastOffsetDelta", mut(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[offLastOffsetDelta:], 2)
			return recrc(b)
		}), base.CodeCorrupt},
		{"record length past the batch", func() []byte {
			b := bytes.Clone(oneRecord)
			b[HeaderSize] = 0x7e // zig-zag 63: longer than the record
			return recrc(b)
		}(), base.CodeCorrupt},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Validate(tc.b)
			if got := base.CodeOf(err); got != tc.code {
				t.Errorf("Validate: got %v (%v), want code %v", got, err, tc.code)
			}
		})
	}
	if _, err := Validate(good); err != nil {
		t.Errorf("the unmutated batch: %v", err)
	}
}

// rawRecordBatch assembles a batch around hand-encoded records, for inputs
// the Builder refuses to write.
func rawRecordBatch(count int32, records []byte) []byte {
	h := Header{Magic: Magic, Length: int32(HeaderSize - LogOverhead + len(records)), LastOffsetDelta: count - 1, RecordCount: count}
	b := make([]byte, HeaderSize, HeaderSize+len(records))
	putHeader(b, &h)
	return recrc(append(b, records...))
}

func recordWithHeaders(n int, nullKey bool) []byte {
	var body []byte
	body = append(body, 0)
	body = binary.AppendVarint(body, 0)  // ts delta
	body = binary.AppendVarint(body, 0)  // offset delta
	body = binary.AppendVarint(body, -1) // key
	body = binary.AppendVarint(body, -1) // value
	body = binary.AppendVarint(body, int64(n))
	for i := range n {
		if nullKey && i == n-1 {
			body = binary.AppendVarint(body, -1)
		} else {
			body = binary.AppendVarint(body, 0)
		}
		body = binary.AppendVarint(body, -1)
	}
	return append(binary.AppendVarint(nil, int64(len(body))), body...)
}

func TestRecordHeadersMaxEdge(t *testing.T) {
	if _, err := Validate(rawRecordBatch(1, recordWithHeaders(base.RecordHeadersMax, false))); err != nil {
		t.Errorf("record with RecordHeadersMax headers: %v, want accepted", err)
	}
	_, err := Validate(rawRecordBatch(1, recordWithHeaders(base.RecordHeadersMax+1, false)))
	if base.CodeOf(err) != base.CodeCorrupt {
		t.Errorf("record with RecordHeadersMax+1 headers: got %v, want corrupt", err)
	}
	_, err = Validate(rawRecordBatch(1, recordWithHeaders(2, true)))
	if base.CodeOf(err) != base.CodeCorrupt {
		t.Errorf("null header key: got %v, want corrupt", err)
	}
	var bld Builder
	bld.Begin(nil, Header{})
	if err := bld.Add(0, nil, nil, make([]RecordHeader, base.RecordHeadersMax+1)); base.CodeOf(err) != base.CodeTooLarge {
		t.Errorf("Builder.Add with RecordHeadersMax+1 headers: got %v, want too_large", err)
	}
}

func TestParseHeaderLimitEdges(t *testing.T) {
	b := build(t, Header{}, sample[:1])
	binary.BigEndian.PutUint32(b[offLength:], base.BatchBytesMax-LogOverhead)
	if _, err := ParseHeader(b); err != nil {
		t.Errorf("batchLength at BatchBytesMax: %v, want accepted", err)
	}
	binary.BigEndian.PutUint32(b[offLength:], base.BatchBytesMax-LogOverhead+1)
	if _, err := ParseHeader(b); base.CodeOf(err) != base.CodeTooLarge {
		t.Errorf("batchLength one over BatchBytesMax: got %v, want too_large", err)
	}
	b = build(t, Header{}, sample[:1])
	binary.BigEndian.PutUint32(b[offRecordCount:], base.BatchRecordsMax)
	if _, err := ParseHeader(b); err != nil {
		t.Errorf("recordCount at BatchRecordsMax: %v, want accepted by ParseHeader", err)
	}
}

// TestBuilderBatchBytesMaxEdge fills a batch to exactly BatchBytesMax and
// checks that one more byte is refused with the batch left intact.
func TestBuilderBatchBytesMaxEdge(t *testing.T) {
	var bld Builder
	bld.Begin(make([]byte, 0, base.BatchBytesMax), Header{})
	// One record: length varint + attrs + tsDelta + offsetDelta + null key
	// + value length varint + value + header count. Solve for the value.
	value := make([]byte, base.BatchBytesMax-HeaderSize-5-1-1-1-1-5-1) // two 5-byte varints
	if err := bld.Add(0, nil, append(value, 0), nil); base.CodeOf(err) != base.CodeTooLarge {
		t.Fatalf("Add one byte over the limit: got %v, want too_large", err)
	}
	if err := bld.Add(0, nil, value, nil); err != nil {
		t.Fatalf("Add filling the batch to BatchBytesMax: %v", err)
	}
	b, err := bld.Finish()
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != base.BatchBytesMax {
		t.Fatalf("batch size: got %d, want %d", len(b), base.BatchBytesMax)
	}
	if _, err := Validate(b); err != nil {
		t.Errorf("Validate of a BatchBytesMax batch: %v", err)
	}
}

func TestCompressedBatchValidatesButDoesNotIterate(t *testing.T) {
	b := build(t, Header{}, sample)
	binary.BigEndian.PutUint16(b[offAttributes:], CompressionZstd)
	b[HeaderSize] ^= 0xff // compressed bytes are opaque: no record check
	recrc(b)
	if _, err := Validate(b); err != nil {
		t.Errorf("Validate of a compressed batch: %v, want nil (CRC only)", err)
	}
	_, err := Records(b)
	if base.CodeOf(err) != base.CodeNotSupported {
		t.Errorf("Records of a compressed batch: got %v, want not_supported", err)
	}
	var bld Builder
	bld.Begin(nil, Header{Attributes: CompressionGzip})
	if err := bld.Add(0, nil, nil, nil); base.CodeOf(err) != base.CodeNotSupported {
		t.Errorf("Builder with a compression codec: got %v, want not_supported", err)
	}
}

func TestControlBatchRoundTrip(t *testing.T) {
	payload := []byte("raft conf change")
	b, err := AppendControl([]byte("prefix"), Header{ProducerID: -1}, 1234, ControlFerryMin+3, payload)
	if err != nil {
		t.Fatal(err)
	}
	if string(b[:6]) != "prefix" {
		t.Fatalf("AppendControl did not append to dst")
	}
	b = b[6:]
	h, err := Validate(b)
	if err != nil {
		t.Fatal(err)
	}
	if !h.Attributes.IsControl() || h.RecordCount != 1 || h.MaxTimestamp != 1234 {
		t.Errorf("control header: got %+v", h)
	}
	ctype, got, err := ParseControl(b)
	if err != nil || ctype != ControlFerryMin+3 || !bytes.Equal(got, payload) {
		t.Errorf("ParseControl: got %d %q %v, want %d %q nil", ctype, got, err, ControlFerryMin+3, payload)
	}
	if _, _, err := ParseControl(build(t, Header{}, sample[:1])); base.CodeOf(err) != base.CodeCorrupt {
		t.Errorf("ParseControl of a data batch: got %v, want corrupt", err)
	}
	// A Kafka commit marker: key version 0 type 1, value version + coordinator epoch.
	commit, err := AppendControl(nil, Header{Attributes: AttrTransactional}, 0, ControlCommit, []byte{0, 0, 0, 0, 0, 5})
	if err != nil {
		t.Fatal(err)
	}
	var kb kmsg.RecordBatch
	if err := kb.ReadFrom(commit); err != nil || kb.Attributes != int16(AttrTransactional|AttrControl) {
		t.Fatalf("kmsg decode of a commit marker: attrs %#x err %v", kb.Attributes, err)
	}
	var kr kmsg.Record
	if err := kr.ReadFrom(kb.Records); err != nil || !bytes.Equal(kr.Key, []byte{0, 0, 0, 1}) {
		t.Errorf("commit marker key: got %x %v, want 00000001", kr.Key, err)
	}
}

func TestBuilderRejectsEmptyBatch(t *testing.T) {
	var bld Builder
	bld.Begin([]byte("x"), Header{})
	out, err := bld.Finish()
	if base.CodeOf(err) != base.CodeInvalidArgument || string(out) != "x" {
		t.Errorf("Finish with no records: got %q %v, want %q and invalid_argument", out, err, "x")
	}
}

func TestBuilderAndIteratorDoNotAllocate(t *testing.T) {
	buf := make([]byte, 0, 64<<10)
	key, value := []byte("key"), make([]byte, 1024)
	hdrs := []RecordHeader{{Key: []byte("a"), Value: []byte("b")}}
	var bld Builder
	allocs := testing.AllocsPerRun(100, func() {
		bld.Begin(buf[:0], Header{})
		for i := range 10 {
			if err := bld.Add(int64(i), key, value, hdrs); err != nil {
				t.Fatal(err)
			}
		}
		var err error
		if buf, err = bld.Finish(); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Builder: %v allocations per 10-record batch, want 0", allocs)
	}
	allocs = testing.AllocsPerRun(100, func() {
		it, err := Records(buf)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for r, ok := it.Next(); ok; r, ok = it.Next() {
			hi := r.Headers()
			for _, _, _, ok := hi.Next(); ok; _, _, _, ok = hi.Next() {
				n++
			}
		}
		if n != 10 || it.Err() != nil {
			t.Fatalf("iterated %d headers, err %v", n, it.Err())
		}
		if _, err := Validate(buf); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Records+Validate: %v allocations per batch, want 0", allocs)
	}
}

func TestErrorsCarryCodes(t *testing.T) {
	_, err := ParseHeader(nil)
	var e *base.Error
	if !errors.As(err, &e) || e.Code != base.CodeCorrupt {
		t.Errorf("ParseHeader(nil): got %v, want a *base.Error with code corrupt", err)
	}
}

func TestCheckCRCChecksHeaderAndCRCOnly(t *testing.T) {
	good := build(t, sampleHeader, sample)
	if _, err := CheckCRC(good); err != nil {
		t.Fatalf("CheckCRC of a good batch: %v", err)
	}
	bad := bytes.Clone(good)
	bad[len(bad)-1] ^= 1
	if _, err := CheckCRC(bad); base.CodeOf(err) != base.CodeCorrupt {
		t.Errorf("CheckCRC with a flipped byte: got %v, want corrupt", err)
	}
	// A record count that disagrees with the records, CRC recomputed:
	// CheckCRC accepts it (it does not walk records), Validate does not.
	miscount := bytes.Clone(good)
	binary.BigEndian.PutUint32(miscount[offRecordCount:], 3)
	recrc(miscount)
	if _, err := CheckCRC(miscount); err != nil {
		t.Errorf("CheckCRC walked the records: %v", err)
	}
	if _, err := Validate(miscount); base.CodeOf(err) != base.CodeCorrupt {
		t.Errorf("Validate of a miscounted batch: got %v, want corrupt", err)
	}
}

// RecordSizeMin bounds record counts by bytes (base.BatchRecordsMax, the
// broker's decode allocations): the smallest record the Builder can write
// must take exactly that many bytes.
func TestTheSmallestRecordTakesRecordSizeMinBytes(t *testing.T) {
	// Offset deltas up to 62 and timestamp deltas of 0: one varint byte each.
	const n = 63
	data := build(t, Header{}, make([]rec, n))
	if got, want := len(data)-HeaderSize, n*RecordSizeMin; got != want {
		t.Fatalf("%d records with a null key and value and no headers take %d bytes, want %d", n, got, want)
	}
	// base cannot import this package, so its bound repeats the 7.
	if base.BatchRecordsMax != base.BatchBytesMax/RecordSizeMin {
		t.Errorf("base.BatchRecordsMax is %d, want BatchBytesMax / RecordSizeMin = %d", base.BatchRecordsMax, base.BatchBytesMax/RecordSizeMin)
	}
}

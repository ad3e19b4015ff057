package protocol

import (
	"bytes"
	"errors"
	"math"
	"runtime"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// be builds big-endian wire bytes for hand-made inputs. Every method
// returns a new slice, so a prefix can be extended several ways.
type be []byte

func (b be) add(p ...byte) be { return append(slices.Clip(b), p...) }
func (b be) i8(v int8) be     { return b.add(byte(v)) }
func (b be) i16(v int16) be   { return b.add(appendUint16(nil, uint16(v))...) }
func (b be) i32(v int32) be   { return b.add(appendUint32(nil, uint32(v))...) }
func (b be) uv(v uint32) be   { return b.add(appendUvarint(nil, v)...) }
func (b be) raw(p ...byte) be { return b.add(p...) }
func (b be) str(s string) be  { return b.i16(int16(len(s))).add([]byte(s)...) }
func (b be) cstr(s string) be { return b.uv(uint32(len(s) + 1)).add([]byte(s)...) }
func (b be) zeros(n int) be   { return b.add(make([]byte, n)...) }
func (b be) tags(n uint32) be { return b.uv(n) }
func (b be) bytes() []byte    { return slices.Clone([]byte(b)) }

// decodeErr decodes src into m and returns the *DecodeError, failing the
// test when there is none.
func decodeErr(t *testing.T, m Message, src []byte, version int16) *DecodeError {
	t.Helper()
	err := m.Decode(src, version)
	var de *DecodeError
	if !errors.As(err, &de) {
		t.Fatalf("Decode(%x) v%d: got %v, want a *DecodeError", src, version, err)
	}
	return de
}

func TestUvarintRoundTripsAndRejectsOverflow(t *testing.T) {
	for _, v := range []uint32{0, 1, 127, 128, 16383, 16384, 1<<28 - 1, 1 << 28, math.MaxUint32} {
		src := appendUvarint(nil, v)
		r := newReader(src)
		if got := r.uvarint("x"); got != v || r.err != nil || r.off != len(src) || len(src) != uvarintLen(v) {
			t.Errorf("uvarint %d: got %d, err %v, read %d of %d bytes", v, got, r.err, r.off, len(src))
		}
	}
	for name, c := range map[string]struct {
		src    []byte
		reason error
	}{
		"fifth byte over 4 bits": {[]byte{0xff, 0xff, 0xff, 0xff, 0x10}, ErrVarintOverflow},
		"six bytes":              {[]byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x00}, ErrVarintOverflow},
		"ends after a continue":  {[]byte{0x80}, ErrTruncated},
	} {
		r := newReader(c.src)
		r.uvarint("x")
		if r.err == nil || !errors.Is(r.err, c.reason) {
			t.Errorf("%s: got %v, want %v", name, r.err, c.reason)
		}
	}
	// An over-long encoding of a small value is accepted, as Kafka does.
	r := newReader([]byte{0x81, 0x80, 0x00})
	if got := r.uvarint("x"); got != 1 || r.err != nil {
		t.Errorf("over-long uvarint: got %d, %v; want 1", got, r.err)
	}
}

func TestNegativeAndNullLengths(t *testing.T) {
	// ProduceRequest v2: Acks, TimeoutMs, TopicData[Name, PartitionData].
	head := be{}.i16(1).i32(1000).i32(1)
	cases := map[string]struct {
		src    []byte
		reason error
	}{
		"null topic name":         {head.i16(-1).i32(0).bytes(), ErrUnexpectedNull},
		"negative topic name":     {head.i16(-2).i32(0).bytes(), ErrNegativeLength},
		"null non-nullable array": {be{}.i16(1).i32(1000).i32(-1).bytes(), ErrUnexpectedNull},
		"negative array":          {be{}.i16(1).i32(1000).i32(-7).bytes(), ErrNegativeLength},
		"negative records":        {head.str("t").i32(1).i32(0).i32(-2).bytes(), ErrNegativeLength},
	}
	for name, c := range cases {
		de := decodeErr(t, new(ProduceRequest), c.src, 2)
		if !errors.Is(de, c.reason) {
			t.Errorf("%s: got %v, want %v", name, de, c.reason)
		}
	}
	// Null records are allowed (nullable in every version) and stay null.
	var m ProduceRequest
	if err := m.Decode(head.str("t").i32(1).i32(0).i32(-1).bytes(), 2); err != nil {
		t.Fatal(err)
	}
	if r := m.TopicData[0].PartitionData[0].Records; r != nil {
		t.Errorf("null records: got %x, want nil", r)
	}
}

// TestArrayCountIsCheckedBeforeAllocating sends counts the bytes left
// cannot hold: the decoder must fail without allocating for them.
func TestArrayCountIsCheckedBeforeAllocating(t *testing.T) {
	src := be{}.i16(1).i32(1000).i32(math.MaxInt32).zeros(64).bytes()
	var m ProduceRequest
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	err := m.Decode(src, 2)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrTruncated) {
		t.Fatalf("count 2^31-1 over 64 bytes: got %v, want ErrTruncated", err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 64<<10 {
		t.Errorf("allocated %d bytes for a refused count, want under 64 KiB", got)
	}
}

// TestArrayCountEdge: a count whose minimum-size elements exactly fill the
// bytes left passes the check; one more fails it.
func TestArrayCountEdge(t *testing.T) {
	for _, c := range []struct {
		n, bytes int
		ok       bool
	}{{16, 64, true}, {17, 64, false}, {0, 0, true}} {
		r := newReader(be{}.i32(int32(c.n)).zeros(c.bytes).bytes())
		n := r.arrayLen(false, false, 4, "x")
		if ok := r.err == nil && n == c.n; ok != c.ok {
			t.Errorf("count %d of 4-byte elements over %d bytes: got n=%d err=%v, want ok=%v", c.n, c.bytes, n, r.err, c.ok)
		}
	}
}

// TestAllocationBudgetEdge: an allocation of exactly the budget succeeds,
// one byte more fails, and decoders start with the named limit.
func TestAllocationBudgetEdge(t *testing.T) {
	if r := newReader(nil); r.budget != base.KafkaDecodeAllocBytesMax {
		t.Errorf("initial budget: got %d, want base.KafkaDecodeAllocBytesMax (%d)", r.budget, base.KafkaDecodeAllocBytesMax)
	}
	size := int(unsafe.Sizeof(ProduceRequestTopicProduceData{}))
	r := reader{budget: 10 * size}
	if s := allocSlice[ProduceRequestTopicProduceData](&r, 10, "x"); len(s) != 10 || r.err != nil || r.budget != 0 {
		t.Errorf("exact budget: got len %d, err %v, budget left %d", len(s), r.err, r.budget)
	}
	r = reader{budget: 10*size - 1}
	if s := allocSlice[ProduceRequestTopicProduceData](&r, 10, "x"); s != nil || !errors.Is(r.err, ErrAllocLimit) {
		t.Errorf("budget one byte short: got len %d, err %v; want ErrAllocLimit", len(s), r.err)
	}
	// Through a whole decode: 1,000 topics with empty names cost more than a
	// budget just below their slice.
	src := be{}.i16(1).i32(0).i32(1000)
	for range 1000 {
		src = src.str("").i32(0)
	}
	for _, c := range []struct {
		budget int
		ok     bool
	}{{1000 * size, true}, {1000*size - 1, false}} {
		var m ProduceRequest
		r := reader{src: src, lim: len(src), budget: c.budget}
		m.decode(&r, 2)
		if ok := r.err == nil; ok != c.ok {
			t.Errorf("decode with budget %d: got err %v, want ok=%v", c.budget, r.err, c.ok)
		}
	}
}

func TestTaggedFieldCountEdge(t *testing.T) {
	encode := func(n int) []byte {
		m := ApiVersionsRequest{ClientSoftwareName: "c", ClientSoftwareVersion: "1"}
		for i := range n {
			m.UnknownTags = append(m.UnknownTags, TaggedField{Tag: uint32(i), Data: []byte{byte(i)}})
		}
		return m.Encode(nil, 3)
	}
	var m ApiVersionsRequest
	if err := m.Decode(encode(base.KafkaTaggedFieldsMax), 3); err != nil || len(m.UnknownTags) != base.KafkaTaggedFieldsMax {
		t.Errorf("%d tags (the limit): got %v with %d tags", base.KafkaTaggedFieldsMax, err, len(m.UnknownTags))
	}
	err := m.Decode(encode(base.KafkaTaggedFieldsMax+1), 3)
	if !errors.Is(err, ErrTooManyTags) || base.CodeOf(err) != base.CodeTooLarge {
		t.Errorf("%d tags: got %v (code %v), want ErrTooManyTags, too_large", base.KafkaTaggedFieldsMax+1, err, base.CodeOf(err))
	}
	// A huge claimed count over a few bytes fails at once.
	src := be{}.cstr("c").cstr("1").uv(math.MaxUint32).bytes()
	if err := m.Decode(src, 3); !errors.Is(err, ErrTooManyTags) {
		t.Errorf("2^32-1 tags: got %v, want ErrTooManyTags", err)
	}
	// Within the limit but more than the bytes left.
	src = be{}.cstr("c").cstr("1").uv(10).raw(1, 0).bytes()
	if err := m.Decode(src, 3); !errors.Is(err, ErrTruncated) {
		t.Errorf("10 tags over 2 bytes: got %v, want ErrTruncated", err)
	}
}

func TestTaggedFieldsMustAscendAndFitTheirSize(t *testing.T) {
	body := be{}.cstr("c").cstr("1")
	for name, c := range map[string]struct {
		src    []byte
		reason error
	}{
		"duplicate":         {body.tags(2).uv(5).uv(0).uv(5).uv(0).bytes(), ErrTagOrder},
		"descending":        {body.tags(2).uv(6).uv(0).uv(5).uv(0).bytes(), ErrTagOrder},
		"size past the end": {body.tags(1).uv(5).uv(9).raw(1).bytes(), ErrTruncated},
	} {
		if err := new(ApiVersionsRequest).Decode(c.src, 3); !errors.Is(err, c.reason) {
			t.Errorf("%s: got %v, want %v", name, err, c.reason)
		}
	}
	// FetchRequest v12 knows tag 0 (ClusterId, a compact nullable string):
	// a size larger than the string it holds is malformed.
	// ReplicaId, MaxWaitMs, MinBytes, MaxBytes, IsolationLevel, SessionId,
	// SessionEpoch, no topics, no forgotten topics, RackId "".
	fetch := be{}.i32(-1).i32(0).i32(0).i32(0).i8(0).i32(0).i32(0).raw(1).raw(1).cstr("")
	ok := fetch.tags(1).uv(0).uv(2).cstr("a").bytes()
	var m FetchRequest
	if err := m.Decode(ok, 12); err != nil || m.ClusterId == nil || *m.ClusterId != "a" {
		t.Fatalf("ClusterId tag: got %v, %v", err, m.ClusterId)
	}
	bad := fetch.tags(1).uv(0).uv(3).cstr("a").raw(0).bytes()
	if err := m.Decode(bad, 12); !errors.Is(err, ErrTagSize) {
		t.Errorf("tag size 3 around a 2-byte value: got %v, want ErrTagSize", err)
	}
}

// TestLongTaggedValuesRoundTrip covers tagged values of 128 bytes or more,
// whose size needs a second byte: the encoder moves the value, and kmsg
// must read what it wrote.
func TestLongTaggedValuesRoundTrip(t *testing.T) {
	resp := ProduceResponse{UnknownTags: []TaggedField{{Tag: 7, Data: bytes.Repeat([]byte{0xab}, 300)}}}
	for i := range 30 {
		resp.NodeEndpoints = append(resp.NodeEndpoints, ProduceResponseNodeEndpoint{NodeId: int32(i), Host: strings.Repeat("h", i), Port: 9092})
	}
	enc := resp.Encode(nil, 10)
	var back ProduceResponse
	if err := back.Decode(enc, 10); err != nil {
		t.Fatal(err)
	}
	if got := back.Encode(nil, 10); !bytes.Equal(got, enc) {
		t.Fatalf("re-encoding differs at %d", firstDiff(got, enc))
	}
	if len(back.NodeEndpoints) != 30 || back.NodeEndpoints[29].Host != strings.Repeat("h", 29) || len(back.UnknownTags[0].Data) != 300 {
		t.Errorf("decoded: %d endpoints, unknown tag of %d bytes", len(back.NodeEndpoints), len(back.UnknownTags[0].Data))
	}
	k := kmsg.NewPtrProduceResponse()
	k.SetVersion(10)
	if err := k.ReadFrom(enc); err != nil {
		t.Fatalf("kmsg reading our long tags: %v", err)
	}
	if got := k.AppendTo(nil); !bytes.Equal(got, enc) {
		t.Errorf("kmsg re-encoding differs at %d", firstDiff(got, enc))
	}
}

func TestBoolAndPresenceBytesAreStrict(t *testing.T) {
	// ProduceRequest has no bool; MetadataRequest v4: Topics (null), AllowAutoTopicCreation.
	if err := new(MetadataRequest).Decode(be{}.i32(-1).raw(2).bytes(), 4); !errors.Is(err, ErrBadBool) {
		t.Errorf("bool byte 2: got %v, want ErrBadBool", err)
	}
	// ConsumerGroupHeartbeatResponse v0 ends with a nullable struct.
	head := be{}.i32(0).i16(0).cstr("").cstr("").i32(0).i32(0)
	for _, c := range []struct {
		b  byte
		ok bool
	}{{0xff, true}, {0, false}, {2, false}} {
		var m ConsumerGroupHeartbeatResponse
		src := head.raw(c.b)
		if c.b == 1 {
			src = src.raw(1, 0) // empty topics, no tags
		}
		err := m.Decode(src.tags(0).bytes(), 0)
		if ok := err == nil; ok != c.ok || (!ok && !errors.Is(err, ErrBadPresence)) {
			t.Errorf("presence byte %#x: got %v, want ok=%v", c.b, err, c.ok)
		}
	}
}

func TestDecodeErrorsSayWhereAndCarryCodes(t *testing.T) {
	src := be{}.i16(1).i32(1000).i32(1).str("topic").i32(1).i32(0).i32(50).raw(1, 2, 3).bytes()
	err := new(ProduceRequest).Decode(src, 2)
	var de *DecodeError
	if !errors.As(err, &de) {
		t.Fatalf("got %v, want a *DecodeError", err)
	}
	if de.Field != "PartitionProduceData.Records" || !errors.Is(err, ErrTruncated) || base.CodeOf(err) != base.CodeCorrupt {
		t.Errorf("got field %q, reason %v, code %v; want PartitionProduceData.Records, ErrTruncated, corrupt",
			de.Field, de.Reason, base.CodeOf(err))
	}
	trailing := append(be{}.i16(1).i32(1000).i32(0).bytes(), 9)
	err = new(ProduceRequest).Decode(trailing, 2)
	if !errors.As(err, &de) || !errors.Is(err, ErrTrailingBytes) || de.Offset != 10 {
		t.Errorf("trailing byte: got %v, want ErrTrailingBytes at offset 10", err)
	}
}

func TestUnsupportedVersions(t *testing.T) {
	err := new(ProduceRequest).Decode(nil, 12)
	if !errors.Is(err, ErrUnsupportedVersion) || base.CodeOf(err) != base.CodeNotSupported {
		t.Errorf("Decode v12: got %v, want ErrUnsupportedVersion, not_supported", err)
	}
	if err := new(ProduceRequest).Validate(-1); !errors.Is(err, ErrUnsupportedVersion) {
		t.Errorf("Validate v-1: got %v", err)
	}
	defer func() {
		if r, _ := recover().(string); !strings.HasPrefix(r, "BUG: ") {
			t.Errorf("Encode v12: panic %q, want a BUG panic", r)
		}
	}()
	new(ProduceRequest).Encode(nil, 12)
}

// TestNullAndEmptyStayDistinct: nullable bytes, strings and arrays keep
// null apart from empty through a round trip.
func TestNullAndEmptyStayDistinct(t *testing.T) {
	empty := ""
	for _, c := range []struct {
		name string
		m    DescribeConfigsRequest
	}{
		{"null keys", DescribeConfigsRequest{Resources: []DescribeConfigsRequestDescribeConfigsResource{{ResourceName: "r"}}}},
		{"empty keys", DescribeConfigsRequest{Resources: []DescribeConfigsRequestDescribeConfigsResource{{ResourceName: "r", ConfigurationKeys: []string{}}}}},
	} {
		var back DescribeConfigsRequest
		if err := back.Decode(c.m.Encode(nil, 4), 4); err != nil {
			t.Fatal(err)
		}
		if got, want := back.Resources[0].ConfigurationKeys == nil, c.m.Resources[0].ConfigurationKeys == nil; got != want {
			t.Errorf("%s: decoded nil=%v, want nil=%v", c.name, got, want)
		}
	}
	for _, id := range []*string{nil, &empty} {
		m := ProduceRequest{TransactionalId: id, TopicData: []ProduceRequestTopicProduceData{{Name: "t",
			PartitionData: []ProduceRequestPartitionProduceData{{Records: []byte{}}}}}}
		for _, v := range []int16{3, 9} {
			var back ProduceRequest
			if err := back.Decode(m.Encode(nil, v), v); err != nil {
				t.Fatal(err)
			}
			if (back.TransactionalId == nil) != (id == nil) || back.TopicData[0].PartitionData[0].Records == nil {
				t.Errorf("v%d: transactional id nil=%v, records nil=%v", v, back.TransactionalId == nil, back.TopicData[0].PartitionData[0].Records == nil)
			}
		}
	}
}

func TestAbsentFieldsDecodeToDefaults(t *testing.T) {
	// MetadataRequest v3 lacks AllowAutoTopicCreation, whose default is true.
	m := MetadataRequest{AllowAutoTopicCreation: false}
	if err := m.Decode(be{}.i32(-1).bytes(), 3); err != nil {
		t.Fatal(err)
	}
	if !m.AllowAutoTopicCreation || m.Topics != nil {
		t.Errorf("MetadataRequest v3: AllowAutoTopicCreation %v, Topics %v; want true, nil", m.AllowAutoTopicCreation, m.Topics)
	}
	var f FetchRequest
	f.Default()
	if f.ReplicaId != -1 || f.MaxBytes != math.MaxInt32 || f.SessionEpoch != -1 || f.ClusterId != nil {
		t.Errorf("FetchRequest defaults: ReplicaId %d MaxBytes %d SessionEpoch %d", f.ReplicaId, f.MaxBytes, f.SessionEpoch)
	}
}

func TestValidateReportsWhatAVersionWouldLose(t *testing.T) {
	resp := ProduceResponse{NodeEndpoints: []ProduceResponseNodeEndpoint{{NodeId: 1}}}
	if err := resp.Validate(10); err != nil {
		t.Errorf("NodeEndpoints at v10: got %v", err)
	}
	var fe *FieldError
	if err := resp.Validate(9); !errors.As(err, &fe) || fe.Field != "ProduceResponse.NodeEndpoints" || !errors.Is(err, ErrFieldNotInVersion) {
		t.Errorf("NodeEndpoints at v9: got %v, want ErrFieldNotInVersion on ProduceResponse.NodeEndpoints", err)
	}
	// ThrottleTimeMs is ignorable: v0 may drop it.
	if err := (&ProduceResponse{ThrottleTimeMs: 5}).Validate(0); err != nil {
		t.Errorf("ignorable ThrottleTimeMs at v0: got %v", err)
	}
	// MetadataResponse topic names are nullable from v12 only.
	var mr MetadataResponse
	mr.Default()
	mr.Topics = make([]MetadataResponseMetadataResponseTopic, 1)
	mr.Topics[0].Default()
	mr.Topics[0].Name = nil
	if err := mr.Validate(12); err != nil {
		t.Errorf("null topic name at v12: got %v", err)
	}
	if err := mr.Validate(11); !errors.Is(err, ErrNullNotAllowed) {
		t.Errorf("null topic name at v11: got %v, want ErrNullNotAllowed", err)
	}
}

func TestMapKeys(t *testing.T) {
	r := AlterConfigsRequestAlterConfigsResource{ResourceType: 2, ResourceName: "t"}
	if got, want := r.MapKey(), (AlterConfigsRequestAlterConfigsResourceMapKey{ResourceType: 2, ResourceName: "t"}); got != want {
		t.Errorf("composite key: got %+v, want %+v", got, want)
	}
	name := "x"
	if got := (&MetadataResponseMetadataResponseTopic{Name: &name}).MapKey(); got != "x" {
		t.Errorf("nullable string key: got %q", got)
	}
	if got := (&MetadataResponseMetadataResponseTopic{}).MapKey(); got != "" {
		t.Errorf("null key: got %q, want \"\"", got)
	}
}

func TestEndTagMovesLongValues(t *testing.T) {
	for _, size := range []int{0, 127, 128, 16383, 16384} {
		dst := beginTag([]byte{0xee}, 5)
		mark := len(dst)
		dst = append(dst, bytes.Repeat([]byte{7}, size)...)
		dst = endTag(dst, mark)
		want := slices.Concat([]byte{0xee, 5}, appendUvarint(nil, uint32(size)), bytes.Repeat([]byte{7}, size))
		if !bytes.Equal(dst, want) {
			t.Errorf("size %d: got %d bytes, want %d (first difference at %d)", size, len(dst), len(want), firstDiff(dst, want))
		}
	}
}

package codec

import (
	"bytes"
	"encoding/binary"
	"math"
	"reflect"
	"runtime"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/ferry-mq/ferry/internal/base"
)

// encodeTable returns the wire form of t (length prefix included).
func encodeTable(t testing.TB, tbl Table) []byte {
	t.Helper()
	var w Writer
	w.table(tbl)
	if err := w.Err(); err != nil {
		t.Fatalf("encoding table: %v", err)
	}
	return bytes.Clone(w.Bytes())
}

// decodeTable decodes b as one table that must use every byte.
func decodeTable(b []byte) (Table, error) {
	var r Reader
	r.Reset(b)
	t := r.table()
	if err := r.finish(0); err != nil {
		return nil, err
	}
	return t, nil
}

// Each value's wire form (type letter and value) in RabbitMQ's dialect,
// derived by hand from the 0-9-1 errata's table of types.
func TestEveryFieldTypeEncodesToKnownBytes(t *testing.T) {
	cases := []struct {
		name  string
		value any
		wire  string
	}{
		{"t bool", true, `"t" 01`},
		{"b int8", int8(-2), `"b" FE`},
		{"B uint8", uint8(0xFE), `"B" FE`},
		{"s int16", int16(-2), `"s" FF FE`},
		{"u uint16", uint16(0xFFFE), `"u" FF FE`},
		{"I int32", int32(-2), `"I" FF FF FF FE`},
		{"i uint32", uint32(0xFFFFFFFE), `"i" FF FF FF FE`},
		{"l int64", int64(-2), `"l" FF FF FF FF FF FF FF FE`},
		{"f float32", float32(1.5), `"f" 3F C0 00 00`},
		{"d float64", 1.5, `"d" 3F F8 00 00 00 00 00 00`},
		{"D decimal", Decimal{Scale: 2, Value: 314}, `"D" 02 00 00 01 3A`},
		{"S long string", "hi", `"S" 00 00 00 02 "hi"`},
		{"x byte array", []byte{0xCA, 0xFE}, `"x" 00 00 00 02 CA FE`},
		{"T timestamp", time.Unix(0x01020304, 0).UTC(), `"T" 00 00 00 00 01 02 03 04`},
		{"V void", nil, `"V"`},
		{"F table", Table{"k": int8(1)}, `"F" 00 00 00 04 01 "k" "b" 01`},
		{"A array", []any{int8(1), "a"}, `"A" 00 00 00 08 "b" 01 "S" 00 00 00 01 "a"`},
	}
	for _, c := range cases {
		value := hexBytes(t, c.wire)
		want := binary.BigEndian.AppendUint32(nil, uint32(2+len(value)))
		want = append(append(want, 1, 'v'), value...)
		if got := encodeTable(t, Table{"v": c.value}); !bytes.Equal(got, want) {
			t.Errorf("%s: encoded\n got % x\nwant % x", c.name, got, want)
		}
		got, err := decodeTable(want)
		if err != nil {
			t.Errorf("%s: decoding: %v", c.name, err)
			continue
		}
		if !reflect.DeepEqual(got, Table{"v": c.value}) {
			t.Errorf("%s: decoded %#v, want %#v", c.name, got["v"], c.value)
		}
	}
}

func TestEncodingWidensIntAndAcceptsPlainMaps(t *testing.T) {
	got := encodeTable(t, Table{"n": 7, "m": map[string]any{"k": nil}})
	want := encodeTable(t, Table{"n": int64(7), "m": Table{"k": nil}})
	if !bytes.Equal(got, want) {
		t.Errorf("int and map[string]any: got % x, want % x", got, want)
	}
}

func TestDecodingReadsLAsInt64AndRejectsOtherLetters(t *testing.T) {
	got, err := decodeTable(hexBytes(t, `00 00 00 0B 01 "v" "L" FF FF FF FF FF FF FF FE`))
	if err != nil || got["v"] != int64(-2) {
		t.Errorf("L: got %#v, %v; want int64(-2) as RabbitMQ reads it", got["v"], err)
	}
	for _, letter := range []string{"U", "q", "\x00"} {
		_, err := decodeTable(hexBytes(t, `00 00 00 05 01 "v" "`+letter+`" 00 01`))
		if err == nil || replyOf(t, err).ReplyCode != ReplyFrameError {
			t.Errorf("type letter %q: got %v, want a frame error", letter, err)
		}
	}
}

func TestTableRoundTripsEveryTypeNested(t *testing.T) {
	want := sampleTable()
	got, err := decodeTable(encodeTable(t, want))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("round trip:\n got %#v\nwant %#v", got, want)
	}
}

func TestEmptyCompoundValuesDecodeAsNil(t *testing.T) {
	in := Table{"t": Table{}, "a": []any{}, "x": []byte{}, "s": ""}
	got, err := decodeTable(encodeTable(t, in))
	if err != nil {
		t.Fatal(err)
	}
	want := Table{"t": Table(nil), "a": []any(nil), "x": []byte(nil), "s": ""}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %#v, want %#v", got, want)
	}
	if empty, err := decodeTable(encodeTable(t, Table{})); err != nil || empty != nil {
		t.Errorf("an empty top-level table: got %#v, %v; want nil", empty, err)
	}
}

func TestDecodedTablesDoNotAliasTheInput(t *testing.T) {
	wire := encodeTable(t, Table{"x": []byte("abc"), "s": "def"})
	got, err := decodeTable(wire)
	if err != nil {
		t.Fatal(err)
	}
	for i := range wire {
		wire[i] = 0
	}
	if string(got["x"].([]byte)) != "abc" || got["s"] != "def" {
		t.Errorf("after overwriting the input the table holds %#v", got)
	}
}

func TestTableLengthMustMatchItsContents(t *testing.T) {
	cases := map[string]string{
		"value runs past the table":  `00 00 00 04 01 "v" "I" 00 | 00 00 00`,
		"nested table past parent":   `00 00 00 08 01 "v" "F" 00 00 00 09 01`,
		"array element cut":          `00 00 00 07 01 "v" "A" 00 00 00 01`,
		"long string past the table": `00 00 00 08 01 "v" "S" 00 00 00 05 "ab"`,
		"key longer than the table":  `00 00 00 02 09 "v"`,
	}
	for name, wire := range cases {
		if _, err := decodeTable(hexBytes(t, wire)); err == nil || replyOf(t, err).ReplyCode != ReplyFrameError {
			t.Errorf("%s: got %v, want a frame error", name, err)
		}
	}
}

// nested returns a table nested depth levels deep, counting itself.
func nested(depth int) Table {
	t := Table{"leaf": true}
	for range depth - 1 {
		t = Table{"t": t}
	}
	return t
}

func TestTableDepthLimitEdge(t *testing.T) {
	ok := nested(base.AMQPTableDepthMax)
	wire := encodeTable(t, ok)
	if got, err := decodeTable(wire); err != nil || !reflect.DeepEqual(got, ok) {
		t.Errorf("depth %d: got %v, want it decoded", base.AMQPTableDepthMax, err)
	}
	var w Writer
	w.table(nested(base.AMQPTableDepthMax + 1))
	if got := base.CodeOf(w.Err()); got != base.CodeTooLarge {
		t.Errorf("encoding depth %d: got %v, want too_large", base.AMQPTableDepthMax+1, w.Err())
	}
	// Wrap the accepted table once more by hand to decode one level too deep.
	deeper := binary.BigEndian.AppendUint32(nil, uint32(3+len(wire)))
	deeper = append(append(deeper, 1, 't', 'F'), wire...)
	_, err := decodeTable(deeper)
	if err == nil || replyOf(t, err).ReplyCode != ReplyFrameError || base.CodeOf(err) != base.CodeTooLarge {
		t.Errorf("decoding depth %d: got %v, want a frame error with code too_large", base.AMQPTableDepthMax+1, err)
	}
}

func TestArraysCountTowardTheDepthLimit(t *testing.T) {
	var v any = true
	for range base.AMQPTableDepthMax {
		v = []any{v}
	}
	var w Writer
	w.table(Table{"a": v}) // the table is depth 1, so the arrays reach one past the limit
	if base.CodeOf(w.Err()) != base.CodeTooLarge {
		t.Errorf("arrays nested past the limit: got %v, want too_large", w.Err())
	}
}

func TestEncodingATableThatContainsItselfFails(t *testing.T) {
	cyclic := Table{}
	cyclic["self"] = cyclic
	cyclic["again"] = cyclic // fan-out: without the value limit this would be 2^32 values
	var w Writer
	w.table(cyclic)
	if base.CodeOf(w.Err()) != base.CodeTooLarge {
		t.Errorf("cyclic table: got %v, want too_large", w.Err())
	}
}

// voids returns a table of n void values, with distinct 3-byte keys.
func voids(n int) Table {
	t := make(Table, n)
	for i := range n {
		t[string([]byte{byte(i >> 16), byte(i >> 8), byte(i)})] = nil
	}
	return t
}

func TestTableFieldsLimitEdge(t *testing.T) {
	atLimit := voids(base.AMQPTableFieldsMax)
	wire := encodeTable(t, atLimit)
	if got, err := decodeTable(wire); err != nil || len(got) != base.AMQPTableFieldsMax {
		t.Errorf("%d values: got %d, %v; want all decoded", base.AMQPTableFieldsMax, len(got), err)
	}
	var w Writer
	w.table(voids(base.AMQPTableFieldsMax + 1))
	if base.CodeOf(w.Err()) != base.CodeTooLarge {
		t.Errorf("encoding %d values: got %v, want too_large", base.AMQPTableFieldsMax+1, w.Err())
	}
	// One more void by hand: key 0xFFFFFF was not used by voids.
	over := append(bytes.Clone(wire[4:]), 3, 0xFF, 0xFF, 0xFF, 'V')
	over = append(binary.BigEndian.AppendUint32(nil, uint32(len(over))), over...)
	if _, err := decodeTable(over); err == nil || base.CodeOf(err) != base.CodeTooLarge {
		t.Errorf("decoding %d values: got %v, want too_large", base.AMQPTableFieldsMax+1, err)
	}
}

// allocatedBytes returns the bytes f allocates, averaged over runs.
func allocatedBytes(runs int, f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range runs {
		f()
	}
	runtime.ReadMemStats(&after)
	return (after.TotalAlloc - before.TotalAlloc) / uint64(runs)
}

func TestAClaimedHugeLengthIsRejectedWithoutAllocatingForIt(t *testing.T) {
	inputs := map[string][]byte{
		"table":       hexBytes(t, `FF FF FF FF 00`),
		"long string": hexBytes(t, `00 00 00 07 01 "v" "S" FF FF FF`),
		"byte array":  hexBytes(t, `00 00 00 09 01 "v" "x" FF FF FF FF 00`),
		"array":       hexBytes(t, `00 00 00 09 01 "v" "A" FF FF FF FF 00`),
	}
	for name, in := range inputs {
		n := allocatedBytes(10, func() {
			if _, err := decodeTable(in); err == nil {
				t.Fatalf("%s: accepted", name)
			}
		})
		// Only the *Error and its message are allocated.
		if n > 1024 {
			t.Errorf("%s: %d bytes allocated to reject a claimed 4 GiB, want under 1 KiB", name, n)
		}
	}
}

// TestTableDecodeAllocationIsBoundedByItsInput decodes the worst case for
// amplification, a table of the most values the limit allows, each a void
// with a 3-byte key (5 bytes on the wire), and checks the bytes allocated
// per input byte.
func TestTableDecodeAllocationIsBoundedByItsInput(t *testing.T) {
	wire := encodeTable(t, voids(base.AMQPTableFieldsMax))
	var got Table
	var err error
	n := allocatedBytes(1, func() { got, err = decodeTable(wire) })
	if err != nil || len(got) != base.AMQPTableFieldsMax {
		t.Fatalf("decoding: %d values, %v", len(got), err)
	}
	if perByte := float64(n) / float64(len(wire)); perByte > 64 {
		t.Errorf("decoding %d bytes allocated %.1f bytes per input byte, want at most 64", len(wire), perByte)
	}
}

func TestSkipTableAllocatesNothing(t *testing.T) {
	wire := encodeTable(t, sampleTable())
	var r Reader
	allocs := testing.AllocsPerRun(100, func() {
		r.Reset(wire)
		r.skipTable()
		if err := r.finish(0); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("skipping a table: %v allocations, want 0", allocs)
	}
}

func TestUnsupportedValueTypesFailToEncode(t *testing.T) {
	for _, v := range []any{uint64(1), uint(1), struct{}{}, []string{"a"}, &Decimal{}} {
		var w Writer
		w.table(Table{"v": v})
		if base.CodeOf(w.Err()) != base.CodeInvalidArgument {
			t.Errorf("%T: got %v, want invalid_argument", v, w.Err())
		}
	}
	var w Writer
	w.table(Table{string(bytes.Repeat([]byte("k"), 256)): nil})
	if w.Err() == nil {
		t.Errorf("a 256-byte key: encoded, want an error")
	}
}

// valueGen draws a field value of any type, nesting up to depth levels.
func valueGen(depth int) *rapid.Generator[any] {
	scalars := []*rapid.Generator[any]{
		rapid.Map(rapid.Bool(), func(v bool) any { return v }),
		rapid.Map(rapid.Int8(), func(v int8) any { return v }),
		rapid.Map(rapid.Uint8(), func(v uint8) any { return v }),
		rapid.Map(rapid.Int16(), func(v int16) any { return v }),
		rapid.Map(rapid.Uint16(), func(v uint16) any { return v }),
		rapid.Map(rapid.Int32(), func(v int32) any { return v }),
		rapid.Map(rapid.Uint32(), func(v uint32) any { return v }),
		rapid.Map(rapid.Int64(), func(v int64) any { return v }),
		rapid.Map(rapid.Uint32(), func(v uint32) any { return notNaN32(math.Float32frombits(v)) }),
		rapid.Map(rapid.Uint64(), func(v uint64) any { return notNaN64(math.Float64frombits(v)) }),
		rapid.Map(rapid.Int32(), func(v int32) any { return Decimal{Scale: uint8(v), Value: v} }),
		rapid.Map(rapid.String(), func(v string) any { return v }),
		rapid.Map(rapid.SliceOfN(rapid.Byte(), 1, 16), func(v []byte) any { return v }),
		rapid.Map(rapid.Int64(), func(v int64) any { return time.Unix(v, 0).UTC() }),
		rapid.Just[any](nil),
	}
	if depth == 0 {
		return rapid.OneOf(scalars...)
	}
	inner := valueGen(depth - 1)
	return rapid.OneOf(append(scalars,
		rapid.Map(rapid.SliceOfN(inner, 1, 4), func(v []any) any { return v }),
		rapid.Map(tableGen(inner), func(v Table) any { return v }),
	)...)
}

func tableGen(values *rapid.Generator[any]) *rapid.Generator[Table] {
	return rapid.Map(rapid.MapOfN(rapid.StringN(0, 20, 255), values, 1, 6), func(m map[string]any) Table { return m })
}

func TestRandomTablesRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		want := tableGen(valueGen(3)).Draw(t, "table")
		var w Writer
		w.table(want)
		if w.Err() != nil {
			t.Fatalf("encoding: %v", w.Err())
		}
		got, err := decodeTable(w.Bytes())
		if err != nil {
			t.Fatalf("decoding: %v", err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("round trip:\n got %#v\nwant %#v", got, want)
		}
	})
}

// NaN is not equal to itself, so round trips are compared without it (the
// fuzz targets compare bytes, and cover NaN).
func notNaN32(f float32) float32 {
	if f != f {
		return 0
	}
	return f
}

func notNaN64(f float64) float64 {
	if f != f {
		return 0
	}
	return f
}

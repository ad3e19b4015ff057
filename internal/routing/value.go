package routing

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/ferry-mq/ferry/internal/base"
)

// ValueKind is the type of a header or argument value.
type ValueKind uint8

const (
	// KindVoid is AMQP's void ('V'). A void binding argument matches any
	// value of a header with that key (presence).
	KindVoid ValueKind = iota
	KindBool
	// KindInt holds every AMQP integer width (b B s u I i l) and
	// timestamps: RabbitMQ compares integers by value, whatever the width.
	KindInt
	// KindFloat holds AMQP 'f' and 'd'.
	KindFloat
	// KindString is AMQP's long string ('S').
	KindString
	// KindBytes is AMQP's byte array ('x'). It matches a string with the
	// same bytes, as in RabbitMQ where both are binaries.
	KindBytes
	// KindEncoded is a value of a type routing does not model (AMQP's
	// decimals, tables and arrays), held as its front end's canonical
	// encoding, nested types included: it equals only the same encoding,
	// as RabbitMQ compares such values whole.
	KindEncoded
)

const kindMax = KindEncoded

var kindNames = [...]string{"void", "bool", "int", "float", "string", "bytes", "encoded"}

// String returns the kind's name as used in error messages and dumps.
func (k ValueKind) String() string {
	if k <= kindMax {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Value is a typed header or argument value. The zero Value is void.
// Values are comparable with ==, which is exact (kind and payload); header
// matching uses the looser rules of Value.satisfies.
type Value struct {
	kind ValueKind
	num  uint64 // bool (0 or 1), int64 or float64 bits
	str  string // string and bytes
}

// VoidValue returns the void value.
func VoidValue() Value { return Value{} }

// BoolValue returns a bool value.
func BoolValue(b bool) Value {
	v := Value{kind: KindBool}
	if b {
		v.num = 1
	}
	return v
}

// IntValue returns an integer value.
func IntValue(i int64) Value { return Value{kind: KindInt, num: uint64(i)} }

// FloatValue returns a float value.
func FloatValue(f float64) Value { return Value{kind: KindFloat, num: math.Float64bits(f)} }

// StringValue returns a string value.
func StringValue(s string) Value { return Value{kind: KindString, str: s} }

// BytesValue returns a byte-array value holding a copy of b.
func BytesValue(b []byte) Value { return Value{kind: KindBytes, str: string(b)} }

// EncodedValue returns a KindEncoded value holding a copy of encoding.
func EncodedValue(encoding []byte) Value { return Value{kind: KindEncoded, str: string(encoding)} }

// Kind returns the value's kind.
func (v Value) Kind() ValueKind { return v.kind }

// Bool returns the value of a KindBool value (false for other kinds).
func (v Value) Bool() bool { return v.kind == KindBool && v.num == 1 }

// Int returns the value of a KindInt value (0 for other kinds).
func (v Value) Int() int64 {
	if v.kind != KindInt {
		return 0
	}
	return int64(v.num)
}

// Float returns the value of a KindFloat value (0 for other kinds).
func (v Value) Float() float64 {
	if v.kind != KindFloat {
		return 0
	}
	return math.Float64frombits(v.num)
}

// Text returns the bytes of a KindString or KindBytes value, or the
// encoding of a KindEncoded one ("" for other kinds).
func (v Value) Text() string { return v.str }

// String formats the value as dumps and test files write it: void, true,
// 42, float(1.5), "text", bytes("raw").
func (v Value) String() string {
	switch v.kind {
	case KindVoid:
		return "void"
	case KindBool:
		return strconv.FormatBool(v.Bool())
	case KindInt:
		return strconv.FormatInt(v.Int(), 10)
	case KindFloat:
		return "float(" + strconv.FormatFloat(v.Float(), 'g', -1, 64) + ")"
	case KindString:
		return strconv.Quote(v.str)
	case KindBytes:
		return "bytes(" + strconv.Quote(v.str) + ")"
	case KindEncoded:
		return "encoded(" + strconv.Quote(v.str) + ")"
	}
	return v.kind.String()
}

// satisfies reports whether a header value h meets binding value p (p not
// void; void means presence and is handled by the caller). This is
// RabbitMQ 4's rule: values compared exactly once the AMQP type tags are
// dropped, so integers of any width compare by value, a string equals a
// byte array with the same bytes, and an integer never equals a float.
// Floats compare with ==, so NaN matches nothing.
func (p Value) satisfies(h Value) bool {
	switch p.kind {
	case KindString, KindBytes:
		return (h.kind == KindString || h.kind == KindBytes) && h.str == p.str
	case KindFloat:
		return h.kind == KindFloat && p.Float() == h.Float()
	case KindEncoded:
		return h.kind == KindEncoded && h.str == p.str
	case KindVoid:
		return true
	}
	return h.kind == p.kind && h.num == p.num
}

// Field is one entry of an arguments or headers table.
type Field struct {
	Key   string
	Value Value
}

// compareFieldKeys orders fields by key, bytewise.
func compareFieldKeys(a, b Field) int { return strings.Compare(a.Key, b.Key) }

// canonicalArgs returns a new slice holding args sorted by key with the
// first occurrence of a duplicate key kept (AMQP table lookup finds the
// first), and its canonical encoding. It returns nil and "" for an empty
// table. The encoding must fit in RoutingArgsBytesMax.
func canonicalArgs(args []Field) ([]Field, string, error) {
	if len(args) == 0 {
		return nil, "", nil
	}
	out := slices.Clone(args)
	slices.SortStableFunc(out, compareFieldKeys)
	out = slices.CompactFunc(out, func(a, b Field) bool { return a.Key == b.Key })
	size := 0
	for _, f := range out {
		size += encodedFieldBytes(f)
	}
	if size > base.RoutingArgsBytesMax {
		return nil, "", base.Errorf(base.CodeInvalidArgument,
			"arguments table of %d bytes exceeds the limit of %d (RoutingArgsBytesMax)", size, base.RoutingArgsBytesMax)
	}
	buf := make([]byte, 0, size)
	for _, f := range out {
		buf = appendField(buf, f)
	}
	base.Assert(len(buf) == size, "encoded args: got %d bytes, computed %d", len(buf), size)
	return out, string(buf), nil
}

// lookupArg returns the value of key in canonical args.
func lookupArg(args []Field, key string) (Value, bool) {
	i, ok := slices.BinarySearchFunc(args, key, func(f Field, k string) int { return strings.Compare(f.Key, k) })
	if !ok {
		return Value{}, false
	}
	return args[i].Value, true
}

// formatArgs writes canonical args as {k: v, ...} for dumps.
func formatArgs(sb *strings.Builder, args []Field) {
	sb.WriteByte('{')
	for i, f := range args {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(strconv.Quote(f.Key))
		sb.WriteString(": ")
		sb.WriteString(f.Value.String())
	}
	sb.WriteByte('}')
}

// The encoding of a field, used for binding identity and in snapshots:
// uvarint key length, key, kind byte, then the payload: nothing for void,
// one byte 0/1 for bool, a zigzag varint for int, 8 little-endian bytes of
// IEEE bits for float, uvarint length and bytes for string, bytes and
// encoded.

func encodedFieldBytes(f Field) int {
	n := uvarintLen(uint64(len(f.Key))) + len(f.Key) + 1
	switch f.Value.kind {
	case KindBool:
		n++
	case KindInt:
		var tmp [binary.MaxVarintLen64]byte
		n += binary.PutVarint(tmp[:], f.Value.Int())
	case KindFloat:
		n += 8
	case KindString, KindBytes, KindEncoded:
		n += uvarintLen(uint64(len(f.Value.str))) + len(f.Value.str)
	}
	return n
}

func appendField(buf []byte, f Field) []byte {
	buf = appendString(buf, f.Key)
	buf = append(buf, byte(f.Value.kind))
	switch f.Value.kind {
	case KindBool:
		buf = append(buf, byte(f.Value.num))
	case KindInt:
		buf = binary.AppendVarint(buf, f.Value.Int())
	case KindFloat:
		buf = binary.LittleEndian.AppendUint64(buf, f.Value.num)
	case KindString, KindBytes, KindEncoded:
		buf = appendString(buf, f.Value.str)
	}
	return buf
}

func appendString(buf []byte, s string) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(s)))
	return append(buf, s...)
}

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

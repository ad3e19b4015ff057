package broker

import (
	"math"
	"strconv"
	"time"

	"github.com/ferry-mq/ferry/internal/routing"
)

// Message is the protocol-neutral message. Every front end translates its
// own frames into it and back, following the one mapping table in
// docs/messages.md. In the log a message is a Kafka v2 record: Key is the
// record key, Body the value, and the properties ride as record headers
// (reserved names in docs/messages.md), so a Kafka consumer of a stream
// sees AMQP properties as headers and an AMQP consumer sees Kafka headers
// as its headers table.
type Message struct {
	Exchange   string // where it was published (for redelivery info, x-death)
	RoutingKey string
	Key        []byte // Kafka record key; also the stream partitioning key

	// AMQP 0-9-1 basic properties, the richest property set of the five
	// protocols; the others map onto them.
	ContentType, ContentEncoding string
	Headers                      Headers // ordered, typed
	DeliveryMode                 uint8   // 2 = persistent (Ferry is durable regardless)
	Priority                     *uint8
	CorrelationID, ReplyTo       string
	Expiration                   string // per-message TTL in ms, as AMQP's decimal string
	MessageID                    string
	Timestamp                    time.Time // AMQP carries seconds; zero when unset
	Type, UserID, AppID          string

	// Ferry's own; protocols without fields for them set them through the
	// x-ferry-delay, x-ferry-dedupe-id and x-ferry-ordering-key headers
	// (and x-delay, RabbitMQ's delayed-message convention), which the
	// broker reads when the field is zero.
	Delay       time.Duration
	DedupeID    string
	OrderingKey string

	Body []byte

	// RawAMQPProperties, when set by the AMQP front end, is the encoded
	// property list of the content header exactly as received; it is
	// stored as is and handed back on delivery (the fast path). The typed
	// fields above must still carry what routing and the queue need
	// (priority, expiration, message id, headers for headers exchanges);
	// consumers of other protocols see only the typed fields.
	RawAMQPProperties []byte

	// PublishedAt is set on delivery: when the message entered the log
	// (the record timestamp, ms precision). Ignored on publish.
	PublishedAt time.Time
}

// Headers is an ordered list of typed header values (AMQP field-table
// values).
type Headers []Header

// Header is one named value of a Headers table.
type Header struct {
	Key   string
	Value Value
}

// Get returns the first header named key.
func (h Headers) Get(key string) (Value, bool) {
	for _, f := range h {
		if f.Key == key {
			return f.Value, true
		}
	}
	return Value{}, false
}

// ValueKind is the type of a header value: AMQP 0-9-1's field types as
// RabbitMQ knows them.
type ValueKind uint8

// The kinds. Their numbers appear in the stored type tags
// (docs/messages.md) and never change.
const (
	KindString    ValueKind = iota // 'S' long string (the default of untyped headers)
	KindVoid                       // 'V'
	KindBool                       // 't'
	KindInt8                       // 'b'
	KindUint8                      // 'B'
	KindInt16                      // 's'
	KindUint16                     // 'u'
	KindInt32                      // 'I'
	KindUint32                     // 'i'
	KindInt64                      // 'l'
	KindFloat32                    // 'f'
	KindFloat64                    // 'd'
	KindDecimal                    // 'D' scale + int32
	KindTimestamp                  // 'T' seconds since the epoch
	KindBytes                      // 'x' byte array
	KindTable                      // 'F' nested field table
	KindArray                      // 'A' field array
	kindEnd
)

var kindNames = [...]string{"string", "void", "bool", "int8", "uint8", "int16", "uint16", "int32", "uint32",
	"int64", "float32", "float64", "decimal", "timestamp", "bytes", "table", "array"}

func (k ValueKind) String() string {
	if k < kindEnd {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Value is one typed header value. The zero Value is the empty string.
// Values are immutable once built: the tables and arrays they hold are
// not copied, so do not modify a slice after passing it to a constructor.
type Value struct {
	kind  ValueKind
	scale uint8  // decimal
	num   uint64 // bool, integers, float bits, decimal value, timestamp
	str   string // string, bytes
	table Headers
	array []Value
}

// StringValue returns a long string.
func StringValue(s string) Value { return Value{kind: KindString, str: s} }

// BytesValue returns a byte array holding a copy of b.
func BytesValue(b []byte) Value { return Value{kind: KindBytes, str: string(b)} }

// VoidValue returns the void value.
func VoidValue() Value { return Value{kind: KindVoid} }

// BoolValue returns a boolean.
func BoolValue(b bool) Value {
	v := Value{kind: KindBool}
	if b {
		v.num = 1
	}
	return v
}

// IntValue returns an integer of kind (KindInt8 ... KindInt64); the value
// is truncated to the kind's width. Other kinds give an int64.
func IntValue(kind ValueKind, i int64) Value {
	switch kind {
	case KindInt8:
		i = int64(int8(i))
	case KindUint8:
		i = int64(uint8(i))
	case KindInt16:
		i = int64(int16(i))
	case KindUint16:
		i = int64(uint16(i))
	case KindInt32:
		i = int64(int32(i))
	case KindUint32:
		i = int64(uint32(i))
	default:
		kind = KindInt64
	}
	return Value{kind: kind, num: uint64(i)}
}

// Float32Value returns a 32-bit float.
func Float32Value(f float32) Value { return Value{kind: KindFloat32, num: uint64(math.Float32bits(f))} }

// Float64Value returns a 64-bit float.
func Float64Value(f float64) Value { return Value{kind: KindFloat64, num: math.Float64bits(f)} }

// DecimalValue returns AMQP's decimal: value / 10^scale.
func DecimalValue(scale uint8, value int32) Value {
	return Value{kind: KindDecimal, scale: scale, num: uint64(uint32(value))}
}

// TimestampValue returns a timestamp in seconds since the epoch.
func TimestampValue(sec uint64) Value { return Value{kind: KindTimestamp, num: sec} }

// TableValue returns a nested table.
func TableValue(h Headers) Value { return Value{kind: KindTable, table: h} }

// ArrayValue returns an array.
func ArrayValue(a []Value) Value { return Value{kind: KindArray, array: a} }

// Kind returns the value's kind.
func (v Value) Kind() ValueKind { return v.kind }

// Text returns a string or byte array's bytes ("" for other kinds).
func (v Value) Text() string { return v.str }

// Bool returns a boolean's value.
func (v Value) Bool() bool { return v.kind == KindBool && v.num == 1 }

// Int returns an integer's value, a timestamp's seconds, or 0.
func (v Value) Int() int64 {
	switch v.kind {
	case KindInt8, KindUint8, KindInt16, KindUint16, KindInt32, KindUint32, KindInt64, KindTimestamp:
		return int64(v.num)
	}
	return 0
}

// Float returns a float's value, or 0.
func (v Value) Float() float64 {
	switch v.kind {
	case KindFloat32:
		return float64(math.Float32frombits(uint32(v.num)))
	case KindFloat64:
		return math.Float64frombits(v.num)
	}
	return 0
}

// Decimal returns a decimal's scale and unscaled value.
func (v Value) Decimal() (scale uint8, value int32) { return v.scale, int32(uint32(v.num)) }

// Table returns a nested table (nil for other kinds).
func (v Value) Table() Headers { return v.table }

// Array returns an array (nil for other kinds).
func (v Value) Array() []Value { return v.array }

// Equal reports whether two values have the same kind and contents.
func (v Value) Equal(o Value) bool {
	if v.kind != o.kind || v.num != o.num || v.scale != o.scale || v.str != o.str ||
		len(v.table) != len(o.table) || len(v.array) != len(o.array) {
		return false
	}
	for i := range v.table {
		if v.table[i].Key != o.table[i].Key || !v.table[i].Value.Equal(o.table[i].Value) {
			return false
		}
	}
	for i := range v.array {
		if !v.array[i].Equal(o.array[i]) {
			return false
		}
	}
	return true
}

// routingValue maps v onto the routing value used by headers exchanges
// and arguments: integers and timestamps compare by value; decimals,
// tables and arrays are held whole in appendNested's form
// (routing.KindEncoded), so that they equal only the same value, nested
// types included, as in RabbitMQ. One nested deeper than
// BrokerHeaderDepthMax (which the front ends' decoders already bound)
// matches by presence.
func (v Value) routingValue() routing.Value {
	switch v.kind {
	case KindString:
		return routing.StringValue(v.str)
	case KindBytes:
		return routing.BytesValue([]byte(v.str))
	case KindBool:
		return routing.BoolValue(v.Bool())
	case KindInt8, KindUint8, KindInt16, KindUint16, KindInt32, KindUint32, KindInt64, KindTimestamp:
		return routing.IntValue(v.Int())
	case KindFloat32, KindFloat64:
		return routing.FloatValue(v.Float())
	case KindDecimal, KindTable, KindArray:
		if b, err := appendNested(nil, v, 1); err == nil {
			return routing.EncodedValue(b)
		}
	}
	return routing.VoidValue()
}

// routingFields converts headers for Route; the result is the caller's.
func routingFields(dst []routing.Field, h Headers) []routing.Field {
	for _, f := range h {
		dst = append(dst, routing.Field{Key: f.Key, Value: f.Value.routingValue()})
	}
	return dst
}

// fromRoutingValue maps a routing value (a declared argument) to a Value.
func fromRoutingValue(v routing.Value) Value {
	switch v.Kind() {
	case routing.KindBool:
		return BoolValue(v.Bool())
	case routing.KindInt:
		return IntValue(KindInt64, v.Int())
	case routing.KindFloat:
		return Float64Value(v.Float())
	case routing.KindString:
		return StringValue(v.Text())
	case routing.KindBytes:
		return BytesValue([]byte(v.Text()))
	case routing.KindEncoded:
		if x, ok := DecodeArgument(v.Text()); ok {
			return x
		}
	}
	return VoidValue()
}

// DecodeArgument decodes the encoding a routing.KindEncoded argument
// holds (a table, array or decimal); ok is false when it is not one
// well-formed value.
func DecodeArgument(encoding string) (Value, bool) { return decodeOne([]byte(encoding)) }

// argFields converts declared arguments for the controller. Tables,
// arrays and decimals are kept whole (routing.KindEncoded): RabbitMQ
// accepts them in every arguments table, and a headers binding matches
// them.
func argFields(h Headers) []routing.Field {
	if len(h) == 0 {
		return nil
	}
	out := make([]routing.Field, 0, len(h))
	return routingFields(out, h)
}

// fromFields converts canonical arguments back for callers.
func fromFields(fs []routing.Field) Headers {
	if len(fs) == 0 {
		return nil
	}
	out := make(Headers, len(fs))
	for i, f := range fs {
		out[i] = Header{Key: f.Key, Value: fromRoutingValue(f.Value)}
	}
	return out
}

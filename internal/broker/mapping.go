package broker

import (
	"bytes"
	"encoding/binary"
	"math"
	"strconv"
	"time"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/queue"
	"github.com/ferry-mq/ferry/internal/storage/log/batch"
)

// This file is the one mapping between a Message and a Kafka v2 record
// (docs/messages.md is its user-facing description; keep them together).
//
//	record key     Message.Key
//	record value   Message.Body
//	record ts      when the broker appended it (Message.PublishedAt)
//	headers        reserved "amqp.*" properties and "ferry.*" metadata,
//	               then the user headers in order
//
// User headers keep their names; their values are written readably (a
// string as its bytes, numbers in decimal, booleans as true/false) so a
// Kafka consumer can read them, and the AMQP types of the headers that are
// not strings are listed in one "ferry.types" header, so an AMQP consumer
// gets back exactly the types that were published. Tables and arrays are
// written in the compact binary form of appendNested. A user header whose
// name starts with a reserved prefix is stored under "ferry.escaped." +
// its name.

// Reserved header names.
const (
	hdrContentType     = "amqp.content-type"
	hdrContentEncoding = "amqp.content-encoding"
	hdrDeliveryMode    = "amqp.delivery-mode"
	hdrPriority        = "amqp.priority"
	hdrCorrelationID   = "amqp.correlation-id"
	hdrReplyTo         = "amqp.reply-to"
	hdrExpiration      = "amqp.expiration"
	hdrMessageID       = "amqp.message-id"
	hdrTimestamp       = "amqp.timestamp"
	hdrType            = "amqp.type"
	hdrUserID          = "amqp.user-id"
	hdrAppID           = "amqp.app-id"
	hdrRawProperties   = "amqp.raw-properties"
	hdrExchange        = "ferry.exchange"
	hdrRoutingKey      = "ferry.routing-key"
	hdrNotBefore       = "ferry.not-before"
	hdrDedupeID        = "ferry.dedupe-id"
	hdrOrderingKey     = "ferry.ordering-key"
	hdrTypes           = "ferry.types"
	hdrSender          = "ferry.sender"
	hdrEscapedPrefix   = "ferry.escaped."

	prefixAMQP  = "amqp."
	prefixFerry = "ferry."
)

// Headers a publisher of any protocol may set instead of the Message
// fields (read at publish when the field is zero).
const (
	headerDelay       = "x-ferry-delay"
	headerDelayRabbit = "x-delay"
	headerDedupeID    = "x-ferry-dedupe-id"
	headerOrderingKey = "x-ferry-ordering-key"
)

// encodedRecord is a message prepared for a batch: key, value and headers
// whose bytes live in one arena. orderingAt is the index of the
// ferry.ordering-key header (the last one) or -1, so that a queue without
// ordering by key can leave it out.
type encodedRecord struct {
	key, value []byte
	headers    []batch.RecordHeader
	orderingAt int
	size       int // approximate encoded size, for batch limits
}

// headersFor returns the headers to store for a destination (read only:
// the records of one encoder share the array behind them).
func (r *encodedRecord) headersFor(withOrdering bool) []batch.RecordHeader {
	if !withOrdering && r.orderingAt >= 0 {
		return r.headers[:r.orderingAt:r.orderingAt]
	}
	return r.headers
}

// recordEncoder builds encodedRecords. The records share the encoder's
// arena and header slab, carved in chunks (BrokerEncodeArenaChunkBytes,
// BrokerEncodeHeaderChunkCount) that only grow: what was handed to a
// record is never written again, so one encoder serves a whole publish
// call with an allocation per chunk rather than two per message, and a
// chunk lives as long as any record of it.
type recordEncoder struct {
	// expect is how many more records the caller means to encode (0:
	// unknown, taken as one), so that a call of a few messages does not
	// pay for whole chunks: a chunk holds at most that many records'
	// estimates.
	expect  int
	arena   []byte
	hdrs    []batch.RecordHeader
	spans   []span  // header key and value spans in arena, in order
	types   []byte  // the ferry.types value being built
	spanBuf [4]span // the first spans: most messages carry a few properties
}

// chunkFor returns the size of a new chunk for a record needing need
// units, within limit units a chunk.
func (e *recordEncoder) chunkFor(need, limit int) int {
	return max(need, min(limit, need*max(e.expect, 1)))
}

type span struct {
	k0, k1, v0, v1 int
	null           bool
}

func (e *recordEncoder) add(key string, value []byte, null bool) {
	k0 := len(e.arena)
	e.arena = append(e.arena, key...)
	v0 := len(e.arena)
	e.arena = append(e.arena, value...)
	e.spans = append(e.spans, span{k0, v0, v0, len(e.arena), null})
}

func (e *recordEncoder) addString(key, value string) {
	if value == "" {
		return
	}
	k0 := len(e.arena)
	e.arena = append(e.arena, key...)
	v0 := len(e.arena)
	e.arena = append(e.arena, value...)
	e.spans = append(e.spans, span{k0, v0, v0, len(e.arena), false})
}

func (e *recordEncoder) addInt(key string, v int64) {
	k0 := len(e.arena)
	e.arena = append(e.arena, key...)
	v0 := len(e.arena)
	e.arena = strconv.AppendInt(e.arena, v, 10)
	e.spans = append(e.spans, span{k0, v0, v0, len(e.arena), false})
}

// encode prepares m. notBeforeMs (0: none) is the absolute delivery time
// computed from Message.Delay by the caller. The returned record's
// headers live in the encoder's chunks; its key and value are m's.
func (e *recordEncoder) encode(m *Message, notBeforeMs int64) (encodedRecord, error) {
	if need := estimateRecord(m); cap(e.arena)-len(e.arena) < need {
		// A fresh chunk rather than append's copy: the records made so
		// far keep the old one.
		e.arena = make([]byte, 0, e.chunkFor(need, base.BrokerEncodeArenaChunkBytes))
	}
	defer func() { e.expect = max(e.expect-1, 0) }()
	if e.spans == nil {
		e.spans = e.spanBuf[:0]
	}
	e.spans = e.spans[:0]
	e.types = e.types[:0]
	e.addString(hdrExchange, m.Exchange)
	e.addString(hdrRoutingKey, m.RoutingKey)
	e.addString(hdrContentType, m.ContentType)
	e.addString(hdrContentEncoding, m.ContentEncoding)
	if m.DeliveryMode != 0 {
		e.addInt(hdrDeliveryMode, int64(m.DeliveryMode))
	}
	if m.Priority != nil {
		e.addInt(hdrPriority, int64(*m.Priority))
	}
	e.addString(hdrCorrelationID, m.CorrelationID)
	e.addString(hdrReplyTo, m.ReplyTo)
	e.addString(hdrExpiration, m.Expiration)
	e.addString(hdrMessageID, m.MessageID)
	if !m.Timestamp.IsZero() {
		e.addInt(hdrTimestamp, m.Timestamp.Unix())
	}
	e.addString(hdrType, m.Type)
	e.addString(hdrUserID, m.UserID)
	e.addString(hdrAppID, m.AppID)
	if m.RawAMQPProperties != nil {
		e.add(hdrRawProperties, m.RawAMQPProperties, false)
	}
	if notBeforeMs > 0 {
		e.addInt(hdrNotBefore, notBeforeMs)
	}
	e.addString(hdrDedupeID, m.DedupeID)
	if err := e.userHeaders(m.Headers); err != nil {
		return encodedRecord{}, err
	}
	if len(e.types) > 0 {
		e.add(hdrTypes, e.types, false)
	}
	orderingAt := -1
	if m.OrderingKey != "" {
		orderingAt = len(e.spans)
		e.addString(hdrOrderingKey, m.OrderingKey)
	}
	if len(e.spans) > messageHeadersMax {
		return encodedRecord{}, base.Errorf(base.CodeTooLarge, "message has %d headers, over the limit of %d", len(e.spans), messageHeadersMax)
	}
	r := encodedRecord{key: m.Key, value: m.Body, orderingAt: orderingAt, headers: e.carveHeaders(len(e.spans))}
	if r.value == nil {
		r.value = []byte{} // a queue message always has a body, possibly empty
	}
	arenaBytes := 0
	for i, s := range e.spans {
		r.headers[i].Key = e.arena[s.k0:s.k1:s.k1]
		if !s.null {
			r.headers[i].Value = e.arena[s.v0:s.v1:s.v1]
		}
		arenaBytes += s.v1 - s.k0
	}
	r.size = 32 + len(m.Key) + len(m.Body) + arenaBytes + 4*len(e.spans)
	return r, nil
}

// carveHeaders returns n fresh headers from the slab, capped so that no
// append can reach the next record's.
func (e *recordEncoder) carveHeaders(n int) []batch.RecordHeader {
	if cap(e.hdrs)-len(e.hdrs) < n {
		e.hdrs = make([]batch.RecordHeader, 0, e.chunkFor(n, base.BrokerEncodeHeaderChunkCount))
	}
	at := len(e.hdrs)
	e.hdrs = e.hdrs[:at+n]
	return e.hdrs[at : at+n : at+n]
}

// estimateRecord is a little over the arena bytes of m's headers (no
// header name is longer than 24 bytes, no number longer than 20), so that
// a record rarely spans two chunks (when it does, append copies the
// chunk).
func estimateRecord(m *Message) int {
	n := 32 + // ferry.types, when some user header is not a string
		fieldCost(m.Exchange) + fieldCost(m.RoutingKey) + fieldCost(m.ContentType) + fieldCost(m.ContentEncoding) +
		fieldCost(m.CorrelationID) + fieldCost(m.ReplyTo) + fieldCost(m.Expiration) + fieldCost(m.MessageID) +
		fieldCost(m.Type) + fieldCost(m.UserID) + fieldCost(m.AppID) + fieldCost(m.DedupeID) + fieldCost(m.OrderingKey)
	if m.RawAMQPProperties != nil {
		n += 24 + len(m.RawAMQPProperties)
	}
	if m.DeliveryMode != 0 {
		n += 44
	}
	if m.Priority != nil {
		n += 44
	}
	if !m.Timestamp.IsZero() {
		n += 44
	}
	if m.Delay > 0 {
		n += 44 // ferry.not-before
	}
	for _, f := range m.Headers {
		n += len(hdrEscapedPrefix) + len(f.Key) + len(f.Value.str) + 24
	}
	return n
}

// fieldCost is estimateRecord's share of a string property: nothing when
// it is empty (encode leaves it out).
func fieldCost(v string) int {
	if v == "" {
		return 0
	}
	return 24 + len(v)
}

// userHeaders appends the user headers and records their types.
func (e *recordEncoder) userHeaders(h Headers) error {
	for i, f := range h {
		key := f.Key
		if hasReservedPrefix(key) {
			key = hdrEscapedPrefix + key
		}
		k0 := len(e.arena)
		e.arena = append(e.arena, key...)
		v0 := len(e.arena)
		null := false
		switch f.Value.kind {
		case KindString:
		case KindVoid:
			null = true
		default:
			e.types = binary.AppendUvarint(e.types, uint64(i))
			e.types = append(e.types, byte(f.Value.kind))
		}
		var err error
		e.arena, err = appendReadable(e.arena, f.Value)
		if err != nil {
			return err
		}
		e.spans = append(e.spans, span{k0, v0, v0, len(e.arena), null})
	}
	return nil
}

func hasReservedPrefix(k string) bool {
	return len(k) >= len(prefixAMQP) && k[:len(prefixAMQP)] == prefixAMQP ||
		len(k) >= len(prefixFerry) && k[:len(prefixFerry)] == prefixFerry
}

// appendReadable appends the stored form of a user header value.
func appendReadable(dst []byte, v Value) ([]byte, error) {
	switch v.kind {
	case KindString, KindBytes:
		return append(dst, v.str...), nil
	case KindVoid:
		return dst, nil
	case KindBool:
		return strconv.AppendBool(dst, v.Bool()), nil
	case KindInt8, KindUint8, KindInt16, KindUint16, KindInt32, KindUint32, KindInt64:
		return strconv.AppendInt(dst, v.Int(), 10), nil
	case KindTimestamp:
		return strconv.AppendUint(dst, v.num, 10), nil
	case KindFloat32:
		return strconv.AppendFloat(dst, v.Float(), 'g', -1, 32), nil
	case KindFloat64:
		return strconv.AppendFloat(dst, v.Float(), 'g', -1, 64), nil
	case KindDecimal:
		return appendDecimal(dst, v.scale, int32(uint32(v.num))), nil
	case KindTable, KindArray:
		return appendNested(dst, v, 1)
	}
	return dst, base.Errorf(base.CodeInvalidArgument, "header value of unknown kind %d", v.kind)
}

// appendDecimal writes value/10^scale in decimal notation with exactly
// scale digits after the point, so that parseDecimal recovers both.
func appendDecimal(dst []byte, scale uint8, value int32) []byte {
	neg := value < 0
	mag := uint64(value)
	if neg {
		dst = append(dst, '-')
		mag = uint64(-int64(value))
	}
	digits := strconv.AppendUint(nil, mag, 10)
	for len(digits) <= int(scale) {
		digits = append([]byte{'0'}, digits...)
	}
	if scale == 0 {
		return append(dst, digits...)
	}
	cut := len(digits) - int(scale)
	dst = append(dst, digits[:cut]...)
	dst = append(dst, '.')
	return append(dst, digits[cut:]...)
}

func parseDecimal(s []byte) (scale uint8, value int32, ok bool) {
	neg := len(s) > 0 && s[0] == '-'
	if neg {
		s = s[1:]
	}
	intPart, frac, hasPoint := bytes.Cut(s, []byte{'.'})
	if len(intPart) == 0 || hasPoint && len(frac) == 0 || len(frac) > 255 {
		return 0, 0, false
	}
	var mag uint64
	for _, part := range [][]byte{intPart, frac} {
		for _, c := range part {
			if c < '0' || c > '9' {
				return 0, 0, false
			}
			mag = mag*10 + uint64(c-'0')
			if mag > 1<<31 {
				return 0, 0, false
			}
		}
	}
	v := int64(mag)
	if neg {
		v = -v
	}
	if v < math.MinInt32 || v > math.MaxInt32 {
		return 0, 0, false
	}
	return uint8(len(frac)), int32(v), true
}

// appendNested writes a value in the compact binary form used for tables
// and arrays: a kind byte and its payload (see decodeNested).
func appendNested(dst []byte, v Value, depth int) ([]byte, error) {
	if depth > base.BrokerHeaderDepthMax {
		return dst, base.Errorf(base.CodeInvalidArgument, "header tables nest deeper than %d", base.BrokerHeaderDepthMax)
	}
	dst = append(dst, byte(v.kind))
	switch v.kind {
	case KindString, KindBytes:
		dst = binary.AppendUvarint(dst, uint64(len(v.str)))
		dst = append(dst, v.str...)
	case KindVoid:
	case KindBool:
		dst = append(dst, byte(v.num))
	case KindInt8, KindUint8, KindInt16, KindUint16, KindInt32, KindUint32, KindInt64:
		dst = binary.AppendVarint(dst, int64(v.num))
	case KindTimestamp:
		dst = binary.AppendUvarint(dst, v.num)
	case KindFloat32:
		dst = binary.BigEndian.AppendUint32(dst, uint32(v.num))
	case KindFloat64:
		dst = binary.BigEndian.AppendUint64(dst, v.num)
	case KindDecimal:
		dst = append(dst, v.scale)
		dst = binary.BigEndian.AppendUint32(dst, uint32(v.num))
	case KindTable:
		dst = binary.AppendUvarint(dst, uint64(len(v.table)))
		for _, f := range v.table {
			dst = binary.AppendUvarint(dst, uint64(len(f.Key)))
			dst = append(dst, f.Key...)
			var err error
			if dst, err = appendNested(dst, f.Value, depth+1); err != nil {
				return dst, err
			}
		}
	case KindArray:
		dst = binary.AppendUvarint(dst, uint64(len(v.array)))
		for _, x := range v.array {
			var err error
			if dst, err = appendNested(dst, x, depth+1); err != nil {
				return dst, err
			}
		}
	default:
		return dst, base.Errorf(base.CodeInvalidArgument, "header value of unknown kind %d", v.kind)
	}
	return dst, nil
}

// nestedDecoder decodes appendNested's form. It never trusts a count
// before checking that the remaining bytes can back it (every value takes
// at least one byte), caps the values of one header at
// BrokerHeaderValuesMax and the depth at BrokerHeaderDepthMax, and does
// work linear in its input.
type nestedDecoder struct {
	b      []byte
	values int
	err    bool
}

func (d *nestedDecoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = true
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *nestedDecoder) take(n uint64) []byte {
	if n > uint64(len(d.b)) {
		d.err = true
		return nil
	}
	out := d.b[:n]
	d.b = d.b[n:]
	return out
}

func (d *nestedDecoder) count() int {
	n := d.uvarint()
	if d.err || n > uint64(len(d.b)) || d.values+int(n) > base.BrokerHeaderValuesMax {
		d.err = true
		return 0
	}
	d.values += int(n)
	return int(n)
}

func (d *nestedDecoder) value(depth int) Value {
	if d.err || depth > base.BrokerHeaderDepthMax || len(d.b) == 0 {
		d.err = true
		return Value{}
	}
	k := ValueKind(d.b[0])
	d.b = d.b[1:]
	v := Value{kind: k}
	switch k {
	case KindString, KindBytes:
		v.str = string(d.take(d.uvarint()))
	case KindVoid:
	case KindBool:
		b := d.take(1)
		if len(b) == 1 && b[0] <= 1 {
			v.num = uint64(b[0])
		} else {
			d.err = true
		}
	case KindInt8, KindUint8, KindInt16, KindUint16, KindInt32, KindUint32, KindInt64:
		x, n := binary.Varint(d.b)
		if n <= 0 {
			d.err = true
			break
		}
		d.b = d.b[n:]
		v = IntValue(k, x)
	case KindTimestamp:
		v.num = d.uvarint()
	case KindFloat32:
		if b := d.take(4); len(b) == 4 {
			v.num = uint64(binary.BigEndian.Uint32(b))
		}
	case KindFloat64:
		if b := d.take(8); len(b) == 8 {
			v.num = binary.BigEndian.Uint64(b)
		}
	case KindDecimal:
		if b := d.take(5); len(b) == 5 {
			v.scale, v.num = b[0], uint64(binary.BigEndian.Uint32(b[1:]))
		}
	case KindTable:
		n := d.count()
		for i := 0; i < n && !d.err; i++ {
			key := string(d.take(d.uvarint()))
			v.table = append(v.table, Header{Key: key, Value: d.value(depth + 1)})
		}
	case KindArray:
		n := d.count()
		for i := 0; i < n && !d.err; i++ {
			v.array = append(v.array, d.value(depth+1))
		}
	default:
		d.err = true
	}
	return v
}

// decodeNested decodes one table or array value; ok is false when b is not
// exactly one well-formed value of the wanted kind.
func decodeNested(b []byte, want ValueKind) (Value, bool) {
	v, ok := decodeOne(b)
	if !ok || v.kind != want {
		return Value{}, false
	}
	return v, true
}

// decodeOne decodes one value of appendNested's form; ok is false when b
// is not exactly one well-formed value.
func decodeOne(b []byte) (Value, bool) {
	d := nestedDecoder{b: b}
	v := d.value(1)
	return v, !d.err && len(d.b) == 0
}

// parseReadable turns a stored user header back into a Value of kind. A
// value that does not parse as its claimed kind (a Kafka producer may
// write anything) is returned as a string.
func parseReadable(raw []byte, kind ValueKind) Value {
	s := string(raw)
	switch kind {
	case KindBytes:
		return BytesValue(raw)
	case KindBool:
		if b, err := strconv.ParseBool(s); err == nil {
			return BoolValue(b)
		}
	case KindInt8, KindUint8, KindInt16, KindUint16, KindInt32, KindUint32, KindInt64:
		if i, err := strconv.ParseInt(s, 10, 64); err == nil && IntValue(kind, i).Int() == i {
			return IntValue(kind, i)
		}
	case KindTimestamp:
		if u, err := strconv.ParseUint(s, 10, 64); err == nil {
			return TimestampValue(u)
		}
	case KindFloat32:
		if f, err := strconv.ParseFloat(s, 32); err == nil {
			return Float32Value(float32(f))
		}
	case KindFloat64:
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			return Float64Value(f)
		}
	case KindDecimal:
		if scale, v, ok := parseDecimal(raw); ok {
			return DecimalValue(scale, v)
		}
	case KindTable, KindArray:
		if v, ok := decodeNested(raw, kind); ok {
			return v
		}
	case KindVoid:
		return VoidValue()
	}
	return StringValue(s)
}

// decodeRecord turns a stored record into a Message. Its byte slices (Key,
// Body, RawAMQPProperties) alias the record's batch, which the broker
// never modifies; strings are copies. It never fails: headers it does not
// understand are user headers, values that do not parse as their claimed
// type are strings.
func decodeRecord(r *batch.Record, baseTimestamp int64) Message {
	m := Message{Body: r.Value}
	if !r.KeyNull {
		m.Key = r.Key
	}
	if r.ValueNull {
		m.Body = nil
	}
	m.PublishedAt = time.UnixMilli(baseTimestamp + r.TimestampDelta)
	var types []byte
	it := r.Headers()
	for k, v, null, ok := it.Next(); ok; k, v, null, ok = it.Next() {
		if len(k) > 0 && (k[0] == 'a' || k[0] == 'f') && m.reserved(k, v, &types) {
			continue
		}
		key := string(k)
		if len(key) > len(hdrEscapedPrefix) && key[:len(hdrEscapedPrefix)] == hdrEscapedPrefix {
			key = key[len(hdrEscapedPrefix):]
		}
		val := StringValue(string(v))
		if null {
			val = VoidValue()
		}
		m.Headers = append(m.Headers, Header{Key: key, Value: val})
	}
	applyTypes(m.Headers, types)
	return m
}

// reserved decodes a reserved header into m; false means k is not one.
func (m *Message) reserved(k, v []byte, types *[]byte) bool {
	switch string(k) {
	case hdrExchange:
		m.Exchange = string(v)
	case hdrRoutingKey:
		m.RoutingKey = string(v)
	case hdrContentType:
		m.ContentType = string(v)
	case hdrContentEncoding:
		m.ContentEncoding = string(v)
	case hdrDeliveryMode:
		if n, err := strconv.ParseUint(string(v), 10, 8); err == nil {
			m.DeliveryMode = uint8(n)
		}
	case hdrPriority:
		if n, err := strconv.ParseUint(string(v), 10, 8); err == nil {
			p := uint8(n)
			m.Priority = &p
		}
	case hdrCorrelationID:
		m.CorrelationID = string(v)
	case hdrReplyTo:
		m.ReplyTo = string(v)
	case hdrExpiration:
		m.Expiration = string(v)
	case hdrMessageID:
		m.MessageID = string(v)
	case hdrTimestamp:
		if n, err := strconv.ParseInt(string(v), 10, 64); err == nil {
			m.Timestamp = time.Unix(n, 0)
		}
	case hdrType:
		m.Type = string(v)
	case hdrUserID:
		m.UserID = string(v)
	case hdrAppID:
		m.AppID = string(v)
	case hdrRawProperties:
		m.RawAMQPProperties = v
	case hdrNotBefore:
		// Delivery metadata, consumed by the queue; not shown.
	case hdrDedupeID:
		m.DedupeID = string(v)
	case hdrOrderingKey:
		m.OrderingKey = string(v)
	case hdrTypes:
		*types = v
	case hdrSender: // the broker's, not the message's
	default:
		return false
	}
	return true
}

// applyTypes gives user headers their stored types. A malformed types
// header stops at the first bad entry: the rest stay strings.
func applyTypes(h Headers, types []byte) {
	for len(types) > 0 {
		pos, n := binary.Uvarint(types)
		if n <= 0 || len(types) < n+1 || pos >= uint64(len(h)) {
			return
		}
		kind := ValueKind(types[n])
		types = types[n+1:]
		if kind >= kindEnd || kind == KindString {
			return
		}
		f := &h[pos]
		if f.Value.kind == KindVoid {
			continue
		}
		f.Value = parseReadable([]byte(f.Value.str), kind)
	}
}

// queueMeta is what the queue state machine needs of one record, read
// from its reserved headers on every replica.
type queueMeta struct {
	priority    uint8
	ttlMs       uint64
	notBeforeMs int64
	dedupeID    string
	orderingKey string
	messageID   string
	sender      senderMark
}

// readQueueMeta reads a record's queue metadata. Malformed values are
// ignored (no priority, no TTL...), as RabbitMQ ignores a bad expiration.
func readQueueMeta(r *batch.Record) queueMeta {
	var q queueMeta
	it := r.Headers()
	for k, v, _, ok := it.Next(); ok; k, v, _, ok = it.Next() {
		if len(k) < 6 || (k[0] != 'a' && k[0] != 'f') {
			continue
		}
		switch string(k) {
		case hdrPriority:
			if n, ok := parseUintBytes(v); ok {
				q.priority = uint8(min(n, math.MaxUint8))
			}
		case hdrExpiration:
			if n, ok := parseUintBytes(v); ok {
				q.ttlMs = min(n, base.QueueDurationMsMax)
				if q.ttlMs == 0 {
					q.ttlMs = 1 // AMQP "0" expires at once; the queue's 0 means none
				}
			}
		case hdrNotBefore:
			if n, ok := parseUintBytes(v); ok {
				q.notBeforeMs = int64(min(n, base.QueueTimeMsMax))
			}
		case hdrDedupeID:
			q.dedupeID = boundedString(v)
		case hdrOrderingKey:
			q.orderingKey = boundedString(v)
		case hdrMessageID:
			q.messageID = boundedString(v)
		case hdrSender:
			q.sender = parseSender(v)
		}
	}
	return q
}

// A queue batch names the sender of each record (queue.SenderID: the
// publish lane and the message's number in it; DESIGN.md "Senders") with
// a ferry.sender header on the first record of each run of consecutive
// numbers of one lane: its value is the lane (8 bytes, big endian) and
// the number (uvarint). The records after it continue the run, one
// number each, until the next ferry.sender header; an empty one ends the
// run (a record with no sender). Stream records carry none.

// senderLaneBytes is the lane's part of a ferry.sender value;
// senderHeaderBytesMax bounds what the header adds to a record: the
// header (key and value with their lengths) and a byte more for each of
// the record's header count and length varints.
const (
	senderLaneBytes      = 8
	senderValueBytesMax  = senderLaneBytes + binary.MaxVarintLen64
	senderHeaderBytesMax = 1 + len(hdrSender) + 1 + senderValueBytesMax + 2
)

var hdrSenderKey = []byte(hdrSender)

// messageHeadersMax is the most headers a message's record may have: a
// queue's batch may add a ferry.sender header to it, which must not take
// it over base.RecordHeadersMax and fail the whole batch.
const messageHeadersMax = base.RecordHeadersMax - 1

// senderMark is what a record's ferry.sender header says: set when it has
// one, with the sender it names (zero: none, or unreadable).
type senderMark struct {
	set bool
	id  queue.SenderID
}

// parseSender reads a ferry.sender value. A value that does not name a
// lane and a number the queue can record names no sender: the records
// are then enqueued without one (at least once), never refused.
func parseSender(v []byte) senderMark {
	if len(v) <= senderLaneBytes {
		return senderMark{set: true}
	}
	id := queue.SenderID{Lane: binary.BigEndian.Uint64(v)}
	seq, n := binary.Uvarint(v[senderLaneBytes:])
	if id.Seq = seq; n != len(v)-senderLaneBytes || !id.Valid() {
		return senderMark{set: true}
	}
	return senderMark{set: true, id: id}
}

// appendSender appends the ferry.sender value naming id (empty for none).
func appendSender(dst []byte, id queue.SenderID) []byte {
	if id.Lane == 0 {
		return dst
	}
	return binary.AppendUvarint(binary.BigEndian.AppendUint64(dst, id.Lane), id.Seq)
}

// senderRun follows the sender runs of a batch's records, in order.
type senderRun struct{ cur queue.SenderID }

// next returns the sender of the record whose header says m.
func (s *senderRun) next(m senderMark) queue.SenderID {
	switch {
	case m.set:
		s.cur = m.id
	case s.cur.Lane != 0:
		if s.cur.Seq++; !s.cur.Valid() {
			s.cur = queue.SenderID{}
		}
	}
	return s.cur
}

// continues reports whether id is the number after prev in prev's lane,
// as senderRun reads it: a record of id needs no ferry.sender header
// after one of prev.
func continues(prev, id queue.SenderID) bool {
	return prev.Lane != 0 && id.Lane == prev.Lane && id.Seq == prev.Seq+1 && id.Valid()
}

// boundedString keeps an id within the queue's field limit (the queue
// refuses a whole Enqueue over it; a long id is cut instead).
func boundedString(v []byte) string {
	if len(v) > base.QueueFieldBytesMax {
		v = v[:base.QueueFieldBytesMax]
	}
	return string(v)
}

func parseUintBytes(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if n > (math.MaxUint64-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}

// publishDefaults fills Delay, DedupeID and OrderingKey from the x-ferry-*
// headers when the fields are zero, and checks what the queue will read.
func publishDefaults(m *Message) error {
	for _, h := range m.Headers {
		switch h.Key {
		case headerDelay, headerDelayRabbit:
			if m.Delay == 0 {
				m.Delay = headerDuration(h.Value)
			}
		case headerDedupeID:
			if m.DedupeID == "" {
				m.DedupeID = h.Value.Text()
			}
		case headerOrderingKey:
			if m.OrderingKey == "" {
				m.OrderingKey = h.Value.Text()
			}
		}
	}
	if m.Delay < 0 {
		m.Delay = 0
	}
	for _, s := range []string{m.DedupeID, m.OrderingKey, m.MessageID} {
		if len(s) > base.QueueFieldBytesMax {
			return base.Errorf(base.CodeInvalidArgument, "message id, dedupe id or ordering key of %d bytes is over the limit of %d", len(s), base.QueueFieldBytesMax)
		}
	}
	return nil
}

// headerDuration reads a delay header: an integer of milliseconds, or a
// decimal string of milliseconds.
func headerDuration(v Value) time.Duration {
	var ms int64
	switch v.kind {
	case KindString, KindBytes:
		n, err := strconv.ParseInt(v.str, 10, 64)
		if err != nil {
			return 0
		}
		ms = n
	default:
		ms = v.Int()
	}
	ms = max(0, min(ms, base.QueueDurationMsMax))
	return time.Duration(ms) * time.Millisecond
}

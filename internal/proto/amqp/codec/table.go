package codec

import (
	"encoding/binary"
	"math"
	"slices"
	"time"

	"github.com/ferry-mq/ferry/internal/base"
)

// Table is an AMQP field table. Values have these Go types, by the type
// letter RabbitMQ uses on the wire (its dialect, which departs from the
// 0-9-1 spec's letters; see the AMQP 0-9-1 errata):
//
//	t bool      b int8     B uint8    s int16    u uint16
//	I int32     i uint32   l int64    f float32  d float64
//	D Decimal   S string   x []byte   T time.Time (UTC, whole seconds)
//	F Table     A []any    V nil
//
// (A timestamp is whole seconds on the wire: encoding drops a time's
// fraction of a second.)
//
// Decoding also accepts L (64-bit) as int64, as RabbitMQ does; it rejects
// every other letter, including the spec's U, as RabbitMQ does. Encoding
// also accepts int (as l) and map[string]any (as F). A table, array or byte
// array with no elements decodes as nil of its type. A key repeated in one
// table keeps its last value. Encoding writes keys in sorted order, so
// equal tables encode to equal bytes.
type Table map[string]any

// Decimal is the D field type: Value / 10^Scale.
type Decimal struct {
	Scale uint8
	Value int32
}

// table reads a field table. Byte and string values are copied: a table
// never aliases the input, so it may be kept.
func (r *Reader) table() Table {
	r.fields = 0
	return r.tableBody(1, true)
}

// skipTable checks a field table's structure and limits, allocating
// nothing.
func (r *Reader) skipTable() {
	r.fields = 0
	r.tableBody(1, false)
}

// narrow limits r to the next n bytes (a table's or array's extent), so
// that nothing inside can read past it. It returns what widen restores.
func (r *Reader) narrow(n uint32, depth int) (saved []byte, ok bool) {
	if r.err != nil {
		return nil, false
	}
	if depth > base.AMQPTableDepthMax {
		r.fail(tooLarge("field table nested deeper than %d at offset %d", base.AMQPTableDepthMax, r.off))
		return nil, false
	}
	if left := uint64(len(r.buf) - r.off); uint64(n) > left {
		r.fail(frameError("truncated: field table or array of %d bytes at offset %d, %d left", n, r.off, left))
		return nil, false
	}
	saved = r.buf
	r.buf = r.buf[:r.off+int(n)]
	return saved, true
}

// tableBody reads a table's length and its name-value pairs. depth is the
// table's nesting level, 1 for a top-level table. With build false it only
// checks.
func (r *Reader) tableBody(depth int, build bool) Table {
	saved, ok := r.narrow(r.long(), depth)
	if !ok {
		return nil
	}
	var t Table
	for r.err == nil && r.off < len(r.buf) {
		key := r.shortStrBytes()
		v := r.value(depth, build)
		if build && r.err == nil {
			if t == nil {
				t = Table{}
			}
			t[string(key)] = v
		}
	}
	r.buf = saved
	if r.err != nil {
		return nil
	}
	return t
}

// arrayBody reads an array's length and its values; depth as tableBody.
func (r *Reader) arrayBody(depth int, build bool) []any {
	saved, ok := r.narrow(r.long(), depth)
	if !ok {
		return nil
	}
	var a []any
	for r.err == nil && r.off < len(r.buf) {
		v := r.value(depth, build)
		if build {
			a = append(a, v)
		}
	}
	r.buf = saved
	if r.err != nil {
		return nil
	}
	return a
}

// value reads a type letter and a value inside a table or array at depth.
// With build false it boxes nothing, so checking allocates nothing.
func (r *Reader) value(depth int, build bool) any {
	if r.fields++; r.fields > base.AMQPTableFieldsMax {
		r.fail(tooLarge("field table holds more than %d values", base.AMQPTableFieldsMax))
		return nil
	}
	at := r.off
	typ := r.octet()
	switch typ {
	case 'S', 'x', 'F', 'A':
		return r.compoundValue(typ, depth, build)
	}
	n, ok := scalarBytes(typ)
	switch {
	case r.err != nil:
		return nil
	case !ok:
		r.fail(frameError("unknown field type %q at offset %d", typ, at))
		return nil
	case !build:
		r.skip(n)
		return nil
	}
	return r.scalar(typ)
}

// scalarBytes returns the size of a fixed-size value of type letter typ,
// and false when typ is not a fixed-size type.
func scalarBytes(typ uint8) (uint64, bool) {
	switch typ {
	case 'V':
		return 0, true
	case 't', 'b', 'B':
		return 1, true
	case 's', 'u':
		return 2, true
	case 'I', 'i', 'f':
		return 4, true
	case 'D':
		return 5, true
	case 'l', 'L', 'd', 'T':
		return 8, true
	}
	return 0, false
}

// scalar reads a fixed-size value of a type scalarBytes knows.
func (r *Reader) scalar(typ uint8) any {
	switch typ {
	case 't':
		return r.octet() != 0
	case 'b':
		return int8(r.octet())
	case 'B':
		return r.octet()
	case 's':
		return int16(r.short())
	case 'u':
		return r.short()
	case 'I':
		return int32(r.long())
	case 'i':
		return r.long()
	case 'l', 'L':
		return int64(r.longlong())
	case 'f':
		return math.Float32frombits(r.long())
	case 'd':
		return math.Float64frombits(r.longlong())
	case 'D':
		scale := r.octet()
		return Decimal{Scale: scale, Value: int32(r.long())}
	case 'T':
		return r.timestamp()
	}
	return nil // 'V'
}

// compoundValue reads a variable-size value: S, x, F or A.
func (r *Reader) compoundValue(typ uint8, depth int, build bool) any {
	switch typ {
	case 'S':
		if b := r.longStrBytes(); build {
			return string(b)
		}
	case 'x':
		if b := r.longStrBytes(); build && len(b) > 0 {
			return slices.Clone(b)
		}
		return []byte(nil)
	case 'F':
		if t := r.tableBody(depth+1, build); t != nil {
			return t
		}
		return Table(nil)
	case 'A':
		if a := r.arrayBody(depth+1, build); a != nil {
			return a
		}
		return []any(nil)
	}
	return nil
}

// table writes a field table.
func (w *Writer) table(t Table) {
	w.fields = 0
	w.tableAt(t, 1)
}

// beginSized appends a placeholder for a long length and returns where it
// is; endSized fills it with the number of bytes written since.
func (w *Writer) beginSized() int {
	w.buf = append(w.buf, 0, 0, 0, 0)
	return len(w.buf)
}

func (w *Writer) endSized(start int) {
	n := len(w.buf) - start
	if uint64(n) > math.MaxUint32 {
		w.fail(base.CodeTooLarge, "field table or array of %d bytes exceeds 4 GiB", n)
		return
	}
	binary.BigEndian.PutUint32(w.buf[start-4:start], uint32(n))
}

// tableAt writes t at nesting level depth, keys in sorted order. The depth
// and value count limits also stop a table that contains itself.
func (w *Writer) tableAt(t Table, depth int) {
	if depth > base.AMQPTableDepthMax {
		w.fail(base.CodeTooLarge, "field table nested deeper than %d (a cycle?)", base.AMQPTableDepthMax)
		w.long(0)
		return
	}
	start := w.beginSized()
	first := len(w.keys)
	for k := range t {
		w.keys = append(w.keys, k)
	}
	slices.Sort(w.keys[first:])
	for i := first; i < len(w.keys) && w.err == nil; i++ {
		k := w.keys[i]
		w.shortStr(k)
		w.value(t[k], depth)
	}
	clear(w.keys[first:])
	w.keys = w.keys[:first]
	w.endSized(start)
}

func (w *Writer) arrayAt(a []any, depth int) {
	if depth > base.AMQPTableDepthMax {
		w.fail(base.CodeTooLarge, "field array nested deeper than %d (a cycle?)", base.AMQPTableDepthMax)
		w.long(0)
		return
	}
	start := w.beginSized()
	for _, v := range a {
		if w.err != nil {
			break
		}
		w.value(v, depth)
	}
	w.endSized(start)
}

// value writes a type letter and a value inside a table or array at depth.
func (w *Writer) value(v any, depth int) {
	if w.fields++; w.fields > base.AMQPTableFieldsMax {
		w.fail(base.CodeTooLarge, "field table holds more than %d values", base.AMQPTableFieldsMax)
		return
	}
	switch v := v.(type) {
	case nil:
		w.octet('V')
	case bool:
		w.octet('t')
		w.octet(bit(v, 1))
	case int8:
		w.octet('b')
		w.octet(uint8(v))
	case uint8:
		w.octet('B')
		w.octet(v)
	case int16:
		w.octet('s')
		w.short(uint16(v))
	case uint16:
		w.octet('u')
		w.short(v)
	case int32:
		w.octet('I')
		w.long(uint32(v))
	case uint32:
		w.octet('i')
		w.long(v)
	case int64:
		w.octet('l')
		w.longlong(uint64(v))
	case int:
		w.octet('l')
		w.longlong(uint64(int64(v)))
	case float32:
		w.octet('f')
		w.long(math.Float32bits(v))
	case float64:
		w.octet('d')
		w.longlong(math.Float64bits(v))
	case Decimal:
		w.octet('D')
		w.octet(v.Scale)
		w.long(uint32(v.Value))
	case time.Time:
		w.octet('T')
		w.timestamp(v)
	default:
		w.compound(v, depth)
	}
}

// compound writes the variable-length value types.
func (w *Writer) compound(v any, depth int) {
	switch v := v.(type) {
	case string:
		w.octet('S')
		w.longStr(v)
	case []byte:
		w.octet('x')
		if uint64(len(v)) > math.MaxUint32 {
			w.fail(base.CodeTooLarge, "byte array of %d bytes exceeds 4 GiB", len(v))
			return
		}
		w.long(uint32(len(v)))
		w.buf = append(w.buf, v...)
	case Table:
		w.octet('F')
		w.tableAt(v, depth+1)
	case map[string]any:
		w.octet('F')
		w.tableAt(v, depth+1)
	case []any:
		w.octet('A')
		w.arrayAt(v, depth+1)
	default:
		w.fail(base.CodeInvalidArgument, "field value of type %T has no AMQP field type", v)
	}
}

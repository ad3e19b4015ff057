package controller

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/ferry-mq/ferry/internal/routing"
)

// The binary encoding shared by commands and snapshots: integers are
// uvarints (signed ones zigzag varints), strings and byte strings a uvarint
// length then the bytes, booleans one byte 0 or 1, lists a uvarint count
// then the entries. Every integer is minimally encoded and every boolean
// is 0 or 1, so an accepted input has exactly one encoding: decoders
// check it and the fuzz targets verify that what they accept re-encodes
// to the same bytes.

type encoder struct{ buf []byte }

func (e *encoder) u8(b byte)         { e.buf = append(e.buf, b) }
func (e *encoder) uvarint(v uint64)  { e.buf = binary.AppendUvarint(e.buf, v) }
func (e *encoder) varint(v int64)    { e.buf = binary.AppendVarint(e.buf, v) }
func (e *encoder) str(s string)      { e.uvarint(uint64(len(s))); e.buf = append(e.buf, s...) }
func (e *encoder) bytes(b []byte)    { e.uvarint(uint64(len(b))); e.buf = append(e.buf, b...) }
func (e *encoder) count(n int)       { e.uvarint(uint64(n)) }
func (e *encoder) boolean(b bool)    { e.u8(boolByte(b)) }
func (e *encoder) uint32le(v uint32) { e.buf = binary.LittleEndian.AppendUint32(e.buf, v) }

func boolByte(b bool) byte {
	if b {
		return 1
	}
	return 0
}

// fields encodes an arguments table: count, then per field the key, the
// kind (one byte) and the payload (none for void, one byte for bool, a
// varint for int, 8 little-endian bytes of IEEE bits for float, a string
// for string, bytes and encoded).
func (e *encoder) fields(fs []routing.Field) {
	e.count(len(fs))
	for _, f := range fs {
		e.str(f.Key)
		v := f.Value
		e.u8(byte(v.Kind()))
		switch v.Kind() {
		case routing.KindBool:
			e.boolean(v.Bool())
		case routing.KindInt:
			e.varint(v.Int())
		case routing.KindFloat:
			e.buf = binary.LittleEndian.AppendUint64(e.buf, math.Float64bits(v.Float()))
		case routing.KindString, routing.KindBytes, routing.KindEncoded:
			e.str(v.Text())
		}
	}
}

// decoder reads the encoding; the first error sticks and every later read
// returns a zero value. Nothing is allocated for a length or count before
// the bytes backing it are known to be there.
type decoder struct {
	buf []byte
	off int
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("at byte %d: "+format, append([]any{d.off}, args...)...)
	}
}

func (d *decoder) left() int { return len(d.buf) - d.off }

func (d *decoder) u8() byte {
	if d.err != nil {
		return 0
	}
	if d.off >= len(d.buf) {
		d.fail("truncated")
		return 0
	}
	d.off++
	return d.buf[d.off-1]
}

func (d *decoder) boolean() bool {
	b := d.u8()
	if b > 1 {
		d.fail("boolean %d", b)
	}
	return b == 1
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.buf[d.off:])
	if n <= 0 || n != len(binary.AppendUvarint(nil, v)) {
		d.fail("bad uvarint")
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.buf[d.off:])
	if n <= 0 || n != len(binary.AppendVarint(nil, v)) {
		d.fail("bad varint")
		return 0
	}
	d.off += n
	return v
}

// int reads a varint into an int within [lo, hi].
func (d *decoder) int(lo, hi int64) int {
	v := d.varint()
	if d.err == nil && (v < lo || v > hi) {
		d.fail("integer %d outside [%d, %d]", v, lo, hi)
		return 0
	}
	return int(v)
}

func (d *decoder) uint32le() uint32 {
	if d.err != nil {
		return 0
	}
	if d.left() < 4 {
		d.fail("truncated")
		return 0
	}
	v := binary.LittleEndian.Uint32(d.buf[d.off:])
	d.off += 4
	return v
}

// raw returns the next n bytes of a string of at most max bytes, without
// copying.
func (d *decoder) raw(max int) []byte {
	n := d.uvarint()
	if d.err == nil && (n > uint64(max) || n > uint64(d.left())) {
		d.fail("string of %d bytes (limit %d, %d left)", n, max, d.left())
	}
	if d.err != nil {
		return nil
	}
	b := d.buf[d.off : d.off+int(n)]
	d.off += int(n)
	return b
}

func (d *decoder) str(max int) string { return string(d.raw(max)) }

// bytes returns a copy of a byte string, nil when empty.
func (d *decoder) bytes(max int) []byte {
	b := d.raw(max)
	if len(b) == 0 {
		return nil
	}
	return append([]byte(nil), b...)
}

// count reads a list length of at most max entries, each taking at least
// minBytes of what is left.
func (d *decoder) count(max, minBytes int) int {
	n := d.uvarint()
	if d.err == nil && (n > uint64(max) || n*uint64(minBytes) > uint64(d.left())) {
		d.fail("count %d (limit %d, %d bytes left)", n, max, d.left())
	}
	if d.err != nil {
		return 0
	}
	return int(n)
}

// fields reads an arguments table of at most ControllerArgsFieldsMax
// fields, strings bounded by max.
func (d *decoder) fields(maxFields, max int) []routing.Field {
	n := d.count(maxFields, 2)
	if n == 0 {
		return nil
	}
	out := make([]routing.Field, 0, n)
	for range n {
		f := routing.Field{Key: d.str(max)}
		switch kind := routing.ValueKind(d.u8()); kind {
		case routing.KindVoid:
			f.Value = routing.VoidValue()
		case routing.KindBool:
			f.Value = routing.BoolValue(d.boolean())
		case routing.KindInt:
			f.Value = routing.IntValue(d.varint())
		case routing.KindFloat:
			if d.left() < 8 {
				d.fail("truncated float")
				break
			}
			f.Value = routing.FloatValue(math.Float64frombits(binary.LittleEndian.Uint64(d.buf[d.off:])))
			d.off += 8
		case routing.KindString:
			f.Value = routing.StringValue(d.str(max))
		case routing.KindBytes:
			f.Value = routing.BytesValue(d.raw(max))
		case routing.KindEncoded:
			f.Value = routing.EncodedValue(d.raw(max))
		default:
			d.fail("unknown value kind %d", kind)
		}
		if d.err != nil {
			return nil
		}
		out = append(out, f)
	}
	return out
}

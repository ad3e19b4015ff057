package stream

import (
	"encoding/binary"
	"math"

	"github.com/ferry-mq/ferry/internal/base"
)

// The encoding of commands and snapshots: a version or tag byte, then
// fields in a fixed order as varints (zig-zag for signed values) and
// length-prefixed strings. It is deterministic: the same value always
// encodes to the same bytes.

type encoder struct{ b []byte }

func (e *encoder) u8(v uint8)       { e.b = append(e.b, v) }
func (e *encoder) uvarint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *encoder) varint(v int64)   { e.b = binary.AppendVarint(e.b, v) }
func (e *encoder) boolean(v bool) {
	if v {
		e.u8(1)
	} else {
		e.u8(0)
	}
}
func (e *encoder) str(s string) {
	e.uvarint(uint64(len(s)))
	e.b = append(e.b, s...)
}
func (e *encoder) bytes(v []byte) {
	e.uvarint(uint64(len(v)))
	e.b = append(e.b, v...)
}

// decoder reads what encoder wrote. The first error sticks: later reads
// return zero values, so callers check err once at the end. It never
// allocates more than the bounds passed to str, bytes and count allow, and
// never more than the input could back.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = base.Errorf(base.CodeCorrupt, "stream: decode: "+format, args...)
	}
}

func (d *decoder) u8() uint8 {
	if d.err != nil {
		return 0
	}
	if len(d.b) == 0 {
		d.fail("unexpected end of input")
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) boolean() bool {
	switch v := d.u8(); v {
	case 0:
		return false
	case 1:
		return true
	default:
		d.fail("bad boolean %d", v)
		return false
	}
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad uvarint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

// int32 reads a varint that must fit an int32.
func (d *decoder) int32() int32 {
	v := d.varint()
	if v < math.MinInt32 || v > math.MaxInt32 {
		d.fail("value %d does not fit 32 bits", v)
		return 0
	}
	return int32(v)
}

// int16 reads a varint that must fit an int16.
func (d *decoder) int16() int16 {
	v := d.varint()
	if v < math.MinInt16 || v > math.MaxInt16 {
		d.fail("value %d does not fit 16 bits", v)
		return 0
	}
	return int16(v)
}

// length reads a length prefix no larger than max nor than the input left.
func (d *decoder) length(max int, what string) int {
	n := d.uvarint()
	if d.err != nil {
		return 0
	}
	if n > uint64(max) {
		d.fail("%s of %d bytes is over the limit of %d", what, n, max)
		return 0
	}
	if n > uint64(len(d.b)) {
		d.fail("%s of %d bytes, only %d left", what, n, len(d.b))
		return 0
	}
	return int(n)
}

func (d *decoder) str(max int, what string) string {
	n := d.length(max, what)
	if d.err != nil {
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

// bytes returns a copy (nil for zero length), so the result never aliases
// the input.
func (d *decoder) bytes(max int, what string) []byte {
	n := d.length(max, what)
	if d.err != nil || n == 0 {
		return nil
	}
	v := make([]byte, n)
	copy(v, d.b[:n])
	d.b = d.b[n:]
	return v
}

// count reads an element count no larger than max, and no larger than the
// input could hold at minBytes per element, so a slice made from it is
// backed by input.
func (d *decoder) count(max, minBytes int, what string) int {
	n := d.uvarint()
	if d.err != nil {
		return 0
	}
	if n > uint64(max) {
		d.fail("%d %s over the limit of %d", n, what, max)
		return 0
	}
	if n*uint64(minBytes) > uint64(len(d.b)) {
		d.fail("%d %s cannot fit in %d bytes", n, what, len(d.b))
		return 0
	}
	return int(n)
}

// finish reports the sticky error, or an error when bytes are left over.
func (d *decoder) finish() error {
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d trailing bytes", len(d.b))
	}
	return d.err
}

// errf is shorthand for a client-visible error of this package.
func errf(code base.Code, format string, args ...any) error {
	return base.Errorf(code, "stream: "+format, args...)
}

package protocol

import (
	"encoding/binary"
	"math"
	"unsafe"

	"github.com/ferry-mq/ferry/internal/base"
)

// UUID is a Kafka uuid: 16 bytes, all zero meaning "none".
type UUID [16]byte

// TaggedField is a tagged field the definitions do not know: kept as read
// (Data aliases the decoded input) and written back unchanged.
type TaggedField struct {
	Tag  uint32
	Data []byte
}

// reader decodes the Kafka primitives from src. The first failure is kept
// in err and ends the decode: it moves off and lim to the end, so every
// later read fails too and every loop in the generated code stops.
//
// Bounds: every length and count is checked against the bytes left before
// anything is allocated, every allocation is charged to budget
// (base.KafkaDecodeAllocBytesMax), and every array element and tagged
// field consumes at least one byte, so decoding is linear in len(src).
type reader struct {
	src    []byte
	off    int // next byte to read
	lim    int // reads stop here: len(src), or the end of the tagged field being read
	budget int // bytes this decode may still allocate
	err    *DecodeError
}

func newReader(src []byte) reader {
	return reader{src: src, lim: len(src), budget: base.KafkaDecodeAllocBytesMax}
}

// fail records the first error and stops the decode.
func (r *reader) fail(field string, reason error) {
	if r.err == nil {
		r.err = &DecodeError{Offset: r.off, Field: field, Reason: reason}
	}
	r.off, r.lim = len(r.src), len(r.src)
}

// finish returns the decode's outcome as a client-visible error.
func (r *reader) finish(name string, version int16) error {
	if r.err == nil && r.off != len(r.src) {
		r.err = &DecodeError{Offset: r.off, Field: name, Reason: ErrTrailingBytes}
	}
	if r.err == nil {
		return nil
	}
	return base.Errorf(codeFor(r.err.Reason), "kafka: decoding %s v%d: %w", name, version, r.err)
}

func (r *reader) left() int { return r.lim - r.off }

// take returns the next n bytes (aliasing src), or nil after failing.
func (r *reader) take(n int, field string) []byte {
	if n > r.left() {
		r.fail(field, ErrTruncated)
		return nil
	}
	b := r.src[r.off : r.off+n : r.off+n]
	r.off += n
	return b
}

func (r *reader) bool(field string) bool {
	b := r.take(1, field)
	if b == nil {
		return false
	}
	if b[0] > 1 {
		r.off--
		r.fail(field, ErrBadBool)
	}
	return b[0] == 1
}

func (r *reader) int8(field string) int8 {
	if b := r.take(1, field); b != nil {
		return int8(b[0])
	}
	return 0
}

func (r *reader) uint16(field string) uint16 {
	if b := r.take(2, field); b != nil {
		return binary.BigEndian.Uint16(b)
	}
	return 0
}

func (r *reader) int16(field string) int16 { return int16(r.uint16(field)) }

func (r *reader) uint32(field string) uint32 {
	if b := r.take(4, field); b != nil {
		return binary.BigEndian.Uint32(b)
	}
	return 0
}

func (r *reader) int32(field string) int32 { return int32(r.uint32(field)) }

func (r *reader) int64(field string) int64 {
	if b := r.take(8, field); b != nil {
		return int64(binary.BigEndian.Uint64(b))
	}
	return 0
}

func (r *reader) float64(field string) float64 {
	if b := r.take(8, field); b != nil {
		return math.Float64frombits(binary.BigEndian.Uint64(b))
	}
	return 0
}

func (r *reader) uuid(field string) UUID {
	var u UUID
	if b := r.take(16, field); b != nil {
		copy(u[:], b)
	}
	return u
}

// uvarint reads an unsigned varint of at most 32 bits (5 bytes, the last
// holding 4 bits). Over-long encodings of small values are accepted, as
// Kafka accepts them.
func (r *reader) uvarint(field string) uint32 {
	var x uint32
	for i := 0; i < 5; i++ {
		if r.off >= r.lim {
			r.fail(field, ErrTruncated)
			return 0
		}
		c := r.src[r.off]
		r.off++
		if i == 4 && c > 0x0f {
			r.fail(field, ErrVarintOverflow)
			return 0
		}
		x |= uint32(c&0x7f) << (7 * i)
		if c < 0x80 {
			return x
		}
	}
	return x // unreachable: the fifth byte is < 0x10
}

// length reads a length prefix: compact (uvarint of length+1, 0 for null)
// when flex, else a big-endian int16 (short) or int32 with -1 for null. It
// returns -1 for null; other negative lengths fail.
func (r *reader) length(flex, short bool, field string) int {
	var n int
	switch {
	case flex:
		n = int(r.uvarint(field)) - 1
	case short:
		n = int(r.int16(field))
	default:
		n = int(r.int32(field))
	}
	if n < -1 {
		r.fail(field, ErrNegativeLength)
		return 0
	}
	if r.err != nil {
		return 0
	}
	return n
}

// charge takes n bytes from the allocation budget, failing when it runs
// out. n is never negative.
func (r *reader) charge(n int, field string) bool {
	if n > r.budget {
		r.fail(field, ErrAllocLimit)
		return false
	}
	r.budget -= n
	return true
}

// bytesOf reads a length-prefixed byte string, aliasing src. null reports
// a null value (only allowed when nullable).
func (r *reader) bytesOf(flex, short, nullable bool, field string) (b []byte, null bool) {
	n := r.length(flex, short, field)
	if n == -1 {
		if !nullable {
			r.fail(field, ErrUnexpectedNull)
		}
		return nil, true
	}
	return r.take(n, field), false
}

// string reads a non-nullable string; the returned string is a copy.
func (r *reader) string(flex bool, field string) string {
	b, _ := r.bytesOf(flex, true, false, field)
	if len(b) == 0 || !r.charge(len(b), field) {
		return ""
	}
	return string(b)
}

// nullableString reads a string that is null (nil) when nullable allows.
func (r *reader) nullableString(flex, nullable bool, field string) *string {
	b, null := r.bytesOf(flex, true, nullable, field)
	if null || r.err != nil || !r.charge(len(b)+int(unsafe.Sizeof("")), field) {
		return nil
	}
	s := string(b)
	return &s
}

// bytes reads a bytes or records value, aliasing src: nil for null, and a
// non-nil slice (possibly empty) otherwise.
func (r *reader) bytes(flex, nullable bool, field string) []byte {
	b, _ := r.bytesOf(flex, false, nullable, field)
	return b
}

// arrayLen reads an array's count: -1 for null. A count that elemMin-byte
// elements could not fit in the bytes left fails before any allocation.
func (r *reader) arrayLen(flex, nullable bool, elemMin int, field string) int {
	n := r.length(flex, false, field)
	if n == -1 {
		if !nullable {
			r.fail(field, ErrUnexpectedNull)
			return 0
		}
		return -1
	}
	if n > r.left()/elemMin {
		r.fail(field, ErrTruncated)
		return 0
	}
	return n
}

// allocSlice returns a slice of n zero elements, charging the budget, or
// nil after failing.
func allocSlice[T any](r *reader, n int, field string) []T {
	var zero T
	if size := int(unsafe.Sizeof(zero)); size > 0 && n > r.budget/size {
		r.fail(field, ErrAllocLimit)
		return nil
	} else if !r.charge(n*size, field) {
		return nil
	}
	return make([]T, n)
}

// allocOne returns a new zero T, charging the budget, or nil after failing.
func allocOne[T any](r *reader, field string) *T {
	var zero T
	if !r.charge(int(unsafe.Sizeof(zero)), field) {
		return nil
	}
	return new(T)
}

// present reads the presence byte of a struct that is nullable in this
// version (1 present, -1 null); a struct that is not nullable is always
// present and has no such byte.
func (r *reader) present(nullable bool, field string) bool {
	if !nullable {
		return true
	}
	switch r.int8(field) {
	case 1:
		return true
	case -1:
		return false
	}
	if r.err == nil {
		r.off--
		r.fail(field, ErrBadPresence)
	}
	return false
}

// tagCount reads the number of tagged fields of a struct. Each takes at
// least two bytes (tag and size), and there may be at most
// base.KafkaTaggedFieldsMax.
func (r *reader) tagCount(field string) int {
	n := r.uvarint(field)
	if r.err != nil {
		return 0
	}
	if n > base.KafkaTaggedFieldsMax {
		r.fail(field, ErrTooManyTags)
		return 0
	}
	if int(n) > r.left()/2 {
		r.fail(field, ErrTruncated)
		return 0
	}
	return int(n)
}

// tagHeader reads a tagged field's tag and size and limits reads to the
// field's bytes until tagEnd(saved). last holds the previous tag of the
// struct, so tags must ascend strictly.
func (r *reader) tagHeader(last *int64, field string) (tag uint32, saved int) {
	saved = r.lim
	tag = r.uvarint(field)
	size := r.uvarint(field)
	switch {
	case r.err != nil:
		return math.MaxUint32, saved
	case int64(tag) <= *last:
		r.fail(field, ErrTagOrder)
		return math.MaxUint32, saved
	case uint64(size) > uint64(r.left()):
		r.fail(field, ErrTruncated)
		return math.MaxUint32, saved
	}
	*last = int64(tag)
	r.lim = r.off + int(size)
	return tag, saved
}

// tagEnd checks that the tagged field's value used exactly its bytes and
// restores the outer limit.
func (r *reader) tagEnd(saved int, field string) {
	if r.err != nil {
		return
	}
	if r.off != r.lim {
		r.fail(field, ErrTagSize)
		return
	}
	r.lim = saved
}

// unknownTag keeps the rest of the current tagged field as an unknown tag.
func (r *reader) unknownTag(tags []TaggedField, tag uint32, field string) []TaggedField {
	if r.err != nil {
		return tags
	}
	data := r.take(r.left(), field)
	if len(tags) == cap(tags) && !r.charge(int(unsafe.Sizeof(TaggedField{}))*max(4, 2*cap(tags)), field) {
		return tags
	}
	return append(tags, TaggedField{Tag: tag, Data: data})
}

// unknownTags reads the tagged fields of a struct that knows none.
func (r *reader) unknownTags(field string) []TaggedField {
	var tags []TaggedField
	last := int64(-1)
	for n := r.tagCount(field); n > 0 && r.err == nil; n-- {
		tag, saved := r.tagHeader(&last, field)
		tags = r.unknownTag(tags, tag, field)
		r.tagEnd(saved, field)
	}
	return tags
}

func derefString(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func stringPtr(s string) *string { return &s }

// The append functions encode the primitives. They never fail: values a
// version cannot carry are Validate's business, and lengths beyond what the
// wire format can express are bugs (base.Bugf). Checks test the condition
// before calling Bugf: base.Assert's arguments would allocate on every call.

func appendBool(dst []byte, v bool) []byte {
	if v {
		return append(dst, 1)
	}
	return append(dst, 0)
}

func appendUint16(dst []byte, v uint16) []byte { return binary.BigEndian.AppendUint16(dst, v) }
func appendUint32(dst []byte, v uint32) []byte { return binary.BigEndian.AppendUint32(dst, v) }
func appendUint64(dst []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(dst, v) }

func appendFloat64(dst []byte, v float64) []byte {
	return binary.BigEndian.AppendUint64(dst, math.Float64bits(v))
}

func appendUvarint(dst []byte, v uint32) []byte {
	for v >= 0x80 {
		dst = append(dst, byte(v)|0x80)
		v >>= 7
	}
	return append(dst, byte(v))
}

func uvarintLen(v uint32) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// appendLength writes a length prefix (see reader.length); n is -1 for null.
func appendLength(dst []byte, flex, short bool, n int) []byte {
	switch {
	case flex:
		if !(n < math.MaxUint32) {
			base.Bugf("kafka: length %d too large for a compact length", n)
		}
		return appendUvarint(dst, uint32(n+1))
	case short:
		if !(n <= math.MaxInt16) {
			base.Bugf("kafka: string of %d bytes too long for an int16 length", n)
		}
		return appendUint16(dst, uint16(int16(n)))
	default:
		if !(n <= math.MaxInt32) {
			base.Bugf("kafka: %d too large for an int32 length", n)
		}
		return appendUint32(dst, uint32(int32(n)))
	}
}

func appendString(dst []byte, flex bool, s string) []byte {
	dst = appendLength(dst, flex, true, len(s))
	return append(dst, s...)
}

// appendNullableString writes nil as null when nullable, else as "".
func appendNullableString(dst []byte, flex, nullable bool, s *string) []byte {
	if s == nil {
		if nullable {
			return appendLength(dst, flex, true, -1)
		}
		return appendLength(dst, flex, true, 0)
	}
	return appendString(dst, flex, *s)
}

// appendBytes writes nil as null when nullable, else as empty.
func appendBytes(dst []byte, flex, nullable bool, b []byte) []byte {
	if b == nil && nullable {
		return appendLength(dst, flex, false, -1)
	}
	dst = appendLength(dst, flex, false, len(b))
	return append(dst, b...)
}

func appendArrayLen(dst []byte, flex, null bool, n int) []byte {
	if null {
		return appendLength(dst, flex, false, -1)
	}
	return appendLength(dst, flex, false, n)
}

// beginTag writes a tagged field's tag and a one-byte placeholder for its
// size; endTag(dst, len-after-beginTag) fills it in.
func beginTag(dst []byte, tag uint32) []byte {
	dst = appendUvarint(dst, tag)
	return append(dst, 0)
}

// endTag sets the size of the tagged field whose value starts at mark,
// moving the value when the size needs more than the one byte reserved.
func endTag(dst []byte, mark int) []byte {
	size := len(dst) - mark
	n := uvarintLen(uint32(size))
	if n == 1 {
		dst[mark-1] = byte(size)
		return dst
	}
	dst = append(dst, make([]byte, n-1)...)
	copy(dst[mark-1+n:], dst[mark:mark+size])
	appendUvarint(dst[:mark-1], uint32(size))
	return dst
}

// appendTags writes the tagged-field section of a struct that knows no
// tags.
func appendTags(dst []byte, tags []TaggedField) []byte {
	dst = appendUvarint(dst, uint32(len(tags)))
	return appendTagsFrom(dst, tags, 0)
}

// appendTagsBelow writes tags[u:] whose tag is below limit and returns the
// index of the first one not written; it merges unknown tags with known
// ones in ascending order.
func appendTagsBelow(dst []byte, tags []TaggedField, u int, limit uint32) ([]byte, int) {
	for ; u < len(tags) && tags[u].Tag < limit; u++ {
		dst = appendTag(dst, tags[u])
	}
	if base.InvariantsEnabled && u < len(tags) {
		if !(tags[u].Tag != limit) {
			base.Bugf("kafka: unknown tag %d is a known tag", limit)
		}
	}
	return dst, u
}

func appendTagsFrom(dst []byte, tags []TaggedField, u int) []byte {
	for ; u < len(tags); u++ {
		if base.InvariantsEnabled && u > 0 {
			if !(tags[u-1].Tag < tags[u].Tag) {
				base.Bugf("kafka: unknown tags out of order: %d then %d", tags[u-1].Tag, tags[u].Tag)
			}
		}
		dst = appendTag(dst, tags[u])
	}
	return dst
}

func appendTag(dst []byte, t TaggedField) []byte {
	dst = appendUvarint(dst, t.Tag)
	dst = appendUvarint(dst, uint32(len(t.Data)))
	return append(dst, t.Data...)
}

package codec

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/ferry-mq/ferry/internal/base"
)

// MethodKey identifies a method: class id << 16 | method id, which is also
// how the first four bytes of a method frame's payload read as a long. The
// spec's methods are the generated Method* constants.
type MethodKey uint32

// NewMethodKey returns the key of a class and method id pair.
func NewMethodKey(classID, methodID uint16) MethodKey {
	return MethodKey(classID)<<16 | MethodKey(methodID)
}

// ClassID returns the class id of the key.
func (k MethodKey) ClassID() uint16 { return uint16(k >> 16) }

// MethodID returns the method id of the key.
func (k MethodKey) MethodID() uint16 { return uint16(k) }

// String returns the method's name (basic.publish), or "method 60.99" for a
// key the spec does not define.
func (k MethodKey) String() string {
	if info := LookupMethod(k); info != nil {
		return info.Name
	}
	return fmt.Sprintf("method %d.%d", k.ClassID(), k.MethodID())
}

// MethodInfo is what the spec says about a method, for the server's
// dispatch: whether it waits for a reply and which, and whether content
// frames follow it.
type MethodInfo struct {
	Key  MethodKey
	Name string // class.method, as the spec names it: "basic.publish"
	// Synchronous is the spec's flag: the sender waits for one of
	// Responses. A method with a nowait argument is asynchronous when
	// nowait is set; Method.Synchronous answers for a given value.
	Synchronous bool
	HasContent  bool        // a content header and body frames follow it
	Responses   []MethodKey // the replies of a synchronous method; read-only
}

// LookupMethod returns the metadata of key, or nil when key is not a
// method of the spec. The result is shared and must not be modified.
func LookupMethod(key MethodKey) *MethodInfo {
	i := methodIndex(key)
	if i < 0 {
		return nil
	}
	return &methodInfos[i]
}

// Methods returns the metadata of every method of the spec, in spec order.
// The Responses slices are shared and must not be modified.
func Methods() []MethodInfo { return slices.Clone(methodInfos[:]) }

// Method is a decoded or to-be-encoded method: one of the generated
// structs (*BasicPublish, *ConnectionStart, ...).
type Method interface {
	Key() MethodKey
	Info() *MethodInfo
	// Synchronous reports whether the sender waits for a reply to this
	// method with these arguments: the spec's flag, false when a nowait
	// argument is set (RabbitMQ's is_method_synchronous).
	Synchronous() bool
	// Encode appends the method's arguments (not its class and method id)
	// to w. An argument that cannot be encoded (a shortstr over 255 bytes,
	// an unsupported table value) leaves an error in w.
	Encode(w *Writer)
	// Decode reads the method's arguments from r, overwriting every field.
	// It fails with an *Error when they are malformed or followed by more
	// bytes; the struct's fields are then unspecified.
	Decode(r *Reader) error
}

// Reader decodes the primitive AMQP types from a byte slice. The first
// failure sticks: later reads return zero values and the failure is
// reported once, by the generated Decode, as an *Error. The zero Reader is
// empty; Reset points it at bytes to decode.
type Reader struct {
	buf    []byte // what is being decoded; narrowed to a table's extent while in it
	off    int    // the next byte to read, an index into buf
	err    *Error
	fields int // values decoded in the current top-level table (AMQPTableFieldsMax)
}

// Reset makes r decode b from its start. r keeps b until the next Reset.
func (r *Reader) Reset(b []byte) { *r = Reader{buf: b} }

// fail records the first failure and stops decoding.
func (r *Reader) fail(e *Error) {
	if r.err == nil {
		r.err = e
	}
}

// take returns the next n bytes, aliasing the input, or nil after a
// failure. The result's capacity is n, so appending to it cannot overwrite
// the bytes after it.
func (r *Reader) take(n uint64) []byte {
	if r.err != nil {
		return nil
	}
	if left := uint64(len(r.buf) - r.off); n > left {
		r.fail(frameError("truncated: %d bytes needed at offset %d, %d left", n, r.off, left))
		return nil
	}
	end := r.off + int(n)
	b := r.buf[r.off:end:end]
	r.off = end
	return b
}

func (r *Reader) skip(n uint64) { r.take(n) }

func (r *Reader) octet() uint8 {
	if b := r.take(1); b != nil {
		return b[0]
	}
	return 0
}

func (r *Reader) short() uint16 {
	if b := r.take(2); b != nil {
		return binary.BigEndian.Uint16(b)
	}
	return 0
}

func (r *Reader) long() uint32 {
	if b := r.take(4); b != nil {
		return binary.BigEndian.Uint32(b)
	}
	return 0
}

func (r *Reader) longlong() uint64 {
	if b := r.take(8); b != nil {
		return binary.BigEndian.Uint64(b)
	}
	return 0
}

// timestamp reads a 64-bit POSIX time in seconds. It returns UTC, so that
// decoding is deterministic; Writer.timestamp inverts it for every value.
func (r *Reader) timestamp() time.Time {
	return time.Unix(int64(r.longlong()), 0).UTC()
}

func (r *Reader) shortStrBytes() []byte { return r.take(uint64(r.octet())) }

func (r *Reader) longStrBytes() []byte { return r.take(uint64(r.long())) }

// shortStr reads a short string. It returns reuse itself when the bytes
// equal it, so decoding into a reused struct allocates nothing for a string
// that did not change (the comparison does not allocate).
func (r *Reader) shortStr(reuse string) string { return reuseString(r.shortStrBytes(), reuse) }

// shortStrUTF8 is shortStr for a string that must be UTF-8, as RabbitMQ
// requires of the short strings of methods without content; anything else
// is a frame error, as RabbitMQ answers it.
func (r *Reader) shortStrUTF8(reuse string) string {
	start := r.off
	b := r.shortStrBytes()
	if r.err == nil && !utf8.Valid(b) {
		r.fail(frameError("short string at offset %d is not UTF-8", start))
		return ""
	}
	return reuseString(b, reuse)
}

// longStr reads a long string, reusing reuse as shortStr does. Its length
// is checked against the bytes left before anything is allocated.
func (r *Reader) longStr(reuse string) string { return reuseString(r.longStrBytes(), reuse) }

func (r *Reader) skipShortStr() { r.shortStrBytes() }

func (r *Reader) skipLongStr() { r.longStrBytes() }

func reuseString(b []byte, reuse string) string {
	if string(b) == reuse {
		return reuse
	}
	return string(b)
}

// finish ends the decoding of a method's arguments: every byte must have
// been used. It returns the first failure, tagged with the method.
func (r *Reader) finish(key MethodKey) error {
	if r.err == nil && r.off != len(r.buf) {
		r.fail(frameError("%d bytes after the last argument", len(r.buf)-r.off))
	}
	if r.err != nil {
		r.err.Method = key
		return r.err
	}
	return nil
}

// bit returns mask when b is set: the generated encoders pack consecutive
// bit arguments into octets with it.
func bit(b bool, mask uint8) uint8 {
	if b {
		return mask
	}
	return 0
}

// Writer encodes the primitive AMQP types by appending to a buffer it owns.
// The first failure sticks (later writes still append, but the result is
// to be discarded) and is reported by Err. The zero Writer is ready to use.
type Writer struct {
	buf    []byte
	err    error
	keys   []string // scratch for sorting table keys, reused across tables
	fields int      // values encoded in the current top-level table
}

// Reset empties w, keeping its buffers.
func (w *Writer) Reset() {
	w.buf = w.buf[:0]
	w.err = nil
}

// Bytes returns what was written since the last Reset. It aliases w's
// buffer: valid until the next write or Reset.
func (w *Writer) Bytes() []byte { return w.buf }

// Err returns the first encoding failure since the last Reset, as a
// *base.Error with code invalid_argument or too_large.
func (w *Writer) Err() error { return w.err }

func (w *Writer) fail(code base.Code, format string, args ...any) {
	if w.err == nil {
		w.err = base.Errorf(code, "amqp encode: "+format, args...)
	}
}

func (w *Writer) octet(v uint8) { w.buf = append(w.buf, v) }

func (w *Writer) short(v uint16) { w.buf = binary.BigEndian.AppendUint16(w.buf, v) }

func (w *Writer) long(v uint32) { w.buf = binary.BigEndian.AppendUint32(w.buf, v) }

func (w *Writer) longlong(v uint64) { w.buf = binary.BigEndian.AppendUint64(w.buf, v) }

func (w *Writer) timestamp(t time.Time) { w.longlong(uint64(t.Unix())) }

func (w *Writer) shortStr(s string) {
	if len(s) > math.MaxUint8 {
		w.fail(base.CodeInvalidArgument, "short string of %d bytes exceeds 255", len(s))
		s = s[:math.MaxUint8]
	}
	w.octet(uint8(len(s)))
	w.buf = append(w.buf, s...)
}

func (w *Writer) longStr(s string) {
	if uint64(len(s)) > math.MaxUint32 {
		w.fail(base.CodeTooLarge, "long string of %d bytes exceeds 4 GiB", len(s))
		return
	}
	w.long(uint32(len(s)))
	w.buf = append(w.buf, s...)
}

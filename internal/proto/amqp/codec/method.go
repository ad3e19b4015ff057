package codec

import (
	"encoding/binary"

	"github.com/ferry-mq/ferry/internal/base"
)

// methodKeyBytes is the size of a method frame's class and method id.
const methodKeyBytes = 4

// MethodDecoder decodes method frame payloads into structs it owns: one per
// method type, allocated the first time that method arrives and overwritten
// by every later one. Decoding a method already seen allocates nothing but
// strings that changed and tables. A connection's reader keeps one
// MethodDecoder; it is not safe for concurrent use.
type MethodDecoder struct {
	structs methodStructs
	r       Reader
}

// Decode decodes a method frame's payload. The returned method belongs to
// d and is valid until the next Decode of the same method type: copy what
// must outlive it (tables are always freshly allocated and may be kept).
//
// It fails with an *Error: frame-error for a payload too short to hold a
// class and method id or with malformed arguments, not-implemented for a
// class and method the spec does not define. (RabbitMQ drops the
// connection without a connection.close for the latter; not-implemented,
// a hard error carrying the ids, tells the client why.)
func (d *MethodDecoder) Decode(payload []byte) (Method, error) {
	key, err := payloadKey(payload)
	if err != nil {
		return nil, err
	}
	m := d.structs.get(key)
	if m == nil {
		return nil, notImplemented(key)
	}
	d.r.Reset(payload[methodKeyBytes:])
	if err := m.Decode(&d.r); err != nil {
		return nil, err
	}
	return m, nil
}

// DecodeMethod decodes a method frame's payload into a new struct, which
// the caller owns. Errors are as MethodDecoder.Decode's.
func DecodeMethod(payload []byte) (Method, error) {
	key, err := payloadKey(payload)
	if err != nil {
		return nil, err
	}
	m := NewMethod(key)
	if m == nil {
		return nil, notImplemented(key)
	}
	var r Reader
	r.Reset(payload[methodKeyBytes:])
	if err := m.Decode(&r); err != nil {
		return nil, err
	}
	return m, nil
}

func payloadKey(payload []byte) (MethodKey, error) {
	if len(payload) < methodKeyBytes {
		return 0, frameError("method frame payload of %d bytes has no class and method id", len(payload))
	}
	return MethodKey(binary.BigEndian.Uint32(payload)), nil
}

func notImplemented(key MethodKey) *Error {
	e := newError(ReplyNotImplemented, base.CodeNotSupported, "unknown method: class %d, method %d", key.ClassID(), key.MethodID())
	e.Method = key
	return e
}

// EncodeMethod appends a method frame's payload for m (class and method id,
// then the arguments) to w.
func EncodeMethod(w *Writer, m Method) {
	w.long(uint32(m.Key()))
	m.Encode(w)
}

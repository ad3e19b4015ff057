package codec

import (
	"github.com/ferry-mq/ferry/internal/base"
)

// contentHeaderFixedBytes is a content header's size before its property
// flags: class id, weight and body size.
const contentHeaderFixedBytes = 12

// flagContinuation is bit 0 of a property-flags word: another flags word
// follows. No class of 0-9-1 has more than 15 properties, so it is never
// legitimately set.
const flagContinuation = 0x0001

// ContentHeader is the payload of a content header frame. Decoding checks
// the whole property list but does not decode it: a broker mostly passes
// properties through, and RawProperties lets it store and re-send them as
// received (FrameWriter.WriteContentHeaderRaw); Properties decodes them
// when needed.
type ContentHeader struct {
	ClassID  uint16
	BodySize uint64
	// RawProperties is the property flags and property list exactly as
	// received, known to be well formed. It aliases the payload it was
	// decoded from: copy it to keep it past the next frame.
	RawProperties []byte
}

// Decode reads a content header frame's payload into h. It fails with an
// *Error when the payload is malformed (frame-error), its weight is not 0
// or its property flags set the continuation bit (syntax-error), its body
// size exceeds base.AMQPMessageBytesMax (frame-error, as RabbitMQ answers
// its own maximum), or its class is not one of the spec (unexpected-frame:
// no method of an unknown class carries content). It allocates nothing but
// the *Error. After an error, RawProperties is nil and the other fields are
// unspecified.
func (h *ContentHeader) Decode(payload []byte) error {
	var r Reader
	r.Reset(payload)
	h.ClassID = r.short()
	weight := r.short()
	h.BodySize = r.longlong()
	flags := r.short()
	h.RawProperties = nil
	if r.err != nil {
		return r.err
	}
	known, ok := classPropertyFlags(h.ClassID)
	switch {
	case !ok:
		return newError(ReplyUnexpectedFrame, base.CodeInvalidArgument, "content header for unknown class %d", h.ClassID)
	case weight != 0:
		return syntaxError("content header weight is %d, must be 0", weight)
	case h.BodySize > base.AMQPMessageBytesMax:
		return tooLarge("content body size %d exceeds the maximum of %d", h.BodySize, base.AMQPMessageBytesMax)
	case flags&flagContinuation != 0:
		return syntaxError("property flags 0x%04x set the continuation bit; class %d has at most 15 properties", flags, h.ClassID)
	}
	// Unknown flags are ignored, as RabbitMQ ignores them.
	skipProperties(h.ClassID, &r, flags&known)
	if r.err == nil && r.off != len(payload) {
		r.fail(frameError("%d bytes after the last property", len(payload)-r.off))
	}
	if r.err != nil {
		return r.err
	}
	h.RawProperties = payload[contentHeaderFixedBytes:len(payload):len(payload)]
	return nil
}

// Properties decodes h's properties into dst, which must be of class basic
// (the only class of 0-9-1 with properties). dst is overwritten; its
// unchanged strings are reused, so decoding into the same dst for each
// message allocates only for strings that differ and for headers.
func (h *ContentHeader) Properties(dst *BasicProperties) error {
	if h.ClassID != ClassBasic {
		return newError(ReplyUnexpectedFrame, base.CodeInvalidArgument, "content header of class %d has no basic properties", h.ClassID)
	}
	return DecodeBasicProperties(h.RawProperties, dst)
}

// DecodeBasicProperties decodes raw (the RawProperties form: flags, then
// the present properties) into dst, as ContentHeader.Properties does.
func DecodeBasicProperties(raw []byte, dst *BasicProperties) error {
	var r Reader
	r.Reset(raw)
	flags := r.short()
	if r.err == nil && flags&flagContinuation != 0 {
		return syntaxError("property flags 0x%04x set the continuation bit", flags)
	}
	dst.decode(&r, flags)
	if r.err == nil && r.off != len(raw) {
		r.fail(frameError("%d bytes after the last property", len(raw)-r.off))
	}
	if r.err != nil {
		return r.err
	}
	return nil
}

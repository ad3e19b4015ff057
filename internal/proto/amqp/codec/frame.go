package codec

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/ferry-mq/ferry/internal/base"
)

// frameOverheadBytes is a frame's size beyond its payload: type, channel and
// size (7 bytes) before it, the frame-end octet after it.
const frameOverheadBytes = 8

// frameHeaderBytes is the size of a frame's type, channel and size.
const frameHeaderBytes = 7

// ProtocolHeader is the protocol header of AMQP 0-9-1: what a client sends
// first, and what a server answers any header it does not accept with
// before closing the connection (spec §4.2.2).
var ProtocolHeader = [8]byte{'A', 'M', 'Q', 'P', 0, ProtocolMajor, ProtocolMinor, ProtocolRevision}

// ProtocolHeaderError reports a connection that did not open with
// ProtocolHeader: another AMQP version, TLS, HTTP or noise. The server
// answers with ProtocolHeader and closes.
type ProtocolHeaderError struct {
	Got [8]byte // the first 8 bytes received
}

func (e *ProtocolHeaderError) Error() string {
	return fmt.Sprintf("amqp: unsupported protocol header %q, want %q", e.Got[:], ProtocolHeader[:])
}

// Unwrap returns the error as a *base.Error with code not_supported.
func (e *ProtocolHeaderError) Unwrap() error {
	return &base.Error{Code: base.CodeNotSupported, Msg: e.Error()}
}

// ReadProtocolHeader reads the 8 bytes a connection opens with. It returns
// nil for AMQP 0-9-1, a *ProtocolHeaderError for any other 8 bytes, and the
// reader's error (io.EOF, io.ErrUnexpectedEOF, a timeout) when fewer than 8
// bytes arrive.
func ReadProtocolHeader(r io.Reader) error {
	var got [8]byte
	if _, err := io.ReadFull(r, got[:]); err != nil {
		return fmt.Errorf("amqp: reading protocol header: %w", err)
	}
	if got != ProtocolHeader {
		return &ProtocolHeaderError{Got: got}
	}
	return nil
}

// Frame is one AMQP frame. Its Payload is everything between the 7-byte
// header and the frame-end octet.
type Frame struct {
	Type    uint8 // FrameMethod, FrameHeader, FrameBody or FrameHeartbeat
	Channel uint16
	Payload []byte
}

// checkFrameMax validates a negotiated frame-max (connection.tune-ok's
// frame-max) and returns the size to enforce: 0, the spec's "no limit",
// means base.AMQPFrameBytesMax.
func checkFrameMax(n uint32) (uint32, error) {
	switch {
	case n == 0:
		return base.AMQPFrameBytesMax, nil
	case n < FrameMinSize:
		return 0, newError(ReplyNotAllowed, base.CodeInvalidArgument,
			"frame-max %d is below the minimum of %d", n, FrameMinSize)
	case n > base.AMQPFrameBytesMax:
		return 0, newError(ReplyNotAllowed, base.CodeTooLarge,
			"frame-max %d exceeds the maximum of %d", n, base.AMQPFrameBytesMax)
	}
	return n, nil
}

// FrameReader reads frames from a stream, checking each frame's size
// against the negotiated frame-max before allocating anything for it. It
// reuses one buffer, which grows to the largest frame read.
//
// r should be buffered (bufio.Reader): ReadFrame makes two reads per frame.
// A FrameReader is not safe for concurrent use.
type FrameReader struct {
	r        io.Reader
	header   [frameHeaderBytes]byte
	buf      []byte
	frameMax uint32 // the frame-max in force, header and frame-end included
}

// NewFrameReader returns a reader of frames from r. Until SetFrameMax, it
// accepts frames of up to FrameMinSize bytes, as the spec requires before
// connection.tune-ok.
func NewFrameReader(r io.Reader) *FrameReader {
	return &FrameReader{r: r, frameMax: FrameMinSize}
}

// SetFrameMax sets the frame-max negotiated in connection.tune-ok: 0 means
// base.AMQPFrameBytesMax. A value below FrameMinSize or above
// base.AMQPFrameBytesMax is refused with an *Error (not-allowed, as
// RabbitMQ answers it) and changes nothing.
func (fr *FrameReader) SetFrameMax(n uint32) error {
	max, err := checkFrameMax(n)
	if err != nil {
		return err
	}
	fr.frameMax = max
	return nil
}

// FrameMax returns the frame-max in force.
func (fr *FrameReader) FrameMax() uint32 { return fr.frameMax }

// ReadFrame reads the next frame. The frame's Payload aliases the reader's
// buffer: it is valid until the next ReadFrame.
//
// Errors: io.EOF when the stream ends cleanly between frames; the stream's
// error (io.ErrUnexpectedEOF inside a frame); an *Error for a frame the
// peer should not have sent: frame-error for an unknown frame type, a
// payload over frame-max (checked before reading it), a frame-end other
// than 0xCE or a heartbeat with a payload, unexpected-frame for a heartbeat
// on a channel other than 0 (as RabbitMQ answers both). After an *Error the
// stream is out of step and must be closed.
func (fr *FrameReader) ReadFrame() (Frame, error) {
	if _, err := io.ReadFull(fr.r, fr.header[:]); err != nil {
		return Frame{}, err
	}
	f := Frame{Type: fr.header[0], Channel: binary.BigEndian.Uint16(fr.header[1:3])}
	size := binary.BigEndian.Uint32(fr.header[3:7])
	switch f.Type {
	case FrameMethod, FrameHeader, FrameBody, FrameHeartbeat:
	default:
		return Frame{}, frameError("unknown frame type %d on channel %d", f.Type, f.Channel)
	}
	limit := uint64(fr.frameMax) - frameOverheadBytes + base.AMQPFrameSlackBytes
	if uint64(size) > limit {
		return Frame{}, tooLarge("frame of type %d with a payload of %d bytes exceeds frame-max %d",
			f.Type, size, fr.frameMax)
	}
	if f.Type == FrameHeartbeat && size != 0 {
		return Frame{}, frameError("heartbeat frame with a payload of %d bytes", size)
	}
	n := int(size) + 1 // the payload and the frame-end octet
	if cap(fr.buf) < n {
		// Grow geometrically, but never past what frame-max allows.
		fr.buf = make([]byte, n, min(max(n, 2*cap(fr.buf)), int(limit)+1))
	}
	b := fr.buf[:n]
	if _, err := io.ReadFull(fr.r, b); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return Frame{}, err
	}
	if end := b[size]; end != FrameEnd {
		return Frame{}, frameError("frame-end octet is 0x%02x, want 0x%02x", end, FrameEnd)
	}
	if f.Type == FrameHeartbeat && f.Channel != 0 {
		return Frame{}, newError(ReplyUnexpectedFrame, base.CodeInvalidArgument,
			"heartbeat frame on channel %d", f.Channel)
	}
	f.Payload = b[:size:size]
	return f, nil
}

// FrameWriter writes frames to a stream, each with one Write call (body
// frames with three, so that the body is not copied). The stream should be
// buffered (bufio.Writer) and flushed by the caller: FrameWriter never
// flushes. A FrameWriter is not safe for concurrent use.
type FrameWriter struct {
	w        io.Writer
	frameMax uint32 // the peer's frame-max, header and frame-end included
	enc      Writer
	header   [frameHeaderBytes]byte
	endOctet [1]byte
}

// NewFrameWriter returns a writer of frames to w. Until SetFrameMax it
// writes frames of up to FrameMinSize bytes.
func NewFrameWriter(w io.Writer) *FrameWriter {
	return &FrameWriter{w: w, frameMax: FrameMinSize, endOctet: [1]byte{FrameEnd}}
}

// SetFrameMax sets the negotiated frame-max; as FrameReader.SetFrameMax.
func (fw *FrameWriter) SetFrameMax(n uint32) error {
	max, err := checkFrameMax(n)
	if err != nil {
		return err
	}
	fw.frameMax = max
	return nil
}

// FrameMax returns the frame-max in force.
func (fw *FrameWriter) FrameMax() uint32 { return fw.frameMax }

// WriteProtocolHeader writes ProtocolHeader.
func (fw *FrameWriter) WriteProtocolHeader() error {
	_, err := fw.w.Write(ProtocolHeader[:])
	return err
}

// begin starts a frame in the encoder and returns the encoder.
func (fw *FrameWriter) begin(typ uint8, channel uint16) *Writer {
	fw.enc.Reset()
	fw.enc.octet(typ)
	fw.enc.short(channel)
	fw.enc.long(0) // the payload size, set by finish
	return &fw.enc
}

// finish completes the frame begun by begin and writes it. It fails, writing
// nothing, when encoding failed or the frame exceeds frame-max: an error
// with code invalid_argument or too_large, a local mistake rather than the
// peer's.
func (fw *FrameWriter) finish() error {
	w := &fw.enc
	if w.err != nil {
		return w.err
	}
	size := len(w.buf) - frameHeaderBytes
	if uint64(size) > uint64(fw.frameMax)-frameOverheadBytes {
		return base.Errorf(base.CodeTooLarge, "amqp encode: frame payload of %d bytes exceeds frame-max %d", size, fw.frameMax)
	}
	binary.BigEndian.PutUint32(w.buf[3:7], uint32(size))
	w.octet(FrameEnd)
	_, err := fw.w.Write(w.buf)
	return err
}

// WriteMethod writes m as a method frame on channel.
func (fw *FrameWriter) WriteMethod(channel uint16, m Method) error {
	w := fw.begin(FrameMethod, channel)
	w.long(uint32(m.Key()))
	m.Encode(w)
	return fw.finish()
}

// WriteHeartbeat writes a heartbeat frame (on channel 0, as the spec
// requires).
func (fw *FrameWriter) WriteHeartbeat() error {
	fw.begin(FrameHeartbeat, 0)
	return fw.finish()
}

// WriteContentHeader writes a content header frame of class basic on
// channel, announcing a body of bodySize bytes with the given properties
// (nil for none).
func (fw *FrameWriter) WriteContentHeader(channel uint16, bodySize uint64, props *BasicProperties) error {
	w := fw.begin(FrameHeader, channel)
	w.short(ClassBasic)
	w.short(0) // weight, always 0
	w.longlong(bodySize)
	if props == nil {
		w.short(0)
	} else {
		props.Encode(w)
	}
	return fw.finish()
}

// WriteContentHeaderRaw writes a content header frame carrying h's
// properties exactly as they were received: a delivery re-sends a
// publisher's properties without decoding or re-encoding them.
func (fw *FrameWriter) WriteContentHeaderRaw(channel uint16, h *ContentHeader) error {
	w := fw.begin(FrameHeader, channel)
	w.short(h.ClassID)
	w.short(0)
	w.longlong(h.BodySize)
	w.buf = append(w.buf, h.RawProperties...)
	return fw.finish()
}

// WriteBody writes body as body frames on channel, split to fit frame-max.
// An empty body writes no frame, as the spec requires.
func (fw *FrameWriter) WriteBody(channel uint16, body []byte) error {
	chunk := int(fw.frameMax - frameOverheadBytes)
	for len(body) > 0 {
		n := min(len(body), chunk)
		if err := fw.writeFrame(FrameBody, channel, body[:n]); err != nil {
			return err
		}
		body = body[n:]
	}
	return nil
}

// WriteFrame writes f as it is, checking only its size against frame-max.
func (fw *FrameWriter) WriteFrame(f Frame) error {
	if uint64(len(f.Payload)) > uint64(fw.frameMax)-frameOverheadBytes {
		return base.Errorf(base.CodeTooLarge, "amqp encode: frame payload of %d bytes exceeds frame-max %d", len(f.Payload), fw.frameMax)
	}
	return fw.writeFrame(f.Type, f.Channel, f.Payload)
}

// writeFrame writes header, payload and frame-end without copying payload.
func (fw *FrameWriter) writeFrame(typ uint8, channel uint16, payload []byte) error {
	fw.header[0] = typ
	binary.BigEndian.PutUint16(fw.header[1:3], channel)
	binary.BigEndian.PutUint32(fw.header[3:7], uint32(len(payload)))
	if _, err := fw.w.Write(fw.header[:]); err != nil {
		return err
	}
	if _, err := fw.w.Write(payload); err != nil {
		return err
	}
	_, err := fw.w.Write(fw.endOctet[:])
	return err
}

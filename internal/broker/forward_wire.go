package broker

import (
	"encoding/binary"
	"io"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/replication"
)

// The forwarding protocol (DESIGN.md "Forwarding"): nodes call each other
// on a connection of their own (not the Raft transport's), with frames
//
//	u32 length (of what follows, big-endian)
//	u8  type   request op, or respFlag|op for its response
//	u64 id     the caller's request id; a response echoes it
//	payload    the op's fields, encoded by wireWriter
//
// Requests and responses interleave freely: a node answers in any order.
// The length is checked against BrokerForwardFrameBytesMax before
// anything is allocated, and every decoder checks lengths and counts
// against the bytes present (FuzzForwardFrame).
const (
	opPropose byte = 1 // group, command → outcome
	opEnqueue byte = 2 // group, data batch of messages → outcomes
	opGet     byte = 3 // group, consumer, auto-ack → message
	// 4 was a queue-stats call no node sends or serves; left unassigned.

	// Consumer forwarding (forward_consume.go). Requests with a response:
	opSubscribe   byte = 5 // sid, group, consumer → error
	opSubCancel   byte = 6 // sid → error
	opSubPrefetch byte = 7 // sid, credit → error
	// One-way, proxy → leader, the frame id being the sid; served in
	// order on the connection's reader:
	opSubSettle byte = 8 // kind, delivery id, multiple, reason
	opSubClose  byte = 9 // the proxy forgot the consumer: return its deliveries
	// One-way, leader → proxy, the frame id being the sid:
	opSubDeliver    byte = 10 // delivery id, redelivered, count, message
	opSubEnd        byte = 11 // error: the leader cancelled the consumer
	opSubAckTimeout byte = 12 // delivery id the queue took back

	// A consumer group's committed offset on a partition without a
	// replica on the caller's node (FetchOffsets):
	opOffset byte = 13 // partition group, consumer group → committed offset
	// A queue's counts for queue.declare-ok on a node without its replica:
	opQueueCounts byte = 14 // queue group → ready messages, consumers
	// Wait until this node's controller replica has applied an entry
	// (Broker.spreadController):
	opCtrlApplied byte = 15 // controller log index → error

	respFlag byte = 0x80

	frameHeaderBytes = 4 + 1 + 8
)

// wireWriter appends fields.
type wireWriter struct{ b []byte }

func (w *wireWriter) u8(v byte)        { w.b = append(w.b, v) }
func (w *wireWriter) uvarint(v uint64) { w.b = binary.AppendUvarint(w.b, v) }
func (w *wireWriter) varint(v int64)   { w.b = binary.AppendVarint(w.b, v) }
func (w *wireWriter) bytes(v []byte) {
	w.uvarint(uint64(len(v)))
	w.b = append(w.b, v...)
}
func (w *wireWriter) str(v string) {
	w.uvarint(uint64(len(v)))
	w.b = append(w.b, v...)
}
func (w *wireWriter) bool(v bool) {
	if v {
		w.u8(1)
	} else {
		w.u8(0)
	}
}

// wireReader reads fields; the first malformed field sets err and every
// later read returns zero values.
type wireReader struct {
	b   []byte
	err error
}

func (r *wireReader) fail() {
	if r.err == nil {
		r.err = base.Errorf(base.CodeCorrupt, "broker: malformed forwarded frame")
	}
}

func (r *wireReader) u8() byte {
	if r.err != nil || len(r.b) < 1 {
		r.fail()
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *wireReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *wireReader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

// bytes returns a sub-slice of the frame (no copy).
func (r *wireReader) bytes() []byte {
	n := r.uvarint()
	if r.err != nil || n > uint64(len(r.b)) {
		r.fail()
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *wireReader) str() string { return string(r.bytes()) }

func (r *wireReader) bool() bool {
	v := r.u8()
	if v > 1 {
		r.fail()
	}
	return v == 1
}

// done reports an error unless everything was read.
func (r *wireReader) done() error {
	if r.err == nil && len(r.b) != 0 {
		r.fail()
	}
	return r.err
}

// frame is one decoded frame.
type frame struct {
	typ     byte
	id      uint64
	payload []byte
}

// readFrame reads one frame, refusing lengths over the limit before
// allocating.
func readFrame(rd io.Reader, hdr *[frameHeaderBytes]byte) (frame, error) {
	if _, err := io.ReadFull(rd, hdr[:]); err != nil {
		return frame{}, err
	}
	n := binary.BigEndian.Uint32(hdr[:4])
	if n < 9 || n > base.BrokerForwardFrameBytesMax {
		return frame{}, base.Errorf(base.CodeCorrupt, "broker: forwarded frame of %d bytes (limit %d)", n, base.BrokerForwardFrameBytesMax)
	}
	f := frame{typ: hdr[4], id: binary.BigEndian.Uint64(hdr[5:13])}
	f.payload = make([]byte, n-9)
	if _, err := io.ReadFull(rd, f.payload); err != nil {
		return frame{}, err
	}
	return f, nil
}

// appendFrame appends a frame to dst.
func appendFrame(dst []byte, typ byte, id uint64, payload []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(9+len(payload)))
	dst = append(dst, typ)
	dst = binary.BigEndian.AppendUint64(dst, id)
	return append(dst, payload...)
}

// An error crosses the wire as its code (0: none), its message and the
// leader hint of a CodeNotLeader error.
func (w *wireWriter) err(e error) {
	if e == nil {
		w.uvarint(0)
		return
	}
	w.uvarint(uint64(base.CodeOf(e)))
	w.str(e.Error())
	w.uvarint(leaderHint(e))
}

func (r *wireReader) error() error {
	code := base.Code(r.uvarint())
	if code == 0 || r.err != nil {
		return nil
	}
	msg := r.str()
	lead := r.uvarint()
	if code == base.CodeNotLeader {
		return &base.Error{Code: code, Msg: msg, Err: &replication.NotLeaderError{Leader: lead}}
	}
	return &base.Error{Code: code, Msg: msg}
}

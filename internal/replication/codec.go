package replication

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	pb "go.etcd.io/raft/v3/raftpb"

	"github.com/ferry-mq/ferry/internal/base"
)

// The transport's frames are [length u32][CRC32C u32][type u8][payload]:
// length counts the type byte and the payload and is checked against
// base.TransportFrameBytesMax before anything is allocated; the CRC covers
// the type and the payload.
const (
	frameHeaderBytes = 8

	frameBatch     byte = 1 // an encoded Batch
	framePing      byte = 2 // node-level liveness: [uvarint sequence]
	frameSnapChunk byte = 3 // [uvarint stream][flags u8][data]
	frameSnapAck   byte = 4 // [uvarint stream][status u8]
)

// Snapshot chunk flags.
const (
	chunkFirst = 1 << iota
	chunkLast
	chunkAbort
)

// appendFrame appends a frame of type typ around the payload that fill
// appends; it returns the extended buffer.
func appendFrame(b []byte, typ byte, fill func([]byte) []byte) []byte {
	start := len(b)
	b = append(b, 0, 0, 0, 0, 0, 0, 0, 0, typ)
	b = fill(b)
	body := b[start+frameHeaderBytes:]
	binary.BigEndian.PutUint32(b[start:], uint32(len(body)))
	binary.BigEndian.PutUint32(b[start+4:], crc32.Checksum(body, castagnoli))
	return b
}

// readFrame reads one frame; the returned payload is freshly allocated and
// owned by the caller (decoded messages alias it).
func readFrame(r io.Reader, hdr *[frameHeaderBytes]byte) (typ byte, payload []byte, err error) {
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n < 1 || n > base.TransportFrameBytesMax {
		return 0, nil, base.Errorf(base.CodeCorrupt, "replication: frame of %d bytes outside [1, %d]", n, base.TransportFrameBytesMax)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return 0, nil, err
	}
	if got, want := crc32.Checksum(body, castagnoli), binary.BigEndian.Uint32(hdr[4:]); got != want {
		return 0, nil, base.Errorf(base.CodeCorrupt, "replication: frame CRC %08x, header says %08x", got, want)
	}
	return body[0], body[1:], nil
}

// Field presence bits of an encoded message.
const (
	fTerm = 1 << iota
	fLogTerm
	fIndex
	fCommit
	fVote
	fReject
	fRejectHint
	fContext
	fEntries
)

// wireTypes are the message types that travel in batches; snapshots go as
// streams, proposals are never forwarded, the rest are local to a node.
var wireTypes = [...]bool{
	pb.MsgApp: true, pb.MsgAppResp: true, pb.MsgVote: true, pb.MsgVoteResp: true,
	pb.MsgHeartbeat: true, pb.MsgHeartbeatResp: true, pb.MsgTransferLeader: true,
	pb.MsgTimeoutNow: true, pb.MsgReadIndex: true, pb.MsgReadIndexResp: true,
	pb.MsgPreVote: true, pb.MsgPreVoteResp: true,
}

func isWireType(t pb.MessageType) bool { return int(t) < len(wireTypes) && t >= 0 && wireTypes[t] }

// EncodeBatch appends the wire encoding of b to dst: the payload of a batch
// frame. The simulator sends batches through it so its network carries the
// same bytes as TCP.
func EncodeBatch(dst []byte, b *Batch) []byte { return appendBatch(dst, b) }

// DecodeBatch decodes a batch sent by node from to node to. Entry data and
// contexts alias payload. Errors are CodeCorrupt.
func DecodeBatch(payload []byte, from, to NodeID) (*Batch, error) {
	return decodeBatch(payload, from, to)
}

// appendBatch encodes b: its messages (without From and To, which the
// connection implies) and its coalesced heartbeats.
func appendBatch(out []byte, b *Batch) []byte {
	out = binary.AppendUvarint(out, uint64(len(b.Messages)))
	for i := range b.Messages {
		out = appendMessage(out, &b.Messages[i])
	}
	out = binary.AppendUvarint(out, uint64(len(b.Heartbeats)))
	for _, hb := range b.Heartbeats {
		out = binary.AppendUvarint(out, hb.Group)
		var flags byte
		if hb.Resp {
			flags |= 1
		}
		if hb.Quiesce {
			flags |= 2
		}
		out = append(out, flags)
		out = binary.AppendUvarint(out, hb.Term)
		out = binary.AppendUvarint(out, hb.Commit)
		out = binary.AppendUvarint(out, hb.Stamp)
	}
	return out
}

func appendMessage(out []byte, env *Envelope) []byte {
	m := env.Msg
	out = binary.AppendUvarint(out, env.Group)
	out = binary.AppendUvarint(out, env.Stamp)
	out = append(out, byte(m.GetType()))
	var present uint64
	vals := [...]struct {
		bit uint64
		v   uint64
	}{{fTerm, m.GetTerm()}, {fLogTerm, m.GetLogTerm()}, {fIndex, m.GetIndex()}, {fCommit, m.GetCommit()}, {fVote, m.GetVote()}}
	for _, f := range vals {
		if f.v != 0 {
			present |= f.bit
		}
	}
	if m.GetReject() {
		present |= fReject
	}
	if m.GetRejectHint() != 0 {
		present |= fRejectHint
	}
	if len(m.GetContext()) > 0 {
		present |= fContext
	}
	if len(m.GetEntries()) > 0 {
		present |= fEntries
	}
	out = binary.AppendUvarint(out, present)
	for _, f := range vals {
		if present&f.bit != 0 {
			out = binary.AppendUvarint(out, f.v)
		}
	}
	if present&fRejectHint != 0 {
		out = binary.AppendUvarint(out, m.GetRejectHint())
	}
	if present&fContext != 0 {
		out = appendBytes(out, m.GetContext())
	}
	if present&fEntries != 0 {
		out = binary.AppendUvarint(out, uint64(len(m.GetEntries())))
		for _, e := range m.GetEntries() {
			out = append(out, byte(e.GetType()))
			out = binary.AppendUvarint(out, e.GetTerm())
			out = binary.AppendUvarint(out, e.GetIndex())
			out = appendBytes(out, e.GetData())
		}
	}
	return out
}

// batchBytes estimates the encoded size of b, for queue accounting.
func batchBytes(b *Batch) int {
	n := 4 + 24*len(b.Heartbeats)
	for _, env := range b.Messages {
		n += 48 + len(env.Msg.GetContext())
		for _, e := range env.Msg.GetEntries() {
			n += 24 + len(e.GetData())
		}
	}
	return n
}

// decodedMsg holds a decoded message and the values its pointer fields
// point to, so a message costs one allocation (plus one for its entries).
type decodedMsg struct {
	m      pb.Message
	typ    pb.MessageType
	vals   [8]uint64 // term, logTerm, index, commit, vote, rejectHint, from, to
	reject bool
}

type decodedEntry struct {
	e     pb.Entry
	typ   pb.EntryType
	term  uint64
	index uint64
}

var errWire = errors.New("malformed batch")

// decodeBatch decodes a batch payload from peer `from` to node `to`. Byte
// fields (entry data, contexts) alias payload. It allocates only what the
// payload backs: every count is checked against the bytes left.
func decodeBatch(payload []byte, from, to NodeID) (*Batch, error) {
	d := decoder{b: payload}
	b := &Batch{}
	n := d.count(4, len(payload))
	if n > 0 {
		b.Messages = make([]Envelope, 0, n)
	}
	for range n {
		env, err := decodeMessage(&d, from, to)
		if err != nil {
			return nil, err
		}
		b.Messages = append(b.Messages, env)
	}
	n = d.count(5, len(payload))
	if n > 0 {
		b.Heartbeats = make([]Heartbeat, 0, n)
	}
	for range n {
		hb := Heartbeat{Group: d.uvarint()}
		flags := d.u8()
		if flags&^3 != 0 {
			d.fail(fmt.Errorf("heartbeat flags %#x", flags))
		}
		hb.Resp, hb.Quiesce = flags&1 != 0, flags&2 != 0
		hb.Term, hb.Commit, hb.Stamp = d.uvarint(), d.uvarint(), d.uvarint()
		b.Heartbeats = append(b.Heartbeats, hb)
	}
	if err := d.done("batch"); err != nil {
		return nil, err
	}
	return b, nil
}

func decodeMessage(d *decoder, from, to NodeID) (Envelope, error) {
	env := Envelope{Group: d.uvarint(), Stamp: d.uvarint()}
	dm := &decodedMsg{typ: pb.MessageType(d.u8())}
	present := d.uvarint()
	if d.err != nil {
		return env, base.Errorf(base.CodeCorrupt, "replication: %w: %w", errWire, d.err)
	}
	if !isWireType(dm.typ) || present >= fEntries<<1 {
		return env, base.Errorf(base.CodeCorrupt, "replication: %w: message type %d, fields %#x", errWire, dm.typ, present)
	}
	m := &dm.m
	m.Type = &dm.typ
	dm.vals[6], dm.vals[7] = from, to
	m.From, m.To = &dm.vals[6], &dm.vals[7]
	ptrs := [...]**uint64{&m.Term, &m.LogTerm, &m.Index, &m.Commit, &m.Vote}
	for i, bit := range [...]uint64{fTerm, fLogTerm, fIndex, fCommit, fVote} {
		if present&bit != 0 {
			dm.vals[i] = d.uvarint()
			*ptrs[i] = &dm.vals[i]
		}
	}
	if present&fReject != 0 {
		dm.reject = true
		m.Reject = &dm.reject
	}
	if present&fRejectHint != 0 {
		dm.vals[5] = d.uvarint()
		m.RejectHint = &dm.vals[5]
	}
	if present&fContext != 0 {
		m.Context = d.bytes()
	}
	if present&fEntries != 0 {
		m.Entries = decodeEntries(d)
	}
	if d.err != nil {
		return env, base.Errorf(base.CodeCorrupt, "replication: %w: %w", errWire, d.err)
	}
	env.Msg = m
	return env, nil
}

func decodeEntries(d *decoder) []*pb.Entry {
	n := d.count(4, len(d.b))
	if n == 0 {
		d.fail(errors.New("entries flag with no entries"))
		return nil
	}
	backing := make([]decodedEntry, n)
	out := make([]*pb.Entry, n)
	for i := range backing {
		de := &backing[i]
		de.typ = pb.EntryType(d.u8())
		if de.typ != pb.EntryNormal && de.typ != pb.EntryConfChangeV2 {
			d.fail(fmt.Errorf("entry type %d", de.typ))
			return nil
		}
		de.term, de.index = d.uvarint(), d.uvarint()
		de.e.Type, de.e.Term, de.e.Index = &de.typ, &de.term, &de.index
		if data := d.bytes(); len(data) > 0 {
			de.e.Data = data
		}
		out[i] = &de.e
	}
	return out
}

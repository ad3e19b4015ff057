package replication

import (
	"encoding/binary"
	"hash/crc32"

	pb "go.etcd.io/raft/v3/raftpb"

	"github.com/ferry-mq/ferry/internal/base"
)

// Every Raft entry is stored as exactly one record batch of the group's log
// (Kafka RecordBatch v2, docs/storage-format.md): the Raft index is the
// batch's Index in the log and the Raft term its partitionLeaderEpoch. A
// broker's data batch is proposed and stored as is; everything else is a
// control batch (attribute bit 5) holding one control record whose key is
// int16 version 0 + int16 type and whose value is the payload:
//
//	controlCommand      an opaque command proposed with Propose
//	controlRaftEmpty    Raft's empty entry (a new leader's first entry)
//	controlConfChangeV2 a membership change; the value is the marshalled
//	                    raftpb.ConfChangeV2 (possibly empty: leave joint)
//
// Inside Raft, Entry.Data of a normal entry is already the batch bytes (the
// engine wraps commands before proposing), so only Raft's own entries are
// wrapped at write time and unwrapped at read time.
const (
	controlCommand      = 100
	controlRaftEmpty    = 110
	controlConfChangeV2 = 111
)

// Offsets of the fields of a batch header (61 bytes, big-endian).
const (
	batchHeaderBytes     = 61
	offBaseOffset        = 0
	offBatchLength       = 8
	offLeaderEpoch       = 12
	offMagic             = 16
	offCRC               = 17
	offAttributes        = 21
	offLastOffsetDelta   = 23
	offBaseTimestamp     = 27
	offMaxTimestamp      = 35
	offProducerID        = 43
	offProducerEpoch     = 51
	offBaseSequence      = 53
	offRecordCount       = 57
	batchMagic           = 2
	attrControl          = 1 << 5
	batchLengthFieldSize = 12 // baseOffset and batchLength are outside batchLength
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// encodeControl returns a control batch holding one control record of the
// given type with payload as its value, stamped with timestamp tsMs (ms).
// The log overwrites baseOffset and the epoch when it stores the batch.
func encodeControl(typ int16, payload []byte, tsMs int64) []byte {
	var rec [5 * binary.MaxVarintLen64]byte
	// The record after its length: attributes, timestampDelta, offsetDelta,
	// key length, then the key, value length, value, header count.
	body := rec[:0]
	body = append(body, 0)              // attributes
	body = binary.AppendVarint(body, 0) // timestampDelta
	body = binary.AppendVarint(body, 0) // offsetDelta
	body = binary.AppendVarint(body, 4) // key length
	keyAt := len(body)                  // key written below
	body = append(body, 0, 0, 0, 0)     // key: version 0, type
	binary.BigEndian.PutUint16(body[keyAt+2:], uint16(typ))
	body = binary.AppendVarint(body, int64(len(payload)))
	recLen := len(body) + len(payload) + 1 // + header count (one byte: 0)

	out := make([]byte, batchHeaderBytes, batchHeaderBytes+binary.MaxVarintLen64+recLen)
	out = binary.AppendVarint(out, int64(recLen))
	out = append(out, body...)
	out = append(out, payload...)
	out = binary.AppendVarint(out, 0) // header count

	binary.BigEndian.PutUint32(out[offBatchLength:], uint32(len(out)-batchLengthFieldSize))
	out[offMagic] = batchMagic
	binary.BigEndian.PutUint16(out[offAttributes:], attrControl)
	binary.BigEndian.PutUint64(out[offBaseTimestamp:], uint64(tsMs))
	binary.BigEndian.PutUint64(out[offMaxTimestamp:], uint64(tsMs))
	binary.BigEndian.PutUint64(out[offProducerID:], ^uint64(0))    // -1: no producer
	binary.BigEndian.PutUint16(out[offProducerEpoch:], ^uint16(0)) // -1
	binary.BigEndian.PutUint32(out[offBaseSequence:], ^uint32(0))  // -1
	binary.BigEndian.PutUint32(out[offRecordCount:], 1)
	binary.BigEndian.PutUint32(out[offCRC:], crc32.Checksum(out[offAttributes:], castagnoli))
	return out
}

// batchTerm returns the partitionLeaderEpoch of a stored batch: its Raft
// term, as the log stamped it.
func batchTerm(b []byte) uint64 {
	return uint64(binary.BigEndian.Uint32(b[offLeaderEpoch:]))
}

// checkBatch verifies the structure and checksum of a batch: length, magic
// and CRC. It does not decode records.
func checkBatch(b []byte) error {
	if len(b) < batchHeaderBytes {
		return base.Errorf(base.CodeCorrupt, "replication: batch of %d bytes is shorter than its %d-byte header", len(b), batchHeaderBytes)
	}
	if n := int64(binary.BigEndian.Uint32(b[offBatchLength:])); n != int64(len(b)-batchLengthFieldSize) {
		return base.Errorf(base.CodeCorrupt, "replication: batch length field %d, want %d", n, len(b)-batchLengthFieldSize)
	}
	if b[offMagic] != batchMagic {
		return base.Errorf(base.CodeCorrupt, "replication: batch magic %d, want %d", b[offMagic], batchMagic)
	}
	if got, want := crc32.Checksum(b[offAttributes:], castagnoli), binary.BigEndian.Uint32(b[offCRC:]); got != want {
		return base.Errorf(base.CodeCorrupt, "replication: batch CRC %08x, header says %08x", got, want)
	}
	return nil
}

// decodeControl returns the type and payload of a control batch (a
// sub-slice of b). ok is false when b is not a control batch of one control
// record (a data batch, or anything malformed); the caller treats such
// bytes as a data batch.
func decodeControl(b []byte) (typ int16, payload []byte, ok bool) {
	if len(b) < batchHeaderBytes || b[offMagic] != batchMagic ||
		binary.BigEndian.Uint16(b[offAttributes:])&attrControl == 0 ||
		binary.BigEndian.Uint32(b[offRecordCount:]) != 1 {
		return 0, nil, false
	}
	r := b[batchHeaderBytes:]
	recLen, n := binary.Varint(r)
	if n <= 0 || recLen < 0 || recLen > int64(len(r)-n) {
		return 0, nil, false
	}
	r = r[n : n+int(recLen)]
	if len(r) < 1 {
		return 0, nil, false
	}
	r = r[1:]     // attributes
	for range 2 { // timestampDelta, offsetDelta
		if _, n = binary.Varint(r); n <= 0 {
			return 0, nil, false
		}
		r = r[n:]
	}
	keyLen, n := binary.Varint(r)
	if n <= 0 || keyLen != 4 || len(r) < n+4 {
		return 0, nil, false
	}
	key := r[n : n+4]
	r = r[n+4:]
	if binary.BigEndian.Uint16(key) != 0 { // version
		return 0, nil, false
	}
	valLen, n := binary.Varint(r)
	if n <= 0 || valLen < 0 || valLen > int64(len(r)-n) {
		return 0, nil, false
	}
	return int16(binary.BigEndian.Uint16(key[2:])), r[n : n+int(valLen) : n+int(valLen)], true
}

// storedBytes returns the batch that represents e in the log. A normal entry
// with data is already a batch; Raft's own entries are wrapped. The
// timestamp of wrapped entries is 0 so that every replica stores the same
// bytes.
func storedBytes(e *pb.Entry) []byte {
	switch e.GetType() {
	case pb.EntryNormal:
		if len(e.GetData()) == 0 {
			return encodeControl(controlRaftEmpty, nil, 0)
		}
		return e.GetData()
	case pb.EntryConfChangeV2:
		return encodeControl(controlConfChangeV2, e.GetData(), 0)
	default:
		// The engine proposes only ConfChangeV2; a v1 change would lose
		// its type here, so refuse to store it.
		base.Bugf("replication: entry %d has type %v, which the engine never proposes", e.GetIndex(), e.GetType())
		return nil
	}
}

// raftEntry rebuilds the Raft entry stored as batch b at index.
func raftEntry(index uint64, b []byte) *pb.Entry {
	typ, payload, ok := decodeControl(b)
	e := &pb.Entry{Index: new(index), Term: new(batchTerm(b))}
	switch {
	case ok && typ == controlRaftEmpty:
		// Type and Data stay nil: an empty normal entry.
	case ok && typ == controlConfChangeV2:
		e.Type = pb.EntryConfChangeV2.Enum()
		if len(payload) > 0 {
			e.Data = payload
		}
	default:
		e.Data = b
	}
	return e
}

// fsmEntry converts a committed normal entry with data into what the FSM
// sees: commands unwrapped, data batches as they are.
func fsmEntry(e *pb.Entry) Entry {
	d := e.GetData()
	if typ, payload, ok := decodeControl(d); ok && typ == controlCommand {
		return Entry{Index: e.GetIndex(), Term: e.GetTerm(), Kind: KindCommand, Data: payload}
	}
	return Entry{Index: e.GetIndex(), Term: e.GetTerm(), Kind: KindBatch, Data: d}
}

// isDataBatch reports whether b is a batch a broker may propose with
// ProposeBatch: structurally valid and not a control batch (control batches
// carry the engine's own entries).
func isDataBatch(b []byte) error {
	if err := checkBatch(b); err != nil {
		return err
	}
	if binary.BigEndian.Uint16(b[offAttributes:])&attrControl != 0 {
		return base.Errorf(base.CodeInvalidArgument, "replication: ProposeBatch given a control batch; propose commands with Propose")
	}
	return nil
}

// batchRecords returns the record count of a batch, which is how many
// offsets it occupies; a batch too short to say counts one.
func batchRecords(b []byte) int64 {
	if len(b) < batchHeaderBytes {
		return 1
	}
	return int64(binary.BigEndian.Uint32(b[offLastOffsetDelta:])) + 1
}

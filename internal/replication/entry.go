package replication

import (
	"encoding/binary"
	"hash/crc32"

	pb "go.etcd.io/raft/v3/raftpb"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/storage/log/batch"
)

// Every Raft entry is stored as exactly one record batch of the group's log
// (Kafka RecordBatch v2, package batch and docs/storage-format.md): the Raft index is the
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
	controlCommand      = batch.ControlFerryMin // 100
	controlRaftEmpty    = batch.ControlFerryMin + 10
	controlConfChangeV2 = batch.ControlFerryMin + 11
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// controlRecordBytesMax bounds what the one record of a control batch adds
// to its payload: its length (a varint of at most 5 bytes for a record
// within BatchBytesMax), attributes, timestamp and offset deltas (1 byte
// each: both are 0), the key (a 1-byte length and 4 bytes), the value's
// length (at most 5 bytes) and the header count (1 byte).
const controlRecordBytesMax = 5 + 1 + 1 + 1 + 1 + 4 + 5 + 1

// encodeControl returns a control batch holding one control record of the
// given type with payload as its value, stamped with timestamp tsMs (ms).
// The log overwrites baseOffset and the epoch when it stores the batch. It
// allocates once: the buffer is sized for the batch up front (growing it
// while appending the payload cost two more allocations and copies per
// proposal).
func encodeControl(typ int16, payload []byte, tsMs int64) []byte {
	dst := make([]byte, 0, batch.HeaderSize+controlRecordBytesMax+len(payload))
	b, err := batch.AppendControl(dst, batch.Header{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}, tsMs, typ, payload)
	if err != nil {
		base.Bugf("encoding a control batch of %d bytes: %v", len(payload), err)
	}
	return b
}

// proposalBufs recycles the buffers of proposals: command batches
// (encodeCommand) and the copies ProposeBatchAsync makes of data batches.
// A proposal's buffer is garbage once raft has stepped it, because raft
// appends a copy of every proposed entry (raft.appendEntry clones it;
// TestRaftCopiesProposedEntries pins that), so assignProposals hands it
// back here. Without it every proposal left two copies of its batch to
// the garbage collector: at a queue's or a partition's full rate, hundreds
// of MB/s of zeroed allocations.
var proposalBufs = base.NewBytePool(proposalBufBytesMin, base.RaftProposalBufferBytesMax)

// proposalBufBytesMin is the smallest class of proposalBufs: a few small
// commands' worth.
const proposalBufBytesMin = 2 << 10

// encodeCommand is encodeControl of a command into a recycled buffer: buf
// is the buffer to hand back with releaseProposal once raft has copied
// the proposal.
func encodeCommand(cmd []byte, tsMs int64) (b []byte, buf *[]byte) {
	buf = proposalBufs.Get(batch.HeaderSize + controlRecordBytesMax + len(cmd))
	b, err := batch.AppendControl(*buf, batch.Header{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}, tsMs, controlCommand, cmd)
	if err != nil {
		base.Bugf("encoding a command of %d bytes: %v", len(cmd), err)
	}
	return b, buf
}

// copyProposal copies a data batch into a recycled buffer, which is to be
// handed back with releaseProposal once raft has copied the proposal.
func copyProposal(data []byte) (b []byte, buf *[]byte) {
	buf = proposalBufs.Get(len(data))
	return append(*buf, data...), buf
}

// releaseProposal hands a proposal's buffer back for reuse. Nothing may
// refer to the batch afterwards: under ferry_invariants it is overwritten,
// so that a reader that still held it (raft, if it stopped copying) would
// see garbage and fail the log's validation or the apply check.
func releaseProposal(r *request) {
	if r.buf == nil {
		return
	}
	*r.buf = r.data
	proposalBufs.Put(r.buf)
	r.buf, r.data = nil, nil
}

// batchTerm returns the partitionLeaderEpoch of a stored batch: its Raft
// term, as the log stamped it.
func batchTerm(b []byte) uint64 { return uint64(uint32(batch.Epoch(b))) }

// decodeControl returns the type and payload of a control batch of one
// control record (the payload is a sub-slice of b). ok is false for
// anything else; the caller treats such bytes as a data batch.
func decodeControl(b []byte) (typ int16, payload []byte, ok bool) {
	if len(b) < batch.HeaderSize || !batch.Attributes(binary.BigEndian.Uint16(b[batch.CRCStart:])).IsControl() {
		return 0, nil, false
	}
	typ, payload, err := batch.ParseControl(b)
	if err != nil {
		return 0, nil, false
	}
	return typ, payload[:len(payload):len(payload)], true
}

// storedBytes returns the batch that represents e in the log, and whether
// the engine has just built it. A normal entry with data is already a batch
// (built is false: it may come from the network); Raft's own entries are
// wrapped. The timestamp of wrapped entries is 0 so that every replica
// stores the same bytes.
func storedBytes(e *pb.Entry) (b []byte, built bool) {
	switch e.GetType() {
	case pb.EntryNormal:
		if len(e.GetData()) == 0 {
			return encodeControl(controlRaftEmpty, nil, 0), true
		}
		return e.GetData(), false
	case pb.EntryConfChangeV2:
		return encodeControl(controlConfChangeV2, e.GetData(), 0), true
	default:
		// The engine proposes only ConfChangeV2; a v1 change would lose
		// its type here, so refuse to store it.
		base.Bugf("replication: entry %d has type %v, which the engine never proposes", e.GetIndex(), e.GetType())
		return nil, false
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

// isDataBatch checks that b is a batch a broker may propose with
// ProposeBatch: what the log accepts (a valid batch whose records have
// consecutive offsets), and not a control batch, which carries the engine's
// own entries. A batch the log would refuse must never reach raft: the
// leader's write would fail and stop the node.
func isDataBatch(b []byte) error {
	h, err := batch.Validate(b)
	if err != nil {
		return err
	}
	return checkDataHeader(h)
}

// checkDataHeader refuses a control batch, and one whose records do not
// have consecutive offsets.
func checkDataHeader(h batch.Header) error {
	switch {
	case h.Attributes.IsControl():
		return base.Errorf(base.CodeInvalidArgument, "replication: ProposeBatch given a control batch; propose commands with Propose")
	case h.RecordCount < 1 || h.LastOffsetDelta != h.RecordCount-1:
		return base.Errorf(base.CodeInvalidArgument, "replication: a batch needs records with consecutive offsets: %d records, lastOffsetDelta %d", h.RecordCount, h.LastOffsetDelta)
	}
	return nil
}

// isBuiltDataBatch is isDataBatch of a batch the broker has just built:
// its header only, unless invariants are checked.
func isBuiltDataBatch(b []byte) error {
	if base.InvariantsEnabled {
		return isDataBatch(b)
	}
	h, err := batch.ParseHeader(b)
	switch {
	case err != nil:
		return err
	case int64(h.Length)+batch.LogOverhead != int64(len(b)):
		return base.Errorf(base.CodeInvalidArgument, "replication: a built batch of %d bytes says it has %d", len(b), int64(h.Length)+batch.LogOverhead)
	}
	return checkDataHeader(h)
}

// batchRecords returns how many offsets a batch occupies; bytes that are
// not a batch count one.
func batchRecords(b []byte) int64 {
	h, err := batch.ParseHeader(b)
	if err != nil {
		return 1
	}
	return int64(h.LastOffsetDelta) + 1
}

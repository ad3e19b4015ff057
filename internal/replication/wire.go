package replication

import (
	"encoding/binary"
	"errors"
	"fmt"

	pb "go.etcd.io/raft/v3/raftpb"

	"github.com/ferry-mq/ferry/internal/base"
)

// decoder reads the compact encodings of this package: unsigned varints,
// single bytes and length-prefixed byte strings. The first error sticks and
// every later read returns zero, so decode functions check err once at the
// end. It never allocates: byte strings are sub-slices of the input.
type decoder struct {
	b   []byte
	err error
}

var errTruncated = errors.New("truncated")

func (d *decoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
	d.b = nil
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail(errTruncated)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) u8() byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) < 1 {
		d.fail(errTruncated)
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) u32() uint32 {
	if d.err != nil {
		return 0
	}
	if len(d.b) < 4 {
		d.fail(errTruncated)
		return 0
	}
	v := binary.BigEndian.Uint32(d.b)
	d.b = d.b[4:]
	return v
}

func (d *decoder) u64() uint64 {
	if d.err != nil {
		return 0
	}
	if len(d.b) < 8 {
		d.fail(errTruncated)
		return 0
	}
	v := binary.BigEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

// bytes reads a uvarint length and that many bytes (a sub-slice whose
// capacity ends at its length, so appends by a holder never overwrite the
// input).
func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.fail(errTruncated)
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

// count reads a uvarint element count and checks that the remaining input
// could hold that many elements of at least minBytes each, and that it is at
// most limit: the caller may then allocate count elements.
func (d *decoder) count(minBytes, limit int) int {
	n := d.uvarint()
	if d.err != nil {
		return 0
	}
	if n > uint64(limit) || n*uint64(minBytes) > uint64(len(d.b)) {
		d.fail(fmt.Errorf("count %d exceeds what %d remaining bytes can hold (limit %d)", n, len(d.b), limit))
		return 0
	}
	return int(n)
}

func (d *decoder) ids() []uint64 {
	n := d.count(1, base.RaftConfStateNodesMax)
	if n == 0 {
		return nil
	}
	out := make([]uint64, n)
	for i := range out {
		out[i] = d.uvarint()
	}
	return out
}

func appendIDs(b []byte, ids []uint64) []byte {
	b = binary.AppendUvarint(b, uint64(len(ids)))
	for _, id := range ids {
		b = binary.AppendUvarint(b, id)
	}
	return b
}

func appendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// appendConfState encodes a ConfState: four id lists and the auto-leave
// flag.
func appendConfState(b []byte, cs *pb.ConfState) []byte {
	b = appendIDs(b, cs.GetVoters())
	b = appendIDs(b, cs.GetLearners())
	b = appendIDs(b, cs.GetVotersOutgoing())
	b = appendIDs(b, cs.GetLearnersNext())
	if cs.GetAutoLeave() {
		return append(b, 1)
	}
	return append(b, 0)
}

func (d *decoder) confState() *pb.ConfState {
	cs := &pb.ConfState{
		Voters:         d.ids(),
		Learners:       d.ids(),
		VotersOutgoing: d.ids(),
		LearnersNext:   d.ids(),
	}
	switch d.u8() {
	case 0:
		cs.AutoLeave = new(false)
	case 1:
		cs.AutoLeave = new(true)
	default:
		d.fail(errors.New("auto-leave flag is neither 0 nor 1"))
	}
	return cs
}

// appendSnapshotMeta encodes snapshot metadata for the StateStore.
func appendSnapshotMeta(b []byte, m *SnapshotMeta) []byte {
	b = binary.AppendUvarint(b, m.Index)
	b = binary.AppendUvarint(b, m.Term)
	b = appendConfState(b, m.ConfState)
	b = appendBytes(b, []byte(m.File))
	b = binary.AppendUvarint(b, m.RetainFrom)
	return binary.AppendUvarint(b, uint64(m.FirstOffset))
}

func (d *decoder) snapshotMeta() SnapshotMeta {
	return SnapshotMeta{
		Index:       d.uvarint(),
		Term:        d.uvarint(),
		ConfState:   d.confState(),
		File:        string(d.bytes()),
		RetainFrom:  d.uvarint(),
		FirstOffset: int64(d.uvarint()),
	}
}

func appendHardState(b []byte, hs *HardState) []byte {
	b = binary.AppendUvarint(b, hs.Term)
	b = binary.AppendUvarint(b, hs.Vote)
	return binary.AppendUvarint(b, hs.Commit)
}

func (d *decoder) hardState() HardState {
	return HardState{Term: d.uvarint(), Vote: d.uvarint(), Commit: d.uvarint()}
}

// EncodeHardState and DecodeHardState are the value encoding of a HardState
// in a key-value StateStore (the Pebble adapter uses them).
func EncodeHardState(hs HardState) []byte { return appendHardState(nil, &hs) }

func DecodeHardState(b []byte) (HardState, error) {
	d := decoder{b: b}
	hs := d.hardState()
	return hs, d.done("hard state")
}

// EncodeSnapshotMeta and DecodeSnapshotMeta are the value encoding of
// snapshot metadata in a key-value StateStore.
func EncodeSnapshotMeta(m SnapshotMeta) []byte { return appendSnapshotMeta(nil, &m) }

func DecodeSnapshotMeta(b []byte) (SnapshotMeta, error) {
	d := decoder{b: b}
	m := d.snapshotMeta()
	return m, d.done("snapshot metadata")
}

// done returns the decoding error, if any, or an error for trailing bytes.
func (d *decoder) done(what string) error {
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%d trailing bytes", len(d.b))
	}
	if d.err != nil {
		return base.Errorf(base.CodeCorrupt, "replication: decoding %s: %w", what, d.err)
	}
	return nil
}

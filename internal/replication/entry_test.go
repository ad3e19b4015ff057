package replication

import (
	"bytes"
	"testing"

	raft "go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/storage/log/batch"
)

// TestEncodeControlAllocatesOnceAtEveryVarintEdge: the buffer is sized up
// front with controlRecordBytesMax, so no append grows it, for payloads on
// both sides of every varint length step of the record's length fields,
// up to the largest payload a batch can hold.
func TestEncodeControlAllocatesOnceAtEveryVarintEdge(t *testing.T) {
	largest := base.BatchBytesMax - batch.HeaderSize - controlRecordBytesMax
	for _, n := range []int{0, 1, 63 - 14, 64 - 14, 63, 64, 8191 - 14, 8192 - 14, 8191, 8192, 1<<20 - 1, 1 << 20, largest} {
		payload := bytes.Repeat([]byte{7}, n)
		b := encodeControl(controlCommand, payload, 1)
		if want := batch.HeaderSize + controlRecordBytesMax + n; cap(b) != want {
			t.Errorf("payload of %d bytes: cap %d, want the %d bytes sized up front (the buffer grew)", n, cap(b), want)
		}
		if _, err := batch.Validate(b); err != nil {
			t.Fatalf("payload of %d bytes: %v", n, err)
		}
		typ, got, ok := decodeControl(b)
		if !ok || typ != controlCommand || !bytes.Equal(got, payload) {
			t.Fatalf("payload of %d bytes: decoded type %d ok %v, payload equal %v", n, typ, ok, bytes.Equal(got, payload))
		}
		if n <= 8192 {
			if allocs := testing.AllocsPerRun(10, func() { encodeControl(controlCommand, payload, 1) }); allocs != 1 {
				t.Errorf("payload of %d bytes: got %v allocations, want 1", n, allocs)
			}
		}
	}
}

// TestOwnCommandsApplyWithoutAParseOnlyAtTheirIndexAndTerm: fsmEntryOf
// takes a command from the batch's tail only for the entry this node
// proposed (same index and term); an entry of another term at that index
// (a newer leader replaced the proposal), a data batch and an entry
// without a pending proposal are parsed, and all agree with fsmEntry.
func TestOwnCommandsApplyWithoutAParseOnlyAtTheirIndexAndTerm(t *testing.T) {
	entry := func(index, term uint64, data []byte) *pb.Entry {
		return &pb.Entry{Index: new(index), Term: new(term), Data: data}
	}
	own := []byte("mine")
	g := &group{props: []*request{
		{kind: reqPropose, index: 5, term: 2, cmd: true, cmdLen: len(own)},
		{kind: reqPropose, index: 6, term: 2, cmd: true, cmdLen: len(own)},
		{kind: reqPropose, index: 7, term: 2}, // a data batch
	}}
	cases := []struct {
		name string
		e    *pb.Entry
		kind EntryKind
		data string
	}{
		{"own command", entry(5, 2, encodeControl(controlCommand, own, 1)), KindCommand, "mine"},
		{"another term's command at an own index", entry(6, 3, encodeControl(controlCommand, []byte("theirs!"), 1)), KindCommand, "theirs!"},
		{"data batch", entry(7, 2, dataBatch(t, "data")), KindBatch, ""},
		{"no pending proposal", entry(9, 2, encodeControl(controlCommand, []byte("late"), 1)), KindCommand, "late"},
	}
	pi := 0
	for _, tc := range cases {
		got := g.fsmEntryOf(tc.e, &pi)
		want := fsmEntry(tc.e)
		if got.Index != want.Index || got.Term != want.Term || got.Kind != want.Kind || !bytes.Equal(got.Data, want.Data) {
			t.Errorf("%s: got %+v, fsmEntry gives %+v", tc.name, got, want)
		}
		if got.Kind != tc.kind || (tc.kind == KindCommand && string(got.Data) != tc.data) {
			t.Errorf("%s: got kind %v data %q, want %v %q", tc.name, got.Kind, got.Data, tc.kind, tc.data)
		}
	}
}

// TestRaftCopiesProposedEntries pins what proposalBufs relies on: a leader's
// raft appends a copy of each proposed entry's data, so the proposer's
// buffer may be reused once Step returns. If an upgrade of etcd raft stops
// copying (its appendEntry has a TODO to that effect), this fails, and
// releaseProposal must move to after the entry applies.
func TestRaftCopiesProposedEntries(t *testing.T) {
	st := raft.NewMemoryStorage()
	st.ApplySnapshot(&pb.Snapshot{Metadata: &pb.SnapshotMetadata{Index: new(uint64(1)), Term: new(uint64(1)),
		ConfState: &pb.ConfState{Voters: []uint64{1}}}})
	rn, err := raft.NewRawNode(&raft.Config{ID: 1, ElectionTick: 10, HeartbeatTick: 1, Storage: st,
		MaxSizePerMsg: 1 << 20, MaxInflightMsgs: 16, DisableProposalForwarding: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := rn.Campaign(); err != nil {
		t.Fatal(err)
	}
	for rn.HasReady() { // the election and the new leader's empty entry
		rd := rn.Ready()
		st.Append(rd.Entries)
		rn.Advance(rd)
	}
	data := encodeControl(controlCommand, []byte("proposal"), 1)
	want := bytes.Clone(data)
	if err := rn.Step(&pb.Message{Type: pb.MsgProp.Enum(), From: new(uint64(1)), Entries: []*pb.Entry{{Data: data}}}); err != nil {
		t.Fatal(err)
	}
	for i := range data {
		data[i] = 0xa5 // the proposer's buffer is reused
	}
	rd := rn.Ready()
	if n := len(rd.Entries); n != 1 {
		t.Fatalf("Ready after one proposal: got %d entries, want 1", n)
	}
	if got := rd.Entries[0].GetData(); !bytes.Equal(got, want) {
		t.Fatalf("raft's entry after the proposer reused its buffer: got %x, want %x (raft no longer copies proposals)", got, want)
	}
}

// TestProposalBuffersAreRecycledUpToTheirBound: encodeCommand and
// copyProposal take buffers of proposalBufs' classes for proposals up to
// base.RaftProposalBufferBytesMax, the broker's largest batches included,
// and allocate larger ones to size, which the pool then drops.
func TestProposalBuffersAreRecycledUpToTheirBound(t *testing.T) {
	framing := batch.HeaderSize + controlRecordBytesMax
	for _, tc := range []struct {
		n       int
		wantCap int
	}{
		{0, proposalBufBytesMin},
		{1 << 10, proposalBufBytesMin},
		{base.RaftMessageBytesMax, base.RaftProposalBufferBytesMax},
		{base.RaftProposalBufferBytesMax - framing, base.RaftProposalBufferBytesMax},
		{base.RaftProposalBufferBytesMax - framing + 1, base.RaftProposalBufferBytesMax + 1},
	} {
		cmd := bytes.Repeat([]byte{3}, tc.n)
		b, buf := encodeCommand(cmd, 1)
		if cap(*buf) != tc.wantCap || &b[:1][0] != &(*buf)[:1][0] {
			t.Errorf("command of %d bytes: buffer of capacity %d, want %d, holding the batch", tc.n, cap(*buf), tc.wantCap)
		}
		if typ, got, ok := decodeControl(b); !ok || typ != controlCommand || !bytes.Equal(got, cmd) {
			t.Fatalf("command of %d bytes does not decode", tc.n)
		}
		r := &request{data: b, buf: buf}
		releaseProposal(r)
		if r.buf != nil || r.data != nil {
			t.Errorf("command of %d bytes: the request still refers to its buffer after release", tc.n)
		}
		data := bytes.Repeat([]byte{4}, tc.n+framing)
		c, cbuf := copyProposal(data)
		if !bytes.Equal(c, data) || cap(*cbuf) != tc.wantCap {
			t.Errorf("copy of %d bytes: equal %v, capacity %d, want %d", len(data), bytes.Equal(c, data), cap(*cbuf), tc.wantCap)
		}
	}
}

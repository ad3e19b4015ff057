package replication

import (
	"bytes"
	"io"
	"testing"

	pb "go.etcd.io/raft/v3/raftpb"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/base/vfs"
)

func sampleSnapshot(entries int) []byte {
	var buf bytes.Buffer
	w := newSnapWriter(&buf, &snapHeader{Group: 3, Index: 10, Term: 2, LeaderTerm: 4, RetainFrom: uint64(11 - entries), FirstOffset: 100,
		ConfState: &pb.ConfState{Voters: []uint64{1, 2, 3}, Learners: []uint64{4}, AutoLeave: new(false)}})
	w.Write(bytes.Repeat([]byte("fsm-state"), 100))
	for i := range entries {
		w.entry(2, encodeControl(controlCommand, []byte{byte(i)}, 0))
	}
	w.close()
	return buf.Bytes()
}

func TestSnapshotFileRoundTripsAndRefusesDamage(t *testing.T) {
	data := sampleSnapshot(3)
	sr, err := newSnapReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	fsm, err := io.ReadAll(sr)
	if err != nil || !bytes.Equal(fsm, bytes.Repeat([]byte("fsm-state"), 100)) {
		t.Fatalf("FSM section: got %d bytes, err %v", len(fsm), err)
	}
	n := 0
	for {
		term, e, ok, err := sr.nextEntry()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		if typ, p, ok := decodeControl(e); term != 2 || !ok || typ != controlCommand || !bytes.Equal(p, []byte{byte(n)}) {
			t.Errorf("entry %d: term %d type %d payload %v", n, term, typ, p)
		}
		n++
	}
	if n != 3 || sr.finish() != nil {
		t.Errorf("read %d entries, finish %v; want 3, nil", n, sr.finish())
	}
	for _, at := range []int{0, 12, len(data) / 2, len(data) - 1} {
		bad := bytes.Clone(data)
		bad[at] ^= 0x40
		sr, err := newSnapReader(bytes.NewReader(bad), int64(len(bad)))
		if err == nil {
			err = sr.finish()
		}
		if base.CodeOf(err) != base.CodeCorrupt {
			t.Errorf("byte %d flipped: got %v, want corrupt", at, err)
		}
	}
}

func TestSnapshotReaderStopsAtItsSizeBound(t *testing.T) {
	data := sampleSnapshot(2)
	if sr, err := newSnapReader(bytes.NewReader(data), int64(len(data))); err != nil || sr.finish() != nil {
		t.Fatalf("at exactly its size: %v", err)
	}
	sr, err := newSnapReader(bytes.NewReader(data), int64(len(data)-1))
	if err == nil {
		err = sr.finish()
	}
	if base.CodeOf(err) != base.CodeCorrupt {
		t.Errorf("one byte over the bound: got %v, want corrupt", err)
	}
}

func TestConfStateDecoderBoundsItsIDs(t *testing.T) {
	ids := make([]uint64, base.RaftConfStateNodesMax)
	for i := range ids {
		ids[i] = uint64(i + 1)
	}
	ok := appendConfState(nil, &pb.ConfState{Voters: ids})
	d := decoder{b: ok}
	if cs := d.confState(); d.done("conf state") != nil || len(cs.GetVoters()) != base.RaftConfStateNodesMax {
		t.Errorf("ConfState of RaftConfStateNodesMax voters refused: %v", d.err)
	}
	over := appendConfState(nil, &pb.ConfState{Voters: append(ids, uint64(len(ids)+1))})
	d = decoder{b: over}
	d.confState()
	if d.done("conf state") == nil {
		t.Errorf("ConfState of RaftConfStateNodesMax+1 voters accepted")
	}
}

// FuzzSnapshotFile checks the snapshot reader on arbitrary bytes (a file on
// disk or a stream from a peer): no panic, allocation bounded by the input.
func FuzzSnapshotFile(f *testing.F) {
	f.Add(sampleSnapshot(0))
	f.Add(sampleSnapshot(3))
	f.Add([]byte("FSNP\x01\x00\x00\x00\x05"))
	f.Fuzz(func(t *testing.T, data []byte) {
		sr, err := newSnapReader(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		_ = sr.finish()
	})
}

// FuzzStateRecord checks the decoder of SimpleState's records and of the
// values MetaState stores.
func FuzzStateRecord(f *testing.F) {
	hs := HardState{Term: 3, Vote: 2, Commit: 9}
	meta := SnapshotMeta{Index: 5, Term: 2, ConfState: &pb.ConfState{Voters: []uint64{1, 2}}, File: "x.snap", RetainFrom: 3, FirstOffset: 7}
	f.Add(encodeStateUpdates([]StateUpdate{{Group: 1, HardState: &hs, Snapshot: &meta}, {Group: 2, Delete: true}}))
	f.Add(EncodeHardState(hs))
	f.Add(EncodeSnapshotMeta(meta))
	f.Fuzz(func(t *testing.T, data []byte) {
		if ups, err := decodeStateUpdates(data); err == nil && len(ups) > len(data) {
			t.Fatalf("%d updates from %d bytes", len(ups), len(data))
		}
		if _, err := DecodeHardState(data); err != nil && base.CodeOf(err) != base.CodeCorrupt {
			t.Fatalf("hard state error without the corrupt code: %v", err)
		}
		if m, err := DecodeSnapshotMeta(data); err == nil {
			again, err := DecodeSnapshotMeta(EncodeSnapshotMeta(m))
			if err != nil || again.Index != m.Index || again.File != m.File {
				t.Fatalf("snapshot metadata does not round-trip: %+v %v", again, err)
			}
		}
	})
}

// FuzzSimpleLogRecovery opens a SimpleLog file of arbitrary bytes: it
// either refuses it or recovers a consistent log.
func FuzzSimpleLogRecovery(f *testing.F) {
	fsys := vfs.NewMem()
	l, _ := (&SimpleLogs{FS: fsys, Dir: "/l"}).OpenLog(1)
	l.Write(1, encodeControl(controlCommand, []byte("a"), 0))
	l.Write(2, encodeControl(controlCommand, []byte("b"), 0))
	(&SimpleLogs{FS: fsys}).SyncAll([]LogStore{l})
	file, _ := fsys.Open("/l/00000000000000000001.log")
	size, _ := file.Size()
	seed := make([]byte, size)
	file.ReadAt(seed, 0)
	f.Add(seed)
	f.Add(seed[:len(seed)-3])
	f.Fuzz(func(t *testing.T, data []byte) {
		fsys := vfs.NewMem()
		fsys.MkdirAll("/l", 0o755)
		w, _ := fsys.Create("/l/00000000000000000001.log")
		w.Write(data)
		w.Close()
		l, err := (&SimpleLogs{FS: fsys, Dir: "/l"}).OpenLog(1)
		if err != nil {
			return
		}
		defer l.Close()
		for i := l.FirstIndex(); i <= l.LastIndex(); i++ {
			if _, err := l.Entries(i, i+1, 1); err != nil {
				t.Fatalf("recovered entry %d unreadable: %v", i, err)
			}
		}
	})
}

// FuzzHandshake checks the handshake decoder.
func FuzzHandshake(f *testing.F) {
	f.Add(helloMsg{cluster: 1, from: 1, to: 2}.encode())
	f.Add(make([]byte, helloBytes))
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := decodeHello(data)
		if err == nil && !bytes.Equal(h.encode(), data) {
			t.Fatalf("accepted handshake does not re-encode to its bytes")
		}
	})
}

package replication

import (
	"bytes"
	"encoding/binary"
	"testing"

	"google.golang.org/protobuf/proto"

	pb "go.etcd.io/raft/v3/raftpb"

	"github.com/ferry-mq/ferry/internal/base"
)

func sampleBatch() *Batch {
	cmd := encodeControl(controlCommand, []byte("hello"), 1700000000000)
	return &Batch{
		Messages: []Envelope{
			{Group: 7, Msg: &pb.Message{Type: pb.MsgApp.Enum(), From: new(uint64(1)), To: new(uint64(2)), Term: new(uint64(3)),
				LogTerm: new(uint64(2)), Index: new(uint64(9)), Commit: new(uint64(8)),
				Entries: []*pb.Entry{
					{Type: pb.EntryNormal.Enum(), Term: new(uint64(3)), Index: new(uint64(10)), Data: cmd},
					{Type: pb.EntryNormal.Enum(), Term: new(uint64(3)), Index: new(uint64(11))},
					{Type: pb.EntryConfChangeV2.Enum(), Term: new(uint64(3)), Index: new(uint64(12)), Data: []byte{0x12, 0x02}},
				}}},
			{Group: 1 << 40, Msg: &pb.Message{Type: pb.MsgAppResp.Enum(), From: new(uint64(1)), To: new(uint64(2)), Term: new(uint64(5)),
				Index: new(uint64(4)), Reject: new(true), RejectHint: new(uint64(3)), LogTerm: new(uint64(2))}},
			{Group: 3, Stamp: 99, Msg: &pb.Message{Type: pb.MsgHeartbeat.Enum(), From: new(uint64(1)), To: new(uint64(2)), Term: new(uint64(5)),
				Commit: new(uint64(4)), Context: []byte("ctx")}},
			{Group: 4, Msg: &pb.Message{Type: pb.MsgPreVote.Enum(), From: new(uint64(1)), To: new(uint64(2)), Term: new(uint64(6)),
				Index: new(uint64(4)), LogTerm: new(uint64(5)), Vote: new(uint64(0))}},
		},
		Heartbeats: []Heartbeat{
			{Group: 5, Term: 2, Commit: 10, Stamp: 123456789},
			{Group: 6, Term: 3, Commit: 0, Stamp: 0, Resp: true, Quiesce: true},
		},
	}
}

func TestBatchCodecRoundTrips(t *testing.T) {
	in := sampleBatch()
	payload := appendBatch(nil, in)
	out, err := decodeBatch(payload, 1, 2)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if len(out.Messages) != len(in.Messages) || len(out.Heartbeats) != len(in.Heartbeats) {
		t.Fatalf("decoded %d messages and %d heartbeats, want %d and %d", len(out.Messages), len(out.Heartbeats), len(in.Messages), len(in.Heartbeats))
	}
	for i := range in.Messages {
		got, want := out.Messages[i], in.Messages[i]
		if got.Group != want.Group || got.Stamp != want.Stamp {
			t.Errorf("message %d: group/stamp got %d/%d, want %d/%d", i, got.Group, got.Stamp, want.Group, want.Stamp)
		}
		if !proto.Equal(normalize(got.Msg), normalize(want.Msg)) {
			t.Errorf("message %d:\ngot  %v\nwant %v", i, got.Msg, want.Msg)
		}
	}
	for i := range in.Heartbeats {
		if out.Heartbeats[i] != in.Heartbeats[i] {
			t.Errorf("heartbeat %d: got %+v, want %+v", i, out.Heartbeats[i], in.Heartbeats[i])
		}
	}
}

// normalize fills the zero-valued pointer fields so that proto.Equal
// compares values, not presence (the codec omits zeros).
func normalize(m *pb.Message) *pb.Message {
	c := proto.Clone(m).(*pb.Message)
	for _, p := range []**uint64{&c.Term, &c.LogTerm, &c.Index, &c.Commit, &c.Vote, &c.RejectHint} {
		if *p == nil {
			*p = new(uint64(0))
		}
	}
	if c.Reject == nil {
		c.Reject = new(false)
	}
	for _, e := range c.Entries {
		if e.Type == nil {
			e.Type = pb.EntryNormal.Enum()
		}
		if len(e.Data) == 0 {
			e.Data = nil
		}
	}
	if len(c.Context) == 0 {
		c.Context = nil
	}
	return c
}

func TestBatchCodecRefusesWhatRaftMustNotReceive(t *testing.T) {
	for _, typ := range []pb.MessageType{pb.MsgHup, pb.MsgProp, pb.MsgSnap, pb.MsgStorageAppend, pb.MsgUnreachable, pb.MessageType(99)} {
		b := &Batch{Messages: []Envelope{{Group: 1, Msg: &pb.Message{Type: typ.Enum()}}}}
		if _, err := decodeBatch(appendBatch(nil, b), 1, 2); base.CodeOf(err) != base.CodeCorrupt {
			t.Errorf("message type %v: got %v, want a corrupt error", typ, err)
		}
	}
	v1 := &Batch{Messages: []Envelope{{Group: 1, Msg: &pb.Message{Type: pb.MsgApp.Enum(),
		Entries: []*pb.Entry{{Type: pb.EntryConfChange.Enum(), Data: []byte{1}}}}}}}
	if _, err := decodeBatch(appendBatch(nil, v1), 1, 2); base.CodeOf(err) != base.CodeCorrupt {
		t.Errorf("v1 conf change entry: got %v, want a corrupt error", err)
	}
}

func TestFrameRefusesOversizedLengthBeforeAllocating(t *testing.T) {
	var hdr [frameHeaderBytes]byte
	frame := appendFrame(nil, framePing, func(b []byte) []byte { return append(b, 1) })
	if typ, p, err := readFrame(bytes.NewReader(frame), &hdr); err != nil || typ != framePing || !bytes.Equal(p, []byte{1}) {
		t.Fatalf("round trip: got %d %v %v", typ, p, err)
	}
	edge := make([]byte, frameHeaderBytes)
	binary.BigEndian.PutUint32(edge, base.TransportFrameBytesMax)
	// At the limit the length is accepted and the read fails for want of
	// bytes; one past it is refused from the header alone.
	if _, _, err := readFrame(bytes.NewReader(edge), &hdr); base.CodeOf(err) == base.CodeCorrupt {
		t.Errorf("frame of exactly TransportFrameBytesMax refused: %v", err)
	}
	binary.BigEndian.PutUint32(edge, base.TransportFrameBytesMax+1)
	if _, _, err := readFrame(bytes.NewReader(edge), &hdr); base.CodeOf(err) != base.CodeCorrupt {
		t.Errorf("frame of TransportFrameBytesMax+1: got %v, want corrupt", err)
	}
	frame[len(frame)-1] ^= 0xff
	if _, _, err := readFrame(bytes.NewReader(frame), &hdr); base.CodeOf(err) != base.CodeCorrupt {
		t.Errorf("frame with a flipped byte: got %v, want a CRC error", err)
	}
}

// FuzzDecodeBatch checks that the batch decoder never panics, allocates in
// proportion to its input, and that what it accepts re-encodes to the same
// bytes.
func FuzzDecodeBatch(f *testing.F) {
	f.Add(appendBatch(nil, sampleBatch()))
	f.Add(appendBatch(nil, &Batch{}))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add([]byte{1, 7, 0, 3, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := decodeBatch(data, 1, 2)
		if err != nil {
			if base.CodeOf(err) != base.CodeCorrupt {
				t.Fatalf("error without the corrupt code: %v", err)
			}
			return
		}
		if len(b.Messages)+len(b.Heartbeats) > len(data) {
			t.Fatalf("%d elements decoded from %d bytes", len(b.Messages)+len(b.Heartbeats), len(data))
		}
		again, err := decodeBatch(appendBatch(nil, b), 1, 2)
		if err != nil {
			t.Fatalf("re-encoding of an accepted batch does not decode: %v", err)
		}
		if len(again.Messages) != len(b.Messages) || len(again.Heartbeats) != len(b.Heartbeats) {
			t.Fatalf("re-decoded batch differs in size")
		}
		for i := range b.Messages {
			if !proto.Equal(normalize(b.Messages[i].Msg), normalize(again.Messages[i].Msg)) {
				t.Fatalf("message %d changed in a round trip", i)
			}
		}
	})
}

// FuzzReadFrame checks the frame reader on arbitrary bytes.
func FuzzReadFrame(f *testing.F) {
	f.Add(appendFrame(nil, frameBatch, func(b []byte) []byte { return appendBatch(b, sampleBatch()) }))
	f.Add([]byte{0, 0, 0, 1, 0, 0, 0, 0, 1})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		var hdr [frameHeaderBytes]byte
		r := bytes.NewReader(data)
		for {
			_, p, err := readFrame(r, &hdr)
			if err != nil {
				return
			}
			if len(p) > len(data) {
				t.Fatalf("payload of %d bytes from %d input bytes", len(p), len(data))
			}
		}
	})
}

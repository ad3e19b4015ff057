package replication

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"

	pb "go.etcd.io/raft/v3/raftpb"

	"github.com/ferry-mq/ferry/internal/base"
)

// A snapshot file, and the stream that ships one to a follower, is:
//
//	magic u32 "FSNP" | version u8 | header length u32 | header | header CRC32C u32
//	body:    FSM state as chunks [length u32 > 0][bytes], ended by [0 u32]
//	         retained log entries [1 u8][term uvarint][length uvarint][batch],
//	         ended by [0 u8]
//	trailer: CRC32C u32 of the body
//
// The header (uvarints) holds group, index, term, the sending leader's term
// (0 in a local file), the first retained index and its base offset, and
// the ConfState. Chunking lets FSM state of unknown length stream without
// seeking. A file written by a node's own snapshot has no entries (they are
// in its log); a received one carries the entries from RetainFrom to Index.
const (
	snapMagic          = 0x46534e50 // "FSNP"
	snapVersion        = 1
	snapHeaderBytesMax = 64 << 10 // a ConfState of RaftConfStateNodesMax ids fits many times
	snapFSMChunkBytes  = 64 << 10 // what the writer buffers per chunk; readers accept up to SnapshotChunkBytes
)

type snapHeader struct {
	Group       GroupID
	Index, Term uint64
	LeaderTerm  uint64
	RetainFrom  uint64
	FirstOffset int64
	ConfState   *pb.ConfState
}

func (h *snapHeader) encode() []byte {
	var body []byte
	body = binary.AppendUvarint(body, h.Group)
	body = binary.AppendUvarint(body, h.Index)
	body = binary.AppendUvarint(body, h.Term)
	body = binary.AppendUvarint(body, h.LeaderTerm)
	body = binary.AppendUvarint(body, h.RetainFrom)
	body = binary.AppendUvarint(body, uint64(h.FirstOffset))
	body = appendConfState(body, h.ConfState)
	out := make([]byte, 9, 9+len(body)+4)
	binary.BigEndian.PutUint32(out, snapMagic)
	out[4] = snapVersion
	binary.BigEndian.PutUint32(out[5:], uint32(len(body)))
	out = append(out, body...)
	return binary.BigEndian.AppendUint32(out, crc32.Checksum(body, castagnoli))
}

func snapCorrupt(format string, args ...any) error {
	return base.Errorf(base.CodeCorrupt, "replication: snapshot "+format, args...)
}

// snapReader parses a snapshot file or stream. Reads are bounded: the whole
// input by base.SnapshotBytesMax, a chunk by base.SnapshotChunkBytes, an
// entry by base.BatchBytesMax; nothing is allocated beyond what the input
// backs, one chunk or entry at a time.
type snapReader struct {
	r       *bufio.Reader
	limited *io.LimitedReader
	crc     hash.Hash32
	hdr     snapHeader
	chunk   int  // bytes left in the current FSM chunk
	fsmDone bool // the FSM section's end marker was read
	entDone bool
}

// newSnapReader reads a snapshot of at most size bytes (a file's size, or
// base.SnapshotBytesMax for a stream), which bounds every allocation.
func newSnapReader(r io.Reader, size int64) (*snapReader, error) {
	lr := &io.LimitedReader{R: r, N: min(size, base.SnapshotBytesMax)}
	s := &snapReader{limited: lr, r: bufio.NewReaderSize(lr, 64<<10), crc: crc32.New(castagnoli)}
	var fixed [9]byte
	if _, err := io.ReadFull(s.r, fixed[:]); err != nil {
		return nil, snapCorrupt("header: %w", err)
	}
	if binary.BigEndian.Uint32(fixed[:]) != snapMagic || fixed[4] != snapVersion {
		return nil, snapCorrupt("has magic %08x version %d, want %08x version %d", binary.BigEndian.Uint32(fixed[:]), fixed[4], snapMagic, snapVersion)
	}
	n := binary.BigEndian.Uint32(fixed[5:])
	if n > snapHeaderBytesMax {
		return nil, snapCorrupt("header of %d bytes exceeds %d", n, snapHeaderBytesMax)
	}
	body := make([]byte, n+4)
	if _, err := io.ReadFull(s.r, body); err != nil {
		return nil, snapCorrupt("header: %w", err)
	}
	if crc32.Checksum(body[:n], castagnoli) != binary.BigEndian.Uint32(body[n:]) {
		return nil, snapCorrupt("header fails its checksum")
	}
	d := decoder{b: body[:n]}
	s.hdr = snapHeader{Group: d.uvarint(), Index: d.uvarint(), Term: d.uvarint(), LeaderTerm: d.uvarint(),
		RetainFrom: d.uvarint(), FirstOffset: int64(d.uvarint()), ConfState: d.confState()}
	if err := d.done("snapshot header"); err != nil {
		return nil, err
	}
	if s.hdr.Index == 0 || s.hdr.RetainFrom == 0 || s.hdr.RetainFrom > s.hdr.Index+1 {
		return nil, snapCorrupt("header has index %d and retained entries from %d", s.hdr.Index, s.hdr.RetainFrom)
	}
	return s, nil
}

// remaining is how many bytes the input may still hold.
func (s *snapReader) remaining() int64 { return s.limited.N + int64(s.r.Buffered()) }

func (s *snapReader) readFull(b []byte) error {
	if _, err := io.ReadFull(s.r, b); err != nil {
		if s.limited.N == 0 {
			return snapCorrupt("exceeds %d bytes", base.SnapshotBytesMax)
		}
		return snapCorrupt("truncated: %w", err)
	}
	s.crc.Write(b)
	return nil
}

// Read reads the FSM state (io.Reader); io.EOF at its end.
func (s *snapReader) Read(p []byte) (int, error) {
	for s.chunk == 0 {
		if s.fsmDone {
			return 0, io.EOF
		}
		var l [4]byte
		if err := s.readFull(l[:]); err != nil {
			return 0, err
		}
		n := binary.BigEndian.Uint32(l[:])
		if n > base.SnapshotChunkBytes {
			return 0, snapCorrupt("chunk of %d bytes exceeds %d", n, base.SnapshotChunkBytes)
		}
		if n == 0 {
			s.fsmDone = true
			return 0, io.EOF
		}
		s.chunk = int(n)
	}
	p = p[:min(len(p), s.chunk)]
	if err := s.readFull(p); err != nil {
		return 0, err
	}
	s.chunk -= len(p)
	return len(p), nil
}

// skipFSM discards what remains of the FSM state.
func (s *snapReader) skipFSM() error {
	_, err := io.Copy(io.Discard, s)
	return err
}

// nextChunk returns the next raw FSM chunk (for re-streaming), nil at the
// end of the section. The slice is reused by the next call.
func (s *snapReader) nextChunk(buf []byte) ([]byte, error) {
	if s.fsmDone {
		return nil, nil
	}
	var l [4]byte
	if err := s.readFull(l[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(l[:])
	if n > base.SnapshotChunkBytes || int64(n) > s.remaining() {
		return nil, snapCorrupt("chunk of %d bytes exceeds %d or what remains", n, base.SnapshotChunkBytes)
	}
	if n == 0 {
		s.fsmDone = true
		return nil, nil
	}
	buf = append(buf[:0], make([]byte, n)...)
	return buf, s.readFull(buf)
}

func (s *snapReader) uvarint() (uint64, error) {
	var b [binary.MaxVarintLen64]byte
	for i := range b {
		if err := s.readFull(b[i : i+1]); err != nil {
			return 0, err
		}
		if b[i] < 0x80 {
			v, n := binary.Uvarint(b[:i+1])
			if n <= 0 {
				return 0, snapCorrupt("bad varint")
			}
			return v, nil
		}
	}
	return 0, snapCorrupt("varint too long")
}

// nextEntry returns the next retained entry; ok is false after the last.
// It skips whatever FSM state was not read.
func (s *snapReader) nextEntry() (term uint64, data []byte, ok bool, err error) {
	if !s.fsmDone {
		if err := s.skipFSM(); err != nil {
			return 0, nil, false, err
		}
	}
	if s.entDone {
		return 0, nil, false, nil
	}
	var tag [1]byte
	if err := s.readFull(tag[:]); err != nil {
		return 0, nil, false, err
	}
	switch tag[0] {
	case 0:
		s.entDone = true
		return 0, nil, false, nil
	case 1:
	default:
		return 0, nil, false, snapCorrupt("entry tag %d", tag[0])
	}
	if term, err = s.uvarint(); err != nil {
		return 0, nil, false, err
	}
	n, err := s.uvarint()
	if err != nil {
		return 0, nil, false, err
	}
	if n > base.BatchBytesMax || int64(n) > s.remaining() {
		return 0, nil, false, snapCorrupt("entry of %d bytes exceeds what remains", n)
	}
	data = make([]byte, n)
	return term, data, true, s.readFull(data)
}

// finish reads the remaining entries and the trailer and checks the
// checksum; the input must end there.
func (s *snapReader) finish() error {
	for {
		_, _, ok, err := s.nextEntry()
		if err != nil {
			return err
		}
		if !ok {
			break
		}
	}
	want := s.crc.Sum32()
	var t [4]byte
	if _, err := io.ReadFull(s.r, t[:]); err != nil {
		return snapCorrupt("trailer: %w", err)
	}
	if got := binary.BigEndian.Uint32(t[:]); got != want {
		return snapCorrupt("body checksum %08x, trailer says %08x", want, got)
	}
	if _, err := s.r.ReadByte(); !errors.Is(err, io.EOF) {
		return snapCorrupt("has bytes after its trailer")
	}
	return nil
}

// snapWriter writes a snapshot: header, then FSM state through Write (which
// chunks it), then entries, then close.
type snapWriter struct {
	w     io.Writer
	crc   hash.Hash32
	buf   []byte // FSM bytes not yet written as a chunk
	err   error
	inFSM bool
	fsm   uint64 // FSM state bytes taken by Write
}

func newSnapWriter(w io.Writer, h *snapHeader) *snapWriter {
	s := &snapWriter{w: w, crc: crc32.New(castagnoli), inFSM: true}
	_, s.err = w.Write(h.encode())
	return s
}

func (s *snapWriter) body(b []byte) {
	if s.err != nil {
		return
	}
	s.crc.Write(b)
	_, s.err = s.w.Write(b)
}

func (s *snapWriter) flushChunk() {
	if len(s.buf) == 0 {
		return
	}
	s.body(binary.BigEndian.AppendUint32(nil, uint32(len(s.buf))))
	s.body(s.buf)
	s.buf = s.buf[:0]
}

// Write takes FSM state.
func (s *snapWriter) Write(p []byte) (int, error) {
	base.Assert(s.inFSM, "snapshot FSM state written after entries")
	n := len(p)
	s.fsm += uint64(n)
	for len(p) > 0 {
		k := min(len(p), snapFSMChunkBytes-len(s.buf))
		s.buf = append(s.buf, p[:k]...)
		p = p[k:]
		if len(s.buf) == snapFSMChunkBytes {
			s.flushChunk()
		}
	}
	return n, s.err
}

// rawChunk writes an FSM chunk as it came from another snapshot.
func (s *snapWriter) rawChunk(c []byte) {
	s.flushChunk()
	s.body(binary.BigEndian.AppendUint32(nil, uint32(len(c))))
	s.body(c)
}

func (s *snapWriter) endFSM() {
	if s.inFSM {
		s.flushChunk()
		s.body([]byte{0, 0, 0, 0})
		s.inFSM = false
	}
}

func (s *snapWriter) entry(term uint64, data []byte) {
	s.endFSM()
	b := []byte{1}
	b = binary.AppendUvarint(b, term)
	b = binary.AppendUvarint(b, uint64(len(data)))
	s.body(b)
	s.body(data)
}

// close ends the sections and writes the trailer.
func (s *snapWriter) close() error {
	s.endFSM()
	s.body([]byte{0})
	if s.err == nil {
		_, s.err = s.w.Write(binary.BigEndian.AppendUint32(nil, s.crc.Sum32()))
	}
	if s.err != nil {
		return fmt.Errorf("writing snapshot: %w", s.err)
	}
	return nil
}

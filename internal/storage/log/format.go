package log

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"

	"github.com/ferry-mq/ferry/internal/base"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func crc(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// File names. Segment, offset index and time index files share the
// segment's base index, zero-padded so that names sort as numbers.
const (
	segExt            = ".seg"
	idxExt            = ".idx"
	tixExt            = ".tix"
	checkpointName    = "checkpoint"
	checkpointTmpName = "checkpoint.tmp"
	lockName          = "LOCK"
)

func segFileName(baseIndex uint64, ext string) string { return fmt.Sprintf("%020d%s", baseIndex, ext) }

// Segment header: the first segHeaderSize bytes of every segment file.
//
//	0 magic      [8]byte "ferryseg"
//	8 version    uint32  = 1
//	12 baseIndex  uint64
//	20 baseOffset int64
//	28 createdMs  int64   Unix ms from the log's Clock
//	36 crc        uint32  CRC-32C of bytes [0:36]
const (
	segHeaderSize = 40
	segVersion    = 1
	segMagic      = "ferryseg"
)

type segHeader struct {
	baseIndex  uint64
	baseOffset int64
	createdMs  int64
}

func (h segHeader) encode() []byte {
	b := make([]byte, segHeaderSize)
	copy(b, segMagic)
	binary.BigEndian.PutUint32(b[8:], segVersion)
	binary.BigEndian.PutUint64(b[12:], h.baseIndex)
	binary.BigEndian.PutUint64(b[20:], uint64(h.baseOffset))
	binary.BigEndian.PutUint64(b[28:], uint64(h.createdMs))
	binary.BigEndian.PutUint32(b[36:], crc(b[:36]))
	return b
}

func decodeSegHeader(b []byte) (segHeader, error) {
	if len(b) < segHeaderSize {
		return segHeader{}, fmt.Errorf("segment header needs %d bytes, have %d", segHeaderSize, len(b))
	}
	if string(b[:8]) != segMagic {
		return segHeader{}, fmt.Errorf("segment magic %q, want %q", b[:8], segMagic)
	}
	if got, want := binary.BigEndian.Uint32(b[36:]), crc(b[:36]); got != want {
		return segHeader{}, fmt.Errorf("segment header crc %#08x, computed %#08x", got, want)
	}
	if v := binary.BigEndian.Uint32(b[8:]); v != segVersion {
		return segHeader{}, fmt.Errorf("segment format version %d, this build reads %d", v, segVersion)
	}
	h := segHeader{
		baseIndex:  binary.BigEndian.Uint64(b[12:]),
		baseOffset: int64(binary.BigEndian.Uint64(b[20:])),
		createdMs:  int64(binary.BigEndian.Uint64(b[28:])),
	}
	if h.baseIndex == 0 || h.baseOffset < 0 {
		return segHeader{}, fmt.Errorf("segment header with base index %d, base offset %d", h.baseIndex, h.baseOffset)
	}
	return h, nil
}

// indexEntry is one entry of the sparse offset index: the batch at file
// position pos has Index baseIndex+relIndex, base offset
// baseOffset+relOffset, and Raft term term. On disk: relIndex uint32,
// relOffset uint32, pos uint32, term uint64, big-endian (idxEntrySize
// bytes). Positions fit 32 bits because segments are at most
// SegmentBytesMax; relative offsets because a batch's offsets are one per
// record (lastOffsetDelta = recordCount-1, checked at append) and a record
// takes at least 7 bytes.
type indexEntry struct {
	relIndex  uint32
	relOffset uint32
	pos       uint32
	term      uint64
}

const idxEntrySize = 20

func appendIndexEntry(b []byte, e indexEntry) []byte {
	b = binary.BigEndian.AppendUint32(b, e.relIndex)
	b = binary.BigEndian.AppendUint32(b, e.relOffset)
	b = binary.BigEndian.AppendUint32(b, e.pos)
	return binary.BigEndian.AppendUint64(b, e.term)
}

// decodeIndex decodes an offset index file and checks what can be checked
// without the segment: the size, that every field increases (term: does
// not decrease), that the first entry is the segment's first batch, and
// that no position reaches segSize. The caller bounds len(b) by
// IndexBytesMax before reading it.
func decodeIndex(b []byte, segSize int64) ([]indexEntry, error) {
	if len(b)%idxEntrySize != 0 {
		return nil, fmt.Errorf("offset index of %d bytes is not a multiple of %d", len(b), idxEntrySize)
	}
	if len(b) > base.IndexBytesMax {
		return nil, fmt.Errorf("offset index of %d bytes is over the limit of %d", len(b), base.IndexBytesMax)
	}
	out := make([]indexEntry, 0, len(b)/idxEntrySize)
	for p := 0; p < len(b); p += idxEntrySize {
		e := indexEntry{
			relIndex:  binary.BigEndian.Uint32(b[p:]),
			relOffset: binary.BigEndian.Uint32(b[p+4:]),
			pos:       binary.BigEndian.Uint32(b[p+8:]),
			term:      binary.BigEndian.Uint64(b[p+12:]),
		}
		if len(out) == 0 {
			if e.relIndex != 0 || e.relOffset != 0 || e.pos != segHeaderSize {
				return nil, fmt.Errorf("offset index starts at (%d, %d, %d), not the first batch", e.relIndex, e.relOffset, e.pos)
			}
		} else if prev := out[len(out)-1]; e.relIndex <= prev.relIndex || e.relOffset <= prev.relOffset || e.pos <= prev.pos || e.term < prev.term {
			return nil, fmt.Errorf("offset index entry %d %+v does not follow %+v", len(out), e, prev)
		}
		if int64(e.pos) >= segSize {
			return nil, fmt.Errorf("offset index entry %d points at byte %d of a %d-byte segment", len(out), e.pos, segSize)
		}
		if e.term > maxTerm {
			return nil, fmt.Errorf("offset index entry %d has term %d, over %d", len(out), e.term, uint64(maxTerm))
		}
		out = append(out, e)
	}
	return out, nil
}

// timeEntry is one entry of the time index: maxTs is the largest batch
// maxTimestamp of the segment's batches up to and including the one at
// relative offset relOffset. Entries are added when that running maximum
// grows, at the points where an offset index entry is added, and once more
// when the segment rolls. On disk: maxTs int64, relOffset uint32.
type timeEntry struct {
	maxTs     int64
	relOffset uint32
}

const tixEntrySize = 12

func appendTimeEntry(b []byte, e timeEntry) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(e.maxTs))
	return binary.BigEndian.AppendUint32(b, e.relOffset)
}

// decodeTimeIndex decodes a time index file; both fields must increase.
func decodeTimeIndex(b []byte) ([]timeEntry, error) {
	if len(b)%tixEntrySize != 0 {
		return nil, fmt.Errorf("time index of %d bytes is not a multiple of %d", len(b), tixEntrySize)
	}
	if len(b) > base.IndexBytesMax {
		return nil, fmt.Errorf("time index of %d bytes is over the limit of %d", len(b), base.IndexBytesMax)
	}
	out := make([]timeEntry, 0, len(b)/tixEntrySize)
	for p := 0; p < len(b); p += tixEntrySize {
		e := timeEntry{maxTs: int64(binary.BigEndian.Uint64(b[p:])), relOffset: binary.BigEndian.Uint32(b[p+8:])}
		if n := len(out); n > 0 && (e.maxTs <= out[n-1].maxTs || e.relOffset <= out[n-1].relOffset) {
			return nil, fmt.Errorf("time index entry %d %+v does not follow %+v", n, e, out[n-1])
		}
		out = append(out, e)
	}
	return out, nil
}

// checkpoint is the content of the checkpoint file: the log's logical start
// and its recovery point, below which everything is known durable.
//
//	0 magic       [8]byte "ferryckp"
//	8 version     uint32 = 1
//	12 flags      uint32 (bit 0: a Reset is in progress)
//	16 firstIndex  uint64
//	24 firstOffset int64
//	32 rpSegment   uint64 base index of the segment of the recovery point
//	40 rpPos       uint64 byte position in that segment
//	48 crc         uint32 CRC-32C of bytes [0:48]
type checkpoint struct {
	resetPending bool
	firstIndex   uint64
	firstOffset  int64
	rpSegment    uint64
	rpPos        int64
}

const (
	checkpointSize    = 52
	checkpointVersion = 1
	checkpointMagic   = "ferryckp"
	flagResetPending  = 1
)

func (c checkpoint) encode() []byte {
	b := make([]byte, checkpointSize)
	copy(b, checkpointMagic)
	binary.BigEndian.PutUint32(b[8:], checkpointVersion)
	if c.resetPending {
		binary.BigEndian.PutUint32(b[12:], flagResetPending)
	}
	binary.BigEndian.PutUint64(b[16:], c.firstIndex)
	binary.BigEndian.PutUint64(b[24:], uint64(c.firstOffset))
	binary.BigEndian.PutUint64(b[32:], c.rpSegment)
	binary.BigEndian.PutUint64(b[40:], uint64(c.rpPos))
	binary.BigEndian.PutUint32(b[48:], crc(b[:48]))
	return b
}

func decodeCheckpoint(b []byte) (checkpoint, error) {
	if len(b) != checkpointSize {
		return checkpoint{}, fmt.Errorf("checkpoint of %d bytes, want %d", len(b), checkpointSize)
	}
	if string(b[:8]) != checkpointMagic {
		return checkpoint{}, fmt.Errorf("checkpoint magic %q", b[:8])
	}
	if got, want := binary.BigEndian.Uint32(b[48:]), crc(b[:48]); got != want {
		return checkpoint{}, fmt.Errorf("checkpoint crc %#08x, computed %#08x", got, want)
	}
	if v := binary.BigEndian.Uint32(b[8:]); v != checkpointVersion {
		return checkpoint{}, fmt.Errorf("checkpoint version %d, this build reads %d", v, checkpointVersion)
	}
	flags := binary.BigEndian.Uint32(b[12:])
	c := checkpoint{
		resetPending: flags&flagResetPending != 0,
		firstIndex:   binary.BigEndian.Uint64(b[16:]),
		firstOffset:  int64(binary.BigEndian.Uint64(b[24:])),
		rpSegment:    binary.BigEndian.Uint64(b[32:]),
		rpPos:        int64(binary.BigEndian.Uint64(b[40:])),
	}
	if flags&^flagResetPending != 0 || c.firstIndex == 0 || c.firstOffset < 0 || c.rpPos < segHeaderSize {
		return checkpoint{}, fmt.Errorf("checkpoint fields out of range: %+v flags %#x", c, flags)
	}
	return c, nil
}

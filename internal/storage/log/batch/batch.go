package batch

import (
	"encoding/binary"
	"hash/crc32"

	"github.com/ferry-mq/ferry/internal/base"
)

// Field positions of the v2 header.
const (
	offBaseOffset      = 0
	offLength          = 8
	offEpoch           = 12
	offMagic           = 16
	offCRC             = 17
	offAttributes      = 21
	offLastOffsetDelta = 23
	offBaseTimestamp   = 27
	offMaxTimestamp    = 35
	offProducerID      = 43
	offProducerEpoch   = 51
	offBaseSequence    = 53
	offRecordCount     = 57
)

const (
	// HeaderSize is the size of a v2 batch header; records follow it.
	HeaderSize = 61
	// LogOverhead is the part of the header before and including
	// batchLength, which batchLength does not count.
	LogOverhead = 12
	// CRCStart is where the bytes covered by the CRC begin.
	CRCStart = offAttributes
	// Magic is the only format version Ferry reads and writes.
	Magic = 2
	// RecordSizeMin is the fewest bytes a record takes: its length,
	// attributes, timestamp delta, offset delta, key length, value length
	// and header count, one varint byte each (a null key and value, no
	// headers, deltas under 64).
	RecordSizeMin = 7
)

// Attributes are the batch attribute bits.
type Attributes int16

// Compression codecs in attribute bits 0-2.
const (
	CompressionNone   = 0
	CompressionGzip   = 1
	CompressionSnappy = 2
	CompressionLZ4    = 3
	CompressionZstd   = 4

	compressionMask = 0x07
)

const (
	// AttrLogAppendTime is bit 3: timestamps are the broker's append time.
	AttrLogAppendTime Attributes = 1 << 3
	// AttrTransactional is bit 4.
	AttrTransactional Attributes = 1 << 4
	// AttrControl is bit 5: the batch holds one control record.
	AttrControl Attributes = 1 << 5
)

// Compression returns the codec number of attribute bits 0-2.
func (a Attributes) Compression() int { return int(a) & compressionMask }

// IsControl reports bit 5.
func (a Attributes) IsControl() bool { return a&AttrControl != 0 }

// IsTransactional reports bit 4.
func (a Attributes) IsTransactional() bool { return a&AttrTransactional != 0 }

// Header is a decoded v2 batch header.
type Header struct {
	BaseOffset      int64
	Length          int32 // batchLength: the batch's size minus LogOverhead
	Epoch           int32 // partitionLeaderEpoch; in Ferry's log, the Raft term
	Magic           int8
	CRC             uint32
	Attributes      Attributes
	LastOffsetDelta int32
	BaseTimestamp   int64
	MaxTimestamp    int64
	ProducerID      int64
	ProducerEpoch   int16
	BaseSequence    int32
	RecordCount     int32
}

// Size returns the whole batch's size in bytes, header included.
func (h *Header) Size() int { return int(h.Length) + LogOverhead }

// LastOffset returns the offset of the batch's last record.
func (h *Header) LastOffset() int64 { return h.BaseOffset + int64(h.LastOffsetDelta) }

// NextOffset returns the offset that follows the batch.
func (h *Header) NextOffset() int64 { return h.BaseOffset + int64(h.LastOffsetDelta) + 1 }

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Checksum returns the CRC-32C of b, the bytes a batch's crc field covers
// (batch[CRCStart:]).
func Checksum(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// errCorrupt returns a CodeCorrupt error: the bytes fail a structure check.
func errCorrupt(format string, args ...any) error {
	return base.Errorf(base.CodeCorrupt, "batch: "+format, args...)
}

// ParseHeader decodes and checks the header at the start of b, which may
// hold more bytes than the batch (a read of several batches) or fewer (only
// the header). It checks the magic, that batchLength fits the header and
// BatchBytesMax, and that the counts are not negative and within
// BatchRecordsMax; not the CRC (see Validate). Errors are CodeCorrupt, or
// CodeTooLarge for a batch over BatchBytesMax.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderSize {
		return Header{}, errCorrupt("header needs %d bytes, have %d", HeaderSize, len(b))
	}
	h := Header{
		BaseOffset:      int64(binary.BigEndian.Uint64(b[offBaseOffset:])),
		Length:          int32(binary.BigEndian.Uint32(b[offLength:])),
		Epoch:           int32(binary.BigEndian.Uint32(b[offEpoch:])),
		Magic:           int8(b[offMagic]),
		CRC:             binary.BigEndian.Uint32(b[offCRC:]),
		Attributes:      Attributes(binary.BigEndian.Uint16(b[offAttributes:])),
		LastOffsetDelta: int32(binary.BigEndian.Uint32(b[offLastOffsetDelta:])),
		BaseTimestamp:   int64(binary.BigEndian.Uint64(b[offBaseTimestamp:])),
		MaxTimestamp:    int64(binary.BigEndian.Uint64(b[offMaxTimestamp:])),
		ProducerID:      int64(binary.BigEndian.Uint64(b[offProducerID:])),
		ProducerEpoch:   int16(binary.BigEndian.Uint16(b[offProducerEpoch:])),
		BaseSequence:    int32(binary.BigEndian.Uint32(b[offBaseSequence:])),
		RecordCount:     int32(binary.BigEndian.Uint32(b[offRecordCount:])),
	}
	switch {
	case h.Magic != Magic:
		return h, errCorrupt("magic %d, want %d", h.Magic, Magic)
	case h.Length < HeaderSize-LogOverhead:
		return h, errCorrupt("batchLength %d is shorter than the header", h.Length)
	case int64(h.Length)+LogOverhead > base.BatchBytesMax:
		return h, base.Errorf(base.CodeTooLarge, "batch: %d bytes, over the limit of %d", int64(h.Length)+LogOverhead, base.BatchBytesMax)
	case h.LastOffsetDelta < 0:
		return h, errCorrupt("lastOffsetDelta %d is negative", h.LastOffsetDelta)
	case h.RecordCount < 0 || h.RecordCount > base.BatchRecordsMax:
		return h, errCorrupt("recordCount %d outside [0, %d]", h.RecordCount, base.BatchRecordsMax)
	case h.BaseOffset < 0:
		return h, errCorrupt("baseOffset %d is negative", h.BaseOffset)
	}
	return h, nil
}

// CheckCRC checks that b is exactly one batch whose header parses and whose
// CRC matches, without walking its records: for bytes that were fully
// validated once (when written) and are read back, where the CRC catches
// damage at a fraction of Validate's cost.
func CheckCRC(b []byte) (Header, error) {
	h, err := ParseHeader(b)
	if err != nil {
		return h, err
	}
	if h.Size() != len(b) {
		return h, errCorrupt("batchLength says %d bytes, have %d", h.Size(), len(b))
	}
	if got := Checksum(b[CRCStart:]); got != h.CRC {
		return h, errCorrupt("crc %#08x, computed %#08x", h.CRC, got)
	}
	return h, nil
}

// Validate checks that b is exactly one well-formed batch: the header as
// ParseHeader, len(b) equal to the batch's size, the CRC, and, for an
// uncompressed batch, that its records decode, number recordCount, and have
// increasing offset deltas no greater than lastOffsetDelta. A compressed
// batch is checked up to its CRC only. The work is linear in len(b) and
// nothing is allocated on success.
func Validate(b []byte) (Header, error) {
	h, err := CheckCRC(b)
	if err != nil || h.Attributes.Compression() != CompressionNone {
		return h, err
	}
	it := newIter(b[HeaderSize:], h)
	for {
		if _, ok := it.Next(); !ok {
			break
		}
	}
	return h, it.Err()
}

// Peek helpers read one field of a batch whose header ParseHeader accepted.

// BaseOffset returns the batch's baseOffset field.
func BaseOffset(b []byte) int64 { return int64(binary.BigEndian.Uint64(b[offBaseOffset:])) }

// Epoch returns the batch's partitionLeaderEpoch field.
func Epoch(b []byte) int32 { return int32(binary.BigEndian.Uint32(b[offEpoch:])) }

// SetBaseOffset overwrites the batch's baseOffset. The field lies outside
// the CRC, so the checksum stays valid.
func SetBaseOffset(b []byte, offset int64) {
	binary.BigEndian.PutUint64(b[offBaseOffset:], uint64(offset))
}

// SetEpoch overwrites the batch's partitionLeaderEpoch, which lies outside
// the CRC.
func SetEpoch(b []byte, epoch int32) {
	binary.BigEndian.PutUint32(b[offEpoch:], uint32(epoch))
}

package batch

import (
	"encoding/binary"
	"math"

	"github.com/ferry-mq/ferry/internal/base"
)

// RecordHeader is one record header for the Builder. A nil Value is
// written as null (length -1); use an empty non-nil slice for an empty one.
type RecordHeader struct {
	Key   []byte
	Value []byte
}

// Builder encodes one uncompressed batch at a time onto a caller's buffer,
// so that a producer reusing its buffer allocates nothing per record. Records
// get consecutive offset deltas from 0. The zero Builder is ready for Begin.
//
//	var bld batch.Builder
//	bld.Begin(buf[:0], batch.Header{ProducerID: -1, BaseSequence: -1})
//	bld.Add(ts, key, value, nil)
//	buf, err = bld.Finish()
type Builder struct {
	buf    []byte
	start  int // where the batch under construction begins in buf
	h      Header
	count  int32
	open   bool
	failed error
}

// Begin starts a batch at the end of dst (which it appends to). h supplies
// BaseOffset, Epoch, Attributes (compression bits must be 0),
// ProducerID, ProducerEpoch and BaseSequence; the other fields are computed.
func (b *Builder) Begin(dst []byte, h Header) {
	*b = Builder{buf: dst, start: len(dst), h: h, open: true}
	if h.Attributes.Compression() != CompressionNone {
		b.failed = base.Errorf(base.CodeNotSupported, "batch: the builder writes only uncompressed batches")
	}
	b.buf = append(b.buf, make([]byte, HeaderSize)...)
}

// Len returns the size the batch has so far.
func (b *Builder) Len() int { return len(b.buf) - b.start }

// Add appends a record with absolute timestamp ts (ms). A nil key or value
// is written as null. It fails with CodeTooLarge, leaving the batch as it
// was, when the record would take the batch over BatchBytesMax or
// BatchRecordsMax records.
func (b *Builder) Add(ts int64, key, value []byte, headers []RecordHeader) error {
	base.Assert(b.open, "Builder.Add without Begin")
	if b.failed != nil {
		return b.failed
	}
	if b.count == 0 {
		b.h.BaseTimestamp, b.h.MaxTimestamp = ts, ts
	}
	if len(headers) > base.RecordHeadersMax {
		return base.Errorf(base.CodeTooLarge, "batch: %d record headers, over the limit of %d", len(headers), base.RecordHeadersMax)
	}
	tsDelta := ts - b.h.BaseTimestamp
	bodyLen := 1 + varintLen(tsDelta) + varintLen(int64(b.count)) +
		bytesLen(key) + bytesLen(value) + varintLen(int64(len(headers)))
	for _, h := range headers {
		bodyLen += bytesLen(h.Key) + bytesLen(h.Value)
	}
	total := varintLen(int64(bodyLen)) + bodyLen
	if b.Len()+total > base.BatchBytesMax || b.count >= base.BatchRecordsMax || b.count == math.MaxInt32 {
		return base.Errorf(base.CodeTooLarge, "batch: adding a %d-byte record to %d bytes and %d records exceeds the limits (%d bytes, %d records)",
			total, b.Len(), b.count, base.BatchBytesMax, base.BatchRecordsMax)
	}
	b.buf = binary.AppendVarint(b.buf, int64(bodyLen))
	b.buf = append(b.buf, 0) // record attributes: unused in v2
	b.buf = binary.AppendVarint(b.buf, tsDelta)
	b.buf = binary.AppendVarint(b.buf, int64(b.count))
	b.buf = appendBytes(b.buf, key)
	b.buf = appendBytes(b.buf, value)
	b.buf = binary.AppendVarint(b.buf, int64(len(headers)))
	for _, h := range headers {
		if h.Key == nil {
			h.Key = []byte{} // header keys are never null on the wire
		}
		b.buf = appendBytes(b.buf, h.Key)
		b.buf = appendBytes(b.buf, h.Value)
	}
	b.count++
	b.h.MaxTimestamp = max(b.h.MaxTimestamp, ts)
	return nil
}

// Finish writes the header (lengths, counts, timestamps, CRC) and returns
// the buffer given to Begin with the batch appended. A batch needs at least
// one record.
func (b *Builder) Finish() ([]byte, error) {
	base.Assert(b.open, "Builder.Finish without Begin")
	b.open = false
	if b.failed != nil {
		return b.buf[:b.start], b.failed
	}
	if b.count == 0 {
		return b.buf[:b.start], base.Errorf(base.CodeInvalidArgument, "batch: a batch needs at least one record")
	}
	h := b.h
	h.Length = int32(b.Len() - LogOverhead)
	h.Magic = Magic
	h.LastOffsetDelta = b.count - 1
	h.RecordCount = b.count
	out := b.buf[b.start:]
	putHeader(out, &h)
	binary.BigEndian.PutUint32(out[offCRC:], Checksum(out[CRCStart:]))
	return b.buf, nil
}

// putHeader writes every header field but the CRC.
func putHeader(b []byte, h *Header) {
	binary.BigEndian.PutUint64(b[offBaseOffset:], uint64(h.BaseOffset))
	binary.BigEndian.PutUint32(b[offLength:], uint32(h.Length))
	binary.BigEndian.PutUint32(b[offEpoch:], uint32(h.Epoch))
	b[offMagic] = byte(h.Magic)
	binary.BigEndian.PutUint16(b[offAttributes:], uint16(h.Attributes))
	binary.BigEndian.PutUint32(b[offLastOffsetDelta:], uint32(h.LastOffsetDelta))
	binary.BigEndian.PutUint64(b[offBaseTimestamp:], uint64(h.BaseTimestamp))
	binary.BigEndian.PutUint64(b[offMaxTimestamp:], uint64(h.MaxTimestamp))
	binary.BigEndian.PutUint64(b[offProducerID:], uint64(h.ProducerID))
	binary.BigEndian.PutUint16(b[offProducerEpoch:], uint16(h.ProducerEpoch))
	binary.BigEndian.PutUint32(b[offBaseSequence:], uint32(h.BaseSequence))
	binary.BigEndian.PutUint32(b[offRecordCount:], uint32(h.RecordCount))
}

// varintLen returns the size of v as a zig-zag varint.
func varintLen(v int64) int {
	u := uint64(v<<1) ^ uint64(v>>63)
	n := 1
	for u >= 0x80 {
		u >>= 7
		n++
	}
	return n
}

func bytesLen(v []byte) int {
	if v == nil {
		return 1
	}
	return varintLen(int64(len(v))) + len(v)
}

func appendBytes(dst, v []byte) []byte {
	if v == nil {
		return binary.AppendVarint(dst, -1)
	}
	dst = binary.AppendVarint(dst, int64(len(v)))
	return append(dst, v...)
}

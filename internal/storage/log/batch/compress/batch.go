package compress

import (
	"encoding/binary"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/storage/log/batch"
)

// Offsets of the header fields DecompressBatch rewrites (batch/doc.go has
// the layout).
const (
	offLength     = 8
	offCRC        = 17
	offAttributes = 21
	codecBits     = 0x07
)

// DecompressBatch appends to dst an uncompressed copy of the batch b: b's
// header with the compression bits cleared, batchLength set for the
// decompressed records and the CRC-32C recomputed, then the records. The
// copy is a valid batch (batch.Validate accepts it, batch.Records walks
// it); the other header fields (offsets, timestamps, producer, count) are
// b's. An uncompressed b is copied as it is.
//
// b must hold exactly one batch whose header parses. The records may
// decompress to at most limit bytes, and the copy may not exceed
// base.BatchBytesMax: past either it fails with base.CodeTooLarge, a
// payload that does not decode with CodeCorrupt, an unknown codec with
// CodeNotSupported. On error the returned slice is dst (possibly with a
// larger capacity). The caller owns the result; nothing aliases b.
func DecompressBatch(dst, b []byte, limit int) ([]byte, error) {
	h, err := batch.ParseHeader(b)
	if err != nil {
		return dst, err
	}
	if h.Size() != len(b) {
		return dst, base.Errorf(base.CodeCorrupt, "compress: batch of %d bytes given %d", h.Size(), len(b))
	}
	start := len(dst)
	dst = append(dst, b[:batch.HeaderSize]...)
	codec := h.Attributes.Compression()
	if codec == batch.CompressionNone {
		return append(dst, b[batch.HeaderSize:]...), nil
	}
	limit = min(limit, base.BatchBytesMax-batch.HeaderSize)
	dst, err = Decompress(dst, codec, b[batch.HeaderSize:], limit)
	if err != nil {
		return dst[:start], err
	}
	out := dst[start:]
	attrs := binary.BigEndian.Uint16(out[offAttributes:]) &^ codecBits
	binary.BigEndian.PutUint16(out[offAttributes:], attrs)
	binary.BigEndian.PutUint32(out[offLength:], uint32(len(out)-batch.LogOverhead))
	binary.BigEndian.PutUint32(out[offCRC:], batch.Checksum(out[batch.CRCStart:]))
	return dst, nil
}

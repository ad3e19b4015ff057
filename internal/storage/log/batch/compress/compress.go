package compress

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"slices"
	"sync"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/storage/log/batch"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/snappy/xerial"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// Decompress appends the decompressed form of src, compressed with Kafka
// codec (batch.CompressionGzip .. batch.CompressionZstd), to dst and
// returns the extended slice. It fails with base.CodeTooLarge when the
// output would exceed limit bytes, base.CodeCorrupt when src is not valid
// for the codec, and base.CodeNotSupported for an unknown codec. On error
// the returned slice is dst (possibly with a larger capacity).
func Decompress(dst []byte, codec int, src []byte, limit int) ([]byte, error) {
	base.Assert(limit >= 0, "compress: negative limit %d", limit)
	var out []byte
	var err error
	switch codec {
	case batch.CompressionGzip:
		out, err = decompressGzip(dst, src, limit)
	case batch.CompressionSnappy:
		out, err = decompressSnappy(dst, src, limit)
	case batch.CompressionLZ4:
		out, err = decompressLZ4(dst, src, limit)
	case batch.CompressionZstd:
		out, err = decompressZstd(dst, src, limit)
	default:
		return dst, base.Errorf(base.CodeNotSupported, "compress: unknown compression codec %d", codec)
	}
	if err != nil {
		return dst, err
	}
	return out, nil
}

func tooLarge(codec string, limit int) error {
	return base.Errorf(base.CodeTooLarge, "compress: %s payload decompresses to more than %d bytes", codec, limit)
}

func corrupt(codec string, err error) error {
	return base.Errorf(base.CodeCorrupt, "compress: %s payload: %w", codec, err)
}

// readLimited appends everything r yields to dst, failing once more than
// limit bytes arrived. The buffer grows by doubling, from what dst has.
func readLimited(dst []byte, r io.Reader, limit int, codec string) ([]byte, error) {
	start := len(dst)
	for {
		got := len(dst) - start
		if got > limit {
			return dst, tooLarge(codec, limit)
		}
		if len(dst) == cap(dst) {
			dst = slices.Grow(dst, max(min(got, limit+1-got), base.DecompressGrowBytesMin))
		}
		end := min(cap(dst), start+limit+1) // > len(dst): got <= limit
		n, err := r.Read(dst[len(dst):end])
		dst = dst[:len(dst)+n]
		if errors.Is(err, io.EOF) {
			if len(dst)-start > limit {
				return dst, tooLarge(codec, limit)
			}
			return dst, nil
		}
		if err != nil {
			return dst, corrupt(codec, err)
		}
	}
}

func decompressGzip(dst, src []byte, limit int) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(src))
	if err != nil {
		return dst, corrupt("gzip", err)
	}
	defer zr.Close()
	return readLimited(dst, zr, limit, "gzip")
}

func decompressLZ4(dst, src []byte, limit int) ([]byte, error) {
	zr := lz4.NewReader(bytes.NewReader(src))
	return readLimited(dst, zr, limit, "lz4")
}

// xerialHeader starts snappy-java's framing: magic, version 1,
// compatible version 1; then chunks of a 4-byte big-endian length and a
// raw snappy block.
var xerialHeader = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1}

// decompressSnappy decodes a raw snappy block or xerial-framed chunks.
// The decoded size is summed from the blocks' own headers and checked
// against limit before the output is sized.
func decompressSnappy(dst, src []byte, limit int) ([]byte, error) {
	total, err := snappyDecodedLen(src)
	if err != nil {
		return dst, err
	}
	if total > limit {
		return dst, tooLarge("snappy", limit)
	}
	start := len(dst)
	dst = append(dst, make([]byte, total)...)
	out, err := xerial.DecodeCapped(dst[start:start:start+total], src)
	if err != nil || len(out) != total {
		if err == nil {
			err = errors.New("decoded length differs from the declared one")
		}
		return dst[:start], corrupt("snappy", err)
	}
	return dst, nil
}

// snappyDecodedLen walks the framing (if any) and returns the sum of the
// blocks' declared decoded lengths.
func snappyDecodedLen(src []byte) (int, error) {
	if len(src) < 8 || !bytes.Equal(src[:8], xerialHeader[:8]) {
		n, err := s2.DecodedLen(src)
		if err != nil {
			return 0, corrupt("snappy", err)
		}
		return n, nil
	}
	if len(src) < len(xerialHeader) {
		return 0, corrupt("snappy", errors.New("truncated xerial header"))
	}
	total := 0
	for pos := len(xerialHeader); pos < len(src); {
		if len(src)-pos < 4 {
			return 0, corrupt("snappy", errors.New("truncated xerial chunk length"))
		}
		size := int(binary.BigEndian.Uint32(src[pos:]))
		pos += 4
		if size < 0 || size > len(src)-pos {
			return 0, corrupt("snappy", errors.New("xerial chunk past the end"))
		}
		n, err := s2.DecodedLen(src[pos : pos+size])
		if err != nil {
			return 0, corrupt("snappy", err)
		}
		if n > base.BatchBytesMax-total {
			return 0, tooLarge("snappy", base.BatchBytesMax)
		}
		total += n
		pos += size
	}
	return total, nil
}

// zstdDecoders are synchronous decoders (concurrency 1, no reader: no
// goroutines), reused across calls; each carries the limit it was made
// with.
var zstdDecoders sync.Pool

type zstdDecoder struct {
	d     *zstd.Decoder
	limit int
}

func decompressZstd(dst, src []byte, limit int) ([]byte, error) {
	zd, _ := zstdDecoders.Get().(*zstdDecoder)
	if zd == nil || zd.limit != limit {
		// The decoder's bound is at least zstd's smallest window: a frame
		// declares a window of at least 1 KiB whatever its size, and a
		// smaller bound would refuse valid output under limit. The check
		// after decoding holds the caller's limit exactly.
		d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(uint64(max(limit, zstd.MinWindowSize))),
			zstd.WithDecoderMaxWindow(min(uint64(max(limit, base.DecompressZstdWindowBytesMin)), zstd.MaxWindowSize)))
		if err != nil {
			return dst, base.Errorf(base.CodeInternal, "compress: zstd decoder: %w", err)
		}
		zd = &zstdDecoder{d: d, limit: limit}
	}
	defer zstdDecoders.Put(zd)
	// Decoded into an empty slice after dst: DecodeAll counts the bytes
	// already in dst against the limit (klauspost/compress v1.20.3).
	out, err := zd.d.DecodeAll(src, dst[len(dst):len(dst)])
	switch {
	case errors.Is(err, zstd.ErrDecoderSizeExceeded), errors.Is(err, zstd.ErrWindowSizeExceeded):
		return dst, tooLarge("zstd", limit)
	case err != nil:
		return dst, corrupt("zstd", err)
	case len(out) > limit:
		return dst, tooLarge("zstd", limit)
	}
	return append(dst, out...), nil
}

package protocol

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/ferry-mq/ferry/internal/base"
)

// frameSizeBytes is the size prefix of every Kafka request and response.
const frameSizeBytes = 4

// ReadFrame reads one size-prefixed frame (a request or a response) from r
// and returns its contents, without the prefix.
//
// The frame is read into buf when cap(buf) is large enough, so the caller
// can reuse one buffer when it is done with the previous frame (decoded
// bytes and records alias the frame). Otherwise a new buffer grows with the
// bytes that arrive, base.KafkaFrameReadChunkBytes at least and doubling,
// so a size prefix alone never reserves more than one chunk.
//
// A size over sizeMax is refused before any allocation (too_large wrapping
// ErrFrameSize), as is a negative one (corrupt). sizeMax must be in
// [0, base.KafkaRequestBytesMax]. io.EOF means r ended cleanly between
// frames; io.ErrUnexpectedEOF (wrapped) that it ended inside one.
func ReadFrame(r io.Reader, buf []byte, sizeMax int) ([]byte, error) {
	if !(sizeMax >= 0 && sizeMax <= base.KafkaRequestBytesMax) {
		base.Bugf("kafka: ReadFrame sizeMax %d", sizeMax)
	}
	var prefix []byte
	if cap(buf) >= frameSizeBytes {
		prefix = buf[:frameSizeBytes]
	} else {
		prefix = make([]byte, frameSizeBytes)
	}
	if _, err := io.ReadFull(r, prefix); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("kafka: reading a frame's size: %w", err)
		}
		return nil, err // io.EOF between frames, or the reader's own error
	}
	size := int(int32(binary.BigEndian.Uint32(prefix)))
	switch {
	case size < 0:
		return nil, base.Errorf(base.CodeCorrupt, "kafka: frame size %d: %w", size, ErrFrameSize)
	case size > sizeMax:
		return nil, base.Errorf(base.CodeTooLarge, "kafka: frame of %d bytes, limit %d: %w", size, sizeMax, ErrFrameSize)
	}
	frame := buf[:0]
	for len(frame) < size {
		step := min(size-len(frame), max(len(frame), base.KafkaFrameReadChunkBytes))
		if cap(frame)-len(frame) < step {
			grown := make([]byte, len(frame), len(frame)+step)
			copy(grown, frame)
			frame = grown
		}
		n, err := io.ReadFull(r, frame[len(frame):len(frame)+step])
		frame = frame[:len(frame)+n]
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, fmt.Errorf("kafka: reading a frame of %d bytes after %d: %w", size, len(frame), err)
		}
	}
	return frame, nil
}

// BeginFrame reserves a frame's size prefix at the end of dst; EndFrame
// fills it in once the frame's contents are appended.
func BeginFrame(dst []byte) (out []byte, mark int) {
	return append(dst, 0, 0, 0, 0), len(dst)
}

// EndFrame sets the size prefix reserved at mark by BeginFrame.
func EndFrame(dst []byte, mark int) []byte {
	size := len(dst) - mark - frameSizeBytes
	if !(size >= 0 && size <= 1<<31-1) {
		base.Bugf("kafka: frame of %d bytes", size)
	}
	binary.BigEndian.PutUint32(dst[mark:], uint32(size))
	return dst
}

package protocol

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"testing"
	"testing/iotest"

	"github.com/ferry-mq/ferry/internal/base"
)

func frameOf(body []byte) []byte {
	dst, mark := BeginFrame(nil)
	return EndFrame(append(dst, body...), mark)
}

func TestReadFrameReadsConsecutiveFrames(t *testing.T) {
	stream := append(frameOf([]byte("first")), frameOf(nil)...)
	stream = append(stream, frameOf(bytes.Repeat([]byte{9}, 200_000))...)
	r := iotest.HalfReader(bytes.NewReader(stream)) // short reads must not matter
	var buf []byte
	for _, want := range []int{5, 0, 200_000} {
		frame, err := ReadFrame(r, buf, base.KafkaRequestBytesMax)
		if err != nil || len(frame) != want {
			t.Fatalf("frame of %d bytes: got %d bytes, %v", want, len(frame), err)
		}
		buf = frame
	}
	if _, err := ReadFrame(r, buf, base.KafkaRequestBytesMax); err != io.EOF {
		t.Errorf("after the last frame: got %v, want io.EOF", err)
	}
}

func TestReadFrameReusesALargeEnoughBuffer(t *testing.T) {
	buf := make([]byte, 0, 64)
	frame, err := ReadFrame(bytes.NewReader(frameOf([]byte("abc"))), buf, 100)
	if err != nil || string(frame) != "abc" {
		t.Fatalf("got %q, %v; want \"abc\"", frame, err)
	}
	if &frame[:1][0] != &buf[:1][0] {
		t.Errorf("the frame was not read into the 64-byte buffer given")
	}
}

// TestReadFrameSizeLimitEdge: a frame of exactly sizeMax is read; one byte
// more is refused before its body is read or allocated.
func TestReadFrameSizeLimitEdge(t *testing.T) {
	const max = 1000
	if frame, err := ReadFrame(bytes.NewReader(frameOf(make([]byte, max))), nil, max); err != nil || len(frame) != max {
		t.Errorf("frame of sizeMax: got %d bytes, %v", len(frame), err)
	}
	src := bytes.NewReader(frameOf(make([]byte, max+1)))
	_, err := ReadFrame(src, nil, max)
	if !errors.Is(err, ErrFrameSize) || base.CodeOf(err) != base.CodeTooLarge {
		t.Errorf("frame of sizeMax+1: got %v, want ErrFrameSize, too_large", err)
	}
	if src.Len() != max+1 {
		t.Errorf("refusing the frame consumed %d body bytes", max+1-src.Len())
	}
	_, err = ReadFrame(bytes.NewReader([]byte{0x80, 0, 0, 0}), nil, max)
	if !errors.Is(err, ErrFrameSize) || base.CodeOf(err) != base.CodeCorrupt {
		t.Errorf("negative size: got %v, want ErrFrameSize, corrupt", err)
	}
}

// TestReadFrameAllocatesOnlyWhatArrives: a peer announcing the largest
// request and sending 10 bytes costs about one chunk, not 100 MiB; a size
// over base.KafkaRequestBytesMax costs nothing.
func TestReadFrameAllocatesOnlyWhatArrives(t *testing.T) {
	for _, c := range []struct {
		name   string
		size   uint32
		maxOut uint64
	}{
		// Half a chunk of slack absorbs what the runtime allocates meanwhile
		// while still catching a second chunk read ahead.
		{"largest request, 10 bytes sent", base.KafkaRequestBytesMax, base.KafkaFrameReadChunkBytes * 3 / 2},
		{"over the limit", base.KafkaRequestBytesMax + 1, 32 << 10},
	} {
		src := append(appendUint32(nil, c.size), make([]byte, 10)...)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := ReadFrame(bytes.NewReader(src), nil, base.KafkaRequestBytesMax)
		runtime.ReadMemStats(&after)
		if err == nil {
			t.Errorf("%s: read a frame", c.name)
		}
		if got := after.TotalAlloc - before.TotalAlloc; got > c.maxOut {
			t.Errorf("%s: allocated %d bytes, want at most %d", c.name, got, c.maxOut)
		}
	}
}

func TestReadFrameTruncation(t *testing.T) {
	for name, src := range map[string][]byte{
		"inside the size": {0, 0},
		"inside the body": append(appendUint32(nil, 10), 1, 2, 3),
	} {
		if _, err := ReadFrame(bytes.NewReader(src), nil, 100); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("%s: got %v, want io.ErrUnexpectedEOF", name, err)
		}
	}
	boom := errors.New("boom")
	if _, err := ReadFrame(iotest.ErrReader(boom), nil, 100); !errors.Is(err, boom) {
		t.Errorf("reader error: got %v", err)
	}
}

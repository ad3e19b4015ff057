package log

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/base/vfs"
	"github.com/ferry-mq/ferry/internal/storage/log/batch"
)

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// mkBatch builds a batch of n records of valueSize bytes with timestamps
// from ts; the value bytes are derived from seed so batches differ.
func mkBatch(t testing.TB, n, valueSize int, ts int64, seed byte) []byte {
	t.Helper()
	var b batch.Builder
	b.Begin(nil, batch.Header{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1})
	v := bytes.Repeat([]byte{seed}, valueSize)
	for i := range n {
		if err := b.Add(ts+int64(i), []byte{seed, byte(i)}, v, nil); err != nil {
			t.Fatal(err)
		}
	}
	out, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func memOptions(fs vfs.FS, clock base.Clock) Options {
	return Options{FS: fs, Dir: "/data/log", Clock: clock, SegmentBytes: 2048, IndexIntervalBytes: 256}
}

// openSized opens a log of segmentBytes segments on a fresh MemFS, closed
// when the test ends.
func openSized(t testing.TB, clock base.Clock, segmentBytes int64) *Log {
	t.Helper()
	o := memOptions(vfs.NewMem(), clock)
	o.SegmentBytes = segmentBytes
	l := mustOpen(t, o)
	t.Cleanup(func() { l.Close() })
	return l
}

// segmentSizes returns the sizes of l's segments, the active one last.
func segmentSizes(l *Log) []int64 {
	l.stateMu.RLock()
	defer l.stateMu.RUnlock()
	out := make([]int64, len(l.segs))
	for i, s := range l.segs {
		out[i] = s.size
	}
	return out
}

func mustOpen(t testing.TB, o Options) *Log {
	t.Helper()
	l, err := Open(o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return l
}

// stamped returns b as the log stores it: base offset and term set.
func stamped(b []byte, offset int64, term uint64) []byte {
	c := bytes.Clone(b)
	batch.SetBaseOffset(c, offset)
	batch.SetEpoch(c, int32(term))
	return c
}

func wantCode(t testing.TB, what string, err error, code base.Code) {
	t.Helper()
	if base.CodeOf(err) != code {
		t.Fatalf("%s: got %v (code %v), want code %v", what, err, base.CodeOf(err), code)
	}
}

func appendOK(t testing.TB, l *Log, term uint64, b []byte) Position {
	t.Helper()
	p, err := l.Append(context.Background(), term, b)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	return p
}

// rec is one record for buildBatch.
type rec struct {
	ts    int64
	value []byte
}

// buildBatch builds a batch of the given records (null keys).
func buildBatch(recs []rec) []byte {
	var b batch.Builder
	b.Begin(nil, batch.Header{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1})
	for _, r := range recs {
		if err := b.Add(r.ts, nil, r.value, nil); err != nil {
			panic(err)
		}
	}
	out, err := b.Finish()
	if err != nil {
		panic(err)
	}
	return out
}

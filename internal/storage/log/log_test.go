package log

import (
	"bytes"
	"testing"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/base/vfs"
)

func TestAppendReadAcrossSegmentsAndReopen(t *testing.T) {
	mem := vfs.NewMem()
	clock := base.NewFakeClock(epoch)
	l := mustOpen(t, memOptions(mem, clock))
	var want [][]byte
	var next int64
	for i := range 40 {
		term := uint64(1 + i/10)
		b := mkBatch(t, 1+i%3, 100, int64(1000+i), byte(i))
		p := appendOK(t, l, term, b)
		if p.Index != uint64(i+1) || p.BaseOffset != next || p.NextOffset != next+int64(1+i%3) {
			t.Fatalf("append %d: got %+v, want index %d offset %d", i, p, i+1, next)
		}
		want = append(want, stamped(b, next, term))
		next = p.NextOffset
	}
	if n := len(l.segs); n < 3 {
		t.Fatalf("segments: got %d, want several with SegmentBytes 2048", n)
	}
	check := func(l *Log) {
		t.Helper()
		if l.FirstIndex() != 1 || l.LastIndex() != 40 || l.NextOffset() != next || l.DurableIndex() != 40 {
			t.Fatalf("bounds: first %d last %d next %d durable %d", l.FirstIndex(), l.LastIndex(), l.NextOffset(), l.DurableIndex())
		}
		ents, err := l.Entries(1, 41, 1<<20)
		if err != nil || len(ents) != 40 {
			t.Fatalf("Entries: %d %v", len(ents), err)
		}
		for i, e := range ents {
			if !bytes.Equal(e, want[i]) {
				t.Fatalf("entry %d differs", i+1)
			}
			term, err := l.Term(uint64(i + 1))
			if err != nil || term != uint64(1+i/10) {
				t.Fatalf("Term(%d): got %d %v, want %d", i+1, term, err, 1+i/10)
			}
		}
		var off int64
		for i := 0; off < next; i++ {
			b, err := l.Read(off, 1)
			if err != nil || !bytes.Equal(b, want[i]) {
				t.Fatalf("Read(%d): %v, equal %v", off, err, bytes.Equal(b, want[i]))
			}
			off += int64(1 + i%3)
		}
		if b, err := l.Read(next, 100); b != nil || err != nil {
			t.Fatalf("Read at NextOffset: got %d bytes %v, want nil nil", len(b), err)
		}
		_, err = l.Read(next+1, 100)
		wantCode(t, "Read past the end", err, base.CodeOutOfRange)
	}
	check(l)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = mustOpen(t, memOptions(mem, clock))
	check(l)
	l.Close()
}

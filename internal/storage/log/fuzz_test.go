package log

import (
	"bytes"
	"testing"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/base/vfs"
)

// FuzzIndexDecoding feeds arbitrary bytes to the decoders of the index,
// time index, checkpoint and segment header files: they must not panic,
// and what they accept must encode back to the same bytes.
func FuzzIndexDecoding(f *testing.F) {
	f.Add(appendIndexEntry(appendIndexEntry(nil, indexEntry{0, 0, segHeaderSize, 1}), indexEntry{4, 9, 900, 3}))
	f.Add(appendTimeEntry(appendTimeEntry(nil, timeEntry{5, 0}), timeEntry{9, 3}))
	f.Add(checkpoint{firstIndex: 3, firstOffset: 7, rpSegment: 1, rpPos: 100}.encode())
	f.Add(segHeader{baseIndex: 1, baseOffset: 0, createdMs: 5}.encode())
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		if idx, err := decodeIndex(b, 1<<20); err == nil {
			var out []byte
			for _, e := range idx {
				out = appendIndexEntry(out, e)
			}
			if !bytes.Equal(out, b) {
				t.Fatalf("index round trip differs")
			}
		}
		if tix, err := decodeTimeIndex(b); err == nil {
			var out []byte
			for _, e := range tix {
				out = appendTimeEntry(out, e)
			}
			if !bytes.Equal(out, b) {
				t.Fatalf("time index round trip differs")
			}
		}
		if c, err := decodeCheckpoint(b); err == nil && !bytes.Equal(c.encode(), b) {
			t.Fatalf("checkpoint round trip differs")
		}
		if h, err := decodeSegHeader(b); err == nil && !bytes.Equal(h.encode(), b[:segHeaderSize]) {
			t.Fatalf("segment header round trip differs")
		}
	})
}

// FuzzRecoverSegment writes fuzzed bytes as the batches of a segment (after
// a valid header, beside a valid first segment and optionally with fuzzed
// index files) and opens the log: it must not panic, and must either fail
// cleanly or come up consistent, readable and writable.
func FuzzRecoverSegment(f *testing.F) {
	good := func(n int) []byte {
		var b []byte
		off := int64(0)
		for i := range n {
			x := stamped(mkBatch(f, 1+i%2, 20, int64(i), byte(i)), off, 1)
			off += int64(1 + i%2)
			b = append(b, x...)
		}
		return b
	}
	f.Add(good(3), []byte{}, false)
	f.Add(good(3)[:100], []byte{}, true)
	f.Add(append(good(2), make([]byte, 30)...), appendIndexEntry(nil, indexEntry{0, 0, segHeaderSize, 1}), false)
	f.Add([]byte("not a batch at all"), []byte{1, 2, 3}, true)
	f.Fuzz(func(t *testing.T, body, idx []byte, rpAtStart bool) {
		mem := vfs.NewMem()
		dir := "/d"
		mem.MkdirAll(dir, 0o755)
		seg := append(segHeader{baseIndex: 1, baseOffset: 0, createdMs: 1}.encode(), body...)
		put := func(name string, b []byte) {
			f, _ := mem.Create(dir + "/" + name)
			f.Write(b)
			f.Sync()
			f.Close()
		}
		put(segFileName(1, segExt), seg)
		if len(idx) > 0 {
			put(segFileName(1, idxExt), idx)
		}
		rp := int64(len(seg))
		if rpAtStart {
			rp = segHeaderSize
		}
		put(checkpointName, checkpoint{firstIndex: 1, rpSegment: 1, rpPos: rp}.encode())
		mem.SyncDir(dir)
		l, err := Open(Options{FS: mem, Dir: dir, Clock: base.NewFakeClock(epoch), IndexIntervalBytes: 64})
		if err != nil {
			if c := base.CodeOf(err); c != base.CodeCorrupt {
				t.Fatalf("Open failed with code %v: %v", c, err)
			}
			return
		}
		defer l.Close()
		if err := checkIndexes(l); err != nil {
			t.Fatalf("recovered log inconsistent: %v", err)
		}
		if last := l.LastIndex(); last >= 1 {
			if ents, err := l.Entries(1, last+1, 1<<30); err != nil || len(ents) != int(last) {
				t.Fatalf("Entries of the recovered log: %d of %d, %v", len(ents), last, err)
			}
		}
		if _, err := l.Append(t.Context(), maxTerm, mkBatch(t, 1, 1, 0, 0)); err != nil {
			t.Fatalf("append to the recovered log: %v", err)
		}
	})
}

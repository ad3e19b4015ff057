package log

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/base/vfs"
)

// buildLog writes n batches (terms changing every 7) through Append,
// closes the log and returns the file system and the stored batches.
func buildLog(t *testing.T, n int) (*vfs.MemFS, [][]byte) {
	t.Helper()
	return buildLogWith(t, n, memOptions(vfs.NewMem(), base.NewFakeClock(epoch)))
}

func buildLogWith(t *testing.T, n int, o Options) (*vfs.MemFS, [][]byte) {
	t.Helper()
	mem := o.FS.(*vfs.MemFS)
	l := mustOpen(t, o)
	var want [][]byte
	for i := range n {
		term := uint64(1 + i/7)
		b := mkBatch(t, 1+i%2, 60, int64(100*i), byte(i))
		p := appendOK(t, l, term, b)
		want = append(want, stamped(b, p.BaseOffset, term))
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return mem, want
}

func fileBytes(t *testing.T, fsys vfs.FS, path string) []byte {
	t.Helper()
	f, err := fsys.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeFile(t *testing.T, fsys vfs.FS, path string, b []byte) {
	t.Helper()
	f, err := fsys.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
	f.Sync()
	f.Close()
}

func segNames(t *testing.T, fsys vfs.FS, ext string) []string {
	t.Helper()
	names, err := fsys.List("/data/log")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, n := range names {
		if strings.HasSuffix(n, ext) {
			out = append(out, "/data/log/"+n)
		}
	}
	return out
}

// TestDamagedIndexesAreRebuilt damages the index files of a sealed and of
// the last segment in several ways; Open rebuilds them to the same bytes.
func TestDamagedIndexesAreRebuilt(t *testing.T) {
	damages := map[string]func(b []byte) []byte{
		"missing":          nil,
		"empty":            func(b []byte) []byte { return nil },
		"odd size":         func(b []byte) []byte { return b[:len(b)-3] },
		"lost tail":        func(b []byte) []byte { return b[:len(b)-idxEntrySize] },
		"not monotonic":    func(b []byte) []byte { c := bytes.Clone(b); copy(c[idxEntrySize:], c[:idxEntrySize]); return c },
		"wrong term":       func(b []byte) []byte { c := bytes.Clone(b); c[len(c)-1] ^= 0x40; return c },
		"points past file": func(b []byte) []byte { c := bytes.Clone(b); c[len(c)-12] = 0x7f; return c },
	}
	for name, damage := range damages {
		for _, which := range []string{"sealed", "last"} {
			t.Run(name+"/"+which, func(t *testing.T) {
				mem, want := buildLog(t, 30)
				idxs := segNames(t, mem, idxExt)
				if len(idxs) < 3 {
					t.Fatalf("want several segments, have %d", len(idxs))
				}
				target := idxs[0]
				if which == "last" {
					target = idxs[len(idxs)-1]
				}
				orig := fileBytes(t, mem, target)
				if damage == nil {
					mem.Remove(target)
				} else {
					writeFile(t, mem, target, damage(orig))
				}
				l := mustOpen(t, memOptions(mem, base.NewFakeClock(epoch)))
				defer l.Close()
				checkConfirmed(t, l, want)
				if err := checkIndexes(l); err != nil {
					t.Fatal(err)
				}
				// A sealed index that lost its tail is still a valid, sparser
				// index and is kept; every other damage is rebuilt exactly.
				got := fileBytes(t, mem, target)
				if which == "sealed" && !bytes.Equal(got, orig) && !(name == "lost tail" && bytes.Equal(got, damage(orig))) {
					t.Errorf("rebuilt index differs from the original: %d vs %d bytes", len(got), len(orig))
				}
				for i := range want {
					if term, _ := l.Term(uint64(i + 1)); term != uint64(1+i/7) {
						t.Fatalf("Term(%d) after rebuild: %d, want %d", i+1, term, 1+i/7)
					}
				}
			})
		}
	}
}

// TestTornTailIsTruncated cuts the last segment inside its last batch (and
// pads it with zeros, as a file system may): Open drops the partial batch
// and keeps the rest.
func TestTornTailIsTruncated(t *testing.T) {
	for _, pad := range []int{0, 100} {
		mem, want := buildLog(t, 20)
		segs := segNames(t, mem, segExt)
		last := segs[len(segs)-1]
		b := fileBytes(t, mem, last)
		cut := append(bytes.Clone(b[:len(b)-10]), make([]byte, pad)...)
		writeFile(t, mem, last, cut)
		// The recovery point must lie before the torn batch, as after a crash.
		writeCheckpointAt(t, mem, 1, segHeaderSize)
		l := mustOpen(t, memOptions(mem, base.NewFakeClock(epoch)))
		checkConfirmed(t, l, want[:19])
		if l.LastIndex() != 19 {
			t.Errorf("pad %d: last index %d, want 19", pad, l.LastIndex())
		}
		if err := checkIndexes(l); err != nil {
			t.Fatal(err)
		}
		l.Close()
	}
}

// writeCheckpointAt rewrites the checkpoint with the recovery point at the
// start of the segment with base index rpSeg.
func writeCheckpointAt(t *testing.T, mem *vfs.MemFS, rpSeg uint64, rpPos int64) {
	t.Helper()
	c, err := decodeCheckpoint(fileBytes(t, mem, "/data/log/"+checkpointName))
	if err != nil {
		t.Fatal(err)
	}
	segs := segNames(t, mem, segExt)
	if rpSeg == 1 {
		rpSeg, _ = parseSegName(strings.TrimPrefix(segs[len(segs)-1], "/data/log/"), segExt)
	}
	c.rpSegment, c.rpPos = rpSeg, rpPos
	writeFile(t, mem, "/data/log/"+checkpointName, c.encode())
}

// TestCorruptionIsReportedNotSkipped flips a byte inside a batch: below the
// recovery point, or followed by a valid batch, Open fails with CodeCorrupt
// naming the segment file and position; in a sealed segment, the Read of
// that batch fails the same way.
func TestCorruptionIsReportedNotSkipped(t *testing.T) {
	t.Run("last segment below the recovery point", func(t *testing.T) {
		// Sparse entries (first batch and term changes only): the scan
		// starts after the entry of batch 15 and meets batch 20, which the
		// recovery point (the end, after Close) says was synced.
		o := memOptions(vfs.NewMem(), base.NewFakeClock(epoch))
		o.SegmentBytes, o.IndexIntervalBytes = 1<<20, 1<<20
		mem, want := buildLogWith(t, 20, o)
		seg := segNames(t, mem, segExt)[0]
		b := fileBytes(t, mem, seg)
		b[len(b)-5] ^= 1
		writeFile(t, mem, seg, b)
		_, err := Open(o)
		wantCode(t, "Open", err, base.CodeCorrupt)
		pos := len(b) - len(want[19])
		if !strings.Contains(err.Error(), seg) || !strings.Contains(err.Error(), fmt.Sprintf("at byte %d", pos)) {
			t.Errorf("error does not name the file and position %d: %v", pos, err)
		}
	})
	t.Run("bad batch followed by a valid one past the recovery point", func(t *testing.T) {
		mem, _ := buildLog(t, 20)
		segs := segNames(t, mem, segExt)
		last := segs[len(segs)-1]
		b := fileBytes(t, mem, last)
		b[segHeaderSize+70] ^= 1
		writeFile(t, mem, last, b)
		writeCheckpointAt(t, mem, 1, segHeaderSize)
		_, err := Open(memOptions(mem, base.NewFakeClock(epoch)))
		wantCode(t, "Open", err, base.CodeCorrupt)
		if !strings.Contains(err.Error(), "a valid batch follows") {
			t.Errorf("error does not say why it is not a torn tail: %v", err)
		}
	})
	t.Run("sealed segment, found by Read", func(t *testing.T) {
		mem, want := buildLog(t, 20)
		first := segNames(t, mem, segExt)[0]
		b := fileBytes(t, mem, first)
		b[segHeaderSize+len(want[0])+70] ^= 1 // inside the second batch
		writeFile(t, mem, first, b)
		l := mustOpen(t, memOptions(mem, base.NewFakeClock(epoch)))
		defer l.Close()
		_, err := l.Read(2, 1) // want[0] has records 0-0, want[1] 1-2
		wantCode(t, "Read of the damaged batch", err, base.CodeCorrupt)
		if !strings.Contains(err.Error(), first) {
			t.Errorf("error does not name the segment: %v", err)
		}
		if got, err := l.Read(0, 1); err != nil || !bytes.Equal(got, want[0]) {
			t.Errorf("Read of the intact batch before it: %v", err)
		}
	})
	t.Run("bad checkpoint", func(t *testing.T) {
		mem, _ := buildLog(t, 3)
		b := fileBytes(t, mem, "/data/log/"+checkpointName)
		b[20] ^= 1
		writeFile(t, mem, "/data/log/"+checkpointName, b)
		_, err := Open(memOptions(mem, base.NewFakeClock(epoch)))
		wantCode(t, "Open with a damaged checkpoint", err, base.CodeCorrupt)
	})
	t.Run("missing middle segment", func(t *testing.T) {
		mem, _ := buildLog(t, 30)
		segs := segNames(t, mem, segExt)
		mem.Remove(segs[1])
		_, err := Open(memOptions(mem, base.NewFakeClock(epoch)))
		wantCode(t, "Open with a gap between segments", err, base.CodeCorrupt)
	})
}

func TestOpenTakesTheDirectoryLock(t *testing.T) {
	mem := vfs.NewMem()
	l := mustOpen(t, memOptions(mem, base.NewFakeClock(epoch)))
	_, err := Open(memOptions(mem, base.NewFakeClock(epoch)))
	wantCode(t, "second Open of one directory", err, base.CodeResourceLocked)
	l.Close()
	l2 := mustOpen(t, memOptions(mem, base.NewFakeClock(epoch)))
	l2.Close()
}

package log

import (
	"errors"
	"fmt"
	"io"
	"math"
	"sync"
	"sync/atomic"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/base/vfs"
	"github.com/ferry-mq/ferry/internal/storage/log/batch"
)

// segment is one segment file and what the log knows about it.
type segment struct {
	baseIndex  uint64
	baseOffset int64
	createdMs  int64
	path       string
	file       vfs.File // read-write; closed once the segment is dead and unreferenced

	// Readers pin the segment while they read its file outside the lock;
	// a removed segment's file is closed by the last one out.
	refs      atomic.Int32
	dead      atomic.Bool
	closeOnce sync.Once

	// Published state: guarded by Log.stateMu; written only with
	// Log.writeMu held too, so the writer may read it without stateMu.
	size       int64  // end of the last published batch
	nextIndex  uint64 // Index after the last batch
	nextOffset int64  // offset after the last batch
	maxTs      int64  // largest batch maxTimestamp; math.MinInt64 when empty
	idx        []indexEntry
	tix        []timeEntry
	gen        uint64 // bumped when the segment is truncated or removed

	// Writer state, guarded by Log.writeMu.
	synced     int64    // bytes known durable
	idxFile    vfs.File // open for the active segment only
	tixFile    vfs.File
	idxWritten int // entries of idx already in idxFile
	tixWritten int
}

func (s *segment) empty() bool { return s.nextIndex == s.baseIndex }

// pin must be called with Log.stateMu held (read or write), on a live
// segment; unpin releases it.
func (s *segment) pin() { s.refs.Add(1) }

func (s *segment) unpin() {
	if s.refs.Add(-1) == 0 && s.dead.Load() {
		s.closeFile()
	}
}

// kill marks a segment removed from the log's list (with stateMu held for
// writing); its file closes when no reader holds it.
func (s *segment) kill() {
	s.gen++
	s.dead.Store(true)
	if s.refs.Load() == 0 {
		s.closeFile()
	}
}

func (s *segment) closeFile() {
	s.closeOnce.Do(func() {
		if s.file != nil {
			s.file.Close()
		}
	})
}

// closeIndexFiles closes the index files of a segment that stops being
// active.
func (s *segment) closeIndexFiles() {
	for _, f := range []*vfs.File{&s.idxFile, &s.tixFile} {
		if *f != nil {
			(*f).Close()
			*f = nil
		}
	}
}

// floorEntry returns the last index entry whose key is at most key, where
// key reads an entry's relative index or offset; ok is false when the
// first entry is already above key. Called with stateMu held.
func floorEntry(idx []indexEntry, key uint32, byIndex bool) (indexEntry, bool) {
	lo, hi := 0, len(idx) // find the first entry above key
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		k := idx[m].relOffset
		if byIndex {
			k = idx[m].relIndex
		}
		if k <= key {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == 0 {
		return indexEntry{}, false
	}
	return idx[lo-1], true
}

// readFull reads len(p) bytes at off; a short file is io.ErrUnexpectedEOF.
func readFull(f vfs.File, p []byte, off int64) error {
	n, err := f.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// headerAt reads and parses the batch header at pos of f and checks that
// the batch ends by end.
func headerAt(f vfs.File, pos, end int64) (batch.Header, error) {
	var buf [batch.HeaderSize]byte
	if pos+batch.HeaderSize > end {
		return batch.Header{}, fmt.Errorf("batch header at %d runs past %d: %w", pos, end, io.ErrUnexpectedEOF)
	}
	if err := readFull(f, buf[:], pos); err != nil {
		return batch.Header{}, err
	}
	h, err := batch.ParseHeader(buf[:])
	if err != nil {
		return h, err
	}
	if pos+int64(h.Size()) > end {
		return h, fmt.Errorf("batch at %d of %d bytes runs past %d: %w", pos, h.Size(), end, io.ErrUnexpectedEOF)
	}
	return h, nil
}

// cursor follows the end of a segment as batches are added to it, by a
// writer or a recovery scan, and decides the index entries with one rule
// for both, so that a rebuilt index equals the written one: an offset
// index entry for the segment's first batch, for every term change, and
// for a batch starting at least interval bytes after the last entry; at
// each of those, a time index entry if the running maximum timestamp grew.
type cursor struct {
	baseIndex  uint64
	baseOffset int64
	interval   int64

	size       int64
	nextIndex  uint64
	nextOffset int64
	maxTs      int64
	lastTerm   uint64 // term of the segment's last batch
	lastRel    uint32 // relative base offset of the segment's last batch
	last       indexEntry
	hasEntry   bool
	lastTixTs  int64
	hasTix     bool
}

func newCursor(s *segment, interval int) cursor {
	c := cursor{baseIndex: s.baseIndex, baseOffset: s.baseOffset, interval: int64(interval),
		size: s.size, nextIndex: s.nextIndex, nextOffset: s.nextOffset, maxTs: s.maxTs}
	if n := len(s.idx); n > 0 {
		c.last, c.hasEntry, c.lastTerm = s.idx[n-1], true, s.idx[n-1].term
	}
	if n := len(s.tix); n > 0 {
		c.lastTixTs, c.hasTix = s.tix[n-1].maxTs, true
	}
	return c
}

// add accounts for a batch of size bytes with header h (already stamped
// with the cursor's next offset and with term) placed at c.size, and
// returns the index entries it gets.
func (c *cursor) add(h *batch.Header, size int64, term uint64) (e indexEntry, addE bool, te timeEntry, addT bool) {
	if h.BaseOffset != c.nextOffset { // not Assert: its arguments would allocate on every call
		base.Bugf("cursor: batch at offset %d, expected %d", h.BaseOffset, c.nextOffset)
	}
	pos := c.size
	c.maxTs = max(c.maxTs, h.MaxTimestamp)
	if !c.hasEntry || term != c.last.term || pos-int64(c.last.pos) >= c.interval {
		e = indexEntry{relIndex: uint32(c.nextIndex - c.baseIndex), relOffset: uint32(h.BaseOffset - c.baseOffset), pos: uint32(pos), term: term}
		c.last, c.hasEntry, addE = e, true, true
		if !c.hasTix || c.maxTs > c.lastTixTs {
			te = timeEntry{maxTs: c.maxTs, relOffset: e.relOffset}
			c.lastTixTs, c.hasTix, addT = c.maxTs, true, true
		}
	}
	c.size += size
	c.nextIndex++
	c.nextOffset = h.NextOffset()
	c.lastTerm = term
	c.lastRel = uint32(h.BaseOffset - c.baseOffset)
	return e, addE, te, addT
}

// finalTimeEntry is the time entry a segment gets when it rolls, so that
// its time index ends with its maximum timestamp, at its last batch.
func (c *cursor) finalTimeEntry() (timeEntry, bool) {
	if c.nextIndex == c.baseIndex || (c.hasTix && c.maxTs <= c.lastTixTs) {
		return timeEntry{}, false
	}
	c.lastTixTs, c.hasTix = c.maxTs, true
	return timeEntry{maxTs: c.maxTs, relOffset: c.lastRel}, true
}

// termRun says that batches from firstIndex on have term term, up to the
// next run.
type termRun struct {
	firstIndex uint64
	term       uint64
}

// observeTerm appends a run to runs when index starts a new term.
func observeTerm(runs []termRun, index, term uint64) []termRun {
	if n := len(runs); n > 0 && runs[n-1].term == term {
		return runs
	}
	return append(runs, termRun{firstIndex: index, term: term})
}

// termAt returns the term of index from runs, which must cover it.
func termAt(runs []termRun, index uint64) uint64 {
	lo, hi := 0, len(runs)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if runs[m].firstIndex <= index {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == 0 { // not Assert: its arguments would allocate on every call
		base.Bugf("termAt(%d) below the first run %+v", index, runs[:min(1, len(runs))])
	}
	return runs[lo-1].term
}

// truncateRuns drops the runs of indexes from index on.
func truncateRuns(runs []termRun, index uint64) []termRun {
	for len(runs) > 0 && runs[len(runs)-1].firstIndex >= index {
		runs = runs[:len(runs)-1]
	}
	return runs
}

const noTimestamp = math.MinInt64

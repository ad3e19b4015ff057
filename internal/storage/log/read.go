package log

import (
	"errors"
	"fmt"
	"math"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/storage/log/batch"
)

// segmentOfIndex returns the segment holding index, or the active segment
// when index is the next Index; nil when out of the segments' range.
// Called with stateMu or writeMu held.
func (l *Log) segmentOfIndex(index uint64) *segment {
	for i := len(l.segs) - 1; i >= 0; i-- {
		s := l.segs[i]
		if s.baseIndex <= index {
			if index < s.nextIndex || (i == len(l.segs)-1 && index == s.nextIndex) {
				return s
			}
			return nil
		}
	}
	return nil
}

// segmentOfOffset is segmentOfIndex by offset.
func (l *Log) segmentOfOffset(offset int64) *segment {
	for i := len(l.segs) - 1; i >= 0; i-- {
		s := l.segs[i]
		if s.baseOffset <= offset {
			if offset < s.nextOffset {
				return s
			}
			return nil
		}
	}
	return nil
}

// locateIndex returns the file position and header of the batch with Index
// index in s, walking batch headers from the index entry at or below it.
// The caller holds stateMu or writeMu, or has pinned s and passes its
// published size through s (see view).
func (l *Log) locateIndex(s *segment, index uint64) (int64, batch.Header, error) {
	e, ok := floorEntry(s.idx, uint32(index-s.baseIndex), true)
	if !ok {
		return 0, batch.Header{}, corrupt(s.path, segHeaderSize, errors.New("no index entry for the first batch"))
	}
	return walkTo(s, s.size, int64(e.pos), s.baseIndex+uint64(e.relIndex), func(_ *batch.Header, i uint64) bool { return i == index })
}

// walkTo walks batch headers from pos (the batch with Index i) until stop
// says so, and returns that batch's position and header.
func walkTo(s *segment, end, pos int64, i uint64, stop func(h *batch.Header, i uint64) bool) (int64, batch.Header, error) {
	for {
		h, err := headerAt(s.file, pos, end)
		if err != nil {
			return 0, h, corrupt(s.path, pos, err)
		}
		if stop(&h, i) {
			return pos, h, nil
		}
		pos += int64(h.Size())
		i++
		if pos >= end {
			return 0, h, base.Errorf(base.CodeOutOfRange, "log: %s: walked past the end at %d", s.path, end)
		}
	}
}

// view is a reader's pinned snapshot of one segment's published state.
type view struct {
	s     *segment
	size  int64
	gen   uint64
	entry indexEntry // the index entry at or below the target
	last  bool       // the segment is the active one
}

func (l *Log) readable() error {
	if l.readClosed {
		return base.Errorf(base.CodeStopped, "log %s: closed", l.dir)
	}
	return nil
}

// pinLocked pins s and takes a view of it around the index entry key.
func (l *Log) pinLocked(s *segment, key uint32, byIndex bool) (view, bool) {
	e, ok := floorEntry(s.idx, key, byIndex)
	if !ok {
		return view{}, false
	}
	s.pin()
	return view{s: s, size: s.size, gen: s.gen, entry: e, last: s == l.active()}, true
}

// stillValid reports whether the segment was not truncated or removed
// while the view's owner read it without the lock.
func (l *Log) stillValid(v view) bool {
	l.stateMu.RLock()
	defer l.stateMu.RUnlock()
	return v.s.gen == v.gen
}

// errChanged means a read raced with a truncation; it is retried, and
// after readAttempts retries returned as a retriable CodeUnavailable.
var errChanged = base.Errorf(base.CodeUnavailable, "segment truncated or removed during the read; retry")

const readAttempts = 3

// Read returns whole batches starting with the one that contains offset,
// from one segment, up to maxBytes (at least one whole batch, however
// large; maxBytes is capped at base.LogReadBytesMax). At NextOffset it
// returns nil; below FirstOffset or past NextOffset it fails with
// CodeOutOfRange. A batch failing its CRC fails the read with CodeCorrupt,
// naming the segment file and byte position. The returned bytes are the
// caller's.
func (l *Log) Read(offset int64, maxBytes int) ([]byte, error) {
	for attempt := 0; ; attempt++ {
		out, err := l.readOnce(offset, maxBytes)
		if !errors.Is(err, errChanged) || attempt == readAttempts {
			return out, err
		}
	}
}

func (l *Log) readOnce(offset int64, maxBytes int) ([]byte, error) {
	l.stateMu.RLock()
	if err := l.readable(); err != nil {
		l.stateMu.RUnlock()
		return nil, err
	}
	next := l.active().nextOffset
	if offset < l.firstOffset || offset > next {
		first := l.firstOffset
		l.stateMu.RUnlock()
		return nil, base.Errorf(base.CodeOutOfRange, "log %s: offset %d outside [%d, %d]", l.dir, offset, first, next)
	}
	if offset == next {
		l.stateMu.RUnlock()
		return nil, nil
	}
	s := l.segmentOfOffset(offset)
	v, ok := l.pinLocked(s, uint32(offset-s.baseOffset), false)
	l.stateMu.RUnlock()
	if !ok {
		return nil, corrupt(s.path, segHeaderSize, errors.New("no index entry for the first batch"))
	}
	defer v.s.unpin()
	pos, h, err := walkTo(v.s, v.size, int64(v.entry.pos), 0, func(h *batch.Header, _ uint64) bool { return h.NextOffset() > offset })
	if err == nil && h.BaseOffset > offset {
		err = corrupt(v.s.path, pos, fmt.Errorf("offset %d falls in no batch", offset))
	}
	if err != nil {
		return nil, l.changedOr(v, err)
	}
	out, _, err := l.readBatches(v, pos, h.BaseOffset, maxBytes, -1)
	return out, err
}

// changedOr returns errChanged when the view went stale, else err.
func (l *Log) changedOr(v view, err error) error {
	if !l.stillValid(v) {
		return errChanged
	}
	return err
}

// readBatches reads whole batches of v from pos (the batch at offset
// expect) into one new buffer: at least one, then more while they fit
// maxBytes, and at most maxCount when it is not negative. Each batch is
// verified (CRC, structure, offsets continuing). It returns the bytes and
// the batches' ends within them.
func (l *Log) readBatches(v view, pos, expect int64, maxBytes, maxCount int) ([]byte, []int, error) {
	maxBytes = max(1, min(maxBytes, base.LogReadBytesMax))
	h, err := headerAt(v.s.file, pos, v.size)
	if err != nil {
		return nil, nil, l.changedOr(v, corrupt(v.s.path, pos, err))
	}
	n := max(int64(h.Size()), min(int64(maxBytes), v.size-pos))
	buf := make([]byte, n)
	if err := readFull(v.s.file, buf, pos); err != nil {
		return nil, nil, l.changedOr(v, fmt.Errorf("log: reading %s at %d: %w", v.s.path, pos, err))
	}
	var ends []int
	at := 0
	for at < len(buf) && (maxCount < 0 || len(ends) < maxCount) {
		hh, err := batch.ParseHeader(buf[at:])
		if err == nil && at+hh.Size() > len(buf) {
			break // the next batch does not fit maxBytes
		}
		if err == nil {
			hh, err = batch.CheckCRC(buf[at : at+hh.Size()]) // records were validated at append
		}
		if err == nil && hh.BaseOffset != expect {
			err = fmt.Errorf("batch has offset %d, want %d", hh.BaseOffset, expect)
		}
		if err != nil {
			if len(buf)-at < batch.HeaderSize && len(ends) > 0 {
				break // a partial header past maxBytes
			}
			return nil, nil, l.changedOr(v, corrupt(v.s.path, pos+int64(at), err))
		}
		at += hh.Size()
		expect = hh.NextOffset()
		ends = append(ends, at)
	}
	if !l.stillValid(v) {
		return nil, nil, errChanged
	}
	return buf[:at:at], ends, nil
}

// Entries returns the batches with Index in [lo, hi), at least one and
// more while their total stays within maxBytes (capped at
// base.LogReadBytesMax), continuing across segments. Indexes outside
// [FirstIndex, LastIndex] fail with CodeOutOfRange. Each returned slice is
// the caller's.
func (l *Log) Entries(lo, hi uint64, maxBytes int) ([][]byte, error) {
	var out [][]byte
	budget := max(1, min(maxBytes, base.LogReadBytesMax))
	for lo < hi && (len(out) == 0 || budget > 0) {
		var got [][]byte
		var err error
		for attempt := 0; ; attempt++ {
			got, err = l.entriesOnce(lo, hi, budget, len(out) == 0)
			if !errors.Is(err, errChanged) || attempt == readAttempts {
				break
			}
		}
		if err != nil {
			return nil, err
		}
		if len(got) == 0 {
			break
		}
		for _, b := range got {
			budget -= len(b)
		}
		out = append(out, got...)
		lo += uint64(len(got))
	}
	return out, nil
}

// entriesOnce reads batches from lo within one segment. Only the first
// call of an Entries must return at least one batch (first).
func (l *Log) entriesOnce(lo, hi uint64, budget int, first bool) ([][]byte, error) {
	l.stateMu.RLock()
	if err := l.readable(); err != nil {
		l.stateMu.RUnlock()
		return nil, err
	}
	last := l.active().nextIndex - 1
	if lo < l.firstIndex || lo > last || hi <= lo {
		fi := l.firstIndex
		l.stateMu.RUnlock()
		if !first && lo == last+1 {
			return nil, nil
		}
		return nil, base.Errorf(base.CodeOutOfRange, "log %s: entries [%d, %d) outside [%d, %d]", l.dir, lo, hi, fi, last)
	}
	s := l.segmentOfIndex(lo)
	v, ok := l.pinLocked(s, uint32(lo-s.baseIndex), true)
	l.stateMu.RUnlock()
	if !ok {
		return nil, corrupt(s.path, segHeaderSize, errors.New("no index entry for the first batch"))
	}
	defer v.s.unpin()
	pos, h, err := walkTo(v.s, v.size, int64(v.entry.pos), s.baseIndex+uint64(v.entry.relIndex), func(_ *batch.Header, i uint64) bool { return i == lo })
	if err != nil {
		return nil, l.changedOr(v, err)
	}
	if !first && h.Size() > budget {
		return nil, nil
	}
	count := hi - lo
	buf, ends, err := l.readBatches(v, pos, h.BaseOffset, budget, int(min(count, math.MaxInt32)))
	if err != nil {
		return nil, err
	}
	out := make([][]byte, len(ends))
	start := 0
	for i, end := range ends {
		out[i] = buf[start:end:end]
		start = end
	}
	return out, nil
}

// Term returns the Raft term of the batch with Index index. Indexes
// outside [FirstIndex, LastIndex] fail with CodeOutOfRange.
func (l *Log) Term(index uint64) (uint64, error) {
	l.stateMu.RLock()
	defer l.stateMu.RUnlock()
	if err := l.readable(); err != nil {
		return 0, err
	}
	if last := l.active().nextIndex - 1; index < l.firstIndex || index > last {
		return 0, base.Errorf(base.CodeOutOfRange, "log %s: index %d outside [%d, %d]", l.dir, index, l.firstIndex, last)
	}
	return termAt(l.runs, index), nil
}

// LookupTime returns the base offset of the first batch whose maxTimestamp
// is at least ts, or NextOffset when there is none.
func (l *Log) LookupTime(ts int64) (int64, error) {
	for attempt := 0; ; attempt++ {
		off, err := l.lookupTimeOnce(ts)
		if !errors.Is(err, errChanged) || attempt == readAttempts {
			return off, err
		}
	}
}

func (l *Log) lookupTimeOnce(ts int64) (int64, error) {
	for i := 0; ; i++ {
		off, found, err := l.lookupTimeIn(i, ts)
		if err != nil || found {
			return off, err
		}
	}
}

// lookupTimeIn looks for ts in the i-th segment if its maximum timestamp
// reaches ts; past the last segment it returns NextOffset, found.
func (l *Log) lookupTimeIn(i int, ts int64) (int64, bool, error) {
	l.stateMu.RLock()
	if err := l.readable(); err != nil {
		l.stateMu.RUnlock()
		return 0, false, err
	}
	first, next := l.firstOffset, l.active().nextOffset
	if i >= len(l.segs) {
		l.stateMu.RUnlock()
		return next, true, nil
	}
	s := l.segs[i]
	if s.maxTs < ts || s.nextOffset <= first || s.empty() {
		l.stateMu.RUnlock()
		return 0, false, nil
	}
	// Start at the last time entry below ts: no batch up to it reaches ts.
	rel := uint32(0)
	for j := len(s.tix) - 1; j >= 0; j-- {
		if s.tix[j].maxTs < ts {
			rel = s.tix[j].relOffset
			break
		}
	}
	v, ok := l.pinLocked(s, rel, false)
	l.stateMu.RUnlock()
	if !ok {
		return 0, false, corrupt(s.path, segHeaderSize, errors.New("no index entry for the first batch"))
	}
	defer v.s.unpin()
	_, h, err := walkTo(v.s, v.size, int64(v.entry.pos), 0, func(h *batch.Header, _ uint64) bool {
		return h.MaxTimestamp >= ts && h.NextOffset() > first
	})
	switch {
	case err == nil:
		return max(h.BaseOffset, first), true, l.changedOr(v, nil)
	case base.CodeOf(err) == base.CodeOutOfRange:
		return 0, false, l.changedOr(v, nil) // only batches below the logical start reach ts
	}
	return 0, false, l.changedOr(v, err)
}

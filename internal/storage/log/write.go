package log

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/base/vfs"
	"github.com/ferry-mq/ferry/internal/storage/log/batch"
)

// Write validates batch (CRC and structure; it must hold at least one
// record with lastOffsetDelta = recordCount-1), copies it into the log's
// write buffer, and stamps the copy with the next offset and with term (in
// partitionLeaderEpoch). The caller keeps ownership of batch. Terms must
// not decrease along the log and must fit in int32.
//
// The batch is NOT durable: Sync or SyncAll makes it so. It becomes
// visible to readers when flushed: at Sync, when the buffer reaches
// base.LogWriteBufferBytes, at a segment roll or a truncation. After an
// error from Write or Sync, batches written since the last flush may have
// been dropped (LastIndex says what the log holds): a CodeNoSpace error
// leaves the log usable; a CodeStorageFailed one has made it fail-stop.
//
// Write, Sync, SyncAll and the truncations must be called from one
// goroutine at a time; they may be mixed with Append.
func (l *Log) Write(term uint64, b []byte) (Position, error) {
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	return l.writeLocked(term, b)
}

// WriteValidated is Write for a batch the caller has validated: b was
// built in this process by batch.Builder or batch.AppendControl, or passed
// batch.Validate and Write's record rule (recordCount >= 1, lastOffsetDelta
// = recordCount-1), and has not been modified since. It skips what a
// second validation would repeat, the CRC and the walk over the records,
// which is most of Write's CPU for small batches (the replication engine
// writes its own commands and the data batches it validated when they were
// proposed this way). The header is still parsed and checked (magic,
// limits, batchLength = len(b), the record rule, the term rules), so a
// broken caller cannot misplace offsets or index entries; but a batch whose
// CRC or records are damaged is stored as it is, and recovery will treat
// it as corruption. Bytes read from the network or from disk must go
// through Write. With base.InvariantsEnabled the batch is validated anyway
// and a batch that fails is a bug (panic).
//
// Everything else (ownership, durability, errors, who may call it) is as
// for Write.
func (l *Log) WriteValidated(term uint64, b []byte) (Position, error) {
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	if base.InvariantsEnabled {
		if _, err := batch.Validate(b); err != nil {
			base.Bugf("log %s: WriteValidated given a batch that does not validate: %v", l.dir, err)
		}
	}
	if err := l.writableLocked(); err != nil {
		return Position{}, err
	}
	h, err := batch.ParseHeader(b)
	if err == nil && h.Size() != len(b) {
		err = base.Errorf(base.CodeCorrupt, "batch: batchLength says %d bytes, have %d", h.Size(), len(b))
	}
	if err != nil {
		return Position{}, fmt.Errorf("log %s: write: %w", l.dir, err)
	}
	return l.writeCheckedLocked(term, b, h)
}

func (l *Log) writeLocked(term uint64, b []byte) (Position, error) {
	if err := l.writableLocked(); err != nil {
		return Position{}, err
	}
	h, err := batch.Validate(b)
	if err != nil {
		return Position{}, fmt.Errorf("log %s: write: %w", l.dir, err)
	}
	return l.writeCheckedLocked(term, b, h)
}

// writeCheckedLocked writes b, whose header h has been parsed and whose
// body has been validated (by writeLocked, or by WriteValidated's caller).
func (l *Log) writeCheckedLocked(term uint64, b []byte, h batch.Header) (Position, error) {
	switch {
	case h.RecordCount < 1 || h.LastOffsetDelta != h.RecordCount-1:
		return Position{}, base.Errorf(base.CodeInvalidArgument, "log %s: a batch needs records with consecutive offsets: %d records, lastOffsetDelta %d", l.dir, h.RecordCount, h.LastOffsetDelta)
	case term > maxTerm:
		return Position{}, base.Errorf(base.CodeInvalidArgument, "log %s: term %d does not fit the batch's int32 epoch", l.dir, term)
	case term < l.t.lastTerm:
		return Position{}, base.Errorf(base.CodeInvalidArgument, "log %s: term %d is below the last term %d", l.dir, term, l.t.lastTerm)
	}
	if l.needRollLocked(len(b)) {
		if err := l.rollLocked(); err != nil {
			return Position{}, err
		}
	}
	t := &l.t
	start := len(t.pending)
	t.pending = append(t.pending, b...)
	stamped := t.pending[start:]
	batch.SetBaseOffset(stamped, t.cur.nextOffset)
	batch.SetEpoch(stamped, int32(term))
	h.BaseOffset, h.Epoch = t.cur.nextOffset, int32(term)
	index := t.cur.nextIndex
	e, addE, te, addT := t.cur.add(&h, int64(len(b)), term)
	if addE {
		t.idx = append(t.idx, e)
	}
	if addT {
		t.tix = append(t.tix, te)
	}
	if !t.hasRun || term != t.lastTerm {
		t.runs = append(t.runs, termRun{firstIndex: index, term: term})
		t.hasRun = true
	}
	t.lastTerm = term
	pos := Position{Index: index, BaseOffset: h.BaseOffset, NextOffset: h.NextOffset()}
	if len(t.pending) >= base.LogWriteBufferBytes {
		if err := l.flushLocked(); err != nil {
			return Position{}, err
		}
	}
	return pos, nil
}

// lastPublishedTerm reads l.runs, which only the writer changes, so
// writeMu suffices.
func (l *Log) lastPublishedTerm() uint64 {
	if n := len(l.runs); n > 0 {
		return l.runs[n-1].term
	}
	return 0
}

// SetRolling changes the size and age at which the active segment rolls
// (Options.SegmentBytes and SegmentAge, with their defaults for 0), for
// the writes after it: a topic's segment.bytes and segment.ms altered
// while it runs. The size is then fixed: SegmentBytesGrowTo no longer
// applies. A segment already past the new size rolls at its next write.
func (l *Log) SetRolling(bytes int64, age time.Duration) error {
	bytes, age, err := rolling(bytes, age)
	if err != nil {
		return err
	}
	l.writeMu.Lock()
	l.opts.SegmentBytes, l.opts.SegmentAge, l.opts.SegmentBytesGrowTo = bytes, age, 0
	l.writeMu.Unlock()
	return nil
}

// rollBytesLocked is the size at which the active segment rolls:
// SegmentBytes, doubled for every base.SegmentGrowthEvery segments the log
// holds (the active one included), up to SegmentBytesGrowTo (when that is
// larger).
func (l *Log) rollBytesLocked() int64 {
	size, grow := l.opts.SegmentBytes, l.opts.SegmentBytesGrowTo
	if grow <= size {
		return size
	}
	// size is below SegmentBytesMax (2^32): a shift of 30 cannot overflow.
	return min(grow, size<<min(len(l.segs)/base.SegmentGrowthEvery, 30))
}

func (l *Log) needRollLocked(size int) bool {
	c := &l.t.cur
	if c.nextIndex == c.baseIndex {
		return false // an empty segment takes any batch
	}
	if c.size+int64(size) > l.rollBytesLocked() {
		return true
	}
	return l.clock.Now().UnixMilli()-l.active().createdMs >= l.opts.SegmentAge.Milliseconds()
}

// resetTailLocked forgets what was written but not flushed and restarts
// the tail at the active segment's published end.
func (l *Log) resetTailLocked() {
	s := l.active()
	l.t.cur = newCursor(s, l.opts.IndexIntervalBytes)
	l.t.pending = l.t.pending[:0]
	if cap(l.t.pending) > 2*base.LogWriteBufferBytes {
		l.t.pending = nil // do not keep a buffer grown by one huge batch
	}
	l.t.idx, l.t.tix, l.t.runs = l.t.idx[:0], l.t.tix[:0], l.t.runs[:0]
	l.t.lastTerm = l.lastPublishedTerm()
	l.t.hasRun = len(l.runs) > 0
	if !s.empty() {
		l.t.cur.lastRel = l.lastRelOffsetLocked(s)
	}
}

// lastRelOffsetLocked finds the relative base offset of the last batch of
// a non-empty segment by walking from its last index entry.
func (l *Log) lastRelOffsetLocked(s *segment) uint32 {
	e := s.idx[len(s.idx)-1]
	pos := int64(e.pos)
	rel := e.relOffset
	for {
		h, err := headerAt(s.file, pos, s.size)
		if err != nil || pos+int64(h.Size()) >= s.size {
			return rel
		}
		pos += int64(h.Size())
		rel = uint32(h.NextOffset() - s.baseOffset)
	}
}

// flushLocked writes the tail to the active segment and its index files
// and publishes it to readers.
func (l *Log) flushLocked() error {
	if l.failed != nil {
		return l.failed
	}
	t, s := &l.t, l.active()
	if len(t.pending) == 0 && len(t.idx) == 0 && len(t.tix) == 0 {
		return nil
	}
	if len(t.pending) > 0 {
		if _, err := s.file.Write(t.pending); err != nil {
			return l.writeFailedLocked(s, "write", err)
		}
	}
	l.stateMu.Lock()
	s.size, s.nextIndex, s.nextOffset, s.maxTs = t.cur.size, t.cur.nextIndex, t.cur.nextOffset, t.cur.maxTs
	s.idx = append(s.idx, t.idx...)
	s.tix = append(s.tix, t.tix...)
	l.runs = append(l.runs, t.runs...)
	l.stateMu.Unlock()
	t.pending, t.idx, t.tix, t.runs = t.pending[:0], t.idx[:0], t.tix[:0], t.runs[:0]
	if cap(t.pending) > 2*base.LogWriteBufferBytes {
		t.pending = nil
	}
	return nil
}

// writeIndexTailLocked appends to the active segment's index files the
// entries published since the last call. Index files are written only
// here, at checkpoints, rolls and Close, not per flush: the entries live in
// memory, and those past the recovery point are rebuilt by recovery anyway.
// On ENOSPC the files are cut back and CodeNoSpace returned; other errors
// are returned as they are.
func (l *Log) writeIndexTailLocked(s *segment) error {
	var err error
	if n := len(s.idx); n > s.idxWritten {
		l.scratch = l.scratch[:0]
		for _, e := range s.idx[s.idxWritten:] {
			l.scratch = appendIndexEntry(l.scratch, e)
		}
		if _, err = s.idxFile.Write(l.scratch); err == nil {
			s.idxWritten = n
		}
	}
	if n := len(s.tix); err == nil && n > s.tixWritten {
		l.scratch = l.scratch[:0]
		for _, e := range s.tix[s.tixWritten:] {
			l.scratch = appendTimeEntry(l.scratch, e)
		}
		if _, err = s.tixFile.Write(l.scratch); err == nil {
			s.tixWritten = n
		}
	}
	if err == nil || !isNoSpace(err) {
		return err
	}
	for _, c := range []struct {
		f    vfs.File
		size int64
	}{{s.idxFile, int64(s.idxWritten) * idxEntrySize}, {s.tixFile, int64(s.tixWritten) * tixEntrySize}} {
		if terr := c.f.Truncate(c.size); terr != nil {
			return terr
		}
		if _, serr := c.f.Seek(c.size, io.SeekStart); serr != nil {
			return serr
		}
	}
	return base.Errorf(base.CodeNoSpace, "log %s: writing an index: disk full: %w", l.dir, err)
}

// writeFailedLocked handles a failed write of the tail. ENOSPC: cut the
// files back to what is published, drop the tail, and report CodeNoSpace;
// the log stays usable. Anything else: fail-stop.
func (l *Log) writeFailedLocked(s *segment, op string, err error) error {
	if !isNoSpace(err) {
		return l.failLocked(op, err)
	}
	if cerr := l.cutFilesLocked(s); cerr != nil {
		return l.failLocked("truncate after ENOSPC", cerr)
	}
	l.resetTailLocked()
	return base.Errorf(base.CodeNoSpace, "log %s: %s: disk full; the batches written since the last flush were dropped: %w", l.dir, op, err)
}

// cutFilesLocked truncates the active segment file to its published
// contents and puts the write position there.
func (l *Log) cutFilesLocked(s *segment) error {
	if err := s.file.Truncate(s.size); err != nil {
		return err
	}
	_, err := s.file.Seek(s.size, io.SeekStart)
	return err
}

// Sync flushes what was written and makes it durable: DurableIndex reaches
// LastIndex. An fsync error makes the log fail-stop.
func (l *Log) Sync() error {
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	if err := l.syncLocked(); err != nil {
		return err
	}
	return l.maybeCheckpointLocked()
}

func (l *Log) syncLocked() error {
	if err := l.writableLocked(); err != nil {
		return err
	}
	if err := l.flushLocked(); err != nil {
		return err
	}
	s := l.active()
	if s.synced == s.size {
		return nil
	}
	if err := s.file.Sync(); err != nil {
		return l.failLocked("fsync", err)
	}
	l.dataSyncs.Add(1)
	l.markSyncedLocked()
	return nil
}

// markSyncedLocked records that the active segment is durable to its
// published end.
func (l *Log) markSyncedLocked() {
	s := l.active()
	s.synced = s.size
	l.stateMu.Lock()
	l.durableIndex = s.nextIndex - 1
	l.stateMu.Unlock()
}

// SyncAll flushes each log and then makes all of them durable with one
// vfs.FS.SyncFiles call, so that a node's many logs cost one device flush
// (one syncfs(2) on Linux). All logs must share one vfs.FS. An fsync error
// makes every log in the call fail-stop, since which file failed is not
// known.
func SyncAll(logs ...*Log) error {
	if len(logs) == 0 {
		return nil
	}
	sorted := sortedUnique(logs)
	for _, l := range sorted {
		if l.fs != sorted[0].fs {
			return base.Errorf(base.CodeInvalidArgument, "log: SyncAll over logs of different file systems")
		}
	}
	for _, l := range sorted {
		l.writeMu.Lock()
	}
	defer func() {
		for _, l := range sorted {
			l.writeMu.Unlock()
		}
	}()
	var files []struct {
		l *Log
		s *segment
	}
	for _, l := range sorted {
		if err := l.writableLocked(); err != nil {
			return err
		}
		if err := l.flushLocked(); err != nil {
			return err
		}
		if s := l.active(); s.synced < s.size {
			files = append(files, struct {
				l *Log
				s *segment
			}{l, s})
		}
	}
	if len(files) > 0 {
		fs := make([]vfs.File, len(files))
		for i, f := range files {
			fs[i] = f.s.file
		}
		if err := sorted[0].fs.SyncFiles(fs...); err != nil {
			var first error
			for _, f := range files {
				if e := f.l.failLocked("fsync (SyncAll)", err); first == nil {
					first = e
				}
			}
			return first
		}
		for _, f := range files {
			f.l.dataSyncs.Add(1)
			f.l.markSyncedLocked()
		}
	}
	for _, l := range sorted {
		if err := l.maybeCheckpointLocked(); err != nil {
			return err
		}
	}
	return nil
}

// sortedUnique returns logs without duplicates, in the order of their ids,
// which is the order SyncAll locks them in (so two SyncAll calls cannot
// deadlock).
func sortedUnique(logs []*Log) []*Log {
	out := slices.Clone(logs)
	slices.SortFunc(out, func(a, b *Log) int { return cmp.Compare(a.id, b.id) })
	return slices.Compact(out)
}

package log

import (
	"fmt"
	"io"
	"time"

	"github.com/ferry-mq/ferry/internal/base"
)

// TruncateSuffix drops the batches with Index >= from (a Raft log
// conflict). It is durable with the next Sync: a crash before that may
// bring the dropped batches back, never a mix. from must not be below
// FirstIndex; from past LastIndex is a no-op.
func (l *Log) TruncateSuffix(from uint64) error {
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	if err := l.writableLocked(); err != nil {
		return err
	}
	if err := l.flushLocked(); err != nil {
		return err
	}
	if from >= l.active().nextIndex {
		return nil
	}
	if from < l.firstIndex {
		return base.Errorf(base.CodeOutOfRange, "log %s: cannot truncate from %d, below the first index %d", l.dir, from, l.firstIndex)
	}
	k := 0
	for k < len(l.segs)-1 && l.segs[k+1].baseIndex <= from {
		k++
	}
	if from == l.segs[k].baseIndex && k > 0 {
		k-- // cut at the end of the previous segment, which becomes active
	}
	target := l.segs[k]
	cutPos, cutOffset := target.size, target.nextOffset
	if from < target.nextIndex {
		pos, h, err := l.locateIndex(target, from)
		if err != nil {
			return err
		}
		cutPos, cutOffset = pos, h.BaseOffset
	}
	// The recovery point must not stay above data that will be rewritten.
	if c := l.ckpt; c.rpSegment > target.baseIndex || (c.rpSegment == target.baseIndex && c.rpPos > cutPos) {
		c.rpSegment, c.rpPos = target.baseIndex, cutPos
		if err := l.writeCheckpointLocked(c); err != nil {
			return l.failLocked("checkpoint before truncation", err)
		}
	}
	if err := l.removeSegmentsLocked(k+1, len(l.segs)); err != nil {
		return err
	}
	return l.cutSegmentLocked(target, from, cutPos, cutOffset)
}

// removeSegmentsLocked removes segments [i, j) from the list and their
// files from the directory, and syncs the directory: before it returns,
// or with Options.RemoveInBackground in a goroutine of its own that the
// next change of the directory waits for (awaitRemovalLocked).
func (l *Log) removeSegmentsLocked(i, j int) error {
	if i >= j {
		return nil
	}
	if err := l.awaitRemovalLocked(); err != nil {
		return err
	}
	l.stateMu.Lock()
	removed := make([]uint64, 0, j-i)
	for _, s := range l.segs[i:j] {
		s.closeIndexFiles()
		s.kill()
		removed = append(removed, s.baseIndex)
	}
	l.segs = append(l.segs[:i:i], l.segs[j:]...)
	l.stateMu.Unlock()
	if !l.opts.RemoveInBackground {
		if err := l.removeFiles(removed); err != nil {
			return l.failLocked("segment removal", err)
		}
		return nil
	}
	r := &removal{done: make(chan struct{})}
	l.removal = r
	go func() {
		defer close(r.done)
		r.err = l.removeFiles(removed)
	}()
	return nil
}

// removal is a removal of segment files running in the background.
type removal struct {
	done chan struct{}
	err  error // set before done closes
}

// removeFiles removes the files of the segments at the given base indexes
// and syncs the directory. Those segments are out of the list, so nothing
// else touches their files.
func (l *Log) removeFiles(bases []uint64) error {
	for _, b := range bases {
		if err := l.removeSegmentFiles(b); err != nil {
			return err
		}
	}
	if err := l.fs.SyncDir(l.dir); err != nil {
		return fmt.Errorf("log: syncing %s: %w", l.dir, err)
	}
	return nil
}

// awaitRemovalLocked waits for the background removal in progress, if
// any: every change to the directory's files comes after it, so that a
// file it is about to remove is never one created since. Its failure
// fail-stops the log, as a removal done in place would have.
func (l *Log) awaitRemovalLocked() error {
	r := l.removal
	if r == nil {
		return nil
	}
	<-r.done
	l.removal = nil
	if r.err != nil {
		return l.failLocked("segment removal", r.err)
	}
	return nil
}

// cutSegmentLocked truncates the last segment s so that its next batch is
// from, at cutPos with offset cutOffset, and rewrites its indexes. The new
// end is published (and the generation bumped, so pinned readers retry)
// before the file shrinks: no reader may trust a size the file no longer
// has.
func (l *Log) cutSegmentLocked(s *segment, from uint64, cutPos, cutOffset int64) error {
	idx := s.idx
	for len(idx) > 0 && s.baseIndex+uint64(idx[len(idx)-1].relIndex) >= from {
		idx = idx[:len(idx)-1]
	}
	tix := s.tix
	for len(tix) > 0 && s.baseOffset+int64(tix[len(tix)-1].relOffset) >= cutOffset {
		tix = tix[:len(tix)-1]
	}
	if n := len(tix); n > 0 && !hasOffsetEntry(idx, tix[n-1].relOffset) {
		tix = tix[:n-1] // a roll's final entry: the segment is active again
	}
	maxTs, err := maxTimestampTo(s, idx, tix, cutPos)
	if err != nil {
		return err
	}
	l.stateMu.Lock()
	s.size, s.nextIndex, s.nextOffset, s.maxTs = cutPos, from, cutOffset, maxTs
	s.idx, s.tix = idx, tix
	s.gen++
	l.runs = truncateRuns(l.runs, from)
	l.durableIndex = min(l.durableIndex, from-1)
	l.stateMu.Unlock()
	s.synced = min(s.synced, cutPos)
	if err := s.file.Truncate(cutPos); err != nil {
		return l.failLocked("truncate", err)
	}
	if _, err := s.file.Seek(cutPos, io.SeekStart); err != nil {
		return l.failLocked("seek", err)
	}
	if err := l.writeIndexFilesLocked(s, true); err != nil {
		return l.failLocked("index rewrite", err)
	}
	l.resetTailLocked()
	return nil
}

// maxTimestampTo recomputes a segment's maximum timestamp up to end from
// its kept index entries: the time entry at the last index entry holds
// the maximum up to there (see cursor), and the batches after it are read.
func maxTimestampTo(s *segment, idx []indexEntry, tix []timeEntry, end int64) (int64, error) {
	if len(idx) == 0 {
		return noTimestamp, nil
	}
	p := idx[len(idx)-1]
	m := int64(noTimestamp)
	for i := len(tix) - 1; i >= 0; i-- {
		if tix[i].relOffset <= p.relOffset {
			m = tix[i].maxTs
			break
		}
	}
	for pos := int64(p.pos); pos < end; {
		h, err := headerAt(s.file, pos, end)
		if err != nil {
			return 0, corrupt(s.path, pos, err)
		}
		m = max(m, h.MaxTimestamp)
		pos += int64(h.Size())
	}
	return m, nil
}

// TruncatePrefix moves the log's logical start to beforeIndex (after a Raft
// snapshot) and deletes the segments wholly below it. The start is durable
// when it returns. Only durable batches may be dropped: beforeIndex must
// not exceed DurableIndex+1.
func (l *Log) TruncatePrefix(beforeIndex uint64) error {
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	if err := l.writableLocked(); err != nil {
		return err
	}
	if beforeIndex <= l.firstIndex {
		return nil
	}
	if beforeIndex > l.durableIndex+1 {
		return base.Errorf(base.CodeInvalidArgument, "log %s: cannot drop up to %d: only batches up to the durable index %d may be dropped", l.dir, beforeIndex, l.durableIndex)
	}
	off, err := l.offsetOfIndexLocked(beforeIndex)
	if err != nil {
		return err
	}
	return l.moveStartLocked(beforeIndex, off)
}

// PrefixBytes returns how many bytes of segments TruncatePrefix(beforeIndex)
// would delete now: those wholly below beforeIndex, the active one
// included when it holds batches and all of them are below (TruncatePrefix
// then rolls it first).
func (l *Log) PrefixBytes(beforeIndex uint64) int64 {
	l.stateMu.RLock()
	defer l.stateMu.RUnlock()
	var n int64
	for _, s := range l.segs {
		if s.nextIndex > beforeIndex || s.nextIndex == s.baseIndex {
			break
		}
		n += s.size
	}
	return n
}

// moveStartLocked records a new logical start in the checkpoint, then
// deletes the segments wholly below it. The active segment is rolled first
// when everything written to it is below the start (a queue its consumers
// drained): otherwise its batches would stay on disk until it fills.
func (l *Log) moveStartLocked(first uint64, firstOffset int64) error {
	c := l.ckpt
	c.firstIndex, c.firstOffset = first, firstOffset
	if err := l.writeCheckpointLocked(c); err != nil {
		return l.failLocked("checkpoint", err)
	}
	l.stateMu.Lock()
	l.firstIndex, l.firstOffset = first, firstOffset
	k := 0
	for k < len(l.runs)-1 && l.runs[k+1].firstIndex <= first {
		k++
	}
	l.runs = l.runs[k:]
	l.stateMu.Unlock()
	if a := l.active(); a.nextIndex > a.baseIndex && l.t.cur.nextIndex <= first {
		// A full disk leaves the segment active (and the start moved): the
		// space comes back at the next truncation.
		if err := l.rollLocked(); err != nil && base.CodeOf(err) != base.CodeNoSpace {
			return err
		}
	}
	n := 0
	for n < len(l.segs)-1 && l.segs[n].nextIndex <= first {
		n++
	}
	return l.removeSegmentsLocked(0, n)
}

// Reset drops every batch; the next batch written gets Index nextIndex and
// offset nextOffset (a Raft snapshot install). It is durable when it
// returns; a crash during it leaves either the old log or the empty one.
func (l *Log) Reset(nextIndex uint64, nextOffset int64) error {
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	if err := l.writableLocked(); err != nil {
		return err
	}
	if nextIndex == 0 || nextOffset < 0 {
		return base.Errorf(base.CodeInvalidArgument, "log %s: Reset(%d, %d): index must be positive, offset not negative", l.dir, nextIndex, nextOffset)
	}
	if err := l.awaitRemovalLocked(); err != nil {
		return err
	}
	l.resetTailLocked()
	c := checkpoint{resetPending: true, firstIndex: nextIndex, firstOffset: nextOffset, rpSegment: nextIndex, rpPos: segHeaderSize}
	if err := l.writeCheckpointLocked(c); err != nil {
		return l.failLocked("checkpoint", err)
	}
	l.stateMu.Lock()
	defer l.stateMu.Unlock() // readers wait for the few fsyncs a Reset takes
	for _, s := range l.segs {
		s.closeIndexFiles()
		s.kill()
		if err := l.removeSegmentFiles(s.baseIndex); err != nil {
			return l.brokenResetLocked(nextIndex, nextOffset, err)
		}
	}
	if err := l.fs.SyncDir(l.dir); err != nil {
		return l.brokenResetLocked(nextIndex, nextOffset, err)
	}
	s, err := l.createSegmentLocked(nextIndex, nextOffset)
	if err != nil {
		return l.brokenResetLocked(nextIndex, nextOffset, err)
	}
	l.segs, l.runs = []*segment{s}, nil
	l.firstIndex, l.firstOffset, l.durableIndex = nextIndex, nextOffset, nextIndex-1
	c.resetPending, c.rpSegment, c.rpPos = false, nextIndex, segHeaderSize
	if err := l.writeCheckpointLocked(c); err != nil {
		return l.failLocked("checkpoint", err)
	}
	l.resetTailLocked()
	return nil
}

// brokenResetLocked leaves a log whose Reset failed half way: fail-stop,
// and unreadable (its old segments are gone); the next Open completes the
// Reset from the checkpoint. Called with stateMu held.
func (l *Log) brokenResetLocked(nextIndex uint64, nextOffset int64, err error) error {
	l.segs = []*segment{{baseIndex: nextIndex, baseOffset: nextOffset, nextIndex: nextIndex, nextOffset: nextOffset, maxTs: noTimestamp}}
	l.runs, l.firstIndex, l.firstOffset, l.durableIndex = nil, nextIndex, nextOffset, nextIndex-1
	l.readClosed = true
	return l.failLocked("reset", err)
}

// ApplyRetention deletes the oldest segments while the log is over
// RetentionBytes without them, or while their newest batch (max
// timestamp) is older than RetentionAge at now; never the active segment,
// and only whole segments from the front. The logical start moves to the
// first kept segment.
func (l *Log) ApplyRetention(now time.Time) (deletedSegments int, err error) {
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	if err := l.writableLocked(); err != nil {
		return 0, err
	}
	var total int64
	for _, s := range l.segs {
		total += s.size
	}
	n := 0
	for ; n < len(l.segs)-1; n++ {
		s := l.segs[n]
		byBytes := l.opts.RetentionBytes > 0 && total-s.size >= l.opts.RetentionBytes
		byAge := l.opts.RetentionAge > 0 && !s.empty() && s.maxTs < now.UnixMilli()-l.opts.RetentionAge.Milliseconds()
		if !byBytes && !byAge {
			break
		}
		total -= s.size
	}
	if n == 0 {
		return 0, nil
	}
	kept := l.segs[n]
	if kept.baseIndex <= l.firstIndex {
		return 0, nil
	}
	if err := l.moveStartLocked(kept.baseIndex, kept.baseOffset); err != nil {
		return 0, fmt.Errorf("log %s: retention: %w", l.dir, err)
	}
	return n, nil
}

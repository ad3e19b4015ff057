package log

import (
	"fmt"
	"io"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/base/vfs"
)

// rollLocked closes the active segment and starts the next one. The old
// segment's data is fsynced before the new one is created, the new one's
// header is durable (file and directory synced) before any batch goes into
// it, the old one's indexes (with their final time entry) are synced, and
// then the checkpoint moves the recovery point to the new segment.
func (l *Log) rollLocked() error {
	old := l.active()
	if err := l.flushLocked(); err != nil {
		return err
	}
	if err := old.file.Sync(); err != nil {
		return l.failLocked("fsync at segment roll", err)
	}
	l.markSyncedLocked()
	if te, ok := l.t.cur.finalTimeEntry(); ok {
		l.stateMu.Lock()
		old.tix = append(old.tix, te)
		l.stateMu.Unlock()
	}
	if err := l.sealIndexesLocked(old); err != nil {
		return err
	}
	ns, err := l.createSegmentLocked(old.nextIndex, old.nextOffset)
	if err != nil {
		l.unsealLocked(old)
		return err // the old segment stays active
	}
	l.stateMu.Lock()
	l.segs = append(l.segs, ns)
	l.stateMu.Unlock()
	old.closeIndexFiles()
	l.resetTailLocked()
	c := l.ckpt
	c.rpSegment, c.rpPos = ns.baseIndex, segHeaderSize
	if err := l.writeCheckpointLocked(c); err != nil {
		return l.failLocked("checkpoint at segment roll", err)
	}
	return nil
}

// sealIndexesLocked writes and syncs the index files of a segment about to
// be closed. On failure the roll's final time entry is taken back.
func (l *Log) sealIndexesLocked(s *segment) error {
	err := l.writeIndexTailLocked(s)
	if err == nil {
		for _, f := range []vfs.File{s.idxFile, s.tixFile} {
			if err = f.Sync(); err != nil {
				return l.failLocked("index fsync at segment roll", err)
			}
		}
		return nil
	}
	l.unsealLocked(s)
	if base.CodeOf(err) == base.CodeNoSpace {
		return err
	}
	return l.failLocked("index write at segment roll", err)
}

// unsealLocked undoes a roll that did not happen: the final time entry, if
// added, goes (the segment stays active), and the tail restarts from what
// is published.
func (l *Log) unsealLocked(s *segment) {
	if n := len(s.tix); n > 0 && !hasOffsetEntry(s.idx, s.tix[n-1].relOffset) {
		l.stateMu.Lock()
		s.tix = s.tix[:n-1]
		l.stateMu.Unlock()
		if s.tixWritten == n {
			s.tixWritten = n - 1
			if err := s.tixFile.Truncate(int64(n-1) * tixEntrySize); err == nil {
				s.tixFile.Seek(int64(n-1)*tixEntrySize, io.SeekStart)
			}
		}
	}
	l.resetTailLocked()
}

// createSegmentLocked creates a segment file with its header and empty
// index files, all durable (files and directory synced) when it returns.
// ENOSPC is CodeNoSpace with nothing left behind; other errors make the
// log fail-stop.
func (l *Log) createSegmentLocked(baseIndex uint64, baseOffset int64) (*segment, error) {
	if err := l.awaitRemovalLocked(); err != nil {
		return nil, err
	}
	s := &segment{baseIndex: baseIndex, baseOffset: baseOffset, createdMs: l.clock.Now().UnixMilli(),
		path: l.segPath(baseIndex, segExt), size: segHeaderSize, synced: segHeaderSize,
		nextIndex: baseIndex, nextOffset: baseOffset, maxTs: noTimestamp}
	err := l.createSegmentFiles(s)
	if err == nil {
		return s, nil
	}
	for _, f := range []vfs.File{s.file, s.idxFile, s.tixFile} {
		if f != nil {
			f.Close()
		}
	}
	for _, ext := range []string{segExt, idxExt, tixExt} {
		l.fs.Remove(l.segPath(baseIndex, ext)) // best effort: an orphan is removed at the next Open
	}
	if isNoSpace(err) {
		return nil, base.Errorf(base.CodeNoSpace, "log %s: creating segment %d: %w", l.dir, baseIndex, err)
	}
	return nil, l.failLocked("segment creation", err)
}

func (l *Log) createSegmentFiles(s *segment) error {
	var err error
	if s.file, err = l.fs.Create(s.path); err != nil {
		return err
	}
	hdr := segHeader{baseIndex: s.baseIndex, baseOffset: s.baseOffset, createdMs: s.createdMs}
	if _, err := s.file.Write(hdr.encode()); err != nil {
		return err
	}
	if err := s.file.Sync(); err != nil {
		return err
	}
	if s.idxFile, err = l.fs.Create(l.segPath(s.baseIndex, idxExt)); err != nil {
		return err
	}
	if s.tixFile, err = l.fs.Create(l.segPath(s.baseIndex, tixExt)); err != nil {
		return err
	}
	return l.fs.SyncDir(l.dir)
}

// writeCheckpointLocked replaces the checkpoint atomically: write a
// temporary file, fsync it, rename it over the old one, fsync the
// directory.
func (l *Log) writeCheckpointLocked(c checkpoint) error {
	tmp := l.path(checkpointTmpName)
	f, err := l.fs.Create(tmp)
	if err != nil {
		return err
	}
	_, err = f.Write(c.encode())
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = l.fs.Rename(tmp, l.path(checkpointName))
	}
	if err == nil {
		err = l.fs.SyncDir(l.dir)
	}
	if err != nil {
		return fmt.Errorf("writing the checkpoint of %s: %w", l.dir, err)
	}
	l.ckpt, l.lastCkpt = c, l.clock.Now()
	return nil
}

// checkpointLocked moves the recovery point to the end of what is synced,
// syncing the active segment's index files first (the recovery rules trust
// index entries below the recovery point). With force false it does so
// only when the recovery point lags and CheckpointInterval has passed.
func (l *Log) checkpointLocked(force bool) error {
	if err := l.writableLocked(); err != nil {
		return err // fail-stop: no more writes of any kind
	}
	s := l.active()
	c := l.ckpt
	if c.rpSegment == s.baseIndex && c.rpPos == s.synced {
		return nil
	}
	if !force && l.clock.Now().Sub(l.lastCkpt) < l.opts.CheckpointInterval {
		return nil
	}
	if err := l.writeIndexTailLocked(s); err != nil {
		if base.CodeOf(err) == base.CodeNoSpace {
			l.logger.Warn("checkpoint skipped: no space for the index", "err", err)
			return nil // the recovery point stays where it was
		}
		return l.failLocked("index write", err)
	}
	for _, f := range []vfs.File{s.idxFile, s.tixFile} {
		if err := f.Sync(); err != nil {
			return l.failLocked("fsync of an index", err)
		}
	}
	c.rpSegment, c.rpPos = s.baseIndex, s.synced
	if err := l.writeCheckpointLocked(c); err != nil {
		return l.failLocked("checkpoint", err)
	}
	return nil
}

func (l *Log) maybeCheckpointLocked() error { return l.checkpointLocked(false) }

// readCheckpoint returns the checkpoint, and false when there is none.
func (l *Log) readCheckpoint() (checkpoint, bool, error) {
	f, err := l.fs.Open(l.path(checkpointName))
	if isNotExist(err) {
		return checkpoint{}, false, nil
	}
	if err != nil {
		return checkpoint{}, false, fmt.Errorf("log: opening the checkpoint of %s: %w", l.dir, err)
	}
	defer f.Close()
	b := make([]byte, checkpointSize+1) // one more, to notice a longer file
	n, err := f.ReadAt(b, 0)
	if err != nil && err != io.EOF {
		return checkpoint{}, false, fmt.Errorf("log: reading the checkpoint of %s: %w", l.dir, err)
	}
	c, err := decodeCheckpoint(b[:n])
	if err != nil {
		return checkpoint{}, false, corrupt(l.path(checkpointName), 0, err)
	}
	return c, true, nil
}

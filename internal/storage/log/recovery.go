package log

import (
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/base/vfs"
	"github.com/ferry-mq/ferry/internal/storage/log/batch"
)

// recover loads the log directory (see docs/storage-format.md, Recovery).
// It runs inside Open, before the log is shared, but takes writeMu for the
// helpers that expect it.
func (l *Log) recover() error {
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	names, err := l.fs.List(l.dir)
	if err != nil {
		return fmt.Errorf("log: listing %s: %w", l.dir, err)
	}
	bases := l.segmentBases(names)
	ck, ok, err := l.readCheckpoint()
	if err != nil {
		return err
	}
	switch {
	case !ok && len(bases) == 0:
		return l.initFreshLocked(l.opts.FirstIndex, 0)
	case ok && ck.resetPending:
		return l.finishResetLocked(ck, bases)
	case len(bases) == 0 && ck.rpSegment == ck.firstIndex && ck.rpPos == segHeaderSize:
		// A crash before the first segment's creation was durable.
		return l.initFreshLocked(ck.firstIndex, ck.firstOffset)
	case len(bases) == 0:
		return corrupt(l.path(checkpointName), 0, fmt.Errorf("the checkpoint records synced data (%+v) but no segment exists", ck))
	}
	segs, err := l.openSegments(bases)
	if err != nil {
		return err
	}
	l.segs = segs // closed by Open's caller on error
	if !ok {
		l.logger.Warn("log has segments but no checkpoint; recovering from the segments alone")
		ck = checkpoint{firstIndex: segs[0].baseIndex, firstOffset: segs[0].baseOffset,
			rpSegment: segs[len(segs)-1].baseIndex, rpPos: segHeaderSize}
	}
	l.ckpt = ck
	if err := l.dropBelowStartLocked(ck.firstIndex); err != nil {
		return err
	}
	if err := l.loadSegmentsLocked(ck); err != nil {
		return err
	}
	return l.finishOpenLocked(ck)
}

// segmentBases returns the base indexes of the segment files among names,
// in order, and removes leftovers: a checkpoint.tmp, and index files whose
// segment is gone (a removal interrupted by a crash).
func (l *Log) segmentBases(names []string) []uint64 {
	segs := map[uint64]bool{}
	var bases []uint64
	for _, n := range names {
		if b, ok := parseSegName(n, segExt); ok {
			segs[b] = true
			bases = append(bases, b)
		}
	}
	for _, n := range names {
		b, isIdx := parseSegName(n, idxExt)
		if !isIdx {
			b, isIdx = parseSegName(n, tixExt)
		}
		if (isIdx && !segs[b]) || n == checkpointTmpName {
			l.logger.Info("removing leftover file", "file", n)
			l.fs.Remove(l.path(n)) // best effort; it is looked for again next time
		}
	}
	return bases // List returns sorted names, and the names sort as numbers
}

func parseSegName(name, ext string) (uint64, bool) {
	digits, ok := strings.CutSuffix(name, ext)
	if !ok || len(digits) != 20 {
		return 0, false
	}
	b, err := strconv.ParseUint(digits, 10, 64)
	return b, err == nil && b > 0
}

// openSegments opens each segment file and checks its header.
func (l *Log) openSegments(bases []uint64) ([]*segment, error) {
	var segs []*segment
	for _, b := range bases {
		s := &segment{path: l.segPath(b, segExt), maxTs: noTimestamp}
		f, err := l.fs.OpenReadWrite(s.path)
		if err != nil {
			closeSegs(segs)
			return nil, fmt.Errorf("log: opening %s: %w", s.path, err)
		}
		s.file = f
		segs = append(segs, s)
		var hb [segHeaderSize]byte
		if err := readFull(f, hb[:], 0); err != nil {
			closeSegs(segs)
			return nil, corrupt(s.path, 0, fmt.Errorf("reading the segment header: %w", err))
		}
		h, err := decodeSegHeader(hb[:])
		if err == nil && h.baseIndex != b {
			err = fmt.Errorf("header says base index %d, the name %d", h.baseIndex, b)
		}
		if err != nil {
			closeSegs(segs)
			return nil, corrupt(s.path, 0, err)
		}
		s.baseIndex, s.baseOffset, s.createdMs = h.baseIndex, h.baseOffset, h.createdMs
		s.nextIndex, s.nextOffset, s.size = h.baseIndex, h.baseOffset, segHeaderSize
	}
	return segs, nil
}

func closeSegs(segs []*segment) {
	for _, s := range segs {
		s.file.Close()
	}
}

// dropBelowStartLocked removes segments wholly below the logical start:
// left behind when a crash interrupted TruncatePrefix or retention after
// the checkpoint moved the start.
func (l *Log) dropBelowStartLocked(first uint64) error {
	removed := false
	for len(l.segs) > 1 && l.segs[1].baseIndex <= first {
		s := l.segs[0]
		s.file.Close()
		if err := l.removeSegmentFiles(s.baseIndex); err != nil {
			return err
		}
		l.segs = l.segs[1:]
		removed = true
	}
	if removed {
		return l.fs.SyncDir(l.dir)
	}
	return nil
}

func (l *Log) removeSegmentFiles(baseIndex uint64) error {
	for _, ext := range []string{segExt, idxExt, tixExt} {
		if err := l.fs.Remove(l.segPath(baseIndex, ext)); err != nil && !isNotExist(err) {
			return fmt.Errorf("log: removing %s: %w", l.segPath(baseIndex, ext), err)
		}
	}
	return nil
}

// loadSegmentsLocked establishes each segment's end, indexes and terms.
// Segments below the recovery point's segment were fully synced before
// their successor was created: their indexes are validated (or rebuilt)
// and a bad batch in them is corruption. The others are scanned from the
// last trustworthy index entry, verifying every batch; only in the last
// segment, at or past the recovery point, may a bad batch be a torn tail.
func (l *Log) loadSegmentsLocked(ck checkpoint) error {
	var runs []termRun
	for i, s := range l.segs {
		if i > 0 {
			prev := l.segs[i-1]
			if s.baseIndex != prev.nextIndex || s.baseOffset != prev.nextOffset {
				return corrupt(s.path, 0, fmt.Errorf("segment starts at index %d offset %d, but the previous one ends at %d %d",
					s.baseIndex, s.baseOffset, prev.nextIndex, prev.nextOffset))
			}
		}
		last := i == len(l.segs)-1
		size, err := s.file.Size()
		if err != nil {
			return fmt.Errorf("log: %s: %w", s.path, err)
		}
		lastTerm := uint64(0)
		if n := len(runs); n > 0 {
			lastTerm = runs[n-1].term
		}
		switch {
		case s.baseIndex < ck.rpSegment && !last:
			err = l.loadSealed(s, size, lastTerm)
		case s.baseIndex == ck.rpSegment:
			err = l.loadTail(s, size, ck.rpPos, last, lastTerm)
		case s.baseIndex > ck.rpSegment:
			err = l.loadTail(s, size, segHeaderSize, last, lastTerm)
		default: // the recovery point lies beyond the last segment: all of it was synced
			err = l.loadTail(s, size, math.MaxInt64, last, lastTerm)
		}
		if err != nil {
			return err
		}
		for _, e := range s.idx {
			runs = observeTerm(runs, s.baseIndex+uint64(e.relIndex), e.term)
		}
	}
	l.runs = runs
	return nil
}

// readIndexes reads a segment's index files; an error means they are
// missing or malformed and must be rebuilt.
func (l *Log) readIndexes(s *segment, segSize int64) ([]indexEntry, []timeEntry, error) {
	ib, err := l.readIndexFile(l.segPath(s.baseIndex, idxExt))
	if err != nil {
		return nil, nil, err
	}
	idx, err := decodeIndex(ib, segSize)
	if err != nil {
		return nil, nil, err
	}
	tb, err := l.readIndexFile(l.segPath(s.baseIndex, tixExt))
	if err != nil {
		return nil, nil, err
	}
	tix, err := decodeTimeIndex(tb)
	if err != nil {
		return nil, nil, err
	}
	return idx, tix, nil
}

// readIndexFile reads a whole index file, refusing one over IndexBytesMax
// before allocating.
func (l *Log) readIndexFile(path string) ([]byte, error) {
	f, err := l.fs.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return nil, err
	}
	if size > base.IndexBytesMax {
		return nil, fmt.Errorf("%s is %d bytes, over IndexBytesMax", path, size)
	}
	b := make([]byte, size)
	if err := readFull(f, b, 0); err != nil {
		return nil, err
	}
	return b, nil
}

// loadSealed validates the indexes of a fully synced segment against its
// data, or rebuilds them by scanning it.
func (l *Log) loadSealed(s *segment, size int64, prevTerm uint64) error {
	idx, tix, err := l.readIndexes(s, size)
	if err == nil {
		err = l.checkSealed(s, idx, tix, size, prevTerm)
	}
	if err == nil {
		return nil
	}
	l.logger.Warn("rebuilding the indexes of a segment", "segment", s.path, "reason", err)
	if err := l.loadTail(s, size, math.MaxInt64, false, prevTerm); err != nil {
		return err
	}
	return l.writeIndexFilesLocked(s, false)
}

// checkSealed checks valid-looking indexes against the segment: the batch
// at each term change and the last entry has the entry's offset and term,
// and the batches after the last entry continue it to exactly the end of
// the file. On success it sets the segment's end, indexes and max
// timestamp.
func (l *Log) checkSealed(s *segment, idx []indexEntry, tix []timeEntry, size int64, prevTerm uint64) error {
	if len(idx) == 0 || len(tix) == 0 || tix[0].relOffset != 0 || idx[0].term < prevTerm {
		return errors.New("index empty or not starting at the first batch")
	}
	for i, e := range idx {
		if i == 0 || e.term != idx[i-1].term || i == len(idx)-1 {
			h, err := headerAt(s.file, int64(e.pos), size)
			if err != nil {
				return err
			}
			if h.BaseOffset != s.baseOffset+int64(e.relOffset) || uint64(h.Epoch) != e.term {
				return fmt.Errorf("entry %+v, batch has offset %d term %d", e, h.BaseOffset, h.Epoch)
			}
		}
	}
	last := idx[len(idx)-1]
	pos, next, index, maxTs := int64(last.pos), s.baseOffset+int64(last.relOffset), s.baseIndex+uint64(last.relIndex), tix[len(tix)-1].maxTs
	for pos < size {
		h, err := headerAt(s.file, pos, size)
		if err != nil {
			return err
		}
		if h.BaseOffset != next || uint64(h.Epoch) != last.term {
			return fmt.Errorf("batch at %d has offset %d term %d, want %d %d", pos, h.BaseOffset, h.Epoch, next, last.term)
		}
		pos, next, index, maxTs = pos+int64(h.Size()), h.NextOffset(), index+1, max(maxTs, h.MaxTimestamp)
	}
	for i, te := range tix {
		if int64(te.relOffset) >= next-s.baseOffset {
			return fmt.Errorf("time entry %+v past the segment's offsets", te)
		}
		if _, ok := floorEntry(idx, te.relOffset, false); !ok || (i < len(tix)-1 && !hasOffsetEntry(idx, te.relOffset)) {
			return fmt.Errorf("time entry %+v is not at an index entry", te)
		}
	}
	s.size, s.nextIndex, s.nextOffset, s.maxTs, s.idx, s.tix = size, index, next, maxTs, idx, tix
	return nil
}

func hasOffsetEntry(idx []indexEntry, relOffset uint32) bool {
	e, ok := floorEntry(idx, relOffset, false)
	return ok && e.relOffset == relOffset
}

// startPoint picks where loadTail's scan begins: after the last index
// entry below tornFrom whose batch checks out, with the cursor as it was
// there. Without one, the scan starts at the segment's first batch.
func (l *Log) startPoint(s *segment, size, tornFrom int64, prevTerm uint64) (cursor, []indexEntry, []timeEntry) {
	fresh := newCursor(s, l.opts.IndexIntervalBytes)
	idx, tix, err := l.readIndexes(s, size)
	if err != nil {
		return fresh, nil, nil
	}
	for len(idx) > 0 && int64(idx[len(idx)-1].pos) >= tornFrom {
		idx = idx[:len(idx)-1]
	}
	if len(idx) == 0 || idx[0].term < prevTerm {
		return fresh, nil, nil
	}
	p := idx[len(idx)-1]
	for len(tix) > 0 && tix[len(tix)-1].relOffset > p.relOffset {
		tix = tix[:len(tix)-1]
	}
	h, err := headerAt(s.file, int64(p.pos), size)
	if err != nil || len(tix) == 0 || tix[0].relOffset != 0 ||
		h.BaseOffset != s.baseOffset+int64(p.relOffset) || uint64(h.Epoch) != p.term {
		return fresh, nil, nil
	}
	c := fresh
	c.size, c.nextIndex, c.nextOffset = int64(p.pos)+int64(h.Size()), s.baseIndex+uint64(p.relIndex)+1, h.NextOffset()
	c.maxTs = max(tix[len(tix)-1].maxTs, h.MaxTimestamp)
	c.last, c.hasEntry, c.lastTerm, c.lastRel = p, true, p.term, p.relOffset
	c.lastTixTs, c.hasTix = tix[len(tix)-1].maxTs, true
	return c, idx, tix
}

// loadTail scans a segment from its start point, verifying every batch
// (CRC, structure, offsets continuing, terms not decreasing) and rebuilding
// the index entries past the start point. A bad batch before tornFrom, or
// in a segment that is not the last, is corruption; past tornFrom in the
// last segment it is a torn tail, unless a valid batch follows it.
func (l *Log) loadTail(s *segment, size, tornFrom int64, last bool, prevTerm uint64) error {
	c, idx, tix := l.startPoint(s, size, tornFrom, prevTerm)
	lastTerm := max(prevTerm, c.lastTerm)
	sc := scanner{f: s.file, end: size}
	for c.size < size {
		pos := c.size
		b, h, err := sc.batchAt(pos)
		if err == nil {
			err = checkContinues(&h, c.nextOffset, lastTerm)
		}
		if err != nil {
			if pos < tornFrom || !last {
				return corrupt(s.path, pos, err)
			}
			if q, ok := l.findValidAfter(&sc, pos, c.nextOffset, lastTerm); ok {
				return corrupt(s.path, pos, fmt.Errorf("%w; a valid batch follows at byte %d, so this is not a torn tail", err, q))
			}
			l.logger.Warn("truncating a torn tail", "segment", s.path, "pos", pos, "droppedBytes", size-pos, "reason", err)
			break
		}
		_ = b
		term := uint64(h.Epoch)
		e, addE, te, addT := c.add(&h, int64(h.Size()), term)
		if addE {
			idx = append(idx, e)
		}
		if addT {
			tix = append(tix, te)
		}
		lastTerm = term
	}
	if !last && c.size != size {
		return corrupt(s.path, c.size, errors.New("bytes after the last batch of a sealed segment"))
	}
	s.size, s.nextIndex, s.nextOffset, s.maxTs, s.idx, s.tix = c.size, c.nextIndex, c.nextOffset, c.maxTs, idx, tix
	if !last {
		if te, ok := c.finalTimeEntry(); ok {
			s.tix = append(s.tix, te)
		}
	}
	return nil
}

// checkContinues checks what Write guarantees of every batch in the log
// beyond the batch format: it continues the offsets, its term does not go
// back, and its offsets are one per record.
func checkContinues(h *batch.Header, nextOffset int64, lastTerm uint64) error {
	switch {
	case h.BaseOffset != nextOffset:
		return fmt.Errorf("batch has base offset %d, want %d", h.BaseOffset, nextOffset)
	case h.Epoch < 0 || uint64(h.Epoch) < lastTerm:
		return fmt.Errorf("batch has term %d after term %d", h.Epoch, lastTerm)
	case h.RecordCount < 1 || h.LastOffsetDelta != h.RecordCount-1:
		return fmt.Errorf("batch has %d records and lastOffsetDelta %d", h.RecordCount, h.LastOffsetDelta)
	}
	return nil
}

// findValidAfter looks past a bad batch at bad for a valid batch that
// could follow it (an offset beyond next, a term not below lastTerm): if
// there is one, the bad batch is damage in the middle of the log, not a
// torn write at its end. It reads in chunks and validates only positions
// whose header parses.
func (l *Log) findValidAfter(sc *scanner, bad, next int64, lastTerm uint64) (int64, bool) {
	for q := bad + 1; q+batch.HeaderSize <= sc.end; q++ {
		hb, err := sc.bytes(q, batch.HeaderSize)
		if err != nil {
			return 0, false
		}
		if hb[16] != batch.Magic { // cheap filter before parsing
			continue
		}
		h, err := batch.ParseHeader(hb)
		if err != nil || h.BaseOffset <= next || checkTerm(&h, lastTerm) != nil || q+int64(h.Size()) > sc.end {
			continue
		}
		if _, _, err := sc.batchAt(q); err == nil {
			return q, true
		}
	}
	return 0, false
}

func checkTerm(h *batch.Header, lastTerm uint64) error {
	if h.Epoch < 0 || uint64(h.Epoch) < lastTerm {
		return errors.New("term goes back")
	}
	return nil
}

// scanner reads batches of a segment file in chunks, so that a scan costs
// one read per chunk rather than per batch. Its buffer holds at most one
// chunk or one batch (BatchBytesMax, checked before allocating).
type scanner struct {
	f      vfs.File
	end    int64
	buf    []byte
	bufPos int64
}

// batchAt returns the verified batch at pos; its bytes alias the scanner's
// buffer until the next call.
func (sc *scanner) batchAt(pos int64) ([]byte, batch.Header, error) {
	hb, err := sc.bytes(pos, batch.HeaderSize)
	if err != nil {
		return nil, batch.Header{}, err
	}
	h, err := batch.ParseHeader(hb)
	if err != nil {
		return nil, h, err
	}
	b, err := sc.bytes(pos, h.Size())
	if err != nil {
		return nil, h, err
	}
	h, err = batch.Validate(b)
	return b, h, err
}

// bytes returns n bytes at pos, reading a chunk of LogWriteBufferBytes (the
// unit the writer writes in) or the n bytes if more.
func (sc *scanner) bytes(pos int64, n int) ([]byte, error) {
	if pos+int64(n) > sc.end {
		return nil, fmt.Errorf("%d bytes at %d run past the end of the file at %d: %w", n, pos, sc.end, io.ErrUnexpectedEOF)
	}
	if pos >= sc.bufPos && pos+int64(n) <= sc.bufPos+int64(len(sc.buf)) {
		off := pos - sc.bufPos
		return sc.buf[off : off+int64(n)], nil
	}
	want := int(min(int64(max(n, base.LogWriteBufferBytes)), sc.end-pos))
	if cap(sc.buf) < want {
		sc.buf = make([]byte, want)
	}
	sc.buf = sc.buf[:want]
	if err := readFull(sc.f, sc.buf, pos); err != nil {
		sc.buf = sc.buf[:0]
		return nil, err
	}
	sc.bufPos = pos
	return sc.buf[:n], nil
}

// writeIndexFilesLocked rewrites a segment's index files from its entries
// and syncs them; keepOpen leaves them open for appending (the active
// segment).
func (l *Log) writeIndexFilesLocked(s *segment, keepOpen bool) error {
	s.closeIndexFiles()
	var files [2]vfs.File
	var err error
	for i, ext := range []string{idxExt, tixExt} {
		if files[i], err = l.fs.Create(l.segPath(s.baseIndex, ext)); err != nil {
			break
		}
		buf := l.scratch[:0]
		if i == 0 {
			for _, e := range s.idx {
				buf = appendIndexEntry(buf, e)
			}
		} else {
			for _, e := range s.tix {
				buf = appendTimeEntry(buf, e)
			}
		}
		l.scratch = buf
		if _, err = files[i].Write(buf); err != nil {
			break
		}
		if err = files[i].Sync(); err != nil {
			break
		}
	}
	if err != nil || !keepOpen {
		for _, f := range files {
			if f != nil {
				f.Close()
			}
		}
		if err != nil {
			return fmt.Errorf("log: writing the indexes of %s: %w", s.path, err)
		}
		return nil
	}
	s.idxFile, s.tixFile, s.idxWritten, s.tixWritten = files[0], files[1], len(s.idx), len(s.tix)
	return nil
}

// initFreshLocked starts an empty log whose next batch gets first and
// firstOffset: the checkpoint first, then the segment, so that a crash in
// between leaves a checkpoint and no segment, which the next Open
// completes.
func (l *Log) initFreshLocked(first uint64, firstOffset int64) error {
	c := checkpoint{firstIndex: first, firstOffset: firstOffset, rpSegment: first, rpPos: segHeaderSize}
	if err := l.writeCheckpointLocked(c); err != nil {
		return err
	}
	s, err := l.createSegmentLocked(first, firstOffset)
	if err != nil {
		return err
	}
	if err := l.writeIndexFilesLocked(s, true); err != nil {
		return err
	}
	l.segs, l.runs = []*segment{s}, nil
	l.firstIndex, l.firstOffset, l.durableIndex = first, firstOffset, first-1
	return nil
}

// finishResetLocked completes a Reset interrupted by a crash: the
// checkpoint already names the new start, so every old segment goes.
func (l *Log) finishResetLocked(ck checkpoint, bases []uint64) error {
	for _, b := range bases {
		if err := l.removeSegmentFiles(b); err != nil {
			return err
		}
	}
	if err := l.fs.SyncDir(l.dir); err != nil {
		return err
	}
	return l.initFreshLocked(ck.firstIndex, ck.firstOffset)
}

// finishOpenLocked makes the recovered state durable and current: the torn
// tail cut, the active segment's indexes rewritten, data and directory
// synced, and the recovery point moved to the end.
func (l *Log) finishOpenLocked(ck checkpoint) error {
	s := l.active()
	if len(l.segs) == 0 || ck.firstIndex < l.segs[0].baseIndex || ck.firstIndex > s.nextIndex {
		return corrupt(l.path(checkpointName), 0, fmt.Errorf("first index %d outside the segments' [%d, %d]",
			ck.firstIndex, l.segs[0].baseIndex, s.nextIndex))
	}
	l.firstIndex, l.firstOffset = ck.firstIndex, ck.firstOffset
	if off, err := l.offsetOfIndexLocked(ck.firstIndex); err != nil || off != ck.firstOffset {
		return corrupt(l.path(checkpointName), 0, fmt.Errorf("first offset %d, but batch %d has offset %d (%v)", ck.firstOffset, ck.firstIndex, off, err))
	}
	if err := s.file.Truncate(s.size); err != nil {
		return fmt.Errorf("log: cutting %s to %d bytes: %w", s.path, s.size, err)
	}
	if _, err := s.file.Seek(s.size, io.SeekStart); err != nil {
		return fmt.Errorf("log: %s: %w", s.path, err)
	}
	if err := l.writeIndexFilesLocked(s, true); err != nil {
		return err
	}
	if err := s.file.Sync(); err != nil {
		return fmt.Errorf("log: syncing %s: %w", s.path, err)
	}
	if err := l.fs.SyncDir(l.dir); err != nil {
		return fmt.Errorf("log: syncing %s: %w", l.dir, err)
	}
	s.synced = s.size
	for _, o := range l.segs {
		o.synced = o.size
	}
	l.durableIndex = s.nextIndex - 1
	ck.rpSegment, ck.rpPos = s.baseIndex, s.size
	return l.writeCheckpointLocked(ck)
}

// offsetOfIndexLocked returns the base offset of the batch with Index
// index, or the next offset when index is the next Index.
func (l *Log) offsetOfIndexLocked(index uint64) (int64, error) {
	s := l.segmentOfIndex(index)
	if s == nil {
		return 0, base.Errorf(base.CodeOutOfRange, "log %s: index %d is not stored", l.dir, index)
	}
	if index == s.nextIndex {
		return s.nextOffset, nil
	}
	_, h, err := l.locateIndex(s, index)
	return h.BaseOffset, err
}

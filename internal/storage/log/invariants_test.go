package log

import "fmt"

// checkIndexes verifies, for every segment, that its in-memory and on-disk
// indexes agree with its batches: each offset index entry points at a batch
// with that Index, offset and term; entries exist at the first batch and at
// every term change; each time entry's timestamp is the running maximum at
// its batch; and the segment chain and term runs agree with the data.
func checkIndexes(l *Log) error {
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	l.stateMu.RLock()
	defer l.stateMu.RUnlock()
	for si, s := range l.segs {
		if si > 0 && (s.baseIndex != l.segs[si-1].nextIndex || s.baseOffset != l.segs[si-1].nextOffset) {
			return fmt.Errorf("segment %s does not continue the previous one", s.path)
		}
		if err := checkSegment(l, s); err != nil {
			return err
		}
	}
	return nil
}

func checkSegment(l *Log, s *segment) error {
	pos, index, off := int64(segHeaderSize), s.baseIndex, s.baseOffset
	runMax := int64(noTimestamp)
	ei, ti := 0, 0
	var prevTerm uint64
	for pos < s.size {
		h, err := headerAt(s.file, pos, s.size)
		if err != nil {
			return fmt.Errorf("%s at %d: %v", s.path, pos, err)
		}
		if h.BaseOffset != off {
			return fmt.Errorf("%s at %d: offset %d, want %d", s.path, pos, h.BaseOffset, off)
		}
		term := uint64(h.Epoch)
		if index >= l.firstIndex {
			if want := termAt(l.runs, index); want != term {
				return fmt.Errorf("%s: batch %d has term %d, the runs say %d", s.path, index, term, want)
			}
		}
		runMax = max(runMax, h.MaxTimestamp)
		if ei < len(s.idx) && int64(s.idx[ei].pos) == pos {
			e := s.idx[ei]
			if s.baseIndex+uint64(e.relIndex) != index || s.baseOffset+int64(e.relOffset) != off || e.term != term {
				return fmt.Errorf("%s: entry %+v at batch %d offset %d term %d", s.path, e, index, off, term)
			}
			ei++
			for ti < len(s.tix) && s.baseOffset+int64(s.tix[ti].relOffset) == off {
				if s.tix[ti].maxTs != runMax {
					return fmt.Errorf("%s: time entry %+v, running max %d", s.path, s.tix[ti], runMax)
				}
				ti++
			}
		} else if pos == segHeaderSize || term != prevTerm {
			return fmt.Errorf("%s: no index entry at batch %d (first or term change)", s.path, index)
		} else if ti < len(s.tix) && s.baseOffset+int64(s.tix[ti].relOffset) == off {
			if s.tix[ti].maxTs != runMax || ti != len(s.tix)-1 {
				return fmt.Errorf("%s: time entry %+v off an index entry, running max %d", s.path, s.tix[ti], runMax)
			}
			ti++
		}
		prevTerm = term
		pos += int64(h.Size())
		index++
		off = h.NextOffset()
	}
	if ei != len(s.idx) || ti != len(s.tix) {
		return fmt.Errorf("%s: %d of %d index and %d of %d time entries match batches", s.path, ei, len(s.idx), ti, len(s.tix))
	}
	if index != s.nextIndex || off != s.nextOffset || runMax != s.maxTs {
		return fmt.Errorf("%s: ends at %d/%d max %d, recorded %d/%d max %d", s.path, index, off, runMax, s.nextIndex, s.nextOffset, s.maxTs)
	}
	return nil
}

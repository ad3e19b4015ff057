package replication

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"path"
	"sync"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/base/vfs"
	"github.com/ferry-mq/ferry/internal/storage/log/batch"
)

// SimpleLogs is a LogProvider of SimpleLog files in one directory: one file
// per group. It is small and obviously correct about durability rather than
// fast (TruncatePrefix and Reset rewrite the file), for tests, the
// simulator, and nodes until the segmented log is wired in.
type SimpleLogs struct {
	FS  vfs.FS
	Dir string
}

// OpenLog opens or creates the group's log file, recovering it: a torn or
// damaged tail (a crash during a write) is truncated away.
func (p *SimpleLogs) OpenLog(group GroupID) (LogStore, error) {
	if err := mkdirDurable(p.FS, p.Dir); err != nil {
		return nil, err
	}
	return openSimpleLog(p.FS, path.Join(p.Dir, fmt.Sprintf("%020d.log", group)))
}

// SyncAll flushes all given logs with one SyncFiles call.
func (p *SimpleLogs) SyncAll(logs []LogStore) error {
	files := make([]vfs.File, 0, len(logs))
	for _, l := range logs {
		sl := l.(*SimpleLog)
		sl.mu.Lock()
		if err := sl.writableLocked(); err != nil {
			sl.mu.Unlock()
			return err
		}
		files = append(files, sl.f)
		sl.mu.Unlock()
	}
	if err := p.FS.SyncFiles(files...); err != nil {
		for _, l := range logs {
			l.(*SimpleLog).fail(err)
		}
		return storageErr("syncing logs", err)
	}
	return nil
}

// SimpleLog is one group's log in one file: a header (magic, version, first
// index, first offset, CRC) then records [length u32][CRC32C u32][term u64]
// [batch]. The positions, terms and offsets of all entries are kept in
// memory. It is safe for concurrent use.
type SimpleLog struct {
	fs   vfs.FS
	name string

	mu      sync.Mutex
	f       vfs.File // guarded by mu
	first   uint64   // guarded by mu; index of entry 0
	pos     []int64  // guarded by mu; file position of each entry's record
	terms   []uint64 // guarded by mu
	offsets []int64  // guarded by mu; base offset of each entry, plus the next offset at the end
	size    int64    // guarded by mu; end of the last record
	failed  error    // guarded by mu; once set, every write fails (fail-stop)
}

const (
	simpleLogMagic   = 0x464c4f47 // "FLOG"
	simpleLogVersion = 1
	simpleLogHeader  = 4 + 4 + 8 + 8 + 4
	simpleRecHeader  = 4 + 4 + 8
)

// mkdirDurable creates dir and its missing parents and makes their names
// durable: a directory's entry is durable only after its parent is synced.
func mkdirDurable(fsys vfs.FS, dir string) error {
	if err := fsys.MkdirAll(dir, 0o755); err != nil {
		return storageErr("creating "+dir, err)
	}
	for d := path.Clean(dir); ; d = path.Dir(d) {
		parent := path.Dir(d)
		if err := fsys.SyncDir(parent); err != nil {
			return storageErr("syncing "+parent, err)
		}
		if parent == d || parent == "." || parent == "/" {
			return nil
		}
	}
}

func storageErr(what string, err error) error {
	return base.Errorf(base.CodeStorageFailed, "replication: %s: %w", what, err)
}

func openSimpleLog(fsys vfs.FS, name string) (*SimpleLog, error) {
	l := &SimpleLog{fs: fsys, name: name}
	f, err := fsys.OpenReadWrite(name)
	if errors.Is(err, fs.ErrNotExist) {
		if err := l.rewrite(1, 0, nil, nil); err != nil {
			return nil, err
		}
		return l, nil
	}
	if err != nil {
		return nil, storageErr("opening "+name, err)
	}
	l.f = f
	if err := l.recover(); err != nil {
		f.Close()
		return nil, err
	}
	return l, nil
}

func (l *SimpleLog) recover() error {
	size, err := l.f.Size()
	if err != nil {
		return storageErr("sizing "+l.name, err)
	}
	data := make([]byte, size)
	if _, err := l.f.ReadAt(data, 0); err != nil && !errors.Is(err, io.EOF) {
		return storageErr("reading "+l.name, err)
	}
	if len(data) < simpleLogHeader || binary.BigEndian.Uint32(data) != simpleLogMagic ||
		crc32.Checksum(data[:simpleLogHeader-4], castagnoli) != binary.BigEndian.Uint32(data[simpleLogHeader-4:]) {
		return base.Errorf(base.CodeCorrupt, "replication: %s has a damaged header", l.name)
	}
	l.first = binary.BigEndian.Uint64(data[8:])
	l.offsets = []int64{int64(binary.BigEndian.Uint64(data[16:]))}
	at := int64(simpleLogHeader)
	for {
		rec := data[at:]
		if len(rec) < simpleRecHeader {
			break
		}
		n := int64(binary.BigEndian.Uint32(rec))
		if n > int64(len(rec)-simpleRecHeader) || crc32.Checksum(rec[8:simpleRecHeader+n], castagnoli) != binary.BigEndian.Uint32(rec[4:]) {
			break // a torn tail: the write was not synced before a crash
		}
		l.pos = append(l.pos, at)
		l.terms = append(l.terms, binary.BigEndian.Uint64(rec[8:]))
		last := l.offsets[len(l.offsets)-1]
		l.offsets = append(l.offsets, last+batchRecords(rec[simpleRecHeader:simpleRecHeader+n]))
		at += simpleRecHeader + n
	}
	l.size = at
	if at < size {
		if err := l.f.Truncate(at); err != nil {
			return storageErr("truncating torn tail of "+l.name, err)
		}
	}
	if _, err := l.f.Seek(at, io.SeekStart); err != nil {
		return storageErr("seeking "+l.name, err)
	}
	return nil
}

// rewrite replaces the file with one holding the given records (already
// encoded) starting at first, durably: tmp file, sync, rename, directory
// sync. recs and terms describe the kept entries.
func (l *SimpleLog) rewrite(first uint64, firstOffset int64, recs [][]byte, terms []uint64) error {
	tmp := l.name + ".tmp"
	f, err := l.fs.Create(tmp)
	if err != nil {
		return storageErr("creating "+tmp, err)
	}
	hdr := make([]byte, simpleLogHeader)
	binary.BigEndian.PutUint32(hdr, simpleLogMagic)
	binary.BigEndian.PutUint32(hdr[4:], simpleLogVersion)
	binary.BigEndian.PutUint64(hdr[8:], first)
	binary.BigEndian.PutUint64(hdr[16:], uint64(firstOffset))
	binary.BigEndian.PutUint32(hdr[24:], crc32.Checksum(hdr[:24], castagnoli))
	pos := make([]int64, 0, len(recs))
	offsets := []int64{firstOffset}
	at := int64(len(hdr))
	buf := hdr
	for _, r := range recs {
		pos = append(pos, at)
		offsets = append(offsets, offsets[len(offsets)-1]+batchRecords(r[simpleRecHeader:]))
		at += int64(len(r))
		buf = append(buf, r...)
	}
	if _, err := f.Write(buf); err != nil {
		f.Close()
		return storageErr("writing "+tmp, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return storageErr("syncing "+tmp, err)
	}
	if err := l.fs.Rename(tmp, l.name); err != nil {
		f.Close()
		return storageErr("renaming "+tmp, err)
	}
	if err := l.fs.SyncDir(path.Dir(l.name)); err != nil {
		f.Close()
		return storageErr("syncing directory of "+l.name, err)
	}
	if l.f != nil {
		l.f.Close()
	}
	l.f, l.first, l.pos, l.terms, l.offsets, l.size = f, first, pos, append([]uint64(nil), terms...), offsets, at
	return nil
}

func (l *SimpleLog) writableLocked() error {
	if l.failed != nil {
		return l.failed
	}
	if l.f == nil {
		return base.Errorf(base.CodeStopped, "replication: %s is closed", l.name)
	}
	return nil
}

func (l *SimpleLog) fail(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.failed == nil {
		l.failed = storageErr(l.name+" failed", err)
	}
}

// WriteValidated is Write: SimpleLog does not validate batches at all (it
// stores them with its own checksum and is for tests and the simulator).
func (l *SimpleLog) WriteValidated(term uint64, batch []byte) (uint64, error) {
	return l.Write(term, batch)
}

func (l *SimpleLog) Write(term uint64, batch []byte) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.writableLocked(); err != nil {
		return 0, err
	}
	rec := make([]byte, simpleRecHeader+len(batch))
	binary.BigEndian.PutUint32(rec, uint32(len(batch)))
	binary.BigEndian.PutUint64(rec[8:], term)
	copy(rec[simpleRecHeader:], batch)
	binary.BigEndian.PutUint32(rec[4:], crc32.Checksum(rec[8:], castagnoli))
	if _, err := l.f.Write(rec); err != nil {
		l.failed = storageErr("writing "+l.name, err)
		return 0, l.failed
	}
	l.pos = append(l.pos, l.size)
	l.terms = append(l.terms, term)
	l.offsets = append(l.offsets, l.offsets[len(l.offsets)-1]+batchRecords(batch))
	l.size += int64(len(rec))
	return l.first + uint64(len(l.terms)) - 1, nil
}

func (l *SimpleLog) checkRangeLocked(lo, hi uint64) error {
	if l.f == nil {
		return base.Errorf(base.CodeStopped, "replication: %s is closed", l.name)
	}
	if lo < l.first || hi > l.first+uint64(len(l.terms)) || lo > hi {
		return base.Errorf(base.CodeOutOfRange, "replication: %s holds [%d, %d], asked for [%d, %d)",
			l.name, l.first, l.first+uint64(len(l.terms))-1, lo, hi)
	}
	return nil
}

func (l *SimpleLog) Entries(lo, hi uint64, maxBytes int) ([][]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.checkRangeLocked(lo, hi); err != nil {
		return nil, err
	}
	var out [][]byte
	total := 0
	for i := lo; i < hi; i++ {
		k := i - l.first
		end := l.size
		if int(k)+1 < len(l.pos) {
			end = l.pos[k+1]
		}
		n := int(end - l.pos[k] - simpleRecHeader)
		if len(out) > 0 && total+n > maxBytes {
			break
		}
		b := make([]byte, n)
		if _, err := l.f.ReadAt(b, l.pos[k]+simpleRecHeader); err != nil && !errors.Is(err, io.EOF) {
			return nil, storageErr("reading "+l.name, err)
		}
		if len(b) >= batch.HeaderSize { // stamp offset and term, as the segmented log does
			batch.SetBaseOffset(b, l.offsets[k])
			batch.SetEpoch(b, int32(l.terms[k]))
		}
		out = append(out, b)
		total += n
	}
	return out, nil
}

func (l *SimpleLog) Term(index uint64) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.checkRangeLocked(index, index+1); err != nil {
		return 0, err
	}
	return l.terms[index-l.first], nil
}

func (l *SimpleLog) FirstIndex() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.first
}

func (l *SimpleLog) LastIndex() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.first + uint64(len(l.terms)) - 1
}

func (l *SimpleLog) Offset(index uint64) (int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if index < l.first || index > l.first+uint64(len(l.terms)) {
		return 0, base.Errorf(base.CodeOutOfRange, "replication: %s has no offset for index %d", l.name, index)
	}
	return l.offsets[index-l.first], nil
}

func (l *SimpleLog) TruncateSuffix(from uint64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.writableLocked(); err != nil {
		return err
	}
	if from < l.first {
		from = l.first
	}
	k := from - l.first
	if k >= uint64(len(l.terms)) {
		return nil
	}
	at := l.pos[k]
	if err := l.f.Truncate(at); err != nil {
		l.failed = storageErr("truncating "+l.name, err)
		return l.failed
	}
	if _, err := l.f.Seek(at, io.SeekStart); err != nil {
		l.failed = storageErr("seeking "+l.name, err)
		return l.failed
	}
	l.pos, l.terms, l.offsets, l.size = l.pos[:k], l.terms[:k], l.offsets[:k+1], at
	return nil
}

// PrefixBytes is the size of the records of the entries below before:
// TruncatePrefix rewrites the file without them.
func (l *SimpleLog) PrefixBytes(before uint64) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if before <= l.first || len(l.pos) == 0 {
		return 0
	}
	k := before - l.first
	if k >= uint64(len(l.pos)) {
		return l.size - l.pos[0]
	}
	return l.pos[k] - l.pos[0]
}

func (l *SimpleLog) TruncatePrefix(before uint64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.writableLocked(); err != nil {
		return err
	}
	if before <= l.first {
		return nil
	}
	last := l.first + uint64(len(l.terms)) - 1
	before = min(before, last+1)
	k := before - l.first
	recs := make([][]byte, 0, uint64(len(l.terms))-k)
	for i := k; i < uint64(len(l.terms)); i++ {
		end := l.size
		if int(i)+1 < len(l.pos) {
			end = l.pos[i+1]
		}
		r := make([]byte, end-l.pos[i])
		if _, err := l.f.ReadAt(r, l.pos[i]); err != nil && !errors.Is(err, io.EOF) {
			return storageErr("reading "+l.name, err)
		}
		recs = append(recs, r)
	}
	// The tail is unsynced until the next SyncAll; the rewrite syncs it, a
	// stronger promise than the interface asks for.
	if err := l.rewrite(before, l.offsets[k], recs, l.terms[k:]); err != nil {
		l.failed = err
		return err
	}
	return nil
}

func (l *SimpleLog) Reset(nextIndex uint64, nextOffset int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.writableLocked(); err != nil {
		return err
	}
	if err := l.rewrite(nextIndex, nextOffset, nil, nil); err != nil {
		l.failed = err
		return err
	}
	return nil
}

func (l *SimpleLog) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

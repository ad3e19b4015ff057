package log

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/base/vfs"
)

// Position says where Write or Append put a batch.
type Position struct {
	Index      uint64 // the batch's Index (Raft index)
	BaseOffset int64  // offset of its first record
	NextOffset int64  // offset after its last record
}

// Log is one segmented log directory. See the package documentation for
// which methods may be called concurrently.
type Log struct {
	opts   Options // its SegmentBytes, SegmentAge and SegmentBytesGrowTo guarded by writeMu (SetRolling)
	fs     vfs.FS
	dir    string
	clock  base.Clock
	logger *slog.Logger
	id     uint64    // orders the locks SyncAll takes
	lock   io.Closer // the directory's LOCK file

	// writeMu serialises every mutation: the low-level calls, the
	// committer, retention and Close. It is taken before stateMu.
	writeMu  sync.Mutex
	t        tail       // guarded by writeMu: written, not yet published
	failed   error      // guarded by writeMu: set once; the fail-stop error
	closed   bool       // guarded by writeMu
	ckpt     checkpoint // guarded by writeMu: the last checkpoint written
	lastCkpt time.Time  // guarded by writeMu: when it was written
	scratch  []byte     // guarded by writeMu: encoding buffer for index entries
	removal  *removal   // guarded by writeMu: the background removal in progress

	// dataSyncs counts the fsyncs of segment data that confirmed batches
	// (Sync, SyncAll, group commits): what the benchmarks report as
	// fsyncs/s.
	dataSyncs atomic.Uint64

	// stateMu guards what readers see; writers hold writeMu as well when
	// they change it.
	stateMu      sync.RWMutex
	segs         []*segment // guarded by stateMu; the last one is active
	firstIndex   uint64     // guarded by stateMu
	firstOffset  int64      // guarded by stateMu
	runs         []termRun  // guarded by stateMu; term runs of published batches
	durableIndex uint64     // guarded by stateMu
	readClosed   bool       // guarded by stateMu

	// The Append path. closeMu orders sends on appendCh before its close.
	closeMu       sync.RWMutex
	appendCh      chan *appendReq // the bounded append queue (base.AppendQueueBatchesMax): appenders beyond it block
	appendClosed  bool            // guarded by closeMu
	committerDone chan struct{}
}

// tail is what the writer has written since the last flush: bytes not yet
// in the file, index entries and term runs not yet published. A flush
// writes and publishes it; an ENOSPC discards it.
type tail struct {
	cur      cursor
	pending  []byte
	idx      []indexEntry
	tix      []timeEntry
	runs     []termRun
	lastTerm uint64 // term of the last written batch, log-wide
	hasRun   bool   // some batch (published or not) has a term run
}

var logIDs atomic.Uint64

// Open opens the log in opts.Dir, creating it if missing and recovering
// it after a crash: a torn tail is truncated (and logged); corruption fails
// with CodeCorrupt naming the file and byte position. It starts the
// committer goroutine that serves Append; Close stops it.
func Open(opts Options) (*Log, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	l := &Log{opts: opts, fs: opts.FS, dir: opts.Dir, clock: opts.Clock, id: logIDs.Add(1),
		logger: opts.Logger.With("log", opts.Dir)}
	if err := l.fs.MkdirAll(l.dir, 0o755); err != nil {
		return nil, fmt.Errorf("log: creating %s: %w", l.dir, err)
	}
	// MkdirAll may have created ancestors too: make every link durable.
	for p := filepath.Clean(l.dir); ; {
		parent := filepath.Dir(p)
		if err := l.fs.SyncDir(parent); err != nil {
			return nil, fmt.Errorf("log: syncing %s: %w", parent, err)
		}
		if parent == p {
			break
		}
		p = parent
	}
	if l.lock, err = l.fs.Lock(l.path(lockName)); err != nil {
		return nil, base.Errorf(base.CodeResourceLocked, "log: %s is in use: %w", l.dir, err)
	}
	if err := l.recover(); err != nil {
		l.closeFiles()
		l.lock.Close()
		return nil, err
	}
	l.resetTailLocked()
	l.appendCh = make(chan *appendReq, base.AppendQueueBatchesMax)
	l.committerDone = make(chan struct{})
	go l.commitLoop()
	return l, nil
}

// Close stops the committer (appends already queued complete first),
// makes everything written durable, records the recovery point, and closes
// the files. Reads fail with CodeStopped afterwards. A fail-stopped log
// closes without syncing and returns its failure.
func (l *Log) Close() error {
	l.closeMu.Lock()
	if l.appendClosed {
		l.closeMu.Unlock()
		return base.Errorf(base.CodeStopped, "log %s: already closed", l.dir)
	}
	l.appendClosed = true
	close(l.appendCh)
	l.closeMu.Unlock()
	<-l.committerDone

	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	l.awaitRemovalLocked() // its failure is l.failed
	err := l.failed
	if err == nil {
		err = l.syncLocked()
	}
	if err == nil {
		err = l.checkpointLocked(true)
	}
	l.closed = true
	l.stateMu.Lock()
	l.readClosed = true
	l.stateMu.Unlock()
	l.closeFiles()
	if cerr := l.lock.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("log %s: releasing the lock: %w", l.dir, cerr)
	}
	return err
}

// closeFiles closes every segment (each as soon as no reader holds it).
func (l *Log) closeFiles() {
	l.stateMu.Lock()
	defer l.stateMu.Unlock()
	for _, s := range l.segs {
		s.closeIndexFiles()
		s.kill()
	}
}

func (l *Log) path(name string) string { return filepath.Join(l.dir, name) }

func (l *Log) segPath(baseIndex uint64, ext string) string {
	return l.path(segFileName(baseIndex, ext))
}

// active returns the segment being written. Called with writeMu or
// stateMu held.
func (l *Log) active() *segment { return l.segs[len(l.segs)-1] }

// FirstIndex returns the Index of the first batch (LastIndex+1 when empty).
func (l *Log) FirstIndex() uint64 {
	l.stateMu.RLock()
	defer l.stateMu.RUnlock()
	return l.firstIndex
}

// LastIndex returns the Index of the last published batch, or
// FirstIndex-1 when the log is empty. Batches written but not yet flushed
// (see Write) are not counted.
func (l *Log) LastIndex() uint64 {
	l.stateMu.RLock()
	defer l.stateMu.RUnlock()
	return l.active().nextIndex - 1
}

// ActiveBase returns the Index of the active segment's first batch (the
// next Index when the active segment is empty): every batch below it lies
// in a sealed segment, which TruncatePrefix can free whole.
func (l *Log) ActiveBase() uint64 {
	l.stateMu.RLock()
	defer l.stateMu.RUnlock()
	return l.active().baseIndex
}

// FirstOffset returns the base offset of the first batch.
func (l *Log) FirstOffset() int64 {
	l.stateMu.RLock()
	defer l.stateMu.RUnlock()
	return l.firstOffset
}

// NextOffset returns the offset the next batch will get.
func (l *Log) NextOffset() int64 {
	l.stateMu.RLock()
	defer l.stateMu.RUnlock()
	return l.active().nextOffset
}

// DurableIndex returns the last Index known fsynced.
func (l *Log) DurableIndex() uint64 {
	l.stateMu.RLock()
	defer l.stateMu.RUnlock()
	return l.durableIndex
}

// writableLocked returns why the log cannot be written, if it cannot.
func (l *Log) writableLocked() error {
	if l.failed != nil {
		return l.failed
	}
	if l.closed {
		return base.Errorf(base.CodeStopped, "log %s: closed", l.dir)
	}
	return nil
}

// failLocked makes the log fail-stop: every later write returns the
// returned error, which wraps err. Reads go on.
func (l *Log) failLocked(op string, err error) error {
	if l.failed == nil {
		l.failed = base.Errorf(base.CodeStorageFailed, "log %s: %s failed, the log accepts no more writes: %w", l.dir, op, err)
		l.logger.Error("log fail-stop", "op", op, "err", err)
	}
	return l.failed
}

func isNoSpace(err error) bool { return errors.Is(err, syscall.ENOSPC) }

func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }

// corrupt returns a CodeCorrupt error naming a file and byte position.
func corrupt(path string, pos int64, cause error) error {
	return base.Errorf(base.CodeCorrupt, "log: %s at byte %d: %w", path, pos, cause)
}

package meta

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/base/vfs"
)

// formatVersion pins Pebble's on-disk format, so that upgrading the library
// never silently upgrades the files (a newer format cannot be read by an
// older binary). It is FormatNewest of Pebble v2.1.7.
const formatVersion = pebble.FormatValueSeparation

// Options configure Open.
type Options struct {
	// FS is where the store lives; nil means vfs.Default.
	FS vfs.FS
	// Dir is the store's directory, created (and made durable) if missing.
	Dir string
	// Logger receives Pebble's messages and the store's failure; nil means
	// slog.Default().
	Logger *slog.Logger
	// CacheBytes is the block cache; 0 means base.MetaCacheBytesDefault.
	CacheBytes int64
	// Abort stops the process when the disk fails while Open recovers the
	// store (onBackgroundError says why Open cannot return then), e.g. by
	// printing err and exiting; it must not return. Nil panics with err.
	Abort func(err error)
}

// Durability says when Commit returns.
type Durability uint8

const (
	// Sync returns once the batch, and every batch committed before it, is
	// on disk (fsynced). Concurrent Sync commits may share one fsync.
	Sync Durability = iota + 1
	// NoSync returns once the batch is applied in memory; a crash may lose
	// it, and with it any later NoSync batch, but never an earlier batch
	// that was followed by a Sync commit.
	NoSync
)

// Stats are counters of the store's file activity.
type Stats struct {
	FileSyncs uint64 // successful fsyncs of files (WAL, tables, MANIFEST)
	DirSyncs  uint64 // successful fsyncs of directories
}

// Store is the node's metadata store. It is safe for concurrent use.
type Store struct {
	db    *pebble.DB
	pfs   *pebbleFS
	fence *fence
	gate  gate

	// opening is true until Open returns; see onBackgroundError.
	opening atomic.Bool
	// reportedBackground makes a failed store log one background error,
	// not one per retry.
	reportedBackground atomic.Bool
	abort              func(error) // Options.Abort
}

// Open opens the store in opts.Dir, creating it if needed. Errors:
// CodeInvalidArgument for bad options, CodeResourceLocked when another
// process holds the directory, CodeCorrupt when the files fail Pebble's
// checks, CodeStorageFailed when the disk fails.
func Open(opts Options) (*Store, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	log := opts.Logger.With("component", "meta", "dir", opts.Dir)
	if err := makeDurableDir(opts.FS, opts.Dir); err != nil {
		return nil, base.Errorf(base.CodeStorageFailed, "meta: creating %s: %w", opts.Dir, err)
	}
	s := &Store{fence: newFence(log), abort: opts.Abort}
	s.pfs = &pebbleFS{fs: opts.FS, fence: s.fence}
	s.gate.init()
	s.opening.Store(true)
	defer s.opening.Store(false)

	db, err := s.openPebble(opts.Dir, s.pebbleOptions(opts, log))
	if err != nil {
		return nil, s.openError(opts.Dir, err)
	}
	if ferr := s.fence.err(); ferr != nil {
		// A failure Pebble's Open did not report (a failed removal of an
		// obsolete file, say) still fails the store.
		_ = db.Close()
		return nil, ferr
	}
	s.db = db
	return s, nil
}

// withDefaults checks opts and fills in what it leaves zero.
func (opts Options) withDefaults() (Options, error) {
	if opts.Dir == "" {
		return opts, base.Errorf(base.CodeInvalidArgument, "meta: Options.Dir is empty")
	}
	if opts.CacheBytes < 0 {
		return opts, base.Errorf(base.CodeInvalidArgument, "meta: Options.CacheBytes %d is negative", opts.CacheBytes)
	}
	if opts.FS == nil {
		opts.FS = vfs.Default
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.CacheBytes == 0 {
		opts.CacheBytes = base.MetaCacheBytesDefault
	}
	return opts, nil
}

func (s *Store) pebbleOptions(opts Options, log *slog.Logger) *pebble.Options {
	po := &pebble.Options{
		FS:                 s.pfs,
		Logger:             pebbleLogger{log: log, fence: s.fence},
		CacheSize:          opts.CacheBytes,
		MemTableSize:       base.MetaMemTableBytes,
		FormatMajorVersion: formatVersion,
		EventListener:      &pebble.EventListener{BackgroundError: s.onBackgroundError},
	}
	// Pebble's default compaction scheduler starts a goroutine when Open
	// registers it, and a failed Open returns without unregistering it, so
	// every failed Open (a disk failure while opening) would leak a
	// goroutine ticking forever (v2.1.7, open.go after Register). This is
	// the same scheduler without that goroutine; what it gives up is
	// raising compaction concurrency mid-compaction, while a waiting
	// compaction is still granted when a running one finishes. Despite the
	// name, nothing about it is test-only. goleak in TestMain pins the leak.
	po.Experimental.CompactionScheduler = pebble.NewConcurrencyLimitSchedulerWithNoPeriodicGrantingForTest()
	po.EnsureDefaults()
	return po
}

// openPebble is pebble.Open, except that a panic after the fence tripped
// becomes the store's failure: Pebble panics when a directory sync fails
// while it moves a marker file (its answer to fsyncgate), and our Fatalf
// panics; either way Pebble's Open releases what it had opened before
// re-panicking. A panic with the fence intact is a bug and goes on.
func (s *Store) openPebble(dir string, po *pebble.Options) (db *pebble.DB, err error) {
	defer func() {
		if r := recover(); r != nil {
			ferr := s.fence.err()
			if ferr == nil {
				panic(r)
			}
			s.fence.log.Error("meta: pebble panicked on the storage failure while opening", "panic", fmt.Sprint(r))
			db, err = nil, ferr
		}
	}()
	return pebble.Open(dir, po)
}

func (s *Store) openError(dir string, err error) error {
	switch {
	case errors.Is(err, vfs.ErrLocked):
		return base.Errorf(base.CodeResourceLocked, "meta: %s is in use by another process: %w", dir, err)
	case s.fence.err() != nil:
		return s.fence.err()
	case pebble.IsCorruptionError(err):
		return base.Errorf(base.CodeCorrupt, "meta: opening %s: %w", dir, err)
	}
	return base.Errorf(base.CodeStorageFailed, "meta: opening %s: %w", dir, err)
}

// onBackgroundError receives the errors of Pebble's flushes and compactions.
// Before a failure they are worth a warning. After one, Pebble retries its
// flush forever against a fenced disk; that is harmless once Open has
// returned (Close ends it), but while Open runs it waits for that flush and
// would never return, so the process stops instead (Options.Abort, else a
// panic): a failing disk met during recovery is fail-stop for the node.
func (s *Store) onBackgroundError(err error) {
	ferr := s.fence.err()
	if ferr == nil {
		s.fence.log.Warn("meta: pebble background error", "err", err)
		return
	}
	if s.opening.Load() {
		stop := fmt.Errorf("meta: storage failed while recovering the store, stopping: %w", ferr)
		if !strings.Contains(ferr.Error(), err.Error()) {
			stop = fmt.Errorf("%w (background: %v)", stop, err)
		}
		if s.abort != nil {
			s.abort(stop)
		}
		panic(stop.Error())
	}
	if s.reportedBackground.CompareAndSwap(false, true) {
		s.fence.log.Error("meta: pebble background work fails on the failed store; close it", "err", err)
	}
}

// makeDurableDir creates dir and its missing parents, and syncs the parent
// of each directory it creates, so that a crash cannot take the store's
// directory away after a synced commit.
func makeDurableDir(fsys vfs.FS, dir string) error {
	dir = path.Clean(dir)
	var missing []string
	for d := dir; ; d = path.Dir(d) {
		if _, err := fsys.Stat(d); err == nil {
			break
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		missing = append(missing, d)
		if d == path.Dir(d) {
			break
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if err := fsys.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for i := len(missing) - 1; i >= 0; i-- {
		if err := fsys.SyncDir(path.Dir(missing[i])); err != nil {
			return err
		}
	}
	return nil
}

// Close closes the store. It waits for the calls in progress (a Scan
// callback must not call Close). After a failure it releases what it can
// and returns the failure. A second Close returns CodeStopped.
func (s *Store) Close() error {
	if !s.gate.close() {
		return base.Errorf(base.CodeStopped, "meta: store already closed")
	}
	err := s.db.Close()
	if ferr := s.fence.err(); ferr != nil {
		return ferr
	}
	if err != nil {
		return base.Errorf(base.CodeStorageFailed, "meta: closing: %w", err)
	}
	return nil
}

// Err returns nil while the store is healthy, and its failure (code
// CodeStorageFailed) once a write or sync has failed. A failed store refuses
// every call until it is closed and reopened.
func (s *Store) Err() error { return s.fence.err() }

// Failed returns a channel that is closed when the store fails, for owners
// that stop the node then (fail-stop) rather than at their next call.
func (s *Store) Failed() <-chan struct{} { return s.fence.tripped }

// Stats returns the store's counters.
func (s *Store) Stats() Stats {
	return Stats{FileSyncs: s.pfs.fileSyncs.Load(), DirSyncs: s.pfs.dirSyncs.Load()}
}

// enter admits a call: it fails with CodeStopped after Close and with the
// failure after one. Every successful enter is paired with s.gate.exit.
func (s *Store) enter() error {
	if !s.gate.enter() {
		return base.Errorf(base.CodeStopped, "meta: store is closed")
	}
	if err := s.fence.err(); err != nil {
		s.gate.exit()
		return err
	}
	return nil
}

// Get returns a copy of key's value, which the caller owns. Errors:
// CodeNotFound when key is absent, CodeInvalidArgument or CodeTooLarge for a
// bad key, CodeStorageFailed once the store has failed (a failed disk read
// fails it too), CodeCorrupt when the data fails its checksum. A Get may see a batch whose
// Sync commit has not returned yet.
func (s *Store) Get(key []byte) ([]byte, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.gate.exit()
	v, closer, err := s.db.Get(key)
	if err != nil {
		if errors.Is(err, pebble.ErrNotFound) {
			if ferr := s.fence.err(); ferr != nil {
				return nil, ferr
			}
			return nil, base.Errorf(base.CodeNotFound, "meta: key %q not found", key)
		}
		return nil, s.readError(err)
	}
	out := bytes.Clone(v)
	if out == nil {
		out = []byte{}
	}
	closer.Close()
	if ferr := s.fence.err(); ferr != nil {
		return nil, ferr
	}
	return out, nil
}

// readError classifies an error of a read. A failed disk read has tripped
// the fence already; what is left is corruption Pebble found, or a bug.
func (s *Store) readError(err error) error {
	if ferr := s.fence.err(); ferr != nil {
		return ferr
	}
	if pebble.IsCorruptionError(err) {
		return base.Errorf(base.CodeCorrupt, "meta: %w", err)
	}
	return base.Errorf(base.CodeInternal, "meta: read: %w", err)
}

// StopScan stops a Scan early: return it from the callback and Scan returns
// nil.
var StopScan = errors.New("meta: stop scan")

// Scan calls fn for every key that starts with prefix, in key order, over a
// consistent snapshot of the store. key and value are valid only during
// the call (copy what must be kept). An error from fn stops the scan and is
// returned as it is, except StopScan, which makes Scan return nil. fn may
// call Get and Commit; it must not call Close. An empty prefix scans
// everything.
func (s *Store) Scan(prefix []byte, fn func(key, value []byte) error) error {
	return s.ScanRange(prefix, PrefixEnd(prefix), fn)
}

// ScanRange is Scan over the keys in [lower, upper); a nil bound is open.
func (s *Store) ScanRange(lower, upper []byte, fn func(key, value []byte) error) error {
	if lower != nil && upper != nil && bytes.Compare(lower, upper) > 0 {
		return base.Errorf(base.CodeInvalidArgument, "meta: scan bounds [%q, %q) are reversed", lower, upper)
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer s.gate.exit()
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return s.readError(err)
	}
	ferr := s.scan(it, fn)
	if cerr := it.Close(); cerr != nil && ferr == nil {
		ferr = s.readError(cerr)
	}
	if errors.Is(ferr, StopScan) {
		return nil
	}
	return ferr
}

func (s *Store) scan(it *pebble.Iterator, fn func(key, value []byte) error) error {
	for valid := it.First(); valid; valid = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			return s.readError(err)
		}
		// A value read after a failure may be one whose commit failed.
		if ferr := s.fence.err(); ferr != nil {
			return ferr
		}
		if err := fn(it.Key(), v); err != nil {
			return err
		}
	}
	if err := it.Error(); err != nil {
		return s.readError(err)
	}
	return s.fence.err()
}

// gate admits calls until the store closes, and lets Close wait for the
// calls in progress. Unlike a RWMutex, a call made from inside another (a
// Get from a Scan callback) cannot deadlock against a waiting Close: it is
// refused instead.
type gate struct {
	mu     sync.Mutex
	idle   sync.Cond // signalled, under mu, when calls drops to zero after close
	calls  int       // guarded by mu; calls in progress
	closed bool      // guarded by mu
}

func (g *gate) init() { g.idle.L = &g.mu }

func (g *gate) enter() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.calls++
	return true
}

func (g *gate) exit() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.calls--
	base.Assert(g.calls >= 0, "meta: gate exit without enter")
	if g.calls == 0 && g.closed {
		g.idle.Broadcast()
	}
}

// close refuses new calls and waits for those in progress; it returns false
// if the gate was closed already.
func (g *gate) close() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.closed = true
	for g.calls > 0 {
		g.idle.Wait()
	}
	return true
}

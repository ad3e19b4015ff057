package vfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"sync"
	"syscall"
)

// Op names an FS or File operation, for fault injection.
type Op uint8

const (
	OpCreate Op = iota + 1
	OpOpen
	OpRead
	OpWrite
	OpSync // File.Sync, and each file of SyncFiles
	OpTruncate
	OpRemove
	OpRename
	OpMkdir
	OpSyncDir
	OpList
	OpStat
	OpLock
	OpClose
)

var opNames = [...]string{
	OpCreate: "create", OpOpen: "open", OpRead: "read", OpWrite: "write",
	OpSync: "sync", OpTruncate: "truncate", OpRemove: "remove", OpRename: "rename",
	OpMkdir: "mkdir", OpSyncDir: "syncdir", OpList: "list", OpStat: "stat",
	OpLock: "lock", OpClose: "close",
}

func (o Op) String() string {
	if int(o) < len(opNames) && opNames[o] != "" {
		return opNames[o]
	}
	return fmt.Sprintf("op(%d)", uint8(o))
}

// Mutates reports whether the operation can change what is on disk or what
// a crash leaves there: the call sites crash-point tests enumerate.
func (o Op) Mutates() bool {
	switch o {
	case OpCreate, OpWrite, OpSync, OpTruncate, OpRemove, OpRename, OpMkdir, OpSyncDir:
		return true
	}
	return false
}

// Point is one operation as seen by an Injector: before it runs (After is
// false) and after it ran (After is true, Err is its result).
type Point struct {
	Op    Op
	Path  string
	After bool
	Err   error
}

// Injector decides the faults of a FaultFS. Before an operation, a non-nil
// result is returned in place of running it. After it, the result replaces
// the operation's own (which has happened). Inject is called with no FaultFS
// lock held and may be called concurrently.
type Injector interface {
	Inject(p Point) error
}

// InjectorFunc adapts a function to Injector.
type InjectorFunc func(p Point) error

func (f InjectorFunc) Inject(p Point) error { return f(p) }

// Gate is an Injector that holds every operation on a path hold reports
// until Open: a test's way to keep some of a node's files from opening (a
// group still loading) for as long as it needs.
type Gate struct {
	hold func(path string) bool
	open chan struct{}
	once sync.Once
}

// NewGate returns a gate, closed, for the paths hold reports.
func NewGate(hold func(path string) bool) *Gate {
	return &Gate{hold: hold, open: make(chan struct{})}
}

func (g *Gate) Inject(p Point) error {
	if !p.After && g.hold(p.Path) {
		<-g.open
	}
	return nil
}

// Open lets the held operations and every later one through. It may be
// called more than once.
func (g *Gate) Open() { g.once.Do(func() { close(g.open) }) }

// The errors an injector typically returns, as the OS would.
var (
	ErrInjectedIO      = syscall.EIO
	ErrInjectedNoSpace = syscall.ENOSPC
)

// FaultFS wraps an FS and consults an Injector around every operation.
type FaultFS struct {
	inner FS
	inj   Injector
}

// WithFaults returns inner with faults decided by inj.
func WithFaults(inner FS, inj Injector) *FaultFS { return &FaultFS{inner: inner, inj: inj} }

func (f *FaultFS) around(op Op, path string, do func() error) error {
	if err := f.inj.Inject(Point{Op: op, Path: path}); err != nil {
		return &fs.PathError{Op: op.String(), Path: path, Err: err}
	}
	err := do()
	if ierr := f.inj.Inject(Point{Op: op, Path: path, After: true, Err: err}); ierr != nil {
		return &fs.PathError{Op: op.String(), Path: path, Err: ierr}
	}
	return err
}

func (f *FaultFS) wrap(op Op, name string, open func() (File, error)) (File, error) {
	var file File
	err := f.around(op, name, func() error {
		var err error
		file, err = open()
		return err
	})
	if err != nil {
		if file != nil {
			file.Close()
		}
		return nil, err
	}
	return &faultFile{File: file, fs: f}, nil
}

func (f *FaultFS) Create(name string) (File, error) {
	return f.wrap(OpCreate, name, func() (File, error) { return f.inner.Create(name) })
}

func (f *FaultFS) Open(name string) (File, error) {
	return f.wrap(OpOpen, name, func() (File, error) { return f.inner.Open(name) })
}

func (f *FaultFS) OpenReadWrite(name string) (File, error) {
	return f.wrap(OpOpen, name, func() (File, error) { return f.inner.OpenReadWrite(name) })
}

func (f *FaultFS) Remove(name string) error {
	return f.around(OpRemove, name, func() error { return f.inner.Remove(name) })
}

func (f *FaultFS) RemoveAll(name string) error {
	return f.around(OpRemove, name, func() error { return f.inner.RemoveAll(name) })
}

func (f *FaultFS) Rename(oldname, newname string) error {
	return f.around(OpRename, oldname, func() error { return f.inner.Rename(oldname, newname) })
}

func (f *FaultFS) MkdirAll(dir string, perm os.FileMode) error {
	return f.around(OpMkdir, dir, func() error { return f.inner.MkdirAll(dir, perm) })
}

func (f *FaultFS) List(dir string) ([]string, error) {
	var names []string
	err := f.around(OpList, dir, func() error {
		var err error
		names, err = f.inner.List(dir)
		return err
	})
	return names, err
}

func (f *FaultFS) Stat(name string) (os.FileInfo, error) {
	var fi os.FileInfo
	err := f.around(OpStat, name, func() error {
		var err error
		fi, err = f.inner.Stat(name)
		return err
	})
	return fi, err
}

func (f *FaultFS) SyncDir(dir string) error {
	return f.around(OpSyncDir, dir, func() error { return f.inner.SyncDir(dir) })
}

// SyncFiles consults the injector for each file (as OpSync) before and after
// one SyncFiles of the inner file system.
func (f *FaultFS) SyncFiles(files ...File) error {
	inner := make([]File, len(files))
	for i, file := range files {
		ff, ok := file.(*faultFile)
		if !ok {
			return fmt.Errorf("vfs: SyncFiles given a %T, not a file of this FaultFS", file)
		}
		if err := f.inj.Inject(Point{Op: OpSync, Path: ff.Name()}); err != nil {
			return &fs.PathError{Op: "sync", Path: ff.Name(), Err: err}
		}
		inner[i] = ff.File
	}
	err := f.inner.SyncFiles(inner...)
	for _, file := range inner {
		if ierr := f.inj.Inject(Point{Op: OpSync, Path: file.Name(), After: true, Err: err}); ierr != nil {
			return &fs.PathError{Op: "sync", Path: file.Name(), Err: ierr}
		}
	}
	return err
}

func (f *FaultFS) Lock(name string) (io.Closer, error) {
	var c io.Closer
	err := f.around(OpLock, name, func() error {
		var err error
		c, err = f.inner.Lock(name)
		return err
	})
	return c, err
}

type faultFile struct {
	File
	fs *FaultFS
}

func (f *faultFile) Read(p []byte) (int, error) {
	var n int
	err := f.fs.around(OpRead, f.Name(), func() error {
		var err error
		n, err = f.File.Read(p)
		return err
	})
	return n, err
}

func (f *faultFile) ReadAt(p []byte, off int64) (int, error) {
	var n int
	err := f.fs.around(OpRead, f.Name(), func() error {
		var err error
		n, err = f.File.ReadAt(p, off)
		return err
	})
	return n, err
}

// Write reports a short write of zero bytes when the fault comes before the
// write, and the bytes written when it comes after.
func (f *faultFile) Write(p []byte) (int, error) {
	var n int
	err := f.fs.around(OpWrite, f.Name(), func() error {
		var err error
		n, err = f.File.Write(p)
		return err
	})
	return n, err
}

func (f *faultFile) Sync() error {
	return f.fs.around(OpSync, f.Name(), f.File.Sync)
}

func (f *faultFile) Truncate(size int64) error {
	return f.fs.around(OpTruncate, f.Name(), func() error { return f.File.Truncate(size) })
}

func (f *faultFile) Close() error {
	return f.fs.around(OpClose, f.Name(), f.File.Close)
}

// FailOn is an Injector that fails, with Err, the Nth (1-based) operation
// Op whose path contains PathContains, before it runs; with Sticky, every
// later matching operation fails too. It is safe for concurrent use.
type FailOn struct {
	Op           Op
	PathContains string
	N            int
	Err          error
	Sticky       bool

	mu   sync.Mutex
	seen int
}

func (f *FailOn) Inject(p Point) error {
	if p.After || p.Op != f.Op || !strings.Contains(p.Path, f.PathContains) {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seen++
	if f.seen == f.N || (f.Sticky && f.seen > f.N) {
		return f.Err
	}
	return nil
}

// ErrCrashed is returned by every operation once a CrashAt injector has
// reached its crash point: the simulated process is dead.
var ErrCrashed = errors.New("vfs: simulated crash")

// CrashAt is an Injector for crash-point tests. It counts the operations
// that mutate the disk (Op.Mutates); at the Kth (1-based) it "crashes" just
// before the operation runs, or just after it with AfterOp, and from then on
// fails every operation with ErrCrashed. The test then calls MemFS.Crash and
// reopens. K = 0 never crashes, and the count after a run is the number of
// crash points the workload has. It is safe for concurrent use.
type CrashAt struct {
	K       int
	AfterOp bool

	mu      sync.Mutex
	count   int
	crashed bool
	hit     Point
}

func (c *CrashAt) Inject(p Point) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.crashed {
		return ErrCrashed
	}
	if !p.Op.Mutates() {
		return nil
	}
	if !p.After {
		c.count++
		if c.count == c.K && !c.AfterOp {
			c.crashed, c.hit = true, p
			return ErrCrashed
		}
		return nil
	}
	if c.count == c.K && c.AfterOp {
		c.crashed, c.hit = true, p
		return ErrCrashed
	}
	return nil
}

// Count returns how many mutating operations have been seen.
func (c *CrashAt) Count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.count
}

// Crashed reports whether the crash point was reached, and at which
// operation.
func (c *CrashAt) Crashed() (Point, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hit, c.crashed
}

package meta

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sync/atomic"
	"time"

	pvfs "github.com/cockroachdb/pebble/v2/vfs"

	"github.com/ferry-mq/ferry/internal/base/vfs"
)

// pebbleFS runs Pebble on a Ferry vfs.FS, so that Pebble's files get the
// crash semantics of vfs.MemFS and the faults of vfs.FaultFS in tests, and
// the operating system in production.
//
// What Pebble's interface asks beyond ours, and how it is met:
//   - Create of an existing name truncates it (Pebble's own removes it first
//     to get a new inode, which matters only with hard links; Link is not
//     supported, so nothing else can share the inode).
//   - OpenReadWrite creates a missing file, as Pebble expects.
//   - OpenDir returns a handle whose Sync is SyncDir.
//   - ReuseForWrite (WAL recycling) is Rename then OpenReadWrite: the WAL is
//     rewritten in place, which Pebble's recyclable record format allows.
//   - File.Stat is built from Size and Name; Fd is InvalidFd, so Pebble's
//     syncing wrapper neither preallocates nor calls sync_file_range, and
//     fadvise is skipped; SyncData is Sync (fdatasync); SyncTo syncs nothing
//     and reports so, as its contract allows; Prefetch does nothing.
//   - Link, WriteAt and GetDiskUsage report ErrUnsupported: Pebble uses them
//     only for checkpoints, ingestion by link, the shared block cache of
//     disaggregated storage, and disk-space heuristics (which treat
//     ErrUnsupported as "unknown"). The store uses none of the former.
//
// Every mutation that fails (write, sync, create, rename, remove, mkdir),
// and every failed read of an open file, trips the fence: afterwards every
// operation is refused, and only Close of handles still runs. Failures to
// open, stat or list a name are not fatal: Pebble probes for names that may
// not exist.
type pebbleFS struct {
	fs    vfs.FS
	fence *fence

	fileSyncs atomic.Uint64 // successful File.Sync calls
	dirSyncs  atomic.Uint64 // successful directory syncs
}

var _ pvfs.FS = (*pebbleFS)(nil)

// failed trips the fence with err, the error of a failed mutation, and
// returns err for Pebble to see.
func (p *pebbleFS) failed(err error) error {
	p.fence.trip(err)
	return err
}

func (p *pebbleFS) Create(name string, _ pvfs.DiskWriteCategory) (pvfs.File, error) {
	if err := p.fence.refuse("create", name); err != nil {
		return nil, err
	}
	f, err := p.fs.Create(name)
	if err != nil {
		return nil, p.failed(err)
	}
	return &pebbleFile{f: f, p: p}, nil
}

func (p *pebbleFS) Link(oldname, newname string) error {
	return fmt.Errorf("meta: link %s to %s: %w", oldname, newname, pvfs.ErrUnsupported)
}

func (p *pebbleFS) Open(name string, opts ...pvfs.OpenOption) (pvfs.File, error) {
	if err := p.fence.refuse("open", name); err != nil {
		return nil, err
	}
	f, err := p.fs.Open(name)
	if err != nil {
		return nil, err
	}
	file := &pebbleFile{f: f, p: p}
	for _, o := range opts {
		o.Apply(file)
	}
	return file, nil
}

func (p *pebbleFS) OpenReadWrite(name string, _ pvfs.DiskWriteCategory, opts ...pvfs.OpenOption) (pvfs.File, error) {
	if err := p.fence.refuse("open", name); err != nil {
		return nil, err
	}
	f, err := p.fs.OpenReadWrite(name)
	if errors.Is(err, fs.ErrNotExist) {
		f, err = p.fs.Create(name)
		if err != nil {
			return nil, p.failed(err)
		}
	}
	if err != nil {
		return nil, err
	}
	file := &pebbleFile{f: f, p: p}
	for _, o := range opts {
		o.Apply(file)
	}
	return file, nil
}

func (p *pebbleFS) OpenDir(name string) (pvfs.File, error) {
	if err := p.fence.refuse("opendir", name); err != nil {
		return nil, err
	}
	fi, err := p.fs.Stat(name)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, &fs.PathError{Op: "opendir", Path: name, Err: errors.New("not a directory")}
	}
	return &pebbleDir{name: name, p: p}, nil
}

func (p *pebbleFS) Remove(name string) error {
	if err := p.fence.refuse("remove", name); err != nil {
		return err
	}
	err := p.fs.Remove(name)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return p.failed(err)
	}
	return err
}

func (p *pebbleFS) RemoveAll(name string) error {
	if err := p.fence.refuse("removeall", name); err != nil {
		return err
	}
	if err := p.fs.RemoveAll(name); err != nil {
		return p.failed(err)
	}
	return nil
}

func (p *pebbleFS) Rename(oldname, newname string) error {
	if err := p.fence.refuse("rename", oldname); err != nil {
		return err
	}
	if err := p.fs.Rename(oldname, newname); err != nil {
		return p.failed(err)
	}
	return nil
}

// ReuseForWrite renames a recycled WAL to its new name and opens it for
// writing from offset 0 without truncating.
func (p *pebbleFS) ReuseForWrite(oldname, newname string, _ pvfs.DiskWriteCategory) (pvfs.File, error) {
	if err := p.Rename(oldname, newname); err != nil {
		return nil, err
	}
	f, err := p.fs.OpenReadWrite(newname)
	if err != nil {
		return nil, p.failed(err)
	}
	return &pebbleFile{f: f, p: p}, nil
}

func (p *pebbleFS) MkdirAll(dir string, perm os.FileMode) error {
	if err := p.fence.refuse("mkdir", dir); err != nil {
		return err
	}
	if err := p.fs.MkdirAll(dir, perm); err != nil {
		return p.failed(err)
	}
	return nil
}

func (p *pebbleFS) Lock(name string) (io.Closer, error) {
	if err := p.fence.refuse("lock", name); err != nil {
		return nil, err
	}
	return p.fs.Lock(name)
}

func (p *pebbleFS) List(dir string) ([]string, error) {
	if err := p.fence.refuse("list", dir); err != nil {
		return nil, err
	}
	return p.fs.List(dir)
}

func (p *pebbleFS) Stat(name string) (pvfs.FileInfo, error) {
	if err := p.fence.refuse("stat", name); err != nil {
		return nil, err
	}
	fi, err := p.fs.Stat(name)
	if err != nil {
		return nil, err
	}
	return fileInfo{fi}, nil
}

func (p *pebbleFS) PathBase(name string) string    { return path.Base(name) }
func (p *pebbleFS) PathJoin(elem ...string) string { return path.Join(elem...) }
func (p *pebbleFS) PathDir(name string) string     { return path.Dir(name) }

func (p *pebbleFS) GetDiskUsage(string) (pvfs.DiskUsage, error) {
	return pvfs.DiskUsage{}, pvfs.ErrUnsupported
}

func (p *pebbleFS) Unwrap() pvfs.FS { return nil }

// fileInfo adds Pebble's DeviceID to an os.FileInfo. Pebble uses device ids
// only for WAL failover between devices, which the store does not configure.
type fileInfo struct{ os.FileInfo }

func (fileInfo) DeviceID() pvfs.DeviceID { return pvfs.DeviceID{} }

// pebbleFile is an open file. Pebble calls Write and Sync of one file from
// one goroutine at a time, and ReadAt from any, which vfs.File allows.
type pebbleFile struct {
	f vfs.File
	p *pebbleFS
}

var _ pvfs.File = (*pebbleFile)(nil)

// Close runs even on a fenced store, so that Pebble can release handles.
func (f *pebbleFile) Close() error { return f.f.Close() }

// Read and ReadAt trip the fence on any error but io.EOF: a disk that fails
// reads is failing, and the store stops rather than serve around it.
func (f *pebbleFile) Read(b []byte) (int, error) {
	if err := f.p.fence.refuse("read", f.f.Name()); err != nil {
		return 0, err
	}
	n, err := f.f.Read(b)
	if err != nil && err != io.EOF {
		return n, f.p.failed(err)
	}
	return n, err
}

func (f *pebbleFile) ReadAt(b []byte, off int64) (int, error) {
	if err := f.p.fence.refuse("read", f.f.Name()); err != nil {
		return 0, err
	}
	n, err := f.f.ReadAt(b, off)
	if err != nil && err != io.EOF {
		return n, f.p.failed(err)
	}
	return n, err
}

func (f *pebbleFile) Write(b []byte) (int, error) {
	if err := f.p.fence.refuse("write", f.f.Name()); err != nil {
		return 0, err
	}
	n, err := f.f.Write(b)
	if err != nil {
		return n, f.p.failed(err)
	}
	return n, nil
}

func (f *pebbleFile) WriteAt([]byte, int64) (int, error) {
	return 0, fmt.Errorf("meta: WriteAt on %s: %w", f.f.Name(), pvfs.ErrUnsupported)
}

// Preallocate does nothing, as its contract allows; Pebble calls it only on
// files with a descriptor, and ours report none.
func (f *pebbleFile) Preallocate(int64, int64) error { return nil }

func (f *pebbleFile) Stat() (pvfs.FileInfo, error) {
	if err := f.p.fence.refuse("stat", f.f.Name()); err != nil {
		return nil, err
	}
	size, err := f.f.Size()
	if err != nil {
		return nil, err
	}
	return fileInfo{openFileInfo{name: path.Base(f.f.Name()), size: size}}, nil
}

func (f *pebbleFile) Sync() error {
	if err := f.p.fence.refuse("sync", f.f.Name()); err != nil {
		return err
	}
	if err := f.f.Sync(); err != nil {
		return f.p.failed(err)
	}
	f.p.fileSyncs.Add(1)
	return nil
}

// SyncData is Sync: vfs.File.Sync is already fdatasync.
func (f *pebbleFile) SyncData() error { return f.Sync() }

// SyncTo asks for no durability, so it does nothing and says it did not
// sync the whole file; a later Sync or SyncData does the real work.
func (f *pebbleFile) SyncTo(int64) (bool, error) {
	if err := f.p.fence.refuse("sync", f.f.Name()); err != nil {
		return false, err
	}
	return false, nil
}

func (f *pebbleFile) Prefetch(int64, int64) error { return nil }

func (f *pebbleFile) Fd() uintptr { return pvfs.InvalidFd }

// openFileInfo describes an open file from its name and size.
type openFileInfo struct {
	name string
	size int64
}

func (i openFileInfo) Name() string       { return i.name }
func (i openFileInfo) Size() int64        { return i.size }
func (i openFileInfo) Mode() os.FileMode  { return 0o644 }
func (i openFileInfo) ModTime() time.Time { return time.Time{} }
func (i openFileInfo) IsDir() bool        { return false }
func (i openFileInfo) Sys() any           { return nil }

// pebbleDir is a directory opened for syncing; that is all Pebble does with
// one.
type pebbleDir struct {
	name string
	p    *pebbleFS
}

var _ pvfs.File = (*pebbleDir)(nil)

func (d *pebbleDir) notAFile(op string) error {
	return &fs.PathError{Op: op, Path: d.name, Err: errors.New("is a directory")}
}

func (d *pebbleDir) Close() error                       { return nil }
func (d *pebbleDir) Read([]byte) (int, error)           { return 0, d.notAFile("read") }
func (d *pebbleDir) ReadAt([]byte, int64) (int, error)  { return 0, d.notAFile("read") }
func (d *pebbleDir) Write([]byte) (int, error)          { return 0, d.notAFile("write") }
func (d *pebbleDir) WriteAt([]byte, int64) (int, error) { return 0, d.notAFile("write") }
func (d *pebbleDir) Preallocate(int64, int64) error     { return nil }
func (d *pebbleDir) SyncTo(int64) (bool, error)         { return false, nil }
func (d *pebbleDir) Prefetch(int64, int64) error        { return nil }
func (d *pebbleDir) Fd() uintptr                        { return pvfs.InvalidFd }
func (d *pebbleDir) SyncData() error                    { return d.Sync() }

func (d *pebbleDir) Stat() (pvfs.FileInfo, error) { return d.p.Stat(d.name) }

// Sync makes the creation, renaming and removal of the directory's entries
// durable.
func (d *pebbleDir) Sync() error {
	if err := d.p.fence.refuse("syncdir", d.name); err != nil {
		return err
	}
	if err := d.p.fs.SyncDir(d.name); err != nil {
		return d.p.failed(err)
	}
	d.p.dirSyncs.Add(1)
	return nil
}

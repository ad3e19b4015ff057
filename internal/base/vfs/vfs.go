package vfs

import (
	"errors"
	"io"
	"os"
)

// File is an open file. Writes append at the current position (which is the
// end for files from Create, and 0 for OpenReadWrite until Seek). A File is
// not safe for concurrent Write and Seek, but ReadAt may run concurrently
// with anything.
type File interface {
	io.Reader
	io.ReaderAt
	io.Writer
	io.Seeker
	io.Closer
	// Sync makes the file's contents and size durable (fdatasync).
	Sync() error
	// Truncate changes the size; durable after Sync.
	Truncate(size int64) error
	// Size returns the current (not necessarily durable) size.
	Size() (int64, error)
	// Name returns the name the file was opened with.
	Name() string
}

// FS is a file system. Names are slash-separated paths.
type FS interface {
	// Create creates or truncates name and opens it read-write.
	Create(name string) (File, error)
	// Open opens an existing file read-only.
	Open(name string) (File, error)
	// OpenReadWrite opens an existing file read-write at position 0.
	OpenReadWrite(name string) (File, error)
	Remove(name string) error
	// RemoveAll removes a directory and everything below it; durable after
	// SyncDir of its parent.
	RemoveAll(name string) error
	Rename(oldname, newname string) error
	MkdirAll(dir string, perm os.FileMode) error
	// List returns the sorted base names of dir's entries.
	List(dir string) ([]string, error)
	Stat(name string) (os.FileInfo, error)
	// SyncDir makes the creation, renaming and removal of dir's entries
	// durable.
	SyncDir(dir string) error
	// SyncFiles makes the contents of all files durable, with as few
	// device flushes as the implementation can manage (on Linux, one
	// syncfs(2) for several files of one file system). Files must come from
	// this FS.
	SyncFiles(files ...File) error
	// Lock takes an exclusive advisory lock on name (created if missing), so
	// that two processes never share a data directory. Close releases it.
	Lock(name string) (io.Closer, error)
}

// ErrStaleHandle is returned by every operation on a MemFS file opened
// before the last Crash.
var ErrStaleHandle = errors.New("vfs: file handle is from before a crash")

// ErrLocked is returned by Lock when the lock is held.
var ErrLocked = errors.New("vfs: lock is held by another owner")

package vfs

import (
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"slices"
	"strings"
	"sync"
	"time"
)

// MemFS is an in-memory FS that remembers, for every file and directory,
// what has been made durable, so that Crash can drop the rest. It is safe
// for concurrent use; one mutex guards everything.
type MemFS struct {
	mu    sync.Mutex
	root  *memNode        // guarded by mu
	gen   uint64          // guarded by mu; handles from an older generation are stale
	locks map[string]bool // guarded by mu
}

// memNode is a file or a directory. Directories keep the entries a crash
// would leave (synced) beside the current ones; files keep their durable
// contents beside the current ones.
type memNode struct {
	dir            bool
	children       map[string]*memNode // current entries
	syncedChildren map[string]*memNode // entries as of the last SyncDir
	data           []byte              // current contents
	// The contents as of the last Sync are data[:syncedLen] while
	// syncedIsPrefix holds (the common, append-only case, which makes Sync
	// O(1)); once a write or truncate changes bytes below syncedLen they are
	// copied into synced first.
	syncedIsPrefix bool
	syncedLen      int
	synced         []byte
}

// durable returns the contents a crash would leave. The result may share
// memory with data.
func (n *memNode) durable() []byte {
	if n.syncedIsPrefix {
		return n.data[:n.syncedLen]
	}
	return n.synced
}

// beforeChange must be called before bytes at offset from or later change
// (by a write, or a truncate to from).
func (n *memNode) beforeChange(from int64) {
	if n.syncedIsPrefix && from < int64(n.syncedLen) {
		n.synced = slices.Clone(n.data[:n.syncedLen])
		n.syncedIsPrefix = false
	}
}

func (n *memNode) sync() {
	n.syncedIsPrefix = true
	n.syncedLen = len(n.data)
	n.synced = nil
}

func newDir() *memNode {
	return &memNode{dir: true, children: map[string]*memNode{}, syncedChildren: map[string]*memNode{}}
}

// NewMem returns an empty in-memory file system.
func NewMem() *MemFS { return &MemFS{root: newDir(), locks: map[string]bool{}} }

// Crash simulates power loss: every file loses the writes not yet synced,
// every directory loses the entries created, renamed or removed since its
// last SyncDir, locks are released, and every open handle becomes stale.
func (m *MemFS) Crash() { m.crash(nil) }

// CrashTorn is Crash, except that a file whose current contents extend its
// durable contents keeps a random prefix of the unsynced bytes, as a disk
// does when a crash lands during write-back. rng chooses the prefix.
func (m *MemFS) CrashTorn(rng *rand.Rand) { m.crash(rng) }

func (m *MemFS) crash(rng *rand.Rand) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.gen++
	m.locks = map[string]bool{}
	seen := map[*memNode]bool{}
	var walk func(n *memNode)
	walk = func(n *memNode) {
		if seen[n] {
			return
		}
		seen[n] = true
		if !n.dir {
			keep := n.durable()
			if rng != nil && len(n.data) > len(keep) && string(n.data[:len(keep)]) == string(keep) {
				keep = n.data[:len(keep)+rng.IntN(len(n.data)-len(keep)+1)]
			}
			n.data = slices.Clone(keep)
			n.sync()
			return
		}
		n.children = make(map[string]*memNode, len(n.syncedChildren))
		for name, c := range n.syncedChildren {
			n.children[name] = c
			walk(c)
		}
	}
	walk(m.root)
}

// split cleans name and returns its parent directory's path and base name.
func split(name string) (dir, base string) {
	clean := path.Clean("/" + name)
	return path.Dir(clean), path.Base(clean)
}

func (m *MemFS) lookupLocked(name string) (*memNode, error) {
	n := m.root
	for _, part := range strings.Split(path.Clean("/"+name), "/") {
		if part == "" {
			continue
		}
		if !n.dir {
			return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
		}
		c, ok := n.children[part]
		if !ok {
			return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
		}
		n = c
	}
	return n, nil
}

func (m *MemFS) parentLocked(op, name string) (*memNode, string, error) {
	dir, base := split(name)
	p, err := m.lookupLocked(dir)
	if err != nil {
		return nil, "", &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
	}
	if !p.dir {
		return nil, "", &fs.PathError{Op: op, Path: name, Err: fmt.Errorf("%s is not a directory", dir)}
	}
	return p, base, nil
}

func (m *MemFS) Create(name string) (File, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, base, err := m.parentLocked("create", name)
	if err != nil {
		return nil, err
	}
	n, ok := p.children[base]
	switch {
	case ok && n.dir:
		return nil, &fs.PathError{Op: "create", Path: name, Err: fmt.Errorf("is a directory")}
	case ok:
		n.beforeChange(0)
		n.data = nil
	default:
		n = &memNode{}
		p.children[base] = n
	}
	return &memFile{fs: m, node: n, name: name, gen: m.gen}, nil
}

func (m *MemFS) openLocked(op, name string, readOnly bool) (File, error) {
	n, err := m.lookupLocked(name)
	if err != nil {
		return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
	}
	if n.dir && !readOnly {
		return nil, &fs.PathError{Op: op, Path: name, Err: fmt.Errorf("is a directory")}
	}
	return &memFile{fs: m, node: n, name: name, gen: m.gen, readOnly: readOnly}, nil
}

func (m *MemFS) Open(name string) (File, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.openLocked("open", name, true)
}

func (m *MemFS) OpenReadWrite(name string) (File, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.openLocked("open", name, false)
}

func (m *MemFS) Remove(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, base, err := m.parentLocked("remove", name)
	if err != nil {
		return err
	}
	n, ok := p.children[base]
	if !ok {
		return &fs.PathError{Op: "remove", Path: name, Err: fs.ErrNotExist}
	}
	if n.dir && len(n.children) > 0 {
		return &fs.PathError{Op: "remove", Path: name, Err: fmt.Errorf("directory not empty")}
	}
	delete(p.children, base)
	return nil
}

func (m *MemFS) RemoveAll(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, base, err := m.parentLocked("removeall", name)
	if err != nil {
		return nil // as os.RemoveAll: nothing there is success
	}
	delete(p.children, base)
	return nil
}

func (m *MemFS) Rename(oldname, newname string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	op, obase, err := m.parentLocked("rename", oldname)
	if err != nil {
		return err
	}
	n, ok := op.children[obase]
	if !ok {
		return &fs.PathError{Op: "rename", Path: oldname, Err: fs.ErrNotExist}
	}
	np, nbase, err := m.parentLocked("rename", newname)
	if err != nil {
		return err
	}
	if old, ok := np.children[nbase]; ok && old.dir != n.dir {
		return &fs.PathError{Op: "rename", Path: newname, Err: fmt.Errorf("cannot replace a file with a directory or the reverse")}
	}
	delete(op.children, obase)
	np.children[nbase] = n
	return nil
}

func (m *MemFS) MkdirAll(dir string, _ os.FileMode) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := m.root
	for _, part := range strings.Split(path.Clean("/"+dir), "/") {
		if part == "" {
			continue
		}
		c, ok := n.children[part]
		if !ok {
			c = newDir()
			n.children[part] = c
		} else if !c.dir {
			return &fs.PathError{Op: "mkdir", Path: dir, Err: fmt.Errorf("%s is a file", part)}
		}
		n = c
	}
	return nil
}

func (m *MemFS) List(dir string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.lookupLocked(dir)
	if err != nil {
		return nil, err
	}
	if !n.dir {
		return nil, &fs.PathError{Op: "readdir", Path: dir, Err: fmt.Errorf("not a directory")}
	}
	names := make([]string, 0, len(n.children))
	for name := range n.children {
		names = append(names, name)
	}
	slices.Sort(names)
	return names, nil
}

func (m *MemFS) Stat(name string) (os.FileInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.lookupLocked(name)
	if err != nil {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: fs.ErrNotExist}
	}
	_, base := split(name)
	return memInfo{name: base, size: int64(len(n.data)), dir: n.dir}, nil
}

func (m *MemFS) SyncDir(dir string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.lookupLocked(dir)
	if err != nil {
		return err
	}
	if !n.dir {
		return &fs.PathError{Op: "syncdir", Path: dir, Err: fmt.Errorf("not a directory")}
	}
	n.syncedChildren = make(map[string]*memNode, len(n.children))
	for name, c := range n.children {
		n.syncedChildren[name] = c
	}
	return nil
}

func (m *MemFS) SyncFiles(files ...File) error {
	for _, f := range files {
		if err := f.Sync(); err != nil {
			return err
		}
	}
	return nil
}

type memLock struct {
	fs   *MemFS
	name string
	gen  uint64
}

func (l memLock) Close() error {
	l.fs.mu.Lock()
	defer l.fs.mu.Unlock()
	if l.gen == l.fs.gen {
		delete(l.fs.locks, l.name)
	}
	return nil
}

func (m *MemFS) Lock(name string) (io.Closer, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	key := path.Clean("/" + name)
	if m.locks[key] {
		return nil, fmt.Errorf("%s: %w", name, ErrLocked)
	}
	m.locks[key] = true
	return memLock{fs: m, name: key, gen: m.gen}, nil
}

type memInfo struct {
	name string
	size int64
	dir  bool
}

func (i memInfo) Name() string { return i.name }
func (i memInfo) Size() int64  { return i.size }
func (i memInfo) Mode() os.FileMode {
	if i.dir {
		return os.ModeDir | 0o755
	}
	return 0o644
}
func (i memInfo) ModTime() time.Time { return time.Time{} }
func (i memInfo) IsDir() bool        { return i.dir }
func (i memInfo) Sys() any           { return nil }

// memFile is a handle on a memNode. Its position is its own; the node's
// contents are shared with every other handle, under the FS mutex.
type memFile struct {
	fs       *MemFS
	node     *memNode
	name     string
	gen      uint64
	readOnly bool
	pos      int64 // guarded by fs.mu
	closed   bool  // guarded by fs.mu
}

func (f *memFile) checkLocked(op string, write bool) error {
	switch {
	case f.closed:
		return &fs.PathError{Op: op, Path: f.name, Err: fs.ErrClosed}
	case f.gen != f.fs.gen:
		return &fs.PathError{Op: op, Path: f.name, Err: ErrStaleHandle}
	case write && f.readOnly:
		return &fs.PathError{Op: op, Path: f.name, Err: fs.ErrPermission}
	}
	return nil
}

func (f *memFile) Read(p []byte) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.checkLocked("read", false); err != nil {
		return 0, err
	}
	if f.pos >= int64(len(f.node.data)) {
		return 0, io.EOF
	}
	n := copy(p, f.node.data[f.pos:])
	f.pos += int64(n)
	return n, nil
}

func (f *memFile) ReadAt(p []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.checkLocked("read", false); err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, &fs.PathError{Op: "read", Path: f.name, Err: fs.ErrInvalid}
	}
	if off >= int64(len(f.node.data)) {
		return 0, io.EOF
	}
	n := copy(p, f.node.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (f *memFile) Write(p []byte) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.checkLocked("write", true); err != nil {
		return 0, err
	}
	f.node.beforeChange(f.pos)
	end := f.pos + int64(len(p))
	if end > int64(len(f.node.data)) {
		if end > int64(cap(f.node.data)) {
			// Grow by doubling.
			grown := make([]byte, len(f.node.data), max(end, 2*int64(cap(f.node.data))))
			copy(grown, f.node.data)
			f.node.data = grown
		}
		f.node.data = f.node.data[:end]
	}
	copy(f.node.data[f.pos:], p)
	f.pos = end
	return len(p), nil
}

func (f *memFile) Seek(offset int64, whence int) (int64, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.checkLocked("seek", false); err != nil {
		return 0, err
	}
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = f.pos + offset
	case io.SeekEnd:
		abs = int64(len(f.node.data)) + offset
	default:
		return 0, &fs.PathError{Op: "seek", Path: f.name, Err: fs.ErrInvalid}
	}
	if abs < 0 {
		return 0, &fs.PathError{Op: "seek", Path: f.name, Err: fs.ErrInvalid}
	}
	f.pos = abs
	return abs, nil
}

func (f *memFile) Close() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed {
		return &fs.PathError{Op: "close", Path: f.name, Err: fs.ErrClosed}
	}
	f.closed = true
	return nil
}

func (f *memFile) Sync() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.checkLocked("sync", false); err != nil {
		return err
	}
	f.node.sync()
	return nil
}

func (f *memFile) Truncate(size int64) error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.checkLocked("truncate", true); err != nil {
		return err
	}
	if size < 0 {
		return &fs.PathError{Op: "truncate", Path: f.name, Err: fs.ErrInvalid}
	}
	f.node.beforeChange(size)
	if size <= int64(len(f.node.data)) {
		f.node.data = f.node.data[:size]
	} else {
		f.node.data = append(f.node.data, make([]byte, size-int64(len(f.node.data)))...)
	}
	return nil
}

func (f *memFile) Size() (int64, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.checkLocked("stat", false); err != nil {
		return 0, err
	}
	return int64(len(f.node.data)), nil
}

func (f *memFile) Name() string { return f.name }

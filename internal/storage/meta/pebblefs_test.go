package meta

import (
	"errors"
	"io"
	"io/fs"
	"testing"

	pvfs "github.com/cockroachdb/pebble/v2/vfs"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/base/vfs"
)

func newTestFS(t *testing.T, inner vfs.FS) *pebbleFS {
	t.Helper()
	if err := inner.MkdirAll("/d", 0o755); err != nil {
		t.Fatal(err)
	}
	return &pebbleFS{fs: inner, fence: newFence(quiet())}
}

func writeFile(t *testing.T, p *pebbleFS, name, data string) {
	t.Helper()
	f, err := p.Create(name, pvfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte(data)); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, p *pebbleFS, name string) string {
	t.Helper()
	f, err := p.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestAdapterReuseForWriteRewritesInPlace(t *testing.T) {
	p := newTestFS(t, vfs.NewMem())
	writeFile(t, p, "/d/000001.log", "old wal contents")
	f, err := p.ReuseForWrite("/d/000001.log", "/d/000004.log", pvfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("NEW")); err != nil {
		t.Fatal(err)
	}
	fi, err := f.Stat()
	if err != nil || fi.Size() != int64(len("old wal contents")) || fi.Name() != "000004.log" {
		t.Errorf("Stat of the reused file: got %v %v, want 000004.log of the old size", fi, err)
	}
	f.Close()
	if got := readFile(t, p, "/d/000004.log"); got != "NEW wal contents" {
		t.Errorf("reused file: got %q, want the old bytes overwritten from offset 0", got)
	}
	if _, err := p.Stat("/d/000001.log"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("old name after ReuseForWrite: got %v, want not-exist", err)
	}
}

func TestAdapterCreateTruncatesAndOpenReadWriteCreates(t *testing.T) {
	p := newTestFS(t, vfs.NewMem())
	writeFile(t, p, "/d/f", "long old contents")
	writeFile(t, p, "/d/f", "new")
	if got := readFile(t, p, "/d/f"); got != "new" {
		t.Errorf("Create over an existing file: got %q, want %q", got, "new")
	}
	f, err := p.OpenReadWrite("/d/missing", pvfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatalf("OpenReadWrite of a missing file: %v", err)
	}
	f.Close()
	if fi, err := p.Stat("/d/missing"); err != nil || fi.Size() != 0 {
		t.Errorf("file made by OpenReadWrite: %v %v", fi, err)
	}
}

// TestAdapterDirSyncMakesNamesDurable checks OpenDir's handle against
// MemFS's crash semantics: a synced file's name survives a crash only after
// its directory is synced.
func TestAdapterDirSyncMakesNamesDurable(t *testing.T) {
	m := vfs.NewMem()
	p := newTestFS(t, m)
	if err := m.SyncDir("/"); err != nil {
		t.Fatal(err)
	}
	writeFile(t, p, "/d/lost", "x")
	m.Crash()
	if _, err := p.Stat("/d/lost"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a file whose directory was not synced survived a crash: %v", err)
	}
	writeFile(t, p, "/d/kept", "x")
	dir, err := p.OpenDir("/d")
	if err != nil {
		t.Fatal(err)
	}
	if err := dir.Sync(); err != nil {
		t.Fatal(err)
	}
	dir.Close()
	m.Crash()
	if got := readFile(t, p, "/d/kept"); got != "x" {
		t.Errorf("after dir sync and crash: got %q, want %q", got, "x")
	}
	if _, err := p.OpenDir("/d/kept"); err == nil {
		t.Errorf("OpenDir of a file: got nil error")
	}
	if _, err := p.OpenDir("/nowhere"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("OpenDir of a missing directory: got %v, want not-exist", err)
	}
}

// TestAdapterSyncToPromisesNothing pins that SyncTo reports a partial sync
// and makes nothing durable, so Pebble follows it with a real Sync.
func TestAdapterSyncToPromisesNothing(t *testing.T) {
	m := vfs.NewMem()
	p := newTestFS(t, m)
	if err := m.SyncDir("/"); err != nil {
		t.Fatal(err)
	}
	f, err := p.Create("/d/f", pvfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.SyncDir("/d"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("data")); err != nil {
		t.Fatal(err)
	}
	full, err := f.SyncTo(4)
	if full || err != nil {
		t.Errorf("SyncTo: got full=%v err=%v, want false, nil", full, err)
	}
	m.Crash()
	if got := readFile(t, p, "/d/f"); got != "" {
		t.Errorf("after SyncTo and a crash: got %q, want nothing durable", got)
	}
}

func TestAdapterRefusesWhatPebbleUsesOnlyForUnusedFeatures(t *testing.T) {
	p := newTestFS(t, vfs.NewMem())
	writeFile(t, p, "/d/f", "x")
	if err := p.Link("/d/f", "/d/g"); !errors.Is(err, pvfs.ErrUnsupported) {
		t.Errorf("Link: got %v, want ErrUnsupported", err)
	}
	if _, err := p.GetDiskUsage("/d"); !errors.Is(err, pvfs.ErrUnsupported) {
		t.Errorf("GetDiskUsage: got %v, want ErrUnsupported", err)
	}
	f, err := p.OpenReadWrite("/d/f", pvfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt([]byte("y"), 0); !errors.Is(err, pvfs.ErrUnsupported) {
		t.Errorf("WriteAt: got %v, want ErrUnsupported", err)
	}
	if f.Fd() != pvfs.InvalidFd {
		t.Errorf("Fd: got %d, want InvalidFd", f.Fd())
	}
	if p.fence.err() != nil {
		t.Errorf("refusing unsupported operations tripped the fence: %v", p.fence.err())
	}
}

func TestAdapterFenceRefusesEverythingAfterAFailedWrite(t *testing.T) {
	m := vfs.NewMem()
	p := newTestFS(t, vfs.WithFaults(m, &vfs.FailOn{Op: vfs.OpWrite, PathContains: "bad", N: 1, Err: vfs.ErrInjectedNoSpace}))
	writeFile(t, p, "/d/good", "x")
	if err := p.Remove("/d/absent"); !errors.Is(err, fs.ErrNotExist) || p.fence.err() != nil {
		t.Fatalf("Remove of a missing name: got %v, fence %v; want not-exist and no failure", err, p.fence.err())
	}
	open, err := p.Open("/d/good")
	if err != nil {
		t.Fatal(err)
	}
	bad, err := p.Create("/d/bad", pvfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bad.Write([]byte("x")); !errors.Is(err, vfs.ErrInjectedNoSpace) {
		t.Fatalf("write under the fault: got %v", err)
	}
	wantCode(t, "fence after the failed write", p.fence.err(), base.CodeStorageFailed)
	buf := make([]byte, 1)
	_, err = open.ReadAt(buf, 0)
	wantCode(t, "ReadAt of a file opened before", err, base.CodeStorageFailed)
	_, err = p.Open("/d/good")
	wantCode(t, "Open", err, base.CodeStorageFailed)
	_, err = p.Create("/d/new", pvfs.WriteCategoryUnspecified)
	wantCode(t, "Create", err, base.CodeStorageFailed)
	_, err = p.List("/d")
	wantCode(t, "List", err, base.CodeStorageFailed)
	wantCode(t, "Sync", bad.Sync(), base.CodeStorageFailed)
	if err := open.Close(); err != nil {
		t.Errorf("Close of a handle on a fenced store: %v", err)
	}
	if _, err := m.Stat("/d/new"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a refused Create reached the disk: %v", err)
	}
}

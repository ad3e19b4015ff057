package vfs

import (
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"
)

func mustWrite(t *testing.T, f File, s string) {
	t.Helper()
	if n, err := f.Write([]byte(s)); err != nil || n != len(s) {
		t.Fatalf("write %q: n=%d err=%v", s, n, err)
	}
}

func readAll(t *testing.T, fsys FS, name string) string {
	t.Helper()
	f, err := fsys.Open(name)
	if err != nil {
		t.Fatalf("open %s: %v", name, err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	return string(b)
}

// TestConformance runs the same operations on the OS and the memory file
// systems, so that MemFS behaves as the disk does where both are defined.
func TestConformance(t *testing.T) {
	for _, tc := range []struct {
		name string
		fs   FS
		dir  string
	}{
		{"os", Default, t.TempDir()},
		{"mem", NewMem(), "/data"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fsys, dir := tc.fs, tc.dir
			if err := fsys.MkdirAll(filepath.Join(dir, "sub"), 0o755); err != nil {
				t.Fatal(err)
			}
			a := filepath.Join(dir, "a")
			f, err := fsys.Create(a)
			if err != nil {
				t.Fatal(err)
			}
			mustWrite(t, f, "hello ")
			mustWrite(t, f, "world")
			if size, err := f.Size(); err != nil || size != 11 {
				t.Errorf("Size: got %d %v, want 11", size, err)
			}
			buf := make([]byte, 5)
			if n, err := f.ReadAt(buf, 6); n != 5 || string(buf) != "world" {
				t.Errorf("ReadAt(6): got %q %v", buf[:n], err)
			}
			if n, err := f.ReadAt(buf, 9); n != 2 || err != io.EOF {
				t.Errorf("ReadAt past end: got n=%d err=%v, want 2, EOF", n, err)
			}
			if err := f.Truncate(5); err != nil {
				t.Fatal(err)
			}
			if _, err := f.Seek(0, io.SeekEnd); err != nil {
				t.Fatal(err)
			}
			mustWrite(t, f, "!")
			if err := fsys.SyncFiles(f); err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			if got := readAll(t, fsys, a); got != "hello!" {
				t.Errorf("contents: got %q, want %q", got, "hello!")
			}

			b := filepath.Join(dir, "sub", "b")
			if err := fsys.Rename(a, b); err != nil {
				t.Fatal(err)
			}
			if names, err := fsys.List(dir); err != nil || !slices.Equal(names, []string{"sub"}) {
				t.Errorf("List after rename: got %v %v, want [sub]", names, err)
			}
			if _, err := fsys.Stat(a); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("Stat of renamed-away name: got %v, want ErrNotExist", err)
			}
			if fi, err := fsys.Stat(b); err != nil || fi.Size() != 6 || fi.IsDir() {
				t.Errorf("Stat(b): got %v %v", fi, err)
			}
			rw, err := fsys.OpenReadWrite(b)
			if err != nil {
				t.Fatal(err)
			}
			mustWrite(t, rw, "J")
			rw.Close()
			if got := readAll(t, fsys, b); got != "Jello!" {
				t.Errorf("after OpenReadWrite overwrite: got %q, want %q", got, "Jello!")
			}
			ro, err := fsys.Open(b)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ro.Write([]byte("x")); err == nil {
				t.Errorf("write to a read-only handle succeeded")
			}
			ro.Close()

			lock, err := fsys.Lock(filepath.Join(dir, "LOCK"))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := fsys.Lock(filepath.Join(dir, "LOCK")); !errors.Is(err, ErrLocked) {
				t.Errorf("second Lock: got %v, want ErrLocked", err)
			}
			lock.Close()
			relock, err := fsys.Lock(filepath.Join(dir, "LOCK"))
			if err != nil {
				t.Errorf("Lock after release: %v", err)
			} else {
				relock.Close()
			}

			if err := fsys.Remove(b); err != nil {
				t.Fatal(err)
			}
			if err := fsys.SyncDir(filepath.Join(dir, "sub")); err != nil {
				t.Fatal(err)
			}
			if err := fsys.RemoveAll(filepath.Join(dir, "sub")); err != nil {
				t.Fatal(err)
			}
			if _, err := fsys.Open(b); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("Open after RemoveAll: got %v, want ErrNotExist", err)
			}
		})
	}
}

func TestSyncFilesManyOSFiles(t *testing.T) {
	dir := t.TempDir()
	var files []File
	for i := range 5 {
		f, err := Default.Create(filepath.Join(dir, string(rune('a'+i))))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		mustWrite(t, f, "data")
		files = append(files, f)
	}
	if err := Default.SyncFiles(files...); err != nil {
		t.Fatalf("SyncFiles of 5 files: %v", err)
	}
	if err := Default.SyncFiles(NewMem().mustCreate(t, "/x")); err == nil {
		t.Errorf("SyncFiles of a MemFS file on the OS FS: got nil error")
	}
}

func (m *MemFS) mustCreate(t *testing.T, name string) File {
	t.Helper()
	f, err := m.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestMemCrashDropsUnsyncedData(t *testing.T) {
	m := NewMem()
	m.MkdirAll("/d", 0o755)
	m.SyncDir("/")
	f := m.mustCreate(t, "/d/log")
	m.SyncDir("/d")
	mustWrite(t, f, "durable")
	f.Sync()
	mustWrite(t, f, "-lost")

	m.Crash()
	if got := readAll(t, m, "/d/log"); got != "durable" {
		t.Errorf("after crash: got %q, want %q", got, "durable")
	}
	if _, err := f.Write([]byte("x")); !errors.Is(err, ErrStaleHandle) {
		t.Errorf("write through a pre-crash handle: got %v, want ErrStaleHandle", err)
	}
}

func TestMemCrashKeepsOverwrittenSyncedBytes(t *testing.T) {
	m := NewMem()
	f := m.mustCreate(t, "/f")
	m.SyncDir("/")
	mustWrite(t, f, "abcdef")
	f.Sync()
	f.Seek(2, io.SeekStart)
	mustWrite(t, f, "XY")
	f.Truncate(3)
	m.Crash()
	if got := readAll(t, m, "/f"); got != "abcdef" {
		t.Errorf("after crash of unsynced overwrite and truncate: got %q, want %q", got, "abcdef")
	}
}

func TestMemCrashDropsUnsyncedDirectoryEntries(t *testing.T) {
	m := NewMem()
	synced := m.mustCreate(t, "/kept")
	synced.Sync()
	m.SyncDir("/")

	unlisted := m.mustCreate(t, "/new") // contents synced, name not
	mustWrite(t, unlisted, "x")
	unlisted.Sync()
	m.Rename("/kept", "/renamed")
	m.MkdirAll("/dir", 0o755)

	m.Crash()
	names, _ := m.List("/")
	if !slices.Equal(names, []string{"kept"}) {
		t.Errorf("entries after crash: got %v, want [kept]", names)
	}

	m.Remove("/kept")
	m.Crash()
	if names, _ := m.List("/"); !slices.Equal(names, []string{"kept"}) {
		t.Errorf("unsynced remove survived a crash: got %v, want [kept]", names)
	}
	m.Remove("/kept")
	m.SyncDir("/")
	m.Crash()
	if names, _ := m.List("/"); len(names) != 0 {
		t.Errorf("synced remove undone by a crash: got %v", names)
	}
}

func TestMemCrashTornKeepsAPrefixOfUnsyncedAppends(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	lengths := map[int]bool{}
	for range 200 {
		m := NewMem()
		f := m.mustCreate(t, "/seg")
		m.SyncDir("/")
		mustWrite(t, f, "base")
		f.Sync()
		mustWrite(t, f, "0123456789")
		m.CrashTorn(rng)
		got := readAll(t, m, "/seg")
		want := "base0123456789"
		if len(got) < 4 || got != want[:len(got)] {
			t.Fatalf("torn crash left %q, not a prefix of %q at least as long as the synced %q", got, want, "base")
		}
		lengths[len(got)] = true
	}
	if len(lengths) < 5 {
		t.Errorf("torn crashes produced only lengths %v; want a spread", lengths)
	}
}

func TestFailOnInjectsErrors(t *testing.T) {
	m := NewMem()
	inj := &FailOn{Op: OpSync, PathContains: "seg", N: 2, Err: ErrInjectedIO, Sticky: true}
	fsys := WithFaults(m, inj)
	f, err := fsys.Create("/seg")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatalf("first sync: %v", err)
	}
	for i := range 2 {
		if err := f.Sync(); !errors.Is(err, ErrInjectedIO) {
			t.Errorf("sync %d after the fault: got %v, want EIO", i+2, err)
		}
	}
	if err := fsys.SyncFiles(f); !errors.Is(err, ErrInjectedIO) {
		t.Errorf("SyncFiles after the fault: got %v, want EIO", err)
	}

	full := WithFaults(m, &FailOn{Op: OpWrite, N: 1, Err: ErrInjectedNoSpace})
	g, _ := full.Create("/other")
	if n, err := g.Write([]byte("abc")); n != 0 || !errors.Is(err, ErrInjectedNoSpace) {
		t.Errorf("write with ENOSPC: got n=%d err=%v", n, err)
	}
	if n, err := g.Write([]byte("abc")); n != 3 || err != nil {
		t.Errorf("non-sticky fault repeated: n=%d err=%v", n, err)
	}
}

func TestCrashAtStopsEverythingFromItsPoint(t *testing.T) {
	workload := func(fsys FS) error {
		f, err := fsys.Create("/f") // 1
		if err != nil {
			return err
		}
		if _, err := f.Write([]byte("a")); err != nil { // 2
			return err
		}
		if err := f.Sync(); err != nil { // 3
			return err
		}
		return fsys.SyncDir("/") // 4
	}
	count := &CrashAt{}
	if err := workload(WithFaults(NewMem(), count)); err != nil || count.Count() != 4 {
		t.Fatalf("dry run: err=%v count=%d, want nil, 4", err, count.Count())
	}
	for k := 1; k <= 4; k++ {
		for _, after := range []bool{false, true} {
			m := NewMem()
			c := &CrashAt{K: k, AfterOp: after}
			err := workload(WithFaults(m, c))
			if !errors.Is(err, ErrCrashed) {
				t.Fatalf("k=%d after=%v: workload returned %v, want ErrCrashed", k, after, err)
			}
			m.Crash()
			_, statErr := m.Stat("/f")
			survived := statErr == nil
			if wantSurvived := k == 4 && after; survived != wantSurvived {
				t.Errorf("k=%d after=%v: file survived=%v, want %v", k, after, survived, wantSurvived)
			}
			if survived {
				if got := readAll(t, m, "/f"); got != "a" {
					t.Errorf("k=%d after=%v: contents %q, want %q", k, after, got, "a")
				}
			}
		}
	}
}

// TestGateHoldsItsPathsUntilOpen: an operation on a path the gate holds
// waits for Open; one on another path does not.
func TestGateHoldsItsPathsUntilOpen(t *testing.T) {
	consulted := make(chan string, 2)
	gate := NewGate(func(p string) bool {
		consulted <- p
		return p == "/held"
	})
	fsys := WithFaults(NewMem(), gate)
	if err := fsys.MkdirAll("/free", 0o755); err != nil {
		t.Fatalf("an operation the gate does not hold: %v", err)
	}
	<-consulted
	done := make(chan error, 1)
	go func() { done <- fsys.MkdirAll("/held", 0o755) }()
	<-consulted // the goroutine is past hold, so only Open can let it on
	select {
	case err := <-done:
		t.Fatalf("an operation on a held path finished before Open: %v", err)
	default:
	}
	gate.Open()
	gate.Open() // a second Open is harmless
	if err := <-done; err != nil {
		t.Fatalf("the held operation after Open: %v", err)
	}
}

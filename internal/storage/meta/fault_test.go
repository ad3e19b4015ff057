package meta

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/base/vfs"
)

func onWAL(op vfs.Op, after bool) func(vfs.Point) bool {
	return func(p vfs.Point) bool {
		return p.Op == op && p.After == after && strings.HasSuffix(p.Path, ".log")
	}
}

// TestWALFailureFailsTheCommitAndStopsTheStore injects one error into the
// WAL under a synced commit. The commit must fail, not succeed (even when
// the sync itself happened and only its result was an error), and so must
// every later call, although the injected fault does not repeat: the store
// is fail-stop. After a crash the earlier commits are all there.
func TestWALFailureFailsTheCommitAndStopsTheStore(t *testing.T) {
	for _, tc := range []struct {
		name  string
		match func(vfs.Point) bool
		err   error
	}{
		{"EIO before the sync", onWAL(vfs.OpSync, false), vfs.ErrInjectedIO},
		{"EIO after the sync ran", onWAL(vfs.OpSync, true), vfs.ErrInjectedIO},
		{"ENOSPC on the write", onWAL(vfs.OpWrite, false), vfs.ErrInjectedNoSpace},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := vfs.NewMem()
			inj := &armable{match: tc.match, err: tc.err}
			s := openOn(t, vfs.WithFaults(m, inj))
			for i := range 3 {
				if err := seqCommit(s, i, Sync); err != nil {
					t.Fatal(err)
				}
			}
			inj.armed.Store(true)
			err := seqCommit(s, 3, Sync)
			inj.armed.Store(false)
			wantCode(t, "the commit under the fault", err, base.CodeStorageFailed)
			if !errors.Is(err, tc.err) {
				t.Errorf("the commit's error %v does not wrap the injected %v", err, tc.err)
			}
			if inj.hits.Load() != 1 {
				t.Errorf("fault hit %d times, want 1", inj.hits.Load())
			}
			select {
			case <-s.Failed():
			default:
				t.Errorf("Failed() not closed after the failure")
			}
			if s.Err() == nil {
				t.Errorf("Err() is nil after the failure")
			}
			wantCode(t, "a later Sync commit", seqCommit(s, 4, Sync), base.CodeStorageFailed)
			wantCode(t, "a later NoSync commit", seqCommit(s, 4, NoSync), base.CodeStorageFailed)
			_, err = s.Get([]byte(seqKey(0)))
			wantCode(t, "a later Get", err, base.CodeStorageFailed)
			wantCode(t, "a later Scan", s.Scan(nil, func([]byte, []byte) error { return nil }), base.CodeStorageFailed)
			wantCode(t, "Close of the failed store", s.Close(), base.CodeStorageFailed)

			m.Crash()
			s = openOn(t, m)
			defer s.Close()
			n := checkPrefix(t, s, 3) // commit 3 may or may not have reached the disk
			if err := seqCommit(s, n, Sync); err != nil {
				t.Errorf("commit after reopening: %v", err)
			}
		})
	}
}

// failKth fails the kth operation that mutates the disk or reads it, once,
// with EIO. The fault does not repeat (as a disk's need not), so what stops
// the store afterwards is the store itself.
type failKth struct {
	k     int
	mu    sync.Mutex
	count int // guarded by mu
	hit   vfs.Point
}

func (f *failKth) Inject(p vfs.Point) error {
	if p.After || !(p.Op.Mutates() || p.Op == vfs.OpRead) {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count++
	if f.count == f.k {
		f.hit = p
		return vfs.ErrInjectedIO
	}
	return nil
}

// TestAFailureAnywhereNeverAcknowledgesALostCommit fails each disk
// operation of a small workload in turn. Whatever fails, no commit may
// succeed after a failed one, every failure must be CodeStorageFailed, and
// after a crash every acknowledged commit must be there.
func TestAFailureAnywhereNeverAcknowledgesALostCommit(t *testing.T) {
	const commits = 5
	workload := func(t *testing.T, fsys vfs.FS) (acked int) {
		s, err := Open(Options{FS: fsys, Dir: testDir, Logger: quiet()})
		if err != nil {
			wantCode(t, "Open under the fault", err, base.CodeStorageFailed)
			return 0
		}
		failed := false
		for i := range commits {
			err := seqCommit(s, i, Sync)
			switch {
			case err == nil && failed:
				t.Fatalf("commit %d succeeded after an earlier commit failed", i)
			case err == nil:
				acked = i + 1
			default:
				wantCode(t, "commit under the fault", err, base.CodeStorageFailed)
				failed = true
			}
		}
		if err := s.Close(); failed && !isStorageFailure(err) {
			t.Errorf("Close after a failure: got %v, want CodeStorageFailed", err)
		}
		return acked
	}

	dry := &failKth{}
	if acked := workload(t, vfs.WithFaults(vfs.NewMem(), dry)); acked != commits {
		t.Fatalf("dry run acknowledged %d commits, want %d", acked, commits)
	}
	for k := 1; k <= dry.count; k++ {
		m := vfs.NewMem()
		f := &failKth{k: k}
		acked := workload(t, vfs.WithFaults(m, f))
		m.Crash()
		s, err := Open(Options{FS: m, Dir: testDir, Logger: quiet()})
		if err != nil {
			t.Fatalf("k=%d (EIO on %v %s): reopen: %v", k, f.hit.Op, f.hit.Path, err)
		}
		checkPrefix(t, s, acked)
		if err := s.Close(); err != nil {
			t.Fatalf("k=%d: close after reopen: %v", k, err)
		}
	}
	t.Logf("failed each of %d operations in turn", dry.count)
}

// TestBackgroundFlushFailureFailsTheStoreButNotTheProcess fails the sync of
// a table that a background flush writes. Pebble calls that a fatal error;
// here it trips the fence, the owner learns of it through Failed, and the
// process carries on until the owner closes the store.
func TestBackgroundFlushFailureFailsTheStoreButNotTheProcess(t *testing.T) {
	m := vfs.NewMem()
	inj := &armable{err: vfs.ErrInjectedIO, match: func(p vfs.Point) bool {
		return p.Op == vfs.OpSync && !p.After && strings.HasSuffix(p.Path, ".sst")
	}}
	s := openOn(t, vfs.WithFaults(m, inj))
	if err := seqCommit(s, 0, Sync); err != nil {
		t.Fatal(err)
	}
	inj.armed.Store(true)
	if _, err := s.db.AsyncFlush(); err != nil {
		t.Fatal(err)
	}
	<-s.Failed()
	err := seqCommit(s, 1, Sync)
	wantCode(t, "a commit after the flush failed", err, base.CodeStorageFailed)
	if !errors.Is(err, vfs.ErrInjectedIO) {
		t.Errorf("the failure %v does not wrap the injected EIO", err)
	}
	wantCode(t, "Close", s.Close(), base.CodeStorageFailed)

	m.Crash()
	s = openOn(t, m)
	defer s.Close()
	checkPrefix(t, s, 1)
}

func TestReadErrorWhileOpeningFailsTheStore(t *testing.T) {
	m := vfs.NewMem()
	s := openOn(t, m)
	mustCommit(t, s, Sync, kv{k: "k", v: "v"})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	inj := &armable{err: vfs.ErrInjectedIO, match: func(p vfs.Point) bool {
		return p.Op == vfs.OpRead && !p.After && strings.HasSuffix(p.Path, ".log")
	}}
	inj.armed.Store(true)
	_, err := Open(Options{FS: vfs.WithFaults(m, inj), Dir: testDir, Logger: quiet()})
	wantCode(t, "Open whose WAL cannot be read", err, base.CodeStorageFailed)
	if inj.hits.Load() == 0 {
		t.Fatalf("Open never read the WAL; the test injects nothing")
	}
	s = openOn(t, m)
	defer s.Close()
	if got := get(t, s, "k"); got != "v" {
		t.Errorf("after a clean reopen: got %q, want %q", got, "v")
	}
}

// TestFailureWhileRecoveringStopsTheProcess pins the one storage failure
// that ends the process: one met by the flush Pebble runs inside Open to
// recover the WAL, which Pebble would retry forever while Open waits. It
// runs the failing Open in a child process, without Options.Abort (a
// panic) and with one (which exits with status 3 here).
func TestFailureWhileRecoveringStopsTheProcess(t *testing.T) {
	if mode := os.Getenv("FERRY_META_RECOVERY_CHILD"); mode != "" {
		var abort func(error)
		if mode == "abort" {
			abort = func(err error) {
				fmt.Fprintf(os.Stderr, "aborted: %v\n", err)
				os.Exit(3)
			}
		}
		failWhileRecovering(t, abort)
		return
	}
	for _, c := range []struct {
		mode      string
		exit      int // 0: any non-zero status
		want, not string
	}{
		{"panic", 0, "panic: meta: storage failed while recovering the store, stopping", ""},
		{"abort", 3, "aborted: meta: storage failed while recovering the store, stopping", "goroutine"},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestFailureWhileRecoveringStopsTheProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), "FERRY_META_RECOVERY_CHILD="+c.mode)
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() == 0 || (c.exit != 0 && exit.ExitCode() != c.exit) {
			t.Fatalf("%s: child: got %v, want exit status %d (0: any but 0); output:\n%s", c.mode, err, c.exit, out)
		}
		if !strings.Contains(string(out), c.want) {
			t.Errorf("%s: child output lacks %q:\n%s", c.mode, c.want, out)
		}
		if c.not != "" && strings.Contains(string(out), c.not) {
			t.Errorf("%s: child output has %q (a stack trace):\n%s", c.mode, c.not, out)
		}
	}
}

func failWhileRecovering(t *testing.T, abort func(error)) {
	m := vfs.NewMem()
	s := openOn(t, m)
	mustCommit(t, s, Sync, kv{k: "k", v: "v"})
	if err := s.Close(); err != nil { // the data stays in the WAL
		t.Fatal(err)
	}
	inj := &armable{err: vfs.ErrInjectedIO, match: func(p vfs.Point) bool {
		return p.Op == vfs.OpSync && !p.After && strings.HasSuffix(p.Path, ".sst")
	}}
	inj.armed.Store(true)
	_, err := Open(Options{FS: vfs.WithFaults(m, inj), Dir: testDir, Logger: quiet(), Abort: abort})
	t.Fatalf("Open returned (%v) after its recovery flush failed; want the process stopped", err)
}

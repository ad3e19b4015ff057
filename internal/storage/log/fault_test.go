package log

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/base/vfs"
)

// faultLog opens a log on a MemFS wrapped with inj, appends n confirmed
// batches, and returns them as stored.
func faultLog(t *testing.T, inj vfs.Injector, n int) (*vfs.MemFS, *Log, [][]byte) {
	t.Helper()
	mem := vfs.NewMem()
	l := mustOpen(t, memOptions(vfs.WithFaults(mem, inj), base.NewFakeClock(epoch)))
	var got [][]byte
	for i := range n {
		b := mkBatch(t, 1, 50, int64(i), byte(i))
		p := appendOK(t, l, 1, b)
		got = append(got, stamped(b, p.BaseOffset, 1))
	}
	return mem, l, got
}

// switchable fails matching operations with err while on is set.
type switchable struct {
	on   atomic.Bool
	op   vfs.Op
	path string
	err  error
}

func (s *switchable) Inject(p vfs.Point) error {
	if !p.After && p.Op == s.op && strings.Contains(p.Path, s.path) && s.on.Load() {
		return s.err
	}
	return nil
}

func checkConfirmed(t *testing.T, l *Log, want [][]byte) {
	t.Helper()
	ents, err := l.Entries(1, uint64(len(want))+1, 1<<30)
	if err != nil || len(ents) != len(want) {
		t.Fatalf("Entries: %d batches, %v; want %d", len(ents), err, len(want))
	}
	for i := range want {
		if !bytes.Equal(ents[i], want[i]) {
			t.Fatalf("batch %d differs", i+1)
		}
	}
}

// TestIOErrorsMakeTheLogFailStop injects EIO into the segment write and
// into its fsync: the batch is not confirmed, every later write fails with
// CodeStorageFailed wrapping the cause, confirmed data stays readable, and
// after a crash and reopen nothing confirmed is lost.
func TestIOErrorsMakeTheLogFailStop(t *testing.T) {
	for _, op := range []vfs.Op{vfs.OpWrite, vfs.OpSync} {
		t.Run(op.String(), func(t *testing.T) {
			inj := &switchable{op: op, path: ".seg", err: vfs.ErrInjectedIO}
			mem, l, want := faultLog(t, inj, 5)
			inj.on.Store(true)
			_, err := l.Append(context.Background(), 1, mkBatch(t, 1, 50, 9, 9))
			wantCode(t, "append meeting EIO", err, base.CodeStorageFailed)
			if !strings.Contains(err.Error(), "input/output error") {
				t.Errorf("fail-stop error does not carry the cause: %v", err)
			}
			inj.on.Store(false) // the disk recovers; the log must not
			_, err = l.Append(context.Background(), 1, mkBatch(t, 1, 50, 10, 10))
			wantCode(t, "append after fail-stop", err, base.CodeStorageFailed)
			_, err = l.Write(1, mkBatch(t, 1, 50, 10, 10))
			wantCode(t, "write after fail-stop", err, base.CodeStorageFailed)
			wantCode(t, "sync after fail-stop", l.Sync(), base.CodeStorageFailed)
			wantCode(t, "truncate after fail-stop", l.TruncateSuffix(2), base.CodeStorageFailed)
			checkConfirmed(t, l, want)
			wantCode(t, "close of a failed log", l.Close(), base.CodeStorageFailed)
			mem.Crash()
			l2 := mustOpen(t, memOptions(mem, base.NewFakeClock(epoch)))
			defer l2.Close()
			checkConfirmed(t, l2, want)
			if l2.LastIndex() != 5 {
				t.Errorf("after reopen: last index %d, want 5 (the failed batch was never confirmed)", l2.LastIndex())
			}
		})
	}
}

// TestNoSpaceOnWriteIsRetriable fills the disk during a segment write: the
// append fails with CodeNoSpace, the file is cut back, reads go on, and
// appends work again once space is freed.
func TestNoSpaceOnWriteIsRetriable(t *testing.T) {
	for _, path := range []string{".seg"} {
		t.Run(path, func(t *testing.T) {
			inj := &switchable{op: vfs.OpWrite, path: path, err: vfs.ErrInjectedNoSpace}
			mem, l, want := faultLog(t, inj, 3)
			inj.on.Store(true)
			for range 3 {
				_, err := l.Append(context.Background(), 1, mkBatch(t, 1, 50, 7, 7))
				wantCode(t, "append on a full disk", err, base.CodeNoSpace)
				if !base.IsRetriable(err) {
					t.Fatalf("no_space is not retriable: %v", err)
				}
			}
			checkConfirmed(t, l, want)
			if l.LastIndex() != 3 {
				t.Fatalf("last index after refused appends: %d, want 3", l.LastIndex())
			}
			inj.on.Store(false)
			b := mkBatch(t, 1, 50, 8, 8)
			p := appendOK(t, l, 1, b)
			if p.Index != 4 {
				t.Fatalf("append after space freed: index %d, want 4", p.Index)
			}
			want = append(want, stamped(b, p.BaseOffset, 1))
			checkConfirmed(t, l, want)
			if err := checkIndexes(l); err != nil {
				t.Fatal(err)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			mem.Crash()
			l2 := mustOpen(t, memOptions(mem, base.NewFakeClock(epoch)))
			defer l2.Close()
			checkConfirmed(t, l2, want)
		})
	}
}

// TestNoSpaceOnSegmentRollLeavesTheLogUsable fails a roll, either at the
// creation of the next segment or at the writing of the closing segment's
// indexes (which happens only at rolls and checkpoints): the append is
// refused with CodeNoSpace, the old segment stays active and consistent,
// and the roll succeeds once space is freed.
func TestNoSpaceOnSegmentRollLeavesTheLogUsable(t *testing.T) {
	for _, inj := range []*switchable{
		{op: vfs.OpCreate, path: ".seg", err: vfs.ErrInjectedNoSpace},
		{op: vfs.OpWrite, path: ".idx", err: vfs.ErrInjectedNoSpace},
		{op: vfs.OpWrite, path: ".tix", err: vfs.ErrInjectedNoSpace},
	} {
		t.Run(inj.op.String()+inj.path, func(t *testing.T) {
			mem, l, want := faultLog(t, inj, 2)
			inj.on.Store(true)
			var err error
			for i := range 40 { // fill the segment until it must roll
				b := mkBatch(t, 1, 50, int64(10+i), 1)
				var p Position
				if p, err = l.Append(context.Background(), 1, b); err != nil {
					break
				}
				want = append(want, stamped(b, p.BaseOffset, 1))
			}
			wantCode(t, "append needing a roll on a full disk", err, base.CodeNoSpace)
			if err := checkIndexes(l); err != nil {
				t.Fatal(err)
			}
			inj.on.Store(false)
			b := mkBatch(t, 1, 50, 100, 2)
			p := appendOK(t, l, 1, b)
			want = append(want, stamped(b, p.BaseOffset, 1))
			checkConfirmed(t, l, want)
			if len(l.segs) != 2 {
				t.Errorf("segments after the roll succeeded: %d, want 2", len(l.segs))
			}
			if err := checkIndexes(l); err != nil {
				t.Fatal(err)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			mem.Crash()
			l2 := mustOpen(t, memOptions(mem, base.NewFakeClock(epoch)))
			defer l2.Close()
			checkConfirmed(t, l2, want)
			if err := checkIndexes(l2); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestNoSpaceOnFsyncIsFailStop: an fsync error of any kind is fatal.
func TestNoSpaceOnFsyncIsFailStop(t *testing.T) {
	inj := &switchable{op: vfs.OpSync, path: ".seg", err: vfs.ErrInjectedNoSpace}
	_, l, _ := faultLog(t, inj, 1)
	inj.on.Store(true)
	_, err := l.Append(context.Background(), 1, mkBatch(t, 1, 5, 1, 1))
	wantCode(t, "append whose fsync hits ENOSPC", err, base.CodeStorageFailed)
	inj.on.Store(false)
	_, err = l.Append(context.Background(), 1, mkBatch(t, 1, 5, 1, 1))
	wantCode(t, "append after", err, base.CodeStorageFailed)
	l.Close()
}

// TestSyncAllUsesOneSyncFilesCall syncs several logs with one SyncFiles
// call and checks that each log's durable index advanced.
func TestSyncAllUsesOneSyncFilesCall(t *testing.T) {
	mem := vfs.NewMem()
	var syncs atomic.Int32
	fsys := vfs.WithFaults(mem, vfs.InjectorFunc(func(p vfs.Point) error {
		if p.Op == vfs.OpSync && !p.After && strings.HasSuffix(p.Path, segExt) {
			syncs.Add(1)
		}
		return nil
	}))
	clock := base.NewFakeClock(epoch)
	var logs []*Log
	for i := range 5 {
		o := memOptions(fsys, clock)
		o.Dir = "/data/" + string(rune('a'+i))
		l := mustOpen(t, o)
		defer l.Close()
		for range 3 {
			if _, err := l.Write(1, mkBatch(t, 1, 10, 1, 1)); err != nil {
				t.Fatal(err)
			}
		}
		logs = append(logs, l)
	}
	before := syncs.Load()
	if err := SyncAll(append(logs, logs[0])...); err != nil { // a duplicate is harmless
		t.Fatal(err)
	}
	// FaultFS reports each file of one SyncFiles call as an OpSync.
	if got := syncs.Load() - before; got != 5 {
		t.Errorf("file syncs in SyncAll: got %d, want 5 (one per log, one call)", got)
	}
	for _, l := range logs {
		if l.DurableIndex() != 3 || l.LastIndex() != 3 {
			t.Errorf("%s: durable %d last %d, want 3 3", l.dir, l.DurableIndex(), l.LastIndex())
		}
	}
	other := mustOpen(t, Options{FS: vfs.NewMem(), Dir: "/x", Clock: clock})
	defer other.Close()
	wantCode(t, "SyncAll across file systems", SyncAll(logs[0], other), base.CodeInvalidArgument)
}

// gatedRemoves holds every segment file removal until release is closed,
// and signals the first one on entered.
type gatedRemoves struct {
	entered chan struct{}
	once    sync.Once
	release chan struct{}
}

func (g *gatedRemoves) Inject(p vfs.Point) error {
	if !p.After && p.Op == vfs.OpRemove && strings.HasSuffix(p.Path, segExt) {
		g.once.Do(func() { close(g.entered) })
		<-g.release
	}
	return nil
}

// TestRemovingInTheBackground: with RemoveInBackground, TruncatePrefix
// returns while the segments' files are still being removed, and the log
// reads meanwhile; once the removal ends, writes roll on, and only the
// kept segments' files remain.
func TestRemovingInTheBackground(t *testing.T) {
	mem := vfs.NewMem()
	g := &gatedRemoves{entered: make(chan struct{}), release: make(chan struct{})}
	o := memOptions(vfs.WithFaults(mem, g), base.NewFakeClock(epoch))
	o.RemoveInBackground = true
	l := mustOpen(t, o)
	defer l.Close()
	for i := range 30 {
		appendOK(t, l, 1, mkBatch(t, 1, 300, int64(i), byte(i)))
	}
	if len(l.segs) < 4 {
		t.Fatalf("%d segments, want at least 4", len(l.segs))
	}
	keep := l.segs[2].baseIndex
	returned := make(chan error, 1)
	go func() { returned <- l.TruncatePrefix(keep) }()
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	select {
	case err := <-returned:
		if err != nil {
			t.Fatal(err)
		}
	case <-timeout.C:
		close(g.release) // for Close
		t.Fatal("TruncatePrefix waited for the files' removal")
	}
	<-g.entered
	if l.FirstIndex() != keep {
		t.Fatalf("FirstIndex %d, want %d", l.FirstIndex(), keep)
	}
	if ents, err := l.Entries(keep, keep+1, 1); err != nil || len(ents) != 1 {
		t.Fatalf("reading during the removal: %d entries, %v", len(ents), err)
	}
	close(g.release)
	for i := 30; i < 40; i++ { // rolls at least once
		appendOK(t, l, 1, mkBatch(t, 1, 300, int64(i), byte(i)))
	}
	var want []string
	for _, s := range l.segs {
		want = append(want, s.path)
	}
	if got := segNames(t, mem, segExt); !slices.Equal(got, want) {
		t.Fatalf("segment files %v, want %v", got, want)
	}
}

// TestAFailedBackgroundRemovalFailStops: a removal that fails in the
// background fail-stops the log at the next change of its directory.
func TestAFailedBackgroundRemovalFailStops(t *testing.T) {
	inj := &switchable{op: vfs.OpRemove, path: segExt, err: errors.New("injected EIO")}
	mem := vfs.NewMem()
	o := memOptions(vfs.WithFaults(mem, inj), base.NewFakeClock(epoch))
	o.RemoveInBackground = true
	l := mustOpen(t, o)
	for i := range 30 {
		appendOK(t, l, 1, mkBatch(t, 1, 300, int64(i), byte(i)))
	}
	inj.on.Store(true)
	if err := l.TruncatePrefix(l.segs[2].baseIndex); err != nil {
		t.Fatalf("TruncatePrefix: %v, want nil (the removal fails later)", err)
	}
	err := l.Close()
	wantCode(t, "Close after a failed removal", err, base.CodeStorageFailed)
	if !strings.Contains(err.Error(), "injected EIO") {
		t.Fatalf("Close: %v, want the removal's error", err)
	}
}

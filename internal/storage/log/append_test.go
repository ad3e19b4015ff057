package log

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/base/vfs"
)

// gate blocks the first segment fsync until released, so tests can line
// appenders up behind a running fsync without timing.
type gate struct {
	entered chan struct{}
	release chan struct{}
	syncs   atomic.Int32
	armed   atomic.Bool
}

func newGate() *gate {
	return &gate{entered: make(chan struct{}), release: make(chan struct{})}
}

func (g *gate) Inject(p vfs.Point) error {
	if p.Op != vfs.OpSync || p.After || !strings.HasSuffix(p.Path, segExt) {
		return nil
	}
	g.syncs.Add(1)
	if g.armed.CompareAndSwap(true, false) {
		close(g.entered)
		<-g.release
	}
	return nil
}

// waitQueued spins (yielding, no sleeping) until n appends wait in the
// committer's queue.
func waitQueued(l *Log, n int) {
	for len(l.appendCh) < n {
		runtime.Gosched()
	}
}

// TestGroupCommitCoversWaitersWithOneFsync holds an fsync while 50 more
// appenders queue up; they must all be covered by one write and one
// fsync.
func TestGroupCommitCoversWaitersWithOneFsync(t *testing.T) {
	g := newGate()
	l := mustOpen(t, Options{FS: vfs.WithFaults(vfs.NewMem(), g), Dir: "/d", Clock: base.NewFakeClock(epoch)})
	defer l.Close()
	g.armed.Store(true)
	base0 := g.syncs.Load()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		appendOK(t, l, 1, mkBatch(t, 1, 10, 0, 0))
	}()
	<-g.entered
	const waiters = 50
	positions := make([]Position, waiters)
	for i := range waiters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			positions[i] = appendOK(t, l, 1, mkBatch(t, 1, 10, int64(i), byte(i)))
		}()
	}
	waitQueued(l, waiters)
	close(g.release)
	wg.Wait()
	if got := g.syncs.Load() - base0; got != 2 {
		t.Errorf("fsyncs for 1 + %d appends: got %d, want 2", waiters, got)
	}
	seen := map[uint64]bool{}
	for _, p := range positions {
		if p.Index < 2 || p.Index > waiters+1 || seen[p.Index] {
			t.Fatalf("positions not distinct in [2, %d]: %+v", waiters+1, positions)
		}
		seen[p.Index] = true
	}
	if l.DurableIndex() != waiters+1 {
		t.Errorf("durable index %d, want %d", l.DurableIndex(), waiters+1)
	}
}

// TestAppendCancelledWhileQueuedIsNotAppended cancels an append that waits
// behind a running fsync: it returns the context's error and its batch
// never reaches the log.
func TestAppendCancelledWhileQueuedIsNotAppended(t *testing.T) {
	g := newGate()
	l := mustOpen(t, Options{FS: vfs.WithFaults(vfs.NewMem(), g), Dir: "/d", Clock: base.NewFakeClock(epoch)})
	defer l.Close()
	g.armed.Store(true)
	done := make(chan struct{})
	go func() {
		defer close(done)
		appendOK(t, l, 1, mkBatch(t, 1, 10, 0, 0))
	}()
	<-g.entered
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error)
	go func() {
		_, err := l.Append(ctx, 1, mkBatch(t, 1, 10, 1, 1))
		errc <- err
	}()
	waitQueued(l, 1)
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled append: got %v, want context.Canceled", err)
	}
	close(g.release)
	<-done
	p := appendOK(t, l, 1, mkBatch(t, 1, 10, 2, 2))
	if p.Index != 2 {
		t.Errorf("next append got index %d, want 2: the cancelled batch was appended", p.Index)
	}
}

// TestAppendQueueIsBounded fills the queue (base.AppendQueueBatchesMax)
// behind a held fsync; one more appender cannot enqueue and gives up when
// its context ends.
func TestAppendQueueIsBounded(t *testing.T) {
	g := newGate()
	l := mustOpen(t, Options{FS: vfs.WithFaults(vfs.NewMem(), g), Dir: "/d", Clock: base.NewFakeClock(epoch)})
	defer l.Close()
	g.armed.Store(true)
	b := mkBatch(t, 1, 1, 0, 0)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); appendOK(t, l, 1, b) }()
	<-g.entered
	for range base.AppendQueueBatchesMax {
		wg.Add(1)
		go func() { defer wg.Done(); appendOK(t, l, 1, b) }()
	}
	waitQueued(l, base.AppendQueueBatchesMax)
	if c := cap(l.appendCh); c != base.AppendQueueBatchesMax {
		t.Fatalf("queue capacity %d, want %d", c, base.AppendQueueBatchesMax)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error)
	go func() { _, err := l.Append(ctx, 1, b); errc <- err }()
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("append beyond the queue bound: got %v, want context.Canceled", err)
	}
	close(g.release)
	wg.Wait()
	if got := l.LastIndex(); got != base.AppendQueueBatchesMax+1 {
		t.Errorf("last index %d, want %d", got, base.AppendQueueBatchesMax+1)
	}
}

func TestAppendAfterCloseIsStopped(t *testing.T) {
	l := mustOpen(t, Options{FS: vfs.NewMem(), Dir: "/d", Clock: base.NewFakeClock(epoch)})
	l.Close()
	_, err := l.Append(context.Background(), 1, mkBatch(t, 1, 1, 0, 0))
	wantCode(t, "Append after Close", err, base.CodeStopped)
	_, err = l.Read(0, 10)
	wantCode(t, "Read after Close", err, base.CodeStopped)
	wantCode(t, "second Close", l.Close(), base.CodeStopped)
}

// TestIntervalDurabilitySyncsOnTheTimer: appends return before any fsync,
// and the committer's timer makes them durable.
func TestIntervalDurabilitySyncsOnTheTimer(t *testing.T) {
	clock := base.NewFakeClock(epoch)
	l := mustOpen(t, Options{FS: vfs.NewMem(), Dir: "/d", Clock: clock, Durability: DurabilityInterval})
	defer l.Close()
	for i := range 3 {
		appendOK(t, l, 1, mkBatch(t, 1, 1, int64(i), 0))
	}
	if d := l.DurableIndex(); d != 0 {
		t.Fatalf("durable index before the timer: %d, want 0", d)
	}
	if l.LastIndex() != 3 {
		t.Fatalf("interval appends not visible: last %d", l.LastIndex())
	}
	for l.DurableIndex() != 3 {
		clock.Advance(base.SyncIntervalDefault) // the committer syncs when its timer fires
		runtime.Gosched()
	}
}

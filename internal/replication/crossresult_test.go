package replication

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/base/vfs"
	"github.com/ferry-mq/ferry/internal/storage/log/batch"
)

// ownedFSM answers every entry with what identifies it: its group, its
// kind and a hash of its data, so that a proposer can check that the
// result it received is its own entry's, applied by its own group.
type ownedFSM struct{ group GroupID }

type owned struct {
	group GroupID
	kind  EntryKind
	sum   uint64
}

func sum64(b []byte) uint64 {
	h := fnv.New64a()
	h.Write(b)
	return h.Sum64()
}

func (f ownedFSM) Apply(entries []Entry, results []any) {
	for i, e := range entries {
		results[i] = owned{group: f.group, kind: e.Kind, sum: sum64(e.Data)}
	}
}
func (ownedFSM) Snapshot(w io.Writer) error { return nil }
func (ownedFSM) Restore(r io.Reader) error  { _, err := io.Copy(io.Discard, r); return err }
func (ownedFSM) RetainFrom() uint64         { return 0 }

// crossResultBatch is a data batch of one record whose value names the
// proposal.
func crossResultBatch(t testing.TB, g GroupID, worker, i int) []byte {
	var bld batch.Builder
	bld.Begin(nil, batch.Header{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1})
	bld.Add(1, nil, fmt.Appendf(nil, "batch g%d w%d i%d", g, worker, i), nil)
	b, err := bld.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestEveryProposalGetsItsOwnGroupsResultForItsOwnEntry proposes commands
// (Propose and ProposeAsync, of sizes around the recycled buffers' sizes)
// and data batches (ProposeBatch) to many single-voter groups on two loops
// from many goroutines at once, while one goroutine drives the engine; the
// FSM of each group answers with its group and the hash of the entry it
// applied. Every proposal must get exactly its own result: a result of
// another group, another kind or another entry means a request, a
// callback or a recycled buffer crossed between proposals.
func TestEveryProposalGetsItsOwnGroupsResultForItsOwnEntry(t *testing.T) {
	const groups, workers, perWorker = 12, 12, 150
	mem := vfs.NewMem()
	st, err := OpenSimpleState(mem, "/state")
	if err != nil {
		t.Fatal(err)
	}
	clock := base.NewFakeClock(epoch)
	e, err := New(Config{NodeID: 1, Clock: clock, FS: mem, Dir: "/", Logs: &SimpleLogs{FS: mem, Dir: "/logs"}, State: st,
		Manual: true, Loops: 2, Logger: quiet, TickInterval: 10 * time.Millisecond, QuiesceTicks: -1})
	if err != nil {
		t.Fatal(err)
	}
	blocked := false // the engine's loop never returned: Stop would block too
	defer func() {
		if !blocked {
			e.Stop()
			st.Close()
		}
	}()
	for g := GroupID(1); g <= groups; g++ {
		if err := e.OpenGroup(g, ownedFSM{group: g}, []NodeID{1}); err != nil {
			t.Fatal(err)
		}
	}
	for range 20 {
		clock.Advance(10 * time.Millisecond)
		e.Step()
	}
	for g := GroupID(1); g <= groups; g++ {
		if s, err := e.Status(g); err != nil || !s.IsLeader {
			t.Fatalf("group %d did not elect this node: %+v %v", g, s, err)
		}
	}

	stop, driverDone := make(chan struct{}), make(chan struct{})
	go func() { // the engine's only driver: Manual loops run here
		defer close(driverDone)
		for {
			select {
			case <-stop:
				return
			default:
			}
			clock.Advance(time.Millisecond)
			e.Step()
		}
	}()

	// The first wrong result ends every call (cancel), so that the test
	// fails at once rather than when its calls time out.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var bad atomic.Int64
	var mu sync.Mutex
	var firstBad []string
	report := func(format string, args ...any) {
		if bad.Add(1) <= 5 {
			mu.Lock()
			firstBad = append(firstBad, fmt.Sprintf(format, args...))
			mu.Unlock()
		}
		cancel()
	}
	check := func(what string, g GroupID, kind EntryKind, data []byte, r Result) {
		if r.Err != nil {
			// Overloaded is a refusal, not a result; timeouts once
			// the test has failed are its own doing.
			if c := base.CodeOf(r.Err); c != base.CodeOverloaded && (c != base.CodeTimeout || ctx.Err() == nil) {
				report("%s to group %d failed: %v", what, g, r.Err)
			}
			return
		}
		want := owned{group: g, kind: kind, sum: sum64(data)}
		if got, ok := r.Value.(owned); !ok || got != want {
			report("%s to group %d: got result %+v (%T), want %+v", what, g, r.Value, r.Value, want)
		}
	}
	// An abandoned call returns its own result if it came first, or a
	// timeout.
	checkAbandoned := func(what string, g GroupID, kind EntryKind, data []byte, r Result) {
		if base.CodeOf(r.Err) != base.CodeTimeout {
			check(what, g, kind, data, r)
		}
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var async sync.WaitGroup
			for i := range perWorker {
				g := GroupID((w*7+i)%groups + 1)
				switch i % 4 {
				case 0:
					b := crossResultBatch(t, g, w, i)
					r, _ := e.ProposeBatch(ctx, g, b)
					check("batch", g, KindBatch, b, r)
				case 1:
					// Sizes around proposalBufs' smallest class (2 KiB)
					// and across several, so that buffers of all sizes
					// are recycled and reused.
					size := []int{8, 1 << 10, proposalBufBytesMin, 5 << 10, 100 << 10}[(w+i)%5]
					cmd := bytes.Repeat([]byte{byte(w)}, size)
					binary.BigEndian.PutUint64(cmd, uint64(w<<32|i))
					r, _ := e.Propose(ctx, g, cmd)
					check("command", g, KindCommand, cmd, r)
				case 2:
					// A call that gives up at once: its result arrives
					// after it returned, and must reach nobody else.
					gone, stop := context.WithCancel(ctx)
					stop()
					if (w+i)%2 == 0 {
						b := crossResultBatch(t, g, w, i)
						r, _ := e.ProposeBatch(gone, g, b)
						checkAbandoned("abandoned batch", g, KindBatch, b, r)
					} else {
						cmd := fmt.Appendf(nil, "abandoned g%d w%d i%d", g, w, i)
						r, _ := e.Propose(gone, g, cmd)
						checkAbandoned("abandoned command", g, KindCommand, cmd, r)
					}
				default:
					cmd := fmt.Appendf(nil, "async g%d w%d i%d", g, w, i)
					async.Add(1)
					e.ProposeAsync(g, cmd, func(r Result) {
						defer async.Done()
						check("async command", g, KindCommand, cmd, r)
					})
				}
			}
			async.Wait()
		}()
	}
	callsDone := make(chan struct{})
	go func() {
		wg.Wait()
		close(stop)
		<-driverDone
		close(callsDone)
	}()
	// A callback that blocks (a result sent into a full channel) blocks
	// the engine's loop, here the driver, for ever, and with it every
	// asynchronous call: fail rather than hang.
	select {
	case <-callsDone:
	case <-time.After(time.Minute):
		blocked = true
	}
	mu.Lock()
	first := firstBad
	mu.Unlock()
	if n := bad.Load(); n > 0 {
		t.Errorf("%d of %d proposals got a result that is not their own; first: %q", n, workers*perWorker, first)
	}
	if blocked {
		t.Fatalf("calls still waiting after a minute: the engine's loop is blocked (by a result callback?)")
	}
}

package replication

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/base/vfs"
	"github.com/ferry-mq/ferry/internal/storage/log/batch"
)

// failNextSync fails the next sync of a path containing path, once armed.
type failNextSync struct {
	path  string
	armed atomic.Bool
}

func (f *failNextSync) Inject(p vfs.Point) error {
	if p.Op == vfs.OpSync && !p.After && strings.Contains(p.Path, f.path) && f.armed.CompareAndSwap(true, false) {
		return vfs.ErrInjectedIO
	}
	return nil
}

// singleNode is a Manual one-node engine on a MemFS behind fault injection.
func singleNode(t *testing.T, inj vfs.Injector, cfg func(*Config)) (*Engine, *listFSM, *base.FakeClock) {
	t.Helper()
	mem := vfs.NewMem()
	var fsys vfs.FS = mem
	if inj != nil {
		fsys = vfs.WithFaults(mem, inj)
	}
	st, err := OpenSimpleState(fsys, "/state")
	if err != nil {
		t.Fatal(err)
	}
	clock := base.NewFakeClock(epoch)
	c := Config{NodeID: 1, Clock: clock, FS: fsys, Dir: "/", Logs: &SimpleLogs{FS: fsys, Dir: "/logs"}, State: st,
		Manual: true, Logger: quiet, TickInterval: 10 * time.Millisecond}
	if cfg != nil {
		cfg(&c)
	}
	e, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Stop(); st.Close() })
	f := &listFSM{}
	if err := e.OpenGroup(1, f, []NodeID{1}); err != nil {
		t.Fatal(err)
	}
	for range 10 {
		clock.Advance(10 * time.Millisecond)
		e.Step()
	}
	if st, _ := e.Status(1); !st.IsLeader {
		t.Fatalf("single node did not become leader: %+v", st)
	}
	return e, f, clock
}

func stepUntil(t *testing.T, e *Engine, clock *base.FakeClock, cond func() bool) {
	t.Helper()
	for range 1000 {
		if cond() {
			return
		}
		clock.Advance(time.Millisecond)
		e.Step()
	}
	t.Fatalf("condition never held")
}

func TestFsyncErrorStopsTheEngineAndNeverAcknowledges(t *testing.T) {
	inj := &failNextSync{path: "/logs/"}
	e, f, clock := singleNode(t, inj, nil)
	var first *Result
	e.ProposeAsync(1, []byte("ok"), func(r Result) { first = &r })
	stepUntil(t, e, clock, func() bool { return first != nil })
	if first.Err != nil {
		t.Fatalf("proposal before the fault: %v", first.Err)
	}
	inj.armed.Store(true) // the next log sync fails
	var res *Result
	e.ProposeAsync(1, []byte("lost"), func(r Result) { res = &r })
	stepUntil(t, e, clock, func() bool { return res != nil })
	if base.CodeOf(res.Err) != base.CodeStorageFailed || !errors.Is(res.Err, vfs.ErrInjectedIO) {
		t.Errorf("proposal whose fsync failed: got %v, want storage_failed wrapping EIO", res.Err)
	}
	if got := f.datas(); !equalStrings(got, []string{"ok"}) {
		t.Errorf("applied %q; the failed entry must not apply", got)
	}
	if base.CodeOf(e.Err()) != base.CodeStorageFailed {
		t.Errorf("Err after the fault: %v", e.Err())
	}
	_, err := e.Propose(context.Background(), 1, []byte("later"))
	if base.CodeOf(err) != base.CodeStorageFailed {
		t.Errorf("proposal after fail-stop: got %v, want storage_failed", err)
	}
}

func TestProposalsInFlightAreBoundedPerGroup(t *testing.T) {
	c := newTestCluster(t, []NodeID{1, 2, 3}, nil)
	voters := []NodeID{1, 2, 3}
	for _, id := range voters {
		c.open(id, 1, voters)
	}
	lead := c.waitLeader(1)
	for _, id := range voters { // no quorum: proposals stay in flight
		if id != lead {
			c.net.cut[[2]NodeID{lead, id}], c.net.cut[[2]NodeID{id, lead}] = true, true
		}
	}
	var errs []error
	for i := range base.RaftProposalsInFlightMax + 1 {
		c.nodes[lead].e.ProposeAsync(1, []byte(fmt.Sprint(i)), func(r Result) { errs = append(errs, r.Err) })
	}
	c.nodes[lead].e.Step()
	if len(errs) != 1 || base.CodeOf(errs[0]) != base.CodeOverloaded {
		t.Errorf("after %d proposals: %d resolved (%v), want exactly the last one overloaded", base.RaftProposalsInFlightMax+1, len(errs), errs)
	}
}

func TestLoopInboxIsBounded(t *testing.T) {
	e, _, _ := singleNode(t, nil, nil)
	var errs []error
	for i := range base.RaftLoopInboxMax + 1 {
		e.ProposeAsync(1, []byte(fmt.Sprint(i)), func(r Result) {
			if r.Err != nil {
				errs = append(errs, r.Err)
			}
		})
	}
	if len(errs) != 1 || base.CodeOf(errs[0]) != base.CodeOverloaded {
		t.Errorf("%d requests queued: %d refused (%v), want exactly the last one overloaded", base.RaftLoopInboxMax+1, len(errs), errs)
	}
}

func TestProposeBatchStoresDataBatchesAndRefusesOthers(t *testing.T) {
	e, f, clock := singleNode(t, nil, nil)
	var bld batch.Builder
	bld.Begin(nil, batch.Header{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1})
	bld.Add(1, []byte("k"), []byte("v1"), nil)
	bld.Add(2, []byte("k"), []byte("v2"), nil)
	data, err := bld.Finish()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan Result, 1)
	go func() {
		r, _ := e.ProposeBatch(ctx, 1, data)
		done <- r
	}()
	var r Result
	for stop := false; !stop; {
		select {
		case r = <-done:
			stop = true
		default:
			clock.Advance(time.Millisecond)
			e.Step()
		}
	}
	if r.Err != nil {
		t.Fatalf("ProposeBatch: %v", r.Err)
	}
	f.mu.Lock()
	got := f.entries[len(f.entries)-1]
	f.mu.Unlock()
	if got.Kind != KindBatch || len(got.Data) != len(data) {
		t.Errorf("FSM saw kind %v with %d bytes, want a %d-byte batch", got.Kind, len(got.Data), len(data))
	}
	if _, err := e.ProposeBatch(ctx, 1, encodeControl(controlCommand, []byte("x"), 0)); base.CodeOf(err) != base.CodeInvalidArgument {
		t.Errorf("control batch: got %v, want invalid_argument", err)
	}
	bad := append([]byte(nil), data...)
	bad[len(bad)-1] ^= 1
	if _, err := e.ProposeBatch(ctx, 1, bad); base.CodeOf(err) != base.CodeCorrupt {
		t.Errorf("batch with a bad CRC: got %v, want corrupt", err)
	}
}

func TestStopFailsPendingCallsWithStopped(t *testing.T) {
	c := newTestCluster(t, []NodeID{1, 2, 3}, nil)
	voters := []NodeID{1, 2, 3}
	for _, id := range voters {
		c.open(id, 1, voters)
	}
	lead := c.waitLeader(1)
	for _, id := range voters {
		if id != lead {
			c.net.cut[[2]NodeID{lead, id}] = true
		}
	}
	var res *Result
	c.nodes[lead].e.ProposeAsync(1, []byte("pending"), func(r Result) { res = &r })
	c.nodes[lead].e.Step()
	if res != nil {
		t.Fatalf("proposal resolved without a quorum: %+v", res)
	}
	c.nodes[lead].e.Stop()
	if res == nil || base.CodeOf(res.Err) != base.CodeStopped {
		t.Errorf("pending proposal after Stop: %+v, want stopped", res)
	}
}

// A node that lost its data (a wiped data directory) and starts again
// under its old id, with the cluster's original voters as a fresh node
// does, must not rejoin: the leader's heartbeat says entries are committed
// there that its log does not hold. Its engine fail-stops with an error
// that says so (raft would panic), and the others go on.
func TestANodeThatLostItsDataStopsInsteadOfRejoining(t *testing.T) {
	c := newTestCluster(t, []NodeID{1, 2, 3}, nil)
	voters := []NodeID{1, 2, 3}
	for _, id := range voters {
		c.open(id, 1, voters)
	}
	lead := c.waitLeader(1)
	for i := range 5 {
		if r := c.propose(lead, 1, fmt.Sprint("e", i)); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	victim := voters[(slices.Index(voters, lead)+1)%3]
	c.runUntil("the victim applied every entry", 200, func() bool { return len(c.nodes[victim].fsms[1].datas()) == 5 })
	c.crash(victim)
	c.nodes[victim].fs = vfs.NewMem() // its disk replaced
	c.start(victim)
	c.open(victim, 1, voters)
	e := c.nodes[victim].e
	c.runUntil("the wiped node stopped", 400, func() bool { return e.Err() != nil })
	if err := e.Err(); base.CodeOf(err) != base.CodeStorageFailed || !strings.Contains(err.Error(), "lost data it had acknowledged") {
		t.Fatalf("the wiped node's error: %v", err)
	}
	if r := c.propose(lead, 1, "after"); r.Err != nil {
		t.Fatalf("the others' proposal after the wiped node stopped: %v", r.Err)
	}
}

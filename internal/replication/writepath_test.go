package replication

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"google.golang.org/protobuf/proto"

	pb "go.etcd.io/raft/v3/raftpb"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/storage/log/batch"
)

// loggedWrite is one LogStore write seen by writeRecorder.
type loggedWrite struct {
	node      NodeID
	index     uint64
	control   int16 // the control type, or -1 for a data batch
	validated bool  // through WriteValidated
}

// writeRecorder wraps a node's LogProvider and records which entry point
// each entry was written through.
type writeRecorder struct {
	mu     sync.Mutex
	writes []loggedWrite
}

func (w *writeRecorder) wrap(cfg *Config) {
	cfg.Logs = &recordingLogs{inner: cfg.Logs, node: cfg.NodeID, rec: w}
}

func (w *writeRecorder) all() []loggedWrite {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]loggedWrite(nil), w.writes...)
}

type recordingLogs struct {
	inner LogProvider
	node  NodeID
	rec   *writeRecorder
}

func (p *recordingLogs) OpenLog(g GroupID) (LogStore, error) {
	l, err := p.inner.OpenLog(g)
	if err != nil {
		return nil, err
	}
	return &recordingLog{LogStore: l, p: p}, nil
}

func (p *recordingLogs) SyncAll(logs []LogStore) error {
	inner := make([]LogStore, len(logs))
	for i, l := range logs {
		inner[i] = l.(*recordingLog).LogStore
	}
	return p.inner.SyncAll(inner)
}

type recordingLog struct {
	LogStore
	p *recordingLogs
}

func (l *recordingLog) record(b []byte, validated bool, index uint64, err error) {
	if err != nil {
		return
	}
	typ, _, ok := decodeControl(b)
	if !ok {
		typ = -1
	}
	l.p.rec.mu.Lock()
	l.p.rec.writes = append(l.p.rec.writes, loggedWrite{node: l.p.node, index: index, control: typ, validated: validated})
	l.p.rec.mu.Unlock()
}

func (l *recordingLog) Write(term uint64, b []byte) (uint64, error) {
	i, err := l.LogStore.Write(term, b)
	l.record(b, false, i, err)
	return i, err
}

func (l *recordingLog) WriteValidated(term uint64, b []byte) (uint64, error) {
	i, err := l.LogStore.WriteValidated(term, b)
	l.record(b, true, i, err)
	return i, err
}

// dataBatch builds a one-record data batch holding value.
func dataBatch(t testing.TB, value string) []byte {
	t.Helper()
	var bld batch.Builder
	bld.Begin(nil, batch.Header{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1})
	if err := bld.Add(0, nil, []byte(value), nil); err != nil {
		t.Fatal(err)
	}
	b, err := bld.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestOnlyEntriesFromALeaderAreValidatedByTheLog: the leader writes what
// it proposed (commands it built, data batches ProposeBatch validated on
// its own copy) and raft's own entries (which the engine wraps) without
// the log's second validation; a follower writes every entry whose bytes
// came from the leader through the validating Write.
func TestOnlyEntriesFromALeaderAreValidatedByTheLog(t *testing.T) {
	storeKinds(t, func(t *testing.T, prod bool) {
		var rec writeRecorder
		c := newTestClusterOn(t, prod, []NodeID{1, 2, 3}, rec.wrap)
		voters := []NodeID{1, 2, 3}
		for _, id := range voters {
			c.open(id, 1, voters)
		}
		lead := c.waitLeader(1)
		for i := range 3 {
			if r := c.propose(lead, 1, fmt.Sprintf("cmd-%d", i)); r.Err != nil {
				t.Fatalf("proposal %d: %v", i, r.Err)
			}
		}
		if err := proposeBatchStepping(c, lead, dataBatch(t, "a data batch")); err != nil {
			t.Fatalf("data batch: %v", err)
		}
		c.runUntil("every replica applied 4 entries", 500, func() bool {
			for _, id := range voters {
				if len(c.nodes[id].fsms[1].datas()) != 4 {
					return false
				}
			}
			return true
		})
		var leaderOwn, followerData int
		for _, w := range rec.all() {
			switch {
			case w.control >= 0 && w.control != controlCommand:
				// raft's own entries are rebuilt by every replica
				if !w.validated {
					t.Errorf("node %d entry %d: raft's entry (control type %d) written through Write, want WriteValidated", w.node, w.index, w.control)
				}
			case w.node == lead:
				leaderOwn++
				if !w.validated {
					t.Errorf("leader %d entry %d (control %d): its own proposal written through Write, want WriteValidated", w.node, w.index, w.control)
				}
			default:
				followerData++
				if w.validated {
					t.Errorf("follower %d entry %d (control %d): an entry from the leader written through WriteValidated, want Write", w.node, w.index, w.control)
				}
			}
		}
		if leaderOwn != 4 || followerData != 8 {
			t.Errorf("writes seen: leader's own %d, followers' from the leader %d; want 4 and 8", leaderOwn, followerData)
		}
	})
}

// proposeBatchStepping proposes a data batch on node id as ProposeBatch
// does (ProposeBatchAsync) and steps the cluster until its outcome is
// known. Waiting for ProposeBatch itself to return would also wait for the
// scheduler to run its goroutine, which 2,000 quick steps can outrun.
func proposeBatchStepping(c *testCluster, id NodeID, b []byte) error {
	var res *Result
	c.nodes[id].e.ProposeBatchAsync(1, b, nil, func(r Result) { res = &r })
	c.runUntil("ProposeBatch resolved", 2000, func() bool { return res != nil })
	return res.Err
}

// TestProposeBatchCopiesTheCallersBatch: the engine validates and
// replicates its own copy, so a caller that gave up (its context ended)
// and reuses its buffer while the proposal is still queued changes
// nothing the log stores or the FSM applies.
func TestProposeBatchCopiesTheCallersBatch(t *testing.T) {
	c := newTestClusterOn(t, true, []NodeID{1}, nil)
	f := c.open(1, 1, []NodeID{1})
	c.waitLeader(1)
	b := dataBatch(t, "original")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := c.nodes[1].e.ProposeBatch(ctx, 1, b) // queued, not stepped: Manual mode
	if base.CodeOf(err) != base.CodeTimeout {
		t.Fatalf("ProposeBatch with an ended context: got %v, want timeout", err)
	}
	for i := range b {
		b[i] = 0xee // the caller reuses its buffer
	}
	c.runUntil("the batch applied", 200, func() bool { return len(f.datas()) == 1 })
	want := dataBatch(t, "original")
	if got := f.entries[0].Data; !bytes.Equal(got[batch.CRCStart:], want[batch.CRCStart:]) {
		t.Fatalf("applied batch: got %x, want %x (after the CRC field)", got, want)
	}
	if err := c.nodes[1].e.Err(); err != nil {
		t.Fatalf("engine failed: %v", err)
	}
}

// TestFollowerRefusesADamagedEntryFromTheLeader: an entry that arrives
// damaged (its batch CRC broken after the leader sent it) is refused by the
// follower's log, which stops the follower (fail-stop) instead of storing
// it; the leader, which wrote its own copy without re-validating it, is not
// affected.
func TestFollowerRefusesADamagedEntryFromTheLeader(t *testing.T) {
	c := newTestClusterOn(t, true, []NodeID{1, 2, 3}, nil)
	voters := []NodeID{1, 2, 3}
	for _, id := range voters {
		c.open(id, 1, voters)
	}
	lead := c.waitLeader(1)
	victim := voters[0]
	if victim == lead {
		victim = voters[1]
	}
	var res *Result
	c.nodes[lead].e.ProposeAsync(1, []byte("to be damaged"), func(r Result) { res = &r })
	damaged := false
	for i := 0; i < 200 && !damaged; i++ {
		c.clock.Advance(5e6)
		for _, id := range c.ids() {
			c.nodes[id].e.Step()
		}
		damaged = damageAppendsTo(c.net, victim)
		c.net.deliver()
	}
	if !damaged {
		t.Fatal("the leader never sent the entry to the victim")
	}
	c.runUntil("the victim stopped", 200, func() bool { return c.nodes[victim].e.Err() != nil })
	err := c.nodes[victim].e.Err()
	if base.CodeOf(err) != base.CodeStorageFailed || !strings.Contains(err.Error(), "crc") {
		t.Fatalf("victim's error: got %v, want storage_failed from a crc mismatch", err)
	}
	c.runUntil("the proposal resolved", 2000, func() bool { return res != nil })
	if res.Err != nil {
		t.Fatalf("proposal on the leader with one follower left: %v", res.Err)
	}
	if err := c.nodes[lead].e.Err(); err != nil {
		t.Fatalf("leader failed: %v", err)
	}
}

// damageAppendsTo replaces, in the queued batches to node to, every MsgApp
// entry holding a command with a copy whose last byte (inside the CRC) is
// flipped. It reports whether it damaged any. The messages are cloned
// first: the leader's raft still holds the originals.
func damageAppendsTo(n *localNet, to NodeID) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	damaged := false
	for _, m := range n.queue {
		if m.to != to {
			continue
		}
		for i, env := range m.b.Messages {
			if env.Msg.GetType() != pb.MsgApp {
				continue
			}
			msg := proto.Clone(env.Msg).(*pb.Message)
			for _, e := range msg.GetEntries() {
				if typ, _, ok := decodeControl(e.GetData()); ok && typ == controlCommand {
					e.Data[len(e.Data)-1] ^= 0xff
					damaged = true
				}
			}
			m.b.Messages[i].Msg = msg
		}
	}
	return damaged
}

// TestProposeBatchAdmitSeesTheLeadersTermAndMayRefuse: a batch's admit is
// asked on the loop with the leader's term, in submission order, and a
// refusal is the batch's outcome and keeps it out of the log, while the
// batches around it are proposed as usual.
func TestProposeBatchAdmitSeesTheLeadersTermAndMayRefuse(t *testing.T) {
	c := newTestClusterOn(t, true, []NodeID{1}, nil)
	f := c.open(1, 1, []NodeID{1})
	c.waitLeader(1)
	st, err := c.nodes[1].e.Status(1)
	if err != nil {
		t.Fatal(err)
	}
	refused := errors.New("an earlier batch of the chain failed")
	var asked []string
	var terms []uint64
	results := map[string]*Result{}
	for _, v := range []string{"first", "refused", "third"} {
		admit := func(term uint64) error {
			asked = append(asked, v)
			terms = append(terms, term)
			if v == "refused" {
				return refused
			}
			return nil
		}
		c.nodes[1].e.ProposeBatchAsync(1, dataBatch(t, v), admit, func(r Result) { results[v] = &r })
	}
	c.runUntil("every batch resolved", 2000, func() bool { return len(results) == 3 })
	if !slices.Equal(asked, []string{"first", "refused", "third"}) {
		t.Errorf("admit asked for %v, want the submission order", asked)
	}
	for _, term := range terms {
		if term != st.Term {
			t.Errorf("admit given term %d, want the leader's %d", term, st.Term)
		}
	}
	if err := results["refused"].Err; !errors.Is(err, refused) {
		t.Errorf("refused batch: got %v, want admit's error", err)
	}
	for _, v := range []string{"first", "third"} {
		if err := results[v].Err; err != nil {
			t.Errorf("batch %q: %v", v, err)
		}
	}
	var applied []string
	for _, d := range f.datas() {
		for _, v := range []string{"first", "refused", "third"} {
			if strings.Contains(d, v) {
				applied = append(applied, v)
			}
		}
	}
	if !slices.Equal(applied, []string{"first", "third"}) {
		t.Errorf("applied %q, want first and third only", applied)
	}
}

// TestProposeBuildAsyncProposesWhatBuildWrote: a batch built into the
// engine's buffer is applied as a data batch, in submission order with
// ProposeBatchAsync's; so is one that outgrew the buffer; a build error,
// or a control batch built, is done's error and proposes nothing.
func TestProposeBuildAsyncProposesWhatBuildWrote(t *testing.T) {
	c := newTestClusterOn(t, true, []NodeID{1}, nil)
	f := c.open(1, 1, []NodeID{1})
	c.waitLeader(1)
	e := c.nodes[1].e
	results := map[string]*Result{}
	record := func(v string) func(Result) { return func(r Result) { results[v] = &r } }
	var inBuffer bool
	e.ProposeBuildAsync(1, 1<<10, func(dst []byte) ([]byte, error) {
		b := append(dst, dataBatch(t, "built")...)
		inBuffer = cap(dst) >= 1<<10 && &b[0] == &dst[:1][0]
		return b, nil
	}, nil, record("built"))
	e.ProposeBatchAsync(1, dataBatch(t, "copied"), nil, record("copied"))
	e.ProposeBuildAsync(1, 8, func(dst []byte) ([]byte, error) {
		return append(dst[:0:0], dataBatch(t, "outgrown "+strings.Repeat("x", 4<<10))...), nil
	}, nil, record("outgrown"))
	failed := errors.New("the records do not fit a batch")
	e.ProposeBuildAsync(1, 64, func(dst []byte) ([]byte, error) {
		return append(dst, dataBatch(t, "failed")...), failed
	}, nil, record("failed"))
	e.ProposeBuildAsync(1, 64, func(dst []byte) ([]byte, error) {
		return append(dst, encodeControl(controlCommand, []byte("control"), 0)...), nil
	}, nil, record("control"))
	if !inBuffer {
		t.Error("build was not given a buffer of the size asked for")
	}
	if r := results["failed"]; r == nil || !errors.Is(r.Err, failed) {
		t.Errorf("failed build: got %v at once, want %v", r, failed)
	}
	if r := results["control"]; r == nil || base.CodeOf(r.Err) != base.CodeInvalidArgument {
		t.Errorf("control batch built: got %v at once, want invalid_argument", r)
	}
	c.runUntil("every batch resolved", 2000, func() bool { return len(results) == 5 })
	for _, v := range []string{"built", "copied", "outgrown"} {
		if err := results[v].Err; err != nil {
			t.Errorf("batch %q: %v", v, err)
		}
	}
	var applied []string
	f.mu.Lock()
	for _, e := range f.entries {
		for _, v := range []string{"built", "copied", "outgrown", "failed", "control"} {
			if strings.Contains(string(e.Data), v) {
				if e.Kind != KindBatch {
					t.Errorf("%s applied as kind %v, want a data batch", v, e.Kind)
				}
				applied = append(applied, v)
			}
		}
	}
	f.mu.Unlock()
	if !slices.Equal(applied, []string{"built", "copied", "outgrown"}) {
		t.Errorf("applied %q, want built, copied, outgrown", applied)
	}
}

package replication

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/base/vfs"
	"github.com/ferry-mq/ferry/internal/storage/meta"
)

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// listFSM is an append-only list of the entries it applied: its state is
// its whole history, so tests can compare histories across replicas. The
// result of an entry is its position in the list. It retains the log from
// retain (0: nothing) to exercise RetainFrom.
type listFSM struct {
	mu      sync.Mutex
	entries []Entry
	retain  uint64
	// requestAt makes the Apply of this index ask for a snapshot
	// (SnapshotRequester); requested holds the request until asked.
	requestAt, requested uint64
}

func (f *listFSM) SnapshotRequested() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.requested != 0
	f.requested = 0
	return r
}

func (f *listFSM) Apply(entries []Entry, results []any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, e := range entries {
		if e.Index == f.requestAt {
			f.requested = e.Index
		}
		e.Data = slices.Clone(e.Data)
		f.entries = append(f.entries, e)
		results[i] = len(f.entries)
	}
}

func (f *listFSM) Snapshot(w io.Writer) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var b []byte
	b = binary.AppendUvarint(b, uint64(len(f.entries)))
	for _, e := range f.entries {
		b = binary.AppendUvarint(b, e.Index)
		b = binary.AppendUvarint(b, e.Term)
		b = append(b, byte(e.Kind))
		b = appendBytes(b, e.Data)
	}
	_, err := w.Write(b)
	return err
}

func (f *listFSM) Restore(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	d := decoder{b: b}
	n := d.count(4, len(b))
	entries := make([]Entry, 0, n)
	for range n {
		entries = append(entries, Entry{Index: d.uvarint(), Term: d.uvarint(), Kind: EntryKind(d.u8()), Data: slices.Clone(d.bytes())})
	}
	if err := d.done("list FSM"); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.entries = entries
	return nil
}

func (f *listFSM) RetainFrom() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.retain
}

func (f *listFSM) datas() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]string, len(f.entries))
	for i, e := range f.entries {
		out[i] = string(e.Data)
	}
	return out
}

// localNet connects Manual engines in one process. Sent batches wait until
// deliver; links can be cut.
type localNet struct {
	mu      sync.Mutex
	engines map[NodeID]*Engine
	queue   []localMsg
	snaps   []localSnap
	cut     map[[2]NodeID]bool
}

type localMsg struct {
	from, to NodeID
	b        *Batch
}

type localSnap struct {
	from, to NodeID
	s        *OutgoingSnapshot
}

type localEndpoint struct {
	net  *localNet
	self NodeID
}

func (p localEndpoint) Send(to NodeID, b *Batch) {
	p.net.mu.Lock()
	defer p.net.mu.Unlock()
	p.net.queue = append(p.net.queue, localMsg{p.self, to, b})
}

func (p localEndpoint) SendSnapshot(to NodeID, s *OutgoingSnapshot) {
	p.net.mu.Lock()
	defer p.net.mu.Unlock()
	p.net.snaps = append(p.net.snaps, localSnap{p.self, to, s})
}

// deliver hands every queued batch and snapshot to its receiver, unless the
// link is cut or the receiver is gone; it reports whether it delivered any.
func (n *localNet) deliver() bool {
	n.mu.Lock()
	q, snaps := n.queue, n.snaps
	n.queue, n.snaps = nil, nil
	n.mu.Unlock()
	for _, m := range q {
		n.mu.Lock()
		e, cut := n.engines[m.to], n.cut[[2]NodeID{m.from, m.to}]
		n.mu.Unlock()
		if e != nil && !cut {
			e.HandleBatch(m.from, m.b)
		}
	}
	for _, s := range snaps {
		n.mu.Lock()
		e, cut := n.engines[s.to], n.cut[[2]NodeID{s.from, s.to}]
		n.mu.Unlock()
		if e == nil || cut {
			s.s.Done(fmt.Errorf("unreachable"))
			continue
		}
		r, err := s.s.Open()
		if err == nil {
			err = e.ReceiveSnapshot(s.from, r)
			r.Close()
		}
		s.s.Done(err)
	}
	return len(q)+len(snaps) > 0
}

// testNode is one node of a testCluster: its disk survives restarts.
type testNode struct {
	id    NodeID
	fs    *vfs.MemFS
	e     *Engine
	fsms  map[GroupID]*listFSM
	close func() // closes the node's state store
}

type testCluster struct {
	t     testing.TB
	clock *base.FakeClock
	net   *localNet
	nodes map[NodeID]*testNode
	cfg   func(*Config)
	prod  bool // the segmented log and Pebble rather than the simple stores
}

// storeKinds runs a test on both storage stacks.
func storeKinds(t *testing.T, f func(t *testing.T, prod bool)) {
	t.Run("simple", func(t *testing.T) { f(t, false) })
	t.Run("production", func(t *testing.T) { f(t, true) })
}

func newTestCluster(t testing.TB, ids []NodeID, cfg func(*Config)) *testCluster {
	return newTestClusterOn(t, false, ids, cfg)
}

func newTestClusterOn(t testing.TB, prod bool, ids []NodeID, cfg func(*Config)) *testCluster {
	c := &testCluster{t: t, clock: base.NewFakeClock(epoch), cfg: cfg, prod: prod,
		net: &localNet{engines: map[NodeID]*Engine{}, cut: map[[2]NodeID]bool{}}, nodes: map[NodeID]*testNode{}}
	for _, id := range ids {
		c.nodes[id] = &testNode{id: id, fs: vfs.NewMem()}
		c.start(id)
	}
	t.Cleanup(func() {
		for _, id := range c.ids() {
			if n := c.nodes[id]; n.e != nil {
				n.e.Stop()
				n.close()
			}
		}
	})
	return c
}

func (c *testCluster) ids() []NodeID {
	var ids []NodeID
	for id := range c.nodes {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func (c *testCluster) start(id NodeID) {
	n := c.nodes[id]
	var logs LogProvider
	var state StateStore
	if c.prod {
		store, err := meta.Open(meta.Options{FS: n.fs, Dir: "/data/meta", Logger: quiet})
		if err != nil {
			c.t.Fatal(err)
		}
		logs = &SegmentLogs{FS: n.fs, Dir: "/data/logs", Clock: c.clock, SegmentBytes: 64 << 10}
		state, n.close = MetaState{store}, func() { store.Close() }
	} else {
		st, err := OpenSimpleState(n.fs, "/data/state")
		if err != nil {
			c.t.Fatal(err)
		}
		logs, state, n.close = &SimpleLogs{FS: n.fs, Dir: "/data/logs"}, st, func() { st.Close() }
	}
	cfg := Config{
		NodeID: id, Clock: c.clock, FS: n.fs, Dir: "/data",
		Logs: logs, State: state,
		Transport: localEndpoint{c.net, id}, Manual: true, Logger: quiet,
		TickInterval: 10 * time.Millisecond, ElectionTicks: 10, HeartbeatTicks: 2,
	}
	if c.cfg != nil {
		c.cfg(&cfg)
	}
	e, err := New(cfg)
	if err != nil {
		c.t.Fatal(err)
	}
	n.e, n.fsms = e, map[GroupID]*listFSM{}
	c.net.mu.Lock()
	c.net.engines[id] = e
	c.net.mu.Unlock()
}

// open opens group g on node id with a fresh listFSM.
func (c *testCluster) open(id NodeID, g GroupID, bootstrap []NodeID) *listFSM {
	n := c.nodes[id]
	f := &listFSM{}
	if err := n.e.OpenGroup(g, f, bootstrap); err != nil {
		c.t.Fatalf("node %d: OpenGroup(%d): %v", id, g, err)
	}
	n.fsms[g] = f
	return f
}

// crash kills node id without a clean stop and drops its unsynced writes.
func (c *testCluster) crash(id NodeID) {
	n := c.nodes[id]
	c.net.mu.Lock()
	delete(c.net.engines, id)
	c.net.mu.Unlock()
	n.e.Stop()
	n.close()
	n.e = nil
	n.fs.Crash()
}

// step advances the clock by half a tick and runs every engine and the
// network once.
func (c *testCluster) step() {
	c.clock.Advance(5 * time.Millisecond)
	for _, id := range c.ids() {
		if n := c.nodes[id]; n.e != nil {
			n.e.Step()
		}
	}
	c.net.deliver()
}

// runUntil steps until cond holds, failing after max steps.
func (c *testCluster) runUntil(what string, max int, cond func() bool) {
	c.t.Helper()
	for i := 0; i < max; i++ {
		if cond() {
			return
		}
		c.step()
	}
	if !cond() {
		c.t.Fatalf("after %d steps: %s never happened", max, what)
	}
}

func (c *testCluster) leader(g GroupID) NodeID {
	for _, id := range c.ids() {
		if n := c.nodes[id]; n.e != nil {
			if st, err := n.e.Status(g); err == nil && st.IsLeader {
				return id
			}
		}
	}
	return 0
}

func (c *testCluster) waitLeader(g GroupID) NodeID {
	c.t.Helper()
	c.runUntil(fmt.Sprintf("a leader of group %d", g), 2000, func() bool { return c.leader(g) != 0 })
	return c.leader(g)
}

// propose proposes cmd on node id and runs until the outcome is known.
func (c *testCluster) propose(id NodeID, g GroupID, cmd string) Result {
	c.t.Helper()
	var res *Result
	c.nodes[id].e.ProposeAsync(g, []byte(cmd), func(r Result) { res = &r })
	c.runUntil("proposal "+cmd+" resolved", 2000, func() bool { return res != nil })
	return *res
}

func equalStrings(a, b []string) bool { return slices.Equal(a, b) }

var _ = bytes.Equal

// groupOf returns the engine's replica of group g, for tests of a Manual
// engine (whose loop runs on the test's goroutine).
func (e *Engine) groupOf(g GroupID) *group {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.groups[g]
}

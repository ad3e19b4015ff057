package sim

import (
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ferry-mq/ferry/internal/base/vfs"
	"github.com/ferry-mq/ferry/internal/replication"
	"github.com/ferry-mq/ferry/internal/storage/meta"
)

// node is one simulated process and its disk. The disk (mem) outlives the
// process: a crash drops the engine and whatever the disk had not synced.
type node struct {
	id     replication.NodeID
	mem    *vfs.MemFS
	faults *fsyncFaults
	fs     vfs.FS // mem, through the fault injector
	inc    int    // incarnation, bumped at every start
	e      *replication.Engine
	state  replication.StateStore
	closer func()                 // releases the storage of the current incarnation
	logs   []replication.LogStore // opened by the current incarnation
	groups map[replication.GroupID]*replica
	// Node-level liveness, as the TCP transport's pings give it.
	heard    map[replication.NodeID]time.Time
	reported map[replication.NodeID]bool
	downAt   time.Time // when it crashed; zero while up
}

// replica is a node's copy of one group, with what the checkers track
// about it.
type replica struct {
	fsm     historyFSM
	log     *checkedLog
	checked int // history entries already compared with the reference
	// Durability claims made by messages the node sent (network.go).
	claim    durableClaim
	voteTerm uint64
	voteFor  replication.NodeID
	maxTerm  uint64
}

type durableClaim struct{ index, term uint64 }

// fsyncFaults fails the next sync when armed: the engine must stop. It
// spares Pebble's files (/meta): Pebble fails a sync error in a background
// goroutine by panicking the process, which the meta package's own tests
// cover; here it would end the test binary.
// Pebble's goroutines consult it too, hence the atomic.
type fsyncFaults struct{ armed atomic.Bool }

func (f *fsyncFaults) Inject(p vfs.Point) error {
	if p.Op == vfs.OpSync && !p.After && !strings.HasPrefix(p.Path, "/meta") && f.armed.CompareAndSwap(true, false) {
		return vfs.ErrInjectedIO
	}
	return nil
}

func newNode(id replication.NodeID) *node {
	n := &node{id: id, mem: vfs.NewMem(), faults: &fsyncFaults{}, groups: map[replication.GroupID]*replica{}}
	n.fs = vfs.WithFaults(n.mem, n.faults)
	return n
}

// start starts a new incarnation of the node and opens the groups it
// hosts, recovering them from its disk.
func (s *Sim) start(n *node) {
	n.inc++
	n.downAt = time.Time{}
	n.heard, n.reported = map[replication.NodeID]time.Time{}, map[replication.NodeID]bool{}
	for _, p := range s.ids {
		n.heard[p] = s.clock.Now()
	}
	var logs replication.LogProvider
	if s.opts.Production {
		store, err := meta.Open(meta.Options{FS: n.fs, Dir: "/meta", Logger: quietLog})
		if err != nil {
			s.fail("node %d: opening its metadata store: %v", n.id, err)
			return
		}
		n.state, n.closer = replication.MetaState{Store: store}, func() { store.Close() }
		logs = &replication.SegmentLogs{FS: n.fs, Dir: "/logs", Clock: s.clock, SegmentBytes: 16 << 10, Logger: quietLog}
	} else {
		st, err := replication.OpenSimpleState(n.fs, "/state")
		if err != nil {
			s.fail("node %d: opening its state: %v", n.id, err)
			return
		}
		n.state, n.closer = st, func() { st.Close() }
		logs = &replication.SimpleLogs{FS: n.fs, Dir: "/logs"}
	}
	e, err := replication.New(replication.Config{
		NodeID: n.id, Clock: s.clock, FS: n.fs, Dir: "/",
		Logs: &checkedLogs{s: s, n: n, inner: logs}, State: n.state,
		Transport: endpoint{s: s, node: n.id, inc: n.inc},
		Loops:     1 + int(n.id)%2, Manual: true, Logger: quietLog,
		TickInterval: tick, ElectionTicks: 10, HeartbeatTicks: 2, QuiesceTicks: 30,
		SnapshotEntries:     s.snapEvery,
		SnapshotSteps:       1 + s.rng.IntN(20),
		UnsafeAckBeforeSync: s.opts.UnsafeAckBeforeSync,
	})
	if err != nil {
		s.fail("node %d: starting its engine: %v", n.id, err)
		return
	}
	n.e = e
	for _, g := range s.groupIDs {
		if s.hosts[g][n.id] && n.e != nil {
			s.openReplica(n, g)
		}
	}
	s.trace("start", uint64(n.id), uint64(n.inc))
}

// openReplica opens group g on node n with a fresh FSM (recovered from the
// node's disk) and checks that recovery kept what the node promised.
func (s *Sim) openReplica(n *node, g replication.GroupID) {
	old := n.groups[g]
	var fsm historyFSM = NewListFSM()
	if g%2 == 0 {
		fsm = NewKVFSM()
	}
	r := &replica{fsm: fsm}
	if old != nil {
		r.claim, r.voteTerm, r.voteFor, r.maxTerm = old.claim, old.voteTerm, old.voteFor, old.maxTerm
	}
	promised := *r
	n.groups[g] = r
	var boot []replication.NodeID
	if slices.Contains(s.bootstrap[g], n.id) {
		boot = s.bootstrap[g]
	}
	if err := n.e.OpenGroup(g, fsm, boot); err != nil {
		if errors.Is(err, vfs.ErrInjectedIO) {
			s.trace("openfailed", uint64(n.id), uint64(g))
			s.crash(n) // a disk error while recovering: the process dies
			return
		}
		s.fail("node %d: opening group %d: %v", n.id, g, err)
		return
	}
	s.checkRecovered(n, g, r, &promised)
}

// crash kills node n: its engine is dropped without a clean stop and its
// disk loses every write it had not synced.
func (s *Sim) crash(n *node) {
	if n.e == nil {
		return
	}
	s.trace("crash", uint64(n.id))
	m := n.e.Metrics()
	s.stats.Snapshots += int(m.Snapshots)
	s.stats.SnapshotsInstalled += int(m.SnapshotsInstalled)
	n.e = nil
	n.faults.armed.Store(false)
	n.downAt = s.clock.Now()
	if s.rng.IntN(2) == 0 {
		n.mem.CrashTorn(s.rng)
	} else {
		n.mem.Crash()
	}
	// Only now, with the unsynced writes gone, close what the dead process
	// held: the stale handles fail, which stops the stores' goroutines.
	for _, l := range n.logs {
		l.Close()
	}
	n.logs = nil
	n.closer()
	for _, r := range n.groups {
		r.checked = 0
	}
}

// checkRecovered checks, right after a restart opened group g, that the
// node's durable state keeps every promise its messages made.
func (s *Sim) checkRecovered(n *node, g replication.GroupID, now, r *replica) {
	gs, _, err := n.state.Load(g)
	if err != nil {
		s.fail("node %d group %d: loading state after restart: %v", n.id, g, err)
		return
	}
	if gs.HardState.Term < r.maxTerm {
		s.fail("node %d group %d: durable term %d after restart, but it sent messages of term %d", n.id, g, gs.HardState.Term, r.maxTerm)
	}
	if r.voteTerm > 0 && (gs.HardState.Term == r.voteTerm && gs.HardState.Vote != r.voteFor) {
		s.fail("node %d group %d: voted for %d in term %d, durable vote after restart is %d", n.id, g, r.voteFor, r.voteTerm, gs.HardState.Vote)
	}
	c := r.claim
	if c.index == 0 || c.index <= gs.Snapshot.Index {
		return
	}
	l := now.log
	if l.LastIndex() < c.index {
		s.fail("node %d group %d: acknowledged entries up to %d (term %d), log ends at %d after restart: %s",
			n.id, g, c.index, c.term, l.LastIndex(), "acknowledged entries lost")
		return
	}
	if c.index >= l.FirstIndex() {
		if t, err := l.Term(c.index); err != nil || t != c.term {
			s.fail("node %d group %d: acknowledged entry %d of term %d, after restart it has term %d (%v)", n.id, g, c.index, c.term, t, err)
		}
	}
}

// checkedLogs wraps a node's LogProvider so that every log write is checked
// against what the cluster has committed.
type checkedLogs struct {
	s     *Sim
	n     *node
	inner replication.LogProvider
}

func (c *checkedLogs) OpenLog(g replication.GroupID) (replication.LogStore, error) {
	l, err := c.inner.OpenLog(g)
	if err != nil {
		return nil, err
	}
	cl := &checkedLog{LogStore: l, s: c.s, n: c.n, g: g}
	c.n.logs = append(c.n.logs, l)
	if r := c.n.groups[g]; r != nil {
		r.log = cl
	}
	return cl, nil
}

func (c *checkedLogs) SyncAll(logs []replication.LogStore) error {
	inner := make([]replication.LogStore, len(logs))
	for i, l := range logs {
		inner[i] = l.(*checkedLog).LogStore
	}
	return c.inner.SyncAll(inner)
}

// checkedLog reports, as a safety violation, the removal of a committed
// entry from a node's log. (Writing a different entry at a committed index
// is not one by itself: a deposed leader appends to its own stale tail, at
// indexes where the cluster has moved on, and must never commit them; the
// applied histories catch that.)
type checkedLog struct {
	replication.LogStore
	s *Sim
	n *node
	g replication.GroupID
}

func (l *checkedLog) TruncateSuffix(from uint64) error {
	for i := max(from, l.FirstIndex()); i <= l.LastIndex(); i++ {
		t, err := l.LogStore.Term(i)
		if ct, ok := l.s.committedTerm(l.g, i); ok && err == nil && ct == t {
			l.s.fail("node %d group %d: truncated committed entry %d (term %d)", l.n.id, l.g, i, t)
			break
		}
	}
	if r := l.n.groups[l.g]; r != nil && r.claim.index >= from {
		r.claim = durableClaim{}
		if from > l.FirstIndex() {
			if t, err := l.LogStore.Term(from - 1); err == nil {
				r.claim = durableClaim{index: from - 1, term: t}
			}
		}
	}
	return l.LogStore.TruncateSuffix(from)
}

func (l *checkedLog) Reset(next uint64, off int64) error {
	if r := l.n.groups[l.g]; r != nil {
		r.claim = durableClaim{} // a snapshot's log replaces the old one
	}
	return l.LogStore.Reset(next, off)
}

func (s *Sim) liveNodes() []*node {
	var out []*node
	for _, id := range s.ids {
		if n := s.nodes[id]; n.e != nil {
			out = append(out, n)
		}
	}
	return out
}

func (s *Sim) downNodes() []*node {
	var out []*node
	for _, id := range s.ids {
		if n := s.nodes[id]; n.e == nil {
			out = append(out, n)
		}
	}
	return out
}

func sortedIDs[V any](m map[replication.NodeID]V) []replication.NodeID {
	out := make([]replication.NodeID, 0, len(m))
	for id := range m {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

package sim

import (
	crand "crypto/rand"
	"encoding/binary"
	"fmt"
	"hash"
	"hash/fnv"
	"io"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/replication"
)

// Options describe one simulation run; everything else is drawn from the
// seed.
type Options struct {
	Seed int64
	// Steps is how many rounds of traffic and faults run before the final
	// heal; 0 means DefaultSteps.
	Steps int
	// Production runs the nodes on the segmented log and Pebble (on the
	// in-memory file system) instead of the replication package's simple
	// stores.
	Production bool
	// UnsafeAckBeforeSync runs the engines with deliberately broken
	// durability (replication.Config.UnsafeAckBeforeSync): the checkers must
	// catch it.
	UnsafeAckBeforeSync bool
	// Trace, when set, receives one line per event.
	Trace io.Writer
}

// DefaultSteps is the rounds of one default run: about two seconds of
// simulated time, enough for elections, crashes, snapshots and recovery.
const DefaultSteps = 700

const (
	tick            = 10 * time.Millisecond
	pingInterval    = 20 * time.Millisecond
	peerTimeout     = 100 * time.Millisecond
	restartAfter    = 400 * time.Millisecond
	convergeRounds  = 6000
	convergeCheckEv = 20
)

// Result is the outcome of a run.
type Result struct {
	Seed      int64
	TraceHash uint64 // a hash of every event: equal for equal seeds
	Rounds    int
	Stats     Stats
	// Err is the first violation (or panic); nil when every check held.
	Err error
	// Replay is the command that reruns this seed.
	Replay string
}

// Stats count what happened in a run, to see that runs exercise something.
type Stats struct {
	Proposed, Acked, Reads, ReadsOK        int
	Crashes, Partitions, FsyncFaults       int
	Transfers, MembershipChanges           int
	Snapshots, SnapshotsInstalled, Leaders int
}

func (s Stats) add(o Stats) Stats {
	return Stats{s.Proposed + o.Proposed, s.Acked + o.Acked, s.Reads + o.Reads, s.ReadsOK + o.ReadsOK,
		s.Crashes + o.Crashes, s.Partitions + o.Partitions, s.FsyncFaults + o.FsyncFaults,
		s.Transfers + o.Transfers, s.MembershipChanges + o.MembershipChanges,
		s.Snapshots + o.Snapshots, s.SnapshotsInstalled + o.SnapshotsInstalled, s.Leaders + o.Leaders}
}

var quietLog = slog.New(slog.DiscardHandler)

// Sim is one run: nodes, network, clients and checkers, all driven by one
// seeded random source on one fake clock, in one goroutine.
type Sim struct {
	opts  Options
	rng   *rand.Rand
	clock *base.FakeClock
	net   *network
	hash  hash.Hash64
	err   error
	stats Stats

	ids       []replication.NodeID
	nodes     map[replication.NodeID]*node
	groupIDs  []replication.GroupID
	bootstrap map[replication.GroupID][]replication.NodeID
	hosts     map[replication.GroupID]map[replication.NodeID]bool
	faults    bool
	snapEvery uint64
	lastPing  time.Time

	// Checker state (check.go).
	ref       map[replication.GroupID][]rec
	committed map[replication.GroupID]map[uint64]uint64
	scanned   map[replication.GroupID]map[replication.NodeID]uint64
	leaders   map[replication.GroupID]map[uint64]replication.NodeID
	props     []*proposal
	member    *membershipScript
}

// Run runs one seed and checks it. It replaces crypto/rand.Reader (where
// etcd raft draws its election jitter) with a reader seeded from the seed
// for the length of the run, so runs must not overlap.
func Run(opts Options) (res Result) {
	if opts.Steps <= 0 {
		opts.Steps = DefaultSteps
	}
	if opts.UnsafeAckBeforeSync {
		// The segmented log shows buffered writes only after a sync, which
		// the unsafe engine delays: it runs on the simple stores.
		opts.Production = false
	}
	res = Result{Seed: opts.Seed, Replay: replayCommand(opts)}
	var seed [32]byte
	binary.LittleEndian.PutUint64(seed[:], uint64(opts.Seed))
	old := crand.Reader
	crand.Reader = rand.NewChaCha8(seed)
	defer func() { crand.Reader = old }()

	s := newSim(opts)
	defer func() {
		if r := recover(); r != nil {
			res.Err = fmt.Errorf("panic at round %d: %v\n%s", res.Rounds, r, trimStack(debug.Stack()))
		}
		s.shutdown()
		res.TraceHash, res.Stats = s.hash.Sum64(), s.stats
		if res.Err == nil {
			res.Err = s.err
		}
	}()
	for _, id := range s.ids {
		s.start(s.nodes[id])
	}
	for ; res.Rounds < opts.Steps && s.err == nil; res.Rounds++ {
		s.round(true)
		s.check()
	}
	if s.err == nil {
		res.Rounds += s.converge()
	}
	return res
}

func replayCommand(o Options) string {
	cmd := fmt.Sprintf("go test ./internal/sim -run 'TestSimulation$' -args -sim.seed=%d", o.Seed)
	if o.Steps != DefaultSteps {
		cmd += fmt.Sprintf(" -sim.steps=%d", o.Steps)
	}
	if o.Production {
		cmd += " -sim.production"
	}
	if o.UnsafeAckBeforeSync {
		cmd += " -sim.unsafe"
	}
	return cmd + " -sim.trace"
}

func trimStack(b []byte) string {
	lines := strings.Split(string(b), "\n")
	return strings.Join(lines[:min(len(lines), 40)], "\n")
}

// newSim draws the run's shape from the seed: 3 to 5 nodes, 2 or 3
// groups, fault rates, snapshot frequency, and whether membership changes.
func newSim(opts Options) *Sim {
	rng := rand.New(rand.NewPCG(uint64(opts.Seed), 0x9e3779b97f4a7c15))
	s := &Sim{opts: opts, rng: rng, clock: base.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)),
		hash: fnv.New64a(), nodes: map[replication.NodeID]*node{},
		bootstrap: map[replication.GroupID][]replication.NodeID{}, hosts: map[replication.GroupID]map[replication.NodeID]bool{},
		ref: map[replication.GroupID][]rec{}, committed: map[replication.GroupID]map[uint64]uint64{},
		scanned: map[replication.GroupID]map[replication.NodeID]uint64{}, leaders: map[replication.GroupID]map[uint64]replication.NodeID{}}
	s.net = &network{s: s, cut: map[[2]replication.NodeID]bool{}, dropPct: rng.IntN(60), dupPct: rng.IntN(40),
		delayMin: 200 * time.Microsecond, delayMax: time.Duration(1+rng.IntN(4)) * time.Millisecond}
	s.faults = rng.IntN(10) != 0
	s.snapEvery = uint64(8 + rng.IntN(40))
	voters := 3 + 2*rng.IntN(2)*rng.IntN(2) // mostly 3, sometimes 5
	total := voters
	if rng.IntN(3) == 0 {
		total++ // a spare node that joins a group through a membership change
		s.member = &membershipScript{spare: replication.NodeID(total)}
	}
	for i := 1; i <= total; i++ {
		id := replication.NodeID(i)
		s.ids = append(s.ids, id)
		s.nodes[id] = newNode(id)
	}
	for g := replication.GroupID(1); g <= replication.GroupID(2+rng.IntN(2)); g++ {
		s.groupIDs = append(s.groupIDs, g)
		s.hosts[g] = map[replication.NodeID]bool{}
		for i := 1; i <= voters; i++ {
			s.bootstrap[g] = append(s.bootstrap[g], replication.NodeID(i))
			s.hosts[g][replication.NodeID(i)] = true
		}
		s.committed[g] = map[uint64]uint64{}
		s.scanned[g] = map[replication.NodeID]uint64{}
		s.leaders[g] = map[uint64]replication.NodeID{}
	}
	s.trace("shape", uint64(voters), uint64(total), uint64(len(s.groupIDs)), s.snapEvery)
	return s
}

// trace adds an event to the run's hash (and the trace output).
func (s *Sim) trace(kind string, vals ...uint64) {
	s.hash.Write([]byte(kind))
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(s.clock.Now().UnixNano()))
	s.hash.Write(b[:])
	for _, v := range vals {
		binary.LittleEndian.PutUint64(b[:], v)
		s.hash.Write(b[:])
	}
	if s.opts.Trace != nil {
		fmt.Fprintf(s.opts.Trace, "%s %s %v\n", s.clock.Now().Format("15:04:05.000000"), kind, vals)
	}
}

// fail records the first violation; the run stops at the end of the round.
func (s *Sim) fail(format string, args ...any) {
	if s.err == nil {
		s.err = fmt.Errorf("at %s: %s", s.clock.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
		s.trace("FAIL")
	}
}

// round advances time a little, delivers what is due, runs every live
// engine once in a random order, and maybe does one client action or
// fault.
func (s *Sim) round(actions bool) {
	s.clock.Advance(time.Duration(500+s.rng.IntN(3500)) * time.Microsecond)
	s.net.deliverDue()
	s.pingAndMonitor()
	live := s.liveNodes()
	s.rng.Shuffle(len(live), func(i, j int) { live[i], live[j] = live[j], live[i] })
	for _, n := range live {
		if n.e == nil {
			continue
		}
		n.e.Step()
		if err := n.e.Err(); err != nil {
			s.trace("failstop", uint64(n.id))
			s.crash(n)
		}
	}
	for _, n := range s.downNodes() {
		if s.clock.Now().Sub(n.downAt) > restartAfter {
			s.start(n)
		}
	}
	if actions && s.rng.IntN(100) < 40 {
		s.action()
	}
}

// pingAndMonitor sends node-level pings and reports peers not heard from,
// as the TCP transport does, so that sleeping groups wake when their
// leader's node goes away.
func (s *Sim) pingAndMonitor() {
	now := s.clock.Now()
	if now.Sub(s.lastPing) >= pingInterval {
		s.lastPing = now
		for _, a := range s.liveNodes() {
			for _, b := range s.ids {
				if b != a.id {
					s.net.push(&packet{from: a.id, to: b, ping: true})
				}
			}
		}
	}
	for _, a := range s.liveNodes() {
		for _, b := range s.ids {
			if b != a.id && now.Sub(a.heard[b]) > peerTimeout && !a.reported[b] {
				a.reported[b] = true
				a.e.PeerDown(b)
				s.trace("peerdown", uint64(a.id), uint64(b))
			}
		}
	}
}

// action is one client call or fault.
func (s *Sim) action() {
	switch w := s.rng.IntN(100); {
	case w < 55:
		s.propose()
	case w < 66:
		s.read()
	case w < 70:
		s.transfer()
	case w < 76:
		s.membershipStep()
	case s.faults:
		s.fault()
	default:
		s.propose()
	}
}

func (s *Sim) fault() {
	live, down := s.liveNodes(), s.downNodes()
	switch s.rng.IntN(10) {
	case 0, 1:
		if len(live) > 0 {
			s.stats.Crashes++
			s.crash(live[s.rng.IntN(len(live))])
		}
	case 2:
		if len(down) > 0 {
			s.start(down[s.rng.IntN(len(down))])
		}
	case 3: // isolate one node both ways
		a := s.ids[s.rng.IntN(len(s.ids))]
		for _, b := range s.ids {
			if b != a {
				s.net.cut[[2]replication.NodeID{a, b}], s.net.cut[[2]replication.NodeID{b, a}] = true, true
			}
		}
		s.stats.Partitions++
		s.trace("isolate", uint64(a))
	case 4: // cut one direction of one link
		a, b := s.ids[s.rng.IntN(len(s.ids))], s.ids[s.rng.IntN(len(s.ids))]
		if a != b {
			s.net.cut[[2]replication.NodeID{a, b}] = true
			s.stats.Partitions++
			s.trace("cut", uint64(a), uint64(b))
		}
	case 5: // split into two sides
		side := map[replication.NodeID]bool{}
		for _, id := range s.ids {
			side[id] = s.rng.IntN(2) == 0
		}
		for _, a := range s.ids {
			for _, b := range s.ids {
				if side[a] != side[b] {
					s.net.cut[[2]replication.NodeID{a, b}] = true
				}
			}
		}
		s.stats.Partitions++
		s.trace("split")
	case 6, 7, 8:
		clear(s.net.cut)
		s.trace("heal")
	case 9:
		if len(live) > 0 {
			n := live[s.rng.IntN(len(live))]
			n.faults.armed.Store(true)
			s.stats.FsyncFaults++
			s.trace("fsyncfault", uint64(n.id))
		}
	}
}

// converge heals everything, restarts every node, stops the faults and the
// traffic, and runs until every member of every group has applied every
// acknowledged proposal: the liveness half of the checks. It returns the
// rounds it ran.
func (s *Sim) converge() int {
	s.faults = false
	clear(s.net.cut)
	for _, n := range s.downNodes() {
		s.start(n)
	}
	for _, n := range s.nodes {
		n.faults.armed.Store(false)
	}
	s.trace("converge")
	for r := 1; r <= convergeRounds; r++ {
		s.round(false)
		s.check()
		if s.err != nil {
			return r
		}
		if r%convergeCheckEv == 0 && s.converged() == "" {
			s.checkFinal()
			return r
		}
	}
	s.fail("liveness: %d rounds after healing, %s", convergeRounds, s.converged())
	return convergeRounds
}

// shutdown releases every node's storage.
func (s *Sim) shutdown() {
	for _, id := range s.ids {
		n := s.nodes[id]
		if n.e != nil {
			m := n.e.Metrics()
			s.stats.Snapshots += int(m.Snapshots)
			s.stats.SnapshotsInstalled += int(m.SnapshotsInstalled)
			n.e.Stop()
			n.closer()
			n.e, n.logs = nil, nil
		}
	}
}

func (s *Sim) shuffled(ns []replication.NodeID) []replication.NodeID {
	out := slices.Clone(ns)
	s.rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

package broker

import (
	crand "crypto/rand"
	"encoding/binary"
	"flag"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/base/vfs"
	"github.com/ferry-mq/ferry/internal/queue"
	"github.com/ferry-mq/ferry/internal/replication"
	"github.com/ferry-mq/ferry/internal/storage/log/batch"
)

// The queue state machine under simulation: three replicas of one queue
// group on manual Raft engines, one fake clock, a seeded network that
// delays, drops and partitions, crashes that lose unsynced writes, and a
// driver playing publishers, consumers (ack, nack, reject, silence) and
// the leader's duties (ticks, dead-letter completion). Every applied
// entry is recorded per replica (commands, results, effects); the
// checkers run over the committed history:
//
//   - replicas agree on every entry's result and effects (determinism);
//   - no confirmed message is lost;
//   - no message is delivered to two consumers at once unless it was
//     returned in between;
//   - a message is dead-lettered if and only if its delivery limit was
//     reached, it was rejected without requeue, or it expired (the queue
//     has a dead-letter target);
//   - no message is both acked and dead-lettered.
//
// Run more seeds with: go test ./internal/broker -run TestQueueUnderSimulation -args -sim.seeds=200

var simSeeds = flag.Int("sim.seeds", 6, "seeds of TestQueueUnderSimulation")

const (
	simGroup   = GroupID(7)
	simTick    = 10 * time.Millisecond
	simLimit   = 3 // delivery limit
	simTTLms   = 400
	simAckMs   = 600 // ack timeout
	simRounds  = 900
	simNodes   = 3
	simDLX     = `dlx "dead"`
	simPrefect = 3
)

func simConfig() queue.Config {
	cfg := queue.DefaultConfig()
	cfg.DeadLetterTarget = simDLX
	cfg.Retry.DeliveryLimit = simLimit
	cfg.AckTimeoutMs = simAckMs
	cfg.DedupeWindowMs = uint64(time.Minute.Milliseconds())
	return cfg
}

// simRecord is one applied entry as a replica saw it.
type simRecord struct {
	cmd     queue.Command
	res     queue.Result
	effects []queue.Effect
	desc    string // canonical text, compared across replicas
}

type simNode struct {
	id   NodeID
	fs   *vfs.MemFS
	eng  *replication.Engine
	fsm  *queueFSM
	up   bool
	down int // rounds until restart
}

type simPacket struct {
	at       int // round
	from, to NodeID
	data     []byte
	snap     *replication.OutgoingSnapshot
}

type queueSim struct {
	t      *testing.T
	rng    *rand.Rand
	clock  *base.FakeClock
	nodes  []*simNode
	net    []simPacket
	cut    map[NodeID]bool // isolated nodes
	round  int
	hist   map[uint64]*simRecord
	failed error

	// Driver state.
	nextMsg   int
	confirmed map[queue.Ref]string // ref → message id, of Enqueued outcomes
	owners    []string             // consumer owners ever used
	leader    NodeID
	epoch     int // bumped on leader change: consumer names change
	pending   int // proposals in flight
	dlxSeen   map[queue.Ref]bool

	// The checkers' model, advanced over the history in index order up
	// to what the leader has applied.
	model     *model
	modelNext uint64
	crashes   int
	leaders   int
}

type simEndpoint struct {
	s    *queueSim
	from NodeID
}

func (e simEndpoint) Send(to NodeID, b *replication.Batch) {
	e.s.net = append(e.s.net, simPacket{at: e.s.round + 1 + e.s.rng.IntN(3), from: e.from, to: to,
		data: replication.EncodeBatch(nil, b)})
}

func (e simEndpoint) SendSnapshot(to NodeID, os *replication.OutgoingSnapshot) {
	e.s.net = append(e.s.net, simPacket{at: e.s.round + 2, from: e.from, to: to, snap: os})
}

func TestQueueUnderSimulation(t *testing.T) {
	for seed := range *simSeeds {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			// etcd raft draws election jitter from crypto/rand: seed it
			// too, so that a seed replays the same run.
			var key [32]byte
			binary.LittleEndian.PutUint64(key[:], uint64(seed))
			old := crand.Reader
			crand.Reader = rand.NewChaCha8(key)
			defer func() { crand.Reader = old }()
			s := newQueueSim(t, int64(seed))
			s.run()
			if s.failed != nil {
				t.Fatalf("seed %d: %v\nreplay: go test ./internal/broker -run 'TestQueueUnderSimulation/seed%d$'", seed, s.failed, seed)
			}
		})
	}
}

func newQueueSim(t *testing.T, seed int64) *queueSim {
	s := &queueSim{t: t, rng: rand.New(rand.NewPCG(uint64(seed), 0x9e3779b9)), clock: base.NewFakeClock(epoch),
		cut: map[NodeID]bool{}, hist: map[uint64]*simRecord{}, confirmed: map[queue.Ref]string{}, dlxSeen: map[queue.Ref]bool{},
		model: newModel(), modelNext: 1}
	for i := range simNodes {
		s.nodes = append(s.nodes, &simNode{id: NodeID(i + 1), fs: vfs.NewMem()})
	}
	for _, n := range s.nodes {
		s.start(n)
	}
	return s
}

func (s *queueSim) start(n *simNode) {
	eng, err := replication.New(replication.Config{NodeID: n.id, Clock: s.clock, FS: n.fs, Dir: "/raft",
		Logs: &replication.SimpleLogs{FS: n.fs, Dir: "/logs"}, State: mustSimpleState(s.t, n.fs),
		Transport: simEndpoint{s, n.id}, Manual: true, TickInterval: simTick, ElectionTicks: 10,
		SnapshotEntries: 40, Logger: quietLog})
	if err != nil {
		s.t.Fatal(err)
	}
	n.fsm = newBareQueueFSM(simGroup, simConfig())
	node := n
	n.fsm.observe = func(index uint64, cmd queue.Command, res queue.Result, effects []queue.Effect) {
		s.observe(node, index, cmd, res, effects)
	}
	n.eng = eng
	if err := eng.OpenGroup(simGroup, n.fsm, []NodeID{1, 2, 3}); err != nil {
		s.t.Fatal(err)
	}
	n.up = true
}

func mustSimpleState(t *testing.T, fs vfs.FS) *replication.SimpleState {
	st, err := replication.OpenSimpleState(fs, "/state")
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// observe records an applied entry and checks it against what other
// replicas applied at the same index.
func (s *queueSim) observe(n *simNode, index uint64, cmd queue.Command, res queue.Result, effects []queue.Effect) {
	r := &simRecord{cmd: cmd, res: res, effects: slices.Clone(effects)}
	r.res.Outcomes = slices.Clone(res.Outcomes)
	if e, ok := cmd.(*queue.Enqueue); ok {
		r.cmd = &queue.Enqueue{Now: e.Now, Messages: slices.Clone(e.Messages)}
	}
	r.desc = fmt.Sprintf("%T %v %v %d %v %v", cmd, res.Err != nil, r.res.Outcomes, res.Count, res.Found, effects)
	if prev, ok := s.hist[index]; ok {
		if prev.desc != r.desc && s.failed == nil {
			s.failed = fmt.Errorf("replicas disagree at entry %d:\n node %d: %s\n before: %s", index, n.id, r.desc, prev.desc)
		}
		return
	}
	s.hist[index] = r
}

func (s *queueSim) run() {
	for s.round < simRounds && s.failed == nil {
		s.faults()
		s.step()
		s.drive()
	}
	s.heal()
	for i := 0; i < 3000 && s.failed == nil && (!s.converged() || s.pending > 0); i++ {
		s.step()
		s.finishDeadLetters()
	}
	if s.failed == nil && !s.converged() {
		s.failed = fmt.Errorf("the replicas did not converge after the faults healed")
	}
	if s.failed == nil {
		s.drain()
	}
	for i := 0; i < 100 && s.failed == nil && !s.converged(); i++ {
		s.step()
	}
	if s.failed == nil {
		s.failed = s.check()
	}
	for _, n := range s.nodes {
		if n.up {
			n.eng.Stop()
		}
	}
}

// step is one round: time advances by one tick, every engine runs until
// quiet, and the packets due are delivered.
func (s *queueSim) step() {
	s.round++
	s.clock.Advance(simTick)
	for range 20 {
		worked := false
		for _, n := range s.nodes {
			if n.up && n.eng.Step() {
				worked = true
			}
		}
		worked = s.deliver() || worked
		if !worked {
			break
		}
	}
}

func (s *queueSim) deliver() bool {
	var keep []simPacket
	delivered := false
	for _, p := range s.net {
		if p.at > s.round {
			keep = append(keep, p)
			continue
		}
		to := s.nodes[p.to-1]
		lost := !to.up || s.cut[p.from] || s.cut[p.to] || s.rng.IntN(100) < 2
		if p.snap != nil {
			if lost {
				p.snap.Done(fmt.Errorf("unreachable"))
				continue
			}
			rc, err := p.snap.Open()
			if err == nil {
				err = to.eng.ReceiveSnapshot(p.from, rc)
				rc.Close()
			}
			p.snap.Done(err)
			delivered = true
			continue
		}
		if lost {
			continue
		}
		b, err := replication.DecodeBatch(p.data, p.from, p.to)
		if err != nil {
			s.failed = err
			return false
		}
		to.eng.HandleBatch(p.from, b)
		delivered = true
	}
	s.net = keep
	return delivered
}

// faults crashes, restarts and isolates nodes now and then.
func (s *queueSim) faults() {
	for _, n := range s.nodes {
		if !n.up {
			if n.down--; n.down <= 0 {
				s.start(n)
			}
			continue
		}
		if s.upCount() == simNodes && s.rng.IntN(400) == 0 {
			n.eng.Stop()
			n.fs.Crash()
			n.up, n.down = false, 30+s.rng.IntN(60)
			s.crashes++
			s.peerDown(n.id)
		}
	}
	if len(s.cut) == 0 && s.rng.IntN(300) == 0 {
		id := NodeID(1 + s.rng.IntN(simNodes))
		s.cut[id] = true
		s.peerDown(id)
		for _, o := range s.nodes {
			if o.id != id && s.nodes[id-1].up {
				s.nodes[id-1].eng.PeerDown(o.id)
			}
		}
	} else if len(s.cut) > 0 && s.rng.IntN(60) == 0 {
		clear(s.cut)
	}
}

// peerDown tells the other nodes that id stopped answering, as the
// transport's node-level heartbeats do after their timeout: groups it
// led that sleep there wake up and elect.
func (s *queueSim) peerDown(id NodeID) {
	for _, o := range s.nodes {
		if o.id != id && o.up {
			o.eng.PeerDown(id)
		}
	}
}

func (s *queueSim) upCount() int {
	n := 0
	for _, x := range s.nodes {
		if x.up {
			n++
		}
	}
	return n
}

func (s *queueSim) heal() {
	clear(s.cut)
	for _, n := range s.nodes {
		if !n.up {
			s.start(n)
		}
	}
}

// currentLeader returns the node leading the group, if any.
func (s *queueSim) currentLeader() *simNode {
	for _, n := range s.nodes {
		if !n.up || s.cut[n.id] {
			continue
		}
		if st, err := n.eng.Status(simGroup); err == nil && st.IsLeader {
			return n
		}
	}
	return nil
}

func (s *queueSim) converged() bool {
	var applied uint64
	for i, n := range s.nodes {
		st, err := n.eng.Status(simGroup)
		if err != nil || st.Applied != st.Commit {
			return false
		}
		if i == 0 {
			applied = st.Applied
		} else if st.Applied != applied {
			return false
		}
	}
	return s.currentLeader() != nil
}

// propose sends a command to the leader; done sees the queue's result.
func (s *queueSim) propose(l *simNode, data []byte, done func(queue.Result, *enqueueResult, replication.Result)) {
	s.pending++
	l.eng.ProposeAsync(simGroup, data, func(r replication.Result) {
		s.pending--
		var qr queue.Result
		er, _ := r.Value.(*enqueueResult)
		if c, ok := r.Value.(*queueCmdResult); ok {
			qr = c.res
		}
		if done != nil {
			done(qr, er, r)
		}
	})
}

func (s *queueSim) command(l *simNode, cmd queue.Command) {
	data, err := encodeQueueCommand(cmd)
	if err != nil {
		s.failed = err
		return
	}
	s.propose(l, data, nil)
}

func (s *queueSim) now() int64 { return s.clock.Now().UnixMilli() }

func (s *queueSim) consumer(i int) queue.ConsumerID {
	owner := fmt.Sprintf("conn%d-e%d", i, s.epoch)
	return queue.ConsumerID{Owner: owner, Name: "c"}
}

// drive plays the clients against the current leader.
func (s *queueSim) drive() {
	l := s.currentLeader()
	if l == nil {
		return
	}
	if l.id != s.leader {
		// A new leader: the old consumers are gone with their
		// connections; new ones subscribe.
		s.leader = l.id
		s.leaders++
		for _, o := range s.owners {
			s.command(l, &queue.ConsumerDown{Now: s.now(), Owner: o})
		}
		s.epoch++
		for i := range 2 {
			c := s.consumer(i)
			s.owners = append(s.owners, c.Owner)
			s.command(l, &queue.Subscribe{Now: s.now(), Consumer: c, PrefetchCount: simPrefect})
		}
	}
	if s.round < simRounds-100 && s.rng.IntN(3) == 0 {
		s.publish(l)
	}
	s.consume(l)
	s.finishDeadLetters()
	var wake int64
	var ok bool
	l.fsm.with(func(q *queue.Queue) { wake, ok = q.NextWake() })
	if ok && wake <= s.now() {
		s.command(l, &queue.Tick{Now: s.now()})
	}
}

func (s *queueSim) publish(l *simNode) {
	var bld batch.Builder
	bld.Begin(nil, plainHeader())
	n := 1 + s.rng.IntN(3)
	for range n {
		id := fmt.Sprint("m", s.nextMsg)
		s.nextMsg++
		m := Message{MessageID: id, Body: []byte(id)}
		if s.rng.IntN(4) == 0 {
			m.Expiration = fmt.Sprint(simTTLms)
		}
		if s.rng.IntN(10) == 0 {
			m.DedupeID = fmt.Sprint("d", s.rng.IntN(20))
		}
		var nb int64
		if s.rng.IntN(8) == 0 {
			nb = s.now() + int64(s.rng.IntN(300))
		}
		var enc recordEncoder
		rec, err := enc.encode(&m, nb)
		if err != nil {
			s.failed = err
			return
		}
		if err := bld.Add(s.now(), rec.key, rec.value, rec.headers); err != nil {
			s.failed = err
			return
		}
	}
	data, err := bld.Finish()
	if err != nil {
		s.failed = err
		return
	}
	confirm := func(_ queue.Result, er *enqueueResult, r replication.Result) {
		if r.Err != nil || er == nil || er.err != nil {
			return // not confirmed: the publisher would retry
		}
		for slot, o := range er.outcomes {
			if o == queue.OutcomeEnqueued {
				s.confirmed[queue.Ref{Index: r.Index, Slot: uint32(slot)}] = fmt.Sprint(slot)
			}
		}
	}
	if s.rng.IntN(4) == 0 {
		// The entry of a version before 2026-11-21: the batch in a
		// command, which logs written then still hold.
		s.propose(l, append([]byte{tagEnqueue}, data...), confirm)
		return
	}
	s.pending++
	l.eng.ProposeBuildAsync(simGroup, len(data), func(dst []byte) ([]byte, error) { return append(dst, data...), nil }, nil,
		func(r replication.Result) {
			s.pending--
			er, _ := r.Value.(*enqueueResult)
			confirm(queue.Result{}, er, r)
		})
}

// consume settles some of the leader's outstanding deliveries, as a
// consumer would: ack, requeue, reject or keep (until the ack timeout).
func (s *queueSim) consume(l *simNode) {
	for i := range 2 {
		c := s.consumer(i)
		s.advanceModel(l)
		var ids []uint64
		for d := range s.model.deliveries {
			if d.c == c {
				ids = append(ids, d.id)
			}
		}
		slices.Sort(ids)
		for _, id := range ids {
			switch s.rng.IntN(12) {
			case 0, 1, 2, 3, 4:
				s.command(l, &queue.Settle{Now: s.now(), Consumer: c, DeliveryIDs: []uint64{id}})
			case 5:
				s.command(l, &queue.Return{Now: s.now(), Consumer: c, DeliveryIDs: []uint64{id}, Requeue: true})
			case 6:
				s.command(l, &queue.Return{Now: s.now(), Consumer: c, DeliveryIDs: []uint64{id}})
			case 7:
				s.command(l, &queue.Settle{Now: s.now(), Consumer: c, UpTo: id})
			}
		}
	}
	if s.rng.IntN(50) == 0 {
		s.command(l, &queue.Get{Now: s.now(), AutoAck: true})
	}
}

// advanceModel applies the recorded entries up to what the leader has
// applied to the checkers' model, reporting the first violation.
func (s *queueSim) advanceModel(l *simNode) {
	st, err := l.eng.Status(simGroup)
	if err != nil {
		return
	}
	s.advanceModelTo(st.Applied)
}

func (s *queueSim) advanceModelTo(applied uint64) {
	for ; s.modelNext <= applied && s.failed == nil; s.modelNext++ {
		if r, ok := s.hist[s.modelNext]; ok {
			if err := s.model.apply(s.modelNext, r); err != nil {
				s.failed = fmt.Errorf("entry %d (%T): %w", s.modelNext, r.cmd, err)
			}
		}
	}
}

// finishDeadLetters completes the dead-lettering of pending messages, as
// the leader does once it republished them.
func (s *queueSim) finishDeadLetters() {
	l := s.currentLeader()
	if l == nil {
		return
	}
	var refs []queue.Ref
	l.fsm.with(func(q *queue.Queue) {
		for _, e := range q.DeadLetterPending() {
			refs = append(refs, e.Ref)
		}
	})
	if len(refs) > 0 {
		s.command(l, &queue.DeadLetterDone{Now: s.now(), Refs: refs})
	}
}

// drain ends the run: every consumer goes, time passes beyond every TTL
// and delay, and every message left is taken.
func (s *queueSim) drain() {
	l := s.currentLeader()
	for _, o := range s.owners {
		s.command(l, &queue.ConsumerDown{Now: s.now(), Owner: o})
	}
	s.clock.Advance(time.Second)
	s.command(l, &queue.Tick{Now: s.now()})
	for i := 0; i < 5000 && s.failed == nil; i++ {
		s.step()
		s.finishDeadLetters()
		var st queue.Stats
		l.fsm.with(func(q *queue.Queue) { st = q.Stats() })
		if st.Ready+st.Delayed+st.Unacked+st.DeadLetterPending == 0 && s.pending == 0 {
			return
		}
		if s.pending == 0 {
			s.command(l, &queue.Get{Now: s.now(), AutoAck: true})
		}
		if st.Delayed > 0 {
			s.clock.Advance(100 * time.Millisecond)
			s.command(l, &queue.Tick{Now: s.now()})
		}
	}
	if s.failed == nil {
		var st queue.Stats
		var cons []queue.ConsumerInfo
		l.fsm.with(func(q *queue.Queue) { st, cons = q.Stats(), q.Consumers() })
		s.failed = fmt.Errorf("the queue did not drain: %+v, consumers %+v, pending %d", st, cons, s.pending)
	}
}

// --- the checkers --------------------------------------------------------

type delivery struct {
	c  queue.ConsumerID
	id uint64
}

type msgState struct {
	ttl        uint64
	enqueuedMs int64
	attempts   int
	acked      bool
	dlx        bool // dead-letter pending
	dead       bool // dead-lettered and done
	delivered  bool // outstanding with a consumer
}

type model struct {
	msgs       map[queue.Ref]*msgState
	deliveries map[delivery]queue.Ref
	nowMs      int64
}

func newModel() *model {
	return &model{msgs: map[queue.Ref]*msgState{}, deliveries: map[delivery]queue.Ref{}}
}

func (m *model) apply(index uint64, r *simRecord) error {
	if n := cmdNow(r.cmd); n > m.nowMs {
		m.nowMs = n
	}
	if r.res.Err != nil {
		return m.effects(r, nil)
	}
	returned := map[queue.Ref]bool{} // returned without requeue by this command
	switch c := r.cmd.(type) {
	case *queue.Enqueue:
		for i, msg := range c.Messages {
			if r.res.Outcomes[i] == queue.OutcomeEnqueued {
				m.msgs[msg.Ref] = &msgState{ttl: msg.TTLms, enqueuedMs: c.Now}
			}
		}
	case *queue.Get:
		if r.res.Found {
			d := r.res.Delivery
			st := m.msgs[d.Ref]
			if st == nil || st.delivered {
				return fmt.Errorf("get handed out %s, which is not ready", d.Ref)
			}
			if st.ttl > 0 && m.nowMs >= st.enqueuedMs+int64(st.ttl) {
				return fmt.Errorf("get handed out %s after its ttl passed: it should have been dead-lettered", d.Ref)
			}
			if c.AutoAck {
				st.acked = true
			} else {
				st.delivered = true
				m.deliveries[delivery{c.Consumer, d.DeliveryID}] = d.Ref
			}
		}
	case *queue.Settle:
		for _, ref := range m.take(c.Consumer, c.DeliveryIDs, c.UpTo) {
			m.msgs[ref].acked = true
			m.msgs[ref].delivered = false
		}
	case *queue.Return:
		for _, ref := range m.take(c.Consumer, c.DeliveryIDs, c.UpTo) {
			m.fail(ref)
			if !c.Requeue {
				returned[ref] = true
			}
		}
	case *queue.Recover:
		for _, ref := range m.takeAll(func(d delivery) bool { return d.c == c.Consumer }) {
			m.fail(ref)
		}
	case *queue.ConsumerDown:
		for _, ref := range m.takeAll(func(d delivery) bool { return d.c.Owner == c.Owner }) {
			m.fail(ref)
		}
	case *queue.DeadLetterDone:
		for _, ref := range c.Refs {
			if st := m.msgs[ref]; st != nil && st.dlx {
				st.dlx, st.dead = false, true
			}
		}
	}
	return m.effects(r, returned)
}

// cmdNow reads the Now every queue command carries (queue.Command's
// contract); the queue package keeps its accessor unexported. Reading the
// field covers every command type, including ones a hand-kept type
// switch would miss; a type without Now panics here, loudly.
func cmdNow(c queue.Command) int64 {
	return reflect.ValueOf(c).Elem().FieldByName("Now").Int()
}

// fail counts a failed attempt of a returned delivery.
func (m *model) fail(ref queue.Ref) {
	st := m.msgs[ref]
	st.delivered = false
	st.attempts++
}

func (m *model) take(c queue.ConsumerID, ids []uint64, upTo uint64) []queue.Ref {
	if upTo > 0 {
		return m.takeAll(func(d delivery) bool { return d.c == c && d.id <= upTo })
	}
	var out []queue.Ref
	for _, id := range ids {
		d := delivery{c, id}
		if ref, ok := m.deliveries[d]; ok {
			out = append(out, ref)
			delete(m.deliveries, d)
		}
	}
	return out
}

func (m *model) takeAll(match func(delivery) bool) []queue.Ref {
	var ds []delivery
	for d := range m.deliveries {
		if match(d) {
			ds = append(ds, d)
		}
	}
	slices.SortFunc(ds, func(a, b delivery) int { return int(a.id) - int(b.id) })
	out := make([]queue.Ref, len(ds))
	for i, d := range ds {
		out[i] = m.deliveries[d]
		delete(m.deliveries, d)
	}
	return out
}

// effects applies a record's effects and checks them.
func (m *model) effects(r *simRecord, returned map[queue.Ref]bool) error {
	dead := map[queue.Ref]bool{}
	for _, e := range r.effects {
		switch e.Kind {
		case queue.EffectDeliver:
			st := m.msgs[e.Ref]
			if st == nil {
				return fmt.Errorf("delivered %s, which was never enqueued", e.Ref)
			}
			if st.delivered {
				return fmt.Errorf("%s delivered to %s while another consumer holds it", e.Ref, e.Consumer)
			}
			if st.acked || st.dlx || st.dead {
				return fmt.Errorf("%s delivered after it was settled or dead-lettered", e.Ref)
			}
			if st.ttl > 0 && !e.Redelivered && m.nowMs >= st.enqueuedMs+int64(st.ttl) {
				return fmt.Errorf("%s delivered after its ttl passed: it should have been dead-lettered", e.Ref)
			}
			st.delivered = true
			m.deliveries[delivery{e.Consumer, e.DeliveryID}] = e.Ref
		case queue.EffectAckTimeout:
			d := delivery{e.Consumer, e.DeliveryID}
			if ref, ok := m.deliveries[d]; ok {
				delete(m.deliveries, d)
				m.fail(ref)
			}
		case queue.EffectDeadLetter:
			st := m.msgs[e.Ref]
			if st == nil {
				return fmt.Errorf("dead-lettered %s, which was never enqueued", e.Ref)
			}
			if st.acked {
				return fmt.Errorf("%s dead-lettered after it was acked", e.Ref)
			}
			switch e.Reason {
			case queue.ReasonRejected:
				if !returned[e.Ref] {
					return fmt.Errorf("%s dead-lettered as rejected, but no reject returned it", e.Ref)
				}
			case queue.ReasonDeliveryLimit:
				if st.attempts <= simLimit {
					return fmt.Errorf("%s dead-lettered for its delivery limit after %d failed attempts (limit %d)", e.Ref, st.attempts, simLimit)
				}
			case queue.ReasonExpired:
				if st.ttl == 0 || m.nowMs < st.enqueuedMs+int64(st.ttl) {
					return fmt.Errorf("%s dead-lettered as expired (ttl %d, enqueued %d, now %d)", e.Ref, st.ttl, st.enqueuedMs, m.nowMs)
				}
			default:
				return fmt.Errorf("%s dead-lettered for %s, which this queue never causes", e.Ref, e.Reason)
			}
			st.delivered, st.dlx = false, true
			dead[e.Ref] = true
		case queue.EffectDrop:
			return fmt.Errorf("%s dropped for %s although the queue has a dead-letter target", e.Ref, e.Reason)
		}
	}
	for ref := range returned {
		if !dead[ref] {
			return fmt.Errorf("%s rejected without requeue but not dead-lettered", ref)
		}
	}
	if r.res.Err == nil {
		for ref, st := range m.msgs {
			if st.attempts > simLimit && !st.dlx && !st.dead && !st.acked && !dead[ref] {
				return fmt.Errorf("%s failed %d attempts (limit %d) but is not dead-lettered", ref, st.attempts, simLimit)
			}
		}
	}
	return nil
}

// check finishes the model over the whole history and checks every
// confirmed message's fate.
func (s *queueSim) check() error {
	var applied uint64
	for _, n := range s.nodes {
		if st, err := n.eng.Status(simGroup); err == nil {
			applied = max(applied, st.Applied)
		}
	}
	s.advanceModelTo(applied)
	if s.failed != nil {
		return s.failed
	}
	m := s.model
	for ref := range s.confirmed {
		st := m.msgs[ref]
		switch {
		case st == nil:
			return fmt.Errorf("confirmed message %s was never applied", ref)
		case st.acked && st.dead:
			return fmt.Errorf("%s was both acked and dead-lettered", ref)
		case !st.acked && !st.dead:
			return fmt.Errorf("confirmed message %s was lost (state %+v)", ref, *st)
		}
	}
	if len(s.confirmed) < 50 {
		return fmt.Errorf("only %d messages confirmed: the run exercised too little", len(s.confirmed))
	}
	acked, dead := 0, 0
	for _, st := range m.msgs {
		if st.acked {
			acked++
		}
		if st.dead {
			dead++
		}
	}
	s.t.Logf("%d confirmed, %d acked, %d dead-lettered, %d entries, %d crashes, %d leaders",
		len(s.confirmed), acked, dead, len(s.hist), s.crashes, s.leaders)
	return nil
}

// TestQueueSimCheckersCatchViolations feeds the checkers histories that
// break each invariant, so that a checker that stopped checking cannot
// pass silently.
func TestQueueSimCheckersCatchViolations(t *testing.T) {
	ref := queue.Ref{Index: 1}
	c1 := queue.ConsumerID{Owner: "a", Name: "c"}
	c2 := queue.ConsumerID{Owner: "b", Name: "c"}
	enq := &simRecord{cmd: &queue.Enqueue{Now: 1, Messages: []queue.Message{{Ref: ref}}},
		res: queue.Result{Outcomes: []queue.Outcome{queue.OutcomeEnqueued}}}
	deliver := func(c queue.ConsumerID, id uint64) *simRecord {
		return &simRecord{cmd: &queue.Tick{Now: 2}, effects: []queue.Effect{{Kind: queue.EffectDeliver, Consumer: c, DeliveryID: id, Ref: ref}}}
	}
	dl := func(reason queue.Reason) *simRecord {
		return &simRecord{cmd: &queue.Tick{Now: 3}, effects: []queue.Effect{{Kind: queue.EffectDeadLetter, Ref: ref, Reason: reason}}}
	}
	for _, tc := range []struct {
		name string
		hist []*simRecord
		want string
	}{
		{"two consumers at once", []*simRecord{enq, deliver(c1, 1), deliver(c2, 1)}, "another consumer holds it"},
		{"rejected without a reject", []*simRecord{enq, dl(queue.ReasonRejected)}, "no reject returned it"},
		{"delivery limit not reached", []*simRecord{enq, dl(queue.ReasonDeliveryLimit)}, "failed attempts"},
		{"expired before its ttl", []*simRecord{enq, dl(queue.ReasonExpired)}, "dead-lettered as expired"},
		{"acked then dead-lettered", []*simRecord{enq, deliver(c1, 1),
			{cmd: &queue.Settle{Now: 2, Consumer: c1, DeliveryIDs: []uint64{1}}}, dl(queue.ReasonExpired)}, "after it was acked"},
		{"reject not dead-lettered", []*simRecord{enq, deliver(c1, 1),
			{cmd: &queue.Return{Now: 2, Consumer: c1, DeliveryIDs: []uint64{1}}}}, "not dead-lettered"},
	} {
		m := newModel()
		var err error
		for i, r := range tc.hist {
			if err = m.apply(uint64(i+1), r); err != nil {
				break
			}
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: checker said %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
	s := &queueSim{t: t, hist: map[uint64]*simRecord{1: enq}, model: newModel(), modelNext: 1,
		confirmed: map[queue.Ref]string{ref: "m"}, nodes: nil}
	s.advanceModelTo(1)
	if err := s.check(); err == nil || !strings.Contains(err.Error(), "lost") {
		t.Errorf("a confirmed message never settled: checker said %v, want lost", err)
	}
}

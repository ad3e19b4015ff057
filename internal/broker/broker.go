package broker

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"path"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferry-mq/ferry/internal/auth"
	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/base/vfs"
	"github.com/ferry-mq/ferry/internal/controller"
	"github.com/ferry-mq/ferry/internal/replication"
	"github.com/ferry-mq/ferry/internal/storage/meta"
)

// NodeID names a node of the cluster (the replication engine's id).
type NodeID = replication.NodeID

// GroupID names a Raft group (the replication engine's id).
type GroupID = replication.GroupID

// Peer is one node of the initial cluster.
type Peer struct {
	ID NodeID
	// RaftAddr is the node's inter-node (Raft) address, host:port.
	RaftAddr string
	// ForwardAddr is where the node serves calls forwarded by other nodes
	// (see forward.go), host:port.
	ForwardAddr string
}

// Config configures a Broker. Zero values take the defaults named.
type Config struct {
	NodeID NodeID
	// Dir is the node's data directory on FS: logs/, meta/, raft/.
	Dir    string
	FS     vfs.FS     // default vfs.Default
	Clock  base.Clock // default base.RealClock
	Logger *slog.Logger
	// Abort stops the process when the disk fails while Open recovers the
	// metadata store, which cannot be answered with an error
	// (meta.Options.Abort); nil panics.
	Abort func(err error)

	// Peers are the initial members of the cluster, this node included.
	// Empty means a cluster of this node alone. Every initial node must be
	// given the same list.
	Peers []Peer
	// RaftListener and ForwardListener, when set, are used instead of
	// listening on this node's Peer addresses (tests pass listeners on
	// port 0); otherwise Listen opens them (default net.Listen). Dial
	// replaces net.Dialer for both.
	RaftListener    net.Listener
	ForwardListener net.Listener
	Listen          func(network, addr string) (net.Listener, error)
	Dial            func(ctx context.Context, network, addr string) (net.Conn, error)

	// Engine tuning (replication.Config): defaults as there.
	// ProposalGather < 0 suits a clock moved only by hand (tests).
	TickInterval    time.Duration
	ProposalGather  time.Duration
	ElectionTicks   int
	Loops           int
	SnapshotEntries uint64
	// SegmentBytes is the segment size of every log but a stream
	// partition's, which takes its stream's segment.bytes (default
	// base.GroupSegmentBytesDefault); it grows with a log's length up to
	// base.SegmentBytesDefault (seglog.Options.SegmentBytesGrowTo).
	SegmentBytes int64

	// LeaderPollInterval is how often the node checks which of its groups
	// it leads (default BrokerLeaderPollIntervalDefault); see DESIGN.md
	// "Leadership".
	LeaderPollInterval time.Duration
	// ReconcileInterval is the period of the reconciler's pass besides the
	// passes every controller change triggers (default
	// BrokerReconcileIntervalDefault).
	ReconcileInterval time.Duration
	// RetentionInterval is how often a stream partition's leader applies
	// retention (default BrokerRetentionIntervalDefault).
	RetentionInterval time.Duration
	// RelocateInterval is how often a queue's leader checks whether old
	// messages hold much of its log, and RelocateFreeBytes how much log a
	// relocation must free (defaults BrokerRelocateIntervalDefault and
	// BrokerRelocateFreeBytesDefault); see relocate.go.
	RelocateInterval  time.Duration
	RelocateFreeBytes int64
	// GroupTickInterval is how often a coordinator's leader lets time pass
	// for session timeouts and rebalance deadlines (default
	// BrokerGroupTickIntervalDefault).
	GroupTickInterval time.Duration
	// OperatorDeleteWait bounds how long an administrator's delete of
	// another connection's exclusive queue waits for the queue's group
	// before it deletes the queue without it (default
	// BrokerOperatorDeleteWaitDefault); see Conn.DeleteQueueAsOperator.
	OperatorDeleteWait time.Duration
	// DownNodeRelease is how long a peer must have been unheard before
	// the controller's leader deletes the exclusive queues of that node's
	// connections (default BrokerDownNodeReleaseDefault); see
	// releaseDownNodes.
	DownNodeRelease time.Duration
	// MetadataSpreadWait bounds how long a topology or admin change waits
	// for the other nodes to apply it (default
	// BrokerMetadataSpreadWaitMax); see spreadController.
	MetadataSpreadWait time.Duration

	// CoordinatorGroups is the number of consumer-group coordinator groups
	// created at bootstrap (default 1).
	CoordinatorGroups int
	// NoGuest skips creating the user guest at bootstrap.
	NoGuest bool
	// GuestCredentials, when set, are guest's stored credentials at
	// bootstrap instead of ones derived from the password "guest" with
	// fresh salts (an argon2id evaluation: tests reuse one).
	GuestCredentials *auth.Credentials
	// Directory configures authentication (loopback users, SCRAM decoy).
	Directory auth.DirectoryOptions

	// Flow control; see flow.go.
	Flow FlowConfig

	// DeliveryCacheBytes bounds the cache of recently enqueued batches
	// (default and maximum BrokerDeliveryCacheBytes).
	DeliveryCacheBytes int
	// TraceEvents bounds the message-history store (default and maximum
	// BrokerTraceEventsMax).
	TraceEvents int
}

func (c *Config) setDefaults() error {
	if c.NodeID == 0 {
		return base.Errorf(base.CodeInvalidArgument, "broker: Config.NodeID is 0")
	}
	if c.Dir == "" {
		return base.Errorf(base.CodeInvalidArgument, "broker: Config.Dir is empty")
	}
	if c.FS == nil {
		c.FS = vfs.Default
	}
	if c.Clock == nil {
		c.Clock = base.RealClock{}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.LeaderPollInterval, base.BrokerLeaderPollIntervalDefault)
	def(&c.ReconcileInterval, base.BrokerReconcileIntervalDefault)
	def(&c.OperatorDeleteWait, base.BrokerOperatorDeleteWaitDefault)
	def(&c.DownNodeRelease, base.BrokerDownNodeReleaseDefault)
	def(&c.MetadataSpreadWait, base.BrokerMetadataSpreadWaitMax)
	def(&c.RetentionInterval, base.BrokerRetentionIntervalDefault)
	def(&c.GroupTickInterval, base.BrokerGroupTickIntervalDefault)
	def(&c.RelocateInterval, base.BrokerRelocateIntervalDefault)
	if c.RelocateFreeBytes <= 0 {
		c.RelocateFreeBytes = base.BrokerRelocateFreeBytesDefault
	}
	if c.SegmentBytes == 0 {
		c.SegmentBytes = base.GroupSegmentBytesDefault
	}
	if c.DeliveryCacheBytes <= 0 || c.DeliveryCacheBytes > base.BrokerDeliveryCacheBytes {
		c.DeliveryCacheBytes = base.BrokerDeliveryCacheBytes
	}
	if c.TraceEvents <= 0 || c.TraceEvents > base.BrokerTraceEventsMax {
		c.TraceEvents = base.BrokerTraceEventsMax
	}
	if len(c.Peers) == 0 {
		c.Peers = []Peer{{ID: c.NodeID}}
	}
	found := false
	for _, p := range c.Peers {
		found = found || p.ID == c.NodeID
	}
	if !found {
		return base.Errorf(base.CodeInvalidArgument, "broker: node %d is not among the peers", c.NodeID)
	}
	return c.Flow.setDefaults()
}

// Broker is one node's data plane. See doc.go.
type Broker struct {
	cfg   Config
	clock base.Clock
	log   *slog.Logger
	node  NodeID
	// boot is unique per start of the node: connection owners carry it,
	// so consumers of a previous run are never mistaken for live ones.
	boot string
	// laneIDs is the last publish lane id handed out (newLaneID). It
	// starts at random, so that the lanes of another start of this node,
	// or of another node, do not share ids, which would make a queue take
	// a lane's new messages for another's resends.
	laneIDs atomic.Uint64

	meta      *meta.Store
	logs      *groupLogs
	engine    *replication.Engine
	transport *replication.TCPTransport
	peers     *peerWatch // the transport's handler: which peers are down
	ctrl      *controllerFSM
	cache     *batchCache
	flow      *flowControl
	trace     *traceStore
	fwd       *forwarder

	mu      sync.Mutex
	groups  map[GroupID]*localGroup // guarded by mu: the groups open here
	conns   map[string]*Conn        // guarded by mu: by owner id
	closing bool                    // guarded by mu

	connSeq atomic.Uint64
	reqSeq  atomic.Uint64
	ready   base.Broadcast // signalled when groups open and leader runtimes start or stop
	// clusterIDLearned is set, by the engine loop applying the controller,
	// once the transport and the metadata store have the cluster's id
	// (learnClusterID).
	clusterIDLearned atomic.Bool
	// activity is signalled after every queue apply and dispatch pass,
	// for whoever waits for a queue's state to move (tests, stats pollers).
	activity base.Broadcast

	reconcileKick chan struct{} // size one: one pending pass is enough
	leaderKick    chan struct{} // size one
	// bctx is cancelled by Close: the context of work the broker does on
	// its own behalf; stop is its Done channel.
	bctx    context.Context
	bcancel context.CancelFunc
	stop    <-chan struct{}
	wg      sync.WaitGroup
}

// Open starts a node: it opens the stores, starts the Raft engine and the
// transport, opens the controller group (bootstrapping a fresh cluster)
// and then every group the controller places here. It returns once the
// node is running; the controller may still be electing a leader.
func Open(cfg Config) (*Broker, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	var seed [6 + 8]byte // the boot id, then the first lane id
	if _, err := crand.Read(seed[:]); err != nil {
		return nil, fmt.Errorf("broker: drawing the boot id: %w", err)
	}
	b := &Broker{
		cfg: cfg, clock: cfg.Clock, log: cfg.Logger.With("node", cfg.NodeID), node: cfg.NodeID,
		boot:          fmt.Sprintf("%d.%s", cfg.NodeID, hex.EncodeToString(seed[:6])),
		peers:         &peerWatch{clock: cfg.Clock, since: map[NodeID]time.Time{}},
		groups:        map[GroupID]*localGroup{},
		conns:         map[string]*Conn{},
		cache:         newBatchCache(cfg.DeliveryCacheBytes),
		trace:         newTraceStore(cfg.TraceEvents),
		reconcileKick: make(chan struct{}, 1),
		leaderKick:    make(chan struct{}, 1),
	}
	b.laneIDs.Store(binary.BigEndian.Uint64(seed[6:]))
	b.bctx, b.bcancel = context.WithCancel(context.Background())
	b.stop = b.bctx.Done()
	b.trace.clock, b.trace.node = b.clock, b.node
	if err := b.openStores(); err != nil {
		return nil, err
	}
	if err := b.startEngine(); err != nil {
		b.meta.Close()
		return nil, err
	}
	b.flow = newFlowControl(&b.cfg.Flow, b.clock, b.log)
	b.fwd = newForwarder(b)
	b.ctrl = newControllerFSM(b)
	voters := make([]NodeID, len(cfg.Peers))
	for i, p := range cfg.Peers {
		voters[i] = p.ID
	}
	if err := b.engine.OpenGroup(controllerGroup, b.ctrl, voters); err != nil {
		b.shutdownEngine()
		return nil, fmt.Errorf("broker: opening the controller group: %w", err)
	}
	b.groups[controllerGroup] = &localGroup{id: controllerGroup, kind: kindController, fsm: b.ctrl}
	// Peers' calls are served only now: they read the controller and the
	// groups set up above.
	if err := b.fwd.start(); err != nil {
		b.shutdownEngine()
		return nil, err
	}
	b.spawn(b.runFlow)
	b.spawn(b.leaderLoop)
	b.spawn(b.reconcileLoop)
	b.spawn(b.bootstrapLoop)
	b.spawn(b.releaseDownNodes)
	return b, nil
}

// controllerGroup is the metadata group's id.
const controllerGroup = GroupID(controller.ControllerGroup)

func (b *Broker) openStores() error {
	if err := b.cfg.FS.MkdirAll(b.cfg.Dir, 0o755); err != nil {
		return base.Errorf(base.CodeStorageFailed, "broker: creating %s: %w", b.cfg.Dir, err)
	}
	st, err := meta.Open(meta.Options{FS: b.cfg.FS, Dir: path.Join(b.cfg.Dir, "meta"), Logger: b.cfg.Logger, Abort: b.cfg.Abort})
	if err != nil {
		return fmt.Errorf("broker: opening the metadata store: %w", err)
	}
	b.meta = st
	b.logs = newGroupLogs(&replication.SegmentLogs{FS: b.cfg.FS, Dir: path.Join(b.cfg.Dir, "logs"),
		Clock: b.clock, Logger: b.cfg.Logger, SegmentBytes: b.cfg.SegmentBytes, SegmentBytesGrowTo: base.SegmentBytesDefault,
		RemoveInBackground: true})
	return nil
}

func (b *Broker) startEngine() error {
	var tr replication.Transport
	if len(b.cfg.Peers) > 1 {
		t, err := b.newTransport()
		if err != nil {
			return err
		}
		b.transport, tr = t, t
	}
	eng, err := replication.New(replication.Config{
		NodeID: b.node, Clock: b.clock, FS: b.cfg.FS, Dir: path.Join(b.cfg.Dir, "raft"),
		Logs: b.logs, State: replication.MetaState{Store: b.meta}, Transport: tr,
		Address: b.raftAddr, Loops: b.cfg.Loops, TickInterval: b.cfg.TickInterval, ProposalGather: b.cfg.ProposalGather,
		ElectionTicks: b.cfg.ElectionTicks, SnapshotEntries: b.cfg.SnapshotEntries, Logger: b.cfg.Logger,
	})
	if err != nil {
		return err
	}
	b.engine = eng
	if b.transport != nil {
		b.peers.Handler = eng
		// A peer that stopped answering the transport's heartbeats (a
		// crash the kernel did not report, a frozen process, a stalled
		// disk under its loop) keeps its forwarding connection open: the
		// calls waiting there fail now, so that a lane sends them to the
		// group's next leader instead of waiting for that node to return.
		b.peers.onDown = func(n NodeID) { b.spawn(func() { b.fwd.peerDown(n) }) }
		if err := b.transport.Start(b.peers); err != nil {
			return err
		}
	}
	eng.Start()
	return nil
}

func (b *Broker) newTransport() (*replication.TCPTransport, error) {
	self := b.peer(b.node)
	stored, err := b.storedClusterID()
	if err != nil {
		return nil, fmt.Errorf("broker: reading the cluster id: %w", err)
	}
	listen := b.listen
	if b.cfg.RaftListener != nil {
		ln := b.cfg.RaftListener
		listen = func(string, string) (net.Listener, error) { return ln, nil }
	}
	return replication.NewTCPTransport(replication.TCPConfig{
		NodeID: b.node, ClusterID: transportClusterID(stored), Addr: self.RaftAddr, Listen: listen, Dial: b.cfg.Dial, Clock: b.clock,
		Resolve: func(n NodeID) (string, bool) {
			p := b.peer(n)
			return p.RaftAddr, p.RaftAddr != ""
		},
		Logger: b.cfg.Logger,
	})
}

// listen opens a listener with Config.Listen, or net.Listen.
func (b *Broker) listen(network, addr string) (net.Listener, error) {
	if b.cfg.Listen != nil {
		return b.cfg.Listen(network, addr)
	}
	return net.Listen(network, addr)
}

// peer returns the configured peer n (zero when unknown).
func (b *Broker) peer(n NodeID) Peer {
	for _, p := range b.cfg.Peers {
		if p.ID == n {
			return p
		}
	}
	return Peer{}
}

func (b *Broker) raftAddr(n NodeID) string { return b.peer(n).RaftAddr }

// spawn runs f on a goroutine owned by the broker: Close stops it (through
// b.stop) and waits for it. Once Close has begun it runs nothing and
// returns false.
func (b *Broker) spawn(f func()) bool {
	b.mu.Lock()
	if b.closing {
		b.mu.Unlock()
		return false
	}
	b.wg.Add(1)
	b.mu.Unlock()
	go func() {
		defer b.wg.Done()
		f()
	}()
	return true
}

// Close stops the node: connections are closed (their consumers get
// cancelled with CodeStopped), leader runtimes stop, the engine and the
// stores close. Everything confirmed before is durable. It returns the
// error that made the engine fail-stop, if any.
func (b *Broker) Close() error {
	b.mu.Lock()
	if b.closing {
		b.mu.Unlock()
		return nil
	}
	b.closing = true
	conns := make([]*Conn, 0, len(b.conns))
	for _, c := range b.conns {
		conns = append(conns, c)
	}
	b.mu.Unlock()
	for _, c := range conns {
		c.shutdown(base.Errorf(base.CodeStopped, "broker: node %d is stopping", b.node))
	}
	b.bcancel()
	b.wg.Wait()
	b.mu.Lock()
	groups := make([]*localGroup, 0, len(b.groups))
	for _, g := range b.groups {
		groups = append(groups, g)
	}
	b.mu.Unlock()
	for _, g := range groups {
		g.stopLeader()
	}
	b.fwd.stop()
	err := b.shutdownEngine()
	if cerr := b.meta.Close(); err == nil && cerr != nil && !errors.Is(cerr, &base.Error{Code: base.CodeStorageFailed}) {
		err = cerr
	}
	return err
}

func (b *Broker) shutdownEngine() error {
	err := b.engine.Stop()
	if b.transport != nil {
		b.transport.Stop()
	}
	return err
}

// Err returns the storage error that stopped the node, if any.
func (b *Broker) Err() error { return b.engine.Err() }

// NodeID returns this node's id.
func (b *Broker) NodeID() NodeID { return b.node }

// stopped reports whether Close has begun.
func (b *Broker) stopped() bool {
	select {
	case <-b.stop:
		return true
	default:
		return false
	}
}

func kick(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// nowMs is the time the broker stamps on commands it proposes.
func (b *Broker) nowMs() int64 { return b.clock.Now().UnixMilli() }

// bootstrapLoop makes a fresh cluster's controller bootstrapped: the
// lowest initial node proposes Bootstrap once it leads the controller
// group. Any node may do it (the command is refused once done), so a
// leader other than the lowest proposes it too. It wakes when the
// controller changes, when leadership changes, and every
// LeaderPollInterval.
func (b *Broker) bootstrapLoop() {
	t := b.clock.NewTimer(b.cfg.LeaderPollInterval)
	defer t.Stop()
	for {
		// Taken before the checks, so that a change between a check and
		// the wait is not missed: the controller's election on a fake
		// clock has nothing else to wake this loop.
		changed, moved := b.ctrl.changed(), b.engine.LeadershipChanged()
		if b.ctrl.bootstrapped() {
			kick(b.reconcileKick)
			b.releaseEarlierRuns()
			return
		}
		if st, err := b.engine.Status(controllerGroup); err == nil && st.IsLeader {
			if err := b.proposeBootstrap(); err != nil && !b.stopped() {
				b.log.Warn("bootstrap failed; retrying", "err", err)
			}
			continue
		}
		select {
		case <-b.stop:
			return
		case <-t.C():
			t.Reset(b.cfg.LeaderPollInterval)
		case <-changed:
		case <-moved:
		}
	}
}

func (b *Broker) proposeBootstrap() error {
	// A replayed log may already hold the Bootstrap: read it first.
	if _, err := b.engine.ReadIndex(b.ctx(), controllerGroup); err != nil {
		return err
	}
	if b.ctrl.bootstrapped() {
		return nil
	}
	cmd := &controller.Bootstrap{Now: b.nowMs(), CoordinatorGroups: b.cfg.CoordinatorGroups, ClusterID: newClusterID()}
	for _, p := range b.cfg.Peers {
		cmd.Nodes = append(cmd.Nodes, controller.Node{ID: controller.NodeID(p.ID), Addr: nodeAddr(p)})
	}
	if !b.cfg.NoGuest {
		cmd.Guest = b.cfg.GuestCredentials
		if cmd.Guest == nil {
			creds, err := newCredentials("guest")
			if err != nil {
				return err
			}
			cmd.Guest = &creds
		}
	}
	res, err := b.proposeController(b.ctx(), cmd)
	if err == nil {
		err = res.Err
	}
	if base.CodeOf(err) == base.CodePreconditionFailed {
		return nil // already bootstrapped
	}
	return err
}

// releaseEarlierRuns deletes the exclusive queues that connections of
// this node's earlier runs declared: a run that ended without releasing
// them (a crash, a kill, a shutdown without quorum) left them locked to
// owners that are gone, so that no client could use or delete them. An
// owner is "<node>.<boot id>/..." (OpenConnection): this node's with
// another boot id than this run's are gone. Their consumers' deliveries
// are returned by the queues' leaders (queueLeader.takeOver).
func (b *Broker) releaseEarlierRuns() {
	ctx := b.ctx()
	// The controller as of now, not as far as this replica replayed.
	err := b.untilLed(ctx, func() error {
		_, err := b.engine.ReadIndex(ctx, controllerGroup)
		return err
	})
	if err != nil {
		return
	}
	node := fmt.Sprintf("%d.", b.node)
	b.releaseOwners(ctx, "an earlier run's connection", func(owner string) bool {
		return strings.HasPrefix(owner, node) && !strings.HasPrefix(owner, b.boot+"/")
	})
}

// releaseOwners proposes ConnectionClosed for every owner of an exclusive
// queue that gone reports gone, which deletes their exclusive queues; who
// names them in the log. It reports whether every proposal succeeded.
func (b *Broker) releaseOwners(ctx context.Context, who string, gone func(owner string) bool) (ok bool) {
	ok = true
	owners := map[string]bool{}
	b.ctrl.read(func(c *controller.Controller) {
		for _, t := range c.Tenants() {
			for _, q := range c.Queues(t, controller.ListFilter{}) {
				if q.Exclusive && gone(q.Owner) {
					owners[q.Owner] = true
				}
			}
		}
	})
	for _, owner := range slices.Sorted(maps.Keys(owners)) {
		err := b.untilLed(ctx, func() error {
			res, err := b.proposeController(ctx, &controller.ConnectionClosed{Now: b.nowMs(), Owner: owner})
			if err == nil {
				err = res.Err
			}
			return err
		})
		if err != nil && !b.stopped() {
			b.log.Warn("deleting the exclusive queues of "+who+" failed", "owner", owner, "err", err)
			ok = false
		}
	}
	return ok
}

func nodeAddr(p Peer) string {
	if p.RaftAddr != "" {
		return p.RaftAddr
	}
	return fmt.Sprintf("node-%d:7946", p.ID)
}

// newCredentials derives stored credentials for password with fresh salts.
func newCredentials(password string) (auth.Credentials, error) {
	salts := auth.Salts{Argon2: make([]byte, 16), ScramSHA256: make([]byte, 16), ScramSHA512: make([]byte, 16)}
	for _, s := range [][]byte{salts.Argon2, salts.ScramSHA256, salts.ScramSHA512} {
		if _, err := crand.Read(s); err != nil {
			return auth.Credentials{}, err
		}
	}
	return auth.NewCredentials(password, salts)
}

// ctx returns a context cancelled when the broker closes, for work the
// broker does on its own behalf.
func (b *Broker) ctx() context.Context { return b.bctx }

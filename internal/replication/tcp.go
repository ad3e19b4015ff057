package replication

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferry-mq/ferry/internal/base"
)

// TCPConfig configures a TCPTransport.
type TCPConfig struct {
	NodeID NodeID
	// ClusterID is the id of the cluster this node belongs to, 0 while it
	// does not know it (a node's first start, before the cluster's
	// bootstrap reaches it); SetClusterID sets it later. Two nodes that
	// both know their cluster's id and disagree refuse each other's
	// connections; a node that does not know it yet accepts any peer and
	// is accepted by any (it may be joining for the first time).
	ClusterID uint64
	// Addr is the address to listen on (host:port).
	Addr string
	// Resolve returns a peer's address. Only the lower of two node ids
	// dials (DESIGN.md "Transport"), so a node needs the addresses of the
	// peers above it.
	Resolve func(NodeID) (string, bool)
	// Listen and Dial replace the network in tests; nil means net.Listen
	// and a net.Dialer.
	Listen func(network, addr string) (net.Listener, error)
	Dial   func(ctx context.Context, network, addr string) (net.Conn, error)
	Clock  base.Clock
	// PingInterval is how often each side of a connection sends a
	// node-level heartbeat (default 200ms); a peer not heard from for
	// PeerTimeout (default 1s) is down: its connection is dropped and the
	// handler told, so that groups it led wake up.
	PingInterval time.Duration
	PeerTimeout  time.Duration
	// DialBackoffMin and DialBackoffMax bound the wait between dials to a
	// peer (defaults 50ms and 2s), doubling after each failure.
	DialBackoffMin time.Duration
	DialBackoffMax time.Duration
	// SnapshotAckTimeout is how long a sender waits, after the last chunk,
	// for the receiver to store a snapshot (default 60s).
	SnapshotAckTimeout time.Duration
	Logger             *slog.Logger
}

// TCPTransport is the Transport between nodes: one TCP connection per pair
// of nodes, carrying framed, checksummed batches of many groups' messages,
// node-level pings, and snapshot streams in chunks. Sends never block: each
// peer has a bounded queue (base.TransportQueueBatchesMax batches,
// base.TransportQueueBytesMax bytes), and what does not fit is dropped and
// reported unreachable. Goroutines: an accept loop, a liveness monitor, per
// peer a connection manager with a reader and a writer, and one per
// snapshot stream; Stop stops and waits for all of them.
type TCPTransport struct {
	cfg   TCPConfig
	clock base.Clock
	log   *slog.Logger
	h     Handler
	ln    net.Listener

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	cluster atomic.Uint64 // this node's cluster id; 0: not known yet
	refused atomic.Uint64 // handshakes refused because the clusters differ

	mu    sync.Mutex
	peers map[NodeID]*peer // guarded by mu
}

// NewTCPTransport returns a transport; Start it with the handler.
func NewTCPTransport(cfg TCPConfig) (*TCPTransport, error) {
	if cfg.NodeID == 0 {
		return nil, base.Errorf(base.CodeInvalidArgument, "replication: TCPConfig.NodeID is 0")
	}
	if cfg.Clock == nil {
		cfg.Clock = base.RealClock{}
	}
	if cfg.Listen == nil {
		cfg.Listen = net.Listen
	}
	if cfg.Dial == nil {
		var d net.Dialer
		cfg.Dial = d.DialContext
	}
	if cfg.Resolve == nil {
		cfg.Resolve = func(NodeID) (string, bool) { return "", false }
	}
	defaultDuration(&cfg.PingInterval, 200*time.Millisecond)
	defaultDuration(&cfg.PeerTimeout, time.Second)
	defaultDuration(&cfg.DialBackoffMin, 50*time.Millisecond)
	defaultDuration(&cfg.DialBackoffMax, 2*time.Second)
	defaultDuration(&cfg.SnapshotAckTimeout, time.Minute)
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	t := &TCPTransport{cfg: cfg, clock: cfg.Clock, log: cfg.Logger.With("node", cfg.NodeID),
		ctx: ctx, cancel: cancel, peers: map[NodeID]*peer{}}
	t.cluster.Store(cfg.ClusterID)
	return t, nil
}

// SetClusterID records the id of this node's cluster once it is known
// (TCPConfig.ClusterID), and drops the connections of peers not known to
// be of that cluster: they shake hands again, and those of another are
// refused. (A peer's id is unknown when either side gave none: an
// acceptor answers a dialer that gave none with none, for the versions
// before cluster ids.)
func (t *TCPTransport) SetClusterID(id uint64) {
	t.cluster.Store(id)
	for _, p := range t.peerList() {
		if p.cluster.Load() != id {
			p.closeConn()
		}
	}
}

// Refused returns how many handshakes this node refused, or saw refused,
// because the peer belongs to another cluster.
func (t *TCPTransport) Refused() uint64 { return t.refused.Load() }

// errOtherCluster fails a dial whose handshake showed the peer to be of
// another cluster.
var errOtherCluster = errors.New("handshake refused")

// clustersDiffer reports whether two nodes' cluster ids show that they
// belong to different clusters: both are known and they differ.
func clustersDiffer(a, b uint64) bool { return a != 0 && b != 0 && a != b }

func defaultDuration(d *time.Duration, def time.Duration) {
	if *d <= 0 {
		*d = def
	}
}

// Start listens and starts the transport's goroutines.
func (t *TCPTransport) Start(h Handler) error {
	t.h = h
	ln, err := t.cfg.Listen("tcp", t.cfg.Addr)
	if err != nil {
		return fmt.Errorf("replication: listening on %s: %w", t.cfg.Addr, err)
	}
	t.ln = ln
	t.wg.Add(2)
	go func() {
		defer t.wg.Done()
		t.acceptLoop()
	}()
	go func() {
		defer t.wg.Done()
		t.monitor()
	}()
	return nil
}

// Addr returns the listening address.
func (t *TCPTransport) Addr() net.Addr { return t.ln.Addr() }

// Stop closes the listener and every connection, fails the snapshot
// streams, and waits for every goroutine.
func (t *TCPTransport) Stop() {
	t.cancel()
	if t.ln != nil {
		t.ln.Close()
	}
	for _, p := range t.peerList() {
		p.closeConn()
	}
	t.wg.Wait()
}

// peerList returns the peers known so far, in no particular order.
func (t *TCPTransport) peerList() []*peer {
	t.mu.Lock()
	defer t.mu.Unlock()
	peers := make([]*peer, 0, len(t.peers))
	for _, p := range t.peers {
		peers = append(peers, p)
	}
	return peers
}

// peer returns the peer's state, creating it (and, when this node dials
// it, its connection manager) on first use.
func (t *TCPTransport) peer(id NodeID) *peer {
	t.mu.Lock()
	defer t.mu.Unlock()
	if p := t.peers[id]; p != nil {
		return p
	}
	p := &peer{t: t, id: id, notify: make(chan struct{}, 1), snapCh: make(chan []byte, base.SnapshotChunksBuffered),
		out: map[uint64]*outStream{}, in: map[uint64]*inStream{}}
	p.lastHeard.Store(t.clock.Now().UnixNano())
	t.peers[id] = p
	if t.ctx.Err() == nil && t.cfg.NodeID < id {
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			p.dialLoop()
		}()
	}
	return p
}

// Send implements Transport.
func (t *TCPTransport) Send(to NodeID, b *Batch) {
	if t.ctx.Err() != nil || to == t.cfg.NodeID {
		return
	}
	p := t.peer(to)
	n := batchBytes(b)
	p.mu.Lock()
	if len(p.queue) >= base.TransportQueueBatchesMax || p.queued+n > base.TransportQueueBytesMax {
		p.mu.Unlock()
		t.dropped(to, b)
		return
	}
	p.queue = append(p.queue, b)
	p.queued += n
	p.mu.Unlock()
	p.wake()
}

// dropped reports the groups of a batch that could not be queued.
func (t *TCPTransport) dropped(to NodeID, b *Batch) {
	var groups []GroupID
	for _, m := range b.Messages {
		groups = append(groups, m.Group)
	}
	for _, hb := range b.Heartbeats {
		groups = append(groups, hb.Group)
	}
	slices.Sort(groups)
	if t.h != nil && len(groups) > 0 {
		t.h.ReportUnreachable(to, slices.Compact(groups))
	}
}

// acceptLoop accepts connections from peers with lower ids.
func (t *TCPTransport) acceptLoop() {
	for {
		conn, err := t.ln.Accept()
		if err != nil {
			if t.ctx.Err() == nil {
				t.log.Warn("replication transport: accept failed", "err", err)
			}
			return
		}
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			t.accepted(conn)
		}()
	}
}

func (t *TCPTransport) accepted(conn net.Conn) {
	conn.SetDeadline(t.clock.Now().Add(t.cfg.PeerTimeout))
	hello, err := readHello(conn)
	status := byte(helloOK)
	own := t.cluster.Load()
	switch {
	case err != nil:
		conn.Close()
		return
	case clustersDiffer(hello.cluster, own):
		status = helloWrongCluster
		t.refused.Add(1)
	case hello.to != t.cfg.NodeID:
		status = helloWrongNode
	case hello.from == 0 || hello.from >= t.cfg.NodeID:
		status = helloWrongDirection
	}
	// A dialer that gave no id is answered with none: it may be of a
	// version before cluster ids, which refuses any other answer, and
	// one that does not know its id checks nothing anyway.
	reply := helloMsg{cluster: own, from: t.cfg.NodeID, to: hello.from, status: status}
	if hello.cluster == 0 {
		reply.cluster = 0
	}
	if _, err := conn.Write(reply.encode()); err != nil || status != helloOK {
		conn.Close()
		switch status {
		case helloOK:
		case helloWrongCluster:
			t.log.Warn("replication transport: refused a node of another cluster (is its data directory another cluster's?)",
				"from", hello.from, "its_cluster", hello.cluster, "this_cluster", own)
		default:
			t.log.Warn("replication transport: refused a connection", "from", hello.from, "status", status)
		}
		return
	}
	conn.SetDeadline(time.Time{})
	p := t.peer(hello.from)
	p.cluster.Store(hello.cluster)
	p.serve(conn)
}

// monitor declares peers down that have not been heard from for
// PeerTimeout, drops their connections, and tells the handler once per
// outage.
func (t *TCPTransport) monitor() {
	tick := t.clock.NewTimer(t.cfg.PingInterval)
	defer tick.Stop()
	last := t.clock.Now().UnixNano()
	for {
		select {
		case <-t.ctx.Done():
			return
		case <-tick.C():
		}
		tick.Reset(t.cfg.PingInterval)
		now := t.clock.Now().UnixNano()
		stalled := now-last > int64(t.cfg.PingInterval+t.cfg.PeerTimeout/2)
		last = now
		if stalled {
			// This process did not run for a while (overload, a long GC
			// pause): the silence is ours, not the peers'. Blaming them
			// would wake every group they lead here.
			t.mu.Lock()
			for _, p := range t.peers {
				p.lastHeard.Store(now)
			}
			t.mu.Unlock()
			continue
		}
		t.mu.Lock()
		ids := make([]NodeID, 0, len(t.peers))
		for id := range t.peers {
			ids = append(ids, id)
		}
		t.mu.Unlock()
		slices.Sort(ids)
		for _, id := range ids {
			p := t.peer(id)
			if now-p.lastHeard.Load() > int64(t.cfg.PeerTimeout) && p.down.CompareAndSwap(false, true) {
				p.closeConn()
				if t.h != nil {
					t.h.PeerDown(id)
				}
			}
		}
	}
}

// peer is the state of one remote node: its send queue survives
// reconnections; the connection does not.
type peer struct {
	t      *TCPTransport
	id     NodeID
	notify chan struct{} // size one: a pending wake-up of the writer is enough
	snapCh chan []byte   // encoded snapshot frames; bounded, blocks the stream's goroutine

	lastHeard atomic.Int64 // unix ns of the last frame received
	down      atomic.Bool
	cluster   atomic.Uint64 // the cluster id the peer gave in its last handshake

	mu      sync.Mutex
	queue   []*Batch              // guarded by mu
	queued  int                   // guarded by mu; estimated bytes in queue
	acks    [][]byte              // guarded by mu; snapshot ack frames to send
	conn    net.Conn              // guarded by mu; the current connection
	session chan struct{}         // guarded by mu; closed when the current connection's serve ends
	gen     uint64                // guarded by mu; counts connections
	out     map[uint64]*outStream // guarded by mu
	in      map[uint64]*inStream  // guarded by mu
	streamN uint64                // guarded by mu
}

func (p *peer) wake() {
	select {
	case p.notify <- struct{}{}:
	default:
	}
}

func (p *peer) closeConn() {
	p.mu.Lock()
	c := p.conn
	p.mu.Unlock()
	if c != nil {
		c.Close()
	}
}

// dialLoop keeps a connection to a peer with a higher id, redialling with
// exponential backoff.
func (p *peer) dialLoop() {
	t := p.t
	backoff := t.cfg.DialBackoffMin
	for t.ctx.Err() == nil {
		conn, err := p.dial()
		if err == nil {
			backoff = t.cfg.DialBackoffMin
			p.serve(conn)
			continue
		}
		if errors.Is(err, errOtherCluster) {
			// Not a fault that heals by itself: log it, and ask again
			// only at the longest interval.
			t.log.Warn("replication transport: a peer belongs to another cluster", "peer", p.id, "err", err)
			backoff = t.cfg.DialBackoffMax
		} else {
			t.log.Debug("replication transport: dial failed", "peer", p.id, "err", err)
		}
		timer := t.clock.NewTimer(backoff)
		select {
		case <-t.ctx.Done():
			timer.Stop()
			return
		case <-timer.C():
		}
		backoff = min(2*backoff, t.cfg.DialBackoffMax)
	}
}

func (p *peer) dial() (net.Conn, error) {
	own := p.t.cluster.Load()
	conn, err := p.dialAs(own)
	if errors.Is(err, errClusterUnknownToPeer) {
		// A node of a version before cluster ids refuses any id but 0;
		// it checks nothing, so this pair is no worse off than before.
		conn, err = p.dialAs(0)
	}
	return conn, err
}

// errClusterUnknownToPeer fails a handshake refused for its cluster id by
// a peer that gave none: a version before cluster ids, which wants 0.
var errClusterUnknownToPeer = errors.New("the peer predates cluster ids")

// dialAs connects to the peer and shakes hands presenting cluster.
func (p *peer) dialAs(cluster uint64) (net.Conn, error) {
	t := p.t
	addr, ok := t.cfg.Resolve(p.id)
	if !ok {
		return nil, fmt.Errorf("no address for node %d", p.id)
	}
	ctx, cancel := context.WithTimeout(t.ctx, t.cfg.PeerTimeout)
	defer cancel()
	conn, err := t.cfg.Dial(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	conn.SetDeadline(t.clock.Now().Add(t.cfg.PeerTimeout))
	hello := helloMsg{cluster: cluster, from: t.cfg.NodeID, to: p.id}
	if _, err := conn.Write(hello.encode()); err != nil {
		conn.Close()
		return nil, err
	}
	reply, err := readHello(conn)
	switch {
	case err != nil:
	case reply.status == helloWrongCluster && reply.cluster == 0 && cluster != 0:
		err = errClusterUnknownToPeer
	case reply.status == helloWrongCluster || clustersDiffer(reply.cluster, cluster):
		t.refused.Add(1)
		err = fmt.Errorf("%w: node %d belongs to cluster %d, this node to %d", errOtherCluster, p.id, reply.cluster, t.cluster.Load())
	case reply.status != helloOK || reply.from != p.id || reply.to != t.cfg.NodeID:
		err = fmt.Errorf("handshake refused: status %d, node %d", reply.status, reply.from)
	}
	if err != nil {
		conn.Close()
		return nil, err
	}
	conn.SetDeadline(time.Time{})
	p.cluster.Store(reply.cluster)
	return conn, nil
}

// serve runs one connection until it fails: a reader goroutine, and the
// writer in this one. It returns when both are done.
func (p *peer) serve(conn net.Conn) {
	t := p.t
	// One connection at a time: a newer one replaces the old, whose
	// goroutines must be gone before the new writer takes the queue.
	p.mu.Lock()
	for p.session != nil {
		old, wait := p.conn, p.session
		p.mu.Unlock()
		if old != nil {
			old.Close()
		}
		<-wait
		p.mu.Lock()
	}
	p.conn = conn
	p.gen++
	gen := p.gen
	session := make(chan struct{})
	p.session = session
	p.mu.Unlock()
	p.lastHeard.Store(t.clock.Now().UnixNano())
	p.down.Store(false)
	// A SetClusterID since the handshake closes only connections already
	// installed: this one is checked again now that it is.
	if t.ctx.Err() != nil || clustersDiffer(p.cluster.Load(), t.cluster.Load()) {
		conn.Close()
	}
	done := make(chan struct{})
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		defer close(done)
		p.readLoop(conn, gen)
	}()
	p.writeLoop(conn, done)
	conn.Close()
	<-done
	p.failStreams(gen)
	p.mu.Lock()
	p.conn, p.session = nil, nil
	p.mu.Unlock()
	close(session)
}

func (p *peer) writeLoop(conn net.Conn, readerDone <-chan struct{}) {
	t := p.t
	ping := t.clock.NewTimer(0)
	defer ping.Stop()
	var seq uint64
	buf := make([]byte, 0, 64<<10)
	for {
		select {
		case <-readerDone:
			return
		case <-t.ctx.Done():
			return
		case <-p.notify:
		case <-ping.C():
			seq++
			buf = appendFrame(buf, framePing, func(b []byte) []byte { return binary.AppendUvarint(b, seq) })
			ping.Reset(t.cfg.PingInterval)
		case frame := <-p.snapCh:
			buf = append(buf, frame...)
		}
		p.mu.Lock()
		queue, acks := p.queue, p.acks
		p.queue, p.acks, p.queued = nil, nil, 0
		p.mu.Unlock()
		for _, a := range acks {
			buf = append(buf, a...)
		}
		for _, b := range queue {
			buf = appendFrame(buf, frameBatch, func(out []byte) []byte { return appendBatch(out, b) })
			if len(buf) >= base.TransportWriteBytesMax {
				if !p.write(conn, &buf) {
					return
				}
			}
		}
		if len(buf) > 0 && !p.write(conn, &buf) {
			return
		}
	}
}

func (p *peer) write(conn net.Conn, buf *[]byte) bool {
	conn.SetWriteDeadline(p.t.clock.Now().Add(p.t.cfg.PeerTimeout))
	_, err := conn.Write(*buf)
	*buf = (*buf)[:0]
	return err == nil
}

func (p *peer) readLoop(conn net.Conn, gen uint64) {
	t := p.t
	r := bufio.NewReaderSize(conn, 64<<10)
	var hdr [frameHeaderBytes]byte
	for {
		typ, payload, err := readFrame(r, &hdr)
		if err != nil {
			if t.ctx.Err() == nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				t.log.Debug("replication transport: connection lost", "peer", p.id, "err", err)
			}
			return
		}
		p.lastHeard.Store(t.clock.Now().UnixNano())
		if p.down.CompareAndSwap(true, false) && t.h != nil {
			t.h.PeerUp(p.id)
		}
		switch typ {
		case frameBatch:
			b, err := decodeBatch(payload, p.id, t.cfg.NodeID)
			if err != nil {
				t.log.Warn("replication transport: bad batch; dropping the connection", "peer", p.id, "err", err)
				return
			}
			if t.h != nil {
				t.h.HandleBatch(p.id, b)
			}
		case framePing:
		case frameSnapChunk:
			if err := p.receiveChunk(payload, gen); err != nil {
				t.log.Warn("replication transport: bad snapshot chunk; dropping the connection", "peer", p.id, "err", err)
				return
			}
		case frameSnapAck:
			p.receiveAck(payload)
		default:
			t.log.Warn("replication transport: unknown frame; dropping the connection", "peer", p.id, "type", typ)
			return
		}
	}
}

// Handshake: both sides send [magic u32][version u16][cluster u64][from
// u64][to u64][status u8][CRC32C u32]; the dialer first.
const (
	helloMagic   = 0x46525250 // "FRRP"
	helloVersion = 1
	helloBytes   = 4 + 2 + 8 + 8 + 8 + 1 + 4
)

const (
	helloOK = iota
	helloWrongCluster
	helloWrongNode
	helloWrongDirection
)

type helloMsg struct {
	cluster, from, to uint64
	status            byte
}

func (h helloMsg) encode() []byte {
	b := make([]byte, 0, helloBytes)
	b = binary.BigEndian.AppendUint32(b, helloMagic)
	b = binary.BigEndian.AppendUint16(b, helloVersion)
	b = binary.BigEndian.AppendUint64(b, h.cluster)
	b = binary.BigEndian.AppendUint64(b, h.from)
	b = binary.BigEndian.AppendUint64(b, h.to)
	b = append(b, h.status)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

func readHello(r io.Reader) (helloMsg, error) {
	var b [helloBytes]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return helloMsg{}, err
	}
	return decodeHello(b[:])
}

func decodeHello(b []byte) (helloMsg, error) {
	if len(b) != helloBytes || binary.BigEndian.Uint32(b) != helloMagic ||
		crc32.Checksum(b[:helloBytes-4], castagnoli) != binary.BigEndian.Uint32(b[helloBytes-4:]) {
		return helloMsg{}, base.Errorf(base.CodeCorrupt, "replication: bad handshake")
	}
	if v := binary.BigEndian.Uint16(b[4:]); v != helloVersion {
		return helloMsg{}, base.Errorf(base.CodeNotSupported, "replication: peer speaks transport version %d, this node %d", v, helloVersion)
	}
	return helloMsg{cluster: binary.BigEndian.Uint64(b[6:]), from: binary.BigEndian.Uint64(b[14:]),
		to: binary.BigEndian.Uint64(b[22:]), status: b[30]}, nil
}

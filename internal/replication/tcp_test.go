package replication

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/base/vfs"
)

// tcpNode is a real-time engine on a TCP transport on loopback.
type tcpNode struct {
	id  NodeID
	e   *Engine
	tr  *TCPTransport
	fsm *listFSM
}

// addrBook resolves node ids to the addresses their transports listen on.
type addrBook struct {
	mu    sync.Mutex
	addrs map[NodeID]string
}

func (a *addrBook) resolve(id NodeID) (string, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	s, ok := a.addrs[id]
	return s, ok
}

func startTCPNodes(t *testing.T, ids []NodeID, cfg func(*Config)) []*tcpNode {
	t.Helper()
	book := &addrBook{addrs: map[NodeID]string{}}
	var nodes []*tcpNode
	for _, id := range ids {
		tr, err := NewTCPTransport(TCPConfig{NodeID: id, ClusterID: 42, Addr: "127.0.0.1:0", Resolve: book.resolve,
			PingInterval: 20 * time.Millisecond, PeerTimeout: 500 * time.Millisecond, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		fs := vfs.NewMem()
		st, err := OpenSimpleState(fs, "/state")
		if err != nil {
			t.Fatal(err)
		}
		c := Config{NodeID: id, FS: fs, Dir: "/", Logs: &SimpleLogs{FS: fs, Dir: "/logs"}, State: st, Transport: tr,
			TickInterval: 10 * time.Millisecond, Logger: quiet}
		if cfg != nil {
			cfg(&c)
		}
		e, err := New(c)
		if err != nil {
			t.Fatal(err)
		}
		if err := tr.Start(e); err != nil {
			t.Fatal(err)
		}
		book.mu.Lock()
		book.addrs[id] = tr.Addr().String()
		book.mu.Unlock()
		e.Start()
		n := &tcpNode{id: id, e: e, tr: tr, fsm: &listFSM{}}
		nodes = append(nodes, n)
		t.Cleanup(func() {
			tr.Stop()
			e.Stop()
			st.Close()
		})
	}
	return nodes
}

// proposeSomewhere proposes cmd to whichever node leads, retrying while
// leadership settles.
func proposeSomewhere(ctx context.Context, nodes []*tcpNode, g GroupID, cmd string) (Result, error) {
	for {
		for _, n := range nodes {
			r, err := n.e.Propose(ctx, g, []byte(cmd))
			if err == nil {
				return r, nil
			}
			if ctx.Err() != nil {
				return r, err
			}
		}
	}
}

func TestTCPThreeNodesReplicateAndStreamSnapshot(t *testing.T) {
	nodes := startTCPNodes(t, []NodeID{1, 2, 3}, func(c *Config) { c.SnapshotEntries = 20 })
	voters := []NodeID{1, 2, 3}
	for _, n := range nodes[:2] {
		if err := n.e.OpenGroup(9, n.fsm, voters); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var want []string
	for i := range 50 {
		cmd := fmt.Sprintf("tcp-%d", i)
		if _, err := proposeSomewhere(ctx, nodes[:2], 9, cmd); err != nil {
			t.Fatalf("proposal %d: %v", i, err)
		}
		want = append(want, cmd)
	}
	// Node 3 joins late: the others compacted their logs, so it must be
	// caught up by a snapshot streamed over TCP.
	if err := nodes[2].e.OpenGroup(9, nodes[2].fsm, voters); err != nil {
		t.Fatal(err)
	}
	if _, err := proposeSomewhere(ctx, nodes[:2], 9, "last"); err != nil {
		t.Fatal(err)
	}
	want = append(want, "last")
	r, err := nodes[2].e.ReadIndex(ctx, 9)
	for err != nil && ctx.Err() == nil {
		r, err = nodes[2].e.ReadIndex(ctx, 9)
	}
	if err != nil {
		t.Fatalf("ReadIndex on the late node: %v", err)
	}
	if got := nodes[2].fsm.datas(); !equalStrings(got, want) {
		t.Errorf("late node applied %q at read index %d, want %q", got, r.Index, want)
	}
	if m := nodes[2].e.Metrics(); m.SnapshotsInstalled == 0 {
		t.Errorf("late node installed no snapshot: %+v", m)
	}
}

// recordingHandler records what a transport delivers.
type recordingHandler struct {
	mu          sync.Mutex
	batches     []*Batch
	unreachable []GroupID
	down        chan NodeID
}

func (h *recordingHandler) HandleBatch(from NodeID, b *Batch) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.batches = append(h.batches, b)
}
func (h *recordingHandler) ReceiveSnapshot(NodeID, io.Reader) error { return nil }
func (h *recordingHandler) ReportUnreachable(to NodeID, groups []GroupID) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.unreachable = append(h.unreachable, groups...)
}
func (h *recordingHandler) PeerUp(NodeID) {}

func (h *recordingHandler) PeerDown(n NodeID) {
	select {
	case h.down <- n:
	default:
	}
}

func TestTCPQueueDropsAndReportsBeyondItsBound(t *testing.T) {
	// Node 1 dials node 2, which never answers: the queue fills.
	tr, err := NewTCPTransport(TCPConfig{NodeID: 1, Addr: "127.0.0.1:0", Logger: quiet,
		Resolve: func(NodeID) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	h := &recordingHandler{down: make(chan NodeID, 1)}
	if err := tr.Start(h); err != nil {
		t.Fatal(err)
	}
	defer tr.Stop()
	for i := range base.TransportQueueBatchesMax {
		tr.Send(2, &Batch{Heartbeats: []Heartbeat{{Group: uint64(i)}}})
	}
	h.mu.Lock()
	got := len(h.unreachable)
	h.mu.Unlock()
	if got != 0 {
		t.Fatalf("%d groups reported unreachable below the bound", got)
	}
	tr.Send(2, &Batch{Heartbeats: []Heartbeat{{Group: 77}}})
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.unreachable) != 1 || h.unreachable[0] != 77 {
		t.Errorf("after the bound: unreachable %v, want [77]", h.unreachable)
	}
}

// signalHandler is a slog.Handler that sends each warning's message on
// warns (when there is room), so that a test waits for a logged event.
type signalHandler struct{ warns chan string }

func (h signalHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (h signalHandler) Handle(_ context.Context, r slog.Record) error {
	select {
	case h.warns <- r.Message:
	default:
	}
	return nil
}
func (h signalHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h signalHandler) WithGroup(string) slog.Handler      { return h }

// pairTimeout bounds each wait of the cluster id tests.
const pairTimeout = 10 * time.Second

// clusterPair is node 1 dialling node 2 over loopback, each transport
// with the cluster id given; node 2's handler forwards what it receives.
type clusterPair struct {
	tr1, tr2     *TCPTransport
	warn1, warn2 chan string
	got2         chan *Batch
	h1           *recordingHandler
}

type forwardingHandler struct {
	recordingHandler
	got chan *Batch
}

func (h *forwardingHandler) HandleBatch(_ NodeID, b *Batch) {
	select {
	case h.got <- b:
	default:
	}
}

func newClusterPair(t *testing.T, c1, c2 uint64) *clusterPair {
	t.Helper()
	cp := &clusterPair{warn1: make(chan string, 16), warn2: make(chan string, 16), got2: make(chan *Batch, 16),
		h1: &recordingHandler{down: make(chan NodeID, 1)}}
	book := &addrBook{addrs: map[NodeID]string{}}
	start := func(id NodeID, cluster uint64, warns chan string, h Handler) *TCPTransport {
		tr, err := NewTCPTransport(TCPConfig{NodeID: id, ClusterID: cluster, Addr: "127.0.0.1:0", Resolve: book.resolve,
			Logger: slog.New(signalHandler{warns}), DialBackoffMin: time.Millisecond, DialBackoffMax: 10 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if err := tr.Start(h); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(tr.Stop)
		book.mu.Lock()
		book.addrs[id] = tr.Addr().String()
		book.mu.Unlock()
		return tr
	}
	cp.tr2 = start(2, c2, cp.warn2, &forwardingHandler{got: cp.got2})
	cp.tr1 = start(1, c1, cp.warn1, cp.h1)
	return cp
}

// delivered sends a batch from node 1 and waits for node 2 to receive it.
func (cp *clusterPair) delivered(t *testing.T) {
	t.Helper()
	cp.tr1.Send(2, &Batch{Heartbeats: []Heartbeat{{Group: 1}}})
	select {
	case <-cp.got2:
	case w := <-cp.warn1:
		t.Fatalf("node 1 warned %q instead of delivering", w)
	case w := <-cp.warn2:
		t.Fatalf("node 2 warned %q instead of receiving", w)
	case <-time.After(pairTimeout):
		t.Fatal("batch never delivered")
	}
}

// refused waits for both nodes to log that the other is of another
// cluster, and checks that both counted it.
func (cp *clusterPair) refused(t *testing.T) {
	t.Helper()
	for _, w := range []chan string{cp.warn1, cp.warn2} {
		select {
		case msg := <-w:
			if !strings.Contains(msg, "another cluster") {
				t.Errorf("warning %q, want one about another cluster", msg)
			}
		case <-time.After(pairTimeout):
			t.Fatal("no refusal logged")
		}
	}
	if cp.tr1.Refused() == 0 || cp.tr2.Refused() == 0 {
		t.Errorf("refusals counted: dialer %d, acceptor %d; want both above 0", cp.tr1.Refused(), cp.tr2.Refused())
	}
}

func TestTCPConnectsUnlessBothNodesKnowDifferentClusters(t *testing.T) {
	for _, c := range []struct {
		dialer, acceptor uint64
		connects         bool
	}{
		{0, 0, true}, // both starting for the first time
		{0, 7, true}, // the dialer joins a cluster it does not know yet
		{7, 0, true}, // the acceptor does
		{7, 7, true},
		{7, 8, false},
	} {
		t.Run(fmt.Sprintf("%d-%d", c.dialer, c.acceptor), func(t *testing.T) {
			cp := newClusterPair(t, c.dialer, c.acceptor)
			if !c.connects {
				cp.tr1.Send(2, &Batch{Heartbeats: []Heartbeat{{Group: 1}}})
				cp.refused(t)
				select {
				case <-cp.got2:
					t.Error("a node of cluster 8 received a batch from cluster 7")
				default:
				}
				return
			}
			cp.delivered(t)
			if cp.tr1.Refused()+cp.tr2.Refused() != 0 {
				t.Errorf("refusals counted: %d and %d, want none", cp.tr1.Refused(), cp.tr2.Refused())
			}
		})
	}
}

func TestTCPLearningTheClusterIDDropsAPeerOfAnother(t *testing.T) {
	cp := newClusterPair(t, 0, 8)
	cp.delivered(t)
	cp.tr1.SetClusterID(7)
	cp.refused(t)
	select {
	case n := <-cp.h1.down:
		if n != 2 {
			t.Errorf("PeerDown(%d), want 2", n)
		}
	case <-time.After(pairTimeout):
		t.Fatal("the peer of another cluster was never reported down")
	}
}

func TestHandshakeDecodesOnlyWellFormedHellos(t *testing.T) {
	h := helloMsg{cluster: 5, from: 1, to: 2}
	got, err := decodeHello(h.encode())
	if err != nil || got != h {
		t.Fatalf("round trip: got %+v %v, want %+v", got, err, h)
	}
	b := h.encode()
	b[10] ^= 1
	if _, err := decodeHello(b); err == nil {
		t.Errorf("flipped byte accepted")
	}
	var _ net.Conn
}

// A node of a version before cluster ids (sending and wanting 0, and
// refusing any other id) still connects both ways to one that knows its
// cluster's id, so that a rolling upgrade keeps its quorum: the dialer
// that is refused with no id given back dials again presenting none, and
// the acceptor answers a dialer that gave none with none.
func TestTCPANodeThatKnowsItsClusterStillTalksToOneBeforeClusterIDs(t *testing.T) {
	t.Run("dialling it", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		framed := make(chan struct{})
		go func() { // the old node 2: exact equality with its id, 0
			for {
				conn, err := ln.Accept()
				if err != nil {
					return
				}
				hello, err := readHello(conn)
				if err != nil {
					conn.Close()
					continue
				}
				status := byte(helloOK)
				if hello.cluster != 0 {
					status = helloWrongCluster
				}
				conn.Write(helloMsg{cluster: 0, from: 2, to: hello.from, status: status}.encode())
				if status != helloOK {
					conn.Close()
					continue
				}
				var b [1]byte
				if _, err := conn.Read(b[:]); err == nil { // the first frame of an established connection
					close(framed)
				}
				conn.Close()
				return
			}
		}()
		tr, err := NewTCPTransport(TCPConfig{NodeID: 1, ClusterID: 7, Addr: "127.0.0.1:0", Logger: quiet,
			Resolve: func(NodeID) (string, bool) { return ln.Addr().String(), true }})
		if err != nil {
			t.Fatal(err)
		}
		if err := tr.Start(&recordingHandler{down: make(chan NodeID, 1)}); err != nil {
			t.Fatal(err)
		}
		defer tr.Stop()
		tr.Send(2, &Batch{Heartbeats: []Heartbeat{{Group: 1}}})
		select {
		case <-framed:
		case <-time.After(pairTimeout):
			t.Fatal("no connection to the node before cluster ids")
		}
		if tr.Refused() != 0 {
			t.Errorf("%d refusals counted, want none", tr.Refused())
		}
	})
	t.Run("dialled by it", func(t *testing.T) {
		got := make(chan *Batch, 1)
		tr, err := NewTCPTransport(TCPConfig{NodeID: 2, ClusterID: 7, Addr: "127.0.0.1:0", Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		if err := tr.Start(&forwardingHandler{got: got}); err != nil {
			t.Fatal(err)
		}
		defer tr.Stop()
		conn, err := net.Dial("tcp", tr.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := conn.Write(helloMsg{cluster: 0, from: 1, to: 2}.encode()); err != nil {
			t.Fatal(err)
		}
		reply, err := readHello(conn)
		// The old dialer's check: exact equality with its id, 0.
		if err != nil || reply.status != helloOK || reply.cluster != 0 {
			t.Fatalf("reply %+v, %v: want OK and cluster 0, which the old node requires", reply, err)
		}
		if _, err := conn.Write(appendFrame(nil, frameBatch, func(b []byte) []byte {
			return appendBatch(b, &Batch{Heartbeats: []Heartbeat{{Group: 3}}})
		})); err != nil {
			t.Fatal(err)
		}
		select {
		case b := <-got:
			if len(b.Heartbeats) != 1 || b.Heartbeats[0].Group != 3 {
				t.Errorf("received %+v, want one heartbeat of group 3", b)
			}
		case <-time.After(pairTimeout):
			t.Fatal("the batch of the node before cluster ids never arrived")
		}
	})
}

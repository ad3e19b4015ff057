package replication

import (
	"context"
	"fmt"
	"io"
	"net"
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

func TestTCPRefusesAnotherClusterAndReportsPeerDown(t *testing.T) {
	book := &addrBook{addrs: map[NodeID]string{}}
	h2 := &recordingHandler{down: make(chan NodeID, 1)}
	tr2, err := NewTCPTransport(TCPConfig{NodeID: 2, ClusterID: 7, Addr: "127.0.0.1:0", Logger: quiet, Resolve: book.resolve})
	if err != nil {
		t.Fatal(err)
	}
	if err := tr2.Start(h2); err != nil {
		t.Fatal(err)
	}
	defer tr2.Stop()
	book.addrs[2] = tr2.Addr().String()
	h1 := &recordingHandler{down: make(chan NodeID, 1)}
	tr1, err := NewTCPTransport(TCPConfig{NodeID: 1, ClusterID: 8, Addr: "127.0.0.1:0", Logger: quiet, Resolve: book.resolve,
		PingInterval: 10 * time.Millisecond, PeerTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := tr1.Start(h1); err != nil {
		t.Fatal(err)
	}
	defer tr1.Stop()
	tr1.Send(2, &Batch{Heartbeats: []Heartbeat{{Group: 1}}})
	select {
	case n := <-h1.down:
		if n != 2 {
			t.Errorf("PeerDown(%d), want 2", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("peer of another cluster never reported down")
	}
	h2.mu.Lock()
	defer h2.mu.Unlock()
	if len(h2.batches) != 0 {
		t.Errorf("node of cluster 7 accepted %d batches from cluster 8", len(h2.batches))
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

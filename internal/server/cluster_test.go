package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ferry-mq/ferry/internal/admin"
)

// heldPorts are loopback listeners opened on free ports and held until a
// node listens on their address: a port closed before use could be taken
// by another process in between (a client's ephemeral port), and the
// peers list needs the numbers up front.
type heldPorts struct {
	mu  sync.Mutex
	lns map[string]net.Listener
}

func holdPorts(t *testing.T, n int) (*heldPorts, []int) {
	t.Helper()
	h := &heldPorts{lns: map[string]net.Listener{}}
	t.Cleanup(func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		for _, ln := range h.lns {
			ln.Close()
		}
	})
	ports := make([]int, n)
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		h.lns[ln.Addr().String()] = ln
		ports[i] = ln.Addr().(*net.TCPAddr).Port
	}
	return h, ports
}

// listen is a node's Options.Listen: the held listener of addr, once, or
// a new one.
func (h *heldPorts) listen(network, addr string) (net.Listener, error) {
	h.mu.Lock()
	ln := h.lns[addr]
	delete(h.lns, addr)
	h.mu.Unlock()
	if ln != nil {
		return ln, nil
	}
	return net.Listen(network, addr)
}

// startNodes starts n nodes of one cluster on loopback, from one
// cluster.peers list, and waits until every one is ready; tweak sets each
// node's configuration further, given extra free ports the caller asked
// for. It returns the nodes and their Raft addresses. The caller stops
// the nodes, in the order it needs.
func startNodes(t *testing.T, n, extraPorts int, tweak func(i int, cfg *Config, extra []int)) ([]*Server, []string) {
	t.Helper()
	held, ports := holdPorts(t, 2*n+extraPorts)
	var peers, raftAddrs []string
	for i := range n {
		raftAddrs = append(raftAddrs, fmt.Sprintf("127.0.0.1:%d", ports[2*i]))
		peers = append(peers, fmt.Sprintf("%d=%s/127.0.0.1:%d", i+1, raftAddrs[i], ports[2*i+1]))
	}
	nodes := make([]*Server, n)
	for i := range nodes {
		cfg := testConfig(t.TempDir())
		cfg.Node.ID = uint64(i + 1)
		cfg.Cluster.Peers = peers
		tweak(i, &cfg, ports[2*n:])
		opts := testOptions(io.Discard)
		opts.Listen = held.listen
		s, err := Start(cfg, opts)
		if err != nil {
			t.Fatalf("node %d: %v", i+1, err)
		}
		nodes[i] = s
	}
	timeout := time.After(60 * time.Second)
	for i, s := range nodes {
		select {
		case <-s.Ready():
		case <-timeout:
			t.Fatalf("node %d not ready within 60s", i+1)
		}
	}
	return nodes, raftAddrs
}

// TestThreeNodeClusterFromPeersConfig starts three nodes from one
// cluster.peers list and checks that a message published on one node is
// consumed on another: the configuration reaches the broker's peers, Raft
// and forwarding listeners.
func TestThreeNodeClusterFromPeersConfig(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three nodes; skipped with -short")
	}
	var kafkaAddrs []string
	nodes, raftAddrs := startNodes(t, 3, 3, func(i int, cfg *Config, extra []int) {
		if kafkaAddrs == nil {
			for j, port := range extra {
				kafkaAddrs = append(kafkaAddrs, fmt.Sprintf("%d=127.0.0.1:%d", j+1, port))
			}
		}
		cfg.Listeners.Kafka = fmt.Sprintf("127.0.0.1:%d", extra[i])
		cfg.Kafka.PeerAddrs = kafkaAddrs
	})
	for _, s := range nodes {
		defer shutdown(t, s)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c1, err := nodes[0].Connect(ctx, "guest")
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	if err := c1.DeclareQueue(ctx, "replicated"); err != nil {
		t.Fatal(err)
	}
	if err := c1.Publish(ctx, "", "replicated", Message{Body: []byte("across nodes")}); err != nil {
		t.Fatal(err)
	}
	c3, err := nodes[2].Connect(ctx, "guest")
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	d, ok, err := c3.Get(ctx, "replicated")
	if err != nil || !ok || string(d.Body) != "across nodes" {
		t.Fatalf("Get on node 3 = %q, ok=%v, err=%v; want the message published on node 1", d.Body, ok, err)
	}

	// Kafka Metadata from node 1 lists every node at its kafka.peer_addrs
	// address, so a client can reach each partition's leader.
	kafka1, _ := nodes[0].Addr("kafka")
	kc, err := kgo.NewClient(kgo.SeedBrokers(kafka1))
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	resp, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, kc)
	if err != nil {
		t.Fatal(err)
	}
	// One cluster id, drawn at the bootstrap, on every node.
	for i, n := range nodes {
		if id := n.b.ClusterID(); resp.ClusterID == nil || id == "" || *resp.ClusterID != id {
			t.Errorf("node %d's cluster id %q, Metadata from node 1 says %v: want the same, not empty", i+1, id, resp.ClusterID)
		}
	}
	got := map[int32]string{}
	for _, b := range resp.Brokers {
		got[b.NodeID] = fmt.Sprintf("%s:%d", b.Host, b.Port)
	}
	for i := range 3 {
		if want, _ := nodes[i].Addr("kafka"); got[int32(i+1)] != want {
			t.Errorf("Metadata from node 1 lists node %d at %q, want %q (all: %v)", i+1, got[int32(i+1)], want, got)
		}
	}

	// What `ferry cluster status` shows: node 2's API lists the three
	// nodes with their Raft addresses, itself marked.
	httpAddr, _ := nodes[1].Addr("http")
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+httpAddr+"/api/cluster", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("guest", "guest")
	hresp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer hresp.Body.Close()
	var cs admin.ClusterStatus
	if err := json.NewDecoder(hresp.Body).Decode(&cs); err != nil || hresp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/cluster on node 2: %d %v", hresp.StatusCode, err)
	}
	if cs.Self != 2 || len(cs.Nodes) != 3 {
		t.Fatalf("/api/cluster on node 2 = %+v, want self 2 and three nodes", cs)
	}
	for _, n := range cs.Nodes {
		if want := raftAddrs[n.ID-1]; n.RaftAddr != want || n.Self != (n.ID == 2) || n.State == "" {
			t.Errorf("node %d = %+v, want raft address %s, self only for node 2, a state", n.ID, n, want)
		}
	}
}

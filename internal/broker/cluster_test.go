package broker

import (
	"context"
	"fmt"
	"net"
	"reflect"
	"testing"
	"time"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/base/vfs"
)

// cluster is n brokers in one process on loopback TCP (the replication
// transport and the forwarding connections), each on its own MemFS.
type cluster struct {
	t     *testing.T
	peers []Peer
	fs    []*vfs.MemFS
	nodes []*Broker
	raft  []net.Listener
	fwd   []net.Listener
}

func listen(t *testing.T) net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func newCluster(t *testing.T, n int) *cluster {
	cl := &cluster{t: t}
	for i := range n {
		r, f := listen(t), listen(t)
		cl.raft = append(cl.raft, r)
		cl.fwd = append(cl.fwd, f)
		cl.fs = append(cl.fs, vfs.NewMem())
		cl.peers = append(cl.peers, Peer{ID: NodeID(i + 1), RaftAddr: r.Addr().String(), ForwardAddr: f.Addr().String()})
	}
	cl.nodes = make([]*Broker, n)
	for i := range n {
		cl.start(i)
	}
	for _, b := range cl.nodes {
		waitBootstrapped(t, b)
	}
	t.Cleanup(func() {
		for _, b := range cl.nodes {
			if b != nil {
				b.Close()
			}
		}
	})
	return cl
}

func (cl *cluster) start(i int) {
	cfg := Config{NodeID: NodeID(i + 1), Dir: "/data", FS: cl.fs[i], Peers: cl.peers, Logger: quietLog,
		RaftListener: cl.raft[i], ForwardListener: cl.fwd[i], GuestCredentials: guestCreds(cl.t),
		TickInterval: 20 * time.Millisecond, ElectionTicks: 10, LeaderPollInterval: 10 * time.Millisecond,
		Flow: FlowConfig{Disabled: true}}
	b, err := Open(cfg)
	if err != nil {
		cl.t.Fatalf("node %d: Open: %v", i+1, err)
	}
	cl.nodes[i] = b
}

// stop closes node i; restart reopens it on its data with new listeners
// at the same addresses.
func (cl *cluster) stop(i int) {
	if err := cl.nodes[i].Close(); err != nil {
		cl.t.Logf("node %d: Close: %v", i+1, err)
	}
	cl.nodes[i] = nil
}

// leaderOfQueue returns the index of the node leading queue name's group.
func (cl *cluster) leaderOfQueue(name string) int {
	cl.t.Helper()
	lead := -1
	cl.waitFor(func() bool {
		for i, b := range cl.nodes {
			if b == nil {
				continue
			}
			if ent, err := b.lookupQueue("/", name); err == nil && b.queueLeaderOf(ent.group) != nil {
				lead = i
				return true
			}
		}
		return false
	}, "queue "+name+" has no leader")
	return lead
}

// waitFor waits until cond holds, checking it whenever a group or leader
// changes on any running node.
func (cl *cluster) waitFor(cond func() bool, failure string) {
	cl.t.Helper()
	timeout := time.After(testTimeout)
	for {
		cases := []reflect.SelectCase{{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(timeout)}}
		for _, b := range cl.nodes {
			if b != nil {
				cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(b.readyChanged())})
			}
		}
		if cond() {
			return
		}
		if i, _, _ := reflect.Select(cases); i == 0 {
			cl.t.Fatal(failure)
		}
	}
}

func TestClusterForwardsPublishDeclareAndGetAndSurvivesALeaderChange(t *testing.T) {
	if testing.Short() {
		t.Skip("three nodes on loopback")
	}
	cl := newCluster(t, 3)
	ctx := testCtx(t)
	// Declare on every node in turn: at least two are not the
	// controller's leader and forward.
	conns := make([]*Conn, 3)
	for i, b := range cl.nodes {
		conns[i] = guestConn(t, b)
		name := fmt.Sprint("q", i)
		if _, err := conns[i].DeclareQueue(ctx, QueueSpec{Name: name, Durable: true}); err != nil {
			t.Fatalf("node %d: DeclareQueue: %v", i+1, err)
		}
	}
	lead := cl.leaderOfQueue("q0")
	follower := (lead + 1) % 3
	// Publish through a follower and read through the other follower.
	other := (lead + 2) % 3
	for i := range 20 {
		res, err := conns[follower].Publish(ctx, "", []Message{{RoutingKey: "q0", Body: []byte(fmt.Sprint("m", i))}}, PublishOptions{})
		if err != nil || res[0].Err != nil {
			t.Fatalf("publish %d through node %d (leader %d): %v %v", i, follower+1, lead+1, err, res)
		}
	}
	for i := range 10 {
		d, h, ok, err := conns[other].Get(ctx, "q0", false)
		if err != nil || !ok || string(d.Message.Body) != fmt.Sprint("m", i) {
			t.Fatalf("get %d through node %d: %q %v %v", i, other+1, d.Message.Body, ok, err)
		}
		if err := h.Ack(ctx); err != nil {
			t.Fatalf("ack %d through node %d: %v", i, other+1, err)
		}
	}
	// The queue's leader goes away; the others elect a new one and keep
	// every confirmed message.
	cl.stop(lead)
	for i := range 20 {
		res, err := conns[follower].Publish(ctx, "", []Message{{RoutingKey: "q0", Body: []byte(fmt.Sprint("n", i))}}, PublishOptions{})
		if err != nil || res[0].Err != nil {
			t.Fatalf("publish %d after the leader stopped: %v %v", i, err, res)
		}
	}
	var got []string
	for {
		d, _, ok, err := conns[other].Get(ctx, "q0", true)
		if err != nil {
			if base.IsRetriable(err) {
				continue
			}
			t.Fatalf("get after the leader change: %v", err)
		}
		if !ok {
			break
		}
		got = append(got, string(d.Message.Body))
	}
	want := []string{}
	for i := 10; i < 20; i++ {
		want = append(want, fmt.Sprint("m", i))
	}
	for i := range 20 {
		want = append(want, fmt.Sprint("n", i))
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after the leader change the queue holds %v, want %v", got, want)
	}
	_ = context.Background()
}

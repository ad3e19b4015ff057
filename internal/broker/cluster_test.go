package broker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/base/vfs"
	"github.com/ferry-mq/ferry/internal/controller"
	"github.com/ferry-mq/ferry/internal/routing"
)

// cluster is n brokers in one process on loopback TCP (the replication
// transport and the forwarding connections), each on its own MemFS.
type cluster struct {
	t     testing.TB
	peers []Peer
	fs    []*vfs.MemFS
	nodes []*Broker
	raft  []net.Listener
	fwd   []net.Listener
	tweak func(*Config) // applied to every node's configuration, when set
}

func listen(t testing.TB) net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func newCluster(t testing.TB, n int) *cluster { return newClusterWith(t, n, nil) }

// newClusterWith is newCluster with tweak applied to every node's
// configuration.
func newClusterWith(t testing.TB, n int, tweak func(*Config)) *cluster {
	cl := &cluster{t: t, tweak: tweak}
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

// threeNodes is newCluster of three nodes, skipped with -short.
func threeNodes(t *testing.T) *cluster { return threeNodesWith(t, nil) }

// threeNodesWith is threeNodes with tweak applied to every node's
// configuration.
func threeNodesWith(t *testing.T, tweak func(*Config)) *cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("three nodes on loopback")
	}
	return newClusterWith(t, 3, tweak)
}

func (cl *cluster) start(i int) {
	cfg := Config{NodeID: NodeID(i + 1), Dir: "/data", FS: cl.fs[i], Peers: cl.peers, Logger: quietLog,
		RaftListener: cl.raft[i], ForwardListener: cl.fwd[i], GuestCredentials: guestCreds(cl.t),
		TickInterval: 20 * time.Millisecond, ElectionTicks: 10, LeaderPollInterval: 10 * time.Millisecond,
		OperatorDeleteWait: 200 * time.Millisecond, Flow: FlowConfig{Disabled: true}}
	if cl.tweak != nil {
		cl.tweak(&cfg)
	}
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

// restart reopens stopped node i on its data, listening again at its
// addresses.
func (cl *cluster) restart(i int) {
	cl.t.Helper()
	for _, ln := range []*net.Listener{&cl.raft[i], &cl.fwd[i]} {
		again, err := net.Listen("tcp", (*ln).Addr().String())
		if err != nil {
			cl.t.Fatalf("node %d: listening again: %v", i+1, err)
		}
		*ln = again
	}
	cl.start(i)
}

// leaderOfQueue returns the index of the node leading queue name's group.
func (cl *cluster) leaderOfQueue(name string) int {
	cl.t.Helper()
	return cl.leaderWhere("queue "+name, func(b *Broker) bool {
		ent, err := b.lookupQueue("/", name)
		return err == nil && b.queueLeaderOf(ent.group) != nil
	})
}

// leaderWhere waits for a running node that leads (what names it in the
// failure) and returns its index.
func (cl *cluster) leaderWhere(what string, leads func(b *Broker) bool) int {
	cl.t.Helper()
	lead := -1
	cl.waitFor(func() bool {
		for i, b := range cl.nodes {
			if b != nil && leads(b) {
				lead = i
				return true
			}
		}
		return false
	}, what+" has no leader")
	return lead
}

// conns opens a connection as guest to every node.
func (cl *cluster) conns() []*Conn {
	cs := make([]*Conn, len(cl.nodes))
	for i, b := range cl.nodes {
		cs[i] = guestConn(cl.t, b)
	}
	return cs
}

// waitFor waits until cond holds, checking it whenever a group, a leader,
// the controller's state, a peer's reported state or a queue's or
// partition's state (activity) changes on any running node.
func (cl *cluster) waitFor(cond func() bool, failure string) {
	cl.t.Helper()
	timeout := time.After(testTimeout)
	for {
		cases := []reflect.SelectCase{{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(timeout)}}
		for _, b := range cl.nodes {
			if b != nil {
				for _, ch := range []<-chan struct{}{b.readyChanged(), b.ctrl.changed(), b.peers.changes.Changed(), b.activity.Changed()} {
					cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ch)})
				}
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
	cl := threeNodes(t)
	ctx := testCtx(t)
	// Declare on every node in turn: at least two are not the
	// controller's leader and forward.
	conns := cl.conns()
	for i := range conns {
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

// forwardedSetup declares queue name through node 0 and returns the
// index of its leader and of a follower, with a connection on the
// follower through which n messages were published.
func (cl *cluster) forwardedSetup(name string, n int) (lead, follower int, fc *Conn) {
	cl.t.Helper()
	ctx := testCtx(cl.t)
	if _, err := guestConn(cl.t, cl.nodes[0]).DeclareQueue(ctx, QueueSpec{Name: name, Durable: true}); err != nil {
		cl.t.Fatalf("DeclareQueue: %v", err)
	}
	lead = cl.leaderOfQueue(name)
	follower = (lead + 1) % len(cl.nodes)
	fc = guestConn(cl.t, cl.nodes[follower])
	for i := range n {
		publishOne(cl.t, fc, "", name, fmt.Sprint("m", i))
	}
	return lead, follower, fc
}

func TestClusterConsumerOnAFollowerReceivesAndAcksEveryMessage(t *testing.T) {
	cl := threeNodes(t)
	const n = 60
	lead, _, fc := cl.forwardedSetup("fq", n)
	// Prefetch 5: the leader never has more than 5 in flight to the
	// follower, so every message crosses only after earlier acks.
	s, col := subscribe(t, fc, SubscribeOptions{Queue: "fq", Tag: "c", PrefetchCount: 5})
	for i := range n {
		d := col.next(t)
		if got, want := string(d.Message.Body), fmt.Sprint("m", i); got != want || d.Queue != "fq" || d.ConsumerTag != "c" {
			t.Fatalf("delivery %d: %q on %q/%q, want %s on fq/c", i, got, d.Queue, d.ConsumerTag, want)
		}
		if err := s.Ack(d.DeliveryID, false); err != nil {
			t.Fatalf("Ack %d: %v", i, err)
		}
	}
	st := waitStats(t, cl.nodes[lead], "fq", func(st QueueStats) bool { return st.Counters.Acked == n })
	if st.Ready != 0 || st.Unacked != 0 || st.Consumers != 1 {
		t.Fatalf("after acking every message the leader has %d ready, %d unacked, %d consumers; want 0, 0, 1", st.Ready, st.Unacked, st.Consumers)
	}
	col.none(t)
	if err := s.Ack(12345, false); base.CodeOf(err) != base.CodePreconditionFailed {
		t.Fatalf("Ack of an unknown delivery: %v, want CodePreconditionFailed", err)
	}
	if err := s.Cancel(testCtx(t)); err != nil {
		t.Fatalf("Cancel: %v", err)
	}
	waitStats(t, cl.nodes[lead], "fq", func(st QueueStats) bool { return st.Consumers == 0 })
}

func TestClusterAutoAckConsumerOnAFollowerIsAckedOnceHandedOver(t *testing.T) {
	cl := threeNodes(t)
	const n = 40
	lead, _, fc := cl.forwardedSetup("aq", n)
	_, col := subscribe(t, fc, SubscribeOptions{Queue: "aq", NoAck: true})
	got := bodies(takeN(t, col, n))
	for i, b := range got {
		if b != fmt.Sprint("m", i) {
			t.Fatalf("auto-ack deliveries %v, want m0..m%d in order", got, n-1)
		}
	}
	// Acknowledged on the leader once handed over.
	waitStats(t, cl.nodes[lead], "aq", func(st QueueStats) bool { return st.Counters.Acked == n && st.Unacked == 0 })
}

func TestClusterClosingTheProxyConnectionReturnsUnackedMessages(t *testing.T) {
	cl := threeNodes(t)
	lead, _, fc := cl.forwardedSetup("rq", 5)
	_, col := subscribe(t, fc, SubscribeOptions{Queue: "rq", PrefetchCount: 3})
	takeN(t, col, 3)
	waitStats(t, cl.nodes[lead], "rq", func(st QueueStats) bool { return st.Unacked == 3 && st.Ready == 2 })
	if err := fc.Close(testCtx(t)); err != nil {
		t.Fatalf("Close: %v", err)
	}
	st := waitStats(t, cl.nodes[lead], "rq", func(st QueueStats) bool { return st.Unacked == 0 && st.Consumers == 0 })
	if st.Ready != 5 {
		t.Fatalf("after the proxy's client connection closed the leader has %d ready, want all 5 back", st.Ready)
	}
}

// subscribeCancellable subscribes through c and returns the deliveries
// collector and the channel the consumer's cancellation error arrives on.
func subscribeCancellable(t testing.TB, c *Conn, o SubscribeOptions) (*collector, <-chan error) {
	t.Helper()
	cancelled := make(chan error, 1)
	col := newCollector()
	if _, err := c.Subscribe(testCtx(t), o, col.deliver, func(err error) { cancelled <- err }); err != nil {
		t.Fatalf("Subscribe(%s): %v", o.Queue, err)
	}
	return col, cancelled
}

// waitCancelled returns the error the consumer was cancelled with, failing
// the test when no cancellation arrives after cause.
func waitCancelled(t testing.TB, cancelled <-chan error, cause string) error {
	t.Helper()
	select {
	case err := <-cancelled:
		return err
	case <-time.After(testTimeout):
		t.Fatalf("the consumer was not cancelled when %s", cause)
		return nil
	}
}

func TestClusterLosingTheNodeConnectionCancelsTheConsumerAndReturnsItsMessages(t *testing.T) {
	cl := threeNodes(t)
	lead, follower, fc := cl.forwardedSetup("lq", 4)
	col, cancelled := subscribeCancellable(t, fc, SubscribeOptions{Queue: "lq", PrefetchCount: 2})
	takeN(t, col, 2)
	waitStats(t, cl.nodes[lead], "lq", func(st QueueStats) bool { return st.Unacked == 2 })
	// Break the forwarding connection between the follower and the leader.
	f := cl.nodes[follower].fwd
	f.mu.Lock()
	link := f.clients[NodeID(lead+1)]
	f.mu.Unlock()
	link.conn.Close()
	if err := waitCancelled(t, cancelled, "the connection to the leader broke"); base.CodeOf(err) != base.CodeUnavailable {
		t.Fatalf("the consumer was cancelled with %v, want CodeUnavailable", err)
	}
	st := waitStats(t, cl.nodes[lead], "lq", func(st QueueStats) bool { return st.Unacked == 0 })
	if st.Ready != 4 {
		t.Fatalf("after the node connection broke the leader has %d ready, want all 4 back", st.Ready)
	}
}

func TestClusterLeaderChangeCancelsAForwardedConsumer(t *testing.T) {
	cl := threeNodes(t)
	lead, _, fc := cl.forwardedSetup("mq", 1)
	col, cancelled := subscribeCancellable(t, fc, SubscribeOptions{Queue: "mq", PrefetchCount: 1})
	col.next(t)
	cl.stop(lead)
	if err := waitCancelled(t, cancelled, "its queue's leader stopped"); !base.IsRetriable(err) {
		t.Fatalf("the consumer was cancelled with %v, want a retriable code (consume again)", err)
	}
	// Consuming again finds the new leader.
	_, col2 := subscribe(t, fc, SubscribeOptions{Queue: "mq", PrefetchCount: 1})
	if d := col2.next(t); string(d.Message.Body) != "m0" || !d.Redelivered {
		t.Fatalf("after the leader change: %q redelivered %v, want m0 redelivered", d.Message.Body, d.Redelivered)
	}
}

// Nack with requeue, Recover and SetPrefetch of a consumer on a follower
// act on the leader's consumer as they do locally.
func TestClusterForwardedConsumerNacksRecoversAndChangesPrefetch(t *testing.T) {
	cl := threeNodes(t)
	lead, _, fc := cl.forwardedSetup("nq", 3)
	s, col := subscribe(t, fc, SubscribeOptions{Queue: "nq", PrefetchCount: 1})
	d := col.next(t)
	if string(d.Message.Body) != "m0" || d.Redelivered {
		t.Fatalf("first delivery %q redelivered %v, want m0 not redelivered", d.Message.Body, d.Redelivered)
	}
	col.none(t)
	if err := s.Nack(d.DeliveryID, false, true, ""); err != nil {
		t.Fatalf("Nack: %v", err)
	}
	d = col.next(t)
	if string(d.Message.Body) != "m0" || !d.Redelivered || d.DeliveryCount != 1 {
		t.Fatalf("after a requeue: %q redelivered %v count %d, want m0 redelivered once", d.Message.Body, d.Redelivered, d.DeliveryCount)
	}
	s.Recover(true)
	d = col.next(t)
	if string(d.Message.Body) != "m0" || d.DeliveryCount != 2 {
		t.Fatalf("after Recover: %q count %d, want m0 with count 2", d.Message.Body, d.DeliveryCount)
	}
	if err := s.SetPrefetch(testCtx(t), 10, 0); err != nil {
		t.Fatalf("SetPrefetch: %v", err)
	}
	// The larger window lets the other two through while m0 is unacked.
	rest := bodies(takeN(t, col, 2))
	if fmt.Sprint(rest) != "[m1 m2]" {
		t.Fatalf("after SetPrefetch(10): %v, want [m1 m2]", rest)
	}
	if err := s.Ack(0, true); err != nil {
		t.Fatalf("Ack all: %v", err)
	}
	waitStats(t, cl.nodes[lead], "nq", func(st QueueStats) bool { return st.Counters.Acked == 3 && st.Unacked == 0 })
}

// TestClusterFetchOffsetsReadsPartitionsWithoutAReplicaHere: a group's
// committed offsets live in the partitions, which in a cluster need not
// have a replica on the node asked (Kafka's group coordinator). Every node
// answers every partition's offset, reading the others through a node
// that holds one: a consumer group restarted against any node resumes
// where it committed instead of starting over.
func TestClusterFetchOffsetsReadsPartitionsWithoutAReplicaHere(t *testing.T) {
	cl := threeNodes(t)
	ctx := testCtx(t)
	conns := cl.conns()
	if err := conns[0].DeclareStream(ctx, StreamSpec{Name: "spread", Partitions: 3, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	commits := map[PartitionRef]CommittedOffset{}
	for i := range 3 {
		commits[PartitionRef{Stream: "spread", Partition: int32(i)}] = CommittedOffset{Offset: int64(10 + i), LeaderEpoch: -1, Metadata: fmt.Sprint("m", i)}
	}
	// Commits go to the group's coordinator, as Kafka clients send them.
	coord := cl.leaderWhere("the coordinator of spread-group", func(b *Broker) bool { return b.coordinatorHere("spread-group") != nil })
	for p, err := range conns[coord].CommitOffsets(ctx, "spread-group", -1, "", "", commits) {
		if err != nil {
			t.Fatalf("commit of %v: %v", p, err)
		}
	}
	parts := []PartitionRef{{Stream: "spread", Partition: 0}, {Stream: "spread", Partition: 1}, {Stream: "spread", Partition: 2}}
	for i, c := range conns {
		got, err := c.FetchOffsets(ctx, "spread-group", parts)
		if err != nil {
			t.Fatalf("node %d: FetchOffsets: %v", i+1, err)
		}
		for p, want := range commits {
			if o, ok := got[p]; !ok || o.Offset != want.Offset || o.Metadata != want.Metadata {
				t.Errorf("node %d, partition %d: %+v (found %v), want offset %d metadata %q", i+1, p.Partition, o, ok, want.Offset, want.Metadata)
			}
		}
		if none, err := c.FetchOffsets(ctx, "other-group", parts); err != nil || len(none) != 0 {
			t.Errorf("node %d: a group that never committed: %+v %v, want none", i+1, none, err)
		}
	}
}

// TestClusterAChangeIsOnEveryNodeWhenAnswered: a declaration, a binding
// and a deletion answered by one node are found through every other at
// once, without waiting (RabbitMQ's metadata changes are transactions on
// every node), and a node that is down does not hold the answer. Each
// node looks them up in its own controller replica; the answer waits for
// the other replicas to apply the change. Without that wait another node
// missed the binding in the first round.
func TestClusterAChangeIsOnEveryNodeWhenAnswered(t *testing.T) {
	cl := threeNodes(t)
	ctx := testCtx(t)
	conns := cl.conns()
	routes := func(b *Broker, exchange, key string) []routing.Destination {
		var res routing.Result
		var err error
		b.ctrl.read(func(c *controller.Controller) { err = c.Route("/", &res, exchange, key, nil) })
		if err != nil {
			t.Fatalf("route on node %d: %v", b.node, err)
		}
		return res.Destinations
	}
	for i := range 12 {
		c := conns[i%3]
		q, x := fmt.Sprintf("q%d", i), fmt.Sprintf("x%d", i)
		if _, err := c.DeclareQueue(ctx, QueueSpec{Name: q, Durable: true}); err != nil {
			t.Fatalf("declare %s: %v", q, err)
		}
		if err := c.DeclareExchange(ctx, ExchangeSpec{Name: x, Type: "direct", Durable: true}); err != nil {
			t.Fatalf("declare %s: %v", x, err)
		}
		if err := c.Bind(ctx, BindingSpec{Source: x, Destination: q, DestinationKind: EntityQueue, RoutingKey: "k"}); err != nil {
			t.Fatalf("bind %s to %s: %v", q, x, err)
		}
		for _, b := range cl.nodes {
			if _, err := b.lookupQueue("/", q); err != nil {
				t.Fatalf("round %d: node %d after declare-ok: %v", i, b.node, err)
			}
			if got := routes(b, x, "k"); len(got) != 1 || got[0].Name != q {
				t.Fatalf("round %d: node %d routes %s/k to %v after bind-ok, want %s", i, b.node, x, got, q)
			}
		}
		if _, err := c.DeleteQueue(ctx, q, false, false); err != nil {
			t.Fatalf("delete %s: %v", q, err)
		}
		for _, b := range cl.nodes {
			if _, err := b.lookupQueue("/", q); base.CodeOf(err) != base.CodeNotFound {
				t.Fatalf("round %d: node %d after delete-ok: %v, want not found", i, b.node, err)
			}
		}
	}
	// A node that is down is not waited for: a declaration through a
	// quorum is answered, and on the nodes that run.
	cl.stop(2)
	if _, err := conns[0].DeclareQueue(ctx, QueueSpec{Name: "later", Durable: true}); err != nil {
		t.Fatalf("declare with node 3 down: %v", err)
	}
	if _, err := cl.nodes[1].lookupQueue("/", "later"); err != nil {
		t.Fatalf("node 2 after declare-ok with node 3 down: %v", err)
	}
}

// TestClusterDeclareCountsAreReadThroughTheQueuesGroup: queue.declare-ok's
// counts come from the queue's group after a read through it, on any node:
// one with no replica of the queue (it used to answer 0) and one whose
// replica trails the leader both count every publish and ack
// acknowledged before the declare.
func TestClusterDeclareCountsAreReadThroughTheQueuesGroup(t *testing.T) {
	cl := threeNodes(t)
	ctx := testCtx(t)
	conns := cl.conns()
	for _, q := range []QueueSpec{
		{Name: "alone", Durable: true, Arguments: Headers{{"x-quorum-initial-group-size", IntValue(KindInt32, 1)}}},
		{Name: "three", Durable: true},
	} {
		if _, err := conns[0].DeclareQueue(ctx, q); err != nil {
			t.Fatalf("declare %s: %v", q.Name, err)
		}
		for i := range 5 {
			res, err := conns[0].Publish(ctx, "", []Message{{RoutingKey: q.Name, Body: []byte(fmt.Sprint(i))}}, PublishOptions{})
			if err != nil || res[0].Err != nil {
				t.Fatalf("publish to %s: %v %v", q.Name, err, res)
			}
		}
		_, h, ok, err := conns[1].Get(ctx, q.Name, false)
		if err != nil || !ok {
			t.Fatalf("get from %s: %v %v", q.Name, ok, err)
		}
		if err := h.Ack(ctx); err != nil {
			t.Fatal(err)
		}
		for i, c := range conns {
			info, err := c.DeclareQueue(ctx, QueueSpec{Name: q.Name, Passive: true})
			if err != nil || info.Messages != 4 {
				t.Errorf("node %d: passive declare of %s: %d messages, %v; want 4", i+1, q.Name, info.Messages, err)
			}
		}
	}
	// A stream's count is its partitions' records, each read through its
	// group: three partitions of one replica each, so every node lacks
	// some of them.
	if _, err := conns[0].DeclareQueue(ctx, QueueSpec{Name: "events", Durable: true, Arguments: Headers{
		{"x-queue-type", StringValue("stream")}, {"x-ferry-partitions", IntValue(KindInt64, 3)},
		{"x-initial-cluster-size", IntValue(KindInt32, 1)}}}); err != nil {
		t.Fatal(err)
	}
	var msgs []Message
	for i := range 7 {
		msgs = append(msgs, Message{RoutingKey: "events", Key: []byte(fmt.Sprint("key-", i)), Body: []byte("e")})
	}
	publishAll(t, conns[1], msgs)
	for i, c := range conns {
		info, err := c.DeclareQueue(ctx, QueueSpec{Name: "events", Passive: true})
		if err != nil || info.Messages != 7 || !info.IsStream {
			t.Errorf("node %d: passive declare of the stream: %+v, %v; want 7 messages", i+1, info, err)
		}
	}
}

// TestClusterForwardedPublishesKeepTheirOrder: a connection's publishes to
// a queue led by another node travel as forwarded batches, several in
// flight; the leader admits them in the order they arrive, so the queue
// holds them in the order they were published, as AMQP requires of one
// channel (Bunny's pipelined publishes came out of order).
func TestClusterForwardedPublishesKeepTheirOrder(t *testing.T) {
	cl := threeNodes(t)
	ctx := testCtx(t)
	conns := cl.conns()
	if _, err := conns[0].DeclareQueue(ctx, QueueSpec{Name: "ordered", Durable: true}); err != nil {
		t.Fatal(err)
	}
	lead := cl.leaderOfQueue("ordered")
	c := conns[(lead+1)%3]
	const n = 400
	settled := make(chan error, n)
	for i := range n {
		c.PublishAsync("", []Message{{RoutingKey: "ordered", Body: []byte(fmt.Sprint(i))}}, PublishOptions{},
			func(res []PublishResult, err error) {
				if err == nil && res[0].Err != nil {
					err = res[0].Err
				}
				settled <- err
			})
	}
	for range n {
		if err := <-settled; err != nil {
			t.Fatalf("publish: %v", err)
		}
	}
	for i := range n {
		d, h, ok, err := conns[lead].Get(ctx, "ordered", false)
		if err != nil || !ok {
			t.Fatalf("get %d: %v %v", i, ok, err)
		}
		if string(d.Message.Body) != fmt.Sprint(i) {
			t.Fatalf("message %d is %q: the forwarded publishes were reordered", i, d.Message.Body)
		}
		if err := h.Ack(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// TestClusterACloseWithoutQuorumReturnsAndReleasesLater: a connection
// closing while its cluster has lost its quorum is not held by the
// release of what it owned (Close returns when its context ends), and the
// release goes on: once the quorum is back, its exclusive queue is
// deleted and its unacknowledged message is back in its queue.
func TestClusterACloseWithoutQuorumReturnsAndReleasesLater(t *testing.T) {
	cl := threeNodes(t)
	ctx := testCtx(t)
	c := guestConn(t, cl.nodes[0])
	if _, err := c.DeclareQueue(ctx, QueueSpec{Name: "held", Durable: true}); err != nil {
		t.Fatalf("declare held: %v", err)
	}
	if _, err := c.DeclareQueue(ctx, QueueSpec{Name: "mine", Exclusive: true}); err != nil {
		t.Fatalf("declare mine: %v", err)
	}
	if res, err := c.Publish(ctx, "", []Message{{RoutingKey: "held", Body: []byte("m")}}, PublishOptions{}); err != nil || res[0].Err != nil {
		t.Fatalf("publish: %v %v", err, res)
	}
	if _, _, ok, err := c.Get(ctx, "held", false); err != nil || !ok {
		t.Fatalf("get: %v %v", ok, err)
	}
	cl.stop(1)
	cl.stop(2)
	gone, cancel := context.WithCancel(ctx)
	cancel()
	if err := c.Close(gone); base.CodeOf(err) != base.CodeTimeout {
		t.Fatalf("Close without quorum: %v, want CodeTimeout (the release goes on)", err)
	}
	cl.restart(1)
	cl.restart(2)
	cl.waitFor(func() bool {
		_, err := cl.nodes[0].lookupQueue("/", "mine")
		return base.CodeOf(err) == base.CodeNotFound
	}, "the exclusive queue of the closed connection deleted")
	waitBootstrapped(t, cl.nodes[1])
	other := guestConn(t, cl.nodes[1])
	var d Delivery
	cl.waitFor(func() bool {
		var ok bool
		var err error
		d, _, ok, err = other.Get(ctx, "held", true)
		return err == nil && ok
	}, "the unacknowledged message back in its queue")
	if string(d.Message.Body) != "m" || !d.Redelivered {
		t.Fatalf("got %q redelivered=%v, want m redelivered", d.Message.Body, d.Redelivered)
	}
}

// An exclusive queue lives and dies with its connection, so it is placed
// on that connection's node alone; a publisher on another node reaches it
// through that node.
func TestClusterAnExclusiveQueueIsPlacedOnItsConnectionsNodeAlone(t *testing.T) {
	cl := threeNodes(t)
	ctx := testCtx(t)
	conns := cl.conns()
	owner := conns[1]
	info, err := owner.DeclareQueue(ctx, QueueSpec{Name: "", Exclusive: true,
		Arguments: Headers{{"x-quorum-initial-group-size", IntValue(KindInt32, 3)}}})
	if err != nil {
		t.Fatalf("declare: %v", err)
	}
	shared, err := owner.DeclareQueue(ctx, QueueSpec{Name: "shared", Durable: true})
	if err != nil {
		t.Fatalf("declare shared: %v", err)
	}
	for _, b := range cl.nodes {
		for _, q := range []struct {
			name     string
			replicas []controller.NodeID
		}{{info.Name, []controller.NodeID{2}}, {shared.Name, []controller.NodeID{1, 2, 3}}} {
			ent, err := b.lookupQueue("/", q.name)
			if err != nil {
				t.Fatalf("node %d: %s: %v", b.node, q.name, err)
			}
			p, ok := b.placementOf(ent.group)
			if !ok || !slices.Equal(p.Replicas, q.replicas) {
				t.Fatalf("node %d: %s placed on %v (found %v), want %v", b.node, q.name, p.Replicas, ok, q.replicas)
			}
		}
	}
	res, err := conns[0].Publish(ctx, "", []Message{{RoutingKey: info.Name, Body: []byte("to the owner")}}, PublishOptions{})
	if err != nil || res[0].Err != nil {
		t.Fatalf("publish through node 1: %v %v", err, res)
	}
	d, _, ok, err := owner.Get(ctx, info.Name, true)
	if err != nil || !ok || string(d.Message.Body) != "to the owner" {
		t.Fatalf("get: %q %v %v", d.Message.Body, ok, err)
	}
}

// An exclusive queue's only replica is on its connection's node: when that
// node is down, an administrator's delete (the HTTP API's) waits for the
// queue's group only Config.OperatorDeleteWait, then deletes it anyway.
func TestClusterAnAdministratorDeletesTheExclusiveQueueOfADownNode(t *testing.T) {
	cl := threeNodes(t)
	ctx := testCtx(t)
	owner := guestConn(t, cl.nodes[1])
	if _, err := owner.DeclareQueue(ctx, QueueSpec{Name: "stranded", Exclusive: true}); err != nil {
		t.Fatalf("declare: %v", err)
	}
	cl.stop(1)
	admin := guestConn(t, cl.nodes[0])
	if _, err := admin.DeleteQueue(ctx, "stranded", false, false); base.CodeOf(err) != base.CodeResourceLocked {
		t.Fatalf("a client's delete of another connection's exclusive queue: %v, want CodeResourceLocked", err)
	}
	bounded, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := admin.DeleteQueueAsOperator(bounded, "stranded", false, false); err != nil {
		t.Fatalf("the operator's delete with the queue's only replica down: %v", err)
	}
	for _, i := range []int{0, 2} {
		if _, err := cl.nodes[i].lookupQueue("/", "stranded"); base.CodeOf(err) != base.CodeNotFound {
			t.Fatalf("node %d after the delete: %v, want not found", i+1, err)
		}
	}
	cl.restart(1)
	cl.waitFor(func() bool {
		_, err := cl.nodes[1].lookupQueue("/", "stranded")
		return base.CodeOf(err) == base.CodeNotFound
	}, "the restarted node never learnt of the delete")
}

// When a node stays down, the controller's leader deletes the exclusive
// queues of that node's connections after Config.DownNodeRelease, as
// RabbitMQ does when it sees a node go down; another connection may then
// declare the name.
func TestClusterTheExclusiveQueuesOfANodeDownLongEnoughAreDeleted(t *testing.T) {
	cl := threeNodesWith(t, func(c *Config) { c.DownNodeRelease = 100 * time.Millisecond })
	ctx := testCtx(t)
	owner := guestConn(t, cl.nodes[1])
	if _, err := owner.DeclareQueue(ctx, QueueSpec{Name: "orphan", Exclusive: true}); err != nil {
		t.Fatalf("declare: %v", err)
	}
	if _, err := owner.DeclareQueue(ctx, QueueSpec{Name: "kept", Durable: true}); err != nil {
		t.Fatalf("declare kept: %v", err)
	}
	cl.stop(1)
	cl.waitFor(func() bool {
		_, err := cl.nodes[0].lookupQueue("/", "orphan")
		return base.CodeOf(err) == base.CodeNotFound
	}, "the exclusive queue of the down node's connection was never deleted")
	if _, err := cl.nodes[2].lookupQueue("/", "kept"); err != nil {
		t.Fatalf("a durable queue with a replica on the down node: %v, want it kept", err)
	}
	other := guestConn(t, cl.nodes[2])
	if _, err := other.DeclareQueue(ctx, QueueSpec{Name: "orphan", Exclusive: true}); err != nil {
		t.Fatalf("another connection declaring the name: %v", err)
	}
}

// A change waits for the other nodes to apply it (spreadController), but
// not for a node the replication transport has declared down: here node 3
// is frozen (its addresses accept connections and never answer) and the
// wait's bound is an hour, yet a declaration through node 1 is answered.
func TestClusterAChangeDoesNotWaitForANodeDeclaredDown(t *testing.T) {
	cl := threeNodesWith(t, func(c *Config) { c.MetadataSpreadWait = time.Hour })
	ctx := testCtx(t)
	c := guestConn(t, cl.nodes[0])
	if _, err := c.DeclareQueue(ctx, QueueSpec{Name: "before", Durable: true}); err != nil {
		t.Fatalf("declare with every node up: %v", err)
	}
	cl.stop(2)
	for _, addr := range []string{cl.peers[2].RaftAddr, cl.peers[2].ForwardAddr} {
		blackHole(t, addr)
	}
	cl.waitFor(func() bool { return cl.nodes[0].peers.isDown(3) }, "node 1 never found node 3 down")
	bounded, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := c.DeclareQueue(bounded, QueueSpec{Name: "while-down", Durable: true}); err != nil {
		t.Fatalf("declare with node 3 frozen: %v", err)
	}
}

// blackHole listens at addr and holds every connection it accepts without
// reading or answering, as a frozen process does, until the test ends.
func blackHole(t *testing.T, addr string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listening at %s: %v", addr, err)
	}
	var mu sync.Mutex
	var held []net.Conn
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, conn)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			c.Close()
		}
	})
}

// answerDropper is a node's forwarding listener whose connections, once
// armed, close instead of writing the first answer to a forwarded enqueue:
// the leader applied the batch and its sender never hears so. It closes
// dropped when it does.
type answerDropper struct {
	net.Listener
	armed   *atomic.Bool
	dropped chan struct{}
}

func (l *answerDropper) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &answerDroppingConn{Conn: c, l: l}, nil
}

type answerDroppingConn struct {
	net.Conn
	l *answerDropper
}

func (c *answerDroppingConn) Write(b []byte) (int, error) {
	// A frame is written whole: its length (4 bytes), then its type.
	if len(b) > 4 && b[4] == respFlag|opEnqueue && c.l.armed.CompareAndSwap(true, false) {
		c.Conn.Close()
		close(c.l.dropped)
		return 0, net.ErrClosed
	}
	return c.Conn.Write(b)
}

// answerDroppingCluster is three nodes whose forwarding listeners, once
// armed is set, drop the first answer to a forwarded enqueue; dropped is
// closed when one is.
func answerDroppingCluster(t *testing.T) (cl *cluster, armed *atomic.Bool, dropped <-chan struct{}) {
	armed = new(atomic.Bool)
	ch := make(chan struct{})
	cl = threeNodesWith(t, func(c *Config) {
		c.ForwardListener = &answerDropper{Listener: c.ForwardListener, armed: armed, dropped: ch}
	})
	return cl, armed, ch
}

// getAll takes every message of queue name through c (auto-ack), trying
// again on retriable errors (a leader change), and returns their bodies.
func getAll(t *testing.T, c *Conn, name string) []string {
	t.Helper()
	ctx := testCtx(t)
	var got []string
	for {
		d, _, ok, err := c.Get(ctx, name, true)
		if err != nil {
			if base.IsRetriable(err) {
				continue
			}
			t.Fatalf("get from %s: %v", name, err)
		}
		if !ok {
			return got
		}
		got = append(got, string(d.Message.Body))
	}
}

// A queue's leader that applied a forwarded publish and stopped before
// answering leaves the publishing node to send it again to the next
// leader, which has applied it too: the queue must hold it once, not
// twice (the sender table, DESIGN.md "Senders"), and the publisher gets
// its confirm.
func TestClusterAPublishWhoseLeaderStoppedBeforeAnsweringIsStoredOnce(t *testing.T) {
	cl, armed, dropped := answerDroppingCluster(t)
	ctx := testCtx(t)
	lead, _, fc := cl.forwardedSetup("once", 2)
	armed.Store(true)
	published := make(chan error, 1)
	go func() {
		res, err := fc.Publish(ctx, "", []Message{{RoutingKey: "once", Body: []byte("m2")}, {RoutingKey: "once", Body: []byte("m3")}}, PublishOptions{})
		if err == nil {
			err = errors.Join(res[0].Err, res[1].Err)
		}
		published <- err
	}()
	select {
	case <-dropped:
	case <-ctx.Done():
		t.Fatal("no answer to a forwarded enqueue was dropped")
	}
	cl.stop(lead)
	if err := <-published; err != nil {
		t.Fatalf("the publish whose answer was lost: %v", err)
	}
	publishOne(t, fc, "", "once", "m4")
	if got, want := getAll(t, fc, "once"), "[m0 m1 m2 m3 m4]"; fmt.Sprint(got) != want {
		t.Fatalf("the queue holds %v, want %s", got, want)
	}
	// The leader that answered the resends has applied them.
	if st, err := cl.nodes[cl.leaderOfQueue("once")].QueueStats("/", "once"); err != nil || st.Counters.Resent != 2 {
		t.Fatalf("the queue counts %d resent (%v), want 2", st.Counters.Resent, err)
	}
}

// A publish whose answer a live leader sent but the forwarding connection
// lost is sent to the same leader again once no other has been elected
// for BrokerSameLeaderRetryAfter: it is confirmed, and the queue holds it
// once. (It used to wait for another leader until its context ended.)
func TestClusterAPublishWhoseAnswerWasLostGoesToTheSameLeaderAgain(t *testing.T) {
	cl, armed, dropped := answerDroppingCluster(t)
	ctx := testCtx(t)
	lead, _, fc := cl.forwardedSetup("stay", 1)
	armed.Store(true)
	res, err := fc.Publish(ctx, "", []Message{{RoutingKey: "stay", Body: []byte("m1")}}, PublishOptions{})
	if err == nil {
		err = res[0].Err
	}
	if err != nil {
		t.Fatalf("the publish whose answer was lost: %v", err)
	}
	select {
	case <-dropped:
	default:
		t.Fatal("no answer was lost")
	}
	if now := cl.leaderOfQueue("stay"); now != lead {
		t.Fatalf("the leader moved from node %d to %d: the test needs it to stay", lead+1, now+1)
	}
	if got, want := getAll(t, fc, "stay"), "[m0 m1]"; fmt.Sprint(got) != want {
		t.Fatalf("the queue holds %v, want %s", got, want)
	}
	if st, err := cl.nodes[lead].QueueStats("/", "stay"); err != nil || st.Counters.Resent != 1 {
		t.Fatalf("the queue counts %d resent (%v), want 1", st.Counters.Resent, err)
	}
}

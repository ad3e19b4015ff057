package admin

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/broker"
)

// HealthStatus is the body of /healthz and /readyz.
type HealthStatus struct {
	Status string `json:"status"`
	Detail string `json:"detail,omitempty"`
}

func (s *Server) healthz(c *call) (any, error) {
	if err := s.b.Err(); err != nil {
		c.status = http.StatusServiceUnavailable
		return HealthStatus{Status: "failed", Detail: err.Error()}, nil
	}
	return HealthStatus{Status: "ok"}, nil
}

func (s *Server) readyz(c *call) (any, error) {
	h := Health{Ready: true, Status: "ready"}
	if s.cfg.Readiness != nil {
		h = s.cfg.Readiness()
	}
	if err := s.b.Err(); err != nil {
		h = Health{Status: "failed", Detail: err.Error()}
	}
	if !h.Ready {
		c.status = http.StatusServiceUnavailable
	}
	return HealthStatus{Status: h.Status, Detail: h.Detail}, nil
}

// Overview is the node at a glance.
type Overview struct {
	// ClusterID is the cluster's id, the same on every node (Kafka's
	// Metadata reports it); empty for a cluster bootstrapped before ids.
	ClusterID   string         `json:"cluster_id,omitempty"`
	Node        uint64         `json:"node"`
	Version     string         `json:"version"`
	Blocked     bool           `json:"blocked"`
	BlockReason string         `json:"block_reason,omitempty"`
	Tenants     int            `json:"tenants"`
	Exchanges   int            `json:"exchanges"`
	Queues      int            `json:"queues"`
	Streams     int            `json:"streams"`
	Bindings    int            `json:"bindings"`
	Connections map[string]int `json:"connections"` // by protocol
	// Messages sums the queues with a replica on this node.
	Messages MessageTotals `json:"messages"`
	Nodes    []ClusterNode `json:"nodes"`
}

// MessageTotals sums queue depths.
type MessageTotals struct {
	Ready   uint64 `json:"ready"`
	Unacked uint64 `json:"unacked"`
	Delayed uint64 `json:"delayed"`
}

func (s *Server) overview(c *call) (any, error) {
	blocked, reason := s.blocked()
	out := Overview{Node: uint64(s.b.NodeID()), Version: s.cfg.Version, Blocked: blocked, BlockReason: reason,
		Connections: map[string]int{}}
	if ci, ok := s.b.(interface{ ClusterID() string }); ok { // *broker.Broker
		out.ClusterID = ci.ClusterID()
	}
	tenants := s.tenants()
	out.Tenants = len(tenants)
	for _, t := range tenants {
		v := s.b.Topology(t)
		out.Exchanges += len(v.Exchanges)
		out.Queues += len(v.Queues)
		out.Streams += len(v.Streams)
		out.Bindings += len(v.Bindings)
		for i := range v.Queues {
			if st, err := s.b.QueueStats(t, v.Queues[i].Name); err == nil {
				out.Messages.Ready += st.Ready
				out.Messages.Unacked += st.Unacked
				out.Messages.Delayed += st.Delayed
			}
		}
	}
	for _, cv := range s.b.Connections() {
		out.Connections[cv.Protocol]++
	}
	out.Nodes = s.clusterNodes()
	return out, nil
}

func (s *Server) blocked() (bool, string) {
	state, _ := s.b.Blocked()
	return state()
}

// ClusterNode is one node of the cluster.
type ClusterNode struct {
	ID       uint64 `json:"id"`
	RaftAddr string `json:"raft_addr,omitempty"`
	State    string `json:"state"`
	Self     bool   `json:"self"`
}

// ClusterStatus is the cluster as this node sees it, with the leaders of
// the default tenant's stream partitions.
type ClusterStatus struct {
	Self       uint64            `json:"self"`
	Nodes      []ClusterNode     `json:"nodes"`
	Partitions []PartitionLeader `json:"partitions"`
}

// PartitionLeader is where a stream partition runs.
type PartitionLeader struct {
	Stream    string   `json:"stream"`
	Partition int32    `json:"partition"`
	Leader    uint64   `json:"leader"`
	Replicas  []uint64 `json:"replicas"`
}

func (s *Server) clusterNodes() []ClusterNode {
	v := s.b.Cluster("/")
	out := []ClusterNode{}
	for _, n := range v.Nodes {
		out = append(out, ClusterNode{ID: uint64(n.ID), RaftAddr: n.RaftAddr, State: n.State, Self: n.ID == v.Self})
	}
	return out
}

func (s *Server) cluster(c *call) (any, error) {
	v := s.b.Cluster(c.tenant())
	out := ClusterStatus{Self: uint64(v.Self), Nodes: s.clusterNodes(), Partitions: []PartitionLeader{}}
	for _, p := range v.Partitions {
		out.Partitions = append(out.Partitions, PartitionLeader{Stream: p.Stream, Partition: p.Partition, Leader: uint64(p.Leader),
			Replicas: nodeIDs(p.Replicas)})
	}
	return out, nil
}

// Connection is a client connection to this node.
type Connection struct {
	ID        string `json:"id"`
	Protocol  string `json:"protocol"`
	Peer      string `json:"peer,omitempty"`
	User      string `json:"user"`
	Tenant    string `json:"tenant"`
	Name      string `json:"name,omitempty"`
	Consumers int    `json:"consumers"`
}

func (s *Server) listConnections(c *call) (any, error) {
	out := []Connection{}
	for _, cv := range s.b.Connections() {
		conn := Connection{ID: cv.ID, Protocol: cv.Protocol, User: cv.User, Tenant: cv.Tenant, Name: cv.Name, Consumers: cv.Consumers}
		if cv.Peer.IsValid() {
			conn.Peer = cv.Peer.String()
		}
		out = append(out, conn)
	}
	return out, nil
}

func (s *Server) closeConnection(c *call) (any, error) {
	reason := c.query("reason")
	if reason == "" {
		reason = "closed by user '" + c.p.User + "' through the management API"
	}
	return nil, s.b.CloseConnection(c.path("id"), reason)
}

// TraceEvent is one entry of a message's history.
type TraceEvent struct {
	Kind       string `json:"kind"`
	Time       string `json:"time"`
	Node       uint64 `json:"node"`
	Exchange   string `json:"exchange,omitempty"`
	RoutingKey string `json:"routing_key,omitempty"`
	Queue      string `json:"queue,omitempty"`
	Consumer   string `json:"consumer,omitempty"`
	Attempt    uint32 `json:"attempt,omitempty"`
	Reason     string `json:"reason,omitempty"`
	Requeued   bool   `json:"requeued,omitempty"`
}

// Trace is a message's recorded history, oldest first.
type Trace struct {
	MessageID string       `json:"message_id"`
	Events    []TraceEvent `json:"events"`
}

// TracingSpec turns the recording of message histories on or off for an
// exchange, queue or stream.
type TracingSpec struct {
	Enabled bool `json:"enabled"`
}

func (s *Server) trace(c *call) (any, error) {
	id := c.path("id")
	evs, err := s.b.Trace(c.tenant(), id)
	if err != nil {
		return nil, err
	}
	if len(evs) == 0 {
		return nil, base.Errorf(base.CodeNotFound,
			"no history of message '%s' on this node: enable tracing of its exchange or queue first (PUT /api/tracing/{name}; ferry trace --enable), and publish it with a message id", id)
	}
	out := Trace{MessageID: id}
	for _, e := range evs {
		out.Events = append(out.Events, TraceEvent{Kind: e.Kind.String(), Time: e.Time.UTC().Format(time.RFC3339Nano), Node: uint64(e.Node),
			Exchange: e.Exchange, RoutingKey: e.RoutingKey, Queue: e.Queue, Consumer: e.Consumer, Attempt: e.Attempt,
			Reason: e.Reason, Requeued: e.Requeued})
	}
	return out, nil
}

func (s *Server) setTracing(c *call) (any, error) {
	var spec TracingSpec
	if err := decodeBody(c.r, &spec, false); err != nil {
		return nil, err
	}
	return nil, s.b.SetTrace(c.tenant(), exchangeName(c.path("name")), spec.Enabled)
}

// StreamReadResponse is what a read of a stream returns.
type StreamReadResponse struct {
	Messages []MessageOut `json:"messages"`
}

// readStream serves GET /api/streams/{name}/messages: up to count
// messages from a start offset, across the stream's partitions, waiting
// at most timeout_ms for them.
func (s *Server) readStream(c *call) (any, error) {
	start, err := parseStreamStart(c.query("offset"))
	if err != nil {
		return nil, err
	}
	count, err := intQuery(c.query("count"), 1, 1, base.AdminGetMessagesMax, "count")
	if err != nil {
		return nil, err
	}
	waitMs, err := intQuery(c.query("timeout_ms"), int(base.AdminStreamReadWaitDefault/time.Millisecond), 0, int(base.AdminStreamReadWaitMax/time.Millisecond), "timeout_ms")
	if err != nil {
		return nil, err
	}
	conn, err := c.conn(c.tenant())
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(c.ctx(), time.Duration(waitMs)*time.Millisecond)
	defer cancel()
	col := &collector{max: count, full: make(chan struct{})}
	if start.Kind == broker.StreamOffset {
		col.from = start.Offset // deliveries start at the batch holding the offset
	}
	sub, err := conn.Subscribe(ctx, broker.SubscribeOptions{Queue: c.path("name"), Tag: "http-read-" + strconv.FormatInt(s.clock.Now().UnixNano(), 36),
		PrefetchCount: uint32(count), NoAck: true, StreamOffset: &start}, col.deliver, func(error) { col.stop() })
	if err != nil {
		return nil, err
	}
	select {
	case <-col.full:
	case <-ctx.Done():
	}
	cctx, ccancel := context.WithTimeout(context.Background(), base.AdminCloseTimeout)
	defer ccancel()
	_ = sub.Cancel(cctx) // deliveries were auto-acked; a failed cancel ends with the session
	return StreamReadResponse{Messages: col.take()}, nil
}

// collector gathers a read's deliveries (called from a broker goroutine).
type collector struct {
	max  int
	from int64         // deliveries before this offset are skipped
	full chan struct{} // closed once max messages arrived or the consumer was cancelled

	mu   sync.Mutex
	msgs []MessageOut // guarded by mu
	done bool         // guarded by mu
}

func (c *collector) deliver(d broker.Delivery) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done || d.StreamOffset < c.from {
		return
	}
	m := messageToJSON(&d, false)
	p, off := d.Partition, d.StreamOffset
	m.Partition, m.Offset = &p, &off
	c.msgs = append(c.msgs, m)
	if len(c.msgs) >= c.max {
		c.done = true
		close(c.full)
	}
}

func (c *collector) stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.done {
		c.done = true
		close(c.full)
	}
}

func (c *collector) take() []MessageOut {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.done = true
	if c.msgs == nil {
		return []MessageOut{}
	}
	return c.msgs
}

func parseStreamStart(s string) (broker.StreamStart, error) {
	switch s {
	case "", "first":
		return broker.StreamStart{Kind: broker.StreamFirst}, nil
	case "last":
		return broker.StreamStart{Kind: broker.StreamLast}, nil
	case "next":
		return broker.StreamStart{Kind: broker.StreamNext}, nil
	}
	off, err := strconv.ParseInt(s, 10, 64)
	if err != nil || off < 0 {
		return broker.StreamStart{}, invalid("offset %q, want first, last, next or an offset >= 0", s)
	}
	return broker.StreamStart{Kind: broker.StreamOffset, Offset: off}, nil
}

func intQuery(v string, def, lo, hi int, name string) (int, error) {
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, invalid("%s=%q, want %d to %d", name, v, lo, hi)
	}
	return n, nil
}

// ConsumerGroup is a Kafka-style consumer group led by this node's
// coordinators.
type ConsumerGroup struct {
	Group        string `json:"group"`
	ProtocolType string `json:"protocol_type,omitempty"`
	State        string `json:"state"`
}

// listGroups lists the consumer groups whose coordinators this node
// leads. It needs the concrete broker (the element type is below the
// admin layer and is read through its fields).
func (s *Server) listGroups(c *call) (any, error) {
	bb, ok := s.b.(*broker.Broker)
	if !ok {
		return nil, notSupported("listing consumer groups", "Broker.ListGroups")
	}
	out := []ConsumerGroup{}
	for _, g := range bb.ListGroups() {
		out = append(out, ConsumerGroup{Group: g.Group, ProtocolType: g.ProtocolType, State: g.State.String()})
	}
	return out, nil
}

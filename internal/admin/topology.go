package admin

import (
	"strconv"
	"strings"
	"time"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/broker"
)

// Exchange is an exchange as the API shows it.
type Exchange struct {
	Name       string         `json:"name"`
	Type       string         `json:"type"`
	Durable    bool           `json:"durable"`
	AutoDelete bool           `json:"auto_delete"`
	Internal   bool           `json:"internal"`
	Arguments  map[string]any `json:"arguments,omitempty"`
}

// ExchangeSpec declares an exchange (PUT); redeclaring with other
// settings fails with precondition_failed.
type ExchangeSpec struct {
	Type       string         `json:"type" enum:"direct,fanout,topic,headers"`
	Durable    *bool          `json:"durable,omitempty"` // default true
	AutoDelete bool           `json:"auto_delete,omitempty"`
	Internal   bool           `json:"internal,omitempty"`
	Arguments  map[string]any `json:"arguments,omitempty"`
}

// Queue is a queue as the API shows it.
type Queue struct {
	Name       string         `json:"name"`
	Tenant     string         `json:"tenant"`
	Type       string         `json:"type"` // classic or quorum (both replicated in Ferry)
	Durable    bool           `json:"durable"`
	Exclusive  bool           `json:"exclusive"`
	AutoDelete bool           `json:"auto_delete"`
	Arguments  map[string]any `json:"arguments,omitempty"`
	Policy     string         `json:"policy,omitempty"`
	Replicas   []uint64       `json:"replicas"`
	CreatedAt  string         `json:"created_at,omitempty"`
	// Stats are the queue's counts from this node's replica; absent when
	// the node holds none (stats_error says why).
	Stats      *QueueStats `json:"stats,omitempty"`
	StatsError string      `json:"stats_error,omitempty"`
}

// QueueStats are a queue's counts and rates.
type QueueStats struct {
	Ready        uint64 `json:"ready"`
	Unacked      uint64 `json:"unacked"`
	Delayed      uint64 `json:"delayed"`
	DeadLetter   uint64 `json:"dead_letter_pending"`
	Consumers    uint64 `json:"consumers"`
	ReadyBytes   uint64 `json:"ready_bytes"`
	UnackedBytes uint64 `json:"unacked_bytes"`
	DelayedBytes uint64 `json:"delayed_bytes"`
	Leader       uint64 `json:"leader"`
	// Totals are monotonic counters since the queue was created.
	Totals QueueTotals `json:"totals"`
	Rates  Rates       `json:"rates"`
}

// QueueTotals are a queue's monotonic counters.
type QueueTotals struct {
	Enqueued     uint64 `json:"enqueued"`
	Delivered    uint64 `json:"delivered"`
	Redelivered  uint64 `json:"redelivered"`
	Acked        uint64 `json:"acked"`
	Returned     uint64 `json:"returned"`
	Expired      uint64 `json:"expired"`
	DeadLettered uint64 `json:"dead_lettered"`
	Dropped      uint64 `json:"dropped"`
	Deduplicated uint64 `json:"deduplicated"`
	Rejected     uint64 `json:"rejected"`
	// Relocated counts bodies moved forward in the queue's log so that
	// the log behind long-held messages can be freed.
	Relocated uint64 `json:"relocated"`
	// Resent counts messages a node sent again after a leader change
	// that the queue held already, and did not store again.
	Resent uint64 `json:"resent"`
}

// QueueSpec declares a queue (PUT).
type QueueSpec struct {
	// Type sets x-queue-type: classic, quorum (the same replicated queue
	// in Ferry) or stream.
	Type       string         `json:"type,omitempty" enum:"classic,quorum,stream"`
	Durable    *bool          `json:"durable,omitempty"` // default true
	AutoDelete bool           `json:"auto_delete,omitempty"`
	Arguments  map[string]any `json:"arguments,omitempty"`
}

// Deleted says how many messages a delete or purge discarded.
type Deleted struct {
	Messages uint64 `json:"messages"`
}

// Stream is a stream as the API shows it.
type Stream struct {
	Name            string         `json:"name"`
	Tenant          string         `json:"tenant"`
	Arguments       map[string]any `json:"arguments,omitempty"`
	Policy          string         `json:"policy,omitempty"`
	RetentionBytes  int64          `json:"retention_bytes"`
	RetentionMs     int64          `json:"retention_ms"`
	SegmentBytes    int64          `json:"segment_bytes"`
	MaxMessageBytes int64          `json:"max_message_bytes"`
	CreatedAt       string         `json:"created_at,omitempty"`
	Partitions      []Partition    `json:"partitions"`
}

// Partition is one partition of a stream; the offsets are from this
// node's replica (absent when it holds none).
type Partition struct {
	Partition      int32    `json:"partition"`
	Replicas       []uint64 `json:"replicas"`
	Leader         uint64   `json:"leader,omitempty"`
	LogStartOffset *int64   `json:"log_start_offset,omitempty"`
	HighWatermark  *int64   `json:"high_watermark,omitempty"`
	RetainedBytes  *int64   `json:"retained_bytes,omitempty"`
	Messages       *int64   `json:"messages,omitempty"` // records retained
	Producers      *int     `json:"producers,omitempty"`
}

// StreamSpec creates a stream (PUT).
type StreamSpec struct {
	Partitions        int               `json:"partitions,omitempty"` // default 1
	ReplicationFactor int               `json:"replication_factor,omitempty"`
	Config            map[string]string `json:"config,omitempty"` // Kafka topic configs: retention.ms, retention.bytes, ...
}

// PartitionsSpec grows a stream to Total partitions.
type PartitionsSpec struct {
	Total int `json:"total"`
}

// Binding routes from an exchange to a queue, stream or exchange.
type Binding struct {
	Source          string         `json:"source"`
	Destination     string         `json:"destination"`
	DestinationKind string         `json:"destination_kind" enum:"queue,stream,exchange"`
	RoutingKey      string         `json:"routing_key"`
	Arguments       map[string]any `json:"arguments,omitempty"`
}

// defaultExchange is how the path names the default exchange ("").
const defaultExchange = "amq.default"

func exchangeName(path string) string {
	if path == defaultExchange {
		return ""
	}
	return path
}

// page applies the prefix, after and limit query parameters to names
// (sorted), returning the indexes to show.
func (c *call) page(n int, name func(i int) string) ([]int, error) {
	prefix, after := c.query("prefix"), c.query("after")
	limit := base.AdminListItemsMax
	if l := c.query("limit"); l != "" {
		v, err := strconv.Atoi(l)
		if err != nil || v < 1 || v > base.AdminListItemsMax {
			return nil, invalid("limit %q, want 1 to %d (AdminListItemsMax)", l, base.AdminListItemsMax)
		}
		limit = v
	}
	var out []int
	for i := range n {
		nm := name(i)
		if !strings.HasPrefix(nm, prefix) || (after != "" && nm <= after) {
			continue
		}
		if len(out) == limit {
			break
		}
		out = append(out, i)
	}
	return out, nil
}

var pList = []param{pTenant,
	{"prefix", "string", "only names starting with this"},
	{"after", "string", "only names after this one (paging: pass the last name of the previous page)"},
	{"limit", "integer", "at most this many (default and maximum AdminListItemsMax)"}}

func msTime(ms int64) string {
	if ms <= 0 {
		return ""
	}
	return time.UnixMilli(ms).UTC().Format(time.RFC3339)
}

func nodeIDs[T ~uint64](ns []T) []uint64 {
	out := make([]uint64, len(ns))
	for i, n := range ns {
		out[i] = uint64(n)
	}
	return out
}

// --- exchanges

func (s *Server) listExchanges(c *call) (any, error) {
	v := s.b.Topology(c.tenant())
	idx, err := c.page(len(v.Exchanges), func(i int) string { return v.Exchanges[i].Name })
	if err != nil {
		return nil, err
	}
	out := []Exchange{}
	for _, i := range idx {
		e := &v.Exchanges[i]
		out = append(out, Exchange{Name: e.Name, Type: e.Type.String(), Durable: e.Durable, AutoDelete: e.AutoDelete,
			Internal: e.Internal, Arguments: argsToJSON(len(e.Args), func(j int) (string, string, scalar) {
				return e.Args[j].Key, e.Args[j].Value.Kind().String(), e.Args[j].Value
			})})
	}
	return out, nil
}

func (s *Server) getExchange(c *call) (any, error) {
	name, tenant := exchangeName(c.path("name")), c.tenant()
	v := s.b.Topology(tenant)
	for i := range v.Exchanges {
		if e := &v.Exchanges[i]; e.Name == name {
			return Exchange{Name: e.Name, Type: e.Type.String(), Durable: e.Durable, AutoDelete: e.AutoDelete,
				Internal: e.Internal, Arguments: argsToJSON(len(e.Args), func(j int) (string, string, scalar) {
					return e.Args[j].Key, e.Args[j].Value.Kind().String(), e.Args[j].Value
				})}, nil
		}
	}
	return nil, base.Errorf(base.CodeNotFound, "no exchange '%s' in tenant '%s'", c.path("name"), tenant)
}

func (s *Server) putExchange(c *call) (any, error) {
	var spec ExchangeSpec
	if err := decodeBody(c.r, &spec, false); err != nil {
		return nil, err
	}
	name := c.path("name")
	if name == defaultExchange || strings.HasPrefix(name, "amq.") {
		return nil, base.Errorf(base.CodeAccessRefused, "exchange names starting with 'amq.' are reserved")
	}
	args, err := argsFromJSON(spec.Arguments)
	if err != nil {
		return nil, err
	}
	conn, err := c.conn(c.tenant())
	if err != nil {
		return nil, err
	}
	durable := spec.Durable == nil || *spec.Durable
	return nil, conn.DeclareExchange(c.ctx(), broker.ExchangeSpec{Name: name, Type: spec.Type, Durable: durable,
		AutoDelete: spec.AutoDelete, Internal: spec.Internal, Arguments: args})
}

func (s *Server) deleteExchange(c *call) (any, error) {
	ifUnused, err := c.boolQuery("if_unused")
	if err != nil {
		return nil, err
	}
	conn, err := c.conn(c.tenant())
	if err != nil {
		return nil, err
	}
	return nil, conn.DeleteExchange(c.ctx(), exchangeName(c.path("name")), ifUnused)
}

func (c *call) boolQuery(name string) (bool, error) {
	switch v := c.query(name); v {
	case "", "false", "0":
		return false, nil
	case "true", "1":
		return true, nil
	default:
		return false, invalid("%s=%q, want true or false", name, v)
	}
}

// --- queues

func (s *Server) queueJSON(tenant string, q int, v *broker.TopologyView, withStats bool) Queue {
	qi := &v.Queues[q]
	out := Queue{Name: qi.Name, Tenant: tenant, Type: qi.Type.String(), Durable: qi.Durable, Exclusive: qi.Exclusive,
		AutoDelete: qi.AutoDelete, Policy: qi.Policy, Replicas: nodeIDs(qi.Placement.Replicas), CreatedAt: msTime(qi.CreatedMs),
		Arguments: argsToJSON(len(qi.Args), func(j int) (string, string, scalar) {
			return qi.Args[j].Key, qi.Args[j].Value.Kind().String(), qi.Args[j].Value
		})}
	if withStats {
		st, err := s.b.QueueStats(tenant, qi.Name)
		if err != nil {
			out.StatsError = err.Error()
		} else {
			out.Stats = s.queueStats(st)
		}
	}
	return out
}

func (s *Server) queueStats(st broker.QueueStats) *QueueStats {
	c := st.Counters
	return &QueueStats{Ready: st.Ready, Unacked: st.Unacked, Delayed: st.Delayed, DeadLetter: st.DeadLetter,
		Consumers: st.Consumers, ReadyBytes: st.ReadyBytes, UnackedBytes: st.UnackedBytes, DelayedBytes: st.DelayedBytes,
		Leader: uint64(st.Leader), Rates: s.rates.observe(st),
		Totals: QueueTotals{Enqueued: c.Enqueued, Delivered: c.Delivered, Redelivered: c.Redelivered, Acked: c.Acked,
			Returned: c.Returned, Expired: c.Expired, DeadLettered: c.DeadLettered, Dropped: c.Dropped,
			Deduplicated: c.Deduplicated, Rejected: c.Rejected, Relocated: c.Relocated, Resent: c.Resent}}
}

func (s *Server) listQueues(c *call) (any, error) {
	tenant := c.tenant()
	stats, err := c.boolQuery("stats")
	if err != nil {
		return nil, err
	}
	v := s.b.Topology(tenant)
	idx, err := c.page(len(v.Queues), func(i int) string { return v.Queues[i].Name })
	if err != nil {
		return nil, err
	}
	out := []Queue{}
	for _, i := range idx {
		out = append(out, s.queueJSON(tenant, i, &v, stats))
	}
	return out, nil
}

func (s *Server) getQueue(c *call) (any, error) {
	tenant, name := c.tenant(), c.path("name")
	v := s.b.Topology(tenant)
	for i := range v.Queues {
		if v.Queues[i].Name == name {
			return s.queueJSON(tenant, i, &v, true), nil
		}
	}
	return nil, base.Errorf(base.CodeNotFound, "no queue '%s' in tenant '%s'", name, tenant)
}

func (s *Server) putQueue(c *call) (any, error) {
	var spec QueueSpec
	if err := decodeBody(c.r, &spec, true); err != nil {
		return nil, err
	}
	args, err := argsFromJSON(spec.Arguments)
	if err != nil {
		return nil, err
	}
	if spec.Type != "" {
		if _, ok := args.Get("x-queue-type"); ok {
			return nil, invalid("give the queue type once: as type or as the x-queue-type argument")
		}
		args = append(args, broker.Header{Key: "x-queue-type", Value: broker.StringValue(spec.Type)})
	}
	conn, err := c.conn(c.tenant())
	if err != nil {
		return nil, err
	}
	durable := spec.Durable == nil || *spec.Durable
	_, err = conn.DeclareQueue(c.ctx(), broker.QueueSpec{Name: c.path("name"), Durable: durable, AutoDelete: spec.AutoDelete, Arguments: args})
	return nil, err
}

func (s *Server) deleteQueue(c *call) (any, error) {
	ifUnused, err := c.boolQuery("if_unused")
	if err != nil {
		return nil, err
	}
	ifEmpty, err := c.boolQuery("if_empty")
	if err != nil {
		return nil, err
	}
	tenant, name := c.tenant(), c.path("name")
	conn, err := c.conn(tenant)
	if err != nil {
		return nil, err
	}
	n, err := conn.DeleteQueueAsOperator(c.ctx(), name, ifUnused, ifEmpty)
	if err != nil {
		return nil, err
	}
	s.rates.forget(tenant, name)
	return Deleted{Messages: n}, nil
}

func (s *Server) purgeQueue(c *call) (any, error) {
	conn, err := c.conn(c.tenant())
	if err != nil {
		return nil, err
	}
	n, err := conn.PurgeQueue(c.ctx(), c.path("name"))
	if err != nil {
		return nil, err
	}
	return Deleted{Messages: n}, nil
}

// --- streams

func (s *Server) streamJSON(tenant string, i int, v *broker.TopologyView) Stream {
	si := &v.Streams[i]
	out := Stream{Name: si.Name, Tenant: tenant, Policy: si.Policy, CreatedAt: msTime(si.CreatedMs),
		RetentionBytes: si.Config.Partition.RetentionBytes, RetentionMs: si.Config.Partition.RetentionMs,
		SegmentBytes: si.Config.SegmentBytes, MaxMessageBytes: si.Config.MaxMessageBytes,
		Arguments: argsToJSON(len(si.Args), func(j int) (string, string, scalar) {
			return si.Args[j].Key, si.Args[j].Value.Kind().String(), si.Args[j].Value
		})}
	stats, _ := s.b.StreamStats(tenant, si.Name) // partitions hosted here; none is not an error
	for p := range si.Partitions {
		part := Partition{Partition: int32(p), Replicas: nodeIDs(si.Partitions[p].Replicas)}
		for k := range stats {
			if st := stats[k]; st.Partition == int32(p) {
				part.Leader = uint64(st.Leader)
				part.LogStartOffset, part.HighWatermark, part.RetainedBytes = &st.LogStartOffset, &st.HighWatermark, &st.RetainedBytes
				part.Messages = &st.Records
				part.Producers = &st.Producers
			}
		}
		out.Partitions = append(out.Partitions, part)
	}
	return out
}

func (s *Server) listStreams(c *call) (any, error) {
	tenant := c.tenant()
	v := s.b.Topology(tenant)
	idx, err := c.page(len(v.Streams), func(i int) string { return v.Streams[i].Name })
	if err != nil {
		return nil, err
	}
	out := []Stream{}
	for _, i := range idx {
		out = append(out, s.streamJSON(tenant, i, &v))
	}
	return out, nil
}

func (s *Server) getStream(c *call) (any, error) {
	tenant, name := c.tenant(), c.path("name")
	v := s.b.Topology(tenant)
	for i := range v.Streams {
		if v.Streams[i].Name == name {
			return s.streamJSON(tenant, i, &v), nil
		}
	}
	return nil, base.Errorf(base.CodeNotFound, "no stream '%s' in tenant '%s'", name, tenant)
}

func (s *Server) putStream(c *call) (any, error) {
	var spec StreamSpec
	if err := decodeBody(c.r, &spec, true); err != nil {
		return nil, err
	}
	if spec.Partitions == 0 {
		spec.Partitions = 1
	}
	conn, err := c.conn(c.tenant())
	if err != nil {
		return nil, err
	}
	return nil, conn.DeclareStream(c.ctx(), broker.StreamSpec{Name: c.path("name"), Partitions: spec.Partitions,
		ReplicationFactor: spec.ReplicationFactor, Config: spec.Config})
}

func (s *Server) deleteStream(c *call) (any, error) {
	conn, err := c.conn(c.tenant())
	if err != nil {
		return nil, err
	}
	return nil, conn.DeleteStream(c.ctx(), c.path("name"))
}

func (s *Server) addPartitions(c *call) (any, error) {
	var spec PartitionsSpec
	if err := decodeBody(c.r, &spec, false); err != nil {
		return nil, err
	}
	conn, err := c.conn(c.tenant())
	if err != nil {
		return nil, err
	}
	return nil, conn.AddPartitions(c.ctx(), c.path("name"), spec.Total)
}

// --- bindings

func (s *Server) listBindings(c *call) (any, error) {
	v := s.b.Topology(c.tenant())
	src, dst := c.query("source"), c.query("destination")
	out := []Binding{}
	for i := range v.Bindings {
		b := &v.Bindings[i]
		if (src != "" && exchangeName(src) != b.Source) || (dst != "" && dst != b.Destination.Name) {
			continue
		}
		if len(out) == base.AdminListItemsMax {
			break
		}
		out = append(out, Binding{Source: b.Source, Destination: b.Destination.Name, DestinationKind: b.Destination.Kind.String(),
			RoutingKey: b.Key, Arguments: argsToJSON(len(b.Args), func(j int) (string, string, scalar) {
				return b.Args[j].Key, b.Args[j].Value.Kind().String(), b.Args[j].Value
			})})
	}
	return out, nil
}

func bindingSpec(b *Binding) (broker.BindingSpec, error) {
	var kind broker.EntityKind
	switch b.DestinationKind {
	case "", "queue":
		kind = broker.EntityQueue
	case "stream":
		kind = broker.EntityStream
	case "exchange":
		kind = broker.EntityExchange
	default:
		return broker.BindingSpec{}, invalid("destination_kind %q, want queue, stream or exchange", b.DestinationKind)
	}
	if b.Source == "" || b.Destination == "" {
		return broker.BindingSpec{}, invalid("a binding needs a source exchange and a destination")
	}
	args, err := argsFromJSON(b.Arguments)
	if err != nil {
		return broker.BindingSpec{}, err
	}
	return broker.BindingSpec{Source: exchangeName(b.Source), Destination: b.Destination, DestinationKind: kind,
		RoutingKey: b.RoutingKey, Arguments: args}, nil
}

func (s *Server) bind(c *call, unbind bool) (any, error) {
	var b Binding
	if err := decodeBody(c.r, &b, false); err != nil {
		return nil, err
	}
	spec, err := bindingSpec(&b)
	if err != nil {
		return nil, err
	}
	conn, err := c.conn(c.tenant())
	if err != nil {
		return nil, err
	}
	if unbind {
		return nil, conn.Unbind(c.ctx(), spec)
	}
	return nil, conn.Bind(c.ctx(), spec)
}

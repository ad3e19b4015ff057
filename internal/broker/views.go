package broker

import (
	"context"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/controller"
	"github.com/ferry-mq/ferry/internal/queue"
	"github.com/ferry-mq/ferry/internal/replication"
	"github.com/ferry-mq/ferry/internal/routing"
	"github.com/ferry-mq/ferry/internal/stream"
)

// QueueStats is a queue's counts, from the replica on this node (a
// follower's may lag its leader by a few entries).
type QueueStats struct {
	Name, Tenant string
	Ready        uint64
	Unacked      uint64
	Delayed      uint64
	DeadLetter   uint64 // dead-lettered, waiting to be republished
	Consumers    uint64
	ReadyBytes   uint64
	UnackedBytes uint64
	DelayedBytes uint64
	LastUsedMs   int64          // declared, consumed from or read by a get, Unix ms: x-expires runs from it
	Counters     queue.Counters // monotonic: rates are their differences over time
	Leader       NodeID
	IsLeaderHere bool
}

// QueueStats returns a queue's counts. Errors: CodeNotFound; CodeUnavailable
// when this node holds no replica of it.
func (b *Broker) QueueStats(tenant, name string) (QueueStats, error) {
	ent, err := b.lookupQueue(tenant, name)
	if err != nil {
		return QueueStats{}, err
	}
	if ent.isStream {
		return QueueStats{}, base.Errorf(base.CodeInvalidArgument, "'%s' is a stream; see StreamStats", name)
	}
	lg := b.group(ent.group)
	if lg == nil {
		return QueueStats{}, b.notHere(ent.group, "read the stats of queue '"+name+"'")
	}
	f := lg.fsm.(*queueFSM)
	out := QueueStats{Name: name, Tenant: tenant, Leader: b.knownLeader(ent.group)}
	out.IsLeaderHere = out.Leader == b.node
	f.read(func(q *queue.Queue) {
		st := q.Stats()
		out.Ready, out.Unacked, out.Delayed = uint64(st.Ready), uint64(st.Unacked), uint64(st.Delayed)
		out.DeadLetter, out.Consumers = uint64(st.DeadLetterPending), uint64(st.Consumers)
		out.ReadyBytes, out.UnackedBytes, out.DelayedBytes = st.ReadyBytes, st.UnackedBytes, st.DelayedBytes
		out.LastUsedMs, out.Counters = st.LastUsedMs, st.Counters
	})
	return out, nil
}

// QueueStatsWait is QueueStats once the queue's replica on this node can
// answer: after a restart or a declare it waits (bounded by ctx) for the
// group to open here and know its leader, as calls to the leader do
// (awaitLeader). A node without a replica answers CodeUnavailable at
// once, as QueueStats.
func (b *Broker) QueueStatsWait(ctx context.Context, tenant, name string) (QueueStats, error) {
	ent, err := b.lookupQueue(tenant, name)
	if err != nil {
		return QueueStats{}, err
	}
	if !ent.isStream {
		if err := b.waitGroupReady(ctx, ent.group); err != nil {
			return QueueStats{}, err
		}
	}
	return b.QueueStats(tenant, name)
}

// StreamStatsWait is StreamStats once every partition placed on this node
// is open here with a leader known (bounded by ctx), so that none is
// missing from the answer just after a restart.
func (b *Broker) StreamStatsWait(ctx context.Context, tenant, name string) ([]PartitionStats, error) {
	s, err := b.lookupStream(tenant, name)
	if err != nil {
		return nil, err
	}
	for _, p := range s.Partitions {
		if err := b.waitGroupReady(ctx, GroupID(p.Group)); err != nil {
			return nil, err
		}
	}
	return b.StreamStats(tenant, name)
}

// PartitionStats is one partition's state on this node.
type PartitionStats struct {
	Partition      int32
	LogStartOffset int64
	HighWatermark  int64
	RetainedBytes  int64
	Records        int64 // in the retained data batches
	Producers      int
	Leader         NodeID
}

// StreamStats returns the state of a stream's partitions hosted here.
func (b *Broker) StreamStats(tenant, name string) ([]PartitionStats, error) {
	s, err := b.lookupStream(tenant, name)
	if err != nil {
		return nil, err
	}
	var out []PartitionStats
	for i, p := range s.Partitions {
		lg := b.group(GroupID(p.Group))
		if lg == nil {
			continue
		}
		f := lg.fsm.(*partitionFSM)
		ps := PartitionStats{Partition: int32(i), Leader: b.knownLeader(GroupID(p.Group))}
		f.with(func(pp *stream.Partition) {
			ps.LogStartOffset, _ = pp.LogStart()
			ps.HighWatermark = pp.HighWatermark()
			ps.RetainedBytes = pp.RetainedBytes()
			ps.Records = pp.Records()
			ps.Producers = pp.ProducerCount()
		})
		out = append(out, ps)
	}
	return out, nil
}

// TopologyView is a tenant's entities, read from this node's controller
// replica. Its slices are the caller's.
type TopologyView struct {
	Exchanges []routing.Exchange
	Queues    []controller.QueueInfo
	Streams   []controller.StreamInfo
	Bindings  []routing.Binding
}

// Topology returns a tenant's exchanges, queues, streams (with their
// partitions' placements) and bindings.
func (b *Broker) Topology(tenant string) TopologyView {
	var v TopologyView
	b.ctrl.read(func(c *controller.Controller) {
		v.Exchanges = c.Exchanges(tenant, controller.ListFilter{})
		v.Queues = c.Queues(tenant, controller.ListFilter{})
		v.Streams = c.Streams(tenant, controller.ListFilter{})
		v.Bindings = c.Bindings(tenant, controller.BindingFilter{})
	})
	return v
}

// ClusterNode is one node of the cluster.
type ClusterNode struct {
	ID       NodeID
	RaftAddr string
	// ForwardAddr is from this node's configuration; front ends keep their
	// own listener addresses per node.
	ForwardAddr string
	State       string
}

// PartitionLeader is where one stream partition runs.
type PartitionLeader struct {
	Stream    string
	Partition int32
	Leader    NodeID // 0 when unknown here
	Replicas  []NodeID
}

// ClusterView is what Kafka's Metadata needs: the nodes, and the leader
// of every partition of a tenant's streams.
type ClusterView struct {
	Self       NodeID
	Nodes      []ClusterNode
	Partitions []PartitionLeader
}

// Cluster describes the cluster and the tenant's partitions. A
// partition's leader is known when this node hosts a replica of it; else
// its preferred leader is given.
func (b *Broker) Cluster(tenant string) ClusterView {
	v := ClusterView{Self: b.node}
	var streams []controller.StreamInfo
	b.ctrl.read(func(c *controller.Controller) {
		for _, n := range c.Nodes() {
			v.Nodes = append(v.Nodes, ClusterNode{ID: NodeID(n.ID), RaftAddr: n.Addr,
				ForwardAddr: b.peer(NodeID(n.ID)).ForwardAddr, State: n.State.String()})
		}
		streams = c.Streams(tenant, controller.ListFilter{})
	})
	for _, s := range streams {
		for i, p := range s.Partitions {
			pl := PartitionLeader{Stream: s.Name, Partition: int32(i), Leader: NodeID(p.Preferred)}
			if lead := b.knownLeader(GroupID(p.Group)); lead != 0 {
				pl.Leader = lead
			}
			for _, r := range p.Replicas {
				pl.Replicas = append(pl.Replicas, NodeID(r))
			}
			v.Partitions = append(v.Partitions, pl)
		}
	}
	return v
}

// EngineMetrics are the node's Raft engine figures: counters since Open
// and the fsync and commit latency histograms (replication.Metrics).
type EngineMetrics = replication.Metrics

// EngineHistogram is one of EngineMetrics' latency histograms.
type EngineHistogram = replication.Histogram

// LatencyBucketsSeconds are the upper bounds, in seconds, of the buckets
// of EngineMetrics' histograms.
var LatencyBucketsSeconds = replication.LatencyBucketsSeconds

// EngineMetrics returns a snapshot of the engine's figures; it reads
// atomics only, so a scrape may call it at any time.
func (b *Broker) EngineMetrics() EngineMetrics { return b.engine.Metrics() }

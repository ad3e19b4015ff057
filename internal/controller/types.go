package controller

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/ferry-mq/ferry/internal/queue"
	"github.com/ferry-mq/ferry/internal/routing"
	"github.com/ferry-mq/ferry/internal/stream"
)

// GroupID names a Raft group of the cluster. The controller allocates them
// from a counter that only grows, so an id is never reused, even after its
// group is deleted; ControllerGroup (0) is the controller's own group.
type GroupID uint64

// ControllerGroup is the metadata group itself.
const ControllerGroup GroupID = 0

// NodeID names a node of the cluster. 0 is not a node.
type NodeID uint64

// NodeState is what the cluster knows about a node.
type NodeState uint8

const (
	// NodeLive nodes receive the replicas of new groups.
	NodeLive NodeState = iota + 1
	// NodeDown nodes are unreachable: they keep their replicas but get no
	// new ones.
	NodeDown
	// NodeDraining nodes are being emptied by an operator: no new
	// replicas.
	NodeDraining
)

var nodeStateNames = [...]string{NodeLive: "live", NodeDown: "down", NodeDraining: "draining"}

func (s NodeState) valid() bool { return s >= NodeLive && s <= NodeDraining }

func (s NodeState) String() string {
	if s.valid() {
		return nodeStateNames[s]
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// Node is a member of the cluster as registered.
type Node struct {
	ID    NodeID
	Addr  string // host:port of its inter-node listener
	State NodeState
}

// Placement is where one group runs: its replicas, sorted by node id, and
// the replica that should lead it (chosen to spread leadership).
type Placement struct {
	Group     GroupID
	Replicas  []NodeID
	Preferred NodeID
}

func (p Placement) clone() Placement {
	p.Replicas = append([]NodeID(nil), p.Replicas...)
	return p
}

func (p Placement) String() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "group %d on [", p.Group)
	for i, n := range p.Replicas {
		if i > 0 {
			sb.WriteByte(' ')
		}
		sb.WriteString(strconv.FormatUint(uint64(n), 10))
		if n == p.Preferred {
			sb.WriteByte('*')
		}
	}
	sb.WriteByte(']')
	return sb.String()
}

// QueueType is the x-queue-type of a declared queue. Classic and quorum
// queues are the same Ferry queue (every queue is replicated); the type is
// kept because RabbitMQ compares it on redeclaration.
type QueueType uint8

const (
	TypeClassic QueueType = iota + 1
	TypeQuorum
	TypeStream
)

var queueTypeNames = [...]string{TypeClassic: "classic", TypeQuorum: "quorum", TypeStream: "stream"}

func (t QueueType) valid() bool { return t >= TypeClassic && t <= TypeStream }

func (t QueueType) String() string {
	if t.valid() {
		return queueTypeNames[t]
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// QueueConfig is the effective configuration of a queue: its own
// arguments merged with the policy that matches it.
type QueueConfig struct {
	// Queue is what the queue's group runs with (queue.Configure).
	// Queue.DeadLetterTarget is FormatDeadLetterTarget of the fields
	// below.
	Queue queue.Config
	// OrderingByKey makes the broker pass each message's ordering key to
	// the queue (x-ferry-ordering-key); off, messages carry none.
	OrderingByKey bool
	// DeadLetter is where dead-lettered messages are republished.
	DeadLetter DeadLetter
}

// DeadLetter is a queue's dead-letter target: an exchange of the queue's
// tenant and, optionally, the routing key to republish with (otherwise
// the message's own routing keys).
type DeadLetter struct {
	Set           bool
	Exchange      string
	RoutingKey    string
	HasRoutingKey bool
}

// FormatDeadLetterTarget encodes d as the opaque queue.Config
// DeadLetterTarget: "" when unset, else `dlx "<exchange>"` followed by
// ` "<routing key>"` when one is set (Go-quoted, so any bytes survive).
func FormatDeadLetterTarget(d DeadLetter) string {
	if !d.Set {
		return ""
	}
	s := "dlx " + strconv.Quote(d.Exchange)
	if d.HasRoutingKey {
		s += " " + strconv.Quote(d.RoutingKey)
	}
	return s
}

// ParseDeadLetterTarget decodes what FormatDeadLetterTarget wrote, for the
// broker handling a queue's DeadLetter effect.
func ParseDeadLetterTarget(s string) (DeadLetter, error) {
	if s == "" {
		return DeadLetter{}, nil
	}
	bad := fmt.Errorf("dead-letter target %q is not `dlx \"exchange\" [\"key\"]`", s)
	rest, ok := strings.CutPrefix(s, "dlx ")
	if !ok {
		return DeadLetter{}, bad
	}
	q, err := strconv.QuotedPrefix(rest)
	if err != nil {
		return DeadLetter{}, bad
	}
	d := DeadLetter{Set: true}
	d.Exchange, _ = strconv.Unquote(q)
	rest = rest[len(q):]
	if rest == "" {
		return d, nil
	}
	if rest, ok = strings.CutPrefix(rest, " "); !ok {
		return DeadLetter{}, bad
	}
	if q, err = strconv.QuotedPrefix(rest); err != nil || len(q) != len(rest) {
		return DeadLetter{}, bad
	}
	d.RoutingKey, _ = strconv.Unquote(q)
	d.HasRoutingKey = true
	return d, nil
}

// StreamConfig is the effective configuration of a stream, the same for
// every partition.
type StreamConfig struct {
	// Partition is what each partition's group runs with
	// (stream.Configure): retention by bytes and age.
	Partition stream.PartitionConfig
	// SegmentBytes is the log segment size of each partition, and
	// SegmentMs the age at which a partition's segment rolls (Kafka's
	// segment.bytes and segment.ms).
	SegmentBytes int64
	SegmentMs    int64
	// MaxMessageBytes bounds one record batch a producer may append.
	MaxMessageBytes int64
}

// QueueInfo describes a queue. Its slices are copies the caller owns.
type QueueInfo struct {
	Tenant      string
	Name        string
	Type        QueueType // TypeClassic or TypeQuorum
	Durable     bool
	Exclusive   bool
	Owner       string // the connection owning an exclusive queue
	AutoDelete  bool
	ServerNamed bool
	Args        []routing.Field // canonical: sorted by key, first of a duplicate kept
	CreatedMs   int64
	Placement   Placement
	Config      QueueConfig // effective
	Policy      string      // the policy applied, "" for none
}

// StreamInfo describes a stream. Its slices are copies the caller owns.
type StreamInfo struct {
	Tenant     string
	Name       string
	FromKafka  bool            // created by DeclareStream (Kafka defaults) rather than queue.declare
	Args       []routing.Field // canonical
	CreatedMs  int64
	Partitions []Placement // partition i runs on Partitions[i]
	Config     StreamConfig
	Policy     string
}

// EntityRef names a queue or a stream.
type EntityRef struct {
	Tenant string
	Kind   routing.DestKind // routing.Queue or routing.Stream
	Name   string
}

func (r EntityRef) String() string { return fmt.Sprintf("%s %q in %q", r.Kind, r.Name, r.Tenant) }

// Removed reports a queue or stream that a command deleted. The broker
// stops its groups and deletes their data.
type Removed struct {
	EntityRef
	Groups []GroupID
}

// Reconfigured reports a queue or stream whose effective configuration a
// command changed. The broker proposes queue.Configure{Config:
// Queue.Queue} to the queue's group, or stream.Configure{Config:
// Stream.Partition} to every partition's group.
type Reconfigured struct {
	EntityRef
	Groups []GroupID
	Queue  *QueueConfig  // set for a queue
	Stream *StreamConfig // set for a stream
}

// ExchangeRef names an exchange.
type ExchangeRef struct {
	Tenant string
	Name   string
}

// Result is the outcome of one Apply. A non-nil Err means the command was
// refused and the state is unchanged; otherwise the other fields say what
// the broker must do. The Result and everything in it belong to the
// caller.
type Result struct {
	Err error
	// Created is set when a declare or create made something new (a
	// tenant, user, exchange, queue, stream, node or binding); a
	// redeclaration of an equivalent entity leaves it false.
	Created bool
	// Queue is the queue a DeclareQueue declared (new or existing).
	Queue *QueueInfo
	// Stream is the stream a DeclareStream, AddPartitions or AlterStream
	// acted on, or that a DeclareQueue with x-queue-type stream declared.
	Stream *StreamInfo
	// NewGroups are the groups created, in id order: the broker starts
	// each on its replicas.
	NewGroups []Placement
	// Removed are the queues and streams deleted, cascades included,
	// sorted by tenant, kind and name.
	Removed []Removed
	// ExchangesRemoved are the exchanges deleted: the target of a
	// DeleteExchange when it existed, auto-delete exchanges that lost
	// their last binding, every exchange of a deleted tenant. Sorted by
	// tenant and name.
	ExchangesRemoved []ExchangeRef
	// BindingsRemoved counts the bindings removed, cascades included.
	BindingsRemoved int
	// Reconfigured are the entities whose effective configuration
	// changed, sorted by tenant, kind and name.
	Reconfigured []Reconfigured
}

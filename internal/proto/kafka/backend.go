package kafka

import (
	"context"
	"net/netip"
	"time"

	"github.com/ferry-mq/ferry/internal/auth"
	"github.com/ferry-mq/ferry/internal/proto/kafka/protocol"
)

// This file is the contract between the Kafka front end and the broker:
// interfaces defined here, by their consumer, and satisfied by the adapter
// onto internal/broker (broker.go) and by the test double. Errors are
// *base.Error values; errors.go maps their codes onto Kafka's.

// Backend is the broker as the server needs it before a connection has a
// session: the user directory for SASL, and opening sessions.
type Backend interface {
	// Directory returns the user directory that SASL PLAIN and SCRAM
	// authenticate against (a snapshot; users changed later are not in
	// it, so it is fetched per authentication).
	Directory() *auth.Directory
	// Open registers a connection of principal p and returns its
	// session. kill asks the server to close the connection (the
	// management API's "close connection"); it may be called from any
	// goroutine. Errors: CodeAccessRefused (no permission on the tenant),
	// CodeNotFound (no such tenant), CodeOverloaded, CodeStopped.
	Open(info ConnInfo, p Principal, kill func(reason string)) (Session, error)
}

// Principal is the authenticated user of a connection.
type Principal struct {
	User   string
	Tenant string
}

// ConnInfo describes a client connection.
type ConnInfo struct {
	ID       string // unique on this server: "kafka/<seq>"
	Peer     netip.AddrPort
	ClientID string // the client id of the connection's first request
}

// Session is one connection's handle on the broker. Its methods are safe
// for concurrent use: the server calls them from the connection's reader
// and from the goroutines completing delayed requests.
type Session interface {
	Cluster
	Streams
	Groups
	Admin
	// Authorize checks a permission of the session's user on a stream:
	// CodeAccessRefused when refused.
	Authorize(action auth.Action, stream string) error
	// Close releases everything the session owned. It waits for that
	// (bounded by ctx).
	Close(ctx context.Context) error
}

// Node is one broker of the cluster as Kafka clients see it.
type Node struct {
	ID   int32
	Host string
	Port int32
	Rack string // "" for none
}

// PartitionInfo is one partition's placement.
type PartitionInfo struct {
	Index int32
	// Leader is the node leading the partition's group, -1 while it has
	// none (LEADER_NOT_AVAILABLE).
	Leader   int32
	Replicas []int32
	// ISR are the replicas caught up with the leader; Ferry's Raft
	// groups report the voters that are not known to be down.
	ISR []int32
}

// TopicInfo describes a stream as a Kafka topic.
type TopicInfo struct {
	Name string
	// ID is stable for the life of the stream and differs after it is
	// deleted and created again (Kafka's topic id).
	ID         protocol.UUID
	Partitions []PartitionInfo
}

// Cluster answers metadata questions.
type Cluster interface {
	// ClusterID returns the cluster's id, the same on every node.
	ClusterID() string
	// Nodes returns the cluster's nodes with their Kafka listener
	// addresses, sorted by id. The server replaces its own node's address
	// with its advertised one.
	Nodes() []Node
	// Self is this node's id.
	Self() int32
	// Controller returns the node leading the metadata group, or -1.
	Controller() int32
	// Topics returns the named streams of the session's tenant, or every
	// stream when names is nil; unknown names are left out. The slices
	// are the caller's.
	Topics(names []string) []TopicInfo
	// CoordinatorFor returns the node leading the coordinator group of a
	// consumer group: CodeUnavailable while it has no leader.
	CoordinatorFor(group string) (int32, error)
}

// PartitionRef names one partition of a stream.
type PartitionRef struct {
	Stream    string
	Partition int32
}

// ProduceResult is the outcome of one ProduceBatch.
type ProduceResult struct {
	BaseOffset     int64
	LogAppendTime  int64 // -1 unless the stream stamps append times
	LogStartOffset int64
	// Err is nil on success. Duplicates of an idempotent producer's
	// recent batch succeed with the original BaseOffset. Kafka-specific
	// outcomes carry a KafkaError (OUT_OF_ORDER_SEQUENCE_NUMBER,
	// INVALID_PRODUCER_EPOCH, ...); others carry base codes.
	Err error
}

// FetchResult is what one partition read returned.
type FetchResult struct {
	// Records are whole batches, ready for the response; the slice is the
	// caller's.
	Records []byte
	// HighWatermark is the log's end, control entries included: where a
	// read that found only control batches waits. DataEnd is the offset
	// after the last data batch: what clients are told is the high
	// watermark (and the last stable offset), so that the offset before
	// it is the last record, as in Kafka.
	HighWatermark  int64
	DataEnd        int64
	LogStartOffset int64
}

// FetchPosition is a partition and the offset a fetch waits beyond.
type FetchPosition struct {
	PartitionRef
	Offset int64
}

// Streams is the data path.
type Streams interface {
	// ProduceBatch appends one validated Kafka v2 record batch to a
	// partition. It returns once the batch is ordered: two calls on one
	// session for one partition append in call order, so pipelined
	// requests of an idempotent producer keep their sequence. done is
	// called exactly once with the outcome (acks 0: when accepted; 1 and
	// -1: when durable on a quorum), from any goroutine, possibly before
	// ProduceBatch returns. batch is the broker's from the call on.
	ProduceBatch(ctx context.Context, p PartitionRef, batch []byte, acks int16, done func(ProduceResult))
	// Fetch reads whole batches of p from offset without waiting: at most
	// maxBytes, but at least one batch when there is one. Errors:
	// CodeOutOfRange (offset outside the log; the result still carries
	// the high watermark and log start), CodeNotFound, CodeNotLeader.
	Fetch(ctx context.Context, p PartitionRef, offset int64, maxBytes int) (FetchResult, error)
	// WaitForData returns when one of the positions has data at or past
	// its offset (its high watermark is beyond it), when a partition's
	// leadership changes, or when ctx ends; it returns ctx's error only
	// in the last case. The caller then fetches again.
	WaitForData(ctx context.Context, positions []FetchPosition) error
	// ListOffset returns the offset for a Kafka ListOffsets timestamp:
	// -2 earliest, -1 latest, -3 the record with the largest timestamp,
	// else the first offset whose timestamp is at or after ts (offset -1
	// when there is none). timestamp is the found record's, -1 when not
	// applicable.
	ListOffset(ctx context.Context, p PartitionRef, ts int64) (offset, timestamp int64, err error)
	// InitProducerID allocates an idempotent producer id, or bumps the
	// epoch of the given one (KIP-360) when id >= 0.
	InitProducerID(ctx context.Context, id int64, epoch int16) (newID int64, newEpoch int16, err error)
}

// KafkaError is an error whose Kafka code is known precisely: the group
// coordinator's and the idempotent producer's answers, which base codes
// would blur (ILLEGAL_GENERATION and REBALANCE_IN_PROGRESS are both a
// conflict).
type KafkaError struct {
	Code protocol.ErrorCode
	Msg  string
}

func (e *KafkaError) Error() string {
	if e.Msg == "" {
		return e.Code.String()
	}
	return e.Code.String() + ": " + e.Msg
}

// GroupProtocol is one assignment protocol a member offers.
type GroupProtocol struct {
	Name     string
	Metadata []byte
}

// JoinRequest is a JoinGroup.
type JoinRequest struct {
	Group, MemberID, InstanceID   string
	ClientID, ClientHost          string
	ProtocolType                  string
	Protocols                     []GroupProtocol
	SessionTimeout, RebalanceTime time.Duration
	// RequireKnownMemberID is set from JoinGroup v4 on (KIP-394).
	RequireKnownMemberID bool
}

// JoinMember is a member as the leader sees it.
type JoinMember struct {
	MemberID, InstanceID string
	Metadata             []byte
}

// JoinResponse answers a JoinGroup. Err is a coordinator answer
// (MEMBER_ID_REQUIRED comes with MemberID set).
type JoinResponse struct {
	Err            protocol.ErrorCode
	Generation     int32
	ProtocolType   string
	ProtocolName   string
	LeaderID       string
	MemberID       string
	SkipAssignment bool
	Members        []JoinMember // the leader's only
}

// SyncRequest is a SyncGroup.
type SyncRequest struct {
	Group, MemberID, InstanceID string
	Generation                  int32
	ProtocolType, ProtocolName  string // "" when not sent
	Assignments                 []MemberAssignment
}

// MemberAssignment is the leader's assignment for one member.
type MemberAssignment struct {
	MemberID   string
	Assignment []byte
}

// SyncResponse answers a SyncGroup.
type SyncResponse struct {
	Err                        protocol.ErrorCode
	ProtocolType, ProtocolName string
	Assignment                 []byte
}

// LeavingMember is one member of a LeaveGroup.
type LeavingMember struct {
	MemberID, InstanceID string
}

// LeaveResult is one member's outcome in a LeaveGroup: the member id it
// resolved to (a static member leaving by instance id alone), or Err.
type LeaveResult struct {
	MemberID string
	Err      error
}

// CommittedOffset is a consumer group's position in one partition.
type CommittedOffset struct {
	Offset      int64
	LeaderEpoch int32
	Metadata    string
}

// OffsetCommit is one partition of an OffsetCommit.
type OffsetCommit struct {
	PartitionRef
	CommittedOffset
}

// OffsetFetched is one partition's committed offset; Offset -1 means none.
type OffsetFetched struct {
	PartitionRef
	CommittedOffset
	Err error
}

// GroupDescription is a group as DescribeGroups reports it.
type GroupDescription struct {
	Group        string
	State        string // Kafka's names: Empty, PreparingRebalance, ..., Dead
	ProtocolType string
	Protocol     string
	Members      []GroupMember
}

// GroupMember is one member of a GroupDescription.
type GroupMember struct {
	MemberID, InstanceID, ClientID, ClientHost string
	Metadata, Assignment                       []byte
}

// GroupListing is one group as ListGroups reports it.
type GroupListing struct {
	Group, ProtocolType, State string
}

// Groups is the consumer-group coordinator (Kafka's classic protocol).
// Coordinator answers come as protocol error codes in the responses or as
// *KafkaError; failures to reach the coordinator as base codes.
type Groups interface {
	// JoinGroup blocks until the coordinator answers (the rebalance
	// completes) or ctx ends.
	JoinGroup(ctx context.Context, req JoinRequest) (JoinResponse, error)
	// SyncGroup blocks until the leader's assignment is known.
	SyncGroup(ctx context.Context, req SyncRequest) (SyncResponse, error)
	Heartbeat(ctx context.Context, group, member, instance string, generation int32) error
	// LeaveGroup returns one outcome per member, in order.
	LeaveGroup(ctx context.Context, group string, members []LeavingMember) ([]LeaveResult, error)
	// CommitOffsets returns one error per offset, in order; generation
	// -1 with no member is a standalone (admin) commit.
	CommitOffsets(ctx context.Context, group, member, instance string, generation int32, offsets []OffsetCommit) ([]error, error)
	// FetchOffsets returns the committed offsets of parts, or of every
	// partition the group has committed when parts is nil.
	FetchOffsets(ctx context.Context, group string, parts []PartitionRef) ([]OffsetFetched, error)
	DescribeGroup(ctx context.Context, group string) (GroupDescription, error)
	ListGroups(ctx context.Context) ([]GroupListing, error)
	// DeleteGroup deletes an empty group and its offsets: NON_EMPTY_GROUP,
	// GROUP_ID_NOT_FOUND as *KafkaError.
	DeleteGroup(ctx context.Context, group string) error
	// DeleteOffsets deletes a group's offsets of parts: one error per
	// partition (GROUP_SUBSCRIBED_TO_TOPIC when a member consumes it).
	DeleteOffsets(ctx context.Context, group string, parts []PartitionRef) ([]error, error)
}

// TopicSpec is a CreateTopics entry.
type TopicSpec struct {
	Name string
	// Partitions and ReplicationFactor of -1 take the broker's defaults.
	Partitions        int32
	ReplicationFactor int16
	Configs           map[string]string
}

// ConfigEntry is one topic configuration as DescribeConfigs reports it.
type ConfigEntry struct {
	Name      string
	Value     string
	Default   bool // the broker's default, not set on the topic
	ReadOnly  bool
	Sensitive bool
}

// Admin manages streams as Kafka topics.
type Admin interface {
	// CreateTopic creates a stream; with validateOnly it only checks.
	// Errors: CodeConflict or CodePreconditionFailed when it exists
	// (TOPIC_ALREADY_EXISTS), CodeInvalidArgument (INVALID_CONFIG or
	// INVALID_PARTITIONS per the message), CodeNotSupported.
	CreateTopic(ctx context.Context, spec TopicSpec, validateOnly bool) (TopicInfo, error)
	DeleteTopic(ctx context.Context, name string) error
	// AddPartitions grows a stream to total partitions.
	AddPartitions(ctx context.Context, name string, total int32, validateOnly bool) error
	// TopicConfig returns every supported configuration of a stream,
	// sorted by name.
	TopicConfig(ctx context.Context, name string) ([]ConfigEntry, error)
	// AlterTopicConfig replaces the stream's Kafka configurations with
	// set (AlterConfigs semantics: what is not in set returns to its
	// default).
	AlterTopicConfig(ctx context.Context, name string, set map[string]string, validateOnly bool) error
}

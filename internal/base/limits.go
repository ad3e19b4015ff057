package base

import "time"

// Every bound in Ferry has a name here, with the reason for its value.
// Configuration may lower a limit; nothing may exceed these maxima. Each
// limit has a test at its edge in the package that enforces it.
//
// Sections are by area; add to your area's section and keep the names
// ending in their unit (Bytes, Count, Depth, ...).

// Storage: the segmented log (internal/storage/log).
const (
	// BatchBytesMax bounds one record batch: what the log accepts in Append
	// and what a decoder allocates for one batch. Kafka's default
	// message.max.bytes is 1 MiB; AMQP messages reach 128 MiB, and a batch
	// carries at least one whole message.
	BatchBytesMax = 128<<20 + 64<<10

	// BatchRecordsMax bounds the records in one batch, so that a decoder
	// never allocates per-record state from a count it cannot back with
	// bytes (every record takes at least 7 bytes: batch.RecordSizeMin).
	BatchRecordsMax = BatchBytesMax / 7

	// RecordHeadersMax bounds the headers of one record.
	RecordHeadersMax = 4096

	// SegmentBytesDefault is the size at which a segment rolls over
	// (DESIGN.md §3); SegmentBytesMax is the most a segment may be
	// configured to, keeping file positions within the 32-bit fields of
	// the index.
	SegmentBytesDefault = 1 << 30
	SegmentBytesMax     = 1<<32 - 1

	// SegmentAgeDefault rolls a segment that has been open this long, so
	// retention by age can release it (Kafka's segment.ms default).
	SegmentAgeDefault = 7 * 24 * time.Hour

	// SegmentAgeMin is the shortest roll age a stream's segment.ms gives
	// its partitions' logs (Kafka accepts 1 ms): a roll syncs the old
	// segment and its indexes and creates a file, on the engine loop that
	// the group shares with others, so one topic may not make every write
	// a roll.
	SegmentAgeMin = time.Second

	// GroupSegmentBytesDefault is the segment size of the logs of every
	// group but a stream partition's (queues, consumer-group coordinators,
	// the controller). Their logs are cut below their snapshots and give
	// space back in whole segments, so a queue whose consumer keeps up
	// holds up to a segment of consumed messages: with 1 GiB segments a
	// queue with a steady backlog of 20 MB grew to 936 MiB in 85 s at
	// 10,000 msg/s, and deleting a segment costs about 0.2 ms per MiB. At
	// RaftSnapshotFreeBytesDefault, one snapshot frees one full segment
	// and a drained queue's active segment seldom triggers one for
	// nothing (docs/benchmarks.md, "Queue log segments of 16 MiB"). Each
	// segment keeps its file open, so a long log's segments grow, up to
	// SegmentBytesDefault (SegmentGrowthEvery).
	GroupSegmentBytesDefault = 16 << 20

	// IndexIntervalBytes is how many bytes of batches lie between two
	// entries of the sparse offset and time indexes (Kafka's
	// index.interval.bytes).
	IndexIntervalBytes = 4 << 10

	// IndexBytesMax bounds one index file, and so what reading one
	// allocates: one entry per IndexIntervalBytes of the largest segment,
	// with room for the extra entries a term change adds.
	IndexBytesMax = 64 << 20

	// AppendQueueBatchesMax bounds the appends waiting for the group-commit
	// writer of one log; appenders beyond it wait (backpressure).
	AppendQueueBatchesMax = 4096

	// SyncIntervalDefault is the fsync period of durability "interval".
	SyncIntervalDefault = 100 * time.Millisecond

	// SegmentGrowthEvery is how many segments a log with
	// Options.SegmentBytesGrowTo holds per doubling of its roll size: a
	// queue's log of 16 MiB segments reaches 1 GiB ones past 48 segments
	// (7.9 GiB), so a backlog of 100 GiB takes about 140 files, not 6,400.
	SegmentGrowthEvery = 8

	// SegmentBytesMin is the smallest segment size the log accepts: small
	// segments exist for tests that roll often; a segment always holds at
	// least one batch, however large.
	SegmentBytesMin = 512

	// LogWriteBufferBytes is where the log flushes its write buffer to the
	// segment file without waiting for a Sync: large enough that one group
	// commit of many small batches is one write(2), small enough that the
	// buffer's memory per log stays modest. A single batch larger than it
	// is buffered whole (it is bounded by BatchBytesMax).
	LogWriteBufferBytes = 1 << 20

	// LogReadBytesMax bounds what one Read or Entries call collects past
	// its first batch, so a caller's maxBytes cannot make the log allocate
	// without bound; a read allocates at most this plus one BatchBytesMax.
	LogReadBytesMax = 64 << 20

	// CheckpointIntervalDefault is how often, at most, the log rewrites its
	// checkpoint to move the recovery point forward outside segment rolls
	// (Kafka's log.flush.offset.checkpoint.interval.ms). With the segment
	// size it bounds the tail that recovery must scan. Each checkpoint
	// costs four fsyncs (both index files, the new checkpoint, the
	// directory) and a rename, on the engine loop that syncs the log, so
	// it is per log: at 5 s, 1,000 queues taking 10 msg/s each spent their
	// loops' time on 200 checkpoints a second, and their p99 latency was
	// 361-675 ms against 85-235 ms at 60 s (docs/benchmarks.md).
	CheckpointIntervalDefault = 60 * time.Second
)

// Metadata: the Pebble store (internal/storage/meta).
const (
	// MetaValueBytesMax bounds one metadata value.
	MetaValueBytesMax = 16 << 20

	// MetaKeyBytesMax bounds one metadata key. The largest typed key, a
	// consumer offset, holds a stream name (at most 255 bytes, AMQP's
	// shortstr) and a group id (GroupIDBytesMax): under 2.6 KiB even if
	// every byte needed escaping. Short keys keep Pebble's index blocks
	// small.
	MetaKeyBytesMax = 4 << 10

	// MetaBatchBytesMax bounds the keys and values of one batch: room for
	// four values of MetaValueBytesMax. A batch is held in memory twice
	// while it commits (the batch, then the memtable); the replication
	// engine's per-loop batch of hard states is far smaller (10,000
	// groups of ~40 bytes is 400 KB).
	MetaBatchBytesMax = 4*MetaValueBytesMax + 64<<10

	// MetaCacheBytesDefault is the block cache of the store when the
	// configuration names none. A node's metadata is a few MiB per
	// 10,000 groups, so this keeps the whole working set in memory.
	MetaCacheBytesDefault = 32 << 20

	// MetaMemTableBytes is the memtable of the store, Pebble's default:
	// Raft hard states overwrite the same keys, so a larger memtable
	// would mostly hold superseded versions; a batch over half of it is
	// flushed as its own table.
	MetaMemTableBytes = 4 << 20
)

// Replication (internal/replication): the multi-group Raft engine and its
// transport.
const (
	// RaftProposalsInFlightMax bounds the proposals of one group that wait
	// for their outcome on its leader; one more fails at once with
	// CodeOverloaded. 64 producers pipelining 64 batches each fit; more would
	// only wait behind RaftUncommittedBytesMax.
	RaftProposalsInFlightMax = 4096

	// RaftReadsInFlightMax bounds the ReadIndex and lease reads of one group
	// waiting for their read index to be applied; one more fails at once
	// with CodeOverloaded.
	RaftReadsInFlightMax = 4096

	// RaftMessageBytesMax is raft's MaxSizePerMsg: the entry bytes one append
	// message carries (a single larger entry still travels alone). 1 MiB
	// keeps one group from holding a connection for more than about a
	// millisecond at 10 Gb/s, while amortising per-message costs.
	RaftMessageBytesMax = 1 << 20

	// RaftInflightMsgsMax is raft's MaxInflightMsgs: append messages sent to
	// one follower and not yet acknowledged. 256 keeps a pipeline full
	// across a 10 ms round trip at 25,600 appends per second.
	RaftInflightMsgsMax = 256

	// RaftInflightBytesMax is raft's MaxInflightBytes: the entry bytes in
	// flight to one follower, 32 round trips' worth of full messages.
	RaftInflightBytesMax = 32 * RaftMessageBytesMax

	// RaftUncommittedBytesMax is raft's MaxUncommittedEntriesSize: once a
	// leader holds this much appended but uncommitted payload, proposals
	// fail with CodeOverloaded until commits catch up. It bounds what a
	// leader buffers for a slow quorum.
	RaftUncommittedBytesMax = 64 << 20

	// RaftApplyBytesMax is raft's MaxCommittedSizePerReady: the committed
	// entry bytes handed to a group's state machine in one engine
	// iteration, so one busy group cannot stall the others of its loop.
	RaftApplyBytesMax = 16 << 20

	// RaftEntryCacheBytesMax bounds the entry data a group keeps in memory
	// between writing entries and applying them, so that applying does not
	// read them back from the log. A wave of 64 proposals of 1 KiB is 64
	// KiB; larger backlogs are read from the log (the page cache).
	RaftEntryCacheBytesMax = 1 << 20

	// RaftProposalBufferBytesMax is the largest proposal whose buffer the
	// engine recycles once raft has copied it: a power of two above a
	// batch of RaftMessageBytesMax, the largest the broker's accumulators
	// take, with its framing. A larger proposal is allocated and left to
	// the garbage collector.
	RaftProposalBufferBytesMax = 2 * RaftMessageBytesMax

	// RaftLoopInboxMax bounds the requests (peer messages, proposals, reads,
	// membership changes) waiting for one engine loop. Peer messages beyond
	// it are dropped (Raft retransmits) and calls fail with CodeOverloaded.
	RaftLoopInboxMax = 1 << 16

	// RaftEarlyMessagesHeldMax bounds the peer messages an engine loop
	// holds for groups not open on it yet, for one to two ticks (a new
	// group's candidate, then leader, is usually faster than the other
	// replicas' opening), and RaftEarlyMessageBytesMax the entries' bytes
	// of one such message: a larger one is dropped, and raft sends it
	// again.
	RaftEarlyMessagesHeldMax = 1024
	RaftEarlyMessageBytesMax = 4 << 10

	// RaftProposalGatherMax bounds how long an engine loop, having just
	// synced a batch of proposals, waits for its proposers to propose again
	// before the next iteration: a fraction of an fsync (milliseconds on
	// most disks), it lets one fsync cover a whole wave of proposers
	// instead of alternating small and large batches.
	RaftProposalGatherMax = 500 * time.Microsecond

	// RaftPromoteLagEntriesMax is how close a learner's match index must be
	// to the leader's last index before Promote proposes the promotion, so
	// a new voter never starts out holding back the commit index.
	RaftPromoteLagEntriesMax = 64

	// RaftConfStateNodesMax bounds the node ids one decoded ConfState (from
	// the wire or a snapshot file) may list, so a decoder never allocates
	// for a count it cannot back. Groups have 3 or 5 voters; 1024 is far
	// beyond any placement.
	RaftConfStateNodesMax = 1024

	// TransportFrameBytesMax bounds one frame of the inter-node transport:
	// a message carrying the largest entry (one batch, BatchBytesMax) plus
	// room for its other fields. The length prefix is checked against it
	// before anything is allocated.
	TransportFrameBytesMax = BatchBytesMax + 1<<20

	// TransportQueueBytesMax and TransportQueueBatchesMax bound what waits
	// to be written to one peer. Beyond either, the engine's send is
	// dropped and reported unreachable rather than blocking the engine
	// loop: Raft retransmits, and a peer that slow is better probed than
	// buffered for.
	TransportQueueBytesMax   = 64 << 20
	TransportQueueBatchesMax = 4096

	// TransportWriteBytesMax is how many bytes of frames the writer of one
	// connection coalesces into one write call.
	TransportWriteBytesMax = 1 << 20

	// SnapshotChunkBytes is the size of the chunks a snapshot is streamed
	// in, so a multi-GiB snapshot never sits in memory and message frames
	// interleave with it on the shared connection.
	SnapshotChunkBytes = 1 << 20

	// SnapshotChunksBuffered bounds the received chunks of one snapshot
	// stream waiting to be written to disk; beyond it the connection's
	// reader waits (TCP backpressure to the sender).
	SnapshotChunksBuffered = 4

	// SnapshotBytesMax bounds one snapshot stream or file (state machine
	// state plus the log entries it retains): larger streams are refused,
	// so a peer cannot fill the disk with one.
	SnapshotBytesMax = 64 << 30

	// RaftSnapshotLogGrowth is how many times its last snapshot's size a
	// group's log must grow before the next snapshot, unless that snapshot
	// lets the log drop SnapshotEntries entries (replication's
	// snapshotPays). A queue's snapshot is about 15 bytes per message and
	// takes about 35 ns per message on the loop (21 ns of it encoding:
	// queue's BenchmarkSnapshot, the rest writing and syncing the file).
	// With 1 KiB messages, 16 spaces the snapshots of a queue of M
	// messages by at least M/4 messages, so they cost about 150 ns per
	// message published, where 4 cost 600 ns (15 s of 4-producer confirmed
	// publish: medians 145k msg/s against 138k with 4 and 135k without
	// the rule). A restart replays at most 16 times the state's size in
	// log, about M/4 messages.
	RaftSnapshotLogGrowth = 16

	// RaftSnapshotFreeBytesDefault is how much storage a snapshot must let
	// a group's log free to be taken however little was applied since the
	// last one (replication.Config.SnapshotFreeBytes): what a drained
	// queue may keep on disk until more traffic comes. A drained queue's
	// snapshot is small. Under constant traffic many of these snapshots
	// free nothing: the entries written after one keep the active segment
	// (docs/benchmarks.md, "Publish and consume at 20,000 msg/s").
	RaftSnapshotFreeBytesDefault = 16 << 20

	// RaftSnapshotDeferBytesMax bounds the committed entries (their data's
	// bytes) a group holds back from its FSM while its snapshot is written,
	// or a received one restored, off the engine loop (replication's
	// fsmJob): the group goes on replicating and committing, and applies
	// them once the job ends. Past the bound the loop waits for the job,
	// as it did for every snapshot before they left it. The entries stay
	// in memory (the group's entry cache) until applied, so this is memory
	// per group with a job.
	RaftSnapshotDeferBytesMax = 64 << 20

	// SnapshotStreamsMax bounds the snapshot streams in flight to or from
	// one peer; more are refused and retried by Raft later.
	SnapshotStreamsMax = 2
)

// Broker core: queues, streams, routing (internal/queue, internal/stream,
// internal/routing, internal/broker, internal/controller): none yet.

// Queues (internal/queue): the queue state machine.
const (
	// QueueMessagesMax bounds the live messages of one queue in every state
	// (ready, delayed, unacknowledged, dead-letter pending); a publish past
	// it is refused. The state machine names messages by 32-bit slots, and
	// at its budget of 64 bytes of RAM per message 2^30 messages already
	// take 64 GiB, more than one queue on one node should ever hold.
	QueueMessagesMax = 1 << 30

	// QueueEnqueueMessagesMax bounds the messages of one Enqueue command:
	// one command carries the records of one batch.
	QueueEnqueueMessagesMax = BatchRecordsMax

	// QueueRelocateBytesMax and QueueRelocateMessagesMax bound one
	// Relocate: the bodies it copies into its entry, and their number
	// (more than one pass moves more). 8 MiB is half a default segment.
	QueueRelocateBytesMax    = 8 << 20
	QueueRelocateMessagesMax = 8192

	// QueueRelocateCopyShare: a queue's leader relocates message bodies
	// only when the log that frees is at least this many times the bytes
	// copied, so relocation writes at most an eighth of what it frees.
	QueueRelocateCopyShare = 8

	// QueueFieldBytesMax bounds every string a queue command or snapshot
	// carries: dedupe id, message id, ordering key, consumer owner and
	// name, consumer tag, return reason, dead-letter target. AMQP's
	// shortstr fields are at most 255 bytes; 4 KiB leaves room for
	// composite ids and keys while bounding what a decoder allocates for
	// one field.
	QueueFieldBytesMax = 4 << 10

	// QueueSettleIDsMax bounds the delivery ids of one Settle or Return
	// and the refs of one DeadLetterDone. A front end acks one tag or a
	// range (UpTo) at a time; 65,536 covers an HTTP client acking a whole
	// prefetch window by list.
	QueueSettleIDsMax = 1 << 16

	// QueueConsumersMax bounds the consumer records of one queue
	// (subscribed consumers and channels holding basic.get deliveries).
	// Dispatch is O(log consumers); the bound keeps the consumer table and
	// its snapshot small.
	QueueConsumersMax = 1 << 16

	// QueuePriorityMax is the highest configurable priority level:
	// RabbitMQ's x-max-priority maximum. QueuePriorityDefault is the
	// default (RabbitMQ recommends at most 10 levels).
	QueuePriorityMax     = 255
	QueuePriorityDefault = 10

	// QueueRetryReasonsMax bounds the return-reason schedules of a retry
	// policy; a policy names a handful of reasons (transient, poison...).
	QueueRetryReasonsMax = 64

	// QueueBrowseMax bounds the messages one Browse returns: a page for a
	// console or an HTTP peek, not a way to copy the queue.
	QueueBrowseMax = 1000

	// QueueTimeMsMax is the latest Unix time in ms a queue command may
	// carry (about the year 2109), and QueueDurationMsMax the longest TTL,
	// delay, timeout, window or backoff (about 34 years). Together they
	// keep every deadline sum far inside int64.
	QueueTimeMsMax     = 1 << 42
	QueueDurationMsMax = 1 << 40

	// QueueAckTimeoutDefault returns a delivery unacknowledged this long
	// (RabbitMQ's consumer_timeout default).
	QueueAckTimeoutDefault = 30 * time.Minute

	// QueueDedupeWindowDefault is how long a dedupe id is remembered by
	// default (NATS JetStream's duplicate window); a queue may set from
	// QueueDedupeWindowMin to QueueDedupeWindowMax.
	QueueDedupeWindowDefault = 2 * time.Minute
	QueueDedupeWindowMin     = time.Minute
	QueueDedupeWindowMax     = 7 * 24 * time.Hour

	// QueueDedupeIDsMax bounds the dedupe ids one queue remembers; past it
	// the oldest is forgotten early (counted as evicted). An id costs
	// about 80 bytes, so the bound is about 80 MiB: a 2-minute window at
	// 8,000 publishes a second.
	QueueDedupeIDsMax = 1 << 20

	// QueueDedupeIDRawBytes is the longest dedupe id stored as is; longer
	// ids are stored as the first 16 bytes of their SHA-256.
	QueueDedupeIDRawBytes = 16

	// QueueSendersMax bounds the senders (a broker's publish lanes) one
	// queue remembers the applied messages of, so that a message a lane
	// sends again after a leader change is not enqueued twice; past it
	// the sender applied to longest ago is forgotten (counted as evicted),
	// and a message it sends again is enqueued again (at least once).
	// QueueSenderRangesMax bounds the ranges of applied sequence numbers
	// one sender keeps (one, unless messages were lost in a leader change
	// or refused); past it the lowest range is forgotten. QueueSenderIdle
	// forgets a sender nothing was applied from for that long (queue
	// time): far longer than any publish waits for its outcome. A sender
	// costs about 100 bytes and 24 per range.
	QueueSendersMax      = 4096
	QueueSenderRangesMax = 16
	QueueSenderIdle      = 10 * time.Minute

	// QueueDeliveryLimitMax is the largest delivery limit: delivery counts
	// are 16-bit and saturate at 65,535, so a limit must stay below that
	// to be reachable.
	QueueDeliveryLimitMax = 1<<16 - 2
)

// Streams (internal/stream): partition state, committed offsets, consumer
// groups.
const (
	// StreamRetentionChunkBytes is the granularity at which a partition's
	// state remembers its batches for retention: consecutive batches are
	// summarised in chunks of about this many bytes, so the state grows
	// with the retained bytes divided by this, not with the batch count.
	// Retention moves the log start by whole chunks, so a partition keeps
	// up to a chunk more than its retention.bytes (besides the rest of
	// the segment its start falls in, the log freeing whole segments).
	StreamRetentionChunkBytes = 8 << 20

	// StreamRetentionChunksMax bounds the chunks a partition keeps; at the
	// bound, neighbouring chunks are merged pairwise (coarser retention,
	// same memory). 65,536 chunks of 8 MiB cover 512 GiB before the first
	// merge, and cost about 3 MiB of state.
	StreamRetentionChunksMax = 1 << 16

	// StreamProducersMax bounds the idempotent producers a partition
	// remembers; past it the least recently used one is forgotten (its
	// next batch is then accepted with any sequence, as Kafka does for a
	// producer whose state expired). About 200 bytes each: 2 MiB.
	StreamProducersMax = 10_000

	// StreamProducerBatchesMax is how many recent batches per producer are
	// kept for duplicate detection: Kafka's five, which is also the most
	// in-flight requests an idempotent Kafka producer may have.
	StreamProducerBatchesMax = 5

	// StreamProducerExpiryDefault forgets a producer idle this long
	// (Kafka's producer.id.expiration.ms).
	StreamProducerExpiryDefault = 24 * time.Hour

	// StreamCommittedGroupsMax bounds the consumer groups with a committed
	// offset on one partition; a commit from one more group is refused
	// until expiry or deletion frees a slot.
	StreamCommittedGroupsMax = 10_000

	// StreamOffsetMetadataBytesMax bounds the metadata string of a
	// committed offset (Kafka's offset.metadata.max.bytes).
	StreamOffsetMetadataBytesMax = 4096

	// StreamOffsetsRetentionDefault expires the committed offsets of a
	// group empty for this long (Kafka's offsets.retention.minutes).
	StreamOffsetsRetentionDefault = 7 * 24 * time.Hour

	// GroupIDBytesMax bounds every identifier a group command carries:
	// group id, member id, group instance id, client id and host,
	// protocol type and name. Kafka's strings can reach 32 KiB; real ids
	// are UUID-sized, and this keeps one member's bookkeeping small.
	GroupIDBytesMax = 1024

	// GroupsMax bounds the groups one coordinator state machine hosts.
	GroupsMax = 10_000

	// GroupMembersMax bounds the members (and, separately, the members
	// still to confirm their id) of one group; Kafka's group.max.size is
	// unlimited by default, but a group is one state machine and its
	// SyncGroup carries every member's assignment.
	GroupMembersMax = 1000

	// GroupProtocolsMax bounds the protocols one member offers in
	// JoinGroup (a Kafka client offers one per configured assignor).
	GroupProtocolsMax = 32

	// GroupMemberMetadataBytesMax bounds the metadata one member sends in
	// JoinGroup, summed over its protocols (a subscription lists topic
	// names; 64 KiB is thousands of them).
	GroupMemberMetadataBytesMax = 64 << 10

	// GroupAssignmentBytesMax bounds one member's assignment in SyncGroup.
	GroupAssignmentBytesMax = 64 << 10

	// GroupPartitionsMax bounds the partitions a server-assigned group
	// distributes.
	GroupPartitionsMax = 10_000

	// GroupInitialRebalanceDelayDefault holds the first rebalance of an
	// empty group so that members starting together join one generation
	// (Kafka's group.initial.rebalance.delay.ms).
	GroupInitialRebalanceDelayDefault = 3 * time.Second

	// GroupSessionTimeoutMin and GroupSessionTimeoutMax bound the session
	// timeout a member may ask for (Kafka's group.min.session.timeout.ms
	// and group.max.session.timeout.ms).
	GroupSessionTimeoutMin = 6 * time.Second
	GroupSessionTimeoutMax = 30 * time.Minute
)

// Routing (internal/routing): exchanges, bindings, the topic trie.
const (
	// RoutingKeyBytesMax bounds a routing key and a binding key (a topic
	// pattern): AMQP 0-9-1 carries both as a shortstr. An MQTT topic
	// longer than this cannot be routed through an exchange, as in
	// RabbitMQ.
	RoutingKeyBytesMax = 255

	// RoutingNameBytesMax bounds the name of a vhost, exchange, queue or
	// stream in a routing table: AMQP carries them as shortstr.
	RoutingNameBytesMax = 255

	// TopicWordsMax bounds the words of a topic key or pattern, and so the
	// depth of the topic trie and the steps of one match. It is the most
	// words a key within RoutingKeyBytesMax can have (255 separators), so
	// no key that fits is refused for its word count.
	TopicWordsMax = RoutingKeyBytesMax + 1

	// ExchangeBindingsMax bounds the bindings whose source is one exchange.
	// Every MQTT subscription of a vhost is a binding of amq.topic, so this
	// must allow millions. A binding costs 270 to 670 bytes besides its key
	// (measured: fanout 273, direct 369, MQTT devices/<id>/+/telemetry
	// 662), so this caps one exchange between 1 and 2.7 GiB in every
	// controller replica; it also bounds a fanout or headers publish's
	// pass over the bindings.
	ExchangeBindingsMax = 1 << 22

	// RoutingExchangesMax bounds the exchanges of one vhost, built-ins
	// included: applications declare a few to a few thousand; MQTT and
	// STOMP create none.
	RoutingExchangesMax = 1 << 16

	// RoutingDestinationsMax bounds the queues and streams one vhost's
	// routing table knows: each MQTT session has its own queue, so as for
	// ExchangeBindingsMax this must allow millions.
	RoutingDestinationsMax = 1 << 22

	// RoutingArgsBytesMax bounds the encoded arguments table of one
	// exchange or binding. A headers binding matching dozens of headers
	// takes well under 1 KiB; 16 KiB leaves room for long values while
	// bounding one binding's memory and matching cost.
	RoutingArgsBytesMax = 16 << 10

	// RouteExchangeDepthMax bounds the exchange-to-exchange and
	// alternate-exchange hops one publish follows; exchanges deeper than
	// this are not visited (Route reports it). Real topologies are two or
	// three levels deep; with each exchange visited once per publish,
	// this bounds the latency a misconfigured chain can add.
	RouteExchangeDepthMax = 16
)

// Auth (internal/auth): credentials, SASL, permissions, policies.
const (
	// AuthArgon2MemoryKiB, AuthArgon2Iterations and AuthArgon2Parallelism
	// are the argon2id parameters of new password hashes: OWASP's first
	// recommendation (19 MiB, t=2, p=1) rather than RFC 9106's 64 MiB,
	// because a broker verifies passwords in bursts (every client
	// reconnecting at once) and memory per verification is what runs out.
	AuthArgon2MemoryKiB   = 19 * 1024
	AuthArgon2Iterations  = 2
	AuthArgon2Parallelism = 1

	// AuthArgon2MemoryKiBMax, AuthArgon2IterationsMax and
	// AuthArgon2ParallelismMax bound the parameters a stored hash may
	// claim, so that a damaged or hostile hash cannot make verification
	// allocate or spin without bound (256 MiB, 16 passes, 16 lanes).
	AuthArgon2MemoryKiBMax   = 256 * 1024
	AuthArgon2IterationsMax  = 16
	AuthArgon2ParallelismMax = 16

	// AuthSaltBytesMin and AuthSaltBytesMax bound a salt (RFC 9106 asks
	// for 16 bytes); AuthArgon2KeyBytes is the hash length (RFC 9106: 32).
	AuthSaltBytesMin   = 16
	AuthSaltBytesMax   = 64
	AuthArgon2KeyBytes = 32

	// AuthPHCBytesMax bounds an encoded password hash
	// ($argon2id$v=19$m=...,t=...,p=...$salt$hash).
	AuthPHCBytesMax = 256

	// AuthScramIterationsDefault is the PBKDF2 count of new SCRAM
	// credentials: RFC 7677's minimum (4096), which is also what Kafka's
	// tools and RabbitMQ use; the cost falls on every client login.
	// AuthScramIterationsMax bounds what stored credentials may claim.
	AuthScramIterationsDefault = 4096
	AuthScramIterationsMax     = 1 << 20

	// AuthSASLMessageBytesMax bounds one SASL message from a client
	// (PLAIN's whole message, each SCRAM client message).
	AuthSASLMessageBytesMax = 4096

	// AuthIdentityBytesMax bounds a user name or authorization identity;
	// AuthPasswordBytesMax a password. RFC 4616 requires at least 255.
	AuthIdentityBytesMax = 1024
	AuthPasswordBytesMax = 1024

	// AuthPatternBytesMax bounds a permission or policy pattern, keeping
	// the compiled regular expression small.
	AuthPatternBytesMax = 4096

	// AuthPoliciesMax bounds the policies of one tenant (each entity
	// evaluates all of them).
	AuthPoliciesMax = 1000
)

// Controller (internal/controller): the metadata state machine.
const (
	// ControllerNameBytesMax bounds the name of a tenant (vhost), queue,
	// stream, policy or user tag: AMQP carries names as a shortstr, and
	// RabbitMQ refuses longer ones.
	ControllerNameBytesMax = 255

	// ControllerTenantsMax bounds the tenants of a cluster. Every tenant
	// costs a routing table and is scanned by tenant-wide operations;
	// RabbitMQ deployments use a few to a few hundred vhosts.
	ControllerTenantsMax = 1 << 12

	// ControllerUsersMax bounds the users of a cluster. The compiled
	// directory is rebuilt from all of them after a change, three regular
	// expressions per permission.
	ControllerUsersMax = 1 << 16

	// ControllerUserTagsMax bounds the tags of one user; RabbitMQ knows
	// four, and custom ones are few.
	ControllerUserTagsMax = 32

	// ControllerQueuesPerTenantMax bounds the queues and streams of one
	// tenant, which share one namespace: the routing table's own bound,
	// since every MQTT session has its own queue.
	ControllerQueuesPerTenantMax = RoutingDestinationsMax

	// ControllerExchangesPerTenantMax bounds the exchanges of one tenant:
	// the routing table's own bound.
	ControllerExchangesPerTenantMax = RoutingExchangesMax

	// ControllerBindingsPerTenantMax bounds the bindings of one tenant
	// across its exchanges: as many as one exchange may hold (every MQTT
	// subscription is a binding of amq.topic), so that a tenant's bindings
	// cost at most what ExchangeBindingsMax allows one exchange, 1 to
	// 2.7 GiB in every controller replica.
	ControllerBindingsPerTenantMax = ExchangeBindingsMax

	// ControllerGroupsMax bounds the Raft groups of a cluster (queues,
	// stream partitions, coordinators). Each costs a few hundred bytes in
	// every controller replica and a state machine on three nodes; 4 Mi
	// groups is far beyond what a cluster's nodes can run.
	ControllerGroupsMax = 1 << 22

	// ControllerArgsFieldsMax and ControllerArgsBytesMax bound the
	// arguments table of a queue or stream (and a policy definition):
	// RabbitMQ defines about 25 arguments, so 256 fields and the routing
	// table's 16 KiB per table leave room while bounding what a command or
	// snapshot decoder allocates. Values are flat (routing.Value has no
	// tables or arrays), so a table nests one level deep at most.
	ControllerArgsFieldsMax = 256
	ControllerArgsBytesMax  = RoutingArgsBytesMax

	// ControllerNodesMax bounds the nodes of a cluster: what one ConfState
	// may list.
	ControllerNodesMax = RaftConfStateNodesMax

	// ControllerNodeAddrBytesMax bounds a node's address: a DNS name (253)
	// or a bracketed IPv6 address with a zone, a port, and slack.
	ControllerNodeAddrBytesMax = 512

	// ControllerClusterIDBytesMax bounds the cluster id Bootstrap sets:
	// Ferry draws 22 characters (16 random bytes in unpadded base64url,
	// the shape of Kafka's cluster ids); the bound leaves room for any
	// id a Kafka tool prints and keeps it a short label.
	ControllerClusterIDBytesMax = 64

	// ControllerReplicationFactorMax bounds the replicas of one group:
	// every write waits for a majority, and beyond seven voters that costs
	// more than it protects.
	ControllerReplicationFactorMax = 7

	// ControllerCoordinatorGroupsMax bounds the consumer-group coordinator
	// groups created at bootstrap (Kafka's __consumer_offsets has 50
	// partitions by default).
	ControllerCoordinatorGroupsMax = 1024

	// ControllerStreamPartitionsMax bounds the partitions of one stream:
	// every partition must fit one server-assigned consumer group.
	ControllerStreamPartitionsMax = GroupPartitionsMax

	// ControllerCommandBytesMax bounds one encoded controller command. The
	// largest, a Bootstrap listing ControllerNodesMax nodes, takes about
	// 530 KiB; a declaration with a full arguments table about 17 KiB.
	ControllerCommandBytesMax = 1 << 20

	// ControllerKafkaRetentionDefault and ControllerKafkaMessageBytesDefault
	// are Kafka's topic defaults (log.retention.hours=168,
	// message.max.bytes=1048588) for streams created through Kafka.
	ControllerKafkaRetentionDefault    = 7 * 24 * time.Hour
	ControllerKafkaMessageBytesDefault = 1048588

	// ControllerStreamSegmentBytesDefault is RabbitMQ's default
	// x-stream-max-segment-size-bytes (500 MB), for streams declared with
	// queue.declare.
	ControllerStreamSegmentBytesDefault = 500_000_000
)

// Broker (internal/broker): the data plane.
const (
	// BrokerPublishBatchBytesMax and BrokerPublishBatchRecordsMax bound the
	// data batch one queue's or partition's accumulator proposes: the
	// messages that arrived while the previous batch was being made
	// durable, up to Raft's message size so a batch travels to followers
	// in one append. One message larger than that goes alone.
	BrokerPublishBatchBytesMax   = RaftMessageBytesMax
	BrokerPublishBatchRecordsMax = 4096

	// BrokerPublishPendingBytesMax bounds the messages waiting in one
	// accumulator; publishers to that queue wait beyond it (backpressure
	// to the connection). 16 batches' worth keeps the pipeline full.
	BrokerPublishPendingBytesMax = 16 * BrokerPublishBatchBytesMax

	// BrokerPublishInFlightMax bounds the batches one queue's (or stream
	// partition's) accumulator has proposed and not seen confirmed: two
	// keep the next batch waiting when the engine starts an iteration,
	// more absorb a slow fsync. With four, a queue fed by four AMQP
	// producers averaged 1.7 batches per fsync and its batches waited in
	// the accumulator; eight gave 2.1 and 5-9% more confirmed publishes
	// (docs/benchmarks.md), sixteen no more.
	BrokerPublishInFlightMax = 8

	// BrokerEncodeArenaChunkBytes and BrokerEncodeHeaderChunkCount are the
	// chunks a publish call's records are encoded into (their header
	// bytes, and their headers): a few dozen small messages' worth, so a
	// batch costs a few allocations instead of two per message. A record
	// larger than a chunk gets a chunk of its own size.
	BrokerEncodeArenaChunkBytes  = 4 << 10
	BrokerEncodeHeaderChunkCount = 64

	// BrokerBatchBufferBytesMax is the largest buffer kept for building
	// a forwarded enqueue's next data batch once the last one was copied
	// into its frame (pooled by powers of two): twice the batch an
	// accumulator takes, so every such batch fits, while the buffer of a
	// single larger message is left to the garbage collector.
	BrokerBatchBufferBytesMax = 2 * BrokerPublishBatchBytesMax

	// BrokerSettleInFlightMax bounds the settlement commands (acks, nacks)
	// one queue's leader has proposed and not seen applied; more wait and
	// coalesce into the next pass.
	BrokerSettleInFlightMax = 4

	// BrokerAutoAckCredit is the prefetch of an auto-ack consumer (which
	// asks for no limit): deliveries are settled by the leader a pass
	// later, so the queue must not hand out more than this ahead.
	BrokerAutoAckCredit = 1024

	// BrokerDeliveryCacheBytes bounds the node's cache of recently
	// appended queue batches, decoded, so a delivery right after its
	// enqueue does not read the disk: 64 batches of BrokerPublishBatchBytesMax.
	BrokerDeliveryCacheBytes = 64 << 20

	// BrokerTraceEventsMax bounds the node's message-history store (a
	// ring: about 200 bytes an event, 20 MiB), BrokerTracedEntitiesMax the
	// entities traced at once.
	BrokerTraceEventsMax    = 100_000
	BrokerTracedEntitiesMax = 1024

	// BrokerHeaderDepthMax and BrokerHeaderValuesMax bound the nested
	// header tables and arrays of one message (x-death holds a table in an
	// array in a table): the AMQP codec's bounds, so any table a client
	// can send can be stored.
	BrokerHeaderDepthMax  = AMQPTableDepthMax
	BrokerHeaderValuesMax = AMQPTableFieldsMax

	// BrokerConnectionsMax bounds the client connections registered on one
	// node; BrokerConsumersPerConnectionMax the consumers of one
	// connection (a queue holds QueueConsumersMax at most anyway).
	BrokerConnectionsMax            = 1 << 20
	BrokerConsumersPerConnectionMax = 1 << 16

	// BrokerIdleLanesPerConnectionMax bounds the idle publish lanes a
	// connection keeps (one per queue or partition it published to, each a
	// few hundred bytes): past it, creating a lane drops the idle ones. A
	// long-lived connection replying to many short-lived queues (RPC
	// servers) would otherwise keep a lane per queue it ever used. Lanes
	// with publishes in flight stay, and those are bounded by the front
	// ends' in-flight limits (AMQPPublishesInFlightMax).
	BrokerIdleLanesPerConnectionMax = 1024

	// BrokerForwardFrameBytesMax bounds one frame between nodes on the
	// forwarding connection: a batch of the largest size plus its fields.
	BrokerForwardFrameBytesMax = BatchBytesMax + 1<<20

	// BrokerForwardInFlightMax bounds the forwarded calls in flight on one
	// connection, in each direction; beyond it a caller gets
	// CodeOverloaded and a server stops reading (TCP backpressure).
	BrokerForwardInFlightMax = 4096

	// BrokerMetadataSpreadWaitMax bounds how long a topology or admin
	// change waits, once this node has applied it, for the cluster's other
	// nodes to apply it too (Broker.spreadController), so that a client
	// answered by one node finds the change on any other, as with
	// RabbitMQ. On a healthy cluster the wait is a round trip; a node that
	// is down, cut off or catching up is waited for this long at most (one
	// the replication transport declared down, not at all) and applies the
	// change when it can. Half a second of a declaration's
	// answer is less than a client's usual RPC timeout by far, and more
	// than a follower's apply lags on a loaded node.
	BrokerMetadataSpreadWaitMax = 500 * time.Millisecond

	// BrokerForwardOpenWaitMax bounds how long a forwarded proposal or
	// read waits on a node the controller places its group on but whose
	// reconciler has not opened it yet, or whose replica knows no leader
	// yet (a group declared a moment ago), before it answers
	// CodeNotLeader: the reconciler runs on every controller change and a
	// new group elects at once, so this is a bound, not a usual wait.
	BrokerForwardOpenWaitMax = time.Second

	// BrokerForwardRetriesMax bounds how often a call follows a leader
	// hint after CodeNotLeader: a leader change during the call, twice.
	BrokerForwardRetriesMax = 3

	// BrokerForwardCreditMax caps the prefetch of a consumer whose queue
	// is led by another node (and is the credit of an auto-ack or
	// unlimited one there): the deliveries in flight from the leader to
	// the consumer's node and queued there for the client, so a slow
	// client holds at most this many messages on two nodes; the same
	// reasoning and value as BrokerAutoAckCredit.
	BrokerForwardCreditMax = BrokerAutoAckCredit

	// BrokerForwardConsumersMax bounds the forwarded consumers on one
	// node-to-node connection (each a map entry on both nodes): every
	// consumer of 16 connections at BrokerConsumersPerConnectionMax.
	BrokerForwardConsumersMax = 16 * BrokerConsumersPerConnectionMax

	// BrokerFetchWaitMax caps a fetch's long poll (Kafka's fetch.max.wait
	// is at most the request timeout, 30 s by default).
	BrokerFetchWaitMax = 30 * time.Second

	// BrokerListOffsetReadBytes is what one read of a timestamp search
	// takes from the log.
	BrokerListOffsetReadBytes = 1 << 20

	// BrokerStreamCreditDefault is the unacknowledged deliveries of a
	// stream consumer with no prefetch; BrokerStreamReadBytes what its
	// reader takes from the log at a time.
	BrokerStreamCreditDefault = 1000
	BrokerStreamReadBytes     = 1 << 20

	// BrokerDeadLetterBatchMax bounds the messages one DeadLetterDone
	// settles (well under QueueSettleIDsMax);
	// BrokerDeadLetterRetryInterval is the wait before republishing again
	// after a failure.
	BrokerDeadLetterBatchMax      = 1024
	BrokerDeadLetterRetryInterval = time.Second

	// BrokerOperatorDeleteWaitDefault is how long an administrator's
	// delete of another connection's exclusive queue waits for the queue's
	// group by default: past it the queue is deleted without the group's
	// count, since the owner's node, the group's only replica, may be
	// gone for good.
	BrokerOperatorDeleteWaitDefault = 5 * time.Second

	// BrokerDownNodeReleaseDefault is how long a node must have been
	// unheard (after the transport's PeerTimeout declared it down) before
	// the controller's leader deletes the exclusive queues of its
	// connections: RabbitMQ's default net_ticktime, after which it
	// considers a node down.
	BrokerDownNodeReleaseDefault = 60 * time.Second

	// BrokerReleaseRetryInterval is the wait between tries to release
	// what a closed connection held (its consumers' deliveries, its
	// exclusive queues) while a group has no leader to take it.
	BrokerReleaseRetryInterval = time.Second

	// BrokerTimerArmAttemptsMax bounds the attempts of a queue's leader to
	// arm its wake timer while the clock moves under it (queueLeader.arm):
	// a real clock crosses a millisecond between two reads rarely, twice
	// in a row practically never, and a fake clock moves only when a test
	// advances it. Beyond it the timer keeps a deadline late by the move.
	BrokerTimerArmAttemptsMax = 4

	// BrokerMemoryHighWatermarkDefault is the fraction of RAM above which
	// heap memory in use blocks publishers (RabbitMQ's
	// vm_memory_high_watermark, 0.4); BrokerDiskFreeLimitDefault the free
	// disk space below which they are blocked: RabbitMQ's 50 MB is less
	// than one segment, so 1 GiB, one default segment.
	BrokerMemoryHighWatermarkDefault = 0.4
	BrokerDiskFreeLimitDefault       = 1 << 30

	// BrokerFlowSampleIntervalDefault is how often memory and disk are
	// measured for flow control.
	BrokerFlowSampleIntervalDefault = 100 * time.Millisecond

	// BrokerSameLeaderRetryAfter is how long a call that failed on a
	// group's leader without a word from it (its node's forwarding
	// connection broke) waits for another leader before it goes to the
	// same one again, provided the replication transport does not report
	// that node down. Longer than the transport's PeerTimeout (1 s) and an
	// election, so that a leader that died is reported down or replaced
	// first; a queue drops the messages it receives twice (its senders),
	// so resending to a leader that applied them is safe.
	BrokerSameLeaderRetryAfter = 3 * time.Second

	// BrokerLeaderPollIntervalDefault is how often a node checks which of
	// its groups it leads (the engine has no notification);
	// BrokerReconcileIntervalDefault the reconciler's period beside the
	// passes controller changes trigger.
	BrokerLeaderPollIntervalDefault = 50 * time.Millisecond
	BrokerReconcileIntervalDefault  = time.Second

	// BrokerRelocateIntervalDefault is how often a queue's leader checks
	// whether old messages hold much of its log (relocate.go), and
	// BrokerRelocateFreeBytesDefault how much a relocation must free to be
	// worth it: four default segments.
	BrokerRelocateIntervalDefault  = 30 * time.Second
	BrokerRelocateFreeBytesDefault = 4 * GroupSegmentBytesDefault

	// BrokerGetReadPinMs and BrokerGetReadPinsMax bound how long, and for
	// how many messages at once, a queue's log keeps the body of a message
	// an auto-ack Get took out of the queue, until the getter has read it
	// (queueFSM.reads): a getter that has not read it by then has given
	// up.
	BrokerGetReadPinMs   = 10_000
	BrokerGetReadPinsMax = 4096

	// BrokerRetentionIntervalDefault is how often a partition's leader
	// applies retention (Kafka's log.retention.check.interval.ms is 5
	// minutes; a minute keeps age retention closer to its setting).
	BrokerRetentionIntervalDefault = time.Minute

	// BrokerGroupTickIntervalDefault is how often a coordinator lets time
	// pass: a tenth of the shortest session timeout.
	BrokerGroupTickIntervalDefault = GroupSessionTimeoutMin / 10

	// BrokerGroupMarksMax bounds the (group, partition) pairs a
	// coordinator's leader remembers having told whether the group has
	// members (the expiry of committed offsets follows it, KIP-211): a
	// map entry of about 50 bytes each, so 256 Ki pairs (1,000 groups of
	// 256 partitions) cost about 13 MiB. Past it, a member's commit to a
	// partition not remembered is followed by a mark every time (one more
	// log entry) instead of once.
	BrokerGroupMarksMax = 1 << 18

	// BrokerGroupMarkRetryInterval is the wait before telling partitions
	// again after a mark failed (their leader moving), as
	// BrokerDeadLetterRetryInterval.
	BrokerGroupMarkRetryInterval = time.Second

	// BrokerCoordinatorLoadWaitMax bounds how long a consumer-group call
	// waits for its coordinator's group to load on this node (after a
	// restart: the controller and the group replaying, the group
	// electing) before answering Kafka's COORDINATOR_LOAD_IN_PROGRESS,
	// which clients retry after their backoff. A second is one election
	// timeout at the default 100 ms tick, so a restart's loading mostly
	// ends within the wait or the next retry; waiting longer holds the
	// connection's reader (Heartbeat and OffsetCommit run on it) for
	// nothing the client's own retry would not do.
	BrokerCoordinatorLoadWaitMax = time.Second

	// BrokerStreamDecompressedBytesMax bounds what one compressed batch of
	// a stream may decompress to when the broker reads its records (stream
	// consumers, ListOffsets by timestamp). It equals what the Kafka front
	// end lets a produced batch decompress to, so every batch stored
	// through it can be read; a larger one (a compression bomb that did
	// not come through that check) fails with CodeTooLarge instead of
	// being allocated. One such buffer per partition reader at a time.
	BrokerStreamDecompressedBytesMax = KafkaDecompressedBytesMax

	// BrokerRevokeCloseTimeout bounds releasing what a connection of a
	// deleted user or tenant owned when no front end closes it (its
	// consumers' deliveries return, its exclusive queues go): a few
	// proposals, as AdminCloseTimeout for the management API's sessions.
	BrokerRevokeCloseTimeout = 10 * time.Second
)

// AMQP 0-9-1 (internal/proto/amqp).
const (
	// AMQPMessageBytesMax is the largest message body accepted, as
	// RabbitMQ's default max_message_size.
	AMQPMessageBytesMax = 128 << 20

	// AMQPFrameBytesMax is the largest frame-max (frame size including
	// its 8 bytes of header and frame-end) the front end may be
	// configured to offer; a peer answering "no limit" (0) or more than
	// the offer is refused, as by RabbitMQ. A connection's read buffer grows
	// to its frame-max, so this bounds per-connection memory; bodies are
	// split across frames, so larger frames gain little over RabbitMQ's
	// default of 128 KiB.
	AMQPFrameBytesMax = 1 << 20

	// AMQPFrameSlackBytes is how far a received frame may exceed the
	// negotiated frame-max and still be accepted: RabbitMQ tolerates one
	// empty frame's size (8) because clients commonly count frame-max
	// without the header and frame-end.
	AMQPFrameSlackBytes = 8

	// AMQPTableDepthMax bounds the nesting of field tables and arrays (a
	// top-level table is depth 1), so decoding and encoding recurse a
	// bounded amount and a cyclic table cannot loop. Real headers nest
	// four deep (x-death: an array of tables holding arrays).
	AMQPTableDepthMax = 32

	// AMQPTableFieldsMax bounds the values in one field table, counting
	// nested tables' and arrays' values: a 2-byte void field decodes into
	// a map entry or interface of ~50 bytes, and this caps that
	// amplification at a few MiB per table.
	AMQPTableFieldsMax = 1 << 16

	// AMQPFrameBytesDefault is the frame-max the server offers in
	// connection.tune: RabbitMQ's default (128 KiB), large enough that a
	// 1 KiB message is one body frame, small enough that a connection's
	// read buffer stays modest.
	AMQPFrameBytesDefault = 128 << 10

	// AMQPChannelsPerConnectionMax is the channel-max the server offers
	// and the most channels one connection may open: RabbitMQ's default
	// channel_max. Each open channel costs its bookkeeping (unacked tags,
	// consumers, confirms).
	AMQPChannelsPerConnectionMax = 2047

	// AMQPConsumersPerChannelMax bounds the consumers of one channel
	// (RabbitMQ's consumer_max_per_channel, unlimited there): every
	// consumer is a broker subscription with its own prefetch window.
	AMQPConsumersPerChannelMax = 1024

	// AMQPPrefetchCountMax is the largest prefetch a client can ask for
	// (basic.qos carries a short) and what "no limit" (0) becomes, so the
	// unacked deliveries of one consumer are always bounded.
	AMQPPrefetchCountMax = 1<<16 - 1

	// AMQPPublishesInFlightMax bounds the publishes of one connection
	// handed to the broker and not yet settled. Beyond it the reader stops
	// reading the socket (TCP backpressure): 16 producers with 256 confirms
	// in flight each fit.
	AMQPPublishesInFlightMax = 4096

	// AMQPPublishBatchMessagesMax and AMQPPublishBatchBytesMax bound the
	// consecutive publishes of one channel to one exchange coalesced into
	// one broker call, when they arrive in one read from the socket (the
	// bytes count bodies and raw properties).
	AMQPPublishBatchMessagesMax = 256
	AMQPPublishBatchBytesMax    = 1 << 20

	// AMQPPublishInlineBytesMax: a message whose body and raw properties
	// together are at most this many bytes is copied into its publish
	// batch's recycled buffer; a larger one keeps an allocation of its own,
	// so one large message never grows the recycled buffers.
	AMQPPublishInlineBytesMax = 64 << 10

	// AMQPPublishBufferBytesMax is the largest recycled buffer carrying a
	// publish batch's bodies to the broker: a batch is flushed once it
	// holds AMQPPublishBatchBytesMax, so its last message brings it to at
	// most that plus AMQPPublishInlineBytesMax, which this fits with room.
	// Buffers are recycled by powers of two up to it, so a batch in flight
	// never holds more than twice the bytes it carries.
	AMQPPublishBufferBytesMax = 2 << 20

	// AMQPPropertiesScratchBytesMax bounds the buffer a channel keeps
	// between messages for a content header's raw properties (they wait
	// there for the body frames); a longer list (headers of many KiB) gets
	// a buffer of its own, used once.
	AMQPPropertiesScratchBytesMax = 1 << 10

	// AMQPWriteBufferBytes is how many encoded bytes may wait for the
	// socket writer before the connection's reader stops adding replies
	// (deliveries are bounded by prefetch instead, confirms by
	// AMQPPublishesInFlightMax). The writer sends everything waiting in
	// one write call, so this is also the coalescing window.
	AMQPWriteBufferBytes = 4 << 20

	// AMQPTxMessagesMax and AMQPTxBytesMax bound what one transaction
	// (tx.select channel) buffers before tx.commit: publishes and
	// acknowledgements. Beyond either the channel is closed with
	// 406 PRECONDITION_FAILED. One message of AMQPMessageBytesMax fits.
	AMQPTxMessagesMax = 1 << 16
	AMQPTxBytesMax    = 2 * AMQPMessageBytesMax

	// AMQPHeartbeatDefault is the heartbeat interval the server offers in
	// connection.tune (RabbitMQ's default); the client's tune-ok decides.
	AMQPHeartbeatDefault = 60 * time.Second

	// AMQPHeartbeatMissedMax is how many heartbeat intervals may pass
	// without a frame from the peer before it is disconnected (RabbitMQ
	// and the spec: two).
	AMQPHeartbeatMissedMax = 2

	// AMQPHandshakeTimeout bounds the time from accepting a connection to
	// connection.open (RabbitMQ's handshake_timeout), so half-open sockets
	// do not hold a goroutine forever.
	AMQPHandshakeTimeout = 10 * time.Second

	// AMQPCloseTimeout bounds how long the server waits for the peer's
	// connection.close-ok after sending connection.close, and for the
	// socket writer to drain when a connection ends.
	AMQPCloseTimeout = 3 * time.Second

	// AMQPSessionCloseTimeout bounds how long a closing connection waits
	// for the broker to release what it owned (consumers, unacknowledged
	// deliveries, exclusive queues) before it answers close-ok or closes
	// the socket; the release goes on in the broker after it. A healthy
	// cluster releases in milliseconds; a cluster without a quorum cannot
	// release at all until one returns, and a node's shutdown then waits
	// this long once (its connections close together), not its whole
	// shutdown.timeout. Kafka's session waits KafkaSessionCloseTimeout.
	AMQPSessionCloseTimeout = 5 * time.Second

	// AMQPShutdownSettleTimeout bounds how long a closing server waits
	// for the publishes already handed to the broker to get their outcome
	// (and their confirms to be sent) before it closes the connections
	// with 320. A healthy commit takes milliseconds and a slow fsync
	// under a second; 5 s leaves most of shutdown.timeout (30 s by
	// default) to the steps after it.
	AMQPShutdownSettleTimeout = 5 * time.Second
)

// Kafka (internal/proto/kafka).
const (
	// KafkaRequestBytesMax is the largest request accepted; a larger size
	// prefix is refused before anything is allocated (Kafka's
	// socket.request.max.bytes).
	KafkaRequestBytesMax = 100 << 20

	// KafkaFrameReadChunkBytes is how far a frame's buffer is grown ahead
	// of the bytes that have arrived, so a size prefix alone never reserves
	// more than this: a peer announcing 100 MiB and sending nothing costs
	// 64 KiB, and a legitimate large request costs one doubling copy chain.
	KafkaFrameReadChunkBytes = 64 << 10

	// KafkaTaggedFieldsMax bounds the tagged fields of one struct of a
	// request, response or header. Kafka uses at most four per struct
	// today and assigns tags in order from 0, so 64 leaves years of room
	// while bounding the unknown tags a decoder keeps.
	KafkaTaggedFieldsMax = 64

	// KafkaDecodeAllocBytesMax bounds the Go memory one decoded message
	// holds besides its input (bytes and records fields alias the input):
	// slices, strings, pointers. A 1-byte array element can decode into a
	// 100-byte struct, so without this bound a 100 MiB request could cost
	// 10 GiB; with it, at most the size of the largest request again.
	KafkaDecodeAllocBytesMax = KafkaRequestBytesMax

	// KafkaConnInflightRequestsMax bounds the requests of one connection
	// read and not yet answered (pipelining); KafkaConnInflightBytesMax
	// their bytes. At either bound the connection's reader stops reading
	// (TCP backpressure). Kafka clients keep at most 5 produce requests in
	// flight per connection; 64 leaves room for clients that pipeline
	// metadata and offset requests besides. A request larger than the
	// byte bound is still read when nothing else is held.
	KafkaConnInflightRequestsMax = 64
	KafkaConnInflightBytesMax    = 64 << 20

	// KafkaConnectionsMax bounds the connections one Kafka listener
	// serves at once (each costs two goroutines and its buffers before it
	// authenticates); more are closed at accept.
	KafkaConnectionsMax = 1 << 14

	// KafkaReadBufferBytes and KafkaWriteBufferBytes size a connection's
	// socket buffers: a 64 KiB produce batch or fetch response moves in
	// one system call, and 10,000 idle connections cost 1.25 GiB at most.
	KafkaReadBufferBytes  = 64 << 10
	KafkaWriteBufferBytes = 64 << 10

	// KafkaSessionCloseTimeout bounds how long a closing connection waits
	// for the broker to release what it owned.
	KafkaSessionCloseTimeout = 10 * time.Second

	// KafkaAdminTimeoutMax bounds the wait of an admin request (create,
	// delete, configs) and of a topic auto-created by Metadata for the
	// controller to commit it; a client's own timeout, when shorter, wins.
	// Kafka's default request.timeout.ms is 30 s.
	KafkaAdminTimeoutMax = 30 * time.Second

	// KafkaProduceTimeoutMax bounds the wait of a Produce request for its
	// quorum, whatever timeout the client asks for.
	KafkaProduceTimeoutMax = 5 * time.Minute

	// KafkaFetchResponseBytesMax bounds one Fetch response's record bytes
	// (Kafka's broker fetch.max.bytes, 55 MiB): a client's larger
	// max_bytes is cut to it. The first batch of a response is returned
	// whole even past it, as Kafka does (at most BatchBytesMax).
	KafkaFetchResponseBytesMax = 57_671_680

	// KafkaFetchWaitMax bounds a Fetch long poll, whatever max_wait_ms
	// the client asks for: the client's own request timeout (30 s by
	// default) must not fire first.
	KafkaFetchWaitMax = 20 * time.Second

	// KafkaFetchSessionsMax bounds the incremental fetch sessions
	// (KIP-227) a server keeps (Kafka's
	// max.incremental.fetch.session.cache.slots); past it, a new session
	// is created only by evicting one idle for
	// KafkaFetchSessionIdleTimeout (Kafka's
	// min.incremental.fetch.session.eviction.ms), else the client is
	// served sessionless.
	KafkaFetchSessionsMax        = 1000
	KafkaFetchSessionIdleTimeout = 2 * time.Minute

	// KafkaFetchSessionPartitionsMax bounds the partitions of one fetch
	// session (about 100 bytes each): a fetch with more is served without
	// a session. A consumer of every partition of one stream fits.
	KafkaFetchSessionPartitionsMax = ControllerStreamPartitionsMax

	// KafkaDecompressedBytesMax bounds what one compressed batch may
	// decompress to when the server validates it, so a compression bomb
	// costs at most this much memory and work per connection.
	KafkaDecompressedBytesMax = 64 << 20

	// DecompressGrowBytesMin is the smallest step by which a decompressor
	// grows its output while reading under a limit: small enough that a
	// tiny batch does not allocate much, large enough that a large one is
	// not grown a few bytes at a time. The limit still bounds the total.
	DecompressGrowBytesMin = 4 << 10

	// DecompressZstdWindowBytesMin is the smallest window the zstd
	// decoder accepts whatever the caller's limit: zstd's default window
	// (8 MiB), which encoders use for small inputs too; the decoded size is
	// still checked against the caller's limit.
	DecompressZstdWindowBytesMin = 8 << 20

	// KafkaFetchControlSkipsMax bounds the reads one partition of a Fetch
	// makes to step over control batches (Ferry's own log entries, which
	// the server leaves out of responses) to reach records; past it the
	// partition is answered without records for now.
	KafkaFetchControlSkipsMax = 16

	// KafkaProduceCallsInflightMax bounds the produce calls of one
	// connection handed to the broker and not yet settled; a request with
	// more partitions waits for earlier ones to settle. 64 pipelined
	// requests of 16 partitions fit.
	KafkaProduceCallsInflightMax = 1024

	// KafkaStatsWalkDepthMax bounds how deep the error-code counting of
	// responses (Server.Stats) looks into nested message structs, the top
	// struct at depth 0. Kafka's responses nest five at most (a message,
	// its topics, their partitions, a list in those, tagged fields), so a
	// type nested deeper is a bug of the generator or a recursive type,
	// and stops the walk's construction with a BUG rather than a stack
	// overflow.
	KafkaStatsWalkDepthMax = 8
)

// Load generation (internal/loadgen): the benchmark core of bench/ and
// `ferry bench`.
const (
	// LoadgenSequencesMax bounds the messages one logical producer sends in
	// a run, and so its accounting bitmaps: each costs at most this many
	// bits (256 MiB), allocated 8 KiB at a time as sequences are used. At
	// a million messages a second it is a 35-minute run of one producer.
	LoadgenSequencesMax = 1 << 31

	// LoadgenProducersMax bounds the logical producers of a run: the
	// thousand-queue workload runs one per queue; 65,536 goroutines stay
	// cheap.
	LoadgenProducersMax = 1 << 16

	// LoadgenQueuesMax bounds the queues of a run, for the same reason.
	LoadgenQueuesMax = 1 << 16

	// LoadgenInFlightMax bounds one producer's publishes awaiting their
	// confirm; the workloads use 256 (RabbitMQ PerfTest's common
	// setting). Beyond 65,536 a producer only measures a broker's buffers.
	LoadgenInFlightMax = 1 << 16

	// LoadgenPrefetchMax bounds a consumer's unacknowledged deliveries:
	// AMQP's basic.qos prefetch-count is a 16-bit field.
	LoadgenPrefetchMax = 1<<16 - 1

	// LoadgenBodyBytesMax bounds a generated message body: every producer
	// holds one body buffer, and 16 MiB is past what any workload sends.
	LoadgenBodyBytesMax = 16 << 20

	// LoadgenConfirmQueueMax bounds the publishes one session's Confirmer
	// waits for: a session shared by many producers holds up to their
	// confirm windows together; past it Publish blocks (backpressure).
	LoadgenConfirmQueueMax = 1 << 16

	// LoadgenWriteQueueBytesMax bounds the bytes a CoalescingConn queues
	// for its flusher; past it Write blocks. A 256-message confirm window
	// of 1 KiB publishes is about 300 KiB.
	LoadgenWriteQueueBytesMax = 1 << 20

	// LoadgenCloseFlushMax bounds how long closing a CoalescingConn waits
	// for its queued bytes to be written: a peer that stopped reading
	// cannot hold the close for longer.
	LoadgenCloseFlushMax = 5 * time.Second

	// LoadgenLatencyMax is the largest latency the histograms resolve;
	// larger values are recorded as it and counted as clamped. A minute
	// is far past any healthy broker's tail.
	LoadgenLatencyMax = time.Minute

	// LoadgenDrainIdleDefault ends a drain that has received nothing for
	// this long: a broker paused that long is failing the run anyway, and
	// the tally then says what is missing.
	LoadgenDrainIdleDefault = 15 * time.Second

	// LoadgenConfirmWaitDefault bounds the wait for the last confirms of a
	// producer once it stopped sending.
	LoadgenConfirmWaitDefault = time.Minute

	// LoadgenMemQueueDepth bounds each queue of bench's in-process target
	// (the load generator's floor, no broker): a publish waits while its
	// queue is full. It holds a minute of the 1,000 msg/s latency workload.
	LoadgenMemQueueDepth = 1 << 16

	// LoadgenProcFileBytesMax bounds what bench's driver reads of one
	// /proc/<pid>/stat or status file: a few KiB on any kernel.
	LoadgenProcFileBytesMax = 64 << 10

	// LoadgenResultLineBytesMax bounds one line of bench's results.jsonl
	// (one run's JSON is under 2 KiB).
	LoadgenResultLineBytesMax = 1 << 20

	// LoadgenScratchFileBytesMax bounds bench/physical's scratch file: past
	// it the durable-write measurement rewrites the file from its start
	// (blocks already allocated, as for a log that preallocates), so a
	// fast disk cannot fill the brokers' file system.
	LoadgenScratchFileBytesMax = 4 << 30
)

// Management API (internal/admin) and the client commands of cmd/ferry.
const (
	// AdminRequestBodyBytesMax bounds one HTTP API request body, read
	// whole before it is decoded: room for a batch of publishes of up to
	// 8 MiB of (base64-inflated) bodies; larger messages go over AMQP or
	// Kafka.
	AdminRequestBodyBytesMax = 16 << 20

	// AdminPublishMessagesMax bounds the messages of one HTTP publish:
	// each becomes one entry of the broker call's batch.
	AdminPublishMessagesMax = 1000

	// AdminGetMessagesMax bounds the messages one get or stream read
	// returns, and the delivery tokens of one ack: a page for a simple
	// client, like QueueBrowseMax.
	AdminGetMessagesMax = 1000

	// AdminPendingDeliveriesMax bounds the deliveries fetched over HTTP
	// with manual acks and not yet settled, over all users: each holds a
	// broker handle (about 200 bytes).
	AdminPendingDeliveriesMax = 1 << 16

	// AdminPendingAckTimeoutDefault returns a delivery fetched with
	// manual acks to its queue when no ack came this long: HTTP clients
	// have no connection whose loss would return it.
	AdminPendingAckTimeoutDefault = 5 * time.Minute

	// AdminSessionsMax bounds the broker connections the API holds for
	// HTTP clients: one per (user, tenant) that made a request.
	AdminSessionsMax = 1024

	// AdminLoginCacheEntriesMax bounds the remembered HTTP logins (one
	// per user), and AdminAuthCacheTTLDefault how long one is trusted
	// before the password is checked again: short enough that a changed
	// password takes effect within seconds, long enough that a client
	// polling the API does not pay argon2id on every request.
	AdminLoginCacheEntriesMax = 4096
	AdminAuthCacheTTLDefault  = 10 * time.Second

	// AdminListItemsMax bounds the entities one list request returns
	// (use prefix/after paging for more).
	AdminListItemsMax = 10_000

	// AdminHeaderDepthMax bounds the nesting of JSON header values
	// (tables in tables) a publish may carry.
	AdminHeaderDepthMax = 16

	// AdminRateEntriesMax bounds the queues whose last counters are kept
	// for rates; AdminRateIntervalMin is the shortest interval a rate is
	// measured over (reads closer together repeat the last rate).
	AdminRateEntriesMax  = 100_000
	AdminRateIntervalMin = time.Second

	// AdminMetricsEntitiesMax bounds the queues and streams one /metrics
	// scrape reports, so a scrape's cost and series count stay bounded;
	// past it the scrape sets ferry_metrics_entities_truncated.
	AdminMetricsEntitiesMax = 10_000

	// AdminMetricsConsumerLagSeriesMax bounds the consumer lag series
	// (one per group and partition) one /metrics scrape reports: groups
	// multiply partitions, so this is counted apart from the entities'
	// bound, at the same order of series Prometheus handles per target;
	// past it the scrape sets ferry_stream_consumer_lag_truncated.
	AdminMetricsConsumerLagSeriesMax = 10_000

	// AdminStreamReadWaitMax bounds how long a stream read over HTTP
	// waits for messages.
	AdminStreamReadWaitMax = 30 * time.Second
	// AdminStreamReadWaitDefault is a stream read's wait without
	// timeout_ms: a second lets the partitions' first batches arrive
	// while an empty stream still answers promptly.
	AdminStreamReadWaitDefault = time.Second

	// AdminCloseTimeout bounds closing the API's broker connections and
	// returning pending deliveries at shutdown.
	AdminCloseTimeout = 10 * time.Second

	// AdminUndocumentedMax bounds the recorded responses and parameters
	// missing from the OpenAPI document (a test aid; logged as well).
	AdminUndocumentedMax = 100

	// AdminConsoleSessionsMax bounds the web console's login sessions
	// (about 300 bytes each); past it a login is refused with
	// overloaded rather than evicting another operator's session.
	// AdminConsoleSessionIdleTimeout ends a session unused this long,
	// and AdminConsoleSessionLifetimeMax any session this old: a session
	// carries the tags its user had at login, so a demoted or deleted
	// user keeps at most that long on pages that make no broker call.
	AdminConsoleSessionsMax        = 1024
	AdminConsoleSessionIdleTimeout = 30 * time.Minute
	AdminConsoleSessionLifetimeMax = 8 * time.Hour

	// AdminConsoleFormBytesMax bounds a console form post: a published
	// message's body (1 MiB, base64-inflated) and its fields fit.
	AdminConsoleFormBytesMax = 2 << 20

	// AdminConsoleGetMessagesMax bounds the messages one console "get
	// messages" shows: a page a person reads.
	AdminConsoleGetMessagesMax = 100

	// CLIResponseBytesMax bounds an HTTP API response the ferry client
	// commands read: a page of AdminListItemsMax entities or
	// AdminGetMessagesMax messages fits.
	CLIResponseBytesMax = 64 << 20

	// CLIConsumeBatchMax is how many messages `ferry consume` asks for in
	// one HTTP get or stream read.
	CLIConsumeBatchMax = 100

	// CLIPollInterval is how often `ferry consume --follow` asks the HTTP
	// API for new messages of an empty queue (HTTP has no push): five
	// requests a second per follower.
	CLIPollInterval = 200 * time.Millisecond

	// CLIProgressInterval is how often `ferry bench` redraws its progress
	// line.
	CLIProgressInterval = 500 * time.Millisecond
)

// Server (internal/server, cmd/ferry, sdk): configuration and lifecycle.
const (
	// ConfigFileBytesMax bounds the YAML configuration file read at
	// start: the whole configuration is a few KiB; a larger file is a
	// wrong path (a log, a segment), refused before it is parsed.
	ConfigFileBytesMax = 1 << 20

	// ConfigNodeIDMax bounds node ids, so they print and parse in any
	// tool (JSON numbers are exact to 2^53).
	ConfigNodeIDMax = 1<<53 - 1

	// ConfigPeersMax bounds cluster.peers: a cluster has at most
	// ControllerNodesMax nodes.
	ConfigPeersMax = ControllerNodesMax

	// ConfigAMQPHeartbeatMax is the longest AMQP heartbeat interval:
	// connection.tune carries seconds in an unsigned short.
	ConfigAMQPHeartbeatMax = 65535 * time.Second

	// ConfigShutdownTimeoutMax bounds shutdown.timeout: a shutdown
	// longer than an hour is a hang, and supervisors (systemd's default
	// TimeoutStopSec is 90 s) kill far sooner.
	ConfigShutdownTimeoutMax = time.Hour

	// ServerShutdownTimeoutDefault is shutdown.timeout's default: time
	// for in-flight confirms (a quorum fsync is milliseconds) and for
	// clients to see their connections close, well inside a supervisor's
	// stop timeout.
	ServerShutdownTimeoutDefault = 30 * time.Second
	// SDKStartTimeoutDefault is how long the sdk's NewServer waits for
	// the node to be ready by default: well past ServerReadyLeadersWait
	// plus replaying a large data directory, yet a start that hangs still
	// fails instead of blocking the embedding program.
	SDKStartTimeoutDefault = 30 * time.Second

	// ServerAnnounceLinesMax bounds the lines `ferry serve` prints at
	// start: one per listener (five front ends) plus the banner and the
	// ready line; tests read stderr up to it.
	ServerAnnounceLinesMax = 16

	// ServerWatchInterval is how often the server checks whether the
	// cluster is bootstrapped (to announce ready) and whether the broker
	// fail-stopped: fast enough that a test waiting for ready loses little,
	// cheap because each check is a read of in-memory state.
	ServerWatchInterval = 50 * time.Millisecond

	// ServerHTTPHeaderTimeout bounds how long the HTTP listener waits for
	// a request's headers, so idle or slow clients cannot pin a
	// goroutine each (net/http has no default).
	ServerHTTPHeaderTimeout = 10 * time.Second

	// ServerReadyLeadersWait bounds how long a starting node waits for
	// its queues to elect leaders before it says ready anyway: a single
	// node elects in about a second; a queue that has no quorum after
	// this is down, and readiness must not hide the rest of the node.
	ServerReadyLeadersWait = 10 * time.Second

	// ClientRetryInterval and ClientRetriesMax bound how the in-process
	// client (sdk) retries a call that failed with CodeUnavailable (a
	// group whose leader is still starting, as right after a restart):
	// 500 tries 20 ms apart ride out ten seconds of elections; the
	// caller's context may end it sooner.
	ClientRetryInterval = 20 * time.Millisecond
	ClientRetriesMax    = 500
)

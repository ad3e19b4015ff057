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
	// bytes (every record takes at least 7 bytes).
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
	// checkpoint to move the recovery point forward outside segment rolls:
	// it bounds the tail that recovery must scan, at the price of two
	// fsyncs and a rename every few seconds, never per append.
	CheckpointIntervalDefault = 5 * time.Second
)

// Metadata: the Pebble store (internal/storage/meta).
const (
	// MetaValueBytesMax bounds one metadata value.
	MetaValueBytesMax = 16 << 20
)

// Replication (internal/replication): none yet.

// Broker core: queues, streams, routing (internal/queue, internal/stream,
// internal/routing, internal/broker, internal/controller): none yet.

// Streams (internal/stream): partition state, committed offsets, consumer
// groups.
const (
	// StreamRetentionChunkBytes is the granularity at which a partition's
	// state remembers its batches for retention: consecutive batches are
	// summarised in chunks of about this many bytes, so the state grows
	// with the retained bytes divided by this, not with the batch count.
	// Retention moves the log start by whole chunks; 8 MiB is far below
	// the 1 GiB segments the log deletes, so it never holds data back.
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

// AMQP 0-9-1 (internal/proto/amqp).
const (
	// AMQPMessageBytesMax is the largest message body accepted, as
	// RabbitMQ's default max_message_size.
	AMQPMessageBytesMax = 128 << 20
)

// Kafka (internal/proto/kafka).
const (
	// KafkaRequestBytesMax is the largest request accepted; a larger size
	// prefix is refused before anything is allocated (Kafka's
	// socket.request.max.bytes).
	KafkaRequestBytesMax = 100 << 20
)

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
)

// Metadata: the Pebble store (internal/storage/meta).
const (
	// MetaValueBytesMax bounds one metadata value.
	MetaValueBytesMax = 16 << 20
)

// Replication (internal/replication): none yet.

// Broker core: queues, streams, routing (internal/queue, internal/stream,
// internal/routing, internal/broker, internal/controller): none yet.

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

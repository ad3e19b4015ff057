package stream

import "github.com/ferry-mq/ferry/internal/base"

// Murmur2 is Kafka's murmur2 hash (org.apache.kafka.common.utils.Utils
// .murmur2): MurmurHash2 with seed 0x9747b28c, little-endian 4-byte blocks,
// computed in 32-bit two's complement arithmetic exactly as Java does.
func Murmur2(data []byte) int32 {
	const (
		seed = 0x9747b28c
		m    = 0x5bd1e995
		r    = 24
	)
	n := len(data)
	h := uint32(seed) ^ uint32(n)
	for i := 0; i+4 <= n; i += 4 {
		k := uint32(data[i]) | uint32(data[i+1])<<8 | uint32(data[i+2])<<16 | uint32(data[i+3])<<24
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	tail := data[n&^3:]
	switch len(tail) {
	case 3:
		h ^= uint32(tail[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(tail[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(tail[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return int32(h)
}

// KeyPartition is the partition of a keyed record in a stream of
// numPartitions partitions, as Kafka's default partitioner chooses it:
// toPositive(murmur2(key)) % numPartitions, where toPositive clears the
// sign bit (it is not Math.abs). An empty, non-nil key is hashed like any
// other. numPartitions must be positive.
func KeyPartition(key []byte, numPartitions int32) int32 {
	base.Assert(numPartitions > 0, "KeyPartition with %d partitions", numPartitions)
	return (Murmur2(key) & 0x7fffffff) % numPartitions
}

// Spread says how a Partitioner places records that have no key.
type Spread uint8

const (
	// SpreadSticky keeps sending to one partition until the caller closes
	// the batch (BatchDone), then moves to the next: Kafka's sticky
	// partitioner (KIP-480), which fills batches instead of scattering
	// records, with rotation in place of Kafka's random choice so that it
	// stays deterministic.
	SpreadSticky Spread = iota
	// SpreadRoundRobin sends each record to the next partition in turn.
	SpreadRoundRobin
)

// Partitioner chooses the partition of each record a producer sends to one
// stream. It is pure: no randomness is drawn inside; a caller that wants
// producers to start on different partitions passes a random start. Not
// safe for concurrent use.
type Partitioner struct {
	spread Spread
	next   uint32 // the partition counter for unkeyed records
}

// NewPartitioner returns a partitioner whose first unkeyed record goes to
// partition start % numPartitions.
func NewPartitioner(spread Spread, start uint32) *Partitioner {
	return &Partitioner{spread: spread, next: start}
}

// Partition returns the partition of one record: explicit when it is >= 0
// (it must be below numPartitions, else a CodeOutOfRange error, as Kafka's
// UNKNOWN_TOPIC_OR_PARTITION), KeyPartition when key is non-nil, and
// otherwise the spread's choice.
func (p *Partitioner) Partition(explicit int32, key []byte, numPartitions int32) (int32, error) {
	if numPartitions <= 0 {
		return 0, errf(base.CodeInvalidArgument, "stream has %d partitions", numPartitions)
	}
	switch {
	case explicit >= 0:
		if explicit >= numPartitions {
			return 0, errf(base.CodeOutOfRange, "partition %d of a stream with %d partitions", explicit, numPartitions)
		}
		return explicit, nil
	case key != nil:
		return KeyPartition(key, numPartitions), nil
	}
	part := int32(p.next % uint32(numPartitions))
	if p.spread == SpreadRoundRobin {
		p.next++
	}
	return part, nil
}

// BatchDone tells a sticky partitioner that the batch it was filling is
// closed, so unkeyed records move to the next partition. It does nothing
// for round-robin.
func (p *Partitioner) BatchDone() {
	if p.spread == SpreadSticky {
		p.next++
	}
}

package broker

import "github.com/ferry-mq/ferry/internal/stream"

// ConsumerLag is one consumer group's position on one stream partition,
// as this node's replica of the partition has it.
type ConsumerLag struct {
	Partition     int32
	Group         string
	Committed     int64 // the group's committed offset (the next it will read)
	HighWatermark int64 // the partition's next offset
	// DataEnd is the offset after the partition's last data batch
	// (stream.Partition.DataEnd). Ferry's own entries (commits, group
	// marks, Raft's) take offsets after it (docs/kafka.md, "Where
	// committed offsets live"); they hold nothing to read.
	DataEnd int64
}

// Lag is how many offsets the group has yet to read up to the last data
// batch, 0 when it committed at or past it: a group that has read
// everything and committed shows 0, though its commit moved the high
// watermark. Offsets between the committed one and the data's end that
// hold Ferry's own entries are counted.
func (l ConsumerLag) Lag() int64 { return max(l.DataEnd-l.Committed, 0) }

// StreamConsumerLag returns the committed offset and high watermark of
// every consumer group on every partition of a stream that has a replica
// on this node, by partition and then group name, at most limit entries;
// truncated reports that some were left out. Only committed offsets
// have an entry: a group that never committed on a partition (members
// included) has none there, nor has a negative committed offset (a
// client's marker such as KafkaJS's -2 for the earliest), and there is no
// stand-in value (docs/kafka.md, "Consumer lag without a commit"). A
// committed offset lives in its partition's state machine, so this reads
// local replicas only and no client connection or Raft round trip: a
// follower's figures trail its leader's by what it has yet to apply, and
// partitions without a replica here are reported by the nodes that hold
// one. The error is CodeNotFound for a missing stream. The slice is the
// caller's.
func (b *Broker) StreamConsumerLag(tenant, name string, limit int) (lags []ConsumerLag, truncated bool, err error) {
	s, err := b.lookupStream(tenant, name)
	if err != nil {
		return nil, false, err
	}
	for i, p := range s.Partitions {
		lg := b.group(GroupID(p.Group))
		if lg == nil {
			continue
		}
		f := lg.fsm.(*partitionFSM)
		f.with(func(pp *stream.Partition) {
			hw, end := pp.HighWatermark(), pp.DataEnd()
			for _, g := range pp.Groups() {
				if len(lags) >= limit {
					truncated = true
					return
				}
				off, _ := pp.CommittedOffset(g)
				if off.Offset < 0 {
					// A client's marker, not a position (KafkaJS's
					// resetOffsets commits -2 for the earliest): no
					// number, as for a group that never committed.
					continue
				}
				lags = append(lags, ConsumerLag{Partition: int32(i), Group: g, Committed: off.Offset, HighWatermark: hw, DataEnd: end})
			}
		})
		if truncated {
			break
		}
	}
	return lags, truncated, nil
}

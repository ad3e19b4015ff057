package broker

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/controller"
	"github.com/ferry-mq/ferry/internal/storage/log/batch"
	"github.com/ferry-mq/ferry/internal/stream"
)

// PartitionRef names one partition of a stream.
type PartitionRef struct {
	Stream    string
	Partition int32
}

// FetchResult is what Fetch returns: whole batches ready for a Kafka
// response.
type FetchResult struct {
	// Records holds whole batches from the requested offset's batch (which
	// may start before the offset, as in Kafka). Control batches are
	// included: Kafka clients skip them.
	Records                                         []byte
	HighWatermark, LogStartOffset, LastStableOffset int64
	// DataEnd is the offset after the last data batch below the high
	// watermark (stream.Partition.DataEnd): Ferry's own entries after it
	// hold nothing to read, so it is the end a consumer reads to.
	DataEnd int64
}

// partitionOf resolves a partition to its group.
func (c *Conn) partitionOf(p PartitionRef, action Action) (GroupID, controller.StreamInfo, error) {
	if err := c.usable(); err != nil {
		return 0, controller.StreamInfo{}, err
	}
	if err := c.Authorize(action, EntityStream, p.Stream); err != nil {
		return 0, controller.StreamInfo{}, err
	}
	s, err := c.b.lookupStream(c.p.Tenant, p.Stream)
	if err != nil {
		return 0, s, err
	}
	if p.Partition < 0 || int(p.Partition) >= len(s.Partitions) {
		return 0, s, base.Errorf(base.CodeNotFound, "stream '%s' has no partition %d", p.Stream, p.Partition)
	}
	return GroupID(s.Partitions[p.Partition].Group), s, nil
}

// leaderHere returns the partition's leader runtime, once a leader is
// known (awaitLeader), or CodeNotLeader naming the leader (Kafka:
// NOT_LEADER_OR_FOLLOWER; clients refresh metadata and go there).
func (b *Broker) leaderHere(ctx context.Context, g GroupID) (*partitionLeader, error) {
	lead, err := b.awaitLeader(ctx, g, 0)
	if err != nil {
		return nil, err
	}
	if pl := b.partitionLeaderOf(g); pl != nil {
		return pl, nil
	}
	if lead == b.node {
		lead = 0 // it lost the leadership just now
	}
	return nil, base.Errorf(base.CodeNotLeader, "broker: node %d does not lead partition group %d: %w", b.node, g, leaderErr(g, lead))
}

// ProduceBatch appends one client-built Kafka v2 record batch to a
// partition on its leader. acks 0, 1 and -1 all mean durable on a quorum
// in Ferry (the front end sends no response for 0). Idempotent
// producers: a duplicate returns the original base offset; a refused
// batch is a *ProducerError saying why (an out-of-order sequence is
// CodeInvalidArgument and a fenced epoch CodeConflict underneath, for
// front ends that map codes only). logAppendTime is -1 (create time).
func (c *Conn) ProduceBatch(ctx context.Context, p PartitionRef, data []byte, acks int16) (baseOffset, logAppendTime, logStartOffset int64, err error) {
	return c.ProduceBatchOrdered(ctx, p, data, acks, func() {})
}

// ProduceBatchOrdered is ProduceBatch for a caller that pipelines an
// idempotent producer's batches of a partition (Kafka clients keep up to
// five requests in flight): admitted is called exactly once, before it
// returns, as soon as the caller may submit the producer's next batch of
// the partition, which then lands after this one in the log (or is refused
// if this one fails). Batches of other producers need not wait for it.
func (c *Conn) ProduceBatchOrdered(ctx context.Context, p PartitionRef, data []byte, acks int16, admitted func()) (baseOffset, logAppendTime, logStartOffset int64, err error) {
	admitted = sync.OnceFunc(admitted)
	defer admitted()
	g, s, err := c.partitionOf(p, ActionWrite)
	if err != nil {
		return 0, -1, 0, err
	}
	if err := c.b.flow.wait(ctx); err != nil {
		return 0, -1, 0, err
	}
	h, err := batch.Validate(data)
	if err != nil {
		return 0, -1, 0, err
	}
	if h.Attributes.IsControl() || h.RecordCount < 1 || h.LastOffsetDelta != h.RecordCount-1 {
		return 0, -1, 0, base.Errorf(base.CodeCorrupt, "broker: produce batch is a control batch or has %d records for lastOffsetDelta %d", h.RecordCount, h.LastOffsetDelta)
	}
	if max := s.Config.MaxMessageBytes; max > 0 && int64(len(data)) > max {
		return 0, -1, 0, base.Errorf(base.CodeTooLarge, "batch of %d bytes is over the stream's max.message.bytes %d", len(data), max)
	}
	pl, err := c.b.leaderHere(ctx, g)
	if err != nil {
		return 0, -1, 0, err
	}
	res, err := pl.produce(ctx, data, h, admitted)
	var start int64
	pl.fsm.with(func(pp *stream.Partition) { start, _ = pp.LogStart() })
	if err != nil {
		return 0, -1, start, producerRefusal(res.Status, err)
	}
	return res.BaseOffset, -1, start, nil
}

// ProducerRefusal says why an idempotent producer's batch was refused,
// as Kafka's produce checks decide it.
type ProducerRefusal uint8

const (
	// RefusedOutOfOrder: the base sequence does not follow the
	// producer's last one (Kafka's OUT_OF_ORDER_SEQUENCE_NUMBER).
	RefusedOutOfOrder ProducerRefusal = iota + 1
	// RefusedFenced: the producer epoch is older than the partition's
	// (Kafka's INVALID_PRODUCER_EPOCH).
	RefusedFenced
	// RefusedInvalid: a negative epoch or sequence with a producer id.
	RefusedInvalid
)

// ProducerError is an idempotent producer's refused batch. Err carries
// the base code (CodeInvalidArgument or CodeConflict).
type ProducerError struct {
	Refusal ProducerRefusal
	Err     error
}

func (e *ProducerError) Error() string { return e.Err.Error() }
func (e *ProducerError) Unwrap() error { return e.Err }

// producerRefusal types a produce error from the partition's verdict; any
// other error (not leader, timeout, ...) is returned as it is. A
// duplicate is not an error: it answers the original's offsets.
func producerRefusal(status stream.AppendStatus, err error) error {
	switch status {
	case stream.AppendOutOfOrder:
		return &ProducerError{Refusal: RefusedOutOfOrder, Err: err}
	case stream.AppendFenced:
		return &ProducerError{Refusal: RefusedFenced, Err: err}
	case stream.AppendInvalid:
		return &ProducerError{Refusal: RefusedInvalid, Err: err}
	}
	return err
}

// Fetch returns whole batches from offset up to the high watermark, at
// most maxBytes (at least one batch), read from the partition's log on
// its leader. When fewer than minBytes are available it waits for more,
// up to maxWait (capped at BrokerFetchWaitMax). An offset outside
// [log start, high watermark] is CodeOutOfRange.
func (c *Conn) Fetch(ctx context.Context, p PartitionRef, offset int64, maxBytes, minBytes int, maxWait time.Duration) (FetchResult, error) {
	g, _, err := c.partitionOf(p, ActionRead)
	if err != nil {
		return FetchResult{}, err
	}
	pl, err := c.b.leaderHere(ctx, g)
	if err != nil {
		return FetchResult{}, err
	}
	return c.b.fetch(ctx, pl.fsm, offset, maxBytes, minBytes, min(maxWait, base.BrokerFetchWaitMax))
}

func (b *Broker) fetch(ctx context.Context, f *partitionFSM, offset int64, maxBytes, minBytes int, maxWait time.Duration) (FetchResult, error) {
	var timer base.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		changed := f.hwChanged()
		res, err := b.readPartition(f, offset, maxBytes)
		if err != nil || len(res.Records) >= max(minBytes, 1) || maxWait <= 0 {
			return res, err
		}
		if timer == nil {
			timer = b.clock.NewTimer(maxWait)
		}
		select {
		case <-changed:
		case <-timer.C():
			return b.readPartition(f, offset, maxBytes)
		case <-ctx.Done():
			return res, nil
		case <-b.stop:
			return res, base.Errorf(base.CodeStopped, "broker: node %d is stopping", b.node)
		}
	}
}

// readPartition reads batches from offset, keeping only those below the
// high watermark (the log may hold entries not yet committed).
func (b *Broker) readPartition(f *partitionFSM, offset int64, maxBytes int) (FetchResult, error) {
	var res FetchResult
	f.with(func(p *stream.Partition) {
		res.HighWatermark, res.DataEnd = p.HighWatermark(), p.DataEnd()
		res.LogStartOffset, _ = p.LogStart()
	})
	res.LastStableOffset = res.HighWatermark
	if offset < res.LogStartOffset || offset > res.HighWatermark {
		return res, base.Errorf(base.CodeOutOfRange, "offset %d is outside [%d, %d]", offset, res.LogStartOffset, res.HighWatermark)
	}
	if offset == res.HighWatermark {
		return res, nil
	}
	rd, err := b.logs.offsets(f.group)
	if err != nil {
		return res, err
	}
	data, err := rd.Read(offset, max(maxBytes, 1))
	if err != nil {
		if base.CodeOf(err) == base.CodeOutOfRange {
			// Retention moved the log start under the read.
			return res, base.Errorf(base.CodeOutOfRange, "offset %d is no longer retained", offset)
		}
		return res, err
	}
	cut := 0
	for cut < len(data) {
		h, err := batch.ParseHeader(data[cut:])
		if err != nil || cut+h.Size() > len(data) || h.NextOffset() > res.HighWatermark {
			break
		}
		cut += h.Size()
	}
	res.Records = data[:cut:cut]
	return res, nil
}

// Offset specifiers of ListOffset.
const (
	OffsetLatest       = -1
	OffsetEarliest     = -2
	OffsetMaxTimestamp = -3
)

// ListOffset answers Kafka's ListOffsets: OffsetEarliest (log start),
// OffsetLatest (the end of the data, stream.Partition.DataEnd: Ferry's
// own entries after the last data batch hold nothing to read, so the
// offset before it is the last record, as in Kafka), OffsetMaxTimestamp
// (the record with the largest timestamp), or the first record with
// timestamp >= ts. A timestamp past every record gives offset -1 and
// timestamp -1, as Kafka.
func (c *Conn) ListOffset(ctx context.Context, p PartitionRef, ts int64) (offset, timestamp int64, err error) {
	g, _, err := c.partitionOf(p, ActionRead)
	if err != nil {
		return 0, 0, err
	}
	pl, err := c.b.leaderHere(ctx, g)
	if err != nil {
		return 0, 0, err
	}
	return c.b.listOffset(pl.fsm, ts)
}

func (b *Broker) listOffset(f *partitionFSM, ts int64) (int64, int64, error) {
	var start, hw, end, maxTs, maxOff int64
	var seek int64
	var found bool
	f.with(func(p *stream.Partition) {
		start, _ = p.LogStart()
		hw, end = p.HighWatermark(), p.DataEnd()
		maxTs, maxOff = p.MaxTimestamp()
		if ts >= 0 {
			seek, found = p.SeekTimestamp(ts)
		}
	})
	switch ts {
	case OffsetEarliest:
		return start, -1, nil
	case OffsetLatest:
		return end, -1, nil
	case OffsetMaxTimestamp:
		if maxOff < start {
			return -1, -1, nil
		}
		return b.firstRecordAtOrAfter(f, maxOff, maxTs, hw)
	}
	if ts < 0 {
		return 0, 0, base.Errorf(base.CodeInvalidArgument, "unknown offset specifier %d", ts)
	}
	if !found {
		return -1, -1, nil
	}
	return b.firstRecordAtOrAfter(f, seek, ts, hw)
}

// firstRecordAtOrAfter scans batches from offset for the first record
// with timestamp >= ts below hw. The records of a compressed batch whose
// max timestamp reaches ts are decompressed (recordsOf), so the answer is
// the exact record, as in Kafka; a batch that cannot be read is an error.
func (b *Broker) firstRecordAtOrAfter(f *partitionFSM, offset, ts, hw int64) (int64, int64, error) {
	rd, err := b.logs.offsets(f.group)
	if err != nil {
		return 0, 0, err
	}
	for offset < hw {
		data, err := rd.Read(offset, base.BrokerListOffsetReadBytes)
		if err != nil {
			return 0, 0, err
		}
		if len(data) == 0 {
			break
		}
		at := 0
		for at < len(data) {
			h, err := batch.ParseHeader(data[at:])
			if err != nil || at+h.Size() > len(data) || h.BaseOffset >= hw {
				return -1, -1, nil
			}
			bt := data[at : at+h.Size()]
			at += h.Size()
			offset = h.NextOffset()
			if h.Attributes.IsControl() || h.MaxTimestamp < ts {
				continue
			}
			it, err := recordsOf(bt, h)
			if err != nil {
				return 0, 0, unreadableBatch(f, h, err)
			}
			for r, ok := it.Next(); ok; r, ok = it.Next() {
				if rts := h.BaseTimestamp + r.TimestampDelta; rts >= ts {
					return h.BaseOffset + int64(r.OffsetDelta), rts, nil
				}
			}
			if err := it.Err(); err != nil {
				return 0, 0, unreadableBatch(f, h, err)
			}
		}
	}
	return -1, -1, nil
}

var lastProducerID atomic.Int64

// InitProducerID allocates a producer id for an idempotent producer:
// unique across the cluster (the node id in the top bits, then a counter
// seeded from the clock, so a restarted node does not reuse ids), epoch 0.
func (c *Conn) InitProducerID(ctx context.Context) (int64, int16, error) {
	if err := c.usable(); err != nil {
		return 0, 0, err
	}
	const nodeBits = 16
	const low = 63 - nodeBits
	for {
		prev := lastProducerID.Load()
		next := max(prev+1, c.b.nowMs()<<4) & (1<<low - 1)
		if lastProducerID.CompareAndSwap(prev, next) {
			return int64(c.b.node&(1<<nodeBits-1))<<low | next, 0, nil
		}
	}
}

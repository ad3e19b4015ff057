package stream

import (
	"math"

	"github.com/ferry-mq/ferry/internal/base"
)

// NoProducerID marks a batch from a producer that is not idempotent (Kafka's
// NO_PRODUCER_ID); such batches are never checked for duplicates.
const NoProducerID = -1

// PartitionConfig is the part of a stream's configuration that the
// partition state machine acts on. It is state: it changes only through the
// Configure command, so every replica applies the same retention.
type PartitionConfig struct {
	// RetentionBytes deletes the oldest data while the partition holds at
	// least this much more (Kafka's retention.bytes); <= 0 is unlimited.
	RetentionBytes int64
	// RetentionMs deletes data whose newest timestamp is older than this
	// (Kafka's retention.ms); <= 0 is unlimited.
	RetentionMs int64
	// OffsetsRetentionMs expires the committed offsets of a group empty for
	// this long; 0 means base.StreamOffsetsRetentionDefault, < 0 never.
	OffsetsRetentionMs int64
	// ProducerExpiryMs forgets an idempotent producer idle this long; 0
	// means base.StreamProducerExpiryDefault, < 0 never.
	ProducerExpiryMs int64
}

func (c PartitionConfig) offsetsRetentionMs() int64 {
	if c.OffsetsRetentionMs == 0 {
		return base.StreamOffsetsRetentionDefault.Milliseconds()
	}
	return c.OffsetsRetentionMs
}

func (c PartitionConfig) producerExpiryMs() int64 {
	if c.ProducerExpiryMs == 0 {
		return base.StreamProducerExpiryDefault.Milliseconds()
	}
	return c.ProducerExpiryMs
}

// Partition is the replicated state of one stream partition. It is not safe
// for concurrent use; the owner applies commands from one goroutine and
// serialises reads with them.
//
// Contract with the owner: every batch of the partition's log, data or
// control, is applied as exactly one Append, in log order, with the Index
// the log gave it; the stream commands carried by a control batch
// (CommitOffset, RetentionTick, ...) are applied after that batch's Append.
// So the partition's offsets are the log's offsets.
type Partition struct {
	cfg PartitionConfig

	nextIndex  uint64 // the Index the next Append must have
	nextOffset int64  // the high watermark: the offset the next batch starts at
	dataEnd    int64  // the offset after the last batch that is not Control

	// chunks summarise the retained batches, oldest first; they are
	// contiguous and the last one ends at nextOffset/nextIndex. The log
	// start is chunks[0]'s first offset and index, or next* when empty.
	chunks     []chunk
	startIndex uint64
	start      int64
	bytes      int64 // sum of chunks' bytes
	records    int64 // sum of chunks' records

	maxTimestamp       int64 // -1 when no batch was appended
	maxTimestampOffset int64 // base offset of the first batch with maxTimestamp

	producers map[int64]*producer
	groups    map[string]*groupOffset
}

// chunk summarises consecutive batches for retention.
type chunk struct {
	firstIndex   uint64
	firstOffset  int64
	bytes        int64
	records      int64 // in the data batches (not Control)
	maxTimestamp int64
}

// NewPartition returns the state of an empty partition whose first batch
// will have Index firstIndex (the log's first index, 1 for a fresh Raft
// group) and offset 0.
func NewPartition(cfg PartitionConfig, firstIndex uint64) *Partition {
	base.Assert(firstIndex > 0, "NewPartition: firstIndex 0")
	return &Partition{
		cfg:                cfg,
		nextIndex:          firstIndex,
		startIndex:         firstIndex,
		maxTimestamp:       -1,
		maxTimestampOffset: -1,
		producers:          map[int64]*producer{},
		groups:             map[string]*groupOffset{},
	}
}

// Command is one input of the partition state machine: Append,
// RetentionTick, CommitOffset, DeleteOffsets, MarkGroup or Configure.
type Command interface{ partitionCommand() }

// Append is one batch of the log, described by its header.
type Append struct {
	Now             int64  // Unix ms, stamped by the leader
	Index           uint64 // the batch's Index in the log (its Raft index)
	LastOffsetDelta int32  // the batch occupies LastOffsetDelta+1 offsets
	MaxTimestamp    int64  // the batch's max timestamp, Unix ms
	Bytes           int64  // the batch's size in the log
	ProducerID      int64  // NoProducerID unless idempotent
	ProducerEpoch   int16
	BaseSequence    int32
	// Control marks an entry of Ferry's own (a Raft entry, a command such
	// as an offset commit): it takes offsets like a batch, but holds no
	// records, so it does not move DataEnd.
	Control bool
}

// RetentionTick applies retention (data, producers, committed offsets) as
// of Now.
type RetentionTick struct{ Now int64 }

// CommitOffset records a consumer group's position on this partition.
type CommitOffset struct {
	Now         int64
	Group       string
	Offset      int64
	LeaderEpoch int32 // -1 when unknown
	Metadata    string
}

// DeleteOffsets forgets a group's committed offset on this partition.
type DeleteOffsets struct{ Group string }

// MarkGroup tells the partition whether a group has members (its offsets
// never expire) or became empty at Now (its offsets expire
// OffsetsRetentionMs later). The owner forwards the coordinator's
// GroupStateChanged effects. Groups without offsets here are ignored.
type MarkGroup struct {
	Now   int64
	Group string
	Empty bool
}

// Configure replaces the partition's configuration.
type Configure struct{ Config PartitionConfig }

func (Append) partitionCommand()        {}
func (RetentionTick) partitionCommand() {}
func (CommitOffset) partitionCommand()  {}
func (DeleteOffsets) partitionCommand() {}
func (MarkGroup) partitionCommand()     {}
func (Configure) partitionCommand()     {}

// Result is the outcome of Apply; which fields are set depends on the
// command.
type Result struct {
	Append    AppendResult    // Append
	Retention RetentionResult // RetentionTick
	// Existed reports, for DeleteOffsets, whether the group had an offset.
	Existed bool
	// Err is a refused CommitOffset (a client error with a base code); the
	// state is unchanged.
	Err error
}

// Apply applies one command and returns its outcome. It panics (BUG) when
// the owner breaks the contract of Partition (an Append out of index order).
func (p *Partition) Apply(cmd Command) Result {
	switch c := cmd.(type) {
	case Append:
		return Result{Append: p.ApplyAppend(c)}
	case RetentionTick:
		return Result{Retention: p.applyRetention(c.Now)}
	case CommitOffset:
		return Result{Err: p.applyCommit(c)}
	case DeleteOffsets:
		_, ok := p.groups[c.Group]
		delete(p.groups, c.Group)
		return Result{Existed: ok}
	case MarkGroup:
		p.applyMarkGroup(c)
		return Result{}
	case Configure:
		p.cfg = c.Config
		return Result{}
	default:
		base.Bugf("stream: Partition.Apply of %T", cmd)
		return Result{}
	}
}

// ApplyAppend applies one batch: it assigns the batch its offsets (the
// previous batch's last offset + 1, as the log does) whatever the producer
// check says, because the batch is already in the log. A status other than
// AppendOK here means the leader's pre-check (Check) was skipped or wrong:
// the producer state is left unchanged and the owner should log it.
func (p *Partition) ApplyAppend(a Append) AppendResult {
	// Checked with if, not base.Assert, so that the hot path does not box
	// the message arguments.
	if a.Index != p.nextIndex || a.LastOffsetDelta < 0 || a.Bytes <= 0 {
		base.Bugf("stream: Append of index %d (want %d), lastOffsetDelta %d, bytes %d",
			a.Index, p.nextIndex, a.LastOffsetDelta, a.Bytes)
	}
	first := p.nextOffset
	last := first + int64(a.LastOffsetDelta)

	res := AppendResult{Status: AppendOK, BaseOffset: first, LastOffset: last}
	if a.ProducerID >= 0 {
		pr := p.producers[a.ProducerID]
		chk := checkProducer(pr, a)
		if chk.Status == AppendOK {
			p.recordProducer(pr, a, first, last)
		} else {
			res = chk
		}
	}

	p.nextIndex++
	p.nextOffset = last + 1
	if !a.Control {
		p.dataEnd = p.nextOffset
	}
	if a.MaxTimestamp > p.maxTimestamp {
		p.maxTimestamp, p.maxTimestampOffset = a.MaxTimestamp, first
	}
	p.addToChunk(a, first)
	return res
}

func (p *Partition) addToChunk(a Append, first int64) {
	n := len(p.chunks)
	if n == 0 || p.chunks[n-1].bytes >= base.StreamRetentionChunkBytes {
		if n == base.StreamRetentionChunksMax {
			p.mergeChunks()
		}
		p.chunks = append(p.chunks, chunk{firstIndex: a.Index, firstOffset: first, maxTimestamp: math.MinInt64})
		n = len(p.chunks)
	}
	c := &p.chunks[n-1]
	c.bytes += a.Bytes
	c.maxTimestamp = max(c.maxTimestamp, a.MaxTimestamp)
	p.bytes += a.Bytes
	if !a.Control {
		records := int64(a.LastOffsetDelta) + 1
		c.records += records
		p.records += records
	}
}

// mergeChunks halves the chunk count by merging neighbours pairwise, so
// retention becomes coarser while memory stays bounded.
func (p *Partition) mergeChunks() {
	out := p.chunks[:0]
	for i := 0; i < len(p.chunks); i += 2 {
		c := p.chunks[i]
		if i+1 < len(p.chunks) {
			d := p.chunks[i+1]
			c.bytes += d.bytes
			c.records += d.records
			c.maxTimestamp = max(c.maxTimestamp, d.maxTimestamp)
		}
		out = append(out, c)
	}
	p.chunks = out
}

// RetentionResult says what a RetentionTick released.
type RetentionResult struct {
	// Truncate is true when the log start moved: the owner may delete every
	// batch with Index < StartIndex (offsets < StartOffset), in whole
	// segments.
	Truncate    bool
	StartIndex  uint64
	StartOffset int64
	// DeletedBytes is the size of the batches released.
	DeletedBytes int64
	// ExpiredProducers counts forgotten idempotent producers.
	ExpiredProducers int
	// ExpiredGroups lists, sorted, the groups whose offsets expired.
	ExpiredGroups []string
}

// RetentionDue reports whether a RetentionTick at now would change the
// partition: release a batch, forget a producer or expire a group's
// offsets. A leader proposes the tick only then, so that an idle
// partition's log does not take a control batch (an offset, an fsync, a
// wake-up of every long poll) at every interval.
func (p *Partition) RetentionDue(now int64) bool {
	if len(p.chunks) > 0 && p.chunkExpired(p.chunks[0], p.bytes, now) {
		return true
	}
	for _, pr := range p.producers {
		if p.producerExpired(pr, now) {
			return true
		}
	}
	ret := p.cfg.offsetsRetentionMs()
	for _, g := range p.groups {
		if g.expired(now, ret) {
			return true
		}
	}
	return false
}

// chunkExpired reports whether retention releases c, the oldest chunk,
// when the partition holds remaining bytes.
func (p *Partition) chunkExpired(c chunk, remaining, now int64) bool {
	byBytes := p.cfg.RetentionBytes > 0 && remaining-c.bytes >= p.cfg.RetentionBytes
	byAge := p.cfg.RetentionMs > 0 && c.maxTimestamp < now-p.cfg.RetentionMs
	return byBytes || byAge
}

func (p *Partition) applyRetention(now int64) RetentionResult {
	var res RetentionResult
	drop := 0
	remaining := p.bytes
	for drop < len(p.chunks) && p.chunkExpired(p.chunks[drop], remaining, now) {
		remaining -= p.chunks[drop].bytes
		p.records -= p.chunks[drop].records
		drop++
	}
	if drop > 0 {
		res.DeletedBytes = p.bytes - remaining
		p.bytes = remaining
		if drop == len(p.chunks) {
			p.startIndex, p.start = p.nextIndex, p.nextOffset
		} else {
			p.startIndex, p.start = p.chunks[drop].firstIndex, p.chunks[drop].firstOffset
		}
		p.chunks = append(p.chunks[:0], p.chunks[drop:]...)
		res.Truncate = true
	}
	res.StartIndex, res.StartOffset = p.startIndex, p.start
	res.ExpiredProducers = p.expireProducers(now)
	res.ExpiredGroups = p.expireGroups(now)
	return res
}

// LogStart returns the first offset and Index still retained.
func (p *Partition) LogStart() (offset int64, index uint64) { return p.start, p.startIndex }

// HighWatermark returns the offset the next batch will start at. Every
// applied batch is committed, so this is Kafka's high watermark and log end
// offset at once.
func (p *Partition) HighWatermark() int64 { return p.nextOffset }

// DataEnd returns the offset after the last data batch (one not Control),
// or the log start when retention dropped every data batch: the end a
// consumer reads to. It is at most the high watermark, below it by the
// control entries appended since the last data batch.
func (p *Partition) DataEnd() int64 { return max(p.dataEnd, p.start) }

// NextIndex returns the Index the next Append must carry.
func (p *Partition) NextIndex() uint64 { return p.nextIndex }

// RetainedBytes returns the size of the retained batches.
func (p *Partition) RetainedBytes() int64 { return p.bytes }

// Records returns the number of records in the retained data batches (a
// stream's message count; Control batches hold none).
func (p *Partition) Records() int64 { return p.records }

// Config returns the partition's configuration.
func (p *Partition) Config() PartitionConfig { return p.cfg }

// MaxTimestamp returns the largest batch max timestamp appended and the base
// offset of the first batch that carried it, for ListOffsets MAX_TIMESTAMP
// (the exact record is found by reading that batch). Both are -1 before the
// first batch. Retention does not lower it, as Kafka's does not until the
// segment holding it is deleted; callers clamp to LogStart.
func (p *Partition) MaxTimestamp() (ts, offset int64) { return p.maxTimestamp, p.maxTimestampOffset }

// SeekTimestamp returns where a search for the first record with timestamp
// >= ts should start reading the log: the first offset of the oldest
// retained chunk whose newest timestamp reaches ts. ok is false when no
// retained batch reaches ts (ListOffsets then answers the high watermark).
func (p *Partition) SeekTimestamp(ts int64) (offset int64, ok bool) {
	for i, c := range p.chunks {
		if c.maxTimestamp >= ts {
			if i == 0 {
				return p.start, true
			}
			return c.firstOffset, true
		}
	}
	return p.nextOffset, false
}

package stream

import (
	"cmp"
	"math"
	"slices"

	"github.com/ferry-mq/ferry/internal/base"
)

// Command tags of the partition's encoding. Never renumber: they are in
// Raft logs.
const (
	tagAppend        = 1
	tagRetentionTick = 2
	tagCommitOffset  = 3
	tagDeleteOffsets = 4
	tagMarkGroup     = 5
	tagConfigure     = 6
)

// partitionCommandBytesMax bounds an encoded partition command: the
// longest is a CommitOffset with a maximal group id and metadata.
const partitionCommandBytesMax = 64 + base.GroupIDBytesMax + base.StreamOffsetMetadataBytesMax

// EncodeCommand appends cmd's encoding to dst and returns the extended
// slice.
func EncodeCommand(dst []byte, cmd Command) []byte {
	e := encoder{b: dst}
	switch c := cmd.(type) {
	case Append:
		e.u8(tagAppend)
		e.varint(c.Now)
		e.uvarint(c.Index)
		e.varint(int64(c.LastOffsetDelta))
		e.varint(c.MaxTimestamp)
		e.varint(c.Bytes)
		e.varint(c.ProducerID)
		e.varint(int64(c.ProducerEpoch))
		e.varint(int64(c.BaseSequence))
		e.boolean(c.Control)
	case RetentionTick:
		e.u8(tagRetentionTick)
		e.varint(c.Now)
	case CommitOffset:
		e.u8(tagCommitOffset)
		e.varint(c.Now)
		e.str(c.Group)
		e.varint(c.Offset)
		e.varint(int64(c.LeaderEpoch))
		e.str(c.Metadata)
	case DeleteOffsets:
		e.u8(tagDeleteOffsets)
		e.str(c.Group)
	case MarkGroup:
		e.u8(tagMarkGroup)
		e.varint(c.Now)
		e.str(c.Group)
		e.boolean(c.Empty)
	case Configure:
		e.u8(tagConfigure)
		encodeConfig(&e, c.Config)
	default:
		base.Bugf("stream: EncodeCommand of %T", cmd)
	}
	return e.b
}

func encodeConfig(e *encoder, c PartitionConfig) {
	e.varint(c.RetentionBytes)
	e.varint(c.RetentionMs)
	e.varint(c.OffsetsRetentionMs)
	e.varint(c.ProducerExpiryMs)
}

func decodeConfig(d *decoder) PartitionConfig {
	return PartitionConfig{RetentionBytes: d.varint(), RetentionMs: d.varint(),
		OffsetsRetentionMs: d.varint(), ProducerExpiryMs: d.varint()}
}

// DecodeCommand decodes what EncodeCommand wrote. Errors have
// base.CodeCorrupt. A decoded Append has LastOffsetDelta >= 0 and Bytes > 0.
// The command does not alias b.
func DecodeCommand(b []byte) (Command, error) {
	if len(b) > partitionCommandBytesMax {
		return nil, errf(base.CodeCorrupt, "command of %d bytes is over the limit of %d", len(b), partitionCommandBytesMax)
	}
	d := decoder{b: b}
	var cmd Command
	switch tag := d.u8(); tag {
	case tagAppend:
		a := Append{Now: d.varint(), Index: d.uvarint(), LastOffsetDelta: d.int32(), MaxTimestamp: d.varint(),
			Bytes: d.varint(), ProducerID: d.varint(), ProducerEpoch: d.int16(), BaseSequence: d.int32(),
			Control: d.boolean()}
		if d.err == nil && (a.LastOffsetDelta < 0 || a.Bytes <= 0 || a.Index == 0) {
			d.fail("append with index %d, lastOffsetDelta %d, bytes %d", a.Index, a.LastOffsetDelta, a.Bytes)
		}
		cmd = a
	case tagRetentionTick:
		cmd = RetentionTick{Now: d.varint()}
	case tagCommitOffset:
		cmd = CommitOffset{Now: d.varint(), Group: d.str(base.GroupIDBytesMax, "group id"), Offset: d.varint(),
			LeaderEpoch: d.int32(), Metadata: d.str(base.StreamOffsetMetadataBytesMax, "metadata")}
	case tagDeleteOffsets:
		cmd = DeleteOffsets{Group: d.str(base.GroupIDBytesMax, "group id")}
	case tagMarkGroup:
		cmd = MarkGroup{Now: d.varint(), Group: d.str(base.GroupIDBytesMax, "group id"), Empty: d.boolean()}
	case tagConfigure:
		cmd = Configure{Config: decodeConfig(&d)}
	default:
		d.fail("unknown partition command tag %d", tag)
	}
	if err := d.finish(); err != nil {
		return nil, err
	}
	return cmd, nil
}

// Version 2 added the data end after the high watermark; a version 1
// snapshot restores with the data end at the high watermark. Version 3
// added each chunk's records; an earlier snapshot restores each chunk with
// as many records as it spans data offsets (its Control batches take
// offsets too, so that is an upper bound).
const partitionSnapshotVersion = 3

// positionMax bounds the offsets and indexes a snapshot may claim, far
// beyond any real log, so that arithmetic on them cannot overflow.
const positionMax = 1 << 62

// Snapshot appends the partition's whole state to dst: deterministic (maps
// in key order), so replicas with the same state write the same bytes.
func (p *Partition) Snapshot(dst []byte) []byte {
	e := encoder{b: dst}
	e.u8(partitionSnapshotVersion)
	encodeConfig(&e, p.cfg)
	e.uvarint(p.nextIndex)
	e.varint(p.nextOffset)
	e.varint(p.dataEnd)
	e.uvarint(p.startIndex)
	e.varint(p.start)
	e.varint(p.maxTimestamp)
	e.varint(p.maxTimestampOffset)
	e.uvarint(uint64(len(p.chunks)))
	for _, c := range p.chunks {
		e.uvarint(c.firstIndex)
		e.varint(c.firstOffset)
		e.varint(c.bytes)
		e.varint(c.maxTimestamp)
		e.varint(c.records)
	}
	ids := make([]int64, 0, len(p.producers))
	for id := range p.producers {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	e.uvarint(uint64(len(ids)))
	for _, id := range ids {
		pr := p.producers[id]
		e.varint(id)
		e.varint(int64(pr.epoch))
		e.varint(pr.lastMs)
		e.uvarint(uint64(pr.n))
		for _, b := range pr.batches[:pr.n] {
			e.varint(int64(b.firstSeq))
			e.varint(int64(b.lastSeq))
			e.varint(b.baseOffset)
			e.varint(b.lastOffset)
		}
	}
	names := p.Groups()
	e.uvarint(uint64(len(names)))
	for _, name := range names {
		g := p.groups[name]
		e.str(name)
		e.varint(g.offset)
		e.varint(int64(g.leaderEpoch))
		e.str(g.metadata)
		e.varint(g.commitMs)
		e.boolean(g.active)
		e.varint(g.emptyMs)
	}
	return e.b
}

// RestorePartition rebuilds a partition from Snapshot's bytes. It checks
// the structure (counts within limits, chunks contiguous, keys sorted and
// unique) and allocates no more than the limits and len(b) allow. Errors
// have base.CodeCorrupt.
func RestorePartition(b []byte) (*Partition, error) {
	d := decoder{b: b}
	v := d.u8()
	if d.err == nil && (v < 1 || v > partitionSnapshotVersion) {
		d.fail("unknown partition snapshot version %d", v)
	}
	p := &Partition{cfg: decodeConfig(&d), producers: map[int64]*producer{}, groups: map[string]*groupOffset{}}
	p.nextIndex, p.nextOffset = d.uvarint(), d.varint()
	p.dataEnd = p.nextOffset
	if v >= 2 {
		p.dataEnd = d.varint()
	}
	p.startIndex, p.start = d.uvarint(), d.varint()
	p.maxTimestamp, p.maxTimestampOffset = d.varint(), d.varint()
	n := d.count(base.StreamRetentionChunksMax, 4, "chunks")
	p.chunks = make([]chunk, 0, n)
	for range n {
		c := chunk{firstIndex: d.uvarint(), firstOffset: d.varint(), bytes: d.varint(), maxTimestamp: d.varint(), records: -1}
		if v >= 3 {
			if c.records = d.varint(); d.err == nil && c.records < 0 {
				d.fail("chunk of %d records", c.records)
			}
		}
		if d.err == nil && (c.bytes <= 0 || c.bytes > math.MaxInt64-p.bytes) {
			d.fail("chunk of %d bytes", c.bytes)
		}
		p.bytes += c.bytes
		p.chunks = append(p.chunks, c)
	}
	restoreProducers(&d, p)
	restoreGroups(&d, p)
	if err := d.finish(); err != nil {
		return nil, err
	}
	if err := p.checkPositions(); err != nil {
		return nil, err
	}
	if err := p.restoreRecords(); err != nil {
		return nil, err
	}
	return p, nil
}

// restoreRecords checks each chunk's records against the data offsets it
// spans, estimates those a snapshot before version 3 left out (-1) as
// that span, and sums them. It runs after checkPositions, so the chunks
// are in order and within the log.
func (p *Partition) restoreRecords() error {
	for i := range p.chunks {
		c := &p.chunks[i]
		end := p.dataEnd
		if i+1 < len(p.chunks) {
			end = min(end, p.chunks[i+1].firstOffset)
		}
		span := max(end-c.firstOffset, 0)
		if c.records < 0 {
			c.records = span
		}
		if c.records > span {
			return errf(base.CodeCorrupt, "partition snapshot: chunk at offset %d has %d records in %d data offsets",
				c.firstOffset, c.records, span)
		}
		p.records += c.records
	}
	return nil
}

func restoreProducers(d *decoder, p *Partition) {
	n := d.count(base.StreamProducersMax, 4, "producers")
	prev := int64(math.MinInt64)
	for i := range n {
		id := d.varint()
		pr := &producer{epoch: d.int16(), lastMs: d.varint()}
		pr.n = d.count(base.StreamProducerBatchesMax, 4, "producer batches")
		for j := range pr.n {
			pr.batches[j] = batchMeta{firstSeq: d.int32(), lastSeq: d.int32(), baseOffset: d.varint(), lastOffset: d.varint()}
		}
		if d.err != nil {
			return
		}
		if (i > 0 && id <= prev) || id < 0 || pr.n == 0 {
			d.fail("producer %d out of order or empty", id)
			return
		}
		prev = id
		p.producers[id] = pr
	}
}

func restoreGroups(d *decoder, p *Partition) {
	n := d.count(base.StreamCommittedGroupsMax, 8, "groups")
	prev := ""
	for i := range n {
		name := d.str(base.GroupIDBytesMax, "group id")
		g := &groupOffset{offset: d.varint(), leaderEpoch: d.int32(),
			metadata: d.str(base.StreamOffsetMetadataBytesMax, "metadata"), commitMs: d.varint(),
			active: d.boolean(), emptyMs: d.varint()}
		if d.err != nil {
			return
		}
		if (i > 0 && cmp.Compare(name, prev) <= 0) || name == "" {
			d.fail("group %q out of order or invalid", name)
			return
		}
		prev = name
		p.groups[name] = g
	}
}

// checkPositions verifies that the restored log positions and chunks agree.
func (p *Partition) checkPositions() error {
	bad := func(what string) error { return errf(base.CodeCorrupt, "partition snapshot: %s", what) }
	if p.nextIndex == 0 || p.startIndex > p.nextIndex || p.start < 0 || p.start > p.nextOffset ||
		p.nextOffset > positionMax || p.nextIndex > positionMax || p.dataEnd < 0 || p.dataEnd > p.nextOffset {
		return bad("log positions out of order or out of range")
	}
	if len(p.chunks) == 0 {
		if p.start != p.nextOffset || p.startIndex != p.nextIndex {
			return bad("empty log whose start is not its end")
		}
		return nil
	}
	if p.chunks[0].firstIndex != p.startIndex || p.chunks[0].firstOffset != p.start {
		return bad("first chunk does not begin at the log start")
	}
	for i, c := range p.chunks {
		if c.firstIndex >= p.nextIndex || c.firstOffset >= p.nextOffset {
			return bad("chunk past the log end")
		}
		// A batch takes one Index and at least one offset.
		if i > 0 && (c.firstIndex <= p.chunks[i-1].firstIndex ||
			c.firstOffset-p.chunks[i-1].firstOffset < int64(c.firstIndex-p.chunks[i-1].firstIndex)) {
			return bad("chunks out of order")
		}
	}
	// The same for the last chunk's batches, up to the log end.
	last := p.chunks[len(p.chunks)-1]
	if p.nextOffset-last.firstOffset < int64(p.nextIndex-last.firstIndex) {
		return bad("fewer offsets than batches in the last chunk")
	}
	return nil
}

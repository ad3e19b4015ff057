package stream

import (
	"testing"

	"github.com/ferry-mq/ferry/internal/base"
	"pgregory.net/rapid"
)

// offsetModel is the naive reference for offsets and retention: it keeps
// every retained batch and recomputes chunks from scratch each time.
type offsetModel struct {
	cfg        PartitionConfig
	nextIndex  uint64
	nextOffset int64
	dataEnd    int64 // after the last batch that is not Control
	start      int64
	startIndex uint64
	batches    []modelBatch // retained, oldest first
	maxTs      int64
	maxTsOff   int64
}

type modelBatch struct {
	index       uint64
	first, last int64
	bytes, ts   int64
	control     bool
}

// chunks groups the retained batches as the partition does: a chunk ends
// once it holds at least base.StreamRetentionChunkBytes.
func (m *offsetModel) chunks() [][]modelBatch {
	var out [][]modelBatch
	var cur []modelBatch
	var size int64
	for _, b := range m.batches {
		cur = append(cur, b)
		size += b.bytes
		if size >= base.StreamRetentionChunkBytes {
			out, cur, size = append(out, cur), nil, 0
		}
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

func (m *offsetModel) append(a Append) {
	b := modelBatch{index: a.Index, first: m.nextOffset, last: m.nextOffset + int64(a.LastOffsetDelta),
		bytes: a.Bytes, ts: a.MaxTimestamp, control: a.Control}
	m.batches = append(m.batches, b)
	m.nextIndex++
	m.nextOffset = b.last + 1
	if !a.Control {
		m.dataEnd = m.nextOffset
	}
	if b.ts > m.maxTs {
		m.maxTs, m.maxTsOff = b.ts, b.first
	}
}

func (m *offsetModel) tick(now int64) {
	var total int64
	for _, b := range m.batches {
		total += b.bytes
	}
	for _, c := range m.chunks() {
		var size, newest int64 = 0, -1 << 62
		for _, b := range c {
			size += b.bytes
			newest = max(newest, b.ts)
		}
		byBytes := m.cfg.RetentionBytes > 0 && total-size >= m.cfg.RetentionBytes
		byAge := m.cfg.RetentionMs > 0 && newest < now-m.cfg.RetentionMs
		if !byBytes && !byAge {
			break
		}
		total -= size
		m.batches = m.batches[len(c):]
	}
	if len(m.batches) == 0 {
		m.start, m.startIndex = m.nextOffset, m.nextIndex
	} else {
		m.start, m.startIndex = m.batches[0].first, m.batches[0].index
	}
}

func TestPartitionOffsetsAndRetentionMatchNaiveModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		first := rapid.Uint64Range(1, 1000).Draw(t, "firstIndex")
		cfg := PartitionConfig{
			RetentionBytes: rapid.Int64Range(0, 40<<20).Draw(t, "retentionBytes"),
			RetentionMs:    rapid.Int64Range(0, 5000).Draw(t, "retentionMs"),
		}
		p := NewPartition(cfg, first)
		m := &offsetModel{cfg: cfg, nextIndex: first, startIndex: first, maxTs: -1, maxTsOff: -1}
		now := int64(0)
		for range rapid.IntRange(1, 200).Draw(t, "steps") {
			now += rapid.Int64Range(0, 300).Draw(t, "advance")
			switch rapid.IntRange(0, 9).Draw(t, "op") {
			case 0, 1:
				p.Apply(RetentionTick{Now: now})
				m.tick(now)
			case 2:
				snap := p.Snapshot(nil)
				q, err := RestorePartition(snap)
				if err != nil {
					t.Fatalf("restore: %v", err)
				}
				p = q
			default:
				a := Append{Now: now, Index: p.NextIndex(),
					LastOffsetDelta: rapid.Int32Range(0, 4).Draw(t, "delta"),
					MaxTimestamp:    now - rapid.Int64Range(-100, 2000).Draw(t, "age"),
					Bytes:           rapid.Int64Range(1, 6<<20).Draw(t, "bytes"), ProducerID: NoProducerID,
					Control: rapid.IntRange(0, 3).Draw(t, "kind") == 0}
				r := p.Apply(a).Append
				if r.BaseOffset != m.nextOffset {
					t.Fatalf("append: base offset got %d, want %d", r.BaseOffset, m.nextOffset)
				}
				m.append(a)
			}
			comparePartition(t, p, m)
		}
	})
}

func comparePartition(t *rapid.T, p *Partition, m *offsetModel) {
	off, idx := p.LogStart()
	if off != m.start || idx != m.startIndex {
		t.Fatalf("log start: got %d@%d, want %d@%d", off, idx, m.start, m.startIndex)
	}
	if p.HighWatermark() != m.nextOffset || p.NextIndex() != m.nextIndex {
		t.Fatalf("end: got %d@%d, want %d@%d", p.HighWatermark(), p.NextIndex(), m.nextOffset, m.nextIndex)
	}
	// The data's end: after the last data batch, never before the start.
	if want := max(m.dataEnd, m.start); p.DataEnd() != want {
		t.Fatalf("data end: got %d, want %d (high watermark %d)", p.DataEnd(), want, m.nextOffset)
	}
	var bytes, records int64
	for _, b := range m.batches {
		bytes += b.bytes
		if !b.control {
			records += b.last - b.first + 1
		}
	}
	if p.RetainedBytes() != bytes || p.Records() != records {
		t.Fatalf("retained: got %d bytes, %d records, want %d and %d", p.RetainedBytes(), p.Records(), bytes, records)
	}
	if got := len(p.chunks); got != len(m.chunks()) {
		t.Fatalf("chunks: got %d, want %d", got, len(m.chunks()))
	}
	if ts, o := p.MaxTimestamp(); ts != m.maxTs || o != m.maxTsOff {
		t.Fatalf("max timestamp: got %d@%d, want %d@%d", ts, o, m.maxTs, m.maxTsOff)
	}
	// SeekTimestamp never skips a retained batch that reaches ts.
	for _, b := range m.batches {
		got, ok := p.SeekTimestamp(b.ts)
		if !ok || got > b.first {
			t.Fatalf("seek ts %d: got %d %v, want found at or before %d", b.ts, got, ok, b.first)
		}
	}
}

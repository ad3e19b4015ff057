package log

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/base/vfs"
	"github.com/ferry-mq/ferry/internal/storage/log/batch"
	"pgregory.net/rapid"
)

// modelEntry is one batch as the naive model keeps it.
type modelEntry struct {
	index      uint64
	term       uint64
	data       []byte // as stored: stamped
	base, next int64
	maxTs      int64
}

// model is the naive reference: a slice of the batches from FirstIndex on.
type model struct {
	first       uint64
	firstOffset int64
	ents        []modelEntry
	// termFloor is the largest term written since the last Reset: the log
	// may remember terms of batches dropped by truncation, so the model
	// never goes below it.
	termFloor uint64
}

func (m *model) next() (uint64, int64) {
	if n := len(m.ents); n > 0 {
		return m.ents[n-1].index + 1, m.ents[n-1].next
	}
	return m.first, m.firstOffset
}

func (m *model) lastTerm() uint64 { return m.termFloor }

func (m *model) byIndex(i uint64) modelEntry { return m.ents[i-m.first] }

// modelHarness drives a Log and a model with the same random operations.
type modelHarness struct {
	mem   *vfs.MemFS
	clock *base.FakeClock
	opts  Options
	l     *Log
	m     model
	ts    int64
	seq   byte
}

// TestLogMatchesModel runs random operations on a Log (small segments, so
// rolls are frequent) and on the naive model, and compares every read.
func TestLogMatchesModel(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		h := &modelHarness{mem: vfs.NewMem(), clock: base.NewFakeClock(epoch)}
		h.opts = Options{FS: h.mem, Dir: "/d", Clock: h.clock,
			SegmentBytes:       rapid.Int64Range(base.SegmentBytesMin, 4096).Draw(rt, "segmentBytes"),
			IndexIntervalBytes: rapid.IntRange(1, 600).Draw(rt, "indexInterval"),
			SegmentAge:         time.Hour,
			Durability:         rapid.SampledFrom([]Durability{DurabilitySync, DurabilityInterval, DurabilityNone}).Draw(rt, "durability"),
			RetentionBytes:     rapid.Int64Range(0, 8000).Draw(rt, "retentionBytes"),
			RetentionAge:       time.Duration(rapid.IntRange(0, 3).Draw(rt, "retentionHours")) * time.Hour,
			FirstIndex:         rapid.Uint64Range(1, 5).Draw(rt, "firstIndex"),
			RemoveInBackground: rapid.Bool().Draw(rt, "removeInBackground"),
		}
		h.opts.SegmentBytesGrowTo = h.opts.SegmentBytes * rapid.Int64Range(0, 4).Draw(rt, "growTo")
		var err error
		if h.l, err = Open(h.opts); err != nil {
			rt.Fatal(err)
		}
		h.m = model{first: h.opts.FirstIndex}
		h.ts = epoch.UnixMilli()
		defer func() { h.l.Close() }()
		rt.Repeat(map[string]func(*rapid.T){
			"append":         h.append,
			"write+sync":     h.writeSync,
			"read":           h.read,
			"entries":        h.entries,
			"term":           h.term,
			"lookupTime":     h.lookupTime,
			"truncateSuffix": h.truncateSuffix,
			"truncatePrefix": h.truncatePrefix,
			"reset":          h.reset,
			"retention":      h.retention,
			"reopen":         h.reopen,
			"advanceClock":   h.advance,
			"setRolling":     h.setRolling,
			"":               h.check,
		})
	})
}

func (h *modelHarness) newBatch(rt *rapid.T) ([]byte, uint64) {
	n := rapid.IntRange(1, 4).Draw(rt, "records")
	size := rapid.SampledFrom([]int{0, 10, 100, 700}).Draw(rt, "valueSize")
	h.ts += rapid.Int64Range(-50, 100).Draw(rt, "tsStep")
	h.seq++
	var b batch.Builder
	b.Begin(nil, batch.Header{ProducerID: -1})
	for i := range n {
		if err := b.Add(h.ts+int64(i*3), nil, bytes.Repeat([]byte{h.seq}, size), nil); err != nil {
			rt.Fatal(err)
		}
	}
	out, err := b.Finish()
	if err != nil {
		rt.Fatal(err)
	}
	term := h.m.lastTerm() + rapid.SampledFrom([]uint64{0, 0, 0, 1, 2}).Draw(rt, "termStep")
	return out, term
}

func (h *modelHarness) record(rt *rapid.T, b []byte, term uint64, p Position) {
	idx, off := h.m.next()
	hdr, _ := batch.ParseHeader(b)
	if p.Index != idx || p.BaseOffset != off || p.NextOffset != off+int64(hdr.RecordCount) {
		rt.Fatalf("position %+v, model expects index %d offset %d", p, idx, off)
	}
	h.m.termFloor = max(h.m.termFloor, term)
	h.m.ents = append(h.m.ents, modelEntry{index: idx, term: term, data: stamped(b, off, term), base: off, next: p.NextOffset, maxTs: hdr.MaxTimestamp})
}

func (h *modelHarness) append(rt *rapid.T) {
	b, term := h.newBatch(rt)
	p, err := h.l.Append(context.Background(), term, b)
	if err != nil {
		rt.Fatalf("Append: %v", err)
	}
	h.record(rt, b, term, p)
}

func (h *modelHarness) writeSync(rt *rapid.T) {
	for range rapid.IntRange(1, 5).Draw(rt, "writes") {
		b, term := h.newBatch(rt)
		write := h.l.Write
		if rapid.Bool().Draw(rt, "validated") { // the batch was built here, so valid
			write = h.l.WriteValidated
		}
		p, err := write(term, b)
		if err != nil {
			rt.Fatalf("Write: %v", err)
		}
		h.record(rt, b, term, p)
	}
	if err := h.l.Sync(); err != nil {
		rt.Fatalf("Sync: %v", err)
	}
}

func (h *modelHarness) read(rt *rapid.T) {
	_, next := h.m.next()
	off := rapid.Int64Range(h.m.firstOffset-2, next+2).Draw(rt, "offset")
	maxBytes := rapid.IntRange(0, 3000).Draw(rt, "maxBytes")
	got, err := h.l.Read(off, maxBytes)
	switch {
	case off < h.m.firstOffset || off > next:
		if base.CodeOf(err) != base.CodeOutOfRange {
			rt.Fatalf("Read(%d) outside [%d, %d]: got %v, want out_of_range", off, h.m.firstOffset, next, err)
		}
		return
	case off == next:
		if err != nil || got != nil {
			rt.Fatalf("Read(NextOffset): got %d bytes, %v", len(got), err)
		}
		return
	case err != nil:
		rt.Fatalf("Read(%d): %v", off, err)
	}
	i := 0
	for h.m.ents[i].next <= off {
		i++
	}
	h.matchRun(rt, fmt.Sprintf("Read(%d, %d)", off, maxBytes), got, i, maxBytes)
}

// matchRun checks that got is model batches from i on, whole, at least
// one, and within maxBytes when more than one.
func (h *modelHarness) matchRun(rt *rapid.T, what string, got []byte, i, maxBytes int) int {
	n, total := 0, len(got)
	for len(got) > 0 {
		if i+n >= len(h.m.ents) {
			rt.Fatalf("%s: %d bytes past the model's last batch", what, len(got))
		}
		w := h.m.ents[i+n].data
		if len(got) < len(w) || !bytes.Equal(got[:len(w)], w) {
			rt.Fatalf("%s: batch %d differs from the model's index %d", what, n, h.m.ents[i+n].index)
		}
		got = got[len(w):]
		n++
	}
	if n == 0 || (n > 1 && total > maxBytes) {
		rt.Fatalf("%s: %d batches of %d bytes for maxBytes %d", what, n, total, maxBytes)
	}
	return n
}

func (h *modelHarness) entries(rt *rapid.T) {
	nextIdx, _ := h.m.next()
	if nextIdx == h.m.first {
		_, err := h.l.Entries(h.m.first, h.m.first+1, 100)
		if base.CodeOf(err) != base.CodeOutOfRange {
			rt.Fatalf("Entries of an empty log: got %v, want out_of_range", err)
		}
		return
	}
	lo := rapid.Uint64Range(h.m.first, nextIdx-1).Draw(rt, "lo")
	hi := rapid.Uint64Range(lo+1, nextIdx+1).Draw(rt, "hi")
	maxBytes := rapid.IntRange(0, 5000).Draw(rt, "maxBytes")
	got, err := h.l.Entries(lo, hi, maxBytes)
	if hi > nextIdx {
		hi = nextIdx // Entries stops at the end
	}
	if err != nil {
		rt.Fatalf("Entries(%d, %d): %v", lo, hi, err)
	}
	if len(got) == 0 || uint64(len(got)) > hi-lo {
		rt.Fatalf("Entries(%d, %d, %d): %d batches", lo, hi, maxBytes, len(got))
	}
	total := 0
	for i, b := range got {
		total += len(b)
		if !bytes.Equal(b, h.m.byIndex(lo+uint64(i)).data) {
			rt.Fatalf("Entries(%d, %d): batch %d differs", lo, hi, lo+uint64(i))
		}
	}
	if len(got) > 1 && total > maxBytes {
		rt.Fatalf("Entries: %d bytes over maxBytes %d", total, maxBytes)
	}
}

func (h *modelHarness) term(rt *rapid.T) {
	nextIdx, _ := h.m.next()
	i := rapid.Uint64Range(max(h.m.first, 2)-1, nextIdx).Draw(rt, "index")
	got, err := h.l.Term(i)
	if i < h.m.first || i >= nextIdx {
		if base.CodeOf(err) != base.CodeOutOfRange {
			rt.Fatalf("Term(%d) outside [%d, %d): got %v", i, h.m.first, nextIdx, err)
		}
		return
	}
	if want := h.m.byIndex(i).term; err != nil || got != want {
		rt.Fatalf("Term(%d): got %d %v, want %d", i, got, err, want)
	}
}

func (h *modelHarness) lookupTime(rt *rapid.T) {
	ts := h.ts + rapid.Int64Range(-400, 50).Draw(rt, "tsBack")
	got, err := h.l.LookupTime(ts)
	_, want := h.m.next()
	for _, e := range h.m.ents {
		if e.maxTs >= ts {
			want = e.base
			break
		}
	}
	if err != nil || got != want {
		rt.Fatalf("LookupTime(%d): got %d %v, want %d", ts, got, err, want)
	}
}

func (h *modelHarness) truncateSuffix(rt *rapid.T) {
	nextIdx, _ := h.m.next()
	from := rapid.Uint64Range(h.m.first, nextIdx).Draw(rt, "from")
	if err := h.l.TruncateSuffix(from); err != nil {
		rt.Fatalf("TruncateSuffix(%d): %v", from, err)
	}
	h.m.ents = h.m.ents[:from-h.m.first]
	if rapid.Bool().Draw(rt, "syncAfterTruncate") {
		if err := h.l.Sync(); err != nil {
			rt.Fatal(err)
		}
	}
}

func (h *modelHarness) truncatePrefix(rt *rapid.T) {
	nextIdx, _ := h.m.next()
	before := rapid.Uint64Range(h.m.first, nextIdx).Draw(rt, "before")
	if err := h.l.Sync(); err != nil { // only durable batches may be dropped
		rt.Fatal(err)
	}
	if err := h.l.TruncatePrefix(before); err != nil {
		rt.Fatalf("TruncatePrefix(%d): %v", before, err)
	}
	h.dropPrefix(before)
}

func (h *modelHarness) dropPrefix(before uint64) {
	if before <= h.m.first {
		return
	}
	nextIdx, nextOff := h.m.next()
	if before == nextIdx {
		h.m.ents, h.m.first, h.m.firstOffset = nil, nextIdx, nextOff
		return
	}
	e := h.m.byIndex(before)
	h.m.ents = h.m.ents[before-h.m.first:]
	h.m.first, h.m.firstOffset = before, e.base
}

func (h *modelHarness) reset(rt *rapid.T) {
	nextIdx, nextOff := h.m.next()
	idx := rapid.Uint64Range(1, nextIdx+10).Draw(rt, "resetIndex")
	off := rapid.Int64Range(0, nextOff+100).Draw(rt, "resetOffset")
	if err := h.l.Reset(idx, off); err != nil {
		rt.Fatalf("Reset(%d, %d): %v", idx, off, err)
	}
	h.m = model{first: idx, firstOffset: off}
}

func (h *modelHarness) retention(rt *rapid.T) {
	if err := h.l.Sync(); err != nil {
		rt.Fatal(err)
	}
	oldFirst := h.m.first
	n, err := h.l.ApplyRetention(h.clock.Now())
	if err != nil {
		rt.Fatalf("ApplyRetention: %v", err)
	}
	first := h.l.FirstIndex()
	if (n > 0) != (first > oldFirst) {
		rt.Fatalf("retention deleted %d segments but the first index went %d -> %d", n, oldFirst, first)
	}
	nextIdx, _ := h.m.next()
	if first < oldFirst || first > nextIdx {
		rt.Fatalf("retention moved the first index to %d, outside [%d, %d]", first, oldFirst, nextIdx)
	}
	h.dropPrefix(first)
	if h.opts.RetentionBytes <= 0 && h.opts.RetentionAge == 0 && n > 0 {
		rt.Fatalf("retention without limits deleted %d segments", n)
	}
}

func (h *modelHarness) reopen(rt *rapid.T) {
	if err := h.l.Close(); err != nil {
		rt.Fatalf("Close: %v", err)
	}
	var err error
	if h.l, err = Open(h.opts); err != nil {
		rt.Fatalf("reopen: %v", err)
	}
}

// setRolling changes the roll limits of the open log only: a reopen goes
// back to h.opts, finding segments rolled at other sizes.
func (h *modelHarness) setRolling(rt *rapid.T) {
	size := rapid.Int64Range(base.SegmentBytesMin, 4096).Draw(rt, "rollBytes")
	age := time.Duration(rapid.IntRange(30, 120).Draw(rt, "rollMinutes")) * time.Minute
	if err := h.l.SetRolling(size, age); err != nil {
		rt.Fatalf("SetRolling(%d, %v): %v", size, age, err)
	}
}

func (h *modelHarness) advance(rt *rapid.T) {
	h.clock.Advance(time.Duration(rapid.IntRange(1, 90).Draw(rt, "minutes")) * time.Minute)
	h.ts = max(h.ts, h.clock.Now().UnixMilli()-3*time.Hour.Milliseconds())
}

// check compares the bounds after every operation, and checks the index
// invariants of every segment.
func (h *modelHarness) check(rt *rapid.T) {
	nextIdx, nextOff := h.m.next()
	if h.l.FirstIndex() != h.m.first || h.l.FirstOffset() != h.m.firstOffset ||
		h.l.LastIndex() != nextIdx-1 || h.l.NextOffset() != nextOff {
		rt.Fatalf("bounds: log first %d@%d last %d next %d; model first %d@%d last %d next %d",
			h.l.FirstIndex(), h.l.FirstOffset(), h.l.LastIndex(), h.l.NextOffset(), h.m.first, h.m.firstOffset, nextIdx-1, nextOff)
	}
	if d := h.l.DurableIndex(); d > nextIdx-1 {
		rt.Fatalf("DurableIndex %d past LastIndex %d", d, nextIdx-1)
	}
	if err := checkIndexes(h.l); err != nil {
		rt.Fatal(err)
	}
}

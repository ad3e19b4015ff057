package log

import (
	"bytes"
	"encoding/binary"
	"math"
	"testing"
	"time"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/base/vfs"
	"github.com/ferry-mq/ferry/internal/storage/log/batch"
)

func TestWriteRejectsBadBatchesAndTerms(t *testing.T) {
	l := mustOpen(t, memOptions(vfs.NewMem(), base.NewFakeClock(epoch)))
	defer l.Close()
	if _, err := l.Write(5, mkBatch(t, 2, 10, 0, 0)); err != nil {
		t.Fatal(err)
	}
	good := mkBatch(t, 2, 10, 0, 0)
	badCRC := bytes.Clone(good)
	badCRC[len(badCRC)-1] ^= 1
	gap := bytes.Clone(good) // lastOffsetDelta 2 with 2 records: offsets not one per record
	binary.BigEndian.PutUint32(gap[23:], 2)
	batch.Validate(gap) // the CRC covers the field: recompute it
	binary.BigEndian.PutUint32(gap[17:], batch.Checksum(gap[21:]))
	cases := []struct {
		name string
		term uint64
		b    []byte
		code base.Code
	}{
		{"bad crc", 5, badCRC, base.CodeCorrupt},
		{"truncated", 5, good[:len(good)-1], base.CodeCorrupt},
		{"offsets not one per record", 5, gap, base.CodeInvalidArgument},
		{"term going back", 4, good, base.CodeInvalidArgument},
		{"term over int32", math.MaxInt32 + 1, good, base.CodeInvalidArgument},
	}
	for _, tc := range cases {
		_, err := l.Write(tc.term, tc.b)
		wantCode(t, tc.name, err, tc.code)
	}
	if p, err := l.Write(math.MaxInt32, good); err != nil || p.Index != 2 {
		t.Fatalf("term MaxInt32: %+v %v", p, err)
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	if term, _ := l.Term(2); term != math.MaxInt32 {
		t.Errorf("Term(2): %d, want %d", term, math.MaxInt32)
	}
}

func TestOptionsLimits(t *testing.T) {
	for _, tc := range []struct {
		bytes int64
		ok    bool
	}{{base.SegmentBytesMin - 1, false}, {base.SegmentBytesMin, true}, {base.SegmentBytesMax, true}, {base.SegmentBytesMax + 1, false}} {
		l, err := Open(Options{FS: vfs.NewMem(), Dir: "/d", SegmentBytes: tc.bytes})
		if (err == nil) != tc.ok {
			t.Errorf("SegmentBytes %d: got %v, want ok=%v", tc.bytes, err, tc.ok)
		}
		if err == nil {
			l.Close()
		} else {
			wantCode(t, "bad SegmentBytes", err, base.CodeInvalidArgument)
		}
	}
	_, err := Open(Options{FS: vfs.NewMem()})
	wantCode(t, "no Dir", err, base.CodeInvalidArgument)
	for _, grow := range []int64{-1, base.SegmentBytesMax + 1} {
		_, err := Open(Options{FS: vfs.NewMem(), Dir: "/d", SegmentBytesGrowTo: grow})
		wantCode(t, "bad SegmentBytesGrowTo", err, base.CodeInvalidArgument)
	}
}

// TestWriteBufferFlushesAtItsLimit: written batches stay in the buffer,
// invisible to readers, until base.LogWriteBufferBytes is reached.
func TestWriteBufferFlushesAtItsLimit(t *testing.T) {
	l := mustOpen(t, Options{FS: vfs.NewMem(), Dir: "/d", Clock: base.NewFakeClock(epoch)})
	defer l.Close()
	b := mkBatch(t, 1, 64<<10-100, 0, 0)
	n := 0
	for (n+1)*len(b) < base.LogWriteBufferBytes {
		if _, err := l.Write(1, b); err != nil {
			t.Fatal(err)
		}
		n++
	}
	if l.LastIndex() != 0 {
		t.Fatalf("last index %d before the buffer is full, want 0 (unflushed)", l.LastIndex())
	}
	if _, err := l.Write(1, b); err != nil {
		t.Fatal(err)
	}
	if l.LastIndex() != uint64(n+1) || l.DurableIndex() != 0 {
		t.Fatalf("after reaching %d bytes: last %d durable %d, want %d 0", base.LogWriteBufferBytes, l.LastIndex(), l.DurableIndex(), n+1)
	}
}

// TestReadIsBoundedByLogReadBytesMax asks for everything and gets at most
// base.LogReadBytesMax bytes.
func TestReadIsBoundedByLogReadBytesMax(t *testing.T) {
	// The real file system: the data lives in the page cache, not in
	// race-detector-shadowed heap as with MemFS.
	l := mustOpen(t, Options{Dir: t.TempDir(), Clock: base.NewFakeClock(epoch), Durability: DurabilityNone})
	defer l.Close()
	b := mkBatch(t, 1, 1<<20, 0, 0)
	for range base.LogReadBytesMax/len(b) + 2 {
		if _, err := l.Write(1, b); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	got, err := l.Read(0, math.MaxInt)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) > base.LogReadBytesMax || len(got) < base.LogReadBytesMax-len(b) {
		t.Errorf("Read(0, MaxInt): %d bytes, want within one batch of %d", len(got), base.LogReadBytesMax)
	}
	ents, err := l.Entries(1, math.MaxUint64, math.MaxInt)
	if err != nil || len(ents)*len(b) > base.LogReadBytesMax {
		t.Errorf("Entries: %d batches %v, over the limit", len(ents), err)
	}
	one, err := l.Read(0, 1)
	if err != nil || len(one) != len(b) {
		t.Errorf("Read with maxBytes 1: %d bytes %v, want one whole batch of %d", len(one), err, len(b))
	}
}

func TestIndexDecodersRejectMalformed(t *testing.T) {
	e := func(es ...indexEntry) []byte {
		var b []byte
		for _, x := range es {
			b = appendIndexEntry(b, x)
		}
		return b
	}
	first := indexEntry{0, 0, segHeaderSize, 1}
	cases := []struct {
		name string
		b    []byte
		ok   bool
	}{
		{"empty", nil, true},
		{"one", e(first), true},
		{"two", e(first, indexEntry{3, 5, 400, 2}), true},
		{"partial entry", e(first)[:idxEntrySize-1], false},
		{"first not at the first batch", e(indexEntry{1, 1, 100, 1}), false},
		{"index not increasing", e(first, indexEntry{0, 5, 400, 1}), false},
		{"offset not increasing", e(first, indexEntry{3, 0, 400, 1}), false},
		{"position not increasing", e(first, indexEntry{3, 5, segHeaderSize, 1}), false},
		{"term decreasing", e(indexEntry{0, 0, segHeaderSize, 2}, indexEntry{3, 5, 400, 1}), false},
		{"position past the segment", e(first, indexEntry{3, 5, 5000, 1}), false},
		{"term over int32", e(indexEntry{0, 0, segHeaderSize, math.MaxInt32 + 1}), false},
	}
	for _, tc := range cases {
		_, err := decodeIndex(tc.b, 1000)
		if (err == nil) != tc.ok {
			t.Errorf("decodeIndex %s: got %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
	if _, err := decodeIndex(make([]byte, base.IndexBytesMax+idxEntrySize), math.MaxInt64); err == nil {
		t.Errorf("decodeIndex over IndexBytesMax: accepted")
	}
	if _, err := decodeTimeIndex(append(appendTimeEntry(nil, timeEntry{5, 0}), appendTimeEntry(nil, timeEntry{5, 1})...)); err == nil {
		t.Errorf("decodeTimeIndex with a timestamp not growing: accepted")
	}
	if _, err := decodeTimeIndex(make([]byte, base.IndexBytesMax+tixEntrySize)); err == nil {
		t.Errorf("decodeTimeIndex over IndexBytesMax: accepted")
	}
}

// TestIndexFileOverLimitIsRebuiltNotRead writes an index file over
// IndexBytesMax; Open must not read it and rebuilds it instead.
func TestIndexFileOverLimitIsRebuiltNotRead(t *testing.T) {
	mem, want := buildLog(t, 30)
	idx := segNames(t, mem, idxExt)[0]
	orig := fileBytes(t, mem, idx)
	writeFile(t, mem, idx, make([]byte, base.IndexBytesMax+idxEntrySize))
	l := mustOpen(t, memOptions(mem, base.NewFakeClock(epoch)))
	defer l.Close()
	checkConfirmed(t, l, want)
	if got := fileBytes(t, mem, idx); !bytes.Equal(got, orig) {
		t.Errorf("index not rebuilt: %d bytes, want %d", len(got), len(orig))
	}
}

func TestRetentionDeletesWholeOldSegments(t *testing.T) {
	clock := base.NewFakeClock(epoch)
	mem := vfs.NewMem()
	o := memOptions(mem, clock)
	o.RetentionAge = time.Hour
	l := mustOpen(t, o)
	defer l.Close()
	now := epoch.UnixMilli()
	for i := range 40 { // timestamps one minute apart, in the past
		appendOK(t, l, 1, mkBatch(t, 1, 100, now-int64(40-i)*60_000*3, byte(i)))
	}
	segs := len(l.segs)
	n, err := l.ApplyRetention(epoch)
	if err != nil || n == 0 || n >= segs {
		t.Fatalf("retention by age: deleted %d of %d segments, %v", n, segs, err)
	}
	first := l.FirstIndex()
	for i := first; i <= l.LastIndex(); i++ {
		b, err := l.Entries(i, i+1, 1)
		if err != nil {
			t.Fatal(err)
		}
		h, _ := batch.ParseHeader(b[0])
		_ = h
	}
	// Every kept segment but the first holds a batch newer than the horizon.
	horizon := epoch.Add(-time.Hour).UnixMilli()
	if l.segs[0].maxTs < horizon {
		t.Errorf("kept the first segment whose newest batch %d is older than %d", l.segs[0].maxTs, horizon)
	}
	if n, _ := l.ApplyRetention(epoch.Add(100 * time.Hour)); len(l.segs) != 1 || n == 0 {
		t.Errorf("retention far in the future: %d segments left, want only the active one", len(l.segs))
	}
	if first := l.FirstIndex(); first != l.segs[0].baseIndex {
		t.Errorf("first index %d, want the active segment's base %d", first, l.segs[0].baseIndex)
	}
	if segs := segNames(t, mem, segExt); len(segs) != 1 {
		t.Errorf("segment files left: %v, want one", segs)
	}
}

func TestRetentionByBytes(t *testing.T) {
	o := memOptions(vfs.NewMem(), base.NewFakeClock(epoch))
	o.RetentionBytes = 5000
	l := mustOpen(t, o)
	defer l.Close()
	for i := range 100 {
		appendOK(t, l, 1, mkBatch(t, 1, 100, int64(i), byte(i)))
	}
	if _, err := l.ApplyRetention(epoch); err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, s := range l.segs {
		total += s.size
	}
	if total < o.RetentionBytes || total-l.segs[0].size >= o.RetentionBytes {
		t.Errorf("after retention: %d bytes in %d segments; want the fewest segments holding at least %d", total, len(l.segs), o.RetentionBytes)
	}
}

func TestTruncationsAndReset(t *testing.T) {
	mem := vfs.NewMem()
	clock := base.NewFakeClock(epoch)
	l := mustOpen(t, memOptions(mem, clock))
	for i := range 30 {
		appendOK(t, l, uint64(1+i/10), mkBatch(t, 2, 100, int64(i), byte(i)))
	}
	// Truncate at a segment boundary and inside a segment.
	boundary := l.segs[2].baseIndex
	if err := l.TruncateSuffix(boundary); err != nil {
		t.Fatal(err)
	}
	if l.LastIndex() != boundary-1 || len(l.segs) != 2 || l.NextOffset() != int64(2*(boundary-1)) {
		t.Fatalf("after TruncateSuffix(%d): last %d segs %d next %d", boundary, l.LastIndex(), len(l.segs), l.NextOffset())
	}
	if err := l.TruncateSuffix(5); err != nil {
		t.Fatal(err)
	}
	p := appendOK(t, l, 7, mkBatch(t, 1, 10, 99, 99))
	if p.Index != 5 || p.BaseOffset != 8 {
		t.Fatalf("append after truncation: %+v, want index 5 offset 8", p)
	}
	if term, _ := l.Term(5); term != 7 {
		t.Errorf("Term(5) = %d, want 7", term)
	}
	_, err := l.Term(6)
	wantCode(t, "Term past the end", err, base.CodeOutOfRange)
	wantCode(t, "TruncatePrefix beyond durable", l.TruncatePrefix(l.DurableIndex()+2), base.CodeInvalidArgument)
	if err := l.TruncatePrefix(3); err != nil {
		t.Fatal(err)
	}
	if l.FirstIndex() != 3 || l.FirstOffset() != 4 {
		t.Errorf("after TruncatePrefix(3): first %d@%d, want 3@4", l.FirstIndex(), l.FirstOffset())
	}
	_, err = l.Read(3, 10)
	wantCode(t, "Read below the start", err, base.CodeOutOfRange)
	_, err = l.Entries(2, 4, 10)
	wantCode(t, "Entries below the start", err, base.CodeOutOfRange)
	wantCode(t, "TruncateSuffix below the start", l.TruncateSuffix(2), base.CodeOutOfRange)
	l.Close()
	l = mustOpen(t, memOptions(mem, clock))
	if l.FirstIndex() != 3 || l.LastIndex() != 5 {
		t.Fatalf("after reopen: [%d, %d], want [3, 5]", l.FirstIndex(), l.LastIndex())
	}
	if err := l.Reset(100, 1000); err != nil {
		t.Fatal(err)
	}
	if l.FirstIndex() != 100 || l.LastIndex() != 99 || l.NextOffset() != 1000 {
		t.Fatalf("after Reset: first %d last %d next %d", l.FirstIndex(), l.LastIndex(), l.NextOffset())
	}
	p = appendOK(t, l, 1, mkBatch(t, 1, 10, 0, 0))
	if p.Index != 100 || p.BaseOffset != 1000 {
		t.Fatalf("append after Reset: %+v", p)
	}
	l.Close()
	mem.Crash()
	l = mustOpen(t, memOptions(mem, clock))
	defer l.Close()
	if l.FirstIndex() != 100 || l.LastIndex() != 100 {
		t.Fatalf("after Reset and crash: [%d, %d], want [100, 100]", l.FirstIndex(), l.LastIndex())
	}
}

func TestLookupTime(t *testing.T) {
	l := mustOpen(t, memOptions(vfs.NewMem(), base.NewFakeClock(epoch)))
	defer l.Close()
	// Batches of 2 records; max timestamps 10, 30, 20, 50, 40 ... repeated.
	maxes := []int64{10, 30, 20, 50, 40, 70, 60, 90}
	for i, m := range maxes {
		appendOK(t, l, 1, mkBatch(t, 2, 200, m-1, byte(i)))
	}
	for _, tc := range []struct{ ts, want int64 }{{0, 0}, {10, 0}, {11, 2}, {30, 2}, {31, 6}, {45, 6}, {51, 10}, {90, 14}, {91, 16}} {
		got, err := l.LookupTime(tc.ts)
		if err != nil || got != tc.want {
			t.Errorf("LookupTime(%d): got %d %v, want %d", tc.ts, got, err, tc.want)
		}
	}
}

// TestCheckpointMovesOnlyAfterItsInterval: syncs move the recovery point
// at most once per CheckpointInterval of the clock. It uses Write and Sync,
// so that the committer's own checkpoint attempts do not race the clock.
func TestCheckpointMovesOnlyAfterItsInterval(t *testing.T) {
	clock := base.NewFakeClock(epoch)
	l := openSized(t, clock, 1<<20)
	writeSync := func() {
		if _, err := l.Write(1, mkBatch(t, 1, 10, 0, 0)); err != nil {
			t.Fatal(err)
		}
		if err := l.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	rp := l.ckpt.rpPos
	writeSync()
	if got := l.ckpt.rpPos; got != rp {
		t.Fatalf("recovery point moved before the interval: %d -> %d", rp, got)
	}
	clock.Advance(base.CheckpointIntervalDefault - time.Millisecond)
	writeSync()
	if got := l.ckpt.rpPos; got != rp {
		t.Fatalf("recovery point moved 1 ms before the interval: %d -> %d", rp, got)
	}
	clock.Advance(time.Millisecond)
	writeSync()
	if got, want := l.ckpt.rpPos, l.active().size; got != want {
		t.Fatalf("recovery point %d after the interval, want the synced end %d", got, want)
	}
}

// A log whose every batch is below the new start (a queue its consumers
// drained) gives back all its space, the active segment's too: it is
// rolled, and the log goes on from the start with its offsets.
func TestTruncatingEverythingFreesTheActiveSegment(t *testing.T) {
	mem := vfs.NewMem()
	clock := base.NewFakeClock(epoch)
	l := mustOpen(t, memOptions(mem, clock))
	for i := range 30 {
		appendOK(t, l, 1, mkBatch(t, 2, 100, int64(i), byte(i)))
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	if len(l.segs) < 3 {
		t.Fatalf("%d segments, want at least 3", len(l.segs))
	}
	var all int64
	for _, s := range l.segs {
		all += s.size
	}
	for _, c := range []struct {
		before uint64
		want   int64
	}{
		{l.segs[0].baseIndex + 1, 0},           // inside the first segment
		{l.segs[1].baseIndex, l.segs[0].size},  // the first one whole
		{l.LastIndex(), all - l.active().size}, // the active one holds a batch at the start
		{l.LastIndex() + 1, all},
	} {
		if got := l.PrefixBytes(c.before); got != c.want {
			t.Errorf("PrefixBytes(%d) = %d, want %d", c.before, got, c.want)
		}
	}
	end, next := l.LastIndex()+1, l.NextOffset()
	if err := l.TruncatePrefix(end); err != nil {
		t.Fatal(err)
	}
	if got := l.PrefixBytes(end + 10); got != 0 {
		t.Errorf("PrefixBytes after truncating everything = %d, want 0", got)
	}
	if segs, want := segNames(t, mem, segExt), l.segPath(end, segExt); len(segs) != 1 || segs[0] != want {
		t.Fatalf("segment files after truncating everything: %v, want only %s", segs, want)
	}
	if l.FirstIndex() != end || l.LastIndex() != end-1 || l.NextOffset() != next {
		t.Fatalf("after: first %d last %d next offset %d, want %d %d %d", l.FirstIndex(), l.LastIndex(), l.NextOffset(), end, end-1, next)
	}
	p := appendOK(t, l, 2, mkBatch(t, 1, 10, 99, 99))
	if p.Index != end || p.BaseOffset != next {
		t.Fatalf("append after: %+v, want index %d offset %d", p, end, next)
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	l.Close()
	mem.Crash()
	l = mustOpen(t, memOptions(mem, clock))
	defer l.Close()
	if l.FirstIndex() != end || l.LastIndex() != end {
		t.Fatalf("after a crash: [%d, %d], want [%d, %d]", l.FirstIndex(), l.LastIndex(), end, end)
	}
	if term, err := l.Term(end); err != nil || term != 2 {
		t.Errorf("Term(%d) after a crash = %d, %v; want 2", end, term, err)
	}
}

// TestSetRollingAppliesToTheNextWrites: a smaller roll size takes effect
// at the next write (the active segment, already past it, rolls), an age
// rolls the active segment once it is that old, and a bad value is
// refused and changes nothing.
func TestSetRollingAppliesToTheNextWrites(t *testing.T) {
	clock := base.NewFakeClock(epoch)
	l := openSized(t, clock, 1<<20)
	segments := func() int { return len(segmentSizes(l)) }
	for i := range 10 {
		appendOK(t, l, 1, mkBatch(t, 1, 200, int64(i), byte(i)))
	}
	if n := segments(); n != 1 {
		t.Fatalf("segments with 1 MiB: %d, want 1", n)
	}
	for _, bad := range []struct {
		bytes int64
		age   time.Duration
	}{{base.SegmentBytesMin - 1, 0}, {base.SegmentBytesMax + 1, 0}, {2048, -time.Second}} {
		wantCode(t, "SetRolling out of range", l.SetRolling(bad.bytes, bad.age), base.CodeInvalidArgument)
	}
	appendOK(t, l, 1, mkBatch(t, 1, 200, 10, 10))
	if n := segments(); n != 1 {
		t.Fatalf("segments after refused SetRollings: %d, want 1", n)
	}
	if err := l.SetRolling(1024, 0); err != nil {
		t.Fatal(err)
	}
	appendOK(t, l, 1, mkBatch(t, 1, 200, 11, 11))
	if n := segments(); n != 2 {
		t.Fatalf("segments after SetRolling(1024): %d, want 2 (the oversized one rolled)", n)
	}
	for i := 12; i < 40; i++ {
		appendOK(t, l, 1, mkBatch(t, 1, 200, int64(i), byte(i)))
	}
	for i, size := range segmentSizes(l)[1:] {
		if size > 1024 {
			t.Errorf("segment %d holds %d bytes, over 1024", i+1, size)
		}
	}

	if err := l.SetRolling(1<<20, time.Minute); err != nil {
		t.Fatal(err)
	}
	before := segments()
	appendOK(t, l, 1, mkBatch(t, 1, 200, 40, 40))
	clock.Advance(59 * time.Second)
	appendOK(t, l, 1, mkBatch(t, 1, 200, 41, 41))
	if n := segments(); n != before {
		t.Fatalf("segments before the age: %d, want %d", n, before)
	}
	clock.Advance(time.Second)
	appendOK(t, l, 1, mkBatch(t, 1, 200, 42, 42))
	if n := segments(); n != before+1 {
		t.Fatalf("segments at the age: %d, want %d", n, before+1)
	}
}

// TestSegmentsGrowWithTheLog: with SegmentBytesGrowTo, the roll size
// doubles for every base.SegmentGrowthEvery segments held, up to it; it is
// small again once truncation leaves few segments, and fixed after a
// SetRolling.
func TestSegmentsGrowWithTheLog(t *testing.T) {
	o := memOptions(vfs.NewMem(), base.NewFakeClock(epoch))
	o.SegmentBytes, o.SegmentBytesGrowTo = 1024, 4096
	l := mustOpen(t, o)
	defer l.Close()
	write := func(n int) {
		t.Helper()
		for range n {
			appendOK(t, l, 1, mkBatch(t, 1, 200, 0, 1))
		}
	}
	// sizes returns the sizes of the sealed segments.
	sizes := func() []int64 {
		all := segmentSizes(l)
		return all[:len(all)-1]
	}
	write(400)
	got := sizes()
	if len(got) < 3*base.SegmentGrowthEvery {
		t.Fatalf("%d sealed segments, want at least %d", len(got), 3*base.SegmentGrowthEvery)
	}
	for i, size := range got {
		limit := int64(1024) << min((i+1)/base.SegmentGrowthEvery, 2) // segment i is the log's (i+1)th
		if size > limit || size <= limit/2 {
			t.Fatalf("segment %d holds %d bytes, want (%d, %d]: sizes %v", i, size, limit/2, limit, got)
		}
	}
	if err := l.TruncatePrefix(l.LastIndex() + 1); err != nil {
		t.Fatal(err)
	}
	write(10)
	for i, size := range sizes() {
		if size > 1024 {
			t.Fatalf("after truncating everything: segment %d holds %d bytes, want at most 1024", i, size)
		}
	}
	if err := l.SetRolling(1024, 0); err != nil {
		t.Fatal(err)
	}
	write(200)
	for i, size := range sizes() {
		if size > 1024 {
			t.Fatalf("after SetRolling(1024): segment %d holds %d bytes", i, size)
		}
	}
}

package log

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/base/vfs"
)

var (
	crashIterations = flag.Int("crash.iterations", 10000, "random crash points TestCrashRandomPoints runs")
	crashSeed       = flag.Uint64("crash.seed", 0, "first workload seed of TestCrashRandomPoints (0: from the time)")
)

// crashRecord tracks what a workload was told, to check a recovered log
// against: confirmed holds the batches whose append or sync returned
// success and that no later truncation, retention or reset has started to
// drop; history holds every version ever written at each Index, so that
// anything the recovered log serves can be traced to a write.
type crashRecord struct {
	confirmed map[uint64][]byte
	history   map[uint64][][]byte
}

func newCrashRecord() *crashRecord {
	return &crashRecord{confirmed: map[uint64][]byte{}, history: map[uint64][][]byte{}}
}

func (r *crashRecord) dropFrom(from uint64) {
	for i := range r.confirmed {
		if i >= from {
			delete(r.confirmed, i)
		}
	}
}

func (r *crashRecord) dropBelow(before uint64) {
	for i := range r.confirmed {
		if i < before {
			delete(r.confirmed, i)
		}
	}
}

func crashOptions(fsys vfs.FS, clock base.Clock) Options {
	return Options{FS: fsys, Dir: "/data/log", Clock: clock, SegmentBytes: 1024, IndexIntervalBytes: 200,
		SegmentAge: time.Hour, CheckpointInterval: time.Second, RetentionBytes: 2500}
}

// workloadDurability is the durability a workload seed runs with: mostly
// sync, whose every confirmed append must survive; a quarter interval or
// none, where only what Sync confirmed must, and the rest of the checks
// (consistency, nothing past a torn tail, appendable) still apply.
func workloadDurability(seed uint64) Durability {
	switch seed % 8 {
	case 1:
		return DurabilityInterval
	case 2:
		return DurabilityNone
	}
	return DurabilitySync
}

// crashWorkload runs a seeded sequence of appends, writes and syncs,
// truncations, checkpoints, retention, resets and reopens. It returns the
// first error (ErrCrashed once the crash point is reached).
func crashWorkload(fsys vfs.FS, clock *base.FakeClock, seed uint64, steps int, rec *crashRecord) (err error) {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	opts := crashOptions(fsys, clock)
	opts.Durability = workloadDurability(seed)
	l, err := Open(opts)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := l.Close(); err == nil {
			err = cerr
		}
	}()
	term := uint64(1)
	for step := range steps {
		if rng.IntN(10) == 0 {
			term++
		}
		if err := crashStep(l, fsys, clock, rng, rec, term, step); err != nil {
			return err
		}
		if l2, reopened, err := maybeReopen(l, opts, rng); err != nil {
			l = l2
			return err
		} else if reopened {
			l = l2
		}
	}
	return nil
}

func maybeReopen(l *Log, opts Options, rng *rand.Rand) (*Log, bool, error) {
	if rng.IntN(25) != 0 {
		return l, false, nil
	}
	if err := l.Close(); err != nil {
		return l, true, err
	}
	l2, err := Open(opts)
	if err != nil {
		return l, true, err // l is closed; Close again only reports that
	}
	return l2, true, nil
}

func crashBatch(rng *rand.Rand, clock *base.FakeClock, step int) []byte {
	var recs []rec
	for i := range 1 + rng.IntN(3) {
		recs = append(recs, rec{ts: clock.Now().UnixMilli() + int64(i), value: bytes.Repeat([]byte{byte(step)}, rng.IntN(300))})
	}
	return buildBatch(recs)
}

func crashStep(l *Log, fsys vfs.FS, clock *base.FakeClock, rng *rand.Rand, rec *crashRecord, term uint64, step int) error {
	switch op := rng.IntN(100); {
	case op < 55:
		b := crashBatch(rng, clock, step)
		idx, off := l.LastIndex()+1, l.NextOffset()
		rec.history[idx] = append(rec.history[idx], stamped(b, off, term))
		p, err := l.Append(context.Background(), term, b)
		if err != nil {
			return err
		}
		if l.opts.Durability == DurabilitySync {
			rec.confirmed[p.Index] = stamped(b, p.BaseOffset, term)
		}
	case op < 70:
		var written []uint64
		for range 1 + rng.IntN(4) {
			b := crashBatch(rng, clock, step)
			p, err := l.Write(term, b)
			if err != nil {
				return err
			}
			rec.history[p.Index] = append(rec.history[p.Index], stamped(b, p.BaseOffset, term))
			written = append(written, p.Index)
		}
		if err := l.Sync(); err != nil {
			return err
		}
		for _, i := range written {
			rec.confirmed[i] = rec.history[i][len(rec.history[i])-1]
		}
	case op < 78:
		first, last := l.FirstIndex(), l.LastIndex()
		from := first + uint64(rng.IntN(int(last-first+2)))
		rec.dropFrom(from)
		return l.TruncateSuffix(from)
	case op < 83:
		first, durable := l.FirstIndex(), l.DurableIndex()
		before := first + uint64(rng.IntN(int(durable+2-first)))
		if rng.IntN(3) == 0 {
			// Everything durable, as for a drained queue: when that is all
			// that was written, the active segment rolls and goes too.
			before = durable + 1
		}
		rec.dropBelow(before)
		return l.TruncatePrefix(before)
	case op < 90:
		clock.Advance(2 * time.Second) // the next sync writes a checkpoint
	case op < 95:
		l.writeMu.Lock()
		activeBase := l.active().baseIndex
		l.writeMu.Unlock()
		rec.dropBelow(activeBase)
		_, err := l.ApplyRetention(clock.Now())
		return err
	default:
		rec.confirmed = map[uint64][]byte{}
		return l.Reset(l.LastIndex()+1+uint64(rng.IntN(3)), l.NextOffset()+int64(rng.IntN(5)))
	}
	return nil
}

// checkRecovered opens the crashed file system and checks the recovered
// log against the record, then that it takes new appends and reopens.
func checkRecovered(t *testing.T, mem *vfs.MemFS, clock *base.FakeClock, cr *crashRecord, what string, reopenTwice bool) {
	t.Helper()
	l, err := Open(crashOptions(mem, clock))
	if err != nil {
		t.Fatalf("%s: Open after the crash: %v", what, err)
	}
	if err := checkIndexes(l); err != nil {
		t.Fatalf("%s: indexes disagree with the data: %v", what, err)
	}
	first, last := l.FirstIndex(), l.LastIndex()
	for i, want := range cr.confirmed {
		if i < first || i > last {
			t.Fatalf("%s: confirmed batch %d lost: log holds [%d, %d]", what, i, first, last)
		}
		got, err := l.Entries(i, i+1, 1)
		if err != nil || !bytes.Equal(got[0], want) {
			t.Fatalf("%s: confirmed batch %d differs after recovery (%v)", what, i, err)
		}
	}
	if last >= first {
		ents, err := l.Entries(first, last+1, 1<<30)
		if err != nil || len(ents) != int(last-first+1) {
			t.Fatalf("%s: Entries(%d, %d): %d batches, %v", what, first, last+1, len(ents), err)
		}
		for k, b := range ents {
			if !inHistory(cr.history[first+uint64(k)], b) {
				t.Fatalf("%s: batch %d was never written with these bytes (served past a torn tail?)", what, first+uint64(k))
			}
		}
	}
	p := appendOK(t, l, 1<<20, buildBatch([]rec{{ts: 1, value: []byte("after")}}))
	if p.Index != last+1 {
		t.Fatalf("%s: append after recovery got index %d, want %d", what, p.Index, last+1)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("%s: Close: %v", what, err)
	}
	if !reopenTwice {
		return
	}
	l2, err := Open(crashOptions(mem, clock))
	if err != nil {
		t.Fatalf("%s: second reopen: %v", what, err)
	}
	if l2.LastIndex() != last+1 {
		t.Fatalf("%s: second reopen ends at %d, want %d", what, l2.LastIndex(), last+1)
	}
	l2.Close()
}

func inHistory(versions [][]byte, b []byte) bool {
	for _, v := range versions {
		if bytes.Equal(v, b) {
			return true
		}
	}
	return false
}

// crashOnce runs the workload with a crash at the k-th mutating operation
// and checks recovery. torn selects MemFS.CrashTorn with that seed.
// It returns how many confirmed batches the recovered log was checked for.
func crashOnce(t *testing.T, seed uint64, steps, k int, after bool, torn uint64, reopenTwice bool) int {
	t.Helper()
	mem := vfs.NewMem()
	clock := base.NewFakeClock(epoch)
	rec := newCrashRecord()
	inj := &vfs.CrashAt{K: k, AfterOp: after}
	err := crashWorkload(vfs.WithFaults(mem, inj), clock, seed, steps, rec)
	what := fmt.Sprintf("seed %d steps %d k %d after %v torn %d", seed, steps, k, after, torn)
	if _, crashed := inj.Crashed(); !crashed {
		if err != nil {
			t.Fatalf("%s: workload failed without a crash: %v", what, err)
		}
		return 0
	}
	if err != nil && !errors.Is(err, vfs.ErrCrashed) && base.CodeOf(err) != base.CodeStorageFailed {
		t.Fatalf("%s: workload error %v, want the crash", what, err)
	}
	if torn != 0 {
		mem.CrashTorn(rand.New(rand.NewPCG(torn, 1)))
	} else {
		mem.Crash()
	}
	checkRecovered(t, mem, clock, rec, what, reopenTwice)
	return len(rec.confirmed)
}

// TestCrashAtEveryPoint counts the mutating file system calls of a fixed
// workload (appends across segment rolls, truncations, checkpoints,
// retention, a reset, reopens), then crashes at each of them: just before
// and just after it with unsynced data dropped, and just after it with a
// torn write (a random prefix of the unsynced bytes kept), and checks the
// recovered log.
func TestCrashAtEveryPoint(t *testing.T) {
	const seed, steps = 3, 50 // seed 3 runs with DurabilitySync (workloadDurability)
	dry := &vfs.CrashAt{}
	if err := crashWorkload(vfs.WithFaults(vfs.NewMem(), dry), base.NewFakeClock(epoch), seed, steps, newCrashRecord()); err != nil {
		t.Fatalf("dry run: %v", err)
	}
	n := dry.Count()
	if n < 300 {
		t.Fatalf("dry run: only %d mutating calls; the workload is too small", n)
	}
	checked := 0
	for k := 1; k <= n; k++ {
		checked += crashOnce(t, seed, steps, k, false, 0, true)
		checked += crashOnce(t, seed, steps, k, true, 0, true)
		checked += crashOnce(t, seed, steps, k, true, uint64(k), true)
	}
	if checked < 3*n {
		t.Errorf("only %d confirmed batches checked over %d crashes: the workload confirms too little", checked, 3*n)
	}
	t.Logf("%d crash points, each before, after, and after torn; %d confirmed batches checked", n, checked)
}

// TestCrashRandomPoints crashes random workloads at random points:
// -crash.iterations of them (10,000 by default; raise it for long runs),
// from -crash.seed, printed on failure.
func TestCrashRandomPoints(t *testing.T) {
	seed := *crashSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("crash seed %d (rerun with -args -crash.seed=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 7))
	for done := 0; done < *crashIterations; {
		wseed := rng.Uint64()
		steps := 5 + rng.IntN(25)
		dry := &vfs.CrashAt{}
		if err := crashWorkload(vfs.WithFaults(vfs.NewMem(), dry), base.NewFakeClock(epoch), wseed, steps, newCrashRecord()); err != nil {
			t.Fatalf("dry run of workload %d: %v", wseed, err)
		}
		for range 20 {
			var torn uint64
			if rng.IntN(2) == 0 {
				torn = rng.Uint64() | 1
			}
			crashOnce(t, wseed, steps, 1+rng.IntN(dry.Count()), rng.IntN(2) == 0, torn, false)
			done++
		}
	}
}

package sim

import (
	"flag"
	"os"
	"testing"
	"time"
)

var (
	flagSeed       = flag.Int64("sim.seed", -1, "run only this seed")
	flagSeeds      = flag.Int("sim.seeds", 2000, "how many seeds TestSimulation runs")
	flagFirst      = flag.Int64("sim.first", 1, "the first seed TestSimulation runs")
	flagSteps      = flag.Int("sim.steps", DefaultSteps, "rounds of traffic and faults per seed")
	flagProduction = flag.Bool("sim.production", false, "run every seed on the segmented log and Pebble")
	flagUnsafe     = flag.Bool("sim.unsafe", false, "run with acknowledgement before fsync (the checkers must fail)")
	flagTrace      = flag.Bool("sim.trace", false, "print every event of a single seed (-sim.seed)")
	flagLong       = flag.Bool("sim.long", false, "run 100,000 seeds")
)

// productionEvery is how often the default suite runs a seed on the
// production storage (the segmented log and Pebble) rather than the simple
// stores; those seeds cost several times more.
const productionEvery = 5

func TestSimulation(t *testing.T) {
	if *flagSeed >= 0 {
		opts := Options{Seed: *flagSeed, Steps: *flagSteps, Production: *flagProduction, UnsafeAckBeforeSync: *flagUnsafe}
		if *flagTrace {
			opts.Trace = os.Stdout
		}
		res := Run(opts)
		t.Logf("seed %d: %d rounds, stats %+v", res.Seed, res.Rounds, res.Stats)
		if res.Err != nil {
			t.Fatalf("seed %d failed: %v\nreplay: %s", res.Seed, res.Err, res.Replay)
		}
		return
	}
	seeds := *flagSeeds
	if *flagLong {
		seeds = 100_000
	}
	start := time.Now()
	var total Stats
	for i := range seeds {
		seed := *flagFirst + int64(i)
		opts := Options{Seed: seed, Steps: *flagSteps, UnsafeAckBeforeSync: *flagUnsafe,
			Production: *flagProduction || seed%productionEvery == 0}
		res := Run(opts)
		total = total.add(res.Stats)
		if res.Err != nil {
			t.Fatalf("seed %d failed after %d rounds: %v\nreplay: %s", seed, res.Rounds, res.Err, res.Replay)
		}
	}
	t.Logf("%d seeds in %v: %+v", seeds, time.Since(start).Round(time.Millisecond), total)
	if total.Acked == 0 || total.Crashes == 0 || total.Snapshots == 0 || total.ReadsOK == 0 {
		t.Errorf("the seeds exercised too little: %+v", total)
	}
}

// TestSimulationRegressions replays seeds that once found a bug, in the
// mode that found it. A change to the engine may change what a seed does:
// each guards its bug only while the seed still reaches it.
func TestSimulationRegressions(t *testing.T) {
	for _, c := range []struct {
		seed       int64
		production bool
		bug        string
	}{
		{5245, true, "a snapshot carrying retained entries installed in the same Ready as the entries after it: " +
			"the segmented log counts written entries in LastIndex only once flushed, and the append took that for a gap"},
	} {
		if res := Run(Options{Seed: c.seed, Production: c.production}); res.Err != nil {
			t.Errorf("seed %d (%s) failed: %v\nreplay: %s", c.seed, c.bug, res.Err, res.Replay)
		}
	}
}

// TestSimulationIsDeterministic runs seeds twice: the same seed must give
// the same trace, event for event, so that a failing seed replays.
func TestSimulationIsDeterministic(t *testing.T) {
	hashes := map[uint64]int64{}
	for _, seed := range []int64{3, productionEvery * 2, 77} {
		opts := Options{Seed: seed, Production: seed%productionEvery == 0}
		a, b := Run(opts), Run(opts)
		if a.Err != nil || b.Err != nil {
			t.Fatalf("seed %d failed: %v / %v", seed, a.Err, b.Err)
		}
		if a.TraceHash != b.TraceHash || a.Rounds != b.Rounds {
			t.Errorf("seed %d: runs differ: hash %x after %d rounds, then %x after %d", seed, a.TraceHash, a.Rounds, b.TraceHash, b.Rounds)
		}
		if other, dup := hashes[a.TraceHash]; dup {
			t.Errorf("seeds %d and %d gave the same trace", other, seed)
		}
		hashes[a.TraceHash] = seed
	}
}

// TestSimulatorCatchesAckBeforeSync proves the checkers can fail: an engine
// that acknowledges before its fsync must be caught within the default
// seeds.
func TestSimulatorCatchesAckBeforeSync(t *testing.T) {
	for i := range *flagSeeds {
		seed := *flagFirst + int64(i)
		res := Run(Options{Seed: seed, Steps: *flagSteps, UnsafeAckBeforeSync: true})
		if res.Err != nil {
			t.Logf("caught at seed %d (%d rounds): %v", seed, res.Rounds, res.Err)
			return
		}
	}
	t.Fatalf("acknowledging before fsync went unnoticed in %d seeds", *flagSeeds)
}

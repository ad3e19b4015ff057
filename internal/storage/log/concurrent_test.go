package log

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/base/vfs"
	"github.com/ferry-mq/ferry/internal/storage/log/batch"
)

// TestReadsDuringWritesTruncationsAndRetention runs readers against a log
// that is appended to, truncated at both ends and rolled at the same time
// (run it with -race). Every read must return whole, valid batches with
// consecutive offsets, or CodeOutOfRange (or CodeUnavailable, retriable).
// It pins the bug where a truncation shrank the file before publishing the
// new end, and a reader got "unexpected EOF" as corruption.
func TestReadsDuringWritesTruncationsAndRetention(t *testing.T) {
	o := memOptions(vfs.NewMem(), base.NewFakeClock(epoch))
	o.RetentionBytes = 4000
	l := mustOpen(t, o)
	defer l.Close()
	var stop atomic.Bool
	var wg sync.WaitGroup
	var reads atomic.Int64
	for r := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(r), 1))
			for !stop.Load() {
				first, next := l.FirstOffset(), l.NextOffset()
				off := first + rng.Int64N(next-first+1)
				b, err := l.Read(off, rng.IntN(2000))
				if err != nil {
					// Out of range: truncated meanwhile. Unavailable: raced
					// with truncations on every retry (retriable).
					if c := base.CodeOf(err); c != base.CodeOutOfRange && c != base.CodeUnavailable {
						t.Errorf("Read(%d): %v", off, err)
						return
					}
					continue
				}
				checkBatches(t, b)
				if lo := l.FirstIndex(); lo <= l.LastIndex() {
					if ents, err := l.Entries(lo, lo+5, 3000); err == nil {
						for _, e := range ents {
							checkBatches(t, e)
						}
					} else if c := base.CodeOf(err); c != base.CodeOutOfRange && c != base.CodeUnavailable {
						t.Errorf("Entries(%d): %v", lo, err)
						return
					}
				}
				if _, err := l.LookupTime(rng.Int64N(3000)); err != nil {
					t.Errorf("LookupTime: %v", err)
					return
				}
				reads.Add(1)
			}
		}()
	}
	rng := rand.New(rand.NewPCG(9, 9))
	for i := 0; i < 1500 || reads.Load() < 100; i++ {
		appendOK(t, l, 1, mkBatch(t, 1+rng.IntN(3), rng.IntN(200), int64(i), byte(i)))
		switch rng.IntN(50) {
		case 0:
			if err := l.TruncateSuffix(l.LastIndex() - uint64(rng.IntN(3))); err != nil {
				t.Fatal(err)
			}
		case 1:
			if err := l.TruncatePrefix(l.FirstIndex() + uint64(rng.IntN(3))); err != nil && base.CodeOf(err) != base.CodeInvalidArgument {
				t.Fatal(err)
			}
		case 2:
			if _, err := l.ApplyRetention(epoch); err != nil {
				t.Fatal(err)
			}
		}
	}
	stop.Store(true)
	wg.Wait()
}

// checkBatches checks that b is whole valid batches with consecutive
// offsets.
func checkBatches(t *testing.T, b []byte) {
	t.Helper()
	var next int64 = -1
	for len(b) > 0 {
		h, err := batch.ParseHeader(b)
		if err != nil || h.Size() > len(b) {
			t.Errorf("read returned a partial batch: %v", err)
			return
		}
		if _, err := batch.Validate(b[:h.Size()]); err != nil {
			t.Errorf("read returned a bad batch: %v", err)
			return
		}
		if next >= 0 && h.BaseOffset != next {
			t.Errorf("read returned offsets %d after %d", h.BaseOffset, next)
			return
		}
		next = h.NextOffset()
		b = b[h.Size():]
	}
}

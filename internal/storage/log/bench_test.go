package log

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/base/vfs"
)

// benchDir is where the benchmarks put files on the real disk: $FERRY_BENCH_DIR,
// or a temporary directory.
func benchDir(b *testing.B) string {
	if d := os.Getenv("FERRY_BENCH_DIR"); d != "" {
		dir, err := os.MkdirTemp(d, "logbench")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(dir) })
		return dir
	}
	return b.TempDir()
}

// achievedBytesPerSync is the bytes per fsync the durable append benchmark
// reached at 64 appenders x 1 KiB, for BenchmarkRawSync/matched in the
// same run.
var achievedBytesPerSync int64

// BenchmarkDurableAppend measures Append with DurabilitySync on the real
// disk: one record per batch, 1, 16 and 64 concurrent appenders. It
// reports MB/s (of batch bytes), batches/s, fsyncs/s, p50/p99 latency and
// allocations per append.
//
//	FERRY_BENCH_DIR=/work/tmp go test -run XXX -bench DurableAppend -benchtime 3s ./internal/storage/log/
func BenchmarkDurableAppend(b *testing.B) {
	for _, size := range []int{128, 1 << 10, 64 << 10} {
		for _, conc := range []int{1, 16, 64} {
			b.Run(fmt.Sprintf("value=%d/appenders=%d", size, conc), func(b *testing.B) {
				benchAppend(b, size, conc)
			})
		}
	}
}

func benchAppend(b *testing.B, size, conc int) {
	l, err := Open(Options{Dir: benchDir(b), Clock: base.RealClock{}})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	bt := buildBatch([]rec{{ts: time.Now().UnixMilli(), value: make([]byte, size)}})
	lat := make([]time.Duration, b.N)
	syncs0 := l.dataSyncs.Load()
	b.SetBytes(int64(len(bt)))
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for g := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < b.N; i += conc {
				t0 := time.Now()
				if _, err := l.Append(context.Background(), 1, bt); err != nil {
					b.Error(err)
					return
				}
				lat[i] = time.Since(t0)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	syncs := l.dataSyncs.Load() - syncs0
	slices.Sort(lat)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "batches/s")
	b.ReportMetric(float64(syncs)/elapsed.Seconds(), "fsyncs/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	if syncs > 0 {
		perSync := int64(b.N) * int64(len(bt)) / int64(syncs)
		b.ReportMetric(float64(perSync), "bytes/fsync")
		if size == 1<<10 && conc == 64 {
			achievedBytesPerSync = perSync
		}
	}
}

// BenchmarkRawSync is the physical limit on the same disk: sequential
// appends to one file, each write followed by one fdatasync, of 4 KiB,
// 1 MiB, and (matched) the bytes per fsync BenchmarkDurableAppend reached
// at 64 appenders x 1 KiB when both run in one go test invocation.
//
//	FERRY_BENCH_DIR=/work/tmp go test -run XXX -bench 'DurableAppend|RawSync' -benchtime 3s ./internal/storage/log/
func BenchmarkRawSync(b *testing.B) {
	sizes := []struct {
		name string
		n    func() int64
	}{
		{"4KiB", func() int64 { return 4 << 10 }},
		{"1MiB", func() int64 { return 1 << 20 }},
		{"matched", func() int64 {
			if achievedBytesPerSync > 0 {
				return achievedBytesPerSync
			}
			return 64 << 10
		}},
	}
	for _, sz := range sizes {
		b.Run(sz.name, func(b *testing.B) {
			n := sz.n()
			f, err := vfs.Default.Create(filepath.Join(benchDir(b), "raw"))
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			buf := make([]byte, n)
			b.SetBytes(n)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := f.Write(buf); err != nil {
					b.Fatal(err)
				}
				if err := f.Sync(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n), "bytes/fsync")
		})
	}
}

// BenchmarkRead reads 1 KiB-record batches sequentially with Read (1 MiB
// at a time) from a log whose segments are in the page cache.
//
//	go test -run XXX -bench 'Read$' ./internal/storage/log/
func BenchmarkRead(b *testing.B) {
	l, err := Open(Options{Dir: benchDir(b), Clock: base.RealClock{}, Durability: DurabilityNone})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	bt := buildBatch([]rec{{ts: 1, value: make([]byte, 1<<10)}})
	for range (64 << 20) / len(bt) {
		if _, err := l.Write(1, bt); err != nil {
			b.Fatal(err)
		}
	}
	if err := l.Sync(); err != nil {
		b.Fatal(err)
	}
	next := l.NextOffset()
	b.ReportAllocs()
	b.ResetTimer()
	var total int64
	off := int64(0)
	for b.Loop() {
		out, err := l.Read(off, 1<<20)
		if err != nil {
			b.Fatal(err)
		}
		total += int64(len(out))
		off += int64(len(out) / len(bt))
		if off >= next {
			off = 0
		}
	}
	b.SetBytes(total / int64(b.N))
}

// BenchmarkSyncAll makes 100 logs durable after one batch each: one
// SyncAll against 100 Syncs.
//
//	go test -run XXX -bench SyncAll ./internal/storage/log/
func BenchmarkSyncAll(b *testing.B) {
	dir := benchDir(b)
	var logs []*Log
	for i := range 100 {
		l, err := Open(Options{Dir: filepath.Join(dir, fmt.Sprint(i)), Clock: base.RealClock{}})
		if err != nil {
			b.Fatal(err)
		}
		defer l.Close()
		logs = append(logs, l)
	}
	bt := buildBatch([]rec{{ts: 1, value: make([]byte, 1<<10)}})
	write := func() {
		for _, l := range logs {
			if _, err := l.Write(1, bt); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("SyncAll", func(b *testing.B) {
		b.SetBytes(int64(len(logs) * len(bt)))
		b.ReportAllocs()
		for b.Loop() {
			write()
			if err := SyncAll(logs...); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Sync-each", func(b *testing.B) {
		b.SetBytes(int64(len(logs) * len(bt)))
		b.ReportAllocs()
		for b.Loop() {
			write()
			for _, l := range logs {
				if err := l.Sync(); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}

// BenchmarkDurableVsRaw interleaves the two measurements the goal compares,
// so that a noisy disk affects both alike: each round runs 64 appenders x
// 1 KiB through Append for 500 ms, then raw write+fdatasync of the bytes
// per fsync the log reached so far for 500 ms. It reports both throughputs
// and the log's share of the raw limit.
//
//	FERRY_BENCH_DIR=/work/tmp go test -run XXX -bench DurableVsRaw -benchtime 20x ./internal/storage/log/
func BenchmarkDurableVsRaw(b *testing.B) {
	dir := benchDir(b)
	l, err := Open(Options{Dir: filepath.Join(dir, "log"), Clock: base.RealClock{}})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	f, err := vfs.Default.Create(filepath.Join(dir, "raw"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	bt := buildBatch([]rec{{ts: 1, value: make([]byte, 1<<10)}})
	const phase = 500 * time.Millisecond
	var logBytes, logSyncs, rawBytes int64
	var logTime, rawTime time.Duration
	for b.Loop() {
		start, s0 := time.Now(), l.dataSyncs.Load()
		var appended sync.WaitGroup
		counts := make([]int64, 64)
		for g := range counts {
			appended.Add(1)
			go func() {
				defer appended.Done()
				for time.Since(start) < phase {
					if _, err := l.Append(context.Background(), 1, bt); err != nil {
						b.Error(err)
						return
					}
					counts[g]++
				}
			}()
		}
		appended.Wait()
		logTime += time.Since(start)
		for _, c := range counts {
			logBytes += c * int64(len(bt))
		}
		logSyncs += int64(l.dataSyncs.Load() - s0)
		buf := make([]byte, logBytes/max(logSyncs, 1))
		start = time.Now()
		for time.Since(start) < phase {
			if _, err := f.Write(buf); err != nil {
				b.Fatal(err)
			}
			if err := f.Sync(); err != nil {
				b.Fatal(err)
			}
			rawBytes += int64(len(buf))
		}
		rawTime += time.Since(start)
	}
	logMBs := float64(logBytes) / logTime.Seconds() / 1e6
	rawMBs := float64(rawBytes) / rawTime.Seconds() / 1e6
	b.ReportMetric(logMBs, "log-MB/s")
	b.ReportMetric(rawMBs, "raw-MB/s")
	b.ReportMetric(100*logMBs/rawMBs, "log-%-of-raw")
	b.ReportMetric(float64(logBytes/max(logSyncs, 1)), "bytes/fsync")
}

// BenchmarkWrite measures Write and WriteValidated of one 1 KiB record on
// an in-memory file system, with no Sync (the buffer is written to the
// file every base.LogWriteBufferBytes) and a Reset every 1024 batches to
// keep the in-memory file small: the difference is the CRC and record walk
// that WriteValidated skips.
//
//	go test -run '^$' -bench 'BenchmarkWrite$' -count 5 ./internal/storage/log
func BenchmarkWrite(b *testing.B) {
	bt := buildBatch([]rec{{ts: 1, value: make([]byte, 1<<10)}})
	for _, validated := range []bool{false, true} {
		b.Run(fmt.Sprintf("validated=%v", validated), func(b *testing.B) {
			l, err := Open(Options{FS: vfs.NewMem(), Dir: "/d", Clock: base.RealClock{}, Durability: DurabilityNone})
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			write := l.Write
			if validated {
				write = l.WriteValidated
			}
			b.SetBytes(int64(len(bt)))
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := write(1, bt); err != nil {
					b.Fatal(err)
				}
				if i++; i%1024 == 0 {
					if err := l.Reset(l.LastIndex()+1, l.NextOffset()); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

package meta

import (
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ferry-mq/ferry/internal/base/vfs"
)

// BenchmarkCommitSync measures synced commits of batches of 100 small keys
// (a loop's worth of Raft hard states) on the real disk, from 1 and from 16
// concurrent committers. The disk is b.TempDir's unless FERRY_BENCH_DIR
// names a directory on another one. ns/op is per batch; syncs/op shows how
// Pebble's commit pipeline shares fsyncs between committers.
//
//	go test -run XXX -bench CommitSync -benchtime 3s ./internal/storage/meta
func BenchmarkCommitSync(b *testing.B) {
	for _, committers := range []int{1, 16} {
		b.Run(fmt.Sprintf("committers=%d", committers), func(b *testing.B) {
			benchCommitSync(b, committers)
		})
	}
}

const (
	benchKeysPerBatch = 100
	benchValueBytes   = 32 // a HardState (term, vote, commit) is about this
)

func benchCommitSync(b *testing.B, committers int) {
	dir := b.TempDir()
	if d := os.Getenv("FERRY_BENCH_DIR"); d != "" {
		var err error
		if dir, err = os.MkdirTemp(d, "meta-bench-"); err != nil {
			b.Fatal(err)
		}
		defer os.RemoveAll(dir)
	}
	s, err := Open(Options{FS: vfs.Default, Dir: dir, Logger: quiet()})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	value := make([]byte, benchValueBytes)
	b.SetBytes(int64(benchKeysPerBatch * (len(HardStateKey(0)) + benchValueBytes)))
	b.ReportAllocs()
	syncsBefore := s.Stats().FileSyncs
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, committers)
	b.ResetTimer()
	for c := range committers {
		wg.Go(func() {
			for n := next.Add(1); n <= int64(b.N); n = next.Add(1) {
				batch := s.NewBatch()
				for k := range benchKeysPerBatch {
					group := uint64(c*benchKeysPerBatch + k)
					if err := batch.Set(HardStateKey(group), value); err != nil {
						errs <- err
						return
					}
				}
				if err := s.Commit(batch, Sync); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	b.ReportMetric(float64(s.Stats().FileSyncs-syncsBefore)/float64(b.N), "syncs/op")
}

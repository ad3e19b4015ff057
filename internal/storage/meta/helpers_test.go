package meta

import (
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/base/vfs"
)

const testDir = "/node/meta"

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func openOn(t testing.TB, fsys vfs.FS) *Store {
	t.Helper()
	s, err := Open(Options{FS: fsys, Dir: testDir, Logger: quiet()})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

// kv is one Set (or, with del, one Delete) of a test batch.
type kv struct {
	k, v string
	del  bool
}

func commit(s *Store, d Durability, ops ...kv) error {
	b := s.NewBatch()
	defer b.Close()
	for _, op := range ops {
		var err error
		if op.del {
			err = b.Delete([]byte(op.k))
		} else {
			err = b.Set([]byte(op.k), []byte(op.v))
		}
		if err != nil {
			return err
		}
	}
	return s.Commit(b, d)
}

func mustCommit(t testing.TB, s *Store, d Durability, ops ...kv) {
	t.Helper()
	if err := commit(s, d, ops...); err != nil {
		t.Fatalf("Commit: %v", err)
	}
}

// get returns key's value, or "<absent>" when the store says CodeNotFound.
func get(t testing.TB, s *Store, key string) string {
	t.Helper()
	v, err := s.Get([]byte(key))
	if base.CodeOf(err) == base.CodeNotFound {
		return "<absent>"
	}
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	return string(v)
}

// dump returns every key and value of the store, in order.
func dump(t testing.TB, s *Store) []string {
	t.Helper()
	var out []string
	err := s.Scan(nil, func(k, v []byte) error {
		out = append(out, fmt.Sprintf("%s=%s", k, v))
		return nil
	})
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	return out
}

func wantCode(t testing.TB, what string, err error, want base.Code) {
	t.Helper()
	if got := base.CodeOf(err); got != want {
		t.Errorf("%s: got code %v (err %v), want %v", what, got, err, want)
	}
}

var errSimulatedCrash = errors.New("test: simulated crash")

// crashLive simulates the death of the process running s: the fence trips
// first, so that nothing the dying store does afterwards reaches the file
// system, then crash runs (MemFS.Crash or CrashTorn) and the store is closed
// (its error is expected and not the point). s must have no flush or
// compaction in flight: one reaching its MANIFEST write would stop the test
// process, as it stops a node (DESIGN.md).
func crashLive(s *Store, crash func()) {
	s.fence.trip(errSimulatedCrash)
	crash()
	if err := s.Close(); !isStorageFailure(err) {
		panic(fmt.Sprintf("closing a crashed store: got %v, want its failure", err))
	}
}

// armable is an injector that fails, with err, the operations match selects,
// but only while armed, so that a test can open a store cleanly first. Pebble
// calls it from several goroutines.
type armable struct {
	match func(p vfs.Point) bool
	err   error
	armed atomic.Bool
	hits  atomic.Int64
}

func (a *armable) Inject(p vfs.Point) error {
	if a.armed.Load() && a.match(p) {
		a.hits.Add(1)
		return a.err
	}
	return nil
}

var errTestStop = errors.New("test stop")

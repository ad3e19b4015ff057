package meta

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"testing"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/base/vfs"
)

func TestSetGetDeleteRoundTrip(t *testing.T) {
	s := openOn(t, vfs.NewMem())
	defer s.Close()
	mustCommit(t, s, Sync, kv{k: "a", v: "1"}, kv{k: "b", v: "2"}, kv{k: "empty", v: ""})
	for k, want := range map[string]string{"a": "1", "b": "2", "empty": "", "zz": "<absent>"} {
		if got := get(t, s, k); got != want {
			t.Errorf("Get(%q): got %q, want %q", k, got, want)
		}
	}
	v, err := s.Get([]byte("empty"))
	if err != nil || v == nil || len(v) != 0 {
		t.Errorf("Get of an empty value: got %#v, %v; want a non-nil empty slice", v, err)
	}

	mustCommit(t, s, NoSync, kv{k: "a", del: true}, kv{k: "b", v: "3"})
	if got := get(t, s, "a"); got != "<absent>" {
		t.Errorf("Get of a deleted key: got %q, want absent", got)
	}
	if got := get(t, s, "b"); got != "3" {
		t.Errorf("Get after overwrite: got %q, want %q", got, "3")
	}
	_, err = s.Get([]byte("a"))
	wantCode(t, "Get of a deleted key", err, base.CodeNotFound)
}

func TestGetReturnsACopyTheCallerOwns(t *testing.T) {
	s := openOn(t, vfs.NewMem())
	defer s.Close()
	mustCommit(t, s, Sync, kv{k: "k", v: "value"})
	v, err := s.Get([]byte("k"))
	if err != nil {
		t.Fatal(err)
	}
	copy(v, "XXXXX")
	if got := get(t, s, "k"); got != "value" {
		t.Errorf("after scribbling on a returned value: got %q, want %q", got, "value")
	}
}

func TestBatchAppliesInOrderAndAtomically(t *testing.T) {
	s := openOn(t, vfs.NewMem())
	defer s.Close()
	b := s.NewBatch()
	for _, op := range []kv{{k: "x", v: "1"}, {k: "x", v: "2"}, {k: "y", v: "1"}, {k: "y", del: true}} {
		var err error
		if op.del {
			err = b.Delete([]byte(op.k))
		} else {
			err = b.Set([]byte(op.k), []byte(op.v))
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := b.Len(); got != 4 {
		t.Errorf("Len: got %d, want 4", got)
	}
	if got := get(t, s, "x"); got != "<absent>" {
		t.Errorf("a batch is visible before Commit: x=%q", got)
	}
	if err := s.Commit(b, Sync); err != nil {
		t.Fatal(err)
	}
	if got := dump(t, s); !slices.Equal(got, []string{"x=2"}) {
		t.Errorf("after the batch: got %v, want [x=2]", got)
	}
	b.Close() // a spent batch: no effect
}

func TestScanVisitsThePrefixInKeyOrder(t *testing.T) {
	s := openOn(t, vfs.NewMem())
	defer s.Close()
	mustCommit(t, s, Sync, kv{k: "p/3", v: "c"}, kv{k: "p/1", v: "a"}, kv{k: "p/2", v: "b"},
		kv{k: "p", v: "below"}, kv{k: "q/1", v: "other"}, kv{k: "o/9", v: "other"})
	var got []string
	err := s.Scan([]byte("p/"), func(k, v []byte) error {
		got = append(got, string(k)+"="+string(v))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"p/1=a", "p/2=b", "p/3=c"}; !slices.Equal(got, want) {
		t.Errorf("Scan(p/): got %v, want %v", got, want)
	}

	got = nil
	err = s.Scan([]byte("p/"), func(k, _ []byte) error {
		got = append(got, string(k))
		if len(got) == 2 {
			return StopScan
		}
		return nil
	})
	if err != nil || !slices.Equal(got, []string{"p/1", "p/2"}) {
		t.Errorf("Scan stopped by StopScan: got %v, %v; want [p/1 p/2], nil", got, err)
	}
	err = s.Scan([]byte("p/"), func([]byte, []byte) error { return errTestStop })
	if err != errTestStop {
		t.Errorf("Scan whose callback fails: got %v, want the callback's error itself", err)
	}
}

func TestScanRangeHonoursBounds(t *testing.T) {
	s := openOn(t, vfs.NewMem())
	defer s.Close()
	mustCommit(t, s, Sync, kv{k: "a", v: "1"}, kv{k: "b", v: "2"}, kv{k: "c", v: "3"}, kv{k: "d", v: "4"})
	for _, tc := range []struct {
		lower, upper []byte
		want         []string
	}{
		{[]byte("b"), []byte("d"), []string{"b", "c"}},
		{nil, []byte("b"), []string{"a"}},
		{[]byte("c"), nil, []string{"c", "d"}},
		{[]byte("b"), []byte("b"), nil},
	} {
		var got []string
		if err := s.ScanRange(tc.lower, tc.upper, func(k, _ []byte) error {
			got = append(got, string(k))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("ScanRange(%q, %q): got %v, want %v", tc.lower, tc.upper, got, tc.want)
		}
	}
	err := s.ScanRange([]byte("d"), []byte("a"), func([]byte, []byte) error { return nil })
	wantCode(t, "ScanRange with reversed bounds", err, base.CodeInvalidArgument)
}

// TestScanSeesASnapshotWhileItsCallbackWrites pins that a scan is over a
// consistent snapshot and that its callback may call Get and Commit.
func TestScanSeesASnapshotWhileItsCallbackWrites(t *testing.T) {
	s := openOn(t, vfs.NewMem())
	defer s.Close()
	mustCommit(t, s, Sync, kv{k: "k/1", v: "a"}, kv{k: "k/2", v: "b"})
	var seen []string
	err := s.Scan([]byte("k/"), func(k, v []byte) error {
		seen = append(seen, string(k)+"="+string(v))
		if string(k) == "k/1" {
			if err := commit(s, Sync, kv{k: "k/2", v: "changed"}, kv{k: "k/3", v: "new"}); err != nil {
				return err
			}
			if got := get(t, s, "k/2"); got != "changed" {
				t.Errorf("Get inside the callback: got %q, want the committed %q", got, "changed")
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"k/1=a", "k/2=b"}; !slices.Equal(seen, want) {
		t.Errorf("scan during writes: got %v, want the snapshot %v", seen, want)
	}
}

func TestDeleteRangeRemovesExactlyTheRange(t *testing.T) {
	s := openOn(t, vfs.NewMem())
	defer s.Close()
	mustCommit(t, s, Sync, kv{k: "a", v: "1"}, kv{k: "b", v: "2"}, kv{k: "ba", v: "3"}, kv{k: "c", v: "4"})
	b := s.NewBatch()
	if err := b.DeleteRange([]byte("b"), []byte("c")); err != nil {
		t.Fatal(err)
	}
	if err := b.Set([]byte("bb"), []byte("set after the delete")); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(b, Sync); err != nil {
		t.Fatal(err)
	}
	if got, want := dump(t, s), []string{"a=1", "bb=set after the delete", "c=4"}; !slices.Equal(got, want) {
		t.Errorf("after DeleteRange [b, c): got %v, want %v", got, want)
	}

	b = s.NewBatch()
	defer b.Close()
	for _, r := range [][2]string{{"c", "c"}, {"d", "c"}} {
		err := b.DeleteRange([]byte(r[0]), []byte(r[1]))
		wantCode(t, "DeleteRange("+r[0]+", "+r[1]+")", err, base.CodeInvalidArgument)
	}
	wantCode(t, "DeletePrefix(empty)", b.DeletePrefix(nil), base.CodeInvalidArgument)
	wantCode(t, "DeletePrefix(0xFF 0xFF)", b.DeletePrefix([]byte{0xFF, 0xFF}), base.CodeInvalidArgument)
	if b.Len() != 0 {
		t.Errorf("refused operations were added: Len %d", b.Len())
	}
}

// TestDeletePrefixOfAStreamSparesStreamsItPrefixes pins the string encoding:
// stream "a" is not a byte prefix of stream "ab" once encoded.
func TestDeletePrefixOfAStreamSparesStreamsItPrefixes(t *testing.T) {
	s := openOn(t, vfs.NewMem())
	defer s.Close()
	b := s.NewBatch()
	for _, stream := range []string{"a", "ab", "a\x00"} {
		for p := range uint32(3) {
			if err := b.Set(OffsetKey(stream, "g", p), []byte(stream)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := b.Set(HardStateKey(1), []byte("hs")); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(b, Sync); err != nil {
		t.Fatal(err)
	}
	b = s.NewBatch()
	if err := b.DeletePrefix(OffsetStreamPrefix("a")); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(b, Sync); err != nil {
		t.Fatal(err)
	}
	var left []string
	err := s.Scan(KindPrefix(KindOffset), func(k, _ []byte) error {
		stream, group, p, err := ParseOffsetKey(k)
		if err != nil {
			return err
		}
		left = append(left, stream+"|"+group+"|"+string(rune('0'+p)))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"a\x00|g|0", "a\x00|g|1", "a\x00|g|2", "ab|g|0", "ab|g|1", "ab|g|2"}
	if !slices.Equal(left, want) {
		t.Errorf("offsets left after deleting stream a: got %q, want %q", left, want)
	}
	if got := get(t, s, string(HardStateKey(1))); got != "hs" {
		t.Errorf("a key of another kind was touched: got %q", got)
	}
}

func TestKeyAndValueLimitsAtTheEdge(t *testing.T) {
	s := openOn(t, vfs.NewMem())
	defer s.Close()
	maxKey := bytes.Repeat([]byte("k"), base.MetaKeyBytesMax)
	overKey := append(bytes.Clone(maxKey), 'k')
	maxValue := bytes.Repeat([]byte("v"), base.MetaValueBytesMax)

	b := s.NewBatch()
	if err := b.Set(maxKey, maxValue); err != nil {
		t.Fatalf("Set of the largest key and value: %v", err)
	}
	wantCode(t, "Set of a key one byte over", b.Set(overKey, nil), base.CodeTooLarge)
	wantCode(t, "Set of a value one byte over", b.Set([]byte("x"), append(maxValue, 'v')), base.CodeTooLarge)
	wantCode(t, "Delete of a key one byte over", b.Delete(overKey), base.CodeTooLarge)
	wantCode(t, "DeleteRange to a key one byte over", b.DeleteRange([]byte("a"), overKey), base.CodeTooLarge)
	wantCode(t, "Set of an empty key", b.Set(nil, []byte("v")), base.CodeInvalidArgument)
	if b.Len() != 1 {
		t.Errorf("refused operations changed the batch: Len %d, want 1", b.Len())
	}
	if err := s.Commit(b, Sync); err != nil {
		t.Fatalf("Commit of the largest value: %v", err)
	}
	got, err := s.Get(maxKey)
	if err != nil || !bytes.Equal(got, maxValue) {
		t.Errorf("largest value read back: %d bytes, %v; want %d bytes", len(got), err, len(maxValue))
	}
	_, err = s.Get(overKey)
	wantCode(t, "Get of a key one byte over", err, base.CodeTooLarge)
	_, err = s.Get(nil)
	wantCode(t, "Get of an empty key", err, base.CodeInvalidArgument)
}

func TestBatchBytesLimitAtTheEdge(t *testing.T) {
	s := openOn(t, vfs.NewMem())
	defer s.Close()
	b := s.NewBatch()
	value := make([]byte, base.MetaValueBytesMax)
	for i := 0; b.Bytes()+1+len(value) <= base.MetaBatchBytesMax; i++ {
		if err := b.Set([]byte{'a' + byte(i)}, value); err != nil {
			t.Fatalf("Set %d: %v", i, err)
		}
	}
	rest := base.MetaBatchBytesMax - b.Bytes() - 1
	if err := b.Set([]byte("z"), value[:rest]); err != nil {
		t.Fatalf("Set filling the batch to exactly its limit: %v", err)
	}
	if b.Bytes() != base.MetaBatchBytesMax {
		t.Fatalf("batch bytes: got %d, want %d", b.Bytes(), base.MetaBatchBytesMax)
	}
	n := b.Len()
	wantCode(t, "Set of one byte past the batch limit", b.Set([]byte("{"), nil), base.CodeTooLarge)
	wantCode(t, "Delete past the batch limit", b.Delete([]byte("{")), base.CodeTooLarge)
	if b.Len() != n || b.Bytes() != base.MetaBatchBytesMax {
		t.Errorf("refused operations changed the batch: Len %d Bytes %d, want %d %d", b.Len(), b.Bytes(), n, base.MetaBatchBytesMax)
	}
	if err := s.Commit(b, Sync); err != nil {
		t.Fatalf("Commit of a batch at the limit: %v", err)
	}
	v, err := s.Get([]byte("z"))
	if err != nil || len(v) != rest {
		t.Errorf("last value of the full batch: %d bytes, %v; want %d", len(v), err, rest)
	}
}

func TestClosedStoreRefusesCalls(t *testing.T) {
	s := openOn(t, vfs.NewMem())
	b := s.NewBatch()
	if err := b.Set([]byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "Commit after Close", s.Commit(b, Sync), base.CodeStopped)
	_, err := s.Get([]byte("k"))
	wantCode(t, "Get after Close", err, base.CodeStopped)
	wantCode(t, "Scan after Close", s.Scan(nil, func([]byte, []byte) error { return nil }), base.CodeStopped)
	wantCode(t, "second Close", s.Close(), base.CodeStopped)
	late := s.NewBatch()
	if err := late.Set([]byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "Commit of a batch made after Close", s.Commit(late, Sync), base.CodeStopped)
}

// TestRecoverFatalTakesOnlyFatalfPanics pins that a Store call turns
// Pebble's Fatalf into an error but lets any other panic through: another
// panic may hold Pebble's locks, and carrying on would deadlock Close.
func TestRecoverFatalTakesOnlyFatalfPanics(t *testing.T) {
	f := newFence(quiet())
	logger := pebbleLogger{log: quiet(), fence: f}
	call := func(body func()) (err error) {
		defer recoverFatal(&err)
		body()
		return nil
	}
	err := call(func() { logger.Fatalf("MANIFEST sync failed: %v", vfs.ErrInjectedIO) })
	wantCode(t, "a call that met Fatalf", err, base.CodeStorageFailed)
	if !errors.Is(err, vfs.ErrInjectedIO) || f.err() == nil {
		t.Errorf("Fatalf's error %v: want it to wrap the EIO among its arguments and trip the fence", err)
	}
	defer func() {
		if r := recover(); r != "some other panic" {
			t.Errorf("another panic: got %v, want it re-panicked unchanged", r)
		}
	}()
	_ = call(func() { panic("some other panic") })
	t.Errorf("another panic was recovered")
}

func TestReopenKeepsCommittedData(t *testing.T) {
	for _, tc := range []struct {
		name string
		fs   vfs.FS
		dir  string
	}{
		{"os", vfs.Default, t.TempDir() + "/a/b/meta"},
		{"mem", vfs.NewMem(), testDir},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Open(Options{FS: tc.fs, Dir: tc.dir, Logger: quiet()})
			if err != nil {
				t.Fatal(err)
			}
			mustCommit(t, s, Sync, kv{k: string(HardStateKey(7)), v: "term=3"})
			mustCommit(t, s, NoSync, kv{k: string(ConfStateKey(7)), v: "voters=1,2,3"})
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s, err = Open(Options{FS: tc.fs, Dir: tc.dir, Logger: quiet()})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			want := []string{"c/\x00\x00\x00\x00\x00\x00\x00\x07=voters=1,2,3", "h/\x00\x00\x00\x00\x00\x00\x00\x07=term=3"}
			if got := dump(t, s); !slices.Equal(got, want) {
				t.Errorf("after reopen: got %q, want %q", got, want)
			}
		})
	}
}

func TestSecondOpenOfADirectoryIsRefused(t *testing.T) {
	m := vfs.NewMem()
	s := openOn(t, m)
	defer s.Close()
	_, err := Open(Options{FS: m, Dir: testDir, Logger: quiet()})
	wantCode(t, "second Open of the same directory", err, base.CodeResourceLocked)
}

func TestOpenRefusesBadOptions(t *testing.T) {
	_, err := Open(Options{FS: vfs.NewMem(), Logger: quiet()})
	wantCode(t, "Open without Dir", err, base.CodeInvalidArgument)
	_, err = Open(Options{FS: vfs.NewMem(), Dir: testDir, CacheBytes: -1, Logger: quiet()})
	wantCode(t, "Open with negative CacheBytes", err, base.CodeInvalidArgument)
}

func TestOptionsDefaultToTheNamedLimits(t *testing.T) {
	opts, err := Options{Dir: testDir}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if opts.FS != vfs.Default || opts.Logger == nil || opts.CacheBytes != base.MetaCacheBytesDefault {
		t.Errorf("defaults: got FS %v, logger %v, cache %d; want vfs.Default, a logger, %d",
			opts.FS, opts.Logger, opts.CacheBytes, base.MetaCacheBytesDefault)
	}
	s := &Store{fence: newFence(quiet())}
	s.pfs = &pebbleFS{fs: opts.FS, fence: s.fence}
	po := s.pebbleOptions(opts, quiet())
	if po.CacheSize != base.MetaCacheBytesDefault || po.MemTableSize != base.MetaMemTableBytes || po.FormatMajorVersion != formatVersion {
		t.Errorf("pebble options: got cache %d, memtable %d, format %d; want %d, %d, %d",
			po.CacheSize, po.MemTableSize, po.FormatMajorVersion, base.MetaCacheBytesDefault, base.MetaMemTableBytes, formatVersion)
	}
	if po.FS != s.pfs {
		t.Errorf("pebble runs on %T, not the store's adapter", po.FS)
	}
}

func TestOpenMakesTheNewDirectoryDurable(t *testing.T) {
	m := vfs.NewMem()
	// The parent exists and is durable; Open must make its new child so.
	if err := m.MkdirAll("/node", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := m.SyncDir("/"); err != nil {
		t.Fatal(err)
	}
	s := openOn(t, m)
	mustCommit(t, s, Sync, kv{k: "k", v: "v"})
	crashLive(s, m.Crash)
	s = openOn(t, m)
	defer s.Close()
	if got := get(t, s, "k"); got != "v" {
		t.Errorf("after a crash, a synced key in a directory Open created: got %q, want %q", got, "v")
	}
}

// TestGateRefusesCallsWhileCloseWaits pins why the store uses a gate rather
// than a RWMutex: a call made while Close waits for another call (a Get from
// a Scan callback) is refused instead of deadlocking.
func TestGateRefusesCallsWhileCloseWaits(t *testing.T) {
	var g gate
	g.init()
	if !g.enter() {
		t.Fatal("enter on an open gate refused")
	}
	closed := make(chan bool)
	go func() { closed <- g.close() }()
	for !g.isClosing() {
		runtime.Gosched() // wait for close to start waiting; no timing involved
	}
	if g.enter() {
		t.Errorf("enter while close waits: admitted, want refused")
	}
	g.exit()
	if !<-closed {
		t.Errorf("first close: got false, want true")
	}
	if g.close() {
		t.Errorf("second close: got true, want false")
	}
}

func (g *gate) isClosing() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.closed
}

// TestCompactionsRunUnderTheStoresScheduler checks that the compaction
// scheduler the store installs (see pebbleOptions) grants compactions: L0
// files pile up from flushes until Pebble must compact them. A broken
// scheduler makes this test wait until go test's timeout.
func TestCompactionsRunUnderTheStoresScheduler(t *testing.T) {
	s := openOn(t, vfs.NewMem())
	defer s.Close()
	for round := range 12 {
		for g := range uint64(50) {
			mustCommit(t, s, NoSync, kv{k: string(HardStateKey(g)), v: fmt.Sprintf("round %d", round)})
		}
		if err := s.db.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	for s.db.Metrics().Compact.Count == 0 {
		runtime.Gosched() // Pebble compacts in the background; nothing here is timed
	}
	if got := get(t, s, string(HardStateKey(49))); got != "round 11" {
		t.Errorf("after compactions: got %q, want %q", got, "round 11")
	}
}

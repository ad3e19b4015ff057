package log

import (
	"bytes"
	"encoding/binary"
	"math"
	"strings"
	"testing"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/base/vfs"
	"github.com/ferry-mq/ferry/internal/storage/log/batch"
)

// TestWriteValidatedStoresWhatWriteStores writes the same batches with
// Write into one log and WriteValidated into another: positions, terms and
// stored bytes must be the same, across segment rolls and term changes.
func TestWriteValidatedStoresWhatWriteStores(t *testing.T) {
	clock, fs := base.NewFakeClock(epoch), vfs.NewMem()
	a := mustOpen(t, memOptions(fs, clock))
	defer a.Close()
	ob := memOptions(fs, clock)
	ob.Dir = "/data/validated"
	b := mustOpen(t, ob)
	defer b.Close()
	for i := range 40 {
		term := uint64(1 + i/10)
		bt := mkBatch(t, 1+i%3, 50+i, int64(i), byte(i))
		pa, errA := a.Write(term, bt)
		pb, errB := b.WriteValidated(term, bt)
		if errA != nil || errB != nil {
			t.Fatalf("batch %d: Write: %v, WriteValidated: %v", i, errA, errB)
		}
		if pb != pa {
			t.Fatalf("batch %d: WriteValidated at %+v, Write at %+v", i, pb, pa)
		}
	}
	if err := SyncAll(a, b); err != nil {
		t.Fatal(err)
	}
	if n := len(a.segs); n < 2 {
		t.Fatalf("the test needs segment rolls: %d segments", n)
	}
	got, err := b.Entries(1, 41, math.MaxInt)
	if err != nil {
		t.Fatal(err)
	}
	want, err := a.Entries(1, 41, math.MaxInt)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("entries: got %d, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("entry %d differs:\n got %x\nwant %x", i+1, got[i], want[i])
		}
	}
	if err := checkIndexes(b); err != nil {
		t.Fatal(err)
	}
}

// TestWriteValidatedStillChecksTheHeaderAndTerms: skipping the CRC and the
// record walk must not let a caller misplace offsets, index entries or
// terms; those checks are the same as Write's.
func TestWriteValidatedStillChecksTheHeaderAndTerms(t *testing.T) {
	l := mustOpen(t, memOptions(vfs.NewMem(), base.NewFakeClock(epoch)))
	defer l.Close()
	good := mkBatch(t, 2, 10, 0, 0)
	if _, err := l.WriteValidated(5, good); err != nil {
		t.Fatal(err)
	}
	gap := bytes.Clone(good) // lastOffsetDelta 2 with 2 records, CRC recomputed
	binary.BigEndian.PutUint32(gap[23:], 2)
	binary.BigEndian.PutUint32(gap[17:], batch.Checksum(gap[21:]))
	long := append(bytes.Clone(good), 0)
	cases := []struct {
		name string
		term uint64
		b    []byte
		code base.Code
	}{
		{"truncated", 5, good[:len(good)-1], base.CodeCorrupt},
		{"trailing bytes", 5, long, base.CodeCorrupt},
		{"short header", 5, good[:batch.HeaderSize-1], base.CodeCorrupt},
		{"offsets not one per record", 5, gap, base.CodeInvalidArgument},
		{"term going back", 4, good, base.CodeInvalidArgument},
		{"term over int32", math.MaxInt32 + 1, good, base.CodeInvalidArgument},
	}
	for _, tc := range cases {
		if base.InvariantsEnabled && tc.code == base.CodeCorrupt {
			continue // these fail Validate: TestWriteValidatedOfADamagedBatchIsABug
		}
		_, err := l.WriteValidated(tc.term, tc.b)
		wantCode(t, tc.name, err, tc.code)
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	if got := l.LastIndex(); got != 1 {
		t.Errorf("LastIndex after refused writes: got %d, want 1", got)
	}
}

// TestWriteValidatedOfADamagedBatchIsABug: the contract is that the caller
// validated the batch. Under ferry_invariants a batch that does not
// validate panics with BUG; without, it is stored as given (the log no
// longer checks its CRC), and the read path, which checks every batch's
// CRC, refuses to serve it.
func TestWriteValidatedOfADamagedBatchIsABug(t *testing.T) {
	l := mustOpen(t, memOptions(vfs.NewMem(), base.NewFakeClock(epoch)))
	defer l.Close()
	bad := mkBatch(t, 1, 10, 0, 0)
	bad[len(bad)-2] ^= 1
	if base.InvariantsEnabled {
		defer func() {
			msg, _ := recover().(string)
			if !strings.HasPrefix(msg, "BUG: ") || !strings.Contains(msg, "WriteValidated") {
				t.Fatalf("recovered %q, want a BUG panic naming WriteValidated", msg)
			}
		}()
		l.WriteValidated(1, bad)
		t.Fatal("WriteValidated of a damaged batch did not panic under ferry_invariants")
	}
	if _, err := l.Write(1, bad); base.CodeOf(err) != base.CodeCorrupt {
		t.Fatalf("Write of a damaged batch: got %v, want corrupt", err)
	}
	if _, err := l.WriteValidated(1, bad); err != nil {
		t.Fatalf("WriteValidated of a damaged batch: got %v, want it stored as given", err)
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Entries(1, 2, math.MaxInt); base.CodeOf(err) != base.CodeCorrupt {
		t.Fatalf("reading the damaged batch back: got %v, want corrupt", err)
	}
}

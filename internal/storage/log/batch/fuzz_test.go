package batch

import (
	"testing"

	"github.com/ferry-mq/ferry/internal/base"
)

func fuzzSeeds(f *testing.F) {
	f.Add(build(f, sampleHeader, sample))
	f.Add(build(f, Header{}, sample[:1]))
	c, _ := AppendControl(nil, Header{}, 1, ControlFerryMin, []byte("payload"))
	f.Add(c)
	f.Add(rawRecordBatch(1, recordWithHeaders(3, false)))
	f.Add([]byte{})
	f.Add(make([]byte, HeaderSize))
}

// FuzzValidate feeds arbitrary bytes to every decoder of the package. They
// must not panic, and what Validate accepts must iterate cleanly with the
// declared number of records, each inside the batch.
func FuzzValidate(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = ParseHeader(b)
		if it, err := Records(b); err == nil {
			for _, ok := it.Next(); ok; _, ok = it.Next() {
			}
		}
		_, _, _ = ParseControl(b)
		h, err := Validate(b)
		if err != nil {
			if base.CodeOf(err) != base.CodeCorrupt && base.CodeOf(err) != base.CodeTooLarge {
				t.Fatalf("Validate error with code %v: %v", base.CodeOf(err), err)
			}
			return
		}
		if h.Size() != len(b) || h.Size() > base.BatchBytesMax {
			t.Fatalf("accepted batch of size %d with %d bytes", h.Size(), len(b))
		}
		if h.Attributes.Compression() != CompressionNone {
			return
		}
		it, err := Records(b)
		if err != nil {
			t.Fatalf("Validate accepted but Records failed: %v", err)
		}
		n := int32(0)
		for r, ok := it.Next(); ok; r, ok = it.Next() {
			n++
			hi := r.Headers()
			got := 0
			for _, _, _, ok := hi.Next(); ok; _, _, _, ok = hi.Next() {
				got++
			}
			if got != r.HeaderCount {
				t.Fatalf("record %d: %d headers iterated, %d counted", n, got, r.HeaderCount)
			}
		}
		if it.Err() != nil || n != h.RecordCount {
			t.Fatalf("Validate accepted; iteration gave %d of %d records, err %v", n, h.RecordCount, it.Err())
		}
	})
}

// FuzzBuildRoundTrip builds a batch from fuzzed records and checks that
// iteration returns exactly them.
func FuzzBuildRoundTrip(f *testing.F) {
	f.Add(int64(0), []byte("k"), []byte("v"), []byte("hk"), uint8(3))
	f.Add(int64(-1), []byte(nil), []byte{}, []byte(nil), uint8(0))
	f.Fuzz(func(t *testing.T, ts int64, key, value, hkey []byte, n uint8) {
		var bld Builder
		bld.Begin(nil, Header{ProducerID: -1})
		hdrs := []RecordHeader{{Key: hkey, Value: value}}
		for i := range int(n%8) + 1 {
			if err := bld.Add(ts+int64(i), key, value, hdrs); err != nil {
				t.Fatal(err)
			}
		}
		b, err := bld.Finish()
		if err != nil {
			t.Fatal(err)
		}
		h, err := Validate(b)
		if err != nil {
			t.Fatalf("Validate of a built batch: %v", err)
		}
		it, _ := Records(b)
		i := 0
		for r, ok := it.Next(); ok; r, ok = it.Next() {
			if h.BaseTimestamp+r.TimestampDelta != ts+int64(i) || string(r.Key) != string(key) || r.KeyNull != (key == nil) ||
				string(r.Value) != string(value) || r.HeaderCount != 1 {
				t.Fatalf("record %d decoded differently", i)
			}
			i++
		}
		if i != int(n%8)+1 || it.Err() != nil {
			t.Fatalf("got %d records err %v", i, it.Err())
		}
	})
}

package queue

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"runtime"
	"testing"
	"time"
)

// FuzzDecode: Decode never panics, allocates at most a small multiple of
// its input, and accepts only canonical encodings (Encode gives the input
// back). Run: go test ./internal/queue -run '^$' -fuzz FuzzDecode
func FuzzDecode(f *testing.F) {
	for _, cmd := range sampleCommands() {
		b, err := Encode(nil, cmd)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{byte(kindEnqueue), 0, 0xff, 0xff, 0x03})
	f.Fuzz(func(t *testing.T, b []byte) {
		var cmd Command
		var err error
		alloc := allocated(func() { cmd, err = Decode(b) })
		if alloc > uint64(32*len(b)+4096) {
			t.Fatalf("Decode of %d bytes allocated %d bytes", len(b), alloc)
		}
		if err != nil {
			return
		}
		again, err := Encode(nil, cmd)
		if err != nil {
			t.Fatalf("Encode of a decoded command: %v", err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("not canonical: decoded %x, re-encoded %x", b, again)
		}
	})
}

// allocated returns the bytes f allocates: the least of three runs, since
// the fuzzing engine's own goroutines allocate at the same time and only
// ever add to the count.
func allocated(f func()) uint64 {
	least := ^uint64(0)
	for i := 0; i < 3; i++ {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		f()
		runtime.ReadMemStats(&after)
		least = min(least, after.TotalAlloc-before.TotalAlloc)
	}
	return least
}

// fuzzQueues builds queues in varied states for snapshot seeds.
func fuzzQueues(t testing.TB) []*Queue {
	c1, c2 := ConsumerID{"a", "1"}, ConsumerID{"b", "1"}
	scripts := [][]Command{
		nil,
		{&Enqueue{Now: 10, Messages: []Message{{Ref: Ref{1, 0}, Bytes: 3}, {Ref: Ref{1, 1}, Priority: 7, TTLms: 100}}}},
		{
			&Configure{Now: 1, Config: func() Config {
				c := DefaultConfig()
				c.DeadLetterTarget, c.SingleActiveConsumer, c.AckTimeoutMs = "dlq", true, 1000
				c.Retry.Default = Schedule{Kind: BackoffExponential, DelayMs: 50, Jitter: true}
				return c
			}()},
			&Enqueue{Now: 10, Messages: []Message{
				{Ref: Ref{1, 0}, OrderingKey: "k", Sender: SenderID{7, 1}}, {Ref: Ref{1, 1}, OrderingKey: "k", Sender: SenderID{7, 2}},
				{Ref: Ref{1, 2}, OrderingKey: "k", TTLms: 5000, Sender: SenderID{9, 4}},
				{Ref: Ref{2, 0}, NotBeforeMs: 500, DedupeID: "x"}, {Ref: Ref{2, 1}, DedupeID: "a-long-dedupe-id-over-sixteen"}, {Ref: Ref{2, 2}, Priority: 3, Sender: SenderID{7, 4}},
			}},
			&Subscribe{Now: 11, Consumer: c1, PrefetchCount: 2},
			&Subscribe{Now: 12, Consumer: c2, PrefetchCount: 1, Priority: 2},
			&Get{Now: 13, Consumer: ConsumerID{"a", "get"}},
			&Return{Now: 14, Consumer: c1, DeliveryIDs: []uint64{1}, Requeue: true},
			&Return{Now: 15, Consumer: c1, UpTo: 10},
			// The delayed 2.0 and the held 1.1 move to entry 9.
			&Relocate{Now: 16, Cutoff: 3, Index: 9, Refs: []Ref{{1, 0}, {1, 1}, {1, 2}, {2, 0}, {2, 1}, {2, 2}}},
		},
	}
	var qs []*Queue
	for _, script := range scripts {
		q, err := New(DefaultConfig(), 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, cmd := range script {
			q.Apply(cmd)
		}
		qs = append(qs, q)
	}
	return qs
}

func withChecksum(body []byte) []byte {
	return binary.LittleEndian.AppendUint32(append([]byte{}, body...), crc32.Checksum(body, castagnoli))
}

// FuzzRestore: Restore never panics, allocates in proportion to its input,
// and accepts only canonical snapshots of consistent states: a restored
// queue snapshots back to the same bytes and stays consistent under
// further commands. The fuzzer mutates the body and the target appends
// the checksum, so mutations reach the parser; inputs whose last byte is
// odd are also tried as they are, checksum included.
// Run: go test ./internal/queue -run '^$' -fuzz FuzzRestore
func FuzzRestore(f *testing.F) {
	for _, q := range fuzzQueues(f) {
		var b bytes.Buffer
		if err := q.Snapshot(&b); err != nil {
			f.Fatal(err)
		}
		f.Add(b.Bytes()[:b.Len()-4])
	}
	f.Add([]byte("FQS\x01"))
	f.Fuzz(func(t *testing.T, body []byte) {
		tm := time.AfterFunc(5*time.Second, func() { panic(fmt.Sprintf("slow input %x", body)) })
		defer tm.Stop()
		input := withChecksum(body)
		if len(body) > 0 && body[len(body)-1]&1 == 1 {
			input = body
		}
		var q *Queue
		var err error
		alloc := allocated(func() {
			q = newQueue(defaultLimits(), Config{})
			err = q.Restore(bytes.NewReader(input))
		})
		if alloc > uint64(300*len(input)+2<<20) {
			t.Fatalf("Restore of %d bytes allocated %d bytes", len(input), alloc)
		}
		if err != nil {
			return
		}
		var out bytes.Buffer
		if err := q.Snapshot(&out); err != nil {
			t.Fatal(err)
		}
		if input[len(snapshotMagic)] != snapshotVersion {
			// An older version's snapshot is written again in the
			// current one, which must then be canonical.
			input = bytes.Clone(out.Bytes())
			again := newQueue(defaultLimits(), Config{})
			if err := again.Restore(bytes.NewReader(input)); err != nil {
				t.Fatalf("an older snapshot, written again, does not restore: %v", err)
			}
			out.Reset()
			if err := again.Snapshot(&out); err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(out.Bytes(), input) {
			t.Fatalf("restored snapshot is not canonical:\nin  %x\nout %x", input, out.Bytes())
		}
		now := q.Now()
		for _, cmd := range []Command{
			&Tick{Now: now}, &Enqueue{Now: now, Messages: []Message{{Ref: Ref{Index: 1 << 62}, OrderingKey: "k", Sender: SenderID{7, 3}}}},
			&Subscribe{Now: now, Consumer: ConsumerID{"fuzz", "1"}}, &Tick{Now: now + 1_000_000}, &Purge{Now: now + 2_000_000},
			&ConsumerDown{Now: now + 2_000_001, Owner: "a"}, &Tick{Now: now + 1e10},
		} {
			q.Apply(cmd)
			if err := q.check(); err != nil {
				t.Fatalf("after %T on a restored queue: %v", cmd, err)
			}
		}
	})
}

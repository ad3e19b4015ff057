package queue

import (
	"bytes"
	"runtime"
	"testing"

	"github.com/ferry-mq/ferry/internal/base"
)

// BenchmarkEnqueueDeliverSettle is the hot path: one message enqueued,
// delivered to a consumer with credit and settled, per op (three commands,
// default configuration: ack timeouts on, priorities on).
// Run: go test ./internal/queue -run '^$' -bench EnqueueDeliverSettle -benchmem
func BenchmarkEnqueueDeliverSettle(b *testing.B) {
	q, err := New(DefaultConfig(), 0)
	if err != nil {
		b.Fatal(err)
	}
	c := ConsumerID{Owner: "conn", Name: "ch1"}
	q.Apply(&Subscribe{Consumer: c, PrefetchCount: 100})
	enq := &Enqueue{Messages: make([]Message, 1)}
	settle := &Settle{Consumer: c, DeliveryIDs: make([]uint64, 1)}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		now := int64(i)
		enq.Now = now
		enq.Messages[0] = Message{Ref: Ref{Index: uint64(i + 1)}, Bytes: 100}
		_, effects := q.Apply(enq)
		if len(effects) == 0 || effects[0].Kind != EffectDeliver {
			b.Fatalf("enqueue %d: no delivery: %v", i, effects)
		}
		settle.Now = now
		settle.DeliveryIDs[0] = effects[0].DeliveryID
		if res, _ := q.Apply(settle); res.Count != 1 {
			b.Fatalf("settle %d: %+v", i, res)
		}
	}
}

// BenchmarkEnqueueDeliverSettleBatch is the same with 100 messages per
// Enqueue and one multiple-ack Settle per batch; ns/op is per message.
// "plain" has no senders, "senders" four publishers' lanes taking turns
// in runs of 25, as the broker's batches mix them.
func BenchmarkEnqueueDeliverSettleBatch(b *testing.B) {
	b.Run("plain", func(b *testing.B) { enqueueDeliverSettleBatch(b, 0) })
	b.Run("senders", func(b *testing.B) { enqueueDeliverSettleBatch(b, 4) })
}

func enqueueDeliverSettleBatch(b *testing.B, lanes int) {
	const batch, run = 100, 25
	q, err := New(DefaultConfig(), 0)
	if err != nil {
		b.Fatal(err)
	}
	c := ConsumerID{Owner: "conn", Name: "ch1"}
	q.Apply(&Subscribe{Consumer: c, PrefetchCount: 1000})
	enq := &Enqueue{Messages: make([]Message, batch)}
	settle := &Settle{Consumer: c}
	seqs := make([]uint64, lanes)
	b.ReportAllocs()
	b.ResetTimer()
	idx := uint64(0)
	for i := 0; i < b.N; i += batch {
		idx++
		for j := range enq.Messages {
			enq.Messages[j] = Message{Ref: Ref{Index: idx, Slot: uint32(j)}, Bytes: 100}
			if lanes > 0 {
				l := (j / run) % lanes
				seqs[l]++
				enq.Messages[j].Sender = SenderID{Lane: uint64(l + 1), Seq: seqs[l]}
			}
		}
		_, effects := q.Apply(enq)
		for _, e := range effects {
			if e.Kind == EffectDeliver {
				settle.UpTo = e.DeliveryID
			}
		}
		if res, _ := q.Apply(settle); res.Count != batch {
			b.Fatalf("settle: %+v", res)
		}
	}
}

// BenchmarkDelayedRelease releases delayed messages one Tick at a time
// with at least 100,000 others pending; ns/op is the time per release.
// The owner ticks at the time each Wake effect names, so the release
// happens in the very millisecond it is due: late-ms reports the worst
// lateness, which the design bounds by the owner's timer, not the queue.
// Run: go test ./internal/queue -run '^$' -bench DelayedRelease -benchmem
func BenchmarkDelayedRelease(b *testing.B) {
	const pending = 100_000
	q, err := New(DefaultConfig(), 0)
	if err != nil {
		b.Fatal(err)
	}
	total := b.N + pending
	enq := &Enqueue{Now: 0, Messages: make([]Message, 0, 1000)}
	for i := 0; i < total; i += cap(enq.Messages) {
		enq.Messages = enq.Messages[:0]
		for j := i; j < min(total, i+cap(enq.Messages)); j++ {
			// Due times 1, 2, 3... ms, enqueued in a scrambled order so the
			// heap does real work.
			due := int64(j*7919%total) + 1
			enq.Messages = append(enq.Messages, Message{Ref: Ref{Index: uint64(j + 1)}, NotBeforeMs: due})
		}
		if res, _ := q.Apply(enq); res.Err != nil {
			b.Fatal(res.Err)
		}
	}
	wake, ok := q.NextWake()
	if !ok || wake != 1 {
		b.Fatalf("first wake %d %v, want 1", wake, ok)
	}
	tick := &Tick{}
	late := int64(0)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		tick.Now = wake
		before := q.Stats().Ready
		_, effects := q.Apply(tick)
		if q.Stats().Ready != before+1 {
			b.Fatalf("tick at %d released %d messages, want 1", wake, q.Stats().Ready-before)
		}
		due := int64(i + 1)
		late = max(late, tick.Now-due)
		for _, e := range effects {
			if e.Kind == EffectWake {
				wake = e.AtMs
			}
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(late), "late-ms")
}

// BenchmarkReadyMessageMemory enqueues 10 million ready messages and
// reports the heap they take per message (the budget is 64 B/msg): 1,000
// per log entry, and one per entry (a lone publisher), where each message
// has a body count of its own (places).
// Run: go test ./internal/queue -run '^$' -bench ReadyMessageMemory -benchtime 1x
func BenchmarkReadyMessageMemory(b *testing.B) {
	for _, tc := range []struct {
		name     string
		ttl      uint64
		perEntry int
	}{{"plain", 0, 1000}, {"with-ttl", 3_600_000, 1000}, {"one-per-entry", 0, 1}} {
		b.Run(tc.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				b.ReportMetric(readyBytesPerMessage(b, 10_000_000, tc.ttl, tc.perEntry), "B/msg")
			}
		})
	}
}

// readyQueue returns a queue of n ready messages of 1,000 bytes, in
// entries of perEntry messages across three priorities, each with ttl (0:
// none).
func readyQueue(b *testing.B, n int, ttl uint64, perEntry int) *Queue {
	q, err := New(DefaultConfig(), 0)
	if err != nil {
		b.Fatal(err)
	}
	enq := &Enqueue{Messages: make([]Message, perEntry)}
	for i := 0; i < n; i += len(enq.Messages) {
		for j := range enq.Messages {
			enq.Messages[j] = Message{Ref: Ref{Index: uint64(i/len(enq.Messages) + 1), Slot: uint32(j)}, Bytes: 1000, Priority: uint8((i + j) % 3), TTLms: ttl}
		}
		if res, _ := q.Apply(enq); res.Err != nil {
			b.Fatal(res.Err)
		}
	}
	return q
}

func readyBytesPerMessage(b *testing.B, n int, ttl uint64, perEntry int) float64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	q := readyQueue(b, n, ttl, perEntry)
	runtime.GC()
	runtime.ReadMemStats(&after)
	if got := q.Stats().Ready; got != n {
		b.Fatalf("%d ready, want %d", got, n)
	}
	runtime.KeepAlive(q)
	return float64(after.HeapAlloc-before.HeapAlloc) / float64(n)
}

// BenchmarkSnapshot writes the snapshot of a queue of 1M ready messages
// (readyQueue's): the time its group holds its committed entries back
// (replication writes it off the engine loop). It reports ns and snapshot
// bytes per message.
// Run: go test ./internal/queue -run '^$' -bench Snapshot -benchtime 5x
func BenchmarkSnapshot(b *testing.B) {
	const n = 1_000_000
	q := readyQueue(b, n, 0, 1000)
	var w countingDiscard
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w = 0
		if err := q.Snapshot(&w); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/msg")
	b.ReportMetric(float64(w)/n, "B/msg")
}

// BenchmarkRestore restores the snapshot of BenchmarkSnapshot's queue:
// what a follower installing a leader's snapshot, or a node opening a
// queue, spends per message (replication restores a received snapshot
// off the engine loop; before, that loop and every group on it waited).
// Run: go test ./internal/queue -run '^$' -bench Restore -benchtime 5x
func BenchmarkRestore(b *testing.B) {
	const n = 1_000_000
	var snap bytes.Buffer
	if err := readyQueue(b, n, 0, 1000).Snapshot(&snap); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		q, err := New(DefaultConfig(), 0)
		if err != nil {
			b.Fatal(err)
		}
		if err := q.Restore(bytes.NewReader(snap.Bytes())); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/msg")
}

type countingDiscard int

func (c *countingDiscard) Write(p []byte) (int, error) {
	*c += countingDiscard(len(p))
	return len(p), nil
}

// BenchmarkRelocatable asks for the relocation candidates of a queue with
// 1,000,000 old delayed messages, as a queue's leader does every
// relocation pass while old messages hold much of its log; ns/op and
// B/op are per pass, which holds the queue's lock throughout.
// Run: go test ./internal/queue -run '^$' -bench Relocatable -benchmem
func BenchmarkRelocatable(b *testing.B) {
	const pending = 1_000_000
	q, err := New(DefaultConfig(), 0)
	if err != nil {
		b.Fatal(err)
	}
	enq := &Enqueue{Messages: make([]Message, 1000)}
	for i := 0; i < pending; i += len(enq.Messages) {
		for j := range enq.Messages {
			enq.Messages[j] = Message{Ref: Ref{Index: uint64(i + j + 1)}, Bytes: 16, NotBeforeMs: base.QueueTimeMsMax}
		}
		if res, _ := q.Apply(enq); res.Err != nil {
			b.Fatal(res.Err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		list, cut := q.Relocatable(pending+1, base.QueueRelocateMessagesMax, base.QueueRelocateBytesMax)
		if len(list) != base.QueueRelocateMessagesMax || cut != base.QueueRelocateMessagesMax+1 {
			b.Fatalf("listed %d, cut at %d", len(list), cut)
		}
	}
}

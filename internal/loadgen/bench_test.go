package loadgen

import (
	"context"
	"testing"

	"github.com/ferry-mq/ferry/internal/base"
)

// BenchmarkLedgerReceive is the consumer-side cost of accounting for one
// message: decode the header, set one bit. go test -bench Ledger ./internal/loadgen
func BenchmarkLedgerReceive(b *testing.B) {
	l, _ := NewLedger(1, 1, []Flow{{0, 0}})
	msg := make([]byte, 128)
	for range b.N {
		l.Send(0)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	b.ResetTimer()
	for i := range b.N {
		EncodeHeader(msg, Header{RunID: 1, Seq: uint64(i)})
		if _, r := l.Receive(0, 1, msg); r != ReceiptFresh {
			b.Fatalf("receipt %d", r)
		}
	}
}

// BenchmarkRunInMemory is the load generator's own ceiling: a run against
// an in-memory broker, publish and consume concurrently.
// go test -bench RunInMemory ./internal/loadgen
func BenchmarkRunInMemory(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(128)
	spec := Spec{
		Topologies: []Topology{{Route: "r", Queues: []string{"q"}}},
		Producers:  1, BodyBytes: 128, InFlight: 256, Prefetch: 1000,
		Messages: uint64(min(b.N, memQueueDepth)), RunID: 1, Clock: base.RealClock{},
	}
	for done := 0; done < b.N; done += int(spec.Messages) {
		if _, err := Run(context.Background(), newMemBroker(), spec); err != nil {
			b.Fatal(err)
		}
	}
}

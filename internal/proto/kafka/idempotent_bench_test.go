package kafka

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestKafkaIdempotentProduceReport measures what serialising an
// idempotent producer's batches per partition costs: one franz-go
// producer (acks=all, 1 KiB records, linger 5 ms, 64 KiB batches) on one
// partition, with and without idempotence, alternated so that all see
// the same machine:
//
//	FERRY_KAFKA_BENCH=1 FERRY_BENCH_DIR=/work/tmp go test ./internal/proto/kafka -run TestKafkaIdempotentProduceReport -v -timeout 10m
//
// Figures: docs/benchmarks.md ("Kafka", idempotent produce).
func TestKafkaIdempotentProduceReport(t *testing.T) {
	if os.Getenv("FERRY_KAFKA_BENCH") == "" {
		t.Skip("set FERRY_KAFKA_BENCH=1 to run the idempotent produce report (a minute)")
	}
	dir := benchDir(t)
	b, srv := startBrokerIn(t, filepath.Join(dir, "ferry"))
	createTopics(t, srv.addr, 1, "idem-1", "plain-1")
	const d = 5 * time.Second
	var runN func(topic string, producers int, extra ...kgo.Opt) (float64, float64)
	// run returns MB/s and the log entries written per fsync: the
	// batches one durable point covers, which the machine's load does not
	// change as much as it changes MB/s.
	run := func(topic string, extra ...kgo.Opt) (float64, float64) {
		return runN(topic, 1, extra...)
	}
	runN = func(topic string, producers int, extra ...kgo.Opt) (float64, float64) {
		before := b.EngineMetrics()
		mbps := ferryProduceMBps(t, srv.addr, topic, producers, d, extra...)
		after := b.EngineMetrics()
		return mbps, float64(after.EntriesWritten-before.EntriesWritten) / float64(max(after.LogSyncs-before.LogSyncs, 1))
	}
	// franz-go keeps one produce request in flight per broker without
	// idempotence, five with it; the third run lifts the first to five,
	// which the broker pipelines: what idempotent produce would reach if
	// its batches were pipelined too.
	for round := range 3 {
		idem, idemPer := run("idem-1")
		plain, plainPer := run("plain-1", kgo.DisableIdempotentWrite())
		piped, pipedPer := run("plain-1", kgo.DisableIdempotentWrite(), kgo.MaxProduceRequestsInflightPerBroker(5))
		t.Logf("round %d, 1 producer, 1 partition: idempotent (5 in flight) %.1f MB/s, %.2f batches/fsync; "+
			"not idempotent, 1 in flight %.1f MB/s, %.2f; not idempotent, 5 in flight %.1f MB/s, %.2f",
			round, idem, idemPer, plain, plainPer, piped, pipedPer)
	}
	// Several idempotent producers on one partition: their batches need
	// not wait for each other's (sequences are per producer).
	for round := range 2 {
		many, manyPer := runN("idem-1", 4)
		t.Logf("round %d, 4 idempotent producers, 1 partition: %.1f MB/s, %.2f batches/fsync", round, many, manyPer)
	}
}

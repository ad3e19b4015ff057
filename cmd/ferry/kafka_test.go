package main

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestServeRoundTripOverKafkaSurvivesRestart produces with acks=all
// through franz-go, stops the node with SIGTERM, restarts it and fetches
// every acknowledged record from the start of the topic.
func TestServeRoundTripOverKafkaSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	n := startNode(t, dir)
	if n.addr("kafka") == "" {
		t.Fatalf("no kafka listening line:\n%s", n.stderr.String())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	const topic, count = "cli-e2e-kafka", 100
	cl, err := kgo.NewClient(kgo.SeedBrokers(n.addr("kafka")), kgo.AllowAutoTopicCreation(), kgo.RequiredAcks(kgo.AllISRAcks()))
	if err != nil {
		t.Fatal(err)
	}
	records := make([]*kgo.Record, count)
	for i := range records {
		records[i] = &kgo.Record{Topic: topic, Key: []byte("k"), Value: []byte(fmt.Sprintf("r-%03d", i))}
	}
	if err := cl.ProduceSync(ctx, records...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	cl.Close()
	if code := n.stop(t, syscall.SIGTERM); code != ExitOK {
		t.Fatalf("exit %d after SIGTERM:\n%s", code, n.stderr.String())
	}

	n = startNode(t, dir)
	defer n.stop(t, syscall.SIGTERM)
	cl, err = kgo.NewClient(kgo.SeedBrokers(n.addr("kafka")), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	got := 0
	for got < count {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("after restart, only %d of %d acknowledged records arrived", got, count)
		}
		for _, e := range fs.Errors() {
			if e.Err != nil && ctx.Err() == nil {
				t.Logf("fetch error (retried by the client): %v", e.Err)
			}
		}
		fs.EachRecord(func(r *kgo.Record) {
			if want := fmt.Sprintf("r-%03d", got); string(r.Value) != want {
				t.Fatalf("after restart, record %d = %q, want %q", got, r.Value, want)
			}
			got++
		})
	}
}

package main

import (
	"context"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/ferry-mq/ferry/internal/loadgen"
)

// The targets are exercised against real brokers by bench/compare.sh; these
// tests run them once each against a broker named in the environment, e.g.
//
//	BENCH_AMQP_URL=amqp://guest:guest@127.0.0.1:5672/ BENCH_NATS_URL=nats://127.0.0.1:4222 \
//	BENCH_MQTT_URL=tcp://127.0.0.1:1883 BENCH_KAFKA_ADDR=127.0.0.1:9092 go test ./bench/driver/
//
// and skip without one.
func TestEveryTargetAccountsForAFanoutAgainstARealBroker(t *testing.T) {
	cases := []struct{ env, target string }{
		{"BENCH_AMQP_URL", "amqp-quorum"},
		{"BENCH_AMQP_URL", "amqp-classic"},
		{"BENCH_NATS_URL", "jetstream"},
		{"BENCH_MQTT_URL", "mqtt"},
		{"BENCH_KAFKA_ADDR", "kafka"},
	}
	for _, c := range cases {
		t.Run(c.target, func(t *testing.T) {
			addr := os.Getenv(c.env)
			if addr == "" {
				t.Skipf("%s is not set: no broker to run against", c.env)
			}
			o := options{target: c.target, addr: addr, workload: "fanout", fanout: 3, size: 256,
				producers: 2, inflight: 32, prefetch: 100, partitions: 1, duration: time.Second}
			target, err := newTarget(o)
			if err != nil {
				t.Fatal(err)
			}
			w, err := newWorkload(o)
			if err != nil {
				t.Fatal(err)
			}
			w.spec.Duration, w.spec.Messages, w.spec.RunID = 0, 500, rand.Uint32()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			res, err := loadgen.Run(ctx, target, w.spec)
			if err != nil {
				t.Fatalf("Run: %v (tally %+v)", err, res.Tally)
			}
			want := loadgen.Tally{Sent: 1000, Confirmed: 1000, Received: 3000}
			if got := res.Tally; got.Sent != want.Sent || got.Confirmed != want.Confirmed || got.Received != want.Received || got.Lost != 0 {
				t.Errorf("tally: got %+v, want %+v", got, want)
			}
		})
	}
}

package broker

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-mq/ferry/internal/base/vfs"
)

// benchNode opens a durable single node on the real disk (t.TempDir), as
// a production node runs: segmented logs, Pebble, fsync before confirm.
func benchNode(b *testing.B) *Broker {
	b.Helper()
	return openNode(b, nodeOpts{fs: vfs.Default, dir: b.TempDir(), tweak: func(c *Config) {
		c.TickInterval = 0 // the production default
	}})
}

// BenchmarkPublishConsumeAck: 1 KiB messages through one durable queue,
// 4 producers pipelining publishes (up to 1,000 unconfirmed each, as AMQP
// publishers with confirms do), 4 consumers with prefetch 1,000 acking
// every delivery. b.N is the number of messages; msgs/s is what counts.
//
//	go test ./internal/broker -run XXX -bench PublishConsumeAck -benchtime 200000x
func BenchmarkPublishConsumeAck(b *testing.B) {
	const producers, consumers, window, prefetch = 4, 4, 1000, 1000
	node := benchNode(b)
	c := guestConn(b, node)
	ctx := context.Background()
	declare(b, c, "bench")
	body := make([]byte, 1024)
	var received atomic.Int64
	done := make(chan struct{})
	total := int64(b.N)
	for i := range consumers {
		var s *Subscription
		var mu sync.Mutex
		var err error
		mu.Lock()
		s, err = c.Subscribe(ctx, SubscribeOptions{Queue: "bench", Tag: fmt.Sprint("c", i), PrefetchCount: prefetch},
			func(d Delivery) {
				mu.Lock()
				sub := s
				mu.Unlock()
				if err := sub.Ack(d.DeliveryID, false); err != nil {
					panic(err)
				}
				if received.Add(1) == total {
					close(done)
				}
			}, nil)
		mu.Unlock()
		if err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	var failed atomic.Value
	per := b.N / producers
	for p := range producers {
		n := per
		if p == producers-1 {
			n = b.N - per*(producers-1)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem := make(chan struct{}, window)
			for range n {
				sem <- struct{}{}
				c.PublishAsync("", []Message{{RoutingKey: "bench", Body: body}}, PublishOptions{}, func(res []PublishResult, err error) {
					if err == nil {
						err = res[0].Err
					}
					if err != nil {
						failed.Store(err)
					}
					<-sem
				})
			}
		}()
	}
	wg.Wait()
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		b.Fatalf("received %d of %d", received.Load(), total)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
	m := node.engine.Metrics()
	b.ReportMetric(float64(m.LogSyncs)/elapsed.Seconds(), "fsyncs/s")
	b.ReportMetric(float64(m.Iterations)/elapsed.Seconds(), "iter/s")
	b.ReportMetric(float64(m.StateCommits)/elapsed.Seconds(), "commits/s")
}

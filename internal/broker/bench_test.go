package broker

import (
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-mq/ferry/internal/base/vfs"
	"github.com/ferry-mq/ferry/internal/replication"
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
func BenchmarkPublishConsumeAck(b *testing.B) { publishConsumeAck(b, 0) }

// BenchmarkPublishConsumeAckBehindDelayed is BenchmarkPublishConsumeAck
// through a queue that holds 1,000,000 messages delayed by an hour
// (published first, outside the timing): the flow past them should cost
// what it costs without them. It cost 1.5 times as much while the queue's
// floor (the lowest log index a message needs) was found by walking every
// delayed message after each applied batch.
//
//	go test ./internal/broker -run XXX -bench PublishConsumeAckBehindDelayed -benchtime 200000x
func BenchmarkPublishConsumeAckBehindDelayed(b *testing.B) { publishConsumeAck(b, 1_000_000) }

// publishConsumeAck runs BenchmarkPublishConsumeAck after publishing
// delayed messages delayed by an hour.
func publishConsumeAck(b *testing.B, delayed int) {
	const producers, consumers, window, prefetch = 4, 4, 1000, 1000
	node := benchNode(b)
	c := guestConn(b, node)
	declare(b, c, "bench")
	publishBatches(b, c, delayed, Message{RoutingKey: "bench", Body: make([]byte, 16), Delay: time.Hour})
	if st, err := node.QueueStats("/", "bench"); err != nil || st.Delayed != uint64(delayed) {
		b.Fatalf("%d messages delayed (%v), want %d", st.Delayed, err, delayed)
	}
	body := make([]byte, 1024)
	var received atomic.Int64
	done := make(chan struct{})
	total := int64(b.N)
	for i := range consumers {
		subscribeAcking(b, c, SubscribeOptions{Queue: "bench", Tag: fmt.Sprint("c", i), PrefetchCount: prefetch}, &received, total, done)
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

// BenchmarkDrainBacklog: 10,000,000 messages of 64 B published to one
// durable queue (outside the timing), then drained by one consumer with
// prefetch 1,000 acking every delivery. A drain frees the log as it goes,
// and each snapshot that frees it writes the whole remaining state (16 B
// a message), off the engine loop, while the queue holds back what
// commits meanwhile; snapshots and snap-s say how many and how long. b.N
// is ignored: one drain per run.
//
//	go test ./internal/broker -run XXX -bench DrainBacklog -benchtime 1x -timeout 20m
func BenchmarkDrainBacklog(b *testing.B) {
	const n = 10_000_000
	node := benchNode(b)
	d := startDrain(b, node, guestConn(b, node), n)
	start := time.Now()
	select {
	case <-d.done:
	case <-time.After(10 * time.Minute):
		b.Fatalf("received %d of %d", d.received.Load(), n)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(n)/elapsed.Seconds(), "msgs/s")
	d.reportSnapshots(b)
}

// BenchmarkPublishBesideADrain measures what a long queue's snapshots
// cost the other queues of its node: one queue drains a backlog of
// 10,000,000 × 64 B messages, as in BenchmarkDrainBacklog, while another
// client publishes to a second queue, a confirmed 64 B message every
// millisecond. The latency of those publishes is measured from when each
// was due, so a stall counts for every publish it delayed; reported in ms
// (p50, p99, max), with the drain's snapshots. b.N is ignored: one drain
// per run.
//
//	go test ./internal/broker -run XXX -bench PublishBesideADrain -benchtime 1x -timeout 20m
func BenchmarkPublishBesideADrain(b *testing.B) {
	const n = 10_000_000
	node := benchNode(b)
	other := guestConn(b, node) // another client's
	declare(b, other, "beside")
	d := startDrain(b, node, guestConn(b, node), n)
	msg := []Message{{RoutingKey: "beside", Body: make([]byte, 64)}}
	var lat []time.Duration
	pace := time.NewTimer(0)
	defer pace.Stop()
	due := time.Now()
	deadline := due.Add(10 * time.Minute)
	for d.received.Load() < n {
		if due.After(deadline) {
			b.Fatalf("received %d of %d", d.received.Load(), n)
		}
		due = due.Add(time.Millisecond)
		if wait := time.Until(due); wait > 0 {
			pace.Reset(wait)
			select {
			case <-pace.C:
			case <-d.done:
			}
		}
		res, err := other.Publish(context.Background(), "", msg, PublishOptions{})
		if err == nil {
			err = res[0].Err
		}
		if err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(due))
	}
	b.StopTimer()
	slices.Sort(lat)
	ms := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))]) / 1e6 }
	b.ReportMetric(ms(0.5), "p50-ms")
	b.ReportMetric(ms(0.99), "p99-ms")
	b.ReportMetric(ms(1), "max-ms")
	d.reportSnapshots(b)
}

// drain is the workload of BenchmarkDrainBacklog: a backlog in queue
// "backlog" drained by one consumer acking every delivery.
type drain struct {
	node     *Broker
	before   replication.Metrics
	received atomic.Int64
	done     chan struct{} // closed at the last delivery
}

// startDrain publishes n × 64 B to queue "backlog" through c, resets the
// timer and starts the consumer (prefetch 1,000).
func startDrain(b *testing.B, node *Broker, c *Conn, n int) *drain {
	b.Helper()
	declare(b, c, "backlog")
	publishBatches(b, c, n, Message{RoutingKey: "backlog", Body: make([]byte, 64)})
	d := &drain{node: node, before: node.engine.Metrics(), done: make(chan struct{})}
	b.ResetTimer()
	subscribeAcking(b, c, SubscribeOptions{Queue: "backlog", PrefetchCount: 1000}, &d.received, int64(n), d.done)
	return d
}

// reportSnapshots reports how many snapshots the node took since the
// drain started, and the time they took to write.
func (d *drain) reportSnapshots(b *testing.B) {
	after := d.node.engine.Metrics()
	b.ReportMetric(float64(after.Snapshots-d.before.Snapshots), "snapshots")
	b.ReportMetric(after.SnapshotSeconds.Sum-d.before.SnapshotSeconds.Sum, "snap-s")
}

// publishBatches publishes n copies of m, 1,000 to a call, and fails on
// any refusal.
func publishBatches(b *testing.B, c *Conn, n int, m Message) {
	b.Helper()
	for i := 0; i < n; i += 1000 {
		msgs := make([]Message, min(1000, n-i))
		for j := range msgs {
			msgs[j] = m
		}
		res, err := c.Publish(context.Background(), "", msgs, PublishOptions{})
		for _, r := range res {
			err = cmp.Or(err, r.Err)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}

// subscribeAcking subscribes a consumer that acks every delivery and
// counts it in received; the one that makes received total closes done.
func subscribeAcking(b *testing.B, c *Conn, o SubscribeOptions, received *atomic.Int64, total int64, done chan struct{}) {
	b.Helper()
	var s *Subscription
	var mu sync.Mutex
	mu.Lock()
	defer mu.Unlock()
	var err error
	s, err = c.Subscribe(context.Background(), o, func(d Delivery) {
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
	if err != nil {
		b.Fatal(err)
	}
}

// BenchmarkDelayedDeliveryLateness measures how late delayed messages
// are delivered, on the real clock and a durable node on disk: 100,000
// messages are published with delays that make them due one after the
// other over 5 s, starting 10 s after the benchmark starts (so that all
// are pending before the first is due: checked), and one consumer
// (prefetch 1,000, acking each) records each delivery's lateness: the
// time it arrived minus its due time. The due time is taken before the
// publish call, so publish latency counts as lateness (an overestimate);
// delays have millisecond resolution, so a delivery can be up to 1 ms
// early (negative lateness counts as 0). One run per b.N iteration;
// reports p50, p99 and max in ms (goal: p99 < 100 ms).
//
//	go test ./internal/broker -run XXX -bench DelayedDeliveryLateness -benchtime 1x
func BenchmarkDelayedDeliveryLateness(b *testing.B) {
	const n, lead, spread, window = 100_000, 10 * time.Second, 5 * time.Second, 100
	b.ReportAllocs()
	var all []time.Duration
	var fsyncs EngineHistogram
	for range b.N {
		late, f := delayedLateness(b, n, lead, spread, window)
		all = append(all, late...)
		fsyncs.Count, fsyncs.Sum = fsyncs.Count+f.Count, fsyncs.Sum+f.Sum
	}
	slices.Sort(all)
	pct := func(p float64) float64 {
		return float64(all[min(len(all)-1, int(p*float64(len(all))))]) / float64(time.Millisecond)
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(all[len(all)-1])/float64(time.Millisecond), "max-ms")
	// The disk's share: a delayed message is released by a Tick command,
	// which waits for an fsync like any other.
	b.ReportMetric(1000*fsyncs.Sum/float64(max(fsyncs.Count, 1)), "fsync-mean-ms")
}

// delayedLateness runs one round of BenchmarkDelayedDeliveryLateness and
// returns every delivery's lateness and the node's fsync latencies while
// the messages were due.
func delayedLateness(b *testing.B, n int, lead, spread time.Duration, batch int) ([]time.Duration, EngineHistogram) {
	node := benchNode(b)
	c := guestConn(b, node)
	ctx := testCtx(b)
	declare(b, c, "delayed")
	late := make([]time.Duration, 0, n)
	var mu sync.Mutex
	done := make(chan struct{})
	var s *Subscription
	var smu sync.Mutex
	smu.Lock()
	s, err := c.Subscribe(ctx, SubscribeOptions{Queue: "delayed", PrefetchCount: 1000}, func(d Delivery) {
		now := time.Now()
		due := time.Unix(0, int64(binary.BigEndian.Uint64(d.Message.Body)))
		smu.Lock()
		sub := s
		smu.Unlock()
		if err := sub.Ack(d.DeliveryID, false); err != nil {
			panic(err)
		}
		mu.Lock()
		late = append(late, max(now.Sub(due), 0))
		if len(late) == n {
			close(done)
		}
		mu.Unlock()
	}, nil)
	smu.Unlock()
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	first := start.Add(lead)
	for i := 0; i < n; i += batch {
		msgs := make([]Message, 0, batch)
		now := time.Now()
		for j := i; j < min(n, i+batch); j++ {
			due := first.Add(spread * time.Duration(j) / time.Duration(n))
			body := binary.BigEndian.AppendUint64(nil, uint64(due.UnixNano()))
			msgs = append(msgs, Message{RoutingKey: "delayed", Body: body, Delay: due.Sub(now)})
		}
		res, err := c.Publish(ctx, "", msgs, PublishOptions{})
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range res {
			if r.Err != nil {
				b.Fatal(r.Err)
			}
		}
	}
	st, err := node.QueueStats("/", "delayed")
	if err != nil {
		b.Fatal(err)
	}
	if time.Now().After(first) || st.Delayed != uint64(n) {
		b.Fatalf("publishing took %v and left %d of %d delayed: the first was due after %v", time.Since(start), st.Delayed, n, lead)
	}
	before := node.EngineMetrics().FsyncSeconds
	select {
	case <-done:
	case <-ctx.Done():
		b.Fatalf("%d of %d delivered", len(late), n)
	}
	after := node.EngineMetrics().FsyncSeconds
	return late, EngineHistogram{Count: after.Count - before.Count, Sum: after.Sum - before.Sum}
}

// BenchmarkClusterDeclare declares queues through one node of three in
// this process (loopback TCP between them, MemFS, 20 ms ticks): a durable
// queue is a new three-replica group, which must elect a leader and have
// every replica know it (the declaring node waits for its own to); an
// exclusive one is placed on the declaring node alone. The time per
// declare is far below a tick when the new group's first campaign, and
// its first append, are not lost to replicas that open it a moment later.
//
//	go test -run '^$' -bench ClusterDeclare -benchtime 200x ./internal/broker
func BenchmarkClusterDeclare(b *testing.B) {
	for _, exclusive := range []bool{false, true} {
		name := "durable"
		if exclusive {
			name = "exclusive"
		}
		b.Run(name, func(b *testing.B) {
			cl := newCluster(b, 3)
			ctx := testCtx(b)
			c := guestConn(b, cl.nodes[0])
			for i := 0; b.Loop(); i++ {
				spec := QueueSpec{Name: fmt.Sprintf("q%d", i), Durable: !exclusive, Exclusive: exclusive}
				if _, err := c.DeclareQueue(ctx, spec); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

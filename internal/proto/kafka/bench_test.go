package kafka

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-mq/ferry/internal/proto/kafka/protocol"
	"github.com/ferry-mq/ferry/internal/storage/log/batch"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Micro-benchmarks:
//
//	go test ./internal/proto/kafka -run '^$' -bench . -benchmem
//
// The side-by-side report (Ferry's Kafka produce and consume against the
// disk's durable bandwidth and NATS JetStream, in one run):
//
//	FERRY_KAFKA_BENCH=1 FERRY_BENCH_DIR=/work/tmp go test ./internal/proto/kafka -run TestKafkaSideBySideReport -v -timeout 20m

func BenchmarkValidateBatch64KiB(b *testing.B) {
	plain := buildBatchOfSize(b, 64<<10)
	cases := map[string][]byte{"none": plain, "gzip": gzipBatch(b, plain)}
	for name, records := range cases {
		b.Run(name, func(b *testing.B) {
			var scratch []byte
			b.SetBytes(int64(len(plain)))
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if _, scratch, err = validateBatch(records, scratch); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// buildBatchOfSize returns an uncompressed batch of 1 KiB records of about
// size bytes.
func buildBatchOfSize(t testing.TB, size int) []byte {
	var bld batch.Builder
	bld.Begin(nil, batch.Header{ProducerID: -1, BaseSequence: -1})
	value := make([]byte, benchRecordBytes)
	for i := range max(size/(benchRecordBytes+16), 1) {
		if err := bld.Add(1_700_000_000_000+int64(i), nil, value, nil); err != nil {
			t.Fatal(err)
		}
	}
	out, err := bld.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// BenchmarkProduceRoundTripFake sends Produce requests of one 64 KiB
// batch with acks=1 over loopback to a server on the test double: the
// front end's own cost per request (decode, validate, encode, socket).
func BenchmarkProduceRoundTripFake(b *testing.B) {
	fb := newFakeBackend(b)
	fb.createTopic("bench", 1)
	srv := startServer(b, fb, nil)
	c := dialRaw(b, srv.addr)
	records := buildBatchOfSize(b, 64<<10)
	req := protocol.ProduceRequest{Acks: 1, TimeoutMs: 5000, TopicData: []protocol.ProduceRequestTopicProduceData{{
		Name: "bench", PartitionData: []protocol.ProduceRequestPartitionProduceData{{Index: 0, Records: records}}}}}
	b.SetBytes(int64(len(records)))
	b.ReportAllocs()
	var resp protocol.ProduceResponse
	for b.Loop() {
		c.roundTrip(&req, &resp, 9)
		if resp.Responses[0].PartitionResponses[0].ErrorCode != 0 {
			b.Fatalf("error %d", resp.Responses[0].PartitionResponses[0].ErrorCode)
		}
		// Keep the double's memory flat: only the offsets matter here.
		fb.mu.Lock()
		fb.topics["bench"].parts[0].batches = nil
		fb.mu.Unlock()
	}
}

// benchDir is where the report's files go.
func benchDir(t *testing.T) string {
	if d := os.Getenv("FERRY_BENCH_DIR"); d != "" {
		dir, err := os.MkdirTemp(d, "kafka-bench-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		return dir
	}
	return t.TempDir()
}

// diskDurableMBps writes total bytes sequentially in blocks of block
// bytes, fdatasync after each, and returns MB/s.
func diskDurableMBps(t *testing.T, dir string, block, total int) float64 {
	f, err := os.Create(filepath.Join(dir, "disk-baseline"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, block)
	start := time.Now()
	for written := 0; written < total; written += block {
		if _, err := f.Write(buf); err != nil {
			t.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	return float64(total) / time.Since(start).Seconds() / 1e6
}

const (
	benchRecordBytes = 1 << 10
	benchDuration    = 10 * time.Second
)

// ferryProduceMBps runs producers franz-go producers (acks=all, linger 5
// ms, 64 KiB batches, 1 KiB records) for d and returns MB/s of record
// values confirmed.
func ferryProduceMBps(t *testing.T, addr, topic string, producers int, d time.Duration, extra ...kgo.Opt) float64 {
	var confirmed atomic.Int64
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var wg sync.WaitGroup
	for range producers {
		opts := append([]kgo.Opt{kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()),
			kgo.ProducerLinger(5 * time.Millisecond), kgo.ProducerBatchMaxBytes(64 << 10), kgo.MaxBufferedRecords(1 << 14)}, extra...)
		cl := franzClient(t, addr, opts...)
		wg.Add(1)
		go func() { // owned: waited for below
			defer wg.Done()
			value := make([]byte, benchRecordBytes)
			var inner sync.WaitGroup
			for ctx.Err() == nil {
				inner.Add(1)
				cl.Produce(ctx, &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
					defer inner.Done()
					if err == nil {
						confirmed.Add(benchRecordBytes)
					}
				})
			}
			inner.Wait()
		}()
	}
	start := time.Now()
	wg.Wait()
	return float64(confirmed.Load()) / time.Since(start).Seconds() / 1e6
}

// ferryConsumeMBps reads the topic from the start until n bytes of values
// arrived and returns MB/s.
func ferryConsumeMBps(t *testing.T, addr, topic string, n int64) float64 {
	cl := franzClient(t, addr, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxBytes(50<<20), kgo.FetchMaxPartitionBytes(50<<20))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var got int64
	start := time.Now()
	for got < n && ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) { got += int64(len(r.Value)) })
	}
	return float64(got) / time.Since(start).Seconds() / 1e6
}

// ferryLatency produces one record at a time every 2 ms for d, consumed
// by a tailing consumer, and returns the p50 and p99 end-to-end latency.
func ferryLatency(t *testing.T, addr, topic string, d time.Duration) (p50, p99 time.Duration) {
	prod := franzClient(t, addr, kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(0))
	cons := franzClient(t, addr, kgo.ConsumeTopics(topic), kgo.FetchMaxWait(100*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), d+10*time.Second)
	defer cancel()
	var lat []time.Duration
	var mu sync.Mutex
	var skipFirst atomic.Bool // the warm-up record's poll
	skipFirst.Store(true)
	var produced atomic.Int64 // the measured records, once all are flushed
	allIn := make(chan struct{})
	done := make(chan struct{})
	go func() { // owned: waited for on done
		defer close(done)
		signalled := false
		for ctx.Err() == nil {
			fs := cons.PollFetches(ctx)
			if skipFirst.Swap(false) {
				continue
			}
			now := time.Now()
			mu.Lock()
			fs.EachRecord(func(r *kgo.Record) {
				sent, _ := strconv.ParseInt(string(r.Value), 10, 64)
				lat = append(lat, now.Sub(time.Unix(0, sent)))
			})
			if want := produced.Load(); !signalled && want > 0 && int64(len(lat)) >= want {
				signalled = true
				close(allIn)
			}
			mu.Unlock()
		}
	}()
	// Let the consumer find its partitions (and the end) before measuring.
	warm, warmCancel := context.WithTimeout(ctx, time.Second)
	prod.ProduceSync(warm, &kgo.Record{Value: []byte(strconv.FormatInt(time.Now().UnixNano(), 10))})
	warmCancel()
	tick := time.NewTicker(2 * time.Millisecond)
	end := time.Now().Add(d)
	n := int64(0)
	for time.Now().Before(end) {
		<-tick.C
		prod.Produce(ctx, &kgo.Record{Value: []byte(strconv.FormatInt(time.Now().UnixNano(), 10))}, nil)
		n++
	}
	tick.Stop()
	prod.Flush(ctx)
	produced.Store(n)
	// Wait for the consumer to have every record (it polls at least every
	// FetchMaxWait, so it notices the count), or for the deadline.
	select {
	case <-allIn:
	case <-ctx.Done():
	}
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	if len(lat) == 0 {
		return 0, 0
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	return lat[len(lat)/2], lat[len(lat)*99/100]
}

// natsProduceMBps starts Debian's nats-server with file-stored JetStream
// and publishes 1 KiB messages with confirmation from producers
// connections for d; 0 when nats-server is missing.
func natsProduceMBps(t *testing.T, dir string, producers int, d time.Duration) float64 {
	path, err := exec.LookPath("nats-server")
	if err != nil {
		t.Log("nats-server not installed (Debian package nats-server): JetStream not measured")
		return 0
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command(path, "-js", "-sd", filepath.Join(dir, "nats"), "-a", "127.0.0.1", "-p", strconv.Itoa(port))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	var nc *nats.Conn
	for i := 0; i < 100; i++ {
		if nc, err = nats.Connect(url); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond) // waiting for an external process to listen
	}
	if err != nil {
		t.Fatalf("connecting to nats-server: %v", err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	if _, err := js.CreateStream(context.Background(), jetstream.StreamConfig{Name: "BENCH", Subjects: []string{"bench"},
		Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	var confirmed atomic.Int64
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var wg sync.WaitGroup
	start := time.Now()
	for range producers {
		pc, err := nats.Connect(url)
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		pjs, _ := jetstream.New(pc, jetstream.WithPublishAsyncMaxPending(1024))
		wg.Add(1)
		go func() { // owned: waited for below
			defer wg.Done()
			value := make([]byte, benchRecordBytes)
			for ctx.Err() == nil {
				f, err := pjs.PublishAsync("bench", value)
				if err != nil {
					continue
				}
				go func() { // owned by the publish's future: it ends when the ack or error arrives
					select {
					case <-f.Ok():
						confirmed.Add(benchRecordBytes)
					case <-f.Err():
					}
				}()
			}
			<-pjs.PublishAsyncComplete()
		}()
	}
	wg.Wait()
	return float64(confirmed.Load()) / time.Since(start).Seconds() / 1e6
}

func TestKafkaSideBySideReport(t *testing.T) {
	if os.Getenv("FERRY_KAFKA_BENCH") == "" {
		t.Skip("set FERRY_KAFKA_BENCH=1 to run the side-by-side report (minutes)")
	}
	dir := benchDir(t)
	disk1M := diskDurableMBps(t, dir, 1<<20, 256<<20)
	disk64K := diskDurableMBps(t, dir, 64<<10, 64<<20)
	b, srv := startBrokerIn(t, filepath.Join(dir, "ferry"))
	_ = b
	createTopics(t, srv.addr, 4, "bench-1", "bench-4", "bench-4n", "bench-lat")
	p1 := ferryProduceMBps(t, srv.addr, "bench-1", 1, benchDuration)
	p4 := ferryProduceMBps(t, srv.addr, "bench-4", 4, benchDuration)
	// The same without idempotence: the broker then lets a partition's
	// batches share group commits instead of one quorum wait each.
	p4n := ferryProduceMBps(t, srv.addr, "bench-4n", 4, benchDuration, kgo.DisableIdempotentWrite())
	produced := int64(p4 * 1e6 * benchDuration.Seconds() * 0.9)
	cons := ferryConsumeMBps(t, srv.addr, "bench-4", produced)
	p50, p99 := ferryLatency(t, srv.addr, "bench-lat", 5*time.Second)
	n1 := natsProduceMBps(t, dir, 1, benchDuration)
	n4 := natsProduceMBps(t, dir, 4, benchDuration)
	t.Logf("disk durable sequential write: %.1f MB/s (1 MiB + fdatasync), %.1f MB/s (64 KiB + fdatasync)", disk1M, disk64K)
	t.Logf("Ferry Kafka produce acks=all, 1 KiB records, linger 5 ms, 64 KiB batches: 1 producer %.1f MB/s, 4 producers %.1f MB/s", p1, p4)
	t.Logf("Ferry Kafka produce, the same without idempotence: 4 producers %.1f MB/s", p4n)
	t.Logf("Ferry Kafka consume (from the start, page cache): %.1f MB/s", cons)
	t.Logf("Ferry Kafka end-to-end latency (acks=all, one record every 2 ms): p50 %v, p99 %v", p50, p99)
	t.Logf("NATS JetStream confirmed publish, file storage, 1 KiB: 1 producer %.1f MB/s, 4 producers %.1f MB/s", n1, n4)
	t.Logf("goals: produce >= 70%% of disk (%.0f%% of 1 MiB, %.0f%% of 64 KiB); consume >= 500 MB/s; produce >= 2x JetStream (%.2fx, %.2fx)",
		100*p4/disk1M, 100*p4/disk64K, ratio(p1, n1), ratio(p4, n4))
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// BenchmarkFetchFromBroker reads 64 KiB batches back from a real broker's
// partition with sessionless Fetch requests of up to 8 MiB (page cache):
// the server and broker cost per fetched byte, without a client's.
func BenchmarkFetchFromBroker(b *testing.B) {
	_, srv := startBroker(b, nil)
	createTopics(b, srv.addr, 1, "fetch-bench")
	c := dialRaw(b, srv.addr)
	records := buildBatchOfSize(b, 64<<10)
	const batches = 512 // 32 MiB
	for range batches {
		resp := produceOne(c, "fetch-bench", records, 1, 9)
		if code := resp.Responses[0].PartitionResponses[0].ErrorCode; code != 0 {
			b.Fatalf("produce: error %d", code)
		}
	}
	f := fetchReq(-1, 0)
	f.Topics = []protocol.FetchRequestFetchTopic{{Topic: "fetch-bench", Partitions: []protocol.FetchRequestFetchPartition{fetchPart(0, 0)}}}
	f.MaxBytes = 8 << 20
	f.Topics[0].Partitions[0].PartitionMaxBytes = 8 << 20
	b.ReportAllocs()
	var total int64
	offset := int64(0)
	var resp protocol.FetchResponse
	for b.Loop() {
		f.Topics[0].Partitions[0].FetchOffset = offset
		c.roundTrip(f, &resp, 12)
		p := resp.Responses[0].Partitions[0]
		if len(p.Records) == 0 {
			offset = 0
			continue
		}
		total += int64(len(p.Records))
		var last int64
		for at := 0; at < len(p.Records); {
			h, err := batch.ParseHeader(p.Records[at:])
			if err != nil {
				b.Fatal(err)
			}
			last = h.NextOffset()
			at += h.Size()
		}
		offset = last
		if offset >= p.HighWatermark {
			offset = 0
		}
	}
	b.SetBytes(total / int64(max(b.N, 1)))
}

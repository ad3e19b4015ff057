package kafka

import (
	"bytes"
	"io/fs"
	"net"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/base/vfs"
	"github.com/ferry-mq/ferry/internal/broker"
	"github.com/ferry-mq/ferry/internal/proto/kafka/protocol"
)

var loopbackAddr = netip.MustParseAddr("127.0.0.1")

// These tests run the client suites against a real single-node broker on
// a temporary directory (real files, real fsyncs), with real sockets.

// startBroker opens a broker on a temp dir and serves Kafka on it.
func startBroker(t testing.TB, mod func(*Config)) (*broker.Broker, *testServer) {
	t.Helper()
	return startBrokerAt(t, t.TempDir(), mod)
}

// startBrokerIn opens the broker in dir, for the benchmark report.
func startBrokerIn(t testing.TB, dir string) (*broker.Broker, *testServer) {
	return startBrokerAt(t, dir, nil)
}

// startBrokerAt is startBroker in dir, with the broker's configuration
// changed by tune, if given.
func startBrokerAt(t testing.TB, dir string, mod func(*Config), tune ...func(*broker.Config)) (*broker.Broker, *testServer) {
	t.Helper()
	b := openBrokerIn(t, dir, nil, tune...)
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("broker.Close: %v", err)
		}
	})
	waitBrokerReady(t, b)
	srv := startServer(t, &BrokerBackend{B: b, ClusterID: "ferry-test"}, mod)
	return b, srv
}

// openBrokerIn opens a single-node broker in dir on fs (nil: the OS's),
// its configuration changed by tune; the caller closes it.
func openBrokerIn(t testing.TB, dir string, fs vfs.FS, tune ...func(*broker.Config)) *broker.Broker {
	t.Helper()
	cfg := broker.Config{NodeID: 1, Dir: dir, FS: fs, Logger: testLogger(), TickInterval: 10 * time.Millisecond,
		LeaderPollInterval: 5 * time.Millisecond, Flow: broker.FlowConfig{Disabled: true}}
	for _, f := range tune {
		f(&cfg)
	}
	b, err := broker.Open(cfg)
	if err != nil {
		t.Fatalf("broker.Open: %v", err)
	}
	return b
}

// waitBrokerReady waits until the broker's controller is bootstrapped:
// the broker signals nothing outside its package, so this retries opening
// a connection as guest, every few milliseconds, within the test's
// deadline.
func waitBrokerReady(t testing.TB, b *broker.Broker) {
	t.Helper()
	ctx := testCtx(t)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		p, err := b.Authenticate("guest", "guest", loopbackAddr)
		if err == nil {
			c, err := b.OpenConnection(broker.ConnInfo{ID: "kafka/ready", Protocol: "kafka"}, p, nil)
			if err == nil {
				c.Close(ctx)
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("broker not ready: %v", err)
		case <-tick.C:
		}
	}
}

func TestFranzScenariosOnTheBroker(t *testing.T) {
	t.Parallel()
	franzSuite(t, func(t *testing.T) string {
		_, srv := startBroker(t, nil)
		return srv.addr
	})
}

func TestBrokerSASLPlainAndScram(t *testing.T) {
	t.Parallel()
	_, srv := startBroker(t, func(c *Config) { c.AuthRequired = true })
	// The broker bootstraps guest only and has no call to add users, so
	// the read-only user's refusal is checked on the test double only.
	runSASL(t, srv.addr, "guest", "guest", false)
}

func TestBrokerIdempotentProducerDuplicatesAndOutOfOrder(t *testing.T) {
	t.Parallel()
	_, srv := startBroker(t, nil)
	createTopics(t, srv.addr, 1, "idem-raw")
	c := dialRaw(t, srv.addr)
	pid := c.initProducerID()
	produce := func(seq int32) (protocol.ErrorCode, int64) {
		resp := produceOne(c, "idem-raw", buildBatch(t, 3, pid, seq), -1, 9)
		p := resp.Responses[0].PartitionResponses[0]
		return protocol.ErrorCode(p.ErrorCode), p.BaseOffset
	}
	code, first := produce(0)
	if code != protocol.ErrorCodeNone {
		t.Fatalf("first batch: %v", code)
	}
	if code, again := produce(0); code != protocol.ErrorCodeNone || again != first {
		t.Errorf("duplicate: got %v at %d, want success at the original offset %d", code, again, first)
	}
	if code, _ := produce(10); code != protocol.ErrorCodeOutOfOrderSequenceNumber {
		t.Errorf("sequence gap: got %v, want OUT_OF_ORDER_SEQUENCE_NUMBER", code)
	}
	if code, next := produce(3); code != protocol.ErrorCodeNone || next <= first {
		t.Errorf("next in sequence: got %v at %d, want success after %d", code, next, first)
	}
}

func TestBrokerDescribeClusterAndMetadataName(t *testing.T) {
	t.Parallel()
	b, srv := startBroker(t, nil)
	c := dialRaw(t, srv.addr)
	var dc protocol.DescribeClusterResponse
	c.roundTrip(&protocol.DescribeClusterRequest{EndpointType: 1}, &dc, 1)
	if dc.ErrorCode != 0 || dc.ClusterId != "ferry-test" || len(dc.Brokers) != 1 || dc.Brokers[0].BrokerId != int32(b.NodeID()) {
		t.Errorf("DescribeCluster: %+v, want cluster ferry-test with this node", dc)
	}
	if host, port, _ := net.SplitHostPort(srv.addr); dc.Brokers[0].Host != host || strconv.Itoa(int(dc.Brokers[0].Port)) != port {
		t.Errorf("advertised %s:%d, want %s", dc.Brokers[0].Host, dc.Brokers[0].Port, srv.addr)
	}
	c.roundTrip(&protocol.DescribeClusterRequest{EndpointType: 2}, &dc, 1)
	if protocol.ErrorCode(dc.ErrorCode) != protocol.ErrorCodeUnsupportedEndpointType {
		t.Errorf("controller endpoints: got %d, want UNSUPPORTED_ENDPOINT_TYPE", dc.ErrorCode)
	}
}

// TestBrokerRetentionBytesBoundsThePartitionsDisk: a topic created with
// small segment.bytes and retention.bytes keeps its disk near them. The
// log start moves by whole retention chunks (base.StreamRetentionChunkBytes)
// and space comes back by whole segments, so 20 MiB produced with
// retention.bytes of 1 MiB leave at most a chunk and a segment or two.
func TestBrokerRetentionBytesBoundsThePartitionsDisk(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	_, srv := startBrokerAt(t, dir, nil, func(c *broker.Config) { c.RetentionInterval = 20 * time.Millisecond })
	ctx := testCtx(t)
	adm := kadm.NewClient(franzClient(t, srv.addr))
	segment, keep := "1048576", "1048576"
	res, err := adm.CreateTopic(ctx, 1, -1, map[string]*string{"segment.bytes": &segment, "retention.bytes": &keep}, "bounded")
	if err != nil || res.Err != nil {
		t.Fatalf("CreateTopic: %v / %v", err, res.Err)
	}
	cl := franzClient(t, srv.addr, kgo.DefaultProduceTopic("bounded"), kgo.ProducerBatchMaxBytes(1<<20),
		kgo.ProducerBatchCompression(kgo.NoCompression()))
	value := bytes.Repeat([]byte("v"), 64<<10)
	const produced = 20 << 20
	for range produced / len(value) {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: value}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	logs := filepath.Join(dir, "logs")
	// segmentBytes sums the segment files of every group's log: the
	// controller's and the coordinators' are a few KiB.
	segmentBytes := func() int64 {
		var n int64
		filepath.WalkDir(logs, func(p string, d fs.DirEntry, err error) error {
			if err == nil && strings.HasSuffix(p, ".seg") {
				if fi, err := d.Info(); err == nil {
					n += fi.Size()
				}
			}
			return nil
		})
		return n
	}
	bound := int64(base.StreamRetentionChunkBytes + 2<<20 + 1<<20)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		starts, err := adm.ListStartOffsets(ctx, "bounded")
		s, _ := starts.Lookup("bounded", 0)
		if on := segmentBytes(); err == nil && s.Err == nil && s.Offset > 0 && on <= bound {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("after %d MiB with retention.bytes %s and segment.bytes %s: start offset %+v (%v), %d bytes of segments on disk, want a moved start and at most %d",
				produced>>20, keep, segment, s, err, segmentBytes(), bound)
		case <-tick.C:
		}
	}
}

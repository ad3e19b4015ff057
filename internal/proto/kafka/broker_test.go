package kafka

import (
	"net/netip"
	"testing"
	"time"

	"github.com/ferry-mq/ferry/internal/broker"
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

func startBrokerAt(t testing.TB, dir string, mod func(*Config)) (*broker.Broker, *testServer) {
	t.Helper()
	b, err := broker.Open(broker.Config{NodeID: 1, Dir: dir, Logger: testLogger(),
		TickInterval: 10 * time.Millisecond, LeaderPollInterval: 5 * time.Millisecond,
		Flow: broker.FlowConfig{Disabled: true}})
	if err != nil {
		t.Fatalf("broker.Open: %v", err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("broker.Close: %v", err)
		}
	})
	waitBrokerReady(t, b)
	srv := startServer(t, &BrokerBackend{B: b, ClusterID: "ferry-test"}, mod)
	return b, srv
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

func TestBrokerProduceConsumeEveryCodec(t *testing.T) {
	t.Parallel()
	_, srv := startBroker(t, nil)
	runProduceConsumeEveryCodec(t, srv.addr)
}

func TestBrokerIdempotentProducerKeepsOrderPerPartition(t *testing.T) {
	t.Parallel()
	_, srv := startBroker(t, nil)
	runIdempotentProducer(t, srv.addr)
}

func TestBrokerAdminTopicsAndConfigs(t *testing.T) {
	t.Parallel()
	_, srv := startBroker(t, nil)
	runAdminTopicsAndConfigs(t, srv.addr)
}

func TestBrokerListOffsetsByTimestamp(t *testing.T) {
	t.Parallel()
	_, srv := startBroker(t, nil)
	runListOffsetsByTimestamp(t, srv.addr)
}

func TestBrokerGroupRebalancesUnderEveryBalancer(t *testing.T) {
	t.Parallel()
	_, srv := startBroker(t, nil)
	runGroupRebalances(t, srv.addr)
}

func TestBrokerOffsetsCommitFetchResetAndDelete(t *testing.T) {
	t.Parallel()
	_, srv := startBroker(t, nil)
	// The broker has no call to delete a group's offsets from a
	// partition yet (OffsetDelete, and DeleteGroups leaves them): both are
	// checked on the test double only.
	runOffsetsCommitFetchReset(t, srv.addr, false)
}

func TestBrokerSASLPlainAndScram(t *testing.T) {
	t.Parallel()
	_, srv := startBroker(t, func(c *Config) { c.AuthRequired = true })
	// The broker bootstraps guest only and has no call to add users, so
	// the read-only user's refusal is checked on the test double only.
	runSASL(t, srv.addr, "guest", "guest", false)
}

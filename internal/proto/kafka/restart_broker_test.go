package kafka

import (
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ferry-mq/ferry/internal/base/vfs"
	"github.com/ferry-mq/ferry/internal/broker"
	"github.com/ferry-mq/ferry/internal/proto/kafka/protocol"
)

// newLogGate holds every operation on a group's log in dir but the
// controller's (group 0) until the gate is opened: a node restarted on it
// takes connections (the controller replays) while its consumer-group
// coordinator is still loading, for as long as a test needs.
func newLogGate(dir string) *vfs.Gate {
	logs := filepath.Join(dir, "logs") + "/"
	return vfs.NewGate(func(p string) bool {
		return strings.HasPrefix(p, logs) && !strings.HasPrefix(p, logs+"00000000000000000000")
	})
}

// serveOn serves Kafka for b on ln, as startBrokerAt's server does; stop
// closes the server and waits for Serve to return (also done when the
// test ends).
func serveOn(t testing.TB, b *broker.Broker, ln net.Listener) (srv *Server, stop func()) {
	t.Helper()
	return serve(t, Config{Backend: &BrokerBackend{B: b, ClusterID: "ferry-test"}, Logger: testLogger()}, ln)
}

// produceValues produces one record per value to topic's partition 0.
func produceValues(t testing.TB, addr, topic string, from, to int) {
	t.Helper()
	prod := franzClient(t, addr, kgo.DefaultProduceTopic(topic))
	defer prod.Close()
	for i := from; i < to; i++ {
		if err := prod.ProduceSync(testCtx(t), &kgo.Record{Value: []byte(strconv.Itoa(i))}).FirstErr(); err != nil {
			t.Fatalf("producing %d: %v", i, err)
		}
	}
}

// TestBrokerGroupCallsWhileTheCoordinatorLoadsAnswerLoadInProgress pins
// what a Kafka group call gets right after a restart, while the
// coordinator's group is still opening on this node:
// COORDINATOR_LOAD_IN_PROGRESS (which clients retry at the same
// coordinator) after a bounded wait, never NOT_COORDINATOR (which sends
// them back to FindCoordinator, as every call in that window did before).
// A franz-go group consumer started in that window retries, then resumes
// from its committed offset once the coordinator has loaded.
func TestBrokerGroupCallsWhileTheCoordinatorLoadsAnswerLoadInProgress(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	b := openBrokerIn(t, dir, nil)
	waitBrokerReady(t, b)
	_, stop := serveOn(t, b, ln)
	createTopics(t, addr, 1, "resume")
	produceValues(t, addr, "resume", 0, 10)
	cons := franzClient(t, addr, kgo.ConsumerGroup("resume-group"), kgo.ConsumeTopics("resume"), kgo.DisableAutoCommit(),
		kgo.FetchMaxWait(200*time.Millisecond))
	consumeN(t, cons, 10)
	if err := cons.CommitUncommittedOffsets(testCtx(t)); err != nil {
		t.Fatalf("committing: %v", err)
	}
	cons.Close()
	stop()
	if err := b.Close(); err != nil {
		t.Fatalf("broker.Close: %v", err)
	}

	gate := newLogGate(dir)
	b = openBrokerIn(t, dir, vfs.WithFaults(vfs.Default, gate))
	t.Cleanup(func() { b.Close() })
	t.Cleanup(gate.Open) // before Close: the reconciler waits at the gate
	waitBrokerReady(t, b)
	if ln, err = net.Listen("tcp", addr); err != nil {
		t.Fatalf("listening again on %s: %v", addr, err)
	}
	srv, _ := serveOn(t, b, ln)
	loading := func() uint64 { return srv.Stats().Errors[protocol.ErrorCodeCoordinatorLoadInProgress.String()] }
	raw := dialRaw(t, addr)
	var hb protocol.HeartbeatResponse
	raw.roundTrip(&protocol.HeartbeatRequest{GroupId: "resume-group", MemberId: "m", GenerationId: 1}, &hb, 4)
	if got := protocol.ErrorCode(hb.ErrorCode); got != protocol.ErrorCodeCoordinatorLoadInProgress {
		t.Fatalf("Heartbeat while the coordinator loads: %v, want COORDINATOR_LOAD_IN_PROGRESS", got)
	}
	cons = franzClient(t, addr, kgo.ConsumerGroup("resume-group"), kgo.ConsumeTopics("resume"), kgo.DisableAutoCommit(),
		kgo.FetchMaxWait(200*time.Millisecond))
	polls := time.NewTicker(10 * time.Millisecond)
	defer polls.Stop()
	for ctx := testCtx(t); loading() < 2; { // the raw Heartbeat's, then franz-go's JoinGroup's
		select {
		case <-ctx.Done():
			t.Fatalf("franz-go's group calls got %d COORDINATOR_LOAD_IN_PROGRESS answers (errors %v), want one", loading()-1, srv.Stats().Errors)
		case <-polls.C:
		}
	}
	gate.Open()
	produceValues(t, addr, "resume", 10, 15)
	for i, r := range consumeN(t, cons, 5) {
		if want := strconv.Itoa(10 + i); string(r.Value) != want {
			t.Errorf("record %d after the restart: %q, want %s (resumed from the committed offset)", i, r.Value, want)
		}
	}
	if n := srv.Stats().Errors[protocol.ErrorCodeNotCoordinator.String()]; n != 0 {
		t.Errorf("answered NOT_COORDINATOR %d times after the restart, want 0", n)
	}
}

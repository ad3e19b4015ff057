package amqp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/base/vfs"
	"github.com/ferry-mq/ferry/internal/broker"
	amqp091 "github.com/rabbitmq/amqp091-go"
	"go.uber.org/goleak"
)

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// testServer is a Server on 127.0.0.1:0 in front of a backend: a real
// broker on a temporary directory, or (for the few tests that need the
// backend to misbehave) the test double. The server's own time (heartbeats,
// handshake and close timeouts) is a fake clock that moves only when a
// test says so; the broker runs on the real clock.
type testServer struct {
	srv    *Server
	b      *fakeBroker    // the test double, or nil
	broker *broker.Broker // the real broker, or nil
	// diskFree is what the real broker's flow control measures as the
	// free space of its disk; a test lowers it to block publishers.
	diskFree *atomic.Uint64
	dir      string
	clock    *base.FakeClock
	url      string
	errc     chan error
}

var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

// shared is the real broker the tests share: opening one takes most of a
// second under the race detector, so the package opens one (on a
// temporary directory of the real file system) and every test uses its
// own queue and exchange names. TestMain closes it.
var shared struct {
	once     sync.Once
	b        *broker.Broker
	diskFree *atomic.Uint64
	dir      string
	err      error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.b != nil {
		if err := shared.b.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "closing the shared broker:", err)
			code = 1
		}
		_ = os.RemoveAll(shared.dir)
	}
	// Every goroutine of the servers, their connections, the broker and
	// the clients has ended (Serve waits for its connections; the
	// tests close their clients).
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goroutines left behind:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// startServer starts a server in front of the shared real broker.
func startServer(t testing.TB, mutate ...func(*Config)) *testServer {
	t.Helper()
	shared.once.Do(func() {
		shared.diskFree = new(atomic.Uint64)
		shared.diskFree.Store(math.MaxUint64 / 2)
		shared.dir, shared.err = os.MkdirTemp("", "ferry-amqp-test-")
		if shared.err == nil {
			shared.b, shared.err = openBroker(shared.dir, shared.diskFree)
		}
	})
	if shared.err != nil {
		t.Fatalf("opening the shared broker: %v", shared.err)
	}
	// Registered first, so it runs last: after the server and the test's
	// clients have closed.
	t.Cleanup(func() { resetShared(t) })
	ts := startServerWith(t, NewBrokerBackend(shared.b), mutate...)
	ts.broker, ts.diskFree, ts.dir = shared.b, shared.diskFree, shared.dir
	return ts
}

// resetShared deletes every queue, stream and declared exchange of every
// tenant of the shared broker, so that a test run again (go test -count)
// starts from the same empty broker as the first time. The tests run one
// at a time, so nothing else is using them.
func resetShared(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, tenant := range shared.b.Tenants() {
		c, err := shared.b.OpenConnection(broker.ConnInfo{ID: "test/reset", Protocol: "amqp"},
			broker.Principal{User: "guest", Tenant: tenant}, func(string) {})
		if err != nil {
			t.Errorf("resetting vhost %q: %v", tenant, err)
			continue
		}
		top := shared.b.Topology(tenant)
		for _, q := range top.Queues {
			if _, err := c.DeleteQueue(ctx, q.Name, false, false); err != nil {
				t.Errorf("resetting vhost %q: deleting queue %q: %v", tenant, q.Name, err)
			}
		}
		for _, st := range top.Streams {
			if err := c.DeleteStream(ctx, st.Name); err != nil {
				t.Errorf("resetting vhost %q: deleting stream %q: %v", tenant, st.Name, err)
			}
		}
		for _, x := range top.Exchanges {
			if x.Name == "" || strings.HasPrefix(x.Name, "amq.") {
				continue
			}
			if err := c.DeleteExchange(ctx, x.Name, false); err != nil {
				t.Errorf("resetting vhost %q: deleting exchange %q: %v", tenant, x.Name, err)
			}
		}
		if err := c.Close(ctx); err != nil {
			t.Errorf("resetting vhost %q: %v", tenant, err)
		}
	}
}

// startFakeServer starts a server in front of the test double.
func startFakeServer(t testing.TB, mutate ...func(*Config)) *testServer {
	t.Helper()
	b := newFakeBroker(t)
	ts := startServerWith(t, b, mutate...)
	ts.b = b
	return ts
}

// openBroker opens a single-node broker on dir (the real file system) and
// waits until it is bootstrapped (guest can log in).
func openBroker(dir string, diskFree *atomic.Uint64) (*broker.Broker, error) {
	b, err := broker.Open(broker.Config{NodeID: 1, Dir: dir, FS: vfs.Default, Logger: quietLog,
		TickInterval: 10 * time.Millisecond, LeaderPollInterval: 5 * time.Millisecond,
		Flow: broker.FlowConfig{SampleInterval: 5 * time.Millisecond, DiskFreeLimitBytes: 1 << 20,
			DiskFree: func() (uint64, error) { return diskFree.Load(), nil }}})
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := b.Authenticate("guest", "guest", netip.MustParseAddr("127.0.0.1"))
		if err == nil {
			return b, nil
		}
		if time.Now().After(deadline) {
			_ = b.Close()
			return nil, fmt.Errorf("not bootstrapped after 30s: %w", err)
		}
		time.Sleep(5 * time.Millisecond) // polling the bootstrap, not synchronising
	}
}

func startServerWith(t testing.TB, backend Backend, mutate ...func(*Config)) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	clock := base.NewFakeClock(epoch)
	cfg := Config{Backend: backend, Clock: clock, Logger: quietLog}
	for _, m := range mutate {
		m(&cfg)
	}
	srv, err := NewServer(ln, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{srv: srv, clock: clock, url: "amqp://guest:guest@" + ln.Addr().String() + "/", errc: make(chan error, 1)}
	go func() { ts.errc <- srv.Serve(context.Background()) }()
	t.Cleanup(func() {
		_ = srv.Close()
		if err := <-ts.errc; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return ts
}

// depth returns a queue's ready messages and whether it exists.
func (ts *testServer) depth(name string) (int, bool) {
	if ts.b != nil {
		return ts.b.queueDepth(name)
	}
	st, err := ts.broker.QueueStats("/", name)
	if err != nil {
		return 0, false
	}
	return int(st.Ready), true
}

// killAll closes every connection from the broker's (management) side.
func (ts *testServer) killAll(reason string) {
	if ts.b != nil {
		ts.b.killAll(reason)
		return
	}
	for _, c := range ts.broker.Connections() {
		_ = ts.broker.CloseConnection(c.ID, reason)
	}
}

// sessions counts the connections registered with the backend.
func (ts *testServer) sessions() int {
	if ts.b != nil {
		return ts.b.sessionCount()
	}
	return len(ts.broker.Connections())
}

// dial opens an amqp091-go connection that is closed at the end of the
// test.
func (ts *testServer) dial(t testing.TB) *amqp091.Connection {
	t.Helper()
	return ts.dialConfig(t, amqp091.Config{})
}

func (ts *testServer) dialConfig(t testing.TB, cfg amqp091.Config) *amqp091.Connection {
	t.Helper()
	return dialURL(t, ts.url, cfg)
}

// dialAs is dial logged in as user with password instead of guest.
func (ts *testServer) dialAs(t testing.TB, user, password string) *amqp091.Connection {
	t.Helper()
	return dialURL(t, strings.Replace(ts.url, "guest:guest", user+":"+password, 1), amqp091.Config{})
}

func dialURL(t testing.TB, url string, cfg amqp091.Config) *amqp091.Connection {
	t.Helper()
	if cfg.Heartbeat == 0 {
		cfg.Heartbeat = time.Hour // the client's own real-time heartbeats stay out of the way
	}
	c, err := amqp091.DialConfig(url, cfg)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// channel opens a channel on a new connection.
func (ts *testServer) channel(t testing.TB) *amqp091.Channel {
	t.Helper()
	ch, err := ts.dial(t).Channel()
	if err != nil {
		t.Fatalf("channel: %v", err)
	}
	return ch
}

// waitFor polls cond, yielding the processor between tries, until it
// holds; it fails the test after a generous real-time bound, which only
// a bug reaches.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	waitForWhy(t, what, cond, nil)
}

// waitForWhy is waitFor whose failure also says why(), when set: the
// state that kept cond false.
func waitForWhy(t testing.TB, what string, cond func() bool, why func() string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			if why != nil {
				t.Fatalf("timed out waiting for %s: %s", what, why())
			}
			t.Fatalf("timed out waiting for %s", what)
		}
		runtime.Gosched()
		time.Sleep(time.Millisecond) // a poll interval, not synchronisation: cond decides
	}
}

// recv receives one delivery or fails after a generous bound.
func recv(t testing.TB, ch <-chan amqp091.Delivery) amqp091.Delivery {
	t.Helper()
	select {
	case d, ok := <-ch:
		if !ok {
			t.Fatalf("deliveries closed")
		}
		return d
	case <-time.After(10 * time.Second):
		t.Fatalf("no delivery")
	}
	return amqp091.Delivery{}
}

// noDelivery checks that nothing is delivered once the channel has
// answered a round trip (every delivery sent before the reply arrives
// before it).
func noDelivery(t testing.TB, ch *amqp091.Channel, deliveries <-chan amqp091.Delivery) {
	t.Helper()
	if _, err := ch.QueueDeclarePassive("amq.rabbitmq.reply-to", false, false, false, false, nil); err != nil {
		t.Fatalf("round trip: %v", err)
	}
	select {
	case d := <-deliveries:
		t.Fatalf("unexpected delivery %q (tag %d)", d.Body, d.DeliveryTag)
	default:
	}
}

// amqpErr returns err's *amqp091.Error, failing the test when there is
// none.
func amqpErr(t testing.TB, err error) *amqp091.Error {
	t.Helper()
	var e *amqp091.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not an *amqp091.Error", err, err)
	}
	return e
}

// closeReason waits for the channel's (or connection's) close
// notification.
func closeReason(t testing.TB, notify chan *amqp091.Error) *amqp091.Error {
	t.Helper()
	select {
	case e := <-notify:
		if e == nil {
			t.Fatalf("closed without an error")
		}
		return e
	case <-time.After(10 * time.Second):
		t.Fatalf("not closed")
	}
	return nil
}

func declareQueue(t testing.TB, ch *amqp091.Channel, name string) amqp091.Queue {
	t.Helper()
	q, err := ch.QueueDeclare(name, false, false, false, false, nil)
	if err != nil {
		t.Fatalf("queue.declare %q: %v", name, err)
	}
	return q
}

func publish(t testing.TB, ch *amqp091.Channel, exchange, key string, body string) {
	t.Helper()
	if err := ch.PublishWithContext(context.Background(), exchange, key, false, false,
		amqp091.Publishing{Body: []byte(body)}); err != nil {
		t.Fatalf("publish: %v", err)
	}
}

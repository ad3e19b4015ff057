package amqp

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/ferry-mq/ferry/internal/base"
	amqp091 "github.com/rabbitmq/amqp091-go"
)

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// testServer is a Server on 127.0.0.1:0 in front of a backend, driven by
// a fake clock that moves only when a test says so.
type testServer struct {
	srv   *Server
	b     *fakeBroker
	clock *base.FakeClock
	url   string
	errc  chan error
}

func startServer(t testing.TB, mutate ...func(*Config)) *testServer {
	t.Helper()
	b := newFakeBroker(t)
	return startServerWith(t, b, mutate...)
}

func startServerWith(t testing.TB, b *fakeBroker, mutate ...func(*Config)) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	clock := base.NewFakeClock(epoch)
	cfg := Config{Backend: b, Clock: clock, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, m := range mutate {
		m(&cfg)
	}
	srv, err := NewServer(ln, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{srv: srv, b: b, clock: clock, url: "amqp://guest:guest@" + ln.Addr().String() + "/", errc: make(chan error, 1)}
	go func() { ts.errc <- srv.Serve(context.Background()) }()
	t.Cleanup(func() {
		_ = srv.Close()
		if err := <-ts.errc; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return ts
}

// dial opens an amqp091-go connection that is closed at the end of the
// test.
func (ts *testServer) dial(t testing.TB) *amqp091.Connection {
	t.Helper()
	return ts.dialConfig(t, amqp091.Config{})
}

func (ts *testServer) dialConfig(t testing.TB, cfg amqp091.Config) *amqp091.Connection {
	t.Helper()
	if cfg.Heartbeat == 0 {
		cfg.Heartbeat = time.Hour // the client's own real-time heartbeats stay out of the way
	}
	c, err := amqp091.DialConfig(ts.url, cfg)
	if err != nil {
		t.Fatalf("dial: %v", err)
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
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
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

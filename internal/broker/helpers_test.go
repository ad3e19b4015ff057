package broker

import (
	"context"
	"log/slog"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/ferry-mq/ferry/internal/auth"
	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/base/vfs"
)

// testTimeout bounds every wait of a test on the broker: generous, since
// the race detector on two cores is slow; tests wait on events, never on
// the clock.
const testTimeout = 30 * time.Second

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

type nodeOpts struct {
	fs    vfs.FS
	dir   string
	clock base.Clock
	tweak func(*Config)
}

// openNode opens a single-node broker on an in-memory file system with
// short intervals, and closes it at the end of the test.
func openNode(t testing.TB, o nodeOpts) *Broker {
	t.Helper()
	if o.fs == nil {
		o.fs = vfs.NewMem()
	}
	if o.dir == "" {
		o.dir = "/data"
	}
	cfg := Config{NodeID: 1, GuestCredentials: guestCreds(t), Dir: o.dir, FS: o.fs, Clock: o.clock, TickInterval: 10 * time.Millisecond, Logger: quietLog,
		LeaderPollInterval: 5 * time.Millisecond, Flow: FlowConfig{Disabled: true}}
	if o.tweak != nil {
		o.tweak(&cfg)
	}
	b, err := Open(cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	waitBootstrapped(t, b)
	return b
}

func waitBootstrapped(t testing.TB, b *Broker) {
	t.Helper()
	ctx := testCtx(t)
	for !b.ctrl.bootstrapped() {
		select {
		case <-b.ctrl.changed():
		case <-ctx.Done():
			t.Fatalf("the controller was not bootstrapped in %v", testTimeout)
		}
	}
}

var loopback = netip.MustParseAddr("127.0.0.1")

var quietLog = slog.New(slog.DiscardHandler)

var (
	guestOnce  sync.Once
	guestStore auth.Credentials
)

// guestCreds derives guest's credentials once per test binary: the
// argon2id evaluation costs a third of a second under the race detector.
func guestCreds(t testing.TB) *auth.Credentials {
	guestOnce.Do(func() {
		var err error
		if guestStore, err = newCredentials("guest"); err != nil {
			panic(err)
		}
	})
	c := guestStore
	return &c
}

// guestConn opens a connection as guest on tenant "/" (authentication
// itself is tested by TestAuthorizationRefusesWithoutPermission).
func guestConn(t testing.TB, b *Broker) *Conn {
	t.Helper()
	p := Principal{User: "guest", Tenant: "/", Tags: []string{"administrator"}}
	c, err := b.OpenConnection(ConnInfo{ID: "test/" + t.Name(), Protocol: "amqp"}, p, nil)
	if err != nil {
		t.Fatalf("OpenConnection: %v", err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// collector gathers deliveries of a subscription.
type collector struct {
	ch chan Delivery
}

func newCollector() *collector { return &collector{ch: make(chan Delivery, 100000)} }

func (c *collector) deliver(d Delivery) { c.ch <- d }

// next waits for the next delivery.
func (c *collector) next(t testing.TB) Delivery {
	t.Helper()
	select {
	case d := <-c.ch:
		return d
	case <-time.After(testTimeout):
		t.Fatalf("no delivery within %v", testTimeout)
		return Delivery{}
	}
}

// none checks that nothing is waiting to be delivered right now.
func (c *collector) none(t testing.TB) {
	t.Helper()
	select {
	case d := <-c.ch:
		t.Fatalf("unexpected delivery %q (id %d)", d.Message.Body, d.DeliveryID)
	default:
	}
}

func publishOne(t testing.TB, c *Conn, exchange, key, body string) PublishResult {
	t.Helper()
	res, err := c.Publish(testCtx(t), exchange, []Message{{RoutingKey: key, Body: []byte(body)}}, PublishOptions{})
	if err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if res[0].Err != nil {
		t.Fatalf("Publish result: %v", res[0].Err)
	}
	return res[0]
}

func netipAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

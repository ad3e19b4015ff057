package broker

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/ferry-mq/ferry/internal/auth"
	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/base/vfs"
	"github.com/ferry-mq/ferry/internal/controller"
)

// testTimeout bounds every wait of a test on the broker: generous, since
// the race detector on two cores is slow; tests wait on events, never on
// the clock.
const testTimeout = 30 * time.Second

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	// A wait this long is a hang: the watchdog dumps every goroutine just
	// before the deadline, while the hung wait is still there to see (the
	// failure that follows says where the test was, not what it waited for).
	watchdog := time.AfterFunc(testTimeout-time.Second, func() { dumpStacks(t.Name()) })
	t.Cleanup(func() {
		watchdog.Stop()
		cancel()
	})
	return ctx
}

var dumpOnce sync.Once

// dumpStacks writes every goroutine's stack to stderr, once per test
// binary.
func dumpStacks(test string) {
	dumpOnce.Do(func() {
		buf := make([]byte, 16<<20)
		n := runtime.Stack(buf, true)
		fmt.Fprintf(os.Stderr, "=== %s: a wait is about to reach %v; every goroutine:\n%s\n", test, testTimeout, buf[:n])
	})
}

type nodeOpts struct {
	fs    vfs.FS
	dir   string
	clock base.Clock
	tweak func(*Config)
	// loading skips the wait for the bootstrap and the coordinators, for
	// a test of what a node answers before they are there.
	loading bool
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
	if _, manual := o.clock.(interface{ Advance(time.Duration) }); manual {
		cfg.ProposalGather = -1 // timed on the clock, which only the test moves
	}
	if o.tweak != nil {
		o.tweak(&cfg)
	}
	b, err := Open(cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	if !o.loading {
		waitBootstrapped(t, b)
		waitCoordinators(t, b)
	}
	return b
}

// waitCoordinators waits until this single node runs the leader runtime
// of every consumer-group coordinator: the reconciler opens them after
// the bootstrap, and until their runtime runs the group calls wait up to
// BrokerCoordinatorLoadWaitMax and then answer COORDINATOR_LOAD_IN_PROGRESS
// (as Kafka's do, for the client to retry).
func waitCoordinators(t testing.TB, b *Broker) {
	t.Helper()
	var coords []controller.Placement
	b.ctrl.read(func(c *controller.Controller) { coords = c.Coordinators() })
	waitFor(t, b, func() bool {
		for _, p := range coords {
			if b.coordinatorLeaderOf(GroupID(p.Group)) == nil {
				return false
			}
		}
		return true
	}, func() string {
		return fmt.Sprintf("the coordinators %v have no running leader after %v", coords, testTimeout)
	})
}

// waitBootstrapped waits until the controller has applied the Bootstrap
// (waitFor takes the change channels before each check, so an apply
// falling between check and wait is not missed).
func waitBootstrapped(t testing.TB, b *Broker) {
	t.Helper()
	waitFor(t, b, b.ctrl.bootstrapped, func() string {
		st, err := b.engine.Status(controllerGroup)
		return fmt.Sprintf("the controller was not bootstrapped in %v (group 0: %+v, %v)", testTimeout, st, err)
	})
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

// publishAll publishes msgs through the default exchange, failing the
// test on any error: the call's or a message's.
func publishAll(t testing.TB, c *Conn, msgs []Message) []PublishResult {
	t.Helper()
	res, err := c.Publish(testCtx(t), "", msgs, PublishOptions{})
	if err != nil {
		t.Fatalf("Publish: %v", err)
	}
	for i, r := range res {
		if r.Err != nil {
			t.Fatalf("Publish result %d: %v", i, r.Err)
		}
	}
	return res
}

func netipAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

// logEnd returns a partition's high watermark on its leader: the end of
// its log, Ferry's own entries (commits, marks) included, where
// ListOffset's latest is the end of the data. Tests count entries with it.
func logEnd(t testing.TB, c *Conn, p PartitionRef) int64 {
	t.Helper()
	// An offset below every log start: the answer is an out-of-range
	// error that still carries the partition's positions.
	res, err := c.Fetch(testCtx(t), p, -1, 1, 0, 0)
	if base.CodeOf(err) != base.CodeOutOfRange {
		t.Fatalf("reading the log end of %v: %v", p, err)
	}
	return res.HighWatermark
}

// commitStandalone commits offset for group on p as a standalone consumer
// does (no member, generation -1), failing the test on an error.
func commitStandalone(t testing.TB, c *Conn, group string, p PartitionRef, offset int64) {
	t.Helper()
	if err := c.CommitOffsets(testCtx(t), group, -1, "", "", map[PartitionRef]CommittedOffset{p: {Offset: offset, LeaderEpoch: -1}})[p]; err != nil {
		t.Fatalf("commit of %d for %s on %v: %v", offset, group, p, err)
	}
}

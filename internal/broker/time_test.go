package broker

import (
	"sync"
	"testing"
	"time"

	"github.com/ferry-mq/ferry/internal/base"
)

// The tests of time-driven behaviour run the node on a fake clock: time
// moves only when the test advances it, so a TTL or a delay fires exactly
// when the test says.

func fakeNode(t *testing.T) (*Broker, *base.FakeClock) {
	clock := base.NewFakeClock(epoch)
	b := openNode(t, nodeOpts{clock: clock})
	return b, clock
}

// declareExpiredTarget declares a fanout exchange "dlx" bound to a queue
// "expired", for queues to dead-letter into.
func declareExpiredTarget(t *testing.T, c *Conn) {
	t.Helper()
	ctx := testCtx(t)
	if err := c.DeclareExchange(ctx, ExchangeSpec{Name: "dlx", Type: "fanout"}); err != nil {
		t.Fatal(err)
	}
	declare(t, c, "expired")
	if err := c.Bind(ctx, BindingSpec{Source: "dlx", Destination: "expired"}); err != nil {
		t.Fatal(err)
	}
}

func TestMessageTTLDeadLettersExpiredMessages(t *testing.T) {
	b, clock := fakeNode(t)
	c := guestConn(t, b)
	ctx := testCtx(t)
	declareExpiredTarget(t, c)
	declare(t, c, "ttl", Header{"x-message-ttl", IntValue(KindInt64, 60_000)},
		Header{"x-dead-letter-exchange", StringValue("dlx")})
	publishOne(t, c, "", "ttl", "queue-ttl")
	publishAll(t, c, []Message{{RoutingKey: "ttl", Expiration: "1000", Body: []byte("msg-ttl")}})
	clock.Advance(999 * time.Millisecond)
	if st, _ := b.QueueStats("/", "expired"); st.Ready != 0 {
		t.Fatalf("before the message TTL: %d dead-lettered, want 0", st.Ready)
	}
	clock.Advance(time.Millisecond)
	st := waitStats(t, b, "expired", func(st QueueStats) bool { return st.Ready == 1 })
	d, _, ok, err := c.Get(ctx, "expired", true)
	if !ok || err != nil || string(d.Message.Body) != "msg-ttl" {
		t.Fatalf("dead-lettered after 1s: %q %v %v (stats %+v), want msg-ttl", d.Message.Body, ok, err, st)
	}
	xd, _ := d.Message.Headers.Get("x-death")
	if e := xd.Array()[0].Table(); e == nil {
		t.Fatalf("no x-death entry")
	} else if r, _ := e.Get("reason"); r.Text() != "expired" {
		t.Fatalf("x-death reason %q, want expired", r.Text())
	} else if oe, _ := e.Get("original-expiration"); oe.Text() != "1000" {
		t.Fatalf("original-expiration %q, want 1000", oe.Text())
	}
	if d.Message.Expiration != "" {
		t.Fatalf("the dead-lettered copy kept expiration %q", d.Message.Expiration)
	}
	clock.Advance(59 * time.Second)
	waitStats(t, b, "expired", func(st QueueStats) bool { return st.Ready == 1 })
	waitStats(t, b, "ttl", func(st QueueStats) bool { return st.Ready == 0 && st.Counters.Expired == 2 })
}

// TestDeadLetterCyclesOfExpiriesAreDropped: as RabbitMQ, a dead-lettered
// copy that would return to a queue it left with no rejection on the way
// is dropped (it would go round forever); a cycle with a consumer's
// rejection in it, the delayed-retry pattern, goes on.
func TestDeadLetterCyclesOfExpiriesAreDropped(t *testing.T) {
	b, clock := fakeNode(t)
	c := guestConn(t, b)
	ttlTo := func(target string) []Header {
		return []Header{{"x-message-ttl", IntValue(KindInt32, 1000)}, {"x-dead-letter-exchange", StringValue("")},
			{"x-dead-letter-routing-key", StringValue(target)}}
	}
	declare(t, c, "self", ttlTo("self")...)
	declare(t, c, "ping", ttlTo("pong")...)
	declare(t, c, "pong", ttlTo("ping")...)
	declare(t, c, "work", Header{"x-dead-letter-exchange", StringValue("")}, Header{"x-dead-letter-routing-key", StringValue("wait")})
	declare(t, c, "wait", ttlTo("work")...)
	publishOne(t, c, "", "self", "s")
	publishOne(t, c, "", "ping", "p")
	publishOne(t, c, "", "work", "w")
	sub, col := subscribe(t, c, SubscribeOptions{Queue: "work", Tag: "w"})

	d := col.next(t)
	if err := sub.Nack(d.DeliveryID, false, false, ""); err != nil { // to "wait", which expires it back
		t.Fatal(err)
	}
	waitStats(t, b, "wait", func(st QueueStats) bool { return st.Ready == 1 })
	clock.Advance(time.Second) // self, ping and wait expire
	waitStats(t, b, "self", func(st QueueStats) bool { return st.Counters.DeadLetterDone == 1 })
	waitStats(t, b, "pong", func(st QueueStats) bool { return st.Ready == 1 })
	clock.Advance(time.Second) // pong's copy would return to ping; wait's goes back to work
	waitStats(t, b, "pong", func(st QueueStats) bool { return st.Counters.DeadLetterDone == 1 })
	for _, q := range []string{"self", "ping", "pong"} {
		if st, _ := b.QueueStats("/", q); st.Ready != 0 || st.DeadLetter != 0 {
			t.Errorf("%s: %d ready, %d dead-letter pending, want the cycle's copy dropped", q, st.Ready, st.DeadLetter)
		}
	}
	if d := col.next(t); string(d.Message.Body) != "w" {
		t.Errorf("the rejected message came back as %q, want w", d.Message.Body)
	}
}

func TestDelayedMessageIsDeliveredAtItsTime(t *testing.T) {
	b, clock := fakeNode(t)
	c := guestConn(t, b)
	ctx := testCtx(t)
	declare(t, c, "later")
	res, err := c.Publish(ctx, "", []Message{
		{RoutingKey: "later", Body: []byte("in-5s"), Delay: 5 * time.Second},
		{RoutingKey: "later", Body: []byte("in-2s"), Headers: Headers{{"x-delay", IntValue(KindInt32, 2000)}}},
		{RoutingKey: "later", Body: []byte("now")},
	}, PublishOptions{})
	if err != nil || res[0].Err != nil || res[1].Err != nil {
		t.Fatal(err, res)
	}
	_, col := subscribe(t, c, SubscribeOptions{Queue: "later", Tag: "l", NoAck: true})
	if d := col.next(t); string(d.Message.Body) != "now" {
		t.Fatalf("first: %q, want now", d.Message.Body)
	}
	clock.Advance(1999 * time.Millisecond)
	col.none(t)
	clock.Advance(time.Millisecond)
	if d := col.next(t); string(d.Message.Body) != "in-2s" {
		t.Fatalf("at 2s: %q, want in-2s", d.Message.Body)
	}
	clock.Advance(3 * time.Second)
	if d := col.next(t); string(d.Message.Body) != "in-5s" {
		t.Fatalf("at 5s: %q, want in-5s", d.Message.Body)
	}
}

func TestUnusedQueueExpires(t *testing.T) {
	b, clock := fakeNode(t)
	c := guestConn(t, b)
	declare(t, c, "idle", Header{"x-expires", IntValue(KindInt64, 10_000)})
	clock.Advance(9 * time.Second)
	if _, err := b.lookupQueue("/", "idle"); err != nil {
		t.Fatalf("before x-expires: %v", err)
	}
	clock.Advance(time.Second)
	waitGone(t, b, "idle")
}

// TestPassiveDeclareRenewsXExpires: a queue polled with passive declares
// is in use, as in RabbitMQ: its x-expires runs from the last one.
func TestPassiveDeclareRenewsXExpires(t *testing.T) {
	b, clock := fakeNode(t)
	c := guestConn(t, b)
	declare(t, c, "polled", Header{"x-expires", IntValue(KindInt64, 10_000)})
	clock.Advance(9 * time.Second)
	if _, err := c.DeclareQueue(testCtx(t), QueueSpec{Name: "polled", Passive: true}); err != nil {
		t.Fatal(err)
	}
	// The renewal was proposed before this publish (a publish is no use):
	// once the publish is confirmed, the renewal is applied.
	publishOne(t, c, "", "polled", "barrier")
	if st, err := b.QueueStats("/", "polled"); err != nil || st.LastUsedMs != epoch.Add(9*time.Second).UnixMilli() {
		t.Fatalf("after a passive declare at 9 s: last used %d (err %v), want %d", st.LastUsedMs, err, epoch.Add(9*time.Second).UnixMilli())
	}
	clock.Advance(10 * time.Second)
	waitGone(t, b, "polled")
}

func TestAckTimeoutReturnsTheDelivery(t *testing.T) {
	b, clock := fakeNode(t)
	c := guestConn(t, b)
	declare(t, c, "slow", Header{"x-consumer-timeout", IntValue(KindInt64, 5_000)})
	publishOne(t, c, "", "slow", "m")
	timedOut := make(chan uint64, 1)
	col := newCollector()
	s, err := c.Subscribe(testCtx(t), SubscribeOptions{Queue: "slow", Tag: "s", PrefetchCount: 1,
		AckTimeout: func(id uint64) { timedOut <- id }}, col.deliver, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := col.next(t)
	clock.Advance(5 * time.Second)
	select {
	case id := <-timedOut:
		if id != d.DeliveryID {
			t.Fatalf("timed out delivery %d, want %d", id, d.DeliveryID)
		}
	case <-time.After(testTimeout):
		t.Fatal("no ack timeout reported")
	}
	d2 := col.next(t)
	if !d2.Redelivered || d2.DeliveryID == d.DeliveryID {
		t.Fatalf("after the timeout: id %d redelivered %v, want a new redelivery", d2.DeliveryID, d2.Redelivered)
	}
	if err := s.Ack(d.DeliveryID, false); base.CodeOf(err) != base.CodePreconditionFailed {
		t.Fatalf("acking the timed-out delivery: %v, want CodePreconditionFailed", err)
	}
}

// movingClock is a fake clock that moves while its timers are armed: at
// each Reset asking for the next duration of moves, it advances by `by`
// just before the timer is armed, as a test's Advance on another goroutine
// may. settled is closed once, after the moves, a Reset for settle has
// armed its timer: the arming the test waits for is then over.
type movingClock struct {
	*base.FakeClock
	by      time.Duration
	settle  time.Duration
	settled chan struct{}
	mu      sync.Mutex
	moves   []time.Duration // guarded by mu
	done    bool            // guarded by mu: settled is closed
}

func newMovingClock(by, settle time.Duration, moves ...time.Duration) *movingClock {
	return &movingClock{FakeClock: base.NewFakeClock(epoch), by: by, settle: settle, settled: make(chan struct{}), moves: moves}
}

func (c *movingClock) NewTimer(d time.Duration) base.Timer {
	return movingTimer{Timer: c.FakeClock.NewTimer(d), c: c}
}

type movingTimer struct {
	base.Timer
	c *movingClock
}

func (t movingTimer) Reset(d time.Duration) bool {
	c := t.c
	c.mu.Lock()
	move := len(c.moves) > 0 && c.moves[0] == d
	if move {
		c.moves = c.moves[1:]
	}
	settles := !move && len(c.moves) == 0 && !c.done && d == c.settle
	c.done = c.done || settles
	c.mu.Unlock()
	if move {
		c.Advance(c.by)
	}
	active := t.Timer.Reset(d)
	if settles {
		close(c.settled)
	}
	return active
}

// ttlToDeadLetter opens a node on clock with a queue "ttl" dead-lettering
// into "expired", and publishes one message with a TTL of one second.
func ttlToDeadLetter(t *testing.T, clock base.Clock) *Broker {
	b := openNode(t, nodeOpts{clock: clock})
	c := guestConn(t, b)
	declareExpiredTarget(t, c)
	declare(t, c, "ttl", Header{"x-dead-letter-exchange", StringValue("dlx")})
	publishAll(t, c, []Message{{RoutingKey: "ttl", Expiration: "1000", Body: []byte("late?")}})
	return b
}

// expiresAt waits for the timer's arming, advances the clock to one millisecond
// before the message's TTL (published at epoch) and checks that nothing
// expired yet, then to the TTL and waits for the dead-lettered copy.
func expiresAt(t *testing.T, b *Broker, clock *movingClock) {
	select {
	case <-clock.settled:
	case <-testCtx(t).Done():
		t.Fatalf("the queue's leader did not arm its timer for %v after the clock moved", clock.settle)
	}
	clock.Advance(epoch.Add(999 * time.Millisecond).Sub(clock.Now()))
	if st, _ := b.QueueStats("/", "expired"); st.Ready != 0 {
		t.Fatalf("999 ms after the publish: got %d dead-lettered, want 0", st.Ready)
	}
	clock.Advance(time.Millisecond)
	waitStats(t, b, "expired", func(st QueueStats) bool { return st.Ready == 1 })
}

// The queue's leader arms its wake timer with a duration computed from
// the clock; when the clock moves between that read and the arming, the
// timer must still fire at the wake time, not as much later.
func TestMessageExpiresOnTimeWhenTheClockMovesWhileItsTimerIsArmed(t *testing.T) {
	clock := newMovingClock(999*time.Millisecond, time.Millisecond, time.Second)
	expiresAt(t, ttlToDeadLetter(t, clock), clock)
}

// At the edge of BrokerTimerArmAttemptsMax: the clock moves at every
// attempt but the last, which arms the timer on time.
func TestMessageExpiresOnTimeWhenTheClockMovesAtEveryArmingAttemptButTheLast(t *testing.T) {
	var moves []time.Duration
	for i := range base.BrokerTimerArmAttemptsMax - 1 {
		moves = append(moves, time.Second-time.Duration(i)*100*time.Millisecond)
	}
	settle := time.Second - time.Duration(len(moves))*100*time.Millisecond
	clock := newMovingClock(100*time.Millisecond, settle, moves...)
	expiresAt(t, ttlToDeadLetter(t, clock), clock)
}

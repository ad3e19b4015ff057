package broker

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-mq/ferry/internal/base"
)

var epoch = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func declare(t testing.TB, c *Conn, name string, args ...Header) {
	t.Helper()
	if _, err := c.DeclareQueue(testCtx(t), QueueSpec{Name: name, Durable: true, Arguments: args}); err != nil {
		t.Fatalf("DeclareQueue(%s): %v", name, err)
	}
}

func subscribe(t testing.TB, c *Conn, o SubscribeOptions) (*Subscription, *collector) {
	t.Helper()
	col := newCollector()
	s, err := c.Subscribe(testCtx(t), o, col.deliver, nil)
	if err != nil {
		t.Fatalf("Subscribe(%s): %v", o.Queue, err)
	}
	return s, col
}

func bodies(ds []Delivery) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = string(d.Message.Body)
	}
	return out
}

func takeN(t testing.TB, col *collector, n int) []Delivery {
	t.Helper()
	out := make([]Delivery, n)
	for i := range out {
		out[i] = col.next(t)
	}
	return out
}

func TestNackRequeueRedeliversWithCount(t *testing.T) {
	b := openNode(t, nodeOpts{})
	c := guestConn(t, b)
	declare(t, c, "q")
	publishOne(t, c, "", "q", "m")
	s, col := subscribe(t, c, SubscribeOptions{Queue: "q", Tag: "t", PrefetchCount: 1})
	d := col.next(t)
	if d.Redelivered || d.DeliveryCount != 0 {
		t.Fatalf("first delivery: redelivered %v count %d, want false 0", d.Redelivered, d.DeliveryCount)
	}
	if err := s.Nack(d.DeliveryID, false, true, ""); err != nil {
		t.Fatalf("Nack: %v", err)
	}
	d2 := col.next(t)
	if string(d2.Message.Body) != "m" || !d2.Redelivered || d2.DeliveryCount != 1 {
		t.Fatalf("redelivery: body %q redelivered %v count %d, want m true 1", d2.Message.Body, d2.Redelivered, d2.DeliveryCount)
	}
	if err := s.Ack(d.DeliveryID, false); base.CodeOf(err) != base.CodePreconditionFailed {
		t.Fatalf("acking a settled delivery: got %v, want CodePreconditionFailed", err)
	}
	if err := s.Ack(d2.DeliveryID, false); err != nil {
		t.Fatalf("Ack: %v", err)
	}
	waitStats(t, b, "q", func(st QueueStats) bool { return st.Ready == 0 && st.Unacked == 0 && st.Counters.Acked == 1 })
}

// waitStats waits until the queue's stats satisfy ok.
func waitStats(t testing.TB, b *Broker, q string, ok func(QueueStats) bool) QueueStats {
	t.Helper()
	var st QueueStats
	var err error
	waitFor(t, b, func() bool {
		st, err = b.QueueStats("/", q)
		return err == nil && ok(st)
	}, func() string {
		return fmt.Sprintf("queue %s stats never satisfied the condition; last %+v (err %v)", q, st, err)
	})
	return st
}

// waitFor waits until cond holds, checking it after every change of the
// node's queues, partitions, controller, groups or leaders.
func waitFor(t testing.TB, b *Broker, cond func() bool, describe func() string) {
	t.Helper()
	timeout := time.NewTimer(testTimeout)
	defer timeout.Stop()
	for {
		act, ready, ctl := b.activity.Changed(), b.readyChanged(), b.ctrl.changed()
		if cond() {
			return
		}
		select {
		case <-act:
		case <-ready:
		case <-ctl:
		case <-timeout.C:
			t.Fatal(describe())
		}
	}
}

// nextChange takes the channels of the node's next change (queues,
// partitions, controller, groups or leaders) and returns the wait for it.
// Take it before the action the change answers (a clock advance): taken
// after, a change falling in between is missed and the wait lasts
// testTimeout.
func nextChange(b *Broker) (wait func()) {
	act, ready, ctl := b.activity.Changed(), b.readyChanged(), b.ctrl.changed()
	return func() {
		t := time.NewTimer(testTimeout)
		defer t.Stop()
		select {
		case <-act:
		case <-ready:
		case <-ctl:
		case <-t.C:
		}
	}
}

func TestRejectDeadLettersWithXDeath(t *testing.T) {
	b := openNode(t, nodeOpts{})
	c := guestConn(t, b)
	ctx := testCtx(t)
	if err := c.DeclareExchange(ctx, ExchangeSpec{Name: "dlx", Type: "fanout", Durable: true}); err != nil {
		t.Fatal(err)
	}
	declare(t, c, "dead")
	if err := c.Bind(ctx, BindingSpec{Source: "dlx", Destination: "dead"}); err != nil {
		t.Fatal(err)
	}
	declare(t, c, "work", Header{"x-dead-letter-exchange", StringValue("dlx")})
	res, err := c.Publish(ctx, "", []Message{{RoutingKey: "work", Body: []byte("poison"), MessageID: "m1",
		Headers: Headers{{"n", IntValue(KindInt32, 7)}}}}, PublishOptions{})
	if err != nil || res[0].Err != nil {
		t.Fatalf("Publish: %v %v", err, res)
	}
	s, col := subscribe(t, c, SubscribeOptions{Queue: "work", Tag: "w"})
	d := col.next(t)
	if err := s.Nack(d.DeliveryID, false, false, ""); err != nil {
		t.Fatal(err)
	}
	_, dcol := subscribe(t, c, SubscribeOptions{Queue: "dead", Tag: "d", NoAck: true})
	dd := dcol.next(t)
	if string(dd.Message.Body) != "poison" || dd.Message.MessageID != "m1" {
		t.Fatalf("dead-lettered message: body %q id %q", dd.Message.Body, dd.Message.MessageID)
	}
	if v, ok := dd.Message.Headers.Get("n"); !ok || v.Kind() != KindInt32 || v.Int() != 7 {
		t.Fatalf("user header n: got %v (%v), want int32 7", v, ok)
	}
	xd, ok := dd.Message.Headers.Get("x-death")
	if !ok || xd.Kind() != KindArray || len(xd.Array()) != 1 {
		t.Fatalf("x-death: got %+v, want an array of one table", xd)
	}
	entry := xd.Array()[0].Table()
	for key, want := range map[string]string{"reason": "rejected", "queue": "work", "exchange": ""} {
		if v, _ := entry.Get(key); v.Text() != want {
			t.Errorf("x-death %s: got %q, want %q", key, v.Text(), want)
		}
	}
	if v, _ := entry.Get("count"); v.Int() != 1 {
		t.Errorf("x-death count: got %d, want 1", v.Int())
	}
	if v, _ := dd.Message.Headers.Get("x-first-death-reason"); v.Text() != "rejected" {
		t.Errorf("x-first-death-reason: got %q, want rejected", v.Text())
	}
	waitStats(t, b, "work", func(st QueueStats) bool {
		return st.DeadLetter == 0 && st.Unacked == 0 && st.Counters.DeadLetterDone == 1
	})
}

func TestMandatoryUnroutableAndAlternateExchange(t *testing.T) {
	b := openNode(t, nodeOpts{})
	c := guestConn(t, b)
	ctx := testCtx(t)
	res, err := c.Publish(ctx, "amq.direct", []Message{{RoutingKey: "nowhere", Body: []byte("x")}}, PublishOptions{Mandatory: true})
	if err != nil || !res[0].Unroutable {
		t.Fatalf("mandatory publish to no binding: got %+v, %v; want Unroutable", res, err)
	}
	res, err = c.Publish(ctx, "amq.direct", []Message{{RoutingKey: "nowhere", Body: []byte("x")}}, PublishOptions{})
	if err != nil || res[0].Unroutable || res[0].Err != nil {
		t.Fatalf("non-mandatory publish to no binding: got %+v, %v; want a silent confirm", res, err)
	}
	if err := c.DeclareExchange(ctx, ExchangeSpec{Name: "ae", Type: "fanout"}); err != nil {
		t.Fatal(err)
	}
	if err := c.DeclareExchange(ctx, ExchangeSpec{Name: "main", Type: "direct",
		Arguments: Headers{{"alternate-exchange", StringValue("ae")}}}); err != nil {
		t.Fatal(err)
	}
	declare(t, c, "unrouted")
	if err := c.Bind(ctx, BindingSpec{Source: "ae", Destination: "unrouted"}); err != nil {
		t.Fatal(err)
	}
	res, err = c.Publish(ctx, "main", []Message{{RoutingKey: "k", Body: []byte("via-ae")}}, PublishOptions{Mandatory: true})
	if err != nil || res[0].Unroutable || res[0].Err != nil {
		t.Fatalf("publish through the alternate exchange: %+v %v", res, err)
	}
	d, _, ok, err := c.Get(ctx, "unrouted", true)
	if err != nil || !ok || string(d.Message.Body) != "via-ae" {
		t.Fatalf("Get(unrouted): %q %v %v; want via-ae", d.Message.Body, ok, err)
	}
	if _, err := c.Publish(ctx, "no-such", []Message{{Body: []byte("x")}}, PublishOptions{}); base.CodeOf(err) != base.CodeNotFound {
		t.Fatalf("publish to a missing exchange: got %v, want CodeNotFound", err)
	}
}

func TestGetWithAndWithoutAutoAck(t *testing.T) {
	b := openNode(t, nodeOpts{})
	c := guestConn(t, b)
	ctx := testCtx(t)
	declare(t, c, "q")
	if _, _, ok, err := c.Get(ctx, "q", true); ok || err != nil {
		t.Fatalf("Get on an empty queue: ok %v err %v", ok, err)
	}
	publishOne(t, c, "", "q", "a")
	publishOne(t, c, "", "q", "b")
	d, h, ok, err := c.Get(ctx, "q", false)
	if err != nil || !ok || string(d.Message.Body) != "a" || d.MessageCount != 1 {
		t.Fatalf("Get: %q ok %v left %d err %v; want a, 1 left", d.Message.Body, ok, d.MessageCount, err)
	}
	if err := h.Nack(ctx, true, ""); err != nil {
		t.Fatalf("Nack: %v", err)
	}
	d, h, ok, err = c.Get(ctx, "q", false)
	if err != nil || !ok || string(d.Message.Body) != "a" || !d.Redelivered {
		t.Fatalf("Get after requeue: %q redelivered %v ok %v err %v; want a redelivered", d.Message.Body, d.Redelivered, ok, err)
	}
	if err := h.Ack(ctx); err != nil {
		t.Fatalf("Ack: %v", err)
	}
	if err := h.Ack(ctx); base.CodeOf(err) != base.CodePreconditionFailed {
		t.Fatalf("second Ack: got %v, want CodePreconditionFailed", err)
	}
	d, _, ok, _ = c.Get(ctx, "q", true)
	if !ok || string(d.Message.Body) != "b" {
		t.Fatalf("Get: %q %v, want b", d.Message.Body, ok)
	}
}

func TestPrioritiesDeliverHighestFirst(t *testing.T) {
	b := openNode(t, nodeOpts{})
	c := guestConn(t, b)
	ctx := testCtx(t)
	declare(t, c, "pq", Header{"x-max-priority", IntValue(KindInt64, 9)})
	var msgs []Message
	for i, p := range []uint8{1, 5, 9, 5, 0} {
		p := p
		msgs = append(msgs, Message{RoutingKey: "pq", Priority: &p, Body: []byte(fmt.Sprintf("p%d-%d", p, i))})
	}
	if _, err := c.Publish(ctx, "", msgs, PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	var got []string
	for range msgs {
		d, _, ok, err := c.Get(ctx, "pq", true)
		if err != nil || !ok {
			t.Fatalf("Get: %v %v", ok, err)
		}
		got = append(got, string(d.Message.Body))
	}
	want := "p9-2 p5-1 p5-3 p1-0 p0-4"
	if strings.Join(got, " ") != want {
		t.Fatalf("order: got %v, want %v", got, want)
	}
}

func TestDedupeIDConfirmsDuplicatesWithoutEnqueue(t *testing.T) {
	b := openNode(t, nodeOpts{})
	c := guestConn(t, b)
	ctx := testCtx(t)
	declare(t, c, "dq")
	for i, wantDup := range []bool{false, true} {
		res, err := c.Publish(ctx, "", []Message{{RoutingKey: "dq", Body: []byte("x"),
			Headers: Headers{{"x-ferry-dedupe-id", StringValue("order-17")}}}}, PublishOptions{})
		if err != nil || res[0].Err != nil || res[0].Duplicate != wantDup {
			t.Fatalf("publish %d: %+v %v; want Duplicate %v", i, res, err, wantDup)
		}
	}
	st := waitStats(t, b, "dq", func(st QueueStats) bool { return st.Counters.Deduplicated == 1 })
	if st.Ready != 1 {
		t.Fatalf("ready: got %d, want 1", st.Ready)
	}
}

func TestOrderingKeyHoldsLaterMessagesUntilSettled(t *testing.T) {
	b := openNode(t, nodeOpts{})
	c := guestConn(t, b)
	ctx := testCtx(t)
	declare(t, c, "oq", Header{"x-ferry-ordering-key", BoolValue(true)})
	var msgs []Message
	for _, m := range []struct{ key, body string }{{"a", "a1"}, {"a", "a2"}, {"b", "b1"}} {
		msgs = append(msgs, Message{RoutingKey: "oq", OrderingKey: m.key, Body: []byte(m.body)})
	}
	if _, err := c.Publish(ctx, "", msgs, PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	s, col := subscribe(t, c, SubscribeOptions{Queue: "oq", Tag: "o", PrefetchCount: 10})
	first := takeN(t, col, 2)
	if got := strings.Join(bodies(first), " "); got != "a1 b1" {
		t.Fatalf("first deliveries: got %q, want \"a1 b1\" (a2 waits behind a1)", got)
	}
	col.none(t)
	if err := s.Ack(first[0].DeliveryID, false); err != nil {
		t.Fatal(err)
	}
	if d := col.next(t); string(d.Message.Body) != "a2" {
		t.Fatalf("after acking a1: got %q, want a2", d.Message.Body)
	}
}

func TestSingleActiveConsumerHandsOver(t *testing.T) {
	b := openNode(t, nodeOpts{})
	c := guestConn(t, b)
	ctx := testCtx(t)
	declare(t, c, "sac", Header{"x-single-active-consumer", BoolValue(true)})
	s1, col1 := subscribe(t, c, SubscribeOptions{Queue: "sac", Tag: "one", PrefetchCount: 10})
	_, col2 := subscribe(t, c, SubscribeOptions{Queue: "sac", Tag: "two", PrefetchCount: 10})
	publishOne(t, c, "", "sac", "m1")
	publishOne(t, c, "", "sac", "m2")
	for _, d := range takeN(t, col1, 2) {
		if err := s1.Ack(d.DeliveryID, false); err != nil {
			t.Fatal(err)
		}
	}
	col2.none(t)
	if err := s1.Cancel(ctx); err != nil {
		t.Fatal(err)
	}
	publishOne(t, c, "", "sac", "m3")
	if d := col2.next(t); string(d.Message.Body) != "m3" {
		t.Fatalf("after handover: got %q, want m3 to the second consumer", d.Message.Body)
	}
}

func TestExclusiveQueueIsDeletedWithItsConnection(t *testing.T) {
	b := openNode(t, nodeOpts{})
	owner := guestConn(t, b)
	other := guestConn(t, b)
	ctx := testCtx(t)
	qi, err := owner.DeclareQueue(ctx, QueueSpec{Exclusive: true})
	if err != nil || !strings.HasPrefix(qi.Name, "amq.gen-") {
		t.Fatalf("server-named exclusive declare: %+v %v", qi, err)
	}
	if qi, err = owner.DeclareQueue(ctx, QueueSpec{Name: "mine", Exclusive: true}); err != nil {
		t.Fatalf("exclusive declare: %v", err)
	}
	if _, err := other.Subscribe(ctx, SubscribeOptions{Queue: qi.Name}, func(Delivery) {}, nil); base.CodeOf(err) != base.CodeResourceLocked {
		t.Fatalf("another connection consuming: got %v, want CodeResourceLocked", err)
	}
	if _, err := other.DeclareQueue(ctx, QueueSpec{Name: qi.Name, Exclusive: true}); base.CodeOf(err) != base.CodeResourceLocked {
		t.Fatalf("another connection redeclaring: got %v, want CodeResourceLocked", err)
	}
	if err := owner.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := other.DeclareQueue(ctx, QueueSpec{Name: qi.Name, Passive: true}); base.CodeOf(err) != base.CodeNotFound {
		t.Fatalf("passive declare after the owner closed: got %v, want CodeNotFound", err)
	}
}

func TestAutoDeleteQueueGoesWithItsLastConsumer(t *testing.T) {
	b := openNode(t, nodeOpts{})
	c := guestConn(t, b)
	ctx := testCtx(t)
	if _, err := c.DeclareQueue(ctx, QueueSpec{Name: "ad", AutoDelete: true}); err != nil {
		t.Fatal(err)
	}
	s, _ := subscribe(t, c, SubscribeOptions{Queue: "ad", Tag: "x"})
	if err := s.Cancel(ctx); err != nil {
		t.Fatal(err)
	}
	waitGone(t, b, "ad")
}

func waitGone(t testing.TB, b *Broker, name string) {
	t.Helper()
	ctx := testCtx(t)
	for {
		ch := b.ctrl.changed()
		if _, err := b.lookupQueue("/", name); base.CodeOf(err) == base.CodeNotFound {
			return
		}
		select {
		case <-ch:
		case <-ctx.Done():
			t.Fatalf("queue %s was not deleted", name)
		}
	}
}

func TestPurgeAndDeleteConditions(t *testing.T) {
	b := openNode(t, nodeOpts{})
	c := guestConn(t, b)
	ctx := testCtx(t)
	declare(t, c, "pd")
	for i := range 3 {
		publishOne(t, c, "", "pd", fmt.Sprint(i))
	}
	if _, err := c.DeleteQueue(ctx, "pd", false, true); base.CodeOf(err) != base.CodePreconditionFailed {
		t.Fatalf("delete if-empty of a non-empty queue: got %v, want CodePreconditionFailed", err)
	}
	s, col := subscribe(t, c, SubscribeOptions{Queue: "pd", Tag: "x", PrefetchCount: 1})
	col.next(t)
	if _, err := c.DeleteQueue(ctx, "pd", true, false); base.CodeOf(err) != base.CodePreconditionFailed {
		t.Fatalf("delete if-unused of a consumed queue: got %v, want CodePreconditionFailed", err)
	}
	if err := s.Cancel(ctx); err != nil {
		t.Fatal(err)
	}
	n, err := c.PurgeQueue(ctx, "pd")
	if err != nil || n != 2 {
		t.Fatalf("purge: got %d %v, want 2 (one is unacknowledged)", n, err)
	}
	n, err = c.DeleteQueue(ctx, "pd", true, false)
	if err != nil || n != 1 {
		t.Fatalf("delete: got %d %v, want 1 message (the unacknowledged one)", n, err)
	}
	if _, err := c.DeclareQueue(ctx, QueueSpec{Name: "pd", Passive: true}); base.CodeOf(err) != base.CodeNotFound {
		t.Fatalf("passive declare after delete: %v", err)
	}
	if n, err := c.DeleteQueue(ctx, "pd", false, false); err != nil || n != 0 {
		t.Fatalf("deleting a missing queue: %d %v, want 0 nil", n, err)
	}
}

func TestRecoverReturnsUnackedDeliveries(t *testing.T) {
	b := openNode(t, nodeOpts{})
	c := guestConn(t, b)
	declare(t, c, "rq")
	publishOne(t, c, "", "rq", "x")
	s, col := subscribe(t, c, SubscribeOptions{Queue: "rq", Tag: "r", PrefetchCount: 5})
	col.next(t)
	s.Recover(true)
	d := col.next(t)
	if !d.Redelivered || string(d.Message.Body) != "x" {
		t.Fatalf("after recover: %q redelivered %v, want x redelivered", d.Message.Body, d.Redelivered)
	}
}

func TestConnectionCloseReturnsUnackedDeliveries(t *testing.T) {
	b := openNode(t, nodeOpts{})
	c1 := guestConn(t, b)
	ctx := testCtx(t)
	declare(t, c1, "cq")
	publishOne(t, c1, "", "cq", "x")
	_, col := subscribe(t, c1, SubscribeOptions{Queue: "cq", Tag: "a"})
	col.next(t)
	if err := c1.Close(ctx); err != nil {
		t.Fatal(err)
	}
	c2 := guestConn(t, b)
	_, col2 := subscribe(t, c2, SubscribeOptions{Queue: "cq", Tag: "b"})
	if d := col2.next(t); !d.Redelivered {
		t.Fatalf("after the first connection closed: redelivered %v, want true", d.Redelivered)
	}
}

func TestAuthorizationRefusesWithoutPermission(t *testing.T) {
	b := openNode(t, nodeOpts{})
	if _, err := b.Authenticate("guest", "wrong", loopback); base.CodeOf(err) != base.CodeUnauthenticated {
		t.Fatalf("wrong password: got %v, want CodeUnauthenticated", err)
	}
	if _, err := b.Authenticate("guest", "guest", netipAddr("10.0.0.1")); base.CodeOf(err) != base.CodeAccessRefused {
		t.Fatalf("guest from afar: got %v, want CodeAccessRefused", err)
	}
	p, _ := b.Authenticate("guest", "guest", loopback)
	p.Tenant = "nope"
	if _, err := b.OpenConnection(ConnInfo{ID: "x"}, p, nil); base.CodeOf(err) != base.CodeNotFound {
		t.Fatalf("unknown vhost: got %v, want CodeNotFound", err)
	}
	_ = context.Background()
}

// blockingWriter is a snapshot's destination that holds its first Write
// until release is closed, and signals it on entered.
type blockingWriter struct {
	entered, release chan struct{}
	once             sync.Once
}

func (w *blockingWriter) Write(p []byte) (int, error) {
	w.once.Do(func() { close(w.entered) })
	<-w.release
	return len(p), nil
}

// TestQueueCountsAnswerBesideASnapshot: while a snapshot of a queue is
// being written (off the engine loop, for as long as a large queue takes),
// its stats and a passive declaration answer with the counts.
func TestQueueCountsAnswerBesideASnapshot(t *testing.T) {
	b := openNode(t, nodeOpts{})
	c := guestConn(t, b)
	declare(t, c, "q")
	for i := range 3 {
		publishOne(t, c, "", "q", fmt.Sprint(i))
	}
	ent, err := b.lookupQueue("/", "q")
	if err != nil {
		t.Fatal(err)
	}
	f := b.group(ent.group).fsm.(*queueFSM)
	w := &blockingWriter{entered: make(chan struct{}), release: make(chan struct{})}
	snapped := make(chan error, 1)
	go func() { snapped <- f.Snapshot(w) }()
	<-w.entered
	answered := make(chan string, 1)
	go func() {
		st, err := b.QueueStats("/", "q")
		if err != nil || st.Ready != 3 {
			answered <- fmt.Sprintf("QueueStats: %+v, %v; want 3 ready", st, err)
			return
		}
		qi, err := c.DeclareQueue(testCtx(t), QueueSpec{Name: "q", Passive: true})
		if err != nil || qi.Messages != 3 {
			answered <- fmt.Sprintf("passive DeclareQueue: %+v, %v; want 3 messages", qi, err)
			return
		}
		answered <- ""
	}()
	timeout := time.NewTimer(10 * time.Second) // only a bug reaches it
	defer timeout.Stop()
	select {
	case msg := <-answered:
		if msg != "" {
			t.Error(msg)
		}
	case <-timeout.C:
		t.Error("the counts waited for the snapshot")
		close(w.release)
		<-answered
		<-snapped
		return
	}
	close(w.release)
	if err := <-snapped; err != nil {
		t.Fatal(err)
	}
}

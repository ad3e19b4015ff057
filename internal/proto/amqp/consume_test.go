package amqp

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

func publishN(t testing.TB, ts *testServer, ch *amqp091.Channel, queue string, n int) {
	t.Helper()
	before, _ := ts.depth(queue)
	for i := 0; i < n; i++ {
		publish(t, ch, "", queue, fmt.Sprint(i))
	}
	waitFor(t, "messages enqueued", func() bool { d, _ := ts.depth(queue); return d == before+n })
}

func TestPerConsumerPrefetchLimitsEachConsumer(t *testing.T) {
	ts := startServer(t)
	ch := ts.channel(t)
	declareQueue(t, ch, "pc")
	if err := ch.Qos(2, 0, false); err != nil {
		t.Fatal(err)
	}
	publishN(t, ts, ch, "pc", 10)
	c1, _ := ch.Consume("pc", "c1", false, false, false, false, nil)
	c2, _ := ch.Consume("pc", "c2", false, false, false, false, nil)
	waitFor(t, "4 delivered", func() bool { n, _ := ts.depth("pc"); return n == 6 })
	recv(t, c1)
	last := recv(t, c1)
	recv(t, c2)
	recv(t, c2)
	noDelivery(t, ch, c1)
	noDelivery(t, ch, c2)
	if err := last.Ack(true); err != nil { // frees c1's two
		t.Fatal(err)
	}
	recv(t, c1)
	recv(t, c1)
	noDelivery(t, ch, c2)
}

func TestGlobalPrefetchIsSharedByTheChannel(t *testing.T) {
	ts := startServer(t)
	ch := ts.channel(t)
	declareQueue(t, ch, "ga")
	declareQueue(t, ch, "gb")
	if err := ch.Qos(3, 0, true); err != nil {
		t.Fatal(err)
	}
	publishN(t, ts, ch, "ga", 5)
	publishN(t, ts, ch, "gb", 5)
	ca, _ := ch.Consume("ga", "ca", false, false, false, false, nil)
	cb, _ := ch.Consume("gb", "cb", false, false, false, false, nil)
	var got []amqp091.Delivery
	for len(got) < 3 {
		select {
		case d := <-ca:
			got = append(got, d)
		case d := <-cb:
			got = append(got, d)
		case <-time.After(10 * time.Second):
			t.Fatalf("only %d deliveries", len(got))
		}
	}
	noDelivery(t, ch, ca)
	noDelivery(t, ch, cb)
	if err := got[0].Ack(false); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ca:
	case <-cb:
	case <-time.After(10 * time.Second):
		t.Fatalf("no delivery after an ack freed the window")
	}
	noDelivery(t, ch, ca)
	noDelivery(t, ch, cb)
}

func TestDeletingAQueueCancelsItsConsumers(t *testing.T) {
	ts := startServer(t)
	ch := ts.channel(t)
	declareQueue(t, ch, "doomed")
	cancels := ch.NotifyCancel(make(chan string, 1))
	msgs, _ := ch.Consume("doomed", "watcher", false, false, false, false, nil)
	other := ts.channel(t)
	if _, err := other.QueueDelete("doomed", false, false, false); err != nil {
		t.Fatal(err)
	}
	select {
	case tag := <-cancels:
		if tag != "watcher" {
			t.Errorf("cancelled tag %q, want watcher", tag)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no basic.cancel from the server")
	}
	if _, ok := <-msgs; ok {
		t.Errorf("deliveries still open after the server's cancel")
	}
}

func TestClientCancelStopsDeliveriesAndKeepsUnackedSettleable(t *testing.T) {
	ts := startServer(t)
	ch := ts.channel(t)
	declareQueue(t, ch, "c")
	msgs, _ := ch.Consume("c", "tag1", false, false, false, false, nil)
	publish(t, ch, "", "c", "first")
	d := recv(t, msgs)
	if err := ch.Cancel("tag1", false); err != nil {
		t.Fatal(err)
	}
	if err := d.Ack(false); err != nil {
		t.Fatal(err)
	}
	publishN(t, ts, ch, "c", 1)
	if n, _ := ts.depth("c"); n != 1 {
		t.Errorf("after cancel the message should stay queued: depth %d", n)
	}
	// A second consumer with the same tag is fine once the first is gone.
	if _, err := ch.Consume("c", "tag1", false, false, false, false, nil); err != nil {
		t.Errorf("reusing a cancelled tag: %v", err)
	}
}

func TestReusedConsumerTagIs530(t *testing.T) {
	ts := startServer(t)
	conn := ts.dial(t)
	ch, _ := conn.Channel()
	declareQueue(t, ch, "dupq")
	if _, err := ch.Consume("dupq", "dup", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	// Tags are per channel: another channel of the connection may use it.
	other, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Consume("dupq", "dup", false, false, false, false, nil); err != nil {
		t.Errorf("the same tag on another channel: %v", err)
	}
	_, err = ch.Consume("dupq", "dup", false, false, false, false, nil)
	if e := amqpErr(t, err); e.Code != 530 || e.Reason != "NOT_ALLOWED - attempt to reuse consumer tag 'dup'" {
		t.Errorf("got %d %q", e.Code, e.Reason)
	}
}

func TestExclusiveConsumerAndPriorityArgument(t *testing.T) {
	ts := startServer(t)
	ch := ts.channel(t)
	declareQueue(t, ch, "ex")
	if _, err := ch.Consume("ex", "only", false, true, false, false, nil); err != nil {
		t.Fatal(err)
	}
	other := ts.channel(t)
	_, err := other.Consume("ex", "second", false, false, false, false, nil)
	if e := amqpErr(t, err); e.Code != 403 || e.Reason != "ACCESS_REFUSED - queue 'ex' in vhost '/' in exclusive use" {
		t.Errorf("second consumer of an exclusively consumed queue: got %d %q", e.Code, e.Reason)
	}

	ch2 := ts.channel(t)
	declareQueue(t, ch2, "prio")
	low, _ := ch2.Consume("prio", "low", false, false, false, false, amqp091.Table{"x-priority": int32(1)})
	high, _ := ch2.Consume("prio", "high", false, false, false, false, amqp091.Table{"x-priority": int32(10)})
	publishN(t, ts, ch2, "prio", 0)
	for i := 0; i < 3; i++ {
		publish(t, ch2, "", "prio", "m")
		recv(t, high)
	}
	noDelivery(t, ch2, low)
	_, err = ch2.Consume("prio", "bad", false, false, false, false, amqp091.Table{"x-priority": "high"})
	if e := amqpErr(t, err); e.Code != 406 {
		t.Errorf("x-priority of the wrong type: got %d %q, want 406", e.Code, e.Reason)
	}
}

func TestChannelFlowPausesDeliveries(t *testing.T) {
	ts := startServer(t)
	ch := ts.channel(t)
	declareQueue(t, ch, "f")
	msgs, _ := ch.Consume("f", "", false, false, false, false, nil)
	if err := ch.Flow(false); err != nil {
		t.Fatal(err)
	}
	publishN(t, ts, ch, "f", 0)
	publish(t, ch, "", "f", "held")
	waitFor(t, "handed to the consumer", func() bool { n, _ := ts.depth("f"); return n == 0 })
	noDelivery(t, ch, msgs)
	if err := ch.Flow(true); err != nil {
		t.Fatal(err)
	}
	if d := recv(t, msgs); string(d.Body) != "held" || d.DeliveryTag != 1 {
		t.Errorf("after flow on: %q tag %d", d.Body, d.DeliveryTag)
	}
}

func TestRecoverRequeuesUnacked(t *testing.T) {
	ts := startServer(t)
	ch := ts.channel(t)
	declareQueue(t, ch, "r")
	msgs, _ := ch.Consume("r", "", false, false, false, false, nil)
	publish(t, ch, "", "r", "again")
	recv(t, msgs)
	if err := ch.Recover(true); err != nil {
		t.Fatal(err)
	}
	d := recv(t, msgs)
	if !d.Redelivered || string(d.Body) != "again" || d.DeliveryTag != 2 {
		t.Errorf("after recover: %q redelivered %v tag %d", d.Body, d.Redelivered, d.DeliveryTag)
	}
	err := ch.Recover(false)
	if e := amqpErr(t, err); e.Code != 540 {
		t.Errorf("recover requeue=false: got %d %q, want 540 NOT_IMPLEMENTED", e.Code, e.Reason)
	}
}

func TestTransactionsCoverPublishesAndAcks(t *testing.T) {
	ts := startServer(t)
	ch := ts.channel(t)
	declareQueue(t, ch, "tx")
	publishN(t, ts, ch, "tx", 1)
	if err := ch.Tx(); err != nil {
		t.Fatal(err)
	}
	d, ok, err := ch.Get("tx", false)
	if err != nil || !ok {
		t.Fatalf("get: %v %v", ok, err)
	}
	publish(t, ch, "", "tx", "rolled back")
	if err := d.Ack(false); err != nil {
		t.Fatal(err)
	}
	if err := ch.TxRollback(); err != nil {
		t.Fatal(err)
	}
	if n, _ := ts.depth("tx"); n != 0 {
		t.Errorf("a rolled-back publish reached the queue: depth %d", n)
	}
	// The rolled-back ack is undone: the delivery is unacked again.
	publish(t, ch, "", "tx", "committed")
	if err := d.Ack(false); err != nil {
		t.Fatal(err)
	}
	if err := ch.TxCommit(); err != nil {
		t.Fatal(err)
	}
	if n, _ := ts.depth("tx"); n != 1 {
		t.Errorf("after commit: depth %d, want 1", n)
	}
	if err := ch.Confirm(false); err == nil {
		t.Errorf("confirm.select on a tx channel succeeded")
	} else if e := amqpErr(t, err); e.Code != 406 {
		t.Errorf("confirm.select on a tx channel: got %d %q, want 406", e.Code, e.Reason)
	}
}

// TestMethodsAfterAPublishSeeIt: publishes are appended asynchronously,
// but a basic.get, a passive queue.declare's count, a purge and a delete
// read after a publish on the same connection see it, as on a RabbitMQ
// classic queue (one run in twenty missed it before).
func TestMethodsAfterAPublishSeeIt(t *testing.T) {
	ts := startServer(t)
	ch := ts.channel(t)
	for i := range 30 {
		q := fmt.Sprint("seen-", i)
		declareQueue(t, ch, q)
		publish(t, ch, "", q, "a")
		if d, ok, err := ch.Get(q, true); err != nil || !ok || string(d.Body) != "a" {
			t.Fatalf("round %d: get after a publish: ok=%v err=%v", i, ok, err)
		}
		publish(t, ch, "", q, "b")
		if info, err := ch.QueueDeclarePassive(q, false, false, false, false, nil); err != nil || info.Messages != 1 {
			t.Fatalf("round %d: passive declare after a publish: %+v %v, want 1 message", i, info, err)
		}
		publish(t, ch, "", q, "c")
		if n, err := ch.QueuePurge(q, false); err != nil || n != 2 {
			t.Fatalf("round %d: purge after a publish: %d %v, want 2", i, n, err)
		}
		publish(t, ch, "", q, "d")
		if n, err := ch.QueueDelete(q, false, false, false); err != nil || n != 1 {
			t.Fatalf("round %d: delete after a publish: %d %v, want 1", i, n, err)
		}
	}
}

// A channel closed with acknowledgements in a transaction it never
// committed returns those deliveries to their queue, as RabbitMQ does,
// with the connection still open: they are not left held by the channel.
func TestClosingATransactionalChannelReturnsItsUncommittedAcks(t *testing.T) {
	ts := startServer(t)
	conn := ts.dial(t)
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	declareQueue(t, ch, "txclose")
	publishN(t, ts, ch, "txclose", 2)
	if err := ch.Tx(); err != nil {
		t.Fatal(err)
	}
	msgs, err := ch.Consume("txclose", "", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	recv(t, msgs)
	last := recv(t, msgs)
	if err := last.Ack(true); err != nil {
		t.Fatal(err)
	}
	if err := ch.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "both deliveries back in the queue", func() bool { n, _ := ts.depth("txclose"); return n == 2 })
	other, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		d, ok, err := other.Get("txclose", false)
		if err != nil || !ok || !d.Redelivered {
			t.Fatalf("get %d after the close: ok=%v redelivered=%v err=%v, want a redelivery", i, ok, d.Redelivered, err)
		}
	}
}

func TestTxCommitWithoutSelectIs406(t *testing.T) {
	ts := startServer(t)
	ch := ts.channel(t)
	err := ch.TxCommit()
	if e := amqpErr(t, err); e.Code != 406 || e.Reason != "PRECONDITION_FAILED - channel is not transactional" {
		t.Errorf("got %d %q", e.Code, e.Reason)
	}
}

func TestDirectReplyTo(t *testing.T) {
	ts := startServer(t)
	client := ts.channel(t)
	server := ts.channel(t)
	declareQueue(t, server, "rpc")
	requests, _ := server.Consume("rpc", "", true, false, false, false, nil)
	replies, err := client.Consume("amq.rabbitmq.reply-to", "", true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := client.PublishWithContext(context.Background(), "", "rpc", false, false,
		amqp091.Publishing{ReplyTo: "amq.rabbitmq.reply-to", CorrelationId: "7", Body: []byte("ping")}); err != nil {
		t.Fatal(err)
	}
	req := recv(t, requests)
	if !strings.HasPrefix(req.ReplyTo, "amq.rabbitmq.reply-to.") {
		t.Fatalf("reply_to was not rewritten: %q", req.ReplyTo)
	}
	if err := server.PublishWithContext(context.Background(), "", req.ReplyTo, false, false,
		amqp091.Publishing{CorrelationId: req.CorrelationId, Body: []byte("pong")}); err != nil {
		t.Fatal(err)
	}
	rep := recv(t, replies)
	if string(rep.Body) != "pong" || rep.CorrelationId != "7" {
		t.Errorf("reply %q corr %q", rep.Body, rep.CorrelationId)
	}
	// Without a reply consumer, publishing with reply_to set is refused:
	// a channel error, the connection lives on.
	conn := ts.dial(t)
	other, _ := conn.Channel()
	closed := other.NotifyClose(make(chan *amqp091.Error, 1))
	_ = other.PublishWithContext(context.Background(), "", "rpc", false, false, amqp091.Publishing{ReplyTo: "amq.rabbitmq.reply-to"})
	if e := closeReason(t, closed); e.Code != 406 || e.Reason != "PRECONDITION_FAILED - fast reply consumer does not exist" {
		t.Errorf("got %d %q", e.Code, e.Reason)
	}
	if _, err := conn.Channel(); err != nil {
		t.Errorf("the connection did not survive a channel error: %v", err)
	}
}

func TestNackMultipleRequeuesEverythingUpToTheTag(t *testing.T) {
	ts := startServer(t)
	ch := ts.channel(t)
	declareQueue(t, ch, "nm")
	msgs, _ := ch.Consume("nm", "", false, false, false, false, nil)
	for i := 0; i < 3; i++ {
		publish(t, ch, "", "nm", fmt.Sprint(i))
	}
	var last amqp091.Delivery
	for i := 0; i < 3; i++ {
		last = recv(t, msgs)
	}
	if err := last.Nack(true, true); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for i := 0; i < 3; i++ {
		d := recv(t, msgs)
		if !d.Redelivered {
			t.Errorf("%q not marked redelivered", d.Body)
		}
		seen[string(d.Body)] = true
		_ = d.Ack(false)
	}
	if len(seen) != 3 {
		t.Errorf("redelivered %v, want all three", seen)
	}
}

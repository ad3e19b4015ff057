package amqp

import (
	"strings"
	"testing"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/ferry-mq/ferry/internal/auth"
	"github.com/ferry-mq/ferry/internal/base"
)

func TestExchangeDeclarePassiveDeleteIfUnusedAndBuiltins(t *testing.T) {
	ts := startServer(t)
	conn := ts.dial(t)
	ch, _ := conn.Channel()
	for _, name := range []string{"amq.direct", "amq.fanout", "amq.topic", "amq.headers", "amq.match"} {
		if err := ch.ExchangeDeclarePassive(name, "direct", true, false, false, false, nil); err != nil {
			t.Errorf("passive declare of %s: %v", name, err)
		}
	}
	if err := ch.ExchangeDeclare("orders", "topic", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	declareQueue(t, ch, "eu")
	if err := ch.QueueBind("eu", "order.eu.*", "orders", false, nil); err != nil {
		t.Fatal(err)
	}
	closed := ch.NotifyClose(make(chan *amqp091.Error, 1))
	err := ch.ExchangeDelete("orders", true, false)
	if e := amqpErr(t, err); e.Code != 406 {
		t.Errorf("delete if-unused of a bound exchange: got %d %q, want 406", e.Code, e.Reason)
	}
	closeReason(t, closed)

	ch, _ = conn.Channel()
	if err := ch.QueueUnbind("eu", "order.eu.*", "orders", nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.ExchangeDelete("orders", true, false); err != nil {
		t.Errorf("delete if-unused of an unbound exchange: %v", err)
	}
	err = ch.ExchangeDeclarePassive("orders", "topic", true, false, false, false, nil)
	if e := amqpErr(t, err); e.Code != 404 || e.Reason != "NOT_FOUND - no exchange 'orders' in vhost '/'" {
		t.Errorf("passive declare of a deleted exchange: got %d %q", e.Code, e.Reason)
	}
}

// TestUnbindingFromOrToAMissingResourceIsANoOp: as RabbitMQ 3.10, an
// unbind whose queue or exchange is gone answers unbind-ok, so that
// clean-up after a delete keeps its channel; the default exchange is
// still refused, passive declare included.
func TestUnbindingFromOrToAMissingResourceIsANoOp(t *testing.T) {
	ts := startServer(t)
	ch := ts.channel(t)
	declareQueue(t, ch, "kept")
	if err := ch.ExchangeDeclare("kept-x", "direct", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	for what, unbind := range map[string]func() error{
		"queue from a missing exchange":     func() error { return ch.QueueUnbind("kept", "k", "gone-x", nil) },
		"missing queue from an exchange":    func() error { return ch.QueueUnbind("gone", "k", "kept-x", nil) },
		"exchange from a missing exchange":  func() error { return ch.ExchangeUnbind("kept-x", "k", "gone-x", false, nil) },
		"missing exchange from an exchange": func() error { return ch.ExchangeUnbind("gone-x", "k", "kept-x", false, nil) },
	} {
		if err := unbind(); err != nil {
			t.Errorf("unbind %s: %v, want unbind-ok", what, err)
		}
	}
	closed := ch.NotifyClose(make(chan *amqp091.Error, 1))
	err := ch.ExchangeDeclarePassive("", "direct", true, false, false, false, nil)
	if e := amqpErr(t, err); e.Code != 403 {
		t.Errorf("passive declare of the default exchange: got %d %q, want 403", e.Code, e.Reason)
	}
	closeReason(t, closed)
}

// TestAPublishToAMissingExchangeInConfirmModeGetsNoNack: the channel is
// closed with 404, as RabbitMQ does, and no basic.nack precedes the close
// (RabbitMQ sends none): the publish is neither confirmed nor refused.
func TestAPublishToAMissingExchangeInConfirmModeGetsNoNack(t *testing.T) {
	ts := startServer(t)
	ch, confirms := confirmedChannel(t, ts)
	closed := ch.NotifyClose(make(chan *amqp091.Error, 1))
	publish(t, ch, "no-such-exchange", "k", "lost")
	if e := closeReason(t, closed); e.Code != 404 {
		t.Errorf("channel closed with %d %q, want 404", e.Code, e.Reason)
	}
	for c := range confirms { // amqp091-go closes it with the channel
		t.Errorf("confirm %+v before the channel's close, want none", c)
	}
}

func TestUnknownExchangeTypeClosesTheConnectionWith503(t *testing.T) {
	ts := startServer(t)
	conn := ts.dial(t)
	ch, _ := conn.Channel()
	closed := conn.NotifyClose(make(chan *amqp091.Error, 1))
	err := ch.ExchangeDeclare("x", "x-no-such-plugin", false, false, false, false, nil)
	e := amqpErr(t, err)
	if e.Code != 503 || !strings.Contains(e.Reason, "unknown exchange type 'x-no-such-plugin'") {
		t.Errorf("got %d %q, want 503 unknown exchange type", e.Code, e.Reason)
	}
	if e := closeReason(t, closed); e.Code != 503 {
		t.Errorf("connection closed with %d, want 503", e.Code)
	}
}

func TestExchangeToExchangeBindingAndDefaultExchange(t *testing.T) {
	ts := startServer(t)
	ch := ts.channel(t)
	if err := ch.ExchangeDeclare("front", "fanout", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.ExchangeDeclare("back", "direct", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.ExchangeBind("back", "k", "front", false, nil); err != nil {
		t.Fatal(err)
	}
	declareQueue(t, ch, "sink")
	if err := ch.QueueBind("sink", "k", "back", false, nil); err != nil {
		t.Fatal(err)
	}
	publish(t, ch, "front", "k", "via e2e")
	publish(t, ch, "", "sink", "via default")
	msgs, _ := ch.Consume("sink", "", true, false, false, false, nil)
	got := []string{string(recv(t, msgs).Body), string(recv(t, msgs).Body)}
	if got[0] != "via e2e" || got[1] != "via default" {
		t.Errorf("got %q, want [via e2e, via default]", got)
	}
	if err := ch.ExchangeUnbind("back", "k", "front", false, nil); err != nil {
		t.Fatal(err)
	}
	publish(t, ch, "front", "k", "dropped")
	noDelivery(t, ch, msgs)
}

func TestQueueDeclareServerNamedCountsAndShortcuts(t *testing.T) {
	ts := startServer(t)
	ch := ts.channel(t)
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(q.Name, "amq.gen-") {
		t.Errorf("server-named queue %q, want amq.gen-...", q.Name)
	}
	// The spec's shortcuts: an empty queue name is the last declared
	// queue; bound with an empty key, the key is that queue's name.
	if err := ch.QueueBind("", "", "amq.direct", false, nil); err != nil {
		t.Fatal(err)
	}
	publish(t, ch, "amq.direct", q.Name, "1")
	publish(t, ch, "", q.Name, "2")
	waitFor(t, "two messages", func() bool { n, _ := ts.depth(q.Name); return n == 2 })
	if _, err := ch.Consume(q.Name, "c", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "both delivered", func() bool { n, _ := ts.depth(q.Name); return n == 0 })
	p, err := ch.QueueDeclarePassive(q.Name, false, true, true, false, nil)
	if err != nil || p.Consumers != 1 || p.Messages != 0 {
		t.Errorf("passive declare: %+v err %v, want 1 consumer 0 messages", p, err)
	}
}

func TestExclusiveQueueOfAnotherConnectionIsLocked(t *testing.T) {
	ts := startServer(t)
	owner := ts.channel(t)
	if _, err := owner.QueueDeclare("mine", false, false, true, false, nil); err != nil {
		t.Fatal(err)
	}
	other := ts.channel(t)
	_, err := other.QueueDeclare("mine", false, false, true, false, nil)
	if e := amqpErr(t, err); e.Code != 405 || !strings.HasPrefix(e.Reason, "RESOURCE_LOCKED - cannot obtain exclusive access to locked queue 'mine'") {
		t.Errorf("got %d %q, want 405 RESOURCE_LOCKED", e.Code, e.Reason)
	}
}

func TestPurgeAndDeleteReportMessageCounts(t *testing.T) {
	ts := startServer(t)
	conn := ts.dial(t)
	ch, _ := conn.Channel()
	declareQueue(t, ch, "p")
	for i := 0; i < 3; i++ {
		publish(t, ch, "", "p", "m")
	}
	waitFor(t, "three messages", func() bool { n, _ := ts.depth("p"); return n == 3 })
	n, err := ch.QueuePurge("p", false)
	if err != nil || n != 3 {
		t.Errorf("purge: %d %v, want 3", n, err)
	}
	publish(t, ch, "", "p", "m")
	waitFor(t, "one message", func() bool { n, _ := ts.depth("p"); return n == 1 })
	_, err = ch.QueueDelete("p", false, true, false)
	if e := amqpErr(t, err); e.Code != 406 || !strings.HasPrefix(e.Reason, "PRECONDITION_FAILED - queue 'p' in vhost '/'") || !strings.HasSuffix(e.Reason, "not empty") {
		t.Errorf("delete if-empty of a non-empty queue: got %d %q", e.Code, e.Reason)
	}
	ch, _ = conn.Channel()
	if n, err := ch.QueueDelete("p", false, false, false); err != nil || n != 1 {
		t.Errorf("delete: %d %v, want 1", n, err)
	}
}

func TestPassiveDeclareOfMissingQueueClosesOnlyTheChannel(t *testing.T) {
	ts := startServer(t)
	conn := ts.dial(t)
	ch, _ := conn.Channel()
	_, err := ch.QueueDeclarePassive("ghost", false, false, false, false, nil)
	if e := amqpErr(t, err); e.Code != 404 || e.Reason != "NOT_FOUND - no queue 'ghost' in vhost '/'" {
		t.Errorf("got %d %q", e.Code, e.Reason)
	}
	if _, err := ch.QueueDeclare("x", false, false, false, false, nil); err != amqp091.ErrClosed {
		t.Errorf("the failed channel: got %v, want ErrClosed", err)
	}
	ch2, err := conn.Channel()
	if err != nil {
		t.Fatalf("the connection should survive: %v", err)
	}
	declareQueue(t, ch2, "alive")
}

// TestAccessRefusedIs403: a user with a permission in "/" that does not
// cover a queue gets 403 ACCESS_REFUSED in RabbitMQ's words (which name
// the permission: configure) from a real amqp091-go client; the channel
// closes, the connection stays.
func TestAccessRefusedIs403(t *testing.T) {
	ts := startServer(t)
	putUser(t, ts, "alice", "secret", auth.Permission{Tenant: "/", Configure: "^allowed$", Write: ".*", Read: ".*"})
	c := ts.dialAs(t, "alice", "secret")
	ch, _ := c.Channel()
	_, err := ch.QueueDeclare("forbidden", false, false, false, false, nil)
	if e := amqpErr(t, err); e.Code != 403 || e.Reason != "ACCESS_REFUSED - configure access to queue 'forbidden' in vhost '/' refused for user 'alice'" {
		t.Errorf("got %d %q", e.Code, e.Reason)
	}
	if c.IsClosed() {
		t.Errorf("the connection closed; a 403 closes only the channel")
	}
	ch2, err := c.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch2.QueueDeclare("allowed", false, true, false, false, nil); err != nil {
		t.Errorf("declaring a queue alice may configure: %v", err)
	}
}

func TestAccessRefusedIs403OnTheDouble(t *testing.T) {
	// The double knows a user "alice" without rights on "forbidden".
	ts := startFakeServer(t)
	c := ts.dialAs(t, "alice", "secret")
	ch, _ := c.Channel()
	_, err := ch.QueueDeclare("forbidden", false, false, false, false, nil)
	if e := amqpErr(t, err); e.Code != 403 || e.Reason != "ACCESS_REFUSED - access to queue 'forbidden' in vhost '/' refused for user 'alice'" {
		t.Errorf("got %d %q", e.Code, e.Reason)
	}
}

func TestPublishToAnInternalExchangeIs403(t *testing.T) {
	ts := startServer(t)
	ch := ts.channel(t)
	if err := ch.ExchangeDeclare("inside", "fanout", false, false, true, false, nil); err != nil {
		t.Fatal(err)
	}
	closed := ch.NotifyClose(make(chan *amqp091.Error, 1))
	publish(t, ch, "inside", "", "m")
	if e := closeReason(t, closed); e.Code != 403 {
		t.Errorf("publish to an internal exchange: got %d %q, want 403", e.Code, e.Reason)
	}
}

func TestReservedQueueNameIs403AndBadArgumentIs406(t *testing.T) {
	ts := startServer(t)
	conn := ts.dial(t)
	ch, _ := conn.Channel()
	_, err := ch.QueueDeclare("amq.mine", false, false, false, false, nil)
	if e := amqpErr(t, err); e.Code != 403 {
		t.Errorf("amq. prefix: got %d %q, want 403", e.Code, e.Reason)
	}
	ch, _ = conn.Channel()
	_, err = ch.QueueDeclare("bad", false, false, false, false, amqp091.Table{"x-max-length": "many"})
	if e := amqpErr(t, err); e.Code != 406 || !strings.Contains(e.Reason, "invalid arg 'x-max-length'") {
		t.Errorf("bad argument: got %d %q, want 406", e.Code, e.Reason)
	}
}

func TestAutoDeleteQueueAndExchange(t *testing.T) {
	ts := startServer(t)
	conn := ts.dial(t)
	ch, _ := conn.Channel()
	if _, err := ch.QueueDeclare("ephemeral", false, true, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.Consume("ephemeral", "only", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.Cancel("only", false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the auto-delete queue gone after its last consumer", func() bool { _, ok := ts.depth("ephemeral"); return !ok })

	if err := ch.ExchangeDeclare("ad-src", "fanout", false, true, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.ExchangeDeclare("ad-dst", "fanout", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.ExchangeBind("ad-dst", "", "ad-src", false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.ExchangeUnbind("ad-dst", "", "ad-src", false, nil); err != nil {
		t.Fatal(err)
	}
	err := ch.ExchangeDeclarePassive("ad-src", "fanout", false, true, false, false, nil)
	if e := amqpErr(t, err); e.Code != 404 {
		t.Errorf("auto-delete exchange after its last binding went: got %d %q, want 404", e.Code, e.Reason)
	}
}

func TestQueueDeleteIfUnusedRefusesAQueueWithConsumers(t *testing.T) {
	ts := startServer(t)
	conn := ts.dial(t)
	ch, _ := conn.Channel()
	declareQueue(t, ch, "busy")
	if _, err := ch.Consume("busy", "c", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	other, _ := conn.Channel()
	_, err := other.QueueDelete("busy", true, false, false)
	if e := amqpErr(t, err); e.Code != 406 || !strings.HasPrefix(e.Reason, "PRECONDITION_FAILED - queue 'busy' in vhost '/'") || !strings.HasSuffix(e.Reason, "in use") {
		t.Errorf("delete if-unused of a consumed queue: got %d %q, want 406 ... in use", e.Code, e.Reason)
	}
	if _, ok := ts.depth("busy"); !ok {
		t.Fatalf("the refused delete removed the queue")
	}
	if err := ch.Cancel("c", false); err != nil {
		t.Fatal(err)
	}
	other, _ = conn.Channel()
	if _, err := other.QueueDelete("busy", true, false, false); err != nil {
		t.Errorf("delete if-unused once its consumer is gone: %v", err)
	}
	if _, ok := ts.depth("busy"); ok {
		t.Errorf("the queue is still there after delete if-unused")
	}
}

// TestBrokerOverloadAndFailureCloseTheConnectionWith506And541: the reply
// codes of the broker's transient overload and of its failures, on the
// wire (the test double makes the broker fail on demand).
func TestBrokerOverloadAndFailureCloseTheConnectionWith506And541(t *testing.T) {
	ts := startFakeServer(t)
	for _, tc := range []struct {
		err  error
		code int
		text string
	}{
		{base.Errorf(base.CodeOverloaded, "memory watermark crossed"), 506, "RESOURCE_ERROR - memory watermark crossed"},
		{base.Errorf(base.CodeNoSpace, "disk full"), 506, "RESOURCE_ERROR - disk full"},
		{base.Errorf(base.CodeStorageFailed, "fsync failed"), 541, "INTERNAL_ERROR - fsync failed"},
		{base.Errorf(base.CodeInternal, "a bug"), 541, "INTERNAL_ERROR - a bug"},
	} {
		ts.b.mu.Lock()
		ts.b.declareErr = tc.err
		ts.b.mu.Unlock()
		conn := ts.dial(t)
		closed := conn.NotifyClose(make(chan *amqp091.Error, 1))
		ch, err := conn.Channel()
		if err != nil {
			t.Fatal(err)
		}
		_, err = ch.QueueDeclare("q", false, false, false, false, nil)
		if e := amqpErr(t, err); e.Code != tc.code || e.Reason != tc.text {
			t.Errorf("broker error %v: got %d %q, want %d %q", tc.err, e.Code, e.Reason, tc.code, tc.text)
		}
		if e := closeReason(t, closed); e.Code != tc.code {
			t.Errorf("broker error %v: the connection closed with %d, want %d (a connection error)", tc.err, e.Code, tc.code)
		}
	}
	ts.b.mu.Lock()
	ts.b.declareErr = nil
	ts.b.mu.Unlock()
	declareQueue(t, ts.channel(t), "after") // the server serves on
}

package amqp

import (
	"bytes"
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

func TestHandshakeAdvertisesCapabilitiesAndNegotiatesTune(t *testing.T) {
	ts := startServer(t)
	c := ts.dialConfig(t, amqp091.Config{ChannelMax: 100, FrameSize: 8192})
	caps, _ := c.Properties["capabilities"].(amqp091.Table)
	for _, k := range []string{"publisher_confirms", "exchange_exchange_bindings", "basic.nack", "consumer_cancel_notify",
		"connection.blocked", "authentication_failure_close", "per_consumer_qos", "direct_reply_to"} {
		if v, _ := caps[k].(bool); !v {
			t.Errorf("capability %s: got %v, want true", k, caps[k])
		}
	}
	if got := c.Properties["product"]; got != "Ferry" {
		t.Errorf("product: got %v, want Ferry", got)
	}
	if c.Config.ChannelMax != 100 || c.Config.FrameSize != 8192 {
		t.Errorf("negotiated channel_max %d frame_max %d, want 100 and 8192", c.Config.ChannelMax, c.Config.FrameSize)
	}
	if c.Major != 0 || c.Minor != 9 {
		t.Errorf("version %d.%d, want 0.9", c.Major, c.Minor)
	}
}

func TestAuthPlainAndAMQPlain(t *testing.T) {
	ts := startServer(t)
	for _, mech := range []amqp091.Authentication{
		&amqp091.PlainAuth{Username: "guest", Password: "guest"},
		&amqp091.AMQPlainAuth{Username: "guest", Password: "guest"},
	} {
		c, err := amqp091.DialConfig(ts.url, amqp091.Config{SASL: []amqp091.Authentication{mech}, Heartbeat: time.Hour})
		if err != nil {
			t.Fatalf("%s: dial: %v", mech.Mechanism(), err)
		}
		_ = c.Close()
		bad := []amqp091.Authentication{&amqp091.PlainAuth{Username: "guest", Password: "wrong"}}
		if mech.Mechanism() == "AMQPLAIN" {
			bad = []amqp091.Authentication{&amqp091.AMQPlainAuth{Username: "nobody", Password: "wrong"}}
		}
		_, err = amqp091.DialConfig(ts.url, amqp091.Config{SASL: bad, Heartbeat: time.Hour})
		if err != amqp091.ErrCredentials {
			t.Errorf("%s with a wrong password: got %v, want ErrCredentials (the socket closed without a word)", mech.Mechanism(), err)
		}
	}
}

func TestOpenUnknownVhostIsNotAllowed(t *testing.T) {
	ts := startServer(t)
	_, err := amqp091.DialConfig(ts.url+"nowhere", amqp091.Config{Heartbeat: time.Hour})
	e := amqpErr(t, err)
	if e.Code != 530 || e.Reason != "NOT_ALLOWED - vhost nowhere not found" {
		t.Errorf("got %d %q, want 530 NOT_ALLOWED - vhost nowhere not found", e.Code, e.Reason)
	}
}

// allProperties sets every one of the 14 basic properties, with a headers
// table holding every field type.
func allProperties() amqp091.Publishing {
	return amqp091.Publishing{
		ContentType:     "application/json",
		ContentEncoding: "gzip",
		Headers: amqp091.Table{
			"bool": true, "int8": int8(-8), "uint8": uint8(8), "int16": int16(-16), "uint16": uint16(16),
			"int32": int32(-32), "uint32": uint32(32), "int64": int64(-64), "float32": float32(1.5),
			"float64": 2.25, "decimal": amqp091.Decimal{Scale: 2, Value: 12345}, "string": "text",
			"bytes": []byte{0, 1, 2}, "time": time.Unix(1700000000, 0), "void": nil,
			"table": amqp091.Table{"nested": amqp091.Table{"deep": "yes"}},
			"array": []interface{}{"a", int32(1), amqp091.Table{"x": true}},
		},
		DeliveryMode:  amqp091.Persistent,
		Priority:      7,
		CorrelationId: "corr-1",
		ReplyTo:       "replies",
		Expiration:    "60000",
		MessageId:     "msg-1",
		Timestamp:     time.Unix(1700000001, 0),
		Type:          "order.created",
		UserId:        "guest",
		AppId:         "ferry-test",
		Body:          []byte(`{"hello":"world"}`),
	}
}

func TestPublishConsumeCarriesAllPropertiesAndHeaderTypes(t *testing.T) {
	ts := startServer(t)
	ch := ts.channel(t)
	q := declareQueue(t, ch, "props")
	msgs, err := ch.Consume(q.Name, "c1", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := allProperties()
	if err := ch.PublishWithContext(context.Background(), "", q.Name, false, false, want); err != nil {
		t.Fatal(err)
	}
	d := recv(t, msgs)
	got := amqp091.Publishing{ContentType: d.ContentType, ContentEncoding: d.ContentEncoding, Headers: d.Headers,
		DeliveryMode: d.DeliveryMode, Priority: d.Priority, CorrelationId: d.CorrelationId, ReplyTo: d.ReplyTo,
		Expiration: d.Expiration, MessageId: d.MessageId, Timestamp: d.Timestamp, Type: d.Type, UserId: d.UserId,
		AppId: d.AppId, Body: d.Body}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("delivered message:\n got %#v\nwant %#v", got, want)
	}
	if d.ConsumerTag != "c1" || d.DeliveryTag != 1 || d.Redelivered || d.RoutingKey != "props" || d.Exchange != "" {
		t.Errorf("deliver: got tag %q/%d redelivered %v key %q exchange %q", d.ConsumerTag, d.DeliveryTag, d.Redelivered, d.RoutingKey, d.Exchange)
	}
	if err := d.Ack(false); err != nil {
		t.Fatal(err)
	}
}

func TestBodiesAreSplitByFrameMax(t *testing.T) {
	ts := startServer(t)
	c := ts.dialConfig(t, amqp091.Config{FrameSize: 4096})
	ch, err := c.Channel()
	if err != nil {
		t.Fatal(err)
	}
	q := declareQueue(t, ch, "big")
	body := bytes.Repeat([]byte("0123456789abcdef"), 100_000) // 1.6 MB: ~400 frames each way
	if err := ch.PublishWithContext(context.Background(), "", q.Name, false, false, amqp091.Publishing{Body: body}); err != nil {
		t.Fatal(err)
	}
	msgs, err := ch.Consume(q.Name, "", true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d := recv(t, msgs); !bytes.Equal(d.Body, body) {
		t.Errorf("body of %d bytes came back as %d bytes (or different)", len(body), len(d.Body))
	}
}

func TestOversizeMessageClosesTheChannelWith406(t *testing.T) {
	ts := startServer(t, func(c *Config) { c.MessageBytesMax = 1000 })
	conn := ts.dial(t)
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	closed := ch.NotifyClose(make(chan *amqp091.Error, 1))
	publish(t, ch, "", "q", string(make([]byte, 1000))) // at the limit: fine
	if err := ch.PublishWithContext(context.Background(), "", "q", false, false, amqp091.Publishing{Body: make([]byte, 1001)}); err != nil {
		t.Fatal(err)
	}
	e := closeReason(t, closed)
	if e.Code != 406 || e.Reason != "PRECONDITION_FAILED - message size 1001 is larger than configured max size 1000" {
		t.Errorf("got %d %q", e.Code, e.Reason)
	}
	if _, err := conn.Channel(); err != nil {
		t.Errorf("the connection should survive a channel error: %v", err)
	}
}

func TestPublisherConfirmsAckAndNack(t *testing.T) {
	// A queue that refuses publishes beyond 50 messages (x-overflow
	// reject-publish): the first 50 are acked, the 51st nacked.
	ts := startServer(t)
	ch := ts.channel(t)
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	confirms := ch.NotifyPublish(make(chan amqp091.Confirmation, 100))
	if _, err := ch.QueueDeclare("confirmed", true, false, false, false,
		amqp091.Table{"x-max-length": int32(50), "x-overflow": "reject-publish"}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 50; i++ {
		publish(t, ch, "", "confirmed", fmt.Sprint(i))
	}
	for i := uint64(1); i <= 50; i++ {
		c := <-confirms
		if c.DeliveryTag != i || !c.Ack {
			t.Fatalf("confirm %d: got tag %d ack %v", i, c.DeliveryTag, c.Ack)
		}
	}
	publish(t, ch, "", "confirmed", "rejected")
	if c := <-confirms; c.DeliveryTag != 51 || c.Ack {
		t.Errorf("publish over x-max-length with reject-publish: got tag %d ack %v, want 51 nack", c.DeliveryTag, c.Ack)
	}
	if n, _ := ts.depth("confirmed"); n != 50 {
		t.Errorf("queue depth %d, want 50", n)
	}
}

func TestConfirmsAreSentInOrderWithMultiple(t *testing.T) {
	// Hold the broker's outcomes, publish three, release: the three
	// outcomes arrive together and are confirmed in order. (The test
	// double, which can hold outcomes.)
	ts := startFakeServer(t)
	ch := ts.channel(t)
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	declareQueue(t, ch, "q")
	acks, nacks := ch.NotifyConfirm(make(chan uint64, 10), make(chan uint64, 10))
	ts.b.mu.Lock()
	ts.b.holdPublish = true
	ts.b.mu.Unlock()
	for i := 0; i < 3; i++ {
		publish(t, ch, "", "q", "m")
	}
	waitFor(t, "three held publishes", func() bool { ts.b.mu.Lock(); defer ts.b.mu.Unlock(); return len(ts.b.held) >= 1 })
	// The three publishes may have been one batch or several; release
	// them all.
	waitFor(t, "all publishes handed over", func() bool {
		n, _ := ts.depth("q")
		return n == 3
	})
	ts.b.releaseHeld()
	for i := uint64(1); i <= 3; i++ {
		select {
		case tag := <-acks:
			if tag != i {
				t.Fatalf("ack: got %d, want %d", tag, i)
			}
		case tag := <-nacks:
			t.Fatalf("nack %d", tag)
		case <-time.After(10 * time.Second):
			t.Fatalf("no ack %d", i)
		}
	}
}

func TestMandatoryUnroutableIsReturnedBeforeItsAck(t *testing.T) {
	ts := startServer(t)
	ch := ts.channel(t)
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	returns := ch.NotifyReturn(make(chan amqp091.Return, 1))
	confirms := ch.NotifyPublish(make(chan amqp091.Confirmation, 1))
	if err := ch.PublishWithContext(context.Background(), "amq.direct", "nobody", true, false,
		amqp091.Publishing{MessageId: "lost", Body: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	r := <-returns
	if r.ReplyCode != 312 || r.ReplyText != "NO_ROUTE" || r.Exchange != "amq.direct" || r.RoutingKey != "nobody" ||
		r.MessageId != "lost" || string(r.Body) != "x" {
		t.Errorf("return: got %d %q %q %q %q %q", r.ReplyCode, r.ReplyText, r.Exchange, r.RoutingKey, r.MessageId, r.Body)
	}
	if c := <-confirms; !c.Ack || c.DeliveryTag != 1 {
		t.Errorf("confirm after return: got %+v, want ack 1", c)
	}
}

func TestGetAndGetEmpty(t *testing.T) {
	ts := startServer(t)
	ch := ts.channel(t)
	declareQueue(t, ch, "g")
	if _, ok, err := ch.Get("g", false); err != nil || ok {
		t.Fatalf("get on an empty queue: ok %v err %v, want get-empty", ok, err)
	}
	publish(t, ch, "", "g", "one")
	publish(t, ch, "", "g", "two")
	waitFor(t, "two messages", func() bool { n, _ := ts.depth("g"); return n == 2 })
	d, ok, err := ch.Get("g", false)
	if err != nil || !ok || string(d.Body) != "one" || d.MessageCount != 1 || d.DeliveryTag != 1 {
		t.Fatalf("get: %q ok %v count %d tag %d err %v", d.Body, ok, d.MessageCount, d.DeliveryTag, err)
	}
	if err := d.Nack(false, true); err != nil {
		t.Fatal(err)
	}
	d, ok, err = ch.Get("g", true)
	if err != nil || !ok || string(d.Body) != "one" || !d.Redelivered {
		t.Fatalf("get after requeue: %q ok %v redelivered %v err %v", d.Body, ok, d.Redelivered, err)
	}
}

func TestMultipleAckAcrossConsumersOfAChannel(t *testing.T) {
	ts := startServer(t)
	ch := ts.channel(t)
	declareQueue(t, ch, "ma")
	declareQueue(t, ch, "mb")
	da, _ := ch.Consume("ma", "ca", false, false, false, false, nil)
	db, _ := ch.Consume("mb", "cb", false, false, false, false, nil)
	publish(t, ch, "", "ma", "a1")
	recv(t, da)
	publish(t, ch, "", "mb", "b1")
	recv(t, db)
	publish(t, ch, "", "ma", "a2")
	last := recv(t, da)
	if last.DeliveryTag != 3 {
		t.Fatalf("third delivery tag %d, want 3", last.DeliveryTag)
	}
	if err := last.Ack(true); err != nil {
		t.Fatal(err)
	}
	// Everything is acknowledged: closing the channel requeues nothing.
	if err := ch.Close(); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"ma", "mb"} {
		if n, _ := ts.depth(q); n != 0 {
			t.Errorf("queue %s holds %d after multiple ack, want 0", q, n)
		}
	}
}

func TestNackRequeueRedeliversAndRejectDrops(t *testing.T) {
	ts := startServer(t)
	ch := ts.channel(t)
	declareQueue(t, ch, "n")
	msgs, _ := ch.Consume("n", "", false, false, false, false, nil)
	publish(t, ch, "", "n", "m")
	d := recv(t, msgs)
	if err := d.Nack(false, true); err != nil {
		t.Fatal(err)
	}
	d = recv(t, msgs)
	if !d.Redelivered || string(d.Body) != "m" {
		t.Fatalf("redelivery: %q redelivered %v", d.Body, d.Redelivered)
	}
	if err := d.Reject(false); err != nil {
		t.Fatal(err)
	}
	noDelivery(t, ch, msgs)
}

func TestUnknownDeliveryTagClosesTheChannelWith406(t *testing.T) {
	ts := startServer(t)
	ch := ts.channel(t)
	closed := ch.NotifyClose(make(chan *amqp091.Error, 1))
	if err := ch.Ack(42, false); err != nil {
		t.Fatal(err)
	}
	e := closeReason(t, closed)
	if e.Code != 406 || e.Reason != "PRECONDITION_FAILED - unknown delivery tag 42" {
		t.Errorf("got %d %q", e.Code, e.Reason)
	}
}

// TestPublishChecksAreChannelErrors pins a bug: a publish refused when its
// content completed (user_id, expiration, a full transaction) closed the
// whole connection with the soft reply code instead of only the channel.
func TestPublishChecksAreChannelErrors(t *testing.T) {
	ts := startServer(t)
	conn := ts.dial(t)
	for _, tc := range []struct {
		p    amqp091.Publishing
		text string
	}{
		{amqp091.Publishing{UserId: "mallory"}, "PRECONDITION_FAILED - user_id property set to 'mallory' but authenticated user was 'guest'"},
		{amqp091.Publishing{Expiration: "soon"}, "PRECONDITION_FAILED - invalid expiration 'soon': not a non-negative integer"},
	} {
		ch, err := conn.Channel()
		if err != nil {
			t.Fatalf("the connection did not survive the previous channel error: %v", err)
		}
		closed := ch.NotifyClose(make(chan *amqp091.Error, 1))
		_ = ch.PublishWithContext(context.Background(), "", "anywhere", false, false, tc.p)
		if e := closeReason(t, closed); e.Code != 406 || e.Reason != tc.text {
			t.Errorf("got %d %q, want 406 %q", e.Code, e.Reason, tc.text)
		}
	}
}

func TestPublishToAMissingExchangeIs404OnTheChannel(t *testing.T) {
	ts := startServer(t)
	conn := ts.dial(t)
	ch, _ := conn.Channel()
	closed := ch.NotifyClose(make(chan *amqp091.Error, 1))
	publish(t, ch, "no-such-exchange", "k", "m")
	if e := closeReason(t, closed); e.Code != 404 || !strings.Contains(e.Reason, "no-such-exchange") {
		t.Errorf("got %d %q, want 404 naming the exchange", e.Code, e.Reason)
	}
	if _, err := conn.Channel(); err != nil {
		t.Errorf("the connection did not survive: %v", err)
	}
}

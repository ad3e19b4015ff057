package kafka

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/ferry-mq/ferry/internal/broker"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Cross-protocol: messages published the way the AMQP front end publishes
// (broker.Conn.Publish into an exchange bound to a stream) are consumed
// over Kafka, and records produced over Kafka are delivered to a stream
// consumer the way the AMQP front end subscribes (broker.Conn.Subscribe
// with x-stream-offset). The AMQP wire itself is exercised by the AMQP
// front end's tests; test/integration will join the two over sockets
// once the server binary exists.

func guestBrokerConn(t *testing.T, b *broker.Broker) *broker.Conn {
	t.Helper()
	p, err := b.Authenticate("guest", "guest", loopbackAddr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := b.OpenConnection(broker.ConnInfo{ID: "amqp/cross", Protocol: "amqp"}, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func TestCrossProtocolAMQPPublishToKafkaConsumeAndBack(t *testing.T) {
	t.Parallel()
	b, srv := startBroker(t, nil)
	ctx := testCtx(t)
	amqp := guestBrokerConn(t, b)
	if _, err := amqp.DeclareQueue(ctx, broker.QueueSpec{Name: "orders", Durable: true,
		Arguments: broker.Headers{{Key: "x-queue-type", Value: broker.StringValue("stream")}}}); err != nil {
		t.Fatalf("declaring the stream over the AMQP API: %v", err)
	}
	if err := amqp.DeclareExchange(ctx, broker.ExchangeSpec{Name: "shop", Type: "direct", Durable: true}); err != nil {
		t.Fatal(err)
	}
	if err := amqp.Bind(ctx, broker.BindingSpec{Source: "shop", Destination: "orders", DestinationKind: broker.EntityStream, RoutingKey: "order"}); err != nil {
		t.Fatal(err)
	}
	var msgs []broker.Message
	for i := range 5 {
		msgs = append(msgs, broker.Message{RoutingKey: "order", Body: []byte("amqp-" + strconv.Itoa(i)),
			ContentType: "text/plain", MessageID: "m" + strconv.Itoa(i),
			Headers: broker.Headers{{Key: "customer", Value: broker.StringValue("c" + strconv.Itoa(i))}}})
	}
	res, err := amqp.Publish(ctx, "shop", msgs, broker.PublishOptions{Mandatory: true})
	if err != nil {
		t.Fatalf("Publish: %v", err)
	}
	for i, r := range res {
		if r.Err != nil || r.Unroutable {
			t.Fatalf("message %d: %+v", i, r)
		}
	}

	// Kafka sees the stream as a topic, the AMQP properties as headers.
	cons := franzClient(t, srv.addr, kgo.ConsumeTopics("orders"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := consumeN(t, cons, 5)
	for i, r := range got {
		if string(r.Value) != "amqp-"+strconv.Itoa(i) {
			t.Errorf("record %d: value %q", i, r.Value)
		}
		h := map[string]string{}
		for _, kv := range r.Headers {
			h[kv.Key] = string(kv.Value)
		}
		if h["customer"] != "c"+strconv.Itoa(i) || h["amqp.content-type"] != "text/plain" || h["amqp.message-id"] != "m"+strconv.Itoa(i) {
			t.Errorf("record %d: headers %v, want the user header and the AMQP properties", i, h)
		}
	}

	// The reverse: Kafka records reach an AMQP-style stream consumer,
	// their headers as its headers table.
	prod := franzClient(t, srv.addr, kgo.DefaultProduceTopic("orders"))
	for i := range 3 {
		r := &kgo.Record{Key: []byte("k"), Value: []byte("kafka-" + strconv.Itoa(i)), Headers: []kgo.RecordHeader{{Key: "trace", Value: []byte(strconv.Itoa(i))}}}
		if err := prod.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	deliveries := make(chan broker.Delivery, 16)
	sub, err := amqp.Subscribe(ctx, broker.SubscribeOptions{Queue: "orders", Tag: "cross", NoAck: true,
		StreamOffset: &broker.StreamStart{Kind: broker.StreamFirst}}, func(d broker.Delivery) { deliveries <- d }, func(error) {})
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	defer sub.Cancel(context.Background())
	var kafkaBodies []string
	timeout := time.After(30 * time.Second)
	for len(kafkaBodies) < 3 {
		select {
		case d := <-deliveries:
			body := string(d.Message.Body)
			if len(body) > 6 && body[:6] == "kafka-" {
				kafkaBodies = append(kafkaBodies, body)
				if v, ok := d.Message.Headers.Get("trace"); !ok || v.Text() != body[6:] {
					t.Errorf("delivery %q: trace header %v %v, want %s", body, v, ok, body[6:])
				}
				if string(d.Message.Key) != "k" {
					t.Errorf("delivery %q: key %q, want k", body, d.Message.Key)
				}
			}
		case <-timeout:
			t.Fatalf("stream consumer got %v, want the 3 Kafka records", kafkaBodies)
		}
	}
}

package main

// The loadgen.Targets of `ferry bench`: AMQP 0-9-1 (amqp091-go), Kafka
// (franz-go) and the HTTP API. bench/driver has AMQP and Kafka targets
// for the side-by-side harness too, but test/layering does not let cmd/
// import bench/ (see the report of issue 7): these follow the same
// loadgen.Session contract.

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/loadgen"
)

// --- AMQP

type amqpTarget struct{ url string }

func (t *amqpTarget) Connect(ctx context.Context) (loadgen.Session, error) {
	conn, err := amqpDial(t.url)
	if err != nil {
		return nil, err
	}
	ch, err := conn.Channel()
	if err == nil {
		err = ch.Confirm(false)
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("amqp: opening the publishing channel: %w", err)
	}
	return &amqpSession{conn: conn, pub: ch, confirms: loadgen.NewConfirmer()}, nil
}

type amqpSession struct {
	conn     *amqp.Connection
	pub      *amqp.Channel // confirm mode; safe for concurrent publishes
	confirms *loadgen.Confirmer
}

// Declare makes the route a fanout exchange bound to every queue, after
// deleting what an earlier run left.
func (s *amqpSession) Declare(ctx context.Context, topo loadgen.Topology) error {
	ch, err := s.conn.Channel()
	if err != nil {
		return fmt.Errorf("amqp: opening a channel to declare: %w", err)
	}
	defer ch.Close()
	if err := ch.ExchangeDelete(topo.Route, false, false); err != nil {
		return fmt.Errorf("amqp: deleting exchange %q: %w", topo.Route, err)
	}
	if err := ch.ExchangeDeclare(topo.Route, amqp.ExchangeFanout, true, false, false, false, nil); err != nil {
		return fmt.Errorf("amqp: declaring exchange %q: %w", topo.Route, err)
	}
	for _, q := range topo.Queues {
		if _, err := ch.QueueDelete(q, false, false, false); err != nil {
			return fmt.Errorf("amqp: deleting queue %q: %w", q, err)
		}
		if _, err := ch.QueueDeclare(q, true, false, false, false, nil); err != nil {
			return fmt.Errorf("amqp: declaring queue %q: %w", q, err)
		}
		if err := ch.QueueBind(q, "", topo.Route, false, nil); err != nil {
			return fmt.Errorf("amqp: binding queue %q: %w", q, err)
		}
	}
	return nil
}

var errNacked = errors.New("the broker nacked the message")

func (s *amqpSession) Publish(ctx context.Context, route string, body []byte, done func(error)) error {
	dc, err := s.pub.PublishWithDeferredConfirmWithContext(ctx, route, "", false, false,
		amqp.Publishing{DeliveryMode: amqp.Persistent, Body: body})
	if err != nil {
		return fmt.Errorf("amqp: publishing to %q: %w", route, err)
	}
	return s.confirms.Add(ctx, func(ctx context.Context) error {
		acked, err := dc.WaitContext(ctx)
		if err == nil && !acked {
			err = errNacked
		}
		return err
	}, done)
}

func (s *amqpSession) Consume(ctx context.Context, queue string, prefetch int, handle func([]byte)) error {
	ch, err := s.conn.Channel()
	if err != nil {
		return fmt.Errorf("amqp: opening a consumer channel: %w", err)
	}
	if err := ch.Qos(prefetch, 0, false); err != nil {
		ch.Close()
		return fmt.Errorf("amqp: basic.qos %d: %w", prefetch, err)
	}
	deliveries, err := ch.ConsumeWithContext(ctx, queue, "", false, false, false, false, nil)
	if err != nil {
		ch.Close()
		return fmt.Errorf("amqp: consuming %q: %w", queue, err)
	}
	defer closeDrainingAMQP(ch, deliveries)
	for {
		select {
		case d, ok := <-deliveries:
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("amqp: the broker ended the consumer of %q", queue)
			}
			handle(d.Body)
			if err := d.Ack(false); err != nil {
				return fmt.Errorf("amqp: ack on %q: %w", queue, err)
			}
		case <-ctx.Done():
			return nil
		}
	}
}

// closeDrainingAMQP closes a consumer channel while draining its
// deliveries: amqp091-go's Close waits for close-ok, which its reader
// cannot deliver while blocked handing a delivery nobody reads.
func closeDrainingAMQP(ch *amqp.Channel, deliveries <-chan amqp.Delivery) {
	closed := make(chan struct{})
	go func() { // owned here: waited for below
		_ = ch.Close() // the consumer is done either way
		close(closed)
	}()
	for {
		select {
		case _, ok := <-deliveries:
			if !ok {
				deliveries = nil
			}
		case <-closed:
			return
		}
	}
}

func (s *amqpSession) Close() error {
	err := s.conn.Close()
	s.confirms.Close()
	if err != nil && !errors.Is(err, amqp.ErrClosed) {
		return fmt.Errorf("amqp: closing: %w", err)
	}
	return nil
}

// --- Kafka

type kafkaTarget struct {
	p          *protoOpts
	partitions int32
}

func (t *kafkaTarget) Connect(ctx context.Context) (loadgen.Session, error) {
	cl, err := kafkaClient(t.p)
	if err != nil {
		return nil, err
	}
	return &kafkaSession{t: t, cl: cl}, nil
}

type kafkaSession struct {
	t  *kafkaTarget
	cl *kgo.Client
}

// Declare creates the route's topic afresh. Kafka has no queues: every
// queue of the topology reads the whole topic (a fan-out).
func (s *kafkaSession) Declare(ctx context.Context, topo loadgen.Topology) error {
	adm := kadm.NewClient(s.cl)
	if _, err := adm.DeleteTopic(ctx, topo.Route); err != nil && !errors.Is(err, kerr.UnknownTopicOrPartition) {
		return kafkaErr(s.t.p, fmt.Errorf("deleting topic %q: %w", topo.Route, err))
	}
	if _, err := adm.CreateTopic(ctx, max(s.t.partitions, 1), 1, nil, topo.Route); err != nil {
		return kafkaErr(s.t.p, fmt.Errorf("creating topic %q: %w", topo.Route, err))
	}
	return nil
}

// Publish copies body: the client holds the record until it is produced.
func (s *kafkaSession) Publish(ctx context.Context, route string, body []byte, done func(error)) error {
	s.cl.Produce(ctx, &kgo.Record{Topic: route, Value: append([]byte(nil), body...)}, func(_ *kgo.Record, err error) { done(err) })
	return nil
}

// Consume reads the topic of queue ("topic" or "topic/reader") from its
// start.
func (s *kafkaSession) Consume(ctx context.Context, queue string, _ int, handle func([]byte)) error {
	topic := queue
	if i := indexByte(queue, '/'); i >= 0 {
		topic = queue[:i]
	}
	cl, err := kafkaClient(s.t.p, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return err
	}
	defer cl.Close()
	for {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		var ferr error
		fetches.EachError(func(t string, p int32, err error) {
			ferr = errors.Join(ferr, fmt.Errorf("fetching %s[%d]: %w", t, p, err))
		})
		if ferr != nil {
			return kafkaErr(s.t.p, ferr)
		}
		fetches.EachRecord(func(r *kgo.Record) { handle(r.Value) })
	}
}

func indexByte(s string, b byte) int {
	for i := range len(s) {
		if s[i] == b {
			return i
		}
	}
	return -1
}

func (s *kafkaSession) Close() error {
	s.cl.Close() // fails outstanding produces' promises
	return nil
}

// --- HTTP

type httpTarget struct{ o *clientOpts }

func (t *httpTarget) Connect(ctx context.Context) (loadgen.Session, error) {
	cl, err := t.o.client()
	if err != nil {
		return nil, err
	}
	// One connection pool per session, as separate clients would have.
	cl.http = &http.Client{Timeout: t.o.timeout, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	return &httpSession{o: t.o, cl: cl, confirms: loadgen.NewConfirmer()}, nil
}

type httpSession struct {
	o        *clientOpts
	cl       *apiClient
	confirms *loadgen.Confirmer
}

func (s *httpSession) Declare(ctx context.Context, topo loadgen.Topology) error {
	q := s.o.tenantQuery()
	if err := s.cl.call(ctx, "DELETE", pathOf("/api/exchanges", topo.Route), q, nil, nil); err != nil && base.CodeOf(err) != base.CodeNotFound {
		return err
	}
	if err := s.cl.call(ctx, "PUT", pathOf("/api/exchanges", topo.Route), q, map[string]any{"type": "fanout"}, nil); err != nil {
		return err
	}
	for _, name := range topo.Queues {
		if err := s.cl.call(ctx, "DELETE", pathOf("/api/queues", name), q, nil, nil); err != nil && base.CodeOf(err) != base.CodeNotFound {
			return err
		}
		if err := s.cl.call(ctx, "PUT", pathOf("/api/queues", name), q, nil, nil); err != nil {
			return err
		}
		if err := s.cl.call(ctx, "POST", "/api/bindings", q, map[string]any{"source": topo.Route, "destination": name}, nil); err != nil {
			return err
		}
	}
	return nil
}

// Publish posts the message and waits for the answer (an HTTP publish
// answers once the message is durable); done is called by the session's
// Confirmer, after Publish returned.
func (s *httpSession) Publish(ctx context.Context, route string, body []byte, done func(error)) error {
	var out struct {
		Confirmed int `json:"confirmed"`
	}
	msg := map[string]any{"body": base64.StdEncoding.EncodeToString(body), "body_encoding": "base64"}
	err := s.cl.call(ctx, "POST", pathOf("/api/exchanges", route)+"/publish", s.o.tenantQuery(),
		map[string]any{"messages": []any{msg}}, &out)
	if err == nil && out.Confirmed != 1 {
		err = errNacked
	}
	return s.confirms.Add(ctx, func(context.Context) error { return err }, done)
}

// Consume fetches up to prefetch messages with manual acks, handles them
// and acks them; an empty queue is polled every CLIPollInterval (HTTP has
// no push), which adds up to that much to the measured latency.
func (s *httpSession) Consume(ctx context.Context, queue string, prefetch int, handle func([]byte)) error {
	path := pathOf("/api/queues", queue)
	poll := time.NewTicker(base.CLIPollInterval)
	defer poll.Stop()
	for {
		var got struct {
			Messages []cliMessage `json:"messages"`
		}
		err := s.cl.call(ctx, "POST", path+"/get", s.o.tenantQuery(),
			map[string]any{"count": min(prefetch, base.AdminGetMessagesMax), "ack_mode": "manual", "encoding": "base64"}, &got)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
		tokens := make([]string, 0, len(got.Messages))
		for i := range got.Messages {
			handle(got.Messages[i].bodyBytes())
			tokens = append(tokens, got.Messages[i].Token)
		}
		if len(tokens) > 0 {
			if err := s.cl.call(ctx, "POST", path+"/ack", s.o.tenantQuery(), map[string]any{"delivery_tokens": tokens}, nil); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-poll.C:
		}
	}
}

func (s *httpSession) Close() error {
	s.confirms.Close()
	s.cl.http.CloseIdleConnections()
	return nil
}

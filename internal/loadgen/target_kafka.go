package loadgen

// The Kafka Target, shared by bench/driver and `ferry bench` (see
// target_amqp.go for why these two files alone import client libraries).

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// KafkaTarget is a Kafka cluster (Ferry's Kafka front end) reached through
// github.com/twmb/franz-go. A topology's route is a topic, deleted and
// created afresh by Declare (replication factor 1), produced with
// acks=all; a "queue" is a reader of the whole topic from its start
// (direct partition consumption, no consumer group), so a fan-out of n
// queues reads the topic n times. Kafka has no per-message ack: a record
// counts as consumed when it is fetched, and prefetch has no meaning.
type KafkaTarget struct {
	// Brokers are the seed brokers, host:port.
	Brokers []string
	// Partitions of each declared topic; 0 means 1.
	Partitions int32
	// NewClient makes a client with opts added to its own; nil: seeded
	// with Brokers. Whatever it does, produce requests are sent with
	// acks=all (the option is applied after the caller's).
	NewClient func(opts ...kgo.Opt) (*kgo.Client, error)
	// WrapErr turns a client error into the caller's (the CLI's exit
	// codes); nil wraps it with "kafka: ".
	WrapErr func(error) error
}

func (t *KafkaTarget) client(opts ...kgo.Opt) (*kgo.Client, error) {
	if t.NewClient != nil {
		return t.NewClient(append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))...)
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(t.Brokers...), kgo.RequiredAcks(kgo.AllISRAcks())}, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("kafka: client for %v: %w", t.Brokers, err)
	}
	return cl, nil
}

func (t *KafkaTarget) wrap(err error) error {
	if t.WrapErr != nil {
		return t.WrapErr(err)
	}
	return fmt.Errorf("kafka: %w", err)
}

// Connect opens the producing client; Consume opens a client per reader,
// because a consuming client is configured with its topic.
func (t *KafkaTarget) Connect(ctx context.Context) (Session, error) {
	cl, err := t.client()
	if err != nil {
		return nil, err
	}
	return &kafkaSession{t: t, cl: cl}, nil
}

type kafkaSession struct {
	t  *KafkaTarget
	cl *kgo.Client
}

func (s *kafkaSession) Declare(ctx context.Context, topo Topology) error {
	adm := kadm.NewClient(s.cl)
	if _, err := adm.DeleteTopic(ctx, topo.Route); err != nil && !errors.Is(err, kerr.UnknownTopicOrPartition) {
		return s.t.wrap(fmt.Errorf("deleting topic %q: %w", topo.Route, err))
	}
	if _, err := adm.CreateTopic(ctx, max(s.t.Partitions, 1), 1, nil, topo.Route); err != nil {
		return s.t.wrap(fmt.Errorf("creating topic %q: %w", topo.Route, err))
	}
	return nil
}

// Publish copies body: the client holds the record until it is produced.
func (s *kafkaSession) Publish(ctx context.Context, route string, body []byte, done func(error)) error {
	rec := &kgo.Record{Topic: route, Value: append([]byte(nil), body...)}
	s.cl.Produce(ctx, rec, func(_ *kgo.Record, err error) { done(err) })
	return nil
}

// Consume reads the topic of queue (KafkaTopicOf) from its start.
func (s *kafkaSession) Consume(ctx context.Context, queue string, _ int, handle func([]byte)) error {
	cl, err := s.t.client(kgo.ConsumeTopics(KafkaTopicOf(queue)), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
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
		fetches.EachError(func(topic string, p int32, err error) {
			ferr = errors.Join(ferr, fmt.Errorf("fetching %s[%d]: %w", topic, p, err))
		})
		if ferr != nil {
			return s.t.wrap(ferr)
		}
		fetches.EachRecord(func(r *kgo.Record) { handle(r.Value) })
	}
}

// KafkaTopicOf returns the topic a queue name reads: a queue is "topic" or
// "topic/reader", and readers of one topic each get every record.
func KafkaTopicOf(queue string) string {
	topic, _, _ := strings.Cut(queue, "/")
	return topic
}

func (s *kafkaSession) Close() error {
	s.cl.Close() // fails outstanding produces' promises
	return nil
}

package kafkatarget

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ferry-mq/ferry/internal/loadgen"
)

// Target is a Kafka cluster reached through Brokers (host:port).
type Target struct {
	Brokers []string
	// Partitions of each declared topic; 0 means 1.
	Partitions int32
}

// Connect opens a client; producing and consuming clients are separate
// because consuming clients are configured with their topic.
func (t *Target) Connect(ctx context.Context) (loadgen.Session, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(t.Brokers...), kgo.RequiredAcks(kgo.AllISRAcks()))
	if err != nil {
		return nil, fmt.Errorf("kafka: client for %v: %w", t.Brokers, err)
	}
	return &session{t: t, cl: cl}, nil
}

type session struct {
	t  *Target
	cl *kgo.Client
}

func (s *session) Declare(ctx context.Context, topo loadgen.Topology) error {
	adm := kadm.NewClient(s.cl)
	if _, err := adm.DeleteTopic(ctx, topo.Route); err != nil && !errors.Is(err, kerr.UnknownTopicOrPartition) {
		return fmt.Errorf("kafka: deleting topic %q: %w", topo.Route, err)
	}
	if _, err := adm.CreateTopic(ctx, max(s.t.Partitions, 1), 1, nil, topo.Route); err != nil {
		return fmt.Errorf("kafka: creating topic %q: %w", topo.Route, err)
	}
	return nil
}

// Publish copies body: the client holds the record until it is produced.
func (s *session) Publish(ctx context.Context, route string, body []byte, done func(error)) error {
	rec := &kgo.Record{Topic: route, Value: append([]byte(nil), body...)}
	s.cl.Produce(ctx, rec, func(_ *kgo.Record, err error) { done(err) })
	return nil
}

// Consume reads the topic the queue belongs to from its start. A queue
// name here is "topic" or "topic/reader": readers of one topic each get
// every record.
func (s *session) Consume(ctx context.Context, queue string, _ int, handle func([]byte)) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.t.Brokers...), kgo.ConsumeTopics(TopicOf(queue)),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return fmt.Errorf("kafka: consumer client: %w", err)
	}
	defer cl.Close()
	for {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		var ferr error
		fetches.EachError(func(topic string, p int32, err error) {
			ferr = errors.Join(ferr, fmt.Errorf("kafka: fetching %s[%d]: %w", topic, p, err))
		})
		if ferr != nil {
			return ferr
		}
		fetches.EachRecord(func(r *kgo.Record) { handle(r.Value) })
	}
}

// TopicOf returns the topic a queue name reads: the part before a slash.
func TopicOf(queue string) string {
	for i := range len(queue) {
		if queue[i] == '/' {
			return queue[:i]
		}
	}
	return queue
}

func (s *session) Close() error {
	s.cl.Close() // fails outstanding produces' promises
	return nil
}

package jstarget

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferry-mq/ferry/internal/loadgen"
)

// Target is a NATS server with JetStream at URL (nats://host:port).
type Target struct {
	URL string

	mu      sync.Mutex
	streams map[string]string // guarded by mu; queue (durable consumer) -> its stream
}

func (t *Target) streamOf(queue string) (string, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s, ok := t.streams[queue]
	return s, ok
}

func (t *Target) setStream(queue, stream string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.streams == nil {
		t.streams = map[string]string{}
	}
	t.streams[queue] = stream
}

// Connect opens a NATS connection.
func (t *Target) Connect(ctx context.Context) (loadgen.Session, error) {
	nc, err := nats.Connect(t.URL, nats.Name("ferry-loadgen"))
	if err != nil {
		return nil, fmt.Errorf("nats: connecting to %s: %w", t.URL, err)
	}
	// The default async window (4,000) would cap a run's confirms in
	// flight below what loadgen allows; loadgen's own window bounds them.
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(1<<16))
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("nats: jetstream context: %w", err)
	}
	return &session{t: t, nc: nc, js: js, confirms: loadgen.NewConfirmer()}, nil
}

type session struct {
	t        *Target
	nc       *nats.Conn
	js       jetstream.JetStream
	confirms *loadgen.Confirmer
}

func (s *session) Declare(ctx context.Context, topo loadgen.Topology) error {
	name := streamName(topo.Route)
	if err := s.js.DeleteStream(ctx, name); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("nats: deleting stream %q: %w", name, err)
	}
	retention := jetstream.WorkQueuePolicy
	if len(topo.Queues) > 1 {
		retention = jetstream.InterestPolicy // every durable consumer gets every message
	}
	_, err := s.js.CreateStream(ctx, jetstream.StreamConfig{
		Name: name, Subjects: []string{topo.Route}, Storage: jetstream.FileStorage,
		Retention: retention, Replicas: 1,
	})
	if err != nil {
		return fmt.Errorf("nats: creating stream %q: %w", name, err)
	}
	// Consumers exist before the first publish: interest retention drops
	// messages that no consumer is interested in.
	for _, q := range topo.Queues {
		if _, err := s.js.CreateOrUpdateConsumer(ctx, name, consumerConfig(q, 0)); err != nil {
			return fmt.Errorf("nats: creating consumer %q: %w", q, err)
		}
		s.t.setStream(q, name)
	}
	return nil
}

func consumerConfig(queue string, prefetch int) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{Durable: queue, AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: prefetch}
}

// streamName maps a subject to a valid stream name (no dots or wildcards).
func streamName(route string) string {
	b := []byte(route)
	for i, c := range b {
		if c == '.' || c == '*' || c == '>' || c == ' ' {
			b[i] = '_'
		}
	}
	return string(b)
}

var errNoAck = errors.New("nats: no PubAck")

// Publish hands body to the connection's write buffer before it returns;
// retries are off (a retry would resend the caller's reused buffer).
func (s *session) Publish(ctx context.Context, route string, body []byte, done func(error)) error {
	f, err := s.js.PublishAsync(route, body, jetstream.WithRetryAttempts(0))
	if err != nil {
		return fmt.Errorf("nats: publishing to %q: %w", route, err)
	}
	return s.confirms.Add(ctx, func(ctx context.Context) error {
		select {
		case <-f.Ok():
			return nil
		case err := <-f.Err():
			if err == nil {
				return errNoAck
			}
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}, done)
}

func (s *session) Consume(ctx context.Context, queue string, prefetch int, handle func([]byte)) error {
	stream, ok := s.t.streamOf(queue)
	if !ok {
		return fmt.Errorf("nats: queue %q was not declared through this target", queue)
	}
	cons, err := s.js.CreateOrUpdateConsumer(ctx, stream, consumerConfig(queue, prefetch))
	if err != nil {
		return fmt.Errorf("nats: setting consumer %q's prefetch: %w", queue, err)
	}
	failed := make(chan error, 1)
	cc, err := cons.Consume(func(m jetstream.Msg) {
		handle(m.Data())
		_ = m.Ack() // a lost ack is redelivered, and counted as a duplicate
	}, jetstream.PullMaxMessages(prefetch), jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		if errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, nats.ErrConnectionClosed) {
			select {
			case failed <- err:
			default:
			}
		}
	}))
	if err != nil {
		return fmt.Errorf("nats: consuming %q: %w", queue, err)
	}
	defer func() {
		cc.Stop()
		<-cc.Closed() // no handler runs after Consume returns
	}()
	select {
	case <-ctx.Done():
		return nil
	case err := <-failed:
		return fmt.Errorf("nats: consumer %q: %w", queue, err)
	}
}

func (s *session) Close() error {
	s.nc.Close()
	s.confirms.Close()
	return nil
}

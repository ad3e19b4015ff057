package amqptarget

import (
	"context"
	"errors"
	"fmt"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/ferry-mq/ferry/internal/loadgen"
)

// Target is an AMQP 0-9-1 broker at URL (amqp://user:pass@host:port/vhost).
type Target struct {
	URL string
	// QueueType is the x-queue-type of declared queues: "quorum" or
	// "classic" (RabbitMQ); empty declares without the argument.
	QueueType string
}

// Connect opens a connection and a publishing channel in confirm mode.
func (t *Target) Connect(ctx context.Context) (loadgen.Session, error) {
	conn, err := amqp.DialConfig(t.URL, amqp.Config{Properties: amqp.Table{"connection_name": "ferry-loadgen"}})
	if err != nil {
		return nil, fmt.Errorf("amqp: dial %s: %w", t.URL, err)
	}
	ch, err := conn.Channel()
	if err == nil {
		err = ch.Confirm(false)
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("amqp: opening the publishing channel: %w", err)
	}
	return &session{t: t, conn: conn, pub: ch, confirms: loadgen.NewConfirmer()}, nil
}

type session struct {
	t        *Target
	conn     *amqp.Connection
	pub      *amqp.Channel // confirm mode; safe for concurrent publishes
	confirms *loadgen.Confirmer
}

func (s *session) Declare(ctx context.Context, topo loadgen.Topology) error {
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
	var args amqp.Table
	if s.t.QueueType != "" {
		args = amqp.Table{"x-queue-type": s.t.QueueType}
	}
	for _, q := range topo.Queues {
		if _, err := ch.QueueDelete(q, false, false, false); err != nil {
			return fmt.Errorf("amqp: deleting queue %q: %w", q, err)
		}
		if _, err := ch.QueueDeclare(q, true, false, false, false, args); err != nil {
			return fmt.Errorf("amqp: declaring queue %q: %w", q, err)
		}
		if err := ch.QueueBind(q, "", topo.Route, false, nil); err != nil {
			return fmt.Errorf("amqp: binding queue %q to %q: %w", q, topo.Route, err)
		}
	}
	return nil
}

var errNack = errors.New("amqp: broker nacked the message")

// Publish writes the message to the connection before it returns (the
// client serialises body into its frame buffer), so body is not retained.
func (s *session) Publish(ctx context.Context, route string, body []byte, done func(error)) error {
	dc, err := s.pub.PublishWithDeferredConfirmWithContext(ctx, route, "", false, false,
		amqp.Publishing{DeliveryMode: amqp.Persistent, Body: body})
	if err != nil {
		return fmt.Errorf("amqp: publishing to %q: %w", route, err)
	}
	return s.confirms.Add(ctx, func(ctx context.Context) error {
		acked, err := dc.WaitContext(ctx)
		if err != nil {
			return err
		}
		if !acked {
			return errNack
		}
		return nil
	}, done)
}

func (s *session) Consume(ctx context.Context, queue string, prefetch int, handle func([]byte)) error {
	ch, err := s.conn.Channel()
	if err != nil {
		return fmt.Errorf("amqp: opening a consumer channel: %w", err)
	}
	var deliveries <-chan amqp.Delivery
	defer func() { closeDraining(ch, deliveries) }()
	if err := ch.Qos(prefetch, 0, false); err != nil {
		return fmt.Errorf("amqp: basic.qos %d: %w", prefetch, err)
	}
	// Consume, not ConsumeWithContext: the latter cancels the consumer from
	// a goroutine of its own when ctx ends, an RPC that races closeDraining's
	// channel.close on the same channel and can leave Close waiting forever.
	deliveries, err = ch.Consume(queue, "", false, false, false, false, nil)
	if err != nil {
		return fmt.Errorf("amqp: consuming %q: %w", queue, err)
	}
	for {
		select {
		case d, ok := <-deliveries:
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("amqp: consumer of %q closed by the broker", queue)
			}
			handle(d.Body)
			if err := d.Ack(false); err != nil {
				return fmt.Errorf("amqp: acking on %q: %w", queue, err)
			}
		case <-ctx.Done():
			return nil
		}
	}
}

// closeDraining closes a consumer's channel. amqp091-go's Channel.Close
// waits for the broker's close-ok, which its reader cannot deliver while
// it is blocked handing a prefetched delivery to a consumer nobody reads:
// so the deliveries are drained (unacked, the broker requeues them) until
// the close completes.
func closeDraining(ch *amqp.Channel, deliveries <-chan amqp.Delivery) {
	closed := make(chan struct{})
	go func() { // owned here: waited for below
		_ = ch.Close() // the consumer is done either way; a close error changes nothing
		close(closed)
	}()
	for {
		select {
		case _, ok := <-deliveries:
			if !ok {
				deliveries = nil // a nil channel blocks: wait for closed alone
			}
		case <-closed:
			return
		}
	}
}

func (s *session) Close() error {
	err := s.conn.Close()
	s.confirms.Close()
	if err != nil && !errors.Is(err, amqp.ErrClosed) {
		return fmt.Errorf("amqp: closing: %w", err)
	}
	return nil
}

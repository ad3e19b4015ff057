package loadgen

// The AMQP 0-9-1 Target, shared by bench/driver (RabbitMQ and Ferry side by
// side) and `ferry bench`. With target_kafka.go, the only file of the
// package that imports a protocol's client library: the core (run.go and
// the rest) knows Targets only through target.go's interfaces.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// AMQPTarget is an AMQP 0-9-1 broker (RabbitMQ, Ferry's AMQP front end)
// reached through github.com/rabbitmq/amqp091-go. A topology's route is a
// durable fanout exchange bound to its durable queues; messages are
// persistent and confirmed (publisher confirms); a consumer has a channel
// of its own with basic.qos and acks each delivery after handle returns.
type AMQPTarget struct {
	// URL is amqp://user:pass@host:port/vhost.
	URL string
	// QueueType is the x-queue-type of declared queues, "quorum" or
	// "classic" (RabbitMQ); empty declares them without the argument.
	QueueType string
	// Dial opens a connection to URL, making its network connection with
	// netDial (an amqp.Config.Dial; nil: the library's own); nil dials
	// with amqp.DialConfig and the connection name "ferry-loadgen". A
	// caller sets it to name the connection or to classify a refused login
	// (the CLI's exit codes).
	Dial func(url string, netDial NetDial) (*amqp.Connection, error)
	// CoalesceWrites makes every connection's network connection a
	// CoalescingConn: amqp091-go otherwise writes every publish with a
	// write(2) of its own.
	CoalesceWrites bool
}

// NetDial makes a network connection: amqp.Config's Dial.
type NetDial = func(network, addr string) (net.Conn, error)

// netDial is what Dial is given: amqp091-go's default dialer (its
// 30-second connection and handshake timeout) wrapping each connection in
// a CoalescingConn with CoalesceWrites, else nil.
func (t *AMQPTarget) netDial() NetDial {
	if !t.CoalesceWrites {
		return nil
	}
	dial := amqp.DefaultDial(amqpDialTimeout)
	return func(network, addr string) (net.Conn, error) {
		c, err := dial(network, addr)
		if err != nil {
			return nil, err
		}
		return NewCoalescingConn(c), nil
	}
}

// amqpDialTimeout is amqp091-go's own default (its defaultConnectionTimeout).
const amqpDialTimeout = 30 * time.Second

// Connect opens a connection and its publishing channel in confirm mode.
func (t *AMQPTarget) Connect(ctx context.Context) (Session, error) {
	dial := t.Dial
	if dial == nil {
		dial = func(url string, netDial NetDial) (*amqp.Connection, error) {
			conn, err := amqp.DialConfig(url, amqp.Config{Properties: amqp.Table{"connection_name": "ferry-loadgen"}, Dial: netDial})
			if err != nil {
				return nil, fmt.Errorf("amqp: dial: %w", err)
			}
			return conn, nil
		}
	}
	conn, err := dial(t.URL, t.netDial())
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
	return &amqpSession{t: t, conn: conn, pub: ch, confirms: NewConfirmer()}, nil
}

type amqpSession struct {
	t        *AMQPTarget
	conn     *amqp.Connection
	pub      *amqp.Channel // confirm mode; safe for concurrent publishes
	confirms *Confirmer
}

// queueArgs are the arguments of every queue.declare.
func (t *AMQPTarget) queueArgs() amqp.Table {
	if t.QueueType == "" {
		return nil
	}
	return amqp.Table{"x-queue-type": t.QueueType}
}

// Declare deletes what an earlier run left under the topology's names,
// then declares the exchange and its queues and binds them.
func (s *amqpSession) Declare(ctx context.Context, topo Topology) error {
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
		if _, err := ch.QueueDeclare(q, true, false, false, false, s.t.queueArgs()); err != nil {
			return fmt.Errorf("amqp: declaring queue %q: %w", q, err)
		}
		if err := ch.QueueBind(q, "", topo.Route, false, nil); err != nil {
			return fmt.Errorf("amqp: binding queue %q to %q: %w", q, topo.Route, err)
		}
	}
	return nil
}

// ErrNacked is what a done callback receives for a publish the broker
// refused (basic.nack, or a refused produce).
var ErrNacked = errors.New("loadgen: the broker nacked the message")

// Publish writes the message to the connection before it returns (the
// client serialises body into its frame buffer), so body is not retained.
func (s *amqpSession) Publish(ctx context.Context, route string, body []byte, done func(error)) error {
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
			return ErrNacked
		}
		return nil
	}, done)
}

func (s *amqpSession) Consume(ctx context.Context, queue string, prefetch int, handle func([]byte)) error {
	ch, err := s.conn.Channel()
	if err != nil {
		return fmt.Errorf("amqp: opening a consumer channel: %w", err)
	}
	var deliveries <-chan amqp.Delivery
	defer func() { closeDrainingAMQP(ch, deliveries) }()
	if err := ch.Qos(prefetch, 0, false); err != nil {
		return fmt.Errorf("amqp: basic.qos %d: %w", prefetch, err)
	}
	// Consume, not ConsumeWithContext: the latter cancels the consumer from
	// a goroutine of its own when ctx ends, an RPC that races
	// closeDrainingAMQP's channel.close on the same channel and can leave
	// Close waiting forever.
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

// closeDrainingAMQP closes a consumer's channel. amqp091-go's Channel.Close
// waits for the broker's close-ok, which its reader cannot deliver while
// it is blocked handing a prefetched delivery to a consumer nobody reads:
// so the deliveries are drained (unacked, the broker requeues them) until
// the close completes. deliveries may be nil (the consume was refused).
func closeDrainingAMQP(ch *amqp.Channel, deliveries <-chan amqp.Delivery) {
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

func (s *amqpSession) Close() error {
	err := s.conn.Close()
	s.confirms.Close()
	if err != nil && !errors.Is(err, amqp.ErrClosed) {
		return fmt.Errorf("amqp: closing: %w", err)
	}
	return nil
}

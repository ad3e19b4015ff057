package server

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/broker"
)

// Message is a message as the in-process client publishes and receives
// it: the common subset of every protocol's properties. Headers become
// string-valued AMQP headers (Kafka record headers on streams); received
// headers of other types arrive rendered as text.
type Message struct {
	Key         []byte
	Body        []byte
	Headers     map[string]string
	ContentType string
	MessageID   string
}

// Delivery is a message received by a Consumer or Get.
type Delivery struct {
	Message
	Queue       string
	Redelivered bool
	// ack settles the delivery; nil for auto-acknowledged ones.
	ack  func() error
	nack func(requeue bool) error
}

// Ack acknowledges the delivery: the queue forgets the message. It is a
// no-op for deliveries received with auto-acknowledgement.
func (d Delivery) Ack() error {
	if d.ack == nil {
		return nil
	}
	return d.ack()
}

// Nack rejects the delivery: requeue returns it to the queue, otherwise
// it is dead-lettered (or dropped when the queue has no dead-letter
// exchange).
func (d Delivery) Nack(requeue bool) error {
	if d.nack == nil {
		return nil
	}
	return d.nack(requeue)
}

// Client is an in-process connection to the node's broker, for programs
// that embed Ferry (the sdk) and for tests: no socket, no protocol
// codec, the same broker calls the front ends make. Its methods are safe
// for concurrent use.
//
// Retries: a call that fails with a transient error is made again, every
// ClientRetryInterval and at most ClientRetriesMax times within its ctx,
// when doing so cannot store or take anything twice. DeclareQueue,
// DeleteQueue and Consume are idempotent and are retried on
// CodeUnavailable (a queue's leader still starting, a node unreachable);
// Get too (with auto-acknowledgement a lost attempt can at worst have
// taken a message, which auto-acknowledgement allows anyway). Publish is
// not idempotent: see there.
type Client struct {
	c     brokerConn
	clock base.Clock
	seq   atomic.Uint64
	once  sync.Once
}

// brokerConn is what a Client uses of its broker connection
// (*broker.Conn); tests substitute one that fails.
type brokerConn interface {
	DeclareQueue(ctx context.Context, s broker.QueueSpec) (broker.QueueInfo, error)
	DeleteQueue(ctx context.Context, name string, ifUnused, ifEmpty bool) (uint64, error)
	Publish(ctx context.Context, exchange string, msgs []broker.Message, opts broker.PublishOptions) ([]broker.PublishResult, error)
	Get(ctx context.Context, queue string, autoAck bool) (broker.Delivery, *broker.GetHandle, bool, error)
	Subscribe(ctx context.Context, o broker.SubscribeOptions, deliver func(broker.Delivery), cancelled func(error)) (*broker.Subscription, error)
	Close(ctx context.Context) error
}

var clientSeq atomic.Uint64

// Connect opens an in-process connection acting as user (who needs a
// permission on the tenant "/": the bootstrap user guest has every
// permission there). It waits for the node to be ready, bounded by ctx.
func (s *Server) Connect(ctx context.Context, user string) (*Client, error) {
	select {
	case <-s.ready:
	case <-ctx.Done():
		return nil, base.Errorf(base.CodeUnavailable, "the node is not ready: %w", ctx.Err())
	}
	id := "inproc/" + strconv.FormatUint(clientSeq.Add(1), 10)
	c, err := s.b.OpenConnection(broker.ConnInfo{ID: id, Protocol: "inproc", Peer: netip.AddrPortFrom(netip.IPv6Loopback(), 0), Name: "sdk"},
		broker.Principal{User: user, Tenant: "/"}, func(string) {})
	if err != nil {
		return nil, err
	}
	return &Client{c: c, clock: s.opts.Clock}, nil
}

// Close closes the connection; its consumers end and their unacknowledged
// deliveries return to their queues.
func (c *Client) Close() error {
	var err error
	c.once.Do(func() { err = c.c.Close(context.Background()) })
	return err
}

// DeclareQueue declares a durable queue (as AMQP queue.declare with
// durable set and no arguments); declaring an existing queue is a no-op.
func (c *Client) DeclareQueue(ctx context.Context, name string) error {
	return c.retry(ctx, func() error {
		_, err := c.c.DeclareQueue(ctx, broker.QueueSpec{Name: name, Durable: true})
		return err
	})
}

// retry calls f, an idempotent call, until it succeeds, fails with an
// error other than CodeUnavailable, ctx ends or ClientRetriesMax tries
// were made; it returns f's last error.
func (c *Client) retry(ctx context.Context, f func() error) error {
	return c.retryWhile(ctx, func() (bool, error) {
		err := f()
		return base.CodeOf(err) == base.CodeUnavailable, err
	})
}

// retryWhile calls f until it answers again false, ctx ends or
// ClientRetriesMax tries were made, ClientRetryInterval apart; it returns
// f's last error. Every retry of the Client goes through here.
func (c *Client) retryWhile(ctx context.Context, f func() (again bool, err error)) error {
	for try := 1; ; try++ {
		again, err := f()
		if !again || try == base.ClientRetriesMax || !c.pause(ctx) {
			return err
		}
	}
}

// pause waits ClientRetryInterval before a retry; false when ctx ended
// first.
func (c *Client) pause(ctx context.Context) bool {
	t := c.clock.NewTimer(base.ClientRetryInterval)
	select {
	case <-ctx.Done():
		t.Stop()
		return false
	case <-t.C():
		return true
	}
}

// DeleteQueue deletes a queue and returns how many messages it held.
// Deleting a missing queue succeeds (RabbitMQ does the same), so the call
// is retried on CodeUnavailable; when an attempt that failed had deleted
// the queue already, the count is 0.
func (c *Client) DeleteQueue(ctx context.Context, name string) (uint64, error) {
	var n uint64
	err := c.retry(ctx, func() (err error) {
		n, err = c.c.DeleteQueue(ctx, name, false, false)
		return err
	})
	return n, err
}

// Publish publishes msgs to exchange ("" is the default exchange, which
// routes to the queue named by routingKey) and returns once every one is
// durable (fsynced on a quorum). A message that no queue takes is an
// error (CodeNotFound), as is one a queue refuses.
//
// Publishing again a message whose outcome is unknown could store it
// twice, so Publish retries only what provably was not stored: the
// messages that failed with CodeNotLeader (a proposal refused by a node
// that no longer leads, or replaced in the log by a new leader's entries:
// never committed), which the broker returns once its own following of
// the leader gave up, and a call refused as a whole with CodeUnavailable
// before anything was sent. Messages already stored are not sent again.
// Every other failure is returned at once, CodeUnavailable and
// CodeTimeout for a message included: the connection to a leader can
// break after the leader stored it, and a proposal can commit after its
// wait ended. Retry such a message yourself only if a duplicate is
// harmless (or give it a MessageID a deduplicating queue drops).
func (c *Client) Publish(ctx context.Context, exchange, routingKey string, msgs ...Message) error {
	bm := make([]broker.Message, len(msgs))
	index := make([]int, len(msgs)) // index[i] is bm[i]'s position in msgs
	for i, m := range msgs {
		bm[i], index[i] = toBroker(exchange, routingKey, m), i
	}
	return c.retryWhile(ctx, func() (bool, error) {
		again, err := c.publishOnce(ctx, exchange, routingKey, bm, index)
		if len(again) == 0 {
			return false, err
		}
		next, nextIndex := bm[:0:0], index[:0:0]
		for _, i := range again {
			next, nextIndex = append(next, bm[i]), append(nextIndex, index[i])
		}
		bm, index = next, nextIndex
		return true, err
	})
}

// publishOnce makes one Publish call of bm and returns the positions in bm
// of the messages to publish again (provably not stored), with the error
// to report if they are not; a failure that must not be retried is
// returned with no positions.
func (c *Client) publishOnce(ctx context.Context, exchange, routingKey string, bm []broker.Message, index []int) (again []int, err error) {
	res, err := c.c.Publish(ctx, exchange, bm, broker.PublishOptions{Mandatory: true})
	if err != nil {
		if base.CodeOf(err) == base.CodeUnavailable || base.CodeOf(err) == base.CodeNotLeader {
			again = make([]int, len(bm))
			for i := range again {
				again[i] = i
			}
		}
		return again, err
	}
	var retryErr error
	for i, r := range res {
		switch {
		case r.Err != nil && base.CodeOf(r.Err) == base.CodeNotLeader:
			again = append(again, i)
			if retryErr == nil {
				retryErr = fmt.Errorf("message %d: %w", index[i], r.Err)
			}
		case r.Err != nil:
			return nil, fmt.Errorf("message %d: %w", index[i], r.Err)
		case r.Unroutable:
			return nil, base.Errorf(base.CodeNotFound, "message %d: exchange %q routes key %q to no queue", index[i], exchange, routingKey)
		case r.Rejected:
			return nil, base.Errorf(base.CodeOverloaded, "message %d: a queue rejected it (overflow reject-publish)", index[i])
		}
	}
	return again, retryErr
}

// Get takes one message from queue with auto-acknowledgement; ok is false
// when the queue was empty.
func (c *Client) Get(ctx context.Context, queue string) (d Delivery, ok bool, err error) {
	var bd broker.Delivery
	err = c.retry(ctx, func() (err error) {
		bd, _, ok, err = c.c.Get(ctx, queue, true)
		return err
	})
	if err != nil || !ok {
		return Delivery{}, false, err
	}
	return fromBroker(bd), true, nil
}

// Consumer receives a queue's messages; see Client.Consume.
type Consumer struct {
	sub  *broker.Subscription
	ch   chan Delivery // capacity = prefetch: the broker never has more outstanding
	done chan struct{} // closed when the broker cancels the consumer
	err  atomic.Pointer[error]
}

// Consume starts a consumer of queue holding at most prefetch
// unacknowledged deliveries (1 to base.AMQPPrefetchCountMax); each
// Delivery must be Acked or Nacked.
func (c *Client) Consume(ctx context.Context, queue string, prefetch int) (*Consumer, error) {
	if prefetch < 1 || prefetch > base.AMQPPrefetchCountMax {
		return nil, base.Errorf(base.CodeInvalidArgument, "prefetch %d is outside 1..%d", prefetch, base.AMQPPrefetchCountMax)
	}
	cons := &Consumer{ch: make(chan Delivery, prefetch), done: make(chan struct{})}
	var cancelOnce sync.Once
	deliver := func(bd broker.Delivery) {
		d := fromBroker(bd)
		id := bd.DeliveryID
		d.ack = func() error { return cons.sub.Ack(id, false) }
		d.nack = func(requeue bool) error { return cons.sub.Nack(id, false, requeue, "nacked by the client") }
		select {
		case cons.ch <- d: // never blocks: at most prefetch deliveries are unsettled
		default:
			base.Bugf("server: consumer of %s got more than its prefetch %d", queue, prefetch)
		}
	}
	cancelled := func(reason error) {
		cancelOnce.Do(func() {
			cons.err.Store(&reason)
			close(cons.done)
		})
	}
	tag := "sdk-" + strconv.FormatUint(c.seq.Add(1), 10)
	var sub *broker.Subscription
	err := c.retry(ctx, func() (err error) {
		sub, err = c.c.Subscribe(ctx, broker.SubscribeOptions{Queue: queue, Tag: tag, PrefetchCount: uint32(prefetch)}, deliver, cancelled)
		return err
	})
	if err != nil {
		return nil, err
	}
	cons.sub = sub
	return cons, nil
}

// Next returns the next delivery, waiting for one until ctx ends or the
// broker cancels the consumer (its queue was deleted, the node stops).
func (cons *Consumer) Next(ctx context.Context) (Delivery, error) {
	select {
	case d := <-cons.ch:
		return d, nil
	default:
	}
	select {
	case d := <-cons.ch:
		return d, nil
	case <-cons.done:
		return Delivery{}, *cons.err.Load()
	case <-ctx.Done():
		return Delivery{}, ctx.Err()
	}
}

// Cancel stops the consumer; deliveries not yet acknowledged return to
// the queue when the connection closes, or can still be acknowledged.
func (cons *Consumer) Cancel(ctx context.Context) error { return cons.sub.Cancel(ctx) }

func toBroker(exchange, routingKey string, m Message) broker.Message {
	bm := broker.Message{Exchange: exchange, RoutingKey: routingKey, Key: m.Key, Body: m.Body,
		ContentType: m.ContentType, MessageID: m.MessageID, DeliveryMode: 2}
	for k, v := range m.Headers {
		bm.Headers = append(bm.Headers, broker.Header{Key: k, Value: broker.StringValue(v)})
	}
	return bm
}

func fromBroker(bd broker.Delivery) Delivery {
	m := bd.Message
	d := Delivery{Queue: bd.Queue, Redelivered: bd.Redelivered, Message: Message{
		Key: m.Key, Body: m.Body, ContentType: m.ContentType, MessageID: m.MessageID}}
	if len(m.Headers) > 0 {
		d.Headers = make(map[string]string, len(m.Headers))
		for _, h := range m.Headers {
			d.Headers[h.Key] = headerText(h.Value)
		}
	}
	return d
}

// headerText renders a typed header value as text.
func headerText(v broker.Value) string {
	switch v.Kind() {
	case broker.KindString, broker.KindBytes:
		return v.Text()
	case broker.KindBool:
		return strconv.FormatBool(v.Bool())
	case broker.KindInt8, broker.KindUint8, broker.KindInt16, broker.KindUint16, broker.KindInt32,
		broker.KindUint32, broker.KindInt64, broker.KindTimestamp:
		return strconv.FormatInt(v.Int(), 10)
	case broker.KindFloat32, broker.KindFloat64:
		return strconv.FormatFloat(v.Float(), 'g', -1, 64)
	case broker.KindVoid:
		return ""
	}
	return fmt.Sprintf("(%s)", v.Kind())
}

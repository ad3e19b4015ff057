package loadgen

import "context"

// Target is a broker reached through one protocol. Each producer and
// consumer of a run gets its own Session, as separate client processes
// would have their own connections.
type Target interface {
	// Connect opens a session. The error is the protocol client's, wrapped.
	Connect(ctx context.Context) (Session, error)
}

// Topology is what a workload declares: a route that publishers address and
// the queues it fills. One queue is a plain queue; several are a fan-out in
// which every queue receives a copy of every message (an AMQP fanout
// exchange, a JetStream stream with one durable consumer per queue, MQTT
// persistent sessions subscribed to one topic).
type Topology struct {
	// Route is what Publish addresses: an exchange, subject, topic.
	Route string
	// Queues are the names Consume reads from, at least one.
	Queues []string
}

// Session is one connection to the broker. Publish may be called from
// several goroutines at once; Consume may be called concurrently for
// different queues (a protocol that cannot multiplex consumers opens a
// connection per call).
type Session interface {
	// Declare creates t's route and queues, empty: whatever an earlier run
	// left under the same names is deleted first. It is called once per
	// topology, before any Publish or Consume on it.
	Declare(ctx context.Context, t Topology) error

	// Publish sends body to route as a durable (persistent) message and
	// asks the broker to confirm it. Publish does not retain body after it
	// returns: the caller reuses the buffer. When Publish returns nil, done
	// is called exactly once, later and from any goroutine, with nil once
	// the broker confirmed the message or with an error when it refused it
	// (a nack) or the session failed before the outcome was known. done
	// must not block. When Publish returns an error, done is never called
	// and the message may or may not have reached the broker.
	Publish(ctx context.Context, route string, body []byte, done func(error)) error

	// Consume delivers the messages of queue to handle, with at most
	// prefetch delivered and not yet acknowledged, acknowledging each one
	// after handle returns. handle is called from one goroutine at a time
	// per Consume call; body is valid only until handle returns. Consume
	// blocks until ctx is done (then it returns nil) or the session fails.
	Consume(ctx context.Context, queue string, prefetch int, handle func(body []byte)) error

	// Close ends the session; outstanding publishes' done callbacks are
	// called with an error if the broker has not confirmed them yet.
	Close() error
}

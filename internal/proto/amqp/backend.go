package amqp

import (
	"context"
	"net/netip"
	"time"

	"github.com/ferry-mq/ferry/internal/proto/amqp/codec"
)

// Backend is what the AMQP front end needs of the broker. It is shaped
// like internal/broker's protocol-neutral API (Broker and Conn), which is
// to satisfy it directly or through a thin adapter in this package.
// Interfaces belong to their consumer: this one lists only what AMQP uses.
//
// Errors carry base codes (base.CodeOf), which the front end maps to AMQP
// reply codes in one table (errors.go); their messages become the reply
// text after the code name, so they should read as RabbitMQ's do ("no
// queue 'q' in vhost '/'").
type Backend interface {
	// Authenticate checks a user name and password (PLAIN, AMQPLAIN)
	// from peer: base.CodeUnauthenticated when they are wrong (guest from
	// a non-loopback address included).
	Authenticate(user, password string, peer netip.Addr) (Principal, error)

	// OpenConnection registers a connection to info.Tenant (the virtual
	// host of connection.open). Errors: CodeNotFound (no such vhost),
	// CodeAccessRefused (the user may not use it). The broker calls kill
	// (from any goroutine, at most once) to close the connection from the
	// management side. Session.Close releases everything the connection
	// owned: exclusive queues, consumers, unsettled deliveries (returned
	// to their queues).
	OpenConnection(info ConnInfo, p Principal, kill func(reason string)) (Session, error)

	// FlowState reports whether the broker blocks publishers (a memory or
	// disk watermark), why, and a channel closed at the next change of
	// state. The server sends connection.blocked and connection.unblocked
	// from it.
	FlowState() (blocked bool, reason string, changed <-chan struct{})
}

// Principal is an authenticated user.
type Principal struct {
	User string
	Tags []string
}

// ConnInfo describes a client connection for the broker's registry.
type ConnInfo struct {
	ID       string // unique per node: "<node>/amqp/<seq>"
	Protocol string // "amqp"
	Peer     netip.AddrPort
	User     string
	Tenant   string // the virtual host
	Name     string // the client's connection_name property, if any
}

// Action is a permission RabbitMQ checks: configure, write or read.
type Action uint8

// The actions.
const (
	ActionConfigure Action = iota + 1
	ActionWrite
	ActionRead
)

// EntityKind says what a name refers to.
type EntityKind uint8

// The kinds of entity a binding may lead to, or a permission concern.
const (
	EntityExchange EntityKind = iota + 1
	EntityQueue
)

// Session is one registered connection's handle on the broker (broker.Conn).
// Its methods may be called from several goroutines of the front end at
// once.
type Session interface {
	// Authorize checks a permission of the connection's user on a name in
	// its vhost: CodeAccessRefused with RabbitMQ's text when refused.
	Authorize(action Action, kind EntityKind, name string) error

	DeclareExchange(ctx context.Context, s ExchangeSpec) error
	DeleteExchange(ctx context.Context, name string, ifUnused bool) error
	// DeclareQueue declares (or with Passive checks) a queue; Name ""
	// asks for a server-named "amq.gen-..." queue, whose name QueueInfo
	// carries. x-queue-type=stream declares a stream.
	DeclareQueue(ctx context.Context, s QueueSpec) (QueueInfo, error)
	DeleteQueue(ctx context.Context, name string, ifUnused, ifEmpty bool) (messages uint64, err error)
	PurgeQueue(ctx context.Context, name string) (messages uint64, err error)
	Bind(ctx context.Context, s BindingSpec) error
	Unbind(ctx context.Context, s BindingSpec) error

	// PublishAsync routes msgs (published to one exchange, "" being the
	// default one) and calls done exactly once, from a broker goroutine,
	// when each is durable or has failed; results are in msgs' order.
	// The broker may read msgs and their bytes until done returns and
	// must keep no reference to them afterwards: the front end recycles
	// the buffer holding the bodies and raw properties (copy what must
	// outlive the call). done must not block for long.
	PublishAsync(exchange string, msgs []Message, opts PublishOptions, done func([]PublishResult, error))

	// Subscribe starts a consumer. deliver is called from a broker
	// goroutine, in delivery order, never concurrently for one
	// subscription, possibly before Subscribe returns; it must not block
	// for long. cancelled is called, at most once, when the broker
	// cancels the consumer (its queue was deleted, the node stops).
	Subscribe(ctx context.Context, o SubscribeOptions, deliver func(Delivery), cancelled func(reason error)) (Subscription, error)

	// Get pulls one message (basic.get). ok is false when the queue was
	// empty. With autoAck false the delivery is settled through settle.
	Get(ctx context.Context, queue string, autoAck bool) (d Delivery, settle Settler, ok bool, err error)

	// Close unregisters the connection and releases what it owned,
	// waiting for the release until ctx ends.
	Close(ctx context.Context) error
}

// Subscription is a live consumer. Settlement is asynchronous (AMQP acks
// have no reply). Deliveries stay settleable after Cancel, as RabbitMQ
// lets a channel ack the messages of a cancelled consumer.
type Subscription interface {
	Cancel(ctx context.Context) error
	// Ack settles delivery id, and with multiple every earlier unsettled
	// delivery of the subscription too.
	Ack(id uint64, multiple bool)
	// Nack returns (requeue) or dead-letters delivery id (and earlier
	// ones with multiple). A stream's deliveries are only settled by it:
	// the front end refuses basic.nack and basic.reject of them, and
	// nacks them when their channel closes or recovers.
	Nack(id uint64, multiple, requeue bool)
	// Stream says the subscription reads a stream, whose deliveries are
	// acknowledged only (a consumer's position is its offset).
	Stream() bool
	// SetPrefetch changes the number of unsettled deliveries the
	// subscription may hold (never 0: the front end bounds it).
	SetPrefetch(ctx context.Context, count uint32) error
}

// Settler settles one basic.get delivery. ctx bounds the call: a
// delivery left unsettled returns to its queue when the session closes.
type Settler interface {
	Ack(ctx context.Context)
	Nack(ctx context.Context, requeue bool)
}

// ExchangeSpec is exchange.declare.
type ExchangeSpec struct {
	Name, Type                             string
	Durable, AutoDelete, Internal, Passive bool
	Arguments                              codec.Table
}

// QueueSpec is queue.declare. Arguments carry RabbitMQ's x-* arguments and
// Ferry's x-ferry-* ones unchanged; the broker maps them.
type QueueSpec struct {
	Name                                    string
	Durable, Exclusive, AutoDelete, Passive bool
	Arguments                               codec.Table
}

// QueueInfo is what queue.declare-ok reports.
type QueueInfo struct {
	Name                string
	IsStream            bool
	Messages, Consumers uint64
}

// BindingSpec is queue.bind/unbind (DestinationKind EntityQueue) or
// exchange.bind/unbind (EntityExchange).
type BindingSpec struct {
	Source, Destination string
	DestinationKind     EntityKind
	RoutingKey          string
	Arguments           codec.Table
}

// Message is a published message.
type Message struct {
	Exchange, RoutingKey string
	// Properties are the decoded content properties; RawProperties the
	// same, encoded exactly as received (the property flags and list of
	// the content header), which the broker may store and hand back on
	// delivery instead of re-encoding.
	Properties    codec.BasicProperties
	RawProperties []byte
	Body          []byte
}

// PublishOptions are the flags of basic.publish the broker acts on.
type PublishOptions struct {
	// Mandatory: report a message routed nowhere (basic.return 312)
	// instead of dropping it.
	Mandatory bool
}

// PublishResult is the outcome of one message of PublishAsync.
type PublishResult struct {
	Unroutable bool  // routed nowhere (returned when mandatory)
	Rejected   bool  // a destination refused it (reject-publish overflow): nack
	Duplicate  bool  // deduplicated: confirmed, not enqueued again
	Err        error // the message failed: a channel error or a nack
}

// SubscribeOptions is basic.consume.
type SubscribeOptions struct {
	Queue         string
	Tag           string // the consumer tag, unique on its channel
	PrefetchCount uint32 // never 0: the front end bounds it
	Priority      int32  // x-priority
	Exclusive     bool
	NoAck         bool          // deliveries are settled when sent
	StreamOffset  *StreamOffset // x-stream-offset, for streams
	// AckTimeout is called (from a broker goroutine) when the queue took
	// back a delivery that was not acknowledged within its
	// x-consumer-timeout; RabbitMQ closes the channel then.
	AckTimeout func(id uint64)
}

// StreamOffsetKind says where a stream consumer starts.
type StreamOffsetKind uint8

// The starting points of x-stream-offset.
const (
	StreamFirst     StreamOffsetKind = iota + 1 // "first": the oldest retained message
	StreamLast                                  // "last": the last chunk
	StreamNext                                  // "next": only new messages
	StreamOffsetAt                              // a numeric offset
	StreamTimestamp                             // a timestamp: the first message at or after it
	StreamInterval                              // "1h" etc.: Timestamp is now minus the interval
)

// StreamOffset is a parsed x-stream-offset.
type StreamOffset struct {
	Kind      StreamOffsetKind
	Offset    int64
	Timestamp time.Time
	Interval  time.Duration
}

// Delivery is one message handed to a consumer or to basic.get.
type Delivery struct {
	ID          uint64 // per subscription, increasing; the front end maps it to a delivery tag
	Redelivered bool
	Exchange    string
	RoutingKey  string
	// RawProperties, when not nil, are sent as they are; otherwise
	// Properties are encoded.
	Properties    codec.BasicProperties
	RawProperties []byte
	// Body may be kept but not modified: the broker may share it.
	Body []byte
	// MessageCount is, for basic.get, the messages left in the queue.
	MessageCount uint32
}

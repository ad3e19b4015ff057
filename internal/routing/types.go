package routing

import (
	"fmt"

	"github.com/ferry-mq/ferry/internal/base"
)

// ExchangeType says how an exchange chooses the bindings a message follows.
// The zero value is not a type: declaring it fails.
type ExchangeType uint8

const (
	// Direct routes to the bindings whose key equals the routing key.
	Direct ExchangeType = iota + 1
	// Fanout routes to every binding; keys and headers are ignored.
	Fanout
	// Topic routes to the bindings whose pattern matches the routing key
	// (AMQP or MQTT wildcards, see Syntax).
	Topic
	// Headers routes to the bindings whose arguments match the message
	// headers (x-match all, any, all-with-x, any-with-x).
	Headers
)

var exchangeTypeNames = [...]string{Direct: "direct", Fanout: "fanout", Topic: "topic", Headers: "headers"}

func (t ExchangeType) valid() bool { return t >= Direct && t <= Headers }

// String returns the type's AMQP name ("direct", "fanout", "topic",
// "headers").
func (t ExchangeType) String() string {
	if t.valid() {
		return exchangeTypeNames[t]
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// ParseExchangeType maps an AMQP exchange type name to its ExchangeType. An
// unknown name is a CodeInvalidArgument error (RabbitMQ answers
// command-invalid; x-delayed-message and other plugin types are not
// implemented).
func ParseExchangeType(name string) (ExchangeType, error) {
	for t := Direct; t <= Headers; t++ {
		if exchangeTypeNames[t] == name {
			return t, nil
		}
	}
	return 0, base.Errorf(base.CodeInvalidArgument, "unknown exchange type '%s'", name)
}

// Exchange is what declaring an exchange says, and what the table reports
// about one. Args is an AMQP arguments table; the table keeps it in
// canonical form (sorted by key, first occurrence of a key wins). The only
// argument with meaning is "alternate-exchange" (a string: the exchange
// that receives what this one cannot route); the others are kept from the
// first declaration and ignored by later ones, as RabbitMQ does.
type Exchange struct {
	Name       string
	Type       ExchangeType
	Durable    bool
	AutoDelete bool // deleted when its last binding (as a source) goes
	Internal   bool // publishers cannot publish to it; only bindings feed it
	Args       []Field
}

// DestKind is what a binding points at.
type DestKind uint8

const (
	// Queue is a queue (its own Raft group with a FIFO state machine).
	Queue DestKind = iota + 1
	// Stream is a stream (replayable, partitioned).
	Stream
	// ToExchange is another exchange of the same table (an
	// exchange-to-exchange binding). Route never returns it.
	ToExchange
)

var destKindNames = [...]string{Queue: "queue", Stream: "stream", ToExchange: "exchange"}

func (k DestKind) valid() bool { return k >= Queue && k <= ToExchange }

// String returns "queue", "stream" or "exchange".
func (k DestKind) String() string {
	if k.valid() {
		return destKindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Destination names a queue, a stream or (as a binding's destination only)
// an exchange. Queues and streams share one namespace per table, as in
// RabbitMQ where a stream is a queue type: the default exchange routes a
// routing key to the one destination of that name.
type Destination struct {
	Kind DestKind
	Name string
}

// compareDestinations orders destinations by kind, then name: the order of
// Result.Destinations and of snapshots.
func compareDestinations(a, b Destination) int {
	if a.Kind != b.Kind {
		return int(a.Kind) - int(b.Kind)
	}
	return compareStrings(a.Name, b.Name)
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Syntax is the wildcard language of a topic binding's pattern.
type Syntax uint8

const (
	// SyntaxAMQP: words separated by '.', '*' matches exactly one word,
	// '#' zero or more. Any byte string of up to RoutingKeyBytesMax bytes
	// is a valid pattern; '*' and '#' are wildcards only as whole words.
	SyntaxAMQP Syntax = iota
	// SyntaxMQTT: levels separated by '/', '+' matches exactly one level,
	// '#' (only as the last level) zero or more, so "sport/#" also matches
	// "sport". A filter starting with a wildcard does not match a topic
	// starting with '$'.
	SyntaxMQTT
)

// String returns "amqp" or "mqtt".
func (s Syntax) String() string {
	switch s {
	case SyntaxAMQP:
		return "amqp"
	case SyntaxMQTT:
		return "mqtt"
	}
	return fmt.Sprintf("syntax(%d)", uint8(s))
}

// Binding connects a source exchange to a destination. Key is the binding
// key (a pattern for topic exchanges); Syntax says which wildcard language
// the pattern uses and must be SyntaxAMQP for other exchange types. Args
// is an AMQP arguments table (header matches for a headers exchange).
// Source, Destination, Key, Syntax and Args together identify a binding:
// binding twice is a no-op, and unbinding needs all five.
type Binding struct {
	Source      string
	Destination Destination
	Key         string
	Syntax      Syntax
	Args        []Field
}

// Change reports what a removal did beyond its own target, so the
// controller can log it.
type Change struct {
	// Removed is set when the target (exchange, queue, stream or binding)
	// existed and is gone; removing what does not exist is a no-op.
	Removed bool
	// BindingsRemoved counts every binding removed, cascades included.
	BindingsRemoved int
	// AutoDeleted lists, sorted by name, the auto-delete exchanges deleted
	// because their last binding went.
	AutoDeleted []string
}

// Stats counts what a table holds, built-in exchanges included.
type Stats struct {
	Exchanges    int
	Destinations int
	Bindings     int
}

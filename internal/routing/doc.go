// Package routing owns the routing state of one tenant (virtual host):
// exchanges, the queues and streams that exist, the bindings between them,
// and the function that maps a publish to its destinations. It is a pure
// state machine: the controller applies declare, bind, unbind and delete
// commands to a Table in Raft log order, every replica reaches the same
// state, and the broker calls Route on every publish.
//
// It must never do I/O, start goroutines, read the clock or draw random
// numbers, and it imports only internal/base and the standard library
// (test/layering enforces this). Iteration over Go maps never decides an
// observable result: everything returned or encoded is sorted.
//
// # Semantics
//
// RabbitMQ's, for AMQP 0-9-1 clients to find what they expect:
//
//   - Exchanges are direct, fanout, topic or headers, with flags durable,
//     auto-delete and internal, and arguments of which only
//     alternate-exchange has meaning. Declaring is idempotent; a
//     redeclaration that differs in type, a flag or alternate-exchange
//     fails with CodePreconditionFailed and RabbitMQ's message. The
//     default exchange "" and amq.direct, amq.fanout, amq.topic,
//     amq.headers and amq.match exist in every table and cannot be deleted.
//   - Queues and streams share one namespace (AddDestination,
//     RemoveDestination); the default exchange routes a key to the
//     destination of that name.
//   - A binding is identified by source, destination, key, syntax and
//     arguments. Bind and Unbind are idempotent; removing a destination or
//     an exchange removes its bindings; an auto-delete exchange is deleted
//     when its last binding goes, in cascade, and Change reports it.
//   - Route follows exchange-to-exchange bindings breadth first, each
//     exchange once per publish, up to RouteExchangeDepthMax hops; when an
//     exchange's own bindings match nothing it follows that exchange's
//     alternate exchange. It reports unroutable messages (for mandatory
//     publishes) and the use of an alternate.
//
// # One trie, two syntaxes
//
// A topic binding says which wildcard language its pattern uses: AMQP
// ('.'-separated words, '*' one word, '#' zero or more) or MQTT
// ('/'-separated levels, '+' one level, '#' last only, '$' topics not
// matched by a leading wildcard). Publishes carry no syntax: a routing key
// is split at '.' for the AMQP bindings and at '/' for the MQTT bindings
// of the same exchange.
//
// Patterns without wildcards are not in the trie at all: an exact pattern
// matches exactly the routing key equal to it, in either syntax, so both
// syntaxes share one hash map from pattern to bindings. Wildcard patterns
// share one trie per exchange. Literal edges (a word) are shared by both
// syntaxes; wildcard edges are typed by syntax (a node has an AMQP '*'
// child, an AMQP '#' child, an MQTT '+' child and an MQTT '#' child). A
// matcher per syntax walks the same nodes, following literal edges and
// its own wildcard edges only. This is sound because a binding sits at
// the end of a path that contains at least one wildcard edge, so every
// binding reachable by one syntax's walk was bound in that syntax. A
// word that is a wildcard in one syntax is a plain literal in the other
// ("a/*" in MQTT is the literal '*'), and since each parser turns its own
// wildcards into typed edges, a literal edge never stands for a wildcard.
//
// The walk simulates the trie as an automaton: the set of nodes reached
// after each word, plus the set of '#' nodes reached so far (a '#' absorbs
// every later word). The sets hold each node once, so a match costs
// O(words × live nodes), however many bindings do not match; patterns are
// normalised ("#.#" to "#", "#.*" to "*.#") to keep the sets small.
//
// # Using a Table
//
// A Table is not safe for concurrent mutation; Route and the other
// read-only methods may run concurrently with each other. Route writes
// into a caller-owned Result and allocates nothing once the Result's
// buffers have grown to the route's size. MarshalBinary and
// UnmarshalBinary give a canonical, checksummed snapshot; Dump gives a
// canonical text listing; Equal compares two tables.
package routing

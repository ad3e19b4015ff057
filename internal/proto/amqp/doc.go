// Package amqp is Ferry's AMQP 0-9-1 front end, as RabbitMQ clients expect
// it (port 5672): the connection handshake (protocol header, SASL PLAIN
// and AMQPLAIN, tune, virtual host), heartbeats both ways, channels and
// their exceptions, exchanges, queues, bindings, consumers with prefetch,
// deliveries and their acknowledgements, basic.get, publisher confirms,
// transactions, mandatory returns, direct reply-to and
// connection.blocked. The wire format is the codec subpackage.
//
// It owns the conversation: what a client may send in which state, the
// exact reply code when it may not, delivery tags and their mapping to
// the broker's delivery ids, confirm sequence numbers, transaction
// buffers. It owns no message: everything is asked of a Backend (the
// broker) through the interface in backend.go, and errors from the broker
// are mapped to reply codes in one table (errors.go).
//
// It must never block a broker goroutine (deliveries, publish outcomes
// and cancellations only take a channel's lock and append to the
// connection's writer), never call the Backend with a channel's lock held,
// never allocate from a length a peer announced before the bytes arrived,
// and never let one connection's bad input affect another. Every
// goroutine it starts (per connection: the reader, the writer, the
// heartbeat monitor) ends when its connection ends, and Server.Serve
// waits for all of them.
package amqp

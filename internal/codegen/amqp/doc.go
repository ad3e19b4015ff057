// Command amqp generates the AMQP 0-9-1 method, constant and content
// property code of internal/proto/amqp/codec from the machine-readable spec
// amqp-rabbitmq-0.9.1.json (rabbitmq-codegen's, with RabbitMQ's extensions;
// the copy here is the one generation reads, so a fresh clone regenerates
// without any sibling directory).
//
// The codec package runs it through go generate:
//
//	go run ../../../codegen/amqp -spec ../../../codegen/amqp/amqp-rabbitmq-0.9.1.json -out .
//
// It writes spec_gen.go (constants, class ids, method keys, metadata,
// dispatch) and one <class>_gen.go per class (a struct per method with
// Encode and Decode, and the class's content properties). The hand-written
// runtime those files call (Reader, Writer, Table, frames) lives in the
// codec package.
//
// What the JSON lacks is derived, and checked: a synchronous method's reply
// is the method of its class named "<name>-ok", plus the exceptions listed
// in extraResponses (basic.get-empty). Generation fails on anything it does
// not understand (unknown JSON keys, types or domains, repeated ids or Go
// names) rather than emitting partial code.
//
// It owns nothing at run time and must never be imported: it is a build
// tool. It must not write outside the -out directory.
package main

// Package kafka is Ferry's Kafka front end: a Server that accepts Kafka
// client connections (port 9092) and serves the Kafka protocol on top of
// the broker. A Kafka topic is a Ferry stream and the reverse; a record
// batch a producer sends is validated here and stored as it is, and Fetch
// serves the stored batches back.
//
// It owns: the per-connection loop (framing, headers, pipelining with
// responses in request order, the in-flight bounds), ApiVersions, SASL
// (PLAIN, SCRAM-SHA-256/512, handshake v0 and v1), the handlers of every
// supported API (apiversions.go lists them), the validation of produced
// batches (validate.go, with the decompression of
// internal/storage/log/batch/compress), incremental fetch sessions (KIP-227), and the one mapping
// of base error codes onto Kafka's (errors.go), and the byte and
// error-code counters the node's metrics read (Server.Stats, stats.go). The broker is reached
// through the interfaces of backend.go, which this package defines;
// broker.go adapts internal/broker to them.
//
// It must never: import another front end; decode bytes except through
// the protocol codec, the batch package and compress (all fuzzed);
// allocate from a size a peer sent before checking it against the named
// limits of internal/base; block a connection's reader on anything but its
// own bounded queues (a long poll, a rebalance or a quorum wait completes
// on a goroutine of the connection); or start a goroutine without an owner
// that waits for it. See DESIGN.md for the non-obvious invariants and
// docs/kafka.md for what clients see.
package kafka

// Package jstarget drives NATS JetStream for internal/loadgen through
// github.com/nats-io/nats.go (the peer's own Go client; Ferry does not speak
// NATS).
//
// It owns the mapping of a loadgen topology onto JetStream: one
// file-storage stream per route capturing the subject of the same name
// (work-queue retention for one queue, interest retention for a fan-out),
// one durable pull consumer with explicit acks per queue, asynchronous
// publishes whose PubAck is the confirm. Whether a PubAck means the message
// was fsynced is the server's sync_interval, not this package's business:
// the benchmark labels it. It must never ack before the load generator has
// accounted for a delivery.
package jstarget

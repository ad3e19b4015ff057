// Package kafkatarget drives a Kafka broker (Ferry's Kafka front end; no
// peer of the side-by-side run speaks Kafka) for internal/loadgen through
// github.com/twmb/franz-go.
//
// It owns the mapping of a loadgen topology onto Kafka: the route is a
// topic (deleted and recreated by Declare, replication factor 1), produced
// with acks=all; a "queue" is a reader of the whole topic from its start
// (direct partition consumption, no consumer group), so a fan-out of n
// queues reads the topic n times. Kafka has no per-message ack: a record
// counts as consumed when it is fetched, and prefetch has no meaning. It
// must never produce with fewer acks than all.
package kafkatarget

// Package stream holds the deterministic state machines of Ferry's streams:
// the partition (offset assignment, retention, idempotent producers,
// committed consumer-group offsets), the Kafka-compatible partitioner, and
// the consumer-group coordinator (Kafka's classic JoinGroup/SyncGroup
// protocol and server-side sticky assignment).
//
// Every state machine here takes commands in and gives results out. The
// same commands applied in the same order give byte-identical state (and
// snapshots) on every replica: time comes only from the Now field of a
// command, stamped by the Raft leader; randomness (new member ids) comes in
// commands too; maps are never iterated where order could leak into state
// or output.
//
// This package must never do I/O, start goroutines, read a clock or draw
// randomness, and imports only internal/base (test/layering enforces it).
// It does not see record bytes: a batch reaches the partition as the facts
// of its header (internal/storage/batch), and the owner (internal/broker)
// maps results onto the log, the network and the Raft proposals.
package stream

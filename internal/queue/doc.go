// Package queue is the replicated state machine of one Ferry queue, in the
// spirit of RabbitMQ's quorum-queue state machine (rabbit_fifo): every
// queue is a Raft group whose log holds the message bodies and every
// operation on the queue; each replica decodes committed entries into
// Commands and applies them to a Queue.
//
// It owns the queue's semantics: ready messages by priority and enqueue
// order, consumers with credit, consumer priorities, single active and
// exclusive consumers, unacknowledged deliveries and ack timeouts, retries
// with delivery limits and deterministic backoff, dead-lettering (at least
// once), message and queue TTL, length limits, delayed messages, dedupe
// ids, ordering keys, stats, the log floor, and snapshots.
//
// It must never do I/O, start goroutines, read a clock, draw randomness or
// iterate a map where the order could show: the same commands in the same
// order give byte-identical state, results and effects on every replica.
// Message bodies never enter it; a message is its Ref (where it lives in
// the log) plus the small metadata in Message.
//
// # The contract with the broker
//
//   - Apply every committed command, in log order, on every replica, and
//     nothing else. Encode commands with Encode before proposing them and
//     Decode them on apply; Decode errors mean the entry is not a queue
//     command.
//   - Stamp every command with Now, the leader's Unix time in ms. The queue
//     reads time only from there (and never lets it go backwards).
//   - Enqueue Refs strictly increase: Ref.Index is the Raft index of the
//     entry carrying the messages, Ref.Slot their position in it.
//   - On the leader, carry out the effects Apply returns, in order:
//     Deliver sends a message to a consumer; DeadLetter appends a message
//     to the dead-letter target and then proposes DeadLetterDone (until
//     then the message stays, counted and holding the log floor); Drop and
//     AckTimeout inform; ActiveConsumer and ConsumerCancelled tell
//     consumers; QueueExpired asks the controller to delete the queue;
//     Wake asks for a Tick proposed at (or after) its time. Followers
//     discard effects.
//   - After a leader change the new leader re-arms its timer from NextWake
//     and re-issues DeadLetterPending: effects of the old leader may have
//     been lost. Deliveries of the old leader are not re-sent: its
//     consumers' connections went with it and their ConsumerDown returns
//     the messages.
//   - When a client connection dies, propose ConsumerDown for its Owner.
//   - Release log entries only below both Floor and the last snapshot.
//   - Results and effects returned by Apply are owned by the Queue and
//     valid until the next Apply; copy what must outlive it.
//
// The Queue is not safe for concurrent use.
package queue

// Package controller is the state machine of the cluster's metadata Raft
// group (group 0): tenants (RabbitMQ virtual hosts), users, their
// credentials and permissions, policies, exchanges and bindings (one
// routing.Table per tenant), queues, streams and their partitions, the
// arguments that configure them, the nodes of the cluster, the Raft group
// of every queue, stream partition and consumer-group coordinator, and
// where each group's replicas run.
//
// It is a pure, deterministic state machine, like the queue and stream
// ones: Apply takes a Command and returns a Result, and the same commands
// in the same order give byte-identical state (Snapshot) on every replica.
// It must never do I/O, start goroutines, read a clock or draw
// randomness: time comes from each command's Now (Unix ms, stamped by the
// leader), and whatever must be random (server-generated queue names,
// password salts, SCRAM keys) is computed by the proposer and carried in
// the command. It must never iterate a map where the order could show:
// results, snapshots and listings are sorted. It does not import
// internal/replication: the replication engine calls it through the
// broker.
//
// # Commands and results
//
// Encode a command before proposing it and Decode it when it is
// committed; apply every committed command, in log order, on every
// replica. A command that fails (Result.Err, with a base code and
// RabbitMQ's words where RabbitMQ has them) changes nothing. A command
// that succeeds reports what the broker must do, on the node that
// proposed it (followers discard results):
//
//   - Result.NewGroups: start each group on its replicas (a new queue,
//     stream partitions, coordinators at bootstrap).
//   - Result.Removed: stop the groups of each deleted queue and stream and
//     delete their data (deletes cascade: a tenant takes everything in it,
//     a queue its bindings).
//   - Result.Reconfigured: propose queue.Configure (or stream.Configure to
//     every partition) with the new effective configuration; it changes
//     when a policy or a stream's configuration changes.
//   - Result.Queue with Created false is a redeclaration: propose
//     queue.Touch to the queue's group (a redeclaration restarts
//     x-expires, as in RabbitMQ). With Created true, the group is in
//     NewGroups and starts with Result.Queue.Config.Queue.
//   - Result.ExchangesRemoved and BindingsRemoved inform (the deleted
//     exchange, auto-delete exchanges that lost their last binding, a
//     tenant's exchanges).
//
// Passive declares, authorisation and lookups are queries (methods), not
// commands.
//
// # Deleting a queue: two steps
//
// queue.delete with if-unused or if-empty depends on counts only the
// queue's group has. The broker first proposes queue.Delete{IfUnused,
// IfEmpty} to the queue's group, which checks the counts and, when they
// allow it, marks the queue deleted (refusing everything afterwards); it
// then proposes DeleteQueue to the controller, which removes the queue,
// its bindings and its placement, and reports the group to stop. If the
// broker fails between the two steps, the queue's group answers
// CodeNotFound to everything: a broker that sees that for a queue the
// controller still lists proposes DeleteQueue again (it is idempotent).
// Auto-delete (the last consumer went) and expiry (x-expires) are
// observed by the broker, which proposes DeleteQueue with Reason and the
// Group it observed, so a queue deleted and declared again meanwhile is
// left alone.
//
// # Concurrency
//
// A Controller is not safe for concurrent mutation. Apply and Restore
// need exclusive access; the queries may run concurrently with each other.
// Queries return copies (or immutable values) the caller owns; see each.
package controller

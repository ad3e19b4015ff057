package replication

import "io"

// NodeID names a node of the cluster. A node hosts at most one replica of a
// group, and the replica's Raft id is its node's id, so messages between two
// nodes need not name their replicas.
type NodeID = uint64

// GroupID names a Raft group: one queue or one stream partition.
type GroupID = uint64

// EntryKind says what a committed entry handed to the FSM carries.
type EntryKind uint8

const (
	// KindCommand is an opaque command proposed with Propose; Data is the
	// command itself, unwrapped from the control batch it was stored in.
	KindCommand EntryKind = iota + 1
	// KindBatch is a data batch proposed with ProposeBatch; Data is the
	// record batch as the log stores it, except that its baseOffset and
	// partitionLeaderEpoch fields may not be the log's: the log stamps
	// those into its own copy, so an FSM must not rely on them.
	KindBatch
)

func (k EntryKind) String() string {
	switch k {
	case KindCommand:
		return "command"
	case KindBatch:
		return "batch"
	}
	return "kind(?)"
}

// Entry is a committed log entry as the FSM sees it. Raft's own entries
// (a new leader's empty entry, membership changes) never reach the FSM, so
// the indexes an FSM sees have gaps.
type Entry struct {
	Index uint64
	Term  uint64
	Kind  EntryKind
	// Data is owned by the FSM once handed over: the engine never reuses
	// or modifies it, so the FSM may keep it.
	Data []byte
}

// FSM is the state machine of one group, implemented by the broker (queues,
// streams, the controller). The engine calls its methods from one goroutine
// at a time, in log order, on every replica; an FSM must be deterministic:
// the same entries applied to the same state give the same state and
// results on every node.
type FSM interface {
	// Apply applies committed entries in log order and stores the result of
	// entries[i] in results[i] (len(results) == len(entries); the slice
	// is the engine's and is reused after Apply returns, the values are
	// handed to the proposer on the leader). Apply must not fail: an entry
	// the FSM rejects is applied as a no-op with an error result.
	Apply(entries []Entry, results []any)

	// Snapshot writes the state as of the last applied entry to w, on a
	// goroutine of its own: the engine goes on with its other groups, and
	// with this group's replication, holding its committed entries back
	// until Snapshot returns. It calls none of the FSM's methods
	// meanwhile; goroutines of the FSM's own that read its state lock as
	// they would against Apply. The engine makes the file durable.
	Snapshot(w io.Writer) error

	// Restore replaces the state with one written by Snapshot (on this
	// node or another). When a follower installs a snapshot it runs on a
	// goroutine of its own, as Snapshot does, with the group's committed
	// entries held back until it returns; at open, on OpenGroup's caller.
	// An error is fatal for the group: the engine stops it, since it can
	// neither apply entries nor catch up.
	Restore(r io.Reader) error

	// RetainFrom returns the lowest log index the FSM still needs to read
	// from the log (a queue's unsettled messages, a stream's retained
	// data); 0 means it needs nothing. The engine never truncates the log
	// at or above it, and ships the retained entries with every snapshot
	// it sends to a lagging follower.
	RetainFrom() uint64
}

// SnapshotRequester is an FSM that may ask for a snapshot however little
// it applied since the last: a stream partition whose retention moved its
// start, so that the log below can go now, not once traffic brings the
// next snapshot. The engine asks after every Apply.
type SnapshotRequester interface {
	// SnapshotRequested reports whether an Apply since the last call asked
	// for a snapshot, and forgets the request.
	SnapshotRequested() bool
}

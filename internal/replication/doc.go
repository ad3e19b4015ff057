// Package replication is Ferry's multi-group Raft engine: every queue and
// every stream partition is one Raft group (go.etcd.io/raft/v3 RawNode), and
// a node runs thousands of them on a few engine loops.
//
// It owns:
//   - the Engine: groups mapped to loops by hash; each loop iteration
//     collects the Ready of every group with work, writes all their entries
//     to their logs, makes them durable with one SyncAll and at most one
//     StateStore commit, sends the messages, applies committed entries to
//     each group's FSM and advances raft (DESIGN.md "One iteration");
//   - proposals (Propose, ProposeBatch), reads (ReadIndex, LeaseRead),
//     membership (ChangeMembership, AddLearner, Promote, RemoveNode) and
//     leadership transfer, each with a blocking and a callback form;
//   - status: Status of a group, and LeadershipChanged, a channel closed
//     at the next leadership change of any group (a base.Broadcast), so that
//     watchers need not poll;
//   - quiescence: idle, fully replicated groups stop ticking and
//     heartbeating until something happens to them;
//   - snapshots: FSM snapshots every N entries or bytes, log prefix
//     truncation that keeps what the FSM retains, and snapshots streamed to
//     lagging followers with the retained entries;
//   - the interfaces it needs from storage (LogStore, LogProvider,
//     StateStore) and from the network (Transport, Handler), small
//     vfs-backed stores (SimpleLogs, SimpleState), and the TCP transport
//     with its framed, checksummed encoding of Raft messages.
//
// Every entry is one record batch of the group's log: the group's Raft log
// is its message log (entry.go says how commands and Raft's own entries are
// wrapped in control batches). The FSM sees commands and data batches only,
// as opaque bytes.
//
// It must never: confirm a proposal or send a message that depends on
// state not yet durable; block an engine loop on the network (sends drop
// and report unreachable when queues are full); retry a failed fsync (the
// engine stops: fail-stop); iterate a Go map where order matters (the
// simulator needs the same seed to give the same run); read the clock
// other than through base.Clock; import a Ferry package above storage.
package replication

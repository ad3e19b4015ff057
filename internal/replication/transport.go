package replication

import (
	"io"

	pb "go.etcd.io/raft/v3/raftpb"
)

// Batch is what one engine iteration sends to one peer: the Raft messages
// of every group with something to say to it, with the heartbeats of all
// those groups coalesced into compact records.
type Batch struct {
	Messages   []Envelope
	Heartbeats []Heartbeat
}

// Envelope is one Raft message of one group. From and To of Msg are the
// sending and receiving nodes (replica ids are node ids), so the wire
// encoding leaves them out and the receiver fills them in.
type Envelope struct {
	Group GroupID
	// Stamp is the sending leader's clock (Unix ns) on a MsgHeartbeat, and
	// the echo of the newest accepted heartbeat's stamp on a
	// MsgHeartbeatResp: it lets the leader time its read lease.
	Stamp uint64
	Msg   *pb.Message
}

// Heartbeat is a MsgHeartbeat (or, with Resp, a MsgHeartbeatResp) without
// a context, which is all a heartbeat carries: group, term, commit.
type Heartbeat struct {
	Group  GroupID
	Term   uint64
	Commit uint64
	Stamp  uint64 // as Envelope.Stamp
	Resp   bool
	// Quiesce on a heartbeat asks the follower to stop ticking the group;
	// on a response it says the follower did (informational: no heartbeat
	// response wakes a sleeping leader).
	Quiesce bool
}

// OutgoingSnapshot is a snapshot to stream to a follower. The transport
// calls Open (once) from its own goroutine, streams what it reads in
// chunks, and calls Done exactly once with nil when the receiver has
// stored it, or the error.
type OutgoingSnapshot struct {
	Group GroupID
	Open  func() (io.ReadCloser, error)
	Done  func(err error)
}

// Transport carries batches and snapshots between nodes. The engine calls
// it from its loops; no method may block.
type Transport interface {
	// Send queues b for delivery to the peer and takes ownership of it. If
	// it cannot be queued (queue full, unknown peer), it is dropped and
	// the groups reported through Handler.ReportUnreachable.
	Send(to NodeID, b *Batch)
	// SendSnapshot streams a snapshot to the peer in the background.
	SendSnapshot(to NodeID, s *OutgoingSnapshot)
}

// Handler receives what the transport delivers; the Engine implements it.
// Its methods may be called from any goroutine and do not block for long.
type Handler interface {
	// HandleBatch delivers a batch from a peer. The handler owns b.
	HandleBatch(from NodeID, b *Batch)
	// ReceiveSnapshot reads a whole snapshot stream from a peer and stores
	// it; a nil error tells the sender it was received. It may block
	// while it writes to disk.
	ReceiveSnapshot(from NodeID, r io.Reader) error
	// ReportUnreachable says that messages of these groups to the peer were
	// dropped before being sent.
	ReportUnreachable(to NodeID, groups []GroupID)
	// PeerDown says that the peer stopped answering node-level heartbeats;
	// groups it leads that sleep here (quiesced) must wake and elect.
	PeerDown(node NodeID)
	// PeerUp says that a peer reported down is heard again: groups that
	// woke only because of the report may go back to sleep.
	PeerUp(node NodeID)
}

package replication

import (
	"errors"
	"fmt"

	raft "go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"

	"github.com/ferry-mq/ferry/internal/base"
)

// LogStore is one group's Raft log. Batch i of the log is Raft entry i and
// its epoch field is the entry's term (see entry.go). The segmented log of
// internal/storage/log is the production implementation; SimpleLog is a
// small one for tests and the simulator.
//
// The engine calls the mutating methods from one goroutine at a time; the
// read methods may be called concurrently with anything (a snapshot being
// streamed reads the log while the loop appends).
type LogStore interface {
	// Write appends batch as entry LastIndex()+1 of the given term and
	// returns its index. It stamps the base offset and the term into the
	// store's own copy. It is not durable until SyncAll covers the log.
	Write(term uint64, batch []byte) (index uint64, err error)
	// WriteValidated is Write for a batch this node built or already
	// validated as Write would (and did not modify since): the store may
	// skip re-checking it (the segmented log skips the CRC and the walk
	// over the records; see its doc). The engine uses it for its own
	// entries only; entries received from a leader go through Write.
	WriteValidated(term uint64, batch []byte) (index uint64, err error)
	// Entries returns the batches with index in [lo, hi) as copies owned by
	// the caller, whole, at most maxBytes of them but at least one when
	// lo < hi. Their epoch fields hold their terms.
	Entries(lo, hi uint64, maxBytes int) ([][]byte, error)
	// Term returns the term of the entry at index, which must be in
	// [FirstIndex, LastIndex].
	Term(index uint64) (uint64, error)
	// FirstIndex is the index of the first stored entry.
	FirstIndex() uint64
	// LastIndex is the index of the last entry, FirstIndex()-1 when empty.
	LastIndex() uint64
	// Offset returns the base offset of the batch at index, or the next
	// offset when index is LastIndex()+1.
	Offset(index uint64) (int64, error)
	// TruncateSuffix drops the entries with index >= from (a Raft
	// conflict); durable with the next SyncAll.
	TruncateSuffix(from uint64) error
	// TruncatePrefix drops the entries with index < before; it may keep
	// them until whole segments can go, and may be lost in a crash (the
	// entries then come back, which is harmless).
	TruncatePrefix(before uint64) error
	// PrefixBytes is how many bytes of storage TruncatePrefix(before)
	// would free now (the segmented log frees whole segments only).
	PrefixBytes(before uint64) int64
	// Reset drops every entry; the next Write gets nextIndex and its batch
	// nextOffset. Durable with the next SyncAll.
	Reset(nextIndex uint64, nextOffset int64) error
	Close() error
}

// LogProvider opens the logs of a node's groups. All logs of one provider
// share one file system, so that SyncAll can make many of them durable
// with one device flush.
type LogProvider interface {
	OpenLog(group GroupID) (LogStore, error)
	// SyncAll makes everything written to the given logs durable: one
	// fsync for all of them where the file system allows. An error is
	// fatal for the node.
	SyncAll(logs []LogStore) error
}

// HardState is the durable part of Raft's state: the current term and the
// vote cast in it, and a commit index that is persisted lazily (it is
// volatile in the Raft paper; only a snapshot needs it to cover the
// snapshot's index, as etcd raft checks at start).
type HardState struct {
	Term, Vote, Commit uint64
}

// SnapshotMeta describes the newest durable snapshot of a group.
type SnapshotMeta struct {
	Index, Term uint64
	// ConfState is the membership as of Index.
	ConfState *pb.ConfState
	// File is the snapshot's file name in the group's snapshot directory.
	File string
	// RetainFrom is the first log index kept below Index+1 for the FSM,
	// and FirstOffset the base offset of that entry: the snapshot's log
	// starts there.
	RetainFrom  uint64
	FirstOffset int64
}

// GroupState is what the StateStore holds for one group.
type GroupState struct {
	HardState HardState
	// Snapshot.Index == 0 when the group has never taken or installed a
	// snapshot; its ConfState is then the bootstrap membership (empty for
	// a replica that joins an existing group).
	Snapshot SnapshotMeta
}

// StateUpdate is one group's change in a StateStore commit; nil fields are
// unchanged. Delete removes the group's state.
type StateUpdate struct {
	Group     GroupID
	HardState *HardState
	Snapshot  *SnapshotMeta
	Delete    bool
}

// StateStore holds every group's HardState and snapshot metadata (Pebble in
// production, internal/storage/meta). It is safe for concurrent use.
type StateStore interface {
	// Load returns the group's state, and false when there is none.
	Load(group GroupID) (GroupState, bool, error)
	// Commit applies the updates atomically and durably: when it returns
	// nil, all of them survive a crash. An error is fatal for the node.
	Commit(updates []StateUpdate) error
}

// raftStorage serves raft.Storage for one group from its LogStore and its
// snapshot metadata. It is used only by the group's loop goroutine, except
// that the fields read by Snapshot are guarded by nothing because raft calls
// Snapshot from that goroutine too.
type raftStorage struct {
	g    *group
	log  LogStore
	hs   HardState    // as loaded at start; raft keeps its own afterwards
	snap SnapshotMeta // the newest durable snapshot
}

var _ raft.Storage = (*raftStorage)(nil)

func (s *raftStorage) InitialState() (*pb.HardState, *pb.ConfState, error) {
	hs := &pb.HardState{Term: new(s.hs.Term), Vote: new(s.hs.Vote), Commit: new(s.hs.Commit)}
	cs := s.snap.ConfState
	if cs == nil {
		cs = &pb.ConfState{}
	}
	return hs, pb.EnsureConfState(cs), nil
}

// FirstIndex hides log entries at or below the snapshot index that the
// log retains for the FSM: to raft the log starts after the snapshot.
func (s *raftStorage) FirstIndex() (uint64, error) {
	return max(s.log.FirstIndex(), s.snap.Index+1), nil
}

func (s *raftStorage) LastIndex() (uint64, error) {
	return max(s.log.LastIndex(), s.snap.Index), nil
}

func (s *raftStorage) Term(i uint64) (uint64, error) {
	if i == s.snap.Index {
		return s.snap.Term, nil
	}
	first, _ := s.FirstIndex()
	if i < first {
		return 0, raft.ErrCompacted
	}
	if i > s.log.LastIndex() {
		return 0, raft.ErrUnavailable
	}
	t, err := s.log.Term(i)
	if err != nil {
		return 0, s.g.storageFailed(fmt.Errorf("term of entry %d: %w", i, err))
	}
	return t, nil
}

func (s *raftStorage) Entries(lo, hi, maxSize uint64) ([]*pb.Entry, error) {
	first, _ := s.FirstIndex()
	if lo < first {
		return nil, raft.ErrCompacted
	}
	if hi > s.log.LastIndex()+1 {
		return nil, raft.ErrUnavailable
	}
	if lo >= hi {
		return nil, nil
	}
	if ents, ok := s.g.cache.get(lo, hi, maxSize); ok {
		return ents, nil
	}
	limit := int(min(maxSize, uint64(base.RaftApplyBytesMax)*4))
	batches, err := s.log.Entries(lo, hi, limit)
	if err != nil {
		return nil, s.g.storageFailed(fmt.Errorf("entries [%d, %d): %w", lo, hi, err))
	}
	out := make([]*pb.Entry, len(batches))
	for i, b := range batches {
		out[i] = raftEntry(lo+uint64(i), b)
		if base.InvariantsEnabled {
			t, err := s.log.Term(lo + uint64(i))
			base.Assert(err == nil && t == out[i].GetTerm(), "group %d: entry %d read with term %d, the log's Term says %d (%v)", s.g.id, lo+uint64(i), out[i].GetTerm(), t, err)
		}
	}
	return out, nil
}

func (s *raftStorage) Snapshot() (*pb.Snapshot, error) {
	if s.snap.Index == 0 || s.snap.Index < s.g.confIndex {
		// A snapshot older than the last membership change may not list the
		// follower that needs it (raft then ignores it): take a new one.
		s.g.snapWanted = true
		s.g.l.more = true
		return nil, raft.ErrSnapshotTemporarilyUnavailable
	}
	return &pb.Snapshot{
		Data: []byte(s.snap.File),
		Metadata: &pb.SnapshotMetadata{
			ConfState: pb.EnsureConfState(cloneConfState(s.snap.ConfState)),
			Index:     new(s.snap.Index),
			Term:      new(s.snap.Term),
		},
	}, nil
}

func cloneConfState(cs *pb.ConfState) *pb.ConfState {
	if cs == nil {
		return &pb.ConfState{}
	}
	return &pb.ConfState{
		Voters:         append([]uint64(nil), cs.GetVoters()...),
		Learners:       append([]uint64(nil), cs.GetLearners()...),
		VotersOutgoing: append([]uint64(nil), cs.GetVotersOutgoing()...),
		LearnersNext:   append([]uint64(nil), cs.GetLearnersNext()...),
		AutoLeave:      new(cs.GetAutoLeave()),
	}
}

// errStorageFailed marks the panics that raft raises when our Storage
// returns an error: the loop recovers them and stops the node (fail-stop)
// rather than crash the process.
var errStorageFailed = errors.New("replication: storage failed")

// entryCache keeps the entries a group wrote recently until they are
// applied, so that raft's reads of just-committed entries (which it no
// longer holds once they are stable) do not go back to the log: without it,
// a single voter read every entry from disk once more to apply it. It holds
// at most base.RaftEntryCacheBytesMax bytes of entry data; beyond, raft
// reads from the log. Owned by the group's loop.
type entryCache struct {
	first uint64 // index of ents[0]
	ents  []*pb.Entry
	bytes int
}

// add records entries just written; they replace any cached suffix from
// their first index, and restart the cache if they do not follow it.
func (c *entryCache) add(ents []*pb.Entry) {
	if len(ents) == 0 {
		return
	}
	first := ents[0].GetIndex()
	switch {
	case len(c.ents) == 0 || first < c.first || first > c.first+uint64(len(c.ents)):
		c.clear()
		c.first = first
	default:
		c.truncateFrom(first)
	}
	for _, e := range ents {
		c.ents = append(c.ents, e)
		c.bytes += len(e.GetData())
	}
	for c.bytes > base.RaftEntryCacheBytesMax && len(c.ents) > 0 {
		c.dropFront()
	}
}

func (c *entryCache) truncateFrom(index uint64) {
	for len(c.ents) > 0 && c.first+uint64(len(c.ents))-1 >= index {
		last := len(c.ents) - 1
		c.bytes -= len(c.ents[last].GetData())
		c.ents[last] = nil
		c.ents = c.ents[:last]
	}
}

func (c *entryCache) dropFront() {
	c.bytes -= len(c.ents[0].GetData())
	c.ents[0] = nil
	c.ents = c.ents[1:]
	c.first++
}

// dropThrough forgets the entries up to index (applied).
func (c *entryCache) dropThrough(index uint64) {
	for len(c.ents) > 0 && c.first <= index {
		c.dropFront()
	}
	if len(c.ents) == 0 {
		c.ents = nil // let the backing array go
	}
}

func (c *entryCache) clear() { *c = entryCache{} }

// get returns the entries [lo, hi), at most maxSize bytes of data but at
// least one, when the cache holds all of them.
func (c *entryCache) get(lo, hi, maxSize uint64) ([]*pb.Entry, bool) {
	if len(c.ents) == 0 || lo < c.first || hi > c.first+uint64(len(c.ents)) {
		return nil, false
	}
	ents := c.ents[lo-c.first : hi-c.first]
	size := uint64(0)
	for i, e := range ents {
		size += uint64(len(e.GetData()))
		if i > 0 && size > maxSize {
			ents = ents[:i]
			break
		}
	}
	// A copy: raft keeps the slice (in the Ready and in what Advance steps)
	// while the cache drops and reuses its own.
	return append([]*pb.Entry(nil), ents...), true
}

package broker

import (
	"sync"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/replication"
)

// groupLogs wraps the engine's LogProvider to remember each group's open
// LogStore, so that the broker can read message bodies (queue deliveries,
// stream fetches) from the same log the engine writes. It hands the
// engine the inner provider's stores unchanged, because the inner
// SyncAll expects its own types.
type groupLogs struct {
	inner replication.LogProvider

	mu   sync.RWMutex
	open map[GroupID]replication.LogStore // guarded by mu
}

func newGroupLogs(inner replication.LogProvider) *groupLogs {
	return &groupLogs{inner: inner, open: map[GroupID]replication.LogStore{}}
}

func (g *groupLogs) OpenLog(group replication.GroupID) (replication.LogStore, error) {
	l, err := g.inner.OpenLog(group)
	if err != nil {
		return nil, err
	}
	g.mu.Lock()
	g.open[group] = l
	g.mu.Unlock()
	return l, nil
}

func (g *groupLogs) SyncAll(logs []replication.LogStore) error { return g.inner.SyncAll(logs) }

// get returns the group's log, or CodeUnavailable when it is not open.
// The engine may close it at any time (the group closed); reads then fail
// and callers treat that like a leadership loss.
func (g *groupLogs) get(group GroupID) (replication.LogStore, error) {
	g.mu.RLock()
	l := g.open[group]
	g.mu.RUnlock()
	if l == nil {
		return nil, base.Errorf(base.CodeUnavailable, "broker: the log of group %d is not open on this node", group)
	}
	return l, nil
}

// forget drops a closed group's log.
func (g *groupLogs) forget(group GroupID) {
	g.mu.Lock()
	delete(g.open, group)
	g.mu.Unlock()
}

// offsetReader is what stream fetches need beyond LogStore: reads by
// Kafka offset and by time. The segmented log's store has them.
type offsetReader interface {
	Read(offset int64, maxBytes int) ([]byte, error)
	LookupTime(ts int64) (int64, error)
}

// readBatch returns the batch at index, read from the group's log.
func (g *groupLogs) readBatch(group GroupID, index uint64) ([]byte, error) {
	l, err := g.get(group)
	if err != nil {
		return nil, err
	}
	bs, err := l.Entries(index, index+1, 1)
	if err != nil {
		return nil, err
	}
	if len(bs) != 1 {
		return nil, base.Errorf(base.CodeInternal, "broker: group %d: entry %d read as %d batches", group, index, len(bs))
	}
	return bs[0], nil
}

func (g *groupLogs) offsets(group GroupID) (offsetReader, error) {
	l, err := g.get(group)
	if err != nil {
		return nil, err
	}
	r, ok := l.(offsetReader)
	if !ok {
		return nil, base.Errorf(base.CodeNotSupported, "broker: the log of group %d cannot be read by offset", group)
	}
	return r, nil
}

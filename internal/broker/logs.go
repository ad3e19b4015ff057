package broker

import (
	"math"
	"sync"
	"time"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/controller"
	"github.com/ferry-mq/ferry/internal/replication"
)

// groupLogs wraps the engine's LogProvider to remember each group's open
// LogStore, so that the broker can read message bodies (queue deliveries,
// stream fetches) from the same log the engine writes. It hands the
// engine the inner provider's stores unchanged, because the inner
// SyncAll expects its own types. It also gives a stream partition's log
// the stream's segment.bytes and segment.ms; every other log rolls at the
// inner provider's size.
type groupLogs struct {
	inner replication.LogProvider

	mu   sync.RWMutex
	open map[GroupID]replication.LogStore // guarded by mu

	// rollMu serialises setRolling with OpenLog, so that an open log
	// ends with the latest setting, not one an open read before it.
	rollMu  sync.Mutex
	rolling map[GroupID]rollLimits // guarded by rollMu
}

// rollLimits are a log's segment roll size and age.
type rollLimits struct {
	bytes int64
	age   time.Duration
}

// partitionRolling returns the roll limits of a stream's partitions: its
// segment.bytes, and its segment.ms no shorter than SegmentAgeMin (0,
// for either, is the log's default).
func partitionRolling(cfg controller.StreamConfig) rollLimits {
	var age time.Duration
	if cfg.SegmentMs > 0 {
		age = max(base.SegmentAgeMin, time.Duration(min(cfg.SegmentMs, math.MaxInt64/int64(time.Millisecond)))*time.Millisecond)
	}
	return rollLimits{bytes: cfg.SegmentBytes, age: age}
}

// rollingLog is a LogStore whose roll limits can change: the segmented
// log's.
type rollingLog interface {
	SetRolling(bytes int64, age time.Duration) error
}

func newGroupLogs(inner replication.LogProvider) *groupLogs {
	return &groupLogs{inner: inner, open: map[GroupID]replication.LogStore{}, rolling: map[GroupID]rollLimits{}}
}

func (g *groupLogs) OpenLog(group replication.GroupID) (replication.LogStore, error) {
	g.rollMu.Lock()
	defer g.rollMu.Unlock()
	l, err := g.inner.OpenLog(group)
	if err != nil {
		return nil, err
	}
	if r, ok := g.rolling[group]; ok {
		if err := applyRolling(l, r); err != nil {
			l.Close()
			return nil, err
		}
	}
	g.mu.Lock()
	g.open[group] = l
	g.mu.Unlock()
	return l, nil
}

// setRolling gives group's log the roll limits r, now if it is open, else
// when it opens.
func (g *groupLogs) setRolling(group GroupID, r rollLimits) error {
	g.rollMu.Lock()
	defer g.rollMu.Unlock()
	if old, ok := g.rolling[group]; ok && old == r {
		return nil
	}
	g.rolling[group] = r
	g.mu.RLock()
	l := g.open[group]
	g.mu.RUnlock()
	if l == nil {
		return nil
	}
	return applyRolling(l, r)
}

// applyRolling gives the open log l the roll limits r.
func applyRolling(l replication.LogStore, r rollLimits) error {
	if rl, ok := l.(rollingLog); ok {
		return rl.SetRolling(r.bytes, r.age)
	}
	return nil // a log without segments (replication.SimpleLogs)
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

// forget drops a closed group's log and its roll limits.
func (g *groupLogs) forget(group GroupID) {
	g.rollMu.Lock()
	delete(g.rolling, group)
	g.rollMu.Unlock()
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

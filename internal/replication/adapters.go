package replication

import (
	"errors"
	"fmt"
	"log/slog"
	"path"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/base/vfs"
	seglog "github.com/ferry-mq/ferry/internal/storage/log"
	"github.com/ferry-mq/ferry/internal/storage/log/batch"
	"github.com/ferry-mq/ferry/internal/storage/meta"
)

// SegmentLogs is the production LogProvider: each group's Raft log is its
// segmented log (internal/storage/log) in Dir/<group>, so entries are
// written once, as the message log.
type SegmentLogs struct {
	FS     vfs.FS
	Dir    string
	Clock  base.Clock
	Logger *slog.Logger
	// SegmentBytes is the roll size of every log; 0 is the log's default.
	// SegmentBytesGrowTo lets it grow with the log (seglog.Options).
	SegmentBytes, SegmentBytesGrowTo int64
	// RemoveInBackground is the logs' seglog.Options.RemoveInBackground:
	// the engine loop does not wait for the files of truncated segments
	// to go. The simulator leaves it off, to keep its runs deterministic.
	RemoveInBackground bool
}

func (p *SegmentLogs) OpenLog(group GroupID) (LogStore, error) {
	l, err := seglog.Open(seglog.Options{
		FS:                 p.FS,
		Dir:                path.Join(p.Dir, fmt.Sprintf("%020d", group)),
		Clock:              p.Clock,
		SegmentBytes:       p.SegmentBytes,
		SegmentBytesGrowTo: p.SegmentBytesGrowTo,
		RemoveInBackground: p.RemoveInBackground,
		Logger:             p.Logger,
	})
	if err != nil {
		return nil, err
	}
	return &segmentLog{l}, nil
}

// SyncAll makes the logs durable with one seglog.SyncAll: one SyncFiles
// (one syncfs(2) on Linux) for all of them.
func (p *SegmentLogs) SyncAll(logs []LogStore) error {
	ls := make([]*seglog.Log, len(logs))
	for i, l := range logs {
		ls[i] = l.(*segmentLog).Log
	}
	return seglog.SyncAll(ls...)
}

// segmentLog adapts *seglog.Log to LogStore.
type segmentLog struct{ *seglog.Log }

func (l *segmentLog) Write(term uint64, b []byte) (uint64, error) {
	pos, err := l.Log.Write(term, b)
	return pos.Index, err
}

func (l *segmentLog) WriteValidated(term uint64, b []byte) (uint64, error) {
	pos, err := l.Log.WriteValidated(term, b)
	return pos.Index, err
}

// Offset derives a batch's base offset: the log keeps offsets per batch
// but offers them by index only through the batch bytes (see the report:
// an Offset(index) method would save this read).
func (l *segmentLog) Offset(index uint64) (int64, error) {
	switch {
	case index == l.LastIndex()+1:
		return l.NextOffset(), nil
	case index == l.FirstIndex():
		return l.FirstOffset(), nil
	}
	bs, err := l.Entries(index, index+1, 1)
	if err != nil {
		return 0, err
	}
	return batch.BaseOffset(bs[0]), nil
}

// MetaState is the production StateStore: the node's Pebble store
// (internal/storage/meta). A group's HardState lives under
// meta.HardStateKey and its snapshot metadata (which holds the ConfState
// as of the snapshot) under meta.ConfStateKey, encoded by
// EncodeHardState and EncodeSnapshotMeta.
type MetaState struct {
	Store *meta.Store
}

func (m MetaState) Load(group GroupID) (GroupState, bool, error) {
	var gs GroupState
	found := false
	v, err := m.Store.Get(meta.HardStateKey(group))
	switch {
	case err == nil:
		if gs.HardState, err = DecodeHardState(v); err != nil {
			return gs, false, err
		}
		found = true
	case !errors.Is(err, &base.Error{Code: base.CodeNotFound}):
		return gs, false, err
	}
	v, err = m.Store.Get(meta.ConfStateKey(group))
	switch {
	case err == nil:
		if gs.Snapshot, err = DecodeSnapshotMeta(v); err != nil {
			return gs, false, err
		}
		found = true
	case !errors.Is(err, &base.Error{Code: base.CodeNotFound}):
		return gs, false, err
	}
	return gs, found, nil
}

// Commit writes all updates in one synced batch: one fsync (Pebble's WAL),
// shared with concurrent committers.
func (m MetaState) Commit(ups []StateUpdate) error {
	b := m.Store.NewBatch()
	defer b.Close()
	for _, u := range ups {
		var err error
		switch {
		case u.Delete:
			if err = b.Delete(meta.HardStateKey(u.Group)); err == nil {
				err = b.Delete(meta.ConfStateKey(u.Group))
			}
		default:
			if u.HardState != nil {
				err = b.Set(meta.HardStateKey(u.Group), EncodeHardState(*u.HardState))
			}
			if err == nil && u.Snapshot != nil {
				err = b.Set(meta.ConfStateKey(u.Group), EncodeSnapshotMeta(*u.Snapshot))
			}
		}
		if err != nil {
			return err
		}
	}
	return m.Store.Commit(b, meta.Sync)
}

package replication

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
)

// metrics are the engine's counters; the server exports them.
type metrics struct {
	iterations         atomic.Uint64
	logSyncs           atomic.Uint64
	stateCommits       atomic.Uint64
	entriesWritten     atomic.Uint64
	entriesApplied     atomic.Uint64
	messagesSent       atomic.Uint64
	inboxDrops         atomic.Uint64
	quiesces           atomic.Uint64
	snapshots          atomic.Uint64
	snapshotsSent      atomic.Uint64
	snapshotsInstalled atomic.Uint64
	peerDowns          atomic.Uint64
	wakes              atomic.Uint64
}

// Metrics is a snapshot of the engine's counters since New.
type Metrics struct {
	Iterations         uint64 // loop iterations, summed over loops
	LogSyncs           uint64 // SyncAll calls: at most one per iteration
	StateCommits       uint64 // StateStore commits: at most two per iteration
	EntriesWritten     uint64
	EntriesApplied     uint64
	MessagesSent       uint64 // Raft messages and coalesced heartbeats
	InboxDrops         uint64 // peer messages dropped on a full loop inbox
	Quiesces           uint64 // times a group went to sleep
	Snapshots          uint64 // FSM snapshots taken
	SnapshotsSent      uint64
	SnapshotsInstalled uint64
	PeerDowns          uint64 // peers reported down by the transport
	Wakes              uint64 // times a sleeping group woke
}

// Fsyncs is the number of durable points: log syncs plus state commits.
func (m Metrics) Fsyncs() uint64 { return m.LogSyncs + m.StateCommits }

func (e *Engine) Metrics() Metrics {
	m := &e.metrics
	return Metrics{
		Iterations:         m.iterations.Load(),
		LogSyncs:           m.logSyncs.Load(),
		StateCommits:       m.stateCommits.Load(),
		EntriesWritten:     m.entriesWritten.Load(),
		EntriesApplied:     m.entriesApplied.Load(),
		MessagesSent:       m.messagesSent.Load(),
		InboxDrops:         m.inboxDrops.Load(),
		Quiesces:           m.quiesces.Load(),
		Snapshots:          m.snapshots.Load(),
		SnapshotsSent:      m.snapshotsSent.Load(),
		SnapshotsInstalled: m.snapshotsInstalled.Load(),
		PeerDowns:          m.peerDowns.Load(),
		Wakes:              m.wakes.Load(),
	}
}

// raftLogger passes raft's warnings and errors to slog and drops its
// debug and info chatter unless the logger wants it; Panic and Fatal panic
// (raft expects them not to return).
type raftLogger struct{ l *slog.Logger }

func (r raftLogger) log(level slog.Level, format string, v ...any) {
	if r.l.Enabled(context.Background(), level) {
		r.l.Log(context.Background(), level, "raft: "+fmt.Sprintf(format, v...))
	}
}

func (r raftLogger) Debug(v ...any)                   { r.log(slog.LevelDebug-4, "%s", fmt.Sprint(v...)) }
func (r raftLogger) Debugf(format string, v ...any)   { r.log(slog.LevelDebug-4, format, v...) }
func (r raftLogger) Info(v ...any)                    { r.log(slog.LevelDebug, "%s", fmt.Sprint(v...)) }
func (r raftLogger) Infof(format string, v ...any)    { r.log(slog.LevelDebug, format, v...) }
func (r raftLogger) Warning(v ...any)                 { r.log(slog.LevelWarn, "%s", fmt.Sprint(v...)) }
func (r raftLogger) Warningf(format string, v ...any) { r.log(slog.LevelWarn, format, v...) }
func (r raftLogger) Error(v ...any)                   { r.log(slog.LevelError, "%s", fmt.Sprint(v...)) }
func (r raftLogger) Errorf(format string, v ...any)   { r.log(slog.LevelError, format, v...) }
func (r raftLogger) Fatal(v ...any)                   { panic("raft: " + fmt.Sprint(v...)) }
func (r raftLogger) Fatalf(format string, v ...any)   { panic("raft: " + fmt.Sprintf(format, v...)) }
func (r raftLogger) Panic(v ...any)                   { panic("raft: " + fmt.Sprint(v...)) }
func (r raftLogger) Panicf(format string, v ...any)   { panic("raft: " + fmt.Sprintf(format, v...)) }

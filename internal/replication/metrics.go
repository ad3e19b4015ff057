package replication

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"
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
	leaderChanges      atomic.Uint64
	proposals          atomic.Uint64
	proposalsFailed    atomic.Uint64
	fsyncSeconds       latencyHistogram // every SyncAll and StateStore.Commit
	commitSeconds      latencyHistogram // ProposeAsync/ProposeBatch to its outcome
	snapshotSeconds    latencyHistogram // snapshot writes, off the loop
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
	// LeaderChanges counts the times a group here learned of a new
	// leader (a change to "no leader" is not one).
	LeaderChanges uint64
	// Proposals counts commands and data batches proposed through this
	// node's engine (ProposeAsync, Propose, ProposeBatch);
	// ProposalsFailed those whose outcome was an error (not the leader,
	// overloaded, overwritten, timed out).
	Proposals       uint64
	ProposalsFailed uint64
	// HandshakesRefused counts the transport's connections refused, by
	// this node or by the peer, because the two belong to different
	// clusters (TCPTransport.Refused; 0 for a transport that does not
	// count them).
	HandshakesRefused uint64
	// FsyncSeconds is the latency of each durable point: a SyncAll of the
	// logs or a StateStore commit.
	FsyncSeconds Histogram
	// CommitSeconds is the latency from a proposal to its outcome on this
	// node (committed and applied, or failed): what a proposer waits.
	CommitSeconds Histogram
	// SnapshotSeconds is how long each FSM snapshot took to write (off
	// the engine loop): the time its group held its committed entries
	// back from the FSM.
	SnapshotSeconds Histogram
}

// LatencyBucketsSeconds are the upper bounds of the latency histograms,
// in seconds: from a fast NVMe fsync (100 µs) to a stalled disk (10 s).
var LatencyBucketsSeconds = [...]float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// Histogram is a snapshot of a latency histogram. Counts[i] is the number
// of observations at or below LatencyBucketsSeconds[i] and above the
// bound before it (not cumulative); Count includes those above the last
// bound.
type Histogram struct {
	Counts [len(LatencyBucketsSeconds)]uint64
	Count  uint64
	Sum    float64 // seconds
}

// latencyHistogram records durations with atomic adds: no lock on the
// engine loop.
type latencyHistogram struct {
	counts [len(LatencyBucketsSeconds)]atomic.Uint64
	count  atomic.Uint64
	sumNs  atomic.Uint64
}

func (h *latencyHistogram) observe(d time.Duration) {
	d = max(d, 0)
	s := d.Seconds()
	for i, b := range LatencyBucketsSeconds {
		if s <= b {
			h.counts[i].Add(1)
			break
		}
	}
	h.sumNs.Add(uint64(d))
	h.count.Add(1)
}

func (h *latencyHistogram) snapshot() Histogram {
	var out Histogram
	for i := range h.counts {
		out.Counts[i] = h.counts[i].Load()
	}
	out.Count = h.count.Load()
	out.Sum = time.Duration(h.sumNs.Load()).Seconds()
	return out
}

// timedLogs and timedState time the engine's durable points into
// FsyncSeconds, whichever code path calls them.
type timedLogs struct {
	LogProvider
	e *Engine
}

func (t timedLogs) SyncAll(logs []LogStore) error {
	start := t.e.clock.Now()
	err := t.LogProvider.SyncAll(logs)
	t.e.metrics.fsyncSeconds.observe(t.e.clock.Now().Sub(start))
	return err
}

type timedState struct {
	StateStore
	e *Engine
}

func (t timedState) Commit(updates []StateUpdate) error {
	start := t.e.clock.Now()
	err := t.StateStore.Commit(updates)
	t.e.metrics.fsyncSeconds.observe(t.e.clock.Now().Sub(start))
	return err
}

// timeProposal counts r, a proposal made at start, and marks it for
// finish to time into CommitSeconds: fields of the request, not a closure
// wrapping done, so that timing costs a proposal no allocation.
func (e *Engine) timeProposal(r *request, start time.Time) *request {
	e.metrics.proposals.Add(1)
	r.timer, r.start = e, start
	return r
}

// proposalDone records the outcome of a proposal marked by timeProposal.
func (e *Engine) proposalDone(start time.Time, err error) {
	e.metrics.commitSeconds.observe(e.clock.Now().Sub(start))
	if err != nil {
		e.metrics.proposalsFailed.Add(1)
	}
}

// Fsyncs is the number of durable points: log syncs plus state commits.
func (m Metrics) Fsyncs() uint64 { return m.LogSyncs + m.StateCommits }

func (e *Engine) Metrics() Metrics {
	m := &e.metrics
	var refused uint64
	if r, ok := e.cfg.Transport.(interface{ Refused() uint64 }); ok {
		refused = r.Refused()
	}
	return Metrics{
		HandshakesRefused:  refused,
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
		LeaderChanges:      m.leaderChanges.Load(),
		Proposals:          m.proposals.Load(),
		ProposalsFailed:    m.proposalsFailed.Load(),
		FsyncSeconds:       m.fsyncSeconds.snapshot(),
		CommitSeconds:      m.commitSeconds.snapshot(),
		SnapshotSeconds:    m.snapshotSeconds.snapshot(),
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

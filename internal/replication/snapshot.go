package replication

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"time"

	raft "go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/base/vfs"
)

func (e *Engine) snapDir(g GroupID) string {
	return path.Join(e.cfg.Dir, "snap", fmt.Sprintf("%020d", g))
}

// writeFileDurably writes dir/name through a temporary file: write, sync,
// rename, directory sync. A crash leaves either no file or the whole one.
func writeFileDurably(fsys vfs.FS, dir, name string, fill func(w io.Writer) error) error {
	if err := fsys.MkdirAll(dir, 0o755); err != nil {
		return storageErr("creating "+dir, err)
	}
	tmp := path.Join(dir, name+".tmp")
	f, err := fsys.Create(tmp)
	if err != nil {
		return storageErr("creating "+tmp, err)
	}
	bw := bufio.NewWriterSize(f, 64<<10)
	err = fill(bw)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = fsys.Rename(tmp, path.Join(dir, name))
	}
	if err == nil {
		err = fsys.SyncDir(dir)
	}
	if err != nil {
		return storageErr("writing "+path.Join(dir, name), err)
	}
	return nil
}

// openSnapFile opens a snapshot file for reading.
func openSnapFile(fsys vfs.FS, name string) (vfs.File, *snapReader, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, nil, storageErr("opening snapshot "+name, err)
	}
	size, err := f.Size()
	if err == nil {
		var sr *snapReader
		sr, err = newSnapReader(f, size)
		if err == nil {
			return f, sr, nil
		}
	}
	f.Close()
	return nil, nil, fmt.Errorf("snapshot %s: %w", name, err)
}

// maybeSnapshot snapshots the FSM when enough was applied since the last
// snapshot and a snapshot pays for itself (snapshotPays), or when raft
// needs one newer than the last membership change.
func (g *group) maybeSnapshot() error {
	if g.job != nil || g.snapPending != nil || g.applied == 0 || g.applied <= g.st.snap.Index {
		return nil
	}
	c := &g.e.cfg
	enough := g.appliedSinceSnap >= c.SnapshotEntries || g.bytesSinceSnap >= c.SnapshotBytes
	if !(enough && g.snapshotPays()) && !(g.snapWanted && g.applied >= g.confIndex) && !g.snapshotFrees() && !g.snapshotRequested() {
		return nil
	}
	return g.takeSnapshot()
}

// snapshotRequested reports whether the FSM asked for a snapshot
// (SnapshotRequester).
func (g *group) snapshotRequested() bool {
	r, ok := g.fsm.(SnapshotRequester)
	return ok && r.SnapshotRequested()
}

// snapshotFrees reports whether a snapshot now would let the log free
// SnapshotFreeBytes of storage, and no less than the last snapshot's size
// (a snapshot of a long queue holds its group's entries back while it is
// written; writing no more than it frees keeps a drain linear): the FSM
// stopped retaining much of it (a queue's consumers caught up) without
// applying enough since the last snapshot for the other rules. It asks
// once per applied index.
func (g *group) snapshotFrees() bool {
	if g.applied == g.freeCheckedAt {
		return false
	}
	g.freeCheckedAt = g.applied
	return g.log.PrefixBytes(g.keepFrom()) >= max(g.e.cfg.SnapshotFreeBytes, int64(g.snapBytes))
}

// snapshotPays reports whether a snapshot now is worth its cost. A
// snapshot encodes the FSM's whole state, so one taken every SnapshotBytes
// of log costs, for a state that grows with the log (a queue filling up
// with no consumer), work quadratic in the log. It pays when it lets the
// log drop at least SnapshotEntries entries, or when the log grew by
// base.RaftSnapshotLogGrowth times the last snapshot's size: then writing
// snapshots costs at most that fraction of writing the log, and a restart
// replays at most that multiple of the state's size in log.
func (g *group) snapshotPays() bool {
	if g.bytesSinceSnap >= base.RaftSnapshotLogGrowth*g.snapBytes {
		return true
	}
	keep, first := g.keepFrom(), g.log.FirstIndex()
	return keep > first && keep-first >= g.e.cfg.SnapshotEntries
}

// keepFrom is the first log index a snapshot at the applied index keeps:
// the FSM's RetainFrom when it is below the snapshot, never below the
// log's first index.
func (g *group) keepFrom() uint64 {
	keep := g.applied + 1
	if r := g.fsm.RetainFrom(); r != 0 && r < keep {
		keep = max(r, g.log.FirstIndex())
	}
	return keep
}

// takeSnapshot starts writing the FSM's state at the applied index to a
// durable file, off the loop (an fsmJob): the group goes on replicating
// and committing, and holds its committed entries back from the FSM until
// the write ends. The snapshot's metadata then goes into the next state
// commit, after which the log prefix is truncated (snapshotDurable).
func (g *group) takeSnapshot() error {
	index, term := g.applied, g.appliedTerm
	keep := g.keepFrom()
	off, err := g.log.Offset(keep)
	if err != nil {
		return fmt.Errorf("group %d: offset of index %d: %w", g.id, keep, err)
	}
	name := fmt.Sprintf("%020d-%020d.snap", index, term)
	meta := SnapshotMeta{Index: index, Term: term, ConfState: cloneConfState(g.confState), File: name, RetainFrom: keep, FirstOffset: off}
	hdr := &snapHeader{Group: g.id, Index: index, Term: term, RetainFrom: keep, FirstOffset: off, ConfState: meta.ConfState}
	g.appliedSinceSnap, g.bytesSinceSnap, g.snapWanted = 0, 0, false
	fsm, fsys, dir, clock := g.fsm, g.e.cfg.FS, g.dir, g.e.clock
	var stateBytes uint64
	var took time.Duration
	g.startJob(func() error {
		start := clock.Now()
		err := writeFileDurably(fsys, dir, name, func(w io.Writer) error {
			sw := newSnapWriter(w, hdr)
			if err := fsm.Snapshot(sw); err != nil {
				return fmt.Errorf("FSM snapshot: %w", err)
			}
			stateBytes = sw.fsm
			return sw.close()
		})
		took = clock.Now().Sub(start)
		return err
	}, func(err error) bool {
		switch {
		case err != nil:
			g.e.fail(fmt.Errorf("group %d: %w", g.id, err))
			return false
		case g.stopped:
			g.removeSnapFile(name, g.st.snap.File)
			return false
		}
		g.snapBytes = stateBytes
		g.e.metrics.snapshotSeconds.observe(took)
		g.e.metrics.snapshots.Add(1)
		g.snapPending = &meta
		g.l.metaPending = append(g.l.metaPending, g)
		return true
	})
	return nil
}

// fsmJob is work on a group's FSM done off the loop: a snapshot written,
// or a received one restored. Meanwhile the group goes on stepping,
// writing, syncing and sending, but its committed entries are held back
// (holdBack), and the engine calls none of its FSM's methods. run runs off
// the loop; finish runs on it, once run returned, and says whether the
// entries held back may now be applied. run's results reach the loop
// through done (closed after run) or the loop's inbox.
type fsmJob struct {
	g      *group
	l      *loop
	run    func() error
	finish func(err error) bool

	// Manual engines only, the loop's: exec was called; Steps since the
	// job started.
	started bool
	steps   int

	done chan struct{}
	err  error
}

// startJob makes run the group's job: on a goroutine of its own, or, on a
// Manual engine, at the Config.SnapshotSteps-th Step after
// (runManualJobs), so that the iterations in between hold entries back as
// they do while a real job runs.
func (g *group) startJob(run func() error, finish func(err error) bool) {
	j := &fsmJob{g: g, l: g.l, run: run, finish: finish, done: make(chan struct{})}
	g.job = j
	if g.e.cfg.Manual {
		g.l.manualJobs = append(g.l.manualJobs, j)
		return
	}
	g.e.wg.Add(1)
	go func() {
		defer g.e.wg.Done()
		j.exec()
	}()
}

// exec runs the job and hands it back to its loop.
func (j *fsmJob) exec() {
	j.err = j.run()
	close(j.done)
	j.l.mu.Lock()
	j.l.in.jobs = append(j.l.in.jobs, j)
	j.l.mu.Unlock()
	j.l.signal()
}

// holdBack keeps committed entries from the FSM while a job runs, and
// reports whether it did. It does not when the entries change the
// membership, which must apply in order with the snapshot's
// configuration, or the entries held back would pass
// RaftSnapshotDeferBytesMax: then it waits for the job to end. (A
// snapshot install waited for it already, in persist.)
func (g *group) holdBack(rd *raft.Ready) bool {
	if g.job == nil {
		return false
	}
	size, wait := g.heldBytes, false
	for _, e := range rd.CommittedEntries {
		size += len(e.GetData())
		wait = wait || e.GetType() == pb.EntryConfChangeV2
	}
	if wait || size > base.RaftSnapshotDeferBytesMax {
		g.awaitJob()
		return false
	}
	g.held = append(g.held, rd.CommittedEntries...)
	g.heldBytes = size
	return true
}

// awaitJob waits on the loop for the group's job, if any, to end, and
// finishes it.
func (g *group) awaitJob() {
	j := g.job
	if j == nil {
		return
	}
	if g.e.cfg.Manual && !j.started {
		j.started = true
		j.exec()
	}
	<-j.done
	g.finishJob(j)
}

// finishJob ends job j of the group, if it is still the group's, and
// applies the entries held back meanwhile when the job allows it.
func (g *group) finishJob(j *fsmJob) {
	if g.job != j {
		return // finished already (awaitJob)
	}
	g.job = nil
	held := g.held
	g.held, g.heldBytes = nil, 0
	if !j.finish(j.err) {
		return
	}
	g.applyCommitted(held)
	g.cache.dropThrough(g.applied)
	g.completeReads()
	g.publish()
	g.updateBusy()
	g.l.markDirty(g)
}

// snapshotUpdate is the state commit of a pending snapshot: its metadata
// and a hard state whose commit covers it (etcd raft refuses to start with
// a commit index below the snapshot's).
func (g *group) snapshotUpdate() StateUpdate {
	hs := g.hs
	base.Assert(hs.Commit >= g.snapPending.Index, "group %d: snapshot at %d above commit %d", g.id, g.snapPending.Index, hs.Commit)
	return StateUpdate{Group: g.id, HardState: &hs, Snapshot: g.snapPending}
}

// snapshotDurable runs once the snapshot's metadata is durable: the log
// below the retained index can go, and so can the previous snapshot file.
func (g *group) snapshotDurable() error {
	meta := *g.snapPending
	g.snapPending = nil
	old := g.st.snap.File
	g.st.snap = meta
	if err := g.log.TruncatePrefix(meta.RetainFrom); err != nil {
		return fmt.Errorf("group %d: truncating log below %d: %w", g.id, meta.RetainFrom, err)
	}
	g.removeSnapFile(old, meta.File)
	return nil
}

// removeStaleSnapFiles deletes, at open, every file in the group's
// snapshot directory but its current snapshot: one written and not yet
// committed when the node stopped or crashed, one received and not
// installed, a temporary file. Nothing else can know of them.
func (g *group) removeStaleSnapFiles(current string) {
	names, err := g.e.cfg.FS.List(g.dir)
	if err != nil {
		g.e.log.Warn("listing snapshot files", "group", g.id, "err", err)
		return
	}
	for _, n := range names {
		g.removeSnapFile(n, current)
	}
}

func (g *group) removeSnapFile(old, current string) {
	if old == "" || old == current {
		return
	}
	if err := g.e.cfg.FS.Remove(path.Join(g.dir, old)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		g.e.log.Warn("removing old snapshot", "group", g.id, "file", old, "err", err)
	}
}

// recoverSnapshot restores the FSM from the group's newest snapshot at
// open, and repairs the log if a crash interrupted a snapshot install
// (metadata durable, log not yet reset): the log is rebuilt from the
// entries the snapshot file carries.
func (g *group) recoverSnapshot(meta SnapshotMeta) error {
	name := path.Join(g.dir, meta.File)
	f, sr, err := openSnapFile(g.e.cfg.FS, name)
	if err != nil {
		return err
	}
	err = sr.finish() // verify the whole file before the FSM sees any of it
	f.Close()
	if err != nil {
		return fmt.Errorf("group %d: %w", g.id, err)
	}
	if !g.logCovers(meta) {
		if err := g.rebuildLog(name, meta); err != nil {
			return err
		}
	}
	f, sr, err = openSnapFile(g.e.cfg.FS, name)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := g.fsm.Restore(sr); err != nil {
		return fmt.Errorf("group %d: FSM restore from %s: %w", g.id, name, err)
	}
	return nil
}

// logCovers reports whether the log agrees with the snapshot: it holds the
// retained entries and reaches the snapshot index with its term.
func (g *group) logCovers(meta SnapshotMeta) bool {
	fi, li := g.log.FirstIndex(), g.log.LastIndex()
	if fi > meta.RetainFrom || li < meta.Index {
		return false
	}
	if meta.Index >= fi {
		t, err := g.log.Term(meta.Index)
		return err == nil && t == meta.Term
	}
	return true
}

// rebuildLog resets the log to the snapshot's retained entries.
func (g *group) rebuildLog(name string, meta SnapshotMeta) error {
	f, sr, err := openSnapFile(g.e.cfg.FS, name)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := g.log.Reset(meta.RetainFrom, meta.FirstOffset); err != nil {
		return err
	}
	next := meta.RetainFrom
	for {
		term, data, ok, err := sr.nextEntry()
		if err != nil {
			return fmt.Errorf("group %d: %w", g.id, err)
		}
		if !ok {
			break
		}
		if next > meta.Index {
			return snapCorrupt("%s holds entries beyond its index %d", name, meta.Index)
		}
		if _, err := g.log.Write(term, data); err != nil {
			return err
		}
		next++
	}
	if next != meta.Index+1 {
		return snapCorrupt("%s retains entries [%d, %d) but its index is %d", name, meta.RetainFrom, next, meta.Index)
	}
	return g.e.cfg.Logs.SyncAll([]LogStore{g.log})
}

// prepareInstall is the first step of installing a received snapshot: its
// metadata and a hard state covering it, committed before the log is
// touched (DESIGN.md "Snapshot install").
func (g *group) prepareInstall(rd raft.Ready) (StateUpdate, error) {
	s := rd.Snapshot
	name := string(s.GetData())
	f, sr, err := openSnapFile(g.e.cfg.FS, path.Join(g.dir, name))
	if err != nil {
		return StateUpdate{}, err
	}
	f.Close()
	md := s.GetMetadata()
	if sr.hdr.Index != md.GetIndex() || sr.hdr.Term != md.GetTerm() || sr.hdr.Group != g.id {
		return StateUpdate{}, snapCorrupt("%s is of group %d at %d/%d, raft installs group %d at %d/%d",
			name, sr.hdr.Group, sr.hdr.Index, sr.hdr.Term, g.id, md.GetIndex(), md.GetTerm())
	}
	meta := SnapshotMeta{Index: md.GetIndex(), Term: md.GetTerm(), ConfState: cloneConfState(md.GetConfState()),
		File: name, RetainFrom: sr.hdr.RetainFrom, FirstOffset: sr.hdr.FirstOffset}
	g.installing = &meta
	if rd.HardState != nil {
		g.hs = HardState{Term: rd.GetTerm(), Vote: rd.GetVote(), Commit: rd.GetCommit()}
	}
	// The commit index persisted now covers the snapshot only: entries
	// after it (in this same Ready) are not durable until SyncAll, and a
	// restart with a commit index beyond the log is refused by raft.
	hs := g.hs
	hs.Commit = meta.Index
	return StateUpdate{Group: g.id, HardState: &hs, Snapshot: &meta}, nil
}

// installLog is the second step: with the metadata durable, the log is
// reset to the snapshot's retained entries (durable with the loop's
// SyncAll).
func (g *group) installLog() error {
	meta := g.installing
	g.cache.clear()
	old := g.st.snap.File
	g.st.snap = *meta
	if err := g.rebuildLogUnsynced(meta); err != nil {
		return err
	}
	g.removeSnapFile(old, meta.File)
	return nil
}

func (g *group) rebuildLogUnsynced(meta *SnapshotMeta) error {
	name := path.Join(g.dir, meta.File)
	f, sr, err := openSnapFile(g.e.cfg.FS, name)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := g.log.Reset(meta.RetainFrom, meta.FirstOffset); err != nil {
		return fmt.Errorf("group %d: resetting log for snapshot: %w", g.id, err)
	}
	next := meta.RetainFrom
	for {
		term, data, ok, err := sr.nextEntry()
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		if _, err := g.log.Write(term, data); err != nil {
			return err
		}
		next++
	}
	if next != meta.Index+1 {
		return snapCorrupt("%s retains entries [%d, %d) but its index is %d", name, meta.RetainFrom, next, meta.Index)
	}
	return nil
}

// restoreInstalled is the last step, in the apply phase: the FSM takes the
// snapshot's state, in a job off the loop (a queue of millions of messages
// takes a second to decode, and every other group of the loop, some led
// here, would wait). The entries committed after the snapshot are held
// back until it is restored.
func (g *group) restoreInstalled() {
	meta := *g.installing
	g.installing = nil
	fsm, fsys, name := g.fsm, g.e.cfg.FS, path.Join(g.dir, meta.File)
	g.startJob(func() error {
		f, sr, err := openSnapFile(fsys, name)
		if err != nil {
			return err
		}
		defer f.Close()
		return fsm.Restore(sr)
	}, func(err error) bool {
		switch {
		case g.stopped:
			return false
		case err != nil:
			g.stop(fmt.Errorf("group %d: FSM restore: %w", g.id, err))
			return false
		}
		g.applied, g.appliedTerm = meta.Index, meta.Term
		g.setConfState(cloneConfState(meta.ConfState), meta.Index)
		g.appliedSinceSnap, g.bytesSinceSnap, g.snapBytes = 0, 0, 0
		for len(g.props) > 0 && g.props[0].index <= meta.Index {
			r := g.props[0]
			g.props = g.props[1:]
			r.finish(Result{Err: base.Errorf(base.CodeTimeout, "replication: outcome of entry %d unknown: a snapshot replaced the log", r.index)})
		}
		g.e.metrics.snapshotsInstalled.Add(1)
		return true
	})
}

// removeStaleRecvFiles deletes received snapshot files raft did not
// install.
func (g *group) removeStaleRecvFiles() {
	for _, f := range g.recvFiles {
		g.removeSnapFile(f, g.st.snap.File)
	}
	g.recvFiles = g.recvFiles[:0]
}

func (e *Engine) removeRecvFile(g GroupID, file string) {
	_ = e.cfg.FS.Remove(path.Join(e.snapDir(g), file))
}

// sendSnapshot hands raft's MsgSnap to the transport as a stream of the
// snapshot file's FSM state and the log's retained entries.
func (g *group) sendSnapshot(m *pb.Message) {
	to := m.GetTo()
	l := g.l
	done := func(err error) {
		l.enqueueRequest(&request{kind: reqSnapStatus, group: g.id, node: to, ok: err == nil})
	}
	meta := g.st.snap
	if meta.Index != m.GetSnapshot().GetMetadata().GetIndex() || g.e.cfg.Transport == nil {
		done(errors.New("snapshot changed"))
		return
	}
	fsys, name, lg, term, group := g.e.cfg.FS, path.Join(g.dir, meta.File), g.log, m.GetTerm(), g.id
	g.e.cfg.Transport.SendSnapshot(to, &OutgoingSnapshot{
		Group: g.id,
		Open: func() (io.ReadCloser, error) {
			return openSnapStream(fsys, name, group, meta, term, lg)
		},
		Done: done,
	})
	g.e.metrics.snapshotsSent.Add(1)
}

// snapStream produces the stream of a snapshot for a follower, pulling
// from the snapshot file and the log as it is read: never more than one
// chunk or one read of entries in memory.
type snapStream struct {
	f        vfs.File
	src      *snapReader
	buf      bytes.Buffer
	w        *snapWriter
	log      LogStore
	next     uint64
	last     uint64
	chunkBuf []byte
	state    int
}

func openSnapStream(fsys vfs.FS, name string, group GroupID, meta SnapshotMeta, leaderTerm uint64, lg LogStore) (io.ReadCloser, error) {
	f, sr, err := openSnapFile(fsys, name)
	if err != nil {
		return nil, err
	}
	s := &snapStream{f: f, src: sr, log: lg, next: meta.RetainFrom, last: meta.Index}
	s.w = newSnapWriter(&s.buf, &snapHeader{Group: group, Index: meta.Index, Term: meta.Term, LeaderTerm: leaderTerm,
		RetainFrom: meta.RetainFrom, FirstOffset: meta.FirstOffset, ConfState: meta.ConfState})
	return s, nil
}

func (s *snapStream) Read(p []byte) (int, error) {
	for s.buf.Len() == 0 {
		if s.state == 3 {
			return 0, io.EOF
		}
		if err := s.fill(); err != nil {
			return 0, err
		}
	}
	return s.buf.Read(p)
}

func (s *snapStream) fill() error {
	switch s.state {
	case 0: // the FSM chunks, as the file has them
		c, err := s.src.nextChunk(s.chunkBuf)
		if err != nil {
			return err
		}
		if c == nil {
			s.state = 1
			return s.src.finish()
		}
		s.chunkBuf = c
		s.w.rawChunk(c)
	case 1: // the retained entries, from the log
		if s.next > s.last {
			s.state = 2
			return nil
		}
		batches, err := s.log.Entries(s.next, s.last+1, base.SnapshotChunkBytes)
		if err != nil {
			return fmt.Errorf("reading retained entries from %d: %w", s.next, err)
		}
		for _, b := range batches {
			s.w.entry(batchTerm(b), b)
		}
		s.next += uint64(len(batches))
	case 2:
		s.state = 3
		return s.w.close()
	}
	return s.w.err
}

func (s *snapStream) Close() error { return s.f.Close() }

type incomingSnap struct {
	hdr  snapHeader
	file string
}

// receiveSnapshot stores a snapshot stream as a file in the group's
// snapshot directory, verifying it as it goes.
func (e *Engine) receiveSnapshot(r io.Reader) (incomingSnap, error) {
	seq := e.snapSeq.Add(1)
	top := path.Join(e.cfg.Dir, "snap")
	tmp := path.Join(top, fmt.Sprintf("recv-%d.tmp", seq))
	f, err := e.cfg.FS.Create(tmp)
	if err != nil {
		return incomingSnap{}, storageErr("creating "+tmp, err)
	}
	bw := bufio.NewWriterSize(f, 64<<10)
	sr, err := newSnapReader(io.TeeReader(r, bw), base.SnapshotBytesMax)
	if err == nil {
		err = sr.finish()
	}
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = f.Sync()
	}
	f.Close()
	var in incomingSnap
	if err == nil {
		in.hdr = sr.hdr
		in.file = fmt.Sprintf("recv-%020d-%020d-%d.snap", sr.hdr.Index, sr.hdr.Term, seq)
		e.mu.Lock()
		_, open := e.groups[in.hdr.Group]
		e.mu.Unlock()
		dir := e.snapDir(in.hdr.Group)
		switch {
		case !open:
			err = base.Errorf(base.CodeNotFound, "replication: snapshot for group %d, which node %d does not host", in.hdr.Group, e.cfg.NodeID)
		default:
			err = e.cfg.FS.Rename(tmp, path.Join(dir, in.file))
			if err == nil {
				err = e.cfg.FS.SyncDir(dir)
			}
		}
	}
	if err != nil {
		_ = e.cfg.FS.Remove(tmp)
		return incomingSnap{}, fmt.Errorf("replication: receiving snapshot: %w", err)
	}
	return in, nil
}

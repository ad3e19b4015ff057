package log

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferry-mq/ferry/internal/base"
)

// appendReq is one Append waiting for the committer. Requests are pooled:
// an Append allocates nothing in the steady state.
type appendReq struct {
	term  uint64
	batch []byte
	pos   Position
	err   error
	// state moves from queued to taken (by the committer) or abandoned (by
	// an Append whose context ended first); whoever wins owns the request.
	state atomic.Int32
	done  chan struct{} // capacity 1: the committer never blocks on it
}

const (
	reqQueued int32 = iota
	reqTaken
	reqAbandoned
)

var reqPool = sync.Pool{New: func() any { return &appendReq{done: make(chan struct{}, 1)} }}

// Append appends batch with term and returns once it is as durable as the
// log's Durability promises: fsynced (sync), written to the file
// (interval, none). Concurrent appenders are coalesced: the batches that
// arrive while an fsync runs share the next write and fsync. Batches are
// checked and stamped as by Write; the caller keeps ownership of batch,
// which the log does not touch after Append returns.
//
// If ctx ends while the batch is still queued, Append returns ctx's error
// and the batch is not appended. Once the committer has taken the batch,
// Append waits for the outcome, which takes at most one write and fsync.
// Up to base.AppendQueueBatchesMax batches wait in the queue; more
// appenders block (backpressure).
func (l *Log) Append(ctx context.Context, term uint64, batch []byte) (Position, error) {
	if err := ctx.Err(); err != nil {
		return Position{}, fmt.Errorf("log %s: append: %w", l.dir, err)
	}
	r := reqPool.Get().(*appendReq)
	r.term, r.batch, r.pos, r.err = term, batch, Position{}, nil
	r.state.Store(reqQueued)
	l.closeMu.RLock()
	if l.appendClosed {
		l.closeMu.RUnlock()
		reqPool.Put(r)
		return Position{}, base.Errorf(base.CodeStopped, "log %s: closed", l.dir)
	}
	select {
	case l.appendCh <- r:
		l.closeMu.RUnlock()
	case <-ctx.Done():
		l.closeMu.RUnlock()
		reqPool.Put(r)
		return Position{}, fmt.Errorf("log %s: append: %w", l.dir, ctx.Err())
	}
	select {
	case <-r.done:
	case <-ctx.Done():
		if r.state.CompareAndSwap(reqQueued, reqAbandoned) {
			// The committer will drop r without touching it; r is not reused.
			return Position{}, fmt.Errorf("log %s: append: %w", l.dir, ctx.Err())
		}
		<-r.done
	}
	pos, err := r.pos, r.err
	r.batch = nil
	reqPool.Put(r)
	return pos, err
}

// commitLoop is the committer goroutine, owned by the Log: started by
// Open, stopped by Close (which closes appendCh and waits for
// committerDone). It drains every queued append into one group, writes the
// group, and (DurabilitySync) fsyncs once for all of it.
func (l *Log) commitLoop() {
	defer close(l.committerDone)
	var timer base.Timer
	if l.opts.Durability == DurabilityInterval {
		timer = l.clock.NewTimer(l.opts.SyncInterval)
		defer timer.Stop()
	}
	group := make([]*appendReq, 0, 64)
	taken := make([]*appendReq, 0, 64)
	for {
		var timerC <-chan time.Time
		if timer != nil {
			timerC = timer.C()
		}
		select {
		case r, ok := <-l.appendCh:
			if !ok {
				return
			}
			group = append(group[:0], r)
			group = l.drain(group)
			taken = l.commitGroup(group, taken[:0])
			clear(group)
			clear(taken)
		case <-timerC:
			l.writeMu.Lock()
			if l.writableLocked() == nil {
				if l.syncLocked() == nil {
					l.maybeCheckpointLocked()
				}
			}
			l.writeMu.Unlock()
			timer.Reset(l.opts.SyncInterval)
		}
	}
}

// drain adds to group every append already queued, without waiting.
func (l *Log) drain(group []*appendReq) []*appendReq {
	for len(group) < base.AppendQueueBatchesMax {
		select {
		case r, ok := <-l.appendCh:
			if !ok {
				return group
			}
			group = append(group, r)
		default:
			return group
		}
	}
	return group
}

// commitGroup writes a group with one flush and, for DurabilitySync, one
// fsync, then wakes its appenders. A batch is confirmed only if it was
// published and, when required, synced. After a CodeNoSpace error the
// rest of the group is refused with it, so that no later batch reuses an
// Index that an earlier one of the group was told.
// taken is scratch space for the requests the committer owns; it is
// returned for reuse.
func (l *Log) commitGroup(group, taken []*appendReq) []*appendReq {
	l.writeMu.Lock()
	var stop error
	for _, r := range group {
		if !r.state.CompareAndSwap(reqQueued, reqTaken) {
			continue // abandoned by its appender
		}
		taken = append(taken, r)
		if stop != nil {
			r.err = stop
			continue
		}
		r.pos, r.err = l.writeLocked(r.term, r.batch)
		if base.CodeOf(r.err) == base.CodeNoSpace || base.CodeOf(r.err) == base.CodeStorageFailed {
			stop = r.err
		}
	}
	err := l.flushLocked()
	if err == nil && l.opts.Durability == DurabilitySync {
		err = l.syncLocked()
	}
	next := l.active().nextIndex
	for _, r := range taken {
		if r.err == nil && (err != nil || r.pos.Index >= next) {
			r.err = err
			if r.err == nil {
				r.err = stop
			}
		}
	}
	l.writeMu.Unlock()
	for _, r := range taken {
		r.done <- struct{}{}
	}
	if err == nil && l.opts.Durability == DurabilitySync {
		l.writeMu.Lock()
		l.maybeCheckpointLocked()
		l.writeMu.Unlock()
	}
	return taken
}

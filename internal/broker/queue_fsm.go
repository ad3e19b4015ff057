package broker

import (
	"io"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/controller"
	"github.com/ferry-mq/ferry/internal/queue"
	"github.com/ferry-mq/ferry/internal/replication"
)

// queueFSM is the state machine of one queue's group: it decodes every
// committed entry into a queue command (a data batch is an Enqueue of its
// records; commands ride in control batches) and applies it, on every
// replica. On the leader it hands the effects to the leader runtime and
// keeps the batches it applied in the delivery cache.
type queueFSM struct {
	b      *Broker
	group  GroupID
	tenant string
	name   string

	// mu guards the queue: Apply and Restore change it under the write
	// lock; Snapshot, which replication runs off the engine loop for as
	// long as encoding a large queue takes, and the readers of counts
	// (read) share the read lock, so that a passive declare or the
	// management API need not wait for a snapshot.
	mu   sync.RWMutex
	q    *queue.Queue    // guarded by mu
	msgs []queue.Message // guarded by mu: Apply's scratch

	leader atomic.Pointer[queueLeader] // set while a leader runtime runs here
	// moved is set while a Relocate has moved some live message's body,
	// so that reads look its place up (locate) only then.
	moved atomic.Bool
	// reads pins the bodies of messages an auto-ack Get took out of the
	// queue on this leader, until the getter has read them (unpin) or
	// BrokerGetReadPinMs of queue time passed: the message is gone from
	// the queue, so without a pin the floor, and a snapshot's truncation,
	// could pass its entry before the read. At most BrokerGetReadPinsMax,
	// the oldest dropped first; guarded by mu.
	reads []readPin

	// observe, when set (the simulator), sees every applied entry as a
	// queue command with its result and effects; called with mu held, the
	// effects are the queue's (copy them).
	observe func(index uint64, cmd queue.Command, res queue.Result, effects []queue.Effect)
}

func newQueueFSM(b *Broker, id GroupID, info controller.QueueInfo) (*queueFSM, error) {
	q, err := queue.New(info.Config.Queue, info.CreatedMs)
	if err != nil {
		return nil, err
	}
	return &queueFSM{b: b, group: id, tenant: info.Tenant, name: info.Name, q: q}, nil
}

// newBareQueueFSM is a queue FSM with no broker, for the simulator.
func newBareQueueFSM(id GroupID, cfg queue.Config) *queueFSM {
	q, err := queue.New(cfg, 0)
	base.Assert(err == nil, "queue.New: %v", err)
	return &queueFSM{group: id, q: q}
}

// enqueueResult is what a data batch gives its proposer: one outcome per
// record, or why the batch was refused as a whole.
type enqueueResult struct {
	outcomes []queue.Outcome
	err      error
}

func (r *enqueueResult) Err() error { return r.err }

// queueCmdResult is what a queue command gives its proposer.
type queueCmdResult struct {
	res queue.Result // Outcomes is always nil here
}

func (r *queueCmdResult) Err() error { return r.res.Err }

func (f *queueFSM) Apply(entries []replication.Entry, results []any) {
	f.mu.Lock()
	ql := f.leader.Load()
	for i, e := range entries {
		switch {
		case e.Kind == replication.KindBatch:
			results[i] = f.applyBatch(e.Index, e.Data, ql)
		case len(e.Data) > 0 && e.Data[0] == tagEnqueue:
			results[i] = f.applyBatch(e.Index, e.Data[1:], ql)
		case len(e.Data) > 0 && e.Data[0] == tagRelocate:
			results[i] = f.applyRelocate(e, ql)
		default:
			results[i] = f.applyCommand(e, ql)
		}
	}
	f.moved.Store(f.q.Relocated() > 0)
	f.mu.Unlock()
	if ql != nil {
		ql.kick()
	}
	if f.b != nil {
		f.b.activity.Signal()
	}
}

// applyBatch enqueues the records of data, the batch of entry index.
func (f *queueFSM) applyBatch(index uint64, data []byte, ql *queueLeader) *enqueueResult {
	cb, err := decodeBatch(data)
	if err != nil {
		return &enqueueResult{err: err}
	}
	f.msgs = f.msgs[:0]
	var run senderRun
	for slot := range cb.records {
		r := &cb.records[slot]
		m := readQueueMeta(r)
		f.msgs = append(f.msgs, queue.Message{
			Ref:   queue.Ref{Index: index, Slot: uint32(slot)},
			Bytes: uint32(min(len(r.Value), 1<<32-1)), Priority: m.priority, TTLms: m.ttlMs,
			NotBeforeMs: m.notBeforeMs, DedupeID: m.dedupeID, OrderingKey: m.orderingKey, MessageID: m.messageID,
			Sender: run.next(m.sender),
		})
	}
	now := max(0, min(cb.header.MaxTimestamp, base.QueueTimeMsMax))
	cmd := &queue.Enqueue{Now: now, Messages: f.msgs}
	var ahead queue.Stats // what the batch joins: the leader caches it by that
	if ql != nil {
		ahead = f.q.Stats()
	}
	res, effects := f.q.Apply(cmd)
	if f.observe != nil {
		f.observe(index, cmd, res, effects)
	}
	clear(f.msgs) // drop the strings
	if res.Err != nil {
		return &enqueueResult{err: res.Err}
	}
	if ql != nil {
		if f.b.cache.keeps(ahead.Consumers, ahead.ReadyBytes) {
			f.b.cache.put(f.group, index, cb)
		}
		ql.pushEffects(effects)
		ql.traceEnqueued(cb, res.Outcomes)
	}
	return &enqueueResult{outcomes: slices.Clone(res.Outcomes)}
}

func (f *queueFSM) applyCommand(e replication.Entry, ql *queueLeader) *queueCmdResult {
	if len(e.Data) == 0 || e.Data[0] != tagQueue {
		return &queueCmdResult{res: queue.Result{Err: base.Errorf(base.CodeInvalidArgument, "broker: entry %d is not a queue command", e.Index)}}
	}
	cmd, err := queue.Decode(e.Data[1:])
	if err != nil {
		return &queueCmdResult{res: queue.Result{Err: err}}
	}
	return f.applyDecoded(e.Index, cmd, ql)
}

// applyRelocate applies a Relocate whose entry carries the bodies it
// moves. An entry whose batch does not hold one record per listed message
// is refused whole: the queue would read bodies that are not there.
func (f *queueFSM) applyRelocate(e replication.Entry, ql *queueLeader) *queueCmdResult {
	cmdBytes, data, err := splitRelocate(e.Data[1:])
	var cb *cachedBatch
	if err == nil {
		cb, err = decodeBatch(data)
	}
	var cmd queue.Command
	if err == nil {
		cmd, err = queue.Decode(cmdBytes)
	}
	rc, _ := cmd.(*queue.Relocate)
	switch {
	case err != nil:
	case rc == nil:
		err = base.Errorf(base.CodeCorrupt, "broker: entry %d: a relocation holds a %T", e.Index, cmd)
	case len(rc.Refs) != len(cb.records):
		err = base.Errorf(base.CodeCorrupt, "broker: entry %d: a relocation of %d messages holds %d records", e.Index, len(rc.Refs), len(cb.records))
	}
	if err != nil {
		return &queueCmdResult{res: queue.Result{Err: err}}
	}
	rc.Index = e.Index
	return f.applyDecoded(e.Index, rc, ql)
}

// readPin keeps the log from index up while message ref's body is read.
type readPin struct {
	ref   queue.Ref
	index uint64
	atMs  int64
}

// applyDecoded applies a decoded command of entry index.
func (f *queueFSM) applyDecoded(index uint64, cmd queue.Command, ql *queueLeader) *queueCmdResult {
	res, effects := f.q.Apply(cmd)
	res.Outcomes = nil
	if ql != nil && res.Found && res.Delivery.DeliveryID == 0 {
		if len(f.reads) == base.BrokerGetReadPinsMax {
			f.reads = slices.Delete(f.reads, 0, 1)
		}
		f.reads = append(f.reads, readPin{ref: res.Delivery.Ref, index: res.Delivery.At.Index, atMs: f.q.Now()})
	}
	if f.observe != nil {
		f.observe(index, cmd, res, effects)
	}
	if ql != nil {
		ql.pushEffects(effects)
		ql.applied(cmd, res)
	}
	return &queueCmdResult{res: res}
}

func (f *queueFSM) Snapshot(w io.Writer) error {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.q.Snapshot(w)
}

func (f *queueFSM) Restore(r io.Reader) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	err := f.q.Restore(r)
	f.moved.Store(f.q.Relocated() > 0)
	return err
}

// RetainFrom keeps every entry a message in any state still refers to
// (bodies stay in the log and are read from it on delivery), and those
// of messages taken out by an auto-ack Get and not read yet (reads).
func (f *queueFSM) RetainFrom() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	fl := f.q.Floor()
	now := f.q.Now()
	f.reads = slices.DeleteFunc(f.reads, func(p readPin) bool { return now-p.atMs > base.BrokerGetReadPinMs })
	for _, p := range f.reads {
		fl = min(fl, p.index)
	}
	if fl != queue.FloorNone {
		return fl
	}
	return 0
}

// unpin ends the read pin of message ref, if it has one.
func (f *queueFSM) unpin(ref queue.Ref) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if i := slices.IndexFunc(f.reads, func(p readPin) bool { return p.ref == ref }); i >= 0 {
		f.reads = slices.Delete(f.reads, i, i+1)
	}
}

// locate returns where the body of message ref lies now.
func (f *queueFSM) locate(ref queue.Ref) queue.Ref {
	if !f.moved.Load() {
		return ref
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.q.Locate(ref)
}

// with runs fn with the queue locked; fn must not keep the queue.
func (f *queueFSM) with(fn func(q *queue.Queue)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f.q)
}

// read runs fn with the queue read-locked, beside a snapshot being
// written: fn must only call the queue's methods that change nothing
// (Stats, Config, Deleted), and must not keep the queue.
func (f *queueFSM) read(fn func(q *queue.Queue)) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	fn(f.q)
}

// encodeQueueCommand returns a queue command as the broker proposes it.
func encodeQueueCommand(cmd queue.Command) ([]byte, error) {
	return queue.Encode([]byte{tagQueue}, cmd)
}

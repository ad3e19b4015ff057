package broker

import (
	"context"
	"encoding/binary"
	"slices"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/queue"
	"github.com/ferry-mq/ferry/internal/storage/log/batch"
)

// Queue log relocation (DESIGN.md "Queue log relocation"). A queue's
// bodies stay in its Raft log, so the log can be released only below the
// oldest message still in the queue: one delivery a consumer holds for an
// hour, or one message delayed for a day, keeps every entry after its own
// on disk while the rest of the traffic flows through. Every
// RelocateInterval the leader checks how much of the log's sealed segments
// lies from the floor up; past RelocateFreeBytes, it copies the bodies of
// the messages below the active segment into one Relocate entry (at most
// QueueRelocateBytesMax of them, and only when the log it frees is at
// least QueueRelocateCopyShare times what it copies), after which the
// floor, and the next snapshot's truncation, move past them.

// activeBaser is the log's ActiveBase, which the segmented log has.
type activeBaser interface{ ActiveBase() uint64 }

// relocateLoop runs relocation passes every RelocateInterval while the
// leader runs.
func (ql *queueLeader) relocateLoop() {
	t := ql.b.clock.NewTimer(ql.b.cfg.RelocateInterval)
	defer t.Stop()
	for {
		select {
		case <-ql.ctx.Done():
			return
		case <-t.C():
		}
		t.Reset(ql.b.cfg.RelocateInterval)
		if _, err := ql.relocate(ql.ctx); err != nil && ql.ctx.Err() == nil {
			ql.b.log.Warn("relocating old message bodies failed", "queue", ql.fsm.name, "err", err)
		}
	}
}

// relocate runs one pass and returns how many bodies it moved.
func (ql *queueLeader) relocate(ctx context.Context) (int, error) {
	l, err := ql.b.logs.get(ql.g)
	if err != nil {
		return 0, err
	}
	ab, ok := l.(activeBaser)
	if !ok {
		return 0, nil // an in-memory log (the simulator's) holds no disk
	}
	active := ab.ActiveBase()
	var floor uint64
	ql.fsm.with(func(q *queue.Queue) { floor = q.Floor() })
	if floor == queue.FloorNone || floor >= active {
		return 0, nil
	}
	held := l.PrefixBytes(active) - l.PrefixBytes(floor)
	if held < ql.b.cfg.RelocateFreeBytes {
		return 0, nil
	}
	var list []queue.Placed
	var cut uint64
	ql.fsm.with(func(q *queue.Queue) {
		list, cut = q.Relocatable(active, base.QueueRelocateMessagesMax, base.QueueRelocateBytesMax)
	})
	var copied int64
	for _, p := range list {
		copied += int64(p.Bytes)
	}
	gain := l.PrefixBytes(cut) - l.PrefixBytes(floor)
	if len(list) == 0 || gain < ql.b.cfg.RelocateFreeBytes || copied*base.QueueRelocateCopyShare > gain {
		return 0, nil
	}
	data, refs, err := ql.buildRelocation(list)
	if err != nil || len(refs) == 0 {
		return 0, err
	}
	cmd, err := queue.Encode(nil, &queue.Relocate{Now: ql.b.nowMs(), Cutoff: cut, Refs: refs})
	if err != nil {
		return 0, err
	}
	payload := binary.AppendUvarint([]byte{tagRelocate}, uint64(len(cmd)))
	payload = append(append(payload, cmd...), data...)
	res, err := ql.b.engine.Propose(ctx, ql.g, payload)
	if err != nil {
		return 0, err
	}
	r, _ := res.Value.(*queueCmdResult)
	if r == nil {
		return 0, base.Errorf(base.CodeInternal, "broker: a relocation gave %T", res.Value)
	}
	return r.res.Count, r.res.Err
}

// buildRelocation copies the records of list, in Ref order, into one data
// batch and returns it with their Refs. A body that cannot be read (its
// message left meanwhile, and its place went) is left out.
func (ql *queueLeader) buildRelocation(list []queue.Placed) ([]byte, []queue.Ref, error) {
	slices.SortFunc(list, func(x, y queue.Placed) int { return x.Ref.Compare(y.Ref) })
	var bld batch.Builder
	bld.Begin(nil, batch.Header{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1})
	refs := make([]queue.Ref, 0, len(list))
	var hs []batch.RecordHeader
	for _, p := range list {
		cb, r, err := readStoredRecord(ql.b, ql.g, p.At)
		if err != nil {
			continue
		}
		hs = hs[:0]
		for it := r.Headers(); ; {
			k, v, vnull, ok := it.Next()
			if !ok {
				break
			}
			hs = append(hs, batch.RecordHeader{Key: k, Value: nonNil(v, vnull)})
		}
		if err := bld.Add(cb.header.BaseTimestamp+r.TimestampDelta, nonNil(r.Key, r.KeyNull), nonNil(r.Value, r.ValueNull), hs); err != nil {
			return nil, nil, err
		}
		refs = append(refs, p.Ref)
	}
	if len(refs) == 0 {
		return nil, nil, nil
	}
	data, err := bld.Finish()
	return data, refs, err
}

// nonNil gives the builder back what a record held: nil for null, a
// non-nil slice (perhaps empty) otherwise.
func nonNil(b []byte, null bool) []byte {
	if null {
		return nil
	}
	if b == nil {
		return []byte{}
	}
	return b
}

// splitRelocate splits a tagRelocate payload (after the tag) into the
// encoded command and the batch of bodies.
func splitRelocate(p []byte) (cmd, data []byte, err error) {
	n, k := binary.Uvarint(p)
	if k <= 0 || n > uint64(len(p)-k) {
		return nil, nil, base.Errorf(base.CodeCorrupt, "broker: a relocation's command length is malformed")
	}
	return p[k : k+int(n)], p[k+int(n):], nil
}

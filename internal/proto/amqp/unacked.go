package amqp

import (
	"context"
	"slices"
	"sort"
)

// unackedEntry is one delivery sent with a delivery tag and not yet
// acknowledged: from a consumer (cons, id) or from basic.get (get).
type unackedEntry struct {
	tag  uint64
	id   uint64
	cons *consumer
	get  Settler
	// prefetched says the entry counts against the channel's global
	// prefetch (deliveries to no-ack consumers never get an entry).
	gone bool // settled: a tombstone until compaction
}

// unackedList is a channel's unacknowledged deliveries in tag order.
// Tags grow with each delivery, so entries are appended at the end; acks
// leave tombstones that are compacted away once they are half the list,
// keeping lookups O(log n) and settlement amortised O(1).
type unackedList struct {
	entries []unackedEntry
	live    int
}

func (l *unackedList) push(e unackedEntry) {
	l.entries = append(l.entries, e)
	l.live++
}

// find returns the index of tag's live entry, or -1.
func (l *unackedList) find(tag uint64) int {
	i := sort.Search(len(l.entries), func(i int) bool { return l.entries[i].tag >= tag })
	if i < len(l.entries) && l.entries[i].tag == tag && !l.entries[i].gone {
		return i
	}
	return -1
}

// take removes and returns the entries an ack (or nack) of tag settles:
// tag's alone, or with multiple every live entry up to tag. With multiple
// and tag 0 it takes everything. ok is false when tag is not a live entry
// (RabbitMQ: 406 "unknown delivery tag").
func (l *unackedList) take(tag uint64, multiple bool) (taken []unackedEntry, ok bool) {
	if multiple && tag == 0 {
		return l.takeAllEntries(), true
	}
	i := l.find(tag)
	if i < 0 {
		return nil, false
	}
	if !multiple {
		taken = []unackedEntry{l.entries[i]}
		l.entries[i].gone = true
		l.live--
	} else {
		for j := 0; j <= i; j++ {
			if !l.entries[j].gone {
				taken = append(taken, l.entries[j])
				l.entries[j].gone = true
				l.live--
			}
		}
	}
	l.compact()
	return taken, true
}

func (l *unackedList) takeAllEntries() []unackedEntry {
	var taken []unackedEntry
	for _, e := range l.entries {
		if !e.gone {
			taken = append(taken, e)
		}
	}
	l.entries, l.live = l.entries[:0], 0
	return taken
}

// takeAll removes every entry and returns the settlements that apply op
// to them.
func (l *unackedList) takeAll(op settleKind, requeue bool) []settleOp {
	return settlesFor(l.takeAllEntries(), op, requeue)
}

// restore puts entries back (tx.rollback of acknowledgements), keeping
// tag order.
func (l *unackedList) restore(es []unackedEntry) {
	for _, e := range es {
		e.gone = false
		l.entries = append(l.entries, e)
		l.live++
	}
	slices.SortFunc(l.entries, func(a, b unackedEntry) int {
		switch {
		case a.tag < b.tag:
			return -1
		case a.tag > b.tag:
			return 1
		}
		return 0
	})
}

func (l *unackedList) compact() {
	if len(l.entries) < 32 || l.live*2 > len(l.entries) {
		// Drop only the settled prefix, which is the common case of
		// in-order acks.
		n := 0
		for n < len(l.entries) && l.entries[n].gone {
			n++
		}
		if n > 0 {
			l.entries = l.entries[:copy(l.entries, l.entries[n:])]
		}
		return
	}
	out := l.entries[:0]
	for _, e := range l.entries {
		if !e.gone {
			out = append(out, e)
		}
	}
	clear(l.entries[len(out):])
	l.entries = out
}

// settleKind is what a settlement does.
type settleKind uint8

const (
	opAck settleKind = iota + 1
	opNack
)

// settleOp is one call to the backend, made after the channel's lock is
// released.
type settleOp struct {
	kind     settleKind
	requeue  bool
	sub      Subscription
	id       uint64
	multiple bool
	get      Settler
}

func (op settleOp) run(ctx context.Context) {
	switch {
	case op.get != nil && op.kind == opAck:
		op.get.Ack(ctx)
	case op.get != nil:
		op.get.Nack(ctx, op.requeue)
	case op.sub == nil:
	case op.kind == opAck:
		op.sub.Ack(op.id, op.multiple)
	default:
		op.sub.Nack(op.id, op.multiple, op.requeue)
	}
}

// runSettles makes the backend calls of ops; ctx bounds the synchronous
// ones (basic.get settlements).
func runSettles(ctx context.Context, ops []settleOp) {
	for _, op := range ops {
		op.run(ctx)
	}
}

// settlesFor turns taken entries (in tag order) into backend calls: one
// per basic.get delivery, and one per consumer covering all its entries.
// A consumer's entries are exactly its unsettled deliveries up to the
// largest id among them (ids and tags both grow in delivery order), so
// one "multiple" settlement of that id is the same as settling each.
func settlesFor(taken []unackedEntry, op settleKind, requeue bool) []settleOp {
	var ops []settleOp
	idx := map[*consumer]int{}
	for _, e := range taken {
		if e.get != nil {
			ops = append(ops, settleOp{kind: op, requeue: requeue, get: e.get})
			continue
		}
		if e.cons == nil || e.cons.sub == nil {
			continue
		}
		if i, ok := idx[e.cons]; ok {
			ops[i].id = max(ops[i].id, e.id)
			ops[i].multiple = true
			continue
		}
		idx[e.cons] = len(ops)
		ops = append(ops, settleOp{kind: op, requeue: requeue, sub: e.cons.sub, id: e.id})
	}
	return ops
}

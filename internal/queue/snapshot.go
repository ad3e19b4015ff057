package queue

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"slices"
	"strings"

	"github.com/ferry-mq/ferry/internal/base"
)

// Snapshot format (version 3), all in the canonical encoding of codec.go:
//
//	magic "FQS" 0x01, version
//	config, scalars (time, last ref, idle state, last wake, counters of
//	  registrations and tickets, deleted), counters
//	consumers by registration: identity, settings, and their
//	  unacknowledged deliveries in delivery-id order (id, ack deadline,
//	  message)
//	the single active consumer's registration (0: none)
//	delayed messages by (due, Ref)
//	ready messages level by level, each level in Ref order
//	keys with messages waiting behind their head, by name, each with its
//	  waiting messages in key order
//	dead-letter pending messages in dead-letter order, with their reason
//	dedupe ids in insertion order, with their deadlines
//	relocation (version 2 on): the mark below which every live message's
//	  body is moved, the Relocated counter, and the moved bodies in
//	  the order of where they lie (message Ref, place, bytes)
//	senders (version 3 on): each sender, the one applied to longest ago
//	  first, as its lane, when it was last applied to and its ranges of
//	  applied numbers (first, length, dead-lettered); then the Resent and
//	  SendersEvicted counters
//	CRC-32C (little endian) of everything before it
//
// Versions 1 (before relocation) and 2 (before senders) are still read:
// they lack the sections added since, which restore empty.
//
// It holds live state only: a settled message leaves no trace but the
// counters and the dedupe window. The order of every list is a function of
// the queue's logical state, not of how its containers happen to be laid
// out, so snapshotting a restored queue gives the same bytes.
const (
	snapshotMagic   = "FQS\x01"
	snapshotVersion = 3
	snapshotBufLen  = 64 << 10
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// swriter streams canonical encodings to w with a running checksum.
type swriter struct {
	enc
	w   io.Writer
	crc uint32
	err error
}

func (sw *swriter) flushIf(threshold int) {
	if len(sw.b) < threshold || sw.err != nil {
		return
	}
	sw.crc = crc32.Update(sw.crc, castagnoli, sw.b)
	_, sw.err = sw.w.Write(sw.b)
	sw.b = sw.b[:0]
}

func (sw *swriter) msg(q *Queue, m *msg) {
	sw.uvarint(m.index)
	sw.uvarint(uint64(m.refSlot))
	sw.uvarint(uint64(m.bytes))
	sw.u8(m.prio)
	sw.varint(m.expireAt)
	sw.uvarint(uint64(m.seed))
	sw.uvarint(uint64(m.count))
	sw.boolean(m.redelivered())
	name := ""
	if m.key != 0 {
		name = q.keys.keys[m.key].name
	}
	sw.str(name)
	sw.flushIf(snapshotBufLen)
}

// Snapshot writes the whole state to w. Apply must not run concurrently.
func (q *Queue) Snapshot(w io.Writer) error {
	sw := &swriter{enc: enc{b: make([]byte, 0, snapshotBufLen+1024)}, w: w}
	sw.b = append(sw.b, snapshotMagic...)
	sw.uvarint(snapshotVersion)
	sw.config(&q.cfg)
	sw.varint(q.now)
	sw.boolean(q.hasRef)
	sw.ref(q.lastRef)
	sw.varint(q.lastUsed)
	sw.boolean(q.expiredSent)
	sw.varint(q.lastWake)
	sw.uvarint(q.nextReg)
	sw.uvarint(q.nextTicket)
	sw.uvarint(q.lastID)
	sw.boolean(q.deleted)
	for _, v := range q.ctr.list() {
		sw.uvarint(*v)
	}
	q.snapshotConsumers(sw)
	q.snapshotMessages(sw)
	sw.uvarint(uint64(q.dedupe.order.Len()))
	for i := 0; i < q.dedupe.order.Len(); i++ {
		e := q.dedupe.order.At(i)
		sw.u8(e.key.n)
		if e.key.n == hashedKey {
			sw.b = append(sw.b, e.key.b[:]...)
		} else {
			sw.b = append(sw.b, e.key.b[:e.key.n]...)
		}
		sw.varint(e.deadline)
		sw.flushIf(snapshotBufLen)
	}
	sw.uvarint(q.reloc.below)
	sw.uvarint(q.ctr.Relocated)
	sw.uvarint(uint64(len(q.reloc.moved)))
	for _, p := range q.movedBodies() {
		sw.ref(p.Ref)
		sw.ref(p.At)
		sw.uvarint(uint64(p.Bytes))
		sw.flushIf(snapshotBufLen)
	}
	sw.uvarint(uint64(q.senders.len()))
	for s := q.senders.oldest; s != nil; s = s.newer {
		sw.uvarint(s.lane)
		sw.varint(s.lastMs)
		sw.uvarint(uint64(len(s.ranges)))
		for _, r := range s.ranges {
			sw.uvarint(r.from)
			sw.uvarint(r.to - r.from)
			sw.boolean(r.lettered)
		}
		sw.flushIf(snapshotBufLen)
	}
	sw.uvarint(q.ctr.Resent)
	sw.uvarint(q.ctr.SendersEvicted)
	sw.flushIf(0)
	if sw.err != nil {
		return fmt.Errorf("queue: writing snapshot: %w", sw.err)
	}
	if _, err := w.Write(binary.LittleEndian.AppendUint32(nil, sw.crc)); err != nil {
		return fmt.Errorf("queue: writing snapshot: %w", err)
	}
	if sw.tooLong {
		base.Bugf("queue: snapshot holds a string over its limit")
	}
	return nil
}

func (q *Queue) snapshotConsumers(sw *swriter) {
	cs := q.sortedConsumers(func(*consumer) bool { return true })
	sw.uvarint(uint64(len(cs)))
	for _, c := range cs {
		sw.consumer(c.id)
		sw.str(c.tag)
		sw.uvarint(c.reg)
		sw.uvarint(c.ticket)
		sw.varint(int64(c.prio))
		sw.uvarint(uint64(c.prefetch))
		sw.uvarint(c.prefetchBytes)
		sw.boolean(c.exclusive)
		sw.boolean(c.subscribed)
		sw.uvarint(c.lastID)
		sw.uvarint(uint64(c.count))
		for i := 0; i < c.unacked.Len(); i++ {
			e := c.unacked.At(i)
			if e.slot == noSlot {
				continue
			}
			m := q.arena.at(e.slot)
			sw.uvarint(e.id)
			deadline := int64(0)
			if m.hidx != noPos {
				deadline = q.acks.items[m.hidx].at
			}
			sw.varint(deadline)
			sw.msg(q, m)
		}
	}
	if q.active != nil {
		sw.uvarint(q.active.reg)
	} else {
		sw.uvarint(0)
	}
}

func (q *Queue) snapshotMessages(sw *swriter) {
	delayed := slices.Clone(q.delay.items)
	slices.SortFunc(delayed, func(x, y timed) int {
		if q.arena.timedLess(x, y) {
			return -1
		}
		return 1
	})
	sw.uvarint(uint64(len(delayed)))
	for _, t := range delayed {
		m := q.arena.at(t.slot)
		sw.varint(t.at)
		sw.boolean(m.state() == stBackoff)
		sw.msg(q, m)
	}
	for l := range q.levels {
		lv := &q.levels[l]
		sw.uvarint(uint64(lv.live))
		back := slices.Clone(lv.back.items)
		slices.SortFunc(back, func(x, y uint32) int { return q.arena.at(x).ref().Compare(q.arena.at(y).ref()) })
		i, j := 0, 0
		for i < lv.fifo.Len() || j < len(back) {
			var s uint32
			if j == len(back) || i < lv.fifo.Len() && q.arena.slotLess(lv.fifo.At(i), back[j]) {
				s, i = lv.fifo.At(i), i+1
			} else {
				s, j = back[j], j+1
			}
			if m := q.arena.at(s); m.state() != stTomb {
				sw.msg(q, m)
			}
		}
	}
	type waitingKey struct {
		id   uint32
		live int
	}
	var keys []waitingKey
	for id := 1; id < len(q.keys.keys); id++ {
		k := &q.keys.keys[id]
		live := 0
		for i := 0; i < k.waiting.Len(); i++ {
			if q.arena.at(k.waiting.At(i)).state() != stTomb {
				live++
			}
		}
		if live > 0 {
			keys = append(keys, waitingKey{uint32(id), live})
		}
	}
	slices.SortFunc(keys, func(x, y waitingKey) int { return strings.Compare(q.keys.keys[x.id].name, q.keys.keys[y.id].name) })
	sw.uvarint(uint64(len(keys)))
	for _, wk := range keys {
		k := &q.keys.keys[wk.id]
		sw.str(k.name)
		sw.uvarint(uint64(wk.live))
		for i := 0; i < k.waiting.Len(); i++ {
			if m := q.arena.at(k.waiting.At(i)); m.state() != stTomb {
				sw.msg(q, m)
			}
		}
	}
	sw.uvarint(uint64(len(q.dlx)))
	for i := 0; i < q.dlxOrder.Len(); i++ {
		if s, ok := q.dlx[q.dlxOrder.At(i)]; ok {
			m := q.arena.at(s)
			sw.msg(q, m)
			sw.u8(uint8(m.reason()))
		}
	}
}

// list gives the counters in their snapshot order.
func (c *Counters) list() []*uint64 {
	return []*uint64{&c.Enqueued, &c.Delivered, &c.Redelivered, &c.Acked, &c.Returned, &c.Expired,
		&c.DeadLettered, &c.Dropped, &c.Deduplicated, &c.Rejected, &c.OverflowDeadLettered,
		&c.DeadLetterDone, &c.Purged, &c.Deleted, &c.AckTimeouts, &c.DedupeEvicted}
}

// Restore replaces the queue's state with the snapshot read from r. It is
// a parser of bytes from disk or network: it never panics, allocates in
// proportion to what it has read (plus bounded per-field buffers), and
// fails with CodeCorrupt, leaving the queue unchanged, on any input that
// is not a snapshot of a consistent state. After a successful Restore,
// Apply continues exactly as it would have on the queue that wrote the
// snapshot.
func (q *Queue) Restore(r io.Reader) error {
	nq, err := restore(r, q.lim, false)
	if err != nil {
		return base.Errorf(base.CodeCorrupt, "queue: restore: %w", err)
	}
	nq.effects, nq.outcomes, nq.scratch = q.effects[:0], q.outcomes[:0], q.scratch[:0]
	*q = *nq
	return nil
}

// compact rebuilds the state in fresh containers through a snapshot, which
// frees arena chunks left empty by a burst and every tomb. Trusted input:
// it skips the consistency check Restore does.
func (q *Queue) compact() {
	var buf bytes.Buffer
	if err := q.Snapshot(&buf); err != nil {
		base.Bugf("queue: compaction snapshot: %v", err)
	}
	nq, err := restore(&buf, q.lim, true)
	if err != nil {
		base.Bugf("queue: compaction restore: %v", err)
	}
	nq.effects, nq.outcomes, nq.scratch = q.effects, q.outcomes, q.scratch
	nq.places = q.places // no body moves in a compaction
	*q = *nq
}

// needsCompaction: most of a large arena is free, or tombs outnumber live
// messages. Both take work proportional to what was freed first, so
// compaction costs amortised O(1) per message.
func (q *Queue) needsCompaction() bool {
	a := q.arena
	return a.capacity() >= q.lim.compactSlots && a.used*4 < a.capacity() ||
		q.tombs >= q.lim.compactTombs && q.tombs > a.used-q.tombs
}

// restorer builds a Queue from a snapshot.
type restorer struct {
	d        *dec
	q        *Queue
	ackItems []ackTimer
	ttlItems []uint32
	// movedBytes holds the sizes the relocation section gives the moved
	// bodies, checked against their messages once those are read.
	movedBytes map[Ref]uint32
}

func restore(r io.Reader, lim limits, trusted bool) (*Queue, error) {
	var crc uint32
	d := &dec{buf: make([]byte, 0, snapshotBufLen), r: r}
	d.sum = func(p []byte) { crc = crc32.Update(crc, castagnoli, p) }
	for i := 0; i < len(snapshotMagic); i++ {
		if b := d.u8(); d.err == nil && b != snapshotMagic[i] {
			return nil, fmt.Errorf("not a queue snapshot")
		}
	}
	version := d.uvarint()
	if d.err == nil && (version < 1 || version > snapshotVersion) {
		return nil, fmt.Errorf("snapshot version %d, want 1 to %d", version, snapshotVersion)
	}
	cfg := d.config()
	if d.err != nil {
		return nil, d.err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	rs := &restorer{d: d, q: newQueue(lim, cfg)}
	rs.scalars()
	rs.consumers()
	rs.messages()
	rs.dedupe()
	if version >= 2 {
		rs.relocation()
	}
	if version >= 3 {
		rs.senders()
	}
	if d.err != nil {
		return nil, d.err
	}
	d.flush()
	d.sum = nil
	var trailer [4]byte
	for i := range trailer {
		trailer[i] = d.u8()
	}
	if d.err != nil {
		return nil, d.err
	}
	if got := binary.LittleEndian.Uint32(trailer[:]); got != crc {
		return nil, fmt.Errorf("checksum %#x, computed %#x", got, crc)
	}
	if d.u8(); d.err == nil {
		return nil, fmt.Errorf("bytes after the checksum")
	} else if !errors.Is(d.err, errTruncated) {
		return nil, d.err
	}
	rs.build()
	if !trusted {
		if err := rs.checkMovedBytes(); err != nil {
			return nil, err
		}
		rs.q.rebuildPlaces()
		if err := rs.q.check(); err != nil {
			return nil, err
		}
	}
	return rs.q, nil
}

func (rs *restorer) scalars() {
	d, q := rs.d, rs.q
	q.now = d.varint()
	q.hasRef = d.boolean()
	q.lastRef = d.ref()
	q.lastUsed = d.varint()
	q.expiredSent = d.boolean()
	q.lastWake = d.varint()
	q.nextReg = d.uvarint()
	q.nextTicket = d.uvarint()
	q.lastID = d.uvarint()
	q.deleted = d.boolean()
	for _, v := range q.ctr.list() {
		*v = d.uvarint()
	}
	if d.err == nil && (q.now < 0 || q.now > base.QueueTimeMsMax || q.lastUsed < 0 || q.lastUsed > q.now || q.nextReg == 0 || q.nextTicket == 0) {
		d.fail("scalars out of range")
	}
}

// msg reads one message record into a fresh slot and attaches its key.
func (rs *restorer) msg() (uint32, *msg) {
	d, q := rs.d, rs.q
	if q.arena.used >= q.lim.messages {
		d.fail("more than %d messages", q.lim.messages)
		return noSlot, nil
	}
	m := msg{index: d.uvarint(), refSlot: d.u32(), bytes: d.u32(), prio: d.u8(), expireAt: d.varint(),
		seed: d.u32(), hidx: noPos}
	count := d.uvarint()
	redelivered := d.boolean()
	key := d.str()
	if d.err != nil {
		return noSlot, nil
	}
	if count > 1<<16-1 {
		d.fail("delivery count %d over 16 bits", count)
		return noSlot, nil
	}
	if m.expireAt < 0 || m.expireAt > base.QueueTimeMsMax+base.QueueDurationMsMax {
		d.fail("expiry %d out of range", m.expireAt)
		return noSlot, nil
	}
	m.count = uint16(count)
	if redelivered {
		m.setRedelivered()
	}
	if key != "" {
		m.key = q.keys.id(key)
		q.keys.keys[m.key].refs++
	}
	s := q.arena.alloc()
	p := q.arena.at(s)
	*p = m
	return s, p
}

func (rs *restorer) consumers() {
	d, q := rs.d, rs.q
	n := d.count(q.lim.consumers, 1)
	prevReg := uint64(0)
	for i := 0; i < n && d.err == nil; i++ {
		c := &consumer{id: d.consumer(), tag: d.str(), reg: d.uvarint(), ticket: d.uvarint(), prio: d.i32(),
			prefetch: d.u32(), prefetchBytes: d.uvarint(), exclusive: d.boolean(), subscribed: d.boolean(),
			lastID: d.uvarint(), hidx: -1}
		if d.err != nil {
			return
		}
		if c.id.IsZero() || q.consumers[c.id] != nil || c.reg <= prevReg {
			d.fail("consumer %s empty, repeated or out of order", c.id)
			return
		}
		prevReg = c.reg
		q.consumers[c.id] = c
		if c.subscribed {
			q.subscribed++
			if c.exclusive {
				q.exclusive = c
			}
		}
		rs.unacked(c)
	}
	reg := d.uvarint()
	if d.err != nil || reg == 0 {
		return
	}
	for _, c := range q.consumers {
		if c.reg == reg {
			q.active = c
		}
	}
	if q.active == nil {
		d.fail("active consumer %d not found", reg)
	}
}

func (rs *restorer) unacked(c *consumer) {
	d, q := rs.d, rs.q
	n := d.count(q.lim.messages, 1)
	prev := uint64(0)
	for i := 0; i < n && d.err == nil; i++ {
		id, deadline := d.uvarint(), d.varint()
		s, m := rs.msg()
		if d.err != nil {
			return
		}
		if id <= prev || id > c.lastID {
			d.fail("consumer %s: delivery id %d out of order", c.id, id)
			return
		}
		prev = id
		m.setState(stUnacked)
		if m.key != 0 {
			k := &q.keys.keys[m.key]
			if k.out != noSlot {
				d.fail("key %q has two outstanding messages", k.name)
				return
			}
			k.out = s
		}
		c.unacked.PushBack(unackedEntry{id: id, slot: s})
		c.count++
		c.bytes += uint64(m.bytes)
		q.unacked++
		q.unackedBytes += uint64(m.bytes)
		if deadline != 0 {
			rs.ackItems = append(rs.ackItems, ackTimer{at: deadline, id: id, c: c, slot: s})
		}
	}
}

func (rs *restorer) messages() {
	d, q := rs.d, rs.q
	n := d.count(q.lim.messages, 1)
	var delayItems []timed
	for i := 0; i < n && d.err == nil; i++ {
		at, backoff := d.varint(), d.boolean()
		s, m := rs.msg()
		if d.err != nil {
			return
		}
		if prev := len(delayItems) - 1; prev >= 0 && !q.arena.timedLess(delayItems[prev], timed{at: at, slot: s}) {
			d.fail("delayed message %s out of order", m.ref())
			return
		}
		m.setState(stDelayed)
		if backoff {
			m.setState(stBackoff)
			if m.key != 0 {
				k := &q.keys.keys[m.key]
				if k.out != noSlot {
					d.fail("key %q has two outstanding messages", k.name)
					return
				}
				k.out = s
			}
		}
		q.delayed++
		q.delayedBytes += uint64(m.bytes)
		delayItems = append(delayItems, timed{at: at, slot: s})
	}
	q.delay.Init(delayItems)
	for l := range q.levels {
		rs.level(l)
	}
	rs.waiting()
	n = d.count(q.lim.messages, 1)
	for i := 0; i < n && d.err == nil; i++ {
		s, m := rs.msg()
		reason := d.u8()
		if d.err != nil {
			return
		}
		if m.key != 0 || reason > uint8(ReasonDeliveryLimit) || q.hasDLX(m.ref()) {
			d.fail("bad dead-letter pending message %s", m.ref())
			return
		}
		m.setState(stDLX)
		m.setReason(Reason(reason))
		q.dlx[m.ref()] = s
		q.dlxOrder.PushBack(m.ref())
	}
}

func (rs *restorer) level(l int) {
	d, q := rs.d, rs.q
	lv := &q.levels[l]
	n := d.count(q.lim.messages, 1)
	var prev *msg
	for i := 0; i < n && d.err == nil; i++ {
		s, m := rs.msg()
		if d.err != nil {
			return
		}
		if q.levelOf(m) != l || prev != nil && !prev.refLess(m) {
			d.fail("ready message %s out of place", m.ref())
			return
		}
		prev = m
		if m.key != 0 {
			k := &q.keys.keys[m.key]
			if k.out != noSlot || k.eligible != noSlot {
				d.fail("key %q: ready message %s behind another", k.name, m.ref())
				return
			}
			k.eligible = s
		}
		rs.ready(s, m)
		lv.fifo.PushBack(s)
		lv.live++
	}
	if lv.live > 0 {
		q.nonEmpty[l/64] |= 1 << (l % 64)
	}
}

func (rs *restorer) ready(s uint32, m *msg) {
	q := rs.q
	m.setState(stReady)
	q.ready++
	q.readyBytes += uint64(m.bytes)
	if m.expireAt != 0 {
		rs.ttlItems = append(rs.ttlItems, s)
	}
}

func (rs *restorer) waiting() {
	d, q := rs.d, rs.q
	n := d.count(q.lim.messages, 1)
	prevName := ""
	for i := 0; i < n && d.err == nil; i++ {
		name := d.str()
		count := d.count(q.lim.messages, 1)
		if d.err != nil {
			return
		}
		id, ok := q.keys.byName[name]
		if !ok || (i > 0 && name <= prevName) || count == 0 {
			d.fail("waiting key %q out of place", name)
			return
		}
		prevName = name
		for j := 0; j < count && d.err == nil; j++ {
			s, m := rs.msg()
			if d.err != nil {
				return
			}
			if m.key != id {
				d.fail("message %s waits behind key %q but has another", m.ref(), name)
				return
			}
			rs.ready(s, m)
			q.keys.keys[id].waiting.PushBack(s)
		}
	}
}

func (rs *restorer) dedupe() {
	d, q := rs.d, rs.q
	n := d.count(q.lim.dedupeIDs, 2)
	for i := 0; i < n && d.err == nil; i++ {
		var k dedupeKey
		k.n = d.u8()
		size := int(k.n)
		if k.n == hashedKey {
			size = len(k.b)
		} else if size > len(k.b) {
			d.fail("dedupe id length %d", k.n)
			return
		}
		for j := 0; j < size; j++ {
			k.b[j] = d.u8()
		}
		deadline := d.varint()
		if d.err != nil {
			return
		}
		q.dedupe.seen[k] = deadline
		q.dedupe.order.PushBack(dedupeEntry{key: k, deadline: deadline})
	}
}

// senders reads the sender table; the checker verifies its order and
// ranges with the rest of an untrusted snapshot.
func (rs *restorer) senders() {
	d, q := rs.d, rs.q
	t := &q.senders
	n := d.count(q.lim.senders, 5)
	for i := 0; i < n && d.err == nil; i++ {
		s := &sender{lane: d.uvarint(), lastMs: d.varint()}
		nr := d.count(q.lim.senderRanges, 3)
		for j := 0; j < nr && d.err == nil; j++ {
			from, length, lettered := d.uvarint(), d.uvarint(), d.boolean()
			if length > math.MaxUint64-from {
				d.fail("sender %d: range of %d from %d overflows", s.lane, length, from)
				return
			}
			s.ranges = append(s.ranges, seqRange{from: from, to: from + length, lettered: lettered})
		}
		if d.err != nil {
			return
		}
		if s.lane == 0 || t.byLane[s.lane] != nil {
			d.fail("sender lane %d repeated or zero", s.lane)
			return
		}
		if t.byLane == nil {
			t.byLane = map[uint64]*sender{}
		}
		t.byLane[s.lane] = s
		t.pushNewest(s)
	}
	q.ctr.Resent = d.uvarint()
	q.ctr.SendersEvicted = d.uvarint()
}

// relocation reads the moved bodies; movedBytes and check verify they are
// live messages' with their sizes.
func (rs *restorer) relocation() {
	d, q := rs.d, rs.q
	r := &q.reloc
	r.below = d.uvarint()
	q.ctr.Relocated = d.uvarint()
	n := d.count(q.lim.messages, 5)
	if n > 0 {
		r.moved = map[Ref]Ref{} // not sized by n: the count is not yet backed by bytes read
		rs.movedBytes = map[Ref]uint32{}
	}
	var last Ref
	for i := 0; i < n && d.err == nil; i++ {
		ref, at, bytes := d.ref(), d.ref(), d.u32()
		if d.err != nil {
			return
		}
		if _, dup := r.moved[ref]; dup || i > 0 && !last.Less(at) {
			d.fail("moved body of %s repeated or out of order", ref)
			return
		}
		r.moved[ref], rs.movedBytes[ref], last = at, bytes, at
	}
}

// checkMovedBytes fails unless every moved body's size is its message's
// (the writer takes it from the message).
func (rs *restorer) checkMovedBytes() error {
	for _, p := range rs.q.movedBodies() {
		if rs.movedBytes[p.Ref] != p.Bytes {
			return fmt.Errorf("moved body of %s has %d bytes, its message %d", p.Ref, rs.movedBytes[p.Ref], p.Bytes)
		}
	}
	return nil
}

// build indexes what the sections gave.
func (rs *restorer) build() {
	q := rs.q
	q.ttl.Init(rs.ttlItems)
	q.acks.Init(rs.ackItems)
	for id := 1; id < len(q.keys.keys); id++ {
		if q.keys.keys[id].name != "" {
			q.repark(uint32(id))
		}
	}
	for _, c := range q.sortedConsumers(func(*consumer) bool { return true }) {
		q.reservice(c)
	}
}

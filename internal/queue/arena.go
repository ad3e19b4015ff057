package queue

// msg is the state machine's record of one message, in any state. It is
// pointer-free and 40 bytes (TestMsgIsFortyBytes pins it): the budget of 64
// bytes per ready message is this record, 4 bytes for its slot in a level
// fifo and 4 for a TTL heap entry when it has a TTL, plus the TTL heap's
// growth slack, plus its share of its log entry's body count (16 bytes
// per entry: see places). BenchmarkReadyMessageMemory measures it.
type msg struct {
	index    uint64 // Ref.Index
	expireAt int64  // Unix ms when the TTL passes (0: none); dead-letter pending: when it was dead-lettered
	refSlot  uint32 // Ref.Slot
	bytes    uint32
	seed     uint32 // jitter seed: hash of the MessageID, or of the Ref
	hidx     uint32 // position in the TTL heap (ready) or ack heap (unacknowledged); noPos otherwise
	key      uint32 // ordering key id (0: none)
	count    uint16 // failed delivery attempts, saturating
	prio     uint8  // priority as published
	bits     uint8  // state (3 bits) | redelivered | dead-letter reason (2 bits)
}

// Message states.
const (
	stFree    = iota // slot unused
	stReady          // in a level container or a key's waiting list
	stDelayed        // in the delay heap until its not-before time
	stBackoff        // in the delay heap after a failed attempt (holds its key)
	stUnacked        // delivered, in a consumer's unacked list
	stDLX            // dead-letter pending
	stTomb           // expired while ready; still referenced by one container, which frees it
)

const (
	stateMask      = 0x07
	redeliveredBit = 0x08
	reasonShift    = 4
	reasonMask     = 0x30
)

const noPos = ^uint32(0)

func (m *msg) state() uint8       { return m.bits & stateMask }
func (m *msg) setState(s uint8)   { m.bits = m.bits&^stateMask | s }
func (m *msg) redelivered() bool  { return m.bits&redeliveredBit != 0 }
func (m *msg) setRedelivered()    { m.bits |= redeliveredBit }
func (m *msg) reason() Reason     { return Reason(m.bits & reasonMask >> reasonShift) }
func (m *msg) setReason(r Reason) { m.bits = m.bits&^reasonMask | uint8(r)<<reasonShift&reasonMask }
func (m *msg) ref() Ref           { return Ref{Index: m.index, Slot: m.refSlot} }
func (m *msg) refLess(o *msg) bool {
	return m.index < o.index || m.index == o.index && m.refSlot < o.refSlot
}

// arenaChunkLen is the messages per arena chunk (160 KiB chunks): big
// enough that the chunk table is small, small enough that a queue of a few
// messages does not reserve much.
const arenaChunkLen = 4096

const noSlot = ^uint32(0)

// arena holds every msg in fixed-size chunks that never move, so a *msg
// stays valid while the arena grows. Each chunk hands its slots out in
// order, then reuses released ones through a list threaded through them
// (a free msg's index holds the next), and counts its live slots, so a
// chunk whose last message leaves is dropped at once: a draining queue
// gives its memory back as it drains. Before, only a compaction did,
// which rebuilds the whole state in one command, on the engine loop:
// 258 ms at 2.5 million messages (BenchmarkPublishBesideADrain). One
// empty chunk stays as a spare, so that a queue that empties and fills
// again does not allocate a chunk per message. Queue.compact still
// rebuilds an arena whose chunks are mostly free slots (holes left here
// and there) or tombs.
type arena struct {
	chunks []*[arenaChunkLen]msg // nil: vacant
	info   []chunkInfo
	open   []uint32 // present chunks with room; alloc takes from the last
	vacant []uint32 // vacant chunk numbers, reused before the table grows
	used   int      // slots handed out and not released (live messages and tombs)
	empty  int      // present chunks with no slot handed out: 0 or 1 (the spare)
}

// chunkInfo is a chunk's bookkeeping.
type chunkInfo struct {
	free  uint32 // the first slot of its free list; noSlot: none
	fresh uint16 // slots below first+fresh have been handed out at least once
	live  uint16 // slots handed out
	open  int32  // its position in arena.open; -1: not there
}

func (a *arena) at(s uint32) *msg { return &a.chunks[s/arenaChunkLen][s%arenaChunkLen] }

// holds reports whether slot s lies in a present chunk (at may read it).
func (a *arena) holds(s uint32) bool {
	c := int(s / arenaChunkLen)
	return c < len(a.chunks) && a.chunks[c] != nil
}

// alloc returns a slot holding msg{hidx: noPos}. The caller fills it.
func (a *arena) alloc() uint32 {
	if len(a.open) == 0 {
		a.addChunk()
	}
	c := a.open[len(a.open)-1]
	ci := &a.info[c]
	var s uint32
	if ci.free != noSlot {
		s = ci.free
		m := a.at(s)
		ci.free = uint32(m.index)
		*m = msg{hidx: noPos}
	} else {
		s = c*arenaChunkLen + uint32(ci.fresh)
		ci.fresh++
		a.at(s).hidx = noPos
	}
	if ci.live == 0 {
		a.empty--
	}
	ci.live++
	if ci.free == noSlot && ci.fresh == arenaChunkLen {
		a.unopen(c)
	}
	a.used++
	return s
}

func (a *arena) release(s uint32) {
	c := s / arenaChunkLen
	ci := &a.info[c]
	*a.at(s) = msg{hidx: noPos, index: uint64(ci.free)}
	ci.free = s
	ci.live--
	a.used--
	switch {
	case ci.live > 0 || a.empty == 0:
		if ci.live == 0 {
			a.empty++ // the spare
		}
		if ci.open < 0 {
			ci.open = int32(len(a.open))
			a.open = append(a.open, c)
		}
	default:
		if ci.open >= 0 {
			a.unopen(c)
		}
		a.chunks[c] = nil
		a.vacant = append(a.vacant, c)
	}
}

// addChunk makes a present chunk of fresh slots, open.
func (a *arena) addChunk() {
	var c uint32
	if n := len(a.vacant); n > 0 {
		c = a.vacant[n-1]
		a.vacant = a.vacant[:n-1]
	} else {
		c = uint32(len(a.chunks))
		a.chunks = append(a.chunks, nil)
		a.info = append(a.info, chunkInfo{})
	}
	a.chunks[c] = new([arenaChunkLen]msg)
	a.info[c] = chunkInfo{free: noSlot, open: int32(len(a.open))}
	a.open = append(a.open, c)
	a.empty++
}

// unopen takes chunk c out of the open list.
func (a *arena) unopen(c uint32) {
	i := a.info[c].open
	last := a.open[len(a.open)-1]
	a.open[i] = last
	a.info[last].open = i
	a.open = a.open[:len(a.open)-1]
	a.info[c].open = -1
}

// slots is the slot space: every slot is below it.
func (a *arena) slots() int { return len(a.chunks) * arenaChunkLen }

// capacity is the slots the arena has memory for.
func (a *arena) capacity() int { return (len(a.chunks) - len(a.vacant)) * arenaChunkLen }

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
// stays valid while the arena grows. Slots are reused through a free list;
// Queue.compact rebuilds the arena when most of it is free.
type arena struct {
	chunks []*[arenaChunkLen]msg
	next   uint32   // slots below next have been handed out at least once
	free   []uint32 // released slots, reused last-in first-out
	used   int      // slots handed out and not released (live messages and tombs)
}

func (a *arena) at(s uint32) *msg { return &a.chunks[s/arenaChunkLen][s%arenaChunkLen] }

// alloc returns a zeroed slot. The caller fills it.
func (a *arena) alloc() uint32 {
	a.used++
	if n := len(a.free); n > 0 {
		s := a.free[n-1]
		a.free = a.free[:n-1]
		return s
	}
	if int(a.next) == len(a.chunks)*arenaChunkLen {
		a.chunks = append(a.chunks, new([arenaChunkLen]msg))
	}
	s := a.next
	a.next++
	return s
}

func (a *arena) release(s uint32) {
	*a.at(s) = msg{hidx: noPos}
	a.free = append(a.free, s)
	a.used--
}

// capacity is the slots the arena has memory for.
func (a *arena) capacity() int { return len(a.chunks) * arenaChunkLen }

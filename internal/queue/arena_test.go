package queue

import (
	"slices"
	"testing"

	"pgregory.net/rapid"
)

// checkArena runs the checker's arena invariants with live as the slots
// in use, and checks that each still holds the tag it was given.
func checkArena(t *rapid.T, a *arena, live []uint32, tags map[uint32]uint32) {
	ck := &checker{q: &Queue{arena: a}, seen: make([]bool, a.slots())}
	for _, s := range live {
		if !a.holds(s) {
			t.Fatalf("live slot %d is not in a present chunk", s)
		}
		if ck.seen[s] {
			t.Fatalf("slot %d handed out twice", s)
		}
		ck.seen[s] = true
		if got := a.at(s).seed; got != tags[s] {
			t.Fatalf("slot %d holds tag %d, want %d", s, got, tags[s])
		}
	}
	if err := ck.arena(); err != nil {
		t.Fatal(err)
	}
}

// TestArenaMatchesModel allocates and releases slots in random bulks and
// orders (oldest first as a draining queue does, newest first, at random)
// across several chunks, and checks after every step that live slots keep
// their contents and the arena's bookkeeping holds (free lists, open
// list, vacant chunks, at most one empty chunk kept).
func TestArenaMatchesModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a := &arena{}
		var live []uint32 // in allocation order
		tags := map[uint32]uint32{}
		next := uint32(1)
		for range rapid.IntRange(1, 30).Draw(t, "steps") {
			n := rapid.IntRange(1, 3*arenaChunkLen).Draw(t, "n")
			switch rapid.IntRange(0, 3).Draw(t, "op") {
			case 0:
				for range n {
					s := a.alloc()
					if m := a.at(s); *m != (msg{hidx: noPos}) {
						t.Fatalf("alloc gave slot %d holding %+v", s, *m)
					}
					a.at(s).seed = next
					a.at(s).setState(stReady)
					tags[s] = next
					next++
					live = append(live, s)
				}
			case 1: // oldest first
				n = min(n, len(live))
				for _, s := range live[:n] {
					a.release(s)
					delete(tags, s)
				}
				live = live[n:]
			case 2: // newest first
				n = min(n, len(live))
				for _, s := range slices.Backward(live[len(live)-n:]) {
					a.release(s)
					delete(tags, s)
				}
				live = live[:len(live)-n]
			default:
				n = min(n, len(live))
				for range n {
					i := rapid.IntRange(0, len(live)-1).Draw(t, "i")
					a.release(live[i])
					delete(tags, live[i])
					live = slices.Delete(live, i, i+1)
				}
			}
			checkArena(t, a, live, tags)
			if a.used != len(live) {
				t.Fatalf("arena counts %d used, %d live", a.used, len(live))
			}
		}
	})
}

// TestADrainingQueueGivesItsArenaBackWithoutACompaction: as a backlog
// drains oldest first, each chunk it empties goes at once but one spare;
// before, the memory stayed until a compaction rebuilt the whole state in
// one command (258 ms at 2.5 million messages).
func TestADrainingQueueGivesItsArenaBackWithoutACompaction(t *testing.T) {
	q := mustNew(t, DefaultConfig())
	q.lim.compactSlots = 1 << 30 // no compaction
	const n = 8 * arenaChunkLen
	for i := 0; i < n/1024; i++ {
		apply(t, q, &Enqueue{Messages: msgs(uint64(i+1), 1024)})
	}
	if got := q.arena.capacity(); got != n {
		t.Fatalf("arena capacity %d for %d messages", got, n)
	}
	c := ConsumerID{"a", "1"}
	apply(t, q, &Subscribe{Consumer: c, PrefetchCount: 1000})
	settled := uint64(0)
	for settled < n-10 {
		upTo := min(settled+1000, n-10)
		apply(t, q, &Settle{Consumer: c, UpTo: upTo})
		settled = upTo
		// The chunks still holding messages, and the spare.
		left := int(n - settled)
		if want := (left+arenaChunkLen-1)/arenaChunkLen + 1; q.arena.capacity() > want*arenaChunkLen {
			t.Fatalf("with %d messages left the arena holds %d chunks, want at most %d", left, q.arena.capacity()/arenaChunkLen, want)
		}
	}
	if err := q.check(); err != nil {
		t.Fatal(err)
	}
}

// TestAQueueThatEmptiesAndFillsAgainKeepsOneChunk: the spare chunk keeps a
// queue that goes between empty and one message from allocating a chunk
// (160 KiB) per message.
func TestAQueueThatEmptiesAndFillsAgainKeepsOneChunk(t *testing.T) {
	q := mustNew(t, DefaultConfig())
	c := ConsumerID{"a", "1"}
	apply(t, q, &Subscribe{Consumer: c, PrefetchCount: 1})
	for i := range uint64(3 * arenaChunkLen) {
		apply(t, q, &Enqueue{Messages: msgs(i+1, 1)})
		apply(t, q, &Settle{Consumer: c, UpTo: i + 1})
		if len(q.arena.chunks) != 1 || q.arena.capacity() != arenaChunkLen {
			t.Fatalf("after %d messages through: %d chunks in the table, capacity %d", i+1, len(q.arena.chunks), q.arena.capacity())
		}
	}
}

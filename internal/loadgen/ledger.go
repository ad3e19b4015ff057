package loadgen

import (
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/ferry-mq/ferry/internal/base"
)

// Ledger accounts for every message of a run by logical producer and
// sequence number: what was sent, confirmed, nacked, and received in each
// queue that should receive it. It holds bitmaps, never a map of messages,
// so a run of millions of messages costs a bit per message per state.
//
// Producers' methods (Send, Confirm, Nack) and Receive may be called
// concurrently from any goroutine. Tally is exact once they have stopped.
type Ledger struct {
	producers []producerLedger
	// feeds[q] maps a producer to its received bitmap in queue q: the
	// flows the topology promises. Built in NewLedger, read-only after.
	feeds    []map[uint32]*Bitmap
	foreign  atomic.Uint64 // received bodies without our header or of another run
	phantom  atomic.Uint64 // received messages never sent, or in a queue they were not routed to
	received atomic.Uint64 // distinct receipts, summed over queues
	dups     atomic.Uint64 // receipts of a message already received in that queue
	dupAcks  atomic.Uint64 // confirms or nacks of a message already settled: a client or broker bug
	notify   chan struct{} // size one: a receipt happened since the last wait
}

type producerLedger struct {
	next      atomic.Uint64 // the next sequence number: sent = next
	confirmed Bitmap
	nacked    Bitmap
	queues    []int // the queues this producer's messages must reach
}

// Flow says that producer's messages must reach queue.
type Flow struct {
	Producer uint32
	Queue    int
}

// NewLedger returns a ledger for producers logical producers and queues
// queues, where each message of a producer must be received once in every
// queue of its flows.
func NewLedger(producers, queues int, flows []Flow) (*Ledger, error) {
	if producers < 1 || producers > base.LoadgenProducersMax {
		return nil, base.Errorf(base.CodeInvalidArgument, "loadgen: %d producers, want 1 to %d", producers, base.LoadgenProducersMax)
	}
	if queues < 1 || queues > base.LoadgenQueuesMax {
		return nil, base.Errorf(base.CodeInvalidArgument, "loadgen: %d queues, want 1 to %d", queues, base.LoadgenQueuesMax)
	}
	l := &Ledger{
		producers: make([]producerLedger, producers),
		feeds:     make([]map[uint32]*Bitmap, queues),
		notify:    make(chan struct{}, 1),
	}
	for q := range l.feeds {
		l.feeds[q] = map[uint32]*Bitmap{}
	}
	for _, f := range flows {
		if int(f.Producer) >= producers || f.Queue < 0 || f.Queue >= queues {
			return nil, base.Errorf(base.CodeInvalidArgument, "loadgen: flow %d->%d outside %d producers, %d queues", f.Producer, f.Queue, producers, queues)
		}
		if _, ok := l.feeds[f.Queue][f.Producer]; ok {
			continue
		}
		l.feeds[f.Queue][f.Producer] = new(Bitmap)
		l.producers[f.Producer].queues = append(l.producers[f.Producer].queues, f.Queue)
	}
	return l, nil
}

// Send assigns producer p's next sequence number; the message counts as
// sent from now on. It fails once the producer reached
// base.LoadgenSequencesMax.
func (l *Ledger) Send(p uint32) (uint64, error) {
	seq := l.producers[p].next.Add(1) - 1
	if seq >= base.LoadgenSequencesMax {
		l.producers[p].next.Add(^uint64(0)) // undo: this message is not sent
		return 0, base.Errorf(base.CodeTooLarge, "loadgen: producer %d reached %d messages", p, uint64(base.LoadgenSequencesMax))
	}
	return seq, nil
}

// Unsend takes back the last sequence number Send returned to p, when the
// message could not be handed to the broker at all. Only the goroutine that
// drives p may call it, right after the failed publish.
func (l *Ledger) Unsend(p uint32, seq uint64) {
	base.Assert(l.producers[p].next.CompareAndSwap(seq+1, seq), "loadgen: Unsend(%d, %d) is not producer %d's last send", p, seq, p)
}

// Confirm records that the broker confirmed p's message seq.
func (l *Ledger) Confirm(p uint32, seq uint64) {
	l.settle(&l.producers[p].confirmed, &l.producers[p].nacked, p, seq)
}

// Nack records that the broker refused p's message seq: it was never
// promised, so it is not lost if it never arrives.
func (l *Ledger) Nack(p uint32, seq uint64) {
	l.settle(&l.producers[p].nacked, &l.producers[p].confirmed, p, seq)
}

// settle sets seq in b; a message already in b or in other was settled
// before, which no broker may do.
func (l *Ledger) settle(b, other *Bitmap, p uint32, seq uint64) {
	base.Assert(seq < l.producers[p].next.Load(), "loadgen: producer %d settled %d before sending it", p, seq)
	if dup, _ := b.Set(seq); dup || other.Has(seq) {
		l.dupAcks.Add(1)
	}
}

// Receipt is what Receive made of a delivery.
type Receipt int

const (
	ReceiptFresh     Receipt = iota // first receipt of this message in this queue
	ReceiptDuplicate                // received in this queue before
	ReceiptForeign                  // not made by this run
	ReceiptPhantom                  // never sent, or not routed to this queue
)

// Receive records a delivery of body in queue q and returns its header and
// what it was.
func (l *Ledger) Receive(q int, runID uint32, body []byte) (Header, Receipt) {
	h, err := DecodeHeader(body)
	if err != nil || h.RunID != runID {
		l.foreign.Add(1)
		return h, ReceiptForeign
	}
	if int(h.Producer) >= len(l.producers) || h.Seq >= l.producers[h.Producer].next.Load() {
		l.phantom.Add(1)
		return h, ReceiptPhantom
	}
	b := l.feeds[q][h.Producer]
	if b == nil {
		l.phantom.Add(1)
		return h, ReceiptPhantom
	}
	if dup, _ := b.Set(h.Seq); dup {
		l.dups.Add(1)
		return h, ReceiptDuplicate
	}
	l.received.Add(1)
	select {
	case l.notify <- struct{}{}:
	default:
	}
	return h, ReceiptFresh
}

// Notify returns a channel that receives a value after a fresh receipt, at
// most one pending at a time: a waiter rechecks Received when woken.
func (l *Ledger) Notify() <-chan struct{} { return l.notify }

// Received returns the distinct receipts so far, summed over queues.
func (l *Ledger) Received() uint64 { return l.received.Load() }

// Expected returns how many distinct receipts a lossless run ends with,
// counting every message sent and not nacked once per queue it was
// routed to (unconfirmed messages may legitimately be missing).
func (l *Ledger) Expected() (all, confirmed uint64) {
	for i := range l.producers {
		pl := &l.producers[i]
		n := uint64(len(pl.queues))
		all += n * (pl.next.Load() - pl.nacked.Count())
		confirmed += n * pl.confirmed.Count()
	}
	return all, confirmed
}

// Tally is the accounting of a run.
type Tally struct {
	Sent        uint64 `json:"sent"`
	Confirmed   uint64 `json:"confirmed"`
	Nacked      uint64 `json:"nacked"`
	Unconfirmed uint64 `json:"unconfirmed"` // sent, neither confirmed nor nacked
	Received    uint64 `json:"received"`    // distinct (message, queue) receipts
	Lost        uint64 `json:"lost"`        // confirmed, and missing from a queue it was routed to
	Duplicated  uint64 `json:"duplicated"`  // receipts beyond the first in one queue
	Phantom     uint64 `json:"phantom"`     // received, never sent (or in the wrong queue)
	Foreign     uint64 `json:"foreign"`     // received bodies of another run or without a header
	DupSettles  uint64 `json:"dup_settles"` // a second confirm or nack of one message
}

// Tally counts everything. Call it after producers and consumers stopped.
func (l *Ledger) Tally() Tally {
	var t Tally
	for i := range l.producers {
		pl := &l.producers[i]
		sent := pl.next.Load()
		t.Sent += sent
		t.Confirmed += pl.confirmed.Count()
		t.Nacked += pl.nacked.Count()
		for _, q := range pl.queues {
			t.Lost += pl.confirmed.CountAndNot(l.feeds[q][uint32(i)], sent)
		}
	}
	if settled := t.Confirmed + t.Nacked; settled < t.Sent {
		t.Unconfirmed = t.Sent - settled // else a message was settled twice: DupSettles says so
	}
	t.Received = l.received.Load()
	t.Duplicated = l.dups.Load()
	t.Phantom = l.phantom.Load()
	t.Foreign = l.foreign.Load()
	t.DupSettles = l.dupAcks.Load()
	return t
}

// ErrAccounting is what Tally.Err's error matches (errors.Is): the broker
// lost, invented or double-settled a message.
var ErrAccounting = errors.New("loadgen: accounting failed")

// Err returns an error when the tally shows the broker failed its
// promises: a confirmed message lost, a message received that was never
// sent, or a message settled twice. Duplicates and unconfirmed messages
// are reported but allowed (at-least-once delivery; a confirm may be lost
// with its connection).
func (t Tally) Err() error {
	if t.Lost == 0 && t.Phantom == 0 && t.DupSettles == 0 {
		return nil
	}
	return fmt.Errorf("%w: %d confirmed messages lost, %d phantom receipts, %d double settlements (sent %d, confirmed %d, received %d)",
		ErrAccounting, t.Lost, t.Phantom, t.DupSettles, t.Sent, t.Confirmed, t.Received)
}

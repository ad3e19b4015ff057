package broker

import (
	"cmp"
	"context"
	"slices"
	"sync"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/queue"
)

// lane hands one publisher's sends to one group (a queue's or a stream
// partition's) to its leader in the order they were made, and keeps that
// order when the leader changes (DESIGN.md "Publish order"). A
// connection has a lane per group it publishes to; dead-lettering makes
// one per republish.
//
// Sends bound for the same node keep their order there (its accumulator
// takes them in order, and forwarded batches are admitted in frame
// order), so they are handed over at once, one after another. A send
// bound for another node than the sends still unresolved waits until
// they are resolved: the leader moved while they were in flight, and
// those of them that fail must go first. Items that fail because their
// node was not (or no longer) the leader or could not be reached are
// sent again, before every newer send, once a leader is known: up to
// BrokerForwardRetriesMax times, then they fail.
type lane struct {
	b  *Broker
	g  GroupID
	id uint64 // names the lane to the queue, with each item's number (DESIGN.md "Senders")

	mu          sync.Mutex
	retries     []*laneSend // guarded by mu: sends to hand over again, oldest first
	queued      []*laneSend // guarded by mu: sends not handed over yet, oldest first
	inflight    int         // guarded by mu: sends handed over and not resolved
	target      NodeID      // guarded by mu: the node the inflight sends went to
	nextSeq     uint64      // guarded by mu
	nextItem    uint64      // guarded by mu: the last item's number
	dispatching bool        // guarded by mu: a goroutine is handing sends over
	dropped     bool        // guarded by mu: its connection forgot it (dropIfIdle)
}

// laneSend is one send: the items of one publish call (or republish) for
// the lane's group. Every retry is older than every queued send, since
// sends are handed over in order.
type laneSend struct {
	l     *lane
	seq   uint64
	ctx   context.Context
	items []*pubItem // the callers' items still to deliver

	// Guarded by l.mu:
	sent     NodeID // where the send was handed over last
	left     int    // outcomes awaited from that hand-over
	again    []int  // slots that failed there retriably
	cause    error  // the last of those failures
	attempts int    // hand-overs so far
}

// newLaneID returns a lane id no other lane of this start of the node
// has, never 0.
func (b *Broker) newLaneID() uint64 {
	for {
		if id := b.laneIDs.Add(1); id != 0 {
			return id
		}
	}
}

func newLane(b *Broker, g GroupID) *lane { return &lane{b: b, g: g, id: b.newLaneID()} }

// send hands items over behind the lane's earlier sends. It may block
// while it waits for a leader or for the accumulator's room, as a publish
// does, when this goroutine is the one handing sends over. It returns
// false, having done nothing, when the lane was dropped.
func (l *lane) send(ctx context.Context, items []*pubItem) bool {
	l.mu.Lock()
	if l.dropped {
		l.mu.Unlock()
		return false
	}
	l.nextSeq++
	for _, it := range items {
		l.nextItem++
		it.sender = queue.SenderID{Lane: l.id, Seq: l.nextItem}
	}
	l.queued = append(l.queued, &laneSend{l: l, seq: l.nextSeq, ctx: ctx, items: items})
	if l.dispatching {
		l.mu.Unlock()
		return true
	}
	l.dispatching = true
	l.mu.Unlock()
	l.dispatch()
	return true
}

// dropIfIdle marks the lane dropped, and reports it, when nothing is in
// flight or waiting: it has no order left to keep, so a new lane may take
// its place.
func (l *lane) dropIfIdle() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.dropped = l.dropped || (l.inflight == 0 && !l.dispatching && l.head() == nil)
	return l.dropped
}

// head returns the oldest send waiting to be handed over; l.mu is held.
func (l *lane) head() *laneSend {
	if len(l.retries) > 0 {
		return l.retries[0]
	}
	if len(l.queued) > 0 {
		return l.queued[0]
	}
	return nil
}

// pop removes s, the head; l.mu is held.
func (l *lane) pop(s *laneSend) {
	if len(l.retries) > 0 && l.retries[0] == s {
		l.retries[0] = nil
		l.retries = l.retries[1:]
		return
	}
	l.queued[0] = nil
	l.queued = l.queued[1:]
}

// dispatch hands sends over, oldest first, until none is left or the next
// must wait for the ones in flight; the goroutine running it is the
// lane's only dispatcher until it returns.
func (l *lane) dispatch() {
	for {
		l.mu.Lock()
		s := l.head()
		if s == nil {
			l.dispatching = false
			l.mu.Unlock()
			return
		}
		l.mu.Unlock()
		target, acc, err := l.targetOf(s)
		l.mu.Lock()
		if l.head() != s {
			l.mu.Unlock()
			continue // an older send failed meanwhile: it goes first
		}
		if err != nil {
			l.pop(s)
			l.mu.Unlock()
			failAll(s.items, err)
			continue
		}
		if l.inflight > 0 && target != l.target {
			// The leader moved under sends in flight: the last of them
			// to resolve starts a dispatcher again.
			l.dispatching = false
			l.mu.Unlock()
			return
		}
		l.pop(s)
		s.sent, s.left, s.again = target, len(s.items), s.again[:0]
		s.attempts++
		l.inflight++
		l.target = target
		l.mu.Unlock()
		s.handOver(target, acc)
	}
}

// targetOf waits until s can be handed over and returns where to: this
// node's accumulator when it runs the group's leader, else the leader's
// node (another one than the send's last, for a retry, unless a later
// term elected it again). acc is nil when target is another node, or
// when this node's runtime stopped since awaitLeader saw it lead.
func (l *lane) targetOf(s *laneSend) (target NodeID, acc *accumulator, err error) {
	if s.attempts == 0 {
		if acc := l.b.localAccumulator(l.g); acc != nil {
			return l.b.node, acc, nil
		}
		target, err = l.b.leaderOf(s.ctx, l.g)
	} else {
		target, err = l.b.nextLeader(s.ctx, l.g, s.sent, s.cause)
	}
	if err == nil && target == l.b.node {
		acc = l.b.localAccumulator(l.g)
	}
	return target, acc, err
}

// handOver gives the send's items to target: acc, this node's
// accumulator, or the leader's node.
func (s *laneSend) handOver(target NodeID, acc *accumulator) {
	l := s.l
	wrapped := make([]pubItem, len(s.items)) // per hand-over: its copies may be referenced after their outcome
	out := make([]*pubItem, len(s.items))
	for i, it := range s.items {
		wrapped[i] = pubItem{rec: it.rec, owner: s, slot: i, sender: it.sender}
		out[i] = &wrapped[i]
	}
	switch {
	case target != l.b.node:
		l.b.fwd.enqueue(s.ctx, target, l.g, out)
	case acc != nil:
		acc.add(s.ctx, out)
	default: // the runtime awaitLeader saw has stopped since: leadership moved
		failAll(out, base.Errorf(base.CodeNotLeader, "broker: node %d lost group %d: %w", l.b.node, l.g, leaderErr(l.g, 0)))
	}
}

// itemDone is the outcome of one handed-over item: passed on to its
// caller, except a failure another leader may not have, which is kept
// for the send's next hand-over.
func (s *laneSend) itemDone(slot int, o queue.Outcome, err error) {
	l := s.l
	retry := err != nil && retriableElsewhere(err) && s.attempts <= base.BrokerForwardRetriesMax && s.ctx.Err() == nil
	if !retry {
		s.items[slot].settle(o, err)
	}
	l.mu.Lock()
	if retry {
		s.again = append(s.again, slot)
		s.cause = err
	}
	if s.left--; s.left > 0 {
		l.mu.Unlock()
		return
	}
	l.inflight--
	if len(s.again) > 0 {
		slices.Sort(s.again)
		items := make([]*pubItem, len(s.again))
		for i, slot := range s.again {
			items[i] = s.items[slot]
		}
		s.items = items
		i, _ := slices.BinarySearchFunc(l.retries, s.seq, func(r *laneSend, seq uint64) int { return cmp.Compare(r.seq, seq) })
		l.retries = slices.Insert(l.retries, i, s)
	}
	start := !l.dispatching && l.head() != nil
	if start {
		l.dispatching = true
	}
	l.mu.Unlock()
	if start && !l.b.spawn(l.dispatch) {
		l.failWaiting(base.Errorf(base.CodeStopped, "broker: node %d is stopping", l.b.node))
	}
}

// failWaiting fails every send not handed over (the node is stopping).
func (l *lane) failWaiting(err error) {
	l.mu.Lock()
	waiting := append(l.retries, l.queued...)
	l.retries, l.queued = nil, nil
	l.dispatching = false
	l.mu.Unlock()
	for _, s := range waiting {
		failAll(s.items, err)
	}
}

package broker

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/queue"
	"github.com/ferry-mq/ferry/internal/storage/log/batch"
)

// TraceKind is one state change of a message.
type TraceKind uint8

// The state changes a timeline records.
const (
	TracePublished    TraceKind = iota + 1 // accepted from a publisher
	TraceRouted                            // routed to Queue (a queue or stream)
	TraceEnqueued                          // durable in Queue
	TraceDeduplicated                      // dropped by Queue as a duplicate
	TraceRejected                          // refused by Queue (overflow)
	TraceDelivered                         // handed to Consumer, attempt Attempt
	TraceAcked                             // acknowledged by Consumer
	TraceNacked                            // returned by Consumer (Reason; requeued or not)
	TraceExpired                           // its TTL passed in Queue
	TraceDeadLettered                      // republished to Exchange (Reason)
	TraceDropped                           // left Queue without a dead-letter target (Reason)
)

var traceKindNames = [...]string{"", "published", "routed", "enqueued", "deduplicated", "rejected", "delivered",
	"acked", "nacked", "expired", "dead-lettered", "dropped"}

func (k TraceKind) String() string {
	if int(k) < len(traceKindNames) && k != 0 {
		return traceKindNames[k]
	}
	return "trace?"
}

// TraceEvent is one entry of a message's timeline.
type TraceEvent struct {
	Kind       TraceKind
	Time       time.Time
	Node       NodeID
	Exchange   string
	RoutingKey string
	Queue      string
	Consumer   string
	Attempt    uint32
	Reason     string
	Requeued   bool
}

// traceStore is the node's bounded message history: a ring of the last
// TraceEvents events of traced entities, searched by message id. Tracing
// is enabled per entity (exchange, queue or stream name) of a tenant and
// is local to the node (each node records what happens on it; see
// DESIGN.md "Tracing").
type traceStore struct {
	clock base.Clock
	node  NodeID
	size  int

	active atomic.Int32 // number of traced entities: 0 skips everything

	mu      sync.Mutex
	enabled map[traceKey]bool // guarded by mu
	ring    []traceRec        // guarded by mu
	next    int               // guarded by mu: where the next event goes
}

type traceKey struct{ tenant, name string }

type traceRec struct {
	tenant, id string
	ev         TraceEvent
}

func newTraceStore(size int) *traceStore {
	return &traceStore{size: size, enabled: map[traceKey]bool{}}
}

// SetTrace turns the recording of message timelines on or off for an
// exchange, queue or stream of tenant, on this node. At most
// BrokerTracedEntitiesMax entities are traced at once.
func (b *Broker) SetTrace(tenant, name string, on bool) error {
	t := b.trace
	t.mu.Lock()
	defer t.mu.Unlock()
	k := traceKey{tenant, name}
	switch {
	case on && !t.enabled[k]:
		if len(t.enabled) >= base.BrokerTracedEntitiesMax {
			return base.Errorf(base.CodeOverloaded, "broker: %d entities are traced, the most at once", base.BrokerTracedEntitiesMax)
		}
		t.enabled[k] = true
	case !on:
		delete(t.enabled, k)
	}
	t.active.Store(int32(len(t.enabled)))
	return nil
}

// traced reports whether any of names is traced in tenant.
func (t *traceStore) traced(tenant string, names ...string) bool {
	if t.active.Load() == 0 {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, n := range names {
		if n != "" && t.enabled[traceKey{tenant, n}] {
			return true
		}
	}
	return false
}

// record appends an event of message id when its exchange or queue is
// traced. Messages without an id cannot be looked up and are not
// recorded.
func (t *traceStore) record(tenant, id string, ev TraceEvent) {
	if id == "" || t.active.Load() == 0 || !t.traced(tenant, ev.Exchange, ev.Queue) {
		return
	}
	t.add(tenant, id, ev)
}

func (t *traceStore) add(tenant, id string, ev TraceEvent) {
	if ev.Time.IsZero() && t.clock != nil {
		ev.Time = t.clock.Now()
	}
	ev.Node = t.node
	t.mu.Lock()
	defer t.mu.Unlock()
	r := traceRec{tenant: tenant, id: id, ev: ev}
	if len(t.ring) < t.size {
		t.ring = append(t.ring, r)
	} else {
		t.ring[t.next] = r
	}
	t.next = (t.next + 1) % t.size
}

// Trace returns the recorded timeline of a message, oldest first: the
// events this node saw, as long as they are among its last TraceEvents.
func (b *Broker) Trace(tenant, messageID string) ([]TraceEvent, error) {
	t := b.trace
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []TraceEvent
	n := len(t.ring)
	start := 0
	if n == t.size {
		start = t.next
	}
	for i := range n {
		r := &t.ring[(start+i)%n]
		if r.id == messageID && r.tenant == tenant {
			out = append(out, r.ev)
		}
	}
	slices.SortStableFunc(out, func(a, b TraceEvent) int { return a.Time.Compare(b.Time) })
	return out, nil
}

// traceEnqueued records the outcome of every message of an applied batch
// (called by Apply on the leader).
func (ql *queueLeader) traceEnqueued(cb *cachedBatch, outcomes []queue.Outcome) {
	t := ql.b.trace
	if !t.traced(ql.fsm.tenant, ql.fsm.name) {
		return
	}
	for i := range cb.records {
		id := messageIDOf(&cb.records[i])
		kind := TraceEnqueued
		if i < len(outcomes) {
			switch outcomes[i] {
			case queue.OutcomeDuplicate:
				kind = TraceDeduplicated
			case queue.OutcomeRejected, queue.OutcomeDeadLettered:
				kind = TraceRejected
			}
		}
		t.add(ql.fsm.tenant, id, TraceEvent{Kind: kind, Queue: ql.fsm.name})
	}
}

// traceRef records an event of the message at ref when the queue is
// traced.
func (ql *queueLeader) traceRef(ref queue.Ref, what, reason string) {
	t := ql.b.trace
	if !t.traced(ql.fsm.tenant, ql.fsm.name) {
		return
	}
	m, err := ql.readMessage(ref)
	if err != nil || m.MessageID == "" {
		return
	}
	kind := TraceDropped
	if reason == queue.ReasonExpired.String() {
		t.add(ql.fsm.tenant, m.MessageID, TraceEvent{Kind: TraceExpired, Queue: ql.fsm.name})
	}
	_ = what
	t.add(ql.fsm.tenant, m.MessageID, TraceEvent{Kind: kind, Queue: ql.fsm.name, Reason: reason})
}

func messageIDOf(r *batch.Record) string {
	it := r.Headers()
	for k, v, _, ok := it.Next(); ok; k, v, _, ok = it.Next() {
		if string(k) == hdrMessageID {
			return string(v)
		}
	}
	return ""
}

package amqp

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"sort"
	"sync"
	"testing"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/proto/amqp/codec"
	"github.com/ferry-mq/ferry/internal/routing"
)

// fakeBroker is a TEST DOUBLE of the broker: an in-memory, single-node,
// non-durable implementation of Backend, just faithful enough to exercise
// the front end's protocol handling with real clients while
// internal/broker is being built. Routing is the real internal/routing
// table; queues are plain FIFOs with round-robin consumers, prefetch,
// acks and requeues. Every callback (deliveries, publish outcomes,
// cancellations) runs on one event goroutine, in order, never under mu.
type fakeBroker struct {
	mu       sync.Mutex
	users    map[string]string // guarded by mu: user → password
	vhosts   map[string]bool   // guarded by mu
	table    *routing.Table    // guarded by mu: the "/" vhost
	queues   map[string]*fakeQueue
	sessions map[*fakeSession]bool // guarded by mu
	nameSeq  int                   // guarded by mu
	blocked  bool                  // guarded by mu
	reason   string                // guarded by mu
	flowCh   chan struct{}         // guarded by mu: closed at the next flow change
	// rejectPublish, when set, makes every publish Rejected (a nack).
	rejectPublish bool // guarded by mu
	// holdPublish, when set, keeps publish outcomes until released.
	holdPublish bool     // guarded by mu
	held        []func() // guarded by mu
	// declareErr, when set, is what every non-passive DeclareQueue
	// returns: a broker failure a test wants to see mapped to a reply.
	declareErr error // guarded by mu
	// maxBatch is the most messages one PublishAsync call carried.
	maxBatch int // guarded by mu
	// subs records every subscription, for tests that inspect them.
	subs []*fakeSub // guarded by mu

	evMu   sync.Mutex
	evCond sync.Cond
	events []func() // guarded by evMu
	stop   bool     // guarded by evMu
	done   chan struct{}
}

type fakeQueue struct {
	name                           string
	durable, exclusive, autoDelete bool
	owner                          *fakeSession
	ready                          []*fakeMsg
	subs                           []*fakeSub
	rr                             int
	hadConsumer                    bool
	unackedGets                    int
	exclusiveConsumer              *fakeSub
}

type fakeMsg struct {
	m           Message
	redelivered bool
}

func newFakeBroker(t testing.TB) *fakeBroker {
	b := &fakeBroker{users: map[string]string{"guest": "guest", "alice": "secret"}, vhosts: map[string]bool{"/": true},
		table: routing.NewTable("/"), queues: map[string]*fakeQueue{}, sessions: map[*fakeSession]bool{},
		flowCh: make(chan struct{}), done: make(chan struct{})}
	b.evCond.L = &b.evMu
	go b.runEvents()
	t.Cleanup(b.close)
	return b
}

func (b *fakeBroker) runEvents() {
	defer close(b.done)
	for {
		b.evMu.Lock()
		for len(b.events) == 0 && !b.stop {
			b.evCond.Wait()
		}
		if len(b.events) == 0 {
			b.evMu.Unlock()
			return
		}
		ev := b.events[0]
		b.events = b.events[1:]
		b.evMu.Unlock()
		ev()
	}
}

// post queues a callback for the event goroutine.
func (b *fakeBroker) post(f func()) {
	b.evMu.Lock()
	b.events = append(b.events, f)
	b.evCond.Signal()
	b.evMu.Unlock()
}

func (b *fakeBroker) close() {
	b.evMu.Lock()
	b.stop = true
	b.evCond.Signal()
	b.evMu.Unlock()
	<-b.done
}

func (b *fakeBroker) setBlocked(blocked bool, reason string) {
	b.mu.Lock()
	b.blocked, b.reason = blocked, reason
	close(b.flowCh)
	b.flowCh = make(chan struct{})
	b.mu.Unlock()
}

func (b *fakeBroker) releaseHeld() {
	b.mu.Lock()
	held := b.held
	b.held, b.holdPublish = nil, false
	b.mu.Unlock()
	for _, f := range held {
		b.post(f)
	}
}

func (b *fakeBroker) Authenticate(user, password string, peer netip.Addr) (Principal, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if pw, ok := b.users[user]; !ok || pw != password || (user == "guest" && !peer.IsLoopback()) {
		return Principal{}, base.Errorf(base.CodeUnauthenticated, "bad credentials for %s", user)
	}
	return Principal{User: user}, nil
}

func (b *fakeBroker) OpenConnection(info ConnInfo, p Principal, kill func(string)) (Session, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.vhosts[info.Tenant] {
		return nil, base.Errorf(base.CodeNotFound, "no vhost '%s'", info.Tenant)
	}
	if p.User == "alice" && info.Tenant != "/" {
		return nil, base.Errorf(base.CodeAccessRefused, "refused")
	}
	s := &fakeSession{b: b, info: info, kill: kill, subs: map[*fakeSub]bool{}}
	b.sessions[s] = true
	return s, nil
}

func (b *fakeBroker) FlowState() (bool, string, <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.blocked, b.reason, b.flowCh
}

// killAll closes every connection from the "management" side.
func (b *fakeBroker) killAll(reason string) {
	b.mu.Lock()
	var kills []func(string)
	for s := range b.sessions {
		kills = append(kills, s.kill)
	}
	b.mu.Unlock()
	for _, k := range kills {
		k(reason)
	}
}

func (b *fakeBroker) sessionCount() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.sessions)
}

// queueDepth returns a queue's ready messages and whether it exists.
func (b *fakeBroker) queueDepth(name string) (int, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	q := b.queues[name]
	if q == nil {
		return 0, false
	}
	return len(q.ready), true
}

type fakeSession struct {
	b      *fakeBroker
	info   ConnInfo
	kill   func(string)
	subs   map[*fakeSub]bool // guarded by b.mu
	closed bool              // guarded by b.mu
}

type fakeSub struct {
	s         *fakeSession
	q         *fakeQueue
	opts      SubscribeOptions
	deliver   func(Delivery)
	cancelled func(error)
	nextID    uint64
	unacked   map[uint64]*fakeMsg // guarded by b.mu
	prefetch  uint32              // guarded by b.mu
	gone      bool                // guarded by b.mu: cancelled; settles still apply
}

func (s *fakeSession) Authorize(action Action, kind EntityKind, name string) error {
	if s.info.User == "alice" && name == "forbidden" {
		return base.Errorf(base.CodeAccessRefused, "access to %s '%s' in vhost '/' refused for user 'alice'", kindName(kind), name)
	}
	return nil
}

func kindName(k EntityKind) string {
	if k == EntityExchange {
		return "exchange"
	}
	return "queue"
}

func toFields(t codec.Table) []routing.Field {
	keys := make([]string, 0, len(t))
	for k := range t {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []routing.Field
	for _, k := range keys {
		var v routing.Value
		switch x := t[k].(type) {
		case string:
			v = routing.StringValue(x)
		case bool:
			v = routing.BoolValue(x)
		case []byte:
			v = routing.BytesValue(x)
		default:
			if n, ok := intArg(x); ok {
				v = routing.IntValue(n)
			} else {
				continue
			}
		}
		out = append(out, routing.Field{Key: k, Value: v})
	}
	return out
}

func (s *fakeSession) DeclareExchange(_ context.Context, e ExchangeSpec) error {
	b := s.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if e.Passive {
		if _, ok := b.table.Exchange(e.Name); !ok {
			return base.Errorf(base.CodeNotFound, "no exchange '%s' in vhost '/'", e.Name)
		}
		return nil
	}
	typ, err := routing.ParseExchangeType(e.Type)
	if err != nil {
		return err
	}
	_, err = b.table.DeclareExchange(routing.Exchange{Name: e.Name, Type: typ, Durable: e.Durable,
		AutoDelete: e.AutoDelete, Internal: e.Internal, Args: toFields(e.Arguments)})
	return err
}

func (s *fakeSession) DeleteExchange(_ context.Context, name string, ifUnused bool) error {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	_, err := s.b.table.DeleteExchange(name, ifUnused)
	return err
}

func (s *fakeSession) DeclareQueue(_ context.Context, spec QueueSpec) (QueueInfo, error) {
	b := s.b
	b.mu.Lock()
	defer b.mu.Unlock()
	q := b.queues[spec.Name]
	if spec.Passive {
		if q == nil {
			return QueueInfo{}, base.Errorf(base.CodeNotFound, "no queue '%s' in vhost '/'", spec.Name)
		}
		return q.infoLocked(), nil
	}
	if b.declareErr != nil {
		return QueueInfo{}, b.declareErr
	}
	if q != nil {
		if q.exclusive && q.owner != s {
			return QueueInfo{}, base.Errorf(base.CodeResourceLocked, "cannot obtain exclusive access to locked queue '%s' in vhost '/'", q.name)
		}
		if q.durable != spec.Durable {
			return QueueInfo{}, base.Errorf(base.CodePreconditionFailed,
				"inequivalent arg 'durable' for queue '%s' in vhost '/': received '%v' but current is '%v'", q.name, spec.Durable, q.durable)
		}
		return q.infoLocked(), nil
	}
	name := spec.Name
	if name == "" {
		b.nameSeq++
		name = fmt.Sprintf("amq.gen-%d", b.nameSeq)
	} else if len(name) >= 4 && name[:4] == "amq." {
		return QueueInfo{}, base.Errorf(base.CodeAccessRefused, "queue name '%s' contains reserved prefix 'amq.*'", name)
	}
	if v, ok := spec.Arguments["x-max-length"]; ok {
		if n, ok := intArg(v); !ok || n < 0 {
			return QueueInfo{}, base.Errorf(base.CodeInvalidArgument, "invalid arg 'x-max-length' for queue '%s' in vhost '/'", name)
		}
	}
	q = &fakeQueue{name: name, durable: spec.Durable, exclusive: spec.Exclusive, autoDelete: spec.AutoDelete}
	if spec.Exclusive {
		q.owner = s
	}
	b.queues[name] = q
	if _, err := b.table.AddDestination(routing.Destination{Kind: routing.Queue, Name: name}); err != nil {
		return QueueInfo{}, err
	}
	return q.infoLocked(), nil
}

func (q *fakeQueue) infoLocked() QueueInfo {
	return QueueInfo{Name: q.name, Messages: uint64(len(q.ready)), Consumers: uint64(len(q.subs))}
}

func (b *fakeBroker) queueLocked(s *fakeSession, name string) (*fakeQueue, error) {
	q := b.queues[name]
	if q == nil {
		return nil, base.Errorf(base.CodeNotFound, "no queue '%s' in vhost '/'", name)
	}
	if q.exclusive && q.owner != s {
		return nil, base.Errorf(base.CodeResourceLocked, "cannot obtain exclusive access to locked queue '%s' in vhost '/'", name)
	}
	return q, nil
}

func (s *fakeSession) DeleteQueue(_ context.Context, name string, ifUnused, ifEmpty bool) (uint64, error) {
	b := s.b
	b.mu.Lock()
	q := b.queues[name]
	if q == nil {
		b.mu.Unlock()
		return 0, nil // deleting a missing queue succeeds, as in RabbitMQ
	}
	switch {
	case ifUnused && len(q.subs) > 0:
		b.mu.Unlock()
		return 0, base.Errorf(base.CodeConflict, "queue '%s' in vhost '/' in use", name)
	case ifEmpty && len(q.ready) > 0:
		b.mu.Unlock()
		return 0, base.Errorf(base.CodeConflict, "queue '%s' in vhost '/' not empty", name)
	}
	n := b.deleteQueueLocked(q)
	b.mu.Unlock()
	return n, nil
}

func (b *fakeBroker) deleteQueueLocked(q *fakeQueue) uint64 {
	n := uint64(len(q.ready))
	delete(b.queues, q.name)
	_, _ = b.table.RemoveDestination(routing.Destination{Kind: routing.Queue, Name: q.name})
	for _, sub := range q.subs {
		sub.gone = true
		cancelled := sub.cancelled
		b.post(func() { cancelled(base.Errorf(base.CodeNotFound, "queue '%s' deleted", q.name)) })
	}
	q.subs = nil
	return n
}

func (s *fakeSession) PurgeQueue(_ context.Context, name string) (uint64, error) {
	b := s.b
	b.mu.Lock()
	defer b.mu.Unlock()
	q, err := b.queueLocked(s, name)
	if err != nil {
		return 0, err
	}
	n := uint64(len(q.ready))
	q.ready = nil
	return n, nil
}

func (s *fakeSession) binding(spec BindingSpec) routing.Binding {
	kind := routing.Queue
	if spec.DestinationKind == EntityExchange {
		kind = routing.ToExchange
	}
	return routing.Binding{Source: spec.Source, Destination: routing.Destination{Kind: kind, Name: spec.Destination},
		Key: spec.RoutingKey, Args: toFields(spec.Arguments)}
}

func (s *fakeSession) Bind(_ context.Context, spec BindingSpec) error {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	if spec.DestinationKind == EntityQueue {
		if _, err := s.b.queueLocked(s, spec.Destination); err != nil {
			return err
		}
	}
	_, err := s.b.table.Bind(s.binding(spec))
	return err
}

func (s *fakeSession) Unbind(_ context.Context, spec BindingSpec) error {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	_, err := s.b.table.Unbind(s.binding(spec))
	return err
}

func (s *fakeSession) PublishAsync(exchange string, msgs []Message, opts PublishOptions, done func([]PublishResult, error)) {
	b := s.b
	b.mu.Lock()
	b.maxBatch = max(b.maxBatch, len(msgs))
	res := make([]PublishResult, len(msgs))
	var rr routing.Result
	for i := range msgs {
		m := &msgs[i]
		if b.rejectPublish {
			res[i].Rejected = true
			continue
		}
		if err := b.table.Route(&rr, exchange, m.RoutingKey, toFields(m.Properties.Headers)); err != nil {
			res[i].Err = err
			continue
		}
		res[i].Unroutable = rr.Unroutable
		for _, d := range rr.Destinations {
			if q := b.queues[d.Name]; q != nil {
				// A copy: the front end recycles the bytes after done.
				kept := *m
				kept.RawProperties, kept.Body = bytes.Clone(m.RawProperties), bytes.Clone(m.Body)
				q.ready = append(q.ready, &fakeMsg{m: kept})
				b.dispatchLocked(q)
			}
		}
	}
	finish := func() { done(res, nil) }
	if b.holdPublish {
		b.held = append(b.held, finish)
		b.mu.Unlock()
		return
	}
	b.mu.Unlock()
	b.post(finish)
}

// dispatchLocked hands ready messages to consumers with room, highest
// priority first, round robin among equals.
func (b *fakeBroker) dispatchLocked(q *fakeQueue) {
	for len(q.ready) > 0 {
		sub := q.pickLocked()
		if sub == nil {
			return
		}
		fm := q.ready[0]
		q.ready = q.ready[1:]
		sub.nextID++
		id := sub.nextID
		if !sub.opts.NoAck {
			sub.unacked[id] = fm
		}
		d := Delivery{ID: id, Redelivered: fm.redelivered, Exchange: fm.m.Exchange, RoutingKey: fm.m.RoutingKey,
			Properties: fm.m.Properties, RawProperties: fm.m.RawProperties, Body: fm.m.Body}
		deliver := sub.deliver
		b.post(func() { deliver(d) })
	}
}

func (q *fakeQueue) pickLocked() *fakeSub {
	if q.exclusiveConsumer != nil {
		if q.exclusiveConsumer.hasRoomLocked() {
			return q.exclusiveConsumer
		}
		return nil
	}
	best := int32(-1 << 31)
	for _, s := range q.subs {
		if s.hasRoomLocked() && s.opts.Priority > best {
			best = s.opts.Priority
		}
	}
	for i := range q.subs {
		s := q.subs[(q.rr+i)%len(q.subs)]
		if s.hasRoomLocked() && s.opts.Priority == best {
			q.rr = (q.rr + i + 1) % len(q.subs)
			return s
		}
	}
	return nil
}

func (s *fakeSub) hasRoomLocked() bool {
	return !s.gone && (s.opts.NoAck || uint32(len(s.unacked)) < s.prefetch)
}

func (s *fakeSession) Subscribe(_ context.Context, o SubscribeOptions, deliver func(Delivery), cancelled func(error)) (Subscription, error) {
	b := s.b
	b.mu.Lock()
	defer b.mu.Unlock()
	q, err := b.queueLocked(s, o.Queue)
	if err != nil {
		return nil, err
	}
	if q.exclusiveConsumer != nil || (o.Exclusive && len(q.subs) > 0) {
		return nil, base.Errorf(base.CodeAccessRefused, "queue '%s' in vhost '/' in exclusive use", q.name)
	}
	if o.PrefetchCount == 0 {
		return nil, base.Errorf(base.CodeInternal, "BUG in the front end: prefetch 0 reached the broker")
	}
	sub := &fakeSub{s: s, q: q, opts: o, deliver: deliver, cancelled: cancelled, unacked: map[uint64]*fakeMsg{}, prefetch: o.PrefetchCount}
	q.subs = append(q.subs, sub)
	q.hadConsumer = true
	if o.Exclusive {
		q.exclusiveConsumer = sub
	}
	s.subs[sub] = true
	b.subs = append(b.subs, sub)
	b.dispatchLocked(q)
	return sub, nil
}

func (sub *fakeSub) Cancel(context.Context) error {
	b := sub.s.b
	b.mu.Lock()
	defer b.mu.Unlock()
	b.removeSubLocked(sub)
	return nil
}

func (b *fakeBroker) removeSubLocked(sub *fakeSub) {
	if sub.gone {
		return
	}
	sub.gone = true
	q := sub.q
	for i, s := range q.subs {
		if s == sub {
			q.subs = append(q.subs[:i], q.subs[i+1:]...)
			break
		}
	}
	if q.exclusiveConsumer == sub {
		q.exclusiveConsumer = nil
	}
	if q.autoDelete && q.hadConsumer && len(q.subs) == 0 && b.queues[q.name] == q {
		b.deleteQueueLocked(q)
	}
}

func (sub *fakeSub) settleLocked(id uint64, multiple bool, f func(*fakeMsg)) {
	var ids []uint64
	for k := range sub.unacked {
		if k == id || (multiple && k < id) {
			ids = append(ids, k)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, k := range ids {
		f(sub.unacked[k])
		delete(sub.unacked, k)
	}
}

func (sub *fakeSub) Ack(id uint64, multiple bool) {
	b := sub.s.b
	b.mu.Lock()
	defer b.mu.Unlock()
	sub.settleLocked(id, multiple, func(*fakeMsg) {})
	b.dispatchLocked(sub.q)
}

func (sub *fakeSub) Nack(id uint64, multiple, requeue bool) {
	b := sub.s.b
	b.mu.Lock()
	defer b.mu.Unlock()
	var back []*fakeMsg
	sub.settleLocked(id, multiple, func(m *fakeMsg) {
		if requeue {
			m.redelivered = true
			back = append(back, m)
		}
	})
	sub.q.ready = append(back, sub.q.ready...)
	if b.queues[sub.q.name] == sub.q {
		b.dispatchLocked(sub.q)
	}
}

func (sub *fakeSub) Stream() bool { return false } // the double has no streams

func (sub *fakeSub) SetPrefetch(_ context.Context, n uint32) error {
	b := sub.s.b
	b.mu.Lock()
	defer b.mu.Unlock()
	sub.prefetch = n
	b.dispatchLocked(sub.q)
	return nil
}

type fakeGet struct {
	s *fakeSession
	q *fakeQueue
	m *fakeMsg
}

func (g *fakeGet) Ack(context.Context) {}

func (g *fakeGet) Nack(_ context.Context, requeue bool) {
	if !requeue {
		return
	}
	b := g.s.b
	b.mu.Lock()
	defer b.mu.Unlock()
	g.m.redelivered = true
	g.q.ready = append([]*fakeMsg{g.m}, g.q.ready...)
	b.dispatchLocked(g.q)
}

func (s *fakeSession) Get(_ context.Context, queue string, autoAck bool) (Delivery, Settler, bool, error) {
	b := s.b
	b.mu.Lock()
	defer b.mu.Unlock()
	q, err := b.queueLocked(s, queue)
	if err != nil {
		return Delivery{}, nil, false, err
	}
	if len(q.ready) == 0 {
		return Delivery{}, nil, false, nil
	}
	fm := q.ready[0]
	q.ready = q.ready[1:]
	d := Delivery{Redelivered: fm.redelivered, Exchange: fm.m.Exchange, RoutingKey: fm.m.RoutingKey,
		Properties: fm.m.Properties, RawProperties: fm.m.RawProperties, Body: fm.m.Body, MessageCount: uint32(len(q.ready))}
	if autoAck {
		return d, nil, true, nil
	}
	return d, &fakeGet{s: s, q: q, m: fm}, true, nil
}

func (s *fakeSession) Close(context.Context) error {
	b := s.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	delete(b.sessions, s)
	for sub := range s.subs {
		var back []*fakeMsg
		for _, m := range sub.unacked {
			m.redelivered = true
			back = append(back, m)
		}
		sub.unacked = map[uint64]*fakeMsg{}
		sub.q.ready = append(back, sub.q.ready...)
		b.removeSubLocked(sub)
		if b.queues[sub.q.name] == sub.q {
			b.dispatchLocked(sub.q)
		}
	}
	for _, q := range b.queues {
		if q.exclusive && q.owner == s {
			b.deleteQueueLocked(q)
		}
	}
	return nil
}

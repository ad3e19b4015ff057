package broker

import (
	"context"
	"net"
	"strconv"
	"sync"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/queue"
)

// Consumer forwarding (DESIGN.md "Forwarding consumers"): a client
// connected to a node that does not lead its queue (the proxy) consumes
// through a consumer that lives on the leader's node, over the
// forwarding connection between the two:
//
//   - the proxy subscribes on the leader (opSubscribe) with a credit of at
//     most BrokerForwardCreditMax; the leader's consumer is an ordinary
//     manual-ack Subscription whose deliveries become opSubDeliver frames,
//     so at most the credit is ever in flight or queued at the proxy;
//   - acks, nacks and recovers flow back as one-way opSubSettle frames,
//     served in order on the leader's reader; an auto-ack consumer is a
//     manual-ack one on the leader, acknowledged by the proxy once the
//     delivery is handed to the client (credit-based: a slow client slows
//     the queue's deliveries to it, never grows a buffer);
//   - when the proxy forgets the consumer (client connection closed:
//     opSubClose) or the connection between the nodes breaks, the leader
//     cancels the consumer and returns its unacknowledged deliveries;
//   - when the leader cancels it (leadership moved, queue deleted), the
//     proxy's client gets the consumer-cancel notification (opSubEnd), as
//     RabbitMQ does for quorum queues: consumers are not re-attached.

// remoteSub is the proxy's side of a forwarded consumer: the deliveries
// received and not yet handed to the client, and the goroutine that hands
// them over (owned by the forwarder: it ends with the consumer and
// forwarder.stop waits for it).
type remoteSub struct {
	s   *Subscription
	cl  *fwdClient
	sid uint64
	g   GroupID

	mu    sync.Mutex
	queue []Delivery // guarded by mu: at most BrokerForwardCreditMax
	wake  chan struct{}
	stop  chan struct{} // closed by finish
	once  sync.Once
}

// forwardCredit is the prefetch a forwarded consumer runs with on the
// leader.
func forwardCredit(prefetch uint32) uint32 {
	if prefetch == 0 || prefetch > base.BrokerForwardCreditMax {
		return base.BrokerForwardCreditMax
	}
	return prefetch
}

// subscribeRemote subscribes through node lead, which leads group g.
func (c *Conn) subscribeRemote(ctx context.Context, lead NodeID, g GroupID, o SubscribeOptions,
	deliver func(Delivery), cancelled func(error)) (*Subscription, error) {
	cl, err := c.b.fwd.client(ctx, lead)
	if err != nil {
		return nil, err
	}
	s := &Subscription{c: c, opts: o, deliverFn: deliver, cancelFn: cancelled,
		id: queue.ConsumerID{Owner: c.owner, Name: o.Tag + "#" + strconv.FormatUint(c.subSeq.Add(1), 10)}}
	r := &remoteSub{s: s, cl: cl, g: g, wake: make(chan struct{}, 1), stop: make(chan struct{})}
	s.remote = r
	if err := c.addSub(s); err != nil {
		return nil, err
	}
	if err := cl.addRemote(r); err != nil {
		c.removeSub(s)
		return nil, err
	}
	c.touch(g)
	if !c.b.fwd.spawn(r.run) {
		r.finish()
		c.removeSub(s)
		return nil, base.Errorf(base.CodeStopped, "broker: node %d is stopping", c.b.node)
	}
	var w wireWriter
	w.uvarint(r.sid)
	w.uvarint(g)
	w.str(o.Queue)
	w.str(c.p.Tenant)
	w.str(s.id.Owner)
	w.str(s.id.Name)
	w.str(o.Tag)
	w.uvarint(uint64(forwardCredit(o.PrefetchCount)))
	w.uvarint(o.PrefetchBytes)
	w.varint(int64(o.Priority))
	w.bool(o.Exclusive)
	resp, err := cl.roundTrip(ctx, opSubscribe, w.b)
	if err == nil {
		err = decodeErrResp(resp)
	}
	if err != nil {
		r.forget() // the leader may have it: opSubClose returns what it got
		c.removeSub(s)
		return nil, err
	}
	return s, nil
}

// decodeErrResp decodes a response that is only an error.
func decodeErrResp(b []byte) error {
	r := wireReader{b: b}
	callErr := r.error()
	if err := r.done(); err != nil {
		return err
	}
	return callErr
}

// addRemote registers r under a new sid.
func (c *fwdClient) addRemote(r *remoteSub) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.err != nil:
		return c.err
	case len(c.subs) >= base.BrokerForwardConsumersMax:
		return base.Errorf(base.CodeOverloaded, "broker: %d consumers forwarded to node %d", base.BrokerForwardConsumersMax, c.node)
	}
	c.nextSid++
	r.sid = c.nextSid
	c.subs[r.sid] = r
	return nil
}

// send writes a one-way frame; a failed write closes the connection.
func (c *fwdClient) send(op byte, id uint64, payload []byte) {
	buf := appendFrame(nil, op, id, payload)
	c.wmu.Lock()
	_, err := c.conn.Write(buf)
	c.wmu.Unlock()
	if err != nil {
		c.close(base.Errorf(base.CodeUnavailable, "broker: writing to node %d: %w", c.node, err))
	}
}

// pushed serves a frame the leader sent unasked, on the reader. An error
// is a protocol violation: it closes the connection.
func (c *fwdClient) pushed(fr frame) error {
	c.mu.Lock()
	r := c.subs[fr.id]
	c.mu.Unlock()
	rd := wireReader{b: fr.payload}
	switch fr.typ {
	case opSubDeliver:
		d, err := decodeSubDeliver(fr.payload)
		if err != nil {
			return err
		}
		if r == nil {
			return nil // forgotten meanwhile: the leader returns it on opSubClose
		}
		d.Queue, d.ConsumerTag = r.s.opts.Queue, r.s.opts.Tag
		return r.push(d)
	case opSubEnd:
		err := rd.error()
		if derr := rd.done(); derr != nil {
			return derr
		}
		if r != nil {
			r.lost(err)
		}
	case opSubAckTimeout:
		id := rd.uvarint()
		if err := rd.done(); err != nil {
			return err
		}
		if r != nil {
			r.s.ackTimedOut(id)
		}
	default:
		return base.Errorf(base.CodeCorrupt, "broker: node %d sent an unknown frame type %d", c.node, fr.typ)
	}
	return nil
}

// decodeSubDeliver decodes an opSubDeliver payload (Queue and
// ConsumerTag are the caller's to fill in).
func decodeSubDeliver(b []byte) (Delivery, error) {
	rd := wireReader{b: b}
	d := Delivery{DeliveryID: rd.uvarint(), Redelivered: rd.bool(), DeliveryCount: uint32(rd.uvarint())}
	data := rd.bytes()
	if err := rd.done(); err != nil {
		return Delivery{}, err
	}
	m, err := decodeForwardedMessage(data)
	if err != nil {
		return Delivery{}, err
	}
	d.Message = m
	return d, nil
}

// subSettle is an opSubSettle payload.
type subSettle struct {
	kind     settleKind
	id       uint64
	multiple bool
	reason   string
}

func decodeSubSettle(b []byte) (subSettle, error) {
	rd := wireReader{b: b}
	st := subSettle{kind: settleKind(rd.u8()), id: rd.uvarint(), multiple: rd.bool(), reason: rd.str()}
	if err := rd.done(); err != nil {
		return subSettle{}, err
	}
	if st.kind < settleAck || st.kind > settleRecover || len(st.reason) > base.QueueFieldBytesMax {
		return subSettle{}, base.Errorf(base.CodeCorrupt, "broker: forwarded settlement of kind %d", st.kind)
	}
	return st, nil
}

// decodeSubscribeReq decodes an opSubscribe payload.
func decodeSubscribeReq(b []byte) (uint64, forwardedSubscribe, error) {
	rd := wireReader{b: b}
	sid := rd.uvarint()
	req := forwardedSubscribe{g: rd.uvarint(), queue: rd.str(), tenant: rd.str(),
		cons: queue.ConsumerID{Owner: rd.str(), Name: rd.str()}, tag: rd.str(), credit: uint32(min(rd.uvarint(), base.BrokerForwardCreditMax)),
		prefetchBytes: rd.uvarint(), priority: int32(rd.varint()), exclusive: rd.bool()}
	return sid, req, rd.done()
}

// push queues a delivery for the client. The leader never sends more
// than the credit unacknowledged, so a full queue is a protocol violation.
func (r *remoteSub) push(d Delivery) error {
	r.mu.Lock()
	full := len(r.queue) >= base.BrokerForwardCreditMax
	if !full {
		r.queue = append(r.queue, d)
	}
	r.mu.Unlock()
	if full {
		return base.Errorf(base.CodeCorrupt, "broker: node %d sent more than %d deliveries ahead", r.cl.node, base.BrokerForwardCreditMax)
	}
	kick(r.wake)
	return nil
}

// run hands the received deliveries to the client, in order. An
// auto-ack consumer's are acknowledged on the leader once handed over,
// one "up to" per run of deliveries.
func (r *remoteSub) run() {
	for {
		r.mu.Lock()
		batch := r.queue
		r.queue = nil
		r.mu.Unlock()
		for _, d := range batch {
			select {
			case <-r.stop:
				return // not handed over: the leader returns them
			default:
			}
			if r.s.opts.NoAck {
				r.s.deliverFn(d)
			} else {
				r.s.handle(d)
			}
		}
		if n := len(batch); n > 0 && r.s.opts.NoAck {
			r.settle(settleAck, "", batch[n-1].DeliveryID, true)
		}
		if len(batch) > 0 {
			continue
		}
		select {
		case <-r.wake:
		case <-r.stop:
			return
		}
	}
}

// settle sends a settlement to the leader's consumer, which checks and
// coalesces it as a local one.
func (r *remoteSub) settle(kind settleKind, reason string, id uint64, multiple bool) {
	var w wireWriter
	w.u8(byte(kind))
	w.uvarint(id)
	w.bool(multiple)
	w.str(reason)
	r.cl.send(opSubSettle, r.sid, w.b)
}

// call runs a request about this consumer on the leader.
func (r *remoteSub) call(ctx context.Context, op byte, extra func(*wireWriter)) error {
	var w wireWriter
	w.uvarint(r.sid)
	if extra != nil {
		extra(&w)
	}
	resp, err := r.cl.roundTrip(ctx, op, w.b)
	if err != nil {
		return err
	}
	return decodeErrResp(resp)
}

// finish stops the delivering goroutine and unregisters the consumer.
func (r *remoteSub) finish() {
	r.once.Do(func() { close(r.stop) })
	r.cl.mu.Lock()
	if r.cl.subs[r.sid] == r {
		delete(r.cl.subs, r.sid)
	}
	r.cl.mu.Unlock()
}

// forget tells the leader the consumer is gone (its client connection
// closed, or its Subscribe failed): the leader cancels it and returns its
// deliveries.
func (r *remoteSub) forget() {
	r.finish()
	r.cl.send(opSubClose, r.sid, nil)
}

// lost ends the consumer for the client: the leader cancelled it or the
// connection to the leader's node broke.
func (r *remoteSub) lost(reason error) {
	r.finish()
	r.s.end(reason)
}

// spawn runs f on a goroutine stop waits for; false once stopping.
func (f *forwarder) spawn(fn func()) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return false
	}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		fn()
	}()
	return true
}

// --- leader side ---------------------------------------------------------

// fwdSession is the leader's side of one forwarding connection: its
// writer and the consumers the peer forwards through it.
type fwdSession struct {
	f    *forwarder
	conn net.Conn
	wmu  sync.Mutex // serialises writes

	mu   sync.Mutex
	subs map[uint64]*servedSub // guarded by mu: by sid
}

// servedSub is a forwarded consumer on the leader; s is nil while its
// Subscribe runs.
type servedSub struct {
	s      *Subscription
	closed bool // the proxy forgot it while it was being subscribed
}

func newFwdSession(f *forwarder, conn net.Conn) *fwdSession {
	return &fwdSession{f: f, conn: conn, subs: map[uint64]*servedSub{}}
}

func (ss *fwdSession) write(buf []byte) {
	ss.wmu.Lock()
	_, err := ss.conn.Write(buf)
	ss.wmu.Unlock()
	if err != nil {
		ss.conn.Close() // the reader ends and closeAll cleans up
	}
}

// inline serves, on the reader, the frames whose order matters
// (settlements, forgetting) and reserves the sid of a Subscribe. It
// reports whether the frame was served.
func (ss *fwdSession) inline(fr frame) bool {
	switch fr.typ {
	case opSubSettle:
		st, err := decodeSubSettle(fr.payload)
		if err != nil {
			ss.conn.Close() // a protocol violation: the reader ends
			return true
		}
		if s := ss.sub(fr.id); s != nil {
			s.settleForwarded(st.kind, st.reason, st.id, st.multiple)
		}
		return true
	case opSubClose:
		ss.drop(fr.id)
		return true
	case opSubscribe:
		rd := wireReader{b: fr.payload}
		sid := rd.uvarint()
		ss.mu.Lock()
		if _, dup := ss.subs[sid]; !dup && rd.err == nil && len(ss.subs) < base.BrokerForwardConsumersMax {
			ss.subs[sid] = &servedSub{}
		}
		ss.mu.Unlock()
	}
	return false
}

func (ss *fwdSession) sub(sid uint64) *Subscription {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if e := ss.subs[sid]; e != nil {
		return e.s
	}
	return nil
}

// drop forgets a consumer: cancelled on the queue, its deliveries
// returned.
func (ss *fwdSession) drop(sid uint64) {
	ss.mu.Lock()
	e := ss.subs[sid]
	var s *Subscription
	if e != nil {
		s = e.s
		if s == nil {
			e.closed = true // still subscribing: serveSubscribe drops it
		} else {
			delete(ss.subs, sid)
		}
	}
	ss.mu.Unlock()
	if s != nil {
		s.abandon()
	}
}

// closeAll forgets every consumer of a connection that ended.
func (ss *fwdSession) closeAll() {
	ss.mu.Lock()
	subs := ss.subs
	ss.subs = map[uint64]*servedSub{}
	ss.mu.Unlock()
	for _, e := range subs {
		if e.s != nil {
			e.s.abandon()
		}
	}
}

// call serves a request about a forwarded consumer, on a handler
// goroutine.
func (ss *fwdSession) call(fr frame) error {
	rd := wireReader{b: fr.payload}
	sid := rd.uvarint()
	switch fr.typ {
	case opSubscribe:
		sid, req, err := decodeSubscribeReq(fr.payload)
		if err != nil {
			ss.drop(sid)
			return err
		}
		return ss.subscribe(sid, req)
	case opSubCancel:
		if err := rd.done(); err != nil {
			return err
		}
		if s := ss.sub(sid); s != nil {
			return s.Cancel(ss.f.ctx)
		}
		return nil
	case opSubPrefetch:
		credit, bytes := uint32(min(rd.uvarint(), base.BrokerForwardCreditMax)), rd.uvarint()
		if err := rd.done(); err != nil {
			return err
		}
		if s := ss.sub(sid); s != nil {
			return s.SetPrefetch(ss.f.ctx, max(credit, 1), bytes)
		}
		return nil
	}
	return base.Errorf(base.CodeNotSupported, "broker: unknown forwarded op %d", fr.typ)
}

// forwardedSubscribe is an opSubscribe request's fields.
type forwardedSubscribe struct {
	g                  GroupID
	queue, tenant, tag string
	cons               queue.ConsumerID
	credit             uint32
	prefetchBytes      uint64
	priority           int32
	exclusive          bool
}

// subscribe starts a forwarded consumer on this node, which must lead the
// queue: an ordinary manual-ack Subscription of a connection standing for
// the proxy's client, whose deliveries and cancellation are pushed to the
// proxy.
func (ss *fwdSession) subscribe(sid uint64, req forwardedSubscribe) error {
	b := ss.f.b
	ss.mu.Lock()
	e := ss.subs[sid]
	ss.mu.Unlock()
	if e == nil || e.s != nil {
		return base.Errorf(base.CodeOverloaded, "broker: consumer %d cannot be forwarded here (duplicate, or %d forwarded already)", sid, base.BrokerForwardConsumersMax)
	}
	ql := b.waitQueueLeader(ss.f.ctx, req.g)
	if ql == nil {
		ss.drop(sid)
		return base.Errorf(base.CodeNotLeader, "broker: node %d does not lead group %d: %w", b.node, req.g, leaderErr(req.g, b.otherLeader(req.g)))
	}
	pc := &Conn{b: b, info: ConnInfo{ID: "forwarded/" + strconv.FormatUint(sid, 10), Protocol: "forward"},
		p: Principal{Tenant: req.tenant}, owner: req.cons.Owner, subs: map[string]*Subscription{}, queues: map[GroupID]bool{}}
	o := SubscribeOptions{Queue: req.queue, Tag: req.tag, PrefetchCount: req.credit, PrefetchBytes: req.prefetchBytes,
		Priority: req.priority, Exclusive: req.exclusive}
	o.AckTimeout = func(id uint64) {
		var w wireWriter
		w.uvarint(id)
		ss.write(appendFrame(nil, opSubAckTimeout, sid, w.b))
	}
	deliver := func(d Delivery) { ss.pushDelivery(sid, d) }
	cancelled := func(err error) {
		ss.mu.Lock()
		delete(ss.subs, sid)
		ss.mu.Unlock()
		var w wireWriter
		w.err(err)
		ss.write(appendFrame(nil, opSubEnd, sid, w.b))
	}
	s := &Subscription{c: pc, ql: ql, opts: o, deliverFn: deliver, cancelFn: cancelled, id: req.cons}
	ss.mu.Lock()
	e.s = s
	ss.mu.Unlock()
	if err := pc.addSub(s); err != nil {
		ss.drop(sid)
		return err
	}
	if err := pc.subscribeOn(ss.f.ctx, ql, s, req.credit); err != nil {
		ss.mu.Lock()
		delete(ss.subs, sid)
		ss.mu.Unlock()
		return err
	}
	ss.mu.Lock()
	closed := e.closed
	if closed {
		delete(ss.subs, sid)
	}
	ss.mu.Unlock()
	if closed {
		s.abandon()
	}
	return nil
}

// pushDelivery sends a delivery to the proxy (from the queue's
// dispatcher). One that cannot be encoded stays unacknowledged and comes
// back when the consumer goes.
func (ss *fwdSession) pushDelivery(sid uint64, d Delivery) {
	data, err := encodeForwardedMessage(&d.Message)
	if err != nil {
		ss.f.b.log.Warn("encoding a forwarded delivery failed", "queue", d.Queue, "err", err)
		return
	}
	var w wireWriter
	w.uvarint(d.DeliveryID)
	w.bool(d.Redelivered)
	w.uvarint(uint64(d.DeliveryCount))
	w.bytes(data)
	ss.write(appendFrame(nil, opSubDeliver, sid, w.b))
}

// settleForwarded applies a settlement the proxy sent. The proxy checked
// it against the same deliveries; one this side refuses (an ack timeout
// took the delivery back meanwhile) is dropped, as a local one would be
// refused.
func (s *Subscription) settleForwarded(kind settleKind, reason string, id uint64, multiple bool) {
	if kind == settleRecover {
		s.Recover(true)
		return
	}
	_ = s.settle(kind, reason, id, multiple)
}

// abandon removes a forwarded consumer whose proxy is gone: the queue
// cancels it and returns its unacknowledged deliveries (Cancel, then
// Recover); nothing is told to the proxy.
func (s *Subscription) abandon() {
	s.mu.Lock()
	s.ended = true
	s.outstanding = nil
	s.mu.Unlock()
	s.ql.removeSub(s)
	now := s.c.b.nowMs()
	s.ql.proposeAsync(&queue.Cancel{Now: now, Consumer: s.id}, nil)
	s.ql.proposeAsync(&queue.Recover{Now: now, Consumer: s.id}, nil)
}

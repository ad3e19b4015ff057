package broker

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/queue"
	"github.com/ferry-mq/ferry/internal/replication"
	"github.com/ferry-mq/ferry/internal/storage/log/batch"
)

// forwarder carries calls to the node leading a group (DESIGN.md
// "Forwarding"): a client side with one connection per peer, dialled on
// first use, and a server side answering the peers' calls. Goroutines:
// the accept loop, per connection a reader (and per request being served
// one handler, at most BrokerForwardInFlightMax per connection); stop
// closes everything and waits for all of them.
type forwarder struct {
	b      *Broker
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	ln     net.Listener

	mu      sync.Mutex
	clients map[NodeID]*fwdClient // guarded by mu
	served  map[net.Conn]bool     // guarded by mu
	closed  bool                  // guarded by mu
}

func newForwarder(b *Broker) *forwarder {
	ctx, cancel := context.WithCancel(context.Background())
	return &forwarder{b: b, ctx: ctx, cancel: cancel, clients: map[NodeID]*fwdClient{}, served: map[net.Conn]bool{}}
}

// start listens when the cluster has other nodes.
func (f *forwarder) start() error {
	if len(f.b.cfg.Peers) < 2 {
		return nil
	}
	ln := f.b.cfg.ForwardListener
	if ln == nil {
		var err error
		if ln, err = f.b.listen("tcp", f.b.peer(f.b.node).ForwardAddr); err != nil {
			return base.Errorf(base.CodeUnavailable, "broker: listening for forwarded calls: %w", err)
		}
	}
	f.ln = ln
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		f.accept()
	}()
	return nil
}

func (f *forwarder) stop() {
	f.mu.Lock()
	f.closed = true
	clients := f.clients
	f.clients = map[NodeID]*fwdClient{}
	served := make([]net.Conn, 0, len(f.served))
	for c := range f.served {
		served = append(served, c)
	}
	f.mu.Unlock()
	f.cancel()
	if f.ln != nil {
		f.ln.Close()
	}
	for _, c := range clients {
		c.close(base.Errorf(base.CodeStopped, "broker: node %d is stopping", f.b.node))
	}
	for _, c := range served {
		c.Close()
	}
	f.wg.Wait()
}

func (f *forwarder) accept() {
	for {
		conn, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.mu.Lock()
		if f.closed {
			f.mu.Unlock()
			conn.Close()
			return
		}
		f.served[conn] = true
		f.mu.Unlock()
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			f.serve(conn)
			f.mu.Lock()
			delete(f.served, conn)
			f.mu.Unlock()
		}()
	}
}

// --- client side -------------------------------------------------------

// fwdClient is the connection to one peer. Calls are written under wmu;
// the reader matches responses to calls by id.
type fwdClient struct {
	f    *forwarder
	node NodeID
	conn net.Conn

	wmu sync.Mutex // serialises writes

	mu      sync.Mutex
	pending map[uint64]func(frame, error) // guarded by mu
	err     error                         // guarded by mu: set when the connection failed
	nextID  uint64                        // guarded by mu
	subs    map[uint64]*remoteSub         // guarded by mu: forwarded consumers, by sid
	nextSid uint64                        // guarded by mu
}

// client returns the connection to node, dialling it if needed.
func (f *forwarder) client(ctx context.Context, node NodeID) (*fwdClient, error) {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil, base.Errorf(base.CodeStopped, "broker: node %d is stopping", f.b.node)
	}
	if c := f.clients[node]; c != nil {
		f.mu.Unlock()
		return c, nil
	}
	f.mu.Unlock()
	addr := f.b.peer(node).ForwardAddr
	if addr == "" {
		return nil, base.Errorf(base.CodeUnavailable, "broker: no forwarding address for node %d", node)
	}
	dial := f.b.cfg.Dial
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	conn, err := dial(ctx, "tcp", addr)
	if err != nil {
		return nil, base.Errorf(base.CodeUnavailable, "broker: dialling node %d at %s: %w", node, addr, err)
	}
	c := &fwdClient{f: f, node: node, conn: conn, pending: map[uint64]func(frame, error){}, subs: map[uint64]*remoteSub{}}
	f.mu.Lock()
	if f.closed || f.clients[node] != nil {
		other := f.clients[node]
		f.mu.Unlock()
		conn.Close()
		if other == nil {
			return nil, base.Errorf(base.CodeStopped, "broker: node %d is stopping", f.b.node)
		}
		return other, nil
	}
	f.clients[node] = c
	f.mu.Unlock()
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		c.read()
	}()
	return c, nil
}

// peerDown closes the connection to node, which the replication transport
// found unresponsive: its calls in flight fail with CodeUnavailable and
// its forwarded consumers are cancelled, as when the connection breaks.
func (f *forwarder) peerDown(node NodeID) {
	f.mu.Lock()
	c := f.clients[node]
	f.mu.Unlock()
	if c != nil {
		c.close(base.Errorf(base.CodeUnavailable, "broker: node %d stopped answering the replication transport's heartbeats", node))
	}
}

// call sends a request; done gets the response frame or an error, exactly
// once, from the reader goroutine (or the caller's on a write failure).
func (c *fwdClient) call(op byte, payload []byte, done func(frame, error)) {
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		done(frame{}, err)
		return
	}
	if len(c.pending) >= base.BrokerForwardInFlightMax {
		c.mu.Unlock()
		done(frame{}, base.Errorf(base.CodeOverloaded, "broker: %d calls in flight to node %d", base.BrokerForwardInFlightMax, c.node))
		return
	}
	c.nextID++
	id := c.nextID
	c.pending[id] = done
	c.mu.Unlock()
	buf := appendFrame(nil, op, id, payload)
	c.wmu.Lock()
	_, err := c.conn.Write(buf)
	c.wmu.Unlock()
	if err != nil {
		c.close(base.Errorf(base.CodeUnavailable, "broker: writing to node %d: %w", c.node, err))
	}
}

func (c *fwdClient) read() {
	rd := bufio.NewReaderSize(c.conn, 64<<10)
	var hdr [frameHeaderBytes]byte
	for {
		fr, err := readFrame(rd, &hdr)
		if err != nil {
			c.close(base.Errorf(base.CodeUnavailable, "broker: connection to node %d: %w", c.node, err))
			return
		}
		if fr.typ&respFlag == 0 {
			if err := c.pushed(fr); err != nil {
				c.close(err)
				return
			}
			continue
		}
		c.mu.Lock()
		done := c.pending[fr.id]
		delete(c.pending, fr.id)
		c.mu.Unlock()
		if done != nil {
			done(fr, nil)
		}
	}
}

// close fails every pending call and forgets the connection, so the next
// call dials again.
func (c *fwdClient) close(err error) {
	c.mu.Lock()
	if c.err == nil {
		c.err = err
	}
	pending := c.pending
	c.pending = map[uint64]func(frame, error){}
	subs := c.subs
	c.subs = map[uint64]*remoteSub{}
	c.mu.Unlock()
	c.conn.Close()
	for _, r := range subs {
		r.lost(base.Errorf(base.CodeUnavailable, "broker: the connection to node %d, the leader of queue '%s', was lost; consume again: %w", c.node, r.s.opts.Queue, err))
	}
	c.f.mu.Lock()
	if c.f.clients[c.node] == c {
		delete(c.f.clients, c.node)
	}
	c.f.mu.Unlock()
	for _, done := range pending {
		done(frame{}, err)
	}
}

// roundTrip is call waiting for the response payload.
func (f *forwarder) roundTrip(ctx context.Context, node NodeID, op byte, payload []byte) ([]byte, error) {
	c, err := f.client(ctx, node)
	if err != nil {
		return nil, err
	}
	return c.roundTrip(ctx, op, payload)
}

// roundTrip is call waiting for the response payload, on this connection.
func (c *fwdClient) roundTrip(ctx context.Context, op byte, payload []byte) ([]byte, error) {
	node := c.node
	type out struct {
		fr  frame
		err error
	}
	ch := make(chan out, 1) // size one: the reader never blocks
	c.call(op, payload, func(fr frame, err error) { ch <- out{fr, err} })
	select {
	case o := <-ch:
		if o.err == nil && o.fr.typ != respFlag|op {
			o.err = base.Errorf(base.CodeCorrupt, "broker: node %d answered op %d with type %d", node, op, o.fr.typ)
		}
		return o.fr.payload, o.err
	case <-ctx.Done():
		return nil, base.Errorf(base.CodeTimeout, "broker: no answer from node %d: %w", node, ctx.Err())
	}
}

// proposeOutcome is what a proposal gave: the FSM's result value when it
// was proposed here (local), or its error and count when proposed through
// another node.
type proposeOutcome struct {
	index uint64
	local any
	err   error
	count int64
}

// propose replicates a command in group g through its leader: here, or
// forwarded to the leader's node, following the leader when it moves (up
// to BrokerForwardRetriesMax times). A command whose node failed after
// receiving it may be applied twice; every command the broker forwards
// is idempotent or refused the second time.
func (b *Broker) propose(ctx context.Context, g GroupID, payload []byte) (proposeOutcome, error) {
	target, err := b.leaderOf(ctx, g)
	if err != nil {
		return proposeOutcome{}, err
	}
	for attempt := 0; ; attempt++ {
		var out proposeOutcome
		var err error
		if target == b.node {
			if b.group(g) == nil {
				err = base.Errorf(base.CodeNotLeader, "broker: group %d is not open on node %d: %w", g, b.node, leaderErr(g, 0))
			} else {
				var res replication.Result
				if res, err = b.engine.Propose(ctx, g, payload); err == nil {
					return proposeOutcome{index: res.Index, local: res.Value}, nil
				}
			}
		} else if out, err = b.fwd.propose(ctx, target, g, payload); err == nil {
			return out, nil
		}
		if !retriableElsewhere(err) || attempt >= base.BrokerForwardRetriesMax || ctx.Err() != nil {
			return proposeOutcome{}, err
		}
		avoid := target
		if base.CodeOf(err) == base.CodeNotLeader && target == b.node {
			avoid = 0 // this node may lead again after the election
		}
		if target, err = b.nextLeader(ctx, g, avoid, err); err != nil {
			return proposeOutcome{}, err
		}
	}
}

func (f *forwarder) propose(ctx context.Context, node NodeID, g GroupID, payload []byte) (proposeOutcome, error) {
	var w wireWriter
	w.uvarint(g)
	w.bytes(payload)
	resp, err := f.roundTrip(ctx, node, opPropose, w.b)
	if err != nil {
		return proposeOutcome{}, err
	}
	out, callErr, err := decodeProposeResp(resp)
	if err != nil {
		return proposeOutcome{}, err
	}
	if callErr != nil {
		return proposeOutcome{}, callErr
	}
	return out, nil
}

// enqueue sends items to group g's leader, node lead, which appends them
// as it does local publishes; each item's done gets its outcome.
func (f *forwarder) enqueue(ctx context.Context, lead NodeID, g GroupID, items []*pubItem) {
	data, buf, err := buildTransientBatch(items, f.b.nowMs(), true, true)
	if err != nil {
		releaseBatch(buf)
		failAll(items, err)
		return
	}
	var w wireWriter
	w.uvarint(g)
	w.bytes(data) // a copy
	releaseBatch(buf)
	c, err := f.client(ctx, lead)
	if err != nil {
		failAll(items, err)
		return
	}
	c.call(opEnqueue, w.b, func(fr frame, err error) {
		if err == nil && fr.typ != respFlag|opEnqueue {
			err = base.Errorf(base.CodeCorrupt, "broker: node %d answered an enqueue with type %d", lead, fr.typ)
		}
		if err != nil {
			failAll(items, err)
			return
		}
		outcomes, callErr, err := decodeEnqueueResp(fr.payload)
		if err != nil {
			failAll(items, err)
			return
		}
		if callErr == nil && len(outcomes) != len(items) {
			callErr = base.Errorf(base.CodeCorrupt, "broker: %d outcomes for %d messages", len(outcomes), len(items))
		}
		if callErr != nil {
			failAll(items, callErr)
			return
		}
		for i, it := range items {
			it.settle(queue.Outcome(outcomes[i]), nil)
		}
	})
}

// get runs a basic.get on the leader's node, following the leader when
// it moves.
func (f *forwarder) get(ctx context.Context, g GroupID, cons queue.ConsumerID, autoAck bool) (getResult, error) {
	lead, err := f.b.leaderOf(ctx, g)
	if err != nil {
		return getResult{}, err
	}
	for attempt := 0; ; attempt++ {
		var res getResult
		if lead == f.b.node {
			if ql := f.b.waitQueueLeader(ctx, g); ql != nil {
				return ql.get(ctx, cons, autoAck)
			}
			err = base.Errorf(base.CodeNotLeader, "broker: node %d does not lead group %d: %w", f.b.node, g, leaderErr(g, 0))
		} else {
			var w wireWriter
			w.uvarint(g)
			w.str(cons.Owner)
			w.str(cons.Name)
			w.bool(autoAck)
			var resp []byte
			if resp, err = f.roundTrip(ctx, lead, opGet, w.b); err == nil {
				res, err = decodeGetResponse(resp)
			}
		}
		if err == nil || !retriableElsewhere(err) || attempt >= base.BrokerForwardRetriesMax {
			return res, err
		}
		if lead, err = f.b.nextLeader(ctx, g, lead, err); err != nil {
			return getResult{}, err
		}
	}
}

// readAt runs a read of group g on a node holding a replica of it, once
// the group has a known leader: local when this node has one, else op
// with payload sent to the group's leader, whose response decode reads;
// either follows the leader when it moves (up to BrokerForwardRetriesMax
// times). The replica reads after a read through the group, so it sees
// every write acknowledged before the call.
func (f *forwarder) readAt(ctx context.Context, g GroupID, op byte, payload []byte, local func() error, decode func([]byte) error) error {
	lead, err := f.b.leaderOf(ctx, g)
	if err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		if lead == f.b.node || f.b.group(g) != nil {
			err = local()
		} else {
			var resp []byte
			if resp, err = f.roundTrip(ctx, lead, op, payload); err == nil {
				err = decode(resp)
			}
		}
		if err == nil || !retriableElsewhere(err) || attempt >= base.BrokerForwardRetriesMax {
			return err
		}
		if lead, err = f.b.nextLeader(ctx, g, lead, err); err != nil {
			return err
		}
	}
}

// fetchOffset reads consumer group's committed offset on partition group
// g where a replica of it is (readAt).
func (f *forwarder) fetchOffset(ctx context.Context, g GroupID, group string) (off CommittedOffset, found bool, err error) {
	var w wireWriter
	w.uvarint(g)
	w.str(group)
	err = f.readAt(ctx, g, opOffset, w.b,
		func() (err error) { off, found, err = f.b.localCommittedOffset(ctx, g, group); return err },
		func(resp []byte) (err error) { off, found, err = decodeOffsetResponse(resp); return err })
	return off, found, err
}

// queueCounts reads queue group g's ready messages and consumers where a
// replica of it is (readAt).
func (f *forwarder) queueCounts(ctx context.Context, g GroupID) (counts queueCounts, err error) {
	var w wireWriter
	w.uvarint(g)
	err = f.readAt(ctx, g, opQueueCounts, w.b,
		func() (err error) { counts, err = f.b.localQueueCounts(ctx, g); return err },
		func(resp []byte) (err error) { counts, err = decodeQueueCountsResponse(resp); return err })
	return counts, err
}

func decodeQueueCountsResponse(resp []byte) (queueCounts, error) {
	r := wireReader{b: resp}
	callErr := r.error()
	c := queueCounts{ready: r.uvarint(), consumers: r.uvarint()}
	if err := r.done(); err != nil {
		return queueCounts{}, err
	}
	if callErr != nil {
		return queueCounts{}, callErr
	}
	return c, nil
}

func decodeOffsetResponse(resp []byte) (CommittedOffset, bool, error) {
	r := wireReader{b: resp}
	callErr := r.error()
	found := r.bool()
	off := CommittedOffset{Offset: r.varint(), LeaderEpoch: int32(r.varint()), Metadata: r.str(),
		CommitTime: time.UnixMilli(r.varint())}
	if err := r.done(); err != nil {
		return CommittedOffset{}, false, err
	}
	if callErr != nil || !found {
		return CommittedOffset{}, false, callErr
	}
	return off, true, nil
}

func decodeGetResponse(resp []byte) (getResult, error) {
	r := wireReader{b: resp}
	callErr := r.error()
	res := getResult{found: r.bool(), id: r.uvarint(), redelivered: r.bool(), count: uint32(r.uvarint()), left: uint32(r.uvarint())}
	data := r.bytes()
	if err := r.done(); err != nil {
		return getResult{}, err
	}
	if callErr != nil || !res.found {
		return getResult{}, callErr
	}
	m, err := decodeForwardedMessage(data)
	if err != nil {
		return getResult{}, err
	}
	res.msg = m
	return res, nil
}

// --- server side -------------------------------------------------------

// serve answers one peer connection's calls, each on its own goroutine
// (at most BrokerForwardInFlightMax at a time: the reader waits for a
// slot, which is TCP backpressure on the caller).
func (f *forwarder) serve(conn net.Conn) {
	defer conn.Close()
	rd := bufio.NewReaderSize(conn, 64<<10)
	var hdr [frameHeaderBytes]byte
	sess := newFwdSession(f, conn)
	slots := make(chan struct{}, base.BrokerForwardInFlightMax) // a semaphore of in-flight handlers
	var wg sync.WaitGroup
	defer sess.closeAll() // after wg.Wait (deferred later, runs first): no handler adds a consumer then
	defer wg.Wait()
	for {
		fr, err := readFrame(rd, &hdr)
		if err != nil {
			if !errors.Is(err, io.EOF) && f.ctx.Err() == nil {
				f.b.log.Debug("forwarded connection ended", "err", err)
			}
			return
		}
		if sess.inline(fr) {
			continue
		}
		select {
		case slots <- struct{}{}:
		case <-f.ctx.Done():
			return
		}
		respond := func() []byte { return f.handle(sess, fr) }
		if fr.typ == opEnqueue {
			// Admitted here, on the connection's reader, in frame order:
			// the batches one channel published keep their order in the
			// queue (AMQP's per-channel order). Only the wait for their
			// outcomes runs apart.
			respond = f.admitEnqueue(fr.payload)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			sess.write(appendFrame(nil, respFlag|fr.typ, fr.id, respond()))
		}()
	}
}

// The requests' fields, decoded.
type proposeReq struct {
	g       GroupID
	payload []byte
}

type enqueueReq struct {
	g    GroupID
	data []byte
}

type getReq struct {
	g       GroupID
	cons    queue.ConsumerID
	autoAck bool
}

func decodeProposeReq(b []byte) (proposeReq, error) {
	r := wireReader{b: b}
	q := proposeReq{g: r.uvarint(), payload: r.bytes()}
	return q, r.done()
}

func decodeEnqueueReq(b []byte) (enqueueReq, error) {
	r := wireReader{b: b}
	q := enqueueReq{g: r.uvarint(), data: r.bytes()}
	return q, r.done()
}

// decodeNumberReq decodes a request that is one unsigned number: a
// group (opQueueCounts) or a log index (opCtrlApplied).
func decodeNumberReq(b []byte) (uint64, error) {
	r := wireReader{b: b}
	n := r.uvarint()
	return n, r.done()
}

type offsetReq struct {
	g     GroupID
	group string
}

func decodeOffsetReq(b []byte) (offsetReq, error) {
	r := wireReader{b: b}
	q := offsetReq{g: r.uvarint(), group: r.str()}
	return q, r.done()
}

func decodeGetReq(b []byte) (getReq, error) {
	r := wireReader{b: b}
	q := getReq{g: r.uvarint(), cons: queue.ConsumerID{Owner: r.str(), Name: r.str()}, autoAck: r.bool()}
	return q, r.done()
}

// decodeProposeResp returns a proposal's outcome, the call's error (from
// the leader's node) and a decoding error.
func decodeProposeResp(b []byte) (proposeOutcome, error, error) {
	r := wireReader{b: b}
	callErr := r.error()
	out := proposeOutcome{index: r.uvarint(), err: r.error(), count: r.varint()}
	return out, callErr, r.done()
}

func decodeEnqueueResp(b []byte) ([]byte, error, error) {
	r := wireReader{b: b}
	callErr := r.error()
	outcomes := r.bytes()
	return outcomes, callErr, r.done()
}

// handle serves one request and returns the response payload.
func (f *forwarder) handle(sess *fwdSession, fr frame) []byte {
	var w wireWriter
	switch fr.typ {
	case opSubscribe, opSubCancel, opSubPrefetch:
		w.err(sess.call(fr))
	case opPropose:
		req, err := decodeProposeReq(fr.payload)
		if err != nil {
			w.err(err)
			w.uvarint(0)
			w.err(nil)
			w.varint(0)
			return w.b
		}
		f.serveProposal(&w, req.g, req.payload)
	case opGet:
		req, err := decodeGetReq(fr.payload)
		f.serveGet(&w, err, req.g, req.cons, req.autoAck)
	case opOffset:
		req, err := decodeOffsetReq(fr.payload)
		var off CommittedOffset
		var found bool
		if err == nil {
			f.awaitReplica(req.g)
			off, found, err = f.b.localCommittedOffset(f.ctx, req.g, req.group)
		}
		w.err(err)
		w.bool(found)
		w.varint(off.Offset)
		w.varint(int64(off.LeaderEpoch))
		w.str(off.Metadata)
		w.varint(off.CommitTime.UnixMilli())
	case opQueueCounts:
		g, err := decodeNumberReq(fr.payload)
		var c queueCounts
		if err == nil {
			f.awaitReplica(g)
			c, err = f.b.localQueueCounts(f.ctx, g)
		}
		w.err(err)
		w.uvarint(c.ready)
		w.uvarint(c.consumers)
	case opCtrlApplied:
		index, err := decodeNumberReq(fr.payload)
		if err == nil {
			ctx, cancel := base.WithTimeout(f.ctx, f.b.clock, f.b.cfg.MetadataSpreadWait)
			err = f.b.ctrl.waitApplied(ctx, index)
			cancel()
		}
		w.err(err)
	default:
		w.err(base.Errorf(base.CodeNotSupported, "broker: unknown forwarded op %d", fr.typ))
	}
	return w.b
}

// serveProposal proposes a forwarded command here, where its group's
// leader is supposed to be: the command is never forwarded again (a
// NotLeader answer sends the caller to the leader this node knows).
func (f *forwarder) serveProposal(w *wireWriter, g GroupID, payload []byte) {
	if f.b.group(g) == nil {
		f.awaitReplica(g)
	}
	if f.b.group(g) == nil {
		w.err(base.Errorf(base.CodeNotLeader, "broker: node %d has no replica of group %d: %w", f.b.node, g, leaderErr(g, 0)))
		w.uvarint(0)
		w.err(nil)
		w.varint(0)
		return
	}
	res, err := f.b.engine.Propose(f.ctx, g, payload)
	w.err(err)
	w.uvarint(res.Index)
	var valueErr error
	var count int64
	if e, ok := res.Value.(interface{ Err() error }); ok {
		valueErr = e.Err()
	}
	if qr, ok := res.Value.(*queueCmdResult); ok {
		count = int64(qr.res.Count)
	}
	w.err(valueErr)
	w.varint(count)
}

// awaitReplica waits a moment (BrokerForwardOpenWaitMax at most) for
// group g to be ready here (waitGroupReady) rather than send the caller
// round the replicas: the caller may have read a placement this node's
// reconciler has not acted on, or reached the group before its first
// election. What follows the wait answers for the group either way.
func (f *forwarder) awaitReplica(g GroupID) {
	ctx, cancel := base.WithTimeout(f.ctx, f.b.clock, base.BrokerForwardOpenWaitMax)
	_ = f.b.waitGroupReady(ctx, g)
	cancel()
}

// admitEnqueue hands a forwarded batch of messages to the local leader's
// accumulator, as the node's own publishes are, and returns what waits
// for their outcomes and encodes the response.
func (f *forwarder) admitEnqueue(payload []byte) func() []byte {
	outcomes, wait, err := f.startEnqueue(payload)
	return func() []byte {
		if err == nil {
			err = wait()
		}
		var w wireWriter
		w.err(err)
		w.bytes(outcomes)
		return w.b
	}
}

func (f *forwarder) startEnqueue(payload []byte) (outcomes []byte, wait func() error, err error) {
	req, err := decodeEnqueueReq(payload)
	if err != nil {
		return nil, nil, err
	}
	cb, err := decodeBatch(req.data)
	if err != nil {
		return nil, nil, err
	}
	items := make([]*pubItem, len(cb.records))
	outcomes = make([]byte, len(cb.records))
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	var run senderRun
	wg.Add(len(items))
	for i := range cb.records {
		rec, mark := recordToEncoded(&cb.records[i])
		items[i] = &pubItem{rec: &rec, sender: run.next(mark), done: func(o queue.Outcome, err error) {
			mu.Lock()
			outcomes[i] = byte(o)
			if err != nil && firstErr == nil {
				firstErr = err
			}
			mu.Unlock()
			wg.Done()
		}}
	}
	if ql := f.b.waitQueueLeader(f.ctx, req.g); ql != nil {
		ql.acc.add(f.ctx, items)
	} else if pl := f.b.waitPartitionLeader(f.ctx, req.g); pl != nil {
		pl.acc.add(f.ctx, items)
	} else {
		return nil, nil, base.Errorf(base.CodeNotLeader, "broker: node %d does not lead group %d: %w", f.b.node, req.g, leaderErr(req.g, f.b.otherLeader(req.g)))
	}
	return outcomes, func() error {
		wg.Wait()
		return firstErr
	}, nil
}

func (f *forwarder) serveGet(w *wireWriter, err error, g GroupID, cons queue.ConsumerID, autoAck bool) {
	var res getResult
	if err == nil {
		ql := f.b.waitQueueLeader(f.ctx, g)
		if ql == nil {
			err = base.Errorf(base.CodeNotLeader, "broker: node %d does not lead group %d: %w", f.b.node, g, leaderErr(g, f.b.otherLeader(g)))
		} else {
			res, err = ql.get(f.ctx, cons, autoAck)
		}
	}
	w.err(err)
	w.bool(res.found)
	w.uvarint(res.id)
	w.bool(res.redelivered)
	w.uvarint(uint64(res.count))
	w.uvarint(uint64(res.left))
	var data []byte
	if res.found {
		var eerr error
		if data, eerr = encodeForwardedMessage(&res.msg); eerr != nil {
			f.b.log.Warn("encoding a forwarded message failed", "err", eerr)
		}
	}
	w.bytes(data)
}

// encodeForwardedMessage encodes a message read from a queue for another
// node: a one-record batch, as it was stored.
func encodeForwardedMessage(m *Message) ([]byte, error) {
	var enc recordEncoder
	rec, err := enc.encode(m, 0)
	if err != nil {
		return nil, err
	}
	return buildBatch([]*pubItem{{rec: &rec}}, m.PublishedAt.UnixMilli(), true)
}

// decodeForwardedMessage is encodeForwardedMessage's inverse.
func decodeForwardedMessage(data []byte) (Message, error) {
	cb, err := decodeBatch(data)
	if err != nil || len(cb.records) != 1 {
		return Message{}, base.Errorf(base.CodeCorrupt, "broker: forwarded message does not decode: %v", err)
	}
	return decodeRecord(&cb.records[0], cb.header.BaseTimestamp), nil
}

// recordToEncoded turns a received record back into an item for an
// accumulator, without its ferry.sender header, which it returns: the
// accumulator writes the item's sender into the batch it builds. Its
// slices alias the received frame.
func recordToEncoded(r *batch.Record) (encodedRecord, senderMark) {
	rec := encodedRecord{key: r.Key, value: r.Value, orderingAt: -1, size: 32 + len(r.Key) + len(r.Value)}
	var mark senderMark
	if r.KeyNull {
		rec.key = nil
	}
	if rec.value == nil {
		rec.value = []byte{}
	}
	it := r.Headers()
	for k, v, null, ok := it.Next(); ok; k, v, null, ok = it.Next() {
		if null {
			v = nil
		}
		switch string(k) {
		case hdrSender: // the sending node's, not the message's
			mark = parseSender(v)
			continue
		case hdrOrderingKey:
			rec.orderingAt = len(rec.headers)
		}
		rec.headers = append(rec.headers, batch.RecordHeader{Key: k, Value: v})
		rec.size += len(k) + len(v) + 4
	}
	if rec.orderingAt >= 0 && rec.orderingAt != len(rec.headers)-1 {
		rec.orderingAt = -1 // not where encode puts it: keep it whatever the queue says
	}
	return rec, mark
}

// otherLeader is the leader of a hosted group when it is another node:
// the hint of a NotLeader answer never names the node giving it.
func (b *Broker) otherLeader(g GroupID) NodeID {
	if lead := b.knownLeader(g); lead != b.node {
		return lead
	}
	return 0
}

// knownLeader is the leader of a hosted group as the engine sees it.
func (b *Broker) knownLeader(g GroupID) NodeID {
	if st, err := b.engine.Status(g); err == nil {
		return st.Leader
	}
	return 0
}

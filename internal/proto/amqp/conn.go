package amqp

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/proto/amqp/codec"
)

// clientCaps are the capabilities a client announced in start-ok.
type clientCaps struct {
	authFailureClose bool // wants connection.close 403 rather than a dropped socket
	cancelNotify     bool // understands basic.cancel from the server
	blocked          bool // understands connection.blocked/unblocked
}

// conn is one client connection. Its reader goroutine (serve) owns the
// protocol state: the handshake, the channels map, content assembly,
// dispatch. Broker goroutines reach the connection only through channel
// methods that take the channel's lock and through the writer.
//
// Lock order: conn.mu, then channel.mu, then frameWriter.mu.
type conn struct {
	srv   *Server
	cfg   *Config
	nc    net.Conn
	br    *bufio.Reader
	fr    *codec.FrameReader
	dec   codec.MethodDecoder
	out   *frameWriter
	clock base.Clock
	log   *slog.Logger
	id    string
	peer  netip.AddrPort

	// Set by the handshake (reader goroutine), read-only afterwards.
	frameMax   uint32
	channelMax uint16
	heartbeat  time.Duration
	caps       clientCaps
	user       Principal
	vhost      string
	name       string // the client's connection_name property
	session    Session

	// ctx is the context of the connection's broker calls, cancelled
	// when the connection starts closing so a blocked call returns.
	ctx    context.Context
	cancel context.CancelFunc

	channels map[uint16]*channel // reader goroutine only
	pub      publishBatch        // reader goroutine only

	framesRead   atomic.Uint64 // frames received, for the heartbeat monitor
	readerPaused atomic.Bool   // the reader waits on backpressure, not on the peer

	mu       sync.Mutex
	inFlight int       // guarded by mu: publishes handed to the broker, not settled
	settled  sync.Cond // on mu: broadcast when inFlight drops or the connection closes
	closing  bool      // guarded by mu: connection.close was sent or the connection is ending
	// draining is set when the server shuts down: no publish is admitted,
	// and drained is closed once none is in flight (or the connection
	// ends), so the server can close it after the last confirm.
	draining bool          // guarded by mu
	drained  chan struct{} // guarded by mu: nil until drain
	open     bool          // guarded by mu: the handshake completed
	blocked  bool          // guarded by mu: connection.blocked sent, unblocked not yet
	// brokerTags are the consumer tags of the connection's live
	// subscriptions as the broker knows them (unique per connection
	// there, per channel in AMQP: see consumer.brokerTag).
	brokerTags map[string]bool // guarded by mu
	closeTimer base.Timer      // guarded by mu: closes the socket if close-ok never comes
}

func newConn(s *Server, nc net.Conn) *conn {
	nc = s.stats.Conn(nc)
	seq := s.connSeq.Add(1)
	c := &conn{
		srv: s, cfg: &s.cfg, nc: nc, clock: s.cfg.Clock,
		br:       bufio.NewReaderSize(nc, 64<<10),
		id:       fmt.Sprintf("%s/amqp/%d", s.cfg.Node, seq),
		channels: map[uint16]*channel{}, brokerTags: map[string]bool{},
	}
	if ap, err := netip.ParseAddrPort(nc.RemoteAddr().String()); err == nil {
		c.peer = ap
	}
	c.log = s.cfg.Logger.With("conn", c.id, "peer", nc.RemoteAddr().String())
	c.fr = codec.NewFrameReader(c.br)
	c.out = newFrameWriter(nc)
	c.settled.L = &c.mu
	c.ctx, c.cancel = context.WithCancel(context.Background())
	return c
}

// serve runs the connection to its end. It starts and waits for the
// writer and the heartbeat monitor.
func (c *conn) serve() {
	go c.out.run()
	stopMonitor, monitorDone := make(chan struct{}), make(chan struct{})
	monitorStarted := false
	defer func() {
		c.shutdown()
		close(stopMonitor)
		if monitorStarted {
			<-monitorDone
		}
	}()
	if err := c.handshake(); err != nil {
		c.endWith(err)
		if c.isClosing() {
			// connection.close went out (a refused login, a bad tune):
			// wait for the peer's close-ok, as after any hard error, so
			// that it reads the reason before the socket goes.
			c.endWith(c.readLoop())
		}
		return
	}
	if c.heartbeat > 0 {
		monitorStarted = true
		go func() {
			defer close(monitorDone)
			c.monitor(stopMonitor)
		}()
	}
	c.endWith(c.readLoop())
}

// endWith handles the error that ended the read loop or the handshake: a
// protocol error is answered with connection.close (the socket is closed
// once it is written); a socket error or EOF ends silently.
func (c *conn) endWith(err error) {
	var ce *codec.Error
	if errors.As(err, &ce) {
		c.log.Debug("closing connection", "reply", ce.Error())
		c.sendClose(ce)
		return
	}
	var he *codec.ProtocolHeaderError
	if errors.As(err, &he) {
		return
	}
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, errClientClosed) && !errors.Is(err, net.ErrClosed) {
		c.log.Debug("connection ended", "err", err)
	}
}

// errClientClosed ends the read loop after the close handshake.
var errClientClosed = errors.New("amqp: connection closed by the close handshake")

// readLoop reads and dispatches frames until the connection ends. After a
// hard protocol error it sends connection.close and keeps reading, only
// for the peer's close-ok (or close), until AMQPCloseTimeout.
func (c *conn) readLoop() error {
	for {
		if c.br.Buffered() == 0 {
			c.flushPublishes()
		}
		f, err := c.fr.ReadFrame()
		if err != nil {
			return err
		}
		c.framesRead.Add(1)
		if c.isClosing() {
			if c.closingFrame(f) {
				return errClientClosed
			}
			continue
		}
		if err := c.handleFrame(f); err != nil {
			if errors.Is(err, errClientClosed) {
				return err
			}
			var ce *codec.Error
			if !errors.As(err, &ce) {
				ce = asReply(err, 0)
			}
			c.flushPublishes()
			c.sendClose(ce)
		}
	}
}

// closingFrame handles a frame after this side sent connection.close: only
// close-ok (or the peer's own close) matters. It reports whether the
// connection is done.
func (c *conn) closingFrame(f codec.Frame) bool {
	if f.Type != codec.FrameMethod || f.Channel != 0 {
		return false
	}
	m, err := c.dec.Decode(f.Payload)
	if err != nil {
		return false
	}
	switch m.(type) {
	case *codec.ConnectionCloseOk:
		return true
	case *codec.ConnectionClose:
		_ = c.out.sendLast(0, &codec.ConnectionCloseOk{})
		return true
	}
	return false
}

func (c *conn) isClosing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closing
}

// sendClose sends connection.close for e, once, and arms the timer that
// closes the socket if the peer never answers. Any goroutine may call it.
func (c *conn) sendClose(e *codec.Error) {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return
	}
	c.closing = true
	c.settled.Broadcast()
	c.cancel()
	c.srv.stats.CountError(base.CodeOf(e))
	c.closeTimer = c.clock.NewTimer(base.AMQPCloseTimeout)
	t := c.closeTimer
	c.mu.Unlock()
	_ = c.out.sendLast(0, e.ConnectionClose())
	c.srv.wg.Add(1)
	go func() {
		defer c.srv.wg.Done()
		select {
		case <-t.C():
			_ = c.nc.Close()
		case <-c.out.done:
		}
	}()
}

// forceClose closes the connection from the server side (shutdown, the
// management API): 320 CONNECTION_FORCED with reason.
func (c *conn) forceClose(reason string) {
	c.sendClose(protoErr(codec.ReplyConnectionForced, 0, "%s", reason))
}

// shutdown releases everything the connection holds, once the reader is
// done: the channels, the broker session, the writer (after it wrote what
// is pending, within AMQPCloseTimeout) and the socket.
func (c *conn) shutdown() {
	c.mu.Lock()
	c.closing = true
	c.settled.Broadcast()
	c.signalDrainedLocked()
	c.mu.Unlock()
	// Cancel first: releasing the channels then proposes nothing that
	// could wait on the broker; closing the session releases their
	// consumers and deliveries in one step.
	c.cancel()
	for _, ch := range c.channels {
		ch.release()
	}
	c.srv.replyTo.dropConn(c)
	if c.session != nil {
		ctx, cancel := base.WithTimeout(context.Background(), c.clock, base.AMQPSessionCloseTimeout)
		if err := c.session.Close(ctx); err != nil {
			c.log.Debug("closing the broker session", "err", err)
		}
		cancel()
	}
	c.out.finish()
	t := c.clock.NewTimer(base.AMQPCloseTimeout)
	select {
	case <-c.out.done:
	case <-t.C():
	}
	t.Stop()
	_ = c.nc.Close()
	<-c.out.done
	c.mu.Lock()
	if c.closeTimer != nil {
		c.closeTimer.Stop()
	}
	c.mu.Unlock()
}

// handleFrame dispatches one frame of an open connection. It returns a
// hard (connection) error, or errClientClosed after the close handshake.
func (c *conn) handleFrame(f codec.Frame) error {
	switch f.Type {
	case codec.FrameHeartbeat:
		return nil
	case codec.FrameMethod:
		m, err := c.dec.Decode(f.Payload)
		if err != nil {
			return err
		}
		if f.Channel == 0 {
			return c.connectionMethod(m)
		}
		if m.Key().ClassID() == codec.ClassConnection {
			return protoErr(codec.ReplyCommandInvalid, m.Key(), "connection method on channel %d", f.Channel)
		}
		ch := c.channels[f.Channel]
		if ch == nil {
			if _, ok := m.(*codec.ChannelOpen); ok {
				return c.openChannel(f.Channel)
			}
			return protoErr(codec.ReplyChannelError, m.Key(), "expected 'channel.open' on channel %d", f.Channel)
		}
		if m.Key() != codec.MethodBasicPublish {
			c.flushPublishes()
			if readsQueueState(m.Key()) {
				c.awaitPublishes()
			}
		}
		return ch.handleMethod(m)
	default: // content header or body
		if f.Channel == 0 {
			return protoErr(codec.ReplyUnexpectedFrame, 0, "content frame on channel 0")
		}
		ch := c.channels[f.Channel]
		if ch == nil {
			return protoErr(codec.ReplyChannelError, 0, "expected 'channel.open' on channel %d", f.Channel)
		}
		return ch.handleContent(f)
	}
}

// connectionMethod handles a method on channel 0 after the handshake.
func (c *conn) connectionMethod(m codec.Method) error {
	switch m.(type) {
	case *codec.ConnectionClose:
		c.flushPublishes()
		c.mu.Lock()
		c.closing = true
		c.mu.Unlock()
		_ = c.out.sendLast(0, &codec.ConnectionCloseOk{})
		return errClientClosed
	case *codec.ConnectionBlocked, *codec.ConnectionUnblocked, *codec.ConnectionUpdateSecret:
		// Clients do not block servers; secrets are not refreshed:
		// RabbitMQ would accept update-secret for OAuth only.
		if _, ok := m.(*codec.ConnectionUpdateSecret); ok {
			return protoErr(codec.ReplyNotImplemented, m.Key(), "connection.update-secret is not supported")
		}
		return nil
	}
	if m.Key().ClassID() != codec.ClassConnection {
		return protoErr(codec.ReplyCommandInvalid, m.Key(), "%s on channel 0", m.Key())
	}
	return protoErr(codec.ReplyCommandInvalid, m.Key(), "unexpected method %s", m.Key())
}

// openChannel opens channel id.
func (c *conn) openChannel(id uint16) error {
	if id > c.channelMax {
		return protoErr(codec.ReplyNotAllowed, codec.MethodChannelOpen,
			"channel %d exceeds the negotiated channel_max (%d)", id, c.channelMax)
	}
	if len(c.channels) >= int(c.channelMax) {
		return protoErr(codec.ReplyNotAllowed, codec.MethodChannelOpen,
			"number of channels opened (%d) has reached the negotiated channel_max (%d)", len(c.channels), c.channelMax)
	}
	ch := newChannel(c, id)
	c.channels[id] = ch
	return c.out.sendMethod(true, id, &codec.ChannelOpenOk{})
}

// setBlocked sends connection.blocked or unblocked to a client that
// understands them, when the state changes.
func (c *conn) setBlocked(blocked bool, reason string) {
	c.mu.Lock()
	if !c.open || c.closing || !c.caps.blocked || c.blocked == blocked {
		c.mu.Unlock()
		return
	}
	c.blocked = blocked
	c.mu.Unlock()
	var m codec.Method = &codec.ConnectionUnblocked{}
	if blocked {
		m = &codec.ConnectionBlocked{Reason: reason}
	}
	_ = c.out.sendMethod(false, 0, m)
}

// readsQueueState reports the methods whose answer depends on a queue's
// contents: basic.get, queue.declare (its counts), queue.purge and
// queue.delete (theirs).
func readsQueueState(k codec.MethodKey) bool {
	switch k {
	case codec.MethodBasicGet, codec.MethodQueueDeclare, codec.MethodQueuePurge, codec.MethodQueueDelete:
		return true
	}
	return false
}

// awaitPublishes waits until every publish the connection handed to the
// broker has its outcome (or the connection is closing), so that a method
// read after them sees them: publishes are appended asynchronously, and
// a RabbitMQ client expects a basic.get, a purge or a passive declare's
// count on the channel that published to see what it published, as a
// classic queue's channel does. The reader does not read meanwhile, so
// no new publish holds it up.
func (c *conn) awaitPublishes() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.inFlight == 0 {
		return
	}
	c.readerPaused.Store(true)
	for c.inFlight > 0 && !c.closing {
		c.settled.Wait()
	}
	c.readerPaused.Store(false)
}

// acquirePublish waits until n more publishes may be in flight. It
// returns false when the connection is closing.
func (c *conn) acquirePublish(n int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.inFlight+n > base.AMQPPublishesInFlightMax && !c.closing && !c.draining {
		c.readerPaused.Store(true)
		for c.inFlight+n > base.AMQPPublishesInFlightMax && !c.closing && !c.draining {
			c.settled.Wait()
		}
		c.readerPaused.Store(false)
	}
	if c.closing || c.draining {
		return false
	}
	c.inFlight += n
	return true
}

// releasePublish is called once the outcome of n publishes was handled
// (their confirms are in the writer).
func (c *conn) releasePublish(n int) {
	c.mu.Lock()
	c.inFlight -= n
	if c.inFlight < 0 { // not Assert: its argument would be boxed on every call
		base.Bugf("amqp: publishes in flight went negative (%d)", c.inFlight)
	}
	c.settled.Broadcast()
	if c.inFlight == 0 {
		c.signalDrainedLocked()
	}
	c.mu.Unlock()
}

// drain stops the connection admitting publishes (the server is
// shutting down) and returns a channel closed once none is in flight or
// the connection has ended.
func (c *conn) drain() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.drained == nil {
		c.draining = true
		c.drained = make(chan struct{})
		c.settled.Broadcast() // a reader waiting for room gives up
		if c.inFlight == 0 || c.closing {
			c.signalDrainedLocked()
		}
	}
	return c.drained
}

// signalDrainedLocked closes drained, once, while draining.
func (c *conn) signalDrainedLocked() {
	if !c.draining || c.drained == nil {
		return
	}
	select {
	case <-c.drained:
	default:
		close(c.drained)
	}
}

// monitor sends heartbeats when the connection is idle and disconnects a
// peer that sent nothing for AMQPHeartbeatMissedMax intervals. It ticks
// every half interval, as RabbitMQ's heartbeater does.
func (c *conn) monitor(stop <-chan struct{}) {
	tick := c.heartbeat / 2
	t := c.clock.NewTimer(tick)
	defer t.Stop()
	writes, frames := c.out.writeCount(), c.framesRead.Load()
	silentTicks := 0
	for {
		select {
		case <-stop:
			return
		case <-t.C():
		}
		writes = c.out.sendHeartbeatIfIdle(writes)
		now := c.framesRead.Load()
		switch {
		case now != frames || c.readerPaused.Load():
			silentTicks = 0
		default:
			silentTicks++
		}
		frames = now
		if silentTicks >= 2*base.AMQPHeartbeatMissedMax {
			c.log.Info("missed heartbeats from client, closing", "timeout", c.heartbeat)
			_ = c.nc.Close()
			return
		}
		t.Reset(tick)
	}
}

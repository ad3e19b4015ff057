package kafka

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

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/proto/kafka/protocol"
)

// conn serves one client connection. Three kinds of goroutine touch it:
//
//   - the reader (serve's own goroutine) reads, parses and dispatches
//     requests one at a time, in order; handlers run on it, so the side
//     effects of a connection's requests happen in request order, as in
//     Kafka;
//   - the writer writes the responses in request order: each request
//     takes a slot in pending when it is read, and the writer waits for
//     each slot in turn;
//   - delayed requests (a Fetch long poll, a JoinGroup waiting for the
//     rebalance, a Produce waiting for its quorum) complete their slot on
//     a goroutine of their own, tracked by wg and ended by ctx.
//
// So a connection pipelines (later requests are read and started while an
// earlier one waits) but answers in order. pending bounds the requests in
// flight, held their bytes; when either is full the reader stops reading
// and TCP pushes back on the client.
type conn struct {
	srv  *Server
	nc   net.Conn
	id   string
	peer netip.AddrPort
	log  *slog.Logger

	ctx    context.Context // ends when the connection is killed
	cancel context.CancelFunc

	pending  chan *slot    // reader to writer, in request order
	inflight chan struct{} // a token per request read and not yet answered

	heldMu   sync.Mutex
	heldCond *sync.Cond
	held     int // guarded by heldMu: bytes of requests whose response is not yet written

	wg       sync.WaitGroup // delayed requests
	killOnce sync.Once

	// Owned by the reader goroutine. sess is set before any delayed
	// request that uses it is started, and closed after they all end.
	sess     Session
	auth     saslState
	clientID string
	scratch  []byte                   // decompression buffer of produce validation
	topicIDs map[protocol.UUID]string // Fetch v13+: topic ids seen, by id
}

// slot is one request's place in the response order.
type slot struct {
	done chan struct{} // closed once frame and closeAfter are set
	// frame is the whole response, size prefix included; nil for a
	// request that gets no response (Produce with acks 0).
	frame []byte
	// closeAfter closes the connection once frame is written (a failed
	// authentication, a failed acks-0 produce).
	closeAfter bool
	held       int // request bytes to release once written
}

func (s *slot) complete(frame []byte, closeAfter bool) {
	s.frame, s.closeAfter = frame, closeAfter
	close(s.done)
}

// request is one parsed request being handled.
type request struct {
	hdr  protocol.RequestHeader
	api  protocol.API
	body []byte // aliases the frame
	slot *slot
}

func newConn(s *Server, nc net.Conn) *conn {
	nc = s.stats.Conn(nc)
	c := &conn{srv: s, nc: nc, pending: make(chan *slot, base.KafkaConnInflightRequestsMax),
		inflight: make(chan struct{}, base.KafkaConnInflightRequestsMax)}
	c.id = fmt.Sprintf("kafka/%d", s.connSeq.Add(1))
	if ap, err := netip.ParseAddrPort(nc.RemoteAddr().String()); err == nil {
		c.peer = ap
	}
	c.log = s.log.With("conn", c.id, "peer", nc.RemoteAddr().String())
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.heldCond = sync.NewCond(&c.heldMu)
	return c
}

// kill closes the connection: the reader's next read fails, delayed
// requests see ctx end. Safe from any goroutine, more than once.
func (c *conn) kill(reason string) {
	c.killOnce.Do(func() {
		c.log.Debug("closing connection", "reason", reason)
		c.cancel()
		c.nc.Close()
		c.heldMu.Lock()
		c.heldCond.Broadcast()
		c.heldMu.Unlock()
	})
}

// serve runs the connection to its end and releases everything it held.
func (c *conn) serve() {
	writerDone := make(chan struct{})
	go func() { // owned: serve waits for it below
		defer close(writerDone)
		c.writeLoop()
	}()
	err := c.readLoop()
	if err != nil && !errors.Is(err, io.EOF) && c.ctx.Err() == nil {
		c.log.Debug("connection ends", "err", err)
	}
	// No request is read after this: delayed ones end now (a client that
	// went away will not read their answers) and the writer drains.
	c.kill("reader ended")
	close(c.pending)
	<-writerDone
	c.wg.Wait()
	if c.sess != nil {
		ctx, cancel := context.WithTimeout(context.Background(), base.KafkaSessionCloseTimeout)
		if err := c.sess.Close(ctx); err != nil {
			c.log.Warn("closing the broker session", "err", err)
		}
		cancel()
	}
}

// readLoop reads and dispatches requests until the connection fails or a
// request makes it close.
func (c *conn) readLoop() error {
	br := bufio.NewReaderSize(c.nc, base.KafkaReadBufferBytes)
	for {
		if !c.waitHeld() {
			return c.ctx.Err()
		}
		frame, err := protocol.ReadFrame(br, nil, c.srv.cfg.RequestBytesMax)
		if err != nil {
			return err
		}
		if c.auth.raw {
			if err := c.saslRawToken(frame); err != nil {
				return err
			}
			continue
		}
		if err := c.dispatch(frame); err != nil {
			return err
		}
	}
}

// waitHeld waits until the requests in flight hold less than
// KafkaConnInflightBytesMax; false when the connection is closing.
func (c *conn) waitHeld() bool {
	c.heldMu.Lock()
	defer c.heldMu.Unlock()
	for c.held >= base.KafkaConnInflightBytesMax && c.ctx.Err() == nil {
		c.heldCond.Wait()
	}
	return c.ctx.Err() == nil
}

func (c *conn) addHeld(n int) {
	c.heldMu.Lock()
	c.held += n
	c.heldMu.Unlock()
}

func (c *conn) releaseHeld(n int) {
	c.heldMu.Lock()
	c.held -= n
	base.Assert(c.held >= 0, "kafka: connection holds %d request bytes", c.held)
	c.heldCond.Broadcast()
	c.heldMu.Unlock()
}

// newSlot queues a slot for a request of n bytes; it blocks while
// KafkaConnInflightRequestsMax requests are in flight (read and not yet
// answered).
func (c *conn) newSlot(n int) (*slot, bool) {
	select {
	case c.inflight <- struct{}{}:
	case <-c.ctx.Done():
		return nil, false
	}
	s := &slot{done: make(chan struct{}), held: n}
	c.addHeld(n)
	c.pending <- s // never blocks: pending holds as many as inflight
	return s, true
}

// dispatch parses one request frame and handles it. A non-nil error
// closes the connection: an unknown API key, a malformed header or body,
// a request not allowed before authentication.
func (c *conn) dispatch(frame []byte) error {
	hdr, body, err := protocol.ParseRequestHeader(frame)
	unsupported := errors.Is(err, protocol.ErrUnsupportedVersion)
	if err != nil && !unsupported {
		return fmt.Errorf("kafka: request header: %w", err)
	}
	api, _ := protocol.LookupAPI(hdr.APIKey)
	if c.clientID == "" && !hdr.ClientIDNull {
		c.clientID = hdr.ClientID
	}
	if !c.auth.allows(c.srv.cfg.AuthRequired, hdr.APIKey) {
		return base.Errorf(base.CodeUnauthenticated, "kafka: %s request before authentication", api.Name)
	}
	if c.sess == nil && needsSession(hdr.APIKey) {
		if err := c.openAnonymous(); err != nil {
			return err
		}
	}
	s, ok := c.newSlot(len(frame))
	if !ok {
		return c.ctx.Err()
	}
	r := &request{hdr: hdr, api: api, body: body, slot: s}
	if unsupported && hdr.APIKey == protocol.APIKeyApiVersions {
		c.respondAPIVersionsFallback(r)
		return nil
	}
	h, supported := lookupHandler(hdr.APIKey, hdr.APIVersion)
	if !supported {
		c.respondUnsupported(r)
		return nil
	}
	if err := h(c, r); err != nil {
		// The slot must still complete so the writer moves on; the
		// connection closes after what came before is written.
		if !isDone(s) {
			s.complete(nil, true)
		}
		return err
	}
	return nil
}

func isDone(s *slot) bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// needsSession reports whether an API works on the broker session (all
// but the ones that precede authentication).
func needsSession(k protocol.APIKey) bool {
	switch k {
	case protocol.APIKeyApiVersions, protocol.APIKeySaslHandshake, protocol.APIKeySaslAuthenticate:
		return false
	}
	return true
}

// openAnonymous opens the session of a connection that does not
// authenticate.
func (c *conn) openAnonymous() error {
	if c.srv.cfg.AuthRequired {
		base.Bugf("kafka: anonymous session with authentication required")
	}
	return c.openSession(Principal{User: c.srv.cfg.AnonymousUser, Tenant: c.srv.cfg.Tenant})
}

func (c *conn) openSession(p Principal) error {
	sess, err := c.srv.cfg.Backend.Open(ConnInfo{ID: c.id, Peer: c.peer, ClientID: c.clientID}, p, c.kill)
	if err != nil {
		return fmt.Errorf("kafka: opening a session for %q: %w", p.User, err)
	}
	c.sess = sess
	return nil
}

// delay runs f on a goroutine owned by the connection, for a request that
// completes later. f must complete the request's slot, and return soon
// after c.ctx ends.
func (c *conn) delay(f func()) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		f()
	}()
}

// respond encodes msg as the answer to r and completes r's slot.
func (c *conn) respond(r *request, msg protocol.Response) {
	c.answer(r, msg, r.hdr.APIVersion, 0, false)
}

// respondSized is respond for a large response of about sizeHint bytes
// (a Fetch's records): the frame is allocated once at that size rather
// than grown by doubling, which would copy and clear it several times.
func (c *conn) respondSized(r *request, msg protocol.Response, sizeHint int) {
	c.answer(r, msg, r.hdr.APIVersion, sizeHint, false)
}

// respondAndClose answers r, then closes the connection.
func (c *conn) respondAndClose(r *request, msg protocol.Response) {
	c.answer(r, msg, r.hdr.APIVersion, 0, true)
}

// answer is every response's one way out: it counts msg's error codes
// (Server.Stats), encodes msg at version (r's own, but for the ApiVersions
// fallback) and completes r's slot, closing the connection after it when
// closeAfter.
func (c *conn) answer(r *request, msg protocol.Response, version int16, sizeHint int, closeAfter bool) {
	c.srv.stats.countResponse(msg)
	r.slot.complete(encodeFrame(msg, r.hdr.CorrelationID, version, r.api.ResponseHeaderVersion(version), sizeHint), closeAfter)
}

func encodeFrame(msg protocol.Response, correlationID int32, version, headerVersion int16, sizeHint int) []byte {
	if base.InvariantsEnabled {
		if err := msg.Validate(version); err != nil {
			base.Bugf("kafka: %T at version %d does not validate: %v", msg, version, err)
		}
	}
	out, mark := protocol.BeginFrame(frameBuffer(sizeHint))
	out = protocol.AppendResponseHeader(out, correlationID, headerVersion)
	out = msg.Encode(out, version)
	return protocol.EndFrame(out, mark)
}

// largeFrameBytes is the size from which response buffers are pooled: a
// large Fetch response would otherwise be allocated and cleared anew for
// every request.
const largeFrameBytes = 64 << 10

// largeFrames holds written response buffers of at least largeFrameBytes
// (as *[]byte, so Put does not allocate).
var largeFrames sync.Pool

// frameBuffer returns an empty buffer for a response of about sizeHint
// bytes.
func frameBuffer(sizeHint int) []byte {
	if sizeHint >= largeFrameBytes {
		if p, _ := largeFrames.Get().(*[]byte); p != nil && cap(*p) >= sizeHint {
			return (*p)[:0]
		}
		return make([]byte, 0, sizeHint)
	}
	return make([]byte, 0, max(sizeHint, 256))
}

// releaseFrame returns a written frame's buffer for reuse; the caller
// holds no other reference to it.
func releaseFrame(b []byte) {
	if cap(b) >= largeFrameBytes && cap(b) <= base.KafkaFetchResponseBytesMax+1<<20 {
		largeFrames.Put(&b)
	}
}

// writeLoop writes responses in request order until pending is closed
// and drained. Writes are coalesced: the buffer is flushed only when the
// next response is not ready yet.
func (c *conn) writeLoop() {
	bw := bufio.NewWriterSize(c.nc, base.KafkaWriteBufferBytes)
	broken := false
	flush := func() {
		if !broken && bw.Buffered() > 0 {
			if err := bw.Flush(); err != nil {
				broken = true
				c.kill("write failed: " + err.Error())
			}
		}
	}
	for {
		var s *slot
		var ok bool
		select {
		case s, ok = <-c.pending:
		default:
			flush()
			s, ok = <-c.pending
		}
		if !ok {
			flush()
			return
		}
		select {
		case <-s.done:
		default:
			flush()
			<-s.done
		}
		if !broken && s.frame != nil {
			if _, err := bw.Write(s.frame); err != nil {
				broken = true
				c.kill("write failed: " + err.Error())
			}
		}
		if s.frame != nil && len(s.frame) >= largeFrameBytes {
			// A frame this large went to the socket directly (bufio
			// copies nothing for writes past its buffer once empty) or
			// was copied into the buffer: either way it is free now.
			releaseFrame(s.frame)
			s.frame = nil
		}
		c.releaseHeld(s.held)
		<-c.inflight
		if s.closeAfter {
			flush()
			broken = true
			c.kill("closed after the response")
		}
	}
}

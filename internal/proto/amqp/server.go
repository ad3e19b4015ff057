package amqp

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/proto/wirestats"
)

// Config configures a Server. Zero values take the defaults named.
type Config struct {
	// Backend is the broker; required.
	Backend Backend
	// Clock drives heartbeats, the handshake timeout and close timeouts
	// (default base.RealClock).
	Clock  base.Clock
	Logger *slog.Logger // default slog.Default()
	// Node names this node in connection ids ("<node>/amqp/<seq>") and
	// in the server properties' cluster_name (default "ferry").
	Node string

	// FrameMax is the frame-max offered in connection.tune (default
	// base.AMQPFrameBytesDefault, at most base.AMQPFrameBytesMax).
	FrameMax uint32
	// ChannelMax is the channel-max offered (default and maximum
	// base.AMQPChannelsPerConnectionMax).
	ChannelMax uint16
	// Heartbeat is the interval offered (default
	// base.AMQPHeartbeatDefault); negative offers 0, no heartbeats,
	// unless the client asks for them.
	Heartbeat time.Duration
	// MessageBytesMax is the largest message body accepted (default and
	// maximum base.AMQPMessageBytesMax).
	MessageBytesMax uint64
	// HandshakeTimeout bounds the handshake (default
	// base.AMQPHandshakeTimeout).
	HandshakeTimeout time.Duration
}

func (c *Config) setDefaults() error {
	if c.Backend == nil {
		return base.Errorf(base.CodeInvalidArgument, "amqp: Config.Backend is nil")
	}
	if c.Clock == nil {
		c.Clock = base.RealClock{}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Node == "" {
		c.Node = "ferry"
	}
	if c.FrameMax == 0 {
		c.FrameMax = base.AMQPFrameBytesDefault
	}
	if c.FrameMax < 4096 || c.FrameMax > base.AMQPFrameBytesMax {
		return base.Errorf(base.CodeInvalidArgument, "amqp: Config.FrameMax %d is outside [4096, %d]", c.FrameMax, base.AMQPFrameBytesMax)
	}
	if c.ChannelMax == 0 || c.ChannelMax > base.AMQPChannelsPerConnectionMax {
		c.ChannelMax = base.AMQPChannelsPerConnectionMax
	}
	switch {
	case c.Heartbeat == 0:
		c.Heartbeat = base.AMQPHeartbeatDefault
	case c.Heartbeat < 0:
		c.Heartbeat = 0
	}
	if c.MessageBytesMax == 0 || c.MessageBytesMax > base.AMQPMessageBytesMax {
		c.MessageBytesMax = base.AMQPMessageBytesMax
	}
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = base.AMQPHandshakeTimeout
	}
	return nil
}

// Server is the AMQP 0-9-1 front end: it accepts connections on a
// listener it is given and serves each with its own goroutines until the
// connection ends or the server closes.
type Server struct {
	cfg     Config
	ln      net.Listener
	replyTo *replyToRegistry

	mu     sync.Mutex
	conns  map[*conn]struct{} // guarded by mu
	closed bool               // guarded by mu

	connSeq atomic.Uint64
	stats   wirestats.Counters[base.Code]
	wg      sync.WaitGroup // every connection's goroutine and the flow watcher
	stop    chan struct{}  // closed by Close
	once    sync.Once
	// closeDone is closed when Close has returned: Serve waits for it
	// before s.wg.Wait, because Close starts goroutines counted in s.wg
	// (each forced close's timer) and an Add from zero must not race the
	// Wait.
	closeDone chan struct{}
}

// NewServer returns a server that will accept connections from ln. The
// server owns ln from here on: Close closes it.
func NewServer(ln net.Listener, cfg Config) (*Server, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	return &Server{cfg: cfg, ln: ln, conns: map[*conn]struct{}{}, stop: make(chan struct{}),
		closeDone: make(chan struct{}), replyTo: newReplyToRegistry()}, nil
}

// Addr returns the listener's address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Serve accepts and serves connections until ctx is cancelled, Close is
// called or the listener fails. It returns after every connection it
// started has ended: nil after ctx or Close, the listener's error
// otherwise.
func (s *Server) Serve(ctx context.Context) error {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.watchFlow()
	}()
	ctxDone := make(chan struct{})
	defer close(ctxDone)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		select {
		case <-ctx.Done():
			_ = s.Close()
		case <-ctxDone:
		case <-s.stop:
		}
	}()
	var err error
	for {
		nc, aerr := s.ln.Accept()
		if aerr != nil {
			if !s.isClosed() {
				err = fmt.Errorf("amqp: accepting: %w", aerr)
				_ = s.Close()
			}
			break
		}
		s.start(nc)
	}
	<-s.closeDone // the loop ends only once Close has started
	s.wg.Wait()
	return err
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// start registers and starts a connection, unless the server is closing.
func (s *Server) start(nc net.Conn) {
	c := newConn(s, nc)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = nc.Close()
		return
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		defer s.forget(c)
		c.serve()
	}()
}

func (s *Server) forget(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// Close stops accepting, lets the publishes each connection already
// handed to the broker get their outcome and their confirms sent (for at
// most AMQPShutdownSettleTimeout; publishes read meanwhile are not
// admitted and never confirmed), then closes every connection with 320
// CONNECTION_FORCED (as RabbitMQ does at shutdown). It returns once
// Serve's goroutines are asked to stop; Serve returns when they have.
// Close does not wait for Serve itself: call both, Serve's return is the
// end.
func (s *Server) Close() error {
	s.once.Do(func() {
		s.mu.Lock()
		s.closed = true
		conns := make([]*conn, 0, len(s.conns))
		for c := range s.conns {
			conns = append(conns, c)
		}
		s.mu.Unlock()
		close(s.stop)
		_ = s.ln.Close()
		s.settleInFlight(conns)
		for _, c := range conns {
			c.forceClose("broker forced connection closure with reason 'shutdown'")
		}
		close(s.closeDone)
	})
	return nil
}

// settleInFlight stops every connection admitting publishes and waits,
// within one AMQPShutdownSettleTimeout for all of them, until each has
// no publish in flight.
func (s *Server) settleInFlight(conns []*conn) {
	drained := make([]<-chan struct{}, len(conns))
	for i, c := range conns {
		drained[i] = c.drain()
	}
	t := s.cfg.Clock.NewTimer(base.AMQPShutdownSettleTimeout)
	defer t.Stop()
	for i, d := range drained {
		select {
		case <-d:
		case <-t.C():
			s.cfg.Logger.Warn("shutdown: publishes still in flight, closing without their confirms",
				"timeout", base.AMQPShutdownSettleTimeout, "connections_waiting", len(conns)-i)
			return
		}
	}
}

// watchFlow tells connections when the broker starts and stops blocking
// publishers (connection.blocked and connection.unblocked).
func (s *Server) watchFlow() {
	last := false
	for {
		blocked, reason, changed := s.cfg.Backend.FlowState()
		if blocked != last {
			last = blocked
			s.mu.Lock()
			conns := make([]*conn, 0, len(s.conns))
			for c := range s.conns {
				conns = append(conns, c)
			}
			s.mu.Unlock()
			for _, c := range conns {
				c.setBlocked(blocked, reason)
			}
		}
		select {
		case <-changed:
		case <-s.stop:
			return
		}
	}
}

// flowBlocked returns the broker's current flow state, for a connection
// that just opened.
func (s *Server) flowBlocked() (bool, string) {
	b, r, _ := s.cfg.Backend.FlowState()
	return b, r
}

package kafka

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/ferry-mq/ferry/internal/base"
)

// Config configures a Server. Zero values take the defaults named.
type Config struct {
	Backend Backend
	Clock   base.Clock   // default base.RealClock
	Logger  *slog.Logger // default slog.Default()

	// AdvertisedHost and AdvertisedPort are the address Metadata gives
	// for this node; by default the address of the first listener served.
	AdvertisedHost string
	AdvertisedPort int32

	// Tenant is the virtual host Kafka connections use (Kafka has none);
	// default "/".
	Tenant string

	// AuthRequired makes every connection authenticate with SASL (PLAIN,
	// SCRAM-SHA-256, SCRAM-SHA-512) before any request but ApiVersions
	// and the SASL ones. Without it, connections act as AnonymousUser.
	AuthRequired bool
	// AnonymousUser is the user of unauthenticated connections when
	// AuthRequired is off; default "guest".
	AnonymousUser string

	// AutoCreateTopics lets Metadata requests that allow it create the
	// topics they name (Kafka's auto.create.topics.enable), with the
	// broker's default partitions and replication.
	AutoCreateTopics bool

	// RequestBytesMax refuses larger requests before reading them
	// (Kafka's socket.request.max.bytes); default and maximum
	// base.KafkaRequestBytesMax.
	RequestBytesMax int
}

func (c *Config) setDefaults() error {
	if c.Backend == nil {
		return base.Errorf(base.CodeInvalidArgument, "kafka: Config.Backend is nil")
	}
	if c.Clock == nil {
		c.Clock = base.RealClock{}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Tenant == "" {
		c.Tenant = "/"
	}
	if c.AnonymousUser == "" {
		c.AnonymousUser = "guest"
	}
	if c.RequestBytesMax <= 0 || c.RequestBytesMax > base.KafkaRequestBytesMax {
		c.RequestBytesMax = base.KafkaRequestBytesMax
	}
	return nil
}

// Server is the Kafka front end of one node: it accepts connections on the
// listeners it is given and serves the Kafka protocol over them, on top of
// a Backend. See doc.go.
type Server struct {
	cfg      Config
	log      *slog.Logger
	sessions *fetchSessionCache

	connSeq atomic.Uint64
	stats   serverStats // the counters behind Stats

	mu        sync.Mutex
	listeners map[net.Listener]struct{} // guarded by mu
	conns     map[*conn]struct{}        // guarded by mu
	advHost   string                    // guarded by mu
	advPort   int32                     // guarded by mu
	closed    bool                      // guarded by mu

	wg sync.WaitGroup // accept loops and connections
}

// NewServer returns a server; it serves nothing until Serve.
func NewServer(cfg Config) (*Server, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	return &Server{
		cfg: cfg, log: cfg.Logger.With("proto", "kafka"),
		sessions:  newFetchSessionCache(cfg.Clock),
		listeners: map[net.Listener]struct{}{},
		conns:     map[*conn]struct{}{},
		advHost:   cfg.AdvertisedHost, advPort: cfg.AdvertisedPort,
	}, nil
}

// ErrServerClosed is returned by Serve after Close.
var ErrServerClosed = base.Errorf(base.CodeStopped, "kafka: server closed")

// Serve accepts connections on ln until ctx ends or Close is called, and
// serves each on its own goroutines. It closes ln when it returns. It
// returns nil when ctx ended, ErrServerClosed after Close, or the
// listener's error. Connections outlive Serve: Close ends them.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	if s.advHost == "" {
		s.advHost, s.advPort = advertisedFrom(ln.Addr())
	}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()

	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	for {
		nc, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			delete(s.listeners, ln)
			closed := s.closed
			s.mu.Unlock()
			ln.Close()
			switch {
			case closed:
				return ErrServerClosed
			case ctx.Err() != nil:
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		s.startConn(nc)
	}
}

// advertisedFrom returns the address to advertise for a listener: its
// own, except that a wildcard host (":9092") is replaced by the machine's
// host name, which clients can dial.
func advertisedFrom(addr net.Addr) (string, int32) {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return "", 0
	}
	p, _ := strconv.Atoi(port)
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		if name, err := os.Hostname(); err == nil {
			host = name
		}
	}
	return host, int32(p)
}

// startConn serves nc unless the server is closed or full.
func (s *Server) startConn(nc net.Conn) {
	s.mu.Lock()
	if s.closed || len(s.conns) >= base.KafkaConnectionsMax {
		full := !s.closed
		s.mu.Unlock()
		if full {
			s.log.Warn("refusing a connection: at the limit", "limit", base.KafkaConnectionsMax, "peer", nc.RemoteAddr())
		}
		nc.Close()
		return
	}
	c := newConn(s, nc)
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		c.serve()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}()
}

// Close stops accepting, closes every connection (requests waiting in long
// polls or rebalances end at once) and waits for every goroutine of the
// server to return. It is safe to call more than once.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	lns := make([]net.Listener, 0, len(s.listeners))
	for ln := range s.listeners {
		lns = append(lns, ln)
	}
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, ln := range lns {
		ln.Close()
	}
	for _, c := range conns {
		c.kill("server closing")
	}
	s.wg.Wait()
	return nil
}

// advertised returns this node's address for Metadata.
func (s *Server) advertised() (string, int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.advHost, s.advPort
}

// ConnCount returns the number of open connections.
func (s *Server) ConnCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

package admin

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/broker"
)

// Broker is what the management API needs of a node: *broker.Broker
// implements it. It is an interface so that tests can wrap the broker
// without the admin package reaching below it.
type Broker interface {
	Err() error
	NodeID() broker.NodeID
	Authenticate(user, password string, peer netip.Addr) (broker.Principal, error)
	OpenConnection(info broker.ConnInfo, p broker.Principal, kill func(reason string)) (*broker.Conn, error)
	Connections() []broker.ConnectionView
	CloseConnection(id, reason string) error
	Topology(tenant string) broker.TopologyView
	QueueStats(tenant, name string) (broker.QueueStats, error)
	StreamStats(tenant, name string) ([]broker.PartitionStats, error)
	Cluster(tenant string) broker.ClusterView
	Trace(tenant, messageID string) ([]broker.TraceEvent, error)
	SetTrace(tenant, name string, on bool) error
	Blocked() (state func() (blocked bool, reason string), changed <-chan struct{})
	// Tenants lists every tenant, for metrics and the overview; the
	// tenant, user, permission and policy routes go through the caller's
	// *broker.Conn, which checks its tags.
	Tenants() []string
}

// Health is what /readyz reports: Ready, or the state the node is in
// ("starting", "stopping", "failed") with a detail.
type Health struct {
	Ready  bool
	Status string
	Detail string
}

// Config configures the management API. Zero values take the defaults
// named.
type Config struct {
	// Version is what /api/overview reports.
	Version string
	// Clock is the source of time (rates, pending-delivery expiry);
	// default base.RealClock.
	Clock  base.Clock
	Logger *slog.Logger // default slog.Default()
	// Readiness reports the node's state for /readyz; nil means ready
	// whenever the broker has not failed.
	Readiness func() Health
	// Engine, when set, is read at every scrape of /metrics for the
	// storage and replication metrics (EngineStats); the composition root
	// fills it from the broker's engine.
	Engine func() EngineStats
	// Frontends, when set (and Engine is not), is read at every scrape
	// for the protocol front ends' byte and error counts; the composition
	// root fills it from the front ends' servers.
	Frontends func() FrontendStats
	// Registry receives the API's collectors; nil means a new registry
	// with the Go runtime and process collectors, served at /metrics.
	Registry *prometheus.Registry
	// PendingAckTimeout bounds how long a delivery fetched with manual
	// acknowledgement over HTTP waits for its ack before it is returned
	// to the queue (default base.AdminPendingAckTimeoutDefault).
	PendingAckTimeout time.Duration
	// AuthCacheTTL is how long a successful HTTP basic login is
	// remembered, so that each request does not pay the password hash
	// (default base.AdminAuthCacheTTLDefault; negative disables it).
	AuthCacheTTL time.Duration
	// MetricsEntitiesMax lowers the queues and streams one scrape reports
	// (default and maximum base.AdminMetricsEntitiesMax).
	MetricsEntitiesMax int
}

// Server is the management API: an http.Handler serving /healthz,
// /readyz, /metrics and /api/... Close releases the broker connections
// it opened on behalf of HTTP clients.
type Server struct {
	b      Broker
	cfg    Config
	log    *slog.Logger
	clock  base.Clock
	mux    *http.ServeMux
	routes []*route // immutable after New
	// routeByID indexes routes by operation id, for the console's calls
	// of the handler layer (invoke); immutable after New.
	routeByID map[string]*route
	console   *console
	registry  *prometheus.Registry
	doc       []byte // the OpenAPI document, built once by New
	metrics   *apiMetrics

	sessions *sessions
	pending  *pendingTable
	rates    *rateTable
	logins   *loginCache

	mu           sync.Mutex
	undocumented []string // guarded by mu: responses or parameters the OpenAPI document lacks (tests assert none)
	closed       bool     // guarded by mu
}

// New returns the management API over b. The caller mounts the returned
// Server on its HTTP listener (it serves every path it knows, 404 for the
// rest) and calls Close after the listener stopped.
func New(b Broker, cfg Config) (*Server, error) {
	if b == nil {
		return nil, errors.New("admin: New: nil broker")
	}
	if cfg.Clock == nil {
		cfg.Clock = base.RealClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.PendingAckTimeout <= 0 {
		cfg.PendingAckTimeout = base.AdminPendingAckTimeoutDefault
	}
	if cfg.AuthCacheTTL == 0 {
		cfg.AuthCacheTTL = base.AdminAuthCacheTTLDefault
	}
	s := &Server{b: b, cfg: cfg, log: cfg.Logger, clock: cfg.Clock, mux: http.NewServeMux()}
	s.sessions = newSessions(b)
	s.pending = newPendingTable(cfg.Clock, cfg.PendingAckTimeout)
	s.rates = newRateTable(cfg.Clock)
	s.logins = newLoginCache(cfg.Clock, cfg.AuthCacheTTL)
	s.registry = cfg.Registry
	if s.registry == nil {
		s.registry = prometheus.NewRegistry()
		s.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	s.metrics = newAPIMetrics()
	if err := s.registry.Register(s.metrics); err != nil {
		return nil, err
	}
	if err := s.registry.Register(&brokerCollector{s: s}); err != nil {
		return nil, err
	}
	s.routes = s.table()
	for _, rt := range s.routes {
		s.mux.Handle(rt.method+" "+rt.path, s.wrap(rt))
	}
	s.routeByID = indexRoutes(s.routes)
	cons, err := newConsole(s)
	if err != nil {
		return nil, err
	}
	s.console = cons
	s.console.mount(s.mux)
	if s.doc, err = s.openAPI(); err != nil {
		return nil, err
	}
	return s, nil
}

// ServeHTTP serves the API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Registry returns the registry /metrics serves.
func (s *Server) Registry() *prometheus.Registry { return s.registry }

// Close returns every delivery still waiting for an HTTP ack to its queue
// and closes the broker connections opened for HTTP clients. Requests
// after Close fail with CodeStopped.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), base.AdminCloseTimeout)
	defer cancel()
	s.pending.closeAll(ctx)
	return s.sessions.closeAll(ctx)
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// noteUndocumented records a response status or parameter that the
// OpenAPI document does not declare for its route. Tests fail on any;
// in production it is logged once per kind.
func (s *Server) noteUndocumented(what string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.undocumented) < base.AdminUndocumentedMax {
		s.undocumented = append(s.undocumented, what)
		s.log.Warn("admin: response or parameter missing from the OpenAPI document", "what", what)
	}
}

// Undocumented returns what noteUndocumented recorded.
func (s *Server) Undocumented() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.undocumented...)
}

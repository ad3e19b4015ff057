package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/base/vfs"
	"github.com/ferry-mq/ferry/internal/broker"
	"github.com/ferry-mq/ferry/internal/controller"
	"github.com/ferry-mq/ferry/internal/proto/amqp"
	"github.com/ferry-mq/ferry/internal/proto/kafka"
)

// Options are what a Server takes from its environment besides Config;
// zero values take the defaults named. Tests and the sdk inject them.
type Options struct {
	// Logger receives the node's log (default NewLogger(cfg.Log, os.Stderr)).
	Logger *slog.Logger
	// Announce receives the start-up lines, one per listener and the
	// ready line (default os.Stderr). With log.format json they go to
	// Logger as records instead, so stderr stays one JSON object a line.
	Announce io.Writer
	FS       vfs.FS     // default vfs.Default
	Clock    base.Clock // default base.RealClock
	// Listen opens a listener, the Raft and forwarding ones too (default
	// net.Listen).
	Listen func(network, addr string) (net.Listener, error)
	// Version is what the node reports (server properties, /healthz).
	Version string
	// Abort stops the process on a storage failure that cannot be
	// answered with an error (broker.Config.Abort); it must not return.
	// Nil panics.
	Abort func(err error)
}

// lockName is the file in the data directory that Start locks.
const lockName = "ferry.lock"

// Server is one running node: the broker and every listener. Start
// returns it running; Shutdown stops it. Its methods are safe for
// concurrent use.
type Server struct {
	cfg    Config
	opts   Options
	log    *slog.Logger
	lock   io.Closer
	b      *broker.Broker
	fronts []*runningFront      // in start order; immutable after Start
	addrs  map[string]string    // protocol → bound address; immutable after Start
	idle   map[string][2]string // protocol → why it does not listen (state, note); written by Start only
	// amqpStats reads the AMQP server's counters for /metrics; set by
	// startAMQP, which runs before startHTTP (nil without AMQP).
	amqpStats func() amqp.Stats
	// kafkaStats is the same for the Kafka server; set by startKafka,
	// which also runs before startHTTP (nil without Kafka).
	kafkaStats func() kafka.Stats

	ready    chan struct{} // closed once the cluster is bootstrapped
	stopping atomic.Bool
	failed   chan struct{} // closed by fail
	failOnce sync.Once
	failErr  error // written once before failed is closed

	bgCtx    context.Context // cancelled by Shutdown: stops watch
	bgCancel context.CancelFunc
	bg       sync.WaitGroup // watch
	serving  sync.WaitGroup // every front end's Serve

	closed       chan struct{} // closed when Shutdown's close finished, even past its deadline
	shutdownOnce sync.Once
	shutdownErr  error // guarded by shutdownOnce
}

// Start opens the node: it locks the data directory, opens every
// configured listener (so a port in use fails before any data is
// touched), opens the broker and starts serving. It returns once
// everything listens; Ready reports when the cluster can take requests.
// Errors: *ConfigError when a listener cannot be opened or the data
// directory is held by another process, else the broker's error.
func Start(cfg Config, opts Options) (_ *Server, err error) {
	opts.setDefaults(cfg)
	s := &Server{cfg: cfg, opts: opts, log: opts.Logger, addrs: map[string]string{}, idle: map[string][2]string{},
		ready: make(chan struct{}), failed: make(chan struct{}), closed: make(chan struct{})}
	s.bgCtx, s.bgCancel = context.WithCancel(context.Background())
	defer func() {
		if err != nil {
			s.abort()
		}
	}()
	if err := s.lockDataDir(); err != nil {
		return nil, err
	}
	listeners, err := s.listen()
	if err != nil {
		return nil, err
	}
	if err := s.openBroker(); err != nil {
		closeAll(listeners)
		return nil, err
	}
	if err := s.startFronts(listeners); err != nil {
		return nil, err
	}
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		s.watch()
	}()
	return s, nil
}

func (o *Options) setDefaults(cfg Config) {
	if o.Logger == nil {
		o.Logger = NewLogger(cfg.Log, os.Stderr)
	}
	if o.Announce == nil {
		o.Announce = os.Stderr
	}
	if o.FS == nil {
		o.FS = vfs.Default
	}
	if o.Clock == nil {
		o.Clock = base.RealClock{}
	}
	if o.Listen == nil {
		o.Listen = net.Listen
	}
	if o.Version == "" {
		o.Version = "dev"
	}
}

func (s *Server) lockDataDir() error {
	dir := s.cfg.DataDir
	if err := s.opts.FS.MkdirAll(dir, 0o755); err != nil {
		return &ConfigError{Key: "data_dir", Value: dir, Reason: fmt.Sprintf("cannot create the directory: %v", err), Err: err}
	}
	lock, err := s.opts.FS.Lock(path.Join(dir, lockName))
	if errors.Is(err, vfs.ErrLocked) {
		return &ConfigError{Key: "data_dir", Value: dir, Err: err,
			Reason: "in use by another ferry process (its " + lockName + " is locked); stop that process or choose another data_dir"}
	}
	if err != nil {
		return &ConfigError{Key: "data_dir", Value: dir, Reason: fmt.Sprintf("cannot lock %s: %v", lockName, err), Err: err}
	}
	s.lock = lock
	return nil
}

func (s *Server) openBroker() error {
	peers, err := ParsePeers(s.cfg.Cluster.Peers, s.cfg.Node.ID)
	if err != nil {
		return &ConfigError{Key: "cluster.peers", Reason: err.Error()}
	}
	bc := broker.Config{
		NodeID: s.cfg.Node.ID, Dir: s.cfg.DataDir, FS: s.opts.FS, Clock: s.opts.Clock, Logger: s.log, Abort: s.opts.Abort,
		Listen:  s.opts.Listen,
		NoGuest: s.cfg.Auth.NoGuest,
		Flow: broker.FlowConfig{
			MemoryLimitBytes:   uint64(s.cfg.Flow.MemoryLimit),
			DiskFreeLimitBytes: uint64(s.cfg.Flow.DiskFreeLimit),
		},
	}
	for _, p := range peers {
		bc.Peers = append(bc.Peers, broker.Peer{ID: p.ID, RaftAddr: p.RaftAddr, ForwardAddr: p.ForwardAddr})
	}
	b, err := broker.Open(bc)
	if err != nil {
		return fmt.Errorf("opening the broker in %s: %w", s.cfg.DataDir, err)
	}
	s.b = b
	return nil
}

// watch marks the node ready once the cluster is bootstrapped and fails
// the server when the broker fail-stops (an fsync error: durability can
// no longer be promised, so the process must stop).
func (s *Server) watch() {
	t := s.opts.Clock.NewTimer(base.ServerWatchInterval)
	defer t.Stop()
	started := s.opts.Clock.Now()
	for {
		if err := s.b.Err(); err != nil {
			s.fail(fmt.Errorf("the broker stopped: %w", err))
			return
		}
		if !s.isReady() && s.readyNow(started) {
			close(s.ready)
			s.announceReady()
		}
		select {
		case <-s.bgCtx.Done():
			return
		case <-t.C():
			t.Reset(base.ServerWatchInterval)
		}
	}
}

// readyNow reports whether the node can take requests: the cluster is
// bootstrapped and every queue of the tenant "/" with a replica here has
// a leader, so that a client's first call after a restart finds its queue
// running. A queue without quorum (a multi-node cluster with peers down)
// must not keep the node unready forever: after ServerReadyLeadersWait
// the node is ready regardless, with a warning naming how many queues
// have no leader.
func (s *Server) readyNow(started time.Time) bool {
	if len(s.b.Topology("/").Exchanges) == 0 {
		return false // not bootstrapped: the amq.* exchanges are created with the cluster
	}
	leaderless := 0
	for _, q := range s.b.Topology("/").Queues {
		if !slices.Contains(q.Placement.Replicas, controller.NodeID(s.cfg.Node.ID)) {
			continue // its leader is elsewhere: calls are forwarded there
		}
		if st, err := s.b.QueueStats("/", q.Name); err != nil || st.Leader == 0 {
			leaderless++ // an error here means its group is not open yet
		}
	}
	if leaderless == 0 {
		return true
	}
	if s.opts.Clock.Now().Sub(started) < base.ServerReadyLeadersWait {
		return false
	}
	s.log.Warn("ready with queues that have no leader yet (no quorum?)", "queues", leaderless)
	return true
}

func (s *Server) isReady() bool {
	select {
	case <-s.ready:
		return true
	default:
		return false
	}
}

// fail records the first fatal error and closes Failed.
func (s *Server) fail(err error) {
	s.failOnce.Do(func() {
		s.failErr = err
		s.log.Error("node failed; shutting down", "err", err)
		close(s.failed)
	})
}

// Ready is closed once the node can take requests: the cluster is
// bootstrapped (tenant "/", the user guest, the amq.* exchanges exist).
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Failed is closed when a component failed while running (a listener's
// accept loop, a storage fail-stop); Err says why. The caller should then
// Shutdown and exit non-zero.
func (s *Server) Failed() <-chan struct{} { return s.failed }

// Err returns why Failed was closed, or nil.
func (s *Server) Err() error {
	select {
	case <-s.failed:
		return s.failErr
	default:
		return nil
	}
}

// Addr returns the bound address of a protocol's listener ("amqp",
// "kafka", "http"), and false when it does not listen.
func (s *Server) Addr(protocol string) (string, bool) {
	a, ok := s.addrs[protocol]
	return a, ok
}

// Addrs returns every bound listener address by protocol. The map is the
// caller's.
func (s *Server) Addrs() map[string]string {
	out := make(map[string]string, len(s.addrs))
	for k, v := range s.addrs {
		out[k] = v
	}
	return out
}

// Shutdown stops the node gracefully: it stops accepting, closes the
// front ends (in-flight confirms finish or fail), stops the HTTP server,
// closes the broker (flushing: everything confirmed is durable) and
// releases the data directory. It returns when that is done or when ctx
// ends first: then the components still closing keep going and the caller
// should exit the process. Calls after the first return the first's
// result.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutdownOnce.Do(func() {
		s.stopping.Store(true)
		s.log.Info("shutting down")
		done := make(chan error, 1) // size one: the closer never blocks, even if nobody waits
		go func() {
			done <- s.close()
			close(s.closed)
		}()
		select {
		case err := <-done:
			s.shutdownErr = err
			if err == nil {
				s.log.Info("stopped cleanly")
			}
		case <-ctx.Done():
			s.shutdownErr = fmt.Errorf("shutdown did not finish in time (%w); exiting with components still closing", ctx.Err())
		}
	})
	return s.shutdownErr
}

// close stops everything in reverse order of Start.
func (s *Server) close() error {
	var errs []error
	for i := len(s.fronts) - 1; i >= 0; i-- {
		if err := s.fronts[i].stop(); err != nil {
			errs = append(errs, fmt.Errorf("closing %s: %w", s.fronts[i].proto, err))
		}
	}
	s.serving.Wait()
	s.bgCancel()
	s.bg.Wait()
	if s.b != nil {
		if err := s.b.Close(); err != nil {
			errs = append(errs, fmt.Errorf("closing the broker: %w", err))
		}
	}
	if s.lock != nil {
		if err := s.lock.Close(); err != nil {
			errs = append(errs, fmt.Errorf("releasing %s: %w", lockName, err))
		}
	}
	return errors.Join(errs...)
}

// abort undoes a Start that failed halfway.
func (s *Server) abort() {
	_ = s.close()
}

// Run starts a node with cfg and serves until ctx ends or a component
// fails, then shuts down within cfg.Shutdown.Timeout. It returns nil after
// a clean shutdown on ctx, the failure otherwise.
func Run(ctx context.Context, cfg Config, opts Options) error {
	s, err := Start(cfg, opts)
	if err != nil {
		return err
	}
	select {
	case <-ctx.Done():
	case <-s.Failed():
	}
	sctx, cancel := context.WithTimeout(context.Background(), cfg.Shutdown.Timeout)
	defer cancel()
	err = s.Shutdown(sctx)
	if ferr := s.Err(); ferr != nil {
		return errors.Join(ferr, err)
	}
	return err
}

package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"

	"github.com/ferry-mq/ferry/internal/admin"
	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/proto/amqp"
	"github.com/ferry-mq/ferry/internal/proto/kafka"
)

// frontEnd is one protocol's server as the composition root sees it.
type frontEnd struct {
	proto string
	// start serves the protocol on ln until stop; nil means the
	// protocol is not available in this version.
	start func(s *Server, ln net.Listener) (served, error)
	// note is appended to the announce line (what the listener offers).
	note string
}

// served is a started front end: serve runs its accept loop until the
// server is closed; stop closes it and returns once its connections have
// ended (or failed to in their own bounded time).
type served struct {
	serve func() error
	stop  func() error
}

// frontEnds lists every protocol in the order they open, announce and
// (reversed) close.
func frontEnds() []frontEnd {
	return []frontEnd{
		{proto: "amqp", start: startAMQP},
		{proto: "kafka", start: startKafka},
		{proto: "http", start: startHTTP, note: "(API: /api, health: /healthz, /readyz, metrics: /metrics)"},
		{proto: "mqtt"},
		{proto: "stomp"},
	}
}

type runningFront struct {
	proto string
	stop  func() error
}

type openListener struct {
	fe   frontEnd
	key  string
	addr string // configured
	ln   net.Listener
}

// listen opens the listener of every configured, available front end and
// announces the others. A listener that cannot open is a *ConfigError
// naming its key.
func (s *Server) listen() ([]openListener, error) {
	byProto := map[string]string{}
	keys := map[string]string{}
	for _, l := range s.cfg.listenerKeys() {
		byProto[l.Proto], keys[l.Proto] = l.Addr, l.Key
	}
	var out []openListener
	for _, fe := range frontEnds() {
		addr, key := byProto[fe.proto], keys[fe.proto]
		switch {
		case fe.start == nil && addr == "":
			s.idle[fe.proto] = [2]string{"not available in this version", ""}
			continue
		case fe.start == nil:
			s.idle[fe.proto] = [2]string{"not available in this version", fmt.Sprintf("(%s %q is ignored)", key, addr)}
			continue
		case addr == "":
			s.idle[fe.proto] = [2]string{"off", fmt.Sprintf("(%s is empty)", key)}
			continue
		}
		ln, err := s.opts.Listen("tcp", addr)
		if err != nil {
			closeAll(out)
			f, _ := fieldByKey(key)
			return nil, &ConfigError{Key: key, Value: addr, Err: err, Reason: fmt.Sprintf(
				"cannot listen: %v; set %s or --%s to a free address (\":0\" picks one)", unwrapOp(err), f.Env, f.Flag)}
		}
		out = append(out, openListener{fe: fe, key: key, addr: addr, ln: ln})
	}
	return out, nil
}

// unwrapOp drops net.OpError's "listen tcp :5672:" prefix, which the
// ConfigError already says.
func unwrapOp(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err
	}
	return err
}

func closeAll(ls []openListener) {
	for _, l := range ls {
		_ = l.ln.Close()
	}
}

// startFronts starts every opened listener's front end, then announces
// every protocol in frontEnds order: its bound address, or why it does
// not listen. On error the front ends started so far stay in s.fronts for
// close to stop.
func (s *Server) startFronts(ls []openListener) error {
	if err := s.startListening(ls); err != nil {
		return err
	}
	for _, fe := range frontEnds() {
		if addr, ok := s.addrs[fe.proto]; ok {
			s.announce(fe.proto, "listening on "+addr, fe.note)
		} else if idle, ok := s.idle[fe.proto]; ok {
			s.announce(fe.proto, idle[0], idle[1])
		}
	}
	return nil
}

func (s *Server) startListening(ls []openListener) error {
	for i, l := range ls {
		sv, err := l.fe.start(s, l.ln)
		if err != nil {
			closeAll(ls[i:])
			return fmt.Errorf("starting the %s front end: %w", l.fe.proto, err)
		}
		bound := l.ln.Addr().String()
		s.addrs[l.fe.proto] = bound
		s.fronts = append(s.fronts, &runningFront{proto: l.fe.proto, stop: sv.stop})
		s.serving.Add(1)
		go func(proto string) {
			defer s.serving.Done()
			if err := sv.serve(); err != nil && !s.stopping.Load() {
				s.fail(fmt.Errorf("the %s listener failed: %w", proto, err))
			}
		}(l.fe.proto)
	}
	return nil
}

// announce prints one start-up line: "ferry: <proto> <state> <note>".
func (s *Server) announce(proto, state, note string) {
	if s.cfg.Log.Format == "json" {
		s.log.Info("listener", "protocol", proto, "state", state, "note", note)
		return
	}
	line := "ferry: " + proto + " " + state
	if note != "" {
		line += " " + note
	}
	fmt.Fprintln(s.opts.Announce, line)
}

func (s *Server) announceReady() {
	if s.cfg.Log.Format == "json" {
		s.log.Info("ready", "node", s.cfg.Node.ID, "data_dir", s.cfg.DataDir, "version", s.opts.Version)
		return
	}
	fmt.Fprintf(s.opts.Announce, "ferry: ready (node %d, data in %s, version %s)\n", s.cfg.Node.ID, s.cfg.DataDir, s.opts.Version)
}

// startHTTP serves the HTTP listener: the management API
// (internal/admin: /healthz, /readyz, /metrics, /api/...), with /readyz
// answering from the server's own readiness.
func startHTTP(s *Server, ln net.Listener) (served, error) {
	api, err := admin.New(s.b, admin.Config{
		Version: s.opts.Version, Clock: s.opts.Clock, Logger: s.log.With("proto", "http"),
		Readiness: s.health, Frontends: s.frontendStats,
	})
	if err != nil {
		return served{}, err
	}
	hs := &http.Server{
		Handler:           api,
		ReadHeaderTimeout: base.ServerHTTPHeaderTimeout,
		ErrorLog:          slog.NewLogLogger(s.log.With("proto", "http").Handler(), slog.LevelWarn),
	}
	return served{
		serve: func() error {
			if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
		stop: func() error {
			ctx, cancel := context.WithTimeout(context.Background(), s.cfg.Shutdown.Timeout)
			defer cancel()
			err := hs.Shutdown(ctx) // waits for in-flight requests
			return errors.Join(err, api.Close())
		},
	}, nil
}

// frontendStats gathers the front ends' counters for /metrics.
func (s *Server) frontendStats() admin.FrontendStats {
	out := admin.FrontendStats{BytesIn: map[string]uint64{}, BytesOut: map[string]uint64{}, Errors: map[string]map[string]uint64{}}
	if s.amqpStats != nil {
		st := s.amqpStats()
		out.BytesIn["amqp"], out.BytesOut["amqp"], out.Errors["amqp"] = st.BytesIn, st.BytesOut, st.Errors
	}
	if s.kafkaStats != nil {
		st := s.kafkaStats()
		out.BytesIn["kafka"], out.BytesOut["kafka"], out.Errors["kafka"] = st.BytesIn, st.BytesOut, st.Errors
	}
	return out
}

// health is the node's readiness for /readyz.
func (s *Server) health() admin.Health {
	switch {
	case s.stopping.Load():
		return admin.Health{Status: "stopping"}
	case !s.isReady():
		return admin.Health{Status: "starting", Detail: "the cluster is not bootstrapped, or its queues have no leader yet"}
	}
	return admin.Health{Ready: true, Status: "ready"}
}

// startAMQP serves AMQP 0-9-1 over the broker.
func startAMQP(s *Server, ln net.Listener) (served, error) {
	hb := s.cfg.AMQP.Heartbeat
	if hb == 0 {
		hb = -1 // the amqp package's "offer none"
	}
	srv, err := amqp.NewServer(ln, amqp.Config{
		Backend: amqp.NewBrokerBackend(s.b), Clock: s.opts.Clock, Logger: s.log.With("proto", "amqp"),
		Node: strconv.FormatUint(s.cfg.Node.ID, 10), Heartbeat: hb,
	})
	if err != nil {
		return served{}, err
	}
	s.amqpStats = srv.Stats
	return served{
		serve: func() error { return srv.Serve(context.Background()) },
		stop:  srv.Close, // Serve returns once every connection has ended
	}, nil
}

// startKafka serves Kafka over the broker.
func startKafka(s *Server, ln net.Listener) (served, error) {
	peers, err := ParseKafkaPeerAddrs(s.cfg.Kafka.PeerAddrs, s.cfg.Cluster.Peers) // validated by Load
	if err != nil {
		return served{}, err
	}
	advertised := s.cfg.Kafka.AdvertisedAddr
	if own, ok := peers[s.cfg.Node.ID]; ok && advertised == "" {
		advertised = net.JoinHostPort(own.Host, strconv.Itoa(int(own.Port)))
	}
	host, port, err := advertisedKafka(advertised, ln.Addr().String())
	if err != nil {
		return served{}, err
	}
	backend := &kafka.BrokerBackend{B: s.b, KafkaAddr: func(id int32) (string, int32, bool) {
		a, ok := peers[uint64(id)]
		return a.Host, a.Port, ok
	}}
	srv, err := kafka.NewServer(kafka.Config{
		Backend: backend, Clock: s.opts.Clock, Logger: s.log,
		AdvertisedHost: host, AdvertisedPort: port,
		AutoCreateTopics: s.cfg.Kafka.AutoCreateTopics, AuthRequired: s.cfg.Kafka.AuthRequired,
		AnonymousUser: s.cfg.Auth.AnonymousUser,
	})
	if err != nil {
		return served{}, err
	}
	s.kafkaStats = srv.Stats
	return served{
		serve: func() error {
			if err := srv.Serve(context.Background(), ln); !errors.Is(err, kafka.ErrServerClosed) {
				return err
			}
			return nil
		},
		stop: srv.Close, // waits for every connection
	}, nil
}

// advertisedKafka returns the address Kafka clients are told to connect
// to: kafka.advertised_addr when set, else the bound address, with
// localhost for an unspecified host (a client cannot dial "::").
func advertisedKafka(configured, bound string) (string, int32, error) {
	addr := configured
	if addr == "" {
		addr = bound
	}
	host, portText, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("kafka.advertised_addr %q: %w", addr, err)
	}
	port, err := strconv.ParseUint(portText, 10, 16)
	if err != nil {
		return "", 0, fmt.Errorf("kafka.advertised_addr %q: port: %w", addr, err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "localhost"
	}
	return host, int32(port), nil
}

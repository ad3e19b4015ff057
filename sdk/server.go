package ferry

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/server"
)

// Config configures an embedded server. Only DataDir is required.
type Config struct {
	// DataDir holds the node's data; it is created if missing and locked
	// while the server runs. Reopening a directory serves everything that
	// was confirmed in it.
	DataDir string

	// AMQPAddr, KafkaAddr and HTTPAddr are the listeners' addresses: ""
	// means a free port on 127.0.0.1 (Addr tells which), Off turns the
	// listener off.
	AMQPAddr, KafkaAddr, HTTPAddr string

	// Logger receives the node's log; nil discards it.
	Logger *slog.Logger

	// StartTimeout bounds NewServer's wait for the node to be ready
	// (default base.SDKStartTimeoutDefault, 30s).
	StartTimeout time.Duration
	// ShutdownTimeout bounds Close (default 30s).
	ShutdownTimeout time.Duration
}

// Off turns a listener off in Config.
const Off = "off"

// Server is a running embedded node.
type Server struct {
	s       *server.Server
	timeout time.Duration
}

// Client, Message, Delivery and Consumer are the in-process client's
// types; see their methods.
type (
	Client   = server.Client
	Message  = server.Message
	Delivery = server.Delivery
	Consumer = server.Consumer
)

// NewServer starts a node and returns once it takes requests. Errors
// name what was wrong: a data directory in use by another server, a
// listener address that cannot be opened, a storage failure.
func NewServer(cfg Config) (*Server, error) {
	if cfg.DataDir == "" {
		return nil, base.Errorf(base.CodeInvalidArgument, "ferry: Config.DataDir is empty; give the server a directory of its own")
	}
	sc := server.Defaults()
	sc.DataDir = cfg.DataDir
	sc.Listeners.AMQP = listenAddr(cfg.AMQPAddr)
	sc.Listeners.Kafka = listenAddr(cfg.KafkaAddr)
	sc.Listeners.HTTP = listenAddr(cfg.HTTPAddr)
	if cfg.ShutdownTimeout > 0 {
		sc.Shutdown.Timeout = cfg.ShutdownTimeout
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s, err := server.Start(sc, server.Options{Logger: logger, Announce: io.Discard})
	if err != nil {
		return nil, err
	}
	start := cfg.StartTimeout
	if start <= 0 {
		start = base.SDKStartTimeoutDefault
	}
	t := time.NewTimer(start)
	defer t.Stop()
	select {
	case <-s.Ready():
		return &Server{s: s, timeout: sc.Shutdown.Timeout}, nil
	case <-s.Failed():
		err = s.Err()
	case <-t.C:
		err = base.Errorf(base.CodeTimeout, "ferry: the server was not ready within %v", start)
	}
	ctx, cancel := context.WithTimeout(context.Background(), sc.Shutdown.Timeout)
	defer cancel()
	_ = s.Shutdown(ctx)
	return nil, err
}

func listenAddr(a string) string {
	switch a {
	case "":
		return "127.0.0.1:0"
	case Off:
		return ""
	}
	return a
}

// Addr returns the bound address (host:port) of a protocol's listener:
// "amqp", "kafka" or "http". It is "" when that listener is off or the
// protocol is not available in this version.
func (s *Server) Addr(protocol string) string {
	a, _ := s.s.Addr(protocol)
	return a
}

// Connect opens an in-process client acting as the user guest, who has
// every permission on the default virtual host "/". Close it when done.
func (s *Server) Connect(ctx context.Context) (*Client, error) {
	return s.s.Connect(ctx, "guest")
}

// Close shuts the node down gracefully: connections close, everything
// confirmed is flushed, the data directory is released. It is safe to
// call more than once.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	if err := s.s.Shutdown(ctx); err != nil {
		return fmt.Errorf("ferry: closing the server: %w", err)
	}
	return nil
}

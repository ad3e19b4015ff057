package amqp

import (
	"bufio"
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/proto/amqp/codec"
)

// FuzzParseAMQPlain feeds AMQPLAIN responses (a field table without its
// length) to the parser: it must never panic, and what it accepts has a
// login.
func FuzzParseAMQPlain(f *testing.F) {
	var w codec.Writer
	codec.EncodeMethod(&w, &codec.ConnectionStartOk{ClientProperties: codec.Table{"LOGIN": "guest", "PASSWORD": "guest"}})
	f.Add(w.Bytes()[8 : len(w.Bytes())-6])
	f.Add([]byte("\x05LOGINS\x00\x00\x00\x03bob"))
	f.Add([]byte("\x05LOGINF\x00\x00\x00\x00"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, resp []byte) {
		user, _, err := parseAMQPlain(string(resp))
		if err == nil && user == "" {
			t.Fatalf("accepted a response without a login: %q", resp)
		}
		var ce *codec.Error
		if err != nil && !errors.As(err, &ce) {
			t.Fatalf("error %v is not a *codec.Error", err)
		}
	})
}

// pipeListener is a net.Listener that never accepts: the fuzz target
// hands connections to the server directly.
type pipeListener struct{ done chan struct{} }

func (l pipeListener) Accept() (net.Conn, error) { <-l.done; return nil, net.ErrClosed }
func (l pipeListener) Close() error {
	select {
	case <-l.done:
	default:
		close(l.done)
	}
	return nil
}
func (l pipeListener) Addr() net.Addr { return &net.TCPAddr{} }

// fuzzHandshake is what a client sends to open a connection (as alice,
// since a pipe has no loopback address) and channel 1.
func fuzzHandshake() []byte {
	var w codec.Writer
	var out []byte
	out = append(out, codec.ProtocolHeader[:]...)
	for _, m := range []codec.Method{
		&codec.ConnectionStartOk{Mechanism: "PLAIN", Response: "\x00alice\x00secret",
			ClientProperties: codec.Table{"capabilities": codec.Table{"consumer_cancel_notify": true}}},
		&codec.ConnectionTuneOk{FrameMax: 4096},
		&codec.ConnectionOpen{VirtualHost: "/"},
	} {
		w.Reset()
		codec.EncodeMethod(&w, m)
		out = append(out, frameBytes(codec.FrameMethod, 0, w.Bytes(), codec.FrameEnd)...)
	}
	return append(out, methodFrame(1, &codec.ChannelOpen{})...)
}

// FuzzConnection sends arbitrary frames after a valid handshake to a
// server in front of the test double. Whatever the bytes, the server
// must not panic, must answer only with well-formed frames, must end
// the connection when the peer goes away, and must leave no goroutine of
// it behind.
func FuzzConnection(f *testing.F) {
	seeds := [][]byte{
		methodFrame(1, &codec.QueueDeclare{Queue: "q"}),
		append(methodFrame(1, &codec.BasicPublish{RoutingKey: "q"}), append(headerFrame(1, 3), frameBytes(codec.FrameBody, 1, []byte("abc"), codec.FrameEnd)...)...),
		methodFrame(1, &codec.BasicConsume{Queue: "q", ConsumerTag: "c"}),
		methodFrame(1, &codec.BasicAck{DeliveryTag: 1, Multiple: true}),
		methodFrame(1, &codec.ConfirmSelect{}),
		methodFrame(1, &codec.TxSelect{}),
		methodFrame(1, &codec.BasicQos{PrefetchCount: 1, Global: true}),
		methodFrame(1, &codec.ChannelClose{}),
		methodFrame(0, &codec.ConnectionClose{}),
		frameBytes(codec.FrameHeartbeat, 0, nil, codec.FrameEnd),
		frameBytes(codec.FrameMethod, 1, []byte{0, 60, 0, 40}, 0xCE),
		headerFrame(1, 1<<40),
		queueDeclareWithArgs(deepTable(40)),
	}
	for _, s := range seeds {
		f.Add(s)
	}
	b := newFakeBroker(f)
	ln := pipeListener{done: make(chan struct{})}
	srv, err := NewServer(ln, Config{Backend: b, Clock: base.NewFakeClock(epoch), Logger: quietLog})
	if err != nil {
		f.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(context.Background()) }()
	f.Cleanup(func() {
		_ = srv.Close()
		if err := <-served; err != nil {
			f.Errorf("Serve: %v", err)
		}
	})
	hello := fuzzHandshake()
	f.Fuzz(func(t *testing.T, input []byte) {
		client, server := net.Pipe()
		srv.start(server)
		readErr := make(chan error, 1)
		go func() { readErr <- checkServerOutput(client) }()
		_ = client.SetWriteDeadline(time.Now().Add(5 * time.Second))
		_, _ = client.Write(hello)
		_, _ = client.Write(input)
		// A pipe has no half-close: closing the client end ends the
		// connection (the server sees EOF, or a write error).
		_ = client.Close()
		if err := <-readErr; err != nil {
			t.Fatalf("server output: %v", err)
		}
		waitFor(t, "the connection's goroutines", func() bool {
			srv.mu.Lock()
			defer srv.mu.Unlock()
			return len(srv.conns) == 0
		})
	})
}

// checkServerOutput reads the protocol header answer or frames until the
// connection ends, checking each frame and method the server sends.
func checkServerOutput(c net.Conn) error {
	fr := codec.NewFrameReader(bufio.NewReader(c))
	_ = fr.SetFrameMax(base.AMQPFrameBytesMax)
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			var ce *codec.Error
			if errors.As(err, &ce) {
				return err
			}
			return nil // the end of the connection
		}
		if f.Type == codec.FrameMethod {
			if _, err := codec.DecodeMethod(f.Payload); err != nil {
				return err
			}
		}
	}
}

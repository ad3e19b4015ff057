package amqp

import (
	"bufio"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/ferry-mq/ferry/internal/proto/amqp/codec"
)

// rawClient speaks frames directly, to send what no well-behaved client
// library would and to see exactly what the server answers.
type rawClient struct {
	t   testing.TB
	nc  net.Conn
	bw  *bufio.Writer
	fw  *codec.FrameWriter
	fr  *codec.FrameReader
	dec codec.MethodDecoder
}

func dialRaw(t testing.TB, ts *testServer) *rawClient {
	t.Helper()
	nc, err := net.Dial("tcp", ts.srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	// A real-time bound on every read, so a bug fails the test instead
	// of hanging it; the server's own time is the fake clock.
	_ = nc.SetDeadline(time.Now().Add(20 * time.Second))
	r := &rawClient{t: t, nc: nc, bw: bufio.NewWriter(nc)}
	r.fw = codec.NewFrameWriter(r.bw)
	r.fr = codec.NewFrameReader(bufio.NewReader(nc))
	_ = r.fr.SetFrameMax(1 << 20)
	return r
}

func (r *rawClient) flush() {
	r.t.Helper()
	if err := r.bw.Flush(); err != nil {
		r.t.Fatalf("raw write: %v", err)
	}
}

func (r *rawClient) sendBytes(b []byte) {
	r.t.Helper()
	if _, err := r.bw.Write(b); err != nil {
		r.t.Fatal(err)
	}
	r.flush()
}

func (r *rawClient) send(channel uint16, m codec.Method) {
	r.t.Helper()
	if err := r.fw.WriteMethod(channel, m); err != nil {
		r.t.Fatalf("encoding %s: %v", m.Key(), err)
	}
	r.flush()
}

// frame reads the next frame other than a heartbeat.
func (r *rawClient) frame() codec.Frame {
	r.t.Helper()
	for {
		f, err := r.fr.ReadFrame()
		if err != nil {
			r.t.Fatalf("raw read: %v", err)
		}
		if f.Type != codec.FrameHeartbeat {
			return f
		}
	}
}

// method reads the next method frame.
func (r *rawClient) method() (uint16, codec.Method) {
	r.t.Helper()
	f := r.frame()
	if f.Type != codec.FrameMethod {
		r.t.Fatalf("got frame type %d, want a method", f.Type)
	}
	m, err := codec.DecodeMethod(f.Payload)
	if err != nil {
		r.t.Fatalf("decoding the server's method: %v", err)
	}
	return f.Channel, m
}

// expect reads a method and checks its type.
func expect[M codec.Method](r *rawClient) M {
	r.t.Helper()
	_, m := r.method()
	got, ok := m.(M)
	if !ok {
		var want M
		r.t.Fatalf("got %s (%+v), want %T", m.Key(), m, want)
	}
	return got
}

// handshake opens the connection as guest with the given tune-ok.
func (r *rawClient) handshake(tuneOk codec.ConnectionTuneOk, caps codec.Table) {
	r.t.Helper()
	r.sendBytes(codec.ProtocolHeader[:])
	expect[*codec.ConnectionStart](r)
	r.send(0, &codec.ConnectionStartOk{ClientProperties: codec.Table{"capabilities": caps},
		Mechanism: "PLAIN", Response: "\x00guest\x00guest", Locale: "en_US"})
	expect[*codec.ConnectionTune](r)
	if tuneOk.FrameMax == 0 {
		tuneOk.FrameMax = 131072
	}
	r.send(0, &tuneOk)
	if err := r.fw.SetFrameMax(tuneOk.FrameMax); err != nil {
		r.t.Fatal(err)
	}
	r.send(0, &codec.ConnectionOpen{VirtualHost: "/"})
	expect[*codec.ConnectionOpenOk](r)
}

func (r *rawClient) openChannel(id uint16) {
	r.t.Helper()
	r.send(id, &codec.ChannelOpen{})
	expect[*codec.ChannelOpenOk](r)
}

// expectConnectionClose reads until connection.close, checks its code,
// answers close-ok and checks that the server then closes the socket.
func (r *rawClient) expectConnectionClose(code codec.ReplyCode) *codec.ConnectionClose {
	r.t.Helper()
	for {
		ch, m := r.method()
		cl, ok := m.(*codec.ConnectionClose)
		if !ok {
			continue // replies sent before the error
		}
		if ch != 0 || codec.ReplyCode(cl.ReplyCode) != code {
			r.t.Fatalf("connection.close on channel %d: got %d %q, want %d", ch, cl.ReplyCode, cl.ReplyText, code)
		}
		// The server may already have closed after a frame error.
		_ = r.fw.WriteMethod(0, &codec.ConnectionCloseOk{})
		_ = r.bw.Flush()
		r.expectEOF()
		return cl
	}
}

// expectEOF checks that the server closes the socket (frames before the
// end are skipped).
func (r *rawClient) expectEOF() {
	r.t.Helper()
	for {
		_, err := r.fr.ReadFrame()
		if err == nil {
			continue
		}
		if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !isReset(err) {
			r.t.Fatalf("want the socket closed, got %v", err)
		}
		return
	}
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && !op.Timeout()
}

package kafka

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"log/slog"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/proto/kafka/protocol"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// The client suites mostly wait (rebalance delays, long polls), so
	// they run in parallel beyond GOMAXPROCS unless -parallel is given.
	flag.Parse()
	explicit := false
	flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "test.parallel" })
	if !explicit {
		flag.Set("test.parallel", "8")
	}
	goleak.VerifyTestMain(m,
		// sarama's metrics registry runs one ticker for the process.
		goleak.IgnoreTopFunction("github.com/rcrowley/go-metrics.(*meterArbiter).tick"),
	)
}

// testLogger logs warnings and errors only, to the test's output.
func testLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// testServer is a Server on 127.0.0.1:0.
type testServer struct {
	srv  *Server
	addr string
}

// startServer serves b on a loopback port until the test ends.
func startServer(t testing.TB, b Backend, mod func(*Config)) *testServer {
	t.Helper()
	cfg := Config{Backend: b, Logger: testLogger()}
	if mod != nil {
		mod(&cfg)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, _ := serve(t, cfg, ln)
	return &testServer{srv: srv, addr: ln.Addr().String()}
}

// serve serves a new Server of cfg on ln; stop closes the server and
// waits for Serve to return (also done when the test ends).
func serve(t testing.TB, cfg Config, ln net.Listener) (srv *Server, stop func()) {
	t.Helper()
	srv, err := NewServer(cfg)
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(context.Background(), ln) }() // owned: stop ends it and waits
	var once sync.Once
	stop = func() {
		once.Do(func() {
			srv.Close()
			if err := <-done; err != nil && !errors.Is(err, ErrServerClosed) {
				t.Errorf("Serve returned %v, want ErrServerClosed", err)
			}
		})
	}
	t.Cleanup(stop)
	return srv, stop
}

// rawClient speaks the Kafka protocol with the codec, for tests of what
// real clients never send.
type rawClient struct {
	t    testing.TB
	nc   net.Conn
	br   *bufio.Reader
	corr int32
	// sent and read are the bytes written and the frames read (with
	// their size prefixes), for tests of the server's byte counts.
	sent, read uint64
}

func dialRaw(t testing.TB, addr string) *rawClient {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &rawClient{t: t, nc: nc, br: bufio.NewReader(nc)}
}

// initProducerID asks for a new idempotent producer id (InitProducerId
// v4, no transaction) and fails the test unless one is granted.
func (c *rawClient) initProducerID() int64 {
	c.t.Helper()
	var resp protocol.InitProducerIdResponse
	c.roundTrip(&protocol.InitProducerIdRequest{TransactionTimeoutMs: 60000, ProducerId: -1, ProducerEpoch: -1}, &resp, 4)
	if resp.ErrorCode != 0 || resp.ProducerId < 0 {
		c.t.Fatalf("InitProducerId: error %d id %d", resp.ErrorCode, resp.ProducerId)
	}
	return resp.ProducerId
}

// send writes one request and returns its correlation id.
func (c *rawClient) send(req protocol.Request, version int16) int32 {
	c.t.Helper()
	c.corr++
	api, _ := protocol.LookupAPI(req.APIKey())
	h := protocol.RequestHeader{APIKey: req.APIKey(), APIVersion: version, CorrelationID: c.corr, ClientID: "raw-test",
		HeaderVersion: api.RequestHeaderVersion(version)}
	out, mark := protocol.BeginFrame(nil)
	out = protocol.AppendRequestHeader(out, &h)
	out = req.Encode(out, version)
	c.write(protocol.EndFrame(out, mark))
	return c.corr
}

func (c *rawClient) write(b []byte) {
	c.t.Helper()
	n, err := c.nc.Write(b)
	c.sent += uint64(n)
	if err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// readFrame reads one response frame, failing the test on a timeout.
func (c *rawClient) readFrame() ([]byte, error) {
	c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	frame, err := protocol.ReadFrame(c.br, nil, base.KafkaRequestBytesMax)
	if err == nil {
		c.read += uint64(4 + len(frame)) // the size prefix and the frame
	}
	return frame, err
}

// recv reads one response into resp and checks its correlation id.
func (c *rawClient) recv(resp protocol.Response, version int16, wantCorr int32) {
	c.t.Helper()
	frame, err := c.readFrame()
	if err != nil {
		c.t.Fatalf("reading the response: %v", err)
	}
	api, _ := protocol.LookupAPI(resp.APIKey())
	corr, body, err := protocol.ParseResponseHeader(frame, api.ResponseHeaderVersion(version))
	if err != nil {
		c.t.Fatalf("response header: %v", err)
	}
	if corr != wantCorr {
		c.t.Fatalf("correlation id: got %d, want %d", corr, wantCorr)
	}
	if err := resp.Decode(body, version); err != nil {
		c.t.Fatalf("decoding %T v%d: %v", resp, version, err)
	}
}

// roundTrip sends req and decodes the answer into resp.
func (c *rawClient) roundTrip(req protocol.Request, resp protocol.Response, version int16) {
	c.t.Helper()
	c.recv(resp, version, c.send(req, version))
}

// expectClosed checks that the server closes the connection without
// answering.
func (c *rawClient) expectClosed() {
	c.t.Helper()
	frame, err := c.readFrame()
	var ne net.Error
	switch {
	case err == nil:
		c.t.Fatalf("got a %d-byte frame, want the connection closed", len(frame))
	case errors.As(err, &ne) && ne.Timeout():
		c.t.Fatalf("connection still open after 10s, want it closed")
	}
}

package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/ferry-mq/ferry/internal/base"
)

// syncBuffer is a bytes.Buffer safe for the server's writer and the
// test's reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testConfig is a node on dir with only the HTTP listener, on a free
// loopback port.
func testConfig(dir string) Config {
	c := Defaults()
	c.DataDir = dir
	c.Listeners = ListenersConfig{HTTP: "127.0.0.1:0"}
	c.Flow.DiskFreeLimit = 1 // the test machine's free space must not block publishers
	return c
}

func testOptions(announce io.Writer) Options {
	return Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Announce: announce}
}

// startReady starts a node and waits until it is ready.
func startReady(t *testing.T, cfg Config, announce io.Writer) *Server {
	t.Helper()
	s, err := Start(cfg, testOptions(announce))
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.Ready():
	case <-s.Failed():
		t.Fatalf("node failed before ready: %v", s.Err())
	case <-time.After(30 * time.Second): // a bound on a hang, not a synchronisation
		t.Fatal("node not ready within 30s")
	}
	return s
}

func shutdown(t *testing.T, s *Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

func getStatus(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct{ Status string }
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("%s: %v", url, err)
	}
	return resp.StatusCode, body.Status
}

func TestStartAnnouncesListenersAndServesHealth(t *testing.T) {
	var out syncBuffer
	cfg := testConfig(t.TempDir())
	cfg.Listeners.MQTT = ":1883"
	s := startReady(t, cfg, &out)
	addr, ok := s.Addr("http")
	if !ok || !strings.HasPrefix(addr, "127.0.0.1:") || strings.HasSuffix(addr, ":0") {
		t.Fatalf("Addr(http) = %q, %v; want a bound loopback port", addr, ok)
	}
	if _, ok := s.Addr("mqtt"); ok {
		t.Errorf("Addr(mqtt) reported a listener that does not exist")
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		if code, status := getStatus(t, "http://"+addr+path); code != 200 {
			t.Errorf("GET %s = %d %q, want 200", path, code, status)
		}
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(metrics), "go_goroutines") {
		t.Errorf("GET /metrics = %d without the Go runtime metrics", resp.StatusCode)
	}
	if got := s.health(); !got.Ready || got.Status != "ready" {
		t.Errorf("health while running = %+v, want ready", got)
	}
	shutdown(t, s)
	if got := s.health(); got.Ready || got.Status != "stopping" {
		t.Errorf("health after Shutdown = %+v, want stopping", got)
	}
	lines := out.String()
	for _, want := range []string{
		"ferry: http listening on " + addr + " (API: /api, health: /healthz, /readyz, metrics: /metrics)\n",
		"ferry: mqtt not available in this version (listeners.mqtt \":1883\" is ignored)\n",
		"ferry: stomp not available in this version\n",
		"ferry: ready (node 1, data in " + cfg.DataDir,
	} {
		if !strings.Contains(lines, want) {
			t.Errorf("announcements lack %q; got:\n%s", want, lines)
		}
	}
	if n := strings.Count(lines, "\n"); n > base.ServerAnnounceLinesMax {
		t.Errorf("%d announcement lines, more than ServerAnnounceLinesMax %d", n, base.ServerAnnounceLinesMax)
	}
	if _, err := net.Dial("tcp", addr); err == nil {
		t.Errorf("the HTTP listener still accepts after Shutdown")
	}
}

func TestRestartedNodeServesEveryConfirmedMessage(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const n = 50
	s := startReady(t, testConfig(dir), io.Discard)
	c, err := s.Connect(ctx, "guest")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.DeclareQueue(ctx, "orders"); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		m := Message{Body: []byte(fmt.Sprintf("order-%d", i)), Headers: map[string]string{"seq": fmt.Sprint(i)}}
		if err := c.Publish(ctx, "", "orders", m); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	shutdown(t, s)

	s = startReady(t, testConfig(dir), io.Discard)
	defer shutdown(t, s)
	c, err = s.Connect(ctx, "guest")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := range n {
		d, ok, err := c.Get(ctx, "orders")
		if err != nil || !ok {
			t.Fatalf("get %d after restart: ok=%v err=%v; want message order-%d", i, ok, err, i)
		}
		if got, want := string(d.Body), fmt.Sprintf("order-%d", i); got != want || d.Headers["seq"] != fmt.Sprint(i) {
			t.Fatalf("message %d after restart = %q seq %q, want %q seq %d", i, got, d.Headers["seq"], want, i)
		}
	}
	if _, ok, err := c.Get(ctx, "orders"); ok || err != nil {
		t.Errorf("queue holds more than the %d confirmed messages (err %v)", n, err)
	}
}

func TestConsumerReceivesWithinPrefetchAndAcks(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s := startReady(t, testConfig(t.TempDir()), io.Discard)
	defer shutdown(t, s)
	c, err := s.Connect(ctx, "guest")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.DeclareQueue(ctx, "q"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Consume(ctx, "q", 0); base.CodeOf(err) != base.CodeInvalidArgument {
		t.Errorf("Consume with prefetch 0: %v, want invalid_argument", err)
	}
	if _, err := c.Consume(ctx, "q", base.AMQPPrefetchCountMax+1); base.CodeOf(err) != base.CodeInvalidArgument {
		t.Errorf("Consume with prefetch over AMQPPrefetchCountMax: %v, want invalid_argument", err)
	}
	cons, err := c.Consume(ctx, "q", 2)
	if err != nil {
		t.Fatal(err)
	}
	const n = 10
	for i := range n {
		if err := c.Publish(ctx, "", "q", Message{Body: []byte{byte(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		d, err := cons.Next(ctx)
		if err != nil {
			t.Fatalf("delivery %d: %v", i, err)
		}
		if len(d.Body) != 1 || d.Body[0] != byte(i) {
			t.Fatalf("delivery %d has body %v, want [%d]", i, d.Body, i)
		}
		if err := d.Ack(); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Publish(ctx, "", "no-such-queue", Message{Body: []byte("x")}); base.CodeOf(err) != base.CodeNotFound {
		t.Errorf("publish to a missing queue: %v, want not_found", err)
	}
}

func TestSecondNodeOnOneDataDirIsRefused(t *testing.T) {
	dir := t.TempDir()
	s := startReady(t, testConfig(dir), io.Discard)
	_, err := Start(testConfig(dir), testOptions(io.Discard))
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Key != "data_dir" || !strings.Contains(err.Error(), "in use by another ferry process") {
		t.Fatalf("second Start on one data dir: %v, want a data_dir ConfigError", err)
	}
	shutdown(t, s)
	s = startReady(t, testConfig(dir), io.Discard) // the lock was released
	shutdown(t, s)
}

func TestListenerInUseNamesItsKeyAndReleasesTheDataDir(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.Listeners.HTTP = taken.Addr().String()
	_, err = Start(cfg, testOptions(io.Discard))
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Key != "listeners.http" || !strings.Contains(err.Error(), "FERRY_LISTENERS_HTTP") {
		t.Fatalf("Start with the HTTP port taken: %v, want a listeners.http ConfigError naming FERRY_LISTENERS_HTTP", err)
	}
	s := startReady(t, testConfig(dir), io.Discard)
	shutdown(t, s)
}

// signalWriter closes seen once what was written contains want.
type signalWriter struct {
	buf  syncBuffer
	want string
	seen chan struct{}
	once sync.Once
}

func (w *signalWriter) Write(p []byte) (int, error) {
	n, err := w.buf.Write(p)
	if strings.Contains(w.buf.String(), w.want) {
		w.once.Do(func() { close(w.seen) })
	}
	return n, err
}

func TestRunShutsDownCleanlyWhenItsContextEnds(t *testing.T) {
	out := &signalWriter{want: "ferry: ready", seen: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	cfg := testConfig(t.TempDir())
	go func() { done <- Run(ctx, cfg, testOptions(out)) }()
	select {
	case <-out.seen:
	case err := <-done:
		t.Fatalf("Run returned before ready: %v", err)
	case <-time.After(30 * time.Second): // bounds a hang
		t.Fatalf("no ready line within 30s; got:\n%s", out.buf.String())
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run after cancel: %v, want nil", err)
	}
}

func TestJSONLogFormatAnnouncesAsRecords(t *testing.T) {
	var logs syncBuffer
	cfg := testConfig(t.TempDir())
	cfg.Log.Format = "json"
	s, err := Start(cfg, Options{Logger: NewLogger(cfg.Log, &logs), Announce: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	<-s.Ready()
	shutdown(t, s)
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
	}
	if !strings.Contains(logs.String(), `"msg":"listener","protocol":"http","state":"listening on 127.0.0.1:`) {
		t.Errorf("no listener record in the JSON log:\n%s", logs.String())
	}
}

// TestShutdownReturnsAtItsDeadlineWhileAStepHangs pins that Shutdown does
// not wait past its context for a step that hangs (here a front end
// whose stop blocks), and that the step finishing later completes the
// close.
func TestShutdownReturnsAtItsDeadlineWhileAStepHangs(t *testing.T) {
	s := startReady(t, testConfig(t.TempDir()), io.Discard)
	release := make(chan struct{})
	stopped := make(chan struct{})
	s.fronts = append(s.fronts, &runningFront{proto: "stuck", stop: func() error {
		<-release
		close(stopped)
		return nil
	}})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := s.Shutdown(ctx)
	if err == nil || !strings.Contains(err.Error(), "shutdown did not finish in time") {
		t.Fatalf("Shutdown with a hung step and an ended context: %v, want the deadline named", err)
	}
	if again := s.Shutdown(context.Background()); again != err {
		t.Errorf("second Shutdown = %v, want the first's result %v", again, err)
	}
	close(release)
	<-stopped
	<-s.closed // the rest of the close (HTTP, broker, lock) went on
	s2 := startReady(t, s.cfg, io.Discard)
	shutdown(t, s2)
}

// TestMetricsCountAMQPBytesAndErrors: a node's /metrics reports what its
// AMQP front end read, wrote and answered with errors (issue 7: bytes in
// and out, errors by code), parsed with Prometheus' text parser.
func TestMetricsCountAMQPBytesAndErrors(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.Listeners.AMQP = "127.0.0.1:0"
	s := startReady(t, cfg, io.Discard)
	defer shutdown(t, s)
	amqpAddr, _ := s.Addr("amqp")
	conn, err := amqp091.DialConfig("amqp://guest:guest@"+amqpAddr+"/", amqp091.Config{Heartbeat: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclarePassive("ghost", false, false, false, false, nil); err == nil {
		t.Fatal("passive declare of a missing queue succeeded")
	}
	fams := scrapeMetrics(t, s)
	find := func(fam string, labels map[string]string) float64 {
		t.Helper()
		v, ok := metricValue(fams, fam, labels)
		if !ok {
			t.Errorf("%s%v: missing", fam, labels)
		}
		return v
	}
	for _, fam := range []string{"ferry_network_received_bytes_total", "ferry_network_sent_bytes_total"} {
		if got := find(fam, map[string]string{"protocol": "amqp"}); got < 8 { // at least the protocol header, either way
			t.Errorf("%s{protocol=amqp} = %v after a handshake", fam, got)
		}
	}
	if got := find("ferry_errors_total", map[string]string{"protocol": "amqp", "code": "not_found"}); got != 1 {
		t.Errorf("ferry_errors_total{protocol=amqp,code=not_found} = %v, want 1", got)
	}
}

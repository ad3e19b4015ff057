package amqp

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// logBuffer collects a handler's output; the server's goroutines write
// while the test reads.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) records(t *testing.T) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(l.b.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q is not JSON: %v", line, err)
		}
		out = append(out, rec)
	}
	return out
}

// TestEveryConnectionLogLineNamesTheConnection: issue 7 asks for
// connection context on every log line. Every record a connection logs
// (here: a refused login and a channel error) carries
// its id and its peer's address.
func TestEveryConnectionLogLineNamesTheConnection(t *testing.T) {
	var logs logBuffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ts := startServer(t, func(c *Config) { c.Logger = logger; c.Node = "7" })
	bad := strings.Replace(ts.url, "guest:guest", "guest:wrong", 1)
	if _, err := amqp091.DialConfig(bad, amqp091.Config{Heartbeat: time.Hour}); err == nil {
		t.Fatal("a wrong password logged in")
	}
	conn := ts.dial(t)
	ch, _ := conn.Channel()
	_, err := ch.QueueDeclarePassive("ghost", false, false, false, false, nil)
	amqpErr(t, err) // both records are written before the client hears of the failure

	id := regexp.MustCompile(`^7/amqp/\d+$`)
	msgs := map[string]bool{}
	for _, rec := range logs.records(t) {
		msgs[rec["msg"].(string)] = true
		conn, _ := rec["conn"].(string)
		peer, _ := rec["peer"].(string)
		if !id.MatchString(conn) || !strings.HasPrefix(peer, "127.0.0.1:") {
			t.Errorf("log record without its connection: conn %q peer %q in %v", conn, peer, rec)
		}
	}
	for _, want := range []string{"authentication failed", "closing channel"} {
		if !msgs[want] {
			t.Errorf("no %q record among %v", want, msgs)
		}
	}
}

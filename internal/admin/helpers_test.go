package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ferry-mq/ferry/internal/auth"
	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/base/vfs"
	"github.com/ferry-mq/ferry/internal/broker"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testTimeout bounds every wait on the broker; tests wait for events, and
// this only turns a hang into a failure.
const testTimeout = 30 * time.Second

var quietLog = slog.New(slog.DiscardHandler)

var (
	guestOnce  sync.Once
	guestStore auth.Credentials
)

// guestCreds derives guest's credentials once per test binary (argon2id
// is slow under the race detector).
func guestCreds() *auth.Credentials {
	guestOnce.Do(func() {
		var err error
		guestStore, err = auth.NewCredentials("guest", auth.Salts{Argon2: []byte("0123456789abcdef"),
			ScramSHA256: []byte("0123456789abcdef"), ScramSHA512: []byte("0123456789abcdef")})
		if err != nil {
			panic(err)
		}
	})
	c := guestStore
	return &c
}

// openBroker opens a single-node broker on an in-memory file system and
// waits until it is bootstrapped (the amq.* exchanges exist).
func openBroker(t testing.TB) *broker.Broker {
	t.Helper()
	b, err := broker.Open(broker.Config{NodeID: 1, Dir: "/data", FS: vfs.NewMem(), Logger: quietLog,
		GuestCredentials: guestCreds(), TickInterval: 10 * time.Millisecond, LeaderPollInterval: 5 * time.Millisecond,
		Flow: broker.FlowConfig{Disabled: true}})
	if err != nil {
		t.Fatalf("broker.Open: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	deadline := time.Now().Add(testTimeout)
	tick := time.NewTicker(5 * time.Millisecond) // polls the bootstrap, which has no event the admin layer can wait on
	defer tick.Stop()
	for len(b.Topology("/").Exchanges) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the broker was not bootstrapped within %v", testTimeout)
		}
		<-tick.C
	}
	return b
}

// api is a Server under test behind a real HTTP listener on loopback.
type api struct {
	t   testing.TB
	s   *Server
	srv *httptest.Server
}

// newAPI serves New(b, cfg) and, at the end of the test, fails it if
// any response or parameter was missing from the OpenAPI document.
func newAPI(t testing.TB, b Broker, cfg Config) *api {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quietLog
	}
	s, err := New(b, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	a := &api{t: t, s: s, srv: httptest.NewServer(s)}
	t.Cleanup(func() {
		a.srv.Close()
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if u := s.Undocumented(); len(u) > 0 {
			t.Errorf("the OpenAPI document lacks what the handlers did:\n%s", strings.Join(u, "\n"))
		}
	})
	return a
}

// response is a decoded answer.
type response struct {
	status int
	body   []byte
	header http.Header
}

func (r response) json(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("response body %q is not the expected JSON: %v", r.body, err)
	}
}

// errCode returns the code of an error response, "" when the body is not
// one.
func (r response) errCode() string {
	var eb ErrorBody
	if json.Unmarshal(r.body, &eb) != nil {
		return ""
	}
	return eb.Error.Code
}

// do sends a request as guest; body is marshalled unless it is a string
// or []byte.
func (a *api) do(method, path string, body any) response {
	a.t.Helper()
	return a.doAs("guest", "guest", method, path, body)
}

func (a *api) doAs(user, password, method, path string, body any) response {
	a.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			a.t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, a.srv.URL+path, rd)
	if err != nil {
		a.t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.srv.Client().Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		a.t.Fatal(err)
	}
	return response{status: resp.StatusCode, body: data, header: resp.Header}
}

// must sends a request and fails the test unless it answers want.
func (a *api) must(want int, method, path string, body any) response {
	a.t.Helper()
	r := a.do(method, path, body)
	if r.status != want {
		a.t.Fatalf("%s %s: status %d %s, want %d", method, path, r.status, r.body, want)
	}
	return r
}

// fakeClock returns a FakeClock at a fixed instant.
func fakeClock() *base.FakeClock {
	return base.NewFakeClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
}

package amqp

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/ferry-mq/ferry/internal/auth"
	"github.com/ferry-mq/ferry/internal/broker"
)

// adminConn opens a broker connection as guest (administrator) for
// creating users through the broker's administration API.
func adminConn(t *testing.T, ts *testServer) *broker.Conn {
	t.Helper()
	c, err := ts.broker.OpenConnection(broker.ConnInfo{ID: "test-admin/" + t.Name(), Protocol: "test"},
		broker.Principal{User: "guest", Tenant: "/"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// putUser creates (or replaces) a user with one permission.
func putUser(t *testing.T, ts *testServer, name, password string, p auth.Permission) {
	t.Helper()
	ac := adminConn(t, ts)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := ac.PutUser(ctx, name, password, nil); err != nil {
		t.Fatalf("PutUser(%s): %v", name, err)
	}
	if err := ac.SetPermission(ctx, name, p); err != nil {
		t.Fatalf("SetPermission(%s): %v", name, err)
	}
}

// TestWrongPasswordOfACreatedUserClosesTheSocket: amqp091-go does not
// announce authentication_failure_close, so a refused login closes the
// socket without a word (ErrCredentials), as RabbitMQ does; the raw test
// TestAuthFailureCloseCapabilityGets403 covers clients that announce it.
func TestWrongPasswordOfACreatedUserClosesTheSocket(t *testing.T) {
	ts := startServer(t)
	putUser(t, ts, "walt", "right", auth.Permission{Tenant: "/", Configure: ".*", Write: ".*", Read: ".*"})
	url := strings.Replace(ts.url, "guest:guest", "walt:wrong", 1)
	for _, mech := range []amqp091.Authentication{
		&amqp091.PlainAuth{Username: "walt", Password: "wrong"},
		&amqp091.AMQPlainAuth{Username: "walt", Password: "wrong"},
	} {
		if _, err := amqp091.DialConfig(url, amqp091.Config{SASL: []amqp091.Authentication{mech}, Heartbeat: time.Hour}); err != amqp091.ErrCredentials {
			t.Errorf("%s with a wrong password: got %v, want ErrCredentials", mech.Mechanism(), err)
		}
	}
	ts.dialAs(t, "walt", "right") // fails the test unless walt logs in with the right password
}

// rawSASL is a SASL response as given, for malformed ones.
type rawSASL struct{ mechanism, response string }

func (r rawSASL) Mechanism() string { return r.mechanism }
func (r rawSASL) Response() string  { return r.response }

// TestMalformedSASLResponsesCloseTheSocketAsWrongPasswords: a response
// that does not parse, names no user, or asks to act as another user is
// refused the way a wrong password is, so amqp091-go (no
// authentication_failure_close) reports ErrCredentials for each, as it
// does against RabbitMQ.
func TestMalformedSASLResponsesCloseTheSocketAsWrongPasswords(t *testing.T) {
	ts := startServer(t)
	for _, r := range []rawSASL{
		{"PLAIN", "garbage"},
		{"PLAIN", "\x00\x00guest"},
		{"PLAIN", "\x00guest\x00guest\x00extra"},
		{"PLAIN", "other\x00guest\x00guest"},
		{"AMQPLAIN", "\x05LOGINS\x00\x00\x00\x00"},
	} {
		_, err := amqp091.DialConfig(ts.url, amqp091.Config{SASL: []amqp091.Authentication{r}, Heartbeat: time.Hour})
		if err != amqp091.ErrCredentials {
			t.Errorf("%s %q: got %v, want ErrCredentials", r.mechanism, r.response, err)
		}
	}
	ts.dialAs(t, "guest", "guest") // and the server still takes logins
}

// TestDeletingAUserClosesItsAMQPConnection: as RabbitMQ, the broker closes
// a deleted user's connections; the client sees connection.close 320
// CONNECTION_FORCED with the reason.
func TestDeletingAUserClosesItsAMQPConnection(t *testing.T) {
	ts := startServer(t)
	putUser(t, ts, "vic", "pw", auth.Permission{Tenant: "/", Configure: ".*", Write: ".*", Read: ".*"})
	c := ts.dialAs(t, "vic", "pw")
	closed := c.NotifyClose(make(chan *amqp091.Error, 1))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := adminConn(t, ts).DeleteUser(ctx, "vic"); err != nil {
		t.Fatal(err)
	}
	if e := closeReason(t, closed); e.Code != 320 || e.Reason != "CONNECTION_FORCED - user 'vic' was deleted" {
		t.Errorf("got %d %q, want 320 CONNECTION_FORCED - user 'vic' was deleted", e.Code, e.Reason)
	}
}

// TestOpenACreatedVhostAndItsPermission: connection.open of a vhost
// created through the broker's administration API works for a user with
// a permission there, keeps its queues apart from "/", and is 530 for a
// user without one.
func TestOpenACreatedVhostAndItsPermission(t *testing.T) {
	ts := startServer(t)
	ac := adminConn(t, ts)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := ac.CreateTenant(ctx, "staging"); err != nil {
		t.Fatal(err)
	}
	if err := ac.SetPermission(ctx, "guest", auth.Permission{Tenant: "staging", Configure: ".*", Write: ".*", Read: ".*"}); err != nil {
		t.Fatal(err)
	}
	putUser(t, ts, "rootonly", "pw", auth.Permission{Tenant: "/", Configure: ".*", Write: ".*", Read: ".*"})

	c, err := amqp091.DialConfig(ts.url+"staging", amqp091.Config{Heartbeat: time.Hour})
	if err != nil {
		t.Fatalf("open vhost staging as guest: %v", err)
	}
	defer c.Close()
	ch, _ := c.Channel()
	if _, err := ch.QueueDeclare("vhost-local", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	confirms := ch.NotifyPublish(make(chan amqp091.Confirmation, 1))
	if !publishConfirmed(t, ch, confirms, "", "vhost-local", amqp091.Publishing{Body: []byte("in staging")}) {
		t.Fatal("the publish in staging was nacked")
	}
	if d, ok, err := ch.Get("vhost-local", true); err != nil || !ok || string(d.Body) != "in staging" {
		t.Errorf("get in staging: %q ok %v err %v", d.Body, ok, err)
	}
	_, err = ts.channel(t).QueueDeclarePassive("vhost-local", false, false, false, false, nil)
	if e := amqpErr(t, err); e.Code != 404 || e.Reason != "NOT_FOUND - no queue 'vhost-local' in vhost '/'" {
		t.Errorf("the staging queue seen from /: got %d %q, want 404", e.Code, e.Reason)
	}

	_, err = amqp091.DialConfig(strings.Replace(ts.url, "guest:guest", "rootonly:pw", 1)+"staging", amqp091.Config{Heartbeat: time.Hour})
	if e := amqpErr(t, err); e.Code != 530 || !strings.Contains(e.Reason, "staging") {
		t.Errorf("open staging without a permission there: got %d %q, want 530 naming the vhost", e.Code, e.Reason)
	}
}

// nonLoopbackIPv4 returns an IPv4 address of this machine that is not a
// loopback one, or skips the test.
func nonLoopbackIPv4(t *testing.T) string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Skipf("listing interface addresses: %v", err)
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && !ipn.IP.IsLoopback() && !ipn.IP.IsLinkLocalUnicast() {
			return ipn.IP.String()
		}
	}
	t.Skip("this machine has no non-loopback IPv4 address")
	return ""
}

// TestGuestLogsInOnlyFromLoopback: as RabbitMQ's loopback_users default,
// guest is refused over a non-loopback address while another user with
// the same rights logs in from it.
func TestGuestLogsInOnlyFromLoopback(t *testing.T) {
	ip := nonLoopbackIPv4(t)
	ts := startServer(t)
	putUser(t, ts, "remote", "pw", auth.Permission{Tenant: "/", Configure: ".*", Write: ".*", Read: ".*"})
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Skipf("cannot listen on %s: %v", ip, err)
	}
	srv, err := NewServer(ln, Config{Backend: NewBrokerBackend(ts.broker), Logger: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(context.Background()) }()
	defer func() {
		_ = srv.Close()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	addr := ln.Addr().String()
	if c, err := amqp091.DialConfig("amqp://guest:guest@"+addr+"/", amqp091.Config{Heartbeat: time.Hour}); err != amqp091.ErrCredentials {
		t.Errorf("guest from %s: got %v, want ErrCredentials", ip, err)
		if err == nil {
			_ = c.Close()
		}
	}
	// Each fails the test unless the login succeeds.
	_ = dialURL(t, "amqp://remote:pw@"+addr+"/", amqp091.Config{}).Close()
	_ = ts.dial(t).Close()
}

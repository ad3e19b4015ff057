package amqp

import (
	"context"
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
	c, err := amqp091.DialConfig(strings.Replace(ts.url, "guest:guest", "walt:right", 1), amqp091.Config{Heartbeat: time.Hour})
	if err != nil {
		t.Fatalf("walt with the right password: %v", err)
	}
	c.Close()
}

// TestDeletingAUserClosesItsAMQPConnection: as RabbitMQ, the broker closes
// a deleted user's connections; the client sees connection.close 320
// CONNECTION_FORCED with the reason.
func TestDeletingAUserClosesItsAMQPConnection(t *testing.T) {
	ts := startServer(t)
	putUser(t, ts, "vic", "pw", auth.Permission{Tenant: "/", Configure: ".*", Write: ".*", Read: ".*"})
	c, err := amqp091.DialConfig(strings.Replace(ts.url, "guest:guest", "vic:pw", 1), amqp091.Config{Heartbeat: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
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

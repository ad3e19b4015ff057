package ferry

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ferry-mq/ferry/internal/base"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestNewServerNeedsADataDir(t *testing.T) {
	_, err := NewServer(Config{})
	if base.CodeOf(err) != base.CodeInvalidArgument || !strings.Contains(err.Error(), "DataDir") {
		t.Fatalf("NewServer without DataDir: %v, want invalid_argument naming DataDir", err)
	}
}

func TestServerListensOnLoopbackAndTurnsListenersOff(t *testing.T) {
	srv, err := NewServer(Config{DataDir: t.TempDir(), KafkaAddr: Off})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if a := srv.Addr("http"); !strings.HasPrefix(a, "127.0.0.1:") || strings.HasSuffix(a, ":0") {
		t.Errorf("Addr(http) = %q, want a bound loopback port", a)
	}
	if a := srv.Addr("kafka"); a != "" {
		t.Errorf("Addr(kafka) = %q with the listener off, want \"\"", a)
	}
	if a := srv.Addr("mqtt"); a != "" {
		t.Errorf("Addr(mqtt) = %q, want \"\" (not available)", a)
	}
}

func TestTwoServersCannotShareADataDir(t *testing.T) {
	dir := t.TempDir()
	srv, err := NewServer(Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if _, err := NewServer(Config{DataDir: dir}); err == nil || !strings.Contains(err.Error(), "in use by another ferry process") {
		t.Fatalf("second server on one dir: %v, want an error naming the lock", err)
	}
}

func TestReopenedServerServesConfirmedMessages(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	srv, err := NewServer(Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	c, err := srv.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.DeclareQueue(ctx, "q"); err != nil {
		t.Fatal(err)
	}
	msgs := make([]Message, 20)
	for i := range msgs {
		msgs[i] = Message{Body: []byte(fmt.Sprint(i)), MessageID: fmt.Sprintf("id-%d", i), ContentType: "text/plain"}
	}
	if err := c.Publish(ctx, "", "q", msgs...); err != nil {
		t.Fatal(err)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	srv, err = NewServer(Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	c, err = srv.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cons, err := c.Consume(ctx, "q", 5)
	if err != nil {
		t.Fatal(err)
	}
	for i := range msgs {
		d, err := cons.Next(ctx)
		if err != nil {
			t.Fatalf("delivery %d: %v", i, err)
		}
		if string(d.Body) != fmt.Sprint(i) || d.MessageID != fmt.Sprintf("id-%d", i) || d.ContentType != "text/plain" {
			t.Fatalf("delivery %d = %q id %q type %q, want %q id-%d text/plain", i, d.Body, d.MessageID, d.ContentType, fmt.Sprint(i), i)
		}
		if err := d.Ack(); err != nil {
			t.Fatal(err)
		}
	}
	if err := cons.Cancel(ctx); err != nil {
		t.Fatal(err)
	}
}

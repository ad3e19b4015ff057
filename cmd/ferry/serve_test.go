package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/server"
)

func httpStatus(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("%s: body is not JSON: %v", url, err)
	}
	return resp.StatusCode
}

func TestServeAnnouncesListenersAndStopsCleanlyOnSIGTERM(t *testing.T) {
	dir := t.TempDir()
	n := startNode(t, dir)
	httpAddr := n.addr("http")
	if !strings.HasPrefix(httpAddr, "127.0.0.1:") {
		t.Fatalf("no http listening line:\n%s", n.stderr.String())
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		if code := httpStatus(t, "http://"+httpAddr+path); code != http.StatusOK {
			t.Errorf("GET %s = %d, want 200", path, code)
		}
	}
	for _, proto := range []string{"amqp", "kafka", "mqtt", "stomp"} {
		if n.addr(proto) == "" && !strings.Contains(n.stderr.String(), "ferry: "+proto+" not available in this version") {
			t.Errorf("%s neither listens nor says it is not available:\n%s", proto, n.stderr.String())
		}
	}
	if code := n.stop(t, syscall.SIGTERM); code != ExitOK {
		t.Fatalf("exit %d after SIGTERM, want 0:\n%s", code, n.stderr.String())
	}
	for _, want := range []string{"terminated received: shutting down", "stopped cleanly"} {
		if !strings.Contains(n.stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, n.stderr.String())
		}
	}
	if _, err := os.Stat(dir + "/ferry.lock"); err != nil {
		t.Errorf("data directory has no lock file: %v", err)
	}
	again := startNode(t, dir) // the lock was released with the process
	if code := again.stop(t, syscall.SIGINT); code != ExitOK {
		t.Fatalf("exit %d after SIGINT, want 0:\n%s", code, again.stderr.String())
	}
}

func TestServeRefusesADataDirInUse(t *testing.T) {
	dir := t.TempDir()
	n := startNode(t, dir)
	r := runFerry(t, []string{"FERRY_DATA_DIR=" + dir, "FERRY_LISTENERS_AMQP=", "FERRY_LISTENERS_KAFKA=", "FERRY_LISTENERS_HTTP="}, "serve")
	if r.code != ExitUsage || !strings.Contains(r.stderr, "in use by another ferry process") {
		t.Errorf("second serve on one data dir: exit %d, stderr %q; want %d naming the lock", r.code, r.stderr, ExitUsage)
	}
	n.stop(t, syscall.SIGTERM)
}

func TestServeRefusesAPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	r := runFerry(t, []string{"FERRY_DATA_DIR=" + t.TempDir(), "FERRY_LISTENERS_AMQP=", "FERRY_LISTENERS_KAFKA=",
		"FERRY_LISTENERS_HTTP=" + ln.Addr().String()}, "serve")
	want := fmt.Sprintf("listeners.http: %q: cannot listen: bind: address already in use; set FERRY_LISTENERS_HTTP or --listeners-http", ln.Addr().String())
	if r.code != ExitUsage || !strings.Contains(r.stderr, want) {
		t.Errorf("exit %d, stderr %q; want %d and %q", r.code, r.stderr, ExitUsage, want)
	}
}

// TestServeRoundTripOverAMQPSurvivesRestart publishes with confirms
// through the real AMQP client, stops the node with SIGTERM, restarts it
// and consumes every confirmed message.
func TestServeRoundTripOverAMQPSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	n := startNode(t, dir)
	if n.addr("amqp") == "" {
		t.Fatalf("no amqp listening line:\n%s", n.stderr.String())
	}
	const count = 100
	conn, err := amqp.Dial("amqp://guest:guest@" + n.addr("amqp") + "/")
	if err != nil {
		t.Fatal(err)
	}
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare("cli-e2e", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i := range count {
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", "cli-e2e", true, false,
			amqp.Publishing{DeliveryMode: amqp.Persistent, Body: []byte(fmt.Sprintf("m-%03d", i))})
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := dc.WaitContext(ctx); !ok || err != nil {
			t.Fatalf("message %d not confirmed: ok=%v err=%v", i, ok, err)
		}
	}
	conn.Close()
	if code := n.stop(t, syscall.SIGTERM); code != ExitOK {
		t.Fatalf("exit %d after SIGTERM:\n%s", code, n.stderr.String())
	}

	n = startNode(t, dir)
	defer n.stop(t, syscall.SIGTERM)
	conn, err = amqp.Dial("amqp://guest:guest@" + n.addr("amqp") + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err = conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	deliveries, err := ch.ConsumeWithContext(ctx, "cli-e2e", "", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range count {
		select {
		case d := <-deliveries:
			if want := fmt.Sprintf("m-%03d", i); string(d.Body) != want {
				t.Fatalf("after restart, delivery %d = %q, want %q", i, d.Body, want)
			}
			if err := d.Ack(false); err != nil {
				t.Fatal(err)
			}
		case <-ctx.Done():
			t.Fatalf("after restart, only %d of %d confirmed messages arrived", i, count)
		}
	}
}

func TestWatchSignalsCancelsOnFirstAndForcesOnSecond(t *testing.T) {
	sigs := make(chan os.Signal, 2)
	done := make(chan struct{})
	cancelled := make(chan struct{})
	forced := make(chan os.Signal, 1)
	var stderr syncBuffer
	returned := make(chan struct{})
	go func() {
		defer close(returned)
		watchSignals(sigs, done, func() { close(cancelled) }, func(s os.Signal) { forced <- s }, &stderr)
	}()
	sigs <- syscall.SIGTERM
	<-cancelled
	select {
	case <-forced:
		t.Fatal("forced after one signal")
	default:
	}
	sigs <- syscall.SIGINT
	if got := <-forced; got != syscall.SIGINT {
		t.Errorf("forced by %v, want SIGINT", got)
	}
	<-returned
	if !strings.Contains(stderr.String(), "send it again to exit at once") {
		t.Errorf("first signal did not say a second one forces: %q", stderr.String())
	}

	// Shutdown finished before a second signal: the watcher just returns.
	sigs2 := make(chan os.Signal, 2)
	done2 := make(chan struct{})
	returned2 := make(chan struct{})
	go func() {
		defer close(returned2)
		watchSignals(sigs2, done2, func() {}, func(os.Signal) { t.Error("forced without a second signal") }, &bytes.Buffer{})
	}()
	sigs2 <- syscall.SIGTERM
	close(done2)
	<-returned2
}

func TestExitCodeOfMapsErrors(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want int
	}{
		{nil, ExitOK},
		{errors.New("boom"), ExitError},
		{&server.ConfigError{Key: "k", Reason: "bad"}, ExitUsage},
		{fmt.Errorf("wrapped: %w", &usageError{errors.New("x")}), ExitUsage},
		{exitErr(ExitPartial, errors.New("lost 3 messages")), ExitPartial},
		{base.Errorf(base.CodeNotFound, "no queue"), ExitNotFound},
		{base.Errorf(base.CodeAccessRefused, "no"), ExitRefused},
		{base.Errorf(base.CodeUnauthenticated, "who"), ExitRefused},
		{base.Errorf(base.CodeUnavailable, "no quorum"), ExitUnavailable},
		{&net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, ExitUnavailable},
		{base.Errorf(base.CodeStorageFailed, "fsync"), ExitError},
	} {
		if got := exitCodeOf(tt.err); got != tt.want {
			t.Errorf("exitCodeOf(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
	if exitErr(ExitPartial, nil) != nil {
		t.Errorf("exitErr of nil is not nil")
	}
}

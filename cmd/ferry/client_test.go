package main

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// clientNode starts `ferry serve` and returns it with the environment
// that points the client commands at it. Tests of the HTTP API skip when
// the node does not serve it (the server mounts internal/admin).
func clientNode(t *testing.T) (*node, []string) {
	t.Helper()
	n := startNode(t, t.TempDir())
	t.Cleanup(func() { n.stop(t, syscall.SIGTERM) })
	env := []string{"FERRY_SERVER=http://" + n.addr("http"),
		"FERRY_AMQP_URL=amqp://guest:guest@" + n.addr("amqp") + "/", "FERRY_KAFKA_BROKERS=" + n.addr("kafka")}
	resp, err := http.Get("http://" + n.addr("http") + "/api/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Skip("this ferry serve does not mount the management API (internal/admin) on its HTTP listener yet")
	}
	return n, env
}

// ferryOK runs the binary and fails the test unless it exits 0.
func ferryOK(t *testing.T, env []string, args ...string) string {
	t.Helper()
	r := runFerry(t, env, args...)
	if r.code != ExitOK {
		t.Fatalf("ferry %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

func TestPublishConsumeRoundTripOverTheHTTPAPI(t *testing.T) {
	_, env := clientNode(t)
	ferryOK(t, env, "queue", "create", "orders", "--arg", "x-max-length=100")
	out := ferryOK(t, env, "publish", "--queue", "orders", "--header", "source=test", "--property", "message_id=m-1", "first", "second")
	if !strings.Contains(out, "published 2 of 2 messages to queue orders") {
		t.Errorf("publish said %q", out)
	}
	list := ferryOK(t, env, "queue", "list")
	if !strings.Contains(list, "orders") || !strings.Contains(list, "READY") {
		t.Errorf("queue list = %q, want a table with orders", list)
	}
	lines := strings.Split(strings.TrimSpace(ferryOK(t, env, "consume", "orders", "-o", "json")), "\n")
	if len(lines) != 2 {
		t.Fatalf("consume printed %d lines, want 2: %q", len(lines), lines)
	}
	var m struct {
		Body       string            `json:"body"`
		Headers    map[string]any    `json:"headers"`
		Properties map[string]any    `json:"properties"`
		Extra      map[string]string `json:"-"`
	}
	if err := json.Unmarshal([]byte(lines[0]), &m); err != nil {
		t.Fatal(err)
	}
	if m.Body != "first" || m.Headers["source"] != "test" || m.Properties["message_id"] != "m-1" {
		t.Errorf("first message = %+v, want first with its header and message id", m)
	}
	if out := ferryOK(t, env, "consume", "orders"); out != "" {
		t.Errorf("consume of the drained queue printed %q, want nothing", out)
	}
	ferryOK(t, env, "publish", "--queue", "orders", "--count", "3", "x")
	if out := ferryOK(t, env, "consume", "orders", "--count", "2"); out != "x\nx\n" {
		t.Errorf("consume --count 2 = %q, want two bodies", out)
	}
	if out := ferryOK(t, env, "queue", "delete", "orders"); !strings.Contains(out, "1 messages discarded") {
		t.Errorf("delete said %q, want the one message left discarded", out)
	}
}

func TestPublishConsumeOverAMQPAndKafkaClients(t *testing.T) {
	n, env := clientNode(t)
	if n.addr("amqp") == "" || n.addr("kafka") == "" {
		t.Skip("the node does not serve AMQP and Kafka")
	}
	ferryOK(t, env, "queue", "create", "jobs")
	ferryOK(t, env, "publish", "--protocol", "amqp", "--queue", "jobs", "--property", "content_type=text/plain", "a1", "a2")
	if out := ferryOK(t, env, "consume", "--protocol", "amqp", "jobs"); out != "a1\na2\n" {
		t.Errorf("AMQP round trip = %q, want a1 and a2", out)
	}
	ferryOK(t, env, "stream", "create", "clicks")
	ferryOK(t, env, "publish", "--protocol", "kafka", "--stream", "clicks", "--key", "u1", "k1", "k2")
	if out := ferryOK(t, env, "consume", "--protocol", "kafka", "--stream", "clicks", "--count", "2"); out != "k1\nk2\n" {
		t.Errorf("Kafka round trip = %q, want k1 and k2", out)
	}
	// Across protocols: published over Kafka, read over HTTP.
	if out := ferryOK(t, env, "consume", "--stream", "clicks", "--count", "2"); out != "k1\nk2\n" {
		t.Errorf("the Kafka stream read over HTTP = %q, want k1 and k2", out)
	}
}

func TestTopologyCommandsListInspectAndDelete(t *testing.T) {
	_, env := clientNode(t)
	ferryOK(t, env, "exchange", "create", "events", "--type", "topic")
	ferryOK(t, env, "queue", "create", "eu")
	ferryOK(t, env, "binding", "create", "events", "eu", "--key", "eu.#")
	if out := ferryOK(t, env, "binding", "list", "--source", "events"); !strings.Contains(out, "eu.#") {
		t.Errorf("binding list = %q", out)
	}
	ferryOK(t, env, "publish", "--exchange", "events", "--routing-key", "eu.order", "routed")
	if out := ferryOK(t, env, "consume", "eu"); out != "routed\n" {
		t.Errorf("consume after routing = %q", out)
	}
	var ex map[string]any
	if err := json.Unmarshal([]byte(ferryOK(t, env, "exchange", "inspect", "events")), &ex); err != nil || ex["type"] != "topic" {
		t.Errorf("exchange inspect = %v (%v), want a topic exchange", ex, err)
	}
	ferryOK(t, env, "binding", "delete", "events", "eu", "--key", "eu.#")
	ferryOK(t, env, "exchange", "delete", "events")
	if r := runFerry(t, env, "exchange", "inspect", "events"); r.code != ExitNotFound || !strings.Contains(r.stderr, "no exchange 'events'") {
		t.Errorf("inspect of a deleted exchange: exit %d, stderr %q; want %d naming it", r.code, r.stderr, ExitNotFound)
	}
	if out := ferryOK(t, env, "cluster", "status"); !strings.Contains(out, "node 1") || !strings.Contains(out, "live") {
		t.Errorf("cluster status = %q", out)
	}
	ferryOK(t, env, "trace", "--enable", "eu")
	ferryOK(t, env, "publish", "--queue", "eu", "--property", "message_id=tr-1", "x")
	ferryOK(t, env, "consume", "eu")
	if out := ferryOK(t, env, "trace", "tr-1"); !strings.Contains(out, "enqueued") || !strings.Contains(out, "delivered") {
		t.Errorf("trace = %q, want the enqueued and delivered events", out)
	}
}

func TestClientErrorsNameTheProblemAndSetTheExitCode(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close() // a port nobody listens on
	r := runFerry(t, []string{"FERRY_SERVER=http://" + closed}, "queue", "list")
	if r.code != ExitUnavailable || !strings.Contains(r.stderr, "cannot reach the HTTP API") || !strings.Contains(r.stderr, "FERRY_SERVER") {
		t.Errorf("unreachable node: exit %d, stderr %q; want %d saying how to point at the node", r.code, r.stderr, ExitUnavailable)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"queue", "list", "-o", "yaml"}, `--output "yaml"`},
		{[]string{"publish", "x"}, "name one destination"},
		{[]string{"publish", "--queue", "q", "--protocol", "mqtt", "x"}, `--protocol "mqtt"`},
		{[]string{"consume"}, "name one source"},
		{[]string{"queue", "create"}, "needs the queue's name"},
		{[]string{"queue", "create", "q", "--arg", "novalue"}, "write key=value"},
		{[]string{"bench", "--durability", "memory"}, "not available in this version"},
		{[]string{"bench", "--protocol", "kafka", "--coalesce-writes"}, "--coalesce-writes is for --protocol amqp"},
		{[]string{"trace"}, "give a message id"},
	} {
		r := runFerry(t, []string{"FERRY_SERVER=http://" + closed}, tt.args...)
		if r.code != ExitUsage || !strings.Contains(r.stderr, tt.want) {
			t.Errorf("ferry %q: exit %d, stderr %q; want %d and %q", tt.args, r.code, r.stderr, ExitUsage, tt.want)
		}
	}

	_, env := clientNode(t)
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"consume", "missing"}, ExitNotFound, "no queue 'missing'"},
		{[]string{"queue", "inspect", "missing"}, ExitNotFound, "no queue 'missing'"},
		{[]string{"queue", "list", "--password", "wrong"}, ExitRefused, "Check --user and --password"},
		{[]string{"publish", "--exchange", "nope", "x"}, ExitNotFound, "nope"},
	} {
		r := runFerry(t, env, tt.args...)
		if r.code != tt.code || !strings.Contains(r.stderr, tt.want) {
			t.Errorf("ferry %q: exit %d, stderr %q; want %d and %q", tt.args, r.code, r.stderr, tt.code, tt.want)
		}
	}
	ferryOK(t, env, "exchange", "create", "lonely", "--type", "direct")
	r = runFerry(t, env, "publish", "--exchange", "lonely", "--routing-key", "k", "--mandatory", "a")
	if r.code != ExitPartial || !strings.Contains(r.stderr, "1 of 1 messages unroutable: no binding of exchange 'lonely' matches routing key 'k'") {
		t.Errorf("an unroutable mandatory publish: exit %d, stderr %q; want %d saying unroutable", r.code, r.stderr, ExitPartial)
	}
	// Without --mandatory a message no binding routes is dropped, as AMQP
	// does, and counts as published.
	if out := ferryOK(t, env, "publish", "--exchange", "lonely", "--routing-key", "k", "a"); !strings.Contains(out, "published 1 of 1") {
		t.Errorf("a non-mandatory publish routed nowhere said %q, want it published", out)
	}
}

// TestPublishToAMissingQueueIsUnroutable pins a bug: `ferry publish --queue
// q` with no queue q said "published 1 of 1 messages ... (confirmed
// durable)" and exited 0, though the default exchange dropped the message.
// A named queue must exist: the publish is mandatory, over HTTP and AMQP;
// over Kafka, a stream must exist (Ferry creates none on a produce).
func TestPublishToAMissingQueueIsUnroutable(t *testing.T) {
	_, env := clientNode(t)
	for _, proto := range []string{"http", "amqp"} {
		r := runFerry(t, env, "publish", "--protocol", proto, "--queue", "missing", "a", "b")
		want := "2 of 2 messages unroutable: no queue 'missing' in tenant '/'; create it with 'ferry queue create missing'"
		if r.code != ExitNotFound || !strings.Contains(r.stderr, want) || strings.Contains(r.stdout, "published") {
			t.Errorf("publish over %s to a missing queue: exit %d, stdout %q, stderr %q; want %d and %q",
				proto, r.code, r.stdout, r.stderr, ExitNotFound, want)
		}
	}
	r := runFerry(t, env, "publish", "--protocol", "kafka", "--stream", "absent", "a", "b")
	if want := "2 of 2 messages not published: no stream 'absent'; create it with 'ferry stream create absent'"; r.code != ExitNotFound ||
		!strings.Contains(r.stderr, want) || strings.Contains(r.stdout, "published") {
		t.Errorf("publish over kafka to a missing stream: exit %d, stdout %q, stderr %q; want %d and %q",
			r.code, r.stdout, r.stderr, ExitNotFound, want)
	}
	ferryOK(t, env, "queue", "create", "missing")
	if out := ferryOK(t, env, "publish", "--protocol", "amqp", "--queue", "missing", "c"); !strings.Contains(out, "published 1 of 1 messages to queue missing") {
		t.Errorf("publish once the queue exists said %q", out)
	}
	if out := ferryOK(t, env, "consume", "missing"); out != "c\n" {
		t.Errorf("the queue holds %q, want only the message published after it was created", out)
	}
}

func TestBenchAccountsForEveryMessage(t *testing.T) {
	n, env := clientNode(t)
	for _, c := range []struct {
		proto string
		extra []string
	}{{"amqp", nil}, {"amqp", []string{"--coalesce-writes"}}, {"kafka", nil}, {"http", nil}} {
		proto := strings.Join(append([]string{c.proto}, c.extra...), " ")
		if c.proto != "http" && n.addr(c.proto) == "" {
			continue
		}
		args := append([]string{"bench", "--protocol", c.proto, "--producers", "2", "--consumers", "2", "--messages", "200",
			"--size", "256", "--no-progress", "-o", "json"}, c.extra...)
		r := runFerry(t, env, args...)
		if r.code != ExitOK {
			t.Fatalf("bench over %s: exit %d\n%s\n%s", proto, r.code, r.stdout, r.stderr)
		}
		var out struct {
			Result struct {
				Tally struct {
					Sent, Confirmed, Received, Lost, Duplicated, Phantom uint64
				} `json:"tally"`
				Latency struct {
					Count int64 `json:"count"`
				} `json:"latency"`
			} `json:"result"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
			t.Fatalf("bench -o json over %s: %v\n%s", proto, err, r.stdout)
		}
		tl := out.Result.Tally
		if tl.Sent != 400 || tl.Confirmed != 400 || tl.Received != 400 || tl.Lost != 0 || tl.Phantom != 0 || out.Result.Latency.Count != 400 {
			t.Errorf("bench over %s: tally %+v, %d latencies; want 400 sent, confirmed, received and measured", proto, tl, out.Result.Latency.Count)
		}
	}
	r := runFerry(t, env, "bench", "--messages", "50", "--no-progress")
	for _, want := range []string{"publish (confirmed)", "P99.9", "LOST", "DUPLICATED"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("the bench table lacks %q:\n%s", want, r.stdout)
		}
	}
}

func TestStreamAndExchangeListInspectDelete(t *testing.T) {
	_, env := clientNode(t)
	ferryOK(t, env, "stream", "create", "clicks", "--partitions", "3", "--config", "retention.ms=86400000")
	if out := ferryOK(t, env, "stream", "list"); !strings.Contains(out, "clicks") || !strings.Contains(out, "86400000") {
		t.Errorf("stream list = %q, want clicks with its retention", out)
	}
	var st struct {
		Name       string `json:"name"`
		Partitions []any  `json:"partitions"`
	}
	if err := json.Unmarshal([]byte(ferryOK(t, env, "stream", "inspect", "clicks")), &st); err != nil || st.Name != "clicks" || len(st.Partitions) != 3 {
		t.Errorf("stream inspect = %+v (%v), want clicks with 3 partitions", st, err)
	}
	ferryOK(t, env, "stream", "delete", "clicks")
	if r := runFerry(t, env, "stream", "inspect", "clicks"); r.code != ExitNotFound || !strings.Contains(r.stderr, "clicks") {
		t.Errorf("inspect of a deleted stream: exit %d, stderr %q; want %d naming it", r.code, r.stderr, ExitNotFound)
	}

	ferryOK(t, env, "exchange", "create", "audit", "--type", "fanout")
	list := ferryOK(t, env, "exchange", "list")
	for _, want := range []string{"audit", "fanout", "amq.topic"} {
		if !strings.Contains(list, want) {
			t.Errorf("exchange list lacks %q:\n%s", want, list)
		}
	}
	ferryOK(t, env, "queue", "create", "audit-log")
	ferryOK(t, env, "binding", "create", "audit", "audit-log")
	var bs []map[string]any
	if err := json.Unmarshal([]byte(ferryOK(t, env, "binding", "inspect", "audit", "audit-log")), &bs); err != nil || len(bs) != 1 ||
		bs[0]["source"] != "audit" || bs[0]["destination"] != "audit-log" {
		t.Errorf("binding inspect = %v (%v), want the one binding audit -> audit-log", bs, err)
	}
	if r := runFerry(t, env, "binding", "inspect", "audit", "elsewhere"); r.code != ExitNotFound || !strings.Contains(r.stderr, "ferry binding list") {
		t.Errorf("inspect of a missing binding: exit %d, stderr %q; want %d pointing at binding list", r.code, r.stderr, ExitNotFound)
	}
	ferryOK(t, env, "publish", "--exchange", "audit", "a", "b")
	if out := ferryOK(t, env, "queue", "purge", "audit-log"); out != "purged 2 messages from queue \"audit-log\"\n" {
		t.Errorf("queue purge said %q, want the 2 messages purged", out)
	}
	if out := ferryOK(t, env, "consume", "audit-log"); out != "" {
		t.Errorf("the purged queue gave %q, want nothing", out)
	}
}

// TestConsumeFollowPrintsMessagesPublishedWhileItWaits: with --follow,
// consume keeps waiting on an empty queue and prints each message as it
// comes (here as a table), until --count.
func TestConsumeFollowPrintsMessagesPublishedWhileItWaits(t *testing.T) {
	_, env := clientNode(t)
	ferryOK(t, env, "queue", "create", "live")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second) // bounds a hang
	defer cancel()
	cmd := exec.CommandContext(ctx, ferryBin, "consume", "live", "--follow", "--count", "2", "-o", "table")
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stdout)
	next := func() string {
		t.Helper()
		if !lines.Scan() {
			t.Fatalf("consume --follow ended early (%v); stderr: %s", lines.Err(), stderr.String())
		}
		return lines.Text()
	}
	ferryOK(t, env, "publish", "--queue", "live", "first")
	if h := next(); !strings.HasPrefix(h, "ROUTING_KEY") || !strings.Contains(h, "BODY") {
		t.Errorf("table header = %q", h)
	}
	if row := next(); !strings.HasPrefix(row, "live ") || !strings.HasSuffix(row, " first") {
		t.Errorf("first row = %q, want routing key live and body first", row)
	}
	// The first message was printed and the queue is empty: a consume
	// without --follow would have ended here.
	ferryOK(t, env, "publish", "--queue", "live", "second")
	if row := next(); !strings.HasSuffix(row, " second") {
		t.Errorf("second row = %q, want body second", row)
	}
	if lines.Scan() {
		t.Errorf("more output after --count 2: %q", lines.Text())
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("consume --follow --count 2: %v; stderr: %s", err, stderr.String())
	}
}

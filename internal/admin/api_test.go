package admin

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ferry-mq/ferry/internal/base"
)

func TestHealthAndReadinessReportTheNodeState(t *testing.T) {
	b := openBroker(t)
	ready := Health{Ready: false, Status: "starting", Detail: "the cluster is not bootstrapped yet"}
	a := newAPI(t, b, Config{Readiness: func() Health { return ready }})
	var h HealthStatus
	a.must(http.StatusOK, "GET", "/healthz", nil).json(t, &h)
	if h.Status != "ok" {
		t.Errorf("healthz status %q, want ok", h.Status)
	}
	a.must(http.StatusServiceUnavailable, "GET", "/readyz", nil).json(t, &h)
	if h.Status != "starting" || h.Detail == "" {
		t.Errorf("readyz while starting = %+v, want starting with a detail", h)
	}
	ready = Health{Ready: true, Status: "ready"}
	a.must(http.StatusOK, "GET", "/readyz", nil).json(t, &h)
	if h.Status != "ready" {
		t.Errorf("readyz = %+v, want ready", h)
	}
}

func TestCredentialsAreRequiredAndWrongOnesAre401WithAChallenge(t *testing.T) {
	a := newAPI(t, openBroker(t), Config{})
	r := a.doAs("", "", "GET", "/api/overview", nil)
	if r.status != http.StatusUnauthorized || r.errCode() != "unauthenticated" || !strings.Contains(r.header.Get("WWW-Authenticate"), "Basic") {
		t.Errorf("no credentials: %d %s (WWW-Authenticate %q), want 401 unauthenticated with a Basic challenge",
			r.status, r.body, r.header.Get("WWW-Authenticate"))
	}
	r = a.doAs("guest", "wrong", "GET", "/api/overview", nil)
	if r.status != http.StatusUnauthorized || r.errCode() != "unauthenticated" {
		t.Errorf("wrong password: %d %s, want 401 unauthenticated", r.status, r.body)
	}
	r = a.doAs("nobody", "x", "GET", "/api/overview", nil)
	if r.status != http.StatusUnauthorized {
		t.Errorf("unknown user: %d %s, want 401", r.status, r.body)
	}
	for _, path := range []string{"/healthz", "/api/openapi.json", "/metrics"} {
		if r := a.doAs("", "", "GET", path, nil); r.status != http.StatusOK {
			t.Errorf("GET %s without credentials: %d, want 200 (public)", path, r.status)
		}
	}
}

func TestQueueLifecyclePublishGetAckAndStats(t *testing.T) {
	a := newAPI(t, openBroker(t), Config{})
	a.must(http.StatusNoContent, "PUT", "/api/queues/orders", QueueSpec{Arguments: map[string]any{"x-max-length": 100,
		"x-app": map[string]any{"team": "billing", "tags": []any{"eu", "prio"}}}})
	var pub PublishResponse
	a.must(http.StatusOK, "POST", "/api/queues/orders/publish", PublishRequest{Messages: []MessageIn{
		{Body: "one", Properties: Properties{MessageID: "m1", ContentType: "text/plain"}, Headers: map[string]any{"n": 1, "s": "x", "b": true}},
		{Body: "dHdv", BodyEncoding: "base64"},
		{Body: "three"},
	}}).json(t, &pub)
	if pub.Confirmed != 3 || pub.Failed != 0 {
		t.Fatalf("publish = %+v, want 3 confirmed", pub)
	}
	var q Queue
	a.must(http.StatusOK, "GET", "/api/queues/orders", nil).json(t, &q)
	if q.Stats == nil || q.Stats.Ready != 3 || q.Stats.Totals.Enqueued != 3 || q.Arguments["x-max-length"] != float64(100) {
		t.Fatalf("queue = %+v (stats %+v), want 3 ready, 3 enqueued, x-max-length 100", q, q.Stats)
	}
	if app, _ := q.Arguments["x-app"].(map[string]any); app["team"] != "billing" || fmt.Sprint(app["tags"]) != "[eu prio]" {
		t.Errorf("an object argument came back as %v, want it whole", q.Arguments["x-app"])
	}

	var got GetResponse
	a.must(http.StatusOK, "POST", "/api/queues/orders/get", GetRequest{Count: 2, AckMode: "manual"}).json(t, &got)
	if len(got.Messages) != 2 || got.Messages[0].Body != "one" || got.Messages[1].Body != "two" {
		t.Fatalf("get = %+v, want one and two", got.Messages)
	}
	m := got.Messages[0]
	if m.DeliveryToken == "" || m.Properties.MessageID != "m1" || m.Properties.ContentType != "text/plain" ||
		m.Headers["n"] != float64(1) || m.Headers["s"] != "x" || m.Headers["b"] != true || m.RoutingKey != "orders" {
		t.Errorf("first message = %+v, want its token, properties and headers back", m)
	}
	a.must(http.StatusOK, "GET", "/api/queues/orders", nil).json(t, &q)
	if q.Stats.Ready != 1 || q.Stats.Unacked != 2 {
		t.Errorf("after a manual get: ready %d unacked %d, want 1 and 2", q.Stats.Ready, q.Stats.Unacked)
	}
	var ack AckResponse
	a.must(http.StatusOK, "POST", "/api/queues/orders/ack", AckRequest{DeliveryTokens: []string{got.Messages[0].DeliveryToken}}).json(t, &ack)
	if ack.Settled != 1 {
		t.Errorf("ack settled %d, want 1", ack.Settled)
	}
	a.must(http.StatusOK, "POST", "/api/queues/orders/ack", AckRequest{DeliveryTokens: []string{got.Messages[1].DeliveryToken}, Nack: true, Requeue: true})
	r := a.do("POST", "/api/queues/orders/ack", AckRequest{DeliveryTokens: []string{got.Messages[0].DeliveryToken}})
	if r.status != http.StatusNotFound || r.errCode() != "not_found" {
		t.Errorf("acking twice: %d %s, want 404 not_found", r.status, r.body)
	}

	a.must(http.StatusOK, "POST", "/api/queues/orders/get", GetRequest{Count: 5}).json(t, &got)
	var bodies []string
	for _, m := range got.Messages {
		bodies = append(bodies, m.Body)
	}
	if !slices.Equal(bodies, []string{"two", "three"}) || !got.Messages[0].Redelivered {
		t.Errorf("auto get after the nack: %q (redelivered %v), want [two three] with two redelivered", bodies, got.Messages[0].Redelivered)
	}
	a.must(http.StatusOK, "GET", "/api/queues/orders", nil).json(t, &q)
	if q.Stats.Ready != 0 || q.Stats.Unacked != 0 || q.Stats.Totals.Acked != 3 {
		t.Errorf("after draining: %+v, want empty with 3 acked", q.Stats)
	}

	var list []Queue
	a.must(http.StatusOK, "GET", "/api/queues?stats=true", nil).json(t, &list)
	if len(list) != 1 || list[0].Name != "orders" || list[0].Stats == nil {
		t.Errorf("list = %+v, want orders with stats", list)
	}
	a.must(http.StatusOK, "POST", "/api/queues/orders/publish", PublishRequest{Messages: []MessageIn{{Body: "x"}}})
	r = a.do("DELETE", "/api/queues/orders?if_empty=true", nil)
	if r.status != http.StatusConflict {
		t.Errorf("delete if_empty of a non-empty queue: %d %s, want 409", r.status, r.body)
	}
	var del Deleted
	a.must(http.StatusOK, "DELETE", "/api/queues/orders/messages", nil).json(t, &del)
	if del.Messages != 1 {
		t.Errorf("purge removed %d, want 1", del.Messages)
	}
	a.must(http.StatusOK, "DELETE", "/api/queues/orders", nil)
	if r := a.do("GET", "/api/queues/orders", nil); r.status != http.StatusNotFound || r.errCode() != "not_found" {
		t.Errorf("deleted queue: %d %s, want 404 not_found", r.status, r.body)
	}
}

func TestExchangesBindingsAndRouting(t *testing.T) {
	a := newAPI(t, openBroker(t), Config{})
	a.must(http.StatusNoContent, "PUT", "/api/exchanges/events", ExchangeSpec{Type: "topic"})
	a.must(http.StatusNoContent, "PUT", "/api/queues/eu", nil)
	a.must(http.StatusCreated, "POST", "/api/bindings", Binding{Source: "events", Destination: "eu", RoutingKey: "eu.#"})
	var ex Exchange
	a.must(http.StatusOK, "GET", "/api/exchanges/events", nil).json(t, &ex)
	if ex.Type != "topic" || !ex.Durable {
		t.Errorf("exchange = %+v, want a durable topic exchange", ex)
	}
	var bs []Binding
	a.must(http.StatusOK, "GET", "/api/bindings?source=events", nil).json(t, &bs)
	if len(bs) != 1 || bs[0].Destination != "eu" || bs[0].RoutingKey != "eu.#" || bs[0].DestinationKind != "queue" {
		t.Errorf("bindings = %+v, want events -> eu with eu.#", bs)
	}
	var pub PublishResponse
	a.must(http.StatusOK, "POST", "/api/exchanges/events/publish", PublishRequest{Mandatory: true, Messages: []MessageIn{
		{RoutingKey: "eu.fr.order", Body: "routed"}, {RoutingKey: "us.order", Body: "nowhere"}}}).json(t, &pub)
	if pub.Confirmed != 1 || pub.Failed != 1 || !pub.Results[1].Unroutable || !pub.Results[0].Confirmed {
		t.Errorf("mandatory publish = %+v, want the first confirmed and the second unroutable", pub)
	}
	var got GetResponse
	a.must(http.StatusOK, "POST", "/api/queues/eu/get", nil).json(t, &got)
	if len(got.Messages) != 1 || got.Messages[0].Body != "routed" || got.Messages[0].Exchange != "events" {
		t.Errorf("get = %+v, want the routed message from events", got.Messages)
	}
	a.must(http.StatusNoContent, "DELETE", "/api/bindings", Binding{Source: "events", Destination: "eu", RoutingKey: "eu.#"})
	a.must(http.StatusOK, "GET", "/api/bindings?source=events", nil).json(t, &bs)
	if len(bs) != 0 {
		t.Errorf("bindings after unbind = %+v, want none", bs)
	}
	a.must(http.StatusOK, "POST", "/api/exchanges/amq.default/publish", PublishRequest{Messages: []MessageIn{{RoutingKey: "eu", Body: "direct"}}})
	a.must(http.StatusOK, "POST", "/api/queues/eu/get", nil).json(t, &got)
	if len(got.Messages) != 1 || got.Messages[0].Body != "direct" {
		t.Errorf("publish through amq.default: got %+v", got.Messages)
	}
	a.must(http.StatusNoContent, "DELETE", "/api/exchanges/events", nil)
	if r := a.do("GET", "/api/exchanges/events", nil); r.status != http.StatusNotFound {
		t.Errorf("deleted exchange: %d, want 404", r.status)
	}
}

func TestErrorsAreJSONWithStableCodes(t *testing.T) {
	a := newAPI(t, openBroker(t), Config{})
	a.must(http.StatusNoContent, "PUT", "/api/queues/q", nil)
	for _, tt := range []struct {
		name         string
		method, path string
		body         any
		status       int
		code         string
	}{
		{"missing queue", "GET", "/api/queues/nope", nil, 404, "not_found"},
		{"bad exchange type", "PUT", "/api/exchanges/x", ExchangeSpec{Type: "fan"}, 400, "invalid_argument"},
		{"unknown JSON field", "PUT", "/api/exchanges/x", `{"type":"direct","durabel":true}`, 400, "invalid_argument"},
		{"inequivalent redeclaration", "PUT", "/api/queues/q", QueueSpec{Arguments: map[string]any{"x-max-length": 5}}, 409, "precondition_failed"},
		{"reserved exchange name", "PUT", "/api/exchanges/amq.mine", ExchangeSpec{Type: "direct"}, 403, "access_refused"},
		{"publish to a missing exchange", "POST", "/api/exchanges/nope/publish", PublishRequest{Messages: []MessageIn{{Body: "x"}}}, 404, "not_found"},
		{"no messages", "POST", "/api/queues/q/publish", PublishRequest{}, 400, "invalid_argument"},
		{"bad ack mode", "POST", "/api/queues/q/get", GetRequest{AckMode: "sometimes"}, 400, "invalid_argument"},
		{"bad boolean", "DELETE", "/api/queues/q?if_empty=maybe", nil, 400, "invalid_argument"},
		{"object for a number argument", "PUT", "/api/queues/r", QueueSpec{Arguments: map[string]any{"x-max-length": map[string]any{"a": 1}}}, 409, "precondition_failed"},
		{"trailing data", "PUT", "/api/queues/r", `{} {}`, 400, "invalid_argument"},
		{"not JSON", "PUT", "/api/queues/r", `type=direct`, 400, "invalid_argument"},
	} {
		r := a.do(tt.method, tt.path, tt.body)
		if r.status != tt.status || r.errCode() != tt.code || r.header.Get("Content-Type") != "application/json" {
			t.Errorf("%s: %d %s (%s), want %d %s as JSON", tt.name, r.status, r.body, r.header.Get("Content-Type"), tt.status, tt.code)
		}
		var eb ErrorBody
		r.json(t, &eb)
		if eb.Error.Message == "" {
			t.Errorf("%s: error without a message: %s", tt.name, r.body)
		}
	}
}

func TestEveryCodeHasAnHTTPStatus(t *testing.T) {
	for _, c := range base.Codes() {
		st, ok := httpStatus[c]
		if !ok || st < 400 {
			t.Errorf("code %s has status %d (in table: %v), want a 4xx or 5xx entry", c, st, ok)
		}
		if c.Retriable() && st < 500 {
			t.Errorf("retriable code %s maps to %d: retriable errors are the server's (5xx)", c, st)
		}
	}
}

func TestRequestBodyBoundIsEnforcedAtItsEdge(t *testing.T) {
	a := newAPI(t, openBroker(t), Config{})
	pad := func(n int) string { // a valid JSON body of exactly n bytes
		return `{"messages":[{"body":"` + strings.Repeat("a", n-len(`{"messages":[{"body":""}]}`)) + `"}]}`
	}
	a.must(http.StatusNoContent, "PUT", "/api/queues/big", nil)
	r := a.do("POST", "/api/queues/big/publish", pad(base.AdminRequestBodyBytesMax))
	if r.status != http.StatusOK {
		t.Errorf("a body of exactly AdminRequestBodyBytesMax: %d %.200s, want 200", r.status, r.body)
	}
	r = a.do("POST", "/api/queues/big/publish", pad(base.AdminRequestBodyBytesMax+1))
	if r.status != http.StatusRequestEntityTooLarge || r.errCode() != "too_large" {
		t.Errorf("one byte more: %d %.200s, want 413 too_large", r.status, r.body)
	}
}

func TestPublishAndGetBoundsAtTheirEdges(t *testing.T) {
	a := newAPI(t, openBroker(t), Config{})
	a.must(http.StatusNoContent, "PUT", "/api/queues/q", nil)
	msgs := make([]MessageIn, base.AdminPublishMessagesMax+1)
	for i := range msgs {
		msgs[i].Body = fmt.Sprint(i)
	}
	if r := a.do("POST", "/api/queues/q/publish", PublishRequest{Messages: msgs}); r.status != http.StatusBadRequest {
		t.Errorf("AdminPublishMessagesMax+1 messages: %d, want 400", r.status)
	}
	var pub PublishResponse
	a.must(http.StatusOK, "POST", "/api/queues/q/publish", PublishRequest{Messages: msgs[:base.AdminPublishMessagesMax]}).json(t, &pub)
	if pub.Confirmed != base.AdminPublishMessagesMax {
		t.Fatalf("confirmed %d, want %d", pub.Confirmed, base.AdminPublishMessagesMax)
	}
	if r := a.do("POST", "/api/queues/q/get", GetRequest{Count: base.AdminGetMessagesMax + 1}); r.status != http.StatusBadRequest {
		t.Errorf("count AdminGetMessagesMax+1: %d, want 400", r.status)
	}
	var got GetResponse
	a.must(http.StatusOK, "POST", "/api/queues/q/get", GetRequest{Count: base.AdminGetMessagesMax}).json(t, &got)
	if len(got.Messages) != base.AdminGetMessagesMax || got.Messages[999].Body != "999" {
		t.Errorf("got %d messages, want %d in order", len(got.Messages), base.AdminGetMessagesMax)
	}
}

func TestListPagingAndItsLimit(t *testing.T) {
	a := newAPI(t, openBroker(t), Config{})
	for _, q := range []string{"a1", "a2", "a3", "b1"} {
		a.must(http.StatusNoContent, "PUT", "/api/queues/"+q, nil)
	}
	names := func(path string) []string {
		var qs []Queue
		a.must(http.StatusOK, "GET", path, nil).json(t, &qs)
		var out []string
		for _, q := range qs {
			out = append(out, q.Name)
		}
		return out
	}
	if got := names("/api/queues?prefix=a&limit=2"); !slices.Equal(got, []string{"a1", "a2"}) {
		t.Errorf("first page = %q, want [a1 a2]", got)
	}
	if got := names("/api/queues?prefix=a&limit=2&after=a2"); !slices.Equal(got, []string{"a3"}) {
		t.Errorf("second page = %q, want [a3]", got)
	}
	names(fmt.Sprintf("/api/queues?limit=%d", base.AdminListItemsMax))
	if r := a.do("GET", fmt.Sprintf("/api/queues?limit=%d", base.AdminListItemsMax+1), nil); r.status != http.StatusBadRequest {
		t.Errorf("limit past AdminListItemsMax: %d, want 400", r.status)
	}
}

func TestStreamsCreateReadAndDelete(t *testing.T) {
	a := newAPI(t, openBroker(t), Config{})
	a.must(http.StatusNoContent, "PUT", "/api/streams/clicks", StreamSpec{Partitions: 1, Config: map[string]string{"retention.ms": "3600000"}})
	var st Stream
	a.must(http.StatusOK, "GET", "/api/streams/clicks", nil).json(t, &st)
	if len(st.Partitions) != 1 || st.RetentionMs != 3600000 {
		t.Fatalf("stream = %+v, want 1 partition with retention.ms 3600000", st)
	}
	var pub PublishResponse
	a.must(http.StatusOK, "POST", "/api/queues/clicks/publish", PublishRequest{Messages: []MessageIn{
		{Body: "c0", Key: "k"}, {Body: "c1"}, {Body: "c2"}}}).json(t, &pub)
	if pub.Confirmed != 3 {
		t.Fatalf("publish to the stream = %+v", pub)
	}
	var read StreamReadResponse
	a.must(http.StatusOK, "GET", "/api/streams/clicks/messages?offset=first&count=3&timeout_ms=5000", nil).json(t, &read)
	if len(read.Messages) != 3 || read.Messages[0].Body != "c0" || read.Messages[0].Key != "k" || read.Messages[2].Body != "c2" {
		t.Fatalf("read from the first offset = %+v, want c0, c1, c2", read.Messages)
	}
	second := *read.Messages[1].Offset
	if *read.Messages[0].Offset+1 != second || second+1 != *read.Messages[2].Offset {
		t.Errorf("offsets %d, %d, %d are not consecutive", *read.Messages[0].Offset, second, *read.Messages[2].Offset)
	}
	a.must(http.StatusOK, "GET", fmt.Sprintf("/api/streams/clicks/messages?offset=%d&count=2&timeout_ms=5000", second), nil).json(t, &read)
	if len(read.Messages) != 2 || read.Messages[0].Body != "c1" || *read.Messages[0].Offset != second {
		t.Fatalf("read from offset %d = %+v, want c1 and c2", second, read.Messages)
	}
	a.must(http.StatusOK, "GET", "/api/streams/clicks", nil).json(t, &st)
	if hw := st.Partitions[0].HighWatermark; hw == nil || *hw != second+2 {
		t.Errorf("high watermark = %v, want %d", hw, second+2)
	}
	if n := st.Partitions[0].Messages; n == nil || *n != 3 {
		t.Errorf("messages = %v, want 3", n)
	}
	if r := a.do("GET", "/api/streams/clicks/messages?offset=soon", nil); r.status != http.StatusBadRequest {
		t.Errorf("bad offset: %d, want 400", r.status)
	}
	a.must(http.StatusNoContent, "DELETE", "/api/streams/clicks", nil)
	if r := a.do("GET", "/api/streams/clicks", nil); r.status != http.StatusNotFound {
		t.Errorf("deleted stream: %d, want 404", r.status)
	}
}

func TestManualDeliveriesExpireBackToTheQueue(t *testing.T) {
	clock := fakeClock()
	a := newAPI(t, openBroker(t), Config{Clock: clock, PendingAckTimeout: time.Minute})
	a.must(http.StatusNoContent, "PUT", "/api/queues/q", nil)
	a.must(http.StatusOK, "POST", "/api/queues/q/publish", PublishRequest{Messages: []MessageIn{{Body: "m"}}})
	var got GetResponse
	a.must(http.StatusOK, "POST", "/api/queues/q/get", GetRequest{AckMode: "manual"}).json(t, &got)
	if len(got.Messages) != 1 {
		t.Fatalf("get = %+v", got)
	}
	a.must(http.StatusOK, "POST", "/api/queues/q/get", nil).json(t, &got)
	if len(got.Messages) != 0 {
		t.Fatalf("the unacked message was delivered again before its expiry: %+v", got)
	}
	clock.Advance(time.Minute)
	a.must(http.StatusOK, "POST", "/api/queues/q/get", nil).json(t, &got) // this call expires the pending one first
	if len(got.Messages) != 1 || !got.Messages[0].Redelivered || got.Messages[0].Body != "m" {
		t.Errorf("after the ack timeout: %+v, want m redelivered", got.Messages)
	}
	if n := a.s.pending.len(); n != 0 {
		t.Errorf("%d deliveries still pending", n)
	}
}

func TestConnectionsAreListedAndClosable(t *testing.T) {
	a := newAPI(t, openBroker(t), Config{})
	a.must(http.StatusNoContent, "PUT", "/api/queues/q", nil) // opens guest's HTTP session
	var conns []Connection
	a.must(http.StatusOK, "GET", "/api/connections", nil).json(t, &conns)
	if len(conns) != 1 || conns[0].Protocol != "http" || conns[0].User != "guest" || conns[0].Tenant != "/" {
		t.Fatalf("connections = %+v, want guest's http session", conns)
	}
	a.must(http.StatusNoContent, "DELETE", "/api/connections/"+conns[0].ID, nil)
	a.must(http.StatusOK, "GET", "/api/connections", nil).json(t, &conns)
	if len(conns) != 0 {
		t.Errorf("after close: %+v, want none", conns)
	}
	if r := a.do("DELETE", "/api/connections/nope/1", nil); r.status != http.StatusNotFound {
		t.Errorf("closing an unknown connection: %d, want 404", r.status)
	}
	a.must(http.StatusNoContent, "PUT", "/api/queues/q", nil) // a new session opens
}

func TestOverviewAndClusterDescribeTheNode(t *testing.T) {
	a := newAPI(t, openBroker(t), Config{Version: "v9"})
	a.must(http.StatusNoContent, "PUT", "/api/queues/q", nil)
	a.must(http.StatusOK, "POST", "/api/queues/q/publish", PublishRequest{Messages: []MessageIn{{Body: "1"}, {Body: "2"}}})
	var ov Overview
	a.must(http.StatusOK, "GET", "/api/overview", nil).json(t, &ov)
	if ov.Node != 1 || ov.Version != "v9" || ov.Queues != 1 || ov.Messages.Ready != 2 || ov.Connections["http"] != 1 ||
		ov.Exchanges < 6 || len(ov.Nodes) != 1 || !ov.Nodes[0].Self {
		t.Errorf("overview = %+v", ov)
	}
	var cs ClusterStatus
	a.must(http.StatusOK, "GET", "/api/cluster", nil).json(t, &cs)
	if cs.Self != 1 || len(cs.Nodes) != 1 || cs.Nodes[0].ID != 1 {
		t.Errorf("cluster = %+v, want node 1 alone", cs)
	}
}

func TestTraceReturnsTheTimelineOfATracedMessage(t *testing.T) {
	a := newAPI(t, openBroker(t), Config{})
	a.must(http.StatusNoContent, "PUT", "/api/queues/traced", nil)
	if r := a.do("GET", "/api/trace/t-1", nil); r.status != http.StatusNotFound || !strings.Contains(string(r.body), "enable tracing") {
		t.Errorf("trace before enabling: %d %s, want 404 saying how to enable it", r.status, r.body)
	}
	a.must(http.StatusNoContent, "PUT", "/api/tracing/traced", TracingSpec{Enabled: true})
	a.must(http.StatusOK, "POST", "/api/queues/traced/publish", PublishRequest{Messages: []MessageIn{{Body: "x", Properties: Properties{MessageID: "t-1"}}}})
	a.must(http.StatusOK, "POST", "/api/queues/traced/get", nil)
	var tr Trace
	a.must(http.StatusOK, "GET", "/api/trace/t-1", nil).json(t, &tr)
	var kinds []string
	for _, e := range tr.Events {
		kinds = append(kinds, e.Kind)
	}
	for _, want := range []string{"enqueued", "delivered"} {
		if !slices.Contains(kinds, want) {
			t.Errorf("timeline %q lacks %q", kinds, want)
		}
	}
}

func TestConsumerGroupsAreListed(t *testing.T) {
	a := newAPI(t, openBroker(t), Config{})
	var gs []ConsumerGroup
	a.must(http.StatusOK, "GET", "/api/groups", nil).json(t, &gs)
	if gs == nil {
		t.Errorf("groups = nil, want an empty list")
	}
}

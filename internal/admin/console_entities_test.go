package admin

import (
	"net/http"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/broker"
)

func TestConsoleCreatesAndDeletesExchangesAndBindings(t *testing.T) {
	a, b := newGuestConsole(t, Config{})
	b.act("/console/queues/create", "tenant", "/", "name", "audit", "durable", "1")
	b.act("/console/exchanges/create", "tenant", "/", "name", "events", "type", "topic", "durable", "1").
		contains(t, "exchange created", "Exchange &#39;events&#39; declared.", "<td>events</td><td>topic</td>")
	b.act("/console/bindings/create", "tenant", "/", "source", "events", "destination", "audit", "destination_kind", "queue", "routing_key", "order.*").
		contains(t, "binding created", "Binding from &#39;events&#39; to &#39;audit&#39; created.", "<td>order.*</td>")
	var bs []Binding
	a.must(http.StatusOK, "GET", "/api/bindings?source=events", nil).json(t, &bs)
	if len(bs) != 1 || bs[0].Destination != "audit" || bs[0].RoutingKey != "order.*" {
		t.Fatalf("bindings from events: %+v, want one to audit with order.*", bs)
	}
	b.act("/console/queues/publish", "tenant", "/", "exchange", "events", "routing_key", "order.created", "body", "routed").
		contains(t, "publish to an exchange", "published to exchange &#39;events&#39;")
	if p := b.post("/console/queues/publish", "tenant", "/", "exchange", "events", "routing_key", "nothing.matches", "body", "x"); p.status == http.StatusSeeOther ||
		!strings.Contains(errorText(p.body), "unroutable") {
		t.Errorf("an unroutable publish: %d %s; want an error page saying it was unroutable", p.status, errorText(p.body))
	}
	b.mustGet("/console/queue?name=audit").contains(t, "queue page", `<dd id="queue-ready">1</dd>`, "<td>events</td><td>order.*</td>")
	b.act("/console/bindings/delete", "tenant", "/", "source", "events", "destination", "audit", "destination_kind", "queue", "routing_key", "order.*").
		contains(t, "binding deleted", "deleted.")
	a.must(http.StatusOK, "GET", "/api/bindings?source=events", nil).json(t, &bs)
	if len(bs) != 0 {
		t.Errorf("bindings after unbind: %+v, want none", bs)
	}
	b.act("/console/exchanges/delete", "tenant", "/", "name", "events").contains(t, "exchange deleted", "Exchange &#39;events&#39; deleted.")
	if r := a.do("GET", "/api/exchanges/events", nil); r.status != http.StatusNotFound {
		t.Errorf("deleted exchange answers %d, want 404", r.status)
	}
	if p := b.post("/console/exchanges/create", "tenant", "/", "name", "amq.mine", "type", "direct"); p.status != http.StatusForbidden {
		t.Errorf("declaring amq.mine: %d, want the API's 403", p.status)
	}
}

func TestConsoleManagesUsersPermissionsTenantsAndPolicies(t *testing.T) {
	a, b := newGuestConsole(t, Config{})
	b.act("/console/tenants/create", "tenant", "/", "name", "shop").contains(t, "tenant created", "Tenant &#39;shop&#39; created.", `tenant=shop`)
	b.act("/console/users/create", "tenant", "/", "name", "alice", "password", "pw", "tags", "monitoring, policymaker").
		contains(t, "user created", "User &#39;alice&#39; saved.", "<td>alice</td><td>monitoring, policymaker</td>")
	b.act("/console/permissions/set", "tenant", "/", "user", "alice", "perm_tenant", "shop", "configure", "^shop\\.", "write", ".*", "read", ".*").
		contains(t, "permission set", "Permission of &#39;alice&#39; in &#39;shop&#39; set.", `<code>^shop\.</code>`)
	b.act("/console/permissions/set", "tenant", "/", "user", "guest", "perm_tenant", "shop", "configure", ".*", "write", ".*", "read", ".*")
	b.act("/console/policies/create", "tenant", "shop", "name", "cap", "pattern", "^q", "apply_to", "queues", "priority", "3", "definition", `{"max-length": 10}`).
		contains(t, "policy created", "Policy &#39;cap&#39; saved.", "<td>cap</td>", `{&#34;max-length&#34;:10}`)
	var pol Policy
	a.must(http.StatusOK, "GET", "/api/policies/cap?tenant=shop", nil).json(t, &pol)
	if pol.Pattern != "^q" || pol.Priority != 3 || pol.ApplyTo != "queues" {
		t.Errorf("policy = %+v, want pattern ^q, priority 3, queues", pol)
	}
	if p := b.post("/console/policies/create", "tenant", "shop", "name", "bad", "pattern", "x", "definition", "not json"); p.status != http.StatusBadRequest {
		t.Errorf("a policy with a definition that is not JSON: %d, want 400", p.status)
	}
	b.act("/console/policies/delete", "tenant", "shop", "name", "cap").contains(t, "policy deleted", "No policies in tenant shop")
	b.act("/console/permissions/delete", "tenant", "/", "user", "alice", "perm_tenant", "shop")
	var perms []Permission
	a.must(http.StatusOK, "GET", "/api/permissions?user=alice", nil).json(t, &perms)
	if len(perms) != 0 {
		t.Errorf("alice's permissions after removal: %+v, want none", perms)
	}
	b.act("/console/users/delete", "tenant", "/", "name", "alice").contains(t, "user deleted", "User &#39;alice&#39; deleted.")
	b.act("/console/tenants/delete", "tenant", "/", "name", "shop")
	if r := a.do("GET", "/api/tenants/shop", nil); r.status != http.StatusNotFound {
		t.Errorf("deleted tenant answers %d, want 404", r.status)
	}
}

func TestConsoleClosesAConnectionAndCreatesReadsAndDeletesAStream(t *testing.T) {
	a, b := newGuestConsole(t, Config{})
	a.must(http.StatusNoContent, "PUT", "/api/queues/held", nil) // opens the API's broker session of guest in "/"
	var conns []Connection
	a.must(http.StatusOK, "GET", "/api/connections", nil).json(t, &conns)
	if len(conns) == 0 {
		t.Fatal("no connection to close")
	}
	b.mustGet("/console/connections").contains(t, "connections", conns[0].ID)
	b.act("/console/connections/close", "id", conns[0].ID).contains(t, "closed", "Connection &#39;"+conns[0].ID+"&#39; closed.")
	if p := b.post("/console/connections/close", "id", "amqp/nope"); p.status != http.StatusNotFound {
		t.Errorf("closing an unknown connection: %d, want 404", p.status)
	}

	b.act("/console/streams/create", "tenant", "/", "name", "clicks", "partitions", "2", "retention.ms", "3600000").
		contains(t, "stream created", "Stream &#39;clicks&#39; created.", "1h0m0s")
	b.act("/console/queues/publish", "tenant", "/", "queue", "clicks", "kind", "stream", "key", "k", "body", "first click")
	read := b.mustGet("/console/stream?name=clicks&offset=first")
	read.contains(t, "stream read", "first click", "<th>Messages</th>")
	// The partition holding the message: 1 message, its bytes, no producer.
	if !regexp.MustCompile(`<td class="num">1</td><td class="num">[1-9][0-9]*</td><td class="num">0</td></tr>`).MatchString(read.body) {
		t.Errorf("stream page: no partition row with 1 message:\n%s", read.body)
	}
	b.mustGet("/console/streams").contains(t, "stream list", "clicks", `<td class="num">2</td>`)
	b.act("/console/streams/delete", "tenant", "/", "name", "clicks").contains(t, "stream deleted", "No streams in tenant /")
}

func TestConsoleTraceLooksUpAMessageHistory(t *testing.T) {
	_, b := newGuestConsole(t, Config{})
	b.act("/console/queues/create", "tenant", "/", "name", "traced", "durable", "1")
	b.act("/console/tracing/set", "tenant", "/", "name", "traced", "enabled", "true").contains(t, "tracing on", "turned on")
	b.act("/console/queues/publish", "tenant", "/", "queue", "traced", "body", "x", "message_id", "trace-me")
	b.mustGet("/console/trace?id=trace-me").contains(t, "trace", "History of trace-me", "traced")
	if p := b.get("/console/trace?id=never-sent"); p.status != http.StatusNotFound {
		t.Errorf("trace of an unknown id: %d, want 404", p.status)
	}
}

func TestConsoleSessionsExpireAreTiedToThePeerAndAreBounded(t *testing.T) {
	clock := fakeClock()
	cs := newConsoleSessions(clock)
	p := broker.Principal{User: "guest", Tenant: "/", Tags: []string{"administrator"}}
	here, there := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("10.0.0.9")
	tok, err := cs.create(p, here)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := cs.lookup(tok, there); ok {
		t.Errorf("a session was accepted from another peer address")
	}
	clock.Advance(base.AdminConsoleSessionIdleTimeout - time.Second)
	if s, ok := cs.lookup(tok, here); !ok || s.p.User != "guest" {
		t.Fatalf("session just before its idle timeout: ok=%v, want live", ok)
	}
	clock.Advance(base.AdminConsoleSessionIdleTimeout)
	if _, ok := cs.lookup(tok, here); ok {
		t.Errorf("a session idle for AdminConsoleSessionIdleTimeout is still live")
	}
	// Used often, a session still ends at its lifetime.
	tok, _ = cs.create(p, here)
	for range int(base.AdminConsoleSessionLifetimeMax / (base.AdminConsoleSessionIdleTimeout / 2)) {
		clock.Advance(base.AdminConsoleSessionIdleTimeout / 2)
		cs.lookup(tok, here)
	}
	if _, ok := cs.lookup(tok, here); ok {
		t.Errorf("a busy session outlived AdminConsoleSessionLifetimeMax")
	}
	// The table holds AdminConsoleSessionsMax live sessions, then refuses.
	cs = newConsoleSessions(clock)
	for i := range base.AdminConsoleSessionsMax {
		if _, err := cs.create(p, here); err != nil {
			t.Fatalf("session %d: %v", i, err)
		}
	}
	if _, err := cs.create(p, here); base.CodeOf(err) != base.CodeOverloaded {
		t.Errorf("session AdminConsoleSessionsMax+1: %v, want overloaded", err)
	}
	clock.Advance(base.AdminConsoleSessionIdleTimeout)
	if _, err := cs.create(p, here); err != nil || cs.len() != 1 {
		t.Errorf("after every session expired: %v with %d sessions, want the expired dropped and one new", err, cs.len())
	}
}

func TestConsoleLoginIsRefusedWhenTheSessionTableIsFull(t *testing.T) {
	a := newAPI(t, openBroker(t), Config{})
	for range base.AdminConsoleSessionsMax {
		if _, err := a.s.console.sessions.create(broker.Principal{User: "guest"}, netip.MustParseAddr("127.0.0.1")); err != nil {
			t.Fatal(err)
		}
	}
	b := newBrowser(t, a)
	p := b.send("POST", "/console/login", map[string][]string{"user": {"guest"}, "password": {"guest"}}, nil)
	if p.status != http.StatusServiceUnavailable || !strings.Contains(errorText(p.body), "AdminConsoleSessionsMax") {
		t.Errorf("login with a full table: %d %s, want 503 naming AdminConsoleSessionsMax", p.status, errorText(p.body))
	}
}

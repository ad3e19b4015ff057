package admin

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/ferry-mq/ferry/internal/base"
)

func TestConsoleRootRedirectsBrowsersAndStays404ForAPIClients(t *testing.T) {
	a := newAPI(t, openBroker(t), Config{})
	b := newBrowser(t, a)
	if p := b.get("/"); p.status != http.StatusSeeOther || p.header.Get("Location") != "/console/" {
		t.Errorf("GET / accepting HTML: %d Location %q, want 303 to /console/", p.status, p.header.Get("Location"))
	}
	if r := a.do("GET", "/", nil); r.status != http.StatusNotFound {
		t.Errorf("GET / as an API client: %d, want 404 as before the console", r.status)
	}
	if r := a.must(http.StatusOK, "GET", "/api/overview", nil); !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
		t.Errorf("/api/overview Content-Type %q, want JSON: the API routes are unchanged", r.header.Get("Content-Type"))
	}
}

func TestConsolePagesRedirectToTheLoginWithoutASession(t *testing.T) {
	a := newAPI(t, openBroker(t), Config{})
	b := newBrowser(t, a)
	for path := range a.s.console.pageTable() {
		path = strings.TrimSuffix(path, "{$}")
		if p := b.get(path); p.status != http.StatusSeeOther || p.header.Get("Location") != "/console/login" {
			t.Errorf("GET %s without a session: %d Location %q, want 303 to /console/login", path, p.status, p.header.Get("Location"))
		}
	}
	p := b.send("GET", "/console/queues", nil, map[string]string{"HX-Request": "true"})
	if p.status != http.StatusUnauthorized || p.header.Get("HX-Redirect") != "/console/login" {
		t.Errorf("htmx refresh without a session: %d HX-Redirect %q, want 401 with HX-Redirect to the login", p.status, p.header.Get("HX-Redirect"))
	}
	// A session cookie made up by the client is no session.
	u, _ := url.Parse(a.srv.URL + "/console/")
	b.c.Jar.SetCookies(u, []*http.Cookie{{Name: consoleCookie, Value: "forged", Path: "/console/"}})
	if p := b.get("/console/"); p.status != http.StatusSeeOther {
		t.Errorf("GET /console/ with a forged cookie: %d, want 303 to the login", p.status)
	}
}

func TestConsoleLoginRefusesAWrongPasswordAndSetsAStrictHttpOnlyCookie(t *testing.T) {
	a := newAPI(t, openBroker(t), Config{})
	b := newBrowser(t, a)
	b.mustGet("/console/login").contains(t, "login page", `name="user"`, `name="password"`)
	p := b.send("POST", "/console/login", url.Values{"user": {"guest"}, "password": {"wrong"}}, nil)
	if p.status != http.StatusUnauthorized || !strings.Contains(p.body, "wrong user name or password") {
		t.Errorf("wrong password: %d %s, want 401 saying so", p.status, errorText(p.body))
	}
	if n := a.s.console.sessions.len(); n != 0 {
		t.Errorf("sessions after a refused login: %d, want 0", n)
	}
	p = b.send("POST", "/console/login", url.Values{"user": {"guest"}, "password": {"guest"}}, nil)
	if p.status != http.StatusSeeOther {
		t.Fatalf("login: %d, want 303", p.status)
	}
	ck := p.header.Get("Set-Cookie")
	for _, want := range []string{consoleCookie + "=", "HttpOnly", "SameSite=Strict", "Path=/console/"} {
		if !strings.Contains(ck, want) {
			t.Errorf("Set-Cookie %q lacks %q", ck, want)
		}
	}
	ov := b.mustGet("/console/")
	ov.contains(t, "overview", "guest", "Flow control", "publishers flowing", "this node", `hx-trigger="every 5s"`)
	if csp := ov.header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("Content-Security-Policy %q, want scripts from the console only", csp)
	}
	b.act("/console/logout")
	if p := b.get("/console/"); p.status != http.StatusSeeOther {
		t.Errorf("GET /console/ after logout: %d, want 303 to the login", p.status)
	}
}

func TestConsoleEveryPageRendersForAnAdministrator(t *testing.T) {
	a, b := newGuestConsole(t, Config{Version: "v-test"})
	want := map[string][]string{
		"/console/":            {"v-test", "Totals (all tenants)", "Rates (tenant /)"},
		"/console/queues":      {"No queues in tenant /", "Add a queue"},
		"/console/streams":     {"No streams in tenant /", "Consumer groups"},
		"/console/exchanges":   {"amq.topic", "Add a binding"},
		"/console/connections": {"Connections"},
		"/console/users":       {"guest", "administrator", "Set a permission", "Add a tenant"},
		"/console/policies":    {"No policies in tenant /"},
		"/console/trace":       {"Message id"},
	}
	for path, w := range want {
		b.mustGet(path).contains(t, path, w...)
	}
	if len(want) != len(a.s.console.pageTable())-2 { // the queue and stream pages need a name
		t.Errorf("the test covers %d list pages, the console has %d pages: cover the new one", len(want), len(a.s.console.pageTable()))
	}
	if p := b.get("/console/queue?name=nope"); p.status != http.StatusNotFound || !strings.Contains(errorText(p.body), "not_found") {
		t.Errorf("a queue that does not exist: %d %s, want 404 not_found", p.status, errorText(p.body))
	}
}

func TestConsoleQueueLifecycleThroughTheForms(t *testing.T) {
	a, b := newGuestConsole(t, Config{})
	p := b.act("/console/queues/create", "tenant", "/", "name", "orders", "type", "quorum", "durable", "1", "arguments", `{"x-max-length": 100}`)
	p.contains(t, "new queue page", "Queue &#39;orders&#39; declared.", `{&#34;x-max-length&#34;:100,`, `<dd id="queue-ready">0</dd>`)

	p = b.act("/console/queues/publish", "tenant", "/", "queue", "orders", "body", "hello <b>world</b>", "message_id", "m-1", "content_type", "text/plain")
	p.contains(t, "after publish", "confirmed", `<dd id="queue-ready">1</dd>`)
	b.mustGet("/console/queues").contains(t, "queue list", `<td class="num">1</td>`)

	// Nack with requeue leaves the message in the queue, redelivered.
	p = b.post("/console/queues/get", "tenant", "/", "name", "orders", "ack_mode", "requeue", "count", "1")
	if p.status != http.StatusOK {
		t.Fatalf("get (requeue): %d %s", p.status, errorText(p.body))
	}
	p.contains(t, "get (requeue)", "hello &lt;b&gt;world&lt;/b&gt;", "m-1", "text/plain", hex.EncodeToString([]byte("hello <b>world</b>")))
	if strings.Contains(p.body, "<b>world</b>") {
		t.Errorf("the message body reached the page unescaped")
	}
	var q Queue
	a.must(http.StatusOK, "GET", "/api/queues/orders", nil).json(t, &q)
	if q.Stats.Ready != 1 || q.Stats.Unacked != 0 {
		t.Fatalf("after get with requeue: ready %d unacked %d, want 1 and 0", q.Stats.Ready, q.Stats.Unacked)
	}
	// Ack removes it.
	p = b.post("/console/queues/get", "tenant", "/", "name", "orders", "ack_mode", "ack", "count", "1")
	p.contains(t, "get (ack)", "hello &lt;b&gt;world&lt;/b&gt;", "<dt>Redelivered</dt><dd>true</dd>")
	a.must(http.StatusOK, "GET", "/api/queues/orders", nil).json(t, &q)
	if q.Stats.Ready != 0 || q.Stats.Unacked != 0 || q.Stats.Totals.Acked != 1 {
		t.Fatalf("after get with ack: ready %d unacked %d acked %d, want 0, 0, 1", q.Stats.Ready, q.Stats.Unacked, q.Stats.Totals.Acked)
	}
	b.post("/console/queues/get", "tenant", "/", "name", "orders", "ack_mode", "ack").contains(t, "get of an empty queue", "no ready message")

	b.act("/console/queues/publish", "tenant", "/", "queue", "orders", "body", "x")
	b.act("/console/queues/purge", "tenant", "/", "name", "orders").contains(t, "purge", "Purged 1 message from &#39;orders&#39;.")
	b.act("/console/queues/delete", "tenant", "/", "name", "orders").contains(t, "delete", "Queue &#39;orders&#39; deleted", "No queues in tenant /")
	if r := a.do("GET", "/api/queues/orders", nil); r.status != http.StatusNotFound {
		t.Errorf("the deleted queue answers %d, want 404", r.status)
	}
}

func TestConsoleShowsBinaryBodiesAsHexAndBase64(t *testing.T) {
	_, b := newGuestConsole(t, Config{})
	b.act("/console/queues/create", "tenant", "/", "name", "bin", "durable", "1")
	raw := []byte{0xff, 0x00, 0xfe, 'a'}
	b.act("/console/queues/publish", "tenant", "/", "queue", "bin", "body", "/wD+YQ==", "body_encoding", "base64")
	p := b.post("/console/queues/get", "tenant", "/", "name", "bin", "ack_mode", "auto")
	p.contains(t, "binary message", "Binary body", hex.EncodeToString(raw), "4 bytes")
	p.contains(t, "base64 of the binary body (html/template escapes +)", "/wD&#43;YQ==")
}

func TestConsolePostsWithoutTheSessionCSRFTokenAreRefused(t *testing.T) {
	a, b := newGuestConsole(t, Config{})
	form := url.Values{"tenant": {"/"}, "name": {"sneaky"}, "durable": {"1"}}
	if p := b.send("POST", "/console/queues/create", form, nil); p.status != http.StatusForbidden || !strings.Contains(p.body, "CSRF") {
		t.Errorf("post without a token: %d %s, want 403 naming CSRF", p.status, errorText(p.body))
	}
	form.Set("csrf", "not-the-token")
	if p := b.send("POST", "/console/queues/create", form, nil); p.status != http.StatusForbidden {
		t.Errorf("post with a wrong token: %d, want 403", p.status)
	}
	// Another session's token does not work either.
	other := newBrowser(t, a)
	other.login("guest", "guest")
	form.Set("csrf", other.csrf)
	if p := b.send("POST", "/console/queues/create", form, nil); p.status != http.StatusForbidden {
		t.Errorf("post with another session's token: %d, want 403", p.status)
	}
	form.Set("csrf", b.csrf)
	if p := b.send("POST", "/console/queues/create", form, map[string]string{"Sec-Fetch-Site": "cross-site"}); p.status != http.StatusForbidden {
		t.Errorf("cross-site post with the right token: %d, want 403", p.status)
	}
	if p := b.send("POST", "/console/login", url.Values{"user": {"guest"}, "password": {"guest"}},
		map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}); p.status != http.StatusForbidden {
		t.Errorf("cross-site login: %d, want 403 (login CSRF)", p.status)
	}
	if r := a.do("GET", "/api/queues/sneaky", nil); r.status != http.StatusNotFound {
		t.Errorf("a refused post declared the queue: GET answers %d, want 404", r.status)
	}
	b.act("/console/queues/create", "tenant", "/", "name", "fine", "durable", "1")
}

func TestConsoleRefusesWhatTheAPIRefusesAMonitoringUser(t *testing.T) {
	a := newAPI(t, openBroker(t), Config{})
	a.must(http.StatusCreated, "PUT", "/api/users/watcher", UserSpec{Password: "pw", Tags: []string{"monitoring"}})
	a.must(http.StatusNoContent, "PUT", "/api/permissions/watcher?tenant=/", Permission{Configure: "^$", Write: "^$", Read: ".*"})
	b := newBrowser(t, a)
	b.login("watcher", "pw")
	b.mustGet("/console/queues")
	if p := b.get("/console/users"); p.status != http.StatusForbidden || !strings.Contains(errorText(p.body), "administrator") {
		t.Errorf("users page as monitoring: %d %s, want 403 naming the tag", p.status, errorText(p.body))
	}
	if p := b.post("/console/users/create", "tenant", "/", "name", "mallory", "password", "x", "tags", "administrator"); p.status != http.StatusForbidden {
		t.Errorf("create a user as monitoring: %d %s, want 403", p.status, errorText(p.body))
	}
	if p := b.post("/console/queues/create", "tenant", "/", "name", "q1", "durable", "1"); p.status != http.StatusForbidden ||
		!strings.Contains(errorText(p.body), "access_refused") {
		t.Errorf("declare a queue without configure permission: %d %s, want 403 access_refused", p.status, errorText(p.body))
	}
	if r := a.do("GET", "/api/users/mallory", nil); r.status != http.StatusNotFound {
		t.Errorf("the refused user exists: GET answers %d, want 404", r.status)
	}
	if r := a.do("GET", "/api/queues/q1", nil); r.status != http.StatusNotFound {
		t.Errorf("the refused queue exists: GET answers %d, want 404", r.status)
	}
}

func TestConsoleFormsOverTheirLimitsAreRefused(t *testing.T) {
	_, b := newGuestConsole(t, Config{})
	b.act("/console/queues/create", "tenant", "/", "name", "q", "durable", "1")
	big := strings.Repeat("x", base.AdminConsoleFormBytesMax) // with the other fields, over the bound
	if p := b.post("/console/queues/publish", "tenant", "/", "queue", "q", "body", big); p.status != http.StatusRequestEntityTooLarge {
		t.Errorf("a form over AdminConsoleFormBytesMax: %d, want 413", p.status)
	}
	most := base.AdminConsoleGetMessagesMax
	if p := b.post("/console/queues/get", "tenant", "/", "name", "q", "ack_mode", "ack", "count", strconv.Itoa(most+1)); p.status != http.StatusBadRequest ||
		!strings.Contains(errorText(p.body), fmt.Sprintf("1 to %d", most)) {
		t.Errorf("get of AdminConsoleGetMessagesMax+1: %d %s, want 400", p.status, errorText(p.body))
	}
	if p := b.post("/console/queues/get", "tenant", "/", "name", "q", "ack_mode", "ack", "count", strconv.Itoa(most)); p.status != http.StatusOK {
		t.Errorf("get of AdminConsoleGetMessagesMax: %d %s, want 200", p.status, errorText(p.body))
	}
	if p := b.post("/console/queues/create", "tenant", "/", "name", "bad", "arguments", `{"x": 1} {"y": 2}`); p.status != http.StatusBadRequest {
		t.Errorf("arguments with two JSON values: %d, want 400", p.status)
	}
}

func TestVendoredHtmxMatchesItsRecordedChecksumAndIsServed(t *testing.T) {
	const want = "d6fdc75f204e6bdefa99b69bf1e6d4ac69b8a364f77929f45c13476b4000f717" // console/static/README.md
	data, err := consoleFiles.ReadFile("console/static/htmx.min.js")
	if err != nil {
		t.Fatal(err)
	}
	if got := sha256.Sum256(data); hex.EncodeToString(got[:]) != want {
		t.Errorf("htmx.min.js sha256 %x, want %s (update console/static/README.md when upgrading)", got, want)
	}
	a := newAPI(t, openBroker(t), Config{})
	r := a.doAs("", "", "GET", "/console/static/htmx.min.js", nil)
	if r.status != http.StatusOK || len(r.body) != len(data) || !strings.Contains(r.header.Get("Content-Type"), "javascript") {
		t.Errorf("GET htmx.min.js: %d, %d bytes, %q; want 200, %d bytes, JavaScript", r.status, len(r.body), r.header.Get("Content-Type"), len(data))
	}
	if r := a.doAs("", "", "GET", "/console/static/console.css", nil); r.status != http.StatusOK || !strings.Contains(string(r.body), "font") {
		t.Errorf("GET console.css: %d, want 200 with the style sheet", r.status)
	}
}

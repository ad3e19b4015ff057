package admin

import (
	"context"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// browser is a console client: a cookie jar, no automatic redirects (the
// tests check them), and the CSRF token of the last page it read.
type browser struct {
	t    testing.TB
	a    *api
	c    *http.Client
	csrf string
}

func newBrowser(t testing.TB, a *api) *browser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &browser{t: t, a: a, c: c}
}

// newGuestConsole returns an API over a new broker, configured by cfg,
// and a browser logged in to its console as guest (an administrator).
func newGuestConsole(t testing.TB, cfg Config) (*api, *browser) {
	t.Helper()
	a := newAPI(t, openBroker(t), cfg)
	b := newBrowser(t, a)
	b.login("guest", "guest")
	return a, b
}

// page is a console answer.
type page struct {
	status int
	body   string
	header http.Header
}

var csrfInput = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// send sends a request with hdr and remembers the CSRF token of an
// answered page.
func (b *browser) send(method, path string, form url.Values, hdr map[string]string) page {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, b.a.srv.URL+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Accept", "text/html")
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	p := page{status: resp.StatusCode, body: string(data), header: resp.Header}
	if m := csrfInput.FindStringSubmatch(p.body); m != nil {
		b.csrf = m[1]
	}
	return p
}

func (b *browser) get(path string) page {
	b.t.Helper()
	return b.send("GET", path, nil, nil)
}

// mustGet reads a page and fails unless it answers 200.
func (b *browser) mustGet(path string) page {
	b.t.Helper()
	p := b.get(path)
	if p.status != http.StatusOK {
		b.t.Fatalf("GET %s: status %d, want 200; body:\n%s", path, p.status, p.body)
	}
	return p
}

// post submits a form with the session's CSRF token (fields given as
// name, value pairs).
func (b *browser) post(path string, kv ...string) page {
	b.t.Helper()
	form := url.Values{"csrf": {b.csrf}}
	for i := 0; i+1 < len(kv); i += 2 {
		form.Add(kv[i], kv[i+1])
	}
	return b.send("POST", path, form, nil)
}

// act posts a form and fails unless it redirects (303), then follows the
// redirect and returns that page.
func (b *browser) act(path string, kv ...string) page {
	b.t.Helper()
	p := b.post(path, kv...)
	if p.status != http.StatusSeeOther {
		b.t.Fatalf("POST %s %v: status %d, want 303; body:\n%s", path, kv, p.status, errorText(p.body))
	}
	return b.mustGet(p.header.Get("Location"))
}

// login logs in and fails unless the console accepts it.
func (b *browser) login(user, password string) {
	b.t.Helper()
	p := b.send("POST", "/console/login", url.Values{"user": {user}, "password": {password}}, nil)
	if p.status != http.StatusSeeOther || p.header.Get("Location") != "/console/" {
		b.t.Fatalf("login as %s: status %d Location %q, want 303 to /console/; body:\n%s", user, p.status, p.header.Get("Location"), errorText(p.body))
	}
	b.mustGet("/console/")
}

var errorDiv = regexp.MustCompile(`(?s)<div class="error"[^>]*>(.*?)</div>`)

// errorText is the error box of a page (or the whole page when none).
func errorText(body string) string {
	if m := errorDiv.FindStringSubmatch(body); m != nil {
		return html.UnescapeString(m[1])
	}
	return body
}

// contains fails the test unless the page holds every one of want.
func (p page) contains(t testing.TB, what string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(p.body, w) {
			t.Errorf("%s: the page lacks %q; got:\n%s", what, w, p.body)
		}
	}
}

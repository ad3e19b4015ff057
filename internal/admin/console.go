package admin

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/ferry-mq/ferry/internal/base"
)

// The console's templates and static assets (htmx, the style sheet),
// compiled into the binary: no build step, nothing read from disk.
//
//go:embed console/templates/*.html console/static/*
var consoleFiles embed.FS

// console is the web console: server-rendered pages over the API's
// handler layer (invoke), with htmx for partial refresh and forms.
type console struct {
	s        *Server
	pages    map[string]*template.Template // by page name; immutable after newConsole
	static   http.Handler
	sessions *consoleSessions
	origin   *http.CrossOriginProtection
}

// contentSecurityPolicy allows only the console's own scripts and styles:
// htmx runs with eval, script tags and its injected indicator style
// turned off (the htmx-config meta tag in base.html).
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"frame-ancestors 'none'; form-action 'self'; base-uri 'none'"

func newConsole(s *Server) (*console, error) {
	c := &console{s: s, sessions: newConsoleSessions(s.clock), origin: http.NewCrossOriginProtection()}
	staticFS, err := fs.Sub(consoleFiles, "console/static")
	if err != nil {
		return nil, err
	}
	c.static = http.StripPrefix("/console/static/", http.FileServerFS(staticFS))
	c.pages, err = parsePages()
	if err != nil {
		return nil, err
	}
	return c, nil
}

// parsePages parses every page template with the shared layout.
func parsePages() (map[string]*template.Template, error) {
	funcs := template.FuncMap{
		"join":      strings.Join,
		"rate":      func(f float64) string { return fmt.Sprintf("%.1f/s", f) },
		"deref64":   derefString[int64],
		"derefInt":  derefString[int],
		"jsonText":  jsonText,
		"msDur":     msDuration,
		"bytes":     humanBytes,
		"curl":      consoleURL,
		"hasPrefix": strings.HasPrefix,
		"navItems":  func() []navItem { return consoleNav },
		"navPath":   navPath,
	}
	layout, err := template.New("base.html").Funcs(funcs).ParseFS(consoleFiles, "console/templates/base.html")
	if err != nil {
		return nil, err
	}
	names, err := fs.Glob(consoleFiles, "console/templates/*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, n := range names {
		name := strings.TrimSuffix(strings.TrimPrefix(n, "console/templates/"), ".html")
		if name == "base" {
			continue
		}
		t, err := template.Must(layout.Clone()).ParseFS(consoleFiles, n)
		if err != nil {
			return nil, fmt.Errorf("console template %s: %w", n, err)
		}
		pages[name] = t
	}
	return pages, nil
}

// mount registers the console's routes on mux: pages under /console/,
// and / redirecting browsers there. No API route changes.
func (c *console) mount(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", c.root)
	mux.Handle("GET /console/static/", c.static)
	mux.HandleFunc("GET /console/login", c.loginPage)
	mux.HandleFunc("POST /console/login", c.login)
	mux.Handle("POST /console/logout", c.action(logout))
	for path, p := range c.pageTable() {
		mux.Handle("GET "+path, c.page(p))
	}
	for path, a := range c.actionTable() {
		mux.Handle("POST "+path, c.action(a))
	}
}

// root sends browsers to the console; anything else gets the 404 it got
// before the console existed.
func (c *console) root(w http.ResponseWriter, r *http.Request) {
	if strings.Contains(r.Header.Get("Accept"), "text/html") {
		http.Redirect(w, r, "/console/", http.StatusSeeOther)
		return
	}
	http.NotFound(w, r)
}

// consoleReq is one authenticated console request.
type consoleReq struct {
	c      *console
	w      http.ResponseWriter
	r      *http.Request
	sess   consoleSession
	token  string
	peer   netip.AddrPort
	tenant string
}

// api calls the management API's handler for id as the session's user.
func (q *consoleReq) api(id string, path map[string]string, query url.Values, body any) (any, error) {
	return q.c.s.invoke(q.r.Context(), q.sess.p, q.peer, apiCall{id: id, path: path, query: query, body: body})
}

// tenantQuery is the query naming the request's tenant, for list routes.
func (q *consoleReq) tenantQuery() url.Values { return url.Values{"tenant": {q.tenant}} }

// apiAs calls the API and asserts the type of its answer (the handler's
// declared response type; a mismatch is a bug in the console).
func apiAs[T any](q *consoleReq, id string, path map[string]string, query url.Values, body any) (T, error) {
	var zero T
	out, err := q.api(id, path, query, body)
	if err != nil {
		return zero, err
	}
	v, ok := out.(T)
	if !ok {
		base.Bugf("route %s answered %T, the console expects %T", id, out, zero)
	}
	return v, nil
}

// session authenticates a console request by its cookie. It answers the
// redirect to the login page itself (for htmx requests, the HX-Redirect
// header) and returns false when there is no live session.
func (c *console) session(w http.ResponseWriter, r *http.Request) (*consoleReq, bool) {
	peer, _ := netip.ParseAddrPort(r.RemoteAddr)
	var token string
	if ck, err := r.Cookie(consoleCookie); err == nil {
		token = ck.Value
	}
	sess, ok := c.sessions.lookup(token, peer.Addr())
	if !ok || c.s.isClosed() {
		if r.Header.Get("HX-Request") == "true" {
			w.Header().Set("HX-Redirect", "/console/login")
			w.WriteHeader(http.StatusUnauthorized)
			return nil, false
		}
		http.Redirect(w, r, "/console/login", http.StatusSeeOther)
		return nil, false
	}
	q := &consoleReq{c: c, w: w, r: r, sess: sess, token: token, peer: peer}
	q.tenant = r.URL.Query().Get("tenant")
	if r.Method == http.MethodPost {
		q.tenant = r.PostFormValue("tenant")
	}
	if q.tenant == "" {
		q.tenant = "/"
	}
	return q, true
}

// navItem is an entry of the console's menu.
type navItem struct{ Key, Path, Label string }

var consoleNav = []navItem{
	{"overview", "/console/", "Overview"}, {"queues", "/console/queues", "Queues"}, {"streams", "/console/streams", "Streams"},
	{"exchanges", "/console/exchanges", "Exchanges"}, {"connections", "/console/connections", "Connections"},
	{"users", "/console/users", "Users"}, {"policies", "/console/policies", "Policies"}, {"trace", "/console/trace", "Trace"},
}

// navPath is the list page of a menu entry (the tenant switch stays on
// the current section).
func navPath(key string) string {
	for _, n := range consoleNav {
		if n.Key == key {
			return n.Path
		}
	}
	return "/console/"
}

// pageData is what every page template sees.
type pageData struct {
	Title  string
	Nav    string
	User   string
	Tags   []string
	Tenant string
	CSRF   string
	Flash  string
	Error  *ErrorDetail
	Data   any
	Now    string
}

// consolePage is a GET page: its template, nav entry, title and the
// function that loads its data through the API.
type consolePage struct {
	tmpl, nav, title string
	load             func(q *consoleReq) (any, error)
}

func (c *console) page(p consolePage) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q, ok := c.session(w, r)
		if !ok {
			return
		}
		data, err := p.load(q)
		status := http.StatusOK
		pd := q.pageData(p.title, p.nav, data)
		if err != nil {
			status, pd.Error = errorDetail(err)
		}
		c.render(w, status, p.tmpl, pd)
	})
}

func (q *consoleReq) pageData(title, nav string, data any) pageData {
	return pageData{Title: title, Nav: nav, User: q.sess.p.User, Tags: q.sess.p.Tags, Tenant: q.tenant, CSRF: q.sess.csrf,
		Flash: q.c.sessions.takeFlash(q.token), Data: data, Now: q.c.s.clock.Now().UTC().Format(time.RFC3339)}
}

func errorDetail(err error) (int, *ErrorDetail) {
	status, eb := errorBody(err)
	return status, &eb.Error
}

// consoleAction is a form post: it runs API calls and returns where to
// go next and what to tell the user; an error is shown on an error page
// with the status the API would answer.
type consoleAction func(q *consoleReq) (redirect, flash string, err error)

func (c *console) action(a consoleAction) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, base.AdminConsoleFormBytesMax)
		if err := c.origin.Check(r); err != nil {
			c.refuse(w, http.StatusForbidden, "cross-origin form posts are refused")
			return
		}
		if err := r.ParseForm(); err != nil {
			c.refuse(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the form could not be read (at most %d bytes, AdminConsoleFormBytesMax): %v",
				base.AdminConsoleFormBytesMax, err))
			return
		}
		q, ok := c.session(w, r)
		if !ok {
			return
		}
		if !csrfValid(&q.sess, r.PostFormValue("csrf")) && !csrfValid(&q.sess, r.Header.Get("X-CSRF-Token")) {
			c.refuse(w, http.StatusForbidden, "the form's CSRF token is missing or stale: reload the page and try again")
			return
		}
		redirect, flash, err := a(q)
		if err != nil {
			pd := q.pageData("Error", "", nil)
			var status int
			status, pd.Error = errorDetail(err)
			c.render(w, status, "error", pd)
			return
		}
		if redirect == "" {
			return // the action rendered its own answer
		}
		if flash != "" {
			c.sessions.setFlash(q.token, flash)
		}
		http.Redirect(w, r, redirect, http.StatusSeeOther)
	})
}

// refuse answers a request refused before any session data is shown.
func (c *console) refuse(w http.ResponseWriter, status int, msg string) {
	c.render(w, status, "error", pageData{Title: "Refused", Error: &ErrorDetail{Code: "access_refused", Message: msg}})
}

// render executes a page into a buffer first, so that a template error
// is a 500 rather than half a page.
func (c *console) render(w http.ResponseWriter, status int, name string, pd pageData) {
	t := c.pages[name]
	if t == nil {
		base.Bugf("no console template %q", name)
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "base.html", pd); err != nil {
		c.s.log.Error("console: rendering a page failed", "page", name, "err", err)
		http.Error(w, "the console could not render this page", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes()) // a failed write means the client left
}

// setCookie writes the session cookie: HttpOnly (no script reads it),
// SameSite=Strict (no other site's page sends it), Secure when the
// request came over TLS, scoped to the console.
func setCookie(w http.ResponseWriter, r *http.Request, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: consoleCookie, Value: value, Path: "/console/", MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
}

func (c *console) loginPage(w http.ResponseWriter, r *http.Request) {
	c.render(w, http.StatusOK, "login", pageData{Title: "Log in", Data: r.URL.Query().Get("user")})
}

// login checks the credentials against the user store exactly as the
// API's HTTP basic authentication does (Broker.Authenticate with the
// peer address) and starts a session.
func (c *console) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, base.AdminConsoleFormBytesMax)
	if err := c.origin.Check(r); err != nil {
		c.refuse(w, http.StatusForbidden, "cross-origin logins are refused")
		return
	}
	peer, _ := netip.ParseAddrPort(r.RemoteAddr)
	user, password := r.PostFormValue("user"), r.PostFormValue("password")
	p, err := c.s.b.Authenticate(user, password, peer.Addr())
	if err == nil {
		var token string
		if token, err = c.sessions.create(p, peer.Addr()); err == nil {
			setCookie(w, r, token, int(base.AdminConsoleSessionLifetimeMax/time.Second))
			http.Redirect(w, r, "/console/", http.StatusSeeOther)
			return
		}
	}
	status, detail := errorDetail(err)
	if base.CodeOf(err) != base.CodeInternal && base.CodeOf(err) != base.CodeOverloaded {
		status, detail = http.StatusUnauthorized, &ErrorDetail{Code: "unauthenticated", Message: "wrong user name or password"}
	}
	c.render(w, status, "login", pageData{Title: "Log in", Error: detail, Data: user})
}

// logout ends the session and clears its cookie (an action, so it needs
// the session's CSRF token as every form post does).
func logout(q *consoleReq) (string, string, error) {
	q.c.sessions.remove(q.token)
	setCookie(q.w, q.r, "", -1)
	return "/console/login", "", nil
}

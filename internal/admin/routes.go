package admin

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strings"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/broker"
)

// access is who may call a route.
type access uint8

const (
	accessPublic  access = iota // no credentials (health, metrics, the OpenAPI document)
	accessUser                  // any user; the broker's permissions decide per entity
	accessMonitor               // a user tagged administrator, monitoring, management or policymaker
	accessPolicy                // a user tagged administrator or policymaker
	accessAdmin                 // a user tagged administrator
)

var accessTags = map[access][]string{
	accessMonitor: {"administrator", "monitoring", "management", "policymaker"},
	accessPolicy:  {"administrator", "policymaker"},
	accessAdmin:   {"administrator"},
}

// param is a declared query parameter.
type param struct {
	name, typ, desc string
}

// Query parameters shared by many routes.
var (
	pTenant = param{"tenant", "string", `the tenant (virtual host); default "/"`}
)

// route is one operation: the mux pattern, what the OpenAPI document
// says about it, and its handler. The document is built from this table
// and the served mux is registered from it; the tests check that every
// status a handler answers and every query parameter it reads is declared
// here (Server.Undocumented).
type route struct {
	method, path string
	id, summary  string
	tag          string
	access       access
	query        []param
	in           any  // a zero value of the request body type; nil: no body
	inOptional   bool // the body may be omitted
	out          any  // a zero value of the response body type; nil: none
	status       int  // the success status
	errors       []int
	// handle serves the call and returns the success body (written with
	// status) or an error (written as ErrorBody with its code's status).
	handle func(c *call) (any, error)
	// raw, when set, serves the request itself (metrics, the document).
	raw         http.Handler
	contentType string // of raw responses
}

// commonErrors are the statuses every authenticated route may answer.
var commonErrors = []int{http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden,
	http.StatusInternalServerError, http.StatusServiceUnavailable, http.StatusGatewayTimeout}

// statuses returns every status rt may answer, sorted.
func (rt *route) statuses() []int {
	out := []int{rt.status}
	out = append(out, rt.errors...)
	if rt.access != accessPublic {
		out = append(out, commonErrors...)
	}
	if rt.in != nil {
		out = append(out, http.StatusRequestEntityTooLarge)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func (rt *route) declaresQuery(name string) bool {
	return slices.ContainsFunc(rt.query, func(p param) bool { return p.name == name })
}

// call is one request being served.
type call struct {
	s    *Server
	rt   *route
	w    http.ResponseWriter
	r    *http.Request
	p    broker.Principal
	peer netip.AddrPort
	// status, when set by the handler, replaces rt.status (it must be
	// among rt.statuses()).
	status int
}

func (c *call) ctx() context.Context { return c.r.Context() }

// query returns a query parameter; the route must declare it.
func (c *call) query(name string) string {
	if !c.rt.declaresQuery(name) {
		c.s.noteUndocumented(fmt.Sprintf("%s %s reads undeclared query parameter %q", c.rt.method, c.rt.path, name))
	}
	return c.r.URL.Query().Get(name)
}

// tenant is the tenant query parameter, "/" by default.
func (c *call) tenant() string {
	if t := c.query("tenant"); t != "" {
		return t
	}
	return "/"
}

// path returns a path wildcard.
func (c *call) path(name string) string { return c.r.PathValue(name) }

// conn returns the broker connection serving the caller in tenant.
func (c *call) conn(tenant string) (*broker.Conn, error) {
	p := c.p
	p.Tenant = tenant
	return c.s.sessions.get(p, c.peer)
}

// wrap serves rt: authentication, authorisation by tag, the handler, the
// JSON response and its accounting.
func (s *Server) wrap(rt *route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rt.raw != nil {
			s.metrics.request(rt, http.StatusOK)
			rt.raw.ServeHTTP(w, r)
			return
		}
		c := &call{s: s, rt: rt, w: w, r: r}
		c.peer, _ = netip.ParseAddrPort(r.RemoteAddr)
		body, err := s.serve(c)
		status := rt.status
		if c.status != 0 {
			status = c.status
		}
		if err != nil {
			var eb ErrorBody
			status, eb = errorBody(err)
			body = eb
			s.metrics.apiError(base.CodeOf(err))
			if status == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Basic realm="ferry", charset="UTF-8"`)
			}
		}
		if !slices.Contains(rt.statuses(), status) {
			s.noteUndocumented(fmt.Sprintf("%s %s answered %d, which the document does not declare", rt.method, rt.path, status))
		}
		s.metrics.request(rt, status)
		if status == http.StatusNoContent {
			body = nil
		}
		if werr := writeJSON(w, status, body); werr != nil {
			s.log.Debug("admin: writing a response failed", "path", r.URL.Path, "err", werr)
		}
	})
}

func (s *Server) serve(c *call) (any, error) {
	if c.rt.access != accessPublic {
		if err := s.checkOpen(); err != nil {
			return nil, err
		}
		p, err := s.authenticate(c.r, c.peer)
		if err != nil {
			return nil, err
		}
		c.p = p
		if err := checkTags(c.rt, p); err != nil {
			return nil, err
		}
	}
	return c.rt.handle(c)
}

// checkOpen refuses calls once Close began (CodeStopped); public routes
// (health, metrics) are served to the end.
func (s *Server) checkOpen() error {
	if s.isClosed() {
		return base.Errorf(base.CodeStopped, "the management API is shutting down")
	}
	return nil
}

// checkTags refuses p a route whose access needs a tag p lacks
// (CodeAccessRefused, the API's 403): the one tag check of the JSON API
// (serve) and of the console (invoke).
func checkTags(rt *route, p broker.Principal) error {
	if tags := accessTags[rt.access]; tags != nil && !hasAnyTag(p.Tags, tags) {
		return base.Errorf(base.CodeAccessRefused, "user '%s' needs one of the tags %s for %s %s",
			p.User, strings.Join(tags, ", "), rt.method, rt.path)
	}
	return nil
}

func hasAnyTag(have, want []string) bool {
	for _, t := range have {
		if slices.Contains(want, t) {
			return true
		}
	}
	return false
}

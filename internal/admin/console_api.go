package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/netip"
	"net/url"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/broker"
)

// apiCall is one call of the management API's handler layer on behalf
// of a console user: the console never talks to the broker itself, so
// every page and action runs the same handler, tag check and broker
// permission check as the JSON API.
type apiCall struct {
	id    string            // the route's operation id (table.go)
	path  map[string]string // its path wildcards
	query url.Values        // its query parameters (only those the route declares are read)
	body  any               // marshalled to JSON as the request body; nil: none
}

// invoke runs the route named by ac.id as p from peer and returns what
// its handler returns. Errors are the handler's (with base codes), or
// CodeAccessRefused when p lacks the route's tags, exactly as the API
// answers 403.
func (s *Server) invoke(ctx context.Context, p broker.Principal, peer netip.AddrPort, ac apiCall) (any, error) {
	rt := s.routeByID[ac.id]
	if rt == nil || rt.handle == nil {
		base.Bugf("console calls route %q, which the table does not have", ac.id)
	}
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	if err := checkTags(rt, p); err != nil {
		return nil, err
	}
	target := rt.path
	if len(ac.query) > 0 {
		target += "?" + ac.query.Encode()
	}
	var rd io.Reader
	if ac.body != nil {
		data, err := json.Marshal(ac.body)
		if err != nil {
			base.Bugf("console request body of %s does not marshal: %v", ac.id, err)
		}
		rd = bytes.NewReader(data)
	}
	r, err := http.NewRequestWithContext(ctx, rt.method, target, rd)
	if err != nil {
		return nil, base.Errorf(base.CodeInvalidArgument, "console request: %w", err)
	}
	if rd != nil {
		r.Header.Set("Content-Type", "application/json")
	}
	for k, v := range ac.path {
		r.SetPathValue(k, v)
	}
	c := &call{s: s, rt: rt, r: r, p: p, peer: peer}
	out, err := rt.handle(c)
	if err != nil {
		s.metrics.apiError(base.CodeOf(err))
	}
	return out, err
}

// indexRoutes maps the table's operation ids to routes, for invoke.
func indexRoutes(routes []*route) map[string]*route {
	out := make(map[string]*route, len(routes))
	for _, rt := range routes {
		if _, dup := out[rt.id]; dup {
			base.Bugf("two routes have the operation id %q", rt.id)
		}
		out[rt.id] = rt
	}
	return out
}

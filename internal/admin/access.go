package admin

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"

	"github.com/ferry-mq/ferry/internal/auth"
	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/broker"
)

// Tenant is a tenant (RabbitMQ virtual host).
type Tenant struct {
	Name string `json:"name"`
}

// User is a user as the API shows it: never its credentials.
type User struct {
	Name        string       `json:"name"`
	Tags        []string     `json:"tags"`
	Permissions []Permission `json:"permissions,omitempty"`
}

// UserSpec creates or updates a user (PUT). Password "" keeps the
// current password of an existing user, and creates a user who cannot
// log in with a password.
type UserSpec struct {
	Password string   `json:"password,omitempty"`
	Tags     []string `json:"tags,omitempty"`
}

// Permission is a user's rights in a tenant: three regular expressions
// (RE2, unanchored unless written with ^ and $) matched against entity
// names, as RabbitMQ's.
type Permission struct {
	User      string `json:"user,omitempty"`
	Tenant    string `json:"tenant,omitempty"`
	Configure string `json:"configure"`
	Write     string `json:"write"`
	Read      string `json:"read"`
}

// Policy applies a definition to the entities whose names match Pattern.
type Policy struct {
	Name       string         `json:"name,omitempty"`
	Tenant     string         `json:"tenant,omitempty"`
	Pattern    string         `json:"pattern"`
	ApplyTo    string         `json:"apply_to,omitempty" enum:"all,queues,streams,exchanges"`
	Priority   int            `json:"priority,omitempty"`
	Definition map[string]any `json:"definition"`
}

// adminTenant is the tenant of the session that carries calls about no
// tenant in particular (tenants, users, the permission list): the
// default one, where the bootstrap administrator guest holds a
// permission. An administrator needs a permission there, as for any
// broker connection.
const adminTenant = "/"

// asAdmin adapts a handler of a call about no tenant in particular: it
// runs h with the caller's session in adminTenant.
func (s *Server) asAdmin(h func(c *call, conn *broker.Conn) (any, error)) func(c *call) (any, error) {
	return func(c *call) (any, error) {
		conn, err := c.conn(adminTenant)
		if err != nil {
			return nil, err
		}
		return h(c, conn)
	}
}

// tenants lists every tenant, for the node's own readers (metrics, the
// overview).
func (s *Server) tenants() []string { return s.b.Tenants() }

// --- tenants

func (s *Server) listTenants(c *call, conn *broker.Conn) (any, error) {
	names, err := conn.ListTenants()
	if err != nil {
		return nil, err
	}
	out := []Tenant{}
	for _, t := range names {
		out = append(out, Tenant{Name: t})
	}
	return out, nil
}

func (s *Server) getTenant(c *call, conn *broker.Conn) (any, error) {
	names, err := conn.ListTenants()
	if err != nil {
		return nil, err
	}
	name := c.path("tenant")
	if !slices.Contains(names, name) {
		return nil, base.Errorf(base.CodeNotFound, "no tenant '%s'", name)
	}
	return Tenant{Name: name}, nil
}

// putTenant answers 201 when it created the tenant, 204 when it existed.
func (s *Server) putTenant(c *call, conn *broker.Conn) (any, error) {
	created, err := conn.CreateTenant(c.ctx(), c.path("tenant"))
	if created {
		c.status = http.StatusCreated
	}
	return nil, err
}

func (s *Server) deleteTenant(c *call, conn *broker.Conn) (any, error) {
	return nil, conn.DeleteTenant(c.ctx(), c.path("tenant"))
}

// --- users

func userJSON(u *broker.UserView) User {
	out := User{Name: u.Name, Tags: append([]string{}, u.Tags...)}
	for _, p := range u.Permissions {
		out.Permissions = append(out.Permissions, Permission{Tenant: p.Tenant, Configure: p.Configure, Write: p.Write, Read: p.Read})
	}
	return out
}

func (s *Server) listUsers(c *call, conn *broker.Conn) (any, error) {
	users, err := conn.ListUsers()
	if err != nil {
		return nil, err
	}
	out := []User{}
	for i := range users {
		out = append(out, userJSON(&users[i]))
	}
	return out, nil
}

// findUser returns the caller's administration session and the user
// named name.
func (s *Server) findUser(c *call, name string) (*broker.Conn, *broker.UserView, error) {
	conn, err := c.conn(adminTenant)
	if err != nil {
		return nil, nil, err
	}
	users, err := conn.ListUsers()
	if err != nil {
		return nil, nil, err
	}
	for i := range users {
		if users[i].Name == name {
			return conn, &users[i], nil
		}
	}
	return conn, nil, base.Errorf(base.CodeNotFound, "no user '%s'", name)
}

func (s *Server) getUser(c *call) (any, error) {
	_, u, err := s.findUser(c, c.path("user"))
	if err != nil {
		return nil, err
	}
	return userJSON(u), nil
}

// putUser answers 201 when it created the user, 204 when it updated one.
func (s *Server) putUser(c *call) (any, error) {
	var spec UserSpec
	if err := decodeBody(c.r, &spec, false); err != nil {
		return nil, err
	}
	conn, err := c.conn(adminTenant)
	if err != nil {
		return nil, err
	}
	created, err := conn.PutUser(c.ctx(), c.path("user"), spec.Password, spec.Tags)
	if created {
		c.status = http.StatusCreated
	}
	return nil, err
}

func (s *Server) deleteUser(c *call, conn *broker.Conn) (any, error) {
	return nil, conn.DeleteUser(c.ctx(), c.path("user"))
}

// --- permissions

func (s *Server) listPermissions(c *call, conn *broker.Conn) (any, error) {
	perms, err := conn.ListPermissions(c.query("tenant"), c.query("user"))
	if err != nil {
		return nil, err
	}
	out := []Permission{}
	for _, p := range perms {
		out = append(out, Permission{User: p.User, Tenant: p.Tenant, Configure: p.Configure, Write: p.Write, Read: p.Read})
	}
	return out, nil
}

func (s *Server) putPermission(c *call) (any, error) {
	var p Permission
	if err := decodeBody(c.r, &p, false); err != nil {
		return nil, err
	}
	conn, err := c.conn(adminTenant)
	if err != nil {
		return nil, err
	}
	return nil, conn.SetPermission(c.ctx(), c.path("user"), auth.Permission{Tenant: c.tenant(), Configure: p.Configure, Write: p.Write, Read: p.Read})
}

func (s *Server) deletePermission(c *call, conn *broker.Conn) (any, error) {
	return nil, conn.ClearPermission(c.ctx(), c.path("user"), c.tenant())
}

// --- policies

func policyJSON(p *auth.Policy) Policy {
	out := Policy{Name: p.Name, Tenant: p.Tenant, Pattern: p.Pattern, ApplyTo: p.ApplyTo.String(), Priority: p.Priority,
		Definition: map[string]any{}}
	for k, v := range p.Definition {
		if i, ok := v.AsInt(); ok {
			out.Definition[k] = i
		} else if s, ok := v.AsString(); ok {
			out.Definition[k] = s
		}
	}
	return out
}

// policyConn returns the caller's session in the tenant of a policy call:
// a policymaker needs a permission there anyway.
func (s *Server) policyConn(c *call) (*broker.Conn, string, error) {
	tenant := c.tenant()
	conn, err := c.conn(tenant)
	return conn, tenant, err
}

func (s *Server) listPolicies(c *call) (any, error) {
	conn, tenant, err := s.policyConn(c)
	if err != nil {
		return nil, err
	}
	ps, err := conn.ListPolicies(tenant)
	if err != nil {
		return nil, err
	}
	out := []Policy{}
	for i := range ps {
		out = append(out, policyJSON(&ps[i]))
	}
	return out, nil
}

func (s *Server) getPolicy(c *call) (any, error) {
	conn, tenant, err := s.policyConn(c)
	if err != nil {
		return nil, err
	}
	ps, err := conn.ListPolicies(tenant)
	if err != nil {
		return nil, err
	}
	name := c.path("name")
	for i := range ps {
		if ps[i].Name == name {
			return policyJSON(&ps[i]), nil
		}
	}
	return nil, base.Errorf(base.CodeNotFound, "no policy '%s' in tenant '%s'", name, tenant)
}

func (s *Server) putPolicy(c *call) (any, error) {
	var spec Policy
	if err := decodeBody(c.r, &spec, false); err != nil {
		return nil, err
	}
	applyTo := auth.ApplyAll
	if spec.ApplyTo != "" {
		var err error
		if applyTo, err = auth.ParseApplyTo(spec.ApplyTo); err != nil {
			return nil, err
		}
	}
	if len(spec.Definition) == 0 {
		return nil, invalid("a policy needs a definition, e.g. {\"max-length\": 1000}")
	}
	def := make(map[string]auth.Value, len(spec.Definition))
	for k, v := range spec.Definition {
		switch v := v.(type) {
		case string:
			def[k] = auth.Str(v)
		case json.Number:
			i, err := strconv.ParseInt(string(v), 10, 64)
			if err != nil {
				return nil, invalid("definition key '%s': %s is not an integer", k, v)
			}
			def[k] = auth.Int(i)
		default:
			return nil, invalid("definition key '%s': want a string or an integer, got %T", k, v)
		}
	}
	conn, tenant, err := s.policyConn(c)
	if err != nil {
		return nil, err
	}
	return nil, conn.PutPolicy(c.ctx(), auth.Policy{Name: c.path("name"), Tenant: tenant, Pattern: spec.Pattern,
		ApplyTo: applyTo, Priority: spec.Priority, Definition: def})
}

func (s *Server) deletePolicy(c *call) (any, error) {
	conn, tenant, err := s.policyConn(c)
	if err != nil {
		return nil, err
	}
	return nil, conn.DeletePolicy(c.ctx(), tenant, c.path("name"))
}

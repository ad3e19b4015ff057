package admin

import (
	"encoding/json"
	"slices"
	"strconv"

	"github.com/ferry-mq/ferry/internal/auth"
	"github.com/ferry-mq/ferry/internal/base"
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

func (s *Server) tenantAdmin() (TenantAdmin, error) {
	if t, ok := s.b.(TenantAdmin); ok {
		return t, nil
	}
	return nil, notSupported("managing tenants", "Broker.Tenants, CreateTenant and DeleteTenant")
}

func (s *Server) userAdmin() (UserAdmin, error) {
	if u, ok := s.b.(UserAdmin); ok {
		return u, nil
	}
	return nil, notSupported("managing users and permissions", "Broker.Users, PutUser, DeleteUser, SetPermission and ClearPermission")
}

func (s *Server) policyAdmin() (PolicyAdmin, error) {
	if p, ok := s.b.(PolicyAdmin); ok {
		return p, nil
	}
	return nil, notSupported("managing policies", "Broker.Policies, PutPolicy and DeletePolicy")
}

// tenants lists the tenants: every one when the broker can list them,
// else the default tenant alone (metrics and the overview use it).
func (s *Server) tenants() []string {
	if t, ok := s.b.(TenantAdmin); ok {
		return t.Tenants()
	}
	return []string{"/"}
}

// --- tenants

func (s *Server) listTenants(c *call) (any, error) {
	ta, err := s.tenantAdmin()
	if err != nil {
		return nil, err
	}
	out := []Tenant{}
	for _, t := range ta.Tenants() {
		out = append(out, Tenant{Name: t})
	}
	return out, nil
}

func (s *Server) getTenant(c *call) (any, error) {
	ta, err := s.tenantAdmin()
	if err != nil {
		return nil, err
	}
	name := c.path("tenant")
	if !slices.Contains(ta.Tenants(), name) {
		return nil, base.Errorf(base.CodeNotFound, "no tenant '%s'", name)
	}
	return Tenant{Name: name}, nil
}

func (s *Server) putTenant(c *call) (any, error) {
	ta, err := s.tenantAdmin()
	if err != nil {
		return nil, err
	}
	return nil, ta.CreateTenant(c.ctx(), c.path("tenant"))
}

func (s *Server) deleteTenant(c *call) (any, error) {
	ta, err := s.tenantAdmin()
	if err != nil {
		return nil, err
	}
	return nil, ta.DeleteTenant(c.ctx(), c.path("tenant"))
}

// --- users

func userJSON(u *auth.User) User {
	out := User{Name: u.Name, Tags: []string{}}
	for _, t := range u.Tags {
		out.Tags = append(out.Tags, string(t))
	}
	for _, p := range u.Permissions {
		out.Permissions = append(out.Permissions, Permission{Tenant: p.Tenant, Configure: p.Configure, Write: p.Write, Read: p.Read})
	}
	return out
}

func (s *Server) listUsers(c *call) (any, error) {
	ua, err := s.userAdmin()
	if err != nil {
		return nil, err
	}
	out := []User{}
	users := ua.Users()
	for i := range users {
		out = append(out, userJSON(&users[i]))
	}
	return out, nil
}

func (s *Server) findUser(name string) (UserAdmin, *auth.User, error) {
	ua, err := s.userAdmin()
	if err != nil {
		return nil, nil, err
	}
	users := ua.Users()
	for i := range users {
		if users[i].Name == name {
			return ua, &users[i], nil
		}
	}
	return ua, nil, base.Errorf(base.CodeNotFound, "no user '%s'", name)
}

func (s *Server) getUser(c *call) (any, error) {
	_, u, err := s.findUser(c.path("user"))
	if err != nil {
		return nil, err
	}
	return userJSON(u), nil
}

func (s *Server) putUser(c *call) (any, error) {
	var spec UserSpec
	if err := decodeBody(c.r, &spec, false); err != nil {
		return nil, err
	}
	ua, err := s.userAdmin()
	if err != nil {
		return nil, err
	}
	if spec.Tags == nil {
		spec.Tags = []string{}
	}
	return nil, ua.PutUser(c.ctx(), c.path("user"), spec.Password, spec.Tags)
}

func (s *Server) deleteUser(c *call) (any, error) {
	ua, err := s.userAdmin()
	if err != nil {
		return nil, err
	}
	if c.path("user") == c.p.User {
		return nil, base.Errorf(base.CodePreconditionFailed, "user '%s' cannot delete itself; log in as another administrator", c.p.User)
	}
	return nil, ua.DeleteUser(c.ctx(), c.path("user"))
}

// --- permissions

func (s *Server) listPermissions(c *call) (any, error) {
	ua, err := s.userAdmin()
	if err != nil {
		return nil, err
	}
	tenant, user := c.query("tenant"), c.query("user")
	out := []Permission{}
	for _, u := range ua.Users() {
		if user != "" && u.Name != user {
			continue
		}
		for _, p := range u.Permissions {
			if tenant == "" || p.Tenant == tenant {
				out = append(out, Permission{User: u.Name, Tenant: p.Tenant, Configure: p.Configure, Write: p.Write, Read: p.Read})
			}
		}
	}
	return out, nil
}

func (s *Server) putPermission(c *call) (any, error) {
	var p Permission
	if err := decodeBody(c.r, &p, false); err != nil {
		return nil, err
	}
	ua, u, err := s.findUser(c.path("user"))
	if err != nil {
		return nil, err
	}
	return nil, ua.SetPermission(c.ctx(), u.Name, auth.Permission{Tenant: c.tenant(), Configure: p.Configure, Write: p.Write, Read: p.Read})
}

func (s *Server) deletePermission(c *call) (any, error) {
	ua, u, err := s.findUser(c.path("user"))
	if err != nil {
		return nil, err
	}
	tenant := c.tenant()
	if !slices.ContainsFunc(u.Permissions, func(p auth.Permission) bool { return p.Tenant == tenant }) {
		return nil, base.Errorf(base.CodeNotFound, "user '%s' has no permission in tenant '%s'", u.Name, tenant)
	}
	return nil, ua.ClearPermission(c.ctx(), u.Name, tenant)
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

func (s *Server) listPolicies(c *call) (any, error) {
	pa, err := s.policyAdmin()
	if err != nil {
		return nil, err
	}
	out := []Policy{}
	ps := pa.Policies(c.tenant())
	for i := range ps {
		out = append(out, policyJSON(&ps[i]))
	}
	return out, nil
}

func (s *Server) getPolicy(c *call) (any, error) {
	pa, err := s.policyAdmin()
	if err != nil {
		return nil, err
	}
	tenant, name := c.tenant(), c.path("name")
	ps := pa.Policies(tenant)
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
	pa, err := s.policyAdmin()
	if err != nil {
		return nil, err
	}
	applyTo := auth.ApplyAll
	if spec.ApplyTo != "" {
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
	return nil, pa.PutPolicy(c.ctx(), auth.Policy{Name: c.path("name"), Tenant: c.tenant(), Pattern: spec.Pattern,
		ApplyTo: applyTo, Priority: spec.Priority, Definition: def})
}

func (s *Server) deletePolicy(c *call) (any, error) {
	pa, err := s.policyAdmin()
	if err != nil {
		return nil, err
	}
	return nil, pa.DeletePolicy(c.ctx(), c.tenant(), c.path("name"))
}

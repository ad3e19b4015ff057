package admin

import (
	"context"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/ferry-mq/ferry/internal/auth"
	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/broker"
)

// TestAccessRoutesSayWhatTheBrokerLacks pins the answer of the tenant,
// user, permission and policy routes on a broker without those calls:
// 501 not_supported naming the missing method.
func TestAccessRoutesSayWhatTheBrokerLacks(t *testing.T) {
	a := newAPI(t, openBroker(t), Config{})
	for _, tt := range []struct{ method, path, method2 string }{
		{"GET", "/api/tenants", "CreateTenant"},
		{"GET", "/api/users", "PutUser"},
		{"GET", "/api/permissions", "SetPermission"},
		{"GET", "/api/policies", "PutPolicy"},
	} {
		r := a.do(tt.method, tt.path, nil)
		if r.status != http.StatusNotImplemented || r.errCode() != "not_supported" || !strings.Contains(string(r.body), tt.method2) {
			t.Errorf("%s %s: %d %s, want 501 not_supported naming %s", tt.method, tt.path, r.status, r.body, tt.method2)
		}
	}
}

// accessBroker is the real broker plus in-memory tenant, user and policy
// stores implementing the optional capabilities, so that the HTTP layer
// of those routes is tested before the broker offers them. Authenticate
// also knows the in-memory users (by a plain password).
type accessBroker struct {
	*broker.Broker

	mu        sync.Mutex
	tenants   []string
	users     []auth.User
	passwords map[string]string
	policies  []auth.Policy
}

func (a *accessBroker) Authenticate(user, password string, peer netip.Addr) (broker.Principal, error) {
	a.mu.Lock()
	pw, ok := a.passwords[user]
	var tags []string
	for _, u := range a.users {
		if u.Name == user {
			for _, t := range u.Tags {
				tags = append(tags, string(t))
			}
		}
	}
	a.mu.Unlock()
	if !ok {
		return a.Broker.Authenticate(user, password, peer)
	}
	if pw != password {
		return broker.Principal{}, base.Errorf(base.CodeUnauthenticated, "wrong password")
	}
	return broker.Principal{User: user, Tenant: "/", Tags: tags}, nil
}

func (a *accessBroker) Tenants() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.tenants)
}

func (a *accessBroker) CreateTenant(_ context.Context, name string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !slices.Contains(a.tenants, name) {
		a.tenants = append(a.tenants, name)
		slices.Sort(a.tenants)
	}
	return nil
}

func (a *accessBroker) DeleteTenant(_ context.Context, name string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	i := slices.Index(a.tenants, name)
	if i < 0 {
		return base.Errorf(base.CodeNotFound, "no tenant '%s'", name)
	}
	a.tenants = slices.Delete(a.tenants, i, i+1)
	return nil
}

func (a *accessBroker) Users() []auth.User {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.users)
}

func (a *accessBroker) PutUser(_ context.Context, name, password string, tags []string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	u := auth.User{Name: name}
	for _, t := range tags {
		u.Tags = append(u.Tags, auth.Tag(t))
	}
	if i := slices.IndexFunc(a.users, func(x auth.User) bool { return x.Name == name }); i >= 0 {
		u.Permissions = a.users[i].Permissions
		a.users[i] = u
	} else {
		a.users = append(a.users, u)
	}
	if password != "" {
		a.passwords[name] = password
	}
	return nil
}

func (a *accessBroker) DeleteUser(_ context.Context, name string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.users = slices.DeleteFunc(a.users, func(x auth.User) bool { return x.Name == name })
	delete(a.passwords, name)
	return nil
}

func (a *accessBroker) SetPermission(_ context.Context, user string, p auth.Permission) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	for i := range a.users {
		if a.users[i].Name == user {
			a.users[i].Permissions = append(slices.DeleteFunc(a.users[i].Permissions, func(x auth.Permission) bool { return x.Tenant == p.Tenant }), p)
		}
	}
	return nil
}

func (a *accessBroker) ClearPermission(_ context.Context, user, tenant string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	for i := range a.users {
		if a.users[i].Name == user {
			a.users[i].Permissions = slices.DeleteFunc(a.users[i].Permissions, func(x auth.Permission) bool { return x.Tenant == tenant })
		}
	}
	return nil
}

func (a *accessBroker) Policies(tenant string) []auth.Policy {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []auth.Policy
	for _, p := range a.policies {
		if p.Tenant == tenant {
			out = append(out, p)
		}
	}
	return out
}

func (a *accessBroker) PutPolicy(_ context.Context, p auth.Policy) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.policies = append(slices.DeleteFunc(a.policies, func(x auth.Policy) bool { return x.Name == p.Name && x.Tenant == p.Tenant }), p)
	return nil
}

func (a *accessBroker) DeletePolicy(_ context.Context, tenant, name string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.policies = slices.DeleteFunc(a.policies, func(x auth.Policy) bool { return x.Name == name && x.Tenant == tenant })
	return nil
}

func TestAccessRoutesOverTheBrokerCapabilities(t *testing.T) {
	ab := &accessBroker{Broker: openBroker(t), tenants: []string{"/"}, passwords: map[string]string{}}
	a := newAPI(t, ab, Config{})

	a.must(http.StatusNoContent, "PUT", "/api/tenants/staging", nil)
	var ts []Tenant
	a.must(http.StatusOK, "GET", "/api/tenants", nil).json(t, &ts)
	if len(ts) != 2 || ts[1].Name != "staging" {
		t.Errorf("tenants = %+v, want / and staging", ts)
	}
	a.must(http.StatusOK, "GET", "/api/tenants/%2F", nil)
	a.must(http.StatusNoContent, "DELETE", "/api/tenants/staging", nil)
	a.must(http.StatusNotFound, "GET", "/api/tenants/staging", nil)

	a.must(http.StatusNoContent, "PUT", "/api/users/ann", UserSpec{Password: "s3cret", Tags: []string{"monitoring"}})
	a.must(http.StatusNoContent, "PUT", "/api/users/bob", UserSpec{Password: "pw"})
	a.must(http.StatusNoContent, "PUT", "/api/permissions/ann?tenant=%2F", Permission{Configure: "", Write: "", Read: ".*"})
	var u User
	a.must(http.StatusOK, "GET", "/api/users/ann", nil).json(t, &u)
	if !slices.Equal(u.Tags, []string{"monitoring"}) || len(u.Permissions) != 1 || u.Permissions[0].Read != ".*" || u.Permissions[0].Tenant != "/" {
		t.Errorf("ann = %+v", u)
	}
	var ps []Permission
	a.must(http.StatusOK, "GET", "/api/permissions?user=ann", nil).json(t, &ps)
	if len(ps) != 1 || ps[0].User != "ann" {
		t.Errorf("permissions of ann = %+v", ps)
	}

	// Tags decide who may call what.
	if r := a.doAs("ann", "s3cret", "GET", "/api/overview", nil); r.status != http.StatusOK {
		t.Errorf("a monitoring user reading the overview: %d %s, want 200", r.status, r.body)
	}
	if r := a.doAs("ann", "s3cret", "GET", "/api/users", nil); r.status != http.StatusForbidden || r.errCode() != "access_refused" {
		t.Errorf("a monitoring user listing users: %d %s, want 403 access_refused", r.status, r.body)
	}
	if r := a.doAs("bob", "pw", "GET", "/api/overview", nil); r.status != http.StatusForbidden || !strings.Contains(string(r.body), "monitoring") {
		t.Errorf("a user without tags reading the overview: %d %s, want 403 naming the tags it needs", r.status, r.body)
	}
	if r := a.do("DELETE", "/api/users/guest", nil); r.status != http.StatusConflict {
		t.Errorf("guest deleting itself: %d %s, want 409", r.status, r.body)
	}
	a.must(http.StatusNoContent, "DELETE", "/api/permissions/ann?tenant=%2F", nil)
	a.must(http.StatusNotFound, "DELETE", "/api/permissions/ann?tenant=%2F", nil)
	a.must(http.StatusNoContent, "DELETE", "/api/users/bob", nil)
	a.must(http.StatusNotFound, "GET", "/api/users/bob", nil)

	a.must(http.StatusNoContent, "PUT", "/api/policies/limits", Policy{Pattern: "^jobs\\.", ApplyTo: "queues", Priority: 1,
		Definition: map[string]any{"max-length": 1000, "overflow": "reject-publish"}})
	var pol Policy
	a.must(http.StatusOK, "GET", "/api/policies/limits", nil).json(t, &pol)
	if pol.Pattern != "^jobs\\." || pol.ApplyTo != "queues" || pol.Definition["max-length"] != float64(1000) || pol.Definition["overflow"] != "reject-publish" {
		t.Errorf("policy = %+v", pol)
	}
	if r := a.do("PUT", "/api/policies/bad", Policy{Pattern: ".*", ApplyTo: "everything", Definition: map[string]any{"x": 1}}); r.status != http.StatusBadRequest {
		t.Errorf("bad apply_to: %d, want 400", r.status)
	}
	if r := a.do("PUT", "/api/policies/bad", Policy{Pattern: ".*", Definition: map[string]any{"x": 1.5}}); r.status != http.StatusBadRequest {
		t.Errorf("a fractional definition value: %d, want 400", r.status)
	}
	a.must(http.StatusNoContent, "DELETE", "/api/policies/limits", nil)
	a.must(http.StatusNotFound, "GET", "/api/policies/limits", nil)
}

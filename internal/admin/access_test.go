package admin

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/ferry-mq/ferry/internal/broker"
)

// TestAccessRoutesManageTenantsUsersPermissionsAndPolicies drives the
// tenant, user, permission and policy routes against a real broker: what
// they create is what the broker then enforces (logins, tags, RabbitMQ
// permissions, policies).
func TestAccessRoutesManageTenantsUsersPermissionsAndPolicies(t *testing.T) {
	a := newAPI(t, openBroker(t), Config{})

	a.must(http.StatusCreated, "PUT", "/api/tenants/staging", nil)
	a.must(http.StatusNoContent, "PUT", "/api/tenants/staging", nil)
	var ts []Tenant
	a.must(http.StatusOK, "GET", "/api/tenants", nil).json(t, &ts)
	if len(ts) != 2 || ts[0].Name != "/" || ts[1].Name != "staging" {
		t.Errorf("tenants: got %+v, want / and staging", ts)
	}
	a.must(http.StatusOK, "GET", "/api/tenants/%2F", nil)

	a.must(http.StatusCreated, "PUT", "/api/users/ann", UserSpec{Password: "s3cret", Tags: []string{"monitoring"}})
	a.must(http.StatusCreated, "PUT", "/api/users/bob", UserSpec{Password: "pw"})
	a.must(http.StatusNoContent, "PUT", "/api/permissions/ann?tenant=%2F", Permission{Configure: "", Write: "", Read: ".*"})
	var u User
	a.must(http.StatusOK, "GET", "/api/users/ann", nil).json(t, &u)
	if !slices.Equal(u.Tags, []string{"monitoring"}) || len(u.Permissions) != 1 || u.Permissions[0].Read != ".*" || u.Permissions[0].Tenant != "/" {
		t.Errorf("ann: got %+v", u)
	}
	if r := a.do("GET", "/api/users", nil); strings.Contains(string(r.body), "argon2") || strings.Contains(string(r.body), "s3cret") {
		t.Errorf("the user list shows a hash or a password: %s", r.body)
	}
	var ps []Permission
	a.must(http.StatusOK, "GET", "/api/permissions?user=ann", nil).json(t, &ps)
	if len(ps) != 1 || ps[0].User != "ann" || ps[0].Tenant != "/" {
		t.Errorf("permissions of ann: got %+v", ps)
	}
	a.must(http.StatusNotFound, "PUT", "/api/permissions/ann?tenant=nowhere", Permission{Read: ".*"})
	a.must(http.StatusNotFound, "PUT", "/api/permissions/nobody?tenant=%2F", Permission{Read: ".*"})
	a.must(http.StatusBadRequest, "PUT", "/api/permissions/ann?tenant=%2F", Permission{Read: "(?<=x)"})

	// Tags and permissions decide who may call what.
	if r := a.doAs("ann", "s3cret", "GET", "/api/overview", nil); r.status != http.StatusOK {
		t.Errorf("a monitoring user reading the overview: %d %s, want 200", r.status, r.body)
	}
	var annTenants []Tenant
	if r := a.doAs("ann", "s3cret", "GET", "/api/tenants", nil); r.status != http.StatusOK {
		t.Errorf("a monitoring user listing tenants: %d %s, want 200", r.status, r.body)
	} else if r.json(t, &annTenants); len(annTenants) != 2 {
		t.Errorf("tenants a monitoring user sees: got %+v, want all 2", annTenants)
	}
	if r := a.doAs("ann", "s3cret", "GET", "/api/users", nil); r.status != http.StatusForbidden || r.errCode() != "access_refused" {
		t.Errorf("a monitoring user listing users: %d %s, want 403 access_refused", r.status, r.body)
	}
	if r := a.doAs("ann", "s3cret", "PUT", "/api/queues/forbidden", nil); r.status != http.StatusForbidden {
		t.Errorf("ann declaring a queue without configure rights: %d %s, want 403", r.status, r.body)
	}
	if r := a.doAs("bob", "pw", "GET", "/api/overview", nil); r.status != http.StatusForbidden || !strings.Contains(string(r.body), "monitoring") {
		t.Errorf("a user without tags reading the overview: %d %s, want 403 naming the tags it needs", r.status, r.body)
	}
	if r := a.doAs("bob", "wrong", "GET", "/api/overview", nil); r.status != http.StatusUnauthorized {
		t.Errorf("a wrong password: %d %s, want 401", r.status, r.body)
	}
	if r := a.do("DELETE", "/api/users/guest", nil); r.status != http.StatusConflict {
		t.Errorf("guest deleting itself: %d %s, want 409", r.status, r.body)
	}
	a.must(http.StatusNoContent, "DELETE", "/api/permissions/ann?tenant=%2F", nil)
	a.must(http.StatusNotFound, "DELETE", "/api/permissions/ann?tenant=%2F", nil)
	a.must(http.StatusNoContent, "DELETE", "/api/users/bob", nil)
	a.must(http.StatusNotFound, "GET", "/api/users/bob", nil)
	a.must(http.StatusNotFound, "DELETE", "/api/users/bob", nil)

	a.must(http.StatusNoContent, "PUT", "/api/policies/limits", Policy{Pattern: "^jobs\\.", ApplyTo: "queues", Priority: 1,
		Definition: map[string]any{"max-length": 1000, "overflow": "reject-publish"}})
	var pol Policy
	a.must(http.StatusOK, "GET", "/api/policies/limits", nil).json(t, &pol)
	if pol.Pattern != "^jobs\\." || pol.ApplyTo != "queues" || pol.Definition["max-length"] != float64(1000) || pol.Definition["overflow"] != "reject-publish" {
		t.Errorf("policy: got %+v", pol)
	}
	// The policy applies: a matching queue holds at most max-length.
	a.must(http.StatusNoContent, "PUT", "/api/queues/jobs.a", nil)
	var q Queue
	a.must(http.StatusOK, "GET", "/api/queues/jobs.a", nil).json(t, &q)
	if q.Policy != "limits" {
		t.Errorf("queue jobs.a: got policy %q, want limits", q.Policy)
	}
	if r := a.do("PUT", "/api/policies/bad", Policy{Pattern: ".*", ApplyTo: "everything", Definition: map[string]any{"x": 1}}); r.status != http.StatusBadRequest {
		t.Errorf("bad apply_to: %d, want 400", r.status)
	}
	if r := a.do("PUT", "/api/policies/bad", Policy{Pattern: ".*", Definition: map[string]any{"x": 1.5}}); r.status != http.StatusBadRequest {
		t.Errorf("a fractional definition value: %d, want 400", r.status)
	}
	a.must(http.StatusNotFound, "PUT", "/api/policies/p?tenant=nowhere", Policy{Pattern: ".*", Definition: map[string]any{"max-length": 1}})
	a.must(http.StatusNoContent, "DELETE", "/api/policies/limits", nil)
	a.must(http.StatusNotFound, "GET", "/api/policies/limits", nil)
	a.must(http.StatusNotFound, "DELETE", "/api/policies/limits", nil)

	a.must(http.StatusNoContent, "DELETE", "/api/tenants/staging", nil)
	a.must(http.StatusNotFound, "GET", "/api/tenants/staging", nil)
	a.must(http.StatusNotFound, "DELETE", "/api/tenants/staging", nil)
}

// TestDeletingAUserDropsItsHTTPSession: the broker closes a deleted
// user's connections, the API's session included; the user's next
// request is refused (its login stays cached for AuthCacheTTL, so the
// refusal comes from the broker's permission check).
func TestDeletingAUserDropsItsHTTPSession(t *testing.T) {
	b := openBroker(t)
	a := newAPI(t, b, Config{})
	a.must(http.StatusCreated, "PUT", "/api/users/cat", UserSpec{Password: "pw", Tags: []string{"administrator"}})
	a.must(http.StatusNoContent, "PUT", "/api/permissions/cat?tenant=%2F", Permission{Configure: ".*", Write: ".*", Read: ".*"})
	if r := a.doAs("cat", "pw", "PUT", "/api/queues/cats", nil); r.status != http.StatusNoContent {
		t.Fatalf("cat declaring a queue: %d %s", r.status, r.body)
	}
	if !slices.ContainsFunc(b.Connections(), func(c broker.ConnectionView) bool { return c.User == "cat" }) {
		t.Fatalf("no broker connection of cat after its request")
	}
	a.must(http.StatusNoContent, "DELETE", "/api/users/cat", nil)
	if r := a.doAs("cat", "pw", "PUT", "/api/queues/cats2", nil); r.status != http.StatusForbidden && r.status != http.StatusUnauthorized {
		t.Errorf("a deleted user's request: %d %s, want 403 or 401", r.status, r.body)
	}
}

package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestAccessCommandsManageTenantsUsersPermissionsAndPolicies drives
// `ferry tenant|user|permission|policy` on the built binary against
// `ferry serve`, and checks that the node enforces what they set: a
// user's login, its permissions (exit 5 when refused) and tags.
func TestAccessCommandsManageTenantsUsersPermissionsAndPolicies(t *testing.T) {
	_, env := clientNode(t)
	if out := ferryOK(t, env, "tenant", "create", "staging"); out != "created tenant \"staging\"\n" {
		t.Errorf("tenant create said %q", out)
	}
	if out := ferryOK(t, env, "tenant", "list"); !strings.Contains(out, "NAME") || !strings.Contains(out, "staging") {
		t.Errorf("tenant list: got %q, want a table with staging", out)
	}
	ferryOK(t, env, "user", "create", "alice", "--new-password", "pw-alice", "--tags", "monitoring")
	ferryOK(t, env, "permission", "create", "alice", "--configure", "^a", "--write", ".*", "--read", ".*")
	ferryOK(t, env, "permission", "create", "alice", "--tenant", "staging", "--read", ".*")
	if out := ferryOK(t, env, "user", "list"); !strings.Contains(out, "alice") || !strings.Contains(out, "monitoring") {
		t.Errorf("user list: got %q, want alice with monitoring", out)
	}
	out := ferryOK(t, env, "permission", "list", "--of", "alice", "--all-tenants")
	if !strings.Contains(out, "staging") || !strings.Contains(out, "^a") {
		t.Errorf("permission list --of alice --all-tenants: got %q, want both tenants", out)
	}
	var u struct {
		Name        string `json:"name"`
		Permissions []struct {
			Tenant string `json:"tenant"`
		} `json:"permissions"`
	}
	if err := json.Unmarshal([]byte(ferryOK(t, env, "user", "inspect", "alice")), &u); err != nil || u.Name != "alice" || len(u.Permissions) != 2 {
		t.Errorf("user inspect alice: got %+v %v, want two permissions", u, err)
	}
	if out := ferryOK(t, env, "user", "inspect", "alice"); strings.Contains(out, "argon2") || strings.Contains(out, "pw-alice") {
		t.Errorf("user inspect shows a hash or the password: %q", out)
	}

	// As alice: what its permissions allow, and only that.
	asAlice := append(env[:len(env):len(env)], "FERRY_USER=alice", "FERRY_PASSWORD=pw-alice")
	ferryOK(t, asAlice, "queue", "create", "a-jobs")
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"queue", "create", "b-jobs"}, ExitRefused, "configure access to queue 'b-jobs'"},
		{[]string{"user", "list"}, ExitRefused, "administrator"},
		{[]string{"tenant", "create", "mine"}, ExitRefused, "administrator"},
		{[]string{"queue", "list", "--password", "wrong"}, ExitRefused, "Check --user and --password"},
	} {
		r := runFerry(t, asAlice, tt.args...)
		if r.code != tt.code || !strings.Contains(r.stderr, tt.want) {
			t.Errorf("ferry %q as alice: exit %d, stderr %q; want %d and %q", tt.args, r.code, r.stderr, tt.code, tt.want)
		}
	}

	ferryOK(t, env, "policy", "create", "limits", "--pattern", "^a-", "--apply-to", "queues", "--definition", "max-length=10")
	if out := ferryOK(t, env, "policy", "list"); !strings.Contains(out, "limits") || !strings.Contains(out, "max-length") {
		t.Errorf("policy list: got %q, want limits", out)
	}
	if out := ferryOK(t, env, "queue", "inspect", "a-jobs"); !strings.Contains(out, `"policy": "limits"`) {
		t.Errorf("queue inspect a-jobs: got %q, want the policy limits applied", out)
	}
	if out := ferryOK(t, env, "policy", "inspect", "limits"); !strings.Contains(out, `"pattern": "^a-"`) {
		t.Errorf("policy inspect: got %q", out)
	}
	ferryOK(t, env, "policy", "delete", "limits")
	ferryOK(t, env, "permission", "delete", "alice", "--tenant", "staging")
	ferryOK(t, env, "user", "delete", "alice")
	ferryOK(t, env, "tenant", "delete", "staging")
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"user", "inspect", "alice"}, "no user 'alice'"},
		{[]string{"policy", "inspect", "limits"}, "no policy 'limits'"},
		{[]string{"tenant", "inspect", "staging"}, "no tenant 'staging'"},
		{[]string{"tenant", "delete", "staging"}, "no vhost 'staging'"},
		{[]string{"permission", "delete", "nobody"}, "has no permission"},
	} {
		r := runFerry(t, env, tt.args...)
		if r.code != ExitNotFound || !strings.Contains(r.stderr, tt.want) {
			t.Errorf("ferry %q: exit %d, stderr %q; want %d and %q", tt.args, r.code, r.stderr, ExitNotFound, tt.want)
		}
	}
	r := runFerry(t, env, "user", "delete", "guest")
	if r.code == ExitOK || !strings.Contains(r.stderr, "cannot delete itself") {
		t.Errorf("guest deleting itself: exit %d, stderr %q; want a refusal", r.code, r.stderr)
	}
}

package broker

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/ferry-mq/ferry/internal/auth"
	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/base/vfs"
)

var fullAccess = auth.Permission{Tenant: "/", Configure: ".*", Write: ".*", Read: ".*"}

// newUserConn creates user (no tags) with full access to "/" through
// admin and opens a connection as that user.
func newUserConn(t *testing.T, b *Broker, admin *Conn, user string) *Conn {
	t.Helper()
	mustPutUser(t, admin, user, "pw-"+user)
	mustSetPermission(t, admin, user, fullAccess)
	c, _ := connAs(t, b, user, "/")
	return c
}

// connAs opens a connection of user to tenant whose kill function reports
// the reason on the returned channel.
func connAs(t *testing.T, b *Broker, user, tenant string) (*Conn, <-chan string) {
	t.Helper()
	killed := make(chan string, 1)
	c, err := b.OpenConnection(ConnInfo{ID: "test/" + user + tenant, Protocol: "amqp"}, Principal{User: user, Tenant: tenant},
		func(reason string) {
			select {
			case killed <- reason:
			default:
			}
		})
	if err != nil {
		t.Fatalf("OpenConnection(%s in %s): %v", user, tenant, err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c, killed
}

func mustPutUser(t *testing.T, admin *Conn, name, password string, tags ...string) {
	t.Helper()
	if _, err := admin.PutUser(testCtx(t), name, password, tags); err != nil {
		t.Fatalf("PutUser(%s): %v", name, err)
	}
}

func mustSetPermission(t *testing.T, admin *Conn, user string, p auth.Permission) {
	t.Helper()
	if err := admin.SetPermission(testCtx(t), user, p); err != nil {
		t.Fatalf("SetPermission(%s, %+v): %v", user, p, err)
	}
}

func wantCode(t *testing.T, what string, err error, code base.Code) {
	t.Helper()
	if got := base.CodeOf(err); got != code {
		t.Errorf("%s: got %v (%v), want %v", what, got, err, code)
	}
}

func waitKilled(t *testing.T, killed <-chan string) string {
	t.Helper()
	select {
	case r := <-killed:
		return r
	case <-testCtx(t).Done():
		t.Fatalf("the connection was not closed within %v", testTimeout)
		return ""
	}
}

// TestAdminCallsFollowRabbitMQTags: administrators manage everything; a
// user without tags manages nothing and lists only its tenants; a
// policymaker manages policies only in tenants where it holds a
// permission. The tags are read at each call, not at login.
func TestAdminCallsFollowRabbitMQTags(t *testing.T) {
	b := openNode(t, nodeOpts{})
	ctx := testCtx(t)
	admin := guestConn(t, b)
	if created, err := admin.CreateTenant(ctx, "staging"); err != nil || !created {
		t.Fatalf("CreateTenant(staging): got %v %v, want true nil", created, err)
	}
	if created, err := admin.CreateTenant(ctx, "staging"); err != nil || created {
		t.Errorf("CreateTenant(staging) again: got %v %v, want false nil (idempotent, as RabbitMQ)", created, err)
	}
	mustPutUser(t, admin, "bob", "")
	mustSetPermission(t, admin, "bob", fullAccess)
	bob, _ := connAs(t, b, "bob", "/")
	_, err := bob.CreateTenant(ctx, "mine")
	wantCode(t, "CreateTenant by a user without tags", err, base.CodeAccessRefused)
	_, err = bob.ListUsers()
	wantCode(t, "ListUsers by a user without tags", err, base.CodeAccessRefused)
	_, err = bob.PutUser(ctx, "eve", "", []string{"administrator"})
	wantCode(t, "PutUser by a user without tags", err, base.CodeAccessRefused)
	wantCode(t, "SetPermission by a user without tags", bob.SetPermission(ctx, "bob", auth.Permission{Tenant: "staging"}), base.CodeAccessRefused)
	wantCode(t, "PutPolicy by a user without tags", bob.PutPolicy(ctx, auth.Policy{Name: "p", Tenant: "/", Pattern: ".*",
		Definition: map[string]auth.Value{"max-length": auth.Int(5)}}), base.CodeAccessRefused)
	if got, err := bob.ListTenants(); err != nil || !slices.Equal(got, []string{"/"}) {
		t.Errorf("ListTenants by bob: got %v %v, want [/] (only where it holds a permission)", got, err)
	}
	if got, err := admin.ListTenants(); err != nil || !slices.Equal(got, []string{"/", "staging"}) {
		t.Errorf("ListTenants by guest: got %v %v, want [/ staging]", got, err)
	}

	// Tags change under an open connection: the next call sees them.
	mustPutUser(t, admin, "bob", "", "policymaker")
	pol := auth.Policy{Name: "limits", Tenant: "/", Pattern: "^jobs", ApplyTo: auth.ApplyQueues,
		Definition: map[string]auth.Value{"max-length": auth.Int(5)}}
	if err := bob.PutPolicy(ctx, pol); err != nil {
		t.Fatalf("PutPolicy by a policymaker in its tenant: %v", err)
	}
	pol.Tenant = "staging"
	wantCode(t, "PutPolicy by a policymaker without a permission in the tenant", bob.PutPolicy(ctx, pol), base.CodeAccessRefused)
	_, err = bob.ListPolicies("staging")
	wantCode(t, "ListPolicies by a policymaker without a permission in the tenant", err, base.CodeAccessRefused)
	got, err := bob.ListPolicies("/")
	if err != nil || len(got) != 1 || got[0].Name != "limits" || got[0].Pattern != "^jobs" {
		t.Errorf("ListPolicies(/): got %+v %v, want the policy limits", got, err)
	}
	wantCode(t, "DeletePolicy of a missing policy", bob.DeletePolicy(ctx, "/", "nope"), base.CodeNotFound)
	if err := bob.DeletePolicy(ctx, "/", "limits"); err != nil {
		t.Errorf("DeletePolicy: %v", err)
	}
	if got, _ := bob.ListPolicies("/"); len(got) != 0 {
		t.Errorf("ListPolicies after DeletePolicy: got %+v, want none", got)
	}
	_, err = admin.ListPolicies("nowhere")
	wantCode(t, "ListPolicies of a missing tenant", err, base.CodeNotFound)
}

// TestPermissionCallsCheckTheirArguments covers the refusals of
// SetPermission, ClearPermission and DeleteUser.
func TestPermissionCallsCheckTheirArguments(t *testing.T) {
	b := openNode(t, nodeOpts{})
	ctx := testCtx(t)
	admin := guestConn(t, b)
	mustPutUser(t, admin, "carol", "")
	wantCode(t, "SetPermission with a pattern RE2 refuses", admin.SetPermission(ctx, "carol",
		auth.Permission{Tenant: "/", Configure: "(?<=x)", Write: "", Read: ""}), base.CodeInvalidArgument)
	wantCode(t, "SetPermission in a missing tenant", admin.SetPermission(ctx, "carol", auth.Permission{Tenant: "nowhere"}), base.CodeNotFound)
	wantCode(t, "SetPermission of a missing user", admin.SetPermission(ctx, "nobody", fullAccess), base.CodeNotFound)
	wantCode(t, "ClearPermission where there is none", admin.ClearPermission(ctx, "carol", "/"), base.CodeNotFound)
	mustSetPermission(t, admin, "carol", auth.Permission{Tenant: "/", Read: "^q$"})
	perms, err := admin.ListPermissions("/", "carol")
	if err != nil || len(perms) != 1 || perms[0].User != "carol" || perms[0].Read != "^q$" || perms[0].Configure != "" {
		t.Errorf("ListPermissions(/, carol): got %+v %v", perms, err)
	}
	if err := admin.ClearPermission(ctx, "carol", "/"); err != nil {
		t.Errorf("ClearPermission: %v", err)
	}
	if perms, _ := admin.ListPermissions("", "carol"); len(perms) != 0 {
		t.Errorf("ListPermissions after ClearPermission: got %+v, want none", perms)
	}
	wantCode(t, "DeleteUser of oneself", admin.DeleteUser(ctx, "guest"), base.CodePreconditionFailed)
	wantCode(t, "DeleteUser of a missing user", admin.DeleteUser(ctx, "nobody"), base.CodeNotFound)
	_, err = admin.PutUser(ctx, "dave", string(make([]byte, base.AuthPasswordBytesMax+1)), nil)
	wantCode(t, "PutUser with a password over AuthPasswordBytesMax", err, base.CodeTooLarge)
}

// TestPutUserHashesBeforeProposing: a user made with a password logs in
// with it (PLAIN and SCRAM), and the password's bytes appear nowhere in
// the node's files (Raft log, snapshots, Pebble): only hashes are
// proposed. An empty password on an existing user keeps its password.
func TestPutUserHashesBeforeProposing(t *testing.T) {
	dir := t.TempDir()
	b := openNode(t, nodeOpts{fs: vfs.Default, dir: dir})
	ctx := testCtx(t)
	admin := guestConn(t, b)
	const password = "correct-horse-battery-staple-7f3a"
	if created, err := admin.PutUser(ctx, "alice", password, []string{"monitoring"}); err != nil || !created {
		t.Fatalf("PutUser(alice): got %v %v, want true nil", created, err)
	}
	mustSetPermission(t, admin, "alice", fullAccess)
	p, err := b.Authenticate("alice", password, loopback)
	if err != nil || p.User != "alice" || !slices.Equal(p.Tags, []string{"monitoring"}) {
		t.Fatalf("Authenticate(alice): got %+v %v", p, err)
	}
	_, err = b.Authenticate("alice", "wrong", loopback)
	wantCode(t, "Authenticate with a wrong password", err, base.CodeUnauthenticated)
	creds, ok := b.Directory().Credentials("alice")
	if !ok || creds.ScramSHA256.StoredKey == nil || creds.ScramSHA512.StoredKey == nil {
		t.Errorf("alice's SCRAM credentials: got %+v %v, want both derived", creds.ScramSHA256, ok)
	}

	// New tags, no password: the password stays.
	if created, err := admin.PutUser(ctx, "alice", "", []string{"administrator"}); err != nil || created {
		t.Fatalf("PutUser(alice) again: got %v %v, want false nil", created, err)
	}
	if p, err := b.Authenticate("alice", password, loopback); err != nil || !slices.Equal(p.Tags, []string{"administrator"}) {
		t.Errorf("Authenticate after a tags-only update: got %+v %v, want administrator", p, err)
	}
	users, err := admin.ListUsers()
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(users, func(u UserView) bool { return u.Name == "alice" })
	if i < 0 || !users[i].HasPassword || len(users[i].Permissions) != 1 {
		t.Errorf("ListUsers: got %+v, want alice with a password and one permission", users)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(data, []byte(password)) {
			t.Errorf("%s holds the clear password", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestDeleteUserClosesItsConnections: as RabbitMQ, deleting a user closes
// its connections; the user can no longer log in.
func TestDeleteUserClosesItsConnections(t *testing.T) {
	b := openNode(t, nodeOpts{})
	ctx := testCtx(t)
	admin := guestConn(t, b)
	mustPutUser(t, admin, "erin", "")
	mustSetPermission(t, admin, "erin", fullAccess)
	erin, killed := connAs(t, b, "erin", "/")
	_, guestKilled := connAs(t, b, "guest", "/")
	if err := admin.DeleteUser(ctx, "erin"); err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}
	if got, want := waitKilled(t, killed), "user 'erin' was deleted"; got != want {
		t.Errorf("kill reason: got %q, want %q", got, want)
	}
	select {
	case r := <-guestKilled:
		t.Errorf("guest's connection was closed too: %q", r)
	default:
	}
	_, err := erin.ListTenants()
	if err != nil {
		t.Fatalf("ListTenants on the revoked connection before its front end closed it: %v", err)
	}
	_, err = erin.DeclareQueue(ctx, QueueSpec{Name: "q"})
	wantCode(t, "DeclareQueue by a deleted user", err, base.CodeAccessRefused)
	_, err = b.OpenConnection(ConnInfo{ID: "test/again"}, Principal{User: "erin", Tenant: "/"}, nil)
	wantCode(t, "OpenConnection of a deleted user", err, base.CodeAccessRefused)
}

// TestDeleteTenantDeletesEverythingInIt: as RabbitMQ's vhost deletion, the
// tenant's queues (and messages), exchanges, policies and permissions go,
// and connections to it are closed.
func TestDeleteTenantDeletesEverythingInIt(t *testing.T) {
	b := openNode(t, nodeOpts{})
	ctx := testCtx(t)
	admin := guestConn(t, b)
	if _, err := admin.CreateTenant(ctx, "tmp"); err != nil {
		t.Fatal(err)
	}
	mustSetPermission(t, admin, "guest", auth.Permission{Tenant: "tmp", Configure: ".*", Write: ".*", Read: ".*"})
	in, killed := connAs(t, b, "guest", "tmp")
	declare(t, in, "work")
	publishOne(t, in, "", "work", "m1")
	if err := in.DeclareExchange(ctx, ExchangeSpec{Name: "ex", Type: "fanout", Durable: true}); err != nil {
		t.Fatal(err)
	}
	if err := admin.PutPolicy(ctx, auth.Policy{Name: "p", Tenant: "tmp", Pattern: ".*",
		Definition: map[string]auth.Value{"max-length": auth.Int(9)}}); err != nil {
		t.Fatal(err)
	}
	if err := admin.DeleteTenant(ctx, "tmp"); err != nil {
		t.Fatalf("DeleteTenant: %v", err)
	}
	if got, want := waitKilled(t, killed), "vhost 'tmp' is deleted"; got != want {
		t.Errorf("kill reason: got %q, want %q", got, want)
	}
	wantCode(t, "DeleteTenant of a missing tenant", admin.DeleteTenant(ctx, "tmp"), base.CodeNotFound)
	if perms, _ := admin.ListPermissions("tmp", ""); len(perms) != 0 {
		t.Errorf("permissions in the deleted tenant: got %+v, want none", perms)
	}
	// Created again, the tenant is empty.
	if _, err := admin.CreateTenant(ctx, "tmp"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.lookupQueue("tmp", "work"); base.CodeOf(err) != base.CodeNotFound {
		t.Errorf("queue work after the tenant was deleted and created again: got %v, want not found", err)
	}
	if pols, err := admin.ListPolicies("tmp"); err != nil || len(pols) != 0 {
		t.Errorf("policies after the tenant was deleted and created again: got %+v %v, want none", pols, err)
	}
	if _, err := b.OpenConnection(ConnInfo{ID: "test/tmp2"}, Principal{User: "guest", Tenant: "tmp"}, nil); base.CodeOf(err) != base.CodeAccessRefused {
		t.Errorf("OpenConnection to the recreated tenant without a permission: got %v, want access refused", err)
	}
}

// TestAdminStateSurvivesARestart: tenants, users (and their passwords),
// permissions and policies are in the controller's durable log.
func TestAdminStateSurvivesARestart(t *testing.T) {
	dir := t.TempDir()
	b := openNode(t, nodeOpts{fs: vfs.Default, dir: dir})
	ctx := testCtx(t)
	admin := guestConn(t, b)
	if _, err := admin.CreateTenant(ctx, "prod"); err != nil {
		t.Fatal(err)
	}
	mustPutUser(t, admin, "frank", "pw-frank", "policymaker")
	mustSetPermission(t, admin, "frank", auth.Permission{Tenant: "prod", Configure: "^f-", Write: ".*", Read: ".*"})
	if err := admin.PutPolicy(ctx, auth.Policy{Name: "ttl", Tenant: "prod", Pattern: ".*", ApplyTo: auth.ApplyQueues,
		Definition: map[string]auth.Value{"message-ttl": auth.Int(60000)}}); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b = openNode(t, nodeOpts{fs: vfs.Default, dir: dir})
	if _, err := b.Authenticate("frank", "pw-frank", loopback); err != nil {
		t.Fatalf("Authenticate(frank) after the restart: %v", err)
	}
	frank, _ := connAs(t, b, "frank", "prod")
	if got, err := frank.ListTenants(); err != nil || !slices.Equal(got, []string{"prod"}) {
		t.Errorf("ListTenants by frank after the restart: got %v %v, want [prod]", got, err)
	}
	pols, err := frank.ListPolicies("prod")
	if err != nil || len(pols) != 1 || pols[0].Name != "ttl" {
		t.Errorf("ListPolicies(prod) after the restart: got %+v %v", pols, err)
	}
	if err := frank.Authorize(ActionConfigure, EntityQueue, "free"); err == nil {
		t.Errorf("frank configures 'free' after the restart: allowed, want refused (configure is ^f-)")
	}
	if err := frank.Authorize(ActionConfigure, EntityQueue, "f-q"); err != nil {
		t.Errorf("frank configures 'f-q' after the restart: %v", err)
	}
}

// TestRevokedConnectionWithoutFrontEndIsReleased: a connection opened
// with no kill function (no front end to tell) is closed by the broker
// itself when its user is deleted, so what it owned goes: here its
// exclusive queue (BrokerRevokeCloseTimeout bounds that close).
func TestRevokedConnectionWithoutFrontEndIsReleased(t *testing.T) {
	b := openNode(t, nodeOpts{})
	ctx := testCtx(t)
	admin := guestConn(t, b)
	mustPutUser(t, admin, "gina", "")
	mustSetPermission(t, admin, "gina", fullAccess)
	gina, err := b.OpenConnection(ConnInfo{ID: "test/gina", Protocol: "inproc"}, Principal{User: "gina", Tenant: "/"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gina.DeclareQueue(ctx, QueueSpec{Name: "mine", Exclusive: true}); err != nil {
		t.Fatal(err)
	}
	if err := admin.DeleteUser(ctx, "gina"); err != nil {
		t.Fatal(err)
	}
	for {
		ch := b.ctrl.changed()
		if _, err := b.lookupQueue("/", "mine"); base.CodeOf(err) == base.CodeNotFound {
			break
		}
		select {
		case <-ch:
		case <-ctx.Done():
			t.Fatalf("the exclusive queue of the deleted user's connection is still there after %v", testTimeout)
		}
	}
	if err := gina.usable(); base.CodeOf(err) != base.CodeStopped {
		t.Errorf("the revoked connection: got %v, want closed (stopped)", err)
	}
}

// TestDeleteUserClosesItsConnectionsOnEveryNode: in a three-node cluster,
// a user created through one node (its command forwarded to the
// controller's leader, hashes only) logs in on another; deleting it
// through a third closes that connection, since every node sweeps its
// own connections when it applies the deletion.
func TestDeleteUserClosesItsConnectionsOnEveryNode(t *testing.T) {
	cl := newCluster(t, 3)
	ctx := testCtx(t)
	admin2 := guestConn(t, cl.nodes[1])
	mustPutUser(t, admin2, "hank", "pw-hank")
	mustSetPermission(t, admin2, "hank", fullAccess)
	n3 := cl.nodes[2]
	for {
		ch := n3.ctrl.changed()
		if _, err := n3.Authenticate("hank", "pw-hank", loopback); err == nil {
			break
		}
		select {
		case <-ch:
		case <-ctx.Done():
			t.Fatalf("node 3 never learnt of hank")
		}
	}
	_, killed := connAs(t, n3, "hank", "/")
	if err := guestConn(t, cl.nodes[0]).DeleteUser(ctx, "hank"); err != nil {
		t.Fatalf("DeleteUser through node 1: %v", err)
	}
	if got, want := waitKilled(t, killed), "user 'hank' was deleted"; got != want {
		t.Errorf("kill reason on node 3: got %q, want %q", got, want)
	}
}

// TestALoginBeforeTheBootstrapIsUnavailableNotRefused: a node whose
// cluster is not bootstrapped (here its only peer never starts) has no
// users yet; a client logging in then is told to try again
// (CodeUnavailable), not that guest's password is wrong.
func TestALoginBeforeTheBootstrapIsUnavailableNotRefused(t *testing.T) {
	raft, fwd := listen(t), listen(t)
	absent := listen(t) // an address nobody answers once closed
	addr := absent.Addr().String()
	absent.Close()
	b := openNode(t, nodeOpts{loading: true, tweak: func(c *Config) {
		c.Peers = []Peer{{ID: 1, RaftAddr: raft.Addr().String(), ForwardAddr: fwd.Addr().String()}, {ID: 2, RaftAddr: addr, ForwardAddr: addr}}
		c.RaftListener, c.ForwardListener = raft, fwd
	}})
	if _, err := b.Authenticate("guest", "guest", loopback); base.CodeOf(err) != base.CodeUnavailable {
		t.Fatalf("guest before the bootstrap: %v, want CodeUnavailable", err)
	}
}

// TestAnAdministratorDeletesAnotherConnectionsExclusiveQueue: through
// DeleteQueueAsOperator (the management API's delete), a user with the
// administrator tag deletes an exclusive queue of another connection, as
// RabbitMQ's management API does (the way out for those of a node that
// will not come back); the owner's consumer of it is cancelled. A client
// delete and a user without the tag still get 405.
func TestAnAdministratorDeletesAnotherConnectionsExclusiveQueue(t *testing.T) {
	b := openNode(t, nodeOpts{})
	ctx := testCtx(t)
	admin := guestConn(t, b)
	owner := newUserConn(t, b, admin, "olga")
	if _, err := owner.DeclareQueue(ctx, QueueSpec{Name: "mine", Exclusive: true}); err != nil {
		t.Fatal(err)
	}
	cancelled := make(chan error, 1)
	if _, err := owner.Subscribe(ctx, SubscribeOptions{Queue: "mine", Tag: "c", NoAck: true},
		func(Delivery) {}, func(err error) { cancelled <- err }); err != nil {
		t.Fatal(err)
	}
	other := newUserConn(t, b, admin, "pavel")
	for _, del := range []func() (uint64, error){
		func() (uint64, error) { return admin.DeleteQueue(ctx, "mine", false, false) },
		func() (uint64, error) { return other.DeleteQueueAsOperator(ctx, "mine", false, false) },
	} {
		if _, err := del(); base.CodeOf(err) != base.CodeResourceLocked {
			t.Fatalf("delete of another connection's exclusive queue: %v, want CodeResourceLocked", err)
		}
	}
	if _, err := admin.DeleteQueueAsOperator(ctx, "mine", false, false); err != nil {
		t.Fatalf("an administrator's operator delete: %v", err)
	}
	if _, err := b.lookupQueue("/", "mine"); base.CodeOf(err) != base.CodeNotFound {
		t.Fatalf("after the operator delete: %v, want not found", err)
	}
	select {
	case <-cancelled:
	case <-ctx.Done():
		t.Fatal("the owner's consumer of the deleted queue was not cancelled")
	}
}

package broker

import (
	"context"
	"slices"
	"strings"

	"github.com/ferry-mq/ferry/internal/auth"
	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/controller"
)

// The administration API: tenants (virtual hosts), users, permissions and
// policies, as RabbitMQ's management API and rabbitmqctl offer them. Every
// call is made on a connection and checked against its user's tags as the
// controller holds them now (not as they were at login), with RabbitMQ's
// rules:
//
//   - tenants, users and permissions: the tag administrator; listing
//     tenants: administrator and monitoring see every tenant, other users
//     the tenants where they hold a permission;
//   - policies: administrator, or policymaker in a tenant where the user
//     holds a permission.
//
// A refusal is CodeAccessRefused. Deleting a user closes its connections
// on every node; deleting a tenant deletes everything in it (queues and
// streams with their messages, exchanges, bindings, policies, every
// user's permission there) and closes the connections to it, as RabbitMQ's
// vhost deletion does (revoke.go).

// UserView is a user as the administration API shows it: never its
// password hash or SCRAM keys.
type UserView struct {
	Name        string
	Tags        []string
	HasPassword bool
	Permissions []auth.Permission // sorted by tenant
}

// PermissionView is one user's permission in one tenant.
type PermissionView struct {
	User string
	auth.Permission
}

// callerTags returns the tags the connection's user holds now; a user
// deleted since the connection opened has none.
func (c *Conn) callerTags() auth.Principal {
	p := auth.Principal{Name: c.p.User}
	c.b.ctrl.read(func(ctl *controller.Controller) {
		if u, ok := ctl.User(c.p.User); ok {
			p.Tags = u.Tags
		}
	})
	return p
}

// requireAdministrator refuses a caller without the administrator tag.
func (c *Conn) requireAdministrator(what string) error {
	if err := c.usable(); err != nil {
		return err
	}
	if p := c.callerTags(); !p.Is(auth.TagAdministrator) {
		return base.Errorf(base.CodeAccessRefused, "user '%s' needs the tag administrator to %s", c.p.User, what)
	}
	return nil
}

// requirePolicymaker refuses a caller who may not manage tenant's
// policies: an administrator may; a policymaker needs a permission there.
func (c *Conn) requirePolicymaker(tenant string) error {
	if err := c.usable(); err != nil {
		return err
	}
	p := c.callerTags()
	if p.Is(auth.TagAdministrator) {
		return nil
	}
	if !p.Is(auth.TagPolicymaker) {
		return base.Errorf(base.CodeAccessRefused, "user '%s' needs the tag administrator or policymaker to manage policies", c.p.User)
	}
	var err error
	c.b.ctrl.read(func(ctl *controller.Controller) { err = ctl.AuthorizeTenant(c.p.User, tenant) })
	return err
}

// ListTenants returns the tenants the caller may see, sorted: every one
// for an administrator or a monitoring user, else those where the caller
// holds a permission.
func (c *Conn) ListTenants() ([]string, error) {
	if err := c.usable(); err != nil {
		return nil, err
	}
	p := c.callerTags()
	var out []string
	c.b.ctrl.read(func(ctl *controller.Controller) {
		for _, t := range ctl.Tenants() {
			if p.Is(auth.TagAdministrator) || p.Is(auth.TagMonitoring) || ctl.AuthorizeTenant(c.p.User, t) == nil {
				out = append(out, t)
			}
		}
	})
	return out, nil
}

// CreateTenant creates a tenant; it reports whether it was created (false:
// it existed, which is not an error, as in RabbitMQ). Errors:
// CodeAccessRefused, CodeInvalidArgument (a bad name), CodeTooLarge
// (ControllerTenantsMax).
func (c *Conn) CreateTenant(ctx context.Context, name string) (bool, error) {
	if err := c.requireAdministrator("create a vhost"); err != nil {
		return false, err
	}
	res, err := c.b.changeController(ctx, &controller.CreateTenant{Now: c.b.nowMs(), Name: name})
	if err == nil {
		err = res.Err
	}
	return err == nil && res.Created, err
}

// DeleteTenant deletes a tenant and everything in it, and closes the
// connections to it (on every node, as each applies the deletion).
// Errors: CodeAccessRefused, CodeNotFound.
func (c *Conn) DeleteTenant(ctx context.Context, name string) error {
	if err := c.requireAdministrator("delete a vhost"); err != nil {
		return err
	}
	if !c.b.hasTenant(name) {
		return base.Errorf(base.CodeNotFound, "no vhost '%s'", name)
	}
	return c.b.controllerCall(ctx, &controller.DeleteTenant{Now: c.b.nowMs(), Name: name})
}

func (b *Broker) hasTenant(name string) bool {
	ok := false
	b.ctrl.read(func(ctl *controller.Controller) { ok = ctl.HasTenant(name) })
	return ok
}

// Tenants lists every tenant, sorted, for the node's own readers (metrics,
// the management overview), which act for no user.
func (b *Broker) Tenants() []string {
	var out []string
	b.ctrl.read(func(ctl *controller.Controller) { out = ctl.Tenants() })
	return out
}

// PutUser creates a user or replaces an existing one's password and tags
// (its permissions stay). The password is hashed here, on the node the
// call reaches, before anything is proposed: argon2id for PLAIN and HTTP
// basic, SCRAM-SHA-256/512 stored keys for SCRAM, each with a fresh salt;
// the Raft log never holds the password. An empty password keeps an
// existing user's credentials, and makes a new user one who cannot log in
// with a password. It reports whether the user was created. Errors:
// CodeAccessRefused, CodeInvalidArgument (name, tags, a password SASLprep
// refuses), CodeTooLarge (password over AuthPasswordBytesMax,
// ControllerUsersMax).
func (c *Conn) PutUser(ctx context.Context, name, password string, tags []string) (bool, error) {
	if err := c.requireAdministrator("manage users"); err != nil {
		return false, err
	}
	cmd := &controller.PutUser{Now: c.b.nowMs(), Name: name}
	for _, t := range tags {
		cmd.Tags = append(cmd.Tags, auth.Tag(t))
	}
	if password != "" {
		if len(password) > base.AuthPasswordBytesMax {
			return false, base.Errorf(base.CodeTooLarge, "a password is at most %d bytes (AuthPasswordBytesMax)", base.AuthPasswordBytesMax)
		}
		creds, err := newCredentials(password)
		if err != nil {
			return false, err
		}
		cmd.Credentials = creds
	} else if creds, ok := c.b.Directory().Credentials(name); ok {
		cmd.Credentials = creds
	}
	res, err := c.b.changeController(ctx, cmd)
	if err == nil {
		err = res.Err
	}
	return err == nil && res.Created, err
}

// DeleteUser deletes a user and its permissions and closes its
// connections on every node. A user cannot delete itself (log in as
// another administrator): CodePreconditionFailed. Errors:
// CodeAccessRefused, CodeNotFound.
func (c *Conn) DeleteUser(ctx context.Context, name string) error {
	if err := c.requireAdministrator("manage users"); err != nil {
		return err
	}
	if name == c.p.User {
		return base.Errorf(base.CodePreconditionFailed, "user '%s' cannot delete itself; log in as another administrator", name)
	}
	return c.b.controllerCall(ctx, &controller.DeleteUser{Now: c.b.nowMs(), Name: name})
}

// ListUsers returns every user sorted by name, without credentials.
func (c *Conn) ListUsers() ([]UserView, error) {
	if err := c.requireAdministrator("list users"); err != nil {
		return nil, err
	}
	var out []UserView
	c.b.ctrl.read(func(ctl *controller.Controller) {
		for _, u := range ctl.Users() {
			v := UserView{Name: u.Name, HasPassword: u.HasPassword, Permissions: slices.Clone(u.Permissions), Tags: []string{}}
			for _, t := range u.Tags {
				v.Tags = append(v.Tags, string(t))
			}
			out = append(out, v)
		}
	})
	return out, nil
}

// SetPermission sets user's permission in p.Tenant, replacing any it had
// there. Errors: CodeAccessRefused, CodeNotFound (user or tenant),
// CodeInvalidArgument (a pattern that does not compile or is over
// AuthPatternBytesMax).
func (c *Conn) SetPermission(ctx context.Context, user string, p auth.Permission) error {
	if err := c.requireAdministrator("set permissions"); err != nil {
		return err
	}
	return c.b.controllerCall(ctx, &controller.SetPermission{Now: c.b.nowMs(), User: user, Permission: p})
}

// ClearPermission removes user's permission in tenant. The user's open
// connections there stay, but every later operation is refused. Errors:
// CodeAccessRefused, CodeNotFound (the user has no permission there).
func (c *Conn) ClearPermission(ctx context.Context, user, tenant string) error {
	if err := c.requireAdministrator("clear permissions"); err != nil {
		return err
	}
	has := false
	c.b.ctrl.read(func(ctl *controller.Controller) {
		if u, ok := ctl.User(user); ok {
			has = slices.ContainsFunc(u.Permissions, func(p auth.Permission) bool { return p.Tenant == tenant })
		}
	})
	if !has {
		return base.Errorf(base.CodeNotFound, "user '%s' has no permission in vhost '%s'", user, tenant)
	}
	return c.b.controllerCall(ctx, &controller.ClearPermission{Now: c.b.nowMs(), User: user, Tenant: tenant})
}

// ListPermissions returns the permissions, sorted by user then tenant;
// tenant and user, when not empty, filter them.
func (c *Conn) ListPermissions(tenant, user string) ([]PermissionView, error) {
	if err := c.requireAdministrator("list permissions"); err != nil {
		return nil, err
	}
	var out []PermissionView
	c.b.ctrl.read(func(ctl *controller.Controller) {
		for _, u := range ctl.Users() {
			if user != "" && u.Name != user {
				continue
			}
			for _, p := range u.Permissions {
				if tenant == "" || p.Tenant == tenant {
					out = append(out, PermissionView{User: u.Name, Permission: p})
				}
			}
		}
	})
	return out, nil
}

// PutPolicy creates or replaces a policy of p.Tenant; the queues and
// streams it matches are reconfigured. Errors: CodeAccessRefused,
// CodeNotFound (tenant), CodeInvalidArgument (name, pattern, definition),
// CodeTooLarge (AuthPoliciesMax).
func (c *Conn) PutPolicy(ctx context.Context, p auth.Policy) error {
	if err := c.requirePolicymaker(p.Tenant); err != nil {
		return err
	}
	return c.b.controllerCall(ctx, &controller.PutPolicy{Now: c.b.nowMs(), Policy: p})
}

// DeletePolicy deletes a policy. Errors: CodeAccessRefused, CodeNotFound
// (tenant or policy).
func (c *Conn) DeletePolicy(ctx context.Context, tenant, name string) error {
	if err := c.requirePolicymaker(tenant); err != nil {
		return err
	}
	found := false
	c.b.ctrl.read(func(ctl *controller.Controller) {
		found = slices.ContainsFunc(ctl.Policies(tenant), func(p auth.Policy) bool { return p.Name == name })
	})
	if !found {
		return base.Errorf(base.CodeNotFound, "no policy '%s' in vhost '%s'", name, tenant)
	}
	return c.b.controllerCall(ctx, &controller.DeletePolicy{Now: c.b.nowMs(), Tenant: tenant, Name: name})
}

// ListPolicies returns tenant's policies sorted by name, each with its own
// copy of its definition. Errors: CodeAccessRefused, CodeNotFound.
func (c *Conn) ListPolicies(tenant string) ([]auth.Policy, error) {
	if err := c.requirePolicymaker(tenant); err != nil {
		return nil, err
	}
	if !c.b.hasTenant(tenant) {
		return nil, base.Errorf(base.CodeNotFound, "no vhost '%s'", tenant)
	}
	var out []auth.Policy
	c.b.ctrl.read(func(ctl *controller.Controller) { out = ctl.Policies(tenant) })
	return out, nil
}

// revokeReason says why a connection is closed by an administrator's
// deletion, in RabbitMQ's words.
func revokeReason(userGone bool, user, tenant string) string {
	if userGone {
		return "user '" + user + "' was deleted"
	}
	return "vhost '" + strings.ReplaceAll(tenant, "'", "") + "' is deleted"
}

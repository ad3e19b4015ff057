package controller

import (
	"crypto/sha256"
	"crypto/sha512"
	"slices"
	"strings"

	"github.com/ferry-mq/ferry/internal/auth"
	"github.com/ferry-mq/ferry/internal/base"
)

// checkUser checks what a stored user must satisfy: a name auth accepts,
// at most ControllerUserTagsMax tags, well-formed credentials and
// permissions that compile.
func checkUser(u *user) error {
	if u.name == "" || len(u.name) > base.AuthIdentityBytesMax {
		return base.Errorf(base.CodeInvalidArgument, "user name of %d bytes, want 1 to %d (AuthIdentityBytesMax)",
			len(u.name), base.AuthIdentityBytesMax)
	}
	if len(u.tags) > base.ControllerUserTagsMax {
		return base.Errorf(base.CodeInvalidArgument, "user '%s': %d tags exceed the limit of %d (ControllerUserTagsMax)",
			u.name, len(u.tags), base.ControllerUserTagsMax)
	}
	for _, tag := range u.tags {
		if err := checkName("tag", string(tag)); err != nil {
			return err
		}
	}
	if err := checkCredentials(&u.creds); err != nil {
		return base.Errorf(base.CodeInvalidArgument, "user '%s': %w", u.name, err)
	}
	if len(u.perms) > 0 {
		// Compiling the user alone checks its patterns at the cost of its
		// own permissions, not of every user's.
		if _, err := auth.NewDirectory([]auth.User{u.public()}, auth.DirectoryOptions{}); err != nil {
			return err
		}
	}
	return nil
}

// checkCredentials checks the shape of stored credentials: a PHC string
// auth can parse (or none: the user cannot log in with a password), and
// SCRAM credentials that are either absent or complete.
func checkCredentials(cr *auth.Credentials) error {
	if cr.PasswordHash != "" {
		if len(cr.PasswordHash) > base.AuthPHCBytesMax {
			return base.Errorf(base.CodeInvalidArgument, "password hash of %d bytes exceeds %d (AuthPHCBytesMax)",
				len(cr.PasswordHash), base.AuthPHCBytesMax)
		}
		if _, _, _, err := auth.ParsePHC(cr.PasswordHash); err != nil {
			return err
		}
	}
	if err := checkScram("SCRAM-SHA-256", &cr.ScramSHA256, sha256.Size); err != nil {
		return err
	}
	return checkScram("SCRAM-SHA-512", &cr.ScramSHA512, sha512.Size)
}

func checkScram(mech string, s *auth.ScramCredential, keyBytes int) error {
	if len(s.Salt) == 0 && s.Iterations == 0 && len(s.StoredKey) == 0 && len(s.ServerKey) == 0 {
		return nil
	}
	if len(s.Salt) < base.AuthSaltBytesMin || len(s.Salt) > base.AuthSaltBytesMax ||
		s.Iterations < 4096 || s.Iterations > base.AuthScramIterationsMax ||
		len(s.StoredKey) != keyBytes || len(s.ServerKey) != keyBytes {
		return base.Errorf(base.CodeInvalidArgument, "%s credential is malformed (salt %d bytes, %d iterations, keys %d and %d bytes)",
			mech, len(s.Salt), s.Iterations, len(s.StoredKey), len(s.ServerKey))
	}
	return nil
}

// public returns u as auth stores it, permissions sorted by tenant.
func (u *user) public() auth.User {
	out := auth.User{Name: u.name, Credentials: u.creds, Tags: slices.Clone(u.tags)}
	for _, tn := range sortedKeys(u.perms) {
		out.Permissions = append(out.Permissions, u.perms[tn])
	}
	return out
}

// canonicalTags sorts and deduplicates tags.
func canonicalTags(tags []auth.Tag) []auth.Tag {
	out := slices.Clone(tags)
	slices.Sort(out)
	return slices.Compact(out)
}

func (c *Controller) putUser(cmd *PutUser, r *Result) error {
	old, exists := c.users[cmd.Name]
	u := &user{name: cmd.Name, creds: cloneCredentials(cmd.Credentials), tags: canonicalTags(cmd.Tags),
		perms: map[string]auth.Permission{}}
	if exists {
		u.perms = old.perms
	} else if len(c.users) >= c.lim.users {
		return base.Errorf(base.CodeTooLarge, "the cluster has %d users, the limit (ControllerUsersMax)", len(c.users))
	}
	if err := checkUser(u); err != nil {
		return err
	}
	c.users[u.name] = u
	c.invalidateDirectory()
	r.Created = !exists
	return nil
}

func cloneCredentials(cr auth.Credentials) auth.Credentials {
	clone := func(s auth.ScramCredential) auth.ScramCredential {
		s.Salt, s.StoredKey, s.ServerKey = slices.Clone(s.Salt), slices.Clone(s.StoredKey), slices.Clone(s.ServerKey)
		return s
	}
	cr.ScramSHA256, cr.ScramSHA512 = clone(cr.ScramSHA256), clone(cr.ScramSHA512)
	return cr
}

func (c *Controller) userOf(name string) (*user, error) {
	u, ok := c.users[name]
	if !ok {
		return nil, base.Errorf(base.CodeNotFound, "no user '%s'", name)
	}
	return u, nil
}

func (c *Controller) deleteUser(cmd *DeleteUser) error {
	if _, err := c.userOf(cmd.Name); err != nil {
		return err
	}
	delete(c.users, cmd.Name)
	c.invalidateDirectory()
	return nil
}

func (c *Controller) setPermission(cmd *SetPermission) error {
	u, err := c.userOf(cmd.User)
	if err != nil {
		return err
	}
	if _, err := c.tenantOf(cmd.Permission.Tenant); err != nil {
		return err
	}
	trial := &user{name: u.name, creds: u.creds, tags: u.tags,
		perms: map[string]auth.Permission{cmd.Permission.Tenant: cmd.Permission}}
	if err := checkUser(trial); err != nil {
		return err
	}
	u.perms[cmd.Permission.Tenant] = cmd.Permission
	c.invalidateDirectory()
	return nil
}

func (c *Controller) clearPermission(cmd *ClearPermission) error {
	u, err := c.userOf(cmd.User)
	if err != nil {
		return err
	}
	if _, ok := u.perms[cmd.Tenant]; ok {
		delete(u.perms, cmd.Tenant)
		c.invalidateDirectory()
	}
	return nil
}

// Directory returns the compiled directory of every user and permission,
// for authentication (SASL PLAIN and SCRAM, AMQPLAIN, HTTP basic) and
// authorisation. It is built on the first call after users change and
// shared until the next change; it is immutable and safe for concurrent
// use, and stays valid (describing the users of its time) after later
// commands.
func (c *Controller) Directory() *auth.Directory {
	c.dirMu.Lock()
	defer c.dirMu.Unlock()
	if c.dir == nil {
		users := make([]auth.User, 0, len(c.users))
		for _, name := range sortedKeys(c.users) {
			users = append(users, c.users[name].public())
		}
		dir, err := auth.NewDirectory(users, c.opts.Directory)
		base.Assert(err == nil, "controller: users that passed checkUser do not compile: %v", err)
		c.dir = dir
	}
	return c.dir
}

// Authorize checks that user may do action to the resource of kind named
// name in tenant, with auth's rules over the current users and
// permissions. A refusal is CodeAccessRefused in RabbitMQ's words.
func (c *Controller) Authorize(user, tenant string, action auth.Action, kind auth.ResourceKind, name string) error {
	return c.Directory().Authorize(user, tenant, action, kind, name)
}

// AuthorizeTenant checks that user may open tenant (AMQP
// connection.open): it needs a permission entry there.
func (c *Controller) AuthorizeTenant(user, tenant string) error {
	return c.Directory().AuthorizeTenant(user, tenant)
}

// UserInfo describes a user without its credentials.
type UserInfo struct {
	Name        string
	Tags        []auth.Tag
	HasPassword bool
	Permissions []auth.Permission // sorted by tenant
}

func (u *user) info() UserInfo {
	p := u.public()
	return UserInfo{Name: u.name, Tags: p.Tags, HasPassword: u.creds.PasswordHash != "", Permissions: p.Permissions}
}

// User returns a user, and whether it exists.
func (c *Controller) User(name string) (UserInfo, bool) {
	u, ok := c.users[name]
	if !ok {
		return UserInfo{}, false
	}
	return u.info(), true
}

// Users returns every user, sorted by name.
func (c *Controller) Users() []UserInfo {
	out := make([]UserInfo, 0, len(c.users))
	for _, name := range sortedKeys(c.users) {
		out = append(out, c.users[name].info())
	}
	return out
}

// UserPermission is one user's permission in a tenant.
type UserPermission struct {
	User string
	auth.Permission
}

// TenantPermissions returns the permissions given in tenant, by user.
func (c *Controller) TenantPermissions(tenant string) []UserPermission {
	var out []UserPermission
	for _, name := range sortedKeys(c.users) {
		if p, ok := c.users[name].perms[tenant]; ok {
			out = append(out, UserPermission{User: name, Permission: p})
		}
	}
	slices.SortFunc(out, func(a, b UserPermission) int { return strings.Compare(a.User, b.User) })
	return out
}

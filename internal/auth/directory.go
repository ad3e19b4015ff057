package auth

import (
	"net/netip"
	"regexp"
	"slices"

	"github.com/ferry-mq/ferry/internal/base"
	"golang.org/x/crypto/argon2"
)

// Tag is a RabbitMQ user tag. The well-known ones grant management
// access; others are kept and matched as they are.
type Tag string

const (
	TagAdministrator Tag = "administrator"
	TagMonitoring    Tag = "monitoring"
	TagPolicymaker   Tag = "policymaker"
	TagManagement    Tag = "management"
)

// Permission is one user's rights in one tenant (RabbitMQ vhost): three
// regular expressions matched against resource names. An empty pattern
// matches nothing (RabbitMQ treats "" as "^$", and no resource has an
// empty name: the default exchange is checked as "amq.default"); ".*"
// matches everything. Like RabbitMQ's re:run, a pattern is not anchored:
// write ^ and $ to anchor it. Patterns use Go's RE2 syntax, which has no
// backreferences or lookaround; such PCRE patterns are refused.
type Permission struct {
	Tenant    string
	Configure string
	Write     string
	Read      string
}

// User is a user as the controller stores it.
type User struct {
	Name        string
	Credentials Credentials
	Tags        []Tag
	Permissions []Permission
}

// DefaultLoopbackUsers are the users who may connect only from a loopback
// address, as RabbitMQ's default loopback_users.
var DefaultLoopbackUsers = []string{"guest"}

// DirectoryOptions configure NewDirectory.
type DirectoryOptions struct {
	// LoopbackUsers may connect only from loopback addresses. nil means
	// DefaultLoopbackUsers; an empty non-nil slice means nobody (RabbitMQ's
	// loopback_users = none).
	LoopbackUsers []string
	// ScramDecoyKey, when set, makes SCRAM answer for unknown users with
	// credentials derived from it, so that a client cannot tell an unknown
	// user from a wrong password. A secret of 32 random bytes, the same on
	// every node.
	ScramDecoyKey []byte
}

// Directory is the compiled, read-only view of users and their
// permissions. Build a new one when users change; it is safe for
// concurrent use.
type Directory struct {
	users    map[string]*compiledUser
	loopback map[string]bool
	decoyKey []byte
}

type compiledUser struct {
	name  string
	creds Credentials
	tags  []Tag
	perms map[string]*compiledPermission // by tenant
}

type compiledPermission struct {
	configure, write, read *pattern // nil: matches nothing
}

// pattern is a compiled permission pattern. Its regexp is unanchored, as
// RabbitMQ's are, so ".*" (RabbitMQ's default grant, and the usual one)
// matches every name: all answers that without running the regexp, which
// every publish call checks.
type pattern struct {
	re  *regexp.Regexp
	all bool
}

// match reports whether p (nil: nothing) matches name.
func (p *pattern) match(name string) bool {
	return p != nil && (p.all || p.re.MatchString(name))
}

// NewDirectory compiles users. It refuses (base.CodeInvalidArgument)
// duplicate or over-long names, duplicate tenants for one user, and
// patterns that are over-long or do not compile.
func NewDirectory(users []User, opts DirectoryOptions) (*Directory, error) {
	d := &Directory{users: map[string]*compiledUser{}, loopback: map[string]bool{},
		decoyKey: slices.Clone(opts.ScramDecoyKey)}
	loop := opts.LoopbackUsers
	if loop == nil {
		loop = DefaultLoopbackUsers
	}
	for _, n := range loop {
		d.loopback[n] = true
	}
	for _, u := range users {
		if u.Name == "" || len(u.Name) > base.AuthIdentityBytesMax || d.users[u.Name] != nil {
			return nil, base.Errorf(base.CodeInvalidArgument, "auth: user name %q empty, too long or repeated", u.Name)
		}
		cu := &compiledUser{name: u.Name, creds: u.Credentials, tags: slices.Clone(u.Tags),
			perms: map[string]*compiledPermission{}}
		for _, p := range u.Permissions {
			if cu.perms[p.Tenant] != nil {
				return nil, base.Errorf(base.CodeInvalidArgument, "auth: user %q has two permissions in vhost %q",
					u.Name, p.Tenant)
			}
			cp, err := compilePermission(p)
			if err != nil {
				return nil, base.Errorf(base.CodeInvalidArgument, "auth: user %q in vhost %q: %w", u.Name, p.Tenant, err)
			}
			cu.perms[p.Tenant] = cp
		}
		d.users[u.Name] = cu
	}
	return d, nil
}

func compilePattern(p string) (*pattern, error) {
	if p == "" {
		return nil, nil
	}
	if len(p) > base.AuthPatternBytesMax {
		return nil, base.Errorf(base.CodeInvalidArgument, "pattern of %d bytes is over the limit of %d",
			len(p), base.AuthPatternBytesMax)
	}
	re, err := regexp.Compile(p)
	if err != nil {
		return nil, base.Errorf(base.CodeInvalidArgument, "pattern %q: %w", p, err)
	}
	return &pattern{re: re, all: p == ".*"}, nil
}

func compilePermission(p Permission) (*compiledPermission, error) {
	var cp compiledPermission
	var err error
	if cp.configure, err = compilePattern(p.Configure); err != nil {
		return nil, err
	}
	if cp.write, err = compilePattern(p.Write); err != nil {
		return nil, err
	}
	if cp.read, err = compilePattern(p.Read); err != nil {
		return nil, err
	}
	return &cp, nil
}

// Principal is an authenticated user.
type Principal struct {
	Name string
	Tags []Tag
}

// Is reports whether the principal carries tag, with RabbitMQ's
// implications: administrator implies every management tag; monitoring and
// policymaker imply management.
func (p *Principal) Is(tag Tag) bool {
	for _, t := range p.Tags {
		switch {
		case t == tag, t == TagAdministrator && (tag == TagMonitoring || tag == TagPolicymaker || tag == TagManagement),
			(t == TagMonitoring || t == TagPolicymaker) && tag == TagManagement:
			return true
		}
	}
	return false
}

// decoySalt salts the argon2id evaluation done for unknown users, so that
// they take as long to refuse as a wrong password.
var decoySalt = []byte("ferry-decoy-salt")

// Authenticate checks a user name and password (PLAIN, AMQPLAIN's LOGIN
// and PASSWORD, HTTP basic) and the loopback rule for peer. A wrong name or
// password gives base.CodeUnauthenticated with the same message either way
// (and the same cost: an unknown user still costs one argon2id
// evaluation); a loopback-only user connecting from elsewhere gives
// base.CodeAccessRefused.
func (d *Directory) Authenticate(mech Mechanism, name, password string, peer netip.Addr) (*Principal, error) {
	refused := base.Errorf(base.CodeUnauthenticated, "auth: %s login refused for user %q", mech, name)
	u := d.users[name]
	if u == nil || u.creds.PasswordHash == "" {
		p := DefaultArgon2Params
		argon2.IDKey([]byte(password), decoySalt, p.Iterations, p.MemoryKiB, p.Parallelism, base.AuthArgon2KeyBytes)
		return nil, refused
	}
	ok, err := VerifyPassword(u.creds.PasswordHash, password)
	if err != nil {
		return nil, base.Errorf(base.CodeInternal, "auth: stored password hash of user %q: %w", name, err)
	}
	if !ok {
		return nil, refused
	}
	return d.Admit(name, peer)
}

// AuthenticateAMQPlain verifies AMQPLAIN's LOGIN and PASSWORD, which the
// AMQP front end reads from the client's field table; the rules are
// Authenticate's.
func (d *Directory) AuthenticateAMQPlain(login, password string, peer netip.Addr) (*Principal, error) {
	if len(login) > base.AuthIdentityBytesMax || len(password) > base.AuthPasswordBytesMax {
		return nil, base.Errorf(base.CodeInvalidArgument, "auth: AMQPLAIN: login or password over its limit")
	}
	return d.Authenticate(MechAMQPlain, login, password, peer)
}

// AuthenticatePlain verifies a decoded PLAIN message (PlainMessage.User's
// rule, then the password).
func (d *Directory) AuthenticatePlain(m PlainMessage, peer netip.Addr) (*Principal, error) {
	user, err := m.User()
	if err != nil {
		return nil, err
	}
	return d.Authenticate(MechPlain, user, m.Password, peer)
}

// Admit applies what follows a successful authentication by any mechanism
// (SCRAM included): the loopback rule, then the principal.
func (d *Directory) Admit(name string, peer netip.Addr) (*Principal, error) {
	u := d.users[name]
	if u == nil {
		return nil, base.Errorf(base.CodeUnauthenticated, "auth: unknown user %q", name)
	}
	if d.loopback[name] && !peer.Unmap().IsLoopback() {
		return nil, base.Errorf(base.CodeAccessRefused, "auth: user %q can only connect via localhost", name)
	}
	return &Principal{Name: name, Tags: slices.Clone(u.tags)}, nil
}

// Action is what a client does to a resource, as RabbitMQ's three
// permissions name it.
type Action uint8

const (
	ActionConfigure Action = iota // create, delete, change
	ActionWrite                   // publish into, bind from
	ActionRead                    // consume from, bind to
)

func (a Action) String() string {
	switch a {
	case ActionConfigure:
		return "configure"
	case ActionWrite:
		return "write"
	case ActionRead:
		return "read"
	}
	return "action?"
}

// ResourceKind is the kind of a resource permissions apply to.
type ResourceKind uint8

const (
	ResourceQueue ResourceKind = iota
	ResourceStream
	ResourceExchange
)

func (k ResourceKind) String() string {
	switch k {
	case ResourceQueue:
		return "queue"
	case ResourceStream:
		return "stream"
	case ResourceExchange:
		return "exchange"
	}
	return "resource?"
}

// AuthorizeTenant checks that user may use tenant at all (AMQP
// connection.open): they need a permission entry there, as in RabbitMQ.
func (d *Directory) AuthorizeTenant(user, tenant string) error {
	if u := d.users[user]; u != nil && u.perms[tenant] != nil {
		return nil
	}
	return base.Errorf(base.CodeAccessRefused, "access to vhost '%s' refused for user '%s'", tenant, user)
}

// Authorize checks that user may do action to the resource of kind named
// name in tenant. A refusal is base.CodeAccessRefused worded as RabbitMQ's:
// "write access to exchange 'x' in vhost '/' refused for user 'u'". The
// default exchange ("") is checked as "amq.default", as RabbitMQ does.
func (d *Directory) Authorize(user, tenant string, action Action, kind ResourceKind, name string) error {
	if kind == ResourceExchange && name == "" {
		name = "amq.default"
	}
	if u := d.users[user]; u != nil {
		if p := u.perms[tenant]; p != nil {
			pat := p.configure
			switch action {
			case ActionWrite:
				pat = p.write
			case ActionRead:
				pat = p.read
			}
			if pat.match(name) {
				return nil
			}
		}
	}
	return base.Errorf(base.CodeAccessRefused, "%s access to %s '%s' in vhost '%s' refused for user '%s'",
		action, kind, name, tenant, user)
}

// Principal returns the principal of a known user, for front ends that
// authenticate by other means (TLS client certificates).
func (d *Directory) Principal(name string) (*Principal, bool) {
	u := d.users[name]
	if u == nil {
		return nil, false
	}
	return &Principal{Name: name, Tags: slices.Clone(u.tags)}, true
}

package auth

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/ferry-mq/ferry/internal/base"
)

func testDirectory(t *testing.T) *Directory {
	t.Helper()
	hash := func(pw string) Credentials {
		phc, err := HashPassword(pw, salt(1), cheap)
		if err != nil {
			t.Fatal(err)
		}
		return Credentials{PasswordHash: phc}
	}
	d, err := NewDirectory([]User{
		{Name: "guest", Credentials: hash("guest"), Tags: []Tag{TagAdministrator},
			Permissions: []Permission{{Tenant: "/", Configure: ".*", Write: ".*", Read: ".*"}}},
		{Name: "app", Credentials: hash("s3cret"), Tags: []Tag{TagMonitoring, "custom"},
			Permissions: []Permission{
				{Tenant: "/", Configure: "^app\\.", Write: "^(app\\..*|amq\\.default)$", Read: ""},
				{Tenant: "prod", Configure: "", Write: "", Read: "orders"},
			}},
		{Name: "ops", Credentials: hash("ops"), Tags: []Tag{TagPolicymaker}},
	}, DirectoryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

var (
	loopback4 = netip.MustParseAddr("127.0.0.1")
	loopback6 = netip.MustParseAddr("::1")
	mapped    = netip.MustParseAddr("::ffff:127.0.0.1")
	remote    = netip.MustParseAddr("10.1.2.3")
)

func TestAuthenticate(t *testing.T) {
	d := testDirectory(t)
	for _, tc := range []struct {
		name, user, password string
		peer                 netip.Addr
		want                 base.Code // 0 for success
	}{
		{"right password", "app", "s3cret", remote, 0},
		{"wrong password", "app", "s3cre", remote, base.CodeUnauthenticated},
		{"unknown user", "nobody", "s3cret", remote, base.CodeUnauthenticated},
		{"guest from loopback", "guest", "guest", loopback4, 0},
		{"guest from IPv6 loopback", "guest", "guest", loopback6, 0},
		{"guest from IPv4-mapped loopback", "guest", "guest", mapped, 0},
		{"guest from elsewhere", "guest", "guest", remote, base.CodeAccessRefused},
		{"guest, wrong password, from elsewhere", "guest", "x", remote, base.CodeUnauthenticated},
		{"user without a password", "ops", "", remote, base.CodeUnauthenticated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := d.Authenticate(MechAMQPlain, tc.user, tc.password, tc.peer)
			if got := base.CodeOf(err); got != tc.want {
				t.Fatalf("got %v (%v), want code %v", got, err, tc.want)
			}
			if tc.want == 0 && p.Name != tc.user {
				t.Errorf("principal: got %q, want %q", p.Name, tc.user)
			}
			if err != nil && strings.Contains(err.Error(), tc.password) && tc.password != "" && tc.password != tc.user {
				t.Errorf("error reveals the password: %v", err)
			}
		})
	}
	// The wrong-password and unknown-user refusals read alike.
	_, e1 := d.Authenticate(MechPlain, "app", "x", remote)
	_, e2 := d.Authenticate(MechPlain, "nobody", "x", remote)
	if strings.Replace(e1.Error(), "app", "nobody", 1) != e2.Error() {
		t.Errorf("refusals differ: %q vs %q", e1, e2)
	}
}

func TestAuthenticateAMQPlain(t *testing.T) {
	d := testDirectory(t)
	if p, err := d.AuthenticateAMQPlain("app", "s3cret", remote); err != nil || p.Name != "app" {
		t.Errorf("right LOGIN and PASSWORD: got %v %v", p, err)
	}
	if _, err := d.AuthenticateAMQPlain("app", "nope", remote); base.CodeOf(err) != base.CodeUnauthenticated {
		t.Errorf("wrong PASSWORD: got %v, want %v", err, base.CodeUnauthenticated)
	}
	long := strings.Repeat("p", base.AuthPasswordBytesMax+1)
	if _, err := d.AuthenticateAMQPlain("app", long, remote); base.CodeOf(err) != base.CodeInvalidArgument {
		t.Errorf("PASSWORD past the limit: got %v, want %v", err, base.CodeInvalidArgument)
	}
}

func TestLoopbackUsersCanBeConfigured(t *testing.T) {
	phc, _ := HashPassword("guest", salt(1), cheap)
	users := []User{{Name: "guest", Credentials: Credentials{PasswordHash: phc}}}
	open, _ := NewDirectory(users, DirectoryOptions{LoopbackUsers: []string{}})
	if _, err := open.Authenticate(MechPlain, "guest", "guest", remote); err != nil {
		t.Errorf("loopback_users = none: guest from elsewhere refused: %v", err)
	}
	strict, _ := NewDirectory(users, DirectoryOptions{LoopbackUsers: []string{"guest", "admin"}})
	if _, err := strict.Admit("guest", remote); base.CodeOf(err) != base.CodeAccessRefused {
		t.Errorf("Admit of a loopback user from elsewhere: got %v", err)
	}
}

func TestAuthenticatePlainRefusesImpersonation(t *testing.T) {
	d := testDirectory(t)
	if _, err := d.AuthenticatePlain(PlainMessage{AuthzID: "app", AuthcID: "app", Password: "s3cret"}, remote); err != nil {
		t.Errorf("authzid equal to authcid: %v", err)
	}
	if _, err := d.AuthenticatePlain(PlainMessage{AuthzID: "guest", AuthcID: "app", Password: "s3cret"}, remote); base.CodeOf(err) != base.CodeAccessRefused {
		t.Errorf("acting as another user: got %v, want %v", err, base.CodeAccessRefused)
	}
}

func TestAuthorizeAsRabbitMQ(t *testing.T) {
	d := testDirectory(t)
	for _, tc := range []struct {
		user, tenant string
		action       Action
		kind         ResourceKind
		name         string
		refusal      string // "" when allowed
	}{
		{"guest", "/", ActionConfigure, ResourceQueue, "anything", ""},
		{"app", "/", ActionConfigure, ResourceQueue, "app.orders", ""},
		// Patterns are not anchored unless they say so, as RabbitMQ's.
		{"app", "/", ActionConfigure, ResourceQueue, "x", "configure access to queue 'x' in vhost '/' refused for user 'app'"},
		{"app", "/", ActionWrite, ResourceExchange, "app.events", ""},
		{"app", "/", ActionWrite, ResourceExchange, "xapp.events", "write access to exchange 'xapp.events' in vhost '/' refused for user 'app'"},
		// The default exchange is checked as amq.default.
		{"app", "/", ActionWrite, ResourceExchange, "", ""},
		{"app", "prod", ActionWrite, ResourceExchange, "", "write access to exchange 'amq.default' in vhost 'prod' refused for user 'app'"},
		// An empty pattern matches nothing.
		{"app", "/", ActionRead, ResourceQueue, "app.orders", "read access to queue 'app.orders' in vhost '/' refused for user 'app'"},
		// Unanchored: "orders" matches inside a longer name.
		{"app", "prod", ActionRead, ResourceStream, "eu-orders-v2", ""},
		{"app", "staging", ActionRead, ResourceStream, "orders", "read access to stream 'orders' in vhost 'staging' refused for user 'app'"},
		{"nobody", "/", ActionRead, ResourceQueue, "q", "read access to queue 'q' in vhost '/' refused for user 'nobody'"},
	} {
		err := d.Authorize(tc.user, tc.tenant, tc.action, tc.kind, tc.name)
		if tc.refusal == "" {
			if err != nil {
				t.Errorf("%s %s %s %q in %q: got %v, want allowed", tc.user, tc.action, tc.kind, tc.name, tc.tenant, err)
			}
			continue
		}
		if base.CodeOf(err) != base.CodeAccessRefused || err.Error() != tc.refusal {
			t.Errorf("%s %s %s %q in %q: got %v, want %q", tc.user, tc.action, tc.kind, tc.name, tc.tenant, err, tc.refusal)
		}
	}
	if err := d.AuthorizeTenant("app", "prod"); err != nil {
		t.Errorf("vhost with permissions: %v", err)
	}
	if err := d.AuthorizeTenant("ops", "/"); err == nil || err.Error() != "access to vhost '/' refused for user 'ops'" {
		t.Errorf("vhost without permissions: got %v", err)
	}
}

func TestTagsImplyAsRabbitMQ(t *testing.T) {
	d := testDirectory(t)
	for _, tc := range []struct {
		user string
		tag  Tag
		want bool
	}{
		{"guest", TagAdministrator, true}, {"guest", TagMonitoring, true}, {"guest", TagPolicymaker, true},
		{"guest", TagManagement, true}, {"guest", "custom", false},
		{"app", TagMonitoring, true}, {"app", TagManagement, true}, {"app", TagAdministrator, false},
		{"app", TagPolicymaker, false}, {"app", "custom", true},
		{"ops", TagPolicymaker, true}, {"ops", TagManagement, true}, {"ops", TagMonitoring, false},
	} {
		p, _ := d.Principal(tc.user)
		if got := p.Is(tc.tag); got != tc.want {
			t.Errorf("%s is %s: got %v, want %v", tc.user, tc.tag, got, tc.want)
		}
	}
}

func TestNewDirectoryRefusesBadInput(t *testing.T) {
	for _, users := range [][]User{
		{{Name: ""}},
		{{Name: "a"}, {Name: "a"}},
		{{Name: strings.Repeat("u", base.AuthIdentityBytesMax+1)}},
		{{Name: "a", Permissions: []Permission{{Tenant: "/"}, {Tenant: "/"}}}},
		{{Name: "a", Permissions: []Permission{{Tenant: "/", Read: "(a"}}}},
		{{Name: "a", Permissions: []Permission{{Tenant: "/", Read: "(?=a)"}}}},
		{{Name: "a", Permissions: []Permission{{Tenant: "/", Write: strings.Repeat("a", base.AuthPatternBytesMax+1)}}}},
	} {
		if _, err := NewDirectory(users, DirectoryOptions{}); base.CodeOf(err) != base.CodeInvalidArgument {
			t.Errorf("NewDirectory(%.60v): got %v, want %v", users, err, base.CodeInvalidArgument)
		}
	}
	if _, err := NewDirectory([]User{{Name: "a", Permissions: []Permission{{Tenant: "/", Write: strings.Repeat("a", base.AuthPatternBytesMax)}}}}, DirectoryOptions{}); err != nil {
		t.Errorf("pattern at the limit: %v", err)
	}
}

// ".*" grants every name without running its regexp; the shortcut must
// answer what the unanchored regexp answers, for any name a client may
// send (empty, with newlines, not UTF-8), and only ".*" takes it.
func TestEveryNamePatternMatchesAsItsRegexp(t *testing.T) {
	all, err := compilePattern(".*")
	if err != nil || !all.all {
		t.Fatalf(`compilePattern(".*") = %+v, %v; want the shortcut`, all, err)
	}
	anchored, err := compilePattern("^.*$")
	if err != nil || anchored.all {
		t.Fatalf(`compilePattern("^.*$") = %+v, %v; want no shortcut: it refuses names with a newline`, anchored, err)
	}
	for _, name := range []string{"", "orders", "amq.default", "a\nb", "\n", "\xff\xfe", strings.Repeat("x", 300)} {
		if got, want := all.match(name), all.re.MatchString(name); got != want {
			t.Errorf("%q: shortcut %v, regexp %v", name, got, want)
		}
	}
	if anchored.match("a\nb") {
		t.Errorf(`"^.*$" matched a name with a newline`)
	}
}

// BenchmarkAuthorize is the check every publish call makes, with
// RabbitMQ's default grant (".*") and with a narrower pattern.
func BenchmarkAuthorize(b *testing.B) {
	d, err := NewDirectory([]User{{Name: "u", Permissions: []Permission{
		{Tenant: "/", Write: ".*"}, {Tenant: "app", Write: "^(app\\..*|amq\\.default)$"}}}}, DirectoryOptions{})
	if err != nil {
		b.Fatal(err)
	}
	for _, tenant := range []string{"/", "app"} {
		b.Run(tenant, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if err := d.Authorize("u", tenant, ActionWrite, ResourceExchange, "app.events"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

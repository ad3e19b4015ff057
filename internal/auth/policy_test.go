package auth

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/ferry-mq/ferry/internal/base"
	"pgregory.net/rapid"
)

func mustPolicies(t testing.TB, ps ...Policy) *PolicySet {
	s, err := NewPolicySet(ps)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestPolicyMatchPicksPriorityThenName(t *testing.T) {
	s := mustPolicies(t,
		Policy{Name: "all", Tenant: "/", Pattern: ".*", Definition: map[string]Value{"max-length": Int(100)}},
		Policy{Name: "orders-b", Tenant: "/", Pattern: "^orders\\.", Priority: 5, Definition: map[string]Value{"max-length": Int(5)}},
		Policy{Name: "orders-a", Tenant: "/", Pattern: "^orders\\.", Priority: 5, Definition: map[string]Value{"max-length": Int(7)}},
		Policy{Name: "ex", Tenant: "/", Pattern: ".*", ApplyTo: ApplyExchanges, Priority: 9, Definition: map[string]Value{"alternate-exchange": Str("ae")}},
		Policy{Name: "streams", Tenant: "/", Pattern: "log", ApplyTo: ApplyStreams, Priority: 9, Definition: map[string]Value{"max-age": Str("7D")}},
		Policy{Name: "other", Tenant: "prod", Pattern: ".*", Priority: 99, Definition: map[string]Value{"max-length": Int(1)}},
	)
	for _, tc := range []struct {
		kind ResourceKind
		name string
		want string
	}{
		{ResourceQueue, "orders.eu", "orders-a"}, // tie at 5: lowest name
		{ResourceQueue, "invoices", "all"},
		{ResourceQueue, "xorders.eu", "all"}, // anchored by its own ^
		{ResourceExchange, "orders.eu", "ex"},
		{ResourceStream, "orders.eu", "orders-a"}, // "queues" covers streams
		{ResourceStream, "audit-log", "streams"},
		{ResourceQueue, "audit-log", "all"}, // "streams" does not cover queues
	} {
		p, ok := s.Match("/", tc.kind, tc.name)
		if !ok || p.Name != tc.want {
			t.Errorf("%s %q: got %q %v, want %q", tc.kind, tc.name, p.Name, ok, tc.want)
		}
	}
	if p, ok := s.Match("staging", ResourceQueue, "q"); ok {
		t.Errorf("tenant without policies: got %q", p.Name)
	}
}

func TestEffectiveMergesAsRabbitMQ(t *testing.T) {
	s := mustPolicies(t, Policy{Name: "p", Tenant: "/", Pattern: ".*", Definition: map[string]Value{
		"max-length": Int(100), "message-ttl": Int(60000), "dead-letter-exchange": Str("policy-dlx"),
		"overflow": Str("reject-publish"), "max-age": Str("1D"), "expires": Int(5000),
	}})
	got := s.Effective("/", ResourceQueue, "q", map[string]Value{
		"max-length":           Int(10),        // lower than the policy: the argument's
		"message-ttl":          Int(120000),    // higher: the policy's
		"dead-letter-exchange": Str("arg-dlx"), // a setting: the argument's
		"max-age":              Str("2D"),      // longer: the policy's
		"expires":              Str("soon"),    // wrong type: kept, for the front end to refuse
		"x-custom":             Str("kept"),
	})
	want := map[string]Value{
		"max-length": Int(10), "message-ttl": Int(60000), "dead-letter-exchange": Str("arg-dlx"),
		"overflow": Str("reject-publish"), "max-age": Str("1D"), "expires": Str("soon"), "x-custom": Str("kept"),
	}
	if got.Policy != "p" || fmt.Sprint(got.Values) != fmt.Sprint(want) {
		t.Errorf("Effective:\n got %v %v\nwant p %v", got.Policy, got.Values, want)
	}
	none := mustPolicies(t).Effective("/", ResourceQueue, "q", map[string]Value{"max-length": Int(3)})
	if none.Policy != "" || fmt.Sprint(none.Values) != "map[max-length:3]" {
		t.Errorf("no policy: got %v", none)
	}
}

func TestNewPolicySetRefusesBadPolicies(t *testing.T) {
	ok := map[string]Value{"max-length": Int(1)}
	for _, tc := range []struct {
		name string
		ps   []Policy
	}{
		{"empty name", []Policy{{Tenant: "/", Definition: ok}}},
		{"duplicate name", []Policy{{Name: "a", Definition: ok}, {Name: "a", Definition: ok}}},
		{"bad pattern", []Policy{{Name: "a", Pattern: "(", Definition: ok}}},
		{"long pattern", []Policy{{Name: "a", Pattern: strings.Repeat("a", base.AuthPatternBytesMax+1), Definition: ok}}},
		{"empty definition", []Policy{{Name: "a"}}},
		{"unknown key", []Policy{{Name: "a", Definition: map[string]Value{"ha-mode": Str("all")}}}},
		{"wrong type", []Policy{{Name: "a", Definition: map[string]Value{"max-length": Str("1")}}}},
		{"negative limit", []Policy{{Name: "a", Definition: map[string]Value{"max-length": Int(-1)}}}},
		{"zero expires", []Policy{{Name: "a", Definition: map[string]Value{"expires": Int(0)}}}},
		{"bad overflow", []Policy{{Name: "a", Definition: map[string]Value{"overflow": Str("drop-tail")}}}},
		{"bad max-age", []Policy{{Name: "a", Definition: map[string]Value{"max-age": Str("7 days")}}}},
		{"bad apply-to", []Policy{{Name: "a", ApplyTo: 9, Definition: ok}}},
	} {
		if _, err := NewPolicySet(tc.ps); base.CodeOf(err) != base.CodeInvalidArgument {
			t.Errorf("%s: got %v, want %v", tc.name, err, base.CodeInvalidArgument)
		}
	}
	var many []Policy
	for i := range base.AuthPoliciesMax {
		many = append(many, Policy{Name: fmt.Sprint("p", i), Tenant: "/", Definition: ok})
	}
	if _, err := NewPolicySet(many); err != nil {
		t.Errorf("policies at the limit: %v", err)
	}
	many = append(many, Policy{Name: "one-more", Tenant: "/", Definition: ok})
	if _, err := NewPolicySet(many); base.CodeOf(err) != base.CodeInvalidArgument {
		t.Errorf("policies past the limit: got %v", err)
	}
	if _, err := NewPolicySet(append(many[:1:1], Policy{Name: "p0", Tenant: "other", Definition: ok})); err != nil {
		t.Errorf("the same name in another vhost: %v", err)
	}
}

func TestParseMaxAge(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
	}{
		{"1s", 1000}, {"90m", 90 * 60_000}, {"12h", 12 * 3_600_000}, {"7D", 7 * 86_400_000},
		{"1M", 30 * 86_400_000}, {"2Y", 2 * 365 * 86_400_000},
	} {
		if got, err := ParseMaxAge(tc.in); err != nil || got != tc.want {
			t.Errorf("ParseMaxAge(%q): got %d %v, want %d", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{"", "D", "0D", "-1D", "7d", "7 D", "7DD", "1.5h", "+7D", "999999999999999999Y"} {
		if _, err := ParseMaxAge(in); base.CodeOf(err) != base.CodeInvalidArgument {
			t.Errorf("ParseMaxAge(%q): got %v, want %v", in, err, base.CodeInvalidArgument)
		}
	}
}

func TestApplyToNames(t *testing.T) {
	for _, a := range []ApplyTo{ApplyAll, ApplyQueues, ApplyStreams, ApplyExchanges} {
		if got, err := ParseApplyTo(a.String()); err != nil || got != a {
			t.Errorf("ParseApplyTo(%q): got %v %v", a, got, err)
		}
	}
	if _, err := ParseApplyTo("both"); base.CodeOf(err) != base.CodeInvalidArgument {
		t.Errorf("ParseApplyTo(both): got %v", err)
	}
}

// TestPolicyMatchAgreesWithNaiveModel compares Match with the rule stated
// directly: among the tenant's policies that cover the kind and match the
// name, the greatest priority, then the least name.
func TestPolicyMatchAgreesWithNaiveModel(t *testing.T) {
	patterns := []string{"", ".*", "^a", "b$", "^a.c$", "c", "^$", "x|y"}
	rapid.Check(t, func(t *rapid.T) {
		var ps []Policy
		seen := map[string]bool{}
		for range rapid.IntRange(0, 12).Draw(t, "policies") {
			p := Policy{Name: rapid.SampledFrom([]string{"p", "q", "r", "s", "t", "u"}).Draw(t, "name"),
				Tenant: rapid.SampledFrom([]string{"/", "v"}).Draw(t, "tenant"), Pattern: rapid.SampledFrom(patterns).Draw(t, "pattern"),
				ApplyTo: ApplyTo(rapid.IntRange(0, 3).Draw(t, "applyTo")), Priority: rapid.IntRange(-2, 2).Draw(t, "priority"),
				Definition: map[string]Value{"max-length": Int(1)}}
			if seen[p.Tenant+"/"+p.Name] {
				continue
			}
			seen[p.Tenant+"/"+p.Name] = true
			ps = append(ps, p)
		}
		s, err := NewPolicySet(ps)
		if err != nil {
			t.Fatal(err)
		}
		for range 20 {
			tenant := rapid.SampledFrom([]string{"/", "v", "w"}).Draw(t, "queryTenant")
			kind := ResourceKind(rapid.IntRange(0, 2).Draw(t, "kind"))
			name := rapid.StringMatching(`[abcxy]{0,4}`).Draw(t, "entity")
			var matching []Policy
			for _, p := range ps {
				if p.Tenant != tenant {
					continue
				}
				var covers bool
				switch p.ApplyTo {
				case ApplyAll:
					covers = true
				case ApplyQueues:
					covers = kind == ResourceQueue || kind == ResourceStream
				case ApplyStreams:
					covers = kind == ResourceStream
				case ApplyExchanges:
					covers = kind == ResourceExchange
				}
				if covers && naiveMatch(p.Pattern, name) {
					matching = append(matching, p)
				}
			}
			got, ok := s.Match(tenant, kind, name)
			if len(matching) == 0 {
				if ok {
					t.Fatalf("%s %s %q: got %q, want no policy", tenant, kind, name, got.Name)
				}
				continue
			}
			want := slices.MaxFunc(matching, func(a, b Policy) int {
				if c := cmp.Compare(a.Priority, b.Priority); c != 0 {
					return c
				}
				return cmp.Compare(b.Name, a.Name)
			})
			if !ok || got.Name != want.Name {
				t.Fatalf("%s %s %q: got %q, want %q", tenant, kind, name, got.Name, want.Name)
			}
		}
	})
}

// naiveMatch decides the few test patterns by hand, independently of the
// regexp package.
func naiveMatch(pattern, name string) bool {
	switch pattern {
	case "", ".*":
		return true
	case "^a":
		return strings.HasPrefix(name, "a")
	case "b$":
		return strings.HasSuffix(name, "b")
	case "^a.c$":
		return len(name) == 3 && name[0] == 'a' && name[2] == 'c'
	case "c":
		return strings.Contains(name, "c")
	case "^$":
		return name == ""
	case "x|y":
		return strings.ContainsAny(name, "xy")
	}
	panic(pattern)
}

func FuzzParseMaxAge(f *testing.F) {
	for _, s := range []string{"7D", "1Y", "0s", "99999999999999999m", "", "h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ms, err := ParseMaxAge(s)
		if err != nil {
			return
		}
		if ms <= 0 || !strings.ContainsAny(s[len(s)-1:], "YMDhms") {
			t.Fatalf("ParseMaxAge(%q) = %d", s, ms)
		}
	})
}

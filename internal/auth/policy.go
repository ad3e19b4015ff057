package auth

import (
	"cmp"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"

	"github.com/ferry-mq/ferry/internal/base"
)

// ApplyTo says which entities a policy applies to, as RabbitMQ's apply-to.
// Streams are queues in RabbitMQ, so "queues" covers them too.
type ApplyTo uint8

const (
	ApplyAll       ApplyTo = iota // queues, streams and exchanges
	ApplyQueues                   // queues and streams
	ApplyStreams                  // streams only
	ApplyExchanges                // exchanges only
)

var applyToNames = [...]string{"all", "queues", "streams", "exchanges"}

func (a ApplyTo) String() string {
	if int(a) < len(applyToNames) {
		return applyToNames[a]
	}
	return "apply-to?"
}

// ParseApplyTo reads RabbitMQ's apply-to names.
func ParseApplyTo(s string) (ApplyTo, error) {
	for i, n := range applyToNames {
		if n == s {
			return ApplyTo(i), nil
		}
	}
	return 0, base.Errorf(base.CodeInvalidArgument, "auth: apply-to %q, want all, queues, streams or exchanges", s)
}

func (a ApplyTo) covers(kind ResourceKind) bool {
	switch a {
	case ApplyAll:
		return true
	case ApplyQueues:
		return kind == ResourceQueue || kind == ResourceStream
	case ApplyStreams:
		return kind == ResourceStream
	case ApplyExchanges:
		return kind == ResourceExchange
	}
	return false
}

// Value is a policy or argument value: an integer or a string.
type Value struct {
	isInt bool
	i     int64
	s     string
}

// Int returns an integer Value; Str a string Value.
func Int(v int64) Value  { return Value{isInt: true, i: v} }
func Str(s string) Value { return Value{s: s} }

// AsInt returns the integer and true for an integer Value.
func (v Value) AsInt() (int64, bool) { return v.i, v.isInt }

// AsString returns the string and true for a string Value.
func (v Value) AsString() (string, bool) { return v.s, !v.isInt }

func (v Value) String() string {
	if v.isInt {
		return strconv.FormatInt(v.i, 10)
	}
	return strconv.Quote(v.s)
}

// merge says who wins when a policy and the entity's own argument both set
// a key.
type merge uint8

const (
	mergeLower    merge = iota // a limit: the lower of the two, as RabbitMQ's res_min
	mergeArgument              // the argument, as RabbitMQ's res_arg
)

type keyRule struct {
	isInt  bool
	minInt int64
	merge  merge
	valid  func(string) error // for strings; nil accepts any
}

// policyKeys are the definition keys Ferry supports, with RabbitMQ's merge
// rule for each (the policy key is the argument's name without "x-"):
//
//	message-ttl, expires, max-length, max-length-bytes, delivery-limit,
//	stream-max-segment-size-bytes: integers; the lower wins.
//	max-age (streams): "<n><unit>" with unit Y, M, D, h, m or s; the
//	shorter wins.
//	overflow (drop-head, reject-publish, reject-publish-dlx),
//	dead-letter-exchange, dead-letter-routing-key, alternate-exchange:
//	strings; the argument wins.
var policyKeys = map[string]keyRule{
	"message-ttl":                   {isInt: true, minInt: 0, merge: mergeLower},
	"expires":                       {isInt: true, minInt: 1, merge: mergeLower},
	"max-length":                    {isInt: true, minInt: 0, merge: mergeLower},
	"max-length-bytes":              {isInt: true, minInt: 0, merge: mergeLower},
	"delivery-limit":                {isInt: true, minInt: 0, merge: mergeLower},
	"stream-max-segment-size-bytes": {isInt: true, minInt: 1, merge: mergeLower},
	"max-age":                       {merge: mergeLower, valid: func(s string) error { _, err := ParseMaxAge(s); return err }},
	"overflow":                      {merge: mergeArgument, valid: oneOf("drop-head", "reject-publish", "reject-publish-dlx")},
	"dead-letter-exchange":          {merge: mergeArgument},
	"dead-letter-routing-key":       {merge: mergeArgument},
	"alternate-exchange":            {merge: mergeArgument},
}

func oneOf(allowed ...string) func(string) error {
	return func(s string) error {
		if slices.Contains(allowed, s) {
			return nil
		}
		return fmt.Errorf("%q is not one of %v", s, allowed)
	}
}

func (r keyRule) check(key string, v Value) error {
	if r.isInt != v.isInt {
		return fmt.Errorf("%s: wrong type %s", key, v)
	}
	if r.isInt && v.i < r.minInt {
		return fmt.Errorf("%s: %d is below %d", key, v.i, r.minInt)
	}
	if !r.isInt && len(v.s) > base.AuthIdentityBytesMax {
		return fmt.Errorf("%s: value over %d bytes", key, base.AuthIdentityBytesMax)
	}
	if !r.isInt && r.valid != nil {
		if err := r.valid(v.s); err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
	}
	return nil
}

// maxAgeUnitsMs are RabbitMQ's max-age units (a month is 30 days, a year
// 365).
var maxAgeUnitsMs = map[byte]int64{'s': 1000, 'm': 60_000, 'h': 3_600_000, 'D': 86_400_000,
	'M': 30 * 86_400_000, 'Y': 365 * 86_400_000}

// ParseMaxAge reads a stream's max-age as RabbitMQ writes it: a positive
// integer and one unit (Y, M, D, h, m, s), e.g. "7D". It returns
// milliseconds; an invalid or overflowing value is base.CodeInvalidArgument.
func ParseMaxAge(s string) (int64, error) {
	bad := func() (int64, error) {
		return 0, base.Errorf(base.CodeInvalidArgument, "auth: max-age %.32q: want a positive number and one of Y M D h m s", s)
	}
	if len(s) < 2 || len(s) > 24 {
		return bad()
	}
	unit, ok := maxAgeUnitsMs[s[len(s)-1]]
	if !ok {
		return bad()
	}
	digits := s[:len(s)-1]
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return bad()
		}
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || n <= 0 || n > math.MaxInt64/unit {
		return bad()
	}
	return n * unit, nil
}

// Policy is a RabbitMQ policy: within Tenant, entities of the ApplyTo kinds
// whose names match Pattern (a regular expression, unanchored like
// RabbitMQ's) get Definition, unless a policy of higher Priority matches
// too.
type Policy struct {
	Name       string
	Tenant     string
	Pattern    string
	ApplyTo    ApplyTo
	Priority   int
	Definition map[string]Value
}

// PolicySet is a compiled, read-only set of policies; safe for concurrent
// use. Build a new one when policies change.
type PolicySet struct {
	byTenant map[string][]*compiledPolicy // each sorted: priority descending, then name
}

type compiledPolicy struct {
	Policy
	re *regexp.Regexp
}

// NewPolicySet validates and compiles policies: names non-empty and unique
// within their tenant, at most base.AuthPoliciesMax per tenant, patterns
// that compile, a non-empty definition of supported keys with valid values.
// Errors are base.CodeInvalidArgument.
func NewPolicySet(policies []Policy) (*PolicySet, error) {
	s := &PolicySet{byTenant: map[string][]*compiledPolicy{}}
	for _, p := range policies {
		if err := checkPolicy(p); err != nil {
			return nil, err
		}
		list := s.byTenant[p.Tenant]
		if slices.ContainsFunc(list, func(c *compiledPolicy) bool { return c.Name == p.Name }) {
			return nil, base.Errorf(base.CodeInvalidArgument, "auth: policy %q defined twice in vhost %q", p.Name, p.Tenant)
		}
		if len(list) >= base.AuthPoliciesMax {
			return nil, base.Errorf(base.CodeInvalidArgument, "auth: vhost %q has more than %d policies", p.Tenant, base.AuthPoliciesMax)
		}
		re, err := regexp.Compile(p.Pattern)
		if err != nil {
			return nil, base.Errorf(base.CodeInvalidArgument, "auth: policy %q: pattern: %w", p.Name, err)
		}
		p.Definition = cloneDefinition(p.Definition)
		s.byTenant[p.Tenant] = append(list, &compiledPolicy{Policy: p, re: re})
	}
	for _, list := range s.byTenant {
		// Highest priority first; equal priorities by name, as RabbitMQ
		// lists policies from a table ordered by name and sorts stably.
		slices.SortFunc(list, func(a, b *compiledPolicy) int {
			if c := cmp.Compare(b.Priority, a.Priority); c != 0 {
				return c
			}
			return cmp.Compare(a.Name, b.Name)
		})
	}
	return s, nil
}

func checkPolicy(p Policy) error {
	bad := func(format string, args ...any) error {
		return base.Errorf(base.CodeInvalidArgument, "auth: policy %q: "+format, append([]any{p.Name}, args...)...)
	}
	if p.Name == "" || len(p.Name) > base.AuthIdentityBytesMax {
		return bad("name empty or too long")
	}
	if len(p.Pattern) > base.AuthPatternBytesMax {
		return bad("pattern over %d bytes", base.AuthPatternBytesMax)
	}
	if p.ApplyTo > ApplyExchanges {
		return bad("bad apply-to %d", p.ApplyTo)
	}
	if len(p.Definition) == 0 {
		return bad("empty definition")
	}
	for k, v := range p.Definition {
		rule, ok := policyKeys[k]
		if !ok {
			return bad("%q is not a recognised policy setting", k)
		}
		if err := rule.check(k, v); err != nil {
			return bad("%w", err)
		}
	}
	return nil
}

func cloneDefinition(d map[string]Value) map[string]Value {
	out := make(map[string]Value, len(d))
	for k, v := range d {
		out[k] = v
	}
	return out
}

// Match returns the policy that applies to the entity of kind named name
// in tenant: the highest priority among those whose apply-to covers kind
// and whose pattern matches name, ties going to the lowest name.
func (s *PolicySet) Match(tenant string, kind ResourceKind, name string) (Policy, bool) {
	for _, p := range s.byTenant[tenant] {
		if p.ApplyTo.covers(kind) && p.re.MatchString(name) {
			return Policy{Name: p.Name, Tenant: p.Tenant, Pattern: p.Pattern, ApplyTo: p.ApplyTo,
				Priority: p.Priority, Definition: cloneDefinition(p.Definition)}, true
		}
	}
	return Policy{}, false
}

// Effective is what an entity runs with: the matching policy's name ("" if
// none) and its definition merged with the entity's own arguments.
type Effective struct {
	Policy string
	Values map[string]Value
}

// Effective merges the matching policy with args, the entity's own
// arguments keyed by policy key (the AMQP x-argument name without "x-").
// Where both set a key, the rule of policyKeys decides: limits take the
// lower value, other settings the argument's. An argument of a key the
// policy does not set, or of the wrong type for its key, is kept as it is
// (validating arguments is the declaring front end's job). The map is the
// caller's.
func (s *PolicySet) Effective(tenant string, kind ResourceKind, name string, args map[string]Value) Effective {
	out := Effective{Values: cloneDefinition(args)}
	p, ok := s.Match(tenant, kind, name)
	if !ok {
		return out
	}
	out.Policy = p.Name
	for k, pv := range p.Definition {
		av, has := args[k]
		if !has {
			out.Values[k] = pv
			continue
		}
		if policyKeys[k].merge == mergeLower && lower(k, pv, av) {
			out.Values[k] = pv
		}
	}
	return out
}

// lower reports whether the policy value pv is below the argument av for
// key k; an argument that cannot be compared wins.
func lower(k string, pv, av Value) bool {
	if k == "max-age" {
		pm, err1 := ParseMaxAge(pv.s)
		am, err2 := ParseMaxAge(av.s)
		return err1 == nil && err2 == nil && !av.isInt && pm < am
	}
	return av.isInt && pv.i < av.i
}

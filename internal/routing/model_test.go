package routing

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"pgregory.net/rapid"

	"github.com/ferry-mq/ferry/internal/base"
)

// The model is the obviously correct (and slow) routing table the property
// test compares Table against: plain maps and one list of bindings,
// matching by recursion over split words, routing by a breadth-first
// search that scans every binding.

type modelExchange struct {
	Exchange       // Args canonical
	ae       Value // the alternate-exchange argument, if hasAE
	hasAE    bool
}

type modelBinding struct {
	src    string
	dest   Destination
	key    string
	syntax Syntax
	args   []Field // canonical
}

func (b modelBinding) String() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "%q -> %s %q key %q %s ", b.src, b.dest.Kind, b.dest.Name, b.key, b.syntax)
	formatArgs(&sb, b.args)
	return sb.String()
}

type model struct {
	exchanges map[string]*modelExchange
	dests     map[string]DestKind
	bindings  []modelBinding
}

func newModel() *model {
	m := &model{exchanges: map[string]*modelExchange{}, dests: map[string]DestKind{}}
	for _, e := range builtinExchanges {
		m.exchanges[e.Name] = &modelExchange{Exchange: e}
	}
	return m
}

// modelCanonical sorts args by key keeping each key's first occurrence.
func modelCanonical(args []Field) []Field {
	var out []Field
	seen := map[string]bool{}
	for _, f := range args {
		if !seen[f.Key] {
			seen[f.Key] = true
			out = append(out, f)
		}
	}
	slices.SortFunc(out, func(a, b Field) int { return strings.Compare(a.Key, b.Key) })
	return out
}

func (m *model) declare(e Exchange) (bool, base.Code) {
	if e.Name == "" {
		return false, base.CodeAccessRefused
	}
	e.Args = modelCanonical(e.Args)
	var ae Value
	hasAE := false
	for _, f := range e.Args {
		if f.Key == "alternate-exchange" {
			ae, hasAE = f.Value, true
		}
	}
	if cur, ok := m.exchanges[e.Name]; ok {
		if cur.Type != e.Type || cur.Durable != e.Durable || cur.AutoDelete != e.AutoDelete ||
			cur.Internal != e.Internal || cur.hasAE != hasAE || cur.ae != ae {
			return false, base.CodePreconditionFailed
		}
		return false, 0
	}
	if strings.HasPrefix(e.Name, "amq.") {
		return false, base.CodeAccessRefused
	}
	if hasAE && ae.Kind() != KindString {
		return false, base.CodePreconditionFailed
	}
	m.exchanges[e.Name] = &modelExchange{Exchange: e, ae: ae, hasAE: hasAE}
	return true, 0
}

// removeWhere removes the bindings keep rejects and finishes the cascade.
func (m *model) removeWhere(drop func(modelBinding) bool, c *Change) {
	candidates := map[string]bool{}
	for {
		kept := m.bindings[:0:0]
		for _, b := range m.bindings {
			if drop(b) {
				c.BindingsRemoved++
				candidates[b.src] = true
			} else {
				kept = append(kept, b)
			}
		}
		m.bindings = kept
		var dead []string
		for name := range candidates {
			x, ok := m.exchanges[name]
			if ok && x.AutoDelete && !slices.ContainsFunc(m.bindings, func(b modelBinding) bool { return b.src == name }) {
				dead = append(dead, name)
			}
		}
		if len(dead) == 0 {
			slices.Sort(c.AutoDeleted)
			return
		}
		for _, name := range dead {
			delete(m.exchanges, name)
			delete(candidates, name)
			c.AutoDeleted = append(c.AutoDeleted, name)
		}
		drop = func(b modelBinding) bool {
			return slices.Contains(dead, b.src) || (b.dest.Kind == ToExchange && slices.Contains(dead, b.dest.Name))
		}
	}
}

func (m *model) deleteExchange(name string, ifUnused bool) (Change, base.Code) {
	if name == "" || strings.HasPrefix(name, "amq.") {
		return Change{}, base.CodeAccessRefused
	}
	if _, ok := m.exchanges[name]; !ok {
		return Change{}, 0
	}
	if ifUnused && slices.ContainsFunc(m.bindings, func(b modelBinding) bool { return b.src == name }) {
		return Change{}, base.CodePreconditionFailed
	}
	delete(m.exchanges, name)
	c := Change{Removed: true}
	m.removeWhere(func(b modelBinding) bool {
		return b.src == name || (b.dest.Kind == ToExchange && b.dest.Name == name)
	}, &c)
	return c, 0
}

func (m *model) addDest(d Destination) (bool, base.Code) {
	if cur, ok := m.dests[d.Name]; ok {
		if cur != d.Kind {
			return false, base.CodePreconditionFailed
		}
		return false, 0
	}
	m.dests[d.Name] = d.Kind
	return true, 0
}

func (m *model) removeDest(d Destination) Change {
	if m.dests[d.Name] != d.Kind {
		return Change{}
	}
	delete(m.dests, d.Name)
	c := Change{Removed: true}
	m.removeWhere(func(b modelBinding) bool { return b.dest == d }, &c)
	return c
}

// check returns the code Bind and Unbind give b (full for Bind, which
// also validates patterns and x-match).
func (m *model) check(b modelBinding, full bool) base.Code {
	if b.src == "" || (b.dest.Kind == ToExchange && b.dest.Name == "") {
		return base.CodeAccessRefused
	}
	src, ok := m.exchanges[b.src]
	if !ok {
		return base.CodeNotFound
	}
	if b.dest.Kind == ToExchange {
		if _, ok := m.exchanges[b.dest.Name]; !ok {
			return base.CodeNotFound
		}
	} else if m.dests[b.dest.Name] != b.dest.Kind {
		return base.CodeNotFound
	}
	if b.syntax == SyntaxMQTT && src.Type != Topic {
		return base.CodeInvalidArgument
	}
	if full && src.Type == Topic && b.syntax == SyntaxMQTT && !modelValidFilter(b.key) {
		return base.CodeInvalidArgument
	}
	if full && src.Type == Headers {
		if _, ok := modelXMatch(b.args); !ok {
			return base.CodeInvalidArgument
		}
	}
	return 0
}

func (m *model) bind(b modelBinding) (bool, base.Code) {
	b.args = modelCanonical(b.args)
	if code := m.check(b, true); code != 0 {
		return false, code
	}
	if slices.ContainsFunc(m.bindings, func(o modelBinding) bool { return o.String() == b.String() }) {
		return false, 0
	}
	m.bindings = append(m.bindings, b)
	return true, 0
}

func (m *model) unbind(b modelBinding) (Change, base.Code) {
	b.args = modelCanonical(b.args)
	if code := m.check(b, false); code == base.CodeNotFound {
		return Change{}, 0 // RabbitMQ: unbinding from or to a missing resource is a no-op
	} else if code != 0 {
		return Change{}, code
	}
	if !slices.ContainsFunc(m.bindings, func(o modelBinding) bool { return o.String() == b.String() }) {
		return Change{}, 0
	}
	c := Change{Removed: true}
	m.removeWhere(func(o modelBinding) bool { return o.String() == b.String() }, &c)
	return c, 0
}

type modelRoute struct {
	dests []Destination
	via   bool
	code  base.Code
}

func (m *model) route(ex, key string, headers []Field) modelRoute {
	x, ok := m.exchanges[ex]
	if !ok {
		return modelRoute{code: base.CodeNotFound}
	}
	if x.Internal {
		return modelRoute{code: base.CodeAccessRefused}
	}
	var r modelRoute
	queue, seen := []string{ex}, map[string]bool{ex: true}
	for len(queue) > 0 {
		name := queue[0]
		queue = queue[1:]
		matched := 0
		if name == "" && ex == "" { // only a publish to it: not as an alternate
			if kind, ok := m.dests[key]; ok {
				r.dests = append(r.dests, Destination{Kind: kind, Name: key})
				matched++
			}
		}
		for _, b := range m.bindings {
			if b.src != name || !modelMatches(m.exchanges[name].Type, b, key, headers) {
				continue
			}
			matched++
			if b.dest.Kind != ToExchange {
				r.dests = append(r.dests, b.dest)
			} else if !seen[b.dest.Name] {
				seen[b.dest.Name] = true
				queue = append(queue, b.dest.Name)
			}
		}
		cur := m.exchanges[name]
		if matched == 0 && cur.hasAE && cur.ae.Kind() == KindString {
			if _, ok := m.exchanges[cur.ae.Text()]; ok && !seen[cur.ae.Text()] {
				seen[cur.ae.Text()] = true
				queue = append(queue, cur.ae.Text())
				r.via = true
			}
		}
	}
	slices.SortFunc(r.dests, compareDestinations)
	r.dests = slices.Compact(r.dests)
	return r
}

func modelMatches(typ ExchangeType, b modelBinding, key string, headers []Field) bool {
	switch typ {
	case Direct:
		return b.key == key
	case Fanout:
		return true
	case Topic:
		if b.syntax == SyntaxMQTT {
			return modelMQTTMatch(b.key, key)
		}
		return modelAMQPMatch(modelWords(b.key), modelWords(key))
	}
	return modelHeadersMatch(b.args, headers)
}

func modelWords(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ".")
}

// modelAMQPMatch is the textbook recurrence (p[i:] matches w[j:]),
// tabulated so that fuzzed patterns full of '#' stay polynomial.
func modelAMQPMatch(p, w []string) bool {
	m := make([][]bool, len(p)+1)
	for i := range m {
		m[i] = make([]bool, len(w)+1)
	}
	m[len(p)][len(w)] = true
	for i := len(p) - 1; i >= 0; i-- {
		for j := len(w); j >= 0; j-- {
			switch p[i] {
			case "#":
				m[i][j] = m[i+1][j] || (j < len(w) && m[i][j+1])
			case "*":
				m[i][j] = j < len(w) && m[i+1][j+1]
			default:
				m[i][j] = j < len(w) && p[i] == w[j] && m[i+1][j+1]
			}
		}
	}
	return m[0][0]
}

func modelValidFilter(f string) bool {
	if f == "" || !utf8.ValidString(f) || strings.Contains(f, "\x00") {
		return false
	}
	levels := strings.Split(f, "/")
	for i, l := range levels {
		if strings.Contains(l, "#") && (l != "#" || i != len(levels)-1) {
			return false
		}
		if strings.Contains(l, "+") && l != "+" {
			return false
		}
	}
	return true
}

func modelMQTTMatch(filter, topic string) bool {
	f, t := strings.Split(filter, "/"), strings.Split(topic, "/")
	if strings.HasPrefix(topic, "$") && (f[0] == "+" || f[0] == "#") {
		return false
	}
	for i, level := range f {
		if level == "#" {
			return true
		}
		if i >= len(t) || (level != "+" && level != t[i]) {
			return false
		}
	}
	return len(f) == len(t)
}

// modelXMatch returns the mode of x-match ("all" when absent).
func modelXMatch(args []Field) (string, bool) {
	for _, f := range args {
		if f.Key == "x-match" {
			ok := f.Value.Kind() == KindString && slices.Contains([]string{"all", "any", "all-with-x", "any-with-x"}, f.Value.Text())
			return f.Value.Text(), ok
		}
	}
	return "all", true
}

func modelHeadersMatch(args, headers []Field) bool {
	mode, _ := modelXMatch(args)
	any, withX := strings.HasPrefix(mode, "any"), strings.HasSuffix(mode, "-with-x")
	considered, hits := 0, 0
	for _, a := range args {
		if a.Key == "x-match" || (!withX && strings.HasPrefix(a.Key, "x-")) {
			continue
		}
		considered++
		found, hit := false, false
		for i := len(headers) - 1; i >= 0 && !found; i-- {
			if headers[i].Key == a.Key {
				found = true
				hit = modelValueMatch(a.Value, headers[i].Value)
			}
		}
		if hit {
			hits++
		}
	}
	if any {
		return hits > 0
	}
	return hits == considered
}

func modelValueMatch(p, h Value) bool {
	isText := func(v Value) bool { return v.Kind() == KindString || v.Kind() == KindBytes }
	switch {
	case p.Kind() == KindVoid:
		return true
	case isText(p):
		return isText(h) && p.Text() == h.Text()
	case p.Kind() == KindFloat:
		return h.Kind() == KindFloat && p.Float() == h.Float()
	case p.Kind() == KindInt:
		return h.Kind() == KindInt && p.Int() == h.Int()
	}
	return h.Kind() == KindBool && p.Bool() == h.Bool()
}

// Generators over small alphabets, so that operations collide often.

var (
	genExchangeName = rapid.SampledFrom([]string{"x0", "x1", "x2", "x3", "x4", "amq.direct", "amq.topic", "amq.headers", "", "amq.new"})
	genDestName     = rapid.SampledFrom([]string{"q0", "q1", "q2"})
	genValue        = rapid.SampledFrom([]Value{IntValue(1), IntValue(2), FloatValue(1), FloatValue(1.5), StringValue("1"),
		BytesValue([]byte("1")), StringValue("x"), BoolValue(true), BoolValue(false), VoidValue()})
	genHeaderKey = rapid.SampledFrom([]string{"a", "b", "x-a"})
	genXMatch    = rapid.SampledFrom([]Value{StringValue("all"), StringValue("any"), StringValue("all-with-x"),
		StringValue("any-with-x"), StringValue("bogus"), IntValue(1)})
)

func genKey(t *rapid.T, label string) string {
	words := rapid.SliceOfN(rapid.SampledFrom([]string{"a", "b", "", "*", "#", "+", "$a", "a#", "b+"}), 0, 4).Draw(t, label+"-words")
	var sb strings.Builder
	for i, w := range words {
		if i > 0 {
			sb.WriteByte(rapid.SampledFrom([]byte{'.', '/'}).Draw(t, label+"-sep"))
		}
		sb.WriteString(w)
	}
	return sb.String()
}

func genFields(t *rapid.T, label string, max int) []Field {
	n := rapid.IntRange(0, max).Draw(t, label+"-n")
	out := make([]Field, n)
	for i := range out {
		out[i] = Field{Key: genHeaderKey.Draw(t, label+"-key"), Value: genValue.Draw(t, label+"-value")}
	}
	return out
}

func genDest(t *rapid.T) Destination {
	kind := rapid.SampledFrom([]DestKind{Queue, Stream, ToExchange}).Draw(t, "dest-kind")
	if kind == ToExchange {
		return Destination{Kind: kind, Name: genExchangeName.Draw(t, "dest-exchange")}
	}
	return Destination{Kind: kind, Name: genDestName.Draw(t, "dest-name")}
}

package routing

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"pgregory.net/rapid"

	"github.com/ferry-mq/ferry/internal/base"
)

// TestTableMatchesModel runs random declares, deletes, binds, unbinds,
// destination changes, routes and snapshot round trips on a Table and on
// the naive model, and requires the same results and the same state after
// every step. More cases: -rapid.checks=10000 (and -rapid.steps).
func TestTableMatchesModel(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		p := &propertyRun{tbl: NewTable("/"), m: newModel()}
		// Repeat picks actions uniformly, so the frequent ones appear
		// more than once.
		rt.Repeat(map[string]func(*rapid.T){
			"declare":  p.declare,
			"declare2": p.declare,
			"delete":   p.delete,
			"add":      p.add,
			"add2":     p.add,
			"remove":   p.remove,
			"bind":     p.bind,
			"bind2":    p.bind,
			"bind3":    p.bind,
			"unbind":   p.unbind,
			"route":    p.route,
			"route2":   p.route,
			"route3":   p.route,
			"snapshot": p.snapshot,
			"":         p.check,
		})
	})
}

type propertyRun struct {
	tbl *Table
	m   *model
	res Result
}

func wantCode(t *rapid.T, what string, err error, want base.Code) {
	t.Helper()
	if got := base.CodeOf(err); got != want {
		t.Fatalf("%s: got code %v (%v), want %v", what, got, err, want)
	}
}

func (p *propertyRun) declare(t *rapid.T) {
	e := Exchange{
		Name:       genExchangeName.Draw(t, "name"),
		Type:       rapid.SampledFrom([]ExchangeType{Direct, Fanout, Topic, Headers}).Draw(t, "type"),
		Durable:    rapid.Bool().Draw(t, "durable"),
		AutoDelete: rapid.IntRange(0, 2).Draw(t, "auto-delete") == 0,
		Internal:   rapid.IntRange(0, 4).Draw(t, "internal") == 0,
	}
	if ae := rapid.SampledFrom([]string{"", "", "x0", "x1", "x2", "nowhere", "bad"}).Draw(t, "ae"); ae == "bad" {
		e.Args = append(e.Args, Field{Key: "alternate-exchange", Value: IntValue(3)})
	} else if ae != "" {
		e.Args = append(e.Args, Field{Key: "alternate-exchange", Value: StringValue(ae)})
	}
	e.Args = append(e.Args, genFields(t, "xargs", 1)...)
	want, wantC := p.m.declare(e)
	got, err := p.tbl.DeclareExchange(e)
	wantCode(t, fmt.Sprintf("declare %+v", e), err, wantC)
	if got != want {
		t.Fatalf("declare %q: got created=%v, want %v", e.Name, got, want)
	}
}

func (p *propertyRun) delete(t *rapid.T) {
	name, ifUnused := p.pickExchange(t, "name"), rapid.Bool().Draw(t, "if-unused")
	want, wantC := p.m.deleteExchange(name, ifUnused)
	got, err := p.tbl.DeleteExchange(name, ifUnused)
	wantCode(t, "delete "+name, err, wantC)
	compareChange(t, "delete "+name, got, want)
}

func compareChange(t *rapid.T, what string, got, want Change) {
	t.Helper()
	if got.Removed != want.Removed || got.BindingsRemoved != want.BindingsRemoved || !slices.Equal(got.AutoDeleted, want.AutoDeleted) {
		t.Fatalf("%s: got %+v, want %+v", what, got, want)
	}
}

func (p *propertyRun) add(t *rapid.T) {
	d := Destination{Kind: rapid.SampledFrom([]DestKind{Queue, Stream}).Draw(t, "kind"), Name: genDestName.Draw(t, "name")}
	want, wantC := p.m.addDest(d)
	got, err := p.tbl.AddDestination(d)
	wantCode(t, fmt.Sprint("add ", d), err, wantC)
	if got != want {
		t.Fatalf("add %v: got added=%v, want %v", d, got, want)
	}
}

func (p *propertyRun) remove(t *rapid.T) {
	d := p.pickDest(t)
	if d.Kind == ToExchange {
		d.Kind = Queue
	}
	want := p.m.removeDest(d)
	got, err := p.tbl.RemoveDestination(d)
	wantCode(t, fmt.Sprint("remove ", d), err, 0)
	compareChange(t, fmt.Sprint("remove ", d), got, want)
}

// pickExchange draws an existing exchange most of the time, any name from
// the alphabet otherwise.
func (p *propertyRun) pickExchange(t *rapid.T, label string) string {
	names := slices.Sorted(maps.Keys(p.m.exchanges))
	if rapid.IntRange(0, 4).Draw(t, label+"-existing") > 0 {
		return rapid.SampledFrom(names).Draw(t, label)
	}
	return genExchangeName.Draw(t, label)
}

func (p *propertyRun) pickDest(t *rapid.T) Destination {
	if len(p.m.dests) > 0 && rapid.IntRange(0, 3).Draw(t, "dest-existing") > 0 {
		name := rapid.SampledFrom(slices.Sorted(maps.Keys(p.m.dests))).Draw(t, "dest-name")
		return Destination{Kind: p.m.dests[name], Name: name}
	}
	if rapid.IntRange(0, 3).Draw(t, "dest-exchange") == 0 {
		return Destination{Kind: ToExchange, Name: p.pickExchange(t, "dest-exchange-name")}
	}
	return genDest(t)
}

// pickRoute draws a publish: most of the time to the source of an
// existing binding, with a key that pattern could match (wildcards
// replaced by words) and that binding's arguments among the headers.
func (p *propertyRun) pickRoute(t *rapid.T) (string, string, []Field) {
	if len(p.m.bindings) == 0 || rapid.IntRange(0, 2).Draw(t, "route-from-binding") == 0 {
		return p.pickExchange(t, "exchange"), genKey(t, "key"), genFields(t, "headers", 3)
	}
	b := rapid.SampledFrom(p.m.bindings).Draw(t, "route-binding")
	var headers []Field
	for _, f := range b.args {
		if f.Key != "x-match" && rapid.IntRange(0, 3).Draw(t, "keep-header") > 0 {
			headers = append(headers, f)
		}
	}
	headers = append(headers, genFields(t, "headers", 2)...)
	return b.src, instantiate(t, b.key, b.syntax), headers
}

// instantiate replaces the wildcards of a pattern by words: one for '*' or
// '+', zero to two for '#'.
func instantiate(t *rapid.T, pattern string, syntax Syntax) string {
	sep, one := ".", "*"
	if syntax == SyntaxMQTT {
		sep, one = "/", "+"
	}
	word := rapid.SampledFrom([]string{"a", "b", "", "$a"})
	var out []string
	for _, w := range strings.Split(pattern, sep) {
		switch w {
		case one:
			out = append(out, word.Draw(t, "one"))
		case "#":
			for n := rapid.IntRange(0, 2).Draw(t, "many"); n > 0; n-- {
				out = append(out, word.Draw(t, "many-word"))
			}
		default:
			out = append(out, w)
		}
	}
	return strings.Join(out, sep)
}

func (p *propertyRun) genBinding(t *rapid.T) modelBinding {
	b := modelBinding{src: p.pickExchange(t, "src"), dest: p.pickDest(t), key: genKey(t, "key")}
	if rapid.IntRange(0, 2).Draw(t, "mqtt") == 0 {
		b.syntax = SyntaxMQTT
	}
	if x, ok := p.m.exchanges[b.src]; ok && x.Type == Headers && rapid.Bool().Draw(t, "has-x-match") {
		b.args = append(b.args, Field{Key: "x-match", Value: genXMatch.Draw(t, "x-match")})
	}
	b.args = append(b.args, genFields(t, "args", 3)...)
	return b
}

func (b modelBinding) public() Binding {
	return Binding{Source: b.src, Destination: b.dest, Key: b.key, Syntax: b.syntax, Args: b.args}
}

func (p *propertyRun) bind(t *rapid.T) {
	b := p.genBinding(t)
	want, wantC := p.m.bind(b)
	got, err := p.tbl.Bind(b.public())
	wantCode(t, "bind "+b.String(), err, wantC)
	if got != want {
		t.Fatalf("bind %v: got added=%v, want %v", b, got, want)
	}
}

func (p *propertyRun) unbind(t *rapid.T) {
	var b modelBinding
	if len(p.m.bindings) > 0 && rapid.IntRange(0, 3).Draw(t, "existing") > 0 {
		b = rapid.SampledFrom(p.m.bindings).Draw(t, "binding")
	} else {
		b = p.genBinding(t)
	}
	want, wantC := p.m.unbind(b)
	got, err := p.tbl.Unbind(b.public())
	wantCode(t, "unbind "+b.String(), err, wantC)
	compareChange(t, "unbind "+b.String(), got, want)
}

func (p *propertyRun) route(t *rapid.T) {
	ex, key, headers := p.pickRoute(t)
	want := p.m.route(ex, key, headers)
	err := p.tbl.Route(&p.res, ex, key, headers)
	what := fmt.Sprintf("route %q key %q headers %v", ex, key, headers)
	wantCode(t, what, err, want.code)
	if !slices.Equal(p.res.Destinations, want.dests) && (len(want.dests) > 0 || len(p.res.Destinations) > 0) {
		t.Fatalf("%s: got %v, want %v", what, p.res.Destinations, want.dests)
	}
	if err == nil && (p.res.Unroutable != (len(want.dests) == 0) || p.res.ViaAlternate != want.via || p.res.DepthLimited) {
		t.Fatalf("%s: got unroutable=%v via=%v depth=%v, want unroutable=%v via=%v", what,
			p.res.Unroutable, p.res.ViaAlternate, p.res.DepthLimited, len(want.dests) == 0, want.via)
	}
}

func (p *propertyRun) snapshot(t *rapid.T) {
	data, err := p.tbl.MarshalBinary()
	if err != nil {
		t.Fatalf("MarshalBinary: %v", err)
	}
	restored := NewTable("elsewhere")
	if err := restored.UnmarshalBinary(data); err != nil {
		t.Fatalf("UnmarshalBinary of a fresh snapshot: %v", err)
	}
	again, _ := restored.MarshalBinary()
	if !bytes.Equal(again, data) || !restored.Equal(p.tbl) {
		t.Fatalf("restored table differs:\n%s\nwant:\n%s", restored.Dump(), p.tbl.Dump())
	}
	p.tbl = restored // the run continues on the restored table
}

// check compares the whole state with the model and runs the invariant
// checker.
func (p *propertyRun) check(t *rapid.T) {
	p.tbl.checkInvariants()
	var got, want []string
	for _, e := range p.tbl.Exchanges() {
		got = append(got, fmt.Sprintf("%q %s %v %v %v %v", e.Name, e.Type, e.Durable, e.AutoDelete, e.Internal, e.Args))
	}
	for _, e := range p.m.exchanges {
		want = append(want, fmt.Sprintf("%q %s %v %v %v %v", e.Name, e.Type, e.Durable, e.AutoDelete, e.Internal, e.Args))
	}
	for _, d := range p.tbl.Destinations() {
		got = append(got, fmt.Sprint(d))
	}
	for name, kind := range p.m.dests {
		want = append(want, fmt.Sprint(Destination{Kind: kind, Name: name}))
	}
	for _, b := range p.tbl.Bindings() {
		got = append(got, modelBinding{src: b.Source, dest: b.Destination, key: b.Key, syntax: b.Syntax, args: b.Args}.String())
	}
	for _, b := range p.m.bindings {
		want = append(want, b.String())
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("state differs from the model:\ngot  %q\nwant %q", got, want)
	}
}

package controller

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"

	"pgregory.net/rapid"

	"github.com/ferry-mq/ferry/internal/auth"
	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/routing"
)

// TestControllerMatchesModel runs random declare, delete, bind, unbind,
// policy, connection-closed and tenant commands on a controller, on a
// second replica fed the same encoded commands, and on the naive model.
// After every step the results and the state (through the queries) must
// match the model's, and both replicas must snapshot to the same bytes.
// The snapshot step restores into a fresh controller, which must snapshot
// to the same bytes and answer every query the same; the run continues
// on it. More cases: -rapid.checks=10000 (and -rapid.steps).
func TestControllerMatchesModel(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		p := &propertyRun{c: New(Options{}), replica: New(Options{}), m: newModel()}
		p.apply(rt, &Bootstrap{Nodes: []Node{{ID: 1, Addr: "n1:7946"}}})
		rt.Repeat(map[string]func(*rapid.T){
			"tenant":           p.tenant,
			"declareQueue":     p.declareQueue,
			"declareQueue2":    p.declareQueue,
			"declareQueue3":    p.declareQueue,
			"deleteQueue":      p.deleteQueue,
			"connectionClosed": p.connectionClosed,
			"declareStream":    p.declareStream,
			"deleteStream":     p.deleteStream,
			"declareExchange":  p.declareExchange,
			"declareExchange2": p.declareExchange,
			"deleteExchange":   p.deleteExchange,
			"bind":             p.bind,
			"bind2":            p.bind,
			"bind3":            p.bind,
			"unbind":           p.unbind,
			"policy":           p.policy,
			"snapshot":         p.snapshot,
			"":                 p.check,
		})
	})
}

type propertyRun struct {
	c, replica *Controller
	m          *model
	now        int64
}

var (
	genTenant   = rapid.SampledFrom([]string{"/", "/", "a", "b"})
	genName     = rapid.SampledFrom([]string{"q0", "q1", "q2", "s0", "s1"})
	genOwner    = rapid.SampledFrom([]string{"", "c1", "c2"})
	genExchange = rapid.SampledFrom([]string{"e0", "e1", "e2"})
	genKey      = rapid.SampledFrom([]string{"", "k1", "k2"})
)

// apply encodes cmd, decodes it, and applies it to both replicas, which
// must agree.
func (p *propertyRun) apply(t *rapid.T, cmd Command) Result {
	data, err := Encode(cmd)
	if err != nil {
		t.Fatalf("Encode(%T): %v", cmd, err)
	}
	decoded, err := Decode(data)
	if err != nil {
		t.Fatalf("Decode(Encode(%T)): %v", cmd, err)
	}
	r := p.c.Apply(decoded)
	again, _ := Decode(data)
	r2 := p.replica.Apply(again)
	if base.CodeOf(r.Err) != base.CodeOf(r2.Err) || fmt.Sprint(r.Err) != fmt.Sprint(r2.Err) {
		t.Fatalf("%T: replicas disagree: %v and %v", cmd, r.Err, r2.Err)
	}
	return r
}

func (p *propertyRun) next() int64 { p.now++; return p.now }

// compare checks a result against the model's prediction.
func compare(t *rapid.T, what string, got Result, want mResult) {
	t.Helper()
	if code := base.CodeOf(got.Err); code != want.code {
		t.Fatalf("%s: got code %v (%v), want %v", what, code, got.Err, want.code)
	}
	if got.Err != nil {
		return
	}
	if got.Created != want.created {
		t.Fatalf("%s: got created=%v, want %v", what, got.Created, want.created)
	}
	var removed []EntityRef
	for _, r := range got.Removed {
		removed = append(removed, r.EntityRef)
	}
	slices.SortFunc(want.removed, compareRefs)
	if !slices.Equal(removed, want.removed) {
		t.Fatalf("%s: removed %v, want %v", what, removed, want.removed)
	}
}

func (p *propertyRun) tenant(t *rapid.T) {
	name := rapid.SampledFrom([]string{"a", "b"}).Draw(t, "tenant")
	if rapid.Bool().Draw(t, "delete") {
		compare(t, "delete tenant "+name, p.apply(t, &DeleteTenant{Now: p.next(), Name: name}), p.m.deleteTenant(name))
		return
	}
	compare(t, "create tenant "+name, p.apply(t, &CreateTenant{Now: p.next(), Name: name}), p.m.createTenant(name))
}

func (p *propertyRun) declareQueue(t *rapid.T) {
	tn, name := genTenant.Draw(t, "tenant"), genName.Draw(t, "name")
	q := mQueue{durable: rapid.Bool().Draw(t, "durable"), autoDelete: rapid.IntRange(0, 3).Draw(t, "auto-delete") == 0,
		owner: genOwner.Draw(t, "owner"), quorum: rapid.IntRange(0, 3).Draw(t, "quorum") == 0,
		maxLen: rapid.SampledFrom([]int64{0, 5, 10}).Draw(t, "max-length")}
	cmd := &DeclareQueue{Now: p.next(), Tenant: tn, Name: name, Durable: q.durable, Exclusive: q.owner != "",
		Owner: q.owner, AutoDelete: q.autoDelete}
	if q.owner != "" {
		q.durable = false // exclusive queues are stored transient, as in RabbitMQ
	}
	if q.quorum {
		cmd.Args = append(cmd.Args, routing.Field{Key: "x-queue-type", Value: routing.StringValue("quorum")})
	}
	if q.maxLen != 0 {
		cmd.Args = append(cmd.Args, routing.Field{Key: "x-max-length", Value: routing.IntValue(q.maxLen)})
	}
	compare(t, fmt.Sprintf("declare queue %+v", cmd), p.apply(t, cmd), p.m.declareQueue(tn, name, q))
}

func (p *propertyRun) deleteQueue(t *rapid.T) {
	tn, name, owner := genTenant.Draw(t, "tenant"), genName.Draw(t, "name"), genOwner.Draw(t, "owner")
	compare(t, fmt.Sprintf("delete queue %s %s by %q", tn, name, owner),
		p.apply(t, &DeleteQueue{Now: p.next(), Tenant: tn, Name: name, Owner: owner}), p.m.deleteQueue(tn, name, owner))
}

func (p *propertyRun) connectionClosed(t *rapid.T) {
	owner := rapid.SampledFrom([]string{"c1", "c2"}).Draw(t, "owner")
	compare(t, "connection closed "+owner, p.apply(t, &ConnectionClosed{Now: p.next(), Owner: owner}), p.m.connectionClosed(owner))
}

func (p *propertyRun) declareStream(t *rapid.T) {
	tn, name, n := genTenant.Draw(t, "tenant"), genName.Draw(t, "name"), rapid.IntRange(1, 3).Draw(t, "partitions")
	compare(t, fmt.Sprintf("declare stream %s %s", tn, name),
		p.apply(t, &DeclareStream{Now: p.next(), Tenant: tn, Name: name, Partitions: n}), p.m.declareStream(tn, name, n))
}

func (p *propertyRun) deleteStream(t *rapid.T) {
	tn, name := genTenant.Draw(t, "tenant"), genName.Draw(t, "name")
	compare(t, fmt.Sprintf("delete stream %s %s", tn, name),
		p.apply(t, &DeleteStream{Now: p.next(), Tenant: tn, Name: name}), p.m.deleteStream(tn, name))
}

func (p *propertyRun) declareExchange(t *rapid.T) {
	tn, name := genTenant.Draw(t, "tenant"), genExchange.Draw(t, "name")
	x := mExchange{typ: rapid.SampledFrom([]routing.ExchangeType{routing.Direct, routing.Fanout}).Draw(t, "type"),
		autoDelete: rapid.Bool().Draw(t, "auto-delete")}
	compare(t, fmt.Sprintf("declare exchange %s %s", tn, name),
		p.apply(t, &DeclareExchange{Now: p.next(), Tenant: tn, Exchange: routing.Exchange{Name: name, Type: x.typ, AutoDelete: x.autoDelete}}),
		p.m.declareExchange(tn, name, x))
}

func (p *propertyRun) deleteExchange(t *rapid.T) {
	tn, name := genTenant.Draw(t, "tenant"), genExchange.Draw(t, "name")
	compare(t, fmt.Sprintf("delete exchange %s %s", tn, name),
		p.apply(t, &DeleteExchange{Now: p.next(), Tenant: tn, Name: name}), p.m.deleteExchange(tn, name))
}

func (p *propertyRun) genBinding(t *rapid.T) (mBinding, routing.Binding) {
	b := mBinding{src: genExchange.Draw(t, "src"), key: genKey.Draw(t, "key"),
		kind: rapid.SampledFrom([]routing.DestKind{routing.Queue, routing.Queue, routing.Stream, routing.ToExchange}).Draw(t, "kind")}
	if b.kind == routing.ToExchange {
		b.dest = genExchange.Draw(t, "dest")
	} else {
		b.dest = genName.Draw(t, "dest")
	}
	return b, routing.Binding{Source: b.src, Destination: routing.Destination{Kind: b.kind, Name: b.dest}, Key: b.key}
}

func (p *propertyRun) bind(t *rapid.T) {
	tn, owner := genTenant.Draw(t, "tenant"), genOwner.Draw(t, "owner")
	mb, b := p.genBinding(t)
	compare(t, fmt.Sprintf("bind %s %+v", tn, mb), p.apply(t, &Bind{Now: p.next(), Tenant: tn, Binding: b, Owner: owner}),
		p.m.bind(tn, mb, owner))
}

func (p *propertyRun) unbind(t *rapid.T) {
	tn, owner := genTenant.Draw(t, "tenant"), genOwner.Draw(t, "owner")
	mb, b := p.genBinding(t)
	compare(t, fmt.Sprintf("unbind %s %+v", tn, mb), p.apply(t, &Unbind{Now: p.next(), Tenant: tn, Binding: b, Owner: owner}),
		p.m.unbind(tn, mb, owner))
}

func (p *propertyRun) policy(t *rapid.T) {
	tn := genTenant.Draw(t, "tenant")
	var r Result
	var want mResult
	var changed []string
	if rapid.IntRange(0, 2).Draw(t, "delete") == 0 {
		r = p.apply(t, &DeletePolicy{Now: p.next(), Tenant: tn, Name: "p"})
		want, changed = p.m.deletePolicy(tn)
	} else {
		mp := mPolicy{pattern: rapid.SampledFrom([]string{"^q", "1$", "."}).Draw(t, "pattern"),
			maxLen: rapid.SampledFrom([]int64{3, 7, 12}).Draw(t, "max-length")}
		r = p.apply(t, &PutPolicy{Now: p.next(), Policy: auth.Policy{Tenant: tn, Name: "p", Pattern: mp.pattern,
			ApplyTo: auth.ApplyQueues, Definition: map[string]auth.Value{"max-length": auth.Int(mp.maxLen)}}})
		want, changed = p.m.putPolicy(tn, mp)
	}
	compare(t, "policy in "+tn, r, want)
	var got []string
	for _, rc := range r.Reconfigured {
		if rc.Kind != routing.Queue || rc.Tenant != tn || rc.Queue == nil {
			t.Fatalf("policy in %s reconfigured %v", tn, rc.EntityRef)
		}
		got = append(got, rc.Name)
	}
	if !slices.Equal(got, changed) {
		t.Fatalf("policy in %s: reconfigured %v, want %v", tn, got, changed)
	}
}

func (p *propertyRun) snapshot(t *rapid.T) {
	data := p.c.Snapshot()
	restored := New(Options{})
	if err := restored.Restore(data); err != nil {
		t.Fatalf("Restore of a fresh snapshot: %v", err)
	}
	if again := restored.Snapshot(); !bytes.Equal(again, data) {
		t.Fatalf("restored controller snapshots differently")
	}
	if got, want := restored.Dump(), p.c.Dump(); got != want {
		t.Fatalf("restored controller dumps differently:\n%s\nwant:\n%s", got, want)
	}
	sameAnswers(t, restored, p.c)
	p.c = restored
}

// sameAnswers compares every query the property test's vocabulary can
// ask of two controllers.
func sameAnswers(t *rapid.T, a, b *Controller) {
	if ga, gb := strings.Join(describeController(a), "\n"), strings.Join(describeController(b), "\n"); ga != gb {
		t.Fatalf("query answers differ:\n%s\nand:\n%s", ga, gb)
	}
	if ga, gb := fmt.Sprint(a.Groups(0)), fmt.Sprint(b.Groups(0)); ga != gb {
		t.Fatalf("groups differ: %s and %s", ga, gb)
	}
	var ra, rb routing.Result
	for _, tn := range a.Tenants() {
		for _, x := range []string{"", "e0", "e1", "e2"} {
			for _, key := range []string{"k1", "k2", "q0", "s1"} {
				ea, eb := a.Route(tn, &ra, x, key, nil), b.Route(tn, &rb, x, key, nil)
				if fmt.Sprint(ea) != fmt.Sprint(eb) || !slices.Equal(ra.Destinations, rb.Destinations) {
					t.Fatalf("route %s %q %q: %v %v and %v %v", tn, x, key, ra.Destinations, ea, rb.Destinations, eb)
				}
			}
		}
		for _, name := range []string{"q0", "q1", "q2", "s0", "s1"} {
			for _, owner := range []string{"", "c1"} {
				qa, sa, ea := a.PassiveDeclare(tn, name, owner)
				qb, sb, eb := b.PassiveDeclare(tn, name, owner)
				if fmt.Sprint(qa, sa, ea) != fmt.Sprint(qb, sb, eb) {
					t.Fatalf("passive declare %s %s by %q differs", tn, name, owner)
				}
			}
		}
	}
}

func (p *propertyRun) check(t *rapid.T) {
	if got, want := strings.Join(describeController(p.c), "\n"), strings.Join(p.m.describe(), "\n"); got != want {
		t.Fatalf("state differs from the model:\n%s\nwant:\n%s", got, want)
	}
	if !bytes.Equal(p.c.Snapshot(), p.replica.Snapshot()) {
		t.Fatalf("replicas' snapshots differ:\n%s\nand:\n%s", p.c.Dump(), p.replica.Dump())
	}
	p.c.checkInvariants()
}

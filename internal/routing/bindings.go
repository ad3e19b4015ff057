package routing

import (
	"slices"
	"strings"

	"github.com/ferry-mq/ferry/internal/base"
)

// AddDestination records that a queue or stream exists, so that it can be
// bound and the default exchange routes to it. It reports whether it was
// new. Errors: CodeInvalidArgument for another kind, an empty or too long
// name; CodePreconditionFailed when the name is taken by the other kind
// (queues and streams share one namespace); CodeTooLarge when the table
// holds RoutingDestinationsMax destinations.
func (t *Table) AddDestination(d Destination) (bool, error) {
	if d.Kind != Queue && d.Kind != Stream {
		return false, base.Errorf(base.CodeInvalidArgument, "a destination is a queue or a stream, not %s", d.Kind)
	}
	if d.Name == "" {
		return false, base.Errorf(base.CodeInvalidArgument, "%s name is empty", d.Kind)
	}
	if err := checkName(d.Kind.String(), d.Name); err != nil {
		return false, err
	}
	if cur, ok := t.dests[d.Name]; ok {
		if cur.Kind != d.Kind {
			return false, base.Errorf(base.CodePreconditionFailed, "%s exists and is a %s, not a %s",
				t.rs(cur.Kind.String(), d.Name), cur.Kind, d.Kind)
		}
		return false, nil
	}
	if len(t.dests) >= t.limits.destinations {
		return false, base.Errorf(base.CodeTooLarge, "cannot add %s: the vhost holds %d queues and streams, the limit (RoutingDestinationsMax)",
			t.rs(d.Kind.String(), d.Name), len(t.dests))
	}
	t.dests[d.Name] = d
	return true, nil
}

// RemoveDestination forgets a deleted queue or stream and removes every
// binding to it; auto-delete exchanges left without bindings are deleted.
// A destination that does not exist (or exists with the other kind) is a
// no-op. Exchanges are removed with DeleteExchange: giving ToExchange is a
// CodeInvalidArgument error.
func (t *Table) RemoveDestination(d Destination) (Change, error) {
	if d.Kind != Queue && d.Kind != Stream {
		return Change{}, base.Errorf(base.CodeInvalidArgument, "RemoveDestination takes a queue or a stream, not %s", d.Kind)
	}
	if cur, ok := t.dests[d.Name]; !ok || cur.Kind != d.Kind {
		return Change{}, nil
	}
	c := cascade{change: Change{Removed: true}}
	t.removeBindingsTo(d, &c)
	delete(t.dests, d.Name)
	return t.finish(&c), nil
}

// HasDestination reports whether the queue or stream d exists.
func (t *Table) HasDestination(d Destination) bool {
	cur, ok := t.dests[d.Name]
	return ok && cur.Kind == d.Kind
}

// Destinations returns every queue and stream, sorted by kind then name.
func (t *Table) Destinations() []Destination {
	out := make([]Destination, 0, len(t.dests))
	for _, d := range t.dests {
		out = append(out, d)
	}
	slices.SortFunc(out, compareDestinations)
	return out
}

// resolve finds a binding's source and, for an exchange destination, the
// destination exchange, with RabbitMQ's errors: CodeAccessRefused when
// either is the default exchange, CodeNotFound when either is missing.
func (t *Table) resolve(b *Binding) (src, dstX *exchange, err error) {
	if b.Source == "" || (b.Destination.Kind == ToExchange && b.Destination.Name == "") {
		return nil, nil, errDefaultExchange()
	}
	src, ok := t.exchanges[b.Source]
	if !ok {
		return nil, nil, base.Errorf(base.CodeNotFound, "no %s", t.rs("exchange", b.Source))
	}
	switch b.Destination.Kind {
	case ToExchange:
		if dstX, ok = t.exchanges[b.Destination.Name]; !ok {
			return nil, nil, base.Errorf(base.CodeNotFound, "no %s", t.rs("exchange", b.Destination.Name))
		}
	case Queue, Stream:
		if !t.HasDestination(b.Destination) {
			return nil, nil, base.Errorf(base.CodeNotFound, "no %s", t.rs(b.Destination.Kind.String(), b.Destination.Name))
		}
	default:
		return nil, nil, base.Errorf(base.CodeInvalidArgument, "unknown destination kind %d", uint8(b.Destination.Kind))
	}
	return src, dstX, nil
}

// identify checks what every binding must satisfy and returns its identity
// and canonical arguments.
func identify(src *exchange, b *Binding) (bindingID, []Field, error) {
	if err := checkKeyBytes("binding key", b.Key); err != nil {
		return bindingID{}, nil, err
	}
	if b.Syntax != SyntaxAMQP && (b.Syntax != SyntaxMQTT || src.Type != Topic) {
		return bindingID{}, nil, base.Errorf(base.CodeInvalidArgument,
			"pattern syntax %s applies only to topic exchanges, and exchange '%s' is %s", b.Syntax, src.Name, src.Type)
	}
	args, enc, err := canonicalArgs(b.Args)
	if err != nil {
		return bindingID{}, nil, err
	}
	return bindingID{destName: b.Destination.Name, key: b.Key, args: enc, destKind: b.Destination.Kind, syntax: b.Syntax}, args, nil
}

// Bind adds a binding, and reports whether it was new (binding twice is a
// no-op). Errors: CodeAccessRefused when the source or the destination is
// the default exchange; CodeNotFound when either is missing;
// CodeInvalidArgument for an invalid key, pattern, syntax or arguments
// (e.g. a bad x-match); CodeTooLarge when the source already has
// ExchangeBindingsMax bindings.
func (t *Table) Bind(b Binding) (bool, error) {
	src, dstX, err := t.resolve(&b)
	if err != nil {
		return false, err
	}
	id, args, err := identify(src, &b)
	if err != nil {
		return false, err
	}
	nb := &binding{source: src, id: id, destX: dstX}
	var pat pattern
	switch src.Type {
	case Topic:
		pat, err = parsePattern(b.Syntax, b.Key)
	case Headers:
		var m headerMatch
		m, err = parseHeaderMatch(args)
		nb.match = &m
	}
	if err != nil {
		return false, err
	}
	if _, ok := src.bindings[id]; ok {
		return false, nil
	}
	if len(src.bindings) >= t.limits.bindingsPerExchange {
		return false, base.Errorf(base.CodeTooLarge, "%s has %d bindings, the limit (ExchangeBindingsMax)",
			t.rs("exchange", src.Name), len(src.bindings))
	}
	t.addBinding(nb, pat)
	return true, nil
}

func (t *Table) addBinding(b *binding, pat pattern) {
	x := b.source
	x.bindings[b.id] = b
	switch x.Type {
	case Direct:
		l := x.direct[b.id.key]
		b.routePos = len(l)
		x.direct[b.id.key] = append(l, b)
	case Topic:
		x.topic.add(b, pat)
	default:
		b.routePos = len(x.all)
		x.all = append(x.all, b)
	}
	l := t.byDest[b.id.dest()]
	b.destPos = len(l)
	t.byDest[b.id.dest()] = append(l, b)
	t.bindings++
}

// Unbind removes a binding; a binding that does not exist is a no-op, as
// in RabbitMQ, also when its source or destination does not exist (so
// that clean-up after a delete does not fail). If the source is
// auto-delete and this was its last binding, it is deleted (reported in
// the Change). Errors: CodeAccessRefused for the default exchange, and
// CodeInvalidArgument for a malformed key or arguments.
func (t *Table) Unbind(b Binding) (Change, error) {
	src, _, err := t.resolve(&b)
	if base.CodeOf(err) == base.CodeNotFound {
		return Change{}, nil
	}
	if err != nil {
		return Change{}, err
	}
	id, _, err := identify(src, &b)
	if err != nil {
		return Change{}, err
	}
	old, ok := src.bindings[id]
	if !ok {
		return Change{}, nil
	}
	c := cascade{change: Change{Removed: true}}
	t.removeBinding(old, &c)
	return t.finish(&c), nil
}

// removeBinding unindexes b and records its source as an auto-delete
// candidate.
func (t *Table) removeBinding(b *binding, c *cascade) {
	x := b.source
	base.Assert(x.bindings[b.id] == b, "removing a binding its source does not hold")
	delete(x.bindings, b.id)
	switch x.Type {
	case Direct:
		l := removeAt(x.direct[b.id.key], b)
		if len(l) == 0 {
			delete(x.direct, b.id.key)
		} else {
			x.direct[b.id.key] = l
		}
	case Topic:
		x.topic.remove(b)
	default:
		x.all = removeAt(x.all, b)
	}
	l := t.byDest[b.id.dest()]
	base.Assert(b.destPos < len(l) && l[b.destPos] == b, "binding not at its destination position %d", b.destPos)
	last := len(l) - 1
	l[b.destPos] = l[last]
	l[b.destPos].destPos = b.destPos
	l[last] = nil
	if last == 0 {
		delete(t.byDest, b.id.dest())
	} else {
		t.byDest[b.id.dest()] = l[:last]
	}
	t.bindings--
	c.change.BindingsRemoved++
	c.candidates = append(c.candidates, x)
}

// Bindings returns every binding in canonical order: by source, then
// destination, key, syntax and arguments (canonical: sorted, first
// occurrence of a key kept). The slices are the caller's.
func (t *Table) Bindings() []Binding {
	all := t.sortedBindings()
	out := make([]Binding, len(all))
	for i, b := range all {
		out[i] = b.public()
	}
	return out
}

func (b *binding) public() Binding {
	return Binding{Source: b.source.Name, Destination: b.id.dest(), Key: b.id.key, Syntax: b.id.syntax, Args: b.args()}
}

func (t *Table) sortedBindings() []*binding {
	all := make([]*binding, 0, t.bindings)
	for _, x := range t.exchanges {
		for _, b := range x.bindings {
			all = append(all, b)
		}
	}
	slices.SortFunc(all, compareBindings)
	return all
}

func compareBindings(a, b *binding) int {
	if c := strings.Compare(a.source.Name, b.source.Name); c != 0 {
		return c
	}
	if c := compareDestinations(a.id.dest(), b.id.dest()); c != 0 {
		return c
	}
	if c := strings.Compare(a.id.key, b.id.key); c != 0 {
		return c
	}
	if a.id.syntax != b.id.syntax {
		return int(a.id.syntax) - int(b.id.syntax)
	}
	return strings.Compare(a.id.args, b.id.args)
}

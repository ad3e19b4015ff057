package routing

import (
	"github.com/ferry-mq/ferry/internal/base"
)

// checkInvariants verifies the whole table and panics with "BUG:" on the
// first broken invariant. It is O(size of the table): tests call it after
// every step, and UnmarshalBinary calls it under base.InvariantsEnabled.
func (t *Table) checkInvariants() {
	for _, e := range builtinExchanges {
		x := t.exchanges[e.Name]
		base.Assert(x != nil && x.builtin && x.Type == e.Type && x.Durable && !x.AutoDelete && !x.Internal,
			"built-in exchange %q missing or changed", e.Name)
	}
	base.Assert(len(t.exchanges) <= t.limits.exchanges, "%d exchanges over the limit", len(t.exchanges))
	base.Assert(len(t.dests) <= t.limits.destinations, "%d destinations over the limit", len(t.dests))
	for name, d := range t.dests {
		base.Assert(d.Name == name && (d.Kind == Queue || d.Kind == Stream), "destination %q stored as %v", name, d)
	}
	total := 0
	for name, x := range t.exchanges {
		base.Assert(x.Name == name, "exchange %q stored under %q", x.Name, name)
		base.Assert(!x.isDefault || len(x.bindings) == 0, "the default exchange has bindings")
		base.Assert(len(x.bindings) <= t.limits.bindingsPerExchange, "exchange %q: %d bindings over the limit", name, len(x.bindings))
		for id, b := range x.bindings {
			t.checkBinding(x, id, b)
		}
		indexed := t.checkIndex(x)
		base.Assert(indexed == len(x.bindings), "exchange %q indexes %d bindings, holds %d", name, indexed, len(x.bindings))
		total += len(x.bindings)
	}
	base.Assert(total == t.bindings, "table counts %d bindings, exchanges hold %d", t.bindings, total)
	byDest := 0
	for d, l := range t.byDest {
		base.Assert(len(l) > 0, "empty byDest list for %v", d)
		for i, b := range l {
			base.Assert(b.id.dest() == d && b.destPos == i, "byDest[%v][%d] holds a binding to %v at %d", d, i, b.id.dest(), b.destPos)
		}
		byDest += len(l)
	}
	base.Assert(byDest == t.bindings, "byDest holds %d bindings, the table %d", byDest, t.bindings)
}

func (t *Table) checkBinding(x *exchange, id bindingID, b *binding) {
	base.Assert(b.source == x && b.id == id, "binding in exchange %q has source %q", x.Name, b.source.Name)
	switch id.destKind {
	case ToExchange:
		base.Assert(b.destX != nil && t.exchanges[id.destName] == b.destX, "binding %q -> exchange %q: stale destination", x.Name, id.destName)
	default:
		base.Assert(b.destX == nil && t.HasDestination(id.dest()), "binding %q -> %v: missing destination", x.Name, id.dest())
	}
	l := t.byDest[id.dest()]
	base.Assert(b.destPos < len(l) && l[b.destPos] == b, "binding %q -> %v not in byDest", x.Name, id.dest())
	base.Assert((x.Type == Headers) == (b.match != nil), "binding %q -> %v: header match on a %s exchange", x.Name, id.dest(), x.Type)
	base.Assert(id.syntax == SyntaxAMQP || x.Type == Topic, "%s binding on %s exchange %q", id.syntax, x.Type, x.Name)
}

// checkIndex verifies x's routing index and returns how many bindings it
// holds.
func (t *Table) checkIndex(x *exchange) int {
	switch x.Type {
	case Direct:
		n := 0
		for key, l := range x.direct {
			base.Assert(len(l) > 0, "exchange %q: empty list for key %q", x.Name, key)
			checkList(x, l)
			for _, b := range l {
				base.Assert(b.id.key == key, "exchange %q: binding with key %q under %q", x.Name, b.id.key, key)
			}
			n += len(l)
		}
		return n
	case Topic:
		return x.topic.check(x)
	}
	checkList(x, x.all)
	for _, b := range x.all {
		base.Assert(x.Type != Headers || len(b.match.fields) <= len(b.args()), "exchange %q: header match wider than args", x.Name)
	}
	return len(x.all)
}

func checkList(x *exchange, l []*binding) {
	for i, b := range l {
		base.Assert(b.routePos == i && x.bindings[b.id] == b, "exchange %q: binding at %d claims %d or is not held", x.Name, i, b.routePos)
	}
}

// check verifies the topic index of x and returns how many bindings it
// holds.
func (ix *topicIndex) check(x *exchange) int {
	n := 0
	for key, l := range ix.exact {
		base.Assert(len(l) > 0, "exchange %q: empty exact list for %q", x.Name, key)
		checkList(x, l)
		for _, b := range l {
			base.Assert(b.id.key == key && b.node == nil, "exchange %q: exact binding %q under %q", x.Name, b.id.key, key)
		}
		n += len(l)
	}
	var wild [2]int
	n += ix.root.check(x, &wild, 0)
	base.Assert(wild == ix.wild, "exchange %q: wildcard counts %v, trie holds %v", x.Name, ix.wild, wild)
	return n
}

func (n *node) check(x *exchange, wild *[2]int, depth int) int {
	base.Assert(depth <= base.TopicWordsMax, "exchange %q: trie deeper than TopicWordsMax", x.Name)
	base.Assert(n.parent == nil || !n.empty(), "exchange %q: empty trie node left at depth %d", x.Name, depth)
	checkList(x, n.bindings)
	for _, b := range n.bindings {
		base.Assert(b.node == n, "exchange %q: binding %q does not point at its node", x.Name, b.id.key)
		wild[b.id.syntax]++
	}
	count := len(n.bindings)
	base.Assert(n.only == nil || n.children == nil, "exchange %q: trie node with a lone child and a map", x.Name)
	base.Assert(n.children == nil || len(n.children) >= 2, "exchange %q: trie node with a map of %d children", x.Name, len(n.children))
	if c := n.only; c != nil {
		base.Assert(c.parent == n && c.edge == edgeWord, "exchange %q: bad lone literal edge %q", x.Name, c.word)
		count += c.check(x, wild, depth+1)
	}
	for w, c := range n.children {
		base.Assert(c.parent == n && c.edge == edgeWord && c.word == w, "exchange %q: bad literal edge %q", x.Name, w)
		count += c.check(x, wild, depth+1)
	}
	for s := SyntaxAMQP; s <= SyntaxMQTT; s++ {
		if c := n.one[s]; c != nil {
			base.Assert(c.parent == n && c.edge == oneEdge(s), "exchange %q: bad one-word edge", x.Name)
			count += c.check(x, wild, depth+1)
		}
		if c := n.many[s]; c != nil {
			base.Assert(c.parent == n && c.edge == manyEdge(s), "exchange %q: bad many-word edge", x.Name)
			base.Assert(c.many[s] == nil, "exchange %q: '#' directly under '#'", x.Name)
			count += c.check(x, wild, depth+1)
		}
	}
	return count
}

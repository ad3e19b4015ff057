package routing

import (
	"strings"

	"github.com/ferry-mq/ferry/internal/base"
)

// topicIndex finds the bindings of a topic exchange that match a routing
// key. Patterns without wildcards live in a hash map keyed by the pattern
// itself (an exact pattern matches exactly the equal key in both
// syntaxes); patterns with wildcards live in one trie whose literal edges
// are shared by both syntaxes and whose wildcard edges belong to one
// syntax each (see doc.go).
type topicIndex struct {
	exact map[string][]*binding
	root  node
	wild  [2]int // wildcard bindings per Syntax, to skip a walk with no work
}

// edgeKind says how a node hangs from its parent.
type edgeKind uint8

const (
	edgeRoot edgeKind = iota
	edgeWord
	edgeAMQPOne  // '*'
	edgeAMQPMany // '#'
	edgeMQTTOne  // '+'
	edgeMQTTMany // '#', always a leaf
)

// node is a trie node. Every binding held by a node has a wildcard edge on
// its path, and wildcard edges belong to one syntax, so a node's bindings
// all share one syntax even though literal prefixes are shared.
type node struct {
	parent *node
	edge   edgeKind
	word   string // edge == edgeWord only
	// The literal children: a lone child is kept in only (most nodes
	// have one, and a Go map costs some 250 bytes); two or more live in
	// children. Never both.
	only     *node
	children map[string]*node
	one      [2]*node // per Syntax: AMQP '*', MQTT '+'
	many     [2]*node // per Syntax: AMQP '#', MQTT '#'
	bindings []*binding
}

func newTopicIndex() *topicIndex { return &topicIndex{exact: make(map[string][]*binding)} }

func oneEdge(s Syntax) edgeKind {
	if s == SyntaxMQTT {
		return edgeMQTTOne
	}
	return edgeAMQPOne
}

func manyEdge(s Syntax) edgeKind {
	if s == SyntaxMQTT {
		return edgeMQTTMany
	}
	return edgeAMQPMany
}

// add indexes b under its parsed pattern.
func (ix *topicIndex) add(b *binding, p pattern) {
	if p.exact {
		l := ix.exact[b.id.key]
		b.routePos = len(l)
		ix.exact[b.id.key] = append(l, b)
		return
	}
	s := b.id.syntax
	n := &ix.root
	for _, tok := range p.tokens {
		n = n.child(tok, s)
	}
	b.node = n
	b.routePos = len(n.bindings)
	n.bindings = append(n.bindings, b)
	ix.wild[s]++
}

// child returns n's child for tok, creating it if missing.
func (n *node) child(tok token, s Syntax) *node {
	var slot **node
	edge := edgeWord
	switch tok.kind {
	case tokOne:
		slot, edge = &n.one[s], oneEdge(s)
	case tokMany:
		slot, edge = &n.many[s], manyEdge(s)
	default:
		if c := n.literal(tok.word); c != nil {
			return c
		}
		c := &node{parent: n, edge: edgeWord, word: tok.word}
		switch {
		case n.only == nil && n.children == nil:
			n.only = c
		case n.only != nil:
			n.children = map[string]*node{n.only.word: n.only, c.word: c}
			n.only = nil
		default:
			n.children[c.word] = c
		}
		return c
	}
	if *slot == nil {
		*slot = &node{parent: n, edge: edge}
	}
	return *slot
}

// remove unindexes b and prunes the trie nodes left empty.
func (ix *topicIndex) remove(b *binding) {
	if b.node == nil {
		l := removeAt(ix.exact[b.id.key], b)
		if len(l) == 0 {
			delete(ix.exact, b.id.key)
		} else {
			ix.exact[b.id.key] = l
		}
		return
	}
	n := b.node
	n.bindings = removeAt(n.bindings, b)
	b.node = nil
	ix.wild[b.id.syntax]--
	for n.parent != nil && n.empty() {
		n.detach()
		n = n.parent
	}
}

// literal returns n's child for the literal word w, or nil.
func (n *node) literal(w string) *node {
	if n.only != nil {
		if n.only.word == w {
			return n.only
		}
		return nil
	}
	return n.children[w]
}

func (n *node) empty() bool {
	return len(n.bindings) == 0 && n.only == nil && len(n.children) == 0 &&
		n.one[0] == nil && n.one[1] == nil && n.many[0] == nil && n.many[1] == nil
}

// detach unlinks n from its parent.
func (n *node) detach() {
	p := n.parent
	switch n.edge {
	case edgeWord:
		if p.only == n {
			p.only = nil
			return
		}
		delete(p.children, n.word)
		if len(p.children) == 1 {
			for _, c := range p.children {
				p.only = c
			}
			p.children = nil
		}
	case edgeAMQPOne:
		p.one[SyntaxAMQP] = nil
	case edgeMQTTOne:
		p.one[SyntaxMQTT] = nil
	case edgeAMQPMany:
		p.many[SyntaxAMQP] = nil
	case edgeMQTTMany:
		p.many[SyntaxMQTT] = nil
	default:
		base.Bugf("detaching a trie node with edge %d", n.edge)
	}
}

// activeSetMin is the size at which walk's set of active '#' nodes moves
// from a linear scan to a map. It is a cost crossover, not a bound.
const activeSetMin = 16

// match appends to s.matched every binding whose pattern matches key, each
// at most once. It reads the index only, so concurrent matches are safe;
// all temporary state lives in s.
func (ix *topicIndex) match(key string, s *scratch) {
	s.matched = append(s.matched, ix.exact[key]...)
	for syn := SyntaxAMQP; syn <= SyntaxMQTT; syn++ {
		if ix.wild[syn] == 0 {
			continue
		}
		ix.walk(syn, key, s)
		for _, n := range s.cur {
			s.matched = append(s.matched, n.bindings...)
		}
		for _, n := range s.active {
			s.matched = append(s.matched, n.bindings...)
		}
	}
}

// walk simulates the trie as an automaton over the words of key, leaving
// in s.cur the nodes reached after the last word and in s.active the '#'
// nodes reached at any point (a '#' absorbs every later word). Both are
// free of duplicates: the trie is a tree, so each node of s.next has one
// parent in s.cur or s.active, and addActive checks membership. The cost
// is O(words × nodes live at once), independent of the number of
// bindings that do not match.
func (ix *topicIndex) walk(syn Syntax, key string, s *scratch) {
	s.cur = append(s.cur[:0], &ix.root)
	s.resetActive()
	sep := separator(syn)
	// MQTT §4.7.2: a filter starting with a wildcard does not match a
	// topic starting with '$'.
	dollar := syn == SyntaxMQTT && strings.HasPrefix(key, "$")
	if !dollar {
		s.addActive(ix.root.many[syn])
	}
	if syn == SyntaxAMQP && key == "" {
		return // zero words
	}
	words := 0
	for i, first := 0, true; ; first = false {
		j := strings.IndexByte(key[i:], sep)
		w := key[i:]
		if j >= 0 {
			w = key[i : i+j]
		}
		words++
		base.Assert(words <= base.TopicWordsMax, "routing key of %d bytes has over %d words", len(key), base.TopicWordsMax)
		s.next = s.next[:0]
		for _, n := range s.cur {
			s.step(n, w, syn, first && dollar)
		}
		for _, n := range s.active {
			s.step(n, w, syn, false)
		}
		for _, c := range s.next {
			s.addActive(c.many[syn])
		}
		s.cur, s.next = s.next, s.cur
		if j < 0 {
			return
		}
		i += j + 1
	}
}

// step appends to s.next the children of n that consume word w.
func (s *scratch) step(n *node, w string, syn Syntax, noWildcard bool) {
	if c := n.literal(w); c != nil {
		s.next = append(s.next, c)
	}
	if c := n.one[syn]; c != nil && !noWildcard {
		s.next = append(s.next, c)
	}
}

func (s *scratch) resetActive() {
	s.active = s.active[:0]
	if s.activeSet != nil {
		clear(s.activeSet)
	}
}

// addActive adds a '#' node to s.active unless nil or already there.
func (s *scratch) addActive(n *node) {
	if n == nil {
		return
	}
	if len(s.active) < activeSetMin {
		for _, a := range s.active {
			if a == n {
				return
			}
		}
		s.active = append(s.active, n)
		return
	}
	if s.activeSet == nil {
		s.activeSet = make(map[*node]struct{})
	}
	if len(s.activeSet) == 0 {
		for _, a := range s.active {
			s.activeSet[a] = struct{}{}
		}
	}
	if _, ok := s.activeSet[n]; ok {
		return
	}
	s.activeSet[n] = struct{}{}
	s.active = append(s.active, n)
}

package routing

import (
	"fmt"
	"slices"
	"strings"

	"github.com/ferry-mq/ferry/internal/base"
)

// Table is the routing state of one tenant (virtual host): its exchanges,
// the queues and streams that exist, and the bindings between them. The
// controller applies declare, bind, unbind and delete commands to it in log
// order; every replica that applies the same commands reaches the same
// state (same snapshot bytes, same Route results).
//
// A Table is not safe for concurrent mutation. Route, the lookups and
// MarshalBinary only read, so any number of them may run concurrently
// when no mutation does (the owner holds a RWMutex or swaps tables).
type Table struct {
	vhost     string
	exchanges map[string]*exchange
	dests     map[string]Destination // queues and streams, one namespace
	// byDest lists the bindings to each destination (exchanges
	// included), for RemoveDestination and DeleteExchange.
	byDest   map[Destination][]*binding
	bindings int // across all exchanges
	limits   limits
}

// limits are the table's capacity bounds: the base maxima, lowered only by
// in-package tests so that edges can be tested without millions of
// entries.
type limits struct {
	exchanges, destinations, bindingsPerExchange int
}

func defaultLimits() limits {
	return limits{
		exchanges:           base.RoutingExchangesMax,
		destinations:        base.RoutingDestinationsMax,
		bindingsPerExchange: base.ExchangeBindingsMax,
	}
}

// exchange is a declared exchange with its bindings and routing index.
type exchange struct {
	Exchange       // as declared; Args canonical
	isDefault bool // the nameless default exchange
	builtin   bool // "" and amq.*: never deleted, never in snapshots
	// The alternate-exchange argument: as given (for redeclaration
	// checks), and the name to follow when it is a string.
	aeValue      Value
	hasAEArg     bool
	alternate    string
	hasAlternate bool

	bindings map[bindingID]*binding // the bindings with this source
	// The routing index; which one is used depends on Type.
	direct map[string][]*binding // Direct: key → bindings
	all    []*binding            // Fanout and Headers: every binding
	topic  *topicIndex           // Topic
}

// bindingID is what identifies a binding within its source exchange. Its
// fields are ordered to avoid padding: a table holds millions.
type bindingID struct {
	destName string
	key      string
	args     string // canonical encoding of the arguments
	destKind DestKind
	syntax   Syntax
}

func (id *bindingID) dest() Destination { return Destination{Kind: id.destKind, Name: id.destName} }

// binding is one binding. It is kept small (112 bytes): the controller
// holds every binding of a vhost in memory, and MQTT makes millions.
type binding struct {
	source   *exchange
	id       bindingID
	destX    *exchange    // the destination when id.destKind == ToExchange
	match    *headerMatch // Headers exchanges only
	node     *node        // Topic exchanges: the trie node, nil when exact
	routePos int          // index in the routing-index slice holding it
	destPos  int          // index in Table.byDest[id.dest()]
}

// args returns the binding's canonical arguments, decoded from the
// identity's encoding (listings only; Route never needs them).
func (b *binding) args() []Field {
	if b.id.args == "" {
		return nil
	}
	d := &decoder{buf: []byte(b.id.args)}
	fields := d.fields()
	base.Assert(d.err == nil, "decoding a binding's own arguments: %v", d.err)
	return fields
}

// removeAt removes b from l, which holds it at b.routePos, moving the last
// element into its place.
func removeAt(l []*binding, b *binding) []*binding {
	i := b.routePos
	base.Assert(i < len(l) && l[i] == b, "binding not at its route position %d", i)
	last := len(l) - 1
	l[i] = l[last]
	l[i].routePos = i
	l[last] = nil
	return l[:last]
}

// builtinExchanges exist in every table, as in every RabbitMQ vhost.
var builtinExchanges = []Exchange{
	{Name: "", Type: Direct, Durable: true},
	{Name: "amq.direct", Type: Direct, Durable: true},
	{Name: "amq.fanout", Type: Fanout, Durable: true},
	{Name: "amq.headers", Type: Headers, Durable: true},
	{Name: "amq.match", Type: Headers, Durable: true},
	{Name: "amq.topic", Type: Topic, Durable: true},
}

// NewTable returns the routing table of vhost holding only the built-in
// exchanges: the default exchange "" (direct; routes a routing key to the
// queue or stream of that name; cannot be bound, unbound, declared or
// deleted) and amq.direct, amq.fanout, amq.topic, amq.headers and
// amq.match. The vhost name must be at most RoutingNameBytesMax bytes (the
// controller validates names before creating a vhost); a longer one is a
// bug, since the table's snapshot could not be restored.
func NewTable(vhost string) *Table {
	base.Assert(len(vhost) <= base.RoutingNameBytesMax, "vhost name of %d bytes exceeds RoutingNameBytesMax", len(vhost))
	t := &Table{
		vhost:     vhost,
		exchanges: make(map[string]*exchange),
		dests:     make(map[string]Destination),
		byDest:    make(map[Destination][]*binding),
		limits:    defaultLimits(),
	}
	for _, e := range builtinExchanges {
		x := newExchange(e)
		x.builtin, x.isDefault = true, e.Name == ""
		t.exchanges[e.Name] = x
	}
	return t
}

func newExchange(e Exchange) *exchange {
	x := &exchange{Exchange: e, bindings: make(map[bindingID]*binding)}
	switch e.Type {
	case Direct:
		x.direct = make(map[string][]*binding)
	case Topic:
		x.topic = newTopicIndex()
	}
	if v, ok := lookupArg(e.Args, "alternate-exchange"); ok {
		x.aeValue, x.hasAEArg = v, true
		x.alternate, x.hasAlternate = v.str, v.kind == KindString
	}
	return x
}

// VHost returns the name of the table's virtual host.
func (t *Table) VHost() string { return t.vhost }

// Stats returns the table's counts.
func (t *Table) Stats() Stats {
	return Stats{Exchanges: len(t.exchanges), Destinations: len(t.dests), Bindings: t.bindings}
}

// rs names a resource the way RabbitMQ's messages do.
func (t *Table) rs(kind, name string) string {
	return fmt.Sprintf("%s '%s' in vhost '%s'", kind, name, t.vhost)
}

func errDefaultExchange() error {
	return base.Errorf(base.CodeAccessRefused, "operation not permitted on the default exchange")
}

// CheckNotDefault refuses the default exchange "" with CodeAccessRefused,
// as RabbitMQ refuses declaring it, passive or not.
func CheckNotDefault(exchange string) error {
	if exchange == "" {
		return errDefaultExchange()
	}
	return nil
}

// DeclareExchange creates the exchange e describes, or checks that the
// existing one is equivalent. It reports whether it created one. Errors:
// CodeAccessRefused for the default exchange or a new name starting with
// "amq."; CodePreconditionFailed when an existing exchange differs in
// type, durable, auto_delete, internal or alternate-exchange (the message
// names the first difference, as RabbitMQ's does), or when
// alternate-exchange is not a string; CodeInvalidArgument for a bad name,
// type or arguments table; CodeTooLarge when the table already holds
// RoutingExchangesMax exchanges.
func (t *Table) DeclareExchange(e Exchange) (bool, error) {
	if err := CheckNotDefault(e.Name); err != nil {
		return false, err
	}
	if err := checkName("exchange", e.Name); err != nil {
		return false, err
	}
	if !e.Type.valid() {
		return false, base.Errorf(base.CodeInvalidArgument, "unknown exchange type %s", e.Type)
	}
	args, _, err := canonicalArgs(e.Args)
	if err != nil {
		return false, fmt.Errorf("declaring %s: %w", t.rs("exchange", e.Name), err)
	}
	e.Args = args
	if cur, ok := t.exchanges[e.Name]; ok {
		return false, t.checkEquivalent(cur, e)
	}
	if strings.HasPrefix(e.Name, "amq.") {
		return false, base.Errorf(base.CodeAccessRefused,
			"exchange name '%s' contains reserved prefix 'amq.*'", e.Name)
	}
	if v, ok := lookupArg(args, "alternate-exchange"); ok && v.kind != KindString {
		return false, base.Errorf(base.CodePreconditionFailed,
			"invalid type '%s' for arg 'alternate-exchange' in %s", v.kind, t.rs("exchange", e.Name))
	}
	if len(t.exchanges) >= t.limits.exchanges {
		return false, base.Errorf(base.CodeTooLarge, "cannot declare %s: the vhost holds %d exchanges, the limit (RoutingExchangesMax)",
			t.rs("exchange", e.Name), len(t.exchanges))
	}
	t.exchanges[e.Name] = newExchange(e)
	return true, nil
}

func checkName(kind, name string) error {
	if len(name) > base.RoutingNameBytesMax {
		return base.Errorf(base.CodeInvalidArgument, "%s name of %d bytes exceeds the limit of %d (RoutingNameBytesMax)",
			kind, len(name), base.RoutingNameBytesMax)
	}
	return nil
}

// checkEquivalent compares a redeclaration with the current exchange in
// RabbitMQ's order and words.
func (t *Table) checkEquivalent(cur *exchange, e Exchange) error {
	type field struct {
		name          string
		current, recv string
	}
	fields := []field{
		{"type", cur.Type.String(), e.Type.String()},
		{"durable", fmt.Sprint(cur.Durable), fmt.Sprint(e.Durable)},
		{"auto_delete", fmt.Sprint(cur.AutoDelete), fmt.Sprint(e.AutoDelete)},
		{"internal", fmt.Sprint(cur.Internal), fmt.Sprint(e.Internal)},
	}
	for _, f := range fields {
		if f.current != f.recv {
			return t.inequivalent(cur.Name, f.name, "'"+f.recv+"'", "'"+f.current+"'")
		}
	}
	ae, hasAE := lookupArg(e.Args, "alternate-exchange")
	if ae != cur.aeValue || hasAE != cur.hasAEArg {
		return t.inequivalent(cur.Name, "alternate-exchange", formatArg(ae, hasAE), formatArg(cur.aeValue, cur.hasAEArg))
	}
	return nil
}

func (t *Table) inequivalent(name, arg, recv, current string) error {
	return base.Errorf(base.CodePreconditionFailed, "inequivalent arg '%s' for %s: received %s but current is %s",
		arg, t.rs("exchange", name), recv, current)
}

func formatArg(v Value, ok bool) string {
	switch {
	case !ok:
		return "none"
	case v.kind == KindString:
		return "'" + v.str + "'"
	}
	return "'" + v.String() + "'"
}

// Exchange returns the exchange named name as declared (Args canonical;
// the caller must not modify them), and whether it exists.
func (t *Table) Exchange(name string) (Exchange, bool) {
	x, ok := t.exchanges[name]
	if !ok {
		return Exchange{}, false
	}
	return x.Exchange, true
}

// Exchanges returns every exchange, built-ins included, sorted by name.
// The Args slices are the table's; the caller must not modify them.
func (t *Table) Exchanges() []Exchange {
	out := make([]Exchange, 0, len(t.exchanges))
	for _, x := range t.exchanges {
		out = append(out, x.Exchange)
	}
	slices.SortFunc(out, func(a, b Exchange) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// DeleteExchange deletes the exchange and every binding from or to it;
// auto-delete exchanges whose last binding goes with it are deleted too.
// Deleting a missing exchange does nothing, as in RabbitMQ. Errors:
// CodeAccessRefused for the default exchange and any "amq." name;
// CodePreconditionFailed when ifUnused and the exchange is the source of a
// binding.
func (t *Table) DeleteExchange(name string, ifUnused bool) (Change, error) {
	if name == "" {
		return Change{}, errDefaultExchange()
	}
	if strings.HasPrefix(name, "amq.") {
		return Change{}, base.Errorf(base.CodeAccessRefused, "deletion of system %s not allowed", t.rs("exchange", name))
	}
	x, ok := t.exchanges[name]
	if !ok {
		return Change{}, nil
	}
	if ifUnused && len(x.bindings) > 0 {
		return Change{}, base.Errorf(base.CodePreconditionFailed, "%s in use", t.rs("exchange", name))
	}
	c := cascade{change: Change{Removed: true}}
	t.deleteExchange(x, &c)
	return t.finish(&c), nil
}

// cascade collects what one mutation removed: the sources that lost a
// binding and may now auto-delete.
type cascade struct {
	change     Change
	candidates []*exchange
}

// deleteExchange removes x and its bindings in both directions.
func (t *Table) deleteExchange(x *exchange, c *cascade) {
	base.Assert(!x.builtin, "deleting built-in exchange %q", x.Name)
	for _, b := range x.bindings {
		t.removeBinding(b, c)
	}
	t.removeBindingsTo(Destination{Kind: ToExchange, Name: x.Name}, c)
	delete(t.exchanges, x.Name)
}

// removeBindingsTo removes every binding to d.
func (t *Table) removeBindingsTo(d Destination, c *cascade) {
	for l := t.byDest[d]; len(l) > 0; l = t.byDest[d] {
		t.removeBinding(l[len(l)-1], c)
	}
}

// finish deletes the auto-delete exchanges left without bindings, and
// their bindings in turn, until nothing changes. The result does not
// depend on the order: a cascade only removes bindings, so a candidate
// without bindings stays without.
func (t *Table) finish(c *cascade) Change {
	for len(c.candidates) > 0 {
		x := c.candidates[len(c.candidates)-1]
		c.candidates = c.candidates[:len(c.candidates)-1]
		if t.exchanges[x.Name] != x || !x.AutoDelete || len(x.bindings) > 0 {
			continue // already gone, not auto-delete, or still bound
		}
		t.deleteExchange(x, c)
		c.change.AutoDeleted = append(c.change.AutoDeleted, x.Name)
	}
	slices.Sort(c.change.AutoDeleted)
	return c.change
}

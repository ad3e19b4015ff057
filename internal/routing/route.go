package routing

import (
	"slices"

	"github.com/ferry-mq/ferry/internal/base"
)

// Result is the outcome of one Route. Reuse one Result per publishing
// goroutine: after the first few publishes Route allocates nothing.
type Result struct {
	// Destinations are the queues and streams the message goes to,
	// deduplicated and sorted by kind then name. The slice belongs to the
	// Result and is overwritten by the next Route with it; the names are
	// immutable strings the caller may keep.
	Destinations []Destination
	// Unroutable is set when Destinations is empty: the broker returns a
	// mandatory message to its publisher (AMQP basic.return, 312
	// NO_ROUTE) and drops the others.
	Unroutable bool
	// ViaAlternate is set when an exchange on the route matched nothing
	// and its alternate exchange was followed.
	ViaAlternate bool
	// DepthLimited is set when an exchange lay more than
	// RouteExchangeDepthMax exchange-to-exchange or alternate hops from
	// the published one and was not visited. The broker should log it:
	// the topology is deeper than Ferry follows.
	DepthLimited bool

	s scratch
}

// scratch is Route's reusable working memory.
type scratch struct {
	work          []routeStep            // exchanges to visit, breadth first
	seen          map[*exchange]struct{} // visited exchanges, once work is long
	matched       []*binding             // bindings matched by the current exchange
	cur           []*node                // topic walk: nodes after the words so far
	next          []*node                // topic walk: nodes after one more word
	active        []*node                // topic walk: '#' nodes reached
	activeSet     map[*node]struct{}     // topic walk: active, once it is long
	headers       []Field                // the message headers sorted by key
	headersSorted bool
}

type routeStep struct {
	x     *exchange
	depth int
}

// seenSetMin is the number of visited exchanges at which Route switches
// from scanning them to a map. It is a cost crossover, not a bound.
const seenSetMin = 16

func (r *Result) reset() {
	clear(r.Destinations) // drop references to names of deleted queues
	r.Destinations = r.Destinations[:0]
	r.Unroutable, r.ViaAlternate, r.DepthLimited = false, false, false
	r.s.headersSorted = false
}

// Route computes where a message published to exchange with routingKey and
// headers goes, into res (which must not be nil). It follows
// exchange-to-exchange bindings breadth first, visiting each exchange at
// most once (so cycles are safe), and when an exchange's own bindings
// match nothing it follows that exchange's alternate exchange, if it
// exists, with the same rule (so chains and cycles of alternates are safe
// too), as RabbitMQ's rabbit_exchange:route does.
//
// Errors, with the codes the front ends answer with: CodeNotFound when the
// exchange does not exist (AMQP 404); CodeAccessRefused when it is
// internal (AMQP 403: internal exchanges receive only through bindings);
// CodeInvalidArgument when routingKey exceeds RoutingKeyBytesMax. On
// error res holds no destinations.
//
// Cost: a hash lookup per direct exchange and per exact topic key, a trie
// walk bounded by the key's words for topic wildcards, one pass over the
// bindings of fanout and headers exchanges, plus sorting the destinations.
func (t *Table) Route(res *Result, exchange, routingKey string, headers []Field) error {
	keys := [1]string{routingKey}
	return t.RouteKeys(res, exchange, keys[:], headers)
}

// RouteKeys is Route for a message with several routing keys (RabbitMQ's
// sender-selected distribution: the routing key and those of the CC and
// BCC headers): every exchange on the route matches each key, and its
// alternate applies when none matched, as in RabbitMQ. keys must not be
// empty.
func (t *Table) RouteKeys(res *Result, exchange string, keys []string, headers []Field) error {
	res.reset()
	for _, k := range keys {
		if err := checkKeyBytes("routing key", k); err != nil {
			return err
		}
	}
	x, ok := t.exchanges[exchange]
	if !ok {
		return base.Errorf(base.CodeNotFound, "no %s", t.rs("exchange", exchange))
	}
	if x.Internal {
		return base.Errorf(base.CodeAccessRefused, "cannot publish to internal %s", t.rs("exchange", exchange))
	}
	res.visit(x, 0)
	for i := 0; i < len(res.s.work); i++ {
		step := res.s.work[i]
		matched := 0
		for _, k := range keys {
			matched += t.routeOne(res, step, k, headers)
		}
		if matched > 0 || !step.x.hasAlternate {
			continue
		}
		if ae, ok := t.exchanges[step.x.alternate]; ok && res.visit(ae, step.depth+1) {
			res.ViaAlternate = true
		}
	}
	slices.SortFunc(res.Destinations, compareDestinations)
	res.Destinations = slices.Compact(res.Destinations)
	res.Unroutable = len(res.Destinations) == 0
	res.s.release()
	return nil
}

// release drops the scratch's references into the table and the
// message, so that a Result kept between publishes keeps neither deleted
// exchanges and trie nodes nor the last message's headers alive.
func (s *scratch) release() {
	clear(s.headers)
	s.headers = s.headers[:0]
	clear(s.work)
	s.work = s.work[:0]
	if s.seen != nil {
		clear(s.seen)
	}
	clear(s.cur)
	clear(s.next)
	s.resetActive()
}

// routeOne applies one exchange's own bindings: queues and streams go to
// res.Destinations, exchanges to the work list. It returns how many
// bindings matched, so the caller knows whether the alternate applies.
func (t *Table) routeOne(res *Result, step routeStep, key string, headers []Field) int {
	x, s := step.x, &res.s
	if x.isDefault {
		// The default exchange routes by name only what is published to it:
		// reached as an alternate exchange (it cannot be bound), it routes
		// nothing, as in RabbitMQ.
		if step.depth > 0 {
			return 0
		}
		d, ok := t.dests[key]
		if !ok {
			return 0
		}
		res.Destinations = append(res.Destinations, d)
		return 1
	}
	s.matched = s.matched[:0]
	switch x.Type {
	case Direct:
		s.matched = append(s.matched, x.direct[key]...)
	case Fanout:
		s.matched = append(s.matched, x.all...)
	case Topic:
		x.topic.match(key, s)
	case Headers:
		sorted := s.sortHeaders(headers)
		for _, b := range x.all {
			if b.match.matches(sorted) {
				s.matched = append(s.matched, b)
			}
		}
	}
	for _, b := range s.matched {
		if b.destX != nil {
			res.visit(b.destX, step.depth+1)
		} else {
			res.Destinations = append(res.Destinations, b.id.dest())
		}
	}
	n := len(s.matched)
	clear(s.matched) // the Result must not keep deleted bindings alive
	return n
}

// visit queues x unless it was visited already or lies too deep. It
// reports whether x was queued.
func (res *Result) visit(x *exchange, depth int) bool {
	s := &res.s
	if len(s.work) < seenSetMin {
		for _, st := range s.work {
			if st.x == x {
				return false
			}
		}
	} else {
		if s.seen == nil {
			s.seen = make(map[*exchange]struct{})
		}
		if len(s.seen) == 0 {
			for _, st := range s.work {
				s.seen[st.x] = struct{}{}
			}
		}
		if _, ok := s.seen[x]; ok {
			return false
		}
		s.seen[x] = struct{}{}
	}
	if depth > base.RouteExchangeDepthMax {
		// Breadth first, every later path to x is at least as long.
		res.DepthLimited = true
		return false
	}
	s.work = append(s.work, routeStep{x: x, depth: depth})
	return true
}

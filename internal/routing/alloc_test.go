package routing

import (
	"fmt"
	"testing"
)

// TestRouteDoesNotAllocate pins the hot-path contract: with a reused
// Result, Route allocates nothing once the Result's buffers have grown,
// for every exchange type, exchange-to-exchange bindings, alternates, and
// topic walks large enough to use the scratch maps.
func TestRouteDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocation counts")
	}
	tbl := NewTable("/")
	steps := []error{
		second(tbl.DeclareExchange(Exchange{Name: "d", Type: Direct, Args: []Field{{Key: "alternate-exchange", Value: StringValue("f")}}})),
		second(tbl.DeclareExchange(Exchange{Name: "f", Type: Fanout})),
		second(tbl.DeclareExchange(Exchange{Name: "t", Type: Topic})),
		second(tbl.DeclareExchange(Exchange{Name: "h", Type: Headers})),
	}
	for i := range 40 {
		q := Destination{Kind: Queue, Name: fmt.Sprint("q", i)}
		steps = append(steps, second(tbl.AddDestination(q)),
			second(tbl.Bind(Binding{Source: "d", Destination: q, Key: fmt.Sprint("k", i%3)})),
			// 40 '#' nodes reached at once: the walk's active set uses its map.
			second(tbl.Bind(Binding{Source: "t", Destination: q, Key: fmt.Sprintf("a.%s#", stars(i%20))})),
			second(tbl.Bind(Binding{Source: "t", Destination: q, Key: fmt.Sprintf("a/%s#", pluses(i%20)), Syntax: SyntaxMQTT})),
			second(tbl.Bind(Binding{Source: "h", Destination: q, Args: []Field{{Key: "n", Value: IntValue(int64(i % 4))}}})))
		if i < 5 {
			steps = append(steps, second(tbl.Bind(Binding{Source: "f", Destination: q})))
		}
	}
	// 20 more exchanges behind f, so the route's seen set uses its map.
	for i := range 20 {
		name := fmt.Sprint("e", i)
		steps = append(steps, second(tbl.DeclareExchange(Exchange{Name: name, Type: Fanout})),
			second(tbl.Bind(Binding{Source: "f", Destination: Destination{Kind: ToExchange, Name: name}})),
			second(tbl.Bind(Binding{Source: name, Destination: Destination{Kind: Queue, Name: fmt.Sprint("q", i)}})))
	}
	for i, err := range steps {
		if err != nil {
			t.Fatalf("setup step %d: %v", i, err)
		}
	}
	headers := []Field{{Key: "z", Value: StringValue("x")}, {Key: "n", Value: IntValue(2)}}
	for _, c := range []struct {
		exchange, key string
		wantDests     int
	}{
		{"d", "k1", 13}, {"d", "zzz", 20}, {"f", "", 20}, {"t", "a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q.r.s.t.u.v", 40},
		{"t", "a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q/r/s/t/u/v", 40}, {"h", "", 10}, {"", "q7", 1},
	} {
		var res Result
		route := func() {
			if err := tbl.Route(&res, c.exchange, c.key, headers); err != nil {
				t.Fatal(err)
			}
		}
		route()
		if len(res.Destinations) != c.wantDests {
			t.Fatalf("route %q %q: got %d destinations %v, want %d", c.exchange, c.key, len(res.Destinations), res.Destinations, c.wantDests)
		}
		if allocs := testing.AllocsPerRun(100, route); allocs != 0 {
			t.Errorf("route %q %q: got %.1f allocations per route, want 0", c.exchange, c.key, allocs)
		}
	}
}

func stars(n int) string {
	s := ""
	for range n {
		s += "*."
	}
	return s
}

func pluses(n int) string {
	s := ""
	for range n {
		s += "+/"
	}
	return s
}

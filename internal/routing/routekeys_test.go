package routing

import (
	"slices"
	"testing"
)

// TestRouteKeysMatchesEveryKeyAndTheAlternateOnlyWhenNoneMatched: with
// several routing keys (RabbitMQ's CC and BCC) every exchange on the route
// matches each, through exchange-to-exchange bindings too, and its
// alternate applies only when no key matched there.
func TestRouteKeysMatchesEveryKeyAndTheAlternateOnlyWhenNoneMatched(t *testing.T) {
	tbl := NewTable("/")
	q := func(n string) Destination { return Destination{Kind: Queue, Name: n} }
	for _, err := range []error{
		second(tbl.DeclareExchange(Exchange{Name: "ae", Type: Fanout})),
		second(tbl.DeclareExchange(Exchange{Name: "d", Type: Direct, Args: []Field{{Key: "alternate-exchange", Value: StringValue("ae")}}})),
		second(tbl.DeclareExchange(Exchange{Name: "t", Type: Topic})),
		second(tbl.AddDestination(q("qa"))), second(tbl.AddDestination(q("qb"))),
		second(tbl.AddDestination(q("qt"))), second(tbl.AddDestination(q("caught"))),
		second(tbl.Bind(Binding{Source: "ae", Destination: q("caught")})),
		second(tbl.Bind(Binding{Source: "d", Destination: q("qa"), Key: "a"})),
		second(tbl.Bind(Binding{Source: "d", Destination: q("qb"), Key: "b"})),
		second(tbl.Bind(Binding{Source: "d", Destination: Destination{Kind: ToExchange, Name: "t"}, Key: "b"})),
		second(tbl.Bind(Binding{Source: "t", Destination: q("qt"), Key: "a"})),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	var res Result
	for _, c := range []struct {
		exchange string
		keys     []string
		want     []string
		via      bool
	}{
		{"d", []string{"a"}, []string{"qa"}, false},
		{"d", []string{"x", "a", "b"}, []string{"qa", "qb", "qt"}, false}, // t matches a, which reached it with b
		{"d", []string{"x", "y"}, []string{"caught"}, true},
		{"", []string{"qa", "nowhere", "qb"}, []string{"qa", "qb"}, false},
	} {
		if err := tbl.RouteKeys(&res, c.exchange, c.keys, nil); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, d := range res.Destinations {
			got = append(got, d.Name)
		}
		if !slices.Equal(got, c.want) || res.ViaAlternate != c.via {
			t.Errorf("%q %v: got %v via alternate %v, want %v %v", c.exchange, c.keys, got, res.ViaAlternate, c.want, c.via)
		}
	}
}

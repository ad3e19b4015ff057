package routing

import (
	"fmt"
	"testing"
)

// Benchmarks of Route on large tables. Run:
//
//	go test ./internal/routing -run '^$' -bench . -benchmem
//
// Route reuses one Result, as a publishing connection does, so allocs/op
// is the steady state (0). The size sub-benchmarks show that the cost of
// exact keys does not grow with the number of bindings.

var benchSizes = []int{1_000, 100_000}

func benchTable(b *testing.B, queues int) *Table {
	b.Helper()
	tbl := NewTable("/")
	for i := range queues {
		if _, err := tbl.AddDestination(Destination{Kind: Queue, Name: fmt.Sprint("q", i)}); err != nil {
			b.Fatal(err)
		}
	}
	return tbl
}

func mustBind(b *testing.B, tbl *Table, src, queue, key string, syntax Syntax) {
	b.Helper()
	if _, err := tbl.Bind(Binding{Source: src, Destination: Destination{Kind: Queue, Name: queue}, Key: key, Syntax: syntax}); err != nil {
		b.Fatal(err)
	}
}

func benchRoute(b *testing.B, tbl *Table, exchange, key string, wantDests int) {
	b.Helper()
	var res Result
	if err := tbl.Route(&res, exchange, key, nil); err != nil || len(res.Destinations) != wantDests {
		b.Fatalf("route %q: got %v (err %v), want %d destinations", key, res.Destinations, err, wantDests)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		_ = tbl.Route(&res, exchange, key, nil)
	}
}

// BenchmarkRouteDirect routes one exact key on a direct exchange holding
// n bindings (n distinct keys over 1,000 queues).
func BenchmarkRouteDirect(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("bindings=%d", n), func(b *testing.B) {
			tbl := benchTable(b, 1000)
			mustDeclare(b, tbl, "d", Direct)
			for i := range n {
				mustBind(b, tbl, "d", fmt.Sprint("q", i%1000), fmt.Sprint("order.", i), SyntaxAMQP)
			}
			benchRoute(b, tbl, "d", "order.421", 1)
		})
	}
}

// BenchmarkRouteTopic routes on a topic exchange holding n bindings: half
// exact keys, a quarter AMQP wildcard patterns (r<i>.*.orders,
// r<i>.#.audit, *.r<i>.#), a quarter MQTT filters (m<i>/+/x, m<i>/#).
// "exact" hits one exact binding; "wildcard" hits two wildcard bindings;
// both walk the trie for both syntaxes.
func BenchmarkRouteTopic(b *testing.B) {
	for _, n := range benchSizes {
		tbl := benchTable(b, 1000)
		mustDeclare(b, tbl, "t", Topic)
		for i := range n / 2 {
			mustBind(b, tbl, "t", fmt.Sprint("q", i%1000), fmt.Sprintf("region.r%d.orders", i), SyntaxAMQP)
		}
		for i := range n / 4 {
			q := fmt.Sprint("q", i%1000)
			switch i % 3 {
			case 0:
				mustBind(b, tbl, "t", q, fmt.Sprintf("r%d.*.orders", i), SyntaxAMQP)
			case 1:
				mustBind(b, tbl, "t", q, fmt.Sprintf("r%d.#.audit", i), SyntaxAMQP)
			default:
				mustBind(b, tbl, "t", q, fmt.Sprintf("*.r%d.#", i), SyntaxAMQP)
			}
			if i%2 == 0 {
				mustBind(b, tbl, "t", q, fmt.Sprintf("m%d/+/x", i), SyntaxMQTT)
			} else {
				mustBind(b, tbl, "t", q, fmt.Sprintf("m%d/#", i), SyntaxMQTT)
			}
		}
		b.Run(fmt.Sprintf("bindings=%d/exact", n), func(b *testing.B) {
			benchRoute(b, tbl, "t", "region.r321.orders", 1)
		})
		b.Run(fmt.Sprintf("bindings=%d/wildcard", n), func(b *testing.B) {
			// Matches r0.*.orders (q0) and *.r2.# (q2).
			benchRoute(b, tbl, "t", "r0.r2.orders", 2)
		})
	}
}

// BenchmarkRouteFanout routes on a fanout exchange bound to 10 queues.
func BenchmarkRouteFanout(b *testing.B) {
	tbl := benchTable(b, 10)
	mustDeclare(b, tbl, "f", Fanout)
	for i := range 10 {
		mustBind(b, tbl, "f", fmt.Sprint("q", i), "", SyntaxAMQP)
	}
	benchRoute(b, tbl, "f", "", 10)
}

// BenchmarkRouteHeaders routes on a headers exchange with 1,000 bindings
// (each x-match all on two headers): the cost is linear in bindings, as
// in RabbitMQ.
func BenchmarkRouteHeaders(b *testing.B) {
	tbl := benchTable(b, 1000)
	mustDeclare(b, tbl, "h", Headers)
	for i := range 1000 {
		_, err := tbl.Bind(Binding{Source: "h", Destination: Destination{Kind: Queue, Name: fmt.Sprint("q", i)},
			Args: []Field{{Key: "tenant", Value: IntValue(int64(i))}, {Key: "kind", Value: StringValue("invoice")}}})
		if err != nil {
			b.Fatal(err)
		}
	}
	headers := []Field{{Key: "kind", Value: StringValue("invoice")}, {Key: "tenant", Value: IntValue(77)}, {Key: "trace", Value: StringValue("abc")}}
	var res Result
	if err := tbl.Route(&res, "h", "", headers); err != nil || len(res.Destinations) != 1 {
		b.Fatalf("got %v (err %v), want one destination", res.Destinations, err)
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = tbl.Route(&res, "h", "", headers)
	}
}

// BenchmarkSnapshot encodes and decodes a table of 100,000 topic
// bindings (MB/s is snapshot bytes).
func BenchmarkSnapshot(b *testing.B) {
	tbl := benchTable(b, 1000)
	mustDeclare(b, tbl, "t", Topic)
	for i := range 100_000 {
		key := fmt.Sprintf("region.r%d.orders", i)
		if i%2 == 1 {
			key = fmt.Sprintf("r%d.*.orders", i)
		}
		mustBind(b, tbl, "t", fmt.Sprint("q", i%1000), key, SyntaxAMQP)
	}
	data, _ := tbl.MarshalBinary()
	b.Run("marshal", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			_, _ = tbl.MarshalBinary()
		}
	})
	b.Run("unmarshal", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			if err := NewTable("/").UnmarshalBinary(data); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func mustDeclare(b *testing.B, tbl *Table, name string, typ ExchangeType) {
	b.Helper()
	if _, err := tbl.DeclareExchange(Exchange{Name: name, Type: typ}); err != nil {
		b.Fatal(err)
	}
}

package routing

import (
	"encoding/binary"
	"flag"
	"fmt"
	"strings"
	"testing"

	"github.com/ferry-mq/ferry/internal/base"
)

// -long runs the limit tests at the real maxima (millions of entries,
// about a minute and a few GiB):
//
//	go test ./internal/routing -run Limit -args -long
var long = flag.Bool("long", false, "run the limit tests at the real maxima")

// The key, name, word and depth limits are tested at their edges in the
// stories: testdata/direct.txt and internal.txt (RoutingKeyBytesMax),
// exchanges.txt (RoutingNameBytesMax), topic_amqp.txt (TopicWordsMax),
// e2e.txt (RouteExchangeDepthMax).

func TestNewTableUsesTheBaseLimits(t *testing.T) {
	got, want := NewTable("/").limits, defaultLimits()
	if got != want || want.exchanges != base.RoutingExchangesMax || want.destinations != base.RoutingDestinationsMax ||
		want.bindingsPerExchange != base.ExchangeBindingsMax {
		t.Fatalf("table limits: got %+v, want the base maxima %+v", got, want)
	}
}

func TestExchangesLimitEdge(t *testing.T) {
	tbl := NewTable("/") // the real limit: 65,536 declares take milliseconds
	for i := len(builtinExchanges); i < base.RoutingExchangesMax; i++ {
		if _, err := tbl.DeclareExchange(Exchange{Name: fmt.Sprintf("x%d", i), Type: Fanout}); err != nil {
			t.Fatalf("declare %d of %d: %v", i, base.RoutingExchangesMax, err)
		}
	}
	_, err := tbl.DeclareExchange(Exchange{Name: "one-more", Type: Fanout})
	if got := base.CodeOf(err); got != base.CodeTooLarge {
		t.Fatalf("declare past RoutingExchangesMax: got %v (%v), want too_large", got, err)
	}
	if _, err := tbl.DeclareExchange(Exchange{Name: "x10", Type: Fanout}); err != nil {
		t.Fatalf("redeclaring at the limit: got %v, want success", err)
	}
	if _, err := tbl.DeleteExchange("x10", false); err != nil {
		t.Fatal(err)
	}
	if _, err := tbl.DeclareExchange(Exchange{Name: "one-more", Type: Fanout}); err != nil {
		t.Fatalf("declare after freeing a slot: got %v, want success", err)
	}
}

// capacityLimits returns the limits to test at: the real maxima with
// -long, small ones otherwise (the same code path; limits only lower).
func capacityLimits() limits {
	if *long {
		return defaultLimits()
	}
	return limits{exchanges: base.RoutingExchangesMax, destinations: 1000, bindingsPerExchange: 1000}
}

func TestBindingsPerExchangeLimitEdge(t *testing.T) {
	tbl := NewTable("/")
	tbl.limits = capacityLimits()
	n := tbl.limits.bindingsPerExchange
	mustOK(t, second(tbl.DeclareExchange(Exchange{Name: "d", Type: Direct})))
	mustOK(t, second(tbl.AddDestination(Destination{Kind: Queue, Name: "q"})))
	q := Destination{Kind: Queue, Name: "q"}
	for i := range n {
		if _, err := tbl.Bind(Binding{Source: "d", Destination: q, Key: fmt.Sprint(i)}); err != nil {
			t.Fatalf("bind %d of %d: %v", i, n, err)
		}
	}
	_, err := tbl.Bind(Binding{Source: "d", Destination: q, Key: "one-more"})
	if got := base.CodeOf(err); got != base.CodeTooLarge {
		t.Fatalf("bind past the limit: got %v (%v), want too_large", got, err)
	}
	if added, err := tbl.Bind(Binding{Source: "d", Destination: q, Key: "7"}); added || err != nil {
		t.Fatalf("rebinding at the limit: got added=%v err=%v, want an idempotent no-op", added, err)
	}
	// A snapshot of a full exchange restores; one over the limit does not.
	data, _ := tbl.MarshalBinary()
	restored := NewTable("/")
	restored.limits = tbl.limits
	mustOK(t, restored.UnmarshalBinary(data))
	restored.limits.bindingsPerExchange--
	if err := restored.UnmarshalBinary(data); base.CodeOf(err) != base.CodeCorrupt {
		t.Fatalf("restoring over the limit: got %v, want corrupt", err)
	}
}

func TestDestinationsLimitEdge(t *testing.T) {
	tbl := NewTable("/")
	tbl.limits = capacityLimits()
	n := tbl.limits.destinations
	for i := range n {
		if _, err := tbl.AddDestination(Destination{Kind: Queue, Name: fmt.Sprint("q", i)}); err != nil {
			t.Fatalf("add %d of %d: %v", i, n, err)
		}
	}
	_, err := tbl.AddDestination(Destination{Kind: Stream, Name: "one-more"})
	if got := base.CodeOf(err); got != base.CodeTooLarge {
		t.Fatalf("add past the limit: got %v (%v), want too_large", got, err)
	}
	if added, err := tbl.AddDestination(Destination{Kind: Queue, Name: "q0"}); added || err != nil {
		t.Fatalf("re-adding at the limit: got added=%v err=%v, want a no-op", added, err)
	}
}

func TestDestinationNameLimitEdge(t *testing.T) {
	tbl := NewTable("/")
	if _, err := tbl.AddDestination(Destination{Kind: Queue, Name: strings.Repeat("q", base.RoutingNameBytesMax)}); err != nil {
		t.Fatalf("a %d-byte name: got %v, want success", base.RoutingNameBytesMax, err)
	}
	_, err := tbl.AddDestination(Destination{Kind: Queue, Name: strings.Repeat("q", base.RoutingNameBytesMax+1)})
	if got := base.CodeOf(err); got != base.CodeInvalidArgument {
		t.Fatalf("a %d-byte name: got %v (%v), want invalid_argument", base.RoutingNameBytesMax+1, got, err)
	}
}

func TestArgsBytesLimitEdge(t *testing.T) {
	// One string field: key length (1) + key (1) + kind (1) + value length
	// (2 bytes of uvarint) + value.
	value := strings.Repeat("v", base.RoutingArgsBytesMax-5)
	at := []Field{{Key: "k", Value: StringValue(value)}}
	if n := encodedFieldBytes(at[0]); n != base.RoutingArgsBytesMax {
		t.Fatalf("test setup: field encodes to %d bytes, want %d", n, base.RoutingArgsBytesMax)
	}
	tbl := NewTable("/")
	mustOK(t, second(tbl.DeclareExchange(Exchange{Name: "h", Type: Headers})))
	mustOK(t, second(tbl.AddDestination(Destination{Kind: Queue, Name: "q"})))
	b := Binding{Source: "h", Destination: Destination{Kind: Queue, Name: "q"}, Args: at}
	if _, err := tbl.Bind(b); err != nil {
		t.Fatalf("args of exactly RoutingArgsBytesMax: got %v, want success", err)
	}
	b.Args = []Field{{Key: "k", Value: StringValue(value + "v")}}
	_, err := tbl.Bind(b)
	if got := base.CodeOf(err); got != base.CodeInvalidArgument {
		t.Fatalf("args one byte over: got %v (%v), want invalid_argument", got, err)
	}
	_, err = tbl.DeclareExchange(Exchange{Name: "big", Type: Fanout, Args: b.Args})
	if got := base.CodeOf(err); got != base.CodeInvalidArgument {
		t.Fatalf("exchange args one byte over: got %v (%v), want invalid_argument", got, err)
	}
	data, _ := tbl.MarshalBinary()
	mustOK(t, NewTable("/").UnmarshalBinary(data))
}

// TestUnmarshalRefusesCountsBeyondInput pins the decoder's allocation
// bound: a count or length that the remaining bytes cannot back is
// refused before anything is allocated for it.
func TestUnmarshalRefusesCountsBeyondInput(t *testing.T) {
	for name, body := range map[string][]byte{
		"exchange count": binary.AppendUvarint([]byte("FRRT\x01\x01/"), 1<<62),
		"vhost length":   binary.AppendUvarint([]byte("FRRT\x01"), 1<<40),
		"args length":    binary.AppendUvarint([]byte("FRRT\x01\x01/\x01\x01x\x02\x00"), 1<<40),
	} {
		input := withCRC(body)
		tbl := NewTable("/")
		var err error
		allocs := testing.AllocsPerRun(10, func() { err = tbl.UnmarshalBinary(input) })
		if base.CodeOf(err) != base.CodeCorrupt {
			t.Errorf("%s: got %v, want corrupt", name, err)
		}
		if allocs > 100 {
			t.Errorf("%s: decoding %d bytes made %.0f allocations, want a handful", name, len(input), allocs)
		}
	}
}

func TestUnmarshalRefusesDamage(t *testing.T) {
	good, _ := richTable(t).MarshalBinary()
	for i := range good {
		bad := []byte(string(good))
		bad[i] ^= 0x40
		if err := NewTable("/").UnmarshalBinary(bad); base.CodeOf(err) != base.CodeCorrupt {
			t.Fatalf("byte %d flipped: got %v, want corrupt", i, err)
		}
	}
	for n := range len(good) {
		if err := NewTable("/").UnmarshalBinary(good[:n]); base.CodeOf(err) != base.CodeCorrupt {
			t.Fatalf("truncated to %d bytes: got %v, want corrupt", n, err)
		}
	}
}

func TestVHostNameLimitEdge(t *testing.T) {
	name := strings.Repeat("v", base.RoutingNameBytesMax)
	data, _ := NewTable(name).MarshalBinary()
	restored := NewTable("/")
	if err := restored.UnmarshalBinary(data); err != nil || restored.VHost() != name {
		t.Fatalf("a %d-byte vhost: got %q, %v; want it restored", len(name), restored.VHost(), err)
	}
	defer func() {
		if r := recover(); r == nil {
			t.Fatalf("NewTable with a %d-byte vhost: no panic, want a BUG panic", len(name)+1)
		}
	}()
	NewTable(name + "v")
}

package routing

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"testing"

	"github.com/ferry-mq/ferry/internal/base"
)

// richTable builds a table using every feature the snapshot encodes.
func richTable(t testing.TB) *Table {
	tbl := NewTable("/prod")
	steps := []error{
		second(tbl.DeclareExchange(Exchange{Name: "logs", Type: Topic, Durable: true,
			Args: []Field{{Key: "alternate-exchange", Value: StringValue("spill")}, {Key: "x-n", Value: IntValue(-7)}}})),
		second(tbl.DeclareExchange(Exchange{Name: "spill", Type: Fanout, Internal: true})),
		second(tbl.DeclareExchange(Exchange{Name: "h", Type: Headers, AutoDelete: true})),
		second(tbl.DeclareExchange(Exchange{Name: "d", Type: Direct})),
		second(tbl.AddDestination(Destination{Kind: Queue, Name: "q1"})),
		second(tbl.AddDestination(Destination{Kind: Stream, Name: "s1"})),
		second(tbl.Bind(Binding{Source: "logs", Destination: Destination{Kind: Queue, Name: "q1"}, Key: "app.*.error"})),
		second(tbl.Bind(Binding{Source: "logs", Destination: Destination{Kind: Stream, Name: "s1"}, Key: "app/#", Syntax: SyntaxMQTT})),
		second(tbl.Bind(Binding{Source: "logs", Destination: Destination{Kind: ToExchange, Name: "h"}, Key: "#"})),
		second(tbl.Bind(Binding{Source: "d", Destination: Destination{Kind: Queue, Name: "q1"}, Key: "k"})),
		second(tbl.Bind(Binding{Source: "spill", Destination: Destination{Kind: Stream, Name: "s1"}})),
		second(tbl.Bind(Binding{Source: "h", Destination: Destination{Kind: Queue, Name: "q1"}, Args: []Field{
			{Key: "x-match", Value: StringValue("any-with-x")}, {Key: "b", Value: BoolValue(true)},
			{Key: "f", Value: FloatValue(2.5)}, {Key: "raw", Value: BytesValue([]byte{0, 255})}, {Key: "v", Value: VoidValue()},
			{Key: "whole", Value: EncodedValue([]byte{0x0f, 0x01, 0x01, 0x61, 0x0b, 0x02})},
		}})),
	}
	for i, err := range steps {
		if err != nil {
			t.Fatalf("building the rich table, step %d: %v", i, err)
		}
	}
	return tbl
}

func second[T any](_ T, err error) error { return err }

// withCRC returns body followed by its CRC-32C, as the snapshot ends.
func withCRC(body []byte) []byte {
	return binary.LittleEndian.AppendUint32(bytes.Clone(body), crc32.Checksum(body, castagnoli))
}

// FuzzUnmarshalBinary feeds the snapshot decoder arbitrary bytes, both as
// they come and with a valid checksum appended (so the fuzzer gets past
// the CRC). The decoder must not panic, must leave the table unchanged on
// error, and anything it accepts must re-encode to the same bytes.
//
//	go test ./internal/routing -run '^$' -fuzz FuzzUnmarshalBinary -fuzztime 60s
func FuzzUnmarshalBinary(f *testing.F) {
	rich, _ := richTable(f).MarshalBinary()
	empty, _ := NewTable("/").MarshalBinary()
	f.Add(rich)
	f.Add(rich[:len(rich)-4])
	f.Add(empty)
	f.Add(empty[:len(empty)-4])
	f.Add([]byte("FRRT\x01\x01/\xff\xff\xff\xff\x0f"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, input := range [][]byte{data, withCRC(data)} {
			tbl := richTable(t)
			before, _ := tbl.MarshalBinary()
			err := tbl.UnmarshalBinary(input)
			after, _ := tbl.MarshalBinary()
			if err != nil {
				if base.CodeOf(err) != base.CodeCorrupt {
					t.Fatalf("decode error %v has code %v, want corrupt", err, base.CodeOf(err))
				}
				if !bytes.Equal(after, before) {
					t.Fatalf("failed decode changed the table")
				}
				continue
			}
			if !bytes.Equal(after, input) {
				t.Fatalf("accepted input re-encodes differently:\n got %x\nwant %x", after, input)
			}
			tbl.checkInvariants()
		}
	})
}

// FuzzTopicPattern checks pattern parsing and topic matching against the
// naive matchers: a pattern is bound in each syntax where it is valid,
// and a route of key must reach exactly the queues whose naive matcher
// accepts it.
//
//	go test ./internal/routing -run '^$' -fuzz FuzzTopicPattern -fuzztime 60s
func FuzzTopicPattern(f *testing.F) {
	for _, seed := range [][2]string{
		{"a.*.b", "a.x.b"}, {"a.#", "a"}, {"#.#", ""}, {"a.#.b", "a.b"}, {"*.*", "."},
		{"sport/#", "sport"}, {"+/x", "$SYS/x"}, {"#", "$SYS"}, {"a/+/#", "a//"}, {"sport/+x", "sport/+x"},
		{"#.a.#.b.#", "a.b.a.b"}, {"a*.b", "a*.b"}, {"", ""}, {"a/#/b", "a/x/b"}, {"\x00", "\x00"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, pattern, key string) {
		mqttErr := ValidateTopicPattern(SyntaxMQTT, pattern)
		amqpErr := ValidateTopicPattern(SyntaxAMQP, pattern)
		fits := len(pattern) <= base.RoutingKeyBytesMax
		if (amqpErr == nil) != fits || (mqttErr == nil) != (fits && modelValidFilter(pattern)) {
			t.Fatalf("pattern %q: got amqp %v, mqtt %v; want valid amqp=%v mqtt=%v",
				pattern, amqpErr, mqttErr, fits, fits && modelValidFilter(pattern))
		}
		for _, err := range []error{amqpErr, mqttErr} {
			if err != nil && base.CodeOf(err) != base.CodeInvalidArgument {
				t.Fatalf("pattern %q: error %v has code %v", pattern, err, base.CodeOf(err))
			}
		}
		if amqpErr != nil || len(key) > base.RoutingKeyBytesMax {
			return
		}
		tbl := NewTable("/")
		mustOK(t, second(tbl.DeclareExchange(Exchange{Name: "t", Type: Topic})))
		for _, q := range []string{"amqp", "mqtt"} {
			mustOK(t, second(tbl.AddDestination(Destination{Kind: Queue, Name: q})))
		}
		mustOK(t, second(tbl.Bind(Binding{Source: "t", Destination: Destination{Kind: Queue, Name: "amqp"}, Key: pattern})))
		if mqttErr == nil {
			mustOK(t, second(tbl.Bind(Binding{Source: "t", Destination: Destination{Kind: Queue, Name: "mqtt"}, Key: pattern, Syntax: SyntaxMQTT})))
		}
		var res Result
		mustOK(t, tbl.Route(&res, "t", key, nil))
		gotAMQP, gotMQTT := false, false
		for _, d := range res.Destinations {
			gotAMQP = gotAMQP || d.Name == "amqp"
			gotMQTT = gotMQTT || d.Name == "mqtt"
		}
		wantAMQP := modelAMQPMatch(modelWords(pattern), modelWords(key))
		wantMQTT := mqttErr == nil && modelMQTTMatch(pattern, key)
		if gotAMQP != wantAMQP || gotMQTT != wantMQTT {
			t.Fatalf("pattern %q key %q: got amqp=%v mqtt=%v, want amqp=%v mqtt=%v", pattern, key, gotAMQP, gotMQTT, wantAMQP, wantMQTT)
		}
	})
}

func mustOK(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

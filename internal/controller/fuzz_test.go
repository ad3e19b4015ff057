package controller

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"runtime"
	"testing"

	"github.com/ferry-mq/ferry/internal/auth"
	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/queue"
	"github.com/ferry-mq/ferry/internal/routing"
)

// sampleCommands holds one command of every kind, with every field set,
// as seeds and for the round-trip test.
func sampleCommands(t testing.TB) []Command {
	cr := testCredentials(t, "pw")
	args := []routing.Field{
		{Key: "x-max-length", Value: routing.IntValue(10)}, {Key: "x-b", Value: routing.BoolValue(true)},
		{Key: "x-f", Value: routing.FloatValue(1.5)}, {Key: "x-s", Value: routing.StringValue("s")},
		{Key: "x-raw", Value: routing.BytesValue([]byte{0, 255})}, {Key: "x-v", Value: routing.VoidValue()},
		{Key: "x-whole", Value: routing.EncodedValue([]byte{0x0f, 0x01, 0x01, 0x61, 0x0b, 0x02})},
	}
	b := routing.Binding{Source: "x", Destination: routing.Destination{Kind: routing.Queue, Name: "q"}, Key: "a/#",
		Syntax: routing.SyntaxMQTT, Args: args[:2]}
	return []Command{
		&Bootstrap{Now: 1, Nodes: []Node{{ID: 1, Addr: "n1:7946"}, {ID: 2, Addr: "n2:7946", State: NodeDown}},
			CoordinatorGroups: 2, Guest: &cr, ClusterID: "AAECAwQFBgcICQoLDA0ODw"},
		&Bootstrap{Now: 1, Nodes: []Node{{ID: 1, Addr: "n1:7946"}}},
		&RegisterNode{Now: 2, ID: 3, Addr: "n3:7946"},
		&SetNodeState{Now: 3, ID: 3, State: NodeDraining},
		&CreateTenant{Now: 4, Name: "prod"},
		&DeleteTenant{Now: 5, Name: "prod"},
		&PutUser{Now: 6, Name: "alice", Credentials: cr, Tags: []auth.Tag{auth.TagAdministrator, "custom"}},
		&DeleteUser{Now: 7, Name: "alice"},
		&SetPermission{Now: 8, User: "alice", Permission: auth.Permission{Tenant: "/", Configure: ".*", Write: "^a", Read: ""}},
		&ClearPermission{Now: 9, User: "alice", Tenant: "/"},
		&PutPolicy{Now: 10, Policy: auth.Policy{Name: "p", Tenant: "/", Pattern: "^q", ApplyTo: auth.ApplyQueues, Priority: -3,
			Definition: map[string]auth.Value{"max-length": auth.Int(5), "overflow": auth.Str("reject-publish")}}},
		&DeletePolicy{Now: 11, Tenant: "/", Name: "p"},
		&DeclareExchange{Now: 12, Tenant: "/", Exchange: routing.Exchange{Name: "x", Type: routing.Topic, Durable: true,
			AutoDelete: true, Internal: true, Args: args[3:4]}},
		&DeleteExchange{Now: 13, Tenant: "/", Name: "x", IfUnused: true},
		&Bind{Now: 14, Tenant: "/", Binding: b, Owner: "c1"},
		&Unbind{Now: 15, Tenant: "/", Binding: b, Owner: "c1"},
		&DeclareQueue{Now: 16, Tenant: "/", Name: "q", ServerNamed: true, Durable: true, Exclusive: true, Owner: "c1", Node: 3,
			AutoDelete: true, Args: args},
		&DeleteQueue{Now: 17, Tenant: "/", Name: "q", Owner: "c1", Group: 7, Reason: DeleteExpired},
		&ConnectionClosed{Now: 18, Owner: "c1"},
		&DeclareStream{Now: 19, Tenant: "/", Name: "s", Partitions: 3, ReplicationFactor: -1,
			Args: []routing.Field{{Key: "retention.ms", Value: routing.StringValue("1000")}}},
		&AddPartitions{Now: 20, Tenant: "/", Name: "s", Total: 5},
		&AlterStream{Now: 21, Tenant: "/", Name: "s", Args: []routing.Field{{Key: "retention.bytes", Value: routing.StringValue("-1")}}},
		&DeleteStream{Now: -22, Tenant: "/", Name: "s"},
	}
}

func TestEveryCommandKindRoundTrips(t *testing.T) {
	seen := map[cmdKind]bool{}
	for _, cmd := range sampleCommands(t) {
		data, err := Encode(cmd)
		if err != nil {
			t.Fatalf("Encode(%T): %v", cmd, err)
		}
		got, err := Decode(data)
		if err != nil {
			t.Fatalf("Decode(Encode(%T)): %v", cmd, err)
		}
		again, _ := Encode(got)
		if !bytes.Equal(again, data) {
			t.Fatalf("%T does not round-trip:\n got %x\nwant %x", cmd, again, data)
		}
		if got.kind() != cmd.kind() || got.now() != cmd.now() {
			t.Fatalf("%T decoded as kind %d at %d", cmd, got.kind(), got.now())
		}
		seen[cmd.kind()] = true
	}
	for k := kindBootstrap; k <= kindMax; k++ {
		if !seen[k] {
			t.Errorf("command kind %d has no sample", k)
		}
	}
}

// fuzzController returns a bootstrapped controller holding a little of
// everything, for commands to act on.
func fuzzController(t testing.TB) *Controller {
	c := New(Options{})
	cr := testCredentials(t, "pw")
	for _, cmd := range []Command{
		&Bootstrap{Now: 1, Nodes: []Node{{ID: 1, Addr: "n1:7946"}, {ID: 2, Addr: "n2:7946"}}, Guest: &cr, ClusterID: "fuzz-cluster"},
		&CreateTenant{Now: 2, Name: "prod"},
		&DeclareExchange{Now: 3, Tenant: "/", Exchange: routing.Exchange{Name: "x", Type: routing.Topic, AutoDelete: true}},
		&DeclareQueue{Now: 4, Tenant: "/", Name: "q", Exclusive: true, Owner: "c1",
			Args: []routing.Field{{Key: "x-max-length", Value: routing.IntValue(3)}, {Key: "x-unknown", Value: routing.FloatValue(2)}}},
		&DeclareQueue{Now: 5, Tenant: "/", Name: "st", Durable: true, Args: []routing.Field{{Key: "x-queue-type", Value: routing.StringValue("stream")}}},
		&DeclareStream{Now: 6, Tenant: "prod", Name: "s", Partitions: 2,
			Args: []routing.Field{{Key: "retention.ms", Value: routing.StringValue("60000")}}},
		&Bind{Now: 7, Tenant: "/", Binding: routing.Binding{Source: "x", Destination: routing.Destination{Kind: routing.Queue, Name: "q"},
			Key: "a.*"}, Owner: "c1"},
		&SetPermission{Now: 8, User: "guest", Permission: auth.Permission{Tenant: "prod", Configure: "^p", Read: ".*"}},
		&PutPolicy{Now: 9, Policy: auth.Policy{Name: "p", Tenant: "prod", Pattern: ".*", ApplyTo: auth.ApplyStreams,
			Definition: map[string]auth.Value{"max-age": auth.Str("1h")}}},
	} {
		mustApply(t, c, cmd)
	}
	return c
}

// FuzzDecode feeds the command decoder arbitrary bytes. It must not panic;
// what it refuses is CodeCorrupt; what it accepts re-encodes to the same
// bytes and applies to a live controller without panicking (Apply checks
// everything a decoded command may carry), leaving the state unchanged
// when refused.
//
//	go test ./internal/controller -run '^$' -fuzz FuzzDecode -fuzztime 60s
func FuzzDecode(f *testing.F) {
	for _, cmd := range sampleCommands(f) {
		data, err := Encode(cmd)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte{commandVersion, byte(kindDeclareQueue), 0, 1, '/', 1, 'q', 0x0f, 0, 0xff, 0xff, 0x03})
	snap := fuzzController(f).Snapshot()
	f.Fuzz(func(t *testing.T, data []byte) {
		cmd, err := Decode(data)
		if err != nil {
			if base.CodeOf(err) != base.CodeCorrupt {
				t.Fatalf("decode error %v has code %v, want corrupt", err, base.CodeOf(err))
			}
			return
		}
		again, err := Encode(cmd)
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("accepted input re-encodes differently (%v):\n got %x\nwant %x", err, again, data)
		}
		c := New(Options{})
		if err := c.Restore(snap); err != nil {
			t.Fatal(err)
		}
		if r := c.Apply(cmd); r.Err != nil && !bytes.Equal(c.Snapshot(), snap) {
			t.Fatalf("a refused %T (%v) changed the state", cmd, r.Err)
		}
		c.checkInvariants()
	})
}

// fixCRC returns body followed by its CRC-32C, as a snapshot ends.
func fixCRC(body []byte) []byte {
	return binary.LittleEndian.AppendUint32(bytes.Clone(body), crc32.Checksum(body, castagnoli))
}

// FuzzRestore feeds the snapshot decoder arbitrary bytes, as they come
// and with a valid checksum appended (so the fuzzer gets past the CRC).
// It must not panic, must leave the controller unchanged on error, and
// what it accepts must snapshot to the same bytes and satisfy the
// invariants.
//
//	go test ./internal/controller -run '^$' -fuzz FuzzRestore -fuzztime 60s
func FuzzRestore(f *testing.F) {
	rich := fuzzController(f).Snapshot()
	empty := New(Options{}).Snapshot()
	f.Add(rich)
	f.Add(rich[:len(rich)-4])
	f.Add(empty)
	f.Add(empty[:len(empty)-4])
	f.Add([]byte("FRCT\x01\x01\x02\x02\xff\xff\xff\xff\x0f"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, input := range [][]byte{data, fixCRC(data)} {
			c := New(Options{})
			if err := c.Restore(rich); err != nil {
				t.Fatal(err)
			}
			before := c.Snapshot()
			err := c.Restore(input)
			if err != nil {
				if base.CodeOf(err) != base.CodeCorrupt {
					t.Fatalf("restore error %v has code %v, want corrupt", err, base.CodeOf(err))
				}
				if !bytes.Equal(c.Snapshot(), before) {
					t.Fatalf("a failed restore changed the state")
				}
				continue
			}
			if !bytes.Equal(c.Snapshot(), input) {
				t.Fatalf("accepted snapshot re-encodes differently")
			}
			c.checkInvariants()
		}
	})
}

// allocatedBy returns the bytes f allocates (single goroutine).
func allocatedBy(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestDecodersDoNotAllocateForClaims checks that counts and lengths a
// hostile input claims cost nothing before the bytes backing them are
// seen: a command or snapshot claiming billions of entries is refused
// having allocated a few KiB.
func TestDecodersDoNotAllocateForClaims(t *testing.T) {
	huge := binary.AppendUvarint(nil, 1<<40)
	cases := map[string]func() error{
		"command fields": func() error {
			cmd := append([]byte{commandVersion, byte(kindAlterStream), 2, 1, '/', 1, 's'}, huge...)
			_, err := Decode(cmd)
			return err
		},
		"command string": func() error {
			_, err := Decode(append([]byte{commandVersion, byte(kindCreateTenant), 2}, huge...))
			return err
		},
		"snapshot tenants": func() error {
			body := append([]byte("FRCT\x01\x01\x02\x02"), 0) // no nodes
			body = append(body, 0)                            // no coordinators
			body = append(body, huge...)
			return New(Options{}).Restore(fixCRC(body))
		},
	}
	for name, decode := range cases {
		var err error
		n := allocatedBy(func() { err = decode() })
		if base.CodeOf(err) != base.CodeCorrupt {
			t.Errorf("%s: got %v, want corrupt", name, err)
		}
		if n > 64<<10 {
			t.Errorf("%s: allocated %d bytes for a claim, want at most 64 KiB", name, n)
		}
	}
}

// TestDecodeAllocationIsLinear checks that the largest command the
// decoder accepts, a table of ControllerArgsFieldsMax minimal fields,
// costs a bounded multiple of its size.
func TestDecodeAllocationIsLinear(t *testing.T) {
	args := make([]routing.Field, base.ControllerArgsFieldsMax)
	for i := range args {
		args[i] = routing.Field{Key: string(rune('a' + i%26)), Value: routing.VoidValue()}
	}
	data, err := Encode(&AlterStream{Tenant: "/", Name: "s", Args: args})
	if err != nil {
		t.Fatal(err)
	}
	n := allocatedBy(func() {
		if _, err := Decode(data); err != nil {
			t.Error(err)
		}
	})
	if max := uint64(64 * len(data)); n > max {
		t.Fatalf("decoding %d bytes allocated %d, want at most %d", len(data), n, max)
	}
}

// FuzzParseDeadLetterTarget: the broker parses the dead-letter target a
// queue hands back; the parser must not panic and what it accepts must
// format back to the same string.
//
//	go test ./internal/controller -run '^$' -fuzz FuzzParseDeadLetterTarget -fuzztime 30s
func FuzzParseDeadLetterTarget(f *testing.F) {
	for _, s := range []string{"", `dlx ""`, `dlx "x"`, `dlx "x" "k"`, `dlx "\x00" ""`, `dlx "a" "b" "c"`, `dlx 'a'`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDeadLetterTarget(s)
		if err != nil {
			return
		}
		if again, err2 := ParseDeadLetterTarget(FormatDeadLetterTarget(d)); err2 != nil || again != d {
			t.Fatalf("%q parses to %+v, which does not survive formatting: %+v, %v", s, d, again, err2)
		}
	})
}

// FuzzParseRetryReasons: x-ferry-retry-reasons comes from clients. The
// parser must not panic, and what it accepts must be a retry policy the
// queue accepts (sorted, unique, bounded).
//
//	go test ./internal/controller -run '^$' -fuzz FuzzParseRetryReasons -fuzztime 30s
func FuzzParseRetryReasons(f *testing.F) {
	for _, s := range []string{"a=none", "poison=dead-letter;ack-timeout=exponential/1000/60000/jitter", "a=fixed;a=none",
		"=none", "a=", "a=fixed/1/2/3", "b=fixed/18446744073709551615"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		reasons, err := parseRetryReasons(s)
		if err != nil {
			return
		}
		cfg := queue.DefaultConfig()
		cfg.Retry.Reasons = reasons
		if err := cfg.Validate(); err != nil {
			t.Fatalf("%q parses to reasons the queue refuses: %v", s, err)
		}
	})
}

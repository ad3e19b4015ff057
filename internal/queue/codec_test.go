package queue

import (
	"bytes"
	"encoding/binary"
	"reflect"
	"strings"
	"testing"

	"github.com/ferry-mq/ferry/internal/base"
)

// sampleCommands has one command of every kind, with every field set.
func sampleCommands() []Command {
	cfg := DefaultConfig()
	cfg.MaxLength, cfg.MaxLengthBytes, cfg.Overflow = 10, 1000, OverflowRejectPublishDLX
	cfg.MessageTTLms, cfg.ExpiresMs, cfg.DeadLetterTarget, cfg.SingleActiveConsumer = 500, 9000, "dlx/rk", true
	cfg.Retry = RetryPolicy{DeliveryLimit: 5, Default: Schedule{Kind: BackoffFixed, DelayMs: 100},
		Reasons: []ReasonSchedule{{"poison", Schedule{Kind: BackoffDeadLetter}}, {"transient", Schedule{Kind: BackoffExponential, DelayMs: 10, MaxDelayMs: 1000, Jitter: true}}}}
	c := ConsumerID{Owner: "node1/conn7", Name: "ch3/ctag-1"}
	return []Command{
		&Enqueue{Now: 1_700_000_000_000, Messages: []Message{
			{Ref: Ref{Index: 42, Slot: 0}, Bytes: 512, Priority: 3, TTLms: 60_000, NotBeforeMs: 1_700_000_005_000,
				DedupeID: "d-1", OrderingKey: "customer-9", MessageID: "m-1"},
			{Ref: Ref{Index: 42, Slot: 1}},
		}},
		&Subscribe{Now: 5, Consumer: c, PrefetchCount: 100, PrefetchBytes: 1 << 20, Priority: -3, Exclusive: true, Tag: "ctag-1"},
		&Cancel{Now: 6, Consumer: c},
		&ConsumerDown{Now: 7, Owner: "node1/conn7"},
		&Get{Now: 8, Consumer: c, AutoAck: true},
		&Settle{Now: 9, Consumer: c, DeliveryIDs: []uint64{1, 5, 1 << 40}},
		&Settle{Now: 9, Consumer: c, UpTo: 77},
		&Return{Now: 10, Consumer: c, DeliveryIDs: []uint64{3}, Requeue: true, Reason: "transient"},
		&Recover{Now: 11, Consumer: c},
		&Tick{Now: 12},
		&Touch{Now: 13},
		&DeadLetterDone{Now: 14, Refs: []Ref{{Index: 1, Slot: 2}, {Index: 1 << 50, Slot: 1<<32 - 1}}},
		&Purge{Now: 15},
		&Delete{Now: 16, IfUnused: true, IfEmpty: true},
		&Configure{Now: 17, Config: cfg},
		&Relocate{Now: 18, Cutoff: 40, Refs: []Ref{{Index: 3, Slot: 0}, {Index: 39, Slot: 7}}},
	}
}

func TestEncodeDecodeRoundTripsEveryCommand(t *testing.T) {
	for _, cmd := range sampleCommands() {
		b, err := Encode(nil, cmd)
		if err != nil {
			t.Fatalf("Encode(%T): %v", cmd, err)
		}
		got, err := Decode(b)
		if err != nil {
			t.Fatalf("Decode(%T): %v", cmd, err)
		}
		if !reflect.DeepEqual(got, cmd) {
			t.Errorf("round trip of %T:\ngot  %+v\nwant %+v", cmd, got, cmd)
		}
		again, _ := Encode(nil, got)
		if !bytes.Equal(again, b) {
			t.Errorf("%T: re-encoding differs", cmd)
		}
	}
}

func TestDecodeRefusesNonCanonicalAndTruncatedInput(t *testing.T) {
	tick, _ := Encode(nil, &Tick{Now: 1})
	cases := map[string][]byte{
		"empty":             nil,
		"unknown kind":      {99, 0},
		"kind zero":         {0, 0},
		"trailing byte":     append(append([]byte{}, tick...), 0),
		"non-minimal now":   {byte(kindTick), 0x82, 0x00},
		"overlong varint":   {byte(kindTick), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
		"bad boolean":       {byte(kindGet), 0, 0, 0, 2},
		"truncated string":  {byte(kindConsumerDown), 0, 5, 'a'},
		"huge string":       binary.AppendUvarint([]byte{byte(kindConsumerDown), 0}, base.QueueFieldBytesMax+1),
		"count over bytes":  binary.AppendUvarint([]byte{byte(kindEnqueue), 0}, 1000),
		"ids over limit":    binary.AppendUvarint([]byte{byte(kindSettle), 0, 0, 0}, base.QueueSettleIDsMax+1),
		"slot over 32 bits": binary.AppendUvarint([]byte{byte(kindDeadLetterDone), 0, 1, 1}, 1<<32),
	}
	for name, b := range cases {
		if _, err := Decode(b); base.CodeOf(err) != base.CodeCorrupt {
			t.Errorf("%s: Decode(%x) error %v, want code corrupt", name, b, err)
		}
	}
}

// TestDecodeAcceptsListsAtTheirLimit and one past: the edge of
// QueueSettleIDsMax in the decoder and the encoder.
func TestSettleIDsAtTheirLimit(t *testing.T) {
	ids := make([]uint64, base.QueueSettleIDsMax)
	for i := range ids {
		ids[i] = uint64(i + 1)
	}
	b, err := Encode(nil, &Settle{Consumer: ConsumerID{Name: "c"}, DeliveryIDs: ids})
	if err != nil {
		t.Fatalf("Encode at the limit: %v", err)
	}
	if _, err := Decode(b); err != nil {
		t.Fatalf("Decode at the limit: %v", err)
	}
	if _, err := Encode(nil, &Settle{Consumer: ConsumerID{Name: "c"}, DeliveryIDs: append(ids, 1)}); base.CodeOf(err) != base.CodeInvalidArgument {
		t.Fatalf("Encode one past the limit: got %v, want invalid_argument", err)
	}
	if _, err := Encode(nil, &DeadLetterDone{Refs: make([]Ref, base.QueueSettleIDsMax+1)}); base.CodeOf(err) != base.CodeInvalidArgument {
		t.Fatalf("Encode refs past the limit: got %v, want invalid_argument", err)
	}
}

func TestEncodeRefusesStringsOverTheFieldLimit(t *testing.T) {
	atLimit := strings.Repeat("x", base.QueueFieldBytesMax)
	b, err := Encode(nil, &ConsumerDown{Owner: atLimit})
	if err != nil {
		t.Fatalf("Encode at the limit: %v", err)
	}
	if c, err := Decode(b); err != nil || c.(*ConsumerDown).Owner != atLimit {
		t.Fatalf("Decode at the limit: %v", err)
	}
	if _, err := Encode(nil, &ConsumerDown{Owner: atLimit + "x"}); base.CodeOf(err) != base.CodeInvalidArgument {
		t.Fatalf("Encode past the limit: got %v, want invalid_argument", err)
	}
}

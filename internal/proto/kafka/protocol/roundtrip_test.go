package protocol

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"testing"
)

// codec is what every generated top-level type has, API message or data
// record.
type codec interface {
	Encode(dst []byte, version int16) []byte
	Decode(src []byte, version int16) error
	Validate(version int16) error
	Default()
}

// dataRecords are the definitions' "data" messages, which no API key
// reaches.
var dataRecords = []func() codec{
	func() codec { return new(ConsumerProtocolAssignment) },
	func() codec { return new(ConsumerProtocolSubscription) },
	func() codec { return new(DefaultPrincipalData) },
	func() codec { return new(KRaftVersionRecord) },
	func() codec { return new(LeaderChangeMessage) },
	func() codec { return new(SnapshotFooterRecord) },
	func() codec { return new(SnapshotHeaderRecord) },
	func() codec { return new(VotersRecord) },
}

// everyCodec returns a constructor for every generated top-level type.
func everyCodec() map[string]func() codec {
	out := map[string]func() codec{}
	for _, api := range APIs() {
		out[api.Name+"Request"] = func() codec { r, _ := NewRequest(api.Key); return r }
		out[api.Name+"Response"] = func() codec { r, _ := NewResponse(api.Key); return r }
	}
	for _, mk := range dataRecords {
		out[reflect.TypeOf(mk()).Elem().Name()] = mk
	}
	return out
}

// versionsOf finds the versions a type supports through Validate, which
// refuses the others with ErrUnsupportedVersion.
func versionsOf(c codec) []int16 {
	var vs []int16
	for v := int16(0); v < 64; v++ {
		if err := c.Validate(v); !errors.Is(err, ErrUnsupportedVersion) {
			vs = append(vs, v)
		}
	}
	return vs
}

// TestRoundTripEveryTypeAndVersion covers what the kmsg differential
// cannot: every version of every type, data records included. A random
// message must encode, decode, validate at its version, and re-encode to
// the same bytes; its default must validate at every version.
func TestRoundTripEveryTypeAndVersion(t *testing.T) {
	seeds := 4
	if *long {
		seeds = 100
	}
	pairs := 0
	for name, mk := range everyCodec() {
		versions := versionsOf(mk())
		if len(versions) == 0 {
			t.Errorf("%s: no supported version", name)
		}
		for _, v := range versions {
			def := mk()
			def.Default()
			if err := def.Validate(v); err != nil {
				t.Errorf("%s v%d: the default does not validate: %v", name, v, err)
			}
			for seed := range seeds {
				if err := roundTrip(mk, v, uint64(seed)<<16|uint64(v)); err != nil {
					t.Errorf("%s v%d seed %d: %v", name, v, seed, err)
					break
				}
			}
			pairs++
		}
	}
	t.Logf("round trips: %d type/version pairs", pairs)
}

func roundTrip(mk func() codec, version int16, seed uint64) error {
	m := mk()
	newFiller(seed).fillMessage(m)
	enc := m.Encode(nil, version)
	back := mk()
	if err := back.Decode(enc, version); err != nil {
		return fmt.Errorf("decoding our own %d bytes: %w", len(enc), err)
	}
	if err := back.Validate(version); err != nil {
		return fmt.Errorf("a decoded message does not validate: %w", err)
	}
	if again := back.Encode(nil, version); !bytes.Equal(again, enc) {
		return fmt.Errorf("re-encoding differs at byte %d", firstDiff(again, enc))
	}
	// Decoding into a used message must give the same result as into a
	// fresh one: Decode replaces, it does not merge.
	if err := m.Decode(enc, version); err != nil || !reflect.DeepEqual(m, back) {
		return fmt.Errorf("decoding into a filled message: %v, equal to a fresh decode: %v", err, reflect.DeepEqual(m, back))
	}
	return nil
}

package protocol

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"reflect"
	"testing"
)

// Fuzz targets. Run one with, for example:
//
//	go test ./internal/proto/kafka/protocol -run '^$' -fuzz FuzzDecode -fuzztime 5m
//
// Their seeds (f.Add below, and testdata/fuzz/<target>/) run as ordinary
// tests.

// fuzzHeaderBytes prefixes every FuzzDecode input: API key (int16), version
// (int8) and kind (even: request, odd: response). The fuzzer mutates them
// like the body, so every decoder, every version and also unknown keys and
// versions are reachable from one target.
const fuzzHeaderBytes = 4

func fuzzInput(key APIKey, version int16, isReq bool, body []byte) []byte {
	kind := byte(1)
	if isReq {
		kind = 0
	}
	in := binary.BigEndian.AppendUint16(nil, uint16(key))
	in = append(in, byte(version), kind)
	return append(in, body...)
}

// decodeFuzzInput splits a FuzzDecode input and decodes it. It returns a
// nil message when the input names no API.
func decodeFuzzInput(data []byte) (m Message, version int16, err error) {
	if len(data) < fuzzHeaderBytes {
		return nil, 0, nil
	}
	key := APIKey(binary.BigEndian.Uint16(data))
	version = int16(int8(data[2]))
	isReq := data[3]&1 == 0
	if isReq {
		r, ok := NewRequest(key)
		if !ok {
			return nil, 0, nil
		}
		m = r
	} else {
		r, ok := NewResponse(key)
		if !ok {
			return nil, 0, nil
		}
		m = r
	}
	return m, version, m.Decode(data[fuzzHeaderBytes:], version)
}

// fuzzSeeds returns one valid input per API, version and kind: a random
// message (every field filled) in our own encoding.
func fuzzSeeds() [][]byte {
	var seeds [][]byte
	for _, api := range APIs() {
		for v := api.Versions.Min; v <= api.Versions.Max; v++ {
			for _, isReq := range []bool{true, false} {
				m := ourMessage(api.Key, isReq)
				newFiller(uint64(api.Key)<<16 | uint64(v)).fillMessage(m)
				seeds = append(seeds, fuzzInput(api.Key, v, isReq, m.Encode(nil, v)))
			}
		}
	}
	return seeds
}

// FuzzDecode feeds every request and response decoder arbitrary bytes. A
// decoder must never panic; what it accepts must validate at its version,
// re-encode, and decode again to the same message and bytes.
func FuzzDecode(f *testing.F) {
	for _, seed := range fuzzSeeds() {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, version, err := decodeFuzzInput(data)
		if m == nil || err != nil {
			return
		}
		if err := m.Validate(version); err != nil {
			t.Fatalf("decoded %T v%d does not validate: %v", m, version, err)
		}
		enc := m.Encode(nil, version)
		again := reflect.New(reflect.TypeOf(m).Elem()).Interface().(Message)
		if err := again.Decode(enc, version); err != nil {
			t.Fatalf("%T v%d: decoding our re-encoding: %v", m, version, err)
		}
		if !reflect.DeepEqual(again, m) {
			t.Fatalf("%T v%d: the re-encoding decodes to a different message", m, version)
		}
		if enc2 := again.Encode(nil, version); !bytes.Equal(enc2, enc) {
			t.Fatalf("%T v%d: encoding is not stable", m, version)
		}
	})
}

// TestFuzzSeedsReachEveryDecoder: the seeds of FuzzDecode decode, and
// cover every API, version and kind.
func TestFuzzSeedsReachEveryDecoder(t *testing.T) {
	want := 0
	for _, api := range APIs() {
		want += 2 * int(api.Versions.Max-api.Versions.Min+1)
	}
	seen := map[string]bool{}
	for _, seed := range fuzzSeeds() {
		m, v, err := decodeFuzzInput(seed)
		if m == nil || err != nil {
			t.Errorf("seed %x: %T %v", seed[:fuzzHeaderBytes], m, err)
			continue
		}
		seen[fmt.Sprintf("%T v%d", m, v)] = true
	}
	if len(seen) != want {
		t.Errorf("seeds reach %d API/version/kind triples, want %d", len(seen), want)
	}
}

// FuzzRequestHeader feeds the header parser arbitrary frames. What it
// accepts (possibly with an unsupported version) must re-encode to the
// bytes it consumed, up to the encoding of over-long varints.
func FuzzRequestHeader(f *testing.F) {
	for _, api := range APIs() {
		for _, v := range []int16{api.Versions.Min, api.Versions.Max, api.Versions.Max + 1} {
			h := RequestHeader{APIKey: api.Key, APIVersion: v, CorrelationID: int32(v), ClientID: "client",
				HeaderVersion: api.RequestHeaderVersion(v)}
			f.Add(append(AppendRequestHeader(nil, &h), 1, 2, 3))
		}
	}
	f.Add([]byte{0, 0, 0, 9, 0, 0, 0, 1, 0xff, 0xff, 0x05, 0x00, 0x02, 0x01, 0xaa})
	f.Fuzz(func(t *testing.T, frame []byte) {
		h, body, err := ParseRequestHeader(frame)
		if err != nil && !errors.Is(err, ErrUnsupportedVersion) {
			return
		}
		if len(body) > len(frame) || (len(body) > 0 && &body[len(body)-1] != &frame[len(frame)-1]) {
			t.Fatalf("body is not the frame's tail")
		}
		enc := AppendRequestHeader(nil, &h)
		h2, body2, err2 := ParseRequestHeader(append(enc, body...))
		if (err2 == nil) != (err == nil) || !reflect.DeepEqual(h2, h) || !bytes.Equal(body2, body) {
			t.Fatalf("re-encoded header parses to %+v, %v; want %+v, %v", h2, err2, h, err)
		}
	})
}

// FuzzReadFrame reads frames from arbitrary bytes: never more than the
// input holds, never over the limit.
func FuzzReadFrame(f *testing.F) {
	f.Add(frameOf([]byte("hello")))
	f.Add(append(frameOf(nil), frameOf([]byte{1, 2})...))
	f.Add([]byte{0x7f, 0xff, 0xff, 0xff, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	const sizeMax = 1 << 16
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		total := 0
		var buf []byte
		for {
			frame, err := ReadFrame(r, buf, sizeMax)
			if err != nil {
				if err != io.EOF && errors.Is(err, io.EOF) {
					t.Fatalf("wrapped io.EOF: %v", err)
				}
				return
			}
			total += frameSizeBytes + len(frame)
			if len(frame) > sizeMax || total > len(data) {
				t.Fatalf("frame of %d bytes, %d read from %d", len(frame), total, len(data))
			}
			buf = frame
		}
	})
}

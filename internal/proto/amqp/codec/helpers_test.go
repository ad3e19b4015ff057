package codec

import (
	"bytes"
	"fmt"
	"reflect"
	"testing"
	"time"
)

// sampleTable holds a value of every field type, nested tables and arrays
// included, as the codec decodes them (so that it round-trips deep-equal).
func sampleTable() Table {
	return Table{
		"bool":    true,
		"false":   false,
		"int8":    int8(-5),
		"uint8":   uint8(250),
		"int16":   int16(-30000),
		"uint16":  uint16(60000),
		"int32":   int32(-2_000_000_000),
		"uint32":  uint32(4_000_000_000),
		"int64":   int64(-9_000_000_000_000_000_000),
		"float32": float32(3.25),
		"float64": 2.5e300,
		"decimal": Decimal{Scale: 2, Value: -12345},
		"string":  "héllo",
		"bytes":   []byte{0, 1, 0xff},
		"time":    time.Unix(1_700_000_000, 0).UTC(),
		"table":   Table{"nested": "yes", "deeper": Table{"n": int32(1)}},
		"array":   []any{int32(1), "two", []any{false, int8(3)}, Table{"k": nil}, nil},
		"void":    nil,
		"":        "an empty key is legal on the wire",
	}
}

// populate fills every field of the struct m points to with a value
// derived from seed: strings and integers that differ per field and seed,
// integers with their high bits set (to catch truncation), bits alternating
// so that each bit position is seen both set and clear across seeds 0 and
// 1, and tables holding every field type.
func populate(m any, seed int) {
	v := reflect.ValueOf(m).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		name := v.Type().Field(i).Name
		switch f.Kind() {
		case reflect.String:
			f.SetString(fmt.Sprintf("%s-%d-é", name, seed))
		case reflect.Bool:
			f.SetBool((i+seed)%2 == 0)
		case reflect.Uint8:
			f.SetUint(uint64(0xA0 + i + seed))
		case reflect.Uint16:
			f.SetUint(uint64(0xBE00 + i + seed))
		case reflect.Uint32:
			f.SetUint(uint64(0xDEAD_0000 + i + seed))
		case reflect.Uint64:
			f.SetUint(uint64(0xFEED_0000_0000_0000) + uint64(i+seed))
		case reflect.Map:
			f.Set(reflect.ValueOf(sampleTable()))
		case reflect.Struct:
			if f.Type() == reflect.TypeFor[time.Time]() {
				f.Set(reflect.ValueOf(time.Unix(int64(1_600_000_000+seed), 0).UTC()))
				continue
			}
			fallthrough
		default:
			panic(fmt.Sprintf("populate: field %s has unhandled kind %s", name, f.Kind()))
		}
	}
}

// encodeMethod returns a method frame's payload for m.
func encodeMethod(t testing.TB, m Method) []byte {
	t.Helper()
	var w Writer
	EncodeMethod(&w, m)
	if err := w.Err(); err != nil {
		t.Fatalf("encoding %s: %v", m.Key(), err)
	}
	return bytes.Clone(w.Bytes())
}

// frameBytes returns the bytes of one frame as FrameWriter writes it.
func frameBytes(t testing.TB, typ uint8, channel uint16, payload []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	fw := NewFrameWriter(&buf)
	if err := fw.SetFrameMax(0); err != nil {
		t.Fatal(err)
	}
	if err := fw.WriteFrame(Frame{Type: typ, Channel: channel, Payload: payload}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// hexBytes parses space-separated hex octets and quoted ASCII, e.g.
// `00 3C "ex" CE`, so that expected frames read like the spec's tables.
func hexBytes(t testing.TB, s string) []byte {
	t.Helper()
	var out []byte
	for len(s) > 0 {
		switch s[0] {
		case ' ', '\n', '\t', '|':
			s = s[1:]
		case '"':
			end := 1
			for end < len(s) && s[end] != '"' {
				end++
			}
			if end == len(s) {
				t.Fatalf("hexBytes: unterminated string in %q", s)
			}
			out = append(out, s[1:end]...)
			s = s[end+1:]
		default:
			var b byte
			if _, err := fmt.Sscanf(s[:2], "%02X", &b); err != nil {
				t.Fatalf("hexBytes: bad octet %q: %v", s[:2], err)
			}
			out = append(out, b)
			s = s[2:]
		}
	}
	return out
}

// replyOf returns err as an *Error, failing the test when it is not one.
func replyOf(t testing.TB, err error) *Error {
	t.Helper()
	e, ok := err.(*Error)
	if !ok {
		t.Fatalf("error %v (%T) is not a *codec.Error", err, err)
	}
	return e
}

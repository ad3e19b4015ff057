package admin

import (
	"encoding/base64"
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/broker"
)

// JSON values of headers and arguments. A header value is a string,
// number, boolean, null, object (a nested table) or array; numbers that
// are integers become 64-bit integers, others 64-bit floats. Arguments
// (of queues, exchanges, bindings) are scalars.

// headersFromJSON converts a JSON object into ordered headers (sorted by
// key: JSON objects have no order). depth counts nesting; values nested
// deeper than AdminHeaderDepthMax are refused.
func headersFromJSON(m map[string]any, depth int) (broker.Headers, error) {
	if len(m) > base.RecordHeadersMax {
		return nil, invalid("%d headers, at most %d (RecordHeadersMax)", len(m), base.RecordHeadersMax)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make(broker.Headers, 0, len(keys))
	for _, k := range keys {
		v, err := valueFromJSON(m[k], depth)
		if err != nil {
			return nil, invalid("header '%s': %v", k, err)
		}
		out = append(out, broker.Header{Key: k, Value: v})
	}
	return out, nil
}

func valueFromJSON(v any, depth int) (broker.Value, error) {
	if depth >= base.AdminHeaderDepthMax {
		return broker.Value{}, invalid("nested deeper than %d levels (AdminHeaderDepthMax)", base.AdminHeaderDepthMax)
	}
	switch v := v.(type) {
	case nil:
		return broker.VoidValue(), nil
	case bool:
		return broker.BoolValue(v), nil
	case string:
		return broker.StringValue(v), nil
	case json.Number:
		if i, err := strconv.ParseInt(string(v), 10, 64); err == nil {
			return broker.IntValue(broker.KindInt64, i), nil
		}
		f, err := strconv.ParseFloat(string(v), 64)
		if err != nil || math.IsInf(f, 0) {
			return broker.Value{}, invalid("number %s is out of range", v)
		}
		return broker.Float64Value(f), nil
	case float64: // from callers that decoded without UseNumber
		return broker.Float64Value(v), nil
	case map[string]any:
		h, err := headersFromJSON(v, depth+1)
		if err != nil {
			return broker.Value{}, err
		}
		return broker.TableValue(h), nil
	case []any:
		if len(v) > base.RecordHeadersMax {
			return broker.Value{}, invalid("array of %d values, at most %d", len(v), base.RecordHeadersMax)
		}
		arr := make([]broker.Value, 0, len(v))
		for _, e := range v {
			ev, err := valueFromJSON(e, depth+1)
			if err != nil {
				return broker.Value{}, err
			}
			arr = append(arr, ev)
		}
		return broker.ArrayValue(arr), nil
	}
	return broker.Value{}, invalid("unsupported JSON value %T", v)
}

// argsFromJSON converts arguments. Objects and arrays are taken, as over
// AMQP, where RabbitMQ accepts tables and arrays in any arguments table.
func argsFromJSON(m map[string]any) (broker.Headers, error) {
	return headersFromJSON(m, 0)
}

// headersToJSON converts headers to a JSON object (a later duplicate key
// wins, as JSON has no duplicates).
func headersToJSON(h broker.Headers) map[string]any {
	if len(h) == 0 {
		return nil
	}
	out := make(map[string]any, len(h))
	for _, f := range h {
		out[f.Key] = valueToJSON(f.Value)
	}
	return out
}

func valueToJSON(v broker.Value) any {
	switch v.Kind() {
	case broker.KindVoid:
		return nil
	case broker.KindBool:
		return v.Bool()
	case broker.KindString:
		return v.Text()
	case broker.KindBytes:
		if utf8.ValidString(v.Text()) {
			return v.Text()
		}
		return base64.StdEncoding.EncodeToString([]byte(v.Text()))
	case broker.KindFloat32, broker.KindFloat64:
		f := v.Float()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return strconv.FormatFloat(f, 'g', -1, 64)
		}
		return f
	case broker.KindDecimal:
		scale, val := v.Decimal()
		return decimalString(scale, val)
	case broker.KindTable:
		return headersToJSON(v.Table())
	case broker.KindArray:
		out := make([]any, 0, len(v.Array()))
		for _, e := range v.Array() {
			out = append(out, valueToJSON(e))
		}
		return out
	}
	return v.Int() // the integer kinds and timestamps
}

func decimalString(scale uint8, value int32) string {
	s := strconv.FormatInt(int64(value), 10)
	neg := value < 0
	if neg {
		s = s[1:]
	}
	for len(s) <= int(scale) {
		s = "0" + s
	}
	if scale > 0 {
		s = s[:len(s)-int(scale)] + "." + s[len(s)-int(scale):]
	}
	if neg {
		s = "-" + s
	}
	return s
}

// scalar is what the admin package reads of a routing value (the
// controller's views carry them; their type is below the admin layer, so
// it is reached through its methods).
type scalar interface {
	Bool() bool
	Int() int64
	Float() float64
	Text() string
}

// scalarToJSON converts a routing value given its kind's name ("void",
// "bool", "int", "float", "string", "bytes", "encoded": a table, array or
// decimal in the broker's encoding).
func scalarToJSON(kind string, v scalar) any {
	switch kind {
	case "encoded":
		if x, ok := broker.DecodeArgument(v.Text()); ok {
			return valueToJSON(x)
		}
		return nil
	case "void":
		return nil
	case "bool":
		return v.Bool()
	case "int":
		return v.Int()
	case "float":
		return v.Float()
	}
	return v.Text()
}

// argsToJSON builds an arguments object from n fields read by at.
func argsToJSON(n int, at func(i int) (key, kind string, v scalar)) map[string]any {
	if n == 0 {
		return nil
	}
	out := make(map[string]any, n)
	for i := range n {
		k, kind, v := at(i)
		out[k] = scalarToJSON(kind, v)
	}
	return out
}

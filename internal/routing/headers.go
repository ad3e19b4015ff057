package routing

import (
	"slices"
	"strings"

	"github.com/ferry-mq/ferry/internal/base"
)

// headerMatch is a headers-exchange binding's compiled arguments.
type headerMatch struct {
	any bool // x-match any or any-with-x; otherwise all
	// fields are the arguments that take part, sorted by key: never
	// "x-match", and no other "x-" key unless the mode is *-with-x.
	fields []Field
}

// parseHeaderMatch compiles canonical binding arguments. x-match must be a
// string ("all", the default when absent, "any", "all-with-x",
// "any-with-x"), as RabbitMQ's validate_binding requires.
func parseHeaderMatch(args []Field) (headerMatch, error) {
	var m headerMatch
	withX := false
	if v, ok := lookupArg(args, "x-match"); ok {
		if v.kind != KindString {
			return m, base.Errorf(base.CodeInvalidArgument,
				"invalid x-match field type %s (value %s); expected string", v.kind, v)
		}
		switch v.str {
		case "all":
		case "any":
			m.any = true
		case "all-with-x":
			withX = true
		case "any-with-x":
			m.any, withX = true, true
		default:
			return m, base.Errorf(base.CodeInvalidArgument,
				"invalid x-match field value %q; expected all, any, all-with-x, or any-with-x", v.str)
		}
	}
	for _, f := range args {
		if f.Key == "x-match" || (!withX && strings.HasPrefix(f.Key, "x-")) {
			continue
		}
		m.fields = append(m.fields, f)
	}
	return m, nil
}

// matches reports whether headers (sorted stably by key; for a key that
// occurs more than once the last occurrence counts, as in RabbitMQ 4's
// header map) satisfy m. "all" with no fields matches every message; "any"
// with no fields matches none. Cost: O(fields × log headers).
func (m *headerMatch) matches(headers []Field) bool {
	for _, f := range m.fields {
		h, ok := lastWithKey(headers, f.Key)
		hit := ok && (f.Value.kind == KindVoid || f.Value.satisfies(h))
		if hit && m.any {
			return true
		}
		if !hit && !m.any {
			return false
		}
	}
	return !m.any
}

// lastWithKey finds the last header with key in headers sorted by key.
func lastWithKey(headers []Field, key string) (Value, bool) {
	lo, hi := 0, len(headers) // find the first header with Key > key
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if headers[mid].Key <= key {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo == 0 || headers[lo-1].Key != key {
		return Value{}, false
	}
	return headers[lo-1].Value, true
}

// sortHeaders copies headers into s.headers sorted stably by key, once per
// Route, for the headers exchanges the route visits.
func (s *scratch) sortHeaders(headers []Field) []Field {
	if !s.headersSorted {
		s.headers = append(s.headers[:0], headers...)
		slices.SortStableFunc(s.headers, compareFieldKeys)
		s.headersSorted = true
	}
	return s.headers
}

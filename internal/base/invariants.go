package base

import "fmt"

// Bugf panics with a message starting "BUG:". Call it when something that
// the code guarantees cannot happen has happened: continuing would corrupt
// state, so the process stops and the message says what broke.
func Bugf(format string, args ...any) {
	panic("BUG: " + fmt.Sprintf(format, args...))
}

// Assert panics with a "BUG:" message when cond is false. It is always on;
// guard expensive checks with InvariantsEnabled. Its arguments are
// evaluated, and boxed into the variadic slice, on every call, also when
// cond holds: on a per-message path with non-constant arguments write
// `if !cond { Bugf(...) }`, which formats only when the check fails.
func Assert(cond bool, format string, args ...any) {
	if !cond {
		Bugf(format, args...)
	}
}

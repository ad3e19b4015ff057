package base

import "fmt"

// Bugf panics with a message starting "BUG:". Call it when something that
// the code guarantees cannot happen has happened: continuing would corrupt
// state, so the process stops and the message says what broke.
func Bugf(format string, args ...any) {
	panic("BUG: " + fmt.Sprintf(format, args...))
}

// Assert panics with a "BUG:" message when cond is false. It is cheap and
// always on; guard expensive checks with InvariantsEnabled.
func Assert(cond bool, format string, args ...any) {
	if !cond {
		Bugf(format, args...)
	}
}

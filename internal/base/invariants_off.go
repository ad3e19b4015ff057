//go:build !ferry_invariants

package base

// InvariantsEnabled reports whether expensive invariant checks run. It is a
// constant so that disabled checks compile away. Build with
// -tags ferry_invariants (CI does) to turn them on.
const InvariantsEnabled = false

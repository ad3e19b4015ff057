//go:build ferry_invariants

package base

// InvariantsEnabled reports whether expensive invariant checks run; this
// build has -tags ferry_invariants.
const InvariantsEnabled = true

// Package base holds what every other Ferry package may use: named limits,
// stable error codes, the injectable clock and invariant checks.
//
// It owns no state and starts no goroutines. It must never import another
// Ferry package (vfs, below it, is the one exception that lives under it and
// imports nothing of Ferry either).
package base

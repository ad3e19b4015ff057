// Package server is Ferry's composition root: the only package that knows
// every other one (test/layering enforces it). It owns the node's
// configuration (Config: one struct from which the YAML keys, the FERRY_*
// environment variables, the `ferry serve` flags, the defaults and
// docs/configuration.md are all derived) and its loading with precedence
// defaults < file < environment < flags, and validation that names the
// offending key, value and source.
//
// It must never hold protocol or message logic of its own (that belongs to
// the front ends and the broker), read configuration from anywhere but
// the Sources it is given (no package-level flags, no os.Getenv), or
// exit the process (cmd/ferry decides exit codes).
package server

// Package server is Ferry's composition root: the only package that knows
// every other one (test/layering enforces it).
//
// It owns:
//   - the node's configuration: Config is one struct from which the YAML
//     keys, the FERRY_* environment variables, the `ferry serve` flags,
//     the defaults and docs/configuration.md are all derived; Load merges
//     defaults < file < environment < flags and validates, naming the
//     offending key, value and source (*ConfigError);
//   - the lifecycle: Start locks the data directory, opens every listener
//     (a port in use fails before any data is touched), opens the broker,
//     starts each front end on its listener and announces one line per
//     listener; Ready says when the cluster is bootstrapped; Shutdown
//     stops in reverse order (front ends, HTTP, broker, lock) within a
//     deadline; Run does all three around a context;
//   - the HTTP listener, serving the management API (internal/admin) with
//     the server's own readiness behind /readyz;
//   - Client, the in-process connection the sdk hands to embedding
//     programs.
//
// It must never hold protocol or message logic of its own (that belongs
// to the front ends and the broker), read configuration from anywhere but
// the Sources it is given (no package-level flags, no os.Getenv), exit
// the process (cmd/ferry decides exit codes), or announce a listener that
// is not accepting: protocols without a front end in this version are
// announced as "not available in this version".
package server

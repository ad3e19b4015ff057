// Command driver runs one benchmark workload against one broker through
// internal/loadgen and prints its result as one JSON line. bench/compare.sh
// calls it once per (target, workload, variant, run).
//
//	driver run -target amqp-quorum -addr amqp://guest:guest@127.0.0.1:5672/ -workload publish -size 1024 -producers 4 -duration 10s
//	driver wait -target jetstream -addr nats://127.0.0.1:4222 -timeout 60s
//
// It owns the workloads' shapes (which topology, how many producers, which
// phase is measured) and the sampling of the broker process's CPU time and
// resident memory from /proc around the measured phase. It must never
// decide a figure from anything but a run whose accounting passed: a run
// that lost a confirmed message exits with status 3 and its JSON says so.
package main

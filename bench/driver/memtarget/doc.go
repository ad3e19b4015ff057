// Package memtarget is a broker that is not one: queues are bounded Go
// channels inside the driver's own process, confirmed at once. Running a
// workload against it measures the load generator and the machine alone
// (pacer wake-ups, scheduling, the client side's CPU), the floor under
// every broker's figure in the same run.
//
// It owns nothing durable and must never be mistaken for a peer: the
// report shows it as a reference, without ratios.
package memtarget

// Package sim is Ferry's deterministic simulation of the replication
// engine: N nodes, each running internal/replication's Engine in Manual mode
// with its own in-memory disk (vfs.MemFS, crashed with unsynced writes
// dropped, and fsync errors injected), connected by a simulated network that
// drops, duplicates, delays and reorders packets and cuts links in one or
// both directions, all on one fake clock and one seeded random source.
//
// A run (Run) draws its shape from its seed — 3 to 5 voters, sometimes a
// spare node that joins through learner, promotion and the removal of a
// voter, 2 or 3 groups (an append-only list and a counter map, fsm.go),
// fault rates, snapshot frequency — then runs rounds of client traffic
// (proposals, ReadIndex and lease reads, leadership transfers) and faults
// (crashes, restarts, partitions, heals, fsync errors), then heals
// everything and runs until every member has applied everything.
//
// After every round it checks (check.go): at most one leader per term;
// every node's committed prefix agrees on terms and no log drops a
// committed entry; the applied histories of all replicas are prefixes of
// one another. At restarts it checks that the node kept what its messages
// promised (acknowledged entries, votes, terms); for reads, that they saw
// every write acknowledged before they began; at the end, that every
// acknowledged proposal is applied on every member at the index it was
// acknowledged with.
//
// Determinism: one goroutine drives everything, etcd raft's election
// jitter comes from crypto/rand.Reader, which Run replaces with a reader
// seeded from the seed (so runs must not overlap), and the engine never
// depends on Go map order. The same seed gives the same trace hash
// (TestSimulationIsDeterministic), and a failure prints the command that
// replays it with a trace of every event.
//
// The package is test infrastructure: it must never be imported by
// production code, and it drives the engine only through its public API
// and its Transport, LogProvider and StateStore interfaces.
package sim

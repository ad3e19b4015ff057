// Package log is Ferry's durable segmented log: the storage of every queue
// and stream partition, and at the same time the Raft log of its group. It
// owns the files of one log directory: segment files of Kafka v2 record
// batches (package batch), their sparse offset and time indexes, and a small
// checkpoint; group-commit fsync; recovery after a crash; truncation;
// retention.
//
// Every batch has two coordinates: an Index (1, 2, 3, ... one per batch, the
// Raft index) and the offsets [baseOffset, baseOffset+lastOffsetDelta] its
// records occupy (Kafka's offsets). The log stamps the base offset and the
// Raft term (in the partitionLeaderEpoch field) at append; both lie outside
// the batch CRC.
//
// Two ways to write: the low-level calls (Write, WriteValidated, Sync,
// SyncAll, the truncations, Reset) for the Raft engine, used from one
// goroutine at a time, and Append, which is safe for concurrent use and
// coalesces concurrent appenders into one write and one fsync. Reads are
// safe concurrently with everything and return copies.
//
// Every write validates the batch (CRC, records) except WriteValidated,
// whose caller has validated it (it built the batch, or validated it once
// already, and has not modified it since); WriteValidated still checks the
// header and the term rules. Bytes from the network or a disk go through
// Write or Append.
//
// The log must never confirm a batch before it is durable (with
// DurabilitySync), never serve bytes past a torn tail, never skip a bad
// batch silently, and never keep writing after a failed write or fsync
// (fail-stop). All file access goes through vfs.FS and all time through
// base.Clock. The on-disk format is documented in docs/storage-format.md;
// the invariants that are easy to break are in DESIGN.md beside this file.
package log

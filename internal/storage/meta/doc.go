// Package meta is the node's metadata store: one Pebble database per node
// holding small, hot state that must survive restarts — Raft HardState and
// ConfState of every group, committed consumer offsets, and (as their owners
// add them) queue checkpoints, dedupe ids and the delay index.
//
// It owns the Pebble instance and the adapter that runs Pebble on Ferry's
// vfs.FS (so tests and the simulator can crash it with vfs.MemFS and inject
// faults with vfs.FaultFS), the key layout below, and the fail-stop rule:
// once a write or fsync of the store fails, the store refuses everything
// until it is reopened, and it never reports a Sync commit that a sync did
// not cover. DESIGN.md lists the non-obvious invariants.
//
// It must never interpret values (they are opaque bytes owned by the
// packages that write them), never touch a file except through its
// vfs.FS, never retry a failed fsync, and never import a Ferry package
// other than base and base/vfs.
//
// # API
//
// Open and Close; Get (a copy, or CodeNotFound); NewBatch with Set, Delete,
// DeleteRange and DeletePrefix, applied atomically by Commit(b, Sync) or
// Commit(b, NoSync); Scan over a prefix and ScanRange over bounds, on a
// consistent snapshot. Keys are at most base.MetaKeyBytesMax bytes, values
// at most base.MetaValueBytesMax, batches at most base.MetaBatchBytesMax.
//
// # Key layout
//
// Every key starts with a kind byte and '/'. Components follow, each in an
// order-preserving encoding, so keys sort by their components and the keys
// sharing leading components share a byte prefix (scan them with Scan):
//
//	integer  fixed width, big-endian
//	string   its bytes with 0x00 written as 0x00 0xFF, then 0x00 0x01
//
// The kinds (letters are never reused once released):
//
//	h/<group:u64>                                  HardStateKey   Raft HardState of a group
//	c/<group:u64>                                  ConfStateKey   Raft ConfState of a group
//	o/<stream:str>/<consumer group:str>/<partition:u32>
//	                                               OffsetKey      committed offset
//	n/<fact:str>                                   NodeKey        a fact about this node
//
// The '/' between components above is notation: only the one after the kind
// byte is stored. Prefixes for scans: KindPrefix (every key of a kind),
// OffsetStreamPrefix and OffsetGroupPrefix; PrefixEnd gives the upper bound.
// The Parse functions decode keys read back from a scan.
//
// To add a kind: pick an unused letter, add its constant to the Kind list
// and a line to the table above, write its constructor and Parse function
// with appendString / binary.BigEndian and keyReader, and add the Parse
// function to FuzzParseKeys. Reserved for their owners: 'q' queue
// checkpoints, 'd' dedupe ids, 't' delay index.
package meta

// Package vfs is the file system interface every Ferry file access goes
// through, so that tests can swap the disk.
//
// Three implementations: Default (the operating system), MemFS (in memory,
// with Crash to drop whatever was not made durable) and FaultFS (wraps
// another FS and injects errors or crashes at chosen operations).
//
// The durability contract is strict POSIX, and MemFS enforces it: a file's
// contents are durable only after Sync (or SyncFiles); a created, renamed or
// removed name is durable only after SyncDir of its directory (both
// directories for a rename across directories).
//
// This package imports nothing of Ferry and must never do file I/O except
// through the operating system in the OS implementation.
package vfs

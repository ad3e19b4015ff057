// Command physical measures the machine's limits that a broker's figures
// are judged against, and prints them as one JSON object: durable
// sequential write bandwidth (a write of 1 MiB or of 4 KiB, each followed
// by fdatasync, on a file in the directory the brokers use), fdatasyncs per
// second (4 KiB overwritten in place, so no size or block allocation is
// flushed with it), loopback TCP bandwidth over one connection, and memcpy
// bandwidth.
//
//	physical -dir /path/to/broker/data -duration 3s
//
// It owns only these measurements. It writes nothing outside -dir (one
// scratch file it removes) and talks only to 127.0.0.1. It uses the
// operating system directly, not internal/base/vfs: measuring the OS is
// its point, and bench/ may not import vfs.
package main

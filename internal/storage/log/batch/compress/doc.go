// Package compress decompresses the record payload of compressed Kafka v2
// batches, with the codecs Kafka clients use: gzip, snappy (raw blocks and
// the xerial framing of snappy-java), LZ4 frames and zstd. The Kafka front
// end uses it to validate a compressed batch before it is stored (record
// count and offset deltas); the stored batch stays compressed. The broker
// uses DecompressBatch to read the records of a stored compressed batch
// (stream consumers over AMQP and the broker's subscriptions, ListOffsets
// by timestamp).
//
// Every decoder here is bounded: the output never exceeds the caller's
// limit (the size is checked before a buffer is sized from a number in the
// input where the format declares one, and the output is cut off at the
// limit otherwise), the work is linear in the input and the output, and
// no goroutine is started (the zstd and lz4 decoders run synchronously).
// This package imports only internal/base and the batch package; it must
// never trust a length from the input before checking it against the
// limit.
package compress

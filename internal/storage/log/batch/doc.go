// Package batch owns Ferry's record-batch format, which is the Kafka
// RecordBatch v2 format byte for byte (magic 2): parsing and validating the
// 61-byte header, the CRC-32C (Castagnoli) over bytes [21:], an encoder for
// uncompressed batches, a zero-allocation record iterator, control batches,
// and the stamping of the two fields that lie outside the CRC (base offset
// and partition leader epoch), which the log sets at append.
//
// Layout of the header (big-endian):
//
//	 0 baseOffset            int64
//	 8 batchLength           int32  bytes after this field (total size - 12)
//	12 partitionLeaderEpoch  int32  Ferry: the Raft term of the entry
//	16 magic                 int8   = 2
//	17 crc                   uint32 CRC-32C of bytes [21:end]
//	21 attributes            int16  bits 0-2 compression, 3 timestamp type,
//	                                4 transactional, 5 control
//	23 lastOffsetDelta       int32
//	27 baseTimestamp         int64  ms
//	35 maxTimestamp          int64  ms
//	43 producerId            int64
//	51 producerEpoch         int16
//	53 baseSequence          int32
//	57 recordCount           int32
//	61 records
//
// The package is pure: it does no I/O, starts no goroutines and imports only
// internal/base. It must never trust a length or count read from bytes
// before checking it against the bytes present and the limits in base
// (BatchBytesMax, BatchRecordsMax, RecordHeadersMax); every decoder here is
// fuzzed and does work linear in its input. It never decompresses:
// compressed batches are stored and served as they are, and iterating their
// records fails with base.CodeNotSupported.
package batch

package kafka

import (
	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/proto/kafka/protocol"
	"github.com/ferry-mq/ferry/internal/storage/log/batch"
	"github.com/ferry-mq/ferry/internal/storage/log/batch/compress"
)

// magicOffset is where a batch's magic byte lies, in every format version.
const magicOffset = 16

// validateBatch checks the records of one partition of a Produce request
// as Kafka's LogValidator does before anything is stored:
//
//   - exactly one batch, of format v2 (magic 2);
//   - the header (lengths, counts) and the CRC-32C;
//   - no control batch, no transactional batch (Ferry has no
//     transactions), a base sequence when there is a producer id;
//   - its records: decoded (after decompression within
//     KafkaDecompressedBytesMax for a compressed batch), recordCount of
//     them, with offset deltas 0, 1, 2, ... and lastOffsetDelta the last.
//
// scratch is a buffer the caller reuses for decompression; the grown one is
// returned. Errors are *KafkaError with the code Kafka answers.
func validateBatch(records, scratch []byte) (batch.Header, []byte, error) {
	if len(records) > magicOffset && records[magicOffset] != batch.Magic {
		return batch.Header{}, scratch, kafkaErr(protocol.ErrorCodeUnsupportedForMessageFormat,
			"only record batch format v2 (magic 2) is accepted")
	}
	h, err := batch.ParseHeader(records)
	if err != nil {
		return h, scratch, batchError(err)
	}
	switch {
	case h.Size() < len(records):
		return h, scratch, kafkaErr(protocol.ErrorCodeInvalidRecord, "a produce request must carry exactly one record batch per partition")
	case h.Size() > len(records):
		return h, scratch, kafkaErr(protocol.ErrorCodeCorruptMessage, "record batch truncated")
	case h.Attributes.IsControl():
		return h, scratch, kafkaErr(protocol.ErrorCodeInvalidRecord, "clients may not write control batches")
	case h.Attributes.IsTransactional():
		return h, scratch, kafkaErr(protocol.ErrorCodeInvalidRecord, "transactions are not supported")
	case h.ProducerID >= 0 && h.BaseSequence < 0:
		return h, scratch, kafkaErr(protocol.ErrorCodeInvalidRecord, "an idempotent batch needs a base sequence")
	case h.RecordCount == 0 || h.LastOffsetDelta != h.RecordCount-1:
		return h, scratch, kafkaErr(protocol.ErrorCodeInvalidRecord, "lastOffsetDelta must be recordCount-1 and a batch must hold records")
	}
	if _, err := batch.CheckCRC(records); err != nil {
		return h, scratch, batchError(err)
	}
	body := records
	if codec := h.Attributes.Compression(); codec != batch.CompressionNone {
		if codec > batch.CompressionZstd {
			return h, scratch, kafkaErr(protocol.ErrorCodeUnsupportedCompressionType, "unknown compression codec")
		}
		// An uncompressed copy, so the batch package can walk the records.
		scratch, err = compress.DecompressBatch(scratch[:0], records, base.KafkaDecompressedBytesMax)
		if err != nil {
			return h, scratch, batchError(err)
		}
		body = scratch
	}
	return h, scratch, checkRecords(body, h)
}

// checkRecords walks the records of an uncompressed batch: they must number
// recordCount and have consecutive offset deltas from 0.
func checkRecords(b []byte, h batch.Header) error {
	it, err := batch.Records(b)
	if err != nil {
		return batchError(err)
	}
	var n int32
	for r, ok := it.Next(); ok; r, ok = it.Next() {
		if r.OffsetDelta != n {
			return kafkaErr(protocol.ErrorCodeInvalidRecord, "record offset deltas must be consecutive from 0")
		}
		n++
	}
	if err := it.Err(); err != nil {
		return batchError(err)
	}
	if n != h.RecordCount {
		return kafkaErr(protocol.ErrorCodeInvalidRecord, "record count differs from the records")
	}
	return nil
}

// batchError maps a batch or compress error onto Kafka's code.
func batchError(err error) error {
	switch base.CodeOf(err) {
	case base.CodeTooLarge:
		return &KafkaError{Code: protocol.ErrorCodeMessageTooLarge, Msg: err.Error()}
	case base.CodeNotSupported:
		return &KafkaError{Code: protocol.ErrorCodeUnsupportedCompressionType, Msg: err.Error()}
	}
	return &KafkaError{Code: protocol.ErrorCodeCorruptMessage, Msg: err.Error()}
}

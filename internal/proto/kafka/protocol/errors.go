package protocol

import (
	"errors"
	"fmt"

	"github.com/ferry-mq/ferry/internal/base"
)

// Reasons a message fails to decode. A *DecodeError carries one of them;
// test with errors.Is. All but the limit reasons mean the peer sent bytes
// that are not a Kafka message: the server answers CORRUPT_MESSAGE or
// INVALID_REQUEST, or closes the connection when it cannot find the
// request's boundaries.
var (
	ErrTruncated          = errors.New("input ends inside a value")
	ErrNegativeLength     = errors.New("negative length")
	ErrUnexpectedNull     = errors.New("null in a field that is not nullable in this version")
	ErrBadBool            = errors.New("bool byte is neither 0 nor 1")
	ErrBadPresence        = errors.New("struct presence byte is neither 1 nor -1")
	ErrVarintOverflow     = errors.New("varint longer than 32 bits")
	ErrTagOrder           = errors.New("tagged fields not in ascending tag order")
	ErrTagSize            = errors.New("tagged field's size does not match its contents")
	ErrTrailingBytes      = errors.New("bytes left after the message")
	ErrTooManyTags        = errors.New("more tagged fields than base.KafkaTaggedFieldsMax")
	ErrAllocLimit         = errors.New("message would decode into more than base.KafkaDecodeAllocBytesMax bytes")
	ErrUnsupportedVersion = errors.New("unsupported version")
	ErrUnknownAPIKey      = errors.New("unknown API key")
	ErrFrameSize          = errors.New("frame size out of range")
)

// DecodeError says where and why decoding failed.
type DecodeError struct {
	// Offset is the byte offset in the input where the problem was found.
	Offset int
	// Field names the definition struct and field being read, e.g.
	// "TopicProduceData.Name", or the struct whose tagged fields were
	// being read.
	Field  string
	Reason error
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("%s at byte %d: %v", e.Field, e.Offset, e.Reason)
}

func (e *DecodeError) Unwrap() error { return e.Reason }

// codeFor maps a decode reason to the stable error code the server reports:
// over a limit is too_large, anything else is corrupt input.
func codeFor(reason error) base.Code {
	switch {
	case errors.Is(reason, ErrTooManyTags), errors.Is(reason, ErrAllocLimit), errors.Is(reason, ErrFrameSize):
		return base.CodeTooLarge
	case errors.Is(reason, ErrUnsupportedVersion), errors.Is(reason, ErrUnknownAPIKey):
		return base.CodeNotSupported
	}
	return base.CodeCorrupt
}

// FieldError is what Validate returns: the field whose value the version
// cannot carry.
type FieldError struct {
	Field   string
	Version int16
	Reason  error // ErrFieldNotInVersion or ErrNullNotAllowed
}

// Reasons Validate reports.
var (
	ErrFieldNotInVersion = errors.New("field holds a non-default value but the version lacks it")
	ErrNullNotAllowed    = errors.New("field is null but the version does not allow null")
)

func (e *FieldError) Error() string {
	return fmt.Sprintf("%s at version %d: %v", e.Field, e.Version, e.Reason)
}

func (e *FieldError) Unwrap() error { return e.Reason }

func fieldError(field string, version int16, reason error) error {
	return base.Errorf(base.CodeInvalidArgument, "kafka: %w", &FieldError{Field: field, Version: version, Reason: reason})
}

// checkDecodeVersion returns a not_supported error when version is outside
// [lo, hi]: a peer may ask for any version, so this is an input error.
func checkDecodeVersion(name string, version, lo, hi int16) error {
	if version < lo || version > hi {
		return base.Errorf(base.CodeNotSupported, "kafka: %s version %d (supported %d-%d): %w",
			name, version, lo, hi, ErrUnsupportedVersion)
	}
	return nil
}

// checkEncodeVersion panics when version is outside [lo, hi]: Ferry picks
// the version it encodes (the request's, already checked), so a bad one is
// a bug.
func checkEncodeVersion(name string, version, lo, hi int16) {
	if !(version >= lo && version <= hi) {
		base.Bugf("kafka: encoding %s at version %d, supported %d-%d", name, version, lo, hi)
	}
}

package kafka

import (
	"context"
	"errors"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/proto/kafka/protocol"
)

// scope is what a request was doing when it failed: the same base code
// means a different Kafka error for a partition, a group or an admin
// operation (not found is UNKNOWN_TOPIC_OR_PARTITION, GROUP_ID_NOT_FOUND
// or, for a topic being created, something else again).
type scope uint8

const (
	scopeData   scope = iota // Produce, Fetch, ListOffsets, metadata of a partition
	scopeGroup               // the group coordinator's APIs
	scopeAdmin               // DeleteTopics, CreatePartitions, configs
	scopeCreate              // CreateTopics
	numScopes
)

// codeTable is the one mapping from base codes to Kafka error codes, a
// column per scope. An entry of 0 in a scope's column (other than
// scopeData's) falls back to the scopeData column, so only the differences
// are written out.
var codeTable = map[base.Code][numScopes]protocol.ErrorCode{
	base.CodeInternal:           {protocol.ErrorCodeUnknownServerError},
	base.CodeInvalidArgument:    {protocol.ErrorCodeInvalidRequest, 0, protocol.ErrorCodeInvalidConfig, protocol.ErrorCodeInvalidConfig},
	base.CodeNotFound:           {protocol.ErrorCodeUnknownTopicOrPartition, protocol.ErrorCodeGroupIdNotFound},
	base.CodePreconditionFailed: {protocol.ErrorCodeInvalidRequest, 0, 0, protocol.ErrorCodeTopicAlreadyExists},
	base.CodeAccessRefused:      {protocol.ErrorCodeTopicAuthorizationFailed, protocol.ErrorCodeGroupAuthorizationFailed},
	base.CodeUnauthenticated:    {protocol.ErrorCodeSaslAuthenticationFailed},
	base.CodeTooLarge:           {protocol.ErrorCodeMessageTooLarge, 0, protocol.ErrorCodeInvalidRequest, protocol.ErrorCodeInvalidPartitions},
	base.CodeResourceLocked:     {protocol.ErrorCodeInvalidRequest},
	base.CodeNotSupported:       {protocol.ErrorCodeInvalidRequest, 0, protocol.ErrorCodeInvalidConfig, protocol.ErrorCodeInvalidConfig},
	base.CodeOutOfRange:         {protocol.ErrorCodeOffsetOutOfRange},
	base.CodeCorrupt:            {protocol.ErrorCodeCorruptMessage},
	base.CodeConflict:           {protocol.ErrorCodeInvalidRequest, 0, 0, protocol.ErrorCodeTopicAlreadyExists},
	base.CodeNotLeader:          {protocol.ErrorCodeNotLeaderOrFollower, protocol.ErrorCodeNotCoordinator, protocol.ErrorCodeNotController, protocol.ErrorCodeNotController},
	base.CodeTimeout:            {protocol.ErrorCodeRequestTimedOut},
	base.CodeUnavailable:        {protocol.ErrorCodeLeaderNotAvailable, protocol.ErrorCodeCoordinatorNotAvailable, protocol.ErrorCodeRequestTimedOut, protocol.ErrorCodeRequestTimedOut},
	base.CodeOverloaded:         {protocol.ErrorCodeRequestTimedOut, protocol.ErrorCodeCoordinatorLoadInProgress, protocol.ErrorCodeThrottlingQuotaExceeded, protocol.ErrorCodeThrottlingQuotaExceeded},
	base.CodeNoSpace:            {protocol.ErrorCodeKafkaStorageError, protocol.ErrorCodeCoordinatorNotAvailable, protocol.ErrorCodeRequestTimedOut, protocol.ErrorCodeRequestTimedOut},
	base.CodeStopped:            {protocol.ErrorCodeNotLeaderOrFollower, protocol.ErrorCodeCoordinatorNotAvailable, protocol.ErrorCodeRequestTimedOut, protocol.ErrorCodeRequestTimedOut},
	base.CodeStorageFailed:      {protocol.ErrorCodeKafkaStorageError, protocol.ErrorCodeCoordinatorNotAvailable, protocol.ErrorCodeKafkaStorageError, protocol.ErrorCodeKafkaStorageError},
}

// errorCode returns the Kafka error code for err in scope s: 0 for nil,
// the code of a *KafkaError as it is, REQUEST_TIMED_OUT for a context that
// ended, and the table's entry for a base code.
func errorCode(err error, s scope) protocol.ErrorCode {
	if err == nil {
		return protocol.ErrorCodeNone
	}
	var ke *KafkaError
	if errors.As(err, &ke) {
		return ke.Code
	}
	var be *base.Error
	if !errors.As(err, &be) {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			return protocol.ErrorCodeRequestTimedOut
		}
		return protocol.ErrorCodeUnknownServerError
	}
	row, ok := codeTable[be.Code]
	if !ok {
		return protocol.ErrorCodeUnknownServerError
	}
	if c := row[s]; c != 0 {
		return c
	}
	return row[scopeData]
}

// errorMessage returns err's text for a response's error message field,
// nil for no error.
func errorMessage(err error) *string {
	if err == nil {
		return nil
	}
	s := err.Error()
	return &s
}

// kafkaErr returns a *KafkaError.
func kafkaErr(code protocol.ErrorCode, msg string) error { return &KafkaError{Code: code, Msg: msg} }

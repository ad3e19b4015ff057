package base

import (
	"errors"
	"fmt"
	"slices"
)

// Code is a stable, client-visible error code. Front ends map codes to their
// protocol's own (AMQP reply codes, Kafka error codes, HTTP statuses). The
// numbers never change once released: TestCodesAreStable pins them.
type Code uint16

// The codes. Append new ones at the end of a group; never renumber.
const (
	CodeInternal Code = 1 // a bug or an unexpected condition in Ferry

	// Caller mistakes: retrying the same call cannot succeed.
	CodeInvalidArgument    Code = 100 // malformed or out-of-range input
	CodeNotFound           Code = 101 // the named entity does not exist
	CodePreconditionFailed Code = 102 // e.g. redeclaration with different arguments
	CodeAccessRefused      Code = 103 // authenticated, but not allowed
	CodeUnauthenticated    Code = 104 // wrong or missing credentials
	CodeTooLarge           Code = 105 // a message, frame or batch over its named limit
	CodeResourceLocked     Code = 106 // held exclusively by another connection or consumer
	CodeNotSupported       Code = 107 // a valid request Ferry does not implement
	CodeOutOfRange         Code = 108 // an offset or index outside what is stored
	CodeCorrupt            Code = 109 // data fails its checksum or structure check
	CodeConflict           Code = 110 // state changed underneath (e.g. if-unused delete)

	// Transient conditions: the same call may succeed later or elsewhere.
	CodeNotLeader   Code = 200 // this node does not lead the group; see the leader hint
	CodeTimeout     Code = 201 // the deadline passed before the outcome was known
	CodeUnavailable Code = 202 // no quorum, or the group or node is not running
	CodeOverloaded  Code = 203 // flow control: memory, disk or queue watermark crossed
	CodeNoSpace     Code = 204 // the disk is full (ENOSPC); writes resume when space is freed
	CodeStopped     Code = 205 // the node or group is shutting down

	// Fail-stop: the component refuses all further writes.
	CodeStorageFailed Code = 300 // a write or fsync failed; durability can no longer be promised
)

type codeInfo struct {
	name      string
	retriable bool
}

var codeTable = map[Code]codeInfo{
	CodeInternal:           {"internal", false},
	CodeInvalidArgument:    {"invalid_argument", false},
	CodeNotFound:           {"not_found", false},
	CodePreconditionFailed: {"precondition_failed", false},
	CodeAccessRefused:      {"access_refused", false},
	CodeUnauthenticated:    {"unauthenticated", false},
	CodeTooLarge:           {"too_large", false},
	CodeResourceLocked:     {"resource_locked", false},
	CodeNotSupported:       {"not_supported", false},
	CodeOutOfRange:         {"out_of_range", false},
	CodeCorrupt:            {"corrupt", false},
	CodeConflict:           {"conflict", false},
	CodeNotLeader:          {"not_leader", true},
	CodeTimeout:            {"timeout", true},
	CodeUnavailable:        {"unavailable", true},
	CodeOverloaded:         {"overloaded", true},
	CodeNoSpace:            {"no_space", true},
	CodeStopped:            {"stopped", true},
	CodeStorageFailed:      {"storage_failed", false},
}

// String returns the code's stable name, as used in JSON errors and logs.
func (c Code) String() string {
	if info, ok := codeTable[c]; ok {
		return info.name
	}
	return fmt.Sprintf("code_%d", uint16(c))
}

// Retriable reports whether the same call may succeed if repeated later or on
// another node. Unknown codes are not retriable.
func (c Code) Retriable() bool { return codeTable[c].retriable }

// Codes returns every defined code in ascending order.
func Codes() []Code {
	out := make([]Code, 0, len(codeTable))
	for c := range codeTable {
		out = append(out, c)
	}
	slices.Sort(out)
	return out
}

// CodeNamed returns the code whose String is name (as the HTTP API and
// the wire carry it), and false when no code has that name.
func CodeNamed(name string) (Code, bool) {
	for c := range codeTable {
		if c.String() == name {
			return c, true
		}
	}
	return 0, false
}

// Error is an error with a stable code. Msg says what went wrong in words a
// user can act on; Err, when set, is the underlying cause.
type Error struct {
	Code Code
	Msg  string
	Err  error
}

// Errorf returns an *Error with the given code. A %w verb in format becomes
// the wrapped cause.
func Errorf(code Code, format string, args ...any) *Error {
	wrapped := fmt.Errorf(format, args...)
	return &Error{Code: code, Msg: wrapped.Error(), Err: errors.Unwrap(wrapped)}
}

func (e *Error) Error() string {
	if e.Msg == "" {
		return e.Code.String()
	}
	return e.Msg
}

func (e *Error) Unwrap() error { return e.Err }

// Is makes errors.Is(err, &Error{Code: c}) true for any *Error with code c:
// a target with no message and no cause matches by code alone.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Msg == "" && t.Err == nil && t.Code == e.Code
}

// CodeOf returns the code of the first *Error in err's chain, or
// CodeInternal when there is none. CodeOf(nil) is 0.
func CodeOf(err error) Code {
	if err == nil {
		return 0
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// IsRetriable reports whether err carries a retriable code.
func IsRetriable(err error) bool { return err != nil && CodeOf(err).Retriable() }

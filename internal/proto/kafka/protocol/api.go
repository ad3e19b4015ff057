package protocol

//go:generate go run github.com/ferry-mq/ferry/internal/codegen/kafka -defs ../../../codegen/kafka/message -errors ../../../codegen/kafka/error_codes.txt -out .

import (
	"fmt"
)

// APIKey identifies a Kafka API (Produce is 0, Fetch 1, ...).
type APIKey int16

// String returns the API's name, e.g. "Produce".
func (k APIKey) String() string {
	if a, ok := LookupAPI(k); ok {
		return a.Name
	}
	return fmt.Sprintf("APIKey(%d)", int16(k))
}

// VersionRange is an inclusive range of versions; it is empty when
// Min > Max.
type VersionRange struct{ Min, Max int16 }

// Contains reports whether v is in the range.
func (r VersionRange) Contains(v int16) bool { return v >= r.Min && v <= r.Max }

// Listeners says which kinds of Kafka server accept an API, from the
// definitions' "listeners"; Ferry answers what a KRaft broker answers.
type Listeners uint8

const (
	ListenerZKBroker Listeners = 1 << iota
	ListenerBroker
	ListenerController
)

// API describes one Kafka API as the definitions give it.
type API struct {
	Key      APIKey
	Name     string       // e.g. "Produce"
	Versions VersionRange // the versions the definitions describe
	// FlexibleFrom is the first flexible version (compact lengths, tagged
	// fields, header v2/v1), or -1 when no version is.
	FlexibleFrom int16
	// Deprecated are versions Kafka deprecates (still served).
	Deprecated VersionRange
	// LatestVersionUnstable marks an API whose highest version is still in
	// development in Kafka: a server should not advertise it.
	LatestVersionUnstable bool
	Listeners             Listeners
}

// IsFlexible reports whether version uses the flexible encoding.
func (a API) IsFlexible(version int16) bool {
	return a.FlexibleFrom >= 0 && version >= a.FlexibleFrom
}

// RequestHeaderVersion returns the request header version that precedes a
// request of this API at version: 2 for flexible versions, else 1, except
// that ControlledShutdown v0 uses header v0 (no client id). It is defined
// for versions outside Versions too (by the same rule), so a server can
// parse the header of a request whose version it will refuse.
func (a API) RequestHeaderVersion(version int16) int16 {
	switch {
	case a.IsFlexible(version):
		return requestHeaderVersionMax
	case a.Key == APIKeyControlledShutdown && version == 0:
		return 0
	}
	return 1
}

// ResponseHeaderVersion returns the response header version that precedes
// a response of this API at version: 1 for flexible versions, else 0,
// except that ApiVersions responses always use header v0 (a client reads
// them before it knows which versions the server speaks).
func (a API) ResponseHeaderVersion(version int16) int16 {
	if a.IsFlexible(version) && a.Key != APIKeyApiVersions {
		return responseHeaderVersionMax
	}
	return 0
}

// LookupAPI returns the API with the given key.
func LookupAPI(key APIKey) (API, bool) {
	if key < 0 || key > apiKeyMax || apiTable[key].Name == "" {
		return API{}, false
	}
	return apiTable[key], true
}

// APIs returns every API in key order; the slice is the caller's.
func APIs() []API {
	out := make([]API, 0, len(apiTable))
	for _, a := range apiTable {
		if a.Name != "" {
			out = append(out, a)
		}
	}
	return out
}

// Message is what every generated request and response implements.
type Message interface {
	// APIKey returns the key of the message's API.
	APIKey() APIKey
	// Encode appends the message's wire form at version to dst.
	Encode(dst []byte, version int16) []byte
	// Decode replaces the message with the one in src (see the generated
	// Decode methods for the aliasing contract).
	Decode(src []byte, version int16) error
	// Validate reports a value that version cannot carry.
	Validate(version int16) error
	// Default resets every field to its default.
	Default()
}

// Request is a generated request type.
type Request interface {
	Message
	isRequest()
}

// Response is a generated response type.
type Response interface {
	Message
	isResponse()
}

// NewRequest returns a new request of the API with the given key, with
// every field at its default.
func NewRequest(key APIKey) (Request, bool) {
	if _, ok := LookupAPI(key); !ok {
		return nil, false
	}
	r := requestConstructors[key]()
	r.Default()
	return r, true
}

// NewResponse returns a new response of the API with the given key, with
// every field at its default.
func NewResponse(key APIKey) (Response, bool) {
	if _, ok := LookupAPI(key); !ok {
		return nil, false
	}
	r := responseConstructors[key]()
	r.Default()
	return r, true
}

// ErrorCode is a Kafka error code, as carried in responses.
type ErrorCode int16

type errorCodeInfo struct {
	name      string
	retriable bool
}

func (c ErrorCode) info() (errorCodeInfo, bool) {
	if c < -1 || c > errorCodeMax || errorCodeTable[c+1].name == "" {
		return errorCodeInfo{}, false
	}
	return errorCodeTable[c+1], true
}

// String returns Kafka's name for the code, e.g. "NOT_LEADER_OR_FOLLOWER".
func (c ErrorCode) String() string {
	if info, ok := c.info(); ok {
		return info.name
	}
	return fmt.Sprintf("ERROR_CODE_%d", int16(c))
}

// Retriable reports whether Kafka clients may retry a request that failed
// with this code. Unknown codes are not retriable.
func (c ErrorCode) Retriable() bool {
	info, _ := c.info()
	return info.retriable
}

// Known reports whether the code is in Kafka's table.
func (c ErrorCode) Known() bool {
	_, ok := c.info()
	return ok
}

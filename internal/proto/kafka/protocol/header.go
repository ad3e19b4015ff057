package protocol

import (
	"github.com/ferry-mq/ferry/internal/base"
)

// RequestHeader is the header in front of every request body
// (RequestHeader.json). Version 0 has no client id (only ControlledShutdown
// v0 uses it); version 1 adds the client id; version 2, used by flexible
// requests, adds tagged fields. The client id is always a classic int16
// length string, even in version 2, so that any server can read the header
// of an ApiVersions request of any version.
type RequestHeader struct {
	APIKey        APIKey
	APIVersion    int16
	CorrelationID int32
	// ClientID is "" when ClientIDNull or in header v0.
	ClientID     string
	ClientIDNull bool
	// UnknownTags are the header's tagged fields (v2); none are defined.
	UnknownTags []TaggedField
	// HeaderVersion is the header version, decided by the API and version.
	HeaderVersion int16
}

// requestHeaderFixedBytes is the size of api key, api version and
// correlation id, the part every header version shares.
const requestHeaderFixedBytes = 8

// ParseRequestHeader parses the header at the start of a request frame
// (the bytes after the size prefix) and returns it and the body after it,
// which aliases frame.
//
// Errors, all *base.Error:
//   - not_supported wrapping ErrUnknownAPIKey: the key is no Kafka API. h
//     holds the key, version and correlation id; body is nil. Kafka closes
//     the connection.
//   - not_supported wrapping ErrUnsupportedVersion: the API does not have
//     that version. The header is parsed in full (its version follows from
//     the API's flexible versions) and body is returned, so a server can
//     still answer ApiVersions with UNSUPPORTED_VERSION, as Kafka does.
//   - corrupt or too_large wrapping a *DecodeError: the header is malformed.
//     h holds whatever was read (the correlation id, when there were 8
//     bytes).
func ParseRequestHeader(frame []byte) (h RequestHeader, body []byte, err error) {
	r := newReader(frame)
	h.APIKey = APIKey(r.int16("RequestHeader.RequestApiKey"))
	h.APIVersion = r.int16("RequestHeader.RequestApiVersion")
	h.CorrelationID = r.int32("RequestHeader.CorrelationId")
	if r.err != nil {
		return h, nil, r.finish("RequestHeader", 0)
	}
	api, ok := LookupAPI(h.APIKey)
	if !ok {
		return h, nil, base.Errorf(base.CodeNotSupported, "kafka: request with API key %d (correlation id %d): %w",
			int16(h.APIKey), h.CorrelationID, ErrUnknownAPIKey)
	}
	h.HeaderVersion = api.RequestHeaderVersion(h.APIVersion)
	if h.HeaderVersion > requestHeaderVersionMax {
		base.Bugf("kafka: header version %d beyond the definition's %d", h.HeaderVersion, requestHeaderVersionMax)
	}
	if h.HeaderVersion >= 1 {
		// ClientId's "flexibleVersions": "none": never a compact string.
		if p := r.nullableString(false, true, "RequestHeader.ClientId"); p != nil {
			h.ClientID = *p
		} else {
			h.ClientIDNull = r.err == nil
		}
	}
	if h.HeaderVersion >= requestHeaderFlexibleFrom {
		h.UnknownTags = r.unknownTags("RequestHeader")
	}
	if r.err != nil {
		return h, nil, r.finish("RequestHeader", h.HeaderVersion)
	}
	body = frame[r.off:]
	if !api.Versions.Contains(h.APIVersion) {
		return h, body, base.Errorf(base.CodeNotSupported, "kafka: %s version %d (supported %d-%d): %w",
			api.Name, h.APIVersion, api.Versions.Min, api.Versions.Max, ErrUnsupportedVersion)
	}
	return h, body, nil
}

// AppendRequestHeader appends h in its HeaderVersion's wire form (a client
// writes this; Ferry's tests do).
func AppendRequestHeader(dst []byte, h *RequestHeader) []byte {
	if !(h.HeaderVersion >= 0 && h.HeaderVersion <= requestHeaderVersionMax) {
		base.Bugf("kafka: request header version %d", h.HeaderVersion)
	}
	dst = appendUint16(dst, uint16(h.APIKey))
	dst = appendUint16(dst, uint16(h.APIVersion))
	dst = appendUint32(dst, uint32(h.CorrelationID))
	if h.HeaderVersion >= 1 {
		if h.ClientIDNull {
			dst = appendLength(dst, false, true, -1)
		} else {
			dst = appendString(dst, false, h.ClientID)
		}
	}
	if h.HeaderVersion >= requestHeaderFlexibleFrom {
		dst = appendTags(dst, h.UnknownTags)
	}
	return dst
}

// AppendResponseHeader appends the response header of the given version
// (API.ResponseHeaderVersion): the correlation id, then in version 1 an
// empty tagged-field section.
func AppendResponseHeader(dst []byte, correlationID int32, headerVersion int16) []byte {
	if !(headerVersion >= 0 && headerVersion <= responseHeaderVersionMax) {
		base.Bugf("kafka: response header version %d", headerVersion)
	}
	dst = appendUint32(dst, uint32(correlationID))
	if headerVersion >= responseHeaderFlexibleFrom {
		dst = append(dst, 0)
	}
	return dst
}

// ParseResponseHeader parses a response header of the given version and
// returns the correlation id and the body after it (aliasing frame).
// Unknown tagged fields are skipped.
func ParseResponseHeader(frame []byte, headerVersion int16) (correlationID int32, body []byte, err error) {
	if headerVersion < 0 || headerVersion > responseHeaderVersionMax {
		return 0, nil, base.Errorf(base.CodeNotSupported, "kafka: response header version %d: %w", headerVersion, ErrUnsupportedVersion)
	}
	r := newReader(frame)
	correlationID = r.int32("ResponseHeader.CorrelationId")
	if headerVersion >= responseHeaderFlexibleFrom {
		r.unknownTags("ResponseHeader")
	}
	if r.err != nil {
		return correlationID, nil, r.finish("ResponseHeader", headerVersion)
	}
	return correlationID, frame[r.off:], nil
}

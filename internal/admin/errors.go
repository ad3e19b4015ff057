package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/ferry-mq/ferry/internal/base"
)

// httpStatus maps every base code to the HTTP status of its JSON error:
// the one table of the mapping (docs/http-api.md prints it).
var httpStatus = map[base.Code]int{
	base.CodeInternal:           http.StatusInternalServerError,
	base.CodeInvalidArgument:    http.StatusBadRequest,
	base.CodeNotFound:           http.StatusNotFound,
	base.CodePreconditionFailed: http.StatusConflict,
	base.CodeAccessRefused:      http.StatusForbidden,
	base.CodeUnauthenticated:    http.StatusUnauthorized,
	base.CodeTooLarge:           http.StatusRequestEntityTooLarge,
	base.CodeResourceLocked:     http.StatusConflict,
	base.CodeNotSupported:       http.StatusNotImplemented,
	base.CodeOutOfRange:         http.StatusBadRequest,
	base.CodeCorrupt:            http.StatusInternalServerError,
	base.CodeConflict:           http.StatusConflict,
	base.CodeNotLeader:          http.StatusServiceUnavailable,
	base.CodeTimeout:            http.StatusGatewayTimeout,
	base.CodeUnavailable:        http.StatusServiceUnavailable,
	base.CodeOverloaded:         http.StatusServiceUnavailable,
	base.CodeNoSpace:            http.StatusInsufficientStorage,
	base.CodeStopped:            http.StatusServiceUnavailable,
	base.CodeStorageFailed:      http.StatusServiceUnavailable,
}

// StatusOf returns the HTTP status of an error's code.
func StatusOf(c base.Code) int {
	if st, ok := httpStatus[c]; ok {
		return st
	}
	return http.StatusInternalServerError
}

// ErrorBody is every error response: {"error": {"code": "not_found",
// "message": "..."}}. Code is the stable name of a base code; Retriable
// says whether the same request may succeed later.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the body of ErrorBody.
type ErrorDetail struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	Retriable bool   `json:"retriable,omitempty"`
}

// errorBody builds the JSON error of err.
func errorBody(err error) (int, ErrorBody) {
	code := base.CodeOf(err)
	msg := err.Error()
	var be *base.Error
	if errors.As(err, &be) && be.Msg != "" {
		msg = be.Error()
	}
	return StatusOf(code), ErrorBody{Error: ErrorDetail{Code: code.String(), Message: msg, Retriable: code.Retriable()}}
}

// writeJSON writes v with status. An encoding failure after the header
// is sent can only be logged by the caller: the status is already out.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	if status == http.StatusNoContent || v == nil {
		return nil
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// decodeBody reads a JSON request body of at most
// base.AdminRequestBodyBytesMax into v, refusing unknown fields (a typo
// in a field name is an error, not a silently ignored setting) and
// trailing data. An empty body leaves v as it is when optional.
func decodeBody(r *http.Request, v any, optional bool) error {
	if r.Body == nil {
		if optional {
			return nil
		}
		return base.Errorf(base.CodeInvalidArgument, "the request needs a JSON body")
	}
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return base.Errorf(base.CodeInvalidArgument, "Content-Type %q: send application/json", ct)
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, base.AdminRequestBodyBytesMax+1))
	if err != nil {
		return base.Errorf(base.CodeInvalidArgument, "reading the request body: %w", err)
	}
	if len(data) > base.AdminRequestBodyBytesMax {
		return base.Errorf(base.CodeTooLarge, "the request body exceeds %d bytes (AdminRequestBodyBytesMax); send fewer or smaller messages per request",
			base.AdminRequestBodyBytesMax)
	}
	return decodeJSON(data, v, optional)
}

// decodeJSON decodes one JSON value from data into v, as decodeBody.
func decodeJSON(data []byte, v any, optional bool) error {
	if len(strings.TrimSpace(string(data))) == 0 {
		if optional {
			return nil
		}
		return base.Errorf(base.CodeInvalidArgument, "the request needs a JSON body")
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return base.Errorf(base.CodeInvalidArgument, "the request body is not the expected JSON: %v", err)
	}
	if dec.More() {
		return base.Errorf(base.CodeInvalidArgument, "the request body has data after its JSON value")
	}
	return nil
}

// invalid is a CodeInvalidArgument error.
func invalid(format string, args ...any) error {
	return base.Errorf(base.CodeInvalidArgument, format, args...)
}

// notSupported says which broker method a route needs.
func notSupported(what, method string) error {
	return base.Errorf(base.CodeNotSupported, "%s is not available in this version: the broker does not implement %s yet", what, method)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}

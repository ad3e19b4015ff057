package kafka

import (
	"reflect"
	"regexp"

	"github.com/ferry-mq/ferry/internal/proto/kafka/protocol"
)

// handler handles one request: it decodes r.body, acts, and completes
// r.slot now or from a delayed goroutine (conn.delay). A non-nil error
// closes the connection (a body that does not decode).
type handler func(c *conn, r *request) error

// supportedAPI is one API Ferry serves and the versions it serves.
type supportedAPI struct {
	key      protocol.APIKey
	min, max int16
	h        handler
}

// apis is every API Ferry serves. The minimum versions are Apache Kafka
// 4.0's (KIP-896): older Produce and Fetch versions cannot carry v2 record
// batches. The maximum versions are the codec's (docs/kafka.md lists
// them). Every other API is absent from ApiVersions and answered with an
// error response (respondUnsupported). It is filled in init: handlers
// refer back to it (ApiVersions lists it).
var apis []supportedAPI

// apiByKey indexes apis by key; missing entries are unsupported.
var apiByKey map[protocol.APIKey]*supportedAPI

func init() {
	apis = []supportedAPI{
		{protocol.APIKeyProduce, 3, 11, handleProduce},
		{protocol.APIKeyFetch, 4, 17, handleFetch},
		{protocol.APIKeyListOffsets, 1, 10, handleListOffsets},
		{protocol.APIKeyMetadata, 0, 12, handleMetadata},
		{protocol.APIKeyOffsetCommit, 2, 9, handleOffsetCommit},
		{protocol.APIKeyOffsetFetch, 1, 9, handleOffsetFetch},
		{protocol.APIKeyFindCoordinator, 0, 6, handleFindCoordinator},
		{protocol.APIKeyJoinGroup, 0, 9, handleJoinGroup},
		{protocol.APIKeyHeartbeat, 0, 4, handleHeartbeat},
		{protocol.APIKeyLeaveGroup, 0, 5, handleLeaveGroup},
		{protocol.APIKeySyncGroup, 0, 5, handleSyncGroup},
		{protocol.APIKeyDescribeGroups, 0, 5, handleDescribeGroups},
		{protocol.APIKeyListGroups, 0, 5, handleListGroups},
		{protocol.APIKeySaslHandshake, 0, 1, handleSaslHandshake},
		{protocol.APIKeyApiVersions, 0, 4, handleAPIVersions},
		{protocol.APIKeyCreateTopics, 2, 7, handleCreateTopics},
		{protocol.APIKeyDeleteTopics, 1, 6, handleDeleteTopics},
		{protocol.APIKeyInitProducerId, 0, 5, handleInitProducerID},
		{protocol.APIKeyDescribeConfigs, 1, 4, handleDescribeConfigs},
		{protocol.APIKeyAlterConfigs, 0, 2, handleAlterConfigs},
		{protocol.APIKeySaslAuthenticate, 0, 2, handleSaslAuthenticate},
		{protocol.APIKeyCreatePartitions, 0, 3, handleCreatePartitions},
		{protocol.APIKeyDeleteGroups, 0, 2, handleDeleteGroups},
		{protocol.APIKeyIncrementalAlterConfigs, 0, 1, handleIncrementalAlterConfigs},
		{protocol.APIKeyOffsetDelete, 0, 0, handleOffsetDelete},
		{protocol.APIKeyDescribeCluster, 0, 1, handleDescribeCluster},
	}
	apiByKey = make(map[protocol.APIKey]*supportedAPI, len(apis))
	for i := range apis {
		apiByKey[apis[i].key] = &apis[i]
	}
}

// lookupHandler returns the handler of an API at version, and false when
// Ferry does not serve that API or version.
func lookupHandler(key protocol.APIKey, version int16) (handler, bool) {
	a := apiByKey[key]
	if a == nil || version < a.min || version > a.max {
		return nil, false
	}
	return a.h, true
}

// apiVersionList is the ApiKeys of an ApiVersions response.
func apiVersionList() []protocol.ApiVersionsResponseApiVersion {
	out := make([]protocol.ApiVersionsResponseApiVersion, 0, len(apis))
	for _, a := range apis {
		out = append(out, protocol.ApiVersionsResponseApiVersion{ApiKey: int16(a.key), MinVersion: a.min, MaxVersion: a.max})
	}
	return out
}

// clientSoftwareRe is what ApiVersions v3+ accepts as a client software
// name or version (Kafka's ApiVersionsRequest.isValid).
var clientSoftwareRe = regexp.MustCompile(`^[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?$`)

func handleAPIVersions(c *conn, r *request) error {
	var req protocol.ApiVersionsRequest
	if err := req.Decode(r.body, r.hdr.APIVersion); err != nil {
		// Kafka answers an ApiVersions it cannot parse with
		// INVALID_REQUEST rather than closing: a client may send a
		// newer layout of the same version.
		resp := apiVersionsResponse(protocol.ErrorCodeInvalidRequest)
		c.respond(r, resp)
		return nil
	}
	code := protocol.ErrorCodeNone
	if r.hdr.APIVersion >= 3 && (!clientSoftwareRe.MatchString(req.ClientSoftwareName) || !clientSoftwareRe.MatchString(req.ClientSoftwareVersion)) {
		code = protocol.ErrorCodeInvalidRequest
	}
	c.respond(r, apiVersionsResponse(code))
	return nil
}

func apiVersionsResponse(code protocol.ErrorCode) *protocol.ApiVersionsResponse {
	var resp protocol.ApiVersionsResponse
	resp.Default()
	resp.ErrorCode = int16(code)
	resp.ApiKeys = apiVersionList()
	return &resp
}

// respondAPIVersionsFallback answers an ApiVersions of a version Ferry does
// not know with a version-0 response carrying UNSUPPORTED_VERSION and the
// supported versions, so the client can retry with one it shares (KIP-511).
func (c *conn) respondAPIVersionsFallback(r *request) {
	// Version 0, whose response header is version 0 like every
	// ApiVersions response's.
	c.answer(r, apiVersionsResponse(protocol.ErrorCodeUnsupportedVersion), 0, 0, false)
}

// respondUnsupported answers a request of an API or version Ferry does not
// serve: the API's default response with UNSUPPORTED_VERSION in its
// top-level error code when it has one. The response is well formed at
// the request's version, so the client reads it and fails the call rather
// than losing the connection.
func (c *conn) respondUnsupported(r *request) {
	resp, ok := protocol.NewResponse(r.hdr.APIKey)
	if !ok {
		r.slot.complete(nil, true) // cannot happen: the header parsed
		return
	}
	if f := reflect.ValueOf(resp).Elem().FieldByName("ErrorCode"); f.IsValid() && f.Kind() == reflect.Int16 {
		f.SetInt(int64(protocol.ErrorCodeUnsupportedVersion))
	}
	c.log.Debug("unsupported request", "api", r.api.Name, "version", r.hdr.APIVersion)
	version := r.hdr.APIVersion
	if !r.api.Versions.Contains(version) {
		// A version beyond the definitions: the codec cannot encode it,
		// and the client cannot expect an answer it can parse.
		r.slot.complete(nil, true)
		return
	}
	c.respond(r, resp)
}

package admin

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// table is every route of the API, in the order the OpenAPI document and
// docs/http-api.md list them.
func (s *Server) table() []*route {
	const (
		get, put, post, del    = http.MethodGet, http.MethodPut, http.MethodPost, http.MethodDelete
		ok, created, noContent = http.StatusOK, http.StatusCreated, http.StatusNoContent
		notFound, conflict     = http.StatusNotFound, http.StatusConflict
		tooLarge, notImpl      = http.StatusRequestEntityTooLarge, http.StatusNotImplemented
		noSpace                = http.StatusInsufficientStorage
	)
	unavailable := []int{http.StatusServiceUnavailable}
	pIfUnused := param{"if_unused", "boolean", "delete only if nothing uses it"}
	pIfEmpty := param{"if_empty", "boolean", "delete only if it holds no messages"}
	return []*route{
		// Health and documents.
		{method: get, path: "/healthz", id: "healthz", summary: "Liveness: the process runs and its storage has not failed",
			tag: "health", access: accessPublic, out: HealthStatus{}, status: ok, errors: unavailable, handle: s.healthz},
		{method: get, path: "/readyz", id: "readyz", summary: "Readiness: the node takes requests (bootstrapped, not stopping)",
			tag: "health", access: accessPublic, out: HealthStatus{}, status: ok, errors: unavailable, handle: s.readyz},
		{method: get, path: "/metrics", id: "metrics", summary: "Prometheus metrics (text exposition format); docs/metrics.md lists them",
			tag: "health", access: accessPublic, status: ok, contentType: "text/plain",
			raw: promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})},
		{method: get, path: "/api/openapi.json", id: "openapi", summary: "This API's OpenAPI 3.1 document",
			tag: "health", access: accessPublic, status: ok, contentType: "application/json", raw: http.HandlerFunc(s.serveDoc)},

		// Node and cluster.
		{method: get, path: "/api/overview", id: "getOverview", summary: "The node at a glance: entities, messages, connections, flow control",
			tag: "node", access: accessMonitor, out: Overview{}, status: ok, handle: s.overview},
		{method: get, path: "/api/cluster", id: "getCluster", summary: "The cluster's nodes and the leaders of a tenant's stream partitions",
			tag: "node", access: accessMonitor, query: []param{pTenant}, out: ClusterStatus{}, status: ok, handle: s.cluster},
		{method: get, path: "/api/connections", id: "listConnections", summary: "Client connections to this node",
			tag: "node", access: accessMonitor, out: []Connection{}, status: ok, handle: s.listConnections},
		{method: del, path: "/api/connections/{id...}", id: "closeConnection", summary: "Close a client connection",
			tag: "node", access: accessAdmin, query: []param{{"reason", "string", "told to the client where its protocol can say it"}},
			status: noContent, errors: []int{notFound}, handle: s.closeConnection},
		{method: get, path: "/api/groups", id: "listGroups", summary: "Consumer groups coordinated by this node",
			tag: "node", access: accessMonitor, out: []ConsumerGroup{}, status: ok, errors: []int{notImpl}, handle: s.listGroups},

		// Tenants.
		{method: get, path: "/api/tenants", id: "listTenants", summary: "Tenants (virtual hosts)",
			tag: "tenants", access: accessMonitor, out: []Tenant{}, status: ok, errors: []int{notFound}, handle: s.asAdmin(s.listTenants)},
		{method: get, path: "/api/tenants/{tenant...}", id: "getTenant", summary: "One tenant",
			tag: "tenants", access: accessMonitor, out: Tenant{}, status: ok, errors: []int{notFound}, handle: s.asAdmin(s.getTenant)},
		{method: put, path: "/api/tenants/{tenant...}", id: "putTenant", summary: "Create a tenant (201; 204 when it exists)",
			tag: "tenants", access: accessAdmin, status: noContent, errors: []int{created, notFound, tooLarge}, handle: s.asAdmin(s.putTenant)},
		{method: del, path: "/api/tenants/{tenant...}", id: "deleteTenant", summary: "Delete a tenant and everything in it; its connections are closed",
			tag: "tenants", access: accessAdmin, status: noContent, errors: []int{notFound}, handle: s.asAdmin(s.deleteTenant)},

		// Exchanges.
		{method: get, path: "/api/exchanges", id: "listExchanges", summary: "A tenant's exchanges",
			tag: "exchanges", access: accessMonitor, query: pList, out: []Exchange{}, status: ok, handle: s.listExchanges},
		{method: get, path: "/api/exchanges/{name}", id: "getExchange", summary: "One exchange (amq.default names the default exchange)",
			tag: "exchanges", access: accessMonitor, query: []param{pTenant}, out: Exchange{}, status: ok, errors: []int{notFound}, handle: s.getExchange},
		{method: put, path: "/api/exchanges/{name}", id: "putExchange", summary: "Declare an exchange",
			tag: "exchanges", access: accessUser, query: []param{pTenant}, in: ExchangeSpec{}, status: noContent,
			errors: []int{notFound, conflict, tooLarge}, handle: s.putExchange},
		{method: del, path: "/api/exchanges/{name}", id: "deleteExchange", summary: "Delete an exchange and its bindings",
			tag: "exchanges", access: accessUser, query: []param{pTenant, pIfUnused}, status: noContent,
			errors: []int{notFound, conflict}, handle: s.deleteExchange},
		{method: post, path: "/api/exchanges/{name}/publish", id: "publish", summary: "Publish messages to an exchange; answers once each is durable or failed",
			tag: "messages", access: accessUser, query: []param{pTenant}, in: PublishRequest{}, out: PublishResponse{}, status: ok,
			errors: []int{notFound, tooLarge, noSpace}, handle: func(c *call) (any, error) { return s.publish(c, exchangeName(c.path("name")), "") }},

		// Queues.
		{method: get, path: "/api/queues", id: "listQueues", summary: "A tenant's queues",
			tag: "queues", access: accessMonitor, query: append(pList[:len(pList):len(pList)], param{"stats", "boolean", "include each queue's counts and rates"}),
			out: []Queue{}, status: ok, handle: s.listQueues},
		{method: get, path: "/api/queues/{name}", id: "getQueue", summary: "One queue with its counts (ready, unacked, delayed, consumers) and rates",
			tag: "queues", access: accessMonitor, query: []param{pTenant}, out: Queue{}, status: ok, errors: []int{notFound}, handle: s.getQueue},
		{method: put, path: "/api/queues/{name}", id: "putQueue", summary: "Declare a queue (or, with type stream, a stream)",
			tag: "queues", access: accessUser, query: []param{pTenant}, in: QueueSpec{}, inOptional: true, status: noContent,
			errors: []int{notFound, conflict, tooLarge}, handle: s.putQueue},
		{method: del, path: "/api/queues/{name}", id: "deleteQueue", summary: "Delete a queue; a user with the administrator tag may delete another connection's exclusive queue (its consumers are cancelled), as with RabbitMQ's management API, also when that connection's node, the queue's only replica, is down (after waiting for it up to 5 s)",
			tag: "queues", access: accessUser, query: []param{pTenant, pIfUnused, pIfEmpty}, out: Deleted{}, status: ok,
			errors: []int{notFound, conflict}, handle: s.deleteQueue},
		{method: del, path: "/api/queues/{name}/messages", id: "purgeQueue", summary: "Purge a queue's ready messages",
			tag: "queues", access: accessUser, query: []param{pTenant}, out: Deleted{}, status: ok, errors: []int{notFound, conflict}, handle: s.purgeQueue},
		{method: post, path: "/api/queues/{name}/publish", id: "publishToQueue", summary: "Publish messages to a queue or stream through the default exchange",
			tag: "messages", access: accessUser, query: []param{pTenant}, in: PublishRequest{}, out: PublishResponse{}, status: ok,
			errors: []int{notFound, tooLarge, noSpace}, handle: func(c *call) (any, error) { return s.publish(c, "", c.path("name")) }},
		{method: post, path: "/api/queues/{name}/get", id: "getMessages", summary: "Fetch messages from a queue (auto or manual ack)",
			tag: "messages", access: accessUser, query: []param{pTenant}, in: GetRequest{}, inOptional: true, out: GetResponse{}, status: ok,
			errors: []int{notFound, conflict, tooLarge}, handle: s.get},
		{method: post, path: "/api/queues/{name}/ack", id: "ackMessages", summary: "Acknowledge or return messages fetched with ack_mode manual",
			tag: "messages", access: accessUser, query: []param{pTenant}, in: AckRequest{}, out: AckResponse{}, status: ok,
			errors: []int{notFound, tooLarge}, handle: s.ack},

		// Streams.
		{method: get, path: "/api/streams", id: "listStreams", summary: "A tenant's streams",
			tag: "streams", access: accessMonitor, query: pList, out: []Stream{}, status: ok, handle: s.listStreams},
		{method: get, path: "/api/streams/{name}", id: "getStream", summary: "One stream with its partitions' offsets and message counts",
			tag: "streams", access: accessMonitor, query: []param{pTenant}, out: Stream{}, status: ok, errors: []int{notFound}, handle: s.getStream},
		{method: put, path: "/api/streams/{name}", id: "putStream", summary: "Create a stream",
			tag: "streams", access: accessUser, query: []param{pTenant}, in: StreamSpec{}, inOptional: true, status: noContent,
			errors: []int{notFound, conflict, tooLarge}, handle: s.putStream},
		{method: del, path: "/api/streams/{name}", id: "deleteStream", summary: "Delete a stream",
			tag: "streams", access: accessUser, query: []param{pTenant}, status: noContent, errors: []int{notFound}, handle: s.deleteStream},
		{method: post, path: "/api/streams/{name}/partitions", id: "addPartitions", summary: "Grow a stream to more partitions",
			tag: "streams", access: accessUser, query: []param{pTenant}, in: PartitionsSpec{}, status: noContent,
			errors: []int{notFound, tooLarge}, handle: s.addPartitions},
		{method: get, path: "/api/streams/{name}/messages", id: "readStream", summary: "Read messages of a stream from an offset",
			tag: "messages", access: accessUser, query: []param{pTenant,
				{"offset", "string", "first (default), last, next or an offset"},
				{"count", "integer", "at most this many messages (default 1, maximum AdminGetMessagesMax)"},
				{"timeout_ms", "integer", "wait at most this long for them (default 1000: AdminStreamReadWaitDefault; maximum AdminStreamReadWaitMax)"}},
			out: StreamReadResponse{}, status: ok, errors: []int{notFound}, handle: s.readStream},

		// Bindings.
		{method: get, path: "/api/bindings", id: "listBindings", summary: "A tenant's bindings",
			tag: "bindings", access: accessMonitor, query: []param{pTenant,
				{"source", "string", "only bindings from this exchange"}, {"destination", "string", "only bindings to this queue, stream or exchange"}},
			out: []Binding{}, status: ok, handle: s.listBindings},
		{method: post, path: "/api/bindings", id: "bind", summary: "Create a binding",
			tag: "bindings", access: accessUser, query: []param{pTenant}, in: Binding{}, status: created,
			errors: []int{notFound, tooLarge}, handle: func(c *call) (any, error) { return s.bind(c, false) }},
		{method: del, path: "/api/bindings", id: "unbind", summary: "Delete a binding (the body names it)",
			tag: "bindings", access: accessUser, query: []param{pTenant}, in: Binding{}, status: noContent,
			errors: []int{notFound, tooLarge}, handle: func(c *call) (any, error) { return s.bind(c, true) }},

		// Users and permissions.
		{method: get, path: "/api/users", id: "listUsers", summary: "Users, with their tags and permissions",
			tag: "users", access: accessAdmin, out: []User{}, status: ok, errors: []int{notFound}, handle: s.asAdmin(s.listUsers)},
		{method: get, path: "/api/users/{user}", id: "getUser", summary: "One user",
			tag: "users", access: accessAdmin, out: User{}, status: ok, errors: []int{notFound}, handle: s.getUser},
		{method: put, path: "/api/users/{user}", id: "putUser", summary: "Create (201) or update (204) a user; the node stores only hashes of the password",
			tag: "users", access: accessAdmin, in: UserSpec{}, status: noContent, errors: []int{created, notFound, tooLarge}, handle: s.putUser},
		{method: del, path: "/api/users/{user}", id: "deleteUser", summary: "Delete a user; its connections are closed",
			tag: "users", access: accessAdmin, status: noContent, errors: []int{notFound, conflict}, handle: s.asAdmin(s.deleteUser)},
		{method: get, path: "/api/permissions", id: "listPermissions", summary: "Permissions, by user and tenant",
			tag: "users", access: accessAdmin, query: []param{{"tenant", "string", "only this tenant's"}, {"user", "string", "only this user's"}},
			out: []Permission{}, status: ok, errors: []int{notFound}, handle: s.asAdmin(s.listPermissions)},
		{method: put, path: "/api/permissions/{user}", id: "putPermission", summary: "Set a user's permission in a tenant",
			tag: "users", access: accessAdmin, query: []param{pTenant}, in: Permission{}, status: noContent,
			errors: []int{notFound, tooLarge}, handle: s.putPermission},
		{method: del, path: "/api/permissions/{user}", id: "deletePermission", summary: "Remove a user's permission in a tenant",
			tag: "users", access: accessAdmin, query: []param{pTenant}, status: noContent, errors: []int{notFound}, handle: s.asAdmin(s.deletePermission)},

		// Policies.
		{method: get, path: "/api/policies", id: "listPolicies", summary: "A tenant's policies",
			tag: "policies", access: accessPolicy, query: []param{pTenant}, out: []Policy{}, status: ok, errors: []int{notFound}, handle: s.listPolicies},
		{method: get, path: "/api/policies/{name}", id: "getPolicy", summary: "One policy",
			tag: "policies", access: accessPolicy, query: []param{pTenant}, out: Policy{}, status: ok, errors: []int{notFound}, handle: s.getPolicy},
		{method: put, path: "/api/policies/{name}", id: "putPolicy", summary: "Create or replace a policy",
			tag: "policies", access: accessPolicy, query: []param{pTenant}, in: Policy{}, status: noContent,
			errors: []int{notFound, tooLarge}, handle: s.putPolicy},
		{method: del, path: "/api/policies/{name}", id: "deletePolicy", summary: "Delete a policy",
			tag: "policies", access: accessPolicy, query: []param{pTenant}, status: noContent, errors: []int{notFound}, handle: s.deletePolicy},

		// Message history.
		{method: get, path: "/api/trace/{id}", id: "getTrace", summary: "A message's recorded history, by message id",
			tag: "trace", access: accessMonitor, query: []param{pTenant}, out: Trace{}, status: ok, errors: []int{notFound}, handle: s.trace},
		{method: put, path: "/api/tracing/{name}", id: "setTracing", summary: "Turn history recording on or off for an exchange, queue or stream",
			tag: "trace", access: accessAdmin, query: []param{pTenant}, in: TracingSpec{}, status: noContent, handle: s.setTracing},
	}
}

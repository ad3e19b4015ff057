// Package admin is Ferry's management HTTP API: /healthz and /readyz,
// JSON create/read/update/delete of tenants, exchanges, queues, streams,
// bindings, users, permissions and policies, per-entity stats with rates,
// connections (list, close), publish/get/ack for simple HTTP clients, the
// message-history query, the OpenAPI 3.1 document at /api/openapi.json,
// the Prometheus metrics at /metrics, and the web console under
// /console/ (docs/console.md).
//
// It owns the HTTP mapping of the broker's API: the route table
// (table.go) from which both the served mux and the OpenAPI document are
// built, the one table from base error codes to HTTP statuses (errors.go),
// HTTP basic authentication against the user store with a short login
// cache, the broker connections it opens on behalf of HTTP clients (one
// per user and tenant), the deliveries fetched with manual acks until
// their ack (pending.go), rates computed from the queues' counters
// (rates.go), and the metric collectors that read the broker at scrape
// time (metrics.go).
//
// New(broker, Config) returns a *Server, an http.Handler the composition
// root (internal/server) mounts on the HTTP listener; Close after the
// listener stopped.
//
// It must never: import a package below the broker (test/layering: base,
// auth and broker only; the controller's views are read through their
// fields and methods); keep message bodies beyond a request; update a
// metric per message (collectors read the broker's counters at scrape
// time); answer an API error that is not JSON with a stable code; serve
// an /api route that the OpenAPI document does not describe; let the
// console reach the broker other than through the API's handlers.
//
// The console (console*.go, templates and htmx in console/) renders
// html/template pages from what the API's handlers return: every page
// and form calls a route of the table by its operation id (invoke), with
// the same tag check, so it shows and does exactly what the JSON API
// would for its user. Its logins are cookie sessions (HttpOnly,
// SameSite=Strict) bounded by AdminConsoleSessionsMax, and every form
// post carries the session's CSRF token and passes Go's cross-origin
// check.
//
// Tenants, users, permissions and policies go through the caller's
// broker connection (broker.Conn's administration calls), which checks
// its tags as RabbitMQ does; the route table checks them too, so a
// refusal is 403 either way.
//
// # What the broker does not offer yet
//
// The storage and Raft metrics (fsync latency, leader changes, proposals,
// commit latency) and the bytes and errors of the other front ends come
// from Config.Engine, which the composition root fills once the broker
// exposes its engine's figures.
package admin

package admin

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/ferry-mq/ferry/internal/base"
)

// actionTable is every console form post, by path. Each runs the same
// API handlers as the JSON API (and so the same tag and permission
// checks), then redirects to the page that shows the result.
func (c *console) actionTable() map[string]consoleAction {
	return map[string]consoleAction{
		"/console/queues/create":      createQueue,
		"/console/queues/delete":      deleteQueueAction,
		"/console/queues/purge":       purgeQueueAction,
		"/console/queues/publish":     publishAction,
		"/console/queues/get":         getMessagesAction,
		"/console/streams/create":     createStream,
		"/console/streams/delete":     byName("deleteStream", "name", true, "/console/streams", "Stream '%s' deleted."),
		"/console/exchanges/create":   createExchange,
		"/console/exchanges/delete":   deleteExchangeAction,
		"/console/bindings/create":    func(q *consoleReq) (string, string, error) { return bindAction(q, false) },
		"/console/bindings/delete":    func(q *consoleReq) (string, string, error) { return bindAction(q, true) },
		"/console/connections/close":  closeConnectionAction,
		"/console/users/create":       createUser,
		"/console/users/delete":       byName("deleteUser", "user", false, "/console/users", "User '%s' deleted."),
		"/console/permissions/set":    func(q *consoleReq) (string, string, error) { return permissionAction(q, false) },
		"/console/permissions/delete": func(q *consoleReq) (string, string, error) { return permissionAction(q, true) },
		"/console/policies/create":    createPolicy,
		"/console/policies/delete":    byName("deletePolicy", "name", true, "/console/policies", "Policy '%s' deleted."),
		"/console/tenants/create":     byName("putTenant", "tenant", false, "/console/users", "Tenant '%s' created."),
		"/console/tenants/delete":     byName("deleteTenant", "tenant", false, "/console/users", "Tenant '%s' deleted."),
		"/console/tracing/set":        setTracingAction,
	}
}

// byName is an action on the entity named by the form field "name":
// one call of route id, with the name as its path wildcard key and, when
// tenantScoped, the form's tenant; done formats the message with the
// name.
func byName(id, key string, tenantScoped bool, page, done string) consoleAction {
	return func(q *consoleReq) (string, string, error) {
		name, err := q.required("name")
		if err != nil {
			return "", "", err
		}
		var query url.Values
		if tenantScoped {
			query = q.tenantQuery()
		}
		return q.run(id, map[string]string{key: name}, query, nil, q.back(page), fmt.Sprintf(done, name))
	}
}

func (q *consoleReq) form(name string) string { return strings.TrimSpace(q.r.PostFormValue(name)) }

func (q *consoleReq) checked(name string) bool { return q.r.PostFormValue(name) != "" }

// required returns a non-empty form field or an invalid_argument error
// naming it.
func (q *consoleReq) required(name string) (string, error) {
	v := q.form(name)
	if v == "" {
		return "", invalid("the form field '%s' is required", name)
	}
	return v, nil
}

// jsonObject decodes an optional JSON object field (arguments, headers,
// a policy definition), keeping numbers exact.
func (q *consoleReq) jsonObject(name string) (map[string]any, error) {
	v := q.form(name)
	if v == "" {
		return nil, nil
	}
	dec := json.NewDecoder(strings.NewReader(v))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, invalid("the field '%s' must be a JSON object such as {\"x-max-length\": 1000}: %v", name, err)
	}
	if dec.More() {
		return nil, invalid("the field '%s' holds more than one JSON value", name)
	}
	return m, nil
}

// run makes one call of route id and, when it succeeds, answers the
// action with redirect and flash; when it fails, with the route's error.
func (q *consoleReq) run(id string, path map[string]string, query url.Values, body any, redirect, flash string) (string, string, error) {
	if _, err := q.api(id, path, query, body); err != nil {
		return "", "", err
	}
	return redirect, flash, nil
}

// back is the page of the request's tenant to return to.
func (q *consoleReq) back(path string, kv ...string) string {
	return consoleURL(path, append([]string{"tenant", q.tenant}, kv...)...)
}

// declared reads the fields a queue's and an exchange's declaration
// share: the required name, the optional JSON arguments and durable.
func (q *consoleReq) declared() (name string, args map[string]any, durable bool, err error) {
	if name, err = q.required("name"); err != nil {
		return "", nil, false, err
	}
	if args, err = q.jsonObject("arguments"); err != nil {
		return "", nil, false, err
	}
	return name, args, q.checked("durable"), nil
}

func createQueue(q *consoleReq) (string, string, error) {
	name, args, durable, err := q.declared()
	if err != nil {
		return "", "", err
	}
	spec := QueueSpec{Type: q.form("type"), Durable: &durable, AutoDelete: q.checked("auto_delete"), Arguments: args}
	return q.run("putQueue", map[string]string{"name": name}, q.tenantQuery(), spec,
		q.back("/console/queue", "name", name), fmt.Sprintf("Queue '%s' declared.", name))
}

func deleteQueueAction(q *consoleReq) (string, string, error) {
	name, err := q.required("name")
	if err != nil {
		return "", "", err
	}
	query := q.tenantQuery()
	query.Set("if_unused", strconv.FormatBool(q.checked("if_unused")))
	query.Set("if_empty", strconv.FormatBool(q.checked("if_empty")))
	d, err := apiAs[Deleted](q, "deleteQueue", map[string]string{"name": name}, query, nil)
	if err != nil {
		return "", "", err
	}
	return q.back("/console/queues"), fmt.Sprintf("Queue '%s' deleted with %s.", name, plural(int(d.Messages), "message", "messages")), nil
}

func purgeQueueAction(q *consoleReq) (string, string, error) {
	name, err := q.required("name")
	if err != nil {
		return "", "", err
	}
	d, err := apiAs[Deleted](q, "purgeQueue", map[string]string{"name": name}, q.tenantQuery(), nil)
	if err != nil {
		return "", "", err
	}
	return q.back("/console/queue", "name", name), fmt.Sprintf("Purged %s from '%s'.", plural(int(d.Messages), "message", "messages"), name), nil
}

// publishAction publishes one message to a queue or stream through the
// default exchange (publishToQueue), or to an exchange with a routing
// key when the form names one (publish).
func publishAction(q *consoleReq) (string, string, error) {
	headers, err := q.jsonObject("headers")
	if err != nil {
		return "", "", err
	}
	m := MessageIn{Body: q.r.PostFormValue("body"), BodyEncoding: q.form("body_encoding"), Headers: headers, Key: q.form("key"),
		Properties: Properties{ContentType: q.form("content_type"), MessageID: q.form("message_id"), CorrelationID: q.form("correlation_id")}}
	if q.checked("persistent") {
		m.Properties.DeliveryMode = 2
	}
	req := PublishRequest{Messages: []MessageIn{m}}
	var res PublishResponse
	back, target := "", ""
	if ex := q.form("exchange"); ex != "" {
		m.RoutingKey = q.form("routing_key")
		req.Messages[0] = m
		req.Mandatory = true // an operator wants to know when nothing matched
		back, target = q.back("/console/exchanges"), "exchange '"+ex+"'"
		res, err = apiAs[PublishResponse](q, "publish", map[string]string{"name": ex}, q.tenantQuery(), req)
	} else {
		name, rerr := q.required("queue")
		if rerr != nil {
			return "", "", rerr
		}
		page := "/console/queue"
		if q.form("kind") == "stream" {
			page = "/console/stream"
		}
		back, target = q.back(page, "name", name), "'"+name+"'"
		res, err = apiAs[PublishResponse](q, "publishToQueue", map[string]string{"name": name}, q.tenantQuery(), req)
	}
	if err != nil {
		return "", "", err
	}
	if res.Failed > 0 && len(res.Results) > 0 {
		r := res.Results[0]
		what := r.Error
		switch {
		case r.Unroutable:
			what = "unroutable: no binding matched"
		case r.Rejected:
			what = "rejected by the queue (" + r.Error + ")"
		}
		return "", "", base.Errorf(codeNamed(r.Code), "the message to %s was not confirmed: %s", target, what)
	}
	return back, "Message published to " + target + " and confirmed.", nil
}

// consoleMessage is a fetched message as the console shows it: its body
// as text when it is UTF-8, and always as hex and base64 (the page
// toggles between them with <details>, no script).
type consoleMessage struct {
	MessageOut
	Text     string
	IsText   bool
	Hex      string
	Base64   string
	Size     int
	HeadersJ string
}

// consoleMessages converts messages fetched with encoding base64 (or
// auto) into their displays.
func consoleMessages(in []MessageOut) []consoleMessage {
	out := make([]consoleMessage, 0, len(in))
	for _, m := range in {
		raw := []byte(m.Body)
		if m.BodyEncoding == "base64" {
			if b, err := base64.StdEncoding.DecodeString(m.Body); err == nil {
				raw = b
			}
		}
		cm := consoleMessage{MessageOut: m, Size: len(raw), Hex: hex.EncodeToString(raw), Base64: base64.StdEncoding.EncodeToString(raw),
			HeadersJ: jsonText(m.Headers)}
		if utf8.Valid(raw) {
			cm.Text, cm.IsText = string(raw), true
		}
		out = append(out, cm)
	}
	return out
}

// getMessagesAction fetches messages as RabbitMQ's "get messages": with
// ack mode "ack" (removed), "requeue" (returned to the queue, marked
// redelivered), "reject" (returned without requeue: dead-lettered when
// the queue has a dead-letter exchange) or "auto". It renders the queue
// page with the messages instead of redirecting: they exist only in this
// answer.
func getMessagesAction(q *consoleReq) (string, string, error) {
	name, err := q.required("name")
	if err != nil {
		return "", "", err
	}
	count, err := intQuery(q.form("count"), 1, 1, base.AdminConsoleGetMessagesMax, "count")
	if err != nil {
		return "", "", err
	}
	mode := q.form("ack_mode")
	req := GetRequest{Count: count, AckMode: "manual", Encoding: "base64"}
	switch mode {
	case "auto":
		req.AckMode = "auto"
	case "ack", "requeue", "reject":
	default:
		return "", "", invalid("ack_mode %q, want ack, requeue, reject or auto", mode)
	}
	got, err := apiAs[GetResponse](q, "getMessages", map[string]string{"name": name}, q.tenantQuery(), req)
	if err != nil {
		return "", "", err
	}
	if mode != "auto" && len(got.Messages) > 0 {
		ack := AckRequest{Nack: mode != "ack", Requeue: mode == "requeue"}
		for _, m := range got.Messages {
			ack.DeliveryTokens = append(ack.DeliveryTokens, m.DeliveryToken)
		}
		if _, err := q.api("ackMessages", map[string]string{"name": name}, q.tenantQuery(), ack); err != nil {
			return "", "", err
		}
	}
	data, err := loadQueueNamed(q, name)
	if err != nil {
		return "", "", err
	}
	data.Messages, data.AckMode = consoleMessages(got.Messages), mode
	pd := q.pageData("Queue", "queues", data)
	if len(got.Messages) == 0 {
		pd.Flash = "The queue had no ready message."
	}
	q.c.render(q.w, http.StatusOK, "queue", pd)
	return "", "", nil
}

func createStream(q *consoleReq) (string, string, error) {
	name, err := q.required("name")
	if err != nil {
		return "", "", err
	}
	parts, err := intQuery(q.form("partitions"), 1, 1, base.ControllerStreamPartitionsMax, "partitions")
	if err != nil {
		return "", "", err
	}
	spec := StreamSpec{Partitions: parts, Config: map[string]string{}}
	for _, k := range []string{"retention.ms", "retention.bytes"} {
		if v := q.form(k); v != "" {
			spec.Config[k] = v
		}
	}
	return q.run("putStream", map[string]string{"name": name}, q.tenantQuery(), spec,
		q.back("/console/stream", "name", name), fmt.Sprintf("Stream '%s' created.", name))
}

func createExchange(q *consoleReq) (string, string, error) {
	name, args, durable, err := q.declared()
	if err != nil {
		return "", "", err
	}
	spec := ExchangeSpec{Type: q.form("type"), Durable: &durable, AutoDelete: q.checked("auto_delete"), Internal: q.checked("internal"), Arguments: args}
	return q.run("putExchange", map[string]string{"name": name}, q.tenantQuery(), spec,
		q.back("/console/exchanges"), fmt.Sprintf("Exchange '%s' declared.", name))
}

func deleteExchangeAction(q *consoleReq) (string, string, error) {
	name, err := q.required("name")
	if err != nil {
		return "", "", err
	}
	query := q.tenantQuery()
	query.Set("if_unused", strconv.FormatBool(q.checked("if_unused")))
	return q.run("deleteExchange", map[string]string{"name": name}, query, nil,
		q.back("/console/exchanges"), fmt.Sprintf("Exchange '%s' deleted.", name))
}

func bindAction(q *consoleReq, unbind bool) (string, string, error) {
	args, err := q.jsonObject("arguments")
	if err != nil {
		return "", "", err
	}
	b := Binding{Source: q.form("source"), Destination: q.form("destination"), DestinationKind: q.form("destination_kind"),
		RoutingKey: q.r.PostFormValue("routing_key"), Arguments: args}
	id, verb := "bind", "created"
	if unbind {
		id, verb = "unbind", "deleted"
	}
	return q.run(id, nil, q.tenantQuery(), b,
		q.back("/console/exchanges"), fmt.Sprintf("Binding from '%s' to '%s' %s.", b.Source, b.Destination, verb))
}

func closeConnectionAction(q *consoleReq) (string, string, error) {
	id, err := q.required("id")
	if err != nil {
		return "", "", err
	}
	query := url.Values{}
	if r := q.form("reason"); r != "" {
		query.Set("reason", r)
	} else {
		query.Set("reason", "closed by user '"+q.sess.p.User+"' in the web console")
	}
	return q.run("closeConnection", map[string]string{"id": id}, query, nil,
		"/console/connections", fmt.Sprintf("Connection '%s' closed.", id))
}

func createUser(q *consoleReq) (string, string, error) {
	name, err := q.required("name")
	if err != nil {
		return "", "", err
	}
	var tags []string
	for t := range strings.SplitSeq(q.form("tags"), ",") {
		if t = strings.TrimSpace(t); t != "" {
			tags = append(tags, t)
		}
	}
	spec := UserSpec{Password: q.r.PostFormValue("password"), Tags: tags}
	return q.run("putUser", map[string]string{"user": name}, nil, spec,
		q.back("/console/users"), fmt.Sprintf("User '%s' saved.", name))
}

// permissionAction sets the permission of a user in the form's tenant
// (perm_tenant) or, when remove, deletes it.
func permissionAction(q *consoleReq, remove bool) (string, string, error) {
	user, err := q.required("user")
	if err != nil {
		return "", "", err
	}
	query := url.Values{"tenant": {q.form("perm_tenant")}}
	if remove {
		return q.run("deletePermission", map[string]string{"user": user}, query, nil,
			q.back("/console/users"), fmt.Sprintf("Permission of '%s' in '%s' removed.", user, query.Get("tenant")))
	}
	p := Permission{Configure: q.r.PostFormValue("configure"), Write: q.r.PostFormValue("write"), Read: q.r.PostFormValue("read")}
	return q.run("putPermission", map[string]string{"user": user}, query, p,
		q.back("/console/users"), fmt.Sprintf("Permission of '%s' in '%s' set.", user, query.Get("tenant")))
}

func createPolicy(q *consoleReq) (string, string, error) {
	name, err := q.required("name")
	if err != nil {
		return "", "", err
	}
	def, err := q.jsonObject("definition")
	if err != nil {
		return "", "", err
	}
	prio, err := intQuery(q.form("priority"), 0, -1<<31, 1<<31-1, "priority")
	if err != nil {
		return "", "", err
	}
	p := Policy{Pattern: q.r.PostFormValue("pattern"), ApplyTo: q.form("apply_to"), Priority: prio, Definition: def}
	return q.run("putPolicy", map[string]string{"name": name}, q.tenantQuery(), p,
		q.back("/console/policies"), fmt.Sprintf("Policy '%s' saved.", name))
}

func setTracingAction(q *consoleReq) (string, string, error) {
	name, err := q.required("name")
	if err != nil {
		return "", "", err
	}
	on := q.form("enabled") == "true"
	if _, err := q.api("setTracing", map[string]string{"name": name}, q.tenantQuery(), TracingSpec{Enabled: on}); err != nil {
		return "", "", err
	}
	state := "off"
	if on {
		state = "on"
	}
	return q.back("/console/trace"), fmt.Sprintf("Tracing of '%s' turned %s.", name, state), nil
}

// codeNamed returns the code whose name is s (a publish outcome carries
// its code by name); an outcome without one failed a precondition.
func codeNamed(s string) base.Code {
	if c, ok := base.CodeNamed(s); ok {
		return c
	}
	return base.CodePreconditionFailed
}

package admin

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/ferry-mq/ferry/internal/base"
)

// pageTable is every console page, by path. Each loads its data through
// the API's handlers (consoleReq.api), so a page shows exactly what the
// JSON API would answer its user, and is refused when the API would be.
func (c *console) pageTable() map[string]consolePage {
	return map[string]consolePage{
		"/console/{$}":         {tmpl: "overview", nav: "overview", title: "Overview", load: loadOverview},
		"/console/queues":      {tmpl: "queues", nav: "queues", title: "Queues", load: loadQueues},
		"/console/queue":       {tmpl: "queue", nav: "queues", title: "Queue", load: loadQueue},
		"/console/streams":     {tmpl: "streams", nav: "streams", title: "Streams", load: loadStreams},
		"/console/stream":      {tmpl: "stream", nav: "streams", title: "Stream", load: loadStream},
		"/console/exchanges":   {tmpl: "exchanges", nav: "exchanges", title: "Exchanges and bindings", load: loadExchanges},
		"/console/connections": {tmpl: "connections", nav: "connections", title: "Connections", load: loadConnections},
		"/console/users":       {tmpl: "users", nav: "users", title: "Users, permissions and tenants", load: loadUsers},
		"/console/policies":    {tmpl: "policies", nav: "policies", title: "Policies", load: loadPolicies},
		"/console/trace":       {tmpl: "trace", nav: "trace", title: "Message trace", load: loadTrace},
	}
}

// overviewData is the overview page: the node's totals, the message
// rates summed over the selected tenant's queues, the cluster.
type overviewData struct {
	Overview Overview
	Rates    Rates
	Cluster  ClusterStatus
}

func loadOverview(q *consoleReq) (any, error) {
	ov, err := apiAs[Overview](q, "getOverview", nil, nil, nil)
	if err != nil {
		return nil, err
	}
	out := overviewData{Overview: ov}
	if out.Cluster, err = apiAs[ClusterStatus](q, "getCluster", nil, q.tenantQuery(), nil); err != nil {
		return nil, err
	}
	query := q.tenantQuery()
	query.Set("stats", "true")
	queues, err := apiAs[[]Queue](q, "listQueues", nil, query, nil)
	if err != nil {
		return nil, err
	}
	for _, qu := range queues {
		if qu.Stats != nil {
			r := qu.Stats.Rates
			out.Rates.PublishPerSec += r.PublishPerSec
			out.Rates.DeliverPerSec += r.DeliverPerSec
			out.Rates.RedeliverPerSec += r.RedeliverPerSec
			out.Rates.AckPerSec += r.AckPerSec
		}
	}
	return out, nil
}

func loadQueues(q *consoleReq) (any, error) {
	query := q.tenantQuery()
	query.Set("stats", "true")
	return apiAs[[]Queue](q, "listQueues", nil, query, nil)
}

// queueData is a queue's page: the queue, the bindings to it, its
// effective policy (nil when none applies or the user may not read
// policies) and, after a get, the messages fetched.
type queueData struct {
	Queue       Queue
	Bindings    []Binding
	Policy      *Policy
	PolicyError string
	Messages    []consoleMessage
	AckMode     string
}

func loadQueue(q *consoleReq) (any, error) {
	return loadQueueNamed(q, q.r.URL.Query().Get("name"))
}

func loadQueueNamed(q *consoleReq, name string) (*queueData, error) {
	qu, err := apiAs[Queue](q, "getQueue", map[string]string{"name": name}, q.tenantQuery(), nil)
	if err != nil {
		return nil, err
	}
	out := &queueData{Queue: qu}
	query := q.tenantQuery()
	query.Set("destination", name)
	if out.Bindings, err = apiAs[[]Binding](q, "listBindings", nil, query, nil); err != nil {
		return nil, err
	}
	if qu.Policy != "" {
		p, err := apiAs[Policy](q, "getPolicy", map[string]string{"name": qu.Policy}, q.tenantQuery(), nil)
		if err != nil {
			out.PolicyError = err.Error() // a monitoring user may not read policies; the page still shows the name
		} else {
			out.Policy = &p
		}
	}
	return out, nil
}

// streamsData is the streams page with the consumer groups this node
// coordinates (GroupsError when the broker cannot list them).
type streamsData struct {
	Streams     []Stream
	Groups      []ConsumerGroup
	GroupsError string
}

func loadStreams(q *consoleReq) (any, error) {
	st, err := apiAs[[]Stream](q, "listStreams", nil, q.tenantQuery(), nil)
	if err != nil {
		return nil, err
	}
	out := streamsData{Streams: st}
	if out.Groups, err = apiAs[[]ConsumerGroup](q, "listGroups", nil, nil, nil); err != nil {
		out.GroupsError = err.Error()
	}
	return out, nil
}

// streamData is a stream's page; Messages holds a read's result.
type streamData struct {
	Stream   Stream
	Messages []consoleMessage
	Offset   string
}

func loadStream(q *consoleReq) (any, error) {
	name := q.r.URL.Query().Get("name")
	st, err := apiAs[Stream](q, "getStream", map[string]string{"name": name}, q.tenantQuery(), nil)
	if err != nil {
		return nil, err
	}
	out := streamData{Stream: st}
	if off := q.r.URL.Query().Get("offset"); off != "" {
		out.Offset = off
		query := q.tenantQuery()
		query.Set("offset", off)
		query.Set("count", strconv.Itoa(base.AdminConsoleGetMessagesMax))
		// A read returns once it has count messages or the wait passed.
		query.Set("timeout_ms", strconv.FormatInt(base.AdminStreamReadWaitDefault.Milliseconds(), 10))
		rd, err := apiAs[StreamReadResponse](q, "readStream", map[string]string{"name": name}, query, nil)
		if err != nil {
			return nil, err
		}
		out.Messages = consoleMessages(rd.Messages)
	}
	return out, nil
}

type exchangesData struct {
	Exchanges []Exchange
	Bindings  []Binding
}

func loadExchanges(q *consoleReq) (any, error) {
	ex, err := apiAs[[]Exchange](q, "listExchanges", nil, q.tenantQuery(), nil)
	if err != nil {
		return nil, err
	}
	bs, err := apiAs[[]Binding](q, "listBindings", nil, q.tenantQuery(), nil)
	if err != nil {
		return nil, err
	}
	return exchangesData{Exchanges: ex, Bindings: bs}, nil
}

func loadConnections(q *consoleReq) (any, error) {
	return apiAs[[]Connection](q, "listConnections", nil, nil, nil)
}

type usersData struct {
	Users       []User
	Permissions []Permission
	Tenants     []Tenant
}

func loadUsers(q *consoleReq) (any, error) {
	users, err := apiAs[[]User](q, "listUsers", nil, nil, nil)
	if err != nil {
		return nil, err
	}
	perms, err := apiAs[[]Permission](q, "listPermissions", nil, nil, nil)
	if err != nil {
		return nil, err
	}
	tenants, err := apiAs[[]Tenant](q, "listTenants", nil, nil, nil)
	if err != nil {
		return nil, err
	}
	return usersData{Users: users, Permissions: perms, Tenants: tenants}, nil
}

func loadPolicies(q *consoleReq) (any, error) {
	return apiAs[[]Policy](q, "listPolicies", nil, q.tenantQuery(), nil)
}

// traceData is the trace page: the id asked for and its history.
type traceData struct {
	ID    string
	Trace *Trace
}

func loadTrace(q *consoleReq) (any, error) {
	id := q.r.URL.Query().Get("id")
	if id == "" {
		return traceData{}, nil
	}
	tr, err := apiAs[Trace](q, "getTrace", map[string]string{"id": id}, q.tenantQuery(), nil)
	if err != nil {
		return traceData{ID: id}, err
	}
	return traceData{ID: id, Trace: &tr}, nil
}

// --- template helpers

func derefString[T int | int64](p *T) string {
	if p == nil {
		return "–"
	}
	return strconv.FormatInt(int64(*p), 10)
}

// jsonText renders arguments, headers or a policy definition as compact
// JSON text ("" for none); html/template escapes it where it is shown.
func jsonText(v any) string {
	switch m := v.(type) {
	case map[string]any:
		if len(m) == 0 {
			return ""
		}
	case nil:
		return ""
	}
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	return string(data)
}

func msDuration(ms int64) string {
	if ms < 0 {
		return "forever"
	}
	return (time.Duration(ms) * time.Millisecond).String()
}

func humanBytes(n int64) string {
	if n < 0 {
		return "unlimited"
	}
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	f, i := float64(n), 0
	for f >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	if i == 0 {
		return strconv.FormatInt(n, 10) + " B"
	}
	return strconv.FormatFloat(f, 'f', 1, 64) + " " + units[i]
}

// consoleURL builds a console link with query parameters.
func consoleURL(path string, kv ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	if len(v) == 0 {
		return path
	}
	return path + "?" + v.Encode()
}

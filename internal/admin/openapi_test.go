package admin

import (
	"encoding/json"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/ferry-mq/ferry/internal/broker"
)

// TestOpenAPIDocumentMatchesTheRegisteredRoutes walks the served document
// and the mux: every documented operation is routed to the pattern it
// documents, its path parameters are the pattern's wildcards, every route
// is documented, and every $ref resolves. (That each status a handler
// answers and each query parameter it reads is documented is checked by
// every API test through Server.Undocumented.)
func TestOpenAPIDocumentMatchesTheRegisteredRoutes(t *testing.T) {
	a := newAPI(t, openBroker(t), Config{Version: "v1.2.3"})
	r := a.must(http.StatusOK, "GET", "/api/openapi.json", nil)
	var doc struct {
		OpenAPI string `json:"openapi"`
		Info    struct {
			Version string `json:"version"`
		} `json:"info"`
		Paths map[string]map[string]struct {
			OperationID string `json:"operationId"`
			Parameters  []struct {
				Name     string `json:"name"`
				In       string `json:"in"`
				Required bool   `json:"required"`
			} `json:"parameters"`
			RequestBody *struct{} `json:"requestBody"`
			Responses   map[string]json.RawMessage
		} `json:"paths"`
		Components struct {
			Schemas map[string]json.RawMessage `json:"schemas"`
		} `json:"components"`
	}
	r.json(t, &doc)
	if doc.OpenAPI != "3.1.0" || doc.Info.Version != "v1.2.3" {
		t.Errorf("openapi %q version %q, want 3.1.0 and v1.2.3", doc.OpenAPI, doc.Info.Version)
	}
	byID := map[string]*route{}
	for _, rt := range a.s.routes {
		if byID[rt.id] != nil {
			t.Errorf("operation id %s is used twice", rt.id)
		}
		byID[rt.id] = rt
	}
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for method, op := range ops {
			rt := byID[op.OperationID]
			if rt == nil {
				t.Errorf("%s %s: operation %q has no route", method, path, op.OperationID)
				continue
			}
			documented[rt.id] = true
			if strings.ToUpper(method) != rt.method || openAPIPath(rt.path) != path {
				t.Errorf("operation %s documented as %s %s, routed as %s %s", rt.id, method, path, rt.method, rt.path)
			}
			// The mux must send a concrete request for the documented path to
			// this route's pattern.
			concrete := regexp.MustCompile(`\{[^}]+\}`).ReplaceAllString(path, "x")
			req := httptest.NewRequest(strings.ToUpper(method), concrete, nil)
			if _, pattern := a.s.mux.Handler(req); pattern != rt.method+" "+rt.path {
				t.Errorf("%s %s is served by pattern %q, want %q", method, concrete, pattern, rt.method+" "+rt.path)
			}
			var inPath, inQuery []string
			for _, p := range op.Parameters {
				switch p.In {
				case "path":
					inPath = append(inPath, p.Name)
					if !p.Required {
						t.Errorf("%s: path parameter %s is not required", rt.id, p.Name)
					}
				case "query":
					inQuery = append(inQuery, p.Name)
				}
			}
			if !slices.Equal(inPath, pathParams(rt.path)) {
				t.Errorf("%s: documented path parameters %q, pattern wildcards %q", rt.id, inPath, pathParams(rt.path))
			}
			for _, q := range rt.query {
				if !slices.Contains(inQuery, q.name) {
					t.Errorf("%s: query parameter %s is declared but not documented", rt.id, q.name)
				}
			}
			if (op.RequestBody != nil) != (rt.in != nil) {
				t.Errorf("%s: request body documented %v, handler reads one %v", rt.id, op.RequestBody != nil, rt.in != nil)
			}
			var codes []int
			for code := range op.Responses {
				n, err := strconv.Atoi(code)
				if err != nil {
					t.Errorf("%s: response %q is not a status", rt.id, code)
				}
				codes = append(codes, n)
			}
			slices.Sort(codes)
			if !slices.Equal(codes, rt.statuses()) {
				t.Errorf("%s: documented statuses %v, route answers %v", rt.id, codes, rt.statuses())
			}
		}
	}
	for _, rt := range a.s.routes {
		if !documented[rt.id] {
			t.Errorf("route %s %s is not in the document", rt.method, rt.path)
		}
	}
	for _, ref := range regexp.MustCompile(`"\$ref": "#/components/schemas/(\w+)"`).FindAllStringSubmatch(string(r.body), -1) {
		if _, ok := doc.Components.Schemas[ref[1]]; !ok {
			t.Errorf("$ref to %s does not resolve", ref[1])
		}
	}
}

// TestUndocumentedResponsesAreCaught checks the checker: a handler that
// answers a status its route does not declare, or reads a query
// parameter it does not declare, is reported.
func TestUndocumentedResponsesAreCaught(t *testing.T) {
	s := &Server{log: quietLog}
	rt := &route{method: "GET", path: "/x", id: "x", status: http.StatusOK, access: accessPublic}
	c := &call{s: s, rt: rt, r: httptest.NewRequest("GET", "/x?secret=1", nil)}
	if c.query("secret") != "1" {
		t.Fatal("query did not read the parameter")
	}
	if got := s.Undocumented(); len(got) != 1 || !strings.Contains(got[0], `undeclared query parameter "secret"`) {
		t.Errorf("undeclared parameter: recorded %q", got)
	}
	if slices.Contains(rt.statuses(), http.StatusTeapot) {
		t.Fatal("the teapot is declared")
	}
}

var update = flag.Bool("update", false, "rewrite docs/http-api.md")

// docOnlyBroker satisfies Broker for building the document, which calls
// no broker method.
type docOnlyBroker struct{ *broker.Broker }

// TestHTTPAPIDocIsGenerated fails when docs/http-api.md differs from what
// the route table generates; -update rewrites it.
func TestHTTPAPIDocIsGenerated(t *testing.T) {
	s, err := New(docOnlyBroker{}, Config{Logger: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	want := s.Markdown()
	const path = "../../docs/http-api.md"
	if *update {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("%s is out of date: run go test ./internal/admin -run TestHTTPAPIDocIsGenerated -args -update", path)
	}
}

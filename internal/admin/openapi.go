package admin

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strconv"
	"strings"
)

// The OpenAPI 3.1 document is built from the route table and the Go
// types of the request and response bodies (by reflection over their
// JSON tags), so the document and the handlers cannot drift apart in
// what they route or what their bodies look like; what reflection cannot
// see (the statuses a handler answers, the query parameters it reads) is
// declared in the table and checked at run time (Server.Undocumented).

func (s *Server) serveDoc(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(s.doc) // a failed write is the client's disconnect
}

// openAPIPath turns a mux pattern's path into the document's template:
// "{id...}" becomes "{id}".
func openAPIPath(p string) string { return strings.ReplaceAll(p, "...}", "}") }

// pathParams returns the wildcard names of a mux path.
func pathParams(p string) []string {
	var out []string
	for _, seg := range strings.Split(p, "/") {
		if strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") {
			out = append(out, strings.TrimSuffix(strings.Trim(seg, "{}"), "..."))
		}
	}
	return out
}

type schemaSet struct {
	defs map[string]any
}

func (s *Server) openAPI() ([]byte, error) {
	version := s.cfg.Version
	if version == "" {
		version = "dev"
	}
	ss := &schemaSet{defs: map[string]any{}}
	ss.schemaOf(reflect.TypeOf(ErrorBody{}))
	paths := map[string]map[string]any{}
	var tags []string
	for _, rt := range s.routes {
		p := openAPIPath(rt.path)
		if paths[p] == nil {
			paths[p] = map[string]any{}
		}
		paths[p][strings.ToLower(rt.method)] = ss.operation(rt)
		if !contains(tags, rt.tag) {
			tags = append(tags, rt.tag)
		}
	}
	var tagList []map[string]string
	for _, t := range tags {
		tagList = append(tagList, map[string]string{"name": t})
	}
	doc := map[string]any{
		"openapi": "3.1.0",
		"info": map[string]any{
			"title":   "Ferry management API",
			"version": version,
			"description": "JSON over HTTP on the node's HTTP listener (port 8080 by default). Authentication is HTTP basic " +
				"against the user store. Errors are {\"error\": {\"code\": \"not_found\", \"message\": \"...\"}} with the stable " +
				"code names of docs/http-api.md.",
		},
		"tags":       tagList,
		"paths":      paths,
		"components": map[string]any{"schemas": ss.defs, "securitySchemes": map[string]any{"basic": map[string]string{"type": "http", "scheme": "basic"}}},
	}
	return json.MarshalIndent(doc, "", "  ")
}

func (ss *schemaSet) operation(rt *route) map[string]any {
	op := map[string]any{"operationId": rt.id, "summary": rt.summary, "tags": []string{rt.tag}}
	var params []map[string]any
	for _, name := range pathParams(rt.path) {
		params = append(params, map[string]any{"name": name, "in": "path", "required": true, "schema": map[string]string{"type": "string"}})
	}
	for _, q := range rt.query {
		p := map[string]any{"name": q.name, "in": "query", "schema": map[string]string{"type": q.typ}}
		if q.desc != "" {
			p["description"] = q.desc
		}
		params = append(params, p)
	}
	if params != nil {
		op["parameters"] = params
	}
	if rt.access == accessPublic {
		op["security"] = []any{}
	} else {
		op["security"] = []any{map[string]any{"basic": []string{}}}
		if tags := accessTags[rt.access]; tags != nil {
			op["description"] = "Needs a user tagged " + strings.Join(tags, ", ") + "."
		}
	}
	if rt.in != nil {
		op["requestBody"] = map[string]any{"required": !rt.inOptional,
			"content": map[string]any{"application/json": map[string]any{"schema": ss.schemaOf(reflect.TypeOf(rt.in))}}}
	}
	responses := map[string]any{}
	for _, st := range rt.statuses() {
		r := map[string]any{"description": http.StatusText(st)}
		switch {
		case st == rt.status && rt.raw != nil:
			r["content"] = map[string]any{rt.contentType: map[string]any{}}
		case st == rt.status && rt.out != nil:
			r["content"] = map[string]any{"application/json": map[string]any{"schema": ss.schemaOf(reflect.TypeOf(rt.out))}}
		case st >= 400 && !(rt.access == accessPublic && rt.out != nil):
			r["content"] = map[string]any{"application/json": map[string]any{"schema": ss.schemaOf(reflect.TypeOf(ErrorBody{}))}}
		case st >= 400:
			r["content"] = map[string]any{"application/json": map[string]any{"schema": ss.schemaOf(reflect.TypeOf(rt.out))}}
		}
		responses[strconv.Itoa(st)] = r
	}
	op["responses"] = responses
	return op
}

// schemaOf returns the JSON schema of t: a $ref for named structs (their
// definition added to the components), inline otherwise.
func (ss *schemaSet) schemaOf(t reflect.Type) map[string]any {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer"}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.Slice, reflect.Array:
		return map[string]any{"type": "array", "items": ss.schemaOf(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": ss.schemaOf(t.Elem())}
	case reflect.Interface:
		return map[string]any{} // any JSON value
	case reflect.Struct:
		name := t.Name()
		if _, ok := ss.defs[name]; !ok {
			ss.defs[name] = map[string]any{} // placeholder: recursive types terminate
			ss.defs[name] = ss.structSchema(t)
		}
		return map[string]any{"$ref": "#/components/schemas/" + name}
	}
	return map[string]any{}
}

func (ss *schemaSet) structSchema(t reflect.Type) map[string]any {
	props := map[string]any{}
	var required []string
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		sch := ss.schemaOf(f.Type)
		if enum := f.Tag.Get("enum"); enum != "" {
			sch = map[string]any{"type": "string", "enum": strings.Split(enum, ",")}
		}
		props[name] = sch
		if !strings.Contains(opts, "omitempty") && !strings.Contains(opts, "omitzero") && f.Type.Kind() != reflect.Pointer {
			required = append(required, name)
		}
	}
	out := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	if required != nil {
		out["required"] = required
	}
	return out
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

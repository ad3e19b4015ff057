package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const committedSpec = "amqp-rabbitmq-0.9.1.json"

func loadSpec(t *testing.T) []byte {
	t.Helper()
	data, err := os.ReadFile(committedSpec)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestParseSpecResolvesTheCommittedSpec(t *testing.T) {
	p, err := parseSpec(loadSpec(t))
	if err != nil {
		t.Fatal(err)
	}
	if p.Major != 0 || p.Minor != 9 || p.Revision != 1 || p.Port != 5672 {
		t.Errorf("version: got %d-%d-%d port %d, want 0-9-1 port 5672", p.Major, p.Minor, p.Revision, p.Port)
	}
	methods := map[string]*method{}
	for _, c := range p.Classes {
		for _, m := range c.Methods {
			methods[m.FullName] = m
		}
	}
	if len(p.Classes) != 8 || len(methods) != 66 {
		t.Errorf("got %d classes and %d methods, want 8 and 66", len(p.Classes), len(methods))
	}
	// basic.consume's ticket is declared by domain "short", not by type.
	if f := methods["basic.consume"].Fields[0]; f.Name != "ticket" || f.Type != "short" {
		t.Errorf("basic.consume ticket: got %s %s, want ticket short", f.Name, f.Type)
	}
	if f := methods["connection.start"].Fields[2]; f.Type != "table" || f.GoName != "ServerProperties" {
		t.Errorf("connection.start server-properties: got %s %s", f.GoName, f.Type)
	}
	get := methods["basic.get"]
	if len(get.Responses) != 2 || get.Responses[0].Name != "get-ok" || get.Responses[1].Name != "get-empty" {
		t.Errorf("basic.get responses: got %v", names(get.Responses))
	}
	if !methods["queue.declare"].HasNoWait || methods["basic.get"].HasNoWait {
		t.Errorf("nowait detection is wrong")
	}
	for name, m := range methods {
		if m.Synchronous != (len(m.Responses) > 0) {
			t.Errorf("%s: synchronous %v with %d responses", name, m.Synchronous, len(m.Responses))
		}
	}
	var basic *class
	for _, c := range p.Classes {
		if c.Name == "basic" {
			basic = c
		}
	}
	if len(basic.Properties) != 14 || basic.Properties[13].Name != "cluster-id" {
		t.Errorf("basic properties: got %d, the last %s", len(basic.Properties), basic.Properties[len(basic.Properties)-1].Name)
	}
	var hard, reply int
	for _, c := range p.Constants {
		if c.Reply {
			reply++
		}
		if c.Hard {
			hard++
		}
	}
	if reply != 19 || hard != 11 {
		t.Errorf("reply codes: got %d (%d hard), want 19 (11 hard)", reply, hard)
	}
}

func names(ms []*method) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.FullName)
	}
	return out
}

func TestParseSpecRejectsWhatItCannotGenerate(t *testing.T) {
	base := func(methods string) string {
		return `{"name":"AMQP","major-version":0,"minor-version":9,"revision":1,"port":5672,
			"domains":[["short","short"]],"constants":[{"name":"FRAME-END","value":206}],
			"classes":[{"id":10,"name":"c","methods":[` + methods + `]}]}`
	}
	cases := []struct {
		name, spec, want string
	}{
		{"unknown key", strings.Replace(base(""), `"port"`, `"colour":1,"port"`, 1), "unknown field"},
		{"unknown domain", base(`{"id":1,"name":"m","arguments":[{"domain":"nope","name":"x"}]}`), `unknown domain "nope"`},
		{"unknown type", base(`{"id":1,"name":"m","arguments":[{"type":"uuid","name":"x"}]}`), `unknown type "uuid"`},
		{"repeated method id", base(`{"id":1,"name":"a","arguments":[]},{"id":1,"name":"b","arguments":[]}`), "repeated"},
		{"synchronous without reply", base(`{"id":1,"name":"m","arguments":[],"synchronous":true}`), "no response method c.m-ok"},
		{"field named like a method", base(`{"id":1,"name":"m","arguments":[{"type":"short","name":"key"}]}`), "taken"},
		{"unknown constant class", strings.Replace(base(""), `"value":206`, `"value":206,"class":"odd"`, 1), "unknown class"},
	}
	for _, c := range cases {
		_, err := parseSpec([]byte(c.spec))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got error %v, want one containing %q", c.name, err, c.want)
		}
	}
}

func TestGoNames(t *testing.T) {
	cases := map[string]string{
		"routing-key":      "RoutingKey",
		"nowait":           "NoWait",
		"message-id":       "MessageID",
		"FRAME-END":        "FrameEnd",
		"update-secret-ok": "UpdateSecretOk",
		"global":           "Global",
	}
	for in, want := range cases {
		if got := goName(in); got != want {
			t.Errorf("goName(%q): got %q, want %q", in, got, want)
		}
	}
}

func TestBitsPackEightToAnOctetFromTheLowBit(t *testing.T) {
	var fields []*field
	for i := range 10 {
		fields = append(fields, &field{Name: "b", Type: "bit"})
		if i == 8 {
			fields = append(fields, &field{Name: "s", Type: "short"}, &field{Name: "c", Type: "bit"})
		}
	}
	got := runs(fields)
	// 9 bits, then a short, then 2 bits: octets of 8 and 1, the short, an octet of 2.
	if len(got) != 4 || len(got[0].bits) != 8 || len(got[1].bits) != 1 || got[2].field == nil || len(got[3].bits) != 2 {
		t.Errorf("runs: got %d runs %+v", len(got), got)
	}
}

func TestGenerateIsDeterministicAndMarked(t *testing.T) {
	data := loadSpec(t)
	a, err := generate(data, committedSpec, "codec")
	if err != nil {
		t.Fatal(err)
	}
	b, err := generate(data, committedSpec, "codec")
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != 9 {
		t.Errorf("generated %d files, want 9 (spec_gen.go and one per class)", len(a))
	}
	for name, src := range a {
		if !bytes.Equal(src, b[name]) {
			t.Errorf("%s differs between two runs", name)
		}
		first, _, _ := bytes.Cut(src, []byte("\n"))
		if want := "// Code generated by internal/codegen/amqp from " + committedSpec + "; DO NOT EDIT."; string(first) != want {
			t.Errorf("%s: first line %q, want %q", name, first, want)
		}
		if n := bytes.Count(src, []byte("\n")); n > 2000 {
			t.Errorf("%s has %d lines; split the output", name, n)
		}
	}
}

func TestRunWritesTheFilesAndChecksItsArguments(t *testing.T) {
	out := t.TempDir()
	if err := run([]string{"-spec", committedSpec, "-out", out, "-pkg", "codec"}); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(out, "*_gen.go"))
	if len(files) != 9 {
		t.Errorf("run wrote %d files, want 9", len(files))
	}
	if err := run([]string{"-out", out, "-pkg", "codec"}); err == nil {
		t.Errorf("run without -spec: got no error")
	}
	if err := run([]string{"-spec", filepath.Join(out, "missing.json"), "-pkg", "codec"}); err == nil {
		t.Errorf("run with a missing spec: got no error")
	}
}

package gen

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	defsDir   = "../message"
	codesFile = "../error_codes.txt"
	outDir    = "../../../proto/kafka/protocol"
)

// TestCommittedOutputIsCurrent regenerates the codec into a temporary
// directory and fails when any committed generated file differs, is
// missing, or is stale (generated once, no longer produced). Fix with
// `go generate ./internal/proto/kafka/protocol`.
func TestCommittedOutputIsCurrent(t *testing.T) {
	msgs, err := LoadDir(defsDir)
	if err != nil {
		t.Fatal(err)
	}
	codes, err := LoadErrorCodes(codesFile)
	if err != nil {
		t.Fatal(err)
	}
	out, err := Generate(msgs, codes)
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	if err := out.Write(tmp); err != nil {
		t.Fatal(err)
	}
	fresh, err := filepath.Glob(filepath.Join(tmp, "*"+GeneratedSuffix))
	if err != nil {
		t.Fatal(err)
	}
	if len(fresh) != len(out) {
		t.Fatalf("wrote %d files, generated %d", len(fresh), len(out))
	}
	for _, path := range fresh {
		name := filepath.Base(path)
		want, _ := os.ReadFile(path)
		got, err := os.ReadFile(filepath.Join(outDir, name))
		if err != nil {
			t.Errorf("%s: not committed (%v); run go generate ./internal/proto/kafka/protocol", name, err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: committed file differs from the generator's output at byte %d; run go generate ./internal/proto/kafka/protocol",
				name, firstDiff(got, want))
		}
	}
	committed, err := filepath.Glob(filepath.Join(outDir, "*"+GeneratedSuffix))
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range committed {
		if out[filepath.Base(path)] == nil {
			t.Errorf("%s: stale generated file; run go generate ./internal/proto/kafka/protocol", filepath.Base(path))
		}
	}
	for _, name := range out.Names() {
		if !bytes.HasPrefix(out[name], []byte(Header+"\n")) {
			t.Errorf("%s does not start with the DO NOT EDIT header", name)
		}
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestEveryDefinitionIsGenerated pins the shape of the output: one file
// per API pair (88 in the October 2024 definitions), one per data record,
// and the two tables; headers are hand-written.
func TestEveryDefinitionIsGenerated(t *testing.T) {
	msgs, err := LoadDir(defsDir)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for _, m := range msgs {
		counts[m.Type]++
	}
	if counts["request"] != counts["response"] || counts["request"] == 0 || counts["header"] != 2 {
		t.Fatalf("definition counts: got %v", counts)
	}
	out, err := Generate(msgs, []ErrorCode{{Code: -1, Name: "UNKNOWN_SERVER_ERROR"}})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(out), counts["request"]+counts["data"]+2; got != want {
		t.Errorf("generated files: got %d, want %d", got, want)
	}
	for _, want := range []string{"produce_gen.go", "api_versions_gen.go", "consumer_protocol_assignment_gen.go", "apis_gen.go", "error_codes_gen.go"} {
		if out[want] == nil {
			t.Errorf("%s not generated; have %v", want, out.Names())
		}
	}
}

func TestParseVersions(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Versions
	}{
		{"0+", Versions{0, versionMax}},
		{"3", Versions{3, 3}},
		{"1-7", Versions{1, 7}},
		{"none", noVersions},
		{"", noVersions},
	} {
		got, err := ParseVersions(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseVersions(%q): got %v, %v; want %v", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"x", "3-1", "-1", "1-", "+", "99999"} {
		if got, err := ParseVersions(bad); err == nil {
			t.Errorf("ParseVersions(%q): got %v, want an error", bad, got)
		}
	}
}

func TestStripCommentsKeepsSlashesInStrings(t *testing.T) {
	src := "{ // comment \"quoted\"\n  \"about\": \"see http://x // not a comment\", // trailing\n  \"e\": \"a\\\"//b\" }\n"
	got := string(StripComments([]byte(src)))
	want := "{ \n  \"about\": \"see http://x // not a comment\", \n  \"e\": \"a\\\"//b\" }\n"
	if got != want {
		t.Errorf("StripComments:\ngot  %q\nwant %q", got, want)
	}
}

func TestParseMessageRejectsWhatItDoesNotUnderstand(t *testing.T) {
	base := `{"apiKey": 1, "type": "request", "name": "XRequest", "validVersions": "0-3", "flexibleVersions": "2+", "fields": [%s]}`
	for name, field := range map[string]string{
		"unknown key":                           `{"name": "A", "type": "int32", "versions": "0+", "colour": "red"}`,
		"unknown type":                          `{"name": "A", "type": "int128", "versions": "0+"}`,
		"nullable int":                          `{"name": "A", "type": "int32", "versions": "0+", "nullableVersions": "0+"}`,
		"bad default":                           `{"name": "A", "type": "int8", "versions": "0+", "default": "300"}`,
		"closed tagged versions":                `{"name": "A", "type": "int8", "versions": "2+", "taggedVersions": "2-3", "tag": 0}`,
		"tag without versions":                  `{"name": "A", "type": "int8", "versions": "2+", "tag": 0}`,
		"struct without fields":                 `{"name": "A", "type": "[]Missing", "versions": "0+"}`,
		"null default, not nullable everywhere": `{"name": "A", "type": "string", "versions": "0+", "nullableVersions": "2+", "default": "null"}`,
	} {
		src := strings.Replace(base, "%s", field, 1)
		if _, err := ParseMessage("x.json", []byte(src)); err == nil {
			t.Errorf("%s: parsed without error", name)
		}
	}
	dup := strings.Replace(base, "%s", `{"name": "A", "type": "int8", "versions": "2+", "taggedVersions": "2+", "tag": 0},
		{"name": "B", "type": "int8", "versions": "2+", "taggedVersions": "2+", "tag": "0"}`, 1)
	if _, err := ParseMessage("x.json", []byte(dup)); err == nil || !strings.Contains(err.Error(), "share tag 0") {
		t.Errorf("two fields with tag 0: got %v, want a shared-tag error", err)
	}
}

func TestRegularAndTaggedVersionsSplit(t *testing.T) {
	src := `{"apiKey": 1, "type": "request", "name": "XRequest", "validVersions": "0-9", "flexibleVersions": "2+", "fields": [
		{"name": "A", "type": "int32", "versions": "1+", "taggedVersions": "5+", "tag": 3}]}`
	m, err := ParseMessage("x.json", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	f := m.Root.Fields[0]
	if got, want := f.Regular(), (Versions{1, 4}); got != want {
		t.Errorf("regular versions: got %v, want %v", got, want)
	}
	if got, want := f.TaggedIn(), (Versions{5, 9}); got != want {
		t.Errorf("tagged versions: got %v, want %v", got, want)
	}
}

func TestDefaultLiterals(t *testing.T) {
	for _, c := range []struct {
		typ, def, nullable string
		want               string
	}{
		{"int32", "0x7fffffff", "", "2147483647"},
		{"int32", "-2147483648", "", "-2147483648"},
		{"int64", "-1", "", "-1"},
		{"int16", "0", "", ""},
		{"bool", "true", "", "true"},
		{"bool", "false", "", ""},
		{"string", "null", "0+", ""},
		{"string", "abc", "", `"abc"`},
		{"string", "abc", "0+", `stringPtr("abc")`},
		{"uint16", "65535", "", "65535"},
	} {
		f := &Field{Name: "F", Type: &Type{Kind: primitiveKinds[c.typ]}, Versions: Versions{0, versionMax}, Nullable: noVersions,
			Default: c.def, HasDefault: true}
		if c.nullable != "" {
			f.Nullable, _ = ParseVersions(c.nullable)
		}
		got, err := DefaultLiteral(f)
		if err != nil || got != c.want {
			t.Errorf("%s default %q: got %q, %v; want %q", c.typ, c.def, got, err, c.want)
		}
	}
}

func TestParseErrorCodes(t *testing.T) {
	good := "# comment\n-1 UNKNOWN_SERVER_ERROR false\n\n0 NONE false\n6 NOT_LEADER_OR_FOLLOWER true\n"
	codes, err := ParseErrorCodes([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if len(codes) != 3 || codes[2] != (ErrorCode{6, "NOT_LEADER_OR_FOLLOWER", true}) {
		t.Errorf("ParseErrorCodes: got %+v", codes)
	}
	for name, bad := range map[string]string{
		"descending":  "-1 A false\n2 B false\n1 C false\n",
		"repeated":    "-1 A false\n0 A false\n",
		"lower case":  "-1 unknown false\n",
		"no -1":       "0 NONE false\n",
		"bad bool":    "-1 A maybe\n",
		"extra field": "-1 A false x\n",
	} {
		if _, err := ParseErrorCodes([]byte(bad)); err == nil {
			t.Errorf("%s: parsed without error", name)
		}
	}
}

func TestNames(t *testing.T) {
	for in, want := range map[string]string{"AddOffsetsToTxn": "add_offsets_to_txn", "ApiVersions": "api_versions",
		"DescribeQuorum": "describe_quorum", "ConsumerProtocolAssignment": "consumer_protocol_assignment", "KRaftVersionRecord": "k_raft_version_record"} {
		if got := snake(in); got != want {
			t.Errorf("snake(%q): got %q, want %q", in, got, want)
		}
	}
	if got := camel("NOT_LEADER_OR_FOLLOWER"); got != "NotLeaderOrFollower" {
		t.Errorf("camel: got %q", got)
	}
	if got := GoName("isKRaftController"); got != "IsKRaftController" {
		t.Errorf("GoName: got %q", got)
	}
}

func TestConditionsFoldConstants(t *testing.T) {
	ctx := Versions{0, 11}
	for _, c := range []struct {
		v    Versions
		want string
	}{
		{Versions{0, versionMax}, "true"},
		{Versions{3, versionMax}, "version >= 3"},
		{Versions{0, 2}, "version <= 2"},
		{Versions{2, 4}, "version >= 2 && version <= 4"},
		{Versions{5, 5}, "version == 5"},
		{Versions{12, versionMax}, "false"},
		{noVersions, "false"},
	} {
		if got := cond(c.v, ctx); got != c.want {
			t.Errorf("cond(%v): got %q, want %q", c.v, got, c.want)
		}
	}
	for in, want := range map[string]string{"version >= 3": "version < 3", "m.X == nil": "m.X != nil",
		"!m.B": "m.B", "m.S.isDefault()": "!m.S.isDefault()", "version >= 2 && version <= 4": "!(version >= 2 && version <= 4)"} {
		if got := negate(in); got != want {
			t.Errorf("negate(%q): got %q, want %q", in, got, want)
		}
	}
}

// TestZeroByteArrayElementsAreRefused: an array whose elements can be
// empty on the wire would let a count drive work without input, so the
// generator refuses it.
func TestZeroByteArrayElementsAreRefused(t *testing.T) {
	src := `{"apiKey": 1, "type": "request", "name": "XRequest", "validVersions": "0-1", "flexibleVersions": "none", "fields": [
		{"name": "Items", "type": "[]Item", "versions": "0+", "fields": [
			{"name": "A", "type": "int32", "versions": "1+"}]}]}`
	req, err := ParseMessage("XRequest.json", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := ParseMessage("XResponse.json", []byte(strings.NewReplacer("request", "response", "XRequest", "XResponse").Replace(src)))
	if err != nil {
		t.Fatal(err)
	}
	hdrs := []*Message{}
	for _, h := range []string{"RequestHeader", "ResponseHeader"} {
		m, err := ParseMessage(h+".json", []byte(`{"type": "header", "name": "`+h+`", "validVersions": "0-1", "flexibleVersions": "1+", "fields": []}`))
		if err != nil {
			t.Fatal(err)
		}
		hdrs = append(hdrs, m)
	}
	_, err = Generate(append([]*Message{req, resp}, hdrs...), []ErrorCode{{Code: -1, Name: "UNKNOWN_SERVER_ERROR"}})
	if err == nil || !strings.Contains(err.Error(), "array elements can take 0 bytes") {
		t.Errorf("Generate: got %v, want a zero-byte element error", err)
	}
}

// TestFieldFlexibleVersionsOverride: a string with its own
// "flexibleVersions": "none" (as RequestHeader's ClientId) keeps the
// classic int16 length in flexible versions.
func TestFieldFlexibleVersionsOverride(t *testing.T) {
	def := `{"apiKey": 1, "type": "%s", "name": "X%s", "validVersions": "0-3", "flexibleVersions": "2+", "fields": [
		{"name": "Id", "type": "string", "versions": "0+", "flexibleVersions": "none"},
		{"name": "Name", "type": "string", "versions": "0+"}]}`
	var msgs []*Message
	for _, kind := range [][2]string{{"request", "Request"}, {"response", "Response"}, {"header", "RequestHeader"}, {"header", "ResponseHeader"}} {
		src := fmt.Sprintf(def, kind[0], kind[1])
		if kind[0] == "header" {
			src = strings.Replace(strings.Replace(src, `"apiKey": 1, `, "", 1), `"X`+kind[1], `"`+kind[1], 1)
		}
		m, err := ParseMessage(kind[1]+".json", []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, m)
	}
	out, err := Generate(msgs, []ErrorCode{{Code: -1, Name: "UNKNOWN_SERVER_ERROR"}})
	if err != nil {
		t.Fatal(err)
	}
	src := string(out["x_gen.go"])
	for _, want := range []string{`m.Id = r.string(false, "XRequest.Id")`, `m.Name = r.string(flex, "XRequest.Name")`,
		`dst = appendString(dst, false, m.Id)`} {
		if !strings.Contains(src, want) {
			t.Errorf("generated code lacks %q", want)
		}
	}
}

package routing

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"

	"github.com/ferry-mq/ferry/internal/base"
)

// TestDataDriven runs the stories in testdata/*.txt, each against a fresh
// table of vhost "/". Rewrite the expected output with
//
//	go test ./internal/routing -run TestDataDriven -rewrite
//
// Commands (arguments in parentheses are optional):
//
//	declare name=X type=T (durable) (auto-delete) (internal) (ae=A)
//	    input: extra arguments, one "key: value" per line
//	delete name=X (if-unused)
//	add queue=Q | add stream=S
//	remove queue=Q | remove stream=S
//	bind src=X queue=Q|stream=S|exchange=Y (key=K) (mqtt)
//	    input: binding arguments, one "key: value" per line
//	unbind ... as bind
//	route ex=X (key=K)
//	    input: message headers, one "key: value" per line
//	dump (all)    the table, without the built-in exchanges unless all
//	snapshot      marshal, restore into a new table, continue with it
//	stats
//
// Values are written as Value.String writes them: void, true, 42,
// float(1.5), "text", bytes("raw"). A key=... argument may be a Go quoted
// string, for keys with characters the directive syntax reserves.
func TestDataDriven(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no story files: %v", err)
	}
	for _, path := range files {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txt"), func(t *testing.T) {
			h := &harness{tbl: NewTable("/")}
			datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
				out := h.run(t, d)
				h.tbl.checkInvariants()
				return out
			})
		})
	}
}

type harness struct {
	tbl *Table
	res Result
}

func (h *harness) run(t *testing.T, d *datadriven.TestData) string {
	switch d.Cmd {
	case "declare":
		return h.declare(t, d)
	case "delete":
		c, err := h.tbl.DeleteExchange(arg(t, d, "name"), d.HasArg("if-unused"))
		return formatChange(c, err)
	case "add":
		added, err := h.tbl.AddDestination(destArg(t, d))
		return outcome(added, "added", "exists", err)
	case "remove":
		c, err := h.tbl.RemoveDestination(destArg(t, d))
		return formatChange(c, err)
	case "bind":
		added, err := h.tbl.Bind(bindingArg(t, d))
		return outcome(added, "bound", "exists", err)
	case "unbind":
		c, err := h.tbl.Unbind(bindingArg(t, d))
		return formatChange(c, err)
	case "route":
		err := h.tbl.Route(&h.res, arg(t, d, "ex"), optArg(t, d, "key"), parseFields(t, d.Input))
		return formatResult(&h.res, err)
	case "dump":
		return dump(h.tbl, d.HasArg("all"))
	case "snapshot":
		return h.snapshot(t)
	case "stats":
		s := h.tbl.Stats()
		return fmt.Sprintf("exchanges %d, destinations %d, bindings %d\n", s.Exchanges, s.Destinations, s.Bindings)
	}
	t.Fatalf("%s: unknown command %q", d.Pos, d.Cmd)
	return ""
}

func (h *harness) declare(t *testing.T, d *datadriven.TestData) string {
	typ, err := ParseExchangeType(arg(t, d, "type"))
	if err != nil {
		return formatErr(err)
	}
	e := Exchange{Name: arg(t, d, "name"), Type: typ, Durable: d.HasArg("durable"),
		AutoDelete: d.HasArg("auto-delete"), Internal: d.HasArg("internal"), Args: parseFields(t, d.Input)}
	if d.HasArg("ae") {
		e.Args = append(e.Args, Field{Key: "alternate-exchange", Value: StringValue(arg(t, d, "ae"))})
	}
	created, err := h.tbl.DeclareExchange(e)
	return outcome(created, "created", "exists", err)
}

func (h *harness) snapshot(t *testing.T) string {
	data, err := h.tbl.MarshalBinary()
	if err != nil {
		t.Fatalf("MarshalBinary: %v", err)
	}
	restored := NewTable("other")
	if err := restored.UnmarshalBinary(data); err != nil {
		t.Fatalf("UnmarshalBinary of a fresh snapshot: %v", err)
	}
	if !restored.Equal(h.tbl) || restored.Dump() != h.tbl.Dump() {
		t.Fatalf("restored table differs:\n%s\nwant:\n%s", restored.Dump(), h.tbl.Dump())
	}
	h.tbl = restored
	return fmt.Sprintf("restored %d bytes\n", len(data))
}

func arg(t *testing.T, d *datadriven.TestData, key string) string {
	if !d.HasArg(key) {
		t.Fatalf("%s: %s needs %s=", d.Pos, d.Cmd, key)
	}
	return optArg(t, d, key)
}

// optArg returns the argument's value, "" when absent; a value starting
// with a double quote is a Go string literal.
func optArg(t *testing.T, d *datadriven.TestData, key string) string {
	a, ok := d.Arg(key)
	if !ok {
		return ""
	}
	v := strings.Join(a.Vals, ",")
	if strings.HasPrefix(v, `"`) {
		u, err := strconv.Unquote(v)
		if err != nil {
			t.Fatalf("%s: %s=%s: %v", d.Pos, key, v, err)
		}
		return u
	}
	return v
}

func destArg(t *testing.T, d *datadriven.TestData) Destination {
	for _, k := range []DestKind{Queue, Stream, ToExchange} {
		if d.HasArg(k.String()) {
			return Destination{Kind: k, Name: optArg(t, d, k.String())}
		}
	}
	t.Fatalf("%s: %s needs queue=, stream= or exchange=", d.Pos, d.Cmd)
	return Destination{}
}

func bindingArg(t *testing.T, d *datadriven.TestData) Binding {
	b := Binding{Source: arg(t, d, "src"), Destination: destArg(t, d), Key: optArg(t, d, "key"), Args: parseFields(t, d.Input)}
	if d.HasArg("mqtt") {
		b.Syntax = SyntaxMQTT
	}
	return b
}

// parseFields reads "key: value" lines.
func parseFields(t *testing.T, input string) []Field {
	var out []Field
	for line := range strings.Lines(input) {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		k, v, ok := strings.Cut(line, ": ")
		if !ok {
			t.Fatalf("field line %q is not key: value", line)
		}
		val, err := parseValue(v)
		if err != nil {
			t.Fatalf("field line %q: %v", line, err)
		}
		out = append(out, Field{Key: k, Value: val})
	}
	return out
}

// parseValue reads what Value.String writes.
func parseValue(s string) (Value, error) {
	switch {
	case s == "void":
		return VoidValue(), nil
	case s == "true" || s == "false":
		return BoolValue(s == "true"), nil
	case strings.HasPrefix(s, `"`):
		u, err := strconv.Unquote(s)
		return StringValue(u), err
	case strings.HasPrefix(s, "bytes(") && strings.HasSuffix(s, ")"):
		u, err := strconv.Unquote(s[len("bytes(") : len(s)-1])
		return BytesValue([]byte(u)), err
	case strings.HasPrefix(s, "float(") && strings.HasSuffix(s, ")"):
		f, err := strconv.ParseFloat(s[len("float("):len(s)-1], 64)
		return FloatValue(f), err
	}
	i, err := strconv.ParseInt(s, 10, 64)
	return IntValue(i), err
}

func formatErr(err error) string {
	return fmt.Sprintf("error %s: %v\n", base.CodeOf(err), err)
}

func outcome(ok bool, yes, no string, err error) string {
	switch {
	case err != nil:
		return formatErr(err)
	case ok:
		return yes + "\n"
	}
	return no + "\n"
}

func formatChange(c Change, err error) string {
	if err != nil {
		return formatErr(err)
	}
	if !c.Removed {
		base.Assert(c.BindingsRemoved == 0 && len(c.AutoDeleted) == 0, "a no-op removed something: %+v", c)
		return "no-op\n"
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "removed; bindings removed: %d\n", c.BindingsRemoved)
	if len(c.AutoDeleted) > 0 {
		fmt.Fprintf(&sb, "auto-deleted %s\n", strings.Join(c.AutoDeleted, ", "))
	}
	return sb.String()
}

func formatResult(r *Result, err error) string {
	if err != nil {
		return formatErr(err)
	}
	var sb strings.Builder
	for _, d := range r.Destinations {
		fmt.Fprintf(&sb, "%s %s\n", d.Kind, d.Name)
	}
	for _, f := range []struct {
		on   bool
		name string
	}{{r.Unroutable, "unroutable"}, {r.ViaAlternate, "via alternate"}, {r.DepthLimited, "depth limited"}} {
		if f.on {
			sb.WriteString(f.name + "\n")
		}
	}
	return sb.String()
}

func dump(tbl *Table, all bool) string {
	var sb strings.Builder
	for line := range strings.Lines(tbl.Dump()) {
		builtin := false
		for _, e := range builtinExchanges {
			builtin = builtin || strings.HasPrefix(line, fmt.Sprintf("exchange %q ", e.Name))
		}
		if all || (!builtin && !strings.HasPrefix(line, "vhost ")) {
			sb.WriteString(line)
		}
	}
	if sb.Len() == 0 {
		return "empty\n"
	}
	return sb.String()
}

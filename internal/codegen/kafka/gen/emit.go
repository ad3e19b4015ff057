package gen

import (
	"bytes"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// printer collects generated lines; go/format fixes the indentation.
type printer struct{ buf bytes.Buffer }

func (p *printer) f(format string, args ...any) {
	fmt.Fprintf(&p.buf, format, args...)
	p.buf.WriteByte('\n')
}

// cond returns a Go boolean expression over `version` that is true exactly
// for the versions of v, given that version is known to lie in ctx. It is
// "true" or "false" when the answer does not depend on the version.
func cond(v, ctx Versions) string {
	in := v.Intersect(ctx)
	switch {
	case in.Empty():
		return "false"
	case v.Covers(ctx):
		return "true"
	}
	var parts []string
	if in.Lo > ctx.Lo {
		parts = append(parts, fmt.Sprintf("version >= %d", in.Lo))
	}
	if in.Hi < ctx.Hi {
		parts = append(parts, fmt.Sprintf("version <= %d", in.Hi))
	}
	if len(parts) == 2 && in.Lo == in.Hi {
		return fmt.Sprintf("version == %d", in.Lo)
	}
	return strings.Join(parts, " && ")
}

// and joins boolean expressions, folding the constants.
func and(a, b string) string {
	switch {
	case a == "false" || b == "false":
		return "false"
	case a == "true":
		return b
	case b == "true":
		return a
	}
	return paren(a) + " && " + paren(b)
}

// paren wraps c in parentheses unless it is a single term.
func paren(c string) string {
	if simple(c) || (strings.HasPrefix(c, "(") && strings.HasSuffix(c, ")") && !strings.Contains(c[1:len(c)-1], "(")) {
		return c
	}
	return "(" + c + ")"
}

// block prints body under `if c`, folding constant conditions.
func (p *printer) block(c string, body func()) {
	switch c {
	case "false":
		return
	case "true":
		body()
		return
	}
	p.f("if %s {", c)
	body()
	p.f("}")
}

// structGen emits the code of one struct of one message.
type structGen struct {
	p    *printer
	msg  *Message
	s    *Struct
	ctx  Versions
	g    *generator
	root bool
}

func (sg *structGen) flexOf(f *Field) string {
	if f != nil && f.FlexOverride != nil {
		return cond(*f.FlexOverride, sg.ctx)
	}
	return sg.flexVar()
}

// flexVar is the expression for "this version is flexible": the local
// `flex` when it varies across the struct's versions, else a constant.
func (sg *structGen) flexVar() string {
	c := cond(sg.msg.Flexible, sg.ctx)
	if c == "true" || c == "false" {
		return c
	}
	return "flex"
}

func (sg *structGen) fieldID(f *Field) string {
	return strconv.Quote(sg.s.Name + "." + f.JSONName)
}

func (sg *structGen) emitType() {
	p, s := sg.p, sg.s
	if sg.root {
		p.f("// %s is the %s message (%s), versions %s.", s.GoName, sg.msg.Name, sg.msg.File, sg.msg.Valid)
	} else {
		p.f("// %s is the %s struct of %s.", s.GoName, s.Name, sg.msg.Name)
	}
	p.f("type %s struct {", s.GoName)
	for _, f := range s.Fields {
		for _, line := range fieldDoc(f) {
			p.f("// %s", line)
		}
		p.f("%s %s", f.Name, goType(f))
	}
	if sg.msg.Flexible.Intersect(sg.ctx).Empty() {
		p.f("}")
		return
	}
	p.f("// UnknownTags are the tagged fields this definition does not know, in")
	p.f("// ascending tag order; they are written back as they were read.")
	p.f("UnknownTags []TaggedField")
	p.f("}")
}

func fieldDoc(f *Field) []string {
	var out []string
	about := f.About
	if about == "" {
		about = "(no description)"
	}
	out = append(out, wrap(f.Name+": "+about, 90)...)
	facts := []string{"versions " + f.Versions.String()}
	if nv := f.Nullable.Intersect(f.Versions); !nv.Empty() {
		facts = append(facts, "nullable "+nv.String())
	}
	if f.Tag >= 0 {
		facts = append(facts, fmt.Sprintf("tag %d in %s", f.Tag, f.TaggedIn()))
	}
	if f.HasDefault {
		facts = append(facts, "default "+strconv.Quote(f.Default))
	}
	if f.Ignorable {
		facts = append(facts, "ignorable")
	}
	if f.MapKey {
		facts = append(facts, "map key")
	}
	if f.Entity != "" {
		facts = append(facts, "entity "+f.Entity)
	}
	return append(out, strings.Join(facts, "; ")+".")
}

func wrap(s string, width int) []string {
	var out []string
	line := ""
	for _, w := range strings.Fields(s) {
		if line != "" && len(line)+1+len(w) > width {
			out = append(out, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += w
	}
	return append(out, line)
}

func (sg *structGen) emitDefault() {
	p, s := sg.p, sg.s
	p.f("// Default sets every field of m to its default value, the value a")
	p.f("// version without the field decodes to.")
	p.f("func (m *%s) Default() {", s.GoName)
	sg.emitReset()
	for _, f := range s.Fields {
		if emptyStringDefault(f) {
			p.f("m.%s = stringPtr(\"\") // not null: some versions cannot carry null", f.Name)
		}
	}
	p.f("}")
}

// emitReset prints the statements that set m to its defaults, except for
// the non-null empty strings of emptyStringDefault fields, which a decode
// either reads or leaves absent.
func (sg *structGen) emitReset() {
	p, s := sg.p, sg.s
	var inits []string
	var nested []string
	for _, f := range s.Fields {
		if lit, _ := DefaultLiteral(f); lit != "" {
			inits = append(inits, f.Name+": "+lit)
		}
		if f.Type.Kind == KindStruct && !f.NullableEver() && sg.g.hasDefaults(f.Type.Struct) {
			nested = append(nested, f.Name)
		}
	}
	p.f("*m = %s{%s}", s.GoName, strings.Join(inits, ", "))
	for _, n := range nested {
		p.f("m.%s.Default()", n)
	}
}

func (sg *structGen) emitIsDefault() {
	p, s := sg.p, sg.s
	p.f("// isDefault reports whether every field of m holds its default value.")
	p.f("func (m *%s) isDefault() bool {", s.GoName)
	var terms []string
	for _, f := range s.Fields {
		terms = append(terms, isDefaultExpr(f))
	}
	if !sg.msg.Flexible.Intersect(sg.ctx).Empty() {
		terms = append(terms, "len(m.UnknownTags) == 0")
	}
	if len(terms) == 0 {
		terms = []string{"true"}
	}
	p.f("return %s", strings.Join(terms, " &&\n"))
	p.f("}")
}

func (sg *structGen) emitMapKey() {
	var keys []*Field
	for _, f := range sg.s.Fields {
		if f.MapKey {
			keys = append(keys, f)
		}
	}
	if len(keys) == 0 {
		return
	}
	p, s := sg.p, sg.s
	val := func(f *Field) string {
		if f.Type.Kind == KindString && f.NullableEver() {
			return "derefString(m." + f.Name + ")"
		}
		return "m." + f.Name
	}
	typ := func(f *Field) string {
		if f.Type.Kind == KindString {
			return "string"
		}
		return goType(f)
	}
	if len(keys) == 1 {
		p.f("// MapKey returns the field the definition marks as the key of the")
		p.f("// elements of an array of %s.", s.GoName)
		p.f("func (m *%s) MapKey() %s { return %s }", s.GoName, typ(keys[0]), val(keys[0]))
		return
	}
	p.f("// %sMapKey is the key of an element of an array of %s: the fields the", s.GoName, s.GoName)
	p.f("// definition marks mapKey.")
	p.f("type %sMapKey struct {", s.GoName)
	var vals []string
	for _, f := range keys {
		p.f("%s %s", f.Name, typ(f))
		vals = append(vals, f.Name+": "+val(f))
	}
	p.f("}")
	p.f("// MapKey returns the key of m (a null key string reads as \"\").")
	p.f("func (m *%s) MapKey() %sMapKey { return %sMapKey{%s} }", s.GoName, s.GoName, s.GoName, strings.Join(vals, ", "))
}

// taggedFields returns the struct's fields that are tagged in some version
// of ctx, in tag order.
func (sg *structGen) taggedFields() []*Field {
	var out []*Field
	for _, f := range sg.s.Fields {
		if !f.TaggedIn().Intersect(sg.ctx).Empty() {
			out = append(out, f)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Tag < out[j].Tag })
	return out
}

func (sg *structGen) usesFlexVar() bool {
	if sg.flexVar() != "flex" {
		return false
	}
	return true
}

package gen

import (
	"fmt"
	"strconv"
	"strings"
)

// readCall returns the reader call that decodes one value of a primitive
// kind (not struct, not array).
func readCall(k Kind, flex, nullable, id string, ptr bool) string {
	switch k {
	case KindBool:
		return "r.bool(" + id + ")"
	case KindInt8:
		return "r.int8(" + id + ")"
	case KindInt16:
		return "r.int16(" + id + ")"
	case KindInt32:
		return "r.int32(" + id + ")"
	case KindInt64:
		return "r.int64(" + id + ")"
	case KindUint16:
		return "r.uint16(" + id + ")"
	case KindUint32:
		return "r.uint32(" + id + ")"
	case KindFloat64:
		return "r.float64(" + id + ")"
	case KindUUID:
		return "r.uuid(" + id + ")"
	case KindString:
		if ptr {
			return fmt.Sprintf("r.nullableString(%s, %s, %s)", flex, nullable, id)
		}
		return fmt.Sprintf("r.string(%s, %s)", flex, id)
	case KindBytes, KindRecords:
		return fmt.Sprintf("r.bytes(%s, %s, %s)", flex, nullable, id)
	}
	panic(fmt.Sprintf("gen: no read call for kind %d", k))
}

// appendCall returns the expression appending value x of a primitive kind
// to dst.
func appendCall(k Kind, flex, nullable, x string, ptr bool) string {
	switch k {
	case KindBool:
		return "appendBool(dst, " + x + ")"
	case KindInt8:
		return "append(dst, byte(" + x + "))"
	case KindInt16:
		return "appendUint16(dst, uint16(" + x + "))"
	case KindUint16:
		return "appendUint16(dst, " + x + ")"
	case KindInt32:
		return "appendUint32(dst, uint32(" + x + "))"
	case KindUint32:
		return "appendUint32(dst, " + x + ")"
	case KindInt64:
		return "appendUint64(dst, uint64(" + x + "))"
	case KindFloat64:
		return "appendFloat64(dst, " + x + ")"
	case KindUUID:
		return "append(dst, " + x + "[:]...)"
	case KindString:
		if ptr {
			return fmt.Sprintf("appendNullableString(dst, %s, %s, %s)", flex, nullable, x)
		}
		return fmt.Sprintf("appendString(dst, %s, %s)", flex, x)
	case KindBytes, KindRecords:
		return fmt.Sprintf("appendBytes(dst, %s, %s, %s)", flex, nullable, x)
	}
	panic(fmt.Sprintf("gen: no append call for kind %d", k))
}

// minElem returns the fewest wire bytes one element of array field f takes
// in any version of ctx. Counts are checked against it, so it must be at
// least 1 for decoding to stay linear in the input.
func (sg *structGen) minElem(f *Field, ctx Versions) int {
	best := -1
	for v := ctx.Lo; v <= ctx.Hi && v <= sg.msg.Valid.Hi; v++ {
		n := minWireSize(f.Type.Elem, nil, v, sg.msg.Flexible)
		if best < 0 || n < best {
			best = n
		}
	}
	return best
}

// emitDecodeValue prints the code decoding field f (present in versions
// `in`, a subset of the struct's context) into m.F.
func (sg *structGen) emitDecodeValue(f *Field, in Versions, flex string) {
	p, id := sg.p, sg.fieldID(f)
	nullable := cond(f.Nullable, in)
	x := "m." + f.Name
	switch t := f.Type; t.Kind {
	case KindStruct:
		if !f.NullableEver() {
			p.f("%s.decode(r, version)", x)
			return
		}
		p.f("if r.present(%s, %s) {", nullable, id)
		p.f("if %s = allocOne[%s](r, %s); %s != nil {", x, t.Struct.GoName, id, x)
		p.f("%s.decode(r, version)", x)
		p.f("}")
		p.f("}")
	case KindArray:
		min := sg.minElem(f, in)
		if min < 1 {
			sg.g.errs = append(sg.g.errs, fmt.Errorf("%s: %s.%s: array elements can take 0 bytes", sg.msg.File, sg.s.Name, f.JSONName))
		}
		p.f("if n := r.arrayLen(%s, %s, %d, %s); n >= 0 {", flex, nullable, min, id)
		p.f("s := allocSlice[%s](r, n, %s)", elemGoType(t.Elem), id)
		switch t.Elem.Kind {
		case KindStruct:
			p.f("for i := range s {")
			p.f("if s[i].decode(r, version); r.err != nil {")
			p.f("break")
			p.f("}")
			p.f("}")
		case KindString:
			p.f("for i := range s {")
			p.f("if s[i] = %s; r.err != nil {", readCall(KindString, flex, "false", id, false))
			p.f("break")
			p.f("}")
			p.f("}")
		default:
			// Fixed-size elements: the count was checked against the bytes
			// left, so these reads cannot run past the input.
			p.f("for i := range s {")
			p.f("s[i] = %s", readCall(t.Elem.Kind, flex, "false", id, false))
			p.f("}")
		}
		p.f("%s = s", x)
		p.f("}")
	default:
		p.f("%s = %s", x, readCall(t.Kind, flex, nullable, id, f.NullableEver()))
	}
}

// emitEncodeValue prints the code appending m.F (present in versions `in`).
func (sg *structGen) emitEncodeValue(f *Field, in Versions, flex string) {
	p := sg.p
	nullable := cond(f.Nullable, in)
	x := "m." + f.Name
	switch t := f.Type; t.Kind {
	case KindStruct:
		if !f.NullableEver() {
			p.f("dst = %s.encode(dst, version)", x)
			return
		}
		p.f("if %s != nil {", x)
		p.block(nullable, func() { p.f("dst = append(dst, 1)") })
		p.f("dst = %s.encode(dst, version)", x)
		p.f("} else {")
		if nullable == "true" {
			p.f("dst = append(dst, 0xff)")
		} else {
			// A version where the struct may not be null: write its default,
			// which Validate reports.
			p.block(nullable, func() { p.f("dst = append(dst, 0xff)") })
			p.block(negate(nullable), func() {
				p.f("var d %s", t.Struct.GoName)
				p.f("d.Default()")
				p.f("dst = d.encode(dst, version)")
			})
		}
		p.f("}")
	case KindArray:
		null := and(nullable, x+" == nil")
		p.f("dst = appendArrayLen(dst, %s, %s, len(%s))", flex, null, x)
		switch t.Elem.Kind {
		case KindStruct:
			p.f("for i := range %s {", x)
			p.f("dst = %s[i].encode(dst, version)", x)
			p.f("}")
		default:
			p.f("for _, e := range %s {", x)
			p.f("dst = %s", appendCall(t.Elem.Kind, flex, "false", "e", false))
			p.f("}")
		}
	default:
		p.f("dst = %s", appendCall(t.Kind, flex, nullable, x, f.NullableEver()))
	}
}

// negate returns the negation of a boolean expression made by cond, and,
// or isDefaultExpr, rewriting simple comparisons instead of wrapping them.
func negate(c string) string {
	switch c {
	case "true":
		return "false"
	case "false":
		return "true"
	}
	if simple(c) {
		for _, op := range [][2]string{{" == ", " != "}, {" != ", " == "}, {" >= ", " < "}, {" <= ", " > "}} {
			if a, b, ok := strings.Cut(c, op[0]); ok {
				return a + op[1] + b
			}
		}
		if strings.HasPrefix(c, "!") && !strings.HasPrefix(c, "!=") {
			return c[1:]
		}
		if !strings.ContainsAny(c, " ") {
			return "!" + c
		}
	}
	if strings.HasPrefix(c, "(") && paren(c) == c {
		return "!" + c
	}
	return "!(" + c + ")"
}

// simple reports whether c is one comparison or operand, safe to use as a
// term of && without parentheses.
func simple(c string) bool {
	return !strings.Contains(c, "&&") && !strings.Contains(c, "||") && strings.Count(c, " == ")+strings.Count(c, " != ")+
		strings.Count(c, " >= ")+strings.Count(c, " <= ") <= 1
}

func (sg *structGen) emitDecode() {
	p, s := sg.p, sg.s
	p.f("func (m *%s) decode(r *reader, version int16) {", s.GoName)
	sg.emitReset()
	if sg.flexVar() == "flex" {
		p.f("flex := %s", cond(sg.msg.Flexible, sg.ctx))
	}
	for _, f := range s.Fields {
		in := f.Regular().Intersect(sg.ctx)
		p.block(cond(f.Regular(), sg.ctx), func() { sg.emitDecodeValue(f, in, sg.flexOf(f)) })
	}
	p.block(sg.flexVar(), sg.emitDecodeTags)
	p.f("}")
}

func (sg *structGen) emitDecodeTags() {
	p, s := sg.p, sg.s
	tagged := sg.taggedFields()
	id := strconv.Quote(s.Name)
	if len(tagged) == 0 {
		p.f("m.UnknownTags = r.unknownTags(%s)", id)
		return
	}
	p.f("last := int64(-1)")
	p.f("for n := r.tagCount(%s); n > 0 && r.err == nil; n-- {", id)
	p.f("tag, saved := r.tagHeader(&last, %s)", id)
	p.f("switch {")
	for _, f := range tagged {
		in := f.TaggedIn().Intersect(sg.ctx)
		c := and(fmt.Sprintf("tag == %d", f.Tag), cond(f.TaggedIn(), sg.ctx))
		p.f("case %s:", c)
		sg.emitDecodeValue(f, in, "true")
	}
	p.f("default:")
	p.f("m.UnknownTags = r.unknownTag(m.UnknownTags, tag, %s)", id)
	p.f("}")
	p.f("r.tagEnd(saved, %s)", id)
	p.f("}")
}

func (sg *structGen) emitEncode() {
	p, s := sg.p, sg.s
	p.f("func (m *%s) encode(dst []byte, version int16) []byte {", s.GoName)
	if sg.flexVar() == "flex" {
		p.f("flex := %s", cond(sg.msg.Flexible, sg.ctx))
	}
	for _, f := range s.Fields {
		in := f.Regular().Intersect(sg.ctx)
		p.block(cond(f.Regular(), sg.ctx), func() { sg.emitEncodeValue(f, in, sg.flexOf(f)) })
	}
	p.block(sg.flexVar(), sg.emitEncodeTags)
	p.f("return dst")
	p.f("}")
}

func (sg *structGen) emitEncodeTags() {
	p := sg.p
	tagged := sg.taggedFields()
	if len(tagged) == 0 {
		p.f("dst = appendTags(dst, m.UnknownTags)")
		return
	}
	p.f("known := 0")
	writes := make([]string, len(tagged))
	for i, f := range tagged {
		writes[i] = fmt.Sprintf("write%d", i)
		p.f("%s := %s", writes[i], and(cond(f.TaggedIn(), sg.ctx), negate(isDefaultExpr(f))))
		p.f("if %s {", writes[i])
		p.f("known++")
		p.f("}")
	}
	p.f("dst = appendUvarint(dst, uint32(known+len(m.UnknownTags)))")
	p.f("u := 0")
	for i, f := range tagged {
		in := f.TaggedIn().Intersect(sg.ctx)
		p.f("if %s {", writes[i])
		p.f("dst, u = appendTagsBelow(dst, m.UnknownTags, u, %d)", f.Tag)
		p.f("dst = beginTag(dst, %d)", f.Tag)
		p.f("mark := len(dst)")
		sg.emitEncodeValue(f, in, "true")
		p.f("dst = endTag(dst, mark)")
		p.f("}")
	}
	p.f("dst = appendTagsFrom(dst, m.UnknownTags, u)")
}

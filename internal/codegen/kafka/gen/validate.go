package gen

// Validation mirrors what Kafka's generated Java checks when it writes a
// message: a field the version cannot carry must hold its default unless
// the definition marks it ignorable, and a field may be null only in its
// nullable versions. Encode itself never fails (it writes the default or
// an empty value), so callers that build messages run Validate in tests and
// under invariants.

// validateChecks reports whether struct s, in its context, has anything to
// check, directly or in a nested struct.
func (g *generator) needsValidate(msg *Message, s *Struct) bool {
	if v, ok := g.validateMemo[s]; ok {
		return v
	}
	g.validateMemo[s] = false // cycles cannot occur, but stay finite if they did
	ctx := s.Versions.Intersect(msg.Valid)
	need := false
	for _, f := range s.Fields {
		if fieldChecks(f, ctx) {
			need = true
		}
		if st := structOf(f); st != nil && g.needsValidate(msg, st) {
			need = true
		}
	}
	g.validateMemo[s] = need
	return need
}

// structOf returns the struct a field holds, directly or as array elements.
func structOf(f *Field) *Struct {
	switch f.Type.Kind {
	case KindStruct:
		return f.Type.Struct
	case KindArray:
		if f.Type.Elem.Kind == KindStruct {
			return f.Type.Elem.Struct
		}
	}
	return nil
}

// fieldChecks reports whether field f itself needs a check in ctx.
func fieldChecks(f *Field, ctx Versions) bool {
	if !f.Ignorable && cond(f.Versions, ctx) != "true" {
		return true
	}
	return nullCheck(f, ctx)
}

// nullCheck reports whether f has a nil-able pointer type but is not
// nullable in every version of ctx in which it appears.
func nullCheck(f *Field, ctx Versions) bool {
	ptr := (f.Type.Kind == KindString || f.Type.Kind == KindStruct) && f.NullableEver()
	return ptr && !f.Nullable.Covers(f.Versions.Intersect(ctx))
}

func (sg *structGen) emitValidate() {
	p, s := sg.p, sg.s
	if !sg.g.needsValidate(sg.msg, s) {
		return
	}
	p.f("func (m *%s) validate(version int16) error {", s.GoName)
	for _, f := range s.Fields {
		present := cond(f.Versions, sg.ctx)
		id := sg.fieldID(f)
		if !f.Ignorable {
			p.block(and(negate(present), negate(isDefaultExpr(f))), func() {
				p.f("return fieldError(%s, version, ErrFieldNotInVersion)", id)
			})
		}
		if nullCheck(f, sg.ctx) {
			c := and(present, and(negate(cond(f.Nullable, sg.ctx)), "m."+f.Name+" == nil"))
			p.block(c, func() { p.f("return fieldError(%s, version, ErrNullNotAllowed)", id) })
		}
		st := structOf(f)
		if st == nil || !sg.g.needsValidate(sg.msg, st) {
			continue
		}
		switch {
		case f.Type.Kind == KindArray:
			p.block(present, func() {
				p.f("for i := range m.%s {", f.Name)
				p.f("if err := m.%s[i].validate(version); err != nil {", f.Name)
				p.f("return err")
				p.f("}")
				p.f("}")
			})
		case f.NullableEver():
			p.block(and(present, "m."+f.Name+" != nil"), func() {
				p.f("if err := m.%s.validate(version); err != nil {", f.Name)
				p.f("return err")
				p.f("}")
			})
		default:
			p.block(present, func() {
				p.f("if err := m.%s.validate(version); err != nil {", f.Name)
				p.f("return err")
				p.f("}")
			})
		}
	}
	p.f("return nil")
	p.f("}")
}

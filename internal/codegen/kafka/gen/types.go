package gen

import (
	"fmt"
	"math"
	"strconv"
)

// goType is the Go type of a field. Nullable strings and structs become
// pointers (nil is null); nullable bytes and arrays use a nil slice for null.
func goType(f *Field) string {
	t := f.Type
	switch t.Kind {
	case KindString:
		if f.NullableEver() {
			return "*string"
		}
		return "string"
	case KindStruct:
		if f.NullableEver() {
			return "*" + t.Struct.GoName
		}
		return t.Struct.GoName
	case KindArray:
		return "[]" + elemGoType(t.Elem)
	}
	return elemGoType(t)
}

func elemGoType(t *Type) string {
	switch t.Kind {
	case KindBool:
		return "bool"
	case KindInt8:
		return "int8"
	case KindInt16:
		return "int16"
	case KindInt32:
		return "int32"
	case KindInt64:
		return "int64"
	case KindUint16:
		return "uint16"
	case KindUint32:
		return "uint32"
	case KindFloat64:
		return "float64"
	case KindString:
		return "string"
	case KindBytes, KindRecords:
		return "[]byte"
	case KindUUID:
		return "UUID"
	case KindStruct:
		return t.Struct.GoName
	}
	panic(fmt.Sprintf("gen: no Go type for kind %d", t.Kind))
}

var intBits = map[Kind]int{KindInt8: 8, KindInt16: 16, KindInt32: 32, KindInt64: 64}
var uintBits = map[Kind]int{KindUint16: 16, KindUint32: 32}

// DefaultLiteral returns the Go expression of f's default value, or "" when
// the default is the Go zero value.
func DefaultLiteral(f *Field) (string, error) {
	if !f.HasDefault {
		return "", nil
	}
	d := f.Default
	switch k := f.Type.Kind; k {
	case KindInt8, KindInt16, KindInt32, KindInt64:
		v, err := strconv.ParseInt(d, 0, intBits[k])
		if err != nil {
			return "", fmt.Errorf("default %q: %w", d, err)
		}
		if v == 0 {
			return "", nil
		}
		return strconv.FormatInt(v, 10), nil
	case KindUint16, KindUint32:
		v, err := strconv.ParseUint(d, 0, uintBits[k])
		if err != nil {
			return "", fmt.Errorf("default %q: %w", d, err)
		}
		if v == 0 {
			return "", nil
		}
		return strconv.FormatUint(v, 10), nil
	case KindFloat64:
		v, err := strconv.ParseFloat(d, 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return "", fmt.Errorf("default %q is not a finite float64", d)
		}
		if v == 0 {
			return "", nil
		}
		return strconv.FormatFloat(v, 'g', -1, 64), nil
	case KindBool:
		switch d {
		case "true":
			return "true", nil
		case "false":
			return "", nil
		}
		return "", fmt.Errorf("default %q is not a bool", d)
	case KindString:
		if d == "null" {
			if !f.Nullable.Covers(f.Versions) {
				return "", fmt.Errorf("default null, but the field is not nullable in every version")
			}
			return "", nil
		}
		if d == "" {
			return "", nil
		}
		if f.NullableEver() {
			return "stringPtr(" + strconv.Quote(d) + ")", nil
		}
		return strconv.Quote(d), nil
	case KindBytes, KindRecords, KindArray, KindStruct:
		if d == "null" && f.NullableEver() {
			return "", nil
		}
	}
	return "", fmt.Errorf("default %q is not supported for this type", d)
}

// emptyStringDefault reports whether f is a nullable-in-some-versions
// string whose default is the empty string: Default sets it to a pointer to
// "" (nil would be null, which the other versions cannot carry).
func emptyStringDefault(f *Field) bool {
	if f.Type.Kind != KindString || !f.NullableEver() || f.Nullable.Covers(f.Versions) || defaultIsNull(f) {
		return false
	}
	lit, _ := DefaultLiteral(f)
	return lit == ""
}

// defaultIsNull reports whether the field's default is null (a nil Go
// value), as opposed to an empty value.
func defaultIsNull(f *Field) bool {
	if f.HasDefault && f.Default == "null" {
		return true
	}
	// Records default to null in the definitions' rules; a nullable struct
	// has no other default.
	return f.Type.Kind == KindRecords || (f.Type.Kind == KindStruct && f.NullableEver())
}

// isDefaultExpr returns a Go boolean expression, over receiver m, true when
// the field holds its default value. Tagged fields are written only when it
// is false, as Kafka does; Validate uses it to find values a version would
// lose.
func isDefaultExpr(f *Field) string {
	x := "m." + f.Name
	switch f.Type.Kind {
	case KindString:
		lit, _ := DefaultLiteral(f)
		if f.NullableEver() {
			switch {
			case defaultIsNull(f):
				return x + " == nil"
			case lit == "":
				return "(" + x + " == nil || *" + x + ` == "")`
			default:
				return "(" + x + " != nil && *" + x + " == " + strconv.Quote(f.Default) + ")"
			}
		}
		if lit == "" {
			return x + ` == ""`
		}
		return x + " == " + lit
	case KindBytes, KindRecords, KindArray:
		if f.NullableEver() && defaultIsNull(f) {
			return x + " == nil"
		}
		return "len(" + x + ") == 0"
	case KindUUID:
		return x + " == (UUID{})"
	case KindStruct:
		if f.NullableEver() {
			return x + " == nil"
		}
		return x + ".isDefault()"
	case KindBool:
		lit, _ := DefaultLiteral(f)
		if lit == "true" {
			return x
		}
		return "!" + x
	default:
		lit, _ := DefaultLiteral(f)
		if lit == "" {
			lit = "0"
		}
		return x + " == " + lit
	}
}

// minWireSize returns the fewest bytes a value of type t (as field f, for
// nullability) takes at version v of a message whose flexible versions are
// flex. Array counts are checked against it before anything is allocated.
func minWireSize(t *Type, f *Field, v int16, flex Versions) int {
	flexible := flex.Contains(v)
	if f != nil && f.FlexOverride != nil {
		flexible = f.FlexOverride.Contains(v)
	}
	if n := t.Kind.fixedSize(); n > 0 {
		return n
	}
	switch t.Kind {
	case KindString:
		if flexible {
			return 1
		}
		return 2
	case KindBytes, KindRecords, KindArray:
		if flexible {
			return 1
		}
		return 4
	case KindStruct:
		if f != nil && f.Nullable.Contains(v) {
			return 1
		}
		return structMinSize(t.Struct, v, flex)
	}
	panic("gen: unknown kind")
}

func structMinSize(s *Struct, v int16, flex Versions) int {
	n := 0
	if flex.Contains(v) {
		n++ // the tagged-field count
	}
	for _, f := range s.Fields {
		if f.Regular().Contains(v) {
			n += minWireSize(f.Type, f, v, flex)
		}
	}
	return n
}

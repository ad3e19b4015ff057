package gen

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// versionMax is the open end of a "N+" version range.
const versionMax = 0x7fff

// Versions is an inclusive range of message versions. The empty range
// (Lo > Hi) is the definitions' "none".
type Versions struct{ Lo, Hi int16 }

var noVersions = Versions{Lo: 1, Hi: 0}

// ParseVersions parses the definitions' version syntax: "", "none", "N",
// "N+" and "N-M".
func ParseVersions(s string) (Versions, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "" || s == "none":
		return noVersions, nil
	case strings.HasSuffix(s, "+"):
		lo, err := strconv.ParseInt(strings.TrimSuffix(s, "+"), 10, 16)
		if err != nil || lo < 0 {
			return Versions{}, fmt.Errorf("bad version range %q", s)
		}
		return Versions{int16(lo), versionMax}, nil
	case strings.Contains(s, "-"):
		a, b, _ := strings.Cut(s, "-")
		lo, err1 := strconv.ParseInt(a, 10, 16)
		hi, err2 := strconv.ParseInt(b, 10, 16)
		if err1 != nil || err2 != nil || lo < 0 || hi < lo {
			return Versions{}, fmt.Errorf("bad version range %q", s)
		}
		return Versions{int16(lo), int16(hi)}, nil
	default:
		v, err := strconv.ParseInt(s, 10, 16)
		if err != nil || v < 0 {
			return Versions{}, fmt.Errorf("bad version range %q", s)
		}
		return Versions{int16(v), int16(v)}, nil
	}
}

func (v Versions) Empty() bool           { return v.Lo > v.Hi }
func (v Versions) Contains(x int16) bool { return x >= v.Lo && x <= v.Hi }
func (v Versions) Intersect(o Versions) Versions {
	return Versions{max(v.Lo, o.Lo), min(v.Hi, o.Hi)}
}

// Covers reports whether every version of o is in v.
func (v Versions) Covers(o Versions) bool { return o.Empty() || (v.Lo <= o.Lo && v.Hi >= o.Hi) }

func (v Versions) String() string {
	switch {
	case v.Empty():
		return "none"
	case v.Hi == versionMax:
		return fmt.Sprintf("%d+", v.Lo)
	case v.Lo == v.Hi:
		return strconv.Itoa(int(v.Lo))
	default:
		return fmt.Sprintf("%d-%d", v.Lo, v.Hi)
	}
}

// Kind is the wire type of a field.
type Kind int

const (
	KindBool Kind = iota
	KindInt8
	KindInt16
	KindInt32
	KindInt64
	KindUint16
	KindUint32
	KindFloat64
	KindString
	KindBytes
	KindRecords
	KindUUID
	KindStruct
	KindArray
)

var primitiveKinds = map[string]Kind{
	"bool": KindBool, "int8": KindInt8, "int16": KindInt16, "int32": KindInt32, "int64": KindInt64,
	"uint16": KindUint16, "uint32": KindUint32, "float64": KindFloat64, "string": KindString,
	"bytes": KindBytes, "records": KindRecords, "uuid": KindUUID,
}

// fixedSize is the wire size of the fixed-width kinds, 0 for the others.
func (k Kind) fixedSize() int {
	switch k {
	case KindBool, KindInt8:
		return 1
	case KindInt16, KindUint16:
		return 2
	case KindInt32, KindUint32:
		return 4
	case KindInt64, KindFloat64:
		return 8
	case KindUUID:
		return 16
	}
	return 0
}

// Type is a field's type: a primitive, a struct, or an array of either.
type Type struct {
	Kind   Kind
	Elem   *Type   // KindArray
	Struct *Struct // KindStruct
}

// Listener names the definitions use; they say which servers accept an API.
var knownListeners = map[string]bool{"zkBroker": true, "broker": true, "controller": true}

// Message is one definition file: a request, a response, a header or a
// data record.
type Message struct {
	File                  string
	Name                  string // e.g. ProduceRequest
	Type                  string // request, response, header, data
	APIKey                int16  // -1 unless request or response
	Valid                 Versions
	Flexible              Versions
	Deprecated            Versions
	LatestVersionUnstable bool
	Listeners             []string
	Root                  *Struct
	Structs               []*Struct // every struct below Root, in definition order
}

// Struct is a group of fields: a message's root, an array element or a
// struct-typed field.
type Struct struct {
	Name     string // definition name, e.g. TopicProduceData
	GoName   string // e.g. ProduceRequestTopicProduceData
	Fields   []*Field
	Versions Versions // versions in which the struct can appear
	Common   bool
}

// Field is one field of a struct.
type Field struct {
	Name       string // Go name
	JSONName   string
	Type       *Type
	Versions   Versions
	Nullable   Versions
	Tagged     Versions
	Tag        int // -1 when never tagged
	Ignorable  bool
	Default    string // raw default from the definition, "" when none
	HasDefault bool
	MapKey     bool
	Entity     string
	About      string
	// FlexOverride, when set, replaces the message's flexible versions for
	// this field's own encoding (RequestHeader's ClientId is "none").
	FlexOverride *Versions
}

// NullableEver reports whether the field is nullable in some version it is
// present in; such fields have a pointer or nil-able Go type.
func (f *Field) NullableEver() bool {
	return !f.Nullable.Intersect(f.Versions).Empty()
}

// Regular returns the versions in which the field is a regular (untagged)
// field.
func (f *Field) Regular() Versions {
	if f.Tag < 0 {
		return f.Versions
	}
	r := f.Versions
	// Tagged versions are open-ended, so the regular part, if any, comes
	// before them.
	if !f.Tagged.Empty() && f.Tagged.Lo <= r.Hi {
		r.Hi = f.Tagged.Lo - 1
	}
	return r
}

// TaggedIn returns the versions in which the field is a tagged field.
func (f *Field) TaggedIn() Versions {
	if f.Tag < 0 {
		return noVersions
	}
	return f.Tagged.Intersect(f.Versions)
}

type rawField struct {
	Name             string          `json:"name"`
	Type             string          `json:"type"`
	Versions         string          `json:"versions"`
	NullableVersions string          `json:"nullableVersions"`
	TaggedVersions   string          `json:"taggedVersions"`
	FlexibleVersions *string         `json:"flexibleVersions"`
	Tag              json.RawMessage `json:"tag"`
	Ignorable        bool            `json:"ignorable"`
	Default          json.RawMessage `json:"default"`
	MapKey           bool            `json:"mapKey"`
	EntityType       string          `json:"entityType"`
	About            string          `json:"about"`
	ZeroCopy         bool            `json:"zeroCopy"` // a Java buffer-sharing hint; our decoder always aliases bytes
	Fields           []rawField      `json:"fields"`
}

type rawStruct struct {
	Name     string     `json:"name"`
	Versions string     `json:"versions"`
	Fields   []rawField `json:"fields"`
}

type rawMessage struct {
	APIKey                *int16      `json:"apiKey"`
	Type                  string      `json:"type"`
	Listeners             []string    `json:"listeners"`
	Name                  string      `json:"name"`
	ValidVersions         string      `json:"validVersions"`
	DeprecatedVersions    string      `json:"deprecatedVersions"`
	FlexibleVersions      string      `json:"flexibleVersions"`
	LatestVersionUnstable bool        `json:"latestVersionUnstable"`
	Fields                []rawField  `json:"fields"`
	CommonStructs         []rawStruct `json:"commonStructs"`
}

// StripComments removes the // comments the definitions carry, leaving
// string contents (which may hold "//", as in URLs) alone. Line structure is
// kept so that JSON errors point at the right line.
func StripComments(src []byte) []byte {
	out := make([]byte, 0, len(src))
	inString, escaped := false, false
	for i := 0; i < len(src); i++ {
		c := src[i]
		if inString {
			out = append(out, c)
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		if c == '/' && i+1 < len(src) && src[i+1] == '/' {
			for i < len(src) && src[i] != '\n' {
				i++
			}
			if i < len(src) {
				out = append(out, '\n')
			}
			continue
		}
		if c == '"' {
			inString = true
		}
		out = append(out, c)
	}
	return out
}

// LoadDir parses every *.json definition in dir, sorted by file name.
func LoadDir(dir string) ([]*Message, error) {
	names, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("no *.json definitions in %s", dir)
	}
	sort.Strings(names)
	msgs := make([]*Message, 0, len(names))
	for _, name := range names {
		src, err := os.ReadFile(name)
		if err != nil {
			return nil, err
		}
		m, err := ParseMessage(filepath.Base(name), src)
		if err != nil {
			return nil, err
		}
		msgs = append(msgs, m)
	}
	return msgs, nil
}

// ParseMessage parses one definition file. Unknown keys are errors, so a
// definition feature the generator does not understand cannot be dropped
// silently.
func ParseMessage(file string, src []byte) (*Message, error) {
	dec := json.NewDecoder(bytes.NewReader(StripComments(src)))
	dec.DisallowUnknownFields()
	var raw rawMessage
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	m, err := buildMessage(file, &raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return m, nil
}

func buildMessage(file string, raw *rawMessage) (*Message, error) {
	m := &Message{File: file, Name: raw.Name, Type: raw.Type, APIKey: -1,
		LatestVersionUnstable: raw.LatestVersionUnstable, Listeners: raw.Listeners}
	switch raw.Type {
	case "request", "response":
		if raw.APIKey == nil || *raw.APIKey < 0 {
			return nil, fmt.Errorf("%s %s has no apiKey", raw.Type, raw.Name)
		}
		m.APIKey = *raw.APIKey
	case "header", "data":
	default:
		return nil, fmt.Errorf("unknown message type %q", raw.Type)
	}
	for _, l := range raw.Listeners {
		if !knownListeners[l] {
			return nil, fmt.Errorf("unknown listener %q", l)
		}
	}
	var err error
	if m.Valid, err = ParseVersions(raw.ValidVersions); err != nil {
		return nil, err
	}
	if m.Valid.Empty() {
		return nil, fmt.Errorf("validVersions is empty")
	}
	if m.Flexible, err = ParseVersions(raw.FlexibleVersions); err != nil {
		return nil, err
	}
	if !m.Flexible.Empty() && m.Flexible.Hi != versionMax {
		return nil, fmt.Errorf("flexibleVersions %s is not open-ended", m.Flexible)
	}
	if m.Deprecated, err = ParseVersions(raw.DeprecatedVersions); err != nil {
		return nil, err
	}
	b := &builder{msg: m, byName: map[string]*Struct{}, commons: map[string]*rawStruct{}}
	for i := range raw.CommonStructs {
		cs := &raw.CommonStructs[i]
		if b.commons[cs.Name] != nil {
			return nil, fmt.Errorf("common struct %s defined twice", cs.Name)
		}
		b.commons[cs.Name] = cs
	}
	m.Root = &Struct{Name: raw.Name, GoName: GoName(raw.Name), Versions: m.Valid}
	if m.Root.Fields, err = b.fields(raw.Fields, m.Valid); err != nil {
		return nil, err
	}
	if err := checkTags(m.Root); err != nil {
		return nil, err
	}
	for _, s := range m.Structs {
		if err := checkTags(s); err != nil {
			return nil, err
		}
	}
	return m, nil
}

type builder struct {
	msg     *Message
	byName  map[string]*Struct
	commons map[string]*rawStruct
}

func (b *builder) fields(raws []rawField, in Versions) ([]*Field, error) {
	out := make([]*Field, 0, len(raws))
	seen := map[string]bool{}
	for i := range raws {
		f, err := b.field(&raws[i], in)
		if err != nil {
			return nil, fmt.Errorf("field %s: %w", raws[i].Name, err)
		}
		if seen[f.Name] {
			return nil, fmt.Errorf("field %s defined twice", f.Name)
		}
		seen[f.Name] = true
		out = append(out, f)
	}
	return out, nil
}

func (b *builder) field(raw *rawField, in Versions) (*Field, error) {
	f := &Field{Name: GoName(raw.Name), JSONName: raw.Name, Ignorable: raw.Ignorable, MapKey: raw.MapKey,
		Entity: raw.EntityType, About: strings.TrimSpace(raw.About), Tag: -1}
	var err error
	if f.Versions, err = ParseVersions(raw.Versions); err != nil {
		return nil, err
	}
	// A field can only appear where its struct does.
	f.Versions = f.Versions.Intersect(in)
	if f.Nullable, err = ParseVersions(raw.NullableVersions); err != nil {
		return nil, err
	}
	if f.Tagged, err = ParseVersions(raw.TaggedVersions); err != nil {
		return nil, err
	}
	if raw.FlexibleVersions != nil {
		fv, err := ParseVersions(*raw.FlexibleVersions)
		if err != nil {
			return nil, err
		}
		f.FlexOverride = &fv
	}
	if err := parseTag(f, raw.Tag); err != nil {
		return nil, err
	}
	if len(raw.Default) > 0 {
		f.HasDefault = true
		if err := json.Unmarshal(raw.Default, &f.Default); err != nil {
			// A bare JSON number or bool: keep its text.
			f.Default = string(raw.Default)
		}
	}
	if f.Type, err = b.typeOf(raw, f.Versions); err != nil {
		return nil, err
	}
	if err := checkField(f); err != nil {
		return nil, err
	}
	return f, nil
}

func parseTag(f *Field, raw json.RawMessage) error {
	if len(raw) == 0 {
		if !f.Tagged.Empty() {
			return fmt.Errorf("taggedVersions without a tag")
		}
		return nil
	}
	var text string
	if err := json.Unmarshal(raw, &text); err != nil {
		text = string(raw)
	}
	tag, err := strconv.ParseUint(text, 10, 31)
	if err != nil {
		return fmt.Errorf("bad tag %s", raw)
	}
	if f.Tagged.Empty() || f.Tagged.Hi != versionMax {
		return fmt.Errorf("tag %d needs open-ended taggedVersions, have %s", tag, f.Tagged)
	}
	f.Tag = int(tag)
	return nil
}

func (b *builder) typeOf(raw *rawField, in Versions) (*Type, error) {
	name := raw.Type
	if elem, ok := strings.CutPrefix(name, "[]"); ok {
		if k, ok := primitiveKinds[elem]; ok {
			if len(raw.Fields) > 0 {
				return nil, fmt.Errorf("array of %s has fields", elem)
			}
			if k == KindRecords || k == KindBytes {
				return nil, fmt.Errorf("arrays of %s are not supported", elem)
			}
			return &Type{Kind: KindArray, Elem: &Type{Kind: k}}, nil
		}
		s, err := b.structType(elem, raw.Fields, in)
		if err != nil {
			return nil, err
		}
		return &Type{Kind: KindArray, Elem: &Type{Kind: KindStruct, Struct: s}}, nil
	}
	if k, ok := primitiveKinds[name]; ok {
		if len(raw.Fields) > 0 {
			return nil, fmt.Errorf("%s field has fields", name)
		}
		return &Type{Kind: k}, nil
	}
	s, err := b.structType(name, raw.Fields, in)
	if err != nil {
		return nil, err
	}
	return &Type{Kind: KindStruct, Struct: s}, nil
}

// structType returns the struct a field names: declared inline when the
// field has fields, else one of the message's common structs.
func (b *builder) structType(name string, raws []rawField, in Versions) (*Struct, error) {
	if name == "" || !isIdent(name) {
		return nil, fmt.Errorf("bad struct type name %q", name)
	}
	if s := b.byName[name]; s != nil {
		if len(raws) > 0 || !s.Common {
			return nil, fmt.Errorf("struct %s declared twice", name)
		}
		// A common struct used again: it appears wherever any use does.
		s.Versions = Versions{min(s.Versions.Lo, in.Lo), max(s.Versions.Hi, in.Hi)}
		return s, nil
	}
	s := &Struct{Name: name, GoName: GoName(b.msg.Name) + GoName(name), Versions: in}
	b.byName[name] = s
	if len(raws) == 0 {
		cs := b.commons[name]
		if cs == nil {
			return nil, fmt.Errorf("struct %s has no fields and is no common struct", name)
		}
		cv, err := ParseVersions(cs.Versions)
		if err != nil {
			return nil, err
		}
		s.Common = true
		raws = cs.Fields
		// Common structs declare their own versions; fields are kept to
		// them, and Versions widens as uses are found.
		in = cv
	}
	b.msg.Structs = append(b.msg.Structs, s)
	fields, err := b.fields(raws, in)
	if err != nil {
		return nil, fmt.Errorf("struct %s: %w", name, err)
	}
	s.Fields = fields
	return s, nil
}

func checkField(f *Field) error {
	k := f.Type.Kind
	if f.NullableEver() {
		switch k {
		case KindString, KindBytes, KindRecords, KindArray, KindStruct:
		default:
			return fmt.Errorf("type %v cannot be nullable", k)
		}
	}
	if f.Tag >= 0 && !f.Versions.Covers(f.Tagged.Intersect(f.Versions)) {
		return fmt.Errorf("taggedVersions %s outside versions %s", f.Tagged, f.Versions)
	}
	if f.FlexOverride != nil && k != KindString {
		return fmt.Errorf("a field-level flexibleVersions is only supported on strings")
	}
	if f.HasDefault {
		if _, err := DefaultLiteral(f); err != nil {
			return err
		}
	}
	return nil
}

// checkTags rejects two fields of one struct sharing a tag.
func checkTags(s *Struct) error {
	seen := map[int]string{}
	for _, f := range s.Fields {
		if f.Tag < 0 {
			continue
		}
		if other, ok := seen[f.Tag]; ok {
			return fmt.Errorf("struct %s: fields %s and %s share tag %d", s.Name, other, f.Name, f.Tag)
		}
		seen[f.Tag] = f.Name
	}
	return nil
}

func isIdent(s string) bool {
	for i, c := range s {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return s != ""
}

// GoName exports a definition name: the definitions use PascalCase, with a
// few lower-case first letters (isKRaftController).
func GoName(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// The JSON model of rabbitmq-codegen's amqp-rabbitmq-0.9.1.json. Decoding
// rejects unknown keys, so a spec feature this generator does not understand
// stops generation instead of being silently dropped.

type specFile struct {
	Name      string      `json:"name"`
	Major     int         `json:"major-version"`
	Minor     int         `json:"minor-version"`
	Revision  int         `json:"revision"`
	Port      int         `json:"port"`
	Copyright []string    `json:"copyright"`
	Domains   [][]string  `json:"domains"`
	Constants []specConst `json:"constants"`
	Classes   []specClass `json:"classes"`
}

type specConst struct {
	Name  string `json:"name"`
	Value int    `json:"value"`
	Class string `json:"class"` // "soft-error", "hard-error" or empty
}

type specClass struct {
	ID         int          `json:"id"`
	Name       string       `json:"name"`
	Methods    []specMethod `json:"methods"`
	Properties []specField  `json:"properties"`
}

type specMethod struct {
	ID          int         `json:"id"`
	Name        string      `json:"name"`
	Arguments   []specField `json:"arguments"`
	Synchronous bool        `json:"synchronous"`
	Content     bool        `json:"content"`
}

type specField struct {
	Name    string          `json:"name"`
	Type    string          `json:"type"`
	Domain  string          `json:"domain"`
	Default json.RawMessage `json:"default-value"`
}

// The resolved model the emitter works from.

type protocol struct {
	Major, Minor, Revision, Port int
	Constants                    []constant
	Classes                      []*class
}

type constant struct {
	GoName string // FrameMethod, ReplyNotFound
	Wire   string // the spec's name: FRAME-METHOD, NOT-FOUND
	Value  int
	Reply  bool // a reply code (REPLY-SUCCESS or one with an error class)
	Hard   bool // a hard (connection) error
}

type class struct {
	ID         uint16
	Name       string // "basic"
	GoName     string // "Basic"
	Methods    []*method
	Properties []*field
}

type method struct {
	Class       *class
	Index       int // position among all methods, in spec order
	ID          uint16
	Name        string // "publish"
	FullName    string // "basic.publish"
	GoName      string // "BasicPublish"
	Fields      []*field
	Synchronous bool
	Content     bool
	Responses   []*method
	HasNoWait   bool // has a "nowait" bit: a synchronous method sent with it set gets no reply
}

type field struct {
	Name    string // "routing-key"
	GoName  string // "RoutingKey"
	Type    string // a primitive: bit, octet, short, long, longlong, shortstr, longstr, table, timestamp
	Default string // the spec's default value as JSON text, empty when none
}

// primitives maps each AMQP primitive type to its Go type.
var primitives = map[string]string{
	"bit":       "bool",
	"octet":     "uint8",
	"short":     "uint16",
	"long":      "uint32",
	"longlong":  "uint64",
	"shortstr":  "string",
	"longstr":   "string",
	"table":     "Table",
	"timestamp": "time.Time",
}

// extraResponses lists the replies of synchronous methods that are not
// named "<method>-ok". The JSON carries no response elements (the XML spec
// does); every synchronous method's "-ok" reply is derived, and this is the
// one exception in 0-9-1: basic.get is answered by get-ok or get-empty.
var extraResponses = map[string][]string{
	"basic.get": {"get-empty"},
}

// parseSpec decodes and resolves the spec, checking everything the emitter
// relies on: known types and domains, unique ids and Go names, a reply for
// every synchronous method.
func parseSpec(data []byte) (*protocol, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var sf specFile
	if err := dec.Decode(&sf); err != nil {
		return nil, fmt.Errorf("decoding spec: %w", err)
	}
	domains := make(map[string]string, len(sf.Domains))
	for _, d := range sf.Domains {
		if len(d) != 2 {
			return nil, fmt.Errorf("domain %q: want [name, type], got %d elements", d, len(d))
		}
		if _, ok := primitives[d[1]]; !ok {
			return nil, fmt.Errorf("domain %q: unknown type %q", d[0], d[1])
		}
		domains[d[0]] = d[1]
	}
	p := &protocol{Major: sf.Major, Minor: sf.Minor, Revision: sf.Revision, Port: sf.Port}
	consts, err := resolveConstants(sf.Constants)
	if err != nil {
		return nil, err
	}
	p.Constants = consts
	classIDs := map[int]bool{}
	for _, sc := range sf.Classes {
		if sc.ID <= 0 || sc.ID > 0xFFFF || classIDs[sc.ID] {
			return nil, fmt.Errorf("class %q: id %d is out of range or repeated", sc.Name, sc.ID)
		}
		classIDs[sc.ID] = true
		c, err := resolveClass(sc, domains)
		if err != nil {
			return nil, err
		}
		p.Classes = append(p.Classes, c)
	}
	i := 0
	for _, c := range p.Classes {
		for _, m := range c.Methods {
			m.Index = i
			i++
		}
	}
	if err := checkGoNames(p); err != nil {
		return nil, err
	}
	return p, nil
}

func resolveConstants(scs []specConst) ([]constant, error) {
	var out []constant
	seen := map[string]bool{}
	for _, sc := range scs {
		c := constant{Wire: sc.Name, Value: sc.Value}
		switch sc.Class {
		case "soft-error":
			c.Reply = true
		case "hard-error":
			c.Reply, c.Hard = true, true
		case "":
			c.Reply = strings.HasPrefix(sc.Name, "REPLY-")
		default:
			return nil, fmt.Errorf("constant %s: unknown class %q", sc.Name, sc.Class)
		}
		c.GoName = goName(sc.Name)
		if c.Reply {
			c.GoName = "Reply" + strings.TrimPrefix(c.GoName, "Reply")
			if sc.Value < 0 || sc.Value > 0xFFFF {
				return nil, fmt.Errorf("reply code %s = %d does not fit a short", sc.Name, sc.Value)
			}
		}
		if seen[c.GoName] {
			return nil, fmt.Errorf("constant %s: Go name %s is repeated", sc.Name, c.GoName)
		}
		seen[c.GoName] = true
		out = append(out, c)
	}
	return out, nil
}

func resolveClass(sc specClass, domains map[string]string) (*class, error) {
	c := &class{ID: uint16(sc.ID), Name: sc.Name, GoName: goName(sc.Name)}
	for _, sf := range sc.Properties {
		f, err := resolveField(sf, domains)
		if err != nil {
			return nil, fmt.Errorf("class %s property: %w", sc.Name, err)
		}
		if f.Type == "bit" {
			// A bit property is carried by its flag alone; nothing in 0-9-1
			// uses one, so the emitter does not support it.
			return nil, fmt.Errorf("class %s property %s: bit properties are not supported", sc.Name, f.Name)
		}
		c.Properties = append(c.Properties, f)
	}
	if len(c.Properties) > 15 {
		// The emitter writes one property-flags word: 15 flags, bit 0 is the
		// continuation bit.
		return nil, fmt.Errorf("class %s has %d properties; more than 15 needs continuation flag words", sc.Name, len(c.Properties))
	}
	methodIDs := map[int]bool{}
	byName := map[string]*method{}
	for _, sm := range sc.Methods {
		if sm.ID <= 0 || sm.ID > 0xFFFF || methodIDs[sm.ID] {
			return nil, fmt.Errorf("method %s.%s: id %d is out of range or repeated", sc.Name, sm.Name, sm.ID)
		}
		methodIDs[sm.ID] = true
		m := &method{Class: c, ID: uint16(sm.ID), Name: sm.Name, FullName: sc.Name + "." + sm.Name,
			GoName: c.GoName + goName(sm.Name), Synchronous: sm.Synchronous, Content: sm.Content}
		for _, sf := range sm.Arguments {
			f, err := resolveField(sf, domains)
			if err != nil {
				return nil, fmt.Errorf("method %s: %w", m.FullName, err)
			}
			m.HasNoWait = m.HasNoWait || (f.Name == "nowait" && f.Type == "bit")
			m.Fields = append(m.Fields, f)
		}
		c.Methods = append(c.Methods, m)
		byName[sm.Name] = m
	}
	for _, m := range c.Methods {
		if !m.Synchronous {
			if len(extraResponses[m.FullName]) > 0 {
				return nil, fmt.Errorf("method %s has extra responses but is not synchronous", m.FullName)
			}
			continue
		}
		for _, name := range append([]string{m.Name + "-ok"}, extraResponses[m.FullName]...) {
			r, ok := byName[name]
			if !ok {
				return nil, fmt.Errorf("synchronous method %s: no response method %s.%s", m.FullName, sc.Name, name)
			}
			m.Responses = append(m.Responses, r)
		}
	}
	return c, nil
}

func resolveField(sf specField, domains map[string]string) (*field, error) {
	typ := sf.Type
	if typ == "" {
		d, ok := domains[sf.Domain]
		if !ok {
			return nil, fmt.Errorf("field %q: unknown domain %q", sf.Name, sf.Domain)
		}
		typ = d
	} else if sf.Domain != "" {
		return nil, fmt.Errorf("field %q: has both type %q and domain %q", sf.Name, sf.Type, sf.Domain)
	}
	if _, ok := primitives[typ]; !ok {
		return nil, fmt.Errorf("field %q: unknown type %q", sf.Name, typ)
	}
	if sf.Name == "" {
		return nil, fmt.Errorf("field with type %q has no name", typ)
	}
	return &field{Name: sf.Name, GoName: goName(sf.Name), Type: typ, Default: string(sf.Default)}, nil
}

// checkGoNames fails when two things would get the same Go identifier.
func checkGoNames(p *protocol) error {
	types := map[string]string{}
	for _, c := range p.Classes {
		for _, m := range c.Methods {
			if other, ok := types[m.GoName]; ok {
				return fmt.Errorf("methods %s and %s both map to Go type %s", other, m.FullName, m.GoName)
			}
			types[m.GoName] = m.FullName
			fields := map[string]bool{}
			for _, f := range m.Fields {
				if fields[f.GoName] || reservedMethodNames[f.GoName] {
					return fmt.Errorf("method %s: field %s maps to Go name %s, which is taken", m.FullName, f.Name, f.GoName)
				}
				fields[f.GoName] = true
			}
		}
	}
	return nil
}

// reservedMethodNames are the methods every generated method type has; no
// field may take their names.
var reservedMethodNames = map[string]bool{"Key": true, "Info": true, "Encode": true, "Decode": true, "Synchronous": true}

// goName turns a spec name ("routing-key", "FRAME-END", "message-id") into
// a Go identifier ("RoutingKey", "FrameEnd", "MessageID").
func goName(s string) string {
	var b strings.Builder
	for _, part := range strings.Split(strings.ToLower(s), "-") {
		if w, ok := words[part]; ok {
			b.WriteString(w)
			continue
		}
		if part == "" {
			continue
		}
		b.WriteString(strings.ToUpper(part[:1]) + part[1:])
	}
	return b.String()
}

// words are spec words whose Go spelling is not just capitalised.
var words = map[string]string{
	"id":     "ID",
	"nowait": "NoWait",
}

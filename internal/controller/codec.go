package controller

import (
	"fmt"
	"math"
	"slices"

	"github.com/ferry-mq/ferry/internal/auth"
	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/routing"
)

// A command is encoded as: version (1 byte), kind (1 byte), then the
// command's fields in declaration order with the encoding of wire.go.
// Flags of DeclareQueue and DeclareExchange are one byte each; a policy
// definition is sorted by key, each value a type byte (0 string, 1 int)
// and the value.

const commandVersion = 1

// Encode returns the encoding of cmd. It fails (CodeTooLarge) when the
// encoding exceeds ControllerCommandBytesMax, which Decode would refuse.
func Encode(cmd Command) ([]byte, error) {
	e := &encoder{buf: make([]byte, 0, 64)}
	e.u8(commandVersion)
	e.u8(byte(cmd.kind()))
	e.varint(cmd.now())
	cmd.encode(e)
	if len(e.buf) > base.ControllerCommandBytesMax {
		return nil, base.Errorf(base.CodeTooLarge, "controller command of %d bytes exceeds the limit of %d (ControllerCommandBytesMax)",
			len(e.buf), base.ControllerCommandBytesMax)
	}
	return e.buf, nil
}

// The encode methods write each command's fields in declaration order.

func (c *Bootstrap) encode(e *encoder) {
	e.count(len(c.Nodes))
	for _, n := range c.Nodes {
		e.uvarint(uint64(n.ID))
		e.str(n.Addr)
		e.u8(byte(n.State))
	}
	e.varint(int64(c.CoordinatorGroups))
	e.boolean(c.Guest != nil)
	if c.Guest != nil {
		e.credentials(c.Guest)
	}
	// An optional last field: absent when empty, so Bootstraps logged
	// before cluster ids existed decode as they are and re-encode to the
	// same bytes.
	if c.ClusterID != "" {
		e.str(c.ClusterID)
	}
}

func (c *RegisterNode) encode(e *encoder) {
	e.uvarint(uint64(c.ID))
	e.str(c.Addr)
}

func (c *SetNodeState) encode(e *encoder) {
	e.uvarint(uint64(c.ID))
	e.u8(byte(c.State))
}

func (c *CreateTenant) encode(e *encoder) {
	e.str(c.Name)
}

func (c *DeleteTenant) encode(e *encoder) {
	e.str(c.Name)
}

func (c *PutUser) encode(e *encoder) {
	e.str(c.Name)
	e.credentials(&c.Credentials)
	e.count(len(c.Tags))
	for _, t := range c.Tags {
		e.str(string(t))
	}
}

func (c *DeleteUser) encode(e *encoder) {
	e.str(c.Name)
}

func (c *SetPermission) encode(e *encoder) {
	e.str(c.User)
	p := c.Permission
	e.str(p.Tenant)
	e.str(p.Configure)
	e.str(p.Write)
	e.str(p.Read)
}

func (c *ClearPermission) encode(e *encoder) {
	e.str(c.User)
	e.str(c.Tenant)
}

func (c *PutPolicy) encode(e *encoder) {
	e.policy(&c.Policy)
}

func (c *DeletePolicy) encode(e *encoder) {
	e.str(c.Tenant)
	e.str(c.Name)
}

func (c *DeclareExchange) encode(e *encoder) {
	e.str(c.Tenant)
	e.exchange(&c.Exchange)
}

func (c *DeleteExchange) encode(e *encoder) {
	e.str(c.Tenant)
	e.str(c.Name)
	e.boolean(c.IfUnused)
}

func (c *Bind) encode(e *encoder) {
	e.str(c.Tenant)
	e.binding(&c.Binding)
	e.str(c.Owner)
}

func (c *Unbind) encode(e *encoder) {
	e.str(c.Tenant)
	e.binding(&c.Binding)
	e.str(c.Owner)
}

func (c *DeclareQueue) encode(e *encoder) {
	e.str(c.Tenant)
	e.str(c.Name)
	e.u8(queueFlags(c))
	e.str(c.Owner)
	e.fields(c.Args)
	if c.Node != 0 {
		e.uvarint(uint64(c.Node))
	}
}

func (c *DeleteQueue) encode(e *encoder) {
	e.str(c.Tenant)
	e.str(c.Name)
	e.str(c.Owner)
	e.uvarint(uint64(c.Group))
	e.u8(byte(c.Reason))
}

func (c *ConnectionClosed) encode(e *encoder) {
	e.str(c.Owner)
}

func (c *DeclareStream) encode(e *encoder) {
	e.str(c.Tenant)
	e.str(c.Name)
	e.varint(int64(c.Partitions))
	e.varint(int64(c.ReplicationFactor))
	e.fields(c.Args)
}

func (c *AddPartitions) encode(e *encoder) {
	e.str(c.Tenant)
	e.str(c.Name)
	e.varint(int64(c.Total))
}

func (c *AlterStream) encode(e *encoder) {
	e.str(c.Tenant)
	e.str(c.Name)
	e.fields(c.Args)
}

func (c *DeleteStream) encode(e *encoder) {
	e.str(c.Tenant)
	e.str(c.Name)
}

const (
	qflagServerNamed = 1 << iota
	qflagDurable
	qflagExclusive
	qflagAutoDelete
	qflagNode // the command ends with the declaring connection's node
	qflagsAll = qflagServerNamed | qflagDurable | qflagExclusive | qflagAutoDelete | qflagNode

	xflagDurable    = 1
	xflagAutoDelete = 2
	xflagInternal   = 4
	xflagsAll       = xflagDurable | xflagAutoDelete | xflagInternal
)

func queueFlags(c *DeclareQueue) byte {
	var f byte
	for _, b := range []struct {
		on   bool
		flag byte
	}{{c.ServerNamed, qflagServerNamed}, {c.Durable, qflagDurable}, {c.Exclusive, qflagExclusive}, {c.AutoDelete, qflagAutoDelete},
		{c.Node != 0, qflagNode}} {
		if b.on {
			f |= b.flag
		}
	}
	return f
}

func (e *encoder) credentials(c *auth.Credentials) {
	e.str(c.PasswordHash)
	for _, s := range []*auth.ScramCredential{&c.ScramSHA256, &c.ScramSHA512} {
		e.bytes(s.Salt)
		e.uvarint(uint64(s.Iterations))
		e.bytes(s.StoredKey)
		e.bytes(s.ServerKey)
	}
}

func (e *encoder) policy(p *auth.Policy) {
	e.str(p.Tenant)
	e.str(p.Name)
	e.str(p.Pattern)
	e.u8(byte(p.ApplyTo))
	e.varint(int64(p.Priority))
	keys := sortedKeys(p.Definition)
	e.count(len(keys))
	for _, k := range keys {
		e.str(k)
		v := p.Definition[k]
		if i, ok := v.AsInt(); ok {
			e.u8(1)
			e.varint(i)
		} else {
			s, _ := v.AsString()
			e.u8(0)
			e.str(s)
		}
	}
}

func (e *encoder) exchange(x *routing.Exchange) {
	e.str(x.Name)
	e.u8(byte(x.Type))
	var f byte
	if x.Durable {
		f |= xflagDurable
	}
	if x.AutoDelete {
		f |= xflagAutoDelete
	}
	if x.Internal {
		f |= xflagInternal
	}
	e.u8(f)
	e.fields(x.Args)
}

func (e *encoder) binding(b *routing.Binding) {
	e.str(b.Source)
	e.u8(byte(b.Destination.Kind))
	e.str(b.Destination.Name)
	e.str(b.Key)
	e.u8(byte(b.Syntax))
	e.fields(b.Args)
}

// Decode decodes one command. It refuses (CodeCorrupt) input over
// ControllerCommandBytesMax, an unknown version or kind, a truncated or
// non-canonical encoding, and trailing bytes; it never panics, its work is
// linear in len(data), and it allocates at most a small multiple of
// len(data). The command owns its memory (nothing aliases data).
// Decoding checks form, not meaning: Apply checks names, limits and rules.
func Decode(data []byte) (Command, error) {
	cmd, err := decodeCommand(data)
	if err != nil {
		return nil, base.Errorf(base.CodeCorrupt, "controller command: %w", err)
	}
	return cmd, nil
}

func decodeCommand(data []byte) (Command, error) {
	if len(data) > base.ControllerCommandBytesMax {
		return nil, fmt.Errorf("%d bytes exceed the limit of %d", len(data), base.ControllerCommandBytesMax)
	}
	d := &decoder{buf: data}
	if v := d.u8(); d.err == nil && v != commandVersion {
		return nil, fmt.Errorf("version %d, want %d", v, commandVersion)
	}
	kind := cmdKind(d.u8())
	if d.err == nil && (kind == 0 || kind > kindMax) {
		return nil, fmt.Errorf("unknown command kind %d", kind)
	}
	now := d.varint()
	var cmd Command
	if d.err == nil {
		cmd = decodeBody(d, kind, now)
	}
	if d.err != nil {
		return nil, d.err
	}
	if d.left() != 0 {
		return nil, fmt.Errorf("%d bytes after the command", d.left())
	}
	return cmd, nil
}

// Strings in commands are bounded by the input (ControllerCommandBytesMax
// in all); Apply applies the semantic limits with clear errors.
const anyLen = base.ControllerCommandBytesMax

func decodeBody(d *decoder, kind cmdKind, now int64) Command {
	switch kind {
	case kindBootstrap:
		return decodeBootstrap(d, now)
	case kindRegisterNode:
		return &RegisterNode{Now: now, ID: NodeID(d.uvarint()), Addr: d.str(anyLen)}
	case kindSetNodeState:
		return &SetNodeState{Now: now, ID: NodeID(d.uvarint()), State: NodeState(d.u8())}
	case kindCreateTenant:
		return &CreateTenant{Now: now, Name: d.str(anyLen)}
	case kindDeleteTenant:
		return &DeleteTenant{Now: now, Name: d.str(anyLen)}
	case kindPutUser:
		c := &PutUser{Now: now, Name: d.str(anyLen), Credentials: d.credentials()}
		n := d.count(base.ControllerUserTagsMax, 1)
		for range n {
			c.Tags = append(c.Tags, auth.Tag(d.str(anyLen)))
		}
		return c
	case kindDeleteUser:
		return &DeleteUser{Now: now, Name: d.str(anyLen)}
	case kindSetPermission:
		c := &SetPermission{Now: now, User: d.str(anyLen)}
		c.Permission = auth.Permission{Tenant: d.str(anyLen), Configure: d.str(anyLen), Write: d.str(anyLen), Read: d.str(anyLen)}
		return c
	case kindClearPermission:
		return &ClearPermission{Now: now, User: d.str(anyLen), Tenant: d.str(anyLen)}
	case kindPutPolicy:
		return &PutPolicy{Now: now, Policy: d.policy()}
	case kindDeletePolicy:
		return &DeletePolicy{Now: now, Tenant: d.str(anyLen), Name: d.str(anyLen)}
	case kindDeclareExchange:
		return &DeclareExchange{Now: now, Tenant: d.str(anyLen), Exchange: d.exchange()}
	case kindDeleteExchange:
		return &DeleteExchange{Now: now, Tenant: d.str(anyLen), Name: d.str(anyLen), IfUnused: d.boolean()}
	case kindBind:
		return &Bind{Now: now, Tenant: d.str(anyLen), Binding: d.binding(), Owner: d.str(anyLen)}
	case kindUnbind:
		return &Unbind{Now: now, Tenant: d.str(anyLen), Binding: d.binding(), Owner: d.str(anyLen)}
	case kindDeclareQueue:
		return decodeDeclareQueue(d, now)
	case kindDeleteQueue:
		return &DeleteQueue{Now: now, Tenant: d.str(anyLen), Name: d.str(anyLen), Owner: d.str(anyLen),
			Group: GroupID(d.uvarint()), Reason: DeleteReason(d.u8())}
	case kindConnectionClosed:
		return &ConnectionClosed{Now: now, Owner: d.str(anyLen)}
	case kindDeclareStream:
		return &DeclareStream{Now: now, Tenant: d.str(anyLen), Name: d.str(anyLen),
			Partitions: d.int(math.MinInt32, math.MaxInt32), ReplicationFactor: d.int(math.MinInt32, math.MaxInt32),
			Args: d.fields(base.ControllerArgsFieldsMax, anyLen)}
	case kindAddPartitions:
		return &AddPartitions{Now: now, Tenant: d.str(anyLen), Name: d.str(anyLen), Total: d.int(math.MinInt32, math.MaxInt32)}
	case kindAlterStream:
		return &AlterStream{Now: now, Tenant: d.str(anyLen), Name: d.str(anyLen), Args: d.fields(base.ControllerArgsFieldsMax, anyLen)}
	case kindDeleteStream:
		return &DeleteStream{Now: now, Tenant: d.str(anyLen), Name: d.str(anyLen)}
	}
	base.Bugf("controller: decodeBody of kind %d", kind)
	return nil
}

func decodeBootstrap(d *decoder, now int64) Command {
	c := &Bootstrap{Now: now}
	n := d.count(base.ControllerNodesMax, 3)
	for range n {
		c.Nodes = append(c.Nodes, Node{ID: NodeID(d.uvarint()), Addr: d.str(anyLen), State: NodeState(d.u8())})
	}
	c.CoordinatorGroups = d.int(math.MinInt32, math.MaxInt32)
	if d.boolean() {
		cr := d.credentials()
		c.Guest = &cr
	}
	if d.err == nil && d.left() > 0 {
		c.ClusterID = d.str(base.ControllerClusterIDBytesMax)
		if d.err == nil && c.ClusterID == "" {
			d.fail("empty cluster id present") // Encode omits it: not canonical
		}
	}
	return c
}

func decodeDeclareQueue(d *decoder, now int64) Command {
	c := &DeclareQueue{Now: now, Tenant: d.str(anyLen), Name: d.str(anyLen)}
	f := d.u8()
	if f&^qflagsAll != 0 {
		d.fail("unknown queue flags %#x", f)
	}
	c.ServerNamed, c.Durable = f&qflagServerNamed != 0, f&qflagDurable != 0
	c.Exclusive, c.AutoDelete = f&qflagExclusive != 0, f&qflagAutoDelete != 0
	c.Owner = d.str(anyLen)
	c.Args = d.fields(base.ControllerArgsFieldsMax, anyLen)
	if f&qflagNode != 0 {
		if c.Node = NodeID(d.uvarint()); d.err == nil && (c.Node == 0 || c.Node > base.ConfigNodeIDMax) {
			d.fail("node %d out of range", c.Node)
		}
	}
	return c
}

func (d *decoder) credentials() auth.Credentials {
	c := auth.Credentials{PasswordHash: d.str(anyLen)}
	for _, s := range []*auth.ScramCredential{&c.ScramSHA256, &c.ScramSHA512} {
		s.Salt = d.bytes(anyLen)
		it := d.uvarint()
		if it > math.MaxInt32 {
			d.fail("%d iterations", it)
		}
		s.Iterations = int(it)
		s.StoredKey = d.bytes(anyLen)
		s.ServerKey = d.bytes(anyLen)
	}
	return c
}

func (d *decoder) policy() auth.Policy {
	p := auth.Policy{Tenant: d.str(anyLen), Name: d.str(anyLen), Pattern: d.str(anyLen)}
	p.ApplyTo = auth.ApplyTo(d.u8())
	p.Priority = d.int(math.MinInt32, math.MaxInt32)
	n := d.count(base.ControllerArgsFieldsMax, 2)
	p.Definition = make(map[string]auth.Value, n)
	prev := ""
	for i := range n {
		k := d.str(anyLen)
		if d.err == nil && i > 0 && k <= prev {
			d.fail("policy key %q out of order", k)
		}
		prev = k
		switch t := d.u8(); t {
		case 0:
			p.Definition[k] = auth.Str(d.str(anyLen))
		case 1:
			p.Definition[k] = auth.Int(d.varint())
		default:
			d.fail("unknown policy value type %d", t)
		}
	}
	return p
}

func (d *decoder) exchange() routing.Exchange {
	x := routing.Exchange{Name: d.str(anyLen), Type: routing.ExchangeType(d.u8())}
	f := d.u8()
	if f&^xflagsAll != 0 {
		d.fail("unknown exchange flags %#x", f)
	}
	x.Durable, x.AutoDelete, x.Internal = f&xflagDurable != 0, f&xflagAutoDelete != 0, f&xflagInternal != 0
	x.Args = d.fields(base.ControllerArgsFieldsMax, anyLen)
	return x
}

func (d *decoder) binding() routing.Binding {
	b := routing.Binding{Source: d.str(anyLen)}
	b.Destination = routing.Destination{Kind: routing.DestKind(d.u8()), Name: d.str(anyLen)}
	b.Key = d.str(anyLen)
	b.Syntax = routing.Syntax(d.u8())
	b.Args = d.fields(base.ControllerArgsFieldsMax, anyLen)
	return b
}

// sortedFields reports whether fs is strictly sorted by key (canonical).
func sortedFields(fs []routing.Field) bool {
	return slices.IsSortedFunc(fs, func(a, b routing.Field) int {
		if a.Key < b.Key {
			return -1
		}
		return 1 // equal keys are out of order too
	}) && !hasDuplicateKeys(fs)
}

func hasDuplicateKeys(fs []routing.Field) bool {
	for i := 1; i < len(fs); i++ {
		if fs[i].Key == fs[i-1].Key {
			return true
		}
	}
	return false
}

package routing

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/ferry-mq/ferry/internal/base"
)

// The snapshot encoding (all integers uvarint unless said otherwise;
// strings are a uvarint length then the bytes; args are a string holding
// the concatenated canonical fields of value.go):
//
//	"FRRT" version=1 vhost
//	count, then per exchange other than the built-ins, by name:
//	    name type(1 byte) flags(1 byte: 1 durable, 2 auto-delete, 4 internal) args
//	count, then per queue or stream, by kind then name:
//	    kind(1 byte) name
//	count, then per binding in the order of Table.Bindings:
//	    source kind(1 byte) name key syntax(1 byte) args
//	CRC-32C of all the above, 4 bytes little-endian
//
// The encoding is canonical: one table has exactly one encoding, and the
// decoder accepts nothing else, so equal tables have equal bytes.

const (
	snapshotMagic   = "FRRT"
	snapshotVersion = 1
	flagDurable     = 1
	flagAutoDelete  = 2
	flagInternal    = 4
	flagsAll        = flagDurable | flagAutoDelete | flagInternal
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// MarshalBinary returns the table's canonical snapshot.
func (t *Table) MarshalBinary() ([]byte, error) { return t.AppendBinary(nil) }

// AppendBinary appends the table's canonical snapshot to buf.
func (t *Table) AppendBinary(buf []byte) ([]byte, error) {
	bs := t.sortedBindings()
	size := t.snapshotBytes(bs)
	buf = slices.Grow(buf, size)
	start := len(buf)
	buf = append(buf, snapshotMagic...)
	buf = append(buf, snapshotVersion)
	buf = appendString(buf, t.vhost)
	xs := t.Exchanges()
	buf = binary.AppendUvarint(buf, uint64(len(xs)-len(builtinExchanges)))
	for _, e := range xs {
		if t.exchanges[e.Name].builtin {
			continue
		}
		buf = appendString(buf, e.Name)
		buf = append(buf, byte(e.Type), exchangeFlags(e))
		buf = appendArgs(buf, e.Args)
	}
	ds := t.Destinations()
	buf = binary.AppendUvarint(buf, uint64(len(ds)))
	for _, d := range ds {
		buf = append(buf, byte(d.Kind))
		buf = appendString(buf, d.Name)
	}
	buf = binary.AppendUvarint(buf, uint64(len(bs)))
	for _, b := range bs {
		buf = appendString(buf, b.source.Name)
		buf = append(buf, byte(b.id.destKind))
		buf = appendString(buf, b.id.destName)
		buf = appendString(buf, b.id.key)
		buf = append(buf, byte(b.id.syntax))
		buf = appendString(buf, b.id.args)
	}
	buf = binary.LittleEndian.AppendUint32(buf, crc32.Checksum(buf[start:], castagnoli))
	base.Assert(len(buf)-start == size, "snapshot of %d bytes, computed %d", len(buf)-start, size)
	return buf, nil
}

// snapshotBytes returns the size of the snapshot, so that AppendBinary
// allocates once: a large slice grows by a quarter at a time, which would
// copy a big table's snapshot several times over.
func (t *Table) snapshotBytes(bs []*binding) int {
	n := len(snapshotMagic) + 1 + strBytes(t.vhost) + 4 // magic, version, vhost, CRC
	n += uvarintLen(uint64(len(t.exchanges)-len(builtinExchanges))) + uvarintLen(uint64(len(t.dests))) + uvarintLen(uint64(len(bs)))
	for _, x := range t.exchanges {
		if x.builtin {
			continue
		}
		args := 0
		for _, f := range x.Args {
			args += encodedFieldBytes(f)
		}
		n += strBytes(x.Name) + 2 + uvarintLen(uint64(args)) + args
	}
	for name := range t.dests {
		n += 1 + strBytes(name)
	}
	for _, b := range bs {
		n += strBytes(b.source.Name) + 1 + strBytes(b.id.destName) + strBytes(b.id.key) + 1 + strBytes(b.id.args)
	}
	return n
}

func strBytes(s string) int { return uvarintLen(uint64(len(s))) + len(s) }

func exchangeFlags(e Exchange) byte {
	var f byte
	if e.Durable {
		f |= flagDurable
	}
	if e.AutoDelete {
		f |= flagAutoDelete
	}
	if e.Internal {
		f |= flagInternal
	}
	return f
}

func appendArgs(buf []byte, args []Field) []byte {
	n := 0
	for _, f := range args {
		n += encodedFieldBytes(f)
	}
	buf = binary.AppendUvarint(buf, uint64(n))
	for _, f := range args {
		buf = appendField(buf, f)
	}
	return buf
}

// Equal reports whether t and o hold the same state: same vhost,
// exchanges, destinations and bindings.
func (t *Table) Equal(o *Table) bool {
	a, _ := t.MarshalBinary()
	b, _ := o.MarshalBinary()
	return bytes.Equal(a, b)
}

// UnmarshalBinary replaces t's state with the snapshot in data. Errors are
// CodeCorrupt: a bad checksum, a malformed or non-canonical encoding, or
// content that the table's own rules refuse (a binding to a missing
// queue, a reserved exchange name, a limit exceeded). On error t is
// unchanged. Work and allocation are linear in len(data): nothing is
// allocated for a count before the bytes backing it have been read.
func (t *Table) UnmarshalBinary(data []byte) error {
	fresh, err := decodeTable(data, t.limits)
	if err != nil {
		return base.Errorf(base.CodeCorrupt, "routing table snapshot: %w", err)
	}
	if base.InvariantsEnabled {
		again, _ := fresh.MarshalBinary()
		base.Assert(bytes.Equal(again, data), "routing snapshot accepted but not canonical")
		fresh.checkInvariants()
	}
	*t = *fresh
	return nil
}

func decodeTable(data []byte, lim limits) (*Table, error) {
	if len(data) < len(snapshotMagic)+1+4 {
		return nil, errors.New("too short")
	}
	body := data[:len(data)-4]
	if got, want := crc32.Checksum(body, castagnoli), binary.LittleEndian.Uint32(data[len(body):]); got != want {
		return nil, fmt.Errorf("checksum %08x, want %08x", got, want)
	}
	if string(body[:4]) != snapshotMagic || body[4] != snapshotVersion {
		return nil, fmt.Errorf("not a version %d routing snapshot", snapshotVersion)
	}
	d := &decoder{buf: body, off: 5}
	t := NewTable(d.str(base.RoutingNameBytesMax))
	t.limits = lim
	for _, section := range []func(*decoder, *Table) error{decodeExchanges, decodeDestinations, decodeBindings} {
		if err := section(d, t); err != nil {
			return nil, err
		}
		if d.err != nil {
			return nil, d.err
		}
	}
	if d.off != len(body) {
		return nil, fmt.Errorf("%d bytes after the bindings", len(body)-d.off)
	}
	return t, nil
}

func decodeExchanges(d *decoder, t *Table) error {
	prev := ""
	for i, n := 0, d.count(); i < n && d.err == nil; i++ {
		e := Exchange{Name: d.str(base.RoutingNameBytesMax), Type: ExchangeType(d.byte())}
		flags := d.byte()
		args, _ := d.args()
		if d.err != nil {
			break
		}
		if i > 0 && e.Name <= prev {
			return fmt.Errorf("exchange %q out of order", e.Name)
		}
		if flags&^flagsAll != 0 {
			return fmt.Errorf("exchange %q: unknown flags %#x", e.Name, flags)
		}
		e.Durable, e.AutoDelete, e.Internal = flags&flagDurable != 0, flags&flagAutoDelete != 0, flags&flagInternal != 0
		e.Args = args
		created, err := t.DeclareExchange(e)
		if err == nil && !created {
			err = errors.New("already exists")
		}
		if err != nil {
			return fmt.Errorf("exchange %q: %w", e.Name, err)
		}
		prev = e.Name
	}
	return nil
}

func decodeDestinations(d *decoder, t *Table) error {
	var prev Destination
	for i, n := 0, d.count(); i < n && d.err == nil; i++ {
		dst := Destination{Kind: DestKind(d.byte())}
		dst.Name = d.str(base.RoutingNameBytesMax)
		if d.err != nil {
			break
		}
		if i > 0 && compareDestinations(prev, dst) >= 0 {
			return fmt.Errorf("%s %q out of order", dst.Kind, dst.Name)
		}
		added, err := t.AddDestination(dst)
		if err == nil && !added {
			err = errors.New("already exists")
		}
		if err != nil {
			return fmt.Errorf("%s %q: %w", dst.Kind, dst.Name, err)
		}
		prev = dst
	}
	return nil
}

func decodeBindings(d *decoder, t *Table) error {
	var prev *binding
	for i, n := 0, d.count(); i < n && d.err == nil; i++ {
		b := Binding{Source: d.str(base.RoutingNameBytesMax)}
		b.Destination.Kind = DestKind(d.byte())
		b.Destination.Name = d.str(base.RoutingNameBytesMax)
		b.Key = d.str(base.RoutingKeyBytesMax)
		b.Syntax = Syntax(d.byte())
		var enc string
		b.Args, enc = d.args()
		if d.err != nil {
			break
		}
		added, err := t.Bind(b)
		if err == nil && !added {
			err = errors.New("already exists")
		}
		if err != nil {
			return fmt.Errorf("binding %q -> %s %q: %w", b.Source, b.Destination.Kind, b.Destination.Name, err)
		}
		cur := t.exchanges[b.Source].bindings[bindingID{destName: b.Destination.Name, key: b.Key, args: enc, destKind: b.Destination.Kind, syntax: b.Syntax}]
		base.Assert(cur != nil, "decoded binding not found after Bind")
		if prev != nil && compareBindings(prev, cur) >= 0 {
			return fmt.Errorf("binding %q -> %s %q out of order", b.Source, b.Destination.Kind, b.Destination.Name)
		}
		prev = cur
	}
	return nil
}

// decoder reads the snapshot; the first error sticks and turns every
// later read into a zero value.
type decoder struct {
	buf []byte
	off int
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("at byte %d: "+format, append([]any{d.off}, args...)...)
	}
}

func (d *decoder) byte() byte {
	if d.err != nil || d.off >= len(d.buf) {
		d.fail("truncated")
		return 0
	}
	d.off++
	return d.buf[d.off-1]
}

// uvarint reads a minimally encoded uvarint.
func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.buf[d.off:])
	if n <= 0 || n != uvarintLen(v) {
		d.fail("bad uvarint")
		return 0
	}
	d.off += n
	return v
}

// count reads an entry count, which cannot exceed the bytes left since
// every entry takes at least one.
func (d *decoder) count() int {
	n := d.uvarint()
	if n > uint64(len(d.buf)-d.off) {
		d.fail("count %d exceeds the %d bytes left", n, len(d.buf)-d.off)
		return 0
	}
	return int(n)
}

func (d *decoder) bytes(max int) []byte {
	n := d.uvarint()
	if d.err == nil && (n > uint64(max) || n > uint64(len(d.buf)-d.off)) {
		d.fail("string of %d bytes (limit %d, %d left)", n, max, len(d.buf)-d.off)
	}
	if d.err != nil {
		return nil
	}
	b := d.buf[d.off : d.off+int(n)]
	d.off += int(n)
	return b
}

func (d *decoder) str(max int) string { return string(d.bytes(max)) }

// args reads an encoded arguments table, which must be canonical: keys
// strictly increasing, every value minimally encoded. It returns the
// fields and their encoding.
func (d *decoder) args() ([]Field, string) {
	enc := d.bytes(base.RoutingArgsBytesMax)
	fd := &decoder{buf: enc}
	out := fd.fields()
	if fd.err != nil && d.err == nil {
		d.err = fmt.Errorf("arguments: %w", fd.err)
	}
	return out, string(enc)
}

// fields reads canonical fields up to the end of d's buffer.
func (d *decoder) fields() []Field {
	var out []Field
	fd := d
	for fd.err == nil && fd.off < len(fd.buf) {
		start := fd.off
		f := fd.field()
		if fd.err == nil && len(out) > 0 && f.Key <= out[len(out)-1].Key {
			fd.fail("argument %q out of order", f.Key)
		}
		if fd.err == nil && encodedFieldBytes(f) != fd.off-start {
			fd.fail("argument %q not minimally encoded", f.Key)
		}
		out = append(out, f)
	}
	return out
}

func (d *decoder) field() Field {
	f := Field{Key: d.str(base.RoutingArgsBytesMax)}
	kind := ValueKind(d.byte())
	switch kind {
	case KindVoid:
	case KindBool:
		b := d.byte()
		if b > 1 {
			d.fail("bool %d", b)
		}
		f.Value = BoolValue(b == 1)
	case KindInt:
		v, n := binary.Varint(d.buf[d.off:])
		if n <= 0 {
			d.fail("bad varint")
			break
		}
		d.off += n
		f.Value = IntValue(v)
	case KindFloat:
		if len(d.buf)-d.off < 8 {
			d.fail("truncated float")
			break
		}
		f.Value = FloatValue(math.Float64frombits(binary.LittleEndian.Uint64(d.buf[d.off:])))
		d.off += 8
	case KindString:
		f.Value = StringValue(d.str(base.RoutingArgsBytesMax))
	case KindBytes:
		f.Value = BytesValue(d.bytes(base.RoutingArgsBytesMax))
	case KindEncoded:
		f.Value = EncodedValue(d.bytes(base.RoutingArgsBytesMax))
	default:
		d.fail("unknown value kind %d", kind)
	}
	return f
}

// Dump returns a canonical, human-readable listing of the table, one line
// per exchange, destination and binding, in snapshot order; tests compare
// it and operators read it.
func (t *Table) Dump() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "vhost %q\n", t.vhost)
	for _, e := range t.Exchanges() {
		fmt.Fprintf(&sb, "exchange %q %s", e.Name, e.Type)
		for _, f := range []struct {
			on   bool
			name string
		}{{e.Durable, "durable"}, {e.AutoDelete, "auto-delete"}, {e.Internal, "internal"}} {
			if f.on {
				sb.WriteString(" " + f.name)
			}
		}
		if len(e.Args) > 0 {
			sb.WriteByte(' ')
			formatArgs(&sb, e.Args)
		}
		sb.WriteByte('\n')
	}
	for _, d := range t.Destinations() {
		fmt.Fprintf(&sb, "%s %q\n", d.Kind, d.Name)
	}
	for _, b := range t.Bindings() {
		fmt.Fprintf(&sb, "binding %q -> %s %q key %s", b.Source, b.Destination.Kind, b.Destination.Name, strconv.Quote(b.Key))
		if b.Syntax != SyntaxAMQP {
			sb.WriteString(" " + b.Syntax.String())
		}
		if len(b.Args) > 0 {
			sb.WriteByte(' ')
			formatArgs(&sb, b.Args)
		}
		sb.WriteByte('\n')
	}
	return sb.String()
}

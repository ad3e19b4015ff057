package queue

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/ferry-mq/ferry/internal/base"
)

// The binary encoding of commands (and, in snapshot.go, of snapshots) is
// canonical: integers are minimal (zig-zag for signed) varints, booleans
// one byte 0 or 1, strings a varint length then the bytes. One value has
// exactly one encoding, and the decoder refuses every other byte string,
// so Encode(Decode(b)) == b whenever Decode accepts b.

// Encode appends the encoding of cmd to dst. It fails with
// CodeInvalidArgument when a string or list is over the limit its decoder
// enforces, so that nothing undecodable is ever proposed.
func Encode(dst []byte, cmd Command) ([]byte, error) {
	e := enc{b: dst}
	e.u8(uint8(cmd.kind()))
	e.varint(cmd.now())
	switch c := cmd.(type) {
	case *Enqueue:
		if len(c.Messages) > base.QueueEnqueueMessagesMax {
			return dst, base.Errorf(base.CodeInvalidArgument, "queue: %d messages is over the limit %d", len(c.Messages), base.QueueEnqueueMessagesMax)
		}
		e.uvarint(uint64(len(c.Messages)))
		for i := range c.Messages {
			e.message(&c.Messages[i])
		}
	case *Subscribe:
		e.consumer(c.Consumer)
		e.uvarint(uint64(c.PrefetchCount))
		e.uvarint(c.PrefetchBytes)
		e.varint(int64(c.Priority))
		e.boolean(c.Exclusive)
		e.str(c.Tag)
	case *Cancel:
		e.consumer(c.Consumer)
	case *ConsumerDown:
		e.str(c.Owner)
	case *Get:
		e.consumer(c.Consumer)
		e.boolean(c.AutoAck)
	case *Settle:
		e.consumer(c.Consumer)
		e.ids(c.DeliveryIDs)
		e.uvarint(c.UpTo)
	case *Return:
		e.consumer(c.Consumer)
		e.ids(c.DeliveryIDs)
		e.uvarint(c.UpTo)
		e.boolean(c.Requeue)
		e.str(c.Reason)
	case *Recover:
		e.consumer(c.Consumer)
	case *Tick, *Touch, *Purge:
	case *DeadLetterDone:
		e.uvarint(uint64(len(c.Refs)))
		if len(c.Refs) > base.QueueSettleIDsMax {
			e.tooLong = true
		}
		for _, r := range c.Refs {
			e.ref(r)
		}
	case *Delete:
		e.boolean(c.IfUnused)
		e.boolean(c.IfEmpty)
	case *Configure:
		e.config(&c.Config)
	case *Relocate:
		e.uvarint(c.Cutoff)
		e.uvarint(uint64(len(c.Refs)))
		if len(c.Refs) > base.QueueEnqueueMessagesMax {
			e.tooLong = true
		}
		for _, r := range c.Refs {
			e.ref(r)
		}
	default:
		return dst, base.Errorf(base.CodeInvalidArgument, "queue: cannot encode %T", cmd)
	}
	if e.tooLong {
		return dst, base.Errorf(base.CodeInvalidArgument, "queue: %T has a string or list over its limit", cmd)
	}
	return e.b, nil
}

// Decode parses one encoded command. It never panics, allocates at most a
// small multiple of len(b), and fails with CodeCorrupt on any byte string
// Encode would not produce. The command owns its memory (nothing aliases b).
func Decode(b []byte) (Command, error) {
	d := dec{buf: b, end: len(b)}
	cmd := d.command()
	if d.err == nil && d.pos != len(b) {
		d.fail("%d trailing bytes", len(b)-d.pos)
	}
	if d.err != nil {
		return nil, base.Errorf(base.CodeCorrupt, "queue: decoding command: %w", d.err)
	}
	return cmd, nil
}

func (d *dec) command() Command {
	k := cmdKind(d.u8())
	now := d.varint()
	switch k {
	case kindEnqueue:
		n := d.count(base.QueueEnqueueMessagesMax, minMessageBytes)
		c := &Enqueue{Now: now, Messages: make([]Message, 0, n)}
		for i := 0; i < n && d.err == nil; i++ {
			c.Messages = append(c.Messages, d.message())
		}
		return c
	case kindSubscribe:
		return &Subscribe{Now: now, Consumer: d.consumer(), PrefetchCount: d.u32(), PrefetchBytes: d.uvarint(),
			Priority: d.i32(), Exclusive: d.boolean(), Tag: d.str()}
	case kindCancel:
		return &Cancel{Now: now, Consumer: d.consumer()}
	case kindConsumerDown:
		return &ConsumerDown{Now: now, Owner: d.str()}
	case kindGet:
		return &Get{Now: now, Consumer: d.consumer(), AutoAck: d.boolean()}
	case kindSettle:
		return &Settle{Now: now, Consumer: d.consumer(), DeliveryIDs: d.ids(), UpTo: d.uvarint()}
	case kindReturn:
		return &Return{Now: now, Consumer: d.consumer(), DeliveryIDs: d.ids(), UpTo: d.uvarint(),
			Requeue: d.boolean(), Reason: d.str()}
	case kindRecover:
		return &Recover{Now: now, Consumer: d.consumer()}
	case kindTick:
		return &Tick{Now: now}
	case kindTouch:
		return &Touch{Now: now}
	case kindDeadLetterDone:
		n := d.count(base.QueueSettleIDsMax, 2)
		c := &DeadLetterDone{Now: now, Refs: make([]Ref, 0, n)}
		for i := 0; i < n && d.err == nil; i++ {
			c.Refs = append(c.Refs, d.ref())
		}
		return c
	case kindPurge:
		return &Purge{Now: now}
	case kindDelete:
		return &Delete{Now: now, IfUnused: d.boolean(), IfEmpty: d.boolean()}
	case kindConfigure:
		return &Configure{Now: now, Config: d.config()}
	case kindRelocate:
		c := &Relocate{Now: now, Cutoff: d.uvarint()}
		n := d.count(base.QueueEnqueueMessagesMax, 2)
		c.Refs = make([]Ref, 0, n)
		for i := 0; i < n && d.err == nil; i++ {
			c.Refs = append(c.Refs, d.ref())
		}
		return c
	}
	d.fail("unknown command kind %d", k)
	return nil
}

// minMessageBytes is the fewest bytes an encoded Message takes (nine
// one-byte fields), so a count can be checked against the bytes left.
const minMessageBytes = 9

// enc appends canonical encodings to b.
type enc struct {
	b       []byte
	tooLong bool // a string or list was over its decoder's limit
}

func (e *enc) u8(v uint8)       { e.b = append(e.b, v) }
func (e *enc) uvarint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *enc) varint(v int64)   { e.b = binary.AppendVarint(e.b, v) }

func (e *enc) boolean(v bool) {
	if v {
		e.b = append(e.b, 1)
	} else {
		e.b = append(e.b, 0)
	}
}

func (e *enc) str(s string) {
	if len(s) > base.QueueFieldBytesMax {
		e.tooLong = true
	}
	e.uvarint(uint64(len(s)))
	e.b = append(e.b, s...)
}

func (e *enc) ref(r Ref) {
	e.uvarint(r.Index)
	e.uvarint(uint64(r.Slot))
}

func (e *enc) consumer(c ConsumerID) {
	e.str(c.Owner)
	e.str(c.Name)
}

func (e *enc) ids(ids []uint64) {
	if len(ids) > base.QueueSettleIDsMax {
		e.tooLong = true
	}
	e.uvarint(uint64(len(ids)))
	for _, id := range ids {
		e.uvarint(id)
	}
}

func (e *enc) message(m *Message) {
	e.ref(m.Ref)
	e.uvarint(uint64(m.Bytes))
	e.u8(m.Priority)
	e.uvarint(m.TTLms)
	e.varint(m.NotBeforeMs)
	e.str(m.DedupeID)
	e.str(m.OrderingKey)
	e.str(m.MessageID)
	e.uvarint(m.Sender.Lane)
	e.uvarint(m.Sender.Seq)
}

func (e *enc) schedule(s *Schedule) {
	e.u8(uint8(s.Kind))
	e.uvarint(s.DelayMs)
	e.uvarint(s.MaxDelayMs)
	e.boolean(s.Jitter)
}

func (e *enc) config(c *Config) {
	e.u8(c.MaxPriority)
	e.uvarint(c.MaxLength)
	e.uvarint(c.MaxLengthBytes)
	e.u8(uint8(c.Overflow))
	e.uvarint(c.MessageTTLms)
	e.uvarint(c.ExpiresMs)
	e.uvarint(c.AckTimeoutMs)
	e.str(c.DeadLetterTarget)
	e.boolean(c.SingleActiveConsumer)
	e.uvarint(c.DedupeWindowMs)
	e.uvarint(uint64(c.Retry.DeliveryLimit))
	e.schedule(&c.Retry.Default)
	if len(c.Retry.Reasons) > base.QueueRetryReasonsMax {
		e.tooLong = true
	}
	e.uvarint(uint64(len(c.Retry.Reasons)))
	for i := range c.Retry.Reasons {
		e.str(c.Retry.Reasons[i].Reason)
		e.schedule(&c.Retry.Reasons[i].Schedule)
	}
}

// dec reads canonical encodings from buf, refilled from r when r is set
// (snapshots); without r, buf is the whole input (commands). The first
// error sticks in err and every later read returns zero values.
type dec struct {
	buf      []byte
	pos, end int
	r        io.Reader
	sum      func(p []byte) // called with every byte consumed, in order (snapshot checksum)
	mark     int            // buf[mark:pos] is consumed but not yet passed to sum
	err      error
}

var errTruncated = errors.New("truncated")

func (d *dec) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf(format, args...)
	}
}

// flush passes the consumed bytes to sum.
func (d *dec) flush() {
	if d.sum != nil && d.pos > d.mark {
		d.sum(d.buf[d.mark:d.pos])
	}
	d.mark = d.pos
}

func (d *dec) fill() bool {
	if d.r == nil || d.err != nil {
		return false
	}
	d.flush()
	n, err := io.ReadAtLeast(d.r, d.buf[:cap(d.buf)], 1)
	d.buf, d.pos, d.mark, d.end = d.buf[:n], 0, 0, n
	if n > 0 {
		return true
	}
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		d.err = err
	}
	return false
}

func (d *dec) u8() uint8 {
	if d.err != nil {
		return 0
	}
	if d.pos == d.end && !d.fill() {
		d.fail("%w", errTruncated)
		return 0
	}
	b := d.buf[d.pos]
	d.pos++
	return b
}

func (d *dec) uvarint() uint64 {
	var x uint64
	for i := 0; i < binary.MaxVarintLen64; i++ {
		b := d.u8()
		if d.err != nil {
			return 0
		}
		if i == binary.MaxVarintLen64-1 && b > 1 {
			break
		}
		x |= uint64(b&0x7f) << (7 * i)
		if b < 0x80 {
			if b == 0 && i > 0 {
				d.fail("non-minimal varint")
				return 0
			}
			return x
		}
	}
	d.fail("varint overflows 64 bits")
	return 0
}

func (d *dec) varint() int64 {
	u := d.uvarint()
	x := int64(u >> 1)
	if u&1 != 0 {
		x = ^x
	}
	return x
}

func (d *dec) u32() uint32 {
	v := d.uvarint()
	if v > 1<<32-1 {
		d.fail("value %d over 32 bits", v)
		return 0
	}
	return uint32(v)
}

func (d *dec) i32() int32 {
	v := d.varint()
	if v < -1<<31 || v > 1<<31-1 {
		d.fail("value %d over 32 bits", v)
		return 0
	}
	return int32(v)
}

func (d *dec) boolean() bool {
	switch b := d.u8(); b {
	case 0:
		return false
	case 1:
		return true
	default:
		d.fail("bad boolean %d", b)
		return false
	}
}

// remaining is the bytes left, or -1 when unknown (a stream).
func (d *dec) remaining() int {
	if d.r != nil {
		return -1
	}
	return d.end - d.pos
}

// count reads a list length, refusing one over max or one that the bytes
// left cannot hold at minBytes per element.
func (d *dec) count(max, minBytes int) int {
	v := d.uvarint()
	if d.err != nil {
		return 0
	}
	if v > uint64(max) {
		d.fail("count %d over the limit %d", v, max)
		return 0
	}
	if r := d.remaining(); r >= 0 && v*uint64(minBytes) > uint64(r) {
		d.fail("count %d cannot fit in %d bytes: %w", v, r, errTruncated)
		return 0
	}
	return int(v)
}

func (d *dec) str() string {
	n := d.count(base.QueueFieldBytesMax, 1)
	if d.err != nil || n == 0 {
		return ""
	}
	if d.end-d.pos >= n {
		s := string(d.buf[d.pos : d.pos+n])
		d.pos += n
		return s
	}
	b := make([]byte, 0, n) // n <= QueueFieldBytesMax
	for len(b) < n {
		if d.pos == d.end && !d.fill() {
			d.fail("%w", errTruncated)
			return ""
		}
		k := min(n-len(b), d.end-d.pos)
		b = append(b, d.buf[d.pos:d.pos+k]...)
		d.pos += k
	}
	return string(b)
}

func (d *dec) ref() Ref { return Ref{Index: d.uvarint(), Slot: d.u32()} }

func (d *dec) consumer() ConsumerID { return ConsumerID{Owner: d.str(), Name: d.str()} }

func (d *dec) ids() []uint64 {
	n := d.count(base.QueueSettleIDsMax, 1)
	if n == 0 {
		return nil
	}
	ids := make([]uint64, 0, n)
	for i := 0; i < n && d.err == nil; i++ {
		ids = append(ids, d.uvarint())
	}
	return ids
}

func (d *dec) message() Message {
	return Message{Ref: d.ref(), Bytes: d.u32(), Priority: d.u8(), TTLms: d.uvarint(), NotBeforeMs: d.varint(),
		DedupeID: d.str(), OrderingKey: d.str(), MessageID: d.str(), Sender: SenderID{Lane: d.uvarint(), Seq: d.uvarint()}}
}

func (d *dec) schedule() Schedule {
	return Schedule{Kind: BackoffKind(d.u8()), DelayMs: d.uvarint(), MaxDelayMs: d.uvarint(), Jitter: d.boolean()}
}

func (d *dec) config() Config {
	c := Config{MaxPriority: d.u8(), MaxLength: d.uvarint(), MaxLengthBytes: d.uvarint(), Overflow: Overflow(d.u8()),
		MessageTTLms: d.uvarint(), ExpiresMs: d.uvarint(), AckTimeoutMs: d.uvarint(), DeadLetterTarget: d.str(),
		SingleActiveConsumer: d.boolean(), DedupeWindowMs: d.uvarint()}
	c.Retry.DeliveryLimit = d.u32()
	c.Retry.Default = d.schedule()
	if n := d.count(base.QueueRetryReasonsMax, 5); n > 0 {
		c.Retry.Reasons = make([]ReasonSchedule, 0, n)
		for i := 0; i < n && d.err == nil; i++ {
			c.Retry.Reasons = append(c.Retry.Reasons, ReasonSchedule{Reason: d.str(), Schedule: d.schedule()})
		}
	}
	return c
}

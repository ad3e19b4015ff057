package amqp

import (
	"bytes"
	"encoding/binary"
	"slices"
	"strconv"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/proto/amqp/codec"
)

// assembly is a channel's message in the making: basic.publish, then a
// content header, then body frames until the announced size (spec
// §4.2.6). Reader goroutine only.
type assembly struct {
	active     bool
	haveHeader bool
	exchange   string
	routingKey string
	mandatory  bool
	size       uint64
	raw        []byte // the raw properties: the channel's rawScratch, or a buffer of their own
	body       []byte // the body frames received so far (nil until the first arrives)
	rawOwned   bool   // raw is a buffer of its own, not the channel's scratch
	bodyOwned  bool   // body is a buffer of its own, not the frame reader's
}

// startPublish handles basic.publish: content frames follow.
func (ch *channel) startPublish(m *codec.BasicPublish) error {
	if m.Immediate {
		return protoErr(codec.ReplyNotImplemented, m.Key(), "immediate=true")
	}
	ch.asm = assembly{active: true, exchange: m.Exchange, routingKey: m.RoutingKey, mandatory: m.Mandatory}
	return nil
}

// handleContent takes a content header or body frame (reader goroutine).
// A soft error (a refused publish) closes the channel; a hard one is
// returned.
func (ch *channel) handleContent(f codec.Frame) error {
	return ch.softOrHard(ch.content(f), codec.MethodBasicPublish)
}

func (ch *channel) content(f codec.Frame) error {
	if ch.isClosing() {
		return nil // the frames of a publish that closed the channel
	}
	a := &ch.asm
	switch {
	case !a.active:
		return protoErr(codec.ReplyUnexpectedFrame, 0, "expected method frame, got non method frame instead")
	case !a.haveHeader && f.Type != codec.FrameHeader:
		return protoErr(codec.ReplyUnexpectedFrame, codec.MethodBasicPublish,
			"expected content header for class 60, got non content header frame instead")
	case a.haveHeader && f.Type != codec.FrameBody:
		return protoErr(codec.ReplyUnexpectedFrame, codec.MethodBasicPublish,
			"expected content body, got non content body frame instead")
	}
	if f.Type == codec.FrameHeader {
		return ch.contentHeader(f.Payload)
	}
	if uint64(len(a.body))+uint64(len(f.Payload)) > a.size {
		return protoErr(codec.ReplyFrameError, codec.MethodBasicPublish,
			"body frames of %d bytes exceed the content header's body size %d", uint64(len(a.body))+uint64(len(f.Payload)), a.size)
	}
	if a.body == nil && uint64(len(f.Payload)) == a.size {
		// The whole body in one frame (the common case): it is used
		// where the frame reader holds it, and copied once, by
		// completePublish, before the next frame is read.
		a.body = f.Payload
		return ch.completePublish()
	}
	if a.body == nil {
		// Grow with the frames, never from the announced size alone: a
		// client announcing 128 MiB and sending nothing costs nothing.
		a.body = make([]byte, 0, min(a.size, uint64(ch.c.frameMax)))
		a.bodyOwned = true
	}
	a.body = append(a.body, f.Payload...)
	if uint64(len(a.body)) == a.size {
		return ch.completePublish()
	}
	return nil
}

// contentHeader decodes a publish's content header. The properties are
// decoded into the channel's props, reusing the strings that did not
// change since its last message.
func (ch *channel) contentHeader(p []byte) error {
	a := &ch.asm
	if len(p) >= 12 {
		size := binary.BigEndian.Uint64(p[4:12])
		if size > ch.c.cfg.MessageBytesMax {
			// RabbitMQ checks max_message_size on the channel: a soft
			// error. The body frames that follow are dropped.
			a.active = false
			ch.fail(protoErr(codec.ReplyPreconditionFailed, codec.MethodBasicPublish,
				"message size %d is larger than configured max size %d", size, ch.c.cfg.MessageBytesMax))
			return nil
		}
	}
	var h codec.ContentHeader
	if err := h.Decode(p); err != nil {
		return err
	}
	if h.ClassID != codec.ClassBasic {
		return protoErr(codec.ReplyUnexpectedFrame, codec.MethodBasicPublish,
			"content header for class %d does not match the method's class 60", h.ClassID)
	}
	if err := h.Properties(&ch.props); err != nil {
		return err
	}
	a.haveHeader, a.size = true, h.BodySize
	// The header aliases the frame reader's buffer: keep the raw list
	// until the body arrives, in the channel's scratch when it is small.
	if len(h.RawProperties) <= base.AMQPPropertiesScratchBytesMax {
		ch.rawScratch = append(ch.rawScratch[:0], h.RawProperties...)
		a.raw = ch.rawScratch
	} else {
		a.raw, a.rawOwned = slices.Clone(h.RawProperties), true
	}
	if h.BodySize == 0 {
		a.body, a.bodyOwned = []byte{}, true
		return ch.completePublish()
	}
	return nil
}

// completePublish hands a whole message on: to the transaction, to a
// direct reply-to consumer, or to the connection's publish batch. The
// message's raw properties and body may be the channel's scratch and the
// frame reader's buffer: the batch copies a small message into its
// buffer, every other message gets buffers of its own here.
func (ch *channel) completePublish() error {
	a := ch.asm
	ch.asm = assembly{}
	msg := Message{Exchange: a.exchange, RoutingKey: a.routingKey, Properties: ch.props, RawProperties: a.raw, Body: a.body}
	if err := ch.checkPublish(&msg); err != nil {
		return err
	}
	replyTo := a.exchange == "" && isReplyToAddress(a.routingKey)
	if replyTo || ch.tx != nil || len(msg.RawProperties)+len(msg.Body) > base.AMQPPublishInlineBytesMax {
		if !a.rawOwned {
			msg.RawProperties = bytes.Clone(msg.RawProperties)
		}
		if !a.bodyOwned {
			msg.Body = bytes.Clone(msg.Body)
		}
	}
	if replyTo {
		return ch.publishReplyTo(msg, a.mandatory)
	}
	if ch.tx != nil {
		return ch.tx.addPublish(msg, a.mandatory)
	}
	var seq uint64
	ch.mu.Lock()
	if ch.confirming {
		seq = ch.confirms.assign()
	}
	ch.mu.Unlock()
	ch.c.pub.add(ch, msg, a.mandatory, seq)
	return nil
}

// checkPublish applies RabbitMQ's checks of a publish and rewrites a
// direct reply-to address.
func (ch *channel) checkPublish(m *Message) error {
	key := codec.MethodBasicPublish
	p := &m.Properties
	if p.Flags&codec.BasicFlagUserID != 0 && p.UserID != ch.c.user.User {
		return protoErr(codec.ReplyPreconditionFailed, key,
			"user_id property set to '%s' but authenticated user was '%s'", p.UserID, ch.c.user.User)
	}
	if p.Flags&codec.BasicFlagExpiration != 0 {
		if _, err := strconv.ParseUint(p.Expiration, 10, 32); err != nil {
			return protoErr(codec.ReplyPreconditionFailed, key, "invalid expiration '%s': not a non-negative integer", p.Expiration)
		}
	}
	if p.Flags&codec.BasicFlagReplyTo != 0 && p.ReplyTo == replyToQueue {
		token, ok := ch.replyToToken()
		if !ok {
			return protoErr(codec.ReplyPreconditionFailed, key, "fast reply consumer does not exist")
		}
		p.ReplyTo = replyToPrefix + token
		m.RawProperties = nil // re-encoded on delivery
	}
	if !ch.hasWriteOK || ch.lastWriteOK != m.Exchange {
		if err := ch.c.session.Authorize(ActionWrite, EntityExchange, m.Exchange); err != nil {
			return asReply(err, key)
		}
		ch.lastWriteOK, ch.hasWriteOK = m.Exchange, true
	}
	return nil
}

// publishBatch coalesces consecutive publishes of one channel to one
// exchange that arrive in one read from the socket into one broker call.
// Reader goroutine only.
//
// The bodies and raw properties of the messages are copied into buf (a
// recycled pubBuf) as they are added, and addressed by offsets (spans)
// until flush, because buf moves when it grows. Messages over
// base.AMQPPublishInlineBytesMax keep buffers of their own instead. msgs,
// seqs and spans are scratch reused from batch to batch: flush copies
// them into the call.
type publishBatch struct {
	ch        *channel
	exchange  string
	mandatory bool
	msgs      []Message
	seqs      []uint64  // confirm sequence numbers, 0 when not confirming
	spans     []pubSpan // where msgs[i]'s bytes are in buf
	buf       *[]byte   // from pubBufs; nil until a message is copied in
	bytes     int       // the raw properties and bodies of msgs, inline or not: at least len(*buf)
	lastBuf   int       // the bytes the previous batch copied: the size the next buffer starts at
}

// pubSpan locates one message's raw properties and body in its batch's
// buffer: buf[raw:body] and buf[body:end]. A message that is not inline
// keeps slices of its own.
type pubSpan struct {
	inline, hasRaw bool
	raw, body, end int
}

func (c *conn) flushPublishes() { c.pub.flush(c) }

// add appends m to the batch. A message of up to
// base.AMQPPublishInlineBytesMax is copied into the batch's buffer (the
// caller's slices are scratch, valid until the next frame is read); a
// larger one must come with buffers of its own, which the batch keeps.
func (b *publishBatch) add(ch *channel, m Message, mandatory bool, seq uint64) {
	c := ch.c
	if len(b.msgs) > 0 && (b.ch != ch || b.exchange != m.Exchange || b.mandatory != mandatory) {
		b.flush(c)
	}
	b.ch, b.exchange, b.mandatory = ch, m.Exchange, mandatory
	n := len(m.RawProperties) + len(m.Body)
	var sp pubSpan
	if n <= base.AMQPPublishInlineBytesMax {
		if b.buf == nil {
			// Batches of a connection tend to be alike: start where
			// the last one ended rather than growing through every
			// class (each step copies). One small batch after a large
			// one pins the larger buffer once, then sizes follow.
			b.buf = pubBufs.Get(max(n, b.lastBuf))
		}
		growPubBuf(b.buf, n)
		sp = pubSpan{inline: true, hasRaw: m.RawProperties != nil, raw: len(*b.buf)}
		*b.buf = append(*b.buf, m.RawProperties...)
		sp.body = len(*b.buf)
		*b.buf = append(*b.buf, m.Body...)
		sp.end = len(*b.buf)
		m.RawProperties, m.Body = nil, nil // set again by take
	}
	b.msgs = append(b.msgs, m)
	b.seqs = append(b.seqs, seq)
	b.spans = append(b.spans, sp)
	b.bytes += n
	if len(b.msgs) >= base.AMQPPublishBatchMessagesMax || b.bytes >= base.AMQPPublishBatchBytesMax {
		b.flush(c)
	}
}

// take moves the batch's messages into a call of their own, in slices
// sized to the batch from the recycled ones, the inline messages' bytes
// pointing into the batch's buffer, which goes with them (nil when no
// message is inline). The scratch slices stay for the next batch.
func (b *publishBatch) take() (msgs *[]Message, seqs *[]uint64, buf *[]byte) {
	msgs, seqs = callMessages.Make(len(b.msgs)), callSeqs.Make(len(b.msgs))
	copy(*msgs, b.msgs)
	copy(*seqs, b.seqs)
	buf = b.buf
	for i, sp := range b.spans {
		if !sp.inline {
			continue
		}
		if sp.hasRaw {
			(*msgs)[i].RawProperties = (*buf)[sp.raw:sp.body:sp.body]
		}
		(*msgs)[i].Body = (*buf)[sp.body:sp.end:sp.end]
	}
	clear(b.msgs) // drop the strings and slices
	last := 0
	if buf != nil {
		last = len(*buf)
	}
	*b = publishBatch{msgs: b.msgs[:0], seqs: b.seqs[:0], spans: b.spans[:0], lastBuf: last}
	return msgs, seqs, buf
}

// The recycled slices of publish calls.
var (
	callMessages = newCallPool[Message]()
	callSeqs     = newCallPool[uint64]()
)

// flush hands the batch to the broker, waiting first for room among the
// connection's publishes in flight. The batch's buffer and slices are
// recycled once the outcome was handled: published is the last reader
// (a basic.return copies its message into the writer).
func (b *publishBatch) flush(c *conn) {
	if len(b.msgs) == 0 {
		return
	}
	ch, mandatory := b.ch, b.mandatory
	msgs, seqs, buf := b.take()
	n := len(*msgs)
	release := func() {
		callMessages.Put(msgs)
		callSeqs.Put(seqs)
		if buf != nil {
			pubBufs.Put(buf)
		}
	}
	if !c.acquirePublish(n) {
		release()
		return
	}
	c.session.PublishAsync((*msgs)[0].Exchange, *msgs, PublishOptions{Mandatory: mandatory},
		func(res []PublishResult, err error) {
			ch.published(*msgs, *seqs, mandatory, res, err)
			release()
			c.releasePublish(n)
		})
}

// published handles the outcome of a publish call (a broker goroutine):
// basic.return for unroutable mandatory messages, then confirms in
// sequence order; a routing error closes the channel, as RabbitMQ's
// synchronous checks would: the publishes before it are confirmed, and
// neither it nor any later one gets a confirm (RabbitMQ sends no nack
// for the publish that closes the channel, and ignores what follows).
func (ch *channel) published(msgs []Message, seqs []uint64, mandatory bool, res []PublishResult, err error) {
	var fail *codec.Error
	ch.mu.Lock()
	for i := range msgs {
		if fail != nil {
			break
		}
		r := PublishResult{Err: err}
		if err == nil && i < len(res) {
			r = res[i]
		} else if err == nil {
			r.Err = base.Errorf(base.CodeInternal, "broker returned %d results for %d messages", len(res), len(msgs))
		}
		ack := true
		switch {
		case r.Err != nil && isChannelFault(r.Err):
			fail = asReply(r.Err, codec.MethodBasicPublish)
			continue
		case r.Err != nil:
			ch.c.log.Debug("publish failed", "err", r.Err)
			ack = false
		case r.Rejected:
			ack = false
		case r.Unroutable && mandatory:
			ch.sendReturnLocked(&msgs[i], codec.ReplyNoRoute, "NO_ROUTE")
		}
		if seqs[i] != 0 && ch.confirming {
			ch.confirms.settle(seqs[i], ack)
		}
	}
	if ch.confirming && !ch.closed && !ch.closing {
		ch.confirms.emit(ch.c.out, ch.id)
	}
	ch.mu.Unlock()
	if fail != nil {
		ch.fail(fail)
	}
}

// isChannelFault reports a publish error that is the client's mistake
// (no such exchange, not permitted): RabbitMQ closes the channel for it.
// Other failures (overload, no quorum) are nacks.
func isChannelFault(err error) bool {
	switch base.CodeOf(err) {
	case base.CodeNotFound, base.CodeAccessRefused, base.CodeInvalidArgument, base.CodePreconditionFailed, base.CodeTooLarge:
		return true
	}
	return false
}

// sendReturnLocked sends basic.return with the message.
func (ch *channel) sendReturnLocked(m *Message, code codec.ReplyCode, text string) {
	if ch.closed || ch.closing {
		return
	}
	ret := &codec.BasicReturn{ReplyCode: uint16(code), ReplyText: text, Exchange: m.Exchange, RoutingKey: m.RoutingKey}
	_ = ch.c.out.send(false, func(enc *codec.FrameWriter) error {
		return writeContent(enc, ch.id, ret, &m.Properties, m.RawProperties, m.Body)
	})
}

// confirmSelect handles confirm.select.
func (ch *channel) confirmSelect(noWait bool) error {
	if ch.tx != nil {
		return protoErr(codec.ReplyPreconditionFailed, codec.MethodConfirmSelect, "cannot switch from tx to confirm mode")
	}
	ch.mu.Lock()
	ch.confirming = true
	ch.mu.Unlock()
	if noWait {
		return nil
	}
	return ch.reply(&codec.ConfirmSelectOk{})
}

// confirmTracker numbers a confirm-mode channel's publishes and sends
// their confirms in order: a run of acks as one basic.ack with multiple,
// a nack alone. Holding an early outcome until the ones before it are
// known lets "multiple" be used without ever confirming a message twice.
// Guarded by the channel's mu.
type confirmTracker struct {
	last     uint64  // the last sequence number assigned
	emitted  uint64  // every sequence number up to this one was confirmed
	outcomes []uint8 // outcomes[i] is emitted+1+i's: 0 unknown, 1 ack, 2 nack
}

func (t *confirmTracker) assign() uint64 {
	t.last++
	t.outcomes = append(t.outcomes, 0)
	return t.last
}

func (t *confirmTracker) settle(seq uint64, ack bool) {
	i := seq - t.emitted - 1
	// Checked before formatting: Assert's arguments would be boxed (an
	// allocation per confirm) even when the check passes.
	if seq <= t.emitted || i >= uint64(len(t.outcomes)) {
		base.Bugf("amqp: confirm %d outside (%d, %d]", seq, t.emitted, t.last)
	}
	if t.outcomes[i] != 0 {
		base.Bugf("amqp: publish %d settled twice", seq)
	}
	if ack {
		t.outcomes[i] = 1
	} else {
		t.outcomes[i] = 2
	}
}

// emit sends the confirms that are now in order.
func (t *confirmTracker) emit(out *frameWriter, channel uint16) {
	n := 0
	for n < len(t.outcomes) && t.outcomes[n] != 0 {
		start := n
		if t.outcomes[n] == 2 {
			n++
			tag := t.emitted + uint64(n)
			_ = out.sendMethod(false, channel, &codec.BasicNack{DeliveryTag: tag})
			continue
		}
		for n < len(t.outcomes) && t.outcomes[n] == 1 {
			n++
		}
		tag := t.emitted + uint64(n)
		_ = out.sendMethod(false, channel, &codec.BasicAck{DeliveryTag: tag, Multiple: n-start > 1})
	}
	if n > 0 {
		t.emitted += uint64(n)
		t.outcomes = t.outcomes[:copy(t.outcomes, t.outcomes[n:])]
	}
}

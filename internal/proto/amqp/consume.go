package amqp

import (
	"crypto/rand"
	"encoding/base64"
	"strconv"
	"strings"
	"time"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/proto/amqp/codec"
)

// consumer is one basic.consume of a channel.
type consumer struct {
	ch       *channel
	tag      string
	queue    string
	noAck    bool
	prefetch uint32 // the per-consumer limit asked by basic.qos (0 none)

	sub        Subscription // guarded by ch.mu: set once Subscribe returned
	ready      bool         // guarded by ch.mu: consume-ok was sent; deliveries may follow it
	early      []Delivery   // guarded by ch.mu: delivered before consume-ok
	cancelled  bool         // guarded by ch.mu: no more deliveries are sent
	lostEarly  bool         // guarded by ch.mu: the broker cancelled it before consume-ok
	replyToken string       // direct reply-to: the registry key (no subscription)
	// brokerTag is the tag the broker knows the consumer by: the client's
	// tag, or with "#<channel>" appended when another channel of the
	// connection already uses it (AMQP scopes tags per channel, the
	// broker per connection).
	brokerTag string
}

// claimBrokerTag picks cs's broker tag and records it as in use.
func (c *conn) claimBrokerTag(cs *consumer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cs.brokerTag = cs.tag
	if c.brokerTags[cs.brokerTag] {
		cs.brokerTag = cs.tag + "#" + strconv.Itoa(int(cs.ch.id))
	}
	c.brokerTags[cs.brokerTag] = true
}

// releaseBrokerTag forgets cs's broker tag.
func (c *conn) releaseBrokerTag(cs *consumer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cs.brokerTag != "" {
		delete(c.brokerTags, cs.brokerTag)
	}
}

// heldDelivery is a delivery received from the broker but not yet sent,
// because the channel's global prefetch is full or its flow is off.
type heldDelivery struct {
	cons *consumer
	d    Delivery
}

// effectivePrefetch is the subscription prefetch for cs: its own limit
// and the channel's global one, whichever is smaller, and never more than
// base.AMQPPrefetchCountMax ("no limit" included).
func (ch *channel) effectivePrefetchLocked(cs *consumer) uint32 {
	p := uint32(base.AMQPPrefetchCountMax)
	if cs.prefetch > 0 {
		p = min(p, cs.prefetch)
	}
	if ch.globalPrefetch > 0 {
		p = min(p, ch.globalPrefetch)
	}
	return p
}

// deliver is the subscription's delivery callback (a broker goroutine).
func (cs *consumer) deliver(d Delivery) {
	ch := cs.ch
	ch.mu.Lock()
	var ops []settleOp
	switch {
	case ch.closed || cs.cancelled:
		if !cs.noAck && cs.sub != nil {
			ops = append(ops, settleOp{kind: opNack, requeue: true, sub: cs.sub, id: d.ID})
		}
	case !cs.ready:
		cs.early = append(cs.early, d)
	default:
		ops = ch.deliverLocked(cs, d)
	}
	ch.mu.Unlock()
	runSettles(ch.ctx(), ops)
}

// cancelledByBroker is the subscription's cancellation callback: the
// queue was deleted or the node is stopping. A client with
// consumer_cancel_notify gets basic.cancel, as RabbitMQ sends it.
func (cs *consumer) cancelledByBroker(reason error) {
	ch := cs.ch
	ch.mu.Lock()
	if cs.cancelled || ch.closed {
		ch.mu.Unlock()
		return
	}
	cs.cancelled = true
	delete(ch.consumers, cs.tag)
	ops := ch.returnHeldLocked(cs)
	notify := cs.ready
	ch.c.releaseBrokerTag(cs)
	if !cs.ready {
		cs.lostEarly = true
	}
	ch.mu.Unlock()
	runSettles(ch.ctx(), ops)
	ch.c.log.Debug("consumer cancelled by the broker", "tag", cs.tag, "reason", reason)
	if notify && ch.c.caps.cancelNotify {
		_ = ch.c.out.sendMethod(false, ch.id, &codec.BasicCancel{ConsumerTag: cs.tag, NoWait: true})
	}
}

// deliverLocked sends d to cs's client, or holds it when the channel may
// not deliver now. It returns settlements to run after unlocking.
func (ch *channel) deliverLocked(cs *consumer, d Delivery) []settleOp {
	if len(ch.held) > 0 || !ch.flowActive ||
		(!cs.noAck && ch.globalPrefetch > 0 && uint32(ch.unacked.live) >= ch.globalPrefetch) {
		ch.held = append(ch.held, heldDelivery{cs, d})
		return nil
	}
	ch.sendDeliveryLocked(cs, d)
	return nil
}

// sendDeliveryLocked gives d the next delivery tag and writes it.
func (ch *channel) sendDeliveryLocked(cs *consumer, d Delivery) {
	ch.lastTag++
	tag := ch.lastTag
	if !cs.noAck {
		ch.unacked.push(unackedEntry{tag: tag, id: d.ID, cons: cs})
	}
	m := &ch.deliverReuse
	*m = codec.BasicDeliver{ConsumerTag: cs.tag, DeliveryTag: tag, Redelivered: d.Redelivered,
		Exchange: d.Exchange, RoutingKey: d.RoutingKey}
	_ = ch.c.out.send(false, func(enc *codec.FrameWriter) error {
		return writeContent(enc, ch.id, m, &d.Properties, d.RawProperties, d.Body)
	})
}

// writeContent writes a method with content: the method, the content
// header (raw properties when present) and the body frames.
func writeContent(enc *codec.FrameWriter, channel uint16, m codec.Method, props *codec.BasicProperties, raw, body []byte) error {
	if err := enc.WriteMethod(channel, m); err != nil {
		return err
	}
	var err error
	if raw != nil {
		err = enc.WriteContentHeaderRaw(channel, &codec.ContentHeader{ClassID: codec.ClassBasic,
			BodySize: uint64(len(body)), RawProperties: raw})
	} else {
		err = enc.WriteContentHeader(channel, uint64(len(body)), props)
	}
	if err != nil {
		return err
	}
	return enc.WriteBody(channel, body)
}

// drainHeldLocked sends held deliveries while the channel may deliver.
func (ch *channel) drainHeldLocked() []settleOp {
	n := 0
	for n < len(ch.held) && ch.flowActive {
		h := ch.held[n]
		if !h.cons.noAck && ch.globalPrefetch > 0 && uint32(ch.unacked.live) >= ch.globalPrefetch {
			break
		}
		n++
		if h.cons.cancelled {
			continue // returned by returnHeldLocked already
		}
		ch.sendDeliveryLocked(h.cons, h.d)
	}
	if n > 0 {
		clear(ch.held[:n])
		ch.held = ch.held[:copy(ch.held, ch.held[n:])]
	}
	return nil
}

// returnHeldLocked removes the held deliveries of cs (all of them when cs
// is nil) and returns the settlements that requeue them.
func (ch *channel) returnHeldLocked(cs *consumer) []settleOp {
	var ops []settleOp
	out := ch.held[:0]
	for _, h := range ch.held {
		if cs != nil && h.cons != cs {
			out = append(out, h)
			continue
		}
		if !h.cons.noAck && h.cons.sub != nil {
			ops = append(ops, settleOp{kind: opNack, requeue: true, sub: h.cons.sub, id: h.d.ID})
		}
	}
	clear(ch.held[len(out):])
	ch.held = out
	return ops
}

// consume handles basic.consume.
func (ch *channel) consume(m *codec.BasicConsume) error {
	key := m.Key()
	queue, err := ch.expandQueue(m.Queue, key)
	if err != nil {
		return err
	}
	tag := m.ConsumerTag
	if tag == "" {
		tag = newConsumerTag()
	}
	ch.mu.Lock()
	_, dup := ch.consumers[tag]
	n := len(ch.consumers)
	ch.mu.Unlock()
	switch {
	case dup:
		return protoErr(codec.ReplyNotAllowed, key, "attempt to reuse consumer tag '%s'", tag)
	case n >= base.AMQPConsumersPerChannelMax:
		return protoErr(codec.ReplyPreconditionFailed, key, "reached maximum (%d) of consumers per channel", base.AMQPConsumersPerChannelMax)
	}
	if queue == replyToQueue {
		return ch.consumeReplyTo(m, tag)
	}
	if err := ch.c.session.Authorize(ActionRead, EntityQueue, queue); err != nil {
		return err
	}
	opts := SubscribeOptions{Queue: queue, Tag: tag, Exclusive: m.Exclusive, NoAck: m.NoAck}
	if err := consumerArgs(m.Arguments, &opts, key, ch.c.clock.Now()); err != nil {
		return err
	}
	cs := &consumer{ch: ch, tag: tag, queue: queue, noAck: m.NoAck, prefetch: ch.prefetch}
	opts.AckTimeout = ch.ackTimedOut
	ch.c.claimBrokerTag(cs)
	opts.Tag = cs.brokerTag
	ch.mu.Lock()
	opts.PrefetchCount = ch.effectivePrefetchLocked(cs)
	ch.consumers[tag] = cs
	ch.mu.Unlock()
	sub, err := ch.c.session.Subscribe(ch.ctx(), opts, cs.deliver, cs.cancelledByBroker)
	if err != nil {
		ch.mu.Lock()
		delete(ch.consumers, tag)
		ch.mu.Unlock()
		ch.c.releaseBrokerTag(cs)
		return ch.consumeError(queue, err)
	}
	return ch.startConsumer(cs, sub, m.NoWait)
}

// consumeError answers a refused basic.consume. The broker reports an
// exclusive consumer of the queue like an exclusive queue of another
// connection (resource locked); RabbitMQ answers the former with 403
// "in exclusive use", so a passive declare, which only the latter fails,
// tells them apart.
func (ch *channel) consumeError(queue string, err error) error {
	if base.CodeOf(err) != base.CodeResourceLocked {
		return err
	}
	if _, perr := ch.c.session.DeclareQueue(ch.ctx(), QueueSpec{Name: queue, Passive: true}); perr != nil {
		return err
	}
	return protoErr(codec.ReplyAccessRefused, codec.MethodBasicConsume, "queue '%s' in vhost '%s' in exclusive use", queue, ch.c.vhost)
}

// startConsumer sends consume-ok and then the deliveries that arrived
// before it.
func (ch *channel) startConsumer(cs *consumer, sub Subscription, noWait bool) error {
	ch.mu.Lock()
	cs.sub = sub
	var err error
	if !noWait {
		err = ch.c.out.sendMethod(false, ch.id, &codec.BasicConsumeOk{ConsumerTag: cs.tag})
	}
	cs.ready = true
	early := cs.early
	cs.early = nil
	var ops []settleOp
	for _, d := range early {
		if cs.cancelled {
			if !cs.noAck {
				ops = append(ops, settleOp{kind: opNack, requeue: true, sub: sub, id: d.ID})
			}
			continue
		}
		ops = append(ops, ch.deliverLocked(cs, d)...)
	}
	lost := cs.lostEarly
	ch.mu.Unlock()
	runSettles(ch.ctx(), ops)
	if lost && ch.c.caps.cancelNotify {
		_ = ch.c.out.sendMethod(false, ch.id, &codec.BasicCancel{ConsumerTag: cs.tag, NoWait: true})
	}
	if err != nil && err != errConnClosed {
		return err
	}
	return nil
}

// consumerArgs reads basic.consume's arguments: x-priority and
// x-stream-offset. Others are ignored, as RabbitMQ ignores unknown ones.
func consumerArgs(args codec.Table, o *SubscribeOptions, key codec.MethodKey, now time.Time) error {
	if v, ok := args["x-priority"]; ok {
		p, ok := intArg(v)
		if !ok || p < -(1<<31) || p > 1<<31-1 {
			return protoErr(codec.ReplyPreconditionFailed, key, "invalid arg 'x-priority' for consumer: %v", v)
		}
		o.Priority = int32(p)
	}
	if v, ok := args["x-stream-offset"]; ok {
		so, err := parseStreamOffset(v, now)
		if err != nil {
			return protoErr(codec.ReplyPreconditionFailed, key, "invalid arg 'x-stream-offset' for consumer: %v", err)
		}
		o.StreamOffset = &so
	}
	return nil
}

// intArg reads an integer of any of the table's integer types.
func intArg(v any) (int64, bool) {
	switch v := v.(type) {
	case int8:
		return int64(v), true
	case uint8:
		return int64(v), true
	case int16:
		return int64(v), true
	case uint16:
		return int64(v), true
	case int32:
		return int64(v), true
	case uint32:
		return int64(v), true
	case int64:
		return v, true
	}
	return 0, false
}

// parseStreamOffset reads x-stream-offset as RabbitMQ does: "first",
// "last", "next", an offset, a timestamp, or an interval like "1h" (units
// Y, M, D, h, m, s) measured back from now.
func parseStreamOffset(v any, now time.Time) (StreamOffset, error) {
	if n, ok := intArg(v); ok {
		if n < 0 {
			return StreamOffset{}, base.Errorf(base.CodeInvalidArgument, "negative offset %d", n)
		}
		return StreamOffset{Kind: StreamOffsetAt, Offset: n}, nil
	}
	switch v := v.(type) {
	case time.Time:
		return StreamOffset{Kind: StreamTimestamp, Timestamp: v}, nil
	case string:
		switch v {
		case "first":
			return StreamOffset{Kind: StreamFirst}, nil
		case "last":
			return StreamOffset{Kind: StreamLast}, nil
		case "next":
			return StreamOffset{Kind: StreamNext}, nil
		}
		if d, ok := parseInterval(v); ok {
			return StreamOffset{Kind: StreamInterval, Interval: d, Timestamp: now.Add(-d)}, nil
		}
		return StreamOffset{}, base.Errorf(base.CodeInvalidArgument, "unknown value %q", v)
	}
	return StreamOffset{}, base.Errorf(base.CodeInvalidArgument, "value of type %T", v)
}

// parseInterval parses RabbitMQ's interval syntax: a positive integer and
// one unit of Y (365 days), M (30 days), D, h, m, s.
func parseInterval(s string) (time.Duration, bool) {
	if len(s) < 2 || len(s) > 12 {
		return 0, false
	}
	var n int64
	for _, r := range s[:len(s)-1] {
		if r < '0' || r > '9' {
			return 0, false
		}
		n = n*10 + int64(r-'0')
	}
	unit := map[byte]time.Duration{'Y': 365 * 24 * time.Hour, 'M': 30 * 24 * time.Hour, 'D': 24 * time.Hour,
		'h': time.Hour, 'm': time.Minute, 's': time.Second}[s[len(s)-1]]
	if unit == 0 || n <= 0 {
		return 0, false
	}
	return time.Duration(n) * unit, true
}

// newConsumerTag returns a server-chosen consumer tag, as RabbitMQ forms
// them.
func newConsumerTag() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "amq.ctag-" + strings.TrimRight(base64.URLEncoding.EncodeToString(b[:]), "=")
}

// ackTimedOut closes the channel whose consumer kept a delivery past the
// queue's x-consumer-timeout, as RabbitMQ does (the queue has already
// taken the delivery back).
func (ch *channel) ackTimedOut(id uint64) {
	ch.fail(protoErr(codec.ReplyPreconditionFailed, 0,
		"delivery acknowledgement on channel %d timed out (x-consumer-timeout)", ch.id))
}

// cancel handles basic.cancel from the client.
func (ch *channel) cancel(tag string, noWait bool) error {
	ch.mu.Lock()
	cs := ch.consumers[tag]
	var ops []settleOp
	if cs != nil {
		cs.cancelled = true
		delete(ch.consumers, tag)
		ops = ch.returnHeldLocked(cs)
		ch.c.releaseBrokerTag(cs)
	}
	ch.mu.Unlock()
	runSettles(ch.ctx(), ops)
	if cs != nil {
		if cs.replyToken != "" {
			ch.c.srv.replyTo.drop(cs.replyToken)
		} else if err := cs.sub.Cancel(ch.ctx()); err != nil && base.CodeOf(err) != base.CodeNotFound {
			return err
		}
	}
	if noWait {
		return nil
	}
	return ch.reply(&codec.BasicCancelOk{ConsumerTag: tag})
}

// qos handles basic.qos: global=false sets the prefetch of consumers
// created later (RabbitMQ's per-consumer semantics), global=true the
// limit shared by all the channel's consumers, existing ones included.
func (ch *channel) qos(m *codec.BasicQos) error {
	if m.PrefetchSize != 0 {
		return protoErr(codec.ReplyNotImplemented, m.Key(), "prefetch_size!=0 (%d)", m.PrefetchSize)
	}
	if !m.Global {
		ch.prefetch = uint32(m.PrefetchCount)
		return ch.reply(&codec.BasicQosOk{})
	}
	ch.mu.Lock()
	ch.globalPrefetch = uint32(m.PrefetchCount)
	type change struct {
		sub Subscription
		n   uint32
	}
	ctx := ch.ctx()
	var changes []change
	for _, cs := range ch.consumers {
		if cs.sub != nil && !cs.noAck {
			changes = append(changes, change{cs.sub, ch.effectivePrefetchLocked(cs)})
		}
	}
	ops := ch.drainHeldLocked()
	ch.mu.Unlock()
	runSettles(ch.ctx(), ops)
	for _, c := range changes {
		if err := c.sub.SetPrefetch(ctx, c.n); err != nil {
			return err
		}
	}
	return ch.reply(&codec.BasicQosOk{})
}

// settle handles basic.ack, basic.nack and basic.reject.
func (ch *channel) settle(method codec.MethodKey, tag uint64, multiple bool, kind settleKind, requeue bool) error {
	ch.mu.Lock()
	taken, ok := ch.unacked.take(tag, multiple)
	if !ok {
		ch.mu.Unlock()
		return protoErr(codec.ReplyPreconditionFailed, method, "unknown delivery tag %d", tag)
	}
	if kind == opNack {
		// As RabbitMQ: a stream consumer's position is its offset, and
		// its deliveries cannot be returned (540, a connection error).
		// Nothing is settled here: the connection's close releases every
		// delivery, those taken too, from the broker's side.
		for _, e := range taken {
			if e.cons != nil && e.cons.sub.Stream() {
				ch.mu.Unlock()
				return protoErr(codec.ReplyNotImplemented, method,
					"basic.nack and basic.reject not supported by stream queues queue '%s' in vhost '%s'", e.cons.queue, ch.c.vhost)
			}
		}
	}
	var ops []settleOp
	if ch.tx != nil {
		ch.tx.addSettle(taken, kind, requeue)
	} else {
		ops = settlesFor(taken, kind, requeue)
	}
	ops = append(ops, ch.drainHeldLocked()...)
	ch.mu.Unlock()
	runSettles(ch.ctx(), ops)
	return nil
}

// recover handles basic.recover (and recover-async): every unacknowledged
// delivery of the channel is returned to its queue, to be redelivered.
// requeue=false, redelivery to the same consumer, is not implemented (nor
// is it by RabbitMQ).
func (ch *channel) recover(requeue, reply bool) error {
	if !requeue {
		return protoErr(codec.ReplyNotImplemented, codec.MethodBasicRecover, "requeue=false")
	}
	ch.mu.Lock()
	ops := ch.unacked.takeAll(opNack, true)
	ops = append(ops, ch.drainHeldLocked()...)
	ch.mu.Unlock()
	runSettles(ch.ctx(), ops)
	if !reply {
		return nil
	}
	return ch.reply(&codec.BasicRecoverOk{})
}

// get handles basic.get.
func (ch *channel) get(m *codec.BasicGet) error {
	queue, err := ch.expandQueue(m.Queue, m.Key())
	if err != nil {
		return err
	}
	if err := ch.c.session.Authorize(ActionRead, EntityQueue, queue); err != nil {
		return err
	}
	d, settle, ok, err := ch.c.session.Get(ch.ctx(), queue, m.NoAck)
	if base.CodeOf(err) == base.CodeNotSupported {
		// basic.get on a stream: the channel's mistake, not the
		// connection's (540 would close every channel).
		return protoErr(codec.ReplyPreconditionFailed, m.Key(), "%v", err)
	}
	if err != nil {
		return err
	}
	if !ok {
		return ch.reply(&codec.BasicGetEmpty{})
	}
	ch.mu.Lock()
	ch.lastTag++
	tag := ch.lastTag
	if !m.NoAck {
		ch.unacked.push(unackedEntry{tag: tag, get: settle})
	}
	ch.mu.Unlock()
	ok2 := &codec.BasicGetOk{DeliveryTag: tag, Redelivered: d.Redelivered, Exchange: d.Exchange,
		RoutingKey: d.RoutingKey, MessageCount: d.MessageCount}
	err = ch.c.out.send(true, func(enc *codec.FrameWriter) error {
		return writeContent(enc, ch.id, ok2, &d.Properties, d.RawProperties, d.Body)
	})
	if err != nil && err != errConnClosed {
		return asReply(err, m.Key())
	}
	return nil
}

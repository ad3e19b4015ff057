package amqp

import (
	"context"
	"sync"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/proto/amqp/codec"
)

// channel is one AMQP channel of a connection.
//
// The reader goroutine owns the fields above mu; broker goroutines
// (deliveries, publish outcomes, cancellations) reach the ones below it
// under mu. Backend methods are never called with mu held: the test
// double and the broker may call back into the channel from inside them.
type channel struct {
	c  *conn
	id uint16

	// Reader goroutine only.
	asm          assembly
	props        codec.BasicProperties // the last content header's: decoding reuses its unchanged strings
	rawScratch   []byte                // the raw properties waiting for their body (AMQPPropertiesScratchBytesMax)
	lastQueue    string                // the queue most recently declared: "" in later methods means it
	prefetch     uint32                // basic.qos global=false: the limit for consumers created later (0 none)
	tx           *txState
	lastWriteOK  string // the exchange last authorized for write (a one-entry cache)
	hasWriteOK   bool
	deliverReuse codec.BasicDeliver // scratch for encoding deliveries; guarded by mu

	mu             sync.Mutex
	closing        bool                 // guarded by mu: channel.close sent; frames are dropped until close-ok
	closed         bool                 // guarded by mu: released; callbacks only settle what they hold
	consumers      map[string]*consumer // guarded by mu
	lastTag        uint64               // guarded by mu: the last delivery tag given
	unacked        unackedList          // guarded by mu
	held           []heldDelivery       // guarded by mu: waiting for global prefetch room or flow
	globalPrefetch uint32               // guarded by mu: basic.qos global=true (0 none)
	flowActive     bool                 // guarded by mu: channel.flow
	confirming     bool                 // guarded by mu: confirm.select was received
	confirms       confirmTracker       // guarded by mu
}

func newChannel(c *conn, id uint16) *channel {
	return &channel{c: c, id: id, consumers: map[string]*consumer{}, flowActive: true}
}

// ctx is the context of the channel's broker calls: cancelled when the
// connection closes.
func (ch *channel) ctx() context.Context { return ch.c.ctx }

func (ch *channel) isClosing() bool {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	return ch.closing
}

// fail handles an error of this channel: a soft one closes the channel
// with channel.close, a hard one the connection. Any goroutine may call it.
func (ch *channel) fail(e *codec.Error) {
	if e.ReplyCode.Hard() {
		ch.c.sendClose(e)
		return
	}
	ch.mu.Lock()
	if ch.closing || ch.closed {
		ch.mu.Unlock()
		return
	}
	ch.closing = true
	ch.mu.Unlock()
	ch.c.srv.stats.CountError(base.CodeOf(e))
	ch.c.log.Debug("closing channel", "channel", ch.id, "reply", e.Error())
	_ = ch.c.out.sendMethod(false, ch.id, &codec.ChannelClose{ReplyCode: uint16(e.ReplyCode),
		ReplyText: e.ReplyText(), ClassID: e.Method.ClassID(), MethodID: e.Method.MethodID()})
}

// handleMethod dispatches a method for this channel (reader goroutine). It
// returns only hard errors; soft ones close the channel here.
func (ch *channel) handleMethod(m codec.Method) error {
	if ch.isClosing() {
		return ch.closingMethod(m)
	}
	if ch.asm.active {
		return protoErr(codec.ReplyUnexpectedFrame, m.Key(),
			"expected content header for class 60, got non content header frame instead")
	}
	return ch.softOrHard(ch.dispatch(m), m.Key())
}

// softOrHard closes the channel for a soft error and returns a hard one
// for the connection to close with.
func (ch *channel) softOrHard(err error, key codec.MethodKey) error {
	if err == nil {
		return nil
	}
	e := asReply(err, key)
	if e.ReplyCode.Hard() {
		return e
	}
	ch.fail(e)
	return nil
}

// closingMethod handles a method after channel.close was sent: only
// close-ok (or the peer's own close) ends the closing; the rest is
// dropped, as the spec requires.
func (ch *channel) closingMethod(m codec.Method) error {
	switch m.(type) {
	case *codec.ChannelCloseOk:
		ch.finish()
	case *codec.ChannelClose:
		ch.finish()
		return ch.c.out.sendMethod(true, ch.id, &codec.ChannelCloseOk{})
	}
	return nil
}

// finish releases the channel and frees its number.
func (ch *channel) finish() {
	ch.release()
	delete(ch.c.channels, ch.id)
}

func (ch *channel) dispatch(m codec.Method) error {
	switch m := m.(type) {
	case *codec.BasicPublish:
		return ch.startPublish(m)
	case *codec.BasicAck:
		return ch.settle(m.Key(), m.DeliveryTag, m.Multiple, opAck, false)
	case *codec.BasicNack:
		return ch.settle(m.Key(), m.DeliveryTag, m.Multiple, opNack, m.Requeue)
	case *codec.BasicReject:
		return ch.settle(m.Key(), m.DeliveryTag, false, opNack, m.Requeue)
	case *codec.ChannelClose:
		ch.finish()
		return ch.c.out.sendMethod(true, ch.id, &codec.ChannelCloseOk{})
	case *codec.ChannelCloseOk:
		return nil // a close-ok for a close never sent: ignore, as RabbitMQ does
	case *codec.ChannelOpen:
		return protoErr(codec.ReplyChannelError, m.Key(), "second 'channel.open' seen")
	case *codec.ChannelFlow:
		return ch.flow(m.Active)
	case *codec.AccessRequest:
		return ch.reply(&codec.AccessRequestOk{Ticket: 1})
	}
	return ch.dispatchClass(m)
}

// dispatchClass handles the exchange, queue, basic, confirm and tx methods
// a client may send; anything else is 503 COMMAND_INVALID.
func (ch *channel) dispatchClass(m codec.Method) error {
	switch m := m.(type) {
	case *codec.ExchangeDeclare:
		return ch.exchangeDeclare(m)
	case *codec.ExchangeDelete:
		return ch.exchangeDelete(m)
	case *codec.ExchangeBind:
		return ch.exchangeBind(m.Source, m.Destination, m.RoutingKey, m.Arguments, m.NoWait, true)
	case *codec.ExchangeUnbind:
		return ch.exchangeBind(m.Source, m.Destination, m.RoutingKey, m.Arguments, m.NoWait, false)
	case *codec.QueueDeclare:
		return ch.queueDeclare(m)
	case *codec.QueueBind:
		return ch.queueBind(m.Queue, m.Exchange, m.RoutingKey, m.Arguments, m.NoWait, true)
	case *codec.QueueUnbind:
		return ch.queueBind(m.Queue, m.Exchange, m.RoutingKey, m.Arguments, false, false)
	case *codec.QueuePurge:
		return ch.queuePurge(m)
	case *codec.QueueDelete:
		return ch.queueDelete(m)
	case *codec.BasicQos:
		return ch.qos(m)
	case *codec.BasicConsume:
		return ch.consume(m)
	case *codec.BasicCancel:
		return ch.cancel(m.ConsumerTag, m.NoWait)
	case *codec.BasicGet:
		return ch.get(m)
	case *codec.BasicRecover:
		return ch.recover(m.Requeue, true)
	case *codec.BasicRecoverAsync:
		return ch.recover(m.Requeue, false)
	case *codec.ConfirmSelect:
		return ch.confirmSelect(m.NoWait)
	case *codec.TxSelect:
		return ch.txSelect()
	case *codec.TxCommit:
		return ch.txCommit()
	case *codec.TxRollback:
		return ch.txRollback()
	}
	return protoErr(codec.ReplyCommandInvalid, m.Key(), "unimplemented method %s", m.Key())
}

// reply sends a synchronous method's reply (the reader waits for writer
// space: backpressure).
func (ch *channel) reply(m codec.Method) error {
	if err := ch.c.out.sendMethod(true, ch.id, m); err != nil && err != errConnClosed {
		return asReply(err, 0)
	}
	return nil
}

// flow handles channel.flow from the client: active=false stops
// deliveries to the channel's consumers (they wait, held, up to their
// prefetch), active=true resumes them.
func (ch *channel) flow(active bool) error {
	ch.mu.Lock()
	ch.flowActive = active
	var ops []settleOp
	if active {
		ops = ch.drainHeldLocked()
	}
	ch.mu.Unlock()
	runSettles(ch.ctx(), ops)
	return ch.reply(&codec.ChannelFlowOk{Active: active})
}

// release ends the channel: consumers are cancelled in the broker (their
// deliveries return to their queues when the session ends or here),
// held deliveries are returned, the reply-to consumer is unregistered.
// It runs on the reader goroutine, for channel.close or the connection's
// end.
func (ch *channel) release() {
	ch.mu.Lock()
	if ch.closed {
		ch.mu.Unlock()
		return
	}
	ch.closed, ch.closing = true, true
	consumers := make([]*consumer, 0, len(ch.consumers))
	for _, cs := range ch.consumers {
		cs.cancelled = true
		consumers = append(consumers, cs)
		ch.c.releaseBrokerTag(cs)
	}
	clear(ch.consumers)
	ops := ch.returnHeldLocked(nil)
	if ch.tx != nil {
		// Acknowledgements of a transaction never committed are undone, so
		// that their deliveries return to their queues with the rest.
		ch.rollbackLocked()
	}
	ops = append(ops, ch.unacked.takeAll(opNack, true)...)
	ch.mu.Unlock()
	runSettles(ch.ctx(), ops)
	for _, cs := range consumers {
		if cs.replyToken != "" {
			ch.c.srv.replyTo.drop(cs.replyToken)
			continue
		}
		if cs.sub != nil {
			if err := cs.sub.Cancel(ch.ctx()); err != nil && base.CodeOf(err) != base.CodeNotFound {
				ch.c.log.Debug("cancelling a consumer", "tag", cs.tag, "err", err)
			}
		}
	}
}

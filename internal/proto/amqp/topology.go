package amqp

import (
	"strings"

	"github.com/ferry-mq/ferry/internal/proto/amqp/codec"
)

// exchangeTypes are the exchange types Ferry routes with.
var exchangeTypes = map[string]bool{"direct": true, "fanout": true, "topic": true, "headers": true}

// expandQueue applies the spec's shortcut: an empty queue name means the
// queue most recently declared on the channel.
func (ch *channel) expandQueue(name string, key codec.MethodKey) (string, error) {
	if name != "" {
		return name, nil
	}
	if ch.lastQueue == "" {
		return "", protoErr(codec.ReplyNotFound, key, "no previously declared queue")
	}
	return ch.lastQueue, nil
}

func (ch *channel) exchangeDeclare(m *codec.ExchangeDeclare) error {
	if !m.Passive && !exchangeTypes[m.Type] {
		// RabbitMQ answers an unknown type (a plugin's it lacks) this way.
		return protoErr(codec.ReplyCommandInvalid, m.Key(), "unknown exchange type '%s'", m.Type)
	}
	if !m.Passive {
		if err := ch.c.session.Authorize(ActionConfigure, EntityExchange, m.Exchange); err != nil {
			return err
		}
	}
	spec := ExchangeSpec{Name: m.Exchange, Type: m.Type, Durable: m.Durable, AutoDelete: m.AutoDelete,
		Internal: m.Internal, Passive: m.Passive, Arguments: m.Arguments}
	if err := ch.c.session.DeclareExchange(ch.ctx(), spec); err != nil {
		return err
	}
	if m.NoWait {
		return nil
	}
	return ch.reply(&codec.ExchangeDeclareOk{})
}

func (ch *channel) exchangeDelete(m *codec.ExchangeDelete) error {
	if err := ch.c.session.Authorize(ActionConfigure, EntityExchange, m.Exchange); err != nil {
		return err
	}
	if err := ch.c.session.DeleteExchange(ch.ctx(), m.Exchange, m.IfUnused); err != nil {
		return err
	}
	if m.NoWait {
		return nil
	}
	return ch.reply(&codec.ExchangeDeleteOk{})
}

// exchangeBind handles exchange.bind and exchange.unbind: write permission
// on the destination, read on the source, as RabbitMQ checks them.
func (ch *channel) exchangeBind(src, dst, key string, args codec.Table, noWait, bind bool) error {
	s := ch.c.session
	if err := s.Authorize(ActionWrite, EntityExchange, dst); err != nil {
		return err
	}
	if err := s.Authorize(ActionRead, EntityExchange, src); err != nil {
		return err
	}
	spec := BindingSpec{Source: src, Destination: dst, DestinationKind: EntityExchange, RoutingKey: key, Arguments: args}
	var err error
	var ok codec.Method = &codec.ExchangeBindOk{}
	if bind {
		err = s.Bind(ch.ctx(), spec)
	} else {
		err = s.Unbind(ch.ctx(), spec)
		ok = &codec.ExchangeUnbindOk{}
	}
	if err != nil || noWait {
		return err
	}
	return ch.reply(ok)
}

func (ch *channel) queueDeclare(m *codec.QueueDeclare) error {
	name := m.Queue
	if m.Passive && name == "" {
		var err error
		if name, err = ch.expandQueue(name, m.Key()); err != nil {
			return err
		}
	}
	if !m.Passive && name != "" {
		if err := ch.c.session.Authorize(ActionConfigure, EntityQueue, name); err != nil {
			return err
		}
	}
	if name == replyToQueue || strings.HasPrefix(name, replyToPrefix) {
		// The pseudo-queue of direct reply-to "exists" for a passive
		// declare, as in RabbitMQ; it cannot be created.
		if m.Passive {
			return ch.replyDeclare(m, QueueInfo{Name: name})
		}
		return protoErr(codec.ReplyAccessRefused, m.Key(), "queue name '%s' contains reserved prefix 'amq.*'", name)
	}
	info, err := ch.c.session.DeclareQueue(ch.ctx(), QueueSpec{Name: name, Durable: m.Durable,
		Exclusive: m.Exclusive, AutoDelete: m.AutoDelete, Passive: m.Passive, Arguments: m.Arguments})
	if err != nil {
		return err
	}
	ch.lastQueue = info.Name
	return ch.replyDeclare(m, info)
}

func (ch *channel) replyDeclare(m *codec.QueueDeclare, info QueueInfo) error {
	if m.NoWait {
		return nil
	}
	return ch.reply(&codec.QueueDeclareOk{Queue: info.Name, MessageCount: clamp32(info.Messages),
		ConsumerCount: clamp32(info.Consumers)})
}

func clamp32(n uint64) uint32 {
	if n > 1<<32-1 {
		return 1<<32 - 1
	}
	return uint32(n)
}

// queueBind handles queue.bind and queue.unbind, with the spec's shortcuts
// (an empty queue name is the last declared queue; with it, an empty
// routing key is that queue's name).
func (ch *channel) queueBind(queue, exchange, key string, args codec.Table, noWait, bind bool) error {
	mk := codec.MethodQueueBind
	if !bind {
		mk = codec.MethodQueueUnbind
	}
	if queue == "" && key == "" {
		key = ch.lastQueue
	}
	queue, err := ch.expandQueue(queue, mk)
	if err != nil {
		return err
	}
	s := ch.c.session
	if err := s.Authorize(ActionWrite, EntityQueue, queue); err != nil {
		return err
	}
	if err := s.Authorize(ActionRead, EntityExchange, exchange); err != nil {
		return err
	}
	spec := BindingSpec{Source: exchange, Destination: queue, DestinationKind: EntityQueue, RoutingKey: key, Arguments: args}
	var ok codec.Method = &codec.QueueBindOk{}
	if bind {
		err = s.Bind(ch.ctx(), spec)
	} else {
		err = s.Unbind(ch.ctx(), spec)
		ok = &codec.QueueUnbindOk{}
	}
	if err != nil || noWait {
		return err
	}
	return ch.reply(ok)
}

func (ch *channel) queuePurge(m *codec.QueuePurge) error {
	queue, err := ch.expandQueue(m.Queue, m.Key())
	if err != nil {
		return err
	}
	if err := ch.c.session.Authorize(ActionRead, EntityQueue, queue); err != nil {
		return err
	}
	n, err := ch.c.session.PurgeQueue(ch.ctx(), queue)
	if err != nil || m.NoWait {
		return err
	}
	return ch.reply(&codec.QueuePurgeOk{MessageCount: clamp32(n)})
}

func (ch *channel) queueDelete(m *codec.QueueDelete) error {
	queue, err := ch.expandQueue(m.Queue, m.Key())
	if err != nil {
		return err
	}
	if err := ch.c.session.Authorize(ActionConfigure, EntityQueue, queue); err != nil {
		return err
	}
	n, err := ch.c.session.DeleteQueue(ch.ctx(), queue, m.IfUnused, m.IfEmpty)
	if err != nil || m.NoWait {
		return err
	}
	return ch.reply(&codec.QueueDeleteOk{MessageCount: clamp32(n)})
}

package amqp

import (
	"crypto/rand"
	"encoding/base64"
	"strings"
	"sync"

	"github.com/ferry-mq/ferry/internal/proto/amqp/codec"
)

// Direct reply-to (RabbitMQ's amq.rabbitmq.reply-to): a requester consumes
// from the pseudo-queue replyToQueue with no-ack and publishes requests
// with reply_to set to it; the server rewrites reply_to to
// replyToPrefix+token, and a responder's publish to the default exchange
// with that routing key goes straight to the requester's consumer,
// without a queue. The registry is per server (node): both ends must be
// connected to the same node.
const (
	replyToQueue  = "amq.rabbitmq.reply-to"
	replyToPrefix = "amq.rabbitmq.reply-to."
)

func isReplyToAddress(key string) bool { return strings.HasPrefix(key, replyToPrefix) }

// replyToRegistry maps tokens to the consumers they reach.
type replyToRegistry struct {
	mu        sync.Mutex
	consumers map[string]*consumer // guarded by mu
}

func newReplyToRegistry() *replyToRegistry {
	return &replyToRegistry{consumers: map[string]*consumer{}}
}

func (r *replyToRegistry) add(cs *consumer) string {
	var b [18]byte
	_, _ = rand.Read(b[:])
	token := base64.RawURLEncoding.EncodeToString(b[:])
	r.mu.Lock()
	r.consumers[token] = cs
	r.mu.Unlock()
	return token
}

func (r *replyToRegistry) lookup(token string) *consumer {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.consumers[token]
}

func (r *replyToRegistry) drop(token string) {
	r.mu.Lock()
	delete(r.consumers, token)
	r.mu.Unlock()
}

// dropConn forgets every consumer of c's channels.
func (r *replyToRegistry) dropConn(c *conn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for token, cs := range r.consumers {
		if cs.ch.c == c {
			delete(r.consumers, token)
		}
	}
}

// consumeReplyTo starts the channel's direct reply-to consumer.
func (ch *channel) consumeReplyTo(m *codec.BasicConsume, tag string) error {
	if !m.NoAck {
		return protoErr(codec.ReplyPreconditionFailed, m.Key(), "reply consumer cannot acknowledge")
	}
	if _, ok := ch.replyToToken(); ok {
		return protoErr(codec.ReplyPreconditionFailed, m.Key(), "reply consumer already set")
	}
	cs := &consumer{ch: ch, tag: tag, queue: replyToQueue, noAck: true}
	cs.replyToken = ch.c.srv.replyTo.add(cs)
	ch.mu.Lock()
	ch.consumers[tag] = cs
	ch.mu.Unlock()
	return ch.startConsumer(cs, nil, m.NoWait)
}

// replyToToken returns the token of the channel's reply-to consumer.
func (ch *channel) replyToToken() (string, bool) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	for _, cs := range ch.consumers {
		if cs.replyToken != "" {
			return cs.replyToken, true
		}
	}
	return "", false
}

// publishReplyTo delivers a reply straight to the requester's consumer.
// An unknown token is an unroutable message (returned when mandatory);
// in confirm mode the publish is confirmed at once: nothing is stored.
func (ch *channel) publishReplyTo(m Message, mandatory bool) error {
	cs := ch.c.srv.replyTo.lookup(strings.TrimPrefix(m.RoutingKey, replyToPrefix))
	if cs != nil {
		d := Delivery{Exchange: m.Exchange, RoutingKey: m.RoutingKey, Properties: m.Properties,
			RawProperties: m.RawProperties, Body: m.Body}
		cs.deliver(d)
	}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if cs == nil && mandatory {
		ch.sendReturnLocked(&m, codec.ReplyNoRoute, "NO_ROUTE")
	}
	if ch.confirming {
		ch.confirms.settle(ch.confirms.assign(), true)
		ch.confirms.emit(ch.c.out, ch.id)
	}
	return nil
}

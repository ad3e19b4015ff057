package amqp

import (
	"context"
	"net/netip"
	"slices"
	"time"

	"github.com/ferry-mq/ferry/internal/broker"
	"github.com/ferry-mq/ferry/internal/proto/amqp/codec"
)

// NewBrokerBackend adapts the broker to the front end's Backend: it maps
// the AMQP property list and field tables onto broker.Message and
// broker.Headers and back, and little else.
func NewBrokerBackend(b *broker.Broker) Backend { return brokerBackend{b} }

type brokerBackend struct{ b *broker.Broker }

func (bb brokerBackend) Authenticate(user, password string, peer netip.Addr) (Principal, error) {
	p, err := bb.b.Authenticate(user, password, peer)
	if err != nil {
		return Principal{}, err
	}
	return Principal{User: p.User, Tags: p.Tags}, nil
}

func (bb brokerBackend) OpenConnection(info ConnInfo, p Principal, kill func(string)) (Session, error) {
	c, err := bb.b.OpenConnection(broker.ConnInfo{ID: info.ID, Protocol: info.Protocol, Peer: info.Peer,
		User: info.User, Tenant: info.Tenant, Name: info.Name},
		broker.Principal{User: p.User, Tenant: info.Tenant, Tags: p.Tags}, kill)
	if err != nil {
		return nil, err
	}
	return &brokerSession{c: c}, nil
}

func (bb brokerBackend) FlowState() (bool, string, <-chan struct{}) {
	state, changed := bb.b.Blocked()
	blocked, reason := state()
	return blocked, reason, changed
}

// brokerSession adapts *broker.Conn.
type brokerSession struct{ c *broker.Conn }

func entityKind(k EntityKind) broker.EntityKind {
	if k == EntityExchange {
		return broker.EntityExchange
	}
	return broker.EntityQueue
}

func (s *brokerSession) Authorize(action Action, kind EntityKind, name string) error {
	a := broker.ActionConfigure
	switch action {
	case ActionWrite:
		a = broker.ActionWrite
	case ActionRead:
		a = broker.ActionRead
	}
	return s.c.Authorize(a, entityKind(kind), name)
}

func (s *brokerSession) DeclareExchange(ctx context.Context, e ExchangeSpec) error {
	return s.c.DeclareExchange(ctx, broker.ExchangeSpec{Name: e.Name, Type: e.Type, Durable: e.Durable,
		AutoDelete: e.AutoDelete, Internal: e.Internal, Arguments: toHeaders(e.Arguments, 1), Passive: e.Passive})
}

func (s *brokerSession) DeleteExchange(ctx context.Context, name string, ifUnused bool) error {
	return s.c.DeleteExchange(ctx, name, ifUnused)
}

func (s *brokerSession) DeclareQueue(ctx context.Context, q QueueSpec) (QueueInfo, error) {
	info, err := s.c.DeclareQueue(ctx, broker.QueueSpec{Name: q.Name, Durable: q.Durable, Exclusive: q.Exclusive,
		AutoDelete: q.AutoDelete, Passive: q.Passive, Arguments: toHeaders(q.Arguments, 1)})
	if err != nil {
		return QueueInfo{}, err
	}
	return QueueInfo{Name: info.Name, IsStream: info.IsStream, Messages: info.Messages, Consumers: info.Consumers}, nil
}

func (s *brokerSession) DeleteQueue(ctx context.Context, name string, ifUnused, ifEmpty bool) (uint64, error) {
	return s.c.DeleteQueue(ctx, name, ifUnused, ifEmpty)
}

func (s *brokerSession) PurgeQueue(ctx context.Context, name string) (uint64, error) {
	return s.c.PurgeQueue(ctx, name)
}

func bindingSpec(b BindingSpec) broker.BindingSpec {
	return broker.BindingSpec{Source: b.Source, Destination: b.Destination, DestinationKind: entityKind(b.DestinationKind),
		RoutingKey: b.RoutingKey, Arguments: toHeaders(b.Arguments, 1)}
}

func (s *brokerSession) Bind(ctx context.Context, b BindingSpec) error {
	return s.c.Bind(ctx, bindingSpec(b))
}

func (s *brokerSession) Unbind(ctx context.Context, b BindingSpec) error {
	return s.c.Unbind(ctx, bindingSpec(b))
}

// The recycled slices of brokerSession.PublishAsync.
var (
	brokerMessages = newCallPool[broker.Message]()
	brokerResults  = newCallPool[PublishResult]()
)

// PublishAsync maps msgs into slices it recycles once done has returned:
// the broker keeps nothing of a call past its callback, and done (the
// front end's published) reads the results without keeping them.
func (s *brokerSession) PublishAsync(exchange string, msgs []Message, opts PublishOptions, done func([]PublishResult, error)) {
	bm := brokerMessages.Make(len(msgs))
	for i := range msgs {
		toBrokerMessage(&msgs[i], &(*bm)[i])
	}
	s.c.PublishAsync(exchange, *bm, broker.PublishOptions{Mandatory: opts.Mandatory}, func(res []broker.PublishResult, err error) {
		out := brokerResults.Make(len(res))
		for i, r := range res {
			(*out)[i] = PublishResult{Unroutable: r.Unroutable, Rejected: r.Rejected, Duplicate: r.Duplicate, Err: r.Err}
		}
		done(*out, err)
		brokerResults.Put(out)
		brokerMessages.Put(bm)
	})
}

func (s *brokerSession) Subscribe(ctx context.Context, o SubscribeOptions, deliver func(Delivery), cancelled func(error)) (Subscription, error) {
	bo := broker.SubscribeOptions{Queue: o.Queue, Tag: o.Tag, PrefetchCount: o.PrefetchCount, Priority: o.Priority,
		Exclusive: o.Exclusive, NoAck: o.NoAck, AckTimeout: o.AckTimeout}
	if so := o.StreamOffset; so != nil {
		bo.StreamOffset = streamStart(so)
	}
	// RabbitMQ marks every delivery from a stream with its offset
	// (x-stream-offset), which clients use to resume.
	info, err := s.c.DeclareQueue(ctx, broker.QueueSpec{Name: o.Queue, Passive: true})
	if err != nil {
		return nil, err
	}
	isStream := info.IsStream
	sub, err := s.c.Subscribe(ctx, bo, func(d broker.Delivery) {
		out := fromBrokerDelivery(&d)
		if isStream {
			withHeader(&out, "x-stream-offset", d.StreamOffset)
		}
		deliver(out)
	}, cancelled)
	if err != nil {
		return nil, err
	}
	return brokerSub{sub, isStream}, nil
}

// withHeader adds a header to a delivery (x-stream-offset,
// x-delivery-count), decoding the raw properties to do so (the raw list
// cannot be edited).
func withHeader(d *Delivery, key string, v int64) {
	if d.RawProperties != nil {
		var p codec.BasicProperties
		if err := codec.DecodeBasicProperties(d.RawProperties, &p); err == nil {
			d.Properties = p
		}
		d.RawProperties = nil
	}
	h := codec.Table{}
	for k, v := range d.Properties.Headers {
		h[k] = v
	}
	h[key] = v
	d.Properties.SetHeaders(h)
}

// streamStart maps x-stream-offset; an interval is a timestamp (the front
// end measured it from now when the consumer started, as RabbitMQ does).
func streamStart(so *StreamOffset) *broker.StreamStart {
	switch so.Kind {
	case StreamFirst:
		return &broker.StreamStart{Kind: broker.StreamFirst}
	case StreamLast:
		return &broker.StreamStart{Kind: broker.StreamLast}
	case StreamOffsetAt:
		return &broker.StreamStart{Kind: broker.StreamOffset, Offset: so.Offset}
	case StreamTimestamp, StreamInterval:
		return &broker.StreamStart{Kind: broker.StreamTimestamp, Timestamp: so.Timestamp}
	}
	return &broker.StreamStart{Kind: broker.StreamNext}
}

type brokerSub struct {
	s      *broker.Subscription
	stream bool
}

func (b brokerSub) Cancel(ctx context.Context) error { return b.s.Cancel(ctx) }

// Ack and Nack ignore the broker's "unknown delivery tag": the front end
// checked the tag against its own bookkeeping before settling.
func (b brokerSub) Ack(id uint64, multiple bool) { _ = b.s.Ack(id, multiple) }

func (b brokerSub) Nack(id uint64, multiple, requeue bool) { _ = b.s.Nack(id, multiple, requeue, "") }

func (b brokerSub) Stream() bool { return b.stream }

func (b brokerSub) SetPrefetch(ctx context.Context, n uint32) error {
	return b.s.SetPrefetch(ctx, n, 0)
}

func (s *brokerSession) Get(ctx context.Context, queue string, autoAck bool) (Delivery, Settler, bool, error) {
	d, h, ok, err := s.c.Get(ctx, queue, autoAck)
	if err != nil || !ok {
		return Delivery{}, nil, ok, err
	}
	out := fromBrokerDelivery(&d)
	if h == nil {
		return out, nil, true, nil
	}
	return out, brokerGet{h}, true, nil
}

type brokerGet struct{ h *broker.GetHandle }

// Ack and Nack settle a basic.get delivery. A failure (the connection
// closing meanwhile) leaves it to the session's close, which returns it.
func (g brokerGet) Ack(ctx context.Context)                { _ = g.h.Ack(ctx) }
func (g brokerGet) Nack(ctx context.Context, requeue bool) { _ = g.h.Nack(ctx, requeue, "") }

func (s *brokerSession) Close(ctx context.Context) error { return s.c.Close(ctx) }

// toBrokerMessage maps a published message. The raw property list rides
// along for AMQP consumers; the typed fields carry what routing, queues
// and other protocols need.
func toBrokerMessage(m *Message, out *broker.Message) {
	p := &m.Properties
	*out = broker.Message{Exchange: m.Exchange, RoutingKey: m.RoutingKey, Body: m.Body, RawAMQPProperties: m.RawProperties,
		ContentType: p.ContentType, ContentEncoding: p.ContentEncoding, DeliveryMode: p.DeliveryMode,
		CorrelationID: p.CorrelationID, ReplyTo: p.ReplyTo, Expiration: p.Expiration, MessageID: p.MessageID,
		Type: p.Type, UserID: p.UserID, AppID: p.AppID}
	if p.Flags&codec.BasicFlagHeaders != 0 {
		out.Headers = toHeaders(p.Headers, 1)
	}
	if p.Flags&codec.BasicFlagPriority != 0 {
		prio := p.Priority
		out.Priority = &prio
	}
	if p.Flags&codec.BasicFlagTimestamp != 0 {
		out.Timestamp = p.Timestamp
	}
}

// fromBrokerDelivery maps a delivery: the raw property list when the
// message was published over AMQP and not changed since, the typed
// fields otherwise.
func fromBrokerDelivery(d *broker.Delivery) Delivery {
	m := &d.Message
	out := Delivery{ID: d.DeliveryID, Redelivered: d.Redelivered, Exchange: m.Exchange, RoutingKey: m.RoutingKey,
		RawProperties: m.RawAMQPProperties, Body: m.Body, MessageCount: d.MessageCount}
	if _, dead := m.Headers.Get("x-death"); dead {
		// Dead-lettering added x-death to the typed headers but kept the
		// raw list as published: the typed fields are the truth.
		out.RawProperties = nil
	}
	if out.RawProperties == nil {
		fromBrokerProperties(m, &out.Properties)
	}
	if d.DeliveryCount > 0 {
		// RabbitMQ's quorum queues count a message's returned deliveries
		// in this header, which consumers read to spot a poison message.
		withHeader(&out, "x-delivery-count", int64(d.DeliveryCount))
	}
	return out
}

func fromBrokerProperties(m *broker.Message, p *codec.BasicProperties) {
	set := func(v string, f func(string)) {
		if v != "" {
			f(v)
		}
	}
	set(m.ContentType, p.SetContentType)
	set(m.ContentEncoding, p.SetContentEncoding)
	if len(m.Headers) > 0 {
		p.SetHeaders(fromHeaders(m.Headers))
	}
	if m.DeliveryMode != 0 {
		p.SetDeliveryMode(m.DeliveryMode)
	}
	if m.Priority != nil {
		p.SetPriority(*m.Priority)
	}
	set(m.CorrelationID, p.SetCorrelationID)
	set(m.ReplyTo, p.SetReplyTo)
	set(m.Expiration, p.SetExpiration)
	set(m.MessageID, p.SetMessageID)
	if !m.Timestamp.IsZero() {
		p.SetTimestamp(m.Timestamp)
	}
	set(m.Type, p.SetType)
	set(m.UserID, p.SetUserID)
	set(m.AppID, p.SetAppID)
}

// toHeaders maps a field table to the broker's ordered headers, keys
// sorted so equal tables map equally. depth is the table's nesting level;
// the codec already refused tables deeper than AMQPTableDepthMax.
func toHeaders(t codec.Table, depth int) broker.Headers {
	if len(t) == 0 {
		return nil
	}
	keys := make([]string, 0, len(t))
	for k := range t {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make(broker.Headers, 0, len(keys))
	for _, k := range keys {
		out = append(out, broker.Header{Key: k, Value: toValue(t[k], depth)})
	}
	return out
}

func toValue(v any, depth int) broker.Value {
	switch v := v.(type) {
	case string:
		return broker.StringValue(v)
	case []byte:
		return broker.BytesValue(v)
	case bool:
		return broker.BoolValue(v)
	case int8:
		return broker.IntValue(broker.KindInt8, int64(v))
	case uint8:
		return broker.IntValue(broker.KindUint8, int64(v))
	case int16:
		return broker.IntValue(broker.KindInt16, int64(v))
	case uint16:
		return broker.IntValue(broker.KindUint16, int64(v))
	case int32:
		return broker.IntValue(broker.KindInt32, int64(v))
	case uint32:
		return broker.IntValue(broker.KindUint32, int64(v))
	case int64:
		return broker.IntValue(broker.KindInt64, v)
	case float32:
		return broker.Float32Value(v)
	case float64:
		return broker.Float64Value(v)
	case codec.Decimal:
		return broker.DecimalValue(v.Scale, v.Value)
	case time.Time:
		return broker.TimestampValue(uint64(v.Unix()))
	case codec.Table:
		return broker.TableValue(toHeaders(v, depth+1))
	case []any:
		a := make([]broker.Value, len(v))
		for i, x := range v {
			a[i] = toValue(x, depth+1)
		}
		return broker.ArrayValue(a)
	}
	return broker.VoidValue()
}

func fromHeaders(h broker.Headers) codec.Table {
	t := make(codec.Table, len(h))
	for _, f := range h {
		t[f.Key] = fromValue(f.Value)
	}
	return t
}

func fromValue(v broker.Value) any {
	switch v.Kind() {
	case broker.KindString:
		return v.Text()
	case broker.KindBytes:
		return []byte(v.Text())
	case broker.KindBool:
		return v.Bool()
	case broker.KindInt8:
		return int8(v.Int())
	case broker.KindUint8:
		return uint8(v.Int())
	case broker.KindInt16:
		return int16(v.Int())
	case broker.KindUint16:
		return uint16(v.Int())
	case broker.KindInt32:
		return int32(v.Int())
	case broker.KindUint32:
		return uint32(v.Int())
	case broker.KindInt64:
		return v.Int()
	case broker.KindFloat32:
		return float32(v.Float())
	case broker.KindFloat64:
		return v.Float()
	case broker.KindDecimal:
		scale, val := v.Decimal()
		return codec.Decimal{Scale: scale, Value: val}
	case broker.KindTimestamp:
		return time.Unix(v.Int(), 0).UTC()
	case broker.KindTable:
		return fromHeaders(v.Table())
	case broker.KindArray:
		a := make([]any, len(v.Array()))
		for i, x := range v.Array() {
			a[i] = fromValue(x)
		}
		return a
	}
	return nil
}

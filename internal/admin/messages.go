package admin

import (
	"encoding/base64"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/broker"
)

// MessageIn is one message to publish.
type MessageIn struct {
	RoutingKey string `json:"routing_key,omitempty"`
	// Body is the payload, as text (BodyEncoding "utf8", the default) or
	// base64 ("base64").
	Body         string         `json:"body"`
	BodyEncoding string         `json:"body_encoding,omitempty" enum:"utf8,base64"`
	Key          string         `json:"key,omitempty"` // the stream partitioning key
	Headers      map[string]any `json:"headers,omitempty"`
	Properties   Properties     `json:"properties,omitzero"`
}

// Properties are the AMQP basic properties and Ferry's own.
type Properties struct {
	ContentType     string `json:"content_type,omitempty"`
	ContentEncoding string `json:"content_encoding,omitempty"`
	DeliveryMode    uint8  `json:"delivery_mode,omitempty"`
	Priority        *uint8 `json:"priority,omitempty"`
	CorrelationID   string `json:"correlation_id,omitempty"`
	ReplyTo         string `json:"reply_to,omitempty"`
	Expiration      string `json:"expiration,omitempty"` // per-message TTL in ms, a decimal string as AMQP's
	MessageID       string `json:"message_id,omitempty"`
	Timestamp       int64  `json:"timestamp,omitempty"` // seconds since the Unix epoch
	Type            string `json:"type,omitempty"`
	UserID          string `json:"user_id,omitempty"`
	AppID           string `json:"app_id,omitempty"`
	DelayMs         int64  `json:"delay_ms,omitempty"`
	DedupeID        string `json:"dedupe_id,omitempty"`
	OrderingKey     string `json:"ordering_key,omitempty"`
}

// PublishRequest publishes messages to one exchange.
type PublishRequest struct {
	Messages []MessageIn `json:"messages"`
	// Mandatory reports messages routed nowhere (unroutable) instead of
	// dropping them.
	Mandatory bool `json:"mandatory,omitempty"`
}

// PublishOutcome is one message's outcome, in request order. Confirmed
// means durable in every destination it was routed to (or routed nowhere
// without mandatory).
type PublishOutcome struct {
	Confirmed  bool   `json:"confirmed"`
	Unroutable bool   `json:"unroutable,omitempty"`
	Rejected   bool   `json:"rejected,omitempty"`
	Duplicate  bool   `json:"duplicate,omitempty"`
	Error      string `json:"error,omitempty"`
	Code       string `json:"code,omitempty"`
}

// PublishResponse answers a publish.
type PublishResponse struct {
	Confirmed int              `json:"confirmed"`
	Failed    int              `json:"failed"`
	Results   []PublishOutcome `json:"results"`
}

// MessageOut is one delivered message.
type MessageOut struct {
	// DeliveryToken acknowledges the message (manual ack mode only).
	DeliveryToken string         `json:"delivery_token,omitempty"`
	Exchange      string         `json:"exchange"`
	RoutingKey    string         `json:"routing_key"`
	Redelivered   bool           `json:"redelivered"`
	DeliveryCount uint32         `json:"delivery_count"`
	Body          string         `json:"body"`
	BodyEncoding  string         `json:"body_encoding"` // utf8 or base64
	Key           string         `json:"key,omitempty"`
	Headers       map[string]any `json:"headers,omitempty"`
	Properties    Properties     `json:"properties,omitzero"`
	// Partition and Offset locate a stream message.
	Partition *int32 `json:"partition,omitempty"`
	Offset    *int64 `json:"offset,omitempty"`
	// PublishedAt is when the message entered the log (RFC 3339).
	PublishedAt string `json:"published_at,omitempty"`
	// MessagesLeft is, for a get, the ready messages left in the queue.
	MessagesLeft *uint32 `json:"messages_left,omitempty"`
}

// GetRequest fetches up to Count messages from a queue.
type GetRequest struct {
	Count int `json:"count,omitempty"` // default 1, at most AdminGetMessagesMax
	// AckMode "auto" (the default) settles each message as it is
	// fetched; "manual" returns delivery tokens to acknowledge with ack.
	AckMode string `json:"ack_mode,omitempty" enum:"auto,manual"`
	// Encoding "auto" returns UTF-8 bodies as text and others as base64;
	// "base64" always base64.
	Encoding string `json:"encoding,omitempty" enum:"auto,base64"`
}

// GetResponse answers a get: fewer messages than asked when the queue ran
// empty.
type GetResponse struct {
	Messages []MessageOut `json:"messages"`
}

// AckRequest settles deliveries fetched with ack_mode manual.
type AckRequest struct {
	DeliveryTokens []string `json:"delivery_tokens"`
	// Nack returns the messages instead of acknowledging them: requeued
	// when Requeue, else dead-lettered or dropped.
	Nack    bool `json:"nack,omitempty"`
	Requeue bool `json:"requeue,omitempty"`
}

// AckResponse says how many deliveries were settled.
type AckResponse struct {
	Settled int `json:"settled"`
}

// messagesFromJSON converts a publish request's messages. Every bound is
// checked before anything is built.
func messagesFromJSON(in []MessageIn) ([]broker.Message, error) {
	if len(in) == 0 {
		return nil, invalid("no messages: send {\"messages\": [{\"body\": \"...\"}]}")
	}
	if len(in) > base.AdminPublishMessagesMax {
		return nil, invalid("%d messages in one request, at most %d (AdminPublishMessagesMax)", len(in), base.AdminPublishMessagesMax)
	}
	out := make([]broker.Message, len(in))
	for i := range in {
		m, err := messageFromJSON(&in[i])
		if err != nil {
			return nil, invalid("message %d: %v", i, err)
		}
		out[i] = m
	}
	return out, nil
}

func messageFromJSON(in *MessageIn) (broker.Message, error) {
	var body []byte
	switch in.BodyEncoding {
	case "", "utf8":
		body = []byte(in.Body)
	case "base64":
		b, err := base64.StdEncoding.DecodeString(in.Body)
		if err != nil {
			return broker.Message{}, invalid("body is not base64: %v", err)
		}
		body = b
	default:
		return broker.Message{}, invalid("body_encoding %q, want utf8 or base64", in.BodyEncoding)
	}
	h, err := headersFromJSON(in.Headers, 0)
	if err != nil {
		return broker.Message{}, err
	}
	p := in.Properties
	if p.DelayMs < 0 {
		return broker.Message{}, invalid("delay_ms %d is negative", p.DelayMs)
	}
	if p.Expiration != "" {
		if _, err := strconv.ParseUint(p.Expiration, 10, 32); err != nil {
			return broker.Message{}, invalid("expiration %q is not a TTL in milliseconds", p.Expiration)
		}
	}
	m := broker.Message{
		RoutingKey: in.RoutingKey, Body: body, Headers: h,
		ContentType: p.ContentType, ContentEncoding: p.ContentEncoding, DeliveryMode: p.DeliveryMode,
		Priority: p.Priority, CorrelationID: p.CorrelationID, ReplyTo: p.ReplyTo, Expiration: p.Expiration,
		MessageID: p.MessageID, Type: p.Type, UserID: p.UserID, AppID: p.AppID,
		Delay: time.Duration(p.DelayMs) * time.Millisecond, DedupeID: p.DedupeID, OrderingKey: p.OrderingKey,
	}
	if in.Key != "" {
		m.Key = []byte(in.Key)
	}
	if p.Timestamp != 0 {
		m.Timestamp = time.Unix(p.Timestamp, 0)
	}
	if m.DeliveryMode == 0 {
		m.DeliveryMode = 2 // persistent: Ferry is durable regardless; say so to AMQP consumers
	}
	return m, nil
}

// messageToJSON converts a delivery; base64Always forces base64 bodies.
func messageToJSON(d *broker.Delivery, base64Always bool) MessageOut {
	m := &d.Message
	out := MessageOut{Exchange: m.Exchange, RoutingKey: m.RoutingKey, Redelivered: d.Redelivered,
		DeliveryCount: d.DeliveryCount, Headers: headersToJSON(m.Headers), Key: string(m.Key)}
	if !base64Always && utf8.Valid(m.Body) {
		out.Body, out.BodyEncoding = string(m.Body), "utf8"
	} else {
		out.Body, out.BodyEncoding = base64.StdEncoding.EncodeToString(m.Body), "base64"
	}
	out.Properties = Properties{ContentType: m.ContentType, ContentEncoding: m.ContentEncoding, DeliveryMode: m.DeliveryMode,
		Priority: m.Priority, CorrelationID: m.CorrelationID, ReplyTo: m.ReplyTo, Expiration: m.Expiration,
		MessageID: m.MessageID, Type: m.Type, UserID: m.UserID, AppID: m.AppID,
		DelayMs: m.Delay.Milliseconds(), DedupeID: m.DedupeID, OrderingKey: m.OrderingKey}
	if !m.Timestamp.IsZero() {
		out.Properties.Timestamp = m.Timestamp.Unix()
	}
	if !m.PublishedAt.IsZero() {
		out.PublishedAt = m.PublishedAt.UTC().Format(time.RFC3339Nano)
	}
	return out
}

// publish serves POST /api/exchanges/{name}/publish and POST
// /api/queues/{name}/publish (the default exchange, routed by the queue's
// name).
func (s *Server) publish(c *call, exchange, forceKey string) (any, error) {
	var req PublishRequest
	if err := decodeBody(c.r, &req, false); err != nil {
		return nil, err
	}
	msgs, err := messagesFromJSON(req.Messages)
	if err != nil {
		return nil, err
	}
	if forceKey != "" {
		for i := range msgs {
			msgs[i].RoutingKey = forceKey
		}
	}
	conn, err := c.conn(c.tenant())
	if err != nil {
		return nil, err
	}
	res, err := conn.Publish(c.ctx(), exchange, msgs, broker.PublishOptions{Mandatory: req.Mandatory})
	if err != nil {
		return nil, err
	}
	out := PublishResponse{Results: make([]PublishOutcome, len(msgs))}
	for i := range msgs {
		var r broker.PublishResult
		if i < len(res) {
			r = res[i]
		} else {
			r.Err = base.Errorf(base.CodeInternal, "the broker gave no outcome for message %d", i)
		}
		o := PublishOutcome{Unroutable: r.Unroutable, Rejected: r.Rejected, Duplicate: r.Duplicate}
		if r.Err != nil {
			o.Error, o.Code = r.Err.Error(), base.CodeOf(r.Err).String()
		}
		o.Confirmed = r.Err == nil && !r.Rejected && !r.Unroutable
		if o.Confirmed {
			out.Confirmed++
		} else {
			out.Failed++
		}
		out.Results[i] = o
	}
	return out, nil
}

// get serves POST /api/queues/{name}/get.
func (s *Server) get(c *call) (any, error) {
	var req GetRequest
	if err := decodeBody(c.r, &req, true); err != nil {
		return nil, err
	}
	if req.Count == 0 {
		req.Count = 1
	}
	if req.Count < 0 || req.Count > base.AdminGetMessagesMax {
		return nil, invalid("count %d, want 1 to %d (AdminGetMessagesMax)", req.Count, base.AdminGetMessagesMax)
	}
	manual := false
	switch req.AckMode {
	case "", "auto":
	case "manual":
		manual = true
	default:
		return nil, invalid("ack_mode %q, want auto or manual", req.AckMode)
	}
	if req.Encoding != "" && req.Encoding != "auto" && req.Encoding != "base64" {
		return nil, invalid("encoding %q, want auto or base64", req.Encoding)
	}
	tenant, name := c.tenant(), c.path("name")
	conn, err := c.conn(tenant)
	if err != nil {
		return nil, err
	}
	s.pending.sweep()
	out := GetResponse{Messages: []MessageOut{}}
	for range req.Count {
		d, h, ok, err := conn.Get(c.ctx(), name, !manual)
		if err != nil {
			if len(out.Messages) > 0 && manual {
				break // keep what was fetched: its tokens are valid
			}
			return nil, err
		}
		if !ok {
			break
		}
		m := messageToJSON(&d, req.Encoding == "base64")
		left := d.MessageCount
		m.MessagesLeft = &left
		if manual {
			tok, err := s.pending.add(c.p.User, tenant, name, h)
			if err != nil {
				_ = h.Nack(c.ctx(), true, "the HTTP API holds too many unacknowledged deliveries")
				return nil, err
			}
			m.DeliveryToken = tok
		}
		out.Messages = append(out.Messages, m)
	}
	return out, nil
}

// ack serves POST /api/queues/{name}/ack.
func (s *Server) ack(c *call) (any, error) {
	var req AckRequest
	if err := decodeBody(c.r, &req, false); err != nil {
		return nil, err
	}
	if len(req.DeliveryTokens) == 0 || len(req.DeliveryTokens) > base.AdminGetMessagesMax {
		return nil, invalid("%d delivery tokens, want 1 to %d", len(req.DeliveryTokens), base.AdminGetMessagesMax)
	}
	if req.Requeue && !req.Nack {
		return nil, invalid("requeue applies to nack: set \"nack\": true to return the messages")
	}
	handles, err := s.pending.take(c.p.User, c.tenant(), c.path("name"), req.DeliveryTokens)
	if err != nil {
		return nil, err
	}
	settled := 0
	var firstErr error
	for _, h := range handles {
		var err error
		if req.Nack {
			err = h.Nack(c.ctx(), req.Requeue, "nacked over the HTTP API")
		} else {
			err = h.Ack(c.ctx())
		}
		if err == nil {
			settled++
		} else if firstErr == nil {
			firstErr = err
		}
	}
	if firstErr != nil {
		return nil, base.Errorf(base.CodeOf(firstErr), "settled %d of %d deliveries: %w", settled, len(handles), firstErr)
	}
	return AckResponse{Settled: settled}, nil
}

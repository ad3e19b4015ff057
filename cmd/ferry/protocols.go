package main

// The protocol clients of publish, consume and bench: the HTTP API (the
// default), AMQP 0-9-1 through github.com/rabbitmq/amqp091-go and Kafka
// through github.com/twmb/franz-go, the real client libraries.

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ferry-mq/ferry/internal/loadgen"
)

// cliMessage is a message as publish sends it and consume prints it; the
// JSON names are the HTTP API's.
type cliMessage struct {
	Exchange     string            `json:"exchange,omitempty"`
	RoutingKey   string            `json:"routing_key,omitempty"`
	Body         string            `json:"body"`
	BodyEncoding string            `json:"body_encoding,omitempty"`
	Key          string            `json:"key,omitempty"`
	Headers      map[string]any    `json:"headers,omitempty"`
	Properties   map[string]any    `json:"properties,omitempty"`
	Partition    *int32            `json:"partition,omitempty"`
	Offset       *int64            `json:"offset,omitempty"`
	Redelivered  bool              `json:"redelivered,omitempty"`
	Token        string            `json:"delivery_token,omitempty"`
	raw          []byte            // the body's bytes
	strProps     map[string]string // publish: properties as given
}

// bodyBytes returns the decoded body of a message received over HTTP.
func (m *cliMessage) bodyBytes() []byte {
	if m.raw != nil {
		return m.raw
	}
	if m.BodyEncoding == "base64" {
		if b, err := base64.StdEncoding.DecodeString(m.Body); err == nil {
			return b
		}
	}
	return []byte(m.Body)
}

// setBody sets Body from raw bytes: text when UTF-8, else base64.
func (m *cliMessage) setBody(b []byte) {
	m.raw = b
	if utf8.Valid(b) {
		m.Body, m.BodyEncoding = string(b), "utf8"
	} else {
		m.Body, m.BodyEncoding = base64.StdEncoding.EncodeToString(b), "base64"
	}
}

// protoOpts are the flags choosing and reaching a protocol.
type protoOpts struct {
	protocol string
	amqpURL  string
	kafka    string
}

func addProtoFlags(c *cobra.Command) *protoOpts {
	p := &protoOpts{}
	f := c.Flags()
	f.StringVar(&p.protocol, "protocol", "http", "http (the management API), amqp or kafka")
	f.StringVar(&p.amqpURL, "amqp-url", envOr("FERRY_AMQP_URL", ""), "AMQP URL (env FERRY_AMQP_URL; default amqp://<user>:<password>@localhost:5672/<tenant>)")
	f.StringVar(&p.kafka, "kafka-brokers", envOr("FERRY_KAFKA_BROKERS", "localhost:9092"), "Kafka bootstrap addresses, comma-separated (env FERRY_KAFKA_BROKERS)")
	return p
}

func (p *protoOpts) check(c *cobra.Command) error {
	switch p.protocol {
	case "http", "amqp", "kafka":
		return nil
	}
	return &usageError{fmt.Errorf("--protocol %q: choose http, amqp or kafka\nRun '%s --help' for usage.", p.protocol, c.CommandPath())}
}

// amqpURLFor returns --amqp-url, or the local default with the client's
// credentials and tenant.
func (p *protoOpts) amqpURLFor(o *clientOpts) string {
	if p.amqpURL != "" {
		return p.amqpURL
	}
	u := url.URL{Scheme: "amqp", User: url.UserPassword(o.user, o.password), Host: "localhost:5672", Path: "/" + o.tenant}
	if o.tenant == "/" {
		u.Path = "/"
	}
	return u.String()
}

func (p *protoOpts) brokers() []string { return strings.Split(p.kafka, ",") }

// unreachable marks a failure to connect, for exit code 3.
func unreachable(what, addr string, err error, hint string) error {
	return exitErr(ExitUnavailable, fmt.Errorf("cannot connect to %s at %s: %w\n%s", what, addr, err, hint))
}

// --- AMQP

func amqpDial(rawURL string) (*amqp.Connection, error) { return amqpDialNet(rawURL, nil) }

// amqpDialNet is amqpDial with netDial as amqp.Config.Dial (nil: the
// library's own): loadgen.AMQPTarget's Dial.
func amqpDialNet(rawURL string, netDial loadgen.NetDial) (*amqp.Connection, error) {
	conn, err := amqp.DialConfig(rawURL, amqp.Config{Properties: amqp.Table{"connection_name": "ferry CLI"}, Dial: netDial})
	if err != nil {
		var ae *amqp.Error
		if errors.As(err, &ae) && ae.Code == amqp.AccessRefused {
			return nil, exitErr(ExitRefused, fmt.Errorf("AMQP login refused at %s: %w; check --user/--password or --amqp-url", redactURL(rawURL), err))
		}
		return nil, unreachable("the AMQP listener", redactURL(rawURL), err, "Is 'ferry serve' running with AMQP on? Set --amqp-url or FERRY_AMQP_URL.")
	}
	return conn, nil
}

func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// amqpTable converts CLI headers to an AMQP table.
func amqpTable(h map[string]any) amqp.Table {
	if len(h) == 0 {
		return nil
	}
	t := amqp.Table{}
	for k, v := range h {
		t[k] = v
	}
	return t
}

// amqpPublishing builds a publishing from a message's body, headers and
// the --property flags.
func amqpPublishing(m *cliMessage) (amqp.Publishing, error) {
	pub := amqp.Publishing{DeliveryMode: amqp.Persistent, Body: m.raw, Headers: amqpTable(m.Headers)}
	for k, v := range m.strProps {
		switch k {
		case "content_type":
			pub.ContentType = v
		case "content_encoding":
			pub.ContentEncoding = v
		case "correlation_id":
			pub.CorrelationId = v
		case "reply_to":
			pub.ReplyTo = v
		case "expiration":
			pub.Expiration = v
		case "message_id":
			pub.MessageId = v
		case "type":
			pub.Type = v
		case "user_id":
			pub.UserId = v
		case "app_id":
			pub.AppId = v
		case "priority":
			n, err := strconv.ParseUint(v, 10, 8)
			if err != nil {
				return pub, &usageError{fmt.Errorf("--property priority=%q: want 0 to 255", v)}
			}
			pub.Priority = uint8(n)
		case "timestamp":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return pub, &usageError{fmt.Errorf("--property timestamp=%q: want seconds since the epoch", v)}
			}
			pub.Timestamp = time.Unix(n, 0)
		default:
			return pub, &usageError{fmt.Errorf("--property %s: AMQP has no such property; use --header for custom fields", k)}
		}
	}
	return pub, nil
}

func fromAMQP(d *amqp.Delivery) cliMessage {
	m := cliMessage{Exchange: d.Exchange, RoutingKey: d.RoutingKey, Redelivered: d.Redelivered}
	m.setBody(d.Body)
	if len(d.Headers) > 0 {
		m.Headers = map[string]any{}
		for k, v := range d.Headers {
			m.Headers[k] = v
		}
	}
	props := map[string]any{}
	for k, v := range map[string]string{"content_type": d.ContentType, "content_encoding": d.ContentEncoding,
		"correlation_id": d.CorrelationId, "reply_to": d.ReplyTo, "expiration": d.Expiration, "message_id": d.MessageId,
		"type": d.Type, "user_id": d.UserId, "app_id": d.AppId} {
		if v != "" {
			props[k] = v
		}
	}
	if d.Priority != 0 {
		props["priority"] = d.Priority
	}
	if len(props) > 0 {
		m.Properties = props
	}
	if off, ok := d.Headers["x-stream-offset"].(int64); ok {
		m.Offset = &off
	}
	return m
}

// --- Kafka

func kafkaClient(p *protoOpts, opts ...kgo.Opt) (*kgo.Client, error) {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(p.brokers()...), kgo.RequiredAcks(kgo.AllISRAcks())}, opts...)...)
	if err != nil {
		return nil, &usageError{fmt.Errorf("--kafka-brokers %q: %w", p.kafka, err)}
	}
	return cl, nil
}

// kafkaErr classifies a produce or fetch error: a dial failure is exit 3.
func kafkaErr(p *protoOpts, err error) error {
	if err == nil {
		return nil
	}
	if isDialError(err) || strings.Contains(err.Error(), "connection refused") {
		return unreachable("the Kafka listener", p.kafka, err, "Is 'ferry serve' running with Kafka on? Set --kafka-brokers or FERRY_KAFKA_BROKERS.")
	}
	return fmt.Errorf("kafka: %w", err)
}

func fromKafka(r *kgo.Record) cliMessage {
	m := cliMessage{RoutingKey: r.Topic, Key: string(r.Key)}
	m.setBody(r.Value)
	p, off := r.Partition, r.Offset
	m.Partition, m.Offset = &p, &off
	if len(r.Headers) > 0 {
		m.Headers = map[string]any{}
		for _, h := range r.Headers {
			m.Headers[h.Key] = string(h.Value)
		}
	}
	return m
}

// kafkaOffset parses --offset for Kafka: first, last (the next record),
// or a number.
func kafkaOffset(s string) (kgo.Offset, error) {
	switch s {
	case "", "first":
		return kgo.NewOffset().AtStart(), nil
	case "last", "next":
		return kgo.NewOffset().AtEnd(), nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return kgo.Offset{}, &usageError{fmt.Errorf("--offset %q: want first, last, next or an offset >= 0", s)}
	}
	return kgo.NewOffset().At(n), nil
}

// readFile reads a message body from a file ("-" is standard input), at
// most limit bytes.
func readFile(path string, limit int64) ([]byte, error) {
	f := os.Stdin
	if path != "-" {
		var err error
		if f, err = os.Open(path); err != nil {
			return nil, &usageError{fmt.Errorf("--file: %w", err)}
		}
		defer f.Close()
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if int64(len(data)) > limit {
		return nil, &usageError{fmt.Errorf("--file %s is larger than %d bytes", path, limit)}
	}
	return data, nil
}

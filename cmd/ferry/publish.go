package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ferry-mq/ferry/internal/base"
)

func init() { addCommand(newPublishCommand) }

type publishOpts struct {
	queue, exchange, stream, routingKey, key, file string
	headers, props                                 []string
	count                                          int
	mandatory                                      bool // --mandatory
}

func newPublishCommand() *cobra.Command {
	var o *clientOpts
	var p *protoOpts
	var po publishOpts
	c := &cobra.Command{
		Use:   "publish [BODY...]",
		Short: "Publish messages to a queue, an exchange or a stream",
		Long: `Publish messages and wait until each is confirmed (durable on a quorum).

Each BODY argument is one message; with no BODY and no --file, each line of
standard input is one message. --count repeats the messages. Address a queue
(--queue: through the default exchange), an exchange with a routing key
(--exchange, --routing-key) or a stream (--stream, with --key choosing the
partition). Headers and properties come from --header and --property
(content_type, content_encoding, correlation_id, reply_to, expiration,
message_id, type, user_id, app_id, priority, timestamp; over HTTP also
delay_ms, dedupe_id, ordering_key).

By default it goes through the node's HTTP API; --protocol amqp and
--protocol kafka use the AMQP 0-9-1 and Kafka client libraries instead.

A message to --queue or --stream must reach it: when no queue or stream of
that name exists, nothing is published and the command exits 4 naming it.
To an exchange, a message no binding routes anywhere is dropped (and
counted as published), as AMQP does, unless --mandatory is given. It exits
6 when some messages were not confirmed (unroutable with --mandatory,
rejected by a full queue).` + clientEnvHelp,
		Example: `  # One message to the queue orders
  ferry publish --queue orders 'hello'

  # Lines of a file, one message each, with a header and a content type
  ferry publish --queue orders --header source=import --property content_type=application/json < orders.jsonl

  # To a topic exchange, over AMQP
  ferry publish --protocol amqp --exchange events --routing-key eu.order.created '{"id": 7}'

  # To a stream partition chosen by key, over Kafka; 1,000 copies
  ferry publish --protocol kafka --stream clicks --key user-42 --count 1000 'click'`,
		GroupID: "client",
		RunE: func(c *cobra.Command, args []string) error {
			if err := p.check(c); err != nil {
				return err
			}
			if err := o.checkOutput(c, "table", "json"); err != nil {
				return err
			}
			msgs, err := po.messages(c, args)
			if err != nil {
				return err
			}
			ctx, cancel := o.ctx(c)
			defer cancel()
			var confirmed int
			switch p.protocol {
			case "http":
				confirmed, err = publishHTTP(ctx, o, &po, msgs)
			case "amqp":
				confirmed, err = publishAMQP(ctx, o, p, &po, msgs)
			case "kafka":
				confirmed, err = publishKafka(ctx, p, &po, msgs)
			}
			return po.report(c, o, confirmed, len(msgs), err)
		},
	}
	f := c.Flags()
	f.StringVarP(&po.queue, "queue", "q", "", "publish to this queue (through the default exchange)")
	f.StringVarP(&po.exchange, "exchange", "e", "", "publish to this exchange")
	f.StringVarP(&po.routingKey, "routing-key", "k", "", "routing key (with --exchange)")
	f.StringVar(&po.stream, "stream", "", "publish to this stream")
	f.StringVar(&po.key, "key", "", "message key: chooses the stream partition")
	f.StringVarP(&po.file, "file", "f", "", "read one message body from this file (- for standard input)")
	f.StringArrayVarP(&po.headers, "header", "H", nil, "header key=value (repeatable)")
	f.StringArrayVarP(&po.props, "property", "P", nil, "property key=value (repeatable)")
	f.IntVarP(&po.count, "count", "n", 1, "publish every message this many times")
	f.BoolVar(&po.mandatory, "mandatory", false, "with --exchange: fail messages no binding routes (instead of dropping them); always on for --queue and --stream")
	p = addProtoFlags(c)
	o = addClientFlags(c, "table", "json")
	return c
}

// target returns the exchange and routing key the flags address.
func (po *publishOpts) target(c *cobra.Command) (exchange, key string, err error) {
	set := 0
	for _, s := range []string{po.queue, po.exchange, po.stream} {
		if s != "" {
			set++
		}
	}
	if set != 1 {
		return "", "", &usageError{fmt.Errorf("name one destination: --queue, --exchange or --stream\nRun '%s --help' for usage.", c.CommandPath())}
	}
	switch {
	case po.queue != "":
		return "", po.queue, nil
	case po.stream != "":
		return "", po.stream, nil
	}
	return po.exchange, po.routingKey, nil
}

// messages builds the messages from the arguments, the file or standard
// input, with the headers and properties of the flags.
func (po *publishOpts) messages(c *cobra.Command, args []string) ([]cliMessage, error) {
	exchange, key, err := po.target(c)
	if err != nil {
		return nil, err
	}
	if po.count < 1 || po.count > base.AdminPublishMessagesMax*1000 {
		return nil, &usageError{fmt.Errorf("--count %d: want 1 to %d", po.count, base.AdminPublishMessagesMax*1000)}
	}
	headers, err := parseKV("header", po.headers, true)
	if err != nil {
		return nil, err
	}
	propsAny, err := parseKV("property", po.props, false)
	if err != nil {
		return nil, err
	}
	props := map[string]string{}
	for k, v := range propsAny {
		props[k] = v.(string)
	}
	var bodies [][]byte
	switch {
	case po.file != "" && len(args) > 0:
		return nil, &usageError{fmt.Errorf("give message bodies as arguments or --file, not both")}
	case po.file != "":
		b, err := readFile(po.file, base.BatchBytesMax)
		if err != nil {
			return nil, err
		}
		bodies = append(bodies, b)
	case len(args) > 0:
		for _, a := range args {
			bodies = append(bodies, []byte(a))
		}
	default:
		sc := bufio.NewScanner(c.InOrStdin())
		sc.Buffer(make([]byte, 64<<10), base.AdminRequestBodyBytesMax)
		for sc.Scan() {
			bodies = append(bodies, append([]byte(nil), sc.Bytes()...))
		}
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("reading messages from standard input: %w", err)
		}
		if len(bodies) == 0 {
			return nil, &usageError{fmt.Errorf("no message: give BODY arguments, --file, or lines on standard input")}
		}
	}
	var out []cliMessage
	for range po.count {
		for _, b := range bodies {
			m := cliMessage{Exchange: exchange, RoutingKey: key, Key: po.key, Headers: headers, strProps: props}
			m.setBody(b)
			out = append(out, m)
		}
	}
	return out, nil
}

// report prints the outcome; some messages unconfirmed is exit 6.
func (po *publishOpts) report(c *cobra.Command, o *clientOpts, confirmed, total int, err error) error {
	dest := po.queue
	switch {
	case po.exchange != "":
		dest = "exchange " + po.exchange
	case po.stream != "":
		dest = "stream " + po.stream
	default:
		dest = "queue " + dest
	}
	if err != nil && confirmed == 0 {
		return err
	}
	if o.output == "json" {
		_ = printJSON(c.OutOrStdout(), map[string]any{"destination": dest, "published": total, "confirmed": confirmed})
	} else {
		fmt.Fprintf(c.OutOrStdout(), "published %d of %d messages to %s (confirmed durable)\n", confirmed, total, dest)
	}
	switch {
	case err != nil && confirmed > 0:
		return exitErr(ExitPartial, fmt.Errorf("%d of %d messages were not confirmed: %w", total-confirmed, total, err))
	case err != nil:
		return err
	case confirmed < total:
		return exitErr(ExitPartial, fmt.Errorf("%d of %d messages were not confirmed", total-confirmed, total))
	}
	return nil
}

type httpOutcome struct {
	Confirmed int `json:"confirmed"`
	Failed    int `json:"failed"`
	Results   []struct {
		Unroutable bool   `json:"unroutable"`
		Rejected   bool   `json:"rejected"`
		Error      string `json:"error"`
	} `json:"results"`
}

// mandatory reports whether messages routed nowhere must fail: always for a
// named queue or stream (the default exchange routes by name, so "routed
// nowhere" means it does not exist), with --mandatory for an exchange.
func (po *publishOpts) isMandatory() bool {
	return po.mandatory || po.queue != "" || po.stream != ""
}

// unroutable is the error of n of total messages routed nowhere: for a
// named queue or stream, it does not exist (ExitNotFound, nothing was
// published to it); for an exchange, ExitPartial.
func (po *publishOpts) unroutable(o *clientOpts, n, total int) error {
	name, kind, create := po.queue, "queue", "queue"
	if po.stream != "" {
		name, kind, create = po.stream, "stream", "stream"
	}
	if name != "" {
		return base.Errorf(base.CodeNotFound, "%d of %d messages unroutable: no %s '%s' in tenant '%s'; create it with 'ferry %s create %s'",
			n, total, kind, name, o.tenant, create, name)
	}
	return exitErr(ExitPartial, fmt.Errorf("%d of %d messages unroutable: no binding of exchange '%s' matches routing key '%s'",
		n, total, po.exchange, po.routingKey))
}

func publishHTTP(ctx context.Context, o *clientOpts, po *publishOpts, msgs []cliMessage) (int, error) {
	cl, err := o.client()
	if err != nil {
		return 0, err
	}
	path := pathOf("/api/exchanges", orDefault(msgs[0].Exchange)) + "/publish"
	if po.queue != "" || po.stream != "" {
		path = pathOf("/api/queues", msgs[0].RoutingKey) + "/publish"
	}
	confirmed, unroutable := 0, 0
	var firstFailure string
	for start := 0; start < len(msgs); start += base.AdminPublishMessagesMax {
		batch := msgs[start:min(start+base.AdminPublishMessagesMax, len(msgs))]
		wire := make([]map[string]any, len(batch))
		for i := range batch {
			props := map[string]any{}
			for k, v := range batch[i].strProps {
				props[k] = v
			}
			if err := typedProps(props); err != nil {
				return confirmed, err
			}
			wire[i] = map[string]any{"routing_key": batch[i].RoutingKey, "body": batch[i].Body, "body_encoding": batch[i].BodyEncoding,
				"key": batch[i].Key, "headers": batch[i].Headers, "properties": props}
		}
		var out httpOutcome
		if err := cl.call(ctx, "POST", path, o.tenantQuery(), map[string]any{"messages": wire, "mandatory": po.isMandatory()}, &out); err != nil {
			return confirmed, err
		}
		confirmed += out.Confirmed
		for _, r := range out.Results {
			if r.Unroutable {
				unroutable++
				continue
			}
			if firstFailure == "" && (r.Error != "" || r.Rejected) {
				firstFailure = r.Error
				if r.Rejected {
					firstFailure = "rejected by a full queue (overflow reject-publish)"
				}
			}
		}
	}
	switch {
	case unroutable > 0:
		return confirmed, po.unroutable(o, unroutable, len(msgs))
	case firstFailure != "":
		return confirmed, exitErr(ExitPartial, fmt.Errorf("%d of %d messages not confirmed; the first: %s", len(msgs)-confirmed, len(msgs), firstFailure))
	}
	return confirmed, nil
}

// typedProps converts the numeric properties of the HTTP API.
func typedProps(p map[string]any) error {
	for _, k := range []string{"priority", "timestamp", "delay_ms", "delivery_mode"} {
		if v, ok := p[k].(string); ok {
			var n int64
			if _, err := fmt.Sscan(v, &n); err != nil {
				return &usageError{fmt.Errorf("--property %s=%q: want an integer", k, v)}
			}
			p[k] = n
		}
	}
	return nil
}

func orDefault(exchange string) string {
	if exchange == "" {
		return "amq.default"
	}
	return exchange
}

func publishAMQP(ctx context.Context, o *clientOpts, p *protoOpts, po *publishOpts, msgs []cliMessage) (int, error) {
	conn, err := amqpDial(p.amqpURLFor(o))
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err == nil {
		err = ch.Confirm(false)
	}
	if err != nil {
		return 0, fmt.Errorf("amqp: opening a channel in confirm mode: %w", err)
	}
	returns := ch.NotifyReturn(make(chan amqp.Return, len(msgs)))
	mandatory := po.isMandatory()
	confirms := make([]*amqp.DeferredConfirmation, 0, len(msgs))
	for i := range msgs {
		pub, err := amqpPublishing(&msgs[i])
		if err != nil {
			return 0, err
		}
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, msgs[i].Exchange, msgs[i].RoutingKey, mandatory, false, pub)
		if err != nil {
			return countAcked(ctx, confirms), fmt.Errorf("amqp: publishing message %d: %w", i, err)
		}
		confirms = append(confirms, dc)
	}
	acked := countAcked(ctx, confirms)
	// Every basic.return precedes the confirm of its message, so once all
	// confirms are in, every return is in the channel.
	returned := len(returns)
	switch {
	case returned > 0:
		return acked - returned, po.unroutable(o, returned, len(msgs))
	case acked < len(msgs):
		return acked, exitErr(ExitPartial, fmt.Errorf("%d of %d messages nacked or unconfirmed", len(msgs)-acked, len(msgs)))
	}
	return acked, nil
}

func countAcked(ctx context.Context, dcs []*amqp.DeferredConfirmation) int {
	n := 0
	for _, dc := range dcs {
		if ok, err := dc.WaitContext(ctx); ok && err == nil {
			n++
		}
	}
	return n
}

func publishKafka(ctx context.Context, p *protoOpts, po *publishOpts, msgs []cliMessage) (int, error) {
	if po.stream == "" {
		return 0, &usageError{fmt.Errorf("--protocol kafka publishes to a stream: use --stream")}
	}
	// Ferry creates no topic on a produce (nor does franz-go ask it to):
	// one retry covers a stream created a moment ago.
	cl, err := kafkaClient(p, kgo.UnknownTopicRetries(1))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	recs := make([]*kgo.Record, len(msgs))
	for i := range msgs {
		r := &kgo.Record{Topic: po.stream, Value: msgs[i].raw}
		if po.key != "" {
			r.Key = []byte(po.key)
		}
		for k, v := range msgs[i].Headers {
			r.Headers = append(r.Headers, kgo.RecordHeader{Key: k, Value: []byte(fmt.Sprint(v))})
		}
		if len(msgs[i].strProps) > 0 {
			return 0, &usageError{fmt.Errorf("--property: Kafka records have no properties; send them as --header")}
		}
		recs[i] = r
	}
	res := cl.ProduceSync(ctx, recs...)
	ok := 0
	var first error
	for _, r := range res {
		if r.Err == nil {
			ok++
		} else if first == nil {
			first = r.Err
		}
	}
	if errors.Is(first, kerr.UnknownTopicOrPartition) {
		return ok, exitErr(ExitNotFound, fmt.Errorf("%d of %d messages not published: no stream '%s'; create it with 'ferry stream create %s'",
			len(recs)-ok, len(recs), po.stream, po.stream))
	}
	return ok, kafkaErr(p, first)
}

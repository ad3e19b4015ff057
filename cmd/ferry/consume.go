package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ferry-mq/ferry/internal/base"
)

func init() { addCommand(newConsumeCommand) }

type consumeOpts struct {
	stream string
	offset string
	count  int
	follow bool
	idle   time.Duration
}

func newConsumeCommand() *cobra.Command {
	var o *clientOpts
	var p *protoOpts
	var co consumeOpts
	c := &cobra.Command{
		Use:   "consume [QUEUE]",
		Short: "Consume messages from a queue or a stream",
		Long: `Consume messages from a queue (acknowledging each once printed) or read a
stream from an offset (--stream, --offset first|last|next|N).

Without --follow it stops when the queue is empty (a stream: when no message
came for --idle); --count stops after that many messages; --follow keeps
waiting for new ones until interrupted. Output: raw (each body on its own
line), json (one object per line with headers and properties) or table.

By default it goes through the node's HTTP API; --protocol amqp and
--protocol kafka use the AMQP 0-9-1 and Kafka client libraries instead. Over
HTTP, a stream with several partitions is read from the same offset in each.` + clientEnvHelp,
		Example: `  # Everything ready in the queue orders, one body per line
  ferry consume orders

  # The next 10 messages, with headers and properties, as JSON lines
  ferry consume orders --count 10 -o json

  # Keep printing new messages over AMQP
  ferry consume orders --follow --protocol amqp

  # A stream from its first offset, over Kafka
  ferry consume --stream clicks --offset first --protocol kafka`,
		GroupID: "client",
		RunE: func(c *cobra.Command, args []string) error {
			if err := p.check(c); err != nil {
				return err
			}
			if err := o.checkOutput(c, "raw", "json", "table"); err != nil {
				return err
			}
			queue := ""
			switch {
			case len(args) == 1 && co.stream == "":
				queue = args[0]
			case len(args) == 0 && co.stream != "":
			default:
				return &usageError{fmt.Errorf("name one source: a QUEUE argument or --stream\nRun '%s --help' for usage.", c.CommandPath())}
			}
			if co.count < 0 {
				return &usageError{fmt.Errorf("--count %d: want 0 (no limit) or more", co.count)}
			}
			ctx := c.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			w := &messageWriter{w: c.OutOrStdout(), format: o.output}
			var n int
			var err error
			switch p.protocol {
			case "http":
				n, err = consumeHTTP(ctx, o, &co, queue, w)
			case "amqp":
				n, err = consumeAMQP(ctx, o, p, &co, queue, w)
			case "kafka":
				n, err = consumeKafka(ctx, p, &co, w)
			}
			if err == nil && co.count > 0 && n < co.count && !co.follow {
				fmt.Fprintf(c.ErrOrStderr(), "ferry: consumed %d of the %d messages asked for: the source ran empty\n", n, co.count)
			}
			return err
		},
	}
	f := c.Flags()
	f.StringVar(&co.stream, "stream", "", "read this stream instead of a queue")
	f.StringVar(&co.offset, "offset", "first", "where a stream read starts: first, last, next or an offset")
	f.IntVarP(&co.count, "count", "n", 0, "stop after this many messages (0: no limit)")
	f.BoolVar(&co.follow, "follow", false, "keep waiting for new messages until interrupted")
	f.DurationVar(&co.idle, "idle", 2*time.Second, "without --follow, stop a stream read after this long without a message")
	p = addProtoFlags(c)
	o = addClientFlags(c, "raw", "json", "table")
	return c
}

// left returns how many more messages to take (count 0 is unlimited).
func (co *consumeOpts) left(n int) int {
	if co.count == 0 {
		return base.CLIConsumeBatchMax
	}
	return min(co.count-n, base.CLIConsumeBatchMax)
}

// messageWriter prints consumed messages as they come.
type messageWriter struct {
	w      io.Writer
	format string
	rows   int
}

func (mw *messageWriter) write(m *cliMessage) error {
	switch mw.format {
	case "json":
		data, err := json.Marshal(m)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(mw.w, "%s\n", data)
		return err
	case "table":
		if mw.rows == 0 {
			fmt.Fprintf(mw.w, "%-24s %-10s %-12s %s\n", "ROUTING_KEY", "PARTITION", "OFFSET", "BODY")
		}
		mw.rows++
		part, off := "", ""
		if m.Partition != nil {
			part = strconv.Itoa(int(*m.Partition))
		}
		if m.Offset != nil {
			off = strconv.FormatInt(*m.Offset, 10)
		}
		body := m.Body
		if len(body) > 80 {
			body = body[:77] + "..."
		}
		_, err := fmt.Fprintf(mw.w, "%-24s %-10s %-12s %s\n", m.RoutingKey, part, off, strings.ReplaceAll(body, "\n", `\n`))
		return err
	}
	_, err := fmt.Fprintf(mw.w, "%s\n", m.bodyBytes())
	return err
}

func consumeHTTP(ctx context.Context, o *clientOpts, co *consumeOpts, queue string, w *messageWriter) (int, error) {
	cl, err := o.client()
	if err != nil {
		return 0, err
	}
	if co.stream != "" {
		return readStreamHTTP(ctx, cl, o, co, w)
	}
	n := 0
	poll := time.NewTicker(base.CLIPollInterval)
	defer poll.Stop()
	for co.count == 0 || n < co.count {
		var got struct {
			Messages []cliMessage `json:"messages"`
		}
		cctx, cancel := context.WithTimeout(ctx, o.timeout)
		err := cl.call(cctx, "POST", pathOf("/api/queues", queue)+"/get", o.tenantQuery(), map[string]any{"count": co.left(n)}, &got)
		cancel()
		if err != nil {
			return n, err
		}
		for i := range got.Messages {
			if err := w.write(&got.Messages[i]); err != nil {
				return n, err
			}
			n++
		}
		if len(got.Messages) > 0 {
			continue
		}
		if !co.follow {
			return n, nil
		}
		select { // the HTTP API has no push: poll an empty queue
		case <-ctx.Done():
			return n, nil
		case <-poll.C:
		}
	}
	return n, nil
}

func readStreamHTTP(ctx context.Context, cl *apiClient, o *clientOpts, co *consumeOpts, w *messageWriter) (int, error) {
	offset := co.offset
	n := 0
	for co.count == 0 || n < co.count {
		q := o.tenantQuery()
		q.Set("offset", offset)
		q.Set("count", strconv.Itoa(co.left(n)))
		q.Set("timeout_ms", strconv.FormatInt(co.idle.Milliseconds(), 10))
		var got struct {
			Messages []cliMessage `json:"messages"`
		}
		cctx, cancel := context.WithTimeout(ctx, o.timeout+co.idle)
		err := cl.call(cctx, "GET", pathOf("/api/streams", co.stream)+"/messages", q, nil, &got)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return n, nil
			}
			return n, err
		}
		for i := range got.Messages {
			m := &got.Messages[i]
			if err := w.write(m); err != nil {
				return n, err
			}
			n++
			if m.Offset != nil {
				offset = strconv.FormatInt(*m.Offset+1, 10)
			}
		}
		if len(got.Messages) == 0 && !co.follow {
			return n, nil
		}
		if ctx.Err() != nil {
			return n, nil
		}
	}
	return n, nil
}

func consumeAMQP(ctx context.Context, o *clientOpts, p *protoOpts, co *consumeOpts, queue string, w *messageWriter) (int, error) {
	conn, err := amqpDial(p.amqpURLFor(o))
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return 0, fmt.Errorf("amqp: opening a channel: %w", err)
	}
	if co.stream == "" && !co.follow {
		return drainAMQP(ch, co, queue, w)
	}
	args := amqp.Table{}
	source := queue
	if co.stream != "" {
		source = co.stream
		if n, err := strconv.ParseInt(co.offset, 10, 64); err == nil {
			args["x-stream-offset"] = n
		} else {
			args["x-stream-offset"] = co.offset
		}
	}
	prefetch := base.CLIConsumeBatchMax
	if err := ch.Qos(prefetch, 0, false); err != nil {
		return 0, fmt.Errorf("amqp: basic.qos: %w", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	deliveries, err := ch.ConsumeWithContext(cctx, source, "", false, false, false, false, args)
	if err != nil {
		return 0, amqpErr(err, source)
	}
	idle := time.NewTimer(co.idle)
	defer idle.Stop()
	n := 0
	for co.count == 0 || n < co.count {
		select {
		case d, ok := <-deliveries:
			if !ok {
				return n, fmt.Errorf("amqp: the broker ended the consumer of %q", source)
			}
			if err := writeAcked(w, &d); err != nil {
				return n, err
			}
			n++
			idle.Reset(co.idle)
		case <-idle.C:
			if !co.follow {
				return n, nil
			}
		case <-ctx.Done():
			return n, nil
		}
	}
	return n, nil
}

// writeAcked writes d and then acknowledges it: a message is acked only
// once it is written, so a failed write leaves it to be redelivered.
func writeAcked(w *messageWriter, d *amqp.Delivery) error {
	m := fromAMQP(d)
	if err := w.write(&m); err != nil {
		return err
	}
	if err := d.Ack(false); err != nil {
		return fmt.Errorf("amqp: ack: %w", err)
	}
	return nil
}

// drainAMQP takes what the queue holds with basic.get until it is empty.
func drainAMQP(ch *amqp.Channel, co *consumeOpts, queue string, w *messageWriter) (int, error) {
	n := 0
	for co.count == 0 || n < co.count {
		d, ok, err := ch.Get(queue, false)
		if err != nil {
			return n, amqpErr(err, queue)
		}
		if !ok {
			return n, nil
		}
		if err := writeAcked(w, &d); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// amqpErr maps a channel error (404 NOT_FOUND, 403) to its code.
func amqpErr(err error, name string) error {
	var ae *amqp.Error
	if errors.As(err, &ae) {
		switch ae.Code {
		case amqp.NotFound:
			return base.Errorf(base.CodeNotFound, "no queue or stream '%s': %s", name, ae.Reason)
		case amqp.AccessRefused:
			return base.Errorf(base.CodeAccessRefused, "%s", ae.Reason)
		}
	}
	return fmt.Errorf("amqp: %w", err)
}

func consumeKafka(ctx context.Context, p *protoOpts, co *consumeOpts, w *messageWriter) (int, error) {
	if co.stream == "" {
		return 0, &usageError{fmt.Errorf("--protocol kafka reads streams: use --stream")}
	}
	off, err := kafkaOffset(co.offset)
	if err != nil {
		return 0, err
	}
	cl, err := kafkaClient(p, kgo.ConsumeTopics(co.stream), kgo.ConsumeResetOffset(off), kgo.FetchMaxWait(min(co.idle, time.Second)))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	n := 0
	lastRecord := time.Now()
	for co.count == 0 || n < co.count {
		pctx, cancel := context.WithTimeout(ctx, co.idle)
		fetches := cl.PollRecords(pctx, co.left(n))
		cancel()
		if ctx.Err() != nil {
			return n, nil
		}
		var ferr error
		fetches.EachError(func(topic string, part int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				ferr = errors.Join(ferr, fmt.Errorf("fetching %s[%d]: %w", topic, part, err))
			}
		})
		if ferr != nil {
			return n, kafkaErr(p, ferr)
		}
		got := 0
		fetches.EachRecord(func(r *kgo.Record) {
			if ferr != nil || (co.count > 0 && n >= co.count) {
				return
			}
			m := fromKafka(r)
			ferr = w.write(&m)
			n++
			got++
		})
		if ferr != nil {
			return n, ferr
		}
		if got > 0 {
			lastRecord = time.Now()
		} else if !co.follow && time.Since(lastRecord) >= co.idle {
			return n, nil
		}
	}
	return n, nil
}

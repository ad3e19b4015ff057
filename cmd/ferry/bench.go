package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/loadgen"
)

func init() { addCommand(newBenchCommand) }

type benchOpts struct {
	producers, consumers int
	fanout               bool
	size                 int
	rate                 float64
	duration             time.Duration
	messages             uint64
	inFlight, prefetch   int
	partitions           int32
	durability           string
	queuePrefix          string
	noProgress           bool
	coalesceWrites       bool
}

func newBenchCommand() *cobra.Command {
	var o *clientOpts
	var p *protoOpts
	var bo benchOpts
	c := &cobra.Command{
		Use:   "bench",
		Short: "Generate load and report throughput, latency and lost or duplicated messages",
		Long: `Run producers and consumers against a node and report what happened.

Producers publish durable messages of --size bytes at --rate messages per
second each (0: as fast as --in-flight unconfirmed publishes allow) for
--duration or --messages each; consumers, one per queue, consume with
--prefetch and acknowledge. Producers spread over --consumers queues (or,
with --fanout, every queue receives every message). A progress line shows
live rates; the final table gives throughput, end-to-end latency
percentiles (p50, p90, p99, p99.9, max; measured from each message's
intended send time, so a stall counts fully) and the accounting of sent,
confirmed, received, lost and duplicated messages.

It exits 6 if a confirmed message was lost (or a message arrived that was
never sent), 1 if the run could not be carried out. Every queue (or topic)
named by --queue-prefix is deleted and declared afresh.

--protocol amqp (the default) and kafka use the real client libraries
(amqp091-go, franz-go); http uses the management API (one request per
publish, and consumers poll: slower, for comparison).` + clientEnvHelp,
		Example: `  # 4 producers and 4 consumers at full speed for 30 seconds, 1 KiB messages, over AMQP
  ferry bench --producers 4 --consumers 4 --size 1024 --duration 30s

  # Latency at a fixed 1,000 messages/s
  ferry bench --rate 1000 --duration 20s

  # Kafka produce and consume, 6 partitions, 100,000 messages per producer
  ferry bench --protocol kafka --partitions 6 --messages 100000

  # One publisher fanned out to 10 queues, results as JSON
  ferry bench --fanout --consumers 10 --duration 10s -o json`,
		GroupID: "tools",
		Args:    noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if p.protocol == "" {
				p.protocol = "amqp"
			}
			if err := p.check(c); err != nil {
				return err
			}
			if err := o.checkOutput(c, "table", "json"); err != nil {
				return err
			}
			if !c.Flags().Changed("queue-prefix") {
				bo.queuePrefix += "-" + p.protocol // queues and streams share names: keep the protocols' runs apart
			}
			spec, err := bo.spec(c, p.protocol)
			if err != nil {
				return err
			}
			target := bo.target(p, o)
			ctx := c.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			bar := &progressBar{w: c.ErrOrStderr(), total: bo.duration, perProducer: bo.messages, producers: bo.producers}
			if !bo.noProgress {
				spec.Progress, spec.ProgressEvery = bar.show, base.CLIProgressInterval
			}
			res, runErr := loadgen.Run(ctx, target, spec)
			bar.done()
			if o.output == "json" {
				_ = printJSON(c.OutOrStdout(), map[string]any{"protocol": p.protocol, "result": res, "error": errString(runErr)})
			} else {
				printBenchResult(c.OutOrStdout(), p.protocol, &bo, res)
			}
			if acct := res.Tally.Err(); acct != nil {
				return exitErr(ExitPartial, fmt.Errorf("%d confirmed messages lost, %d received that were never sent: %w", res.Tally.Lost, res.Tally.Phantom, acct))
			}
			if runErr != nil {
				return fmt.Errorf("the benchmark did not complete: %w", runErr)
			}
			return nil
		},
	}
	f := c.Flags()
	f.IntVar(&bo.producers, "producers", 1, "producers, each with its own connection")
	f.IntVar(&bo.consumers, "consumers", 1, "consumers, one per queue")
	f.BoolVar(&bo.fanout, "fanout", false, "every queue receives every message (one exchange bound to all queues)")
	f.IntVar(&bo.size, "size", 1024, fmt.Sprintf("message size in bytes (at least %d)", loadgen.HeaderBytes))
	f.Float64Var(&bo.rate, "rate", 0, "messages per second per producer (0: as fast as confirms allow)")
	f.DurationVar(&bo.duration, "duration", 10*time.Second, "how long producers publish (0: until --messages)")
	f.Uint64Var(&bo.messages, "messages", 0, "messages per producer (0: until --duration)")
	f.IntVar(&bo.inFlight, "in-flight", 256, "unconfirmed publishes per producer")
	f.IntVar(&bo.prefetch, "prefetch", 1000, "unacknowledged deliveries per consumer")
	f.Int32Var(&bo.partitions, "partitions", 1, "partitions of each topic (kafka)")
	f.StringVar(&bo.durability, "durability", "durable", "durable: every publish is confirmed after fsync on a quorum (the only mode in this version)")
	f.StringVar(&bo.queuePrefix, "queue-prefix", "ferry-bench", "names of the benchmark's exchanges, queues and topics (default ferry-bench-<protocol>)")
	f.BoolVar(&bo.noProgress, "no-progress", false, "do not print the progress line")
	f.BoolVar(&bo.coalesceWrites, "coalesce-writes", false, "amqp: write what each connection queued while its last write ran in one write(2), instead of one per publish (amqp091-go's own way)")
	p = addProtoFlags(c)
	p.protocol = ""
	c.Flags().Lookup("protocol").DefValue = "amqp"
	c.Flags().Lookup("protocol").Usage = "amqp (the default), kafka or http"
	o = addClientFlags(c, "table", "json")
	return c
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// spec checks the flags and builds the run. Over Kafka a queue is a
// reader of its route's topic, named "topic/reader".
func (bo *benchOpts) spec(c *cobra.Command, protocol string) (loadgen.Spec, error) {
	kafka := protocol == "kafka"
	bad := func(format string, args ...any) error {
		return &usageError{fmt.Errorf(format+"\nRun '%s --help' for usage.", append(args, c.CommandPath())...)}
	}
	switch {
	case bo.coalesceWrites && protocol != "amqp":
		return loadgen.Spec{}, bad("--coalesce-writes is for --protocol amqp (amqp091-go writes each publish on its own), not %s", protocol)
	case bo.durability != "durable":
		return loadgen.Spec{}, bad("--durability %q is not available in this version: Ferry confirms every publish after fsync on a quorum (durable)", bo.durability)
	case bo.consumers < 1 || bo.consumers > base.LoadgenQueuesMax:
		return loadgen.Spec{}, bad("--consumers %d: want 1 to %d", bo.consumers, base.LoadgenQueuesMax)
	case bo.duration <= 0 && bo.messages == 0:
		return loadgen.Spec{}, bad("give --duration or --messages")
	case bo.partitions < 1:
		return loadgen.Spec{}, bad("--partitions %d: want at least 1", bo.partitions)
	}
	var topos []loadgen.Topology
	if bo.fanout {
		t := loadgen.Topology{Route: bo.queuePrefix}
		for i := range bo.consumers {
			q := fmt.Sprintf("%s-%d", bo.queuePrefix, i)
			if kafka {
				q = fmt.Sprintf("%s/%d", bo.queuePrefix, i)
			}
			t.Queues = append(t.Queues, q)
		}
		topos = append(topos, t)
	} else {
		for i := range bo.consumers {
			name := fmt.Sprintf("%s-%d", bo.queuePrefix, i)
			t := loadgen.Topology{Route: name + "-x", Queues: []string{name}}
			if kafka {
				t = loadgen.Topology{Route: name, Queues: []string{name + "/0"}}
			}
			topos = append(topos, t)
		}
	}
	var id [4]byte
	_, _ = rand.Read(id[:]) // crypto/rand never fails on supported platforms
	dur := bo.duration
	if bo.messages > 0 && !c.Flags().Changed("duration") {
		dur = 0
	}
	bo.duration = dur
	// Spec.validate names the other bounds (producers, size, in-flight,
	// prefetch) with their limits.
	return loadgen.Spec{Topologies: topos, Producers: bo.producers, BodyBytes: bo.size, InFlight: bo.inFlight,
		Rate: bo.rate, Duration: dur, Messages: bo.messages, Prefetch: bo.prefetch, Consume: loadgen.ConsumeDuring,
		RunID: binary.BigEndian.Uint32(id[:])}, nil
}

// target builds the protocol's loadgen.Target. Kafka topics are the
// topologies' routes: their queues ("topic/reader") read them whole.
func (bo *benchOpts) target(p *protoOpts, o *clientOpts) loadgen.Target {
	switch p.protocol {
	case "kafka":
		return &loadgen.KafkaTarget{Partitions: bo.partitions,
			NewClient: func(opts ...kgo.Opt) (*kgo.Client, error) { return kafkaClient(p, opts...) },
			WrapErr:   func(err error) error { return kafkaErr(p, err) }}
	case "http":
		return &httpTarget{o: o}
	}
	return &loadgen.AMQPTarget{URL: p.amqpURLFor(o), Dial: amqpDialNet, CoalesceWrites: bo.coalesceWrites}
}

// progressBar draws one line on stderr, rewritten in place.
type progressBar struct {
	w           io.Writer
	total       time.Duration
	perProducer uint64
	producers   int

	mu    sync.Mutex
	drawn bool // guarded by mu
}

func (pb *progressBar) show(p loadgen.Progress) {
	frac := 0.0
	switch {
	case pb.total > 0:
		frac = p.Elapsed.Seconds() / pb.total.Seconds()
	case pb.perProducer > 0:
		frac = float64(p.Sent) / float64(pb.perProducer*uint64(pb.producers))
	}
	frac = min(max(frac, 0), 1)
	const width = 24
	filled := int(frac * width)
	bar := strings.Repeat("=", filled) + strings.Repeat(" ", width-filled)
	pb.mu.Lock()
	defer pb.mu.Unlock()
	fmt.Fprintf(pb.w, "\r[%s] %5.1fs  sent %d (%.0f/s)  confirmed %d  received %d (%.0f/s)   ",
		bar, p.Elapsed.Seconds(), p.Sent, p.SentPerSec, p.Confirmed, p.Received, p.ReceivedPerSec)
	pb.drawn = true
}

func (pb *progressBar) done() {
	pb.mu.Lock()
	defer pb.mu.Unlock()
	if pb.drawn {
		fmt.Fprintln(pb.w)
	}
}

func printBenchResult(w io.Writer, protocol string, bo *benchOpts, res loadgen.Result) {
	fmt.Fprintf(w, "ferry bench over %s: %d producers, %d consumers, %d-byte messages, durable\n\n", protocol, bo.producers, bo.consumers, bo.size)
	mb := func(t loadgen.Throughput) string { return fmt.Sprintf("%.2f", t.BytesPerSec/(1<<20)) }
	_ = table(w, []string{"PHASE", "MESSAGES", "SECONDS", "MSG/S", "MIB/S"}, [][]string{
		{"publish (confirmed)", fmt.Sprint(res.Publish.Messages), fmt.Sprintf("%.2f", res.Publish.Seconds), fmt.Sprintf("%.0f", res.Publish.MsgsPerSec), mb(res.Publish)},
		{"consume (received)", fmt.Sprint(res.Consume.Messages), fmt.Sprintf("%.2f", res.Consume.Seconds), fmt.Sprintf("%.0f", res.Consume.MsgsPerSec), mb(res.Consume)},
	})
	l := res.Latency
	fmt.Fprintf(w, "\nend-to-end latency (%d samples, from the intended send time)\n", l.Count)
	_ = table(w, []string{"P50", "P90", "P99", "P99.9", "MAX"}, [][]string{{ms(l.P50), ms(l.P90), ms(l.P99), ms(l.P999), ms(l.Max)}})
	t := res.Tally
	fmt.Fprintf(w, "\naccounting\n")
	_ = table(w, []string{"SENT", "CONFIRMED", "NACKED", "UNCONFIRMED", "RECEIVED", "LOST", "DUPLICATED", "PHANTOM"}, [][]string{{
		fmt.Sprint(t.Sent), fmt.Sprint(t.Confirmed), fmt.Sprint(t.Nacked), fmt.Sprint(t.Unconfirmed), fmt.Sprint(t.Received),
		fmt.Sprint(t.Lost), fmt.Sprint(t.Duplicated), fmt.Sprint(t.Phantom)}})
	if res.DrainTimedOut {
		fmt.Fprintln(w, "\nthe drain gave up: no message came for the idle timeout before every expected one arrived")
	}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3fms", float64(d)/float64(time.Millisecond)) }

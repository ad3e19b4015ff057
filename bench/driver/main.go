package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/signal"
	"runtime/pprof"
	"runtime/trace"
	"strings"
	"time"

	"github.com/ferry-mq/ferry/bench/driver/jstarget"
	"github.com/ferry-mq/ferry/bench/driver/memtarget"
	"github.com/ferry-mq/ferry/bench/driver/mqtttarget"
	"github.com/ferry-mq/ferry/internal/loadgen"
)

// Exit statuses: the script tells a failed run (accounting) from a broken
// one (could not connect, bad flags).
const (
	exitOK         = 0
	exitBroken     = 1
	exitAccounting = 3
)

type options struct {
	target, name, addr, workload string
	variant                      string
	size, producers, queues      int
	fanout, inflight, prefetch   int
	partitions                   int
	rate                         float64
	duration, timeout, deadline  time.Duration
	messages                     uint64
	pid                          int
	progress                     bool
	cpuprofile, trace            string
	coalesceWrites               bool
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: driver run|wait [flags]; driver run -h for the flags")
		os.Exit(exitBroken)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	var o options
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	fs.StringVar(&o.target, "target", "", "amqp-quorum | amqp-classic | amqp | jetstream | mqtt | kafka | inproc (the load generator alone, with no consumer until a publish or drain ends, so only latency, fanout, queues and small drains); wait also takes http (GET -addr until 200)")
	fs.StringVar(&o.name, "name", "", "name of the target in the output (default: -target)")
	fs.StringVar(&o.addr, "addr", "", "broker address: amqp://..., nats://..., tcp://host:port (MQTT), host:port (Kafka)")
	fs.StringVar(&o.workload, "workload", "publish", "publish | drain | latency | fanout | queues | kafka (publish, reported as workload 7)")
	fs.StringVar(&o.variant, "variant", "", "label of this variant in the report")
	fs.IntVar(&o.size, "size", 1024, "message body bytes")
	fs.IntVar(&o.producers, "producers", 1, "producers (publish, drain)")
	fs.IntVar(&o.queues, "queues", 1000, "queues (queues workload)")
	fs.IntVar(&o.fanout, "fanout", 10, "queues bound to the route (fanout workload)")
	fs.IntVar(&o.inflight, "inflight", 256, "confirms in flight per producer")
	fs.IntVar(&o.prefetch, "prefetch", 1000, "consumer prefetch")
	fs.IntVar(&o.partitions, "partitions", 1, "topic partitions (kafka)")
	fs.Float64Var(&o.rate, "rate", 0, "messages per second per producer; 0 is as fast as confirms allow")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "publish phase length")
	fs.Uint64Var(&o.messages, "messages", 0, "messages in total (drain); 0 means by duration")
	fs.IntVar(&o.pid, "pid", 0, "broker process id, for CPU time and RSS")
	fs.DurationVar(&o.deadline, "deadline", 30*time.Minute, "run: give up on a run that takes longer (a hung broker)")
	fs.BoolVar(&o.progress, "progress", false, "print live rates to stderr")
	fs.DurationVar(&o.timeout, "timeout", 60*time.Second, "wait: how long to wait for the broker")
	fs.StringVar(&o.cpuprofile, "cpuprofile", "", "run: write the driver's own CPU profile to this file (to see the client side's share)")
	fs.StringVar(&o.trace, "trace", "", "run: write the driver's execution trace to this file, for go tool trace (where its goroutines wait: for the window, for a CPU)")
	fs.BoolVar(&o.coalesceWrites, "coalesce-writes", false, "AMQP targets: queue each connection's writes for a flusher goroutine that writes, in one write(2), all that queued during its last one (as nats.go's client does); without it amqp091-go writes every publish on its own")
	_ = fs.Parse(os.Args[2:]) // ExitOnError
	if os.Args[1] == "wait" && o.target == "http" {
		if err := waitReady(ctx, func(ctx context.Context) error { return probeHTTP(ctx, o.addr) }, o.timeout); err != nil {
			fmt.Fprintln(os.Stderr, "driver:", err)
			os.Exit(exitBroken)
		}
		return
	}
	target, err := newTarget(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "driver:", err)
		os.Exit(exitBroken)
	}
	switch os.Args[1] {
	case "run":
		os.Exit(profiled(o.cpuprofile, o.trace, func() int { return run(ctx, o, target) }))
	case "wait":
		if err := waitReady(ctx, func(ctx context.Context) error { return probe(ctx, target) }, o.timeout); err != nil {
			fmt.Fprintln(os.Stderr, "driver:", err)
			os.Exit(exitBroken)
		}
	default:
		fmt.Fprintf(os.Stderr, "driver: unknown command %q\n", os.Args[1])
		os.Exit(exitBroken)
	}
}

func newTarget(o options) (loadgen.Target, error) {
	if o.addr == "" && o.target != "inproc" {
		return nil, errors.New("-addr is required")
	}
	if o.coalesceWrites && !strings.HasPrefix(o.target, "amqp") {
		return nil, fmt.Errorf("-coalesce-writes is for the AMQP targets, not %q", o.target)
	}
	switch o.target {
	case "amqp-quorum":
		return &loadgen.AMQPTarget{URL: o.addr, QueueType: "quorum", CoalesceWrites: o.coalesceWrites}, nil
	case "amqp-classic":
		return &loadgen.AMQPTarget{URL: o.addr, QueueType: "classic", CoalesceWrites: o.coalesceWrites}, nil
	case "amqp":
		return &loadgen.AMQPTarget{URL: o.addr, CoalesceWrites: o.coalesceWrites}, nil
	case "jetstream":
		return &jstarget.Target{URL: o.addr}, nil
	case "mqtt":
		return &mqtttarget.Target{Broker: o.addr}, nil
	case "inproc":
		return &memtarget.Target{}, nil
	case "kafka":
		return &loadgen.KafkaTarget{Brokers: strings.Split(o.addr, ","), Partitions: int32(o.partitions)}, nil
	}
	return nil, fmt.Errorf("unknown target %q", o.target)
}

// waitReady polls the broker with probe until it succeeds or timeout
// passes.
func waitReady(ctx context.Context, probe func(context.Context) error, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	backoff := 50 * time.Millisecond
	for {
		err := probe(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("broker not ready after %v: %w", timeout, err)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

// probe succeeds once a session connects and a probe queue can be
// declared: a listening port is not yet a broker that serves.
func probe(ctx context.Context, target loadgen.Target) error {
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	s, err := target.Connect(pctx)
	if err != nil {
		return err
	}
	defer s.Close()
	return s.Declare(pctx, loadgen.Topology{Route: "loadgen-probe", Queues: []string{"loadgen-probe"}})
}

// Output is the JSON line a run prints.
type Output struct {
	Target   string             `json:"target"`
	Workload string             `json:"workload"`
	Variant  string             `json:"variant"`
	Metrics  map[string]float64 `json:"metrics"`
	Result   loadgen.Result     `json:"result"`
	Error    string             `json:"error,omitempty"`
	Failed   bool               `json:"failed,omitempty"` // accounting failed: the figures do not count
}

func run(ctx context.Context, o options, target loadgen.Target) int {
	w, err := newWorkload(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "driver:", err)
		return exitBroken
	}
	if o.progress {
		w.spec.ProgressEvery = time.Second
		w.spec.Progress = func(p loadgen.Progress) {
			fmt.Fprintf(os.Stderr, "%6.1fs sent %d (%.0f/s) confirmed %d received %d (%.0f/s)\n",
				p.Elapsed.Seconds(), p.Sent, p.SentPerSec, p.Confirmed, p.Received, p.ReceivedPerSec)
		}
	}
	w.spec.RunID = rand.Uint32()
	ctx, cancel := context.WithTimeout(ctx, o.deadline)
	defer cancel()
	res, err := loadgen.Run(ctx, target, w.spec)
	out := Output{Target: cmp.Or(o.name, o.target), Workload: o.workload, Variant: o.variant, Result: res, Metrics: w.metrics(res)}
	code := exitOK
	if err != nil {
		out.Error = err.Error()
		code = exitBroken
		if errors.Is(err, loadgen.ErrAccounting) {
			out.Failed, code = true, exitAccounting
		}
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fmt.Fprintln(os.Stderr, "driver: writing the result:", err)
		return exitBroken
	}
	return code
}

// probeHTTP succeeds once GET url answers 200 (Ferry's /readyz: the node
// is bootstrapped and takes requests).
func probeHTTP(ctx context.Context, url string) error {
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(pctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("readiness URL %q: %w", url, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	resp.Body.Close() // the status says all; the body is not read
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

// profiled runs f, writing the process's CPU profile to cpuPath and its
// execution trace to tracePath while it runs, for each path that is set.
func profiled(cpuPath, tracePath string, f func() int) int {
	for _, p := range []struct {
		path  string
		start func(io.Writer) error
		stop  func()
	}{{cpuPath, pprof.StartCPUProfile, pprof.StopCPUProfile}, {tracePath, trace.Start, trace.Stop}} {
		if p.path == "" {
			continue
		}
		out, err := os.Create(p.path)
		if err != nil {
			fmt.Fprintln(os.Stderr, "driver:", err)
			return exitBroken
		}
		defer out.Close() // deferred in the loop: both run until f returns
		if err := p.start(out); err != nil {
			fmt.Fprintln(os.Stderr, "driver:", err)
			return exitBroken
		}
		defer p.stop()
	}
	return f()
}

package main

import (
	"fmt"
	"os"
	"time"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/loadgen"
)

// workload is a Spec plus what to make of its Result.
type workload struct {
	spec    loadgen.Spec
	sampler *sampler // nil without -pid
	metrics func(loadgen.Result) map[string]float64
}

func newWorkload(o options) (*workload, error) {
	w := &workload{}
	if o.pid > 0 {
		w.sampler = &sampler{pid: o.pid}
		w.spec.Observe = w.sampler.observe
	}
	s := &w.spec
	s.BodyBytes, s.InFlight, s.Prefetch = o.size, o.inflight, o.prefetch
	s.Producers, s.Duration, s.Rate = max(o.producers, 1), o.duration, o.rate
	s.Topologies = []loadgen.Topology{{Route: "bench-" + o.workload, Queues: []string{"bench-" + o.workload}}}
	switch o.workload {
	case "publish", "kafka":
		// Confirmed durable publish: the publish phase is measured; the
		// queue is then drained to account for every message.
		s.Consume = loadgen.ConsumeAfter
		w.metrics = w.publishMetrics
	case "drain":
		// Fill a queue with -messages, sample RSS at the full queue, then
		// drain it with manual acks: workloads 2 and 6 in one run.
		if o.messages == 0 {
			return nil, fmt.Errorf("drain needs -messages")
		}
		s.Messages, s.Duration = (o.messages+uint64(s.Producers)-1)/uint64(s.Producers), 0
		s.Consume = loadgen.ConsumeAfter
		w.metrics = w.drainMetrics
	case "latency":
		s.Consume = loadgen.ConsumeDuring
		w.metrics = w.latencyMetrics
	case "fanout":
		queues := make([]string, o.fanout)
		for i := range queues {
			queues[i] = fmt.Sprintf("bench-fanout-%d", i)
		}
		s.Topologies = []loadgen.Topology{{Route: "bench-fanout", Queues: queues}}
		s.Consume = loadgen.ConsumeDuring
		w.metrics = w.fanoutMetrics
	case "queues":
		// Many idle-ish queues: one logical producer per queue at -rate,
		// multiplexed on ten publishing and ten consuming sessions.
		s.Topologies = make([]loadgen.Topology, o.queues)
		for i := range s.Topologies {
			name := fmt.Sprintf("bench-q-%d", i)
			s.Topologies[i] = loadgen.Topology{Route: name, Queues: []string{name}}
		}
		s.Producers, s.PublisherSessions, s.ConsumerSessions = o.queues, min(o.queues, 10), min(o.queues, 10)
		s.Consume = loadgen.ConsumeDuring
		w.metrics = w.queuesMetrics
	default:
		return nil, fmt.Errorf("unknown workload %q", o.workload)
	}
	if o.target == "inproc" && s.Consume == loadgen.ConsumeAfter &&
		(s.Messages == 0 || s.Messages*uint64(s.Producers) > base.LoadgenMemQueueDepth) {
		// Nothing drains the in-process queue until the publish phase ends,
		// and a publish waits while it is full: the run would sit until
		// -deadline.
		return nil, fmt.Errorf("the inproc target holds %d messages per queue and consumes only after a %s workload publishes; use it with latency, fanout or queues, or drain with -messages up to %d",
			base.LoadgenMemQueueDepth, o.workload, base.LoadgenMemQueueDepth)
	}
	if o.target == "kafka" {
		for i := range s.Topologies { // a Kafka "queue" is a reader of the topic
			for j, q := range s.Topologies[i].Queues {
				s.Topologies[i].Queues[j] = s.Topologies[i].Route + "/" + q
			}
		}
	}
	return w, nil
}

func (w *workload) publishMetrics(r loadgen.Result) map[string]float64 {
	return map[string]float64{
		"publish_msgs_per_sec": r.Publish.MsgsPerSec,
		"publish_mb_per_sec":   r.Publish.BytesPerSec / 1e6,
		"consume_msgs_per_sec": r.Consume.MsgsPerSec,
		"consume_mb_per_sec":   r.Consume.BytesPerSec / 1e6,
	}
}

func (w *workload) drainMetrics(r loadgen.Result) map[string]float64 {
	m := map[string]float64{
		"fill_msgs_per_sec":    r.Publish.MsgsPerSec,
		"consume_msgs_per_sec": r.Consume.MsgsPerSec,
	}
	if w.sampler != nil && r.Tally.Confirmed > 0 {
		grown := float64(w.sampler.rssAt[loadgen.PhasePublishEnd]) - float64(w.sampler.rssAt[loadgen.PhasePublishStart])
		m["rss_bytes_per_msg"] = grown / float64(r.Tally.Confirmed)
		m["rss_full_mb"] = float64(w.sampler.rssAt[loadgen.PhasePublishEnd]) / 1e6
	}
	return m
}

func latencyMetrics(r loadgen.Result) map[string]float64 {
	ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
	return map[string]float64{
		"p50_ms": ms(r.Latency.P50), "p90_ms": ms(r.Latency.P90), "p99_ms": ms(r.Latency.P99),
		"p999_ms": ms(r.Latency.P999), "max_ms": ms(r.Latency.Max),
		"publish_msgs_per_sec": r.Publish.MsgsPerSec,
	}
}

func (w *workload) latencyMetrics(r loadgen.Result) map[string]float64 { return latencyMetrics(r) }

func (w *workload) fanoutMetrics(r loadgen.Result) map[string]float64 {
	m := latencyMetrics(r)
	m["deliveries_per_sec"] = r.Consume.MsgsPerSec
	return m
}

func (w *workload) queuesMetrics(r loadgen.Result) map[string]float64 {
	m := latencyMetrics(r)
	if w.sampler != nil {
		cpu := w.sampler.cpuAt[loadgen.PhasePublishEnd] - w.sampler.cpuAt[loadgen.PhasePublishStart]
		wall := w.sampler.wallAt[loadgen.PhasePublishEnd].Sub(w.sampler.wallAt[loadgen.PhasePublishStart])
		if wall > 0 && r.Tally.Confirmed > 0 {
			m["cpu_pct"] = 100 * cpu.Seconds() / wall.Seconds()
			m["cpu_us_per_msg"] = float64(cpu.Microseconds()) / float64(r.Tally.Confirmed)
		}
	}
	return m
}

// sampler reads the broker process's CPU time and RSS at each phase
// boundary. A failed read leaves zeros and a warning: the figure is then
// missing from the report, never invented.
type sampler struct {
	pid    int
	cpuAt  map[loadgen.Phase]time.Duration
	rssAt  map[loadgen.Phase]uint64
	wallAt map[loadgen.Phase]time.Time
}

func (s *sampler) observe(p loadgen.Phase) {
	if s.cpuAt == nil {
		s.cpuAt, s.rssAt, s.wallAt = map[loadgen.Phase]time.Duration{}, map[loadgen.Phase]uint64{}, map[loadgen.Phase]time.Time{}
	}
	s.wallAt[p] = time.Now()
	cpu, err := readCPU(s.pid)
	if err != nil {
		fmt.Fprintln(os.Stderr, "driver: warning:", err)
	}
	rss, err := readRSS(s.pid)
	if err != nil {
		fmt.Fprintln(os.Stderr, "driver: warning:", err)
	}
	s.cpuAt[p], s.rssAt[p] = cpu, rss
}

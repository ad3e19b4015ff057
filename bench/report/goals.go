package main

import (
	"fmt"
	"strings"
)

// kafka renders workload 7: Ferry's Kafka figures against the limits.
func (rs *results) kafka(b *strings.Builder, p physical) {
	b.WriteString("\n#### 7. Kafka produce (acks=all) and consume, Ferry only\n\n")
	vs := rs.variants["kafka"]
	if len(vs) == 0 {
		b.WriteString("Not measured in this run (`--only` left Ferry out, or an external Ferry was given without `--ferry-kafka`).\n")
		return
	}
	b.WriteString("| variant | produce MB/s | % of durable 1 MiB write bandwidth | consume MB/s | % of loopback TCP |\n|---|---|---|---|---|\n")
	for _, v := range vs {
		prod := rs.cell(key{"kafka", v, "ferry-kafka"}, "publish_mb_per_sec")
		cons := rs.cell(key{"kafka", v, "ferry-kafka"}, "consume_mb_per_sec")
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s |\n", v, prod, pct(prod, p.Sync1MiB/1e6), cons, pct(cons, p.LoopbackTCP/1e6))
	}
}

func pct(c cell, of float64) string {
	if c.s.N == 0 || of == 0 {
		return "—"
	}
	return fmt.Sprintf("%.0f%%", 100*c.s.Median/of)
}

// goal is one line of the goals table.
type goal struct {
	text, figure string
	met          bool
	measured     bool
}

func (rs *results) median(workload, variant, target, metric string) (float64, bool) {
	c := rs.cell(key{workload, variant, target}, metric)
	return c.s.Median, c.s.N > 0
}

func (rs *results) goals(b *strings.Builder, p physical) {
	gs := []goal{
		rs.publishGoal("1KiB-4p", "confirmed durable publish, 1 KiB × 4 producers: ≥ 4× RabbitMQ quorum and ≥ 1.5× NATS JetStream at its default"),
		rs.publishGoal("1KiB-4p coalesced", "the same, the load generator's AMQP writes coalesced (`-coalesce-writes`)"),
		rs.latencyGoal(), rs.kafkaProduceGoal(p), rs.kafkaConsumeGoal(), rs.ramGoal()}
	b.WriteString("\n### Goals\n\n| goal | figures | status |\n|---|---|---|\n")
	for _, g := range gs {
		status := "not met"
		switch {
		case !g.measured:
			status = "not met (not measured in this run: see its notes)"
		case g.met:
			status = "met"
		}
		fmt.Fprintf(b, "| %s | %s | %s |\n", g.text, g.figure, status)
	}
}

// publishGoal compares the AMQP targets' variant v with NATS's plain
// 1KiB-4p: nats.go coalesces its writes on its own, so NATS runs no
// "coalesced" variant.
func (rs *results) publishGoal(v, text string) goal {
	g := goal{text: text}
	ferry, okF := rs.median("publish", v, "ferry-amqp", "publish_msgs_per_sec")
	rq, okQ := rs.median("publish", v, "rabbitmq-quorum", "publish_msgs_per_sec")
	nd, okN := rs.median("publish", "1KiB-4p", "nats-default", "publish_msgs_per_sec")
	var parts []string
	if okF {
		parts = append(parts, "Ferry "+fmtNum(ferry))
	}
	if okQ {
		parts = append(parts, fmt.Sprintf("RabbitMQ quorum %s (goal ≥ %s)", fmtNum(rq), fmtNum(4*rq)))
	}
	if okN {
		parts = append(parts, fmt.Sprintf("NATS default %s (goal ≥ %s)", fmtNum(nd), fmtNum(1.5*nd)))
	}
	g.figure = strings.Join(parts, "; ") + " msgs/s"
	g.measured = okF && okQ && okN
	g.met = g.measured && ferry >= 4*rq && ferry >= 1.5*nd
	return g
}

func (rs *results) latencyGoal() goal {
	const v = "1000/s"
	g := goal{text: "end-to-end latency at 1,000 msg/s: p99 < 3 ms and below every peer"}
	ferry, okF := rs.median("latency", v, "ferry-amqp", "p99_ms")
	parts := []string{}
	if okF {
		parts = append(parts, fmt.Sprintf("Ferry %.2f ms", ferry))
	}
	below := true
	for _, c := range columns {
		if c.kind != peerColumn {
			continue
		}
		if peer, ok := rs.median("latency", v, c.target, "p99_ms"); ok {
			parts = append(parts, fmt.Sprintf("%s %.2f ms", c.target, peer))
			below = below && ferry < peer
		}
	}
	g.figure = "p99: " + strings.Join(parts, "; ")
	g.measured = okF
	g.met = okF && ferry < 3 && below
	return g
}

func (rs *results) kafkaProduceGoal(p physical) goal {
	g := goal{text: "Kafka produce (acks=all) ≥ 70% of durable disk bandwidth (fdatasync per 1 MiB)"}
	v, ok := rs.firstKafka("publish_mb_per_sec")
	disk := p.Sync1MiB / 1e6
	g.figure = fmt.Sprintf("disk %.1f MB/s, goal ≥ %.1f MB/s", disk, 0.7*disk)
	if ok {
		g.figure = fmt.Sprintf("Ferry %.1f MB/s; ", v) + g.figure
	}
	g.measured, g.met = ok, ok && v >= 0.7*disk
	return g
}

func (rs *results) kafkaConsumeGoal() goal {
	g := goal{text: "Kafka consume ≥ 500 MB/s", figure: "—"}
	v, ok := rs.firstKafka("consume_mb_per_sec")
	if ok {
		g.figure = fmt.Sprintf("Ferry %.1f MB/s", v)
	}
	g.measured, g.met = ok, ok && v >= 500
	return g
}

func (rs *results) firstKafka(metric string) (float64, bool) {
	for _, v := range rs.variants["kafka"] {
		if m, ok := rs.median("kafka", v, "ferry-kafka", metric); ok {
			return m, true
		}
	}
	return 0, false
}

func (rs *results) ramGoal() goal {
	g := goal{text: "RAM per ready message ≤ 64 B"}
	var parts []string
	ferry, okF := 0.0, false
	for _, v := range rs.variants["drain"] {
		if m, ok := rs.median("drain", v, "ferry-amqp", "rss_bytes_per_msg"); ok && !okF {
			ferry, okF = m, true
			parts = append(parts, fmt.Sprintf("Ferry %.0f B (%s)", m, v))
		}
		for _, c := range columns {
			if c.kind != peerColumn {
				continue
			}
			if m, ok := rs.median("drain", v, c.target, "rss_bytes_per_msg"); ok {
				parts = append(parts, fmt.Sprintf("%s %.0f B (%s)", c.target, m, v))
			}
		}
	}
	// RSS that fell during the fill (the runtime returned more memory than
	// the queue took, as with a small drain) says nothing of what a
	// message costs: it is shown, but it measures nothing.
	if okF && ferry <= 0 {
		okF = false
		parts = append(parts, "Ferry's RSS did not grow during the fill, so no figure (run a larger drain)")
	}
	g.figure = strings.Join(parts, "; ")
	g.measured, g.met = okF, okF && ferry <= 64
	return g
}

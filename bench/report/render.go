package main

import (
	"fmt"
	"math"
	"strings"
)

// column is a target as the tables show it.
type column struct {
	target string // the target's name in the results
	title  string
	ferry  string // a peer's: the Ferry target its ratio compares against
	kind   kind
	// absent is what a Ferry column's cells say when the run has no
	// result for it at all; empty: "—".
	absent string
}

type kind int

const (
	ferryColumn     kind = iota // always shown, "—" until measured
	peerColumn                  // shown when measured, with a Ferry / peer ratio
	referenceColumn             // shown when measured, no ratio
)

// columns is every target the script knows, Ferry first. A target without
// results is left out, except Ferry's, which show "—" until they exist.
var columns = []column{
	{"ferry-amqp", "Ferry (AMQP)", "", ferryColumn, ""},
	{"ferry-mqtt", "Ferry (MQTT)", "", ferryColumn, "not served yet"},
	{"ferry-kafka", "Ferry (Kafka)", "", ferryColumn, ""},
	{"rabbitmq-quorum", "RabbitMQ quorum queue (fsync before confirm)", "ferry-amqp", peerColumn, ""},
	{"rabbitmq-classic", "RabbitMQ classic queue (durable, persistent)", "ferry-amqp", peerColumn, ""},
	{"nats-sync", "NATS JetStream file, sync_interval always (fsync before PubAck)", "ferry-amqp", peerColumn, ""},
	{"nats-default", "NATS JetStream file, default sync (no fsync before PubAck)", "ferry-amqp", peerColumn, ""},
	{"mosquitto", "Mosquitto, persistence on (no fsync before PUBACK)", "ferry-mqtt", peerColumn, ""},
	{"inproc", "Load generator alone (in-process queue, no broker): the floor", "", referenceColumn, ""},
}

// table is one workload's figures for one metric.
type table struct {
	title    string
	workload string
	metric   string
	unit     string
	variants []string
	lower    bool // lower is better (latency, CPU, memory)
}

func fmtNum(v float64) string {
	switch a := math.Abs(v); {
	case a >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case a >= 1e4:
		return fmt.Sprintf("%.1fk", v/1e3)
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

func (c cell) String() string {
	switch {
	case !c.present:
		return "—"
	case c.s.N == 0:
		return fmt.Sprintf("FAILED (%d runs)", c.failed)
	}
	s := fmtNum(c.s.Median)
	if c.s.N > 1 {
		s += fmt.Sprintf(" (%s–%s)", fmtNum(c.s.Min), fmtNum(c.s.Max))
	} else {
		s += " (1 run)"
	}
	if c.failed > 0 {
		s += fmt.Sprintf(", %d failed", c.failed)
	}
	return s
}

// ratio is Ferry's median over the peer's, "—" when either is missing.
func ratio(ferry, peer cell) string {
	if ferry.s.N == 0 || peer.s.N == 0 || peer.s.Median == 0 {
		return "—"
	}
	return fmt.Sprintf("×%.2f", ferry.s.Median/peer.s.Median)
}

func (rs *results) hasWorkload(target, workload string) bool {
	for k := range rs.runs {
		if k.target == target && k.workload == workload {
			return true
		}
	}
	return false
}

func (rs *results) hasTarget(target string) bool {
	for k := range rs.runs {
		if k.target == target {
			return true
		}
	}
	return false
}

// render writes one table: a row per target, a column per variant, then
// the Ferry / peer ratios.
func (rs *results) render(b *strings.Builder, t table) {
	if t.variants == nil {
		t.variants = rs.variants[t.workload]
	}
	if len(t.variants) == 0 {
		return
	}
	fmt.Fprintf(b, "\n#### %s\n\n", t.title)
	better := "higher is better"
	if t.lower {
		better = "lower is better"
	}
	fmt.Fprintf(b, "Median (min–max) of the runs, %s; %s.\n\n", t.unit, better)
	fmt.Fprintf(b, "| target | %s |\n|---|%s\n", strings.Join(t.variants, " | "), strings.Repeat("---|", len(t.variants)))
	var peers []column
	for _, c := range columns {
		switch {
		case c.target == "ferry-kafka":
			continue // Ferry's Kafka has its own table (7)
		case c.kind == peerColumn && !rs.hasTarget(c.target):
			continue // a peer this run did not measure
		case c.kind == referenceColumn && !rs.hasWorkload(c.target, t.workload):
			continue
		}
		if c.kind == peerColumn {
			peers = append(peers, c)
		}
		row := make([]string, len(t.variants))
		for i, v := range t.variants {
			row[i] = rs.cell(key{t.workload, v, c.target}, t.metric).String()
			if c.absent != "" && !rs.hasTarget(c.target) {
				row[i] = c.absent
			}
		}
		fmt.Fprintf(b, "| %s | %s |\n", c.title, strings.Join(row, " | "))
	}
	for _, p := range peers {
		row := make([]string, len(t.variants))
		for i, v := range t.variants {
			row[i] = ratio(rs.cell(key{t.workload, v, p.ferry}, t.metric), rs.cell(key{t.workload, v, p.target}, t.metric))
		}
		fmt.Fprintf(b, "| Ferry / %s | %s |\n", p.title, strings.Join(row, " | "))
	}
}

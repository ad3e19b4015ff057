package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-mq/ferry/internal/base"
)

const section = sectionTitle + "\n\nnew figures\n"

func TestSpliceReplacesOnlyTheOwnedSection(t *testing.T) {
	doc := "# Benchmarks\n\n## Log\n\nlog figures\n\n" + sectionTitle + "\n\nold figures\n```sh\nbench/compare.sh\n```\n\n## Raft\n\nraft figures\n"
	got, err := splice(doc, section)
	if err != nil {
		t.Fatal(err)
	}
	want := "# Benchmarks\n\n## Log\n\nlog figures\n\n" + sectionTitle + "\n\nnew figures\n\n## Raft\n\nraft figures\n"
	if got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestSpliceAppendsAMissingSectionAndIsIdempotent(t *testing.T) {
	doc := "# Benchmarks\n\n## Log\n\nlog figures"
	once, err := splice(doc, section)
	if err != nil {
		t.Fatal(err)
	}
	if want := doc + "\n\n" + section; once != want {
		t.Errorf("append: got %q, want %q", once, want)
	}
	twice, _ := splice(once, section)
	if twice != once {
		t.Errorf("second splice changed the document: got %q, want %q", twice, once)
	}
	if _, err := splice(doc, "## Another section\n"); err == nil {
		t.Errorf("a section with another heading: got no error")
	}
}

func TestUpdateDocCreatesAMissingDocument(t *testing.T) {
	path := filepath.Join(t.TempDir(), "benchmarks.md")
	if err := updateDoc(path, section); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if want := "# Benchmarks\n\n" + section; string(b) != want {
		t.Errorf("got %q, want %q", b, want)
	}
}

func TestCellsShowMediansSpreadsFailuresAndRatios(t *testing.T) {
	lines := []string{
		`{"target":"rabbitmq-quorum","workload":"publish","variant":"1KiB-4p","metrics":{"m":300}}`,
		`{"target":"rabbitmq-quorum","workload":"publish","variant":"1KiB-4p","metrics":{"m":100}}`,
		`{"target":"rabbitmq-quorum","workload":"publish","variant":"1KiB-4p","metrics":{"m":200}}`,
		`{"target":"rabbitmq-quorum","workload":"publish","variant":"1KiB-4p","metrics":{"m":9999},"failed":true,"error":"lost"}`,
		`{"target":"ferry-amqp","workload":"publish","variant":"1KiB-4p","metrics":{"m":800}}`,
		`{"target":"mosquitto","workload":"publish","variant":"1KiB-4p","metrics":{"m":1},"failed":true,"error":"lost"}`,
	}
	rs := resultsOf(t, lines...)
	q := rs.cell(key{"publish", "1KiB-4p", "rabbitmq-quorum"}, "m")
	if got, want := q.String(), "200 (100–300), 1 failed"; got != want {
		t.Errorf("peer cell: got %q, want %q", got, want)
	}
	f := rs.cell(key{"publish", "1KiB-4p", "ferry-amqp"}, "m")
	if got, want := ratio(f, q), "×4.00"; got != want {
		t.Errorf("ratio: got %q, want %q", got, want)
	}
	m := rs.cell(key{"publish", "1KiB-4p", "mosquitto"}, "m")
	if got, want := m.String(), "FAILED (1 runs)"; got != want {
		t.Errorf("failed cell: got %q, want %q", got, want)
	}
	if got := ratio(f, m); got != "—" {
		t.Errorf("ratio to a failed cell: got %q, want —", got)
	}
	if got := rs.cell(key{"publish", "1KiB-4p", "ferry-kafka"}, "m").String(); got != "—" {
		t.Errorf("absent cell: got %q, want —", got)
	}
	var b strings.Builder
	rs.render(&b, table{title: "T", workload: "publish", metric: "m", unit: "u"})
	for _, want := range []string{"| Ferry (AMQP) | 800 (1 run) |", "| Ferry (MQTT) | not served yet |", "| Ferry / RabbitMQ quorum queue (fsync before confirm) | ×4.00 |"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
}

func TestResultLinesAreBoundedAtTheLimit(t *testing.T) {
	dir := t.TempDir()
	line := func(n int) string { // a valid result line of exactly n bytes
		head := `{"target":"t","workload":"w","variant":"v","metrics":{}`
		return head + strings.Repeat(" ", n-len(head)-1) + "}"
	}
	for _, c := range []struct {
		n  int
		ok bool
	}{{base.LoadgenResultLineBytesMax, true}, {base.LoadgenResultLineBytesMax + 1, false}} {
		path := filepath.Join(dir, "r.jsonl")
		if err := os.WriteFile(path, []byte(line(c.n)+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := readResults(path)
		if (err == nil) != c.ok {
			t.Errorf("line of %d bytes: got %v, want ok=%v", c.n, err, c.ok)
		}
	}
}

func FuzzSplice(f *testing.F) {
	f.Add("# Benchmarks\n\n## Log\n\nx\n")
	f.Add("# B\n" + sectionTitle + "\nold\n## Next\n")
	f.Add("```\n" + sectionTitle + "\n```\n")
	f.Fuzz(func(t *testing.T, doc string) {
		once, err := splice(doc, section)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(once, section) {
			t.Fatalf("the section is missing from %q", once)
		}
		if twice, _ := splice(once, section); twice != once {
			t.Fatalf("splicing twice changed the document:\n%q\n%q", once, twice)
		}
	})
}

func TestSectionShowsTheFdatasyncLatencyTheRunMeasured(t *testing.T) {
	rs := &results{runs: map[key][]run{}, variants: map[string][]string{}}
	var p physical
	p.SyncLatency.P50, p.SyncLatency.P99, p.SyncLatency.P999, p.SyncLatency.Max = 0.1e6, 5.8e6, 15.5e6, 23.4e6
	got := rs.section(inputs{command: "bench/compare.sh", physical: p})
	if want := "| fdatasync latency (the same), p50 / p99 / p99.9 / max | 0.10 / 5.80 / 15.50 / 23.40 ms |"; !strings.Contains(got, want) {
		t.Errorf("section lacks %q:\n%s", want, got)
	}
	if none := (&results{runs: map[key][]run{}, variants: map[string][]string{}}).section(inputs{}); strings.Contains(none, "fdatasync latency") {
		t.Errorf("a physical.json without latencies (an older run) got a latency row:\n%s", none)
	}
}

func TestTheCoalescedPublishGoalComparesNATSsPlainVariant(t *testing.T) {
	lines := []string{
		`{"target":"ferry-amqp","workload":"publish","variant":"1KiB-4p","metrics":{"publish_msgs_per_sec":300}}`,
		`{"target":"ferry-amqp","workload":"publish","variant":"1KiB-4p coalesced","metrics":{"publish_msgs_per_sec":500}}`,
		`{"target":"rabbitmq-quorum","workload":"publish","variant":"1KiB-4p","metrics":{"publish_msgs_per_sec":100}}`,
		`{"target":"rabbitmq-quorum","workload":"publish","variant":"1KiB-4p coalesced","metrics":{"publish_msgs_per_sec":110}}`,
		`{"target":"nats-default","workload":"publish","variant":"1KiB-4p","metrics":{"publish_msgs_per_sec":200}}`,
	}
	rs := resultsOf(t, lines...)
	plain := rs.publishGoal("1KiB-4p", "plain")
	if !plain.measured || plain.met {
		t.Errorf("plain goal: %+v, want measured and not met (300 < 4 × 100)", plain)
	}
	co := rs.publishGoal("1KiB-4p coalesced", "coalesced")
	if !co.measured || !co.met || !strings.Contains(co.figure, "NATS default 200") {
		t.Errorf("coalesced goal: %+v, want measured and met (500 ≥ 4 × 110 and ≥ 1.5 × NATS's 200)", co)
	}
}

func TestTheRAMGoalIsNotMetByAnRSSThatFell(t *testing.T) {
	for _, tc := range []struct {
		rss           string
		measured, met bool
	}{
		{"-287", false, false},
		{"0", false, false},
		{"45", true, true},
		{"213", true, false},
	} {
		rs := resultsOf(t, `{"target":"ferry-amqp","workload":"drain","variant":"1Mx128B","metrics":{"rss_bytes_per_msg":`+tc.rss+`}}`)
		g := rs.ramGoal()
		if g.measured != tc.measured || g.met != tc.met {
			t.Errorf("%s B per message: measured %v met %v, want %v %v (%s)", tc.rss, g.measured, g.met, tc.measured, tc.met, g.figure)
		}
	}
}

// resultsOf reads lines as a results file.
func resultsOf(t *testing.T, lines ...string) *results {
	t.Helper()
	path := filepath.Join(t.TempDir(), "r.jsonl")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rs, err := readResults(path)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

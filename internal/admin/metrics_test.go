package admin

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/broker"
)

// scrape fetches /metrics and parses it with Prometheus' own text parser.
func scrape(t *testing.T, a *api) map[string]*dto.MetricFamily {
	t.Helper()
	r := a.doAs("", "", "GET", "/metrics", nil)
	if r.status != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", r.status, r.body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(r.body))
	if err != nil {
		t.Fatalf("the exposition does not parse: %v\n%s", err, r.body)
	}
	return fams
}

// value returns the value of the metric of fam whose labels include want.
func value(t *testing.T, fams map[string]*dto.MetricFamily, fam string, want map[string]string) (float64, bool) {
	t.Helper()
	f := fams[fam]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.Metric {
		got := map[string]string{}
		for _, l := range m.Label {
			got[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if got[k] != v {
				continue next
			}
		}
		switch {
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

func TestMetricsScrapeParsesAndReportsQueuesConnectionsAndRuntime(t *testing.T) {
	engine := EngineStats{Fsyncs: 12, LeaderChanges: 2, Proposals: 40, EntriesApplied: 39,
		FsyncSeconds:  Histogram{Count: 12, Sum: 0.024, Buckets: map[float64]uint64{0.001: 2, 0.005: 12}},
		CommitSeconds: Histogram{Count: 40, Sum: 0.2, Buckets: map[float64]uint64{0.01: 40}}, Snapshots: 3, HandshakesRefused: 4,
		SnapshotSeconds: Histogram{Count: 3, Sum: 0.09, Buckets: map[float64]uint64{0.05: 3}},
		FrontendStats: FrontendStats{BytesIn: map[string]uint64{"amqp": 1000}, BytesOut: map[string]uint64{"amqp": 2000},
			Errors: map[string]map[string]uint64{"amqp": {"not_found": 3}}}}
	a := newAPI(t, openBroker(t), Config{Version: "v7", Engine: func() EngineStats { return engine }})
	a.must(http.StatusNoContent, "PUT", "/api/queues/jobs", nil)
	a.must(http.StatusOK, "POST", "/api/queues/jobs/publish", PublishRequest{Messages: []MessageIn{{Body: "a"}, {Body: "b"}}})
	a.must(http.StatusOK, "POST", "/api/queues/jobs/get", GetRequest{AckMode: "manual"})
	a.do("GET", "/api/queues/missing", nil) // one not_found
	a.must(http.StatusNoContent, "PUT", "/api/streams/s", nil)
	a.must(http.StatusOK, "POST", "/api/queues/s/publish", PublishRequest{Messages: []MessageIn{{Body: "x"}}})

	fams := scrape(t, a)
	q := map[string]string{"tenant": "/", "queue": "jobs"}
	for _, tt := range []struct {
		fam    string
		labels map[string]string
		want   float64
	}{
		{"ferry_queue_depth_messages", merge(q, "state", "ready"), 1},
		{"ferry_queue_depth_messages", merge(q, "state", "unacked"), 1},
		{"ferry_queue_depth_bytes", merge(q, "state", "ready"), 1},
		{"ferry_queue_consumers", q, 0},
		{"ferry_queue_events_total", merge(q, "event", "enqueued"), 2},
		{"ferry_queue_events_total", merge(q, "event", "delivered"), 1},
		{"ferry_queue_events_total", merge(q, "event", "relocated"), 0},
		{"ferry_stream_high_watermark_offset", map[string]string{"stream": "s", "partition": "0"}, -1},
		{"ferry_stream_retained_messages", map[string]string{"stream": "s", "partition": "0"}, 1},
		{"ferry_client_connections", map[string]string{"protocol": "http"}, 1},
		{"ferry_node_info", map[string]string{"node": "1", "version": "v7"}, 1},
		{"ferry_flow_blocked", nil, 0},
		{"ferry_metrics_entities_truncated", nil, 0},
		{"ferry_errors_total", map[string]string{"protocol": "http", "code": "not_found"}, 1},
		{"ferry_errors_total", map[string]string{"protocol": "amqp", "code": "not_found"}, 3},
		{"ferry_http_requests_total", map[string]string{"operation": "getQueue", "code": "404"}, 1},
		{"ferry_storage_fsyncs_total", nil, 12},
		{"ferry_storage_fsync_duration_seconds", nil, 12},
		{"ferry_raft_leader_changes_total", nil, 2},
		{"ferry_raft_proposals_total", nil, 40},
		{"ferry_raft_commit_duration_seconds", nil, 40},
		{"ferry_raft_entries_applied_total", nil, 39},
		{"ferry_raft_snapshots_total", nil, 3},
		{"ferry_raft_snapshot_duration_seconds", nil, 3},
		{"ferry_replication_handshakes_refused_total", nil, 4},
		{"ferry_network_received_bytes_total", map[string]string{"protocol": "amqp"}, 1000},
		{"ferry_network_sent_bytes_total", map[string]string{"protocol": "amqp"}, 2000},
		{"go_goroutines", nil, -1},
		{"process_cpu_seconds_total", nil, -1},
	} {
		got, ok := value(t, fams, tt.fam, tt.labels)
		if !ok {
			t.Errorf("%s%v: missing", tt.fam, tt.labels)
		} else if tt.want >= 0 && got != tt.want {
			t.Errorf("%s%v = %v, want %v", tt.fam, tt.labels, got, tt.want)
		}
	}
	if hw, _ := value(t, fams, "ferry_stream_high_watermark_offset", map[string]string{"stream": "s"}); hw < 1 {
		t.Errorf("stream high watermark %v after a publish, want >= 1", hw)
	}
	name := regexp.MustCompile(`^ferry_[a-z]+_[a-z_]+$`)
	for fam, f := range fams {
		if !strings.HasPrefix(fam, "ferry_") {
			continue
		}
		if !name.MatchString(fam) {
			t.Errorf("%s does not follow ferry_<subsystem>_<name>", fam)
		}
		if (f.GetType() == dto.MetricType_COUNTER) != strings.HasSuffix(fam, "_total") {
			t.Errorf("%s is a %v: counters and only counters end in _total", fam, f.GetType())
		}
		if strings.Contains(fam, "millis") || strings.Contains(fam, "_ms") {
			t.Errorf("%s is not in base units", fam)
		}
	}
}

func merge(m map[string]string, k, v string) map[string]string {
	out := map[string]string{k: v}
	for a, b := range m {
		out[a] = b
	}
	return out
}

func TestMetricsEntitiesBoundTruncatesAtItsEdge(t *testing.T) {
	b := openBroker(t)
	for _, tt := range []struct {
		max       int
		truncated float64
		queues    int
	}{{2, 0, 2}, {1, 1, 1}} {
		a := newAPI(t, b, Config{MetricsEntitiesMax: tt.max})
		a.must(http.StatusNoContent, "PUT", "/api/queues/q1", nil)
		a.must(http.StatusNoContent, "PUT", "/api/queues/q2", nil)
		fams := scrape(t, a)
		if got, _ := value(t, fams, "ferry_metrics_entities_truncated", nil); got != tt.truncated {
			t.Errorf("bound %d with 2 queues: truncated %v, want %v", tt.max, got, tt.truncated)
		}
		seen := map[string]bool{}
		for _, m := range fams["ferry_queue_consumers"].GetMetric() {
			for _, l := range m.Label {
				if l.GetName() == "queue" {
					seen[l.GetValue()] = true
				}
			}
		}
		if len(seen) != tt.queues {
			t.Errorf("bound %d: %d queues reported, want %d", tt.max, len(seen), tt.queues)
		}
	}
}

// TestMetricsDocListsEveryFamily fails when a ferry_ family the node
// serves is missing from docs/metrics.md.
func TestMetricsDocListsEveryFamily(t *testing.T) {
	doc, err := os.ReadFile("../../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	a := newAPI(t, openBroker(t), Config{Engine: func() EngineStats {
		return EngineStats{FrontendStats: FrontendStats{BytesIn: map[string]uint64{"amqp": 1}, BytesOut: map[string]uint64{"amqp": 1}}}
	}})
	a.must(http.StatusNoContent, "PUT", "/api/queues/q", nil)
	a.must(http.StatusNoContent, "PUT", "/api/streams/s", nil)
	a.do("GET", "/api/queues/missing", nil)
	for fam := range scrape(t, a) {
		if strings.HasPrefix(fam, "ferry_") && !strings.Contains(string(doc), "`"+fam+"`") {
			t.Errorf("docs/metrics.md does not list %s", fam)
		}
	}
}

// Without Config.Engine the scrape reads the broker's own engine
// (broker.EngineMetrics): the Raft and fsync families are there, with
// the work the test caused counted, and the histograms' buckets are
// cumulative.
func TestMetricsReadTheBrokersEngineWithoutConfigEngine(t *testing.T) {
	a := newAPI(t, openBroker(t), Config{})
	a.must(http.StatusNoContent, "PUT", "/api/queues/jobs", nil)
	a.must(http.StatusOK, "POST", "/api/queues/jobs/publish", PublishRequest{Messages: []MessageIn{{Body: "a"}}})
	fams := scrape(t, a)
	for _, fam := range []string{"ferry_raft_leader_changes_total", "ferry_raft_proposals_total", "ferry_raft_entries_applied_total",
		"ferry_storage_fsyncs_total", "ferry_storage_fsync_duration_seconds", "ferry_raft_commit_duration_seconds"} {
		if got, ok := value(t, fams, fam, nil); !ok || got < 1 {
			t.Errorf("%s: %v (present %v), want at least 1 after a declare and a publish", fam, got, ok)
		}
	}
	for _, fam := range []string{"ferry_raft_proposals_failed_total", "ferry_raft_snapshots_total", "ferry_raft_snapshot_duration_seconds"} {
		if _, ok := value(t, fams, fam, nil); !ok {
			t.Errorf("%s: missing", fam)
		}
	}
	for _, fam := range []string{"ferry_storage_fsync_duration_seconds", "ferry_raft_commit_duration_seconds"} {
		h := fams[fam].Metric[0].Histogram
		prev := uint64(0)
		for _, b := range h.Bucket {
			if b.GetCumulativeCount() < prev {
				t.Fatalf("%s: bucket le=%v holds %d, fewer than the bucket before (%d): not cumulative", fam, b.GetUpperBound(), b.GetCumulativeCount(), prev)
			}
			prev = b.GetCumulativeCount()
		}
		if prev > h.GetSampleCount() {
			t.Fatalf("%s: the last bucket holds %d, more than the %d observations", fam, prev, h.GetSampleCount())
		}
	}
}

// Without Config.Engine, Config.Frontends supplies the front ends' byte
// and error counts next to the broker's own engine families.
func TestMetricsReportTheFrontendsCountsNextToTheBrokersEngine(t *testing.T) {
	a := newAPI(t, openBroker(t), Config{Frontends: func() FrontendStats {
		return FrontendStats{BytesIn: map[string]uint64{"amqp": 123}, BytesOut: map[string]uint64{"amqp": 456},
			Errors: map[string]map[string]uint64{"amqp": {"not_found": 2}}}
	}})
	a.must(http.StatusNoContent, "PUT", "/api/queues/jobs", nil)
	fams := scrape(t, a)
	for _, tt := range []struct {
		fam    string
		labels map[string]string
		want   float64
	}{
		{"ferry_network_received_bytes_total", map[string]string{"protocol": "amqp"}, 123},
		{"ferry_network_sent_bytes_total", map[string]string{"protocol": "amqp"}, 456},
		{"ferry_errors_total", map[string]string{"protocol": "amqp", "code": "not_found"}, 2},
	} {
		if got, ok := value(t, fams, tt.fam, tt.labels); !ok || got != tt.want {
			t.Errorf("%s%v = %v (present %v), want %v", tt.fam, tt.labels, got, ok, tt.want)
		}
	}
	if got, ok := value(t, fams, "ferry_raft_proposals_total", nil); !ok || got < 1 {
		t.Errorf("ferry_raft_proposals_total = %v (present %v): the broker's engine families must stay", got, ok)
	}
}

// TestMetricsReportConsumerLagPerGroupAndPartition: a group's committed
// offsets, read from the partitions' replicas on this node, become
// ferry_stream_consumer_lag series (issue 7), counted to the end of the
// data, not to the high watermark Ferry's own entries move.
func TestMetricsReportConsumerLagPerGroupAndPartition(t *testing.T) {
	b := openBroker(t)
	a := newAPI(t, b, Config{})
	a.must(http.StatusNoContent, "PUT", "/api/streams/lagging", map[string]any{"partitions": 2})
	c, err := b.OpenConnection(broker.ConnInfo{ID: "lag-test", Protocol: "test"}, broker.Principal{User: "guest", Tenant: "/"}, func(string) {})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	p1 := broker.PartitionRef{Stream: "lagging", Partition: 1}
	if res := c.CommitOffsets(context.Background(), "readers", -1, "", "", map[broker.PartitionRef]broker.CommittedOffset{p1: {Offset: 0, LeaderEpoch: -1}}); res[p1] != nil {
		t.Fatalf("commit: %v", res[p1])
	}
	fams := scrape(t, a)
	hw, ok := value(t, fams, "ferry_stream_high_watermark_offset", map[string]string{"stream": "lagging", "partition": "1"})
	if !ok || hw < 1 {
		t.Fatalf("partition 1's high watermark = %v (present %v), want at least the commit's entry", hw, ok)
	}
	labels := map[string]string{"tenant": "/", "stream": "lagging", "partition": "1", "group": "readers"}
	if got, ok := value(t, fams, "ferry_stream_consumer_lag", labels); !ok || got != 0 {
		t.Errorf("ferry_stream_consumer_lag%v = %v (present %v), want 0: the partition holds no data, only Raft's and the commit's entries (high watermark %v)", labels, got, ok, hw)
	}
	if got := len(fams["ferry_stream_consumer_lag"].GetMetric()); got != 1 {
		t.Errorf("%d lag series, want 1: partition 0 has no committed offset", got)
	}
	if got, ok := value(t, fams, "ferry_stream_consumer_lag_truncated", nil); !ok || got != 0 {
		t.Errorf("ferry_stream_consumer_lag_truncated = %v (present %v), want 0", got, ok)
	}
}

// lagLimited is a broker whose lag reads record the limit asked for and
// always report truncation.
type lagLimited struct {
	*broker.Broker
	mu    sync.Mutex
	asked []int // guarded by mu
}

func (l *lagLimited) StreamConsumerLag(tenant, name string, limit int) ([]broker.ConsumerLag, bool, error) {
	l.mu.Lock()
	l.asked = append(l.asked, limit)
	l.mu.Unlock()
	lags, _, err := l.Broker.StreamConsumerLag(tenant, name, limit)
	return lags, true, err
}

// A scrape asks the broker for at most AdminMetricsConsumerLagSeriesMax
// lag series and says when the broker left some out.
func TestMetricsBoundConsumerLagSeriesAndSayWhenTruncated(t *testing.T) {
	b := &lagLimited{Broker: openBroker(t)}
	a := newAPI(t, b, Config{})
	a.must(http.StatusNoContent, "PUT", "/api/streams/one", nil)
	a.must(http.StatusNoContent, "PUT", "/api/streams/two", nil)
	fams := scrape(t, a)
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.asked) != 1 || b.asked[0] != base.AdminMetricsConsumerLagSeriesMax {
		t.Errorf("limits asked = %v, want [%d] (none after a truncated answer)", b.asked, base.AdminMetricsConsumerLagSeriesMax)
	}
	if got, ok := value(t, fams, "ferry_stream_consumer_lag_truncated", nil); !ok || got != 1 {
		t.Errorf("ferry_stream_consumer_lag_truncated = %v (present %v), want 1", got, ok)
	}
}

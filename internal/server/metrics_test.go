package server

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// scrapeMetrics reads a node's /metrics and parses it with Prometheus'
// text parser.
func scrapeMetrics(t *testing.T, s *Server) map[string]*dto.MetricFamily {
	t.Helper()
	httpAddr, _ := s.Addr("http")
	resp, err := http.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("the exposition does not parse: %v", err)
	}
	return fams
}

// metricValue returns the value of the first series of fam whose labels
// include labels (a counter's or a gauge's), and whether there is one.
func metricValue(fams map[string]*dto.MetricFamily, fam string, labels map[string]string) (float64, bool) {
next:
	for _, m := range fams[fam].GetMetric() {
		found := 0
		for _, l := range m.GetLabel() {
			if want, ok := labels[l.GetName()]; ok {
				if want != l.GetValue() {
					continue next
				}
				found++
			}
		}
		if found != len(labels) {
			continue
		}
		if m.GetCounter() != nil {
			return m.GetCounter().GetValue(), true
		}
		return m.GetGauge().GetValue(), true
	}
	return 0, false
}

// kafkaNode starts a ready single node with its Kafka listener and
// returns it with a franz-go client of it.
func kafkaNode(t *testing.T, opts ...kgo.Opt) (*Server, *kgo.Client) {
	t.Helper()
	cfg := testConfig(t.TempDir())
	cfg.Listeners.Kafka = "127.0.0.1:0"
	s := startReady(t, cfg, io.Discard)
	t.Cleanup(func() { shutdown(t, s) })
	addr, _ := s.Addr("kafka")
	kc, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kc.Close)
	return s, kc
}

// TestMetricsCountKafkaBytesAndErrors: a node's /metrics reports what its
// Kafka front end read, wrote and answered with error codes, by Kafka's
// name for the code (issue 7: bytes in and out, errors by code).
func TestMetricsCountKafkaBytesAndErrors(t *testing.T) {
	s, kc := kafkaNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req := kmsg.NewPtrListOffsetsRequest()
	topic := kmsg.NewListOffsetsRequestTopic()
	topic.Topic = "ghost"
	for p := range int32(2) {
		part := kmsg.NewListOffsetsRequestTopicPartition()
		part.Partition, part.Timestamp = p, -1
		topic.Partitions = append(topic.Partitions, part)
	}
	req.Topics = append(req.Topics, topic)
	// Straight to the node: a sharded request would ask Metadata first,
	// which also answers UNKNOWN_TOPIC_OR_PARTITION.
	kresp, err := kc.SeedBrokers()[0].Request(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	resp := kresp.(*kmsg.ListOffsetsResponse)
	for _, p := range resp.Topics[0].Partitions {
		if got := kerr.ErrorForCode(p.ErrorCode); got != kerr.UnknownTopicOrPartition {
			t.Fatalf("ListOffsets of a missing topic, partition %d: got %v, want UNKNOWN_TOPIC_OR_PARTITION", p.Partition, got)
		}
	}
	fams := scrapeMetrics(t, s)
	for _, fam := range []string{"ferry_network_received_bytes_total", "ferry_network_sent_bytes_total"} {
		// At least the ApiVersions, Metadata and ListOffsets exchanges.
		if got, ok := metricValue(fams, fam, map[string]string{"protocol": "kafka"}); !ok || got < 50 {
			t.Errorf("%s{protocol=kafka} = %v (present %v) after three requests, want at least 50", fam, got, ok)
		}
	}
	labels := map[string]string{"protocol": "kafka", "code": "UNKNOWN_TOPIC_OR_PARTITION"}
	if got, ok := metricValue(fams, "ferry_errors_total", labels); got != 2 {
		t.Errorf("ferry_errors_total%v = %v (present %v), want 2 (one per partition)", labels, got, ok)
	}
}

// TestMetricsReportKafkaConsumerLag: offsets a Kafka client commits show
// up on the node's /metrics as the group's lag, the end of the data minus
// the committed offset, per partition (issue 7); the commit's own entry
// moves the high watermark but is not counted.
func TestMetricsReportKafkaConsumerLag(t *testing.T) {
	s, kc := kafkaNode(t, kgo.AllowAutoTopicCreation())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Producing creates the topic (kafka.auto_create_topics, on by default).
	for i := range 5 {
		r := &kgo.Record{Topic: "lagged", Partition: 0, Value: []byte{byte(i)}}
		if err := kc.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatalf("produce %d: %v", i, err)
		}
	}
	dataEnd, ok := metricValue(scrapeMetrics(t, s), "ferry_stream_high_watermark_offset", map[string]string{"stream": "lagged", "partition": "0"})
	if !ok || dataEnd < 5 {
		t.Fatalf("high watermark after 5 records = %v (present %v), want at least 5", dataEnd, ok)
	}
	commit := kmsg.NewPtrOffsetCommitRequest()
	commit.Group, commit.Generation = "lag-readers", -1 // a standalone consumer's commit
	topic := kmsg.NewOffsetCommitRequestTopic()
	topic.Topic = "lagged"
	part := kmsg.NewOffsetCommitRequestTopicPartition()
	part.Partition, part.Offset = 0, 2
	topic.Partitions = append(topic.Partitions, part)
	commit.Topics = append(commit.Topics, topic)
	resp, err := commit.RequestWith(ctx, kc)
	if err != nil {
		t.Fatal(err)
	}
	if err := kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode); err != nil {
		t.Fatalf("OffsetCommit: %v", err)
	}
	fams := scrapeMetrics(t, s)
	hw, ok := metricValue(fams, "ferry_stream_high_watermark_offset", map[string]string{"stream": "lagged", "partition": "0"})
	if !ok || hw != dataEnd+1 {
		t.Fatalf("high watermark after the commit = %v (present %v), want %v: the data and the commit", hw, ok, dataEnd+1)
	}
	labels := map[string]string{"tenant": "/", "stream": "lagged", "partition": "0", "group": "lag-readers"}
	if got, ok := metricValue(fams, "ferry_stream_consumer_lag", labels); !ok || got != dataEnd-2 {
		t.Errorf("ferry_stream_consumer_lag%v = %v (present %v), want %v (the end of the data - 2)", labels, got, ok, dataEnd-2)
	}
}

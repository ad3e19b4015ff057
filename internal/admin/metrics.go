package admin

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/broker"
)

// Metrics follow Prometheus' conventions: ferry_<subsystem>_<name>_<unit>,
// base units (seconds, bytes), counters ending in _total. The broker's
// state is read at scrape time (brokerCollector): no metric is updated
// per message on a hot path; the API's own request counters are atomic
// increments per request. docs/metrics.md lists every family.

// EngineStats are the storage and replication figures of the node, read
// at each scrape through Config.Engine. Counters are totals since the
// process started.
type EngineStats struct {
	Fsyncs         uint64
	FsyncSeconds   Histogram // the latency of each fsync of the log and of the metadata store
	LeaderChanges  uint64    // times a group on this node saw its leader change
	Proposals      uint64    // commands proposed to Raft groups led here
	ProposalsFail  uint64    // proposals that failed (dropped, not leader, overloaded)
	CommitSeconds  Histogram // from proposal to commit, on the leader
	EntriesApplied uint64
	Snapshots      uint64 // FSM snapshots taken by the groups on this node
	// HandshakesRefused counts replication connections refused because the
	// peer belongs to another cluster.
	HandshakesRefused uint64
	// SnapshotSeconds is how long each snapshot held its engine loop.
	SnapshotSeconds Histogram
	// FrontendStats are the front ends' counters, reported with the
	// engine's when Config.Engine supplies both.
	FrontendStats
}

// FrontendStats are the protocol front ends' counters since start.
type FrontendStats struct {
	// BytesIn and BytesOut are the bytes read from and written to client
	// connections, by protocol ("amqp", "kafka", "http", ...).
	BytesIn, BytesOut map[string]uint64
	// Errors are the errors front ends answered clients with, by protocol
	// and then by code name (base.Code.String()); "http" is left out of
	// the scrape (the API counts its own errors).
	Errors map[string]map[string]uint64
}

// Histogram is a cumulative histogram: Buckets maps each upper bound (in
// seconds) to the count of observations at or below it.
type Histogram struct {
	Count   uint64
	Sum     float64
	Buckets map[float64]uint64
}

// apiMetrics are the HTTP API's own counters.
type apiMetrics struct {
	requests *prometheus.CounterVec
	errors   *prometheus.CounterVec
}

func newAPIMetrics() *apiMetrics {
	return &apiMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ferry_http_requests_total",
			Help: "Requests served by the HTTP API, by operation and status code."}, []string{"operation", "code"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ferry_errors_total",
			Help: "Errors answered to clients, by protocol and stable error code."}, []string{"protocol", "code"}),
	}
}

func (m *apiMetrics) Describe(ch chan<- *prometheus.Desc) {
	m.requests.Describe(ch)
	m.errors.Describe(ch)
}

func (m *apiMetrics) Collect(ch chan<- prometheus.Metric) {
	m.requests.Collect(ch)
	m.errors.Collect(ch)
}

func (m *apiMetrics) request(rt *route, status int) {
	m.requests.WithLabelValues(rt.id, strconv.Itoa(status)).Inc()
}

func (m *apiMetrics) apiError(c base.Code) {
	m.errors.WithLabelValues("http", c.String()).Inc()
}

var (
	descNodeInfo = prometheus.NewDesc("ferry_node_info", "Constant 1, labelled with the node id and version.", []string{"node", "version"}, nil)
	descBlocked  = prometheus.NewDesc("ferry_flow_blocked", "1 while publishers are blocked by a memory or disk watermark.", nil, nil)
	descConns    = prometheus.NewDesc("ferry_client_connections", "Open client connections, by protocol.", []string{"protocol"}, nil)

	queueLabels      = []string{"tenant", "queue"}
	descQueueDepth   = prometheus.NewDesc("ferry_queue_depth_messages", "Messages in a queue, by state (ready, unacked, delayed, dead_letter).", append(queueLabels, "state"), nil)
	descQueueBytes   = prometheus.NewDesc("ferry_queue_depth_bytes", "Message bytes in a queue, by state (ready, unacked, delayed).", append(queueLabels, "state"), nil)
	descQueueConsum  = prometheus.NewDesc("ferry_queue_consumers", "Consumers subscribed to a queue.", queueLabels, nil)
	descQueueEvents  = prometheus.NewDesc("ferry_queue_events_total", "Message events of a queue since it was created (enqueued, delivered, redelivered, acked, returned, expired, dead_lettered, dropped, deduplicated, rejected).", append(queueLabels, "event"), nil)
	descQueueLeader  = prometheus.NewDesc("ferry_queue_leader", "The node id of the queue's leader as this node knows it (0: unknown).", queueLabels, nil)
	partLabels       = []string{"tenant", "stream", "partition"}
	descStreamHW     = prometheus.NewDesc("ferry_stream_high_watermark_offset", "The next offset of a stream partition (its high watermark).", partLabels, nil)
	descStreamStart  = prometheus.NewDesc("ferry_stream_log_start_offset", "The first retained offset of a stream partition.", partLabels, nil)
	descStreamBytes  = prometheus.NewDesc("ferry_stream_retained_bytes", "Bytes retained by a stream partition.", partLabels, nil)
	descStreamMsgs   = prometheus.NewDesc("ferry_stream_retained_messages", "Messages (records) retained by a stream partition.", partLabels, nil)
	descStreamLag    = prometheus.NewDesc("ferry_stream_consumer_lag", "Offsets a consumer group has yet to read on a stream partition: the end of its data minus the group's committed offset.", []string{"tenant", "stream", "partition", "group"}, nil)
	descLagTruncated = prometheus.NewDesc("ferry_stream_consumer_lag_truncated", "1 when the scrape left out consumer lag series past the per-scrape bound (AdminMetricsConsumerLagSeriesMax).", nil, nil)
	descTruncated    = prometheus.NewDesc("ferry_metrics_entities_truncated", "1 when the scrape left out queues or streams past the per-scrape bound (AdminMetricsEntitiesMax).", nil, nil)
	descFsyncs       = prometheus.NewDesc("ferry_storage_fsyncs_total", "Fsyncs of the message logs and the metadata store.", nil, nil)
	descFsyncSec     = prometheus.NewDesc("ferry_storage_fsync_duration_seconds", "Latency of the node's fsyncs.", nil, nil)
	descLeaderChg    = prometheus.NewDesc("ferry_raft_leader_changes_total", "Leader changes seen by the Raft groups on this node.", nil, nil)
	descProposals    = prometheus.NewDesc("ferry_raft_proposals_total", "Commands and data batches proposed through this node's engine.", nil, nil)
	descProposalsErr = prometheus.NewDesc("ferry_raft_proposals_failed_total", "Proposals that failed.", nil, nil)
	descCommitSec    = prometheus.NewDesc("ferry_raft_commit_duration_seconds", "Time from a proposal to its outcome on this node (committed and applied, or failed).", nil, nil)
	descApplied      = prometheus.NewDesc("ferry_raft_entries_applied_total", "Raft entries applied to state machines on this node.", nil, nil)
	descSnapshots    = prometheus.NewDesc("ferry_raft_snapshots_total", "State machine snapshots taken by the Raft groups on this node.", nil, nil)
	descSnapshotSec  = prometheus.NewDesc("ferry_raft_snapshot_duration_seconds", "Time each snapshot took to write, off the engine loop: its group applied nothing meanwhile.", nil, nil)
	descRefused      = prometheus.NewDesc("ferry_replication_handshakes_refused_total", "Replication connections refused, by this node or its peer, because the two belong to different clusters.", nil, nil)
	descBytesIn      = prometheus.NewDesc("ferry_network_received_bytes_total", "Bytes read from client connections, by protocol.", []string{"protocol"}, nil)
	descBytesOut     = prometheus.NewDesc("ferry_network_sent_bytes_total", "Bytes written to client connections, by protocol.", []string{"protocol"}, nil)
	descFrontErrors  = prometheus.NewDesc("ferry_errors_total", "Errors answered to clients, by protocol and stable error code.", []string{"protocol", "code"}, nil)
)

// brokerCollector reads the broker at scrape time.
type brokerCollector struct {
	s *Server
}

func (bc *brokerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descNodeInfo, descBlocked, descConns, descQueueDepth, descQueueBytes, descQueueConsum,
		descQueueEvents, descQueueLeader, descStreamHW, descStreamStart, descStreamBytes, descStreamMsgs, descStreamLag, descLagTruncated, descTruncated, descFsyncs, descFsyncSec,
		descLeaderChg, descProposals, descProposalsErr, descCommitSec, descApplied, descSnapshots, descSnapshotSec, descRefused, descBytesIn, descBytesOut} {
		ch <- d
	}
	// descFrontErrors shares ferry_errors_total with apiMetrics: described there.
}

func (bc *brokerCollector) Collect(ch chan<- prometheus.Metric) {
	s := bc.s
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge(descNodeInfo, 1, strconv.FormatUint(uint64(s.b.NodeID()), 10), s.cfg.Version)
	blocked, _ := s.blocked()
	gauge(descBlocked, b2f(blocked))
	conns := map[string]int{}
	for _, c := range s.b.Connections() {
		conns[c.Protocol]++
	}
	for p, n := range conns {
		gauge(descConns, float64(n), p)
	}
	lag := lagBudget{left: base.AdminMetricsConsumerLagSeriesMax}
	truncated := bc.collectEntities(gauge, counter, &lag)
	gauge(descTruncated, b2f(truncated))
	if _, ok := s.b.(lagReporter); ok {
		gauge(descLagTruncated, b2f(lag.truncated))
	}
	switch {
	case s.cfg.Engine != nil:
		bc.collectEngine(ch, s.cfg.Engine(), counter)
	default:
		var f FrontendStats
		if s.cfg.Frontends != nil {
			f = s.cfg.Frontends()
		}
		if em, ok := s.b.(engineMetered); ok {
			e := engineStats(em.EngineMetrics())
			e.FrontendStats = f
			bc.collectEngine(ch, e, counter)
		} else {
			bc.collectFrontends(f, counter)
		}
	}
}

// lagReporter is a broker that reads consumer groups' committed offsets
// from its local replicas (*broker.Broker does).
type lagReporter interface {
	StreamConsumerLag(tenant, name string, limit int) ([]broker.ConsumerLag, bool, error)
}

// lagBudget is what is left of one scrape's consumer lag series.
type lagBudget struct {
	left      int
	truncated bool
}

// collectLag reports the consumer lag of a stream's groups on the
// partitions hosted here, within what is left of lag's budget.
func (bc *brokerCollector) collectLag(gauge func(*prometheus.Desc, float64, ...string), tenant, name string, lag *lagBudget) {
	lr, ok := bc.s.b.(lagReporter)
	if !ok || lag.truncated {
		return
	}
	lags, truncated, err := lr.StreamConsumerLag(tenant, name, lag.left)
	if err != nil {
		return // deleted since the topology was read
	}
	lag.left -= len(lags)
	lag.truncated = truncated
	for _, l := range lags {
		gauge(descStreamLag, float64(l.Lag()), tenant, name, strconv.Itoa(int(l.Partition)), l.Group)
	}
}

// engineMetered is a broker that exposes its Raft engine's figures
// (*broker.Broker does); Config.Engine, when set, takes precedence (it
// adds the front ends' byte and error counts, which Config.Frontends
// supplies otherwise).
type engineMetered interface {
	EngineMetrics() broker.EngineMetrics
}

// engineStats converts the engine's figures to the exported ones: the
// histograms' per-bucket counts become cumulative, as Prometheus wants.
func engineStats(m broker.EngineMetrics) EngineStats {
	return EngineStats{Fsyncs: m.Fsyncs(), FsyncSeconds: cumulative(m.FsyncSeconds), LeaderChanges: m.LeaderChanges,
		Proposals: m.Proposals, ProposalsFail: m.ProposalsFailed, CommitSeconds: cumulative(m.CommitSeconds),
		EntriesApplied: m.EntriesApplied, Snapshots: m.Snapshots, SnapshotSeconds: cumulative(m.SnapshotSeconds),
		HandshakesRefused: m.HandshakesRefused}
}

func cumulative(h broker.EngineHistogram) Histogram {
	out := Histogram{Count: h.Count, Sum: h.Sum, Buckets: make(map[float64]uint64, len(h.Counts))}
	var total uint64
	for i, n := range h.Counts {
		total += n
		out.Buckets[broker.LatencyBucketsSeconds[i]] = total
	}
	return out
}

// collectEntities reports queues and stream partitions, at most
// metricsEntitiesMax of them; it returns whether it left some out.
func (bc *brokerCollector) collectEntities(gauge func(*prometheus.Desc, float64, ...string), counter func(*prometheus.Desc, uint64, ...string), lag *lagBudget) bool {
	s := bc.s
	budget := s.metricsEntitiesMax()
	for _, t := range s.tenants() {
		v := s.b.Topology(t)
		for i := range v.Queues {
			if budget == 0 {
				return true
			}
			budget--
			name := v.Queues[i].Name
			st, err := s.b.QueueStats(t, name)
			if err != nil {
				continue // no replica here: another node reports it
			}
			gauge(descQueueDepth, float64(st.Ready), t, name, "ready")
			gauge(descQueueDepth, float64(st.Unacked), t, name, "unacked")
			gauge(descQueueDepth, float64(st.Delayed), t, name, "delayed")
			gauge(descQueueDepth, float64(st.DeadLetter), t, name, "dead_letter")
			gauge(descQueueBytes, float64(st.ReadyBytes), t, name, "ready")
			gauge(descQueueBytes, float64(st.UnackedBytes), t, name, "unacked")
			gauge(descQueueBytes, float64(st.DelayedBytes), t, name, "delayed")
			gauge(descQueueConsum, float64(st.Consumers), t, name)
			gauge(descQueueLeader, float64(st.Leader), t, name)
			c := st.Counters
			for _, e := range []struct {
				event string
				n     uint64
			}{{"enqueued", c.Enqueued}, {"delivered", c.Delivered}, {"redelivered", c.Redelivered}, {"acked", c.Acked},
				{"returned", c.Returned}, {"expired", c.Expired}, {"dead_lettered", c.DeadLettered}, {"dropped", c.Dropped},
				{"deduplicated", c.Deduplicated}, {"rejected", c.Rejected}, {"relocated", c.Relocated}, {"resent", c.Resent}} {
				counter(descQueueEvents, e.n, t, name, e.event)
			}
		}
		for i := range v.Streams {
			if budget == 0 {
				return true
			}
			budget--
			name := v.Streams[i].Name
			parts, err := s.b.StreamStats(t, name)
			if err != nil {
				continue
			}
			for _, p := range parts {
				ps := strconv.Itoa(int(p.Partition))
				gauge(descStreamHW, float64(p.HighWatermark), t, name, ps)
				gauge(descStreamStart, float64(p.LogStartOffset), t, name, ps)
				gauge(descStreamBytes, float64(p.RetainedBytes), t, name, ps)
				gauge(descStreamMsgs, float64(p.Records), t, name, ps)
			}
			bc.collectLag(gauge, t, name, lag)
		}
	}
	return false
}

func (bc *brokerCollector) collectEngine(ch chan<- prometheus.Metric, e EngineStats, counter func(*prometheus.Desc, uint64, ...string)) {
	counter(descFsyncs, e.Fsyncs)
	ch <- prometheus.MustNewConstHistogram(descFsyncSec, e.FsyncSeconds.Count, e.FsyncSeconds.Sum, e.FsyncSeconds.Buckets)
	counter(descLeaderChg, e.LeaderChanges)
	counter(descProposals, e.Proposals)
	counter(descProposalsErr, e.ProposalsFail)
	ch <- prometheus.MustNewConstHistogram(descCommitSec, e.CommitSeconds.Count, e.CommitSeconds.Sum, e.CommitSeconds.Buckets)
	counter(descApplied, e.EntriesApplied)
	counter(descSnapshots, e.Snapshots)
	ch <- prometheus.MustNewConstHistogram(descSnapshotSec, e.SnapshotSeconds.Count, e.SnapshotSeconds.Sum, e.SnapshotSeconds.Buckets)
	counter(descRefused, e.HandshakesRefused)
	bc.collectFrontends(e.FrontendStats, counter)
}

// collectFrontends reports the front ends' byte and error counts of f.
func (bc *brokerCollector) collectFrontends(f FrontendStats, counter func(*prometheus.Desc, uint64, ...string)) {
	for p, n := range f.BytesIn {
		counter(descBytesIn, n, p)
	}
	for p, n := range f.BytesOut {
		counter(descBytesOut, n, p)
	}
	for p, codes := range f.Errors {
		if p == "http" {
			continue // counted by the API itself
		}
		for code, n := range codes {
			counter(descFrontErrors, n, p, code)
		}
	}
}

func (s *Server) metricsEntitiesMax() int {
	if s.cfg.MetricsEntitiesMax > 0 && s.cfg.MetricsEntitiesMax < base.AdminMetricsEntitiesMax {
		return s.cfg.MetricsEntitiesMax
	}
	return base.AdminMetricsEntitiesMax
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

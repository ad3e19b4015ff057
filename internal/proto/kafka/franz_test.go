package kafka

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// These tests drive the server with franz-go (kgo, kadm) over real
// sockets. franzSuite runs them against a backend; the test double here,
// the real broker in broker_test.go.

// franzScenarios are the franz-go scenarios every backend must pass.
var franzScenarios = []struct {
	name string
	run  func(t *testing.T, addr string)
}{
	{"ProduceConsumeEveryCodec", runProduceConsumeEveryCodec},
	{"IdempotentProducerKeepsOrderPerPartition", runIdempotentProducer},
	{"AdminTopicsAndConfigs", runAdminTopicsAndConfigs},
	{"ListOffsetsByTimestamp", runListOffsetsByTimestamp},
	{"GroupRebalancesUnderEveryBalancer", runGroupRebalances},
	{"OffsetsCommitFetchResetAndDelete", runOffsetsCommitFetchReset},
}

// franzSuite runs every franzScenarios entry as a parallel subtest, each
// on its own server: start serves Kafka for that subtest and returns its
// address.
func franzSuite(t *testing.T, start func(t *testing.T) string) {
	for _, sc := range franzScenarios {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			sc.run(t, start(t))
		})
	}
}

func TestFranzScenariosOnTheTestDouble(t *testing.T) {
	t.Parallel()
	franzSuite(t, func(t *testing.T) string { return startServer(t, newFakeBackend(t), nil).addr })
}

// franzClient returns a kgo client of addr closed when the test ends.
func franzClient(t testing.TB, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	base := []kgo.Opt{kgo.SeedBrokers(addr), kgo.DisableClientMetrics(), kgo.MetadataMinAge(50 * time.Millisecond),
		kgo.RetryBackoffFn(func(int) time.Duration { return 50 * time.Millisecond })}
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// createTopics creates topics through kadm and fails the test on error.
func createTopics(t testing.TB, addr string, partitions int32, names ...string) {
	t.Helper()
	adm := kadm.NewClient(franzClient(t, addr))
	res, err := adm.CreateTopics(testCtx(t), partitions, -1, nil, names...)
	if err != nil {
		t.Fatalf("CreateTopics: %v", err)
	}
	for _, r := range res.Sorted() {
		if r.Err != nil {
			t.Fatalf("CreateTopics %s: %v", r.Topic, r.Err)
		}
	}
}

// consumeN polls cl until n records arrived.
func consumeN(t testing.TB, cl *kgo.Client, n int) []*kgo.Record {
	t.Helper()
	ctx := testCtx(t)
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d records of %d: %v", len(out), n, ctx.Err())
		}
		for _, e := range fs.Errors() {
			if !errors.Is(e.Err, context.DeadlineExceeded) {
				t.Fatalf("fetch error on %s/%d: %v", e.Topic, e.Partition, e.Err)
			}
		}
		out = append(out, fs.Records()...)
	}
	return out
}

func runProduceConsumeEveryCodec(t *testing.T, addr string) {
	codecs := []struct {
		name  string
		codec kgo.CompressionCodec
	}{
		{"none", kgo.NoCompression()}, {"gzip", kgo.GzipCompression()}, {"snappy", kgo.SnappyCompression()},
		{"lz4", kgo.Lz4Compression()}, {"zstd", kgo.ZstdCompression()},
	}
	for _, tc := range codecs {
		t.Run(tc.name, func(t *testing.T) {
			topic := "codec-" + tc.name
			createTopics(t, addr, 3, topic)
			prod := franzClient(t, addr, kgo.ProducerBatchCompression(tc.codec), kgo.DefaultProduceTopic(topic))
			const n = 200
			var recs []*kgo.Record
			for i := range n {
				recs = append(recs, &kgo.Record{Key: []byte(strconv.Itoa(i % 7)), Value: []byte(fmt.Sprintf("value-%d-%s", i, tc.name)),
					Headers: []kgo.RecordHeader{{Key: "h", Value: []byte(strconv.Itoa(i))}}})
			}
			if err := prod.ProduceSync(testCtx(t), recs...).FirstErr(); err != nil {
				t.Fatalf("ProduceSync: %v", err)
			}
			cons := franzClient(t, addr, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
			got := consumeN(t, cons, n)
			if len(got) != n {
				t.Fatalf("consumed %d records, want %d", len(got), n)
			}
			seen := map[string]bool{}
			for _, r := range got {
				if len(r.Headers) != 1 || r.Headers[0].Key != "h" {
					t.Errorf("record %q: headers %v, want one header h", r.Value, r.Headers)
				}
				seen[string(r.Value)] = true
			}
			for i := range n {
				if v := fmt.Sprintf("value-%d-%s", i, tc.name); !seen[v] {
					t.Errorf("record %q not consumed", v)
				}
			}
		})
	}
}

func runIdempotentProducer(t *testing.T, addr string) {
	createTopics(t, addr, 1, "idem")
	// Idempotence is franz-go's default; pipelining up to 5 requests per
	// broker exercises the ordered submission of ProduceBatch.
	prod := franzClient(t, addr, kgo.DefaultProduceTopic("idem"), kgo.ProducerLinger(0), kgo.ProducerBatchMaxBytes(1<<10))
	const n = 500
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for i := range n {
		wg.Add(1)
		prod.Produce(testCtx(t), &kgo.Record{Value: []byte(strconv.Itoa(i))}, func(r *kgo.Record, err error) {
			defer wg.Done()
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d produce errors, first %v", len(errs), errs[0])
	}
	cons := franzClient(t, addr, kgo.ConsumeTopics("idem"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := consumeN(t, cons, n)
	// Offsets increase with the values; they need not start at 0 or be
	// contiguous (a stream's log may hold entries that are not records).
	prev := int64(-1)
	for i, r := range got {
		if string(r.Value) != strconv.Itoa(i) || r.Offset <= prev {
			t.Fatalf("record %d: value %q offset %d, want %q after offset %d", i, r.Value, r.Offset, strconv.Itoa(i), prev)
		}
		prev = r.Offset
		if r.ProducerID < 0 {
			t.Fatalf("record %d: producer id %d, want an idempotent producer's", i, r.ProducerID)
		}
	}
}

func runAdminTopicsAndConfigs(t *testing.T, addr string) {
	ctx := testCtx(t)
	adm := kadm.NewClient(franzClient(t, addr))
	retention := "3600000"
	res, err := adm.CreateTopic(ctx, 2, -1, map[string]*string{"retention.ms": &retention}, "admin-a")
	if err != nil || res.Err != nil {
		t.Fatalf("CreateTopic: %v / %v", err, res.Err)
	}
	if res.NumPartitions != 2 {
		t.Errorf("created partitions: got %d, want 2", res.NumPartitions)
	}
	again, _ := adm.CreateTopic(ctx, 2, -1, nil, "admin-a")
	if !errors.Is(again.Err, kerr.TopicAlreadyExists) {
		t.Errorf("creating it again: got %v, want TOPIC_ALREADY_EXISTS", again.Err)
	}
	bad, _ := adm.CreateTopic(ctx, 1, -1, map[string]*string{"no.such.config": &retention}, "admin-b")
	if !errors.Is(bad.Err, kerr.InvalidConfig) {
		t.Errorf("unknown config: got %v, want INVALID_CONFIG", bad.Err)
	}
	compact := "compact"
	bad, _ = adm.CreateTopic(ctx, 1, -1, map[string]*string{"cleanup.policy": &compact}, "admin-b")
	if bad.Err == nil {
		t.Errorf("cleanup.policy=compact: got success, want an error")
	}
	bad, _ = adm.CreateTopic(ctx, 1, -1, nil, "bad/name")
	if !errors.Is(bad.Err, kerr.InvalidTopicException) {
		t.Errorf("bad name: got %v, want INVALID_TOPIC_EXCEPTION", bad.Err)
	}

	rcs, err := adm.DescribeTopicConfigs(ctx, "admin-a")
	if err != nil {
		t.Fatalf("DescribeTopicConfigs: %v", err)
	}
	rc, err := rcs.On("admin-a", nil)
	if err != nil || rc.Err != nil {
		t.Fatalf("configs of admin-a: %v / %v", err, rc.Err)
	}
	found := false
	for _, c := range rc.Configs {
		if c.Key == "retention.ms" {
			found = true
			if c.MaybeValue() != retention || c.Source != 1 {
				t.Errorf("retention.ms: got %q source %v, want %q dynamic topic config", c.MaybeValue(), c.Source, retention)
			}
		}
	}
	if !found {
		t.Errorf("retention.ms not described: %+v", rc.Configs)
	}

	bytes := "1000000"
	alt, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.bytes", Value: &bytes}}, "admin-a")
	if err != nil || alt[0].Err != nil {
		t.Fatalf("incremental alter: %v / %v", err, alt)
	}
	rcs, _ = adm.DescribeTopicConfigs(ctx, "admin-a")
	rc, _ = rcs.On("admin-a", nil)
	vals := map[string]string{}
	for _, c := range rc.Configs {
		if c.Source == 1 {
			vals[c.Key] = c.MaybeValue()
		}
	}
	if vals["retention.bytes"] != bytes || vals["retention.ms"] != retention {
		t.Errorf("after incremental alter: dynamic configs %v, want retention.bytes=%s and retention.ms kept", vals, bytes)
	}
	// AlterConfigs (non-incremental) replaces the whole set.
	if alt, err := adm.AlterTopicConfigsState(ctx, []kadm.AlterConfig{{Name: "retention.bytes", Value: &bytes}}, "admin-a"); err != nil || alt[0].Err != nil {
		t.Fatalf("alter configs: %v / %v", err, alt)
	}
	rcs, _ = adm.DescribeTopicConfigs(ctx, "admin-a")
	rc, _ = rcs.On("admin-a", nil)
	for _, c := range rc.Configs {
		if c.Key == "retention.ms" && c.Source == 1 {
			t.Errorf("AlterConfigs kept retention.ms; it replaces the set")
		}
	}

	cp, err := adm.CreatePartitions(ctx, 4, "admin-a")
	if err != nil || cp["admin-a"].Err != nil {
		t.Fatalf("CreatePartitions: %v / %v", err, cp)
	}
	td, err := adm.ListTopics(ctx, "admin-a")
	if err != nil {
		t.Fatal(err)
	}
	if got := len(td["admin-a"].Partitions); got != 6 {
		t.Errorf("partitions after adding 4: got %d, want 6", got)
	}
	shrink, _ := adm.UpdatePartitions(ctx, 3, "admin-a")
	if !errors.Is(shrink["admin-a"].Err, kerr.InvalidPartitions) {
		t.Errorf("shrinking: got %v, want INVALID_PARTITIONS", shrink["admin-a"].Err)
	}

	del, err := adm.DeleteTopics(ctx, "admin-a", "never-was")
	if err != nil {
		t.Fatal(err)
	}
	if del["admin-a"].Err != nil || !errors.Is(del["never-was"].Err, kerr.UnknownTopicOrPartition) {
		t.Errorf("DeleteTopics: admin-a %v, never-was %v; want success and UNKNOWN_TOPIC_OR_PARTITION", del["admin-a"].Err, del["never-was"].Err)
	}
	td, _ = adm.ListTopics(ctx)
	if td.Has("admin-a") {
		t.Errorf("admin-a still listed after delete")
	}
}

func runListOffsetsByTimestamp(t *testing.T, addr string) {
	ctx := testCtx(t)
	createTopics(t, addr, 1, "times")
	prod := franzClient(t, addr, kgo.DefaultProduceTopic("times"))
	base := time.UnixMilli(1_700_000_000_000)
	var offsets []int64
	for i := range 10 {
		r := &kgo.Record{Value: []byte(strconv.Itoa(i)), Timestamp: base.Add(time.Duration(i) * time.Second)}
		if err := prod.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
		offsets = append(offsets, r.Offset)
	}
	adm := kadm.NewClient(franzClient(t, addr))
	check := func(what string, lo kadm.ListedOffsets, err error, want int64) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		l, ok := lo.Lookup("times", 0)
		if !ok || l.Err != nil || l.Offset != want {
			t.Errorf("%s: got %+v, want offset %d", what, l, want)
		}
	}
	lo, err := adm.ListEndOffsets(ctx, "times")
	check("end", lo, err, offsets[9]+1)
	start, err := adm.ListStartOffsets(ctx, "times")
	if s, _ := start.Lookup("times", 0); err != nil || s.Offset > offsets[0] {
		t.Errorf("start: got %+v %v, want at most %d", s, err, offsets[0])
	}
	lo, err = adm.ListOffsetsAfterMilli(ctx, base.Add(3500*time.Millisecond).UnixMilli(), "times")
	check("after 3.5s", lo, err, offsets[4])
	lo, err = adm.ListOffsetsAfterMilli(ctx, base.Add(time.Hour).UnixMilli(), "times")
	check("after the last", lo, err, offsets[9]+1)
	lo, err = adm.ListMaxTimestampOffsets(ctx, "times")
	check("max timestamp", lo, err, offsets[9])
}

// groupMember is one consumer of a group test, recording what it owns.
type groupMember struct {
	cl       *kgo.Client
	mu       sync.Mutex
	assigned map[int32]bool
}

func newGroupMember(t *testing.T, addr, group, topic string, balancer kgo.GroupBalancer) *groupMember {
	m := &groupMember{assigned: map[int32]bool{}}
	onAssigned := func(_ context.Context, _ *kgo.Client, a map[string][]int32) {
		m.mu.Lock()
		defer m.mu.Unlock()
		for _, p := range a[topic] {
			m.assigned[p] = true
		}
	}
	onRevoked := func(_ context.Context, _ *kgo.Client, r map[string][]int32) {
		m.mu.Lock()
		defer m.mu.Unlock()
		for _, p := range r[topic] {
			delete(m.assigned, p)
		}
	}
	m.cl = franzClient(t, addr, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.Balancers(balancer),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.HeartbeatInterval(100*time.Millisecond),
		kgo.SessionTimeout(6*time.Second), kgo.RebalanceTimeout(10*time.Second),
		kgo.OnPartitionsAssigned(onAssigned), kgo.OnPartitionsRevoked(onRevoked), kgo.OnPartitionsLost(onRevoked),
		kgo.FetchMaxWait(200*time.Millisecond))
	return m
}

func (m *groupMember) owned() []int32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []int32
	for p := range m.assigned {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// pollUntil polls every member until cond holds over their assignments.
func pollUntil(t *testing.T, what string, members []*groupMember, cond func() bool) {
	t.Helper()
	ctx := testCtx(t)
	for !cond() {
		if ctx.Err() != nil {
			var owned [][]int32
			for _, m := range members {
				owned = append(owned, m.owned())
			}
			t.Fatalf("%s: not reached; members own %v", what, owned)
		}
		var wg sync.WaitGroup
		for _, m := range members {
			wg.Add(1)
			go func() { // owned: waited for below
				defer wg.Done()
				pctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
				defer cancel()
				m.cl.PollFetches(pctx)
			}()
		}
		wg.Wait()
	}
}

// balanced reports whether members own disjoint partitions covering all n,
// each at least one.
func balanced(members []*groupMember, n int) bool {
	seen := map[int32]bool{}
	for _, m := range members {
		o := m.owned()
		if len(o) == 0 {
			return false
		}
		for _, p := range o {
			if seen[p] {
				return false
			}
			seen[p] = true
		}
	}
	return len(seen) == n
}

func runGroupRebalances(t *testing.T, addr string) {
	balancers := []struct {
		name string
		b    func() kgo.GroupBalancer
	}{
		{"range", kgo.RangeBalancer}, {"roundrobin", kgo.RoundRobinBalancer},
		{"sticky", kgo.StickyBalancer}, {"cooperative-sticky", kgo.CooperativeStickyBalancer},
	}
	for _, bc := range balancers {
		t.Run(bc.name, func(t *testing.T) {
			t.Parallel()
			topic, group := "grp-"+bc.name, "group-"+bc.name
			createTopics(t, addr, 6, topic)
			a := newGroupMember(t, addr, group, topic, bc.b())
			pollUntil(t, "one member owns all", []*groupMember{a}, func() bool { return balanced([]*groupMember{a}, 6) })
			b := newGroupMember(t, addr, group, topic, bc.b())
			both := []*groupMember{a, b}
			pollUntil(t, "two members share", both, func() bool { return balanced(both, 6) })
			c := newGroupMember(t, addr, group, topic, bc.b())
			all := []*groupMember{a, b, c}
			pollUntil(t, "three members share", all, func() bool { return balanced(all, 6) })
			b.cl.Close() // leaves the group
			rest := []*groupMember{a, c}
			pollUntil(t, "two members share after one leaves", rest, func() bool { return balanced(rest, 6) })

			adm := kadm.NewClient(franzClient(t, addr))
			dg, err := adm.DescribeGroups(testCtx(t), group)
			if err != nil {
				t.Fatal(err)
			}
			d := dg[group]
			if d.State != "Stable" || len(d.Members) != 2 || d.Protocol != bc.name {
				t.Errorf("DescribeGroups: state %s, %d members, protocol %q; want Stable, 2, %q", d.State, len(d.Members), d.Protocol, bc.name)
			}
		})
	}
}

// runOffsetsCommitFetchReset commits, fetches, resumes from, resets and
// deletes a group's offsets, then the group (whose offsets go with it).
func runOffsetsCommitFetchReset(t *testing.T, addr string) {
	ctx := testCtx(t)
	createTopics(t, addr, 2, "offs")
	prod := franzClient(t, addr, kgo.DefaultProduceTopic("offs"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	produced := map[int32][]int64{} // offsets by partition
	for i := range 20 {
		r := &kgo.Record{Value: []byte(strconv.Itoa(i)), Partition: int32(i % 2)}
		if err := prod.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
		produced[r.Partition] = append(produced[r.Partition], r.Offset)
	}
	// Commit past 4 records of partition 0 and 7 of partition 1.
	at0, at1 := produced[0][4], produced[1][7]
	adm := kadm.NewClient(franzClient(t, addr))
	os := kadm.Offsets{}
	os.Add(kadm.Offset{Topic: "offs", Partition: 0, At: at0, LeaderEpoch: -1, Metadata: "m0"})
	os.Add(kadm.Offset{Topic: "offs", Partition: 1, At: at1, LeaderEpoch: -1})
	if err := adm.CommitAllOffsets(ctx, "admin-group", os); err != nil {
		t.Fatalf("CommitAllOffsets: %v", err)
	}
	fetched, err := adm.FetchOffsets(ctx, "admin-group")
	if err != nil {
		t.Fatalf("FetchOffsets: %v", err)
	}
	if o, _ := fetched.Lookup("offs", 0); o.At != at0 || o.Metadata != "m0" {
		t.Errorf("partition 0: got %+v, want %d with metadata m0", o, at0)
	}
	if o, _ := fetched.Lookup("offs", 1); o.At != at1 {
		t.Errorf("partition 1: got %+v, want %d", o, at1)
	}
	// A group consumer resumes from the committed offsets.
	cons := franzClient(t, addr, kgo.ConsumerGroup("admin-group"), kgo.ConsumeTopics("offs"), kgo.DisableAutoCommit(),
		kgo.FetchMaxWait(200*time.Millisecond))
	got := consumeN(t, cons, 20-4-7)
	for _, r := range got {
		if at := map[int32]int64{0: at0, 1: at1}[r.Partition]; r.Offset < at {
			t.Errorf("consumed %d/%d, below the committed offset %d", r.Partition, r.Offset, at)
		}
	}
	if err := cons.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatalf("committing: %v", err)
	}
	cons.Close()
	fetched, _ = adm.FetchOffsets(ctx, "admin-group")
	if want := produced[0][9] + 1; func() int64 { o, _ := fetched.Lookup("offs", 0); return o.At }() != want {
		o, _ := fetched.Lookup("offs", 0)
		t.Errorf("after consuming, partition 0 committed %d, want %d (after its last record)", o.At, want)
	}
	// Reset to the start, delete one partition's offset, delete the group.
	reset := kadm.Offsets{}
	reset.Add(kadm.Offset{Topic: "offs", Partition: 0, At: 0, LeaderEpoch: -1})
	if err := adm.CommitAllOffsets(ctx, "admin-group", reset); err != nil {
		t.Fatalf("reset: %v", err)
	}
	fetched, _ = adm.FetchOffsets(ctx, "admin-group")
	if o, _ := fetched.Lookup("offs", 0); o.At != 0 {
		t.Errorf("after reset: partition 0 at %d, want 0", o.At)
	}
	ts := kadm.TopicsSet{}
	ts.Add("offs", 1)
	dres, err := adm.DeleteOffsets(ctx, "admin-group", ts)
	if err != nil || dres.Error() != nil {
		t.Fatalf("DeleteOffsets: %v / %v", err, dres.Error())
	}
	fetched, _ = adm.FetchOffsets(ctx, "admin-group")
	if o, ok := fetched.Lookup("offs", 1); ok && o.At >= 0 {
		t.Errorf("after DeleteOffsets: partition 1 still at %d", o.At)
	}
	groups, err := adm.ListGroups(ctx)
	if err != nil || !slices.Contains(groups.Groups(), "admin-group") {
		t.Errorf("ListGroups: %v %v, want admin-group listed", groups.Groups(), err)
	}
	del, err := adm.DeleteGroups(ctx, "admin-group")
	if err != nil || del["admin-group"].Err != nil {
		t.Fatalf("DeleteGroups: %v / %v", err, del)
	}
	fetched, _ = adm.FetchOffsets(ctx, "admin-group")
	if o, ok := fetched.Lookup("offs", 0); ok && o.At >= 0 {
		t.Errorf("after DeleteGroups: offsets remain %+v", o)
	}
}

func TestFranzSASLPlainAndScram(t *testing.T) {
	t.Parallel()
	srv := startServer(t, newFakeBackend(t), func(c *Config) { c.AuthRequired = true })
	runSASL(t, srv.addr, "alice", "alice-secret", true)
}

// runSASL logs in as user with every mechanism, and checks refusals; with
// readOnly, the user "reader" (read permission only) must be refused
// creating a topic.
func runSASL(t *testing.T, addr, user, password string, readOnly bool) {
	ctx := testCtx(t)
	mechs := []struct {
		name string
		opt  kgo.Opt
	}{
		{"PLAIN", kgo.SASL(plain.Auth{User: user, Pass: password}.AsMechanism())},
		{"SCRAM-SHA-256", kgo.SASL(scram.Auth{User: user, Pass: password}.AsSha256Mechanism())},
		{"SCRAM-SHA-512", kgo.SASL(scram.Auth{User: user, Pass: password}.AsSha512Mechanism())},
	}
	for _, m := range mechs {
		t.Run(m.name, func(t *testing.T) {
			adm := kadm.NewClient(franzClient(t, addr, m.opt))
			if _, err := adm.ListTopics(ctx); err != nil {
				t.Errorf("ListTopics after %s: %v", m.name, err)
			}
		})
	}
	wrong := kadm.NewClient(franzClient(t, addr, kgo.SASL(plain.Auth{User: user, Pass: "wrong"}.AsMechanism()), kgo.RequestRetries(0)))
	if _, err := wrong.ListTopics(ctx); !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Errorf("wrong password: got %v, want SASL_AUTHENTICATION_FAILED", err)
	}
	wrongScram := kadm.NewClient(franzClient(t, addr, kgo.SASL(scram.Auth{User: "nobody", Pass: "x"}.AsSha256Mechanism()), kgo.RequestRetries(0)))
	if _, err := wrongScram.ListTopics(ctx); !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Errorf("unknown SCRAM user: got %v, want SASL_AUTHENTICATION_FAILED", err)
	}
	if !readOnly {
		return
	}
	// The read-only user may read but not create or write.
	ro := kadm.NewClient(franzClient(t, addr, kgo.SASL(plain.Auth{User: "reader", Pass: "reader-secret"}.AsMechanism())))
	res, _ := ro.CreateTopic(ctx, 1, -1, nil, "ro-topic")
	if !errors.Is(res.Err, kerr.TopicAuthorizationFailed) {
		t.Errorf("create by the read-only user: got %v, want TOPIC_AUTHORIZATION_FAILED", res.Err)
	}
}

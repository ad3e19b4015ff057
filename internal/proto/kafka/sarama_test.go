package kafka

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/xdg-go/scram"
)

// The same behaviours driven by IBM/sarama, against the real broker.

func saramaConfig(version sarama.KafkaVersion) *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.Version = version
	cfg.ClientID = "sarama-test"
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Metadata.Retry.Backoff = 50 * time.Millisecond
	cfg.Consumer.Return.Errors = true
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.MaxWaitTime = 200 * time.Millisecond
	return cfg
}

func saramaClient(t *testing.T, addr string, cfg *sarama.Config) sarama.Client {
	t.Helper()
	cl, err := sarama.NewClient([]string{addr}, cfg)
	if err != nil {
		t.Fatalf("sarama.NewClient: %v", err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

func TestSaramaProduceConsumeEveryCodecAndAdmin(t *testing.T) {
	t.Parallel()
	_, srv := startBroker(t, nil)
	addr := srv.addr
	adminCl := saramaClient(t, addr, saramaConfig(sarama.V3_6_0_0))
	admin, err := sarama.NewClusterAdminFromClient(adminCl)
	if err != nil {
		t.Fatal(err)
	}
	retention := "86400000"
	if err := admin.CreateTopic("sarama-admin", &sarama.TopicDetail{NumPartitions: 2, ReplicationFactor: -1,
		ConfigEntries: map[string]*string{"retention.ms": &retention}}, false); err != nil {
		t.Fatalf("CreateTopic: %v", err)
	}
	entries, err := admin.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: "sarama-admin"})
	if err != nil {
		t.Fatalf("DescribeConfig: %v", err)
	}
	found := false
	for _, e := range entries {
		found = found || (e.Name == "retention.ms" && e.Value == retention)
	}
	if !found {
		t.Errorf("retention.ms=%s not described: %+v", retention, entries)
	}
	if err := admin.CreatePartitions("sarama-admin", 3, nil, false); err != nil {
		t.Errorf("CreatePartitions: %v", err)
	}
	if err := admin.DeleteTopic("sarama-admin"); err != nil {
		t.Errorf("DeleteTopic: %v", err)
	}

	codecs := []sarama.CompressionCodec{sarama.CompressionNone, sarama.CompressionGZIP, sarama.CompressionSnappy,
		sarama.CompressionLZ4, sarama.CompressionZSTD}
	for _, codec := range codecs {
		t.Run(codec.String(), func(t *testing.T) {
			topic := "sarama-" + codec.String()
			if err := admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: -1}, false); err != nil {
				t.Fatalf("CreateTopic: %v", err)
			}
			cfg := saramaConfig(sarama.V3_6_0_0)
			cfg.Producer.Compression = codec
			cfg.Producer.Idempotent = true
			cfg.Net.MaxOpenRequests = 1
			prod, err := sarama.NewSyncProducer([]string{addr}, cfg)
			if err != nil {
				t.Fatalf("NewSyncProducer: %v", err)
			}
			defer prod.Close()
			var msgs []*sarama.ProducerMessage
			const n = 50
			for i := range n {
				msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Value: sarama.StringEncoder(strconv.Itoa(i)),
					Headers: []sarama.RecordHeader{{Key: []byte("i"), Value: []byte(strconv.Itoa(i))}}})
			}
			if err := prod.SendMessages(msgs); err != nil {
				t.Fatalf("SendMessages: %v", err)
			}
			cons, err := sarama.NewConsumer([]string{addr}, saramaConfig(sarama.V3_6_0_0))
			if err != nil {
				t.Fatal(err)
			}
			defer cons.Close()
			pc, err := cons.ConsumePartition(topic, 0, sarama.OffsetOldest)
			if err != nil {
				t.Fatalf("ConsumePartition: %v", err)
			}
			defer pc.Close()
			ctx := testCtx(t)
			for i := range n {
				select {
				case m := <-pc.Messages():
					if string(m.Value) != strconv.Itoa(i) || len(m.Headers) != 1 || string(m.Headers[0].Value) != strconv.Itoa(i) {
						t.Fatalf("message %d: value %q headers %v", i, m.Value, m.Headers)
					}
				case err := <-pc.Errors():
					t.Fatalf("consume error: %v", err)
				case <-ctx.Done():
					t.Fatalf("consumed %d of %d", i, n)
				}
			}
		})
	}
}

func TestSaramaListOffsetsByTimeAndOffsetManager(t *testing.T) {
	t.Parallel()
	_, srv := startBroker(t, nil)
	cl := saramaClient(t, srv.addr, saramaConfig(sarama.V2_8_0_0)) // sarama's default version
	admin, err := sarama.NewClusterAdminFromClient(cl)
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.CreateTopic("sarama-times", &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: -1}, false); err != nil {
		t.Fatal(err)
	}
	prod, err := sarama.NewSyncProducerFromClient(cl)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	base := time.UnixMilli(1_700_000_000_000)
	var offsets []int64
	for i := range 5 {
		_, off, err := prod.SendMessage(&sarama.ProducerMessage{Topic: "sarama-times", Value: sarama.StringEncoder("x"),
			Timestamp: base.Add(time.Duration(i) * time.Minute)})
		if err != nil {
			t.Fatal(err)
		}
		offsets = append(offsets, off)
	}
	got, err := cl.GetOffset("sarama-times", 0, base.Add(150*time.Second).UnixMilli())
	if err != nil || got != offsets[3] {
		t.Errorf("offset after 2.5 min: got %d %v, want %d", got, err, offsets[3])
	}
	newest, err := cl.GetOffset("sarama-times", 0, sarama.OffsetNewest)
	if err != nil || newest != offsets[4]+1 {
		t.Errorf("newest: got %d %v, want %d", newest, err, offsets[4]+1)
	}
	om, err := sarama.NewOffsetManagerFromClient("sarama-om", cl)
	if err != nil {
		t.Fatal(err)
	}
	pom, err := om.ManagePartition("sarama-times", 0)
	if err != nil {
		t.Fatal(err)
	}
	pom.MarkOffset(offsets[2], "meta")
	om.Commit()
	pom.Close()
	om.Close()
	om2, _ := sarama.NewOffsetManagerFromClient("sarama-om", cl)
	defer om2.Close()
	pom2, err := om2.ManagePartition("sarama-times", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer pom2.Close()
	if off, meta := pom2.NextOffset(); off != offsets[2] || meta != "meta" {
		t.Errorf("committed: got %d %q, want %d %q", off, meta, offsets[2], "meta")
	}
}

// saramaHandler counts what one group member consumes and owns.
type saramaHandler struct {
	mu      sync.Mutex
	claims  map[int32]bool
	setupCh chan struct{}
}

func (h *saramaHandler) Setup(s sarama.ConsumerGroupSession) error {
	h.mu.Lock()
	h.claims = map[int32]bool{}
	for _, p := range s.Claims()["sarama-grp"] {
		h.claims[p] = true
	}
	h.mu.Unlock()
	select {
	case h.setupCh <- struct{}{}:
	default:
	}
	return nil
}
func (h *saramaHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (h *saramaHandler) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for m := range c.Messages() {
		s.MarkMessage(m, "")
	}
	return nil
}

func (h *saramaHandler) owned() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.claims)
}

func TestSaramaConsumerGroupRebalancesUnderEveryStrategy(t *testing.T) {
	t.Parallel()
	_, srv := startBroker(t, nil)
	addr := srv.addr
	cl := saramaClient(t, addr, saramaConfig(sarama.V3_6_0_0))
	admin, _ := sarama.NewClusterAdminFromClient(cl)
	if err := admin.CreateTopic("sarama-grp", &sarama.TopicDetail{NumPartitions: 4, ReplicationFactor: -1}, false); err != nil {
		t.Fatal(err)
	}
	strategies := []sarama.BalanceStrategy{sarama.NewBalanceStrategyRange(), sarama.NewBalanceStrategyRoundRobin(), sarama.NewBalanceStrategySticky()}
	for _, st := range strategies {
		t.Run(st.Name(), func(t *testing.T) {
			t.Parallel()
			group := "sarama-" + st.Name()
			run := func() (*saramaHandler, context.CancelFunc, chan struct{}) {
				cfg := saramaConfig(sarama.V3_6_0_0)
				cfg.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{st}
				cfg.Consumer.Group.Heartbeat.Interval = 100 * time.Millisecond
				cfg.Consumer.Group.Session.Timeout = 6 * time.Second
				g, err := sarama.NewConsumerGroup([]string{addr}, group, cfg)
				if err != nil {
					t.Fatal(err)
				}
				h := &saramaHandler{setupCh: make(chan struct{}, 1)}
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan struct{})
				go func() { // owned: cancel and <-done below
					defer close(done)
					defer g.Close()
					for ctx.Err() == nil {
						if err := g.Consume(ctx, []string{"sarama-grp"}, h); err != nil && ctx.Err() == nil {
							t.Logf("Consume: %v", err)
						}
					}
				}()
				return h, cancel, done
			}
			a, cancelA, doneA := run()
			defer func() { cancelA(); <-doneA }()
			waitFor(t, "one member owns all 4", func() bool { return a.owned() == 4 })
			b, cancelB, doneB := run()
			waitFor(t, "two members own 2 each", func() bool { return a.owned() == 2 && b.owned() == 2 })
			cancelB()
			<-doneB
			waitFor(t, "the remaining member owns all 4 again", func() bool { return a.owned() == 4 })
		})
	}
}

// xdgSCRAM is sarama's SCRAM client on xdg-go/scram.
type xdgSCRAM struct {
	*scram.ClientConversation
	hash scram.HashGeneratorFcn
}

func (x *xdgSCRAM) Begin(user, password, authz string) error {
	c, err := x.hash.NewClient(user, password, authz)
	if err != nil {
		return err
	}
	x.ClientConversation = c.NewConversation()
	return nil
}

func TestSaramaSASLPlainV0V1AndScram(t *testing.T) {
	t.Parallel()
	_, srv := startBroker(t, func(c *Config) { c.AuthRequired = true })
	cases := []struct {
		name string
		set  func(*sarama.Config)
	}{
		{"PLAIN v0", func(c *sarama.Config) { c.Net.SASL.Version, c.ApiVersionsRequest = sarama.SASLHandshakeV0, false }},
		{"PLAIN v1", func(c *sarama.Config) {}},
		{"SCRAM-SHA-256", func(c *sarama.Config) {
			c.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA256
			c.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &xdgSCRAM{hash: scram.HashGeneratorFcn(sha256.New)} }
		}},
		{"SCRAM-SHA-512", func(c *sarama.Config) {
			c.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA512
			c.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &xdgSCRAM{hash: scram.HashGeneratorFcn(sha512.New)} }
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := saramaConfig(sarama.V3_6_0_0)
			cfg.Net.SASL.Enable, cfg.Net.SASL.User, cfg.Net.SASL.Password = true, "guest", "guest"
			tc.set(cfg)
			cl := saramaClient(t, srv.addr, cfg)
			if _, err := cl.Topics(); err != nil {
				t.Errorf("Topics after %s: %v", tc.name, err)
			}
		})
	}
	cfg := saramaConfig(sarama.V3_6_0_0)
	cfg.Net.SASL.Enable, cfg.Net.SASL.User, cfg.Net.SASL.Password = true, "guest", "wrong"
	cfg.Metadata.Retry.Max = 0
	if cl, err := sarama.NewClient([]string{srv.addr}, cfg); err == nil {
		cl.Close()
		t.Errorf("a wrong password connected")
	} else if !errorsContain(err, "SASL") && !errorsContain(err, "out of available brokers") {
		t.Errorf("wrong password: got %v, want an authentication failure", err)
	}
}

func errorsContain(err error, s string) bool { return err != nil && strings.Contains(err.Error(), s) }

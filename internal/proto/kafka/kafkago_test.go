package kafka

import (
	"context"
	"strconv"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/compress"
)

// The same behaviours driven by segmentio/kafka-go, against the real
// broker.

// kafkagoTransport returns a transport whose idle connections close when
// the test ends (kafka-go's default transport keeps them for the process).
func kafkagoTransport(t *testing.T) *kafkago.Transport {
	tr := &kafkago.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return tr
}

func kafkagoCreate(t *testing.T, addr, topic string, partitions int) {
	t.Helper()
	cl := &kafkago.Client{Addr: kafkago.TCP(addr), Timeout: 30 * time.Second, Transport: kafkagoTransport(t)}
	res, err := cl.CreateTopics(testCtx(t), &kafkago.CreateTopicsRequest{Topics: []kafkago.TopicConfig{{
		Topic: topic, NumPartitions: partitions, ReplicationFactor: -1}}})
	if err != nil {
		t.Fatalf("CreateTopics: %v", err)
	}
	if err := res.Errors[topic]; err != nil {
		t.Fatalf("CreateTopics %s: %v", topic, err)
	}
}

func TestKafkaGoProduceConsumeEveryCodecAndListOffsets(t *testing.T) {
	t.Parallel()
	_, srv := startBroker(t, nil)
	addr := srv.addr
	codecs := []compress.Codec{nil, &compress.GzipCodec, &compress.SnappyCodec, &compress.Lz4Codec, &compress.ZstdCodec}
	for _, codec := range codecs {
		name := "none"
		if codec != nil {
			name = codec.Name()
		}
		t.Run(name, func(t *testing.T) {
			topic := "kgo-" + name
			kafkagoCreate(t, addr, topic, 1)
			w := &kafkago.Writer{Addr: kafkago.TCP(addr), Topic: topic, RequiredAcks: kafkago.RequireAll,
				BatchTimeout: 5 * time.Millisecond, Compression: kafkago.Compression(0), Transport: kafkagoTransport(t)}
			if codec != nil {
				w.Compression = kafkago.Compression(codec.Code())
			}
			defer w.Close()
			const n = 40
			base := time.UnixMilli(1_700_000_000_000)
			var msgs []kafkago.Message
			for i := range n {
				msgs = append(msgs, kafkago.Message{Value: []byte(strconv.Itoa(i)), Time: base.Add(time.Duration(i) * time.Second),
					Headers: []kafkago.Header{{Key: "i", Value: []byte(strconv.Itoa(i))}}})
			}
			if err := w.WriteMessages(testCtx(t), msgs...); err != nil {
				t.Fatalf("WriteMessages: %v", err)
			}
			r := kafkago.NewReader(kafkago.ReaderConfig{Brokers: []string{addr}, Topic: topic, Partition: 0, MaxWait: 200 * time.Millisecond})
			defer r.Close()
			var offsets []int64
			for i := range n {
				m, err := r.ReadMessage(testCtx(t))
				if err != nil {
					t.Fatalf("ReadMessage %d: %v", i, err)
				}
				if string(m.Value) != strconv.Itoa(i) || len(m.Headers) != 1 || string(m.Headers[0].Value) != strconv.Itoa(i) {
					t.Fatalf("message %d: value %q headers %v", i, m.Value, m.Headers)
				}
				offsets = append(offsets, m.Offset)
			}
			cl := &kafkago.Client{Addr: kafkago.TCP(addr), Transport: kafkagoTransport(t)}
			lo, err := cl.ListOffsets(testCtx(t), &kafkago.ListOffsetsRequest{Topics: map[string][]kafkago.OffsetRequest{
				topic: {kafkago.TimeOffsetOf(0, base.Add(10500*time.Millisecond))}}})
			if err != nil {
				t.Fatalf("ListOffsets: %v", err)
			}
			got := lo.Topics[topic][0]
			var off int64 = -1
			for o := range got.Offsets {
				off = o
			}
			switch {
			case got.Error != nil || len(got.Offsets) != 1:
				t.Errorf("offset after 10.5s: got %+v, want one offset", got)
			case codec == nil && off != offsets[11]:
				t.Errorf("offset after 10.5s: got %d, want %d", off, offsets[11])
			case codec != nil && (off < offsets[0] || off > offsets[11]):
				// The broker answers a compressed batch by its base offset
				// (it does not decompress; docs/kafka.md): at or before
				// the exact record, never after.
				t.Errorf("offset after 10.5s in a compressed batch: got %d, want within [%d, %d]", off, offsets[0], offsets[11])
			}
		})
	}
}

func TestKafkaGoConsumerGroupsRebalanceAndCommit(t *testing.T) {
	t.Parallel()
	_, srv := startBroker(t, nil)
	addr := srv.addr
	kafkagoCreate(t, addr, "kgo-grp", 4)
	w := &kafkago.Writer{Addr: kafkago.TCP(addr), Topic: "kgo-grp", RequiredAcks: kafkago.RequireAll,
		BatchTimeout: 5 * time.Millisecond, Balancer: &kafkago.RoundRobin{}, Transport: kafkagoTransport(t)}
	defer w.Close()
	const n = 40
	var msgs []kafkago.Message
	for i := range n {
		msgs = append(msgs, kafkago.Message{Value: []byte(strconv.Itoa(i))})
	}
	if err := w.WriteMessages(testCtx(t), msgs...); err != nil {
		t.Fatalf("WriteMessages: %v", err)
	}
	balancers := []struct {
		name string
		b    kafkago.GroupBalancer
	}{{"range", kafkago.RangeGroupBalancer{}}, {"roundrobin", kafkago.RoundRobinGroupBalancer{}}}
	for _, bc := range balancers {
		t.Run(bc.name, func(t *testing.T) {
			group := "kgo-group-" + bc.name
			newReader := func() *kafkago.Reader {
				return kafkago.NewReader(kafkago.ReaderConfig{Brokers: []string{addr}, Topic: "kgo-grp", GroupID: group,
					GroupBalancers: []kafkago.GroupBalancer{bc.b}, MaxWait: 200 * time.Millisecond,
					HeartbeatInterval: 200 * time.Millisecond, SessionTimeout: 6 * time.Second, RebalanceTimeout: 10 * time.Second,
					StartOffset: kafkago.FirstOffset, CommitInterval: 0})
			}
			a := newReader()
			defer a.Close()
			seen := map[string]bool{}
			ctx := testCtx(t)
			for len(seen) < n/2 {
				m, err := a.FetchMessage(ctx)
				if err != nil {
					t.Fatalf("FetchMessage: %v", err)
				}
				seen[string(m.Value)] = true
				if err := a.CommitMessages(ctx, m); err != nil {
					t.Fatalf("CommitMessages: %v", err)
				}
			}
			// A second member joins: the group rebalances, and between the
			// two every message is consumed.
			b := newReader()
			got := make(chan string, n)
			bctx, cancel := context.WithCancel(ctx)
			done := make(chan struct{})
			go func() { // owned: cancel and <-done below
				defer close(done)
				for {
					m, err := b.FetchMessage(bctx)
					if err != nil {
						return
					}
					got <- string(m.Value)
					b.CommitMessages(bctx, m)
				}
			}()
			for len(seen) < n {
				select {
				case v := <-got:
					seen[v] = true
				default:
					actx, acancel := context.WithTimeout(ctx, 300*time.Millisecond)
					if m, err := a.FetchMessage(actx); err == nil {
						seen[string(m.Value)] = true
						a.CommitMessages(ctx, m)
					}
					acancel()
				}
				if ctx.Err() != nil {
					t.Fatalf("consumed %d distinct messages of %d", len(seen), n)
				}
			}
			cancel()
			<-done
			b.Close()
			cl := &kafkago.Client{Addr: kafkago.TCP(addr), Transport: kafkagoTransport(t)}
			offs, err := cl.ConsumerOffsets(ctx, kafkago.TopicAndGroup{Topic: "kgo-grp", GroupId: group})
			if err != nil || len(offs) != 4 {
				t.Errorf("ConsumerOffsets: %v %v, want an offset for each of 4 partitions", offs, err)
			}
		})
	}
}

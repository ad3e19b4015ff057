package stream

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/IBM/sarama"
	"github.com/ferry-mq/ferry/internal/base"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The vectors of Kafka's own test of Utils.murmur2 (UtilsTest.testMurmur2).
var murmur2Vectors = []struct {
	key  string
	want int32
}{
	{"21", -973932308},
	{"foobar", -790332482},
	{"a-little-bit-long-string", -985981536},
	{"a-little-bit-longer-string", -1486304829},
	{"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971},
	{"abc", 479470107},
}

func TestMurmur2MatchesKafkaVectors(t *testing.T) {
	for _, v := range murmur2Vectors {
		if got := Murmur2([]byte(v.key)); got != v.want {
			t.Errorf("Murmur2(%q): got %d, want %d", v.key, got, v.want)
		}
	}
}

// TestKeyPartitionMatchesFranzGoAndSarama compares KeyPartition with the
// two Go clients' Kafka-compatible partitioners on random keys of every
// tail length (0-3 bytes past a 4-byte block) and partition counts.
func TestKeyPartitionMatchesFranzGoAndSarama(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	franz := kgo.StickyKeyPartitioner(nil).ForTopic("t")
	sar := sarama.NewMurmur2Partitioner("t")
	for i := range 5000 {
		key := make([]byte, i%67)
		for j := range key {
			key[j] = byte(rng.UintN(256))
		}
		n := int32(1 + rng.IntN(1000))
		got := KeyPartition(key, n)
		if want := int32(franz.Partition(&kgo.Record{Key: key}, int(n))); got != want {
			t.Fatalf("key %x over %d partitions: got %d, franz-go %d", key, n, got, want)
		}
		want, err := sar.Partition(&sarama.ProducerMessage{Key: sarama.ByteEncoder(key)}, n)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("key %x over %d partitions: got %d, sarama %d", key, n, got, want)
		}
	}
}

func TestPartitionerChoices(t *testing.T) {
	for _, tc := range []struct {
		name     string
		spread   Spread
		explicit int32
		key      []byte
		doneEach bool // call BatchDone after every record
		want     []int32
	}{
		{name: "explicit wins over key", explicit: 2, key: []byte("foobar"), want: []int32{2, 2, 2}},
		{name: "key hashes", explicit: -1, key: []byte("foobar"), want: []int32{KeyPartition([]byte("foobar"), 4), KeyPartition([]byte("foobar"), 4), KeyPartition([]byte("foobar"), 4)}},
		{name: "empty key is a key", explicit: -1, key: []byte{}, want: []int32{KeyPartition(nil, 4), KeyPartition(nil, 4), KeyPartition(nil, 4)}},
		{name: "round robin rotates", spread: SpreadRoundRobin, explicit: -1, want: []int32{1, 2, 3, 0, 1}},
		{name: "sticky stays within a batch", spread: SpreadSticky, explicit: -1, want: []int32{1, 1, 1}},
		{name: "sticky moves per batch", spread: SpreadSticky, explicit: -1, doneEach: true, want: []int32{1, 2, 3, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := NewPartitioner(tc.spread, 1)
			var got []int32
			for range tc.want {
				part, err := p.Partition(tc.explicit, tc.key, 4)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, part)
				if tc.doneEach {
					p.BatchDone()
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("partitions: got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestPartitionerRefusesBadPartitions(t *testing.T) {
	p := NewPartitioner(SpreadSticky, 0)
	if _, err := p.Partition(4, nil, 4); base.CodeOf(err) != base.CodeOutOfRange {
		t.Errorf("explicit partition 4 of 4: got %v, want %v", err, base.CodeOutOfRange)
	}
	if _, err := p.Partition(-1, nil, 0); base.CodeOf(err) != base.CodeInvalidArgument {
		t.Errorf("stream of 0 partitions: got %v, want %v", err, base.CodeInvalidArgument)
	}
}

func BenchmarkKeyPartition(b *testing.B) {
	key := []byte("order-1234567890-customer-42")
	b.ReportAllocs()
	b.SetBytes(int64(len(key)))
	for b.Loop() {
		KeyPartition(key, 64)
	}
}

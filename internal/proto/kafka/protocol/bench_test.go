package protocol

import (
	"bytes"
	"testing"
)

// Run with:
//
//	go test ./internal/proto/kafka/protocol -run '^$' -bench . -benchmem

func produceRequest16KiB() []byte {
	txn := "txn-1"
	m := ProduceRequest{TransactionalId: &txn, Acks: -1, TimeoutMs: 30000,
		TopicData: []ProduceRequestTopicProduceData{{Name: "orders",
			PartitionData: []ProduceRequestPartitionProduceData{{Index: 3, Records: bytes.Repeat([]byte{0x5a}, 16<<10)}}}}}
	return m.Encode(nil, 11)
}

// BenchmarkDecodeProduceRequest16KiB decodes a Produce v11 request carrying
// one 16 KiB records field into a reused message. The records alias the
// input; what allocates is the topic slice, the partition slice and two
// strings.
func BenchmarkDecodeProduceRequest16KiB(b *testing.B) {
	src := produceRequest16KiB()
	var m ProduceRequest
	b.SetBytes(int64(len(src)))
	b.ReportAllocs()
	for b.Loop() {
		if err := m.Decode(src, 11); err != nil {
			b.Fatal(err)
		}
	}
	if got := len(m.TopicData[0].PartitionData[0].Records); got != 16<<10 {
		b.Fatalf("records: %d bytes", got)
	}
}

// BenchmarkEncodeFetchResponse encodes a Fetch v16 response of 4 topics of
// 8 partitions, each with 16 KiB of record batches, into a reused buffer:
// it must not allocate.
func BenchmarkEncodeFetchResponse(b *testing.B) {
	batch := bytes.Repeat([]byte{0xa5}, 16<<10)
	var m FetchResponse
	m.Default()
	for t := range 4 {
		topic := FetchResponseFetchableTopicResponse{TopicId: UUID{byte(t + 1)}}
		for p := range 8 {
			var part FetchResponsePartitionData
			part.Default()
			part.PartitionIndex, part.HighWatermark, part.LastStableOffset = int32(p), 1000, 1000
			part.Records = batch
			topic.Partitions = append(topic.Partitions, part)
		}
		m.Responses = append(m.Responses, topic)
	}
	dst := m.Encode(nil, 16)
	b.SetBytes(int64(len(dst)))
	b.ReportAllocs()
	for b.Loop() {
		dst = m.Encode(dst[:0], 16)
	}
}

// TestHotPathAllocations pins the allocation counts the benchmarks report:
// encoding a Fetch response into a buffer with room allocates nothing, and
// decoding a Produce request allocates only its slices and strings, never
// per byte of records.
func TestHotPathAllocations(t *testing.T) {
	src := produceRequest16KiB()
	var m ProduceRequest
	if got := testing.AllocsPerRun(100, func() { _ = m.Decode(src, 11) }); got > 5 {
		t.Errorf("Produce decode: %v allocations, want at most 5 (two slices, topic name, transactional id)", got)
	}
	var f FetchResponse
	f.Default()
	f.Responses = []FetchResponseFetchableTopicResponse{{Partitions: make([]FetchResponsePartitionData, 3)}}
	for i := range f.Responses[0].Partitions {
		f.Responses[0].Partitions[i].Records = src
	}
	dst := f.Encode(nil, 16)
	if got := testing.AllocsPerRun(100, func() { dst = f.Encode(dst[:0], 16) }); got != 0 {
		t.Errorf("Fetch response encode: %v allocations, want 0", got)
	}
}

package kafka

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/proto/kafka/protocol"
)

// TestStatsCountBytesBothWaysAndErrorCodesByName: the counters behind the
// node's ferry_network_*_bytes_total{protocol="kafka"} and
// ferry_errors_total{protocol="kafka"} families. The raw client knows
// every byte it sent and read, so the byte counts are checked exactly.
func TestStatsCountBytesBothWaysAndErrorCodesByName(t *testing.T) {
	srv := startServer(t, newFakeBackend(t), nil)
	if st := srv.srv.Stats(); st.BytesIn != 0 || st.BytesOut != 0 || len(st.Errors) != 0 {
		t.Fatalf("a new server's stats = %+v, want zeros", st)
	}
	c := dialRaw(t, srv.addr)
	var av protocol.ApiVersionsResponse
	c.roundTrip(&protocol.ApiVersionsRequest{ClientSoftwareName: "bad name!", ClientSoftwareVersion: "1"}, &av, 3)
	var lo protocol.ListOffsetsResponse
	c.roundTrip(&protocol.ListOffsetsRequest{ReplicaId: -1, Topics: []protocol.ListOffsetsRequestListOffsetsTopic{{
		Name: "ghost", Partitions: []protocol.ListOffsetsRequestListOffsetsPartition{{PartitionIndex: 0, Timestamp: -1}, {PartitionIndex: 1, Timestamp: -1}},
	}}}, &lo, 7)
	for _, p := range lo.Topics[0].Partitions {
		if got := protocol.ErrorCode(p.ErrorCode); got != protocol.ErrorCodeUnknownTopicOrPartition {
			t.Fatalf("ListOffsets of a missing topic: partition %d got %v, want UNKNOWN_TOPIC_OR_PARTITION", p.PartitionIndex, got)
		}
	}

	st := srv.srv.Stats()
	if st.BytesIn != c.sent || st.BytesOut != c.read {
		t.Errorf("bytes in, out = %d, %d; want %d, %d (what the client wrote and read)", st.BytesIn, st.BytesOut, c.sent, c.read)
	}
	want := map[string]uint64{"INVALID_REQUEST": 1, "UNKNOWN_TOPIC_OR_PARTITION": 2}
	if !reflect.DeepEqual(st.Errors, want) {
		t.Errorf("errors = %v, want %v", st.Errors, want)
	}
}

// seenCodes is a codeSink keeping every code a walk hands it.
type seenCodes []int16

func (s *seenCodes) code(c int16) { *s = append(*s, c) }

// TestErrorCodeWalkFindsNestedCodesAndSkipsZeros: the walk reaches error
// codes at every level of a response (top, topic, partition) and through
// pointers, and reports the zero codes of successes to the counter, which
// drops them.
func TestErrorCodeWalkFindsNestedCodesAndSkipsZeros(t *testing.T) {
	resp := &protocol.ProduceResponse{Responses: []protocol.ProduceResponseTopicProduceResponse{
		{Name: "a", PartitionResponses: []protocol.ProduceResponsePartitionProduceResponse{
			{Index: 0, ErrorCode: int16(protocol.ErrorCodeNotLeaderOrFollower)},
			{Index: 1},
			{Index: 2, ErrorCode: int16(protocol.ErrorCodeNotLeaderOrFollower)},
		}},
		{Name: "b", PartitionResponses: []protocol.ProduceResponsePartitionProduceResponse{
			{Index: 0, ErrorCode: int16(protocol.ErrorCodeMessageTooLarge)},
		}},
	}}
	var seen seenCodes
	errorCodeWalker(reflect.TypeOf(resp))(reflect.ValueOf(resp), &seen)
	if len(seen) != 4 {
		t.Errorf("walk saw codes %v, want the 4 partitions' codes", seen)
	}
	var st serverStats
	st.countResponse(resp)
	st.countResponse(&protocol.ProduceResponse{}) // no partition, no code
	want := map[string]uint64{protocol.ErrorCodeNotLeaderOrFollower.String(): 2, protocol.ErrorCodeMessageTooLarge.String(): 1}
	if got := st.Snapshot().Errors; !reflect.DeepEqual(got, want) {
		t.Errorf("counted %v, want %v", got, want)
	}
	if w := errorCodeWalker(reflect.TypeOf(&protocol.ProduceResponseNodeEndpoint{})); w != nil {
		t.Error("a type without an ErrorCode field has a walk, want nil")
	}
}

// TestEveryResponseTypeHasAWalkWithinTheDepthBound: every response the
// codec defines gets a walk (none nests past KafkaStatsWalkDepthMax, which would
// panic) and a response with a top-level ErrorCode counts it.
func TestEveryResponseTypeHasAWalkWithinTheDepthBound(t *testing.T) {
	n := 0
	for k := range protocol.APIKey(1 << 10) {
		resp, ok := protocol.NewResponse(k)
		if !ok {
			continue
		}
		n++
		f := reflect.ValueOf(resp).Elem().FieldByName("ErrorCode")
		if !f.IsValid() {
			continue
		}
		f.SetInt(int64(protocol.ErrorCodeUnsupportedVersion))
		var st serverStats
		st.countResponse(resp)
		if got := st.Snapshot().Errors[protocol.ErrorCodeUnsupportedVersion.String()]; got != 1 {
			t.Errorf("%T with a top-level UNSUPPORTED_VERSION counted %d, want 1", resp, got)
		}
	}
	if n < 50 {
		t.Errorf("found %d response types, want Kafka's (more than 50)", n)
	}
}

// nestedResponse returns a struct type nesting depth structs below it,
// through exported fields, the innermost holding an ErrorCode.
func nestedResponse(depth int) reflect.Type {
	t := reflect.StructOf([]reflect.StructField{{Name: "ErrorCode", Type: reflect.TypeFor[int16]()}})
	for range depth {
		t = reflect.StructOf([]reflect.StructField{{Name: "Inner", Type: t}})
	}
	return t
}

// TestErrorCodeWalkReachesTheDepthBoundAndRefusesOneMore pins
// KafkaStatsWalkDepthMax: a code KafkaStatsWalkDepthMax structs below the
// top is counted; one level more is a BUG when the walk is built.
func TestErrorCodeWalkReachesTheDepthBoundAndRefusesOneMore(t *testing.T) {
	at := reflect.New(nestedResponse(base.KafkaStatsWalkDepthMax)).Elem()
	inner := at
	for inner.Kind() == reflect.Struct && inner.Type().Field(0).Name == "Inner" {
		inner = inner.Field(0)
	}
	inner.Field(0).SetInt(int64(protocol.ErrorCodeNotCoordinator))
	var seen seenCodes
	buildWalker(at.Type(), 0)(at, &seen)
	if len(seen) != 1 || seen[0] != int16(protocol.ErrorCodeNotCoordinator) {
		t.Errorf("a code %d structs deep: walk saw %v, want [%d]", base.KafkaStatsWalkDepthMax, seen, protocol.ErrorCodeNotCoordinator)
	}
	defer func() {
		if r := recover(); r == nil || !strings.HasPrefix(fmt.Sprint(r), "BUG:") {
			t.Errorf("a code %d structs deep: recovered %v, want a BUG panic", base.KafkaStatsWalkDepthMax+1, r)
		}
	}()
	buildWalker(nestedResponse(base.KafkaStatsWalkDepthMax+1), 0)
}

// BenchmarkCountResponseFetch measures the error-code walk over a Fetch
// response of one topic and 100 partitions without errors, which every
// Fetch answer pays:
//
//	go test ./internal/proto/kafka -run '^$' -bench CountResponse -benchmem
func BenchmarkCountResponseFetch(b *testing.B) {
	resp := &protocol.FetchResponse{Responses: []protocol.FetchResponseFetchableTopicResponse{{Topic: "t"}}}
	for i := range 100 {
		resp.Responses[0].Partitions = append(resp.Responses[0].Partitions, protocol.FetchResponsePartitionData{PartitionIndex: int32(i)})
	}
	var st serverStats
	st.countResponse(resp) // builds the walk once
	b.ReportAllocs()
	for b.Loop() {
		st.countResponse(resp)
	}
}

package kafka

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"net"
	"os"
	"testing"
	"time"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/proto/kafka/protocol"
	"github.com/ferry-mq/ferry/internal/storage/log/batch"
)

// These tests speak the protocol with the codec, for what real clients
// never send: unknown keys, broken frames, versions from the future.

func TestAPIVersionsListsEverySupportedAPIAndNoOther(t *testing.T) {
	srv := startServer(t, newFakeBackend(t), nil)
	c := dialRaw(t, srv.addr)
	var resp protocol.ApiVersionsResponse
	c.roundTrip(&protocol.ApiVersionsRequest{ClientSoftwareName: "raw-test", ClientSoftwareVersion: "1.0"}, &resp, 3)
	if resp.ErrorCode != 0 {
		t.Fatalf("error code: got %d, want 0", resp.ErrorCode)
	}
	got := map[int16][2]int16{}
	for _, k := range resp.ApiKeys {
		got[k.ApiKey] = [2]int16{k.MinVersion, k.MaxVersion}
	}
	if len(got) != len(apis) {
		t.Errorf("ApiVersions lists %d APIs, want %d", len(got), len(apis))
	}
	for _, a := range apis {
		def, _ := protocol.LookupAPI(a.key)
		if v, ok := got[int16(a.key)]; !ok || v != [2]int16{a.min, a.max} {
			t.Errorf("%s: got %v (listed %v), want [%d %d]", def.Name, v, ok, a.min, a.max)
		}
		if a.max > def.Versions.Max || a.min < def.Versions.Min {
			t.Errorf("%s: serves %d-%d beyond the codec's %d-%d", def.Name, a.min, a.max, def.Versions.Min, def.Versions.Max)
		}
	}
	for _, k := range []protocol.APIKey{protocol.APIKeyDeleteRecords, protocol.APIKeyAddPartitionsToTxn, protocol.APIKeyConsumerGroupHeartbeat} {
		if _, ok := got[int16(k)]; ok {
			t.Errorf("%v listed, but Ferry does not serve it", k)
		}
	}
}

func TestAPIVersionsInvalidClientSoftwareNameIsInvalidRequest(t *testing.T) {
	srv := startServer(t, newFakeBackend(t), nil)
	c := dialRaw(t, srv.addr)
	var resp protocol.ApiVersionsResponse
	c.roundTrip(&protocol.ApiVersionsRequest{ClientSoftwareName: "bad name!", ClientSoftwareVersion: "1"}, &resp, 3)
	if got := protocol.ErrorCode(resp.ErrorCode); got != protocol.ErrorCodeInvalidRequest {
		t.Errorf("error: got %v, want INVALID_REQUEST", got)
	}
}

// rawFrame frames a header and body written by hand.
func rawFrame(key protocol.APIKey, version int16, corr int32, body []byte) []byte {
	api, _ := protocol.LookupAPI(key)
	hv := int16(1)
	if api.Name != "" {
		hv = api.RequestHeaderVersion(version)
	}
	h := protocol.RequestHeader{APIKey: key, APIVersion: version, CorrelationID: corr, ClientID: "raw", HeaderVersion: hv}
	out, mark := protocol.BeginFrame(nil)
	out = protocol.AppendRequestHeader(out, &h)
	out = append(out, body...)
	return protocol.EndFrame(out, mark)
}

func TestAPIVersionsFromTheFutureGetsV0FallbackWithUnsupportedVersion(t *testing.T) {
	srv := startServer(t, newFakeBackend(t), nil)
	c := dialRaw(t, srv.addr)
	c.write(rawFrame(protocol.APIKeyApiVersions, 99, 7, []byte{0xde, 0xad}))
	var resp protocol.ApiVersionsResponse
	c.recv(&resp, 0, 7) // answered in version 0, whatever was asked
	if got := protocol.ErrorCode(resp.ErrorCode); got != protocol.ErrorCodeUnsupportedVersion {
		t.Errorf("error: got %v, want UNSUPPORTED_VERSION", got)
	}
	if len(resp.ApiKeys) != len(apis) {
		t.Errorf("fallback lists %d APIs, want %d so the client can pick a version", len(resp.ApiKeys), len(apis))
	}
	// The connection stays usable.
	var again protocol.ApiVersionsResponse
	c.roundTrip(&protocol.ApiVersionsRequest{}, &again, 0)
	if again.ErrorCode != 0 {
		t.Errorf("after the fallback: error %d, want 0", again.ErrorCode)
	}
	if got := srv.srv.Stats().Errors["UNSUPPORTED_VERSION"]; got != 1 {
		t.Errorf("the fallback counted UNSUPPORTED_VERSION %d times, want 1", got)
	}
}

func TestUnknownAPIKeyClosesTheConnectionAndTheServerStaysUp(t *testing.T) {
	srv := startServer(t, newFakeBackend(t), nil)
	c := dialRaw(t, srv.addr)
	c.write(rawFrame(protocol.APIKey(999), 0, 1, nil))
	c.expectClosed()
	c2 := dialRaw(t, srv.addr)
	var resp protocol.ApiVersionsResponse
	c2.roundTrip(&protocol.ApiVersionsRequest{}, &resp, 0)
	if resp.ErrorCode != 0 {
		t.Errorf("a new connection after the bad one: error %d, want 0", resp.ErrorCode)
	}
}

func TestMalformedHeaderAndBodyCloseTheConnection(t *testing.T) {
	srv := startServer(t, newFakeBackend(t), nil)
	cases := map[string][]byte{
		"header of 3 bytes":   {0, 0, 0, 3, 0, 3, 0},
		"client id past end":  {0, 0, 0, 10, 0, 3, 0, 1, 0, 0, 0, 1, 0x7f, 0x7f},
		"metadata body short": rawFrame(protocol.APIKeyMetadata, 1, 1, []byte{0, 0, 0, 5}),
	}
	for name, frame := range cases {
		t.Run(name, func(t *testing.T) {
			c := dialRaw(t, srv.addr)
			c.write(frame)
			c.expectClosed()
		})
	}
}

func TestRequestOverTheSizeLimitIsRefusedBeforeReading(t *testing.T) {
	srv := startServer(t, newFakeBackend(t), func(c *Config) { c.RequestBytesMax = 1 << 10 })
	c := dialRaw(t, srv.addr)
	// A prefix of one byte over the limit and nothing after it: the
	// server must close at once rather than wait for (or allocate) the
	// announced bytes.
	c.write(binary.BigEndian.AppendUint32(nil, 1<<10+1))
	c.expectClosed()
	// The default limit refuses 100 MiB + 1 the same way.
	srv2 := startServer(t, newFakeBackend(t), nil)
	c2 := dialRaw(t, srv2.addr)
	c2.write(binary.BigEndian.AppendUint32(nil, base.KafkaRequestBytesMax+1))
	c2.expectClosed()
	// A request at the limit is read.
	var md protocol.MetadataRequest
	md.Default()
	frame := rawFrame(protocol.APIKeyMetadata, 1, 3, md.Encode(nil, 1))
	padded := startServer(t, newFakeBackend(t), func(c *Config) { c.RequestBytesMax = len(frame) - 4 })
	c3 := dialRaw(t, padded.addr)
	c3.write(frame)
	var resp protocol.MetadataResponse
	c3.recv(&resp, 1, 3)
}

func TestUnsupportedAPIGetsAWellFormedErrorResponse(t *testing.T) {
	srv := startServer(t, newFakeBackend(t), nil)
	c := dialRaw(t, srv.addr)
	req := protocol.DescribeAclsRequest{}
	req.Default()
	var resp protocol.DescribeAclsResponse
	c.roundTrip(&req, &resp, 1)
	if got := protocol.ErrorCode(resp.ErrorCode); got != protocol.ErrorCodeUnsupportedVersion {
		t.Errorf("DescribeAcls: got %v, want UNSUPPORTED_VERSION", got)
	}
	// Produce v2 (old message format) is below Ferry's versions.
	var pr protocol.ProduceRequest
	pr.Default()
	var presp protocol.ProduceResponse
	c.roundTrip(&pr, &presp, 2)
	if len(presp.Responses) != 0 {
		t.Errorf("Produce v2: got %d topics, want an empty answer", len(presp.Responses))
	}
}

func TestRequestsBeforeAuthenticationCloseTheConnection(t *testing.T) {
	srv := startServer(t, newFakeBackend(t), func(c *Config) { c.AuthRequired = true })
	c := dialRaw(t, srv.addr)
	var av protocol.ApiVersionsResponse
	c.roundTrip(&protocol.ApiVersionsRequest{}, &av, 0) // allowed
	var md protocol.MetadataRequest
	md.Default()
	c.send(&md, 1)
	c.expectClosed()
}

func TestSaslHandshakeV0RawPlainThenRequests(t *testing.T) {
	srv := startServer(t, newFakeBackend(t), func(c *Config) { c.AuthRequired = true })
	c := dialRaw(t, srv.addr)
	var hs protocol.SaslHandshakeResponse
	c.roundTrip(&protocol.SaslHandshakeRequest{Mechanism: "PLAIN"}, &hs, 0)
	if hs.ErrorCode != 0 {
		t.Fatalf("handshake: error %d", hs.ErrorCode)
	}
	token := []byte("\x00alice\x00alice-secret")
	c.write(append(binary.BigEndian.AppendUint32(nil, uint32(len(token))), token...))
	frame, err := c.readFrame()
	if err != nil || len(frame) != 0 {
		t.Fatalf("raw PLAIN answer: %q %v, want an empty frame", frame, err)
	}
	var md protocol.MetadataRequest
	md.Default()
	var resp protocol.MetadataResponse
	c.roundTrip(&md, &resp, 1)
	if len(resp.Brokers) != 1 {
		t.Errorf("metadata after raw SASL: %d brokers, want 1", len(resp.Brokers))
	}
	// A wrong password over the raw path closes the connection.
	c2 := dialRaw(t, srv.addr)
	c2.roundTrip(&protocol.SaslHandshakeRequest{Mechanism: "PLAIN"}, &hs, 0)
	bad := []byte("\x00alice\x00nope")
	c2.write(append(binary.BigEndian.AppendUint32(nil, uint32(len(bad))), bad...))
	c2.expectClosed()
}

func TestSaslHandshakeUnknownMechanismListsSupportedOnes(t *testing.T) {
	srv := startServer(t, newFakeBackend(t), func(c *Config) { c.AuthRequired = true })
	c := dialRaw(t, srv.addr)
	var hs protocol.SaslHandshakeResponse
	c.roundTrip(&protocol.SaslHandshakeRequest{Mechanism: "GSSAPI"}, &hs, 1)
	if got := protocol.ErrorCode(hs.ErrorCode); got != protocol.ErrorCodeUnsupportedSaslMechanism || len(hs.Mechanisms) != 3 {
		t.Errorf("GSSAPI: got %v with %v, want UNSUPPORTED_SASL_MECHANISM and the 3 mechanisms", got, hs.Mechanisms)
	}
	c.expectClosed()
}

// buildBatch returns an uncompressed batch of n records.
func buildBatch(t testing.TB, n int, producerID int64, seq int32) []byte {
	t.Helper()
	var b batch.Builder
	b.Begin(nil, batch.Header{ProducerID: producerID, ProducerEpoch: 0, BaseSequence: seq})
	for i := range n {
		if err := b.Add(1_700_000_000_000+int64(i), nil, []byte{byte(i)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	out, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// gzipBatch returns a gzip-compressed batch whose records are those of
// the uncompressed batch plain.
func gzipBatch(t testing.TB, plain []byte) []byte {
	t.Helper()
	var zb bytes.Buffer
	zw := gzip.NewWriter(&zb)
	zw.Write(plain[batch.HeaderSize:])
	zw.Close()
	out := append(bytes.Clone(plain[:batch.HeaderSize]), zb.Bytes()...)
	binary.BigEndian.PutUint32(out[8:], uint32(len(out)-batch.LogOverhead))
	out[22] |= batch.CompressionGzip
	binary.BigEndian.PutUint32(out[17:], batch.Checksum(out[batch.CRCStart:]))
	return out
}

func produceOne(c *rawClient, topic string, records []byte, acks int16, version int16) protocol.ProduceResponse {
	c.t.Helper()
	req := protocol.ProduceRequest{Acks: acks, TimeoutMs: 5000, TopicData: []protocol.ProduceRequestTopicProduceData{{
		Name: topic, PartitionData: []protocol.ProduceRequestPartitionProduceData{{Index: 0, Records: records}}}}}
	var resp protocol.ProduceResponse
	c.roundTrip(&req, &resp, version)
	return resp
}

func TestProduceValidatesBatchesAsKafka(t *testing.T) {
	b := newFakeBackend(t)
	b.createTopic("v", 1)
	srv := startServer(t, b, nil)
	c := dialRaw(t, srv.addr)
	good := buildBatch(t, 3, -1, -1)
	mutate := func(f func([]byte) []byte) []byte { return f(bytes.Clone(good)) }
	recrc := func(x []byte) []byte {
		binary.BigEndian.PutUint32(x[17:], batch.Checksum(x[batch.CRCStart:]))
		return x
	}
	// A snappy block declaring one byte more than the limit: refused from
	// its header, before anything is decompressed (the limit's edge for
	// every codec is tested in the compress package).
	bomb := func() []byte {
		x := append(bytes.Clone(good[:batch.HeaderSize]), binary.AppendUvarint(nil, base.KafkaDecompressedBytesMax+1)...)
		x = append(x, make([]byte, 64)...)
		binary.BigEndian.PutUint32(x[8:], uint32(len(x)-batch.LogOverhead))
		x[22] |= batch.CompressionSnappy
		return recrc(x)
	}
	cases := []struct {
		name    string
		records []byte
		want    protocol.ErrorCode
	}{
		{"valid", good, protocol.ErrorCodeNone},
		{"gzip", gzipBatch(t, good), protocol.ErrorCodeNone},
		{"bad crc", mutate(func(x []byte) []byte { x[len(x)-1] ^= 1; return x }), protocol.ErrorCodeCorruptMessage},
		{"two batches", append(bytes.Clone(good), good...), protocol.ErrorCodeInvalidRecord},
		{"truncated", good[:len(good)-1], protocol.ErrorCodeCorruptMessage},
		{"magic 1", mutate(func(x []byte) []byte { x[16] = 1; return x }), protocol.ErrorCodeUnsupportedForMessageFormat},
		{"control batch", mutate(func(x []byte) []byte { x[22] |= 0x20; return recrc(x) }), protocol.ErrorCodeInvalidRecord},
		{"transactional", mutate(func(x []byte) []byte { x[22] |= 0x10; return recrc(x) }), protocol.ErrorCodeInvalidRecord},
		{"count differs", mutate(func(x []byte) []byte { binary.BigEndian.PutUint32(x[57:], 2); return recrc(x) }), protocol.ErrorCodeInvalidRecord},
		{"unknown codec", mutate(func(x []byte) []byte { x[22] |= 6; return recrc(x) }), protocol.ErrorCodeUnsupportedCompressionType},
		{"gzip garbage", mutate(func(x []byte) []byte { x[22] |= 1; return recrc(x) }), protocol.ErrorCodeCorruptMessage},
		{"decompresses past the limit", bomb(), protocol.ErrorCodeMessageTooLarge},
		{"no records", nil, protocol.ErrorCodeCorruptMessage},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := produceOne(c, "v", tc.records, 1, 9)
			got := protocol.ErrorCode(resp.Responses[0].PartitionResponses[0].ErrorCode)
			if got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
	if resp := produceOne(c, "nope", good, 1, 9); protocol.ErrorCode(resp.Responses[0].PartitionResponses[0].ErrorCode) != protocol.ErrorCodeUnknownTopicOrPartition {
		t.Errorf("unknown topic: got %d, want UNKNOWN_TOPIC_OR_PARTITION", resp.Responses[0].PartitionResponses[0].ErrorCode)
	}
	if resp := produceOne(c, "v", good, 2, 9); protocol.ErrorCode(resp.Responses[0].PartitionResponses[0].ErrorCode) != protocol.ErrorCodeInvalidRequiredAcks {
		t.Errorf("acks 2: got %d, want INVALID_REQUIRED_ACKS", resp.Responses[0].PartitionResponses[0].ErrorCode)
	}
}

func TestProduceAcksZeroGetsNoResponseAndFailureClosesTheConnection(t *testing.T) {
	b := newFakeBackend(t)
	b.createTopic("z", 1)
	srv := startServer(t, b, nil)
	c := dialRaw(t, srv.addr)
	req := protocol.ProduceRequest{Acks: 0, TimeoutMs: 1000, TopicData: []protocol.ProduceRequestTopicProduceData{{
		Name: "z", PartitionData: []protocol.ProduceRequestPartitionProduceData{{Index: 0, Records: buildBatch(t, 1, -1, -1)}}}}}
	c.send(&req, 9)
	// The next answer on the connection is the metadata's: the produce
	// has none.
	var md protocol.MetadataRequest
	md.Default()
	var resp protocol.MetadataResponse
	c.roundTrip(&md, &resp, 1)
	b.mu.Lock()
	produced := b.produced
	b.mu.Unlock()
	if produced != 1 {
		t.Errorf("batches appended: got %d, want 1", produced)
	}
	req.TopicData[0].Name = "missing"
	c.send(&req, 9)
	c.expectClosed()
}

func TestResponsesComeInRequestOrderWhileALongPollWaits(t *testing.T) {
	b := newFakeBackend(t)
	b.createTopic("o", 1)
	srv := startServer(t, b, nil)
	c := dialRaw(t, srv.addr)
	fetch := longPoll("o", 10_000)
	fc := c.send(fetch, 11)
	var md protocol.MetadataRequest
	md.Default()
	mc := c.send(&md, 1)
	waitFor(t, "the metadata request handled", func() bool { return b.topicsCalls() == 1 })
	b.produce(PartitionRef{"o", 0}, buildBatch(t, 2, -1, -1))
	var fr protocol.FetchResponse
	c.recv(&fr, 11, fc)
	if n := len(fr.Responses[0].Partitions[0].Records); n == 0 {
		t.Errorf("the long poll answered with no records")
	}
	var mr protocol.MetadataResponse
	c.recv(&mr, 1, mc)
}

// pendingOf returns the requests in flight on the server's one connection.
func pendingOf(s *Server) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		return len(c.inflight)
	}
	return -1
}

// waitFor polls cond until it holds, within the test's deadline.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached in 20s", what)
		}
		<-tick.C
	}
}

func TestPipelinedRequestsStopAtTheInflightLimit(t *testing.T) {
	b := newFakeBackend(t)
	b.createTopic("p", 1)
	srv := startServer(t, b, nil)
	c := dialRaw(t, srv.addr)
	fetch := longPoll("p", 15_000)
	var corrs []int32
	for range base.KafkaConnInflightRequestsMax {
		corrs = append(corrs, c.send(fetch, 11))
	}
	var md protocol.MetadataRequest
	md.Default()
	mc := c.send(&md, 1)
	// The limit's worth of long polls fill the queue; the metadata request
	// waits in the socket, unread, until one of them is answered.
	waitFor(t, "the in-flight queue full", func() bool { return pendingOf(srv.srv) == base.KafkaConnInflightRequestsMax })
	if got := b.topicsCalls(); got != 0 {
		t.Fatalf("the request past the limit was handled (%d Topics calls) while %d were in flight", got, base.KafkaConnInflightRequestsMax)
	}
	b.produce(PartitionRef{"p", 0}, buildBatch(t, 1, -1, -1))
	for _, fc := range corrs {
		var fr protocol.FetchResponse
		c.recv(&fr, 11, fc)
	}
	var mr protocol.MetadataResponse
	c.recv(&mr, 1, mc)
}

func fetchReq(epoch, session int32, parts ...protocol.FetchRequestFetchPartition) *protocol.FetchRequest {
	f := &protocol.FetchRequest{}
	f.Default()
	f.MaxWaitMs, f.MinBytes, f.MaxBytes, f.SessionEpoch, f.SessionId = 0, 0, 1<<20, epoch, session
	if len(parts) > 0 {
		f.Topics = []protocol.FetchRequestFetchTopic{{Topic: "s", Partitions: parts}}
	}
	return f
}

// longPoll is a sessionless fetch of topic's partition 0 from offset 0
// that waits up to waitMs for at least one byte.
func longPoll(topic string, waitMs int32) *protocol.FetchRequest {
	f := fetchReq(-1, 0, fetchPart(0, 0))
	f.Topics[0].Topic = topic
	f.MaxWaitMs, f.MinBytes = waitMs, 1
	return f
}

func fetchPart(p int32, offset int64) protocol.FetchRequestFetchPartition {
	return protocol.FetchRequestFetchPartition{Partition: p, FetchOffset: offset, PartitionMaxBytes: 1 << 20,
		CurrentLeaderEpoch: -1, LastFetchedEpoch: -1, LogStartOffset: -1}
}

func TestFetchSessionAnswersOnlyChangedPartitions(t *testing.T) {
	b := newFakeBackend(t)
	b.createTopic("s", 3)
	srv := startServer(t, b, nil)
	c := dialRaw(t, srv.addr)
	b.produce(PartitionRef{"s", 0}, buildBatch(t, 2, -1, -1))
	var full protocol.FetchResponse
	c.roundTrip(fetchReq(0, 0, fetchPart(0, 0), fetchPart(1, 0), fetchPart(2, 0)), &full, 12)
	if full.SessionId == 0 || len(full.Responses) != 1 || len(full.Responses[0].Partitions) != 3 {
		t.Fatalf("initial fetch: session %d, %d topics; want a session and all 3 partitions", full.SessionId, len(full.Responses))
	}
	// The client consumed partition 0's two records and says so; nothing
	// else changed, so the incremental fetch answers no partition.
	var inc protocol.FetchResponse
	c.roundTrip(fetchReq(1, full.SessionId, fetchPart(0, 2)), &inc, 12)
	if len(inc.Responses) != 0 {
		t.Errorf("incremental fetch with no change: %d topics, want none", len(inc.Responses))
	}
	// New data on partition 2 only.
	b.produce(PartitionRef{"s", 2}, buildBatch(t, 1, -1, -1))
	c.roundTrip(fetchReq(2, full.SessionId), &inc, 12)
	if len(inc.Responses) != 1 || len(inc.Responses[0].Partitions) != 1 || inc.Responses[0].Partitions[0].PartitionIndex != 2 {
		t.Errorf("after producing to partition 2: got %+v, want partition 2 only", inc.Responses)
	}
	var bad protocol.FetchResponse
	c.roundTrip(fetchReq(7, full.SessionId), &bad, 12)
	if got := protocol.ErrorCode(bad.ErrorCode); got != protocol.ErrorCodeInvalidFetchSessionEpoch {
		t.Errorf("wrong epoch: got %v, want INVALID_FETCH_SESSION_EPOCH", got)
	}
	c.roundTrip(fetchReq(1, full.SessionId+1000), &bad, 12)
	if got := protocol.ErrorCode(bad.ErrorCode); got != protocol.ErrorCodeFetchSessionIdNotFound {
		t.Errorf("unknown session: got %v, want FETCH_SESSION_ID_NOT_FOUND", got)
	}
	// Epoch -1 closes the session.
	c.roundTrip(fetchReq(-1, full.SessionId, fetchPart(0, 0)), &bad, 12)
	if srv.srv.sessions.len() != 0 {
		t.Errorf("sessions after the final epoch: %d, want 0", srv.srv.sessions.len())
	}
}

func TestFetchSessionCacheIsBoundedAndEvictsOnlyIdleSessions(t *testing.T) {
	clock := base.NewFakeClock(time.Unix(1_700_000_000, 0))
	fc := newFetchSessionCache(clock)
	for range base.KafkaFetchSessionsMax {
		if fc.create() == nil {
			t.Fatalf("session refused below the limit")
		}
	}
	if fc.create() != nil {
		t.Fatalf("session created past KafkaFetchSessionsMax with none idle")
	}
	clock.Advance(base.KafkaFetchSessionIdleTimeout)
	if fc.create() == nil {
		t.Fatalf("no session created once one was idle for KafkaFetchSessionIdleTimeout")
	}
	if got := fc.len(); got != base.KafkaFetchSessionsMax {
		t.Errorf("sessions: got %d, want %d", got, base.KafkaFetchSessionsMax)
	}
}

func TestFetchResponseBudgetReturnsTheFirstBatchWholeAndNoMore(t *testing.T) {
	b := newFakeBackend(t)
	b.createTopic("s", 2)
	srv := startServer(t, b, nil)
	c := dialRaw(t, srv.addr)
	big := buildBatch(t, 50, -1, -1)
	b.produce(PartitionRef{"s", 0}, big)
	b.produce(PartitionRef{"s", 1}, big)
	f := fetchReq(-1, 0, fetchPart(0, 0), fetchPart(1, 0))
	f.MaxBytes = 10 // smaller than one batch
	var resp protocol.FetchResponse
	c.roundTrip(f, &resp, 12)
	parts := resp.Responses[0].Partitions
	if len(parts[0].Records) != len(big) || len(parts[1].Records) != 0 {
		t.Errorf("records: partition 0 %d bytes, partition 1 %d; want %d and 0", len(parts[0].Records), len(parts[1].Records), len(big))
	}
	if parts[1].HighWatermark != 50 {
		t.Errorf("partition 1 high watermark: got %d, want 50 even without records", parts[1].HighWatermark)
	}
}

func TestFetchOutOfRangeReportsTheWatermarks(t *testing.T) {
	b := newFakeBackend(t)
	b.createTopic("s", 1)
	srv := startServer(t, b, nil)
	c := dialRaw(t, srv.addr)
	b.produce(PartitionRef{"s", 0}, buildBatch(t, 3, -1, -1))
	var resp protocol.FetchResponse
	c.roundTrip(fetchReq(-1, 0, fetchPart(0, 99)), &resp, 12)
	p := resp.Responses[0].Partitions[0]
	if protocol.ErrorCode(p.ErrorCode) != protocol.ErrorCodeOffsetOutOfRange || p.HighWatermark != 3 || p.LogStartOffset != 0 {
		t.Errorf("got error %d hw %d start %d, want OFFSET_OUT_OF_RANGE hw 3 start 0", p.ErrorCode, p.HighWatermark, p.LogStartOffset)
	}
}

func TestServerCloseEndsLongPollsAndConnections(t *testing.T) {
	b := newFakeBackend(t)
	b.createTopic("c", 1)
	srv := startServer(t, b, nil)
	c := dialRaw(t, srv.addr)
	fetch := fetchReq(-1, 0)
	fetch.Topics = []protocol.FetchRequestFetchTopic{{Topic: "c", Partitions: []protocol.FetchRequestFetchPartition{fetchPart(0, 0)}}}
	fetch.MaxWaitMs, fetch.MinBytes = 60_000, 1
	c.send(fetch, 12)
	waitFor(t, "the long poll in flight", func() bool { return pendingOf(srv.srv) == 1 })
	done := make(chan struct{})
	go func() { // owned: the test waits on done
		srv.srv.Close()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatalf("Close did not return while a long poll waited")
	}
	c.expectClosed()
}

func TestAdvertisedAddressReplacesAWildcardHost(t *testing.T) {
	name, err := os.Hostname()
	if err != nil {
		t.Skip("no host name")
	}
	host, port := advertisedFrom(&net.TCPAddr{IP: net.IPv4zero, Port: 9092})
	if host != name || port != 9092 {
		t.Errorf("0.0.0.0:9092 advertised as %s:%d, want %s:9092", host, port, name)
	}
	host, port = advertisedFrom(&net.TCPAddr{IP: net.ParseIP("10.1.2.3"), Port: 19092})
	if host != "10.1.2.3" || port != 19092 {
		t.Errorf("10.1.2.3:19092 advertised as %s:%d", host, port)
	}
}

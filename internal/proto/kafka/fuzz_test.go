package kafka

import (
	"bytes"
	"io"
	"net"
	"testing"

	"github.com/ferry-mq/ferry/internal/proto/kafka/protocol"
	"github.com/ferry-mq/ferry/internal/storage/log/batch"
)

// Run with:
//
//	go test ./internal/proto/kafka -run '^$' -fuzz FuzzValidateBatch
//	go test ./internal/proto/kafka -run '^$' -fuzz FuzzConnection

func FuzzValidateBatch(f *testing.F) {
	good := buildBatch(f, 3, 7, 0)
	f.Add(good)
	f.Add(gzipBatch(f, good))
	f.Add(append(bytes.Clone(good), good...))
	f.Add(good[:batch.HeaderSize])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, records []byte) {
		h, _, err := validateBatch(records, nil)
		if err != nil {
			if _, ok := err.(*KafkaError); !ok {
				t.Fatalf("error %T (%v), want a *KafkaError", err, err)
			}
			return
		}
		// Accepted: exactly one v2 batch whose CRC holds.
		if got, cerr := batch.CheckCRC(records); cerr != nil || got.RecordCount != h.RecordCount {
			t.Fatalf("accepted a batch that fails CheckCRC: %v", cerr)
		}
	})
}

// fuzzFrames are valid requests to seed FuzzConnection with.
func fuzzFrames(t testing.TB) [][]byte {
	var md protocol.MetadataRequest
	md.Default()
	fetch := fetchReq(0, 0, fetchPart(0, 0))
	produce := protocol.ProduceRequest{Acks: 1, TimeoutMs: 100, TopicData: []protocol.ProduceRequestTopicProduceData{{
		Name: "s", PartitionData: []protocol.ProduceRequestPartitionProduceData{{Index: 0, Records: buildBatch(t, 2, -1, -1)}}}}}
	frame := func(req protocol.Request, v int16) []byte {
		return rawFrame(req.APIKey(), v, 1, req.Encode(nil, v))
	}
	return [][]byte{
		frame(&protocol.ApiVersionsRequest{ClientSoftwareName: "a", ClientSoftwareVersion: "1"}, 3),
		frame(&md, 12),
		frame(fetch, 12),
		frame(&produce, 9),
		frame(&protocol.SaslHandshakeRequest{Mechanism: "PLAIN"}, 1),
		frame(&protocol.ListGroupsRequest{}, 4),
	}
}

// FuzzConnection feeds arbitrary bytes to one connection of a server: the
// server must not panic, must answer or close, and must shut down cleanly
// afterwards.
func FuzzConnection(f *testing.F) {
	frames := fuzzFrames(f)
	for _, fr := range frames {
		f.Add(fr)
	}
	f.Add(bytes.Join(frames, nil))
	f.Add([]byte{0, 0, 0, 2, 0, 18})
	b := newFakeBackend(f)
	b.createTopic("s", 1)
	srv, err := NewServer(Config{Backend: b, Logger: testLogger()})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { srv.Close() })
	f.Fuzz(func(t *testing.T, input []byte) {
		client, server := net.Pipe()
		srv.startConn(server)
		drained := make(chan struct{})
		go func() { // owned: waited for below
			defer close(drained)
			io.Copy(io.Discard, client)
		}()
		client.Write(input)
		client.Close()
		<-drained
	})
}

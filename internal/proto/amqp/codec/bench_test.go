package codec

import (
	"bufio"
	"bytes"
	"io"
	"testing"
)

// Run with:
//
//	go test -run '^$' -bench . -benchmem ./internal/proto/amqp/codec/
//
// The decode benchmarks read a basic.publish, its content header and a
// 1 KiB body frame from a buffered stream, as a connection's reader does.

// loopReader serves the same bytes forever.
type loopReader struct {
	data []byte
	off  int
}

func (r *loopReader) Read(p []byte) (int, error) {
	if r.off == len(r.data) {
		r.off = 0
	}
	n := copy(p, r.data[r.off:])
	r.off += n
	return n, nil
}

// typicalProperties are what a publisher commonly sets.
func typicalProperties() *BasicProperties {
	var p BasicProperties
	p.SetContentType("application/json")
	p.SetDeliveryMode(2)
	p.SetMessageID("0b6f8e9a-5c1d-4e2f-9a7b-3c4d5e6f7a8b")
	return &p
}

func publishStream(b *testing.B, props *BasicProperties) []byte {
	var buf bytes.Buffer
	fw := NewFrameWriter(&buf)
	_ = fw.SetFrameMax(131072)
	if err := fw.WriteMethod(1, &BasicPublish{Exchange: "orders", RoutingKey: "eu.new"}); err != nil {
		b.Fatal(err)
	}
	if err := fw.WriteContentHeader(1, 1024, props); err != nil {
		b.Fatal(err)
	}
	if err := fw.WriteBody(1, bytes.Repeat([]byte("x"), 1024)); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

// benchmarkDecode reads and decodes publishes; decodeProps also decodes
// the properties into a reused struct.
func benchmarkDecode(b *testing.B, props *BasicProperties, decodeProps bool) {
	stream := publishStream(b, props)
	fr := NewFrameReader(bufio.NewReaderSize(&loopReader{data: stream}, 64<<10))
	_ = fr.SetFrameMax(131072)
	var methods MethodDecoder
	var h ContentHeader
	var p BasicProperties
	var body int
	b.ReportAllocs()
	b.SetBytes(int64(len(stream)))
	for b.Loop() {
		f, err := fr.ReadFrame()
		if err != nil {
			b.Fatal(err)
		}
		m, err := methods.Decode(f.Payload)
		if err != nil || m.Key() != MethodBasicPublish {
			b.Fatal(m, err)
		}
		if f, err = fr.ReadFrame(); err != nil {
			b.Fatal(err)
		}
		if err := h.Decode(f.Payload); err != nil {
			b.Fatal(err)
		}
		if decodeProps {
			if err := h.Properties(&p); err != nil {
				b.Fatal(err)
			}
		}
		if f, err = fr.ReadFrame(); err != nil {
			b.Fatal(err)
		}
		body += len(f.Payload)
	}
	if body == 0 {
		b.Fatal("no body read")
	}
}

func BenchmarkDecodePublish(b *testing.B) { benchmarkDecode(b, typicalProperties(), false) }

func BenchmarkDecodePublishAndProperties(b *testing.B) {
	benchmarkDecode(b, typicalProperties(), true)
}

func BenchmarkDecodePublishAndPropertiesWithHeaders(b *testing.B) {
	p := typicalProperties()
	p.SetHeaders(Table{"tenant": "acme", "attempt": int32(1), "trace-id": "4bf92f3577b34da6a3ce929d0e0e4736"})
	benchmarkDecode(b, p, true)
}

func BenchmarkEncodePublish(b *testing.B) {
	fw := NewFrameWriter(io.Discard)
	_ = fw.SetFrameMax(131072)
	m := &BasicPublish{Exchange: "orders", RoutingKey: "eu.new"}
	props := typicalProperties()
	body := bytes.Repeat([]byte("x"), 1024)
	b.ReportAllocs()
	b.SetBytes(int64(len(publishStream(b, props))))
	for b.Loop() {
		if err := fw.WriteMethod(1, m); err != nil {
			b.Fatal(err)
		}
		if err := fw.WriteContentHeader(1, uint64(len(body)), props); err != nil {
			b.Fatal(err)
		}
		if err := fw.WriteBody(1, body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncodeDeliverRaw is the delivery path: the publisher's raw
// properties are re-sent without re-encoding.
func BenchmarkEncodeDeliverRaw(b *testing.B) {
	var h ContentHeader
	payload := headerPayloadF(b, 1024, typicalProperties())
	if err := h.Decode(payload); err != nil {
		b.Fatal(err)
	}
	fw := NewFrameWriter(io.Discard)
	_ = fw.SetFrameMax(131072)
	d := &BasicDeliver{ConsumerTag: "ctag-1", Exchange: "orders", RoutingKey: "eu.new"}
	body := bytes.Repeat([]byte("x"), 1024)
	b.ReportAllocs()
	b.SetBytes(int64(len(publishStream(b, typicalProperties()))))
	for b.Loop() {
		d.DeliveryTag++
		if err := fw.WriteMethod(1, d); err != nil {
			b.Fatal(err)
		}
		if err := fw.WriteContentHeaderRaw(1, &h); err != nil {
			b.Fatal(err)
		}
		if err := fw.WriteBody(1, body); err != nil {
			b.Fatal(err)
		}
	}
}

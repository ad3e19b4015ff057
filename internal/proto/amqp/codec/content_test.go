package codec

import (
	"bytes"
	"reflect"
	"testing"
	"time"

	"github.com/ferry-mq/ferry/internal/base"
)

// allProperties returns basic properties with all 14 present.
func allProperties() *BasicProperties {
	var p BasicProperties
	p.SetContentType("application/json")
	p.SetContentEncoding("gzip")
	p.SetHeaders(sampleTable())
	p.SetDeliveryMode(2)
	p.SetPriority(9)
	p.SetCorrelationID("corr-1")
	p.SetReplyTo("amq.rabbitmq.reply-to")
	p.SetExpiration("60000")
	p.SetMessageID("msg-1")
	p.SetTimestamp(time.Unix(1_700_000_000, 0).UTC())
	p.SetType("order.created")
	p.SetUserID("guest")
	p.SetAppID("shop")
	p.SetClusterID("c1")
	return &p
}

// headerPayload returns a content header frame's payload.
func headerPayload(t *testing.T, bodySize uint64, p *BasicProperties) []byte {
	t.Helper()
	var buf bytes.Buffer
	fw := NewFrameWriter(&buf)
	_ = fw.SetFrameMax(0)
	if err := fw.WriteContentHeader(1, bodySize, p); err != nil {
		t.Fatal(err)
	}
	f, err := NewFrameReader(&buf).ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Clone(f.Payload)
}

func TestAllFourteenPropertiesRoundTrip(t *testing.T) {
	want := allProperties()
	if want.Flags != basicFlagsKnown {
		t.Fatalf("flags: got %016b, want all 14 set", want.Flags)
	}
	payload := headerPayload(t, 12345, want)
	var h ContentHeader
	if err := h.Decode(payload); err != nil {
		t.Fatal(err)
	}
	if h.ClassID != ClassBasic || h.BodySize != 12345 {
		t.Errorf("class %d body %d, want 60 and 12345", h.ClassID, h.BodySize)
	}
	var got BasicProperties
	if err := h.Properties(&got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&got, want) {
		t.Errorf("properties:\n got %#v\nwant %#v", got, *want)
	}
	// The raw properties re-send exactly what was received.
	var buf bytes.Buffer
	if err := NewFrameWriter(&buf).WriteContentHeaderRaw(1, &h); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes()[7:buf.Len()-1], payload) {
		t.Errorf("WriteContentHeaderRaw changed the payload")
	}
	// Decoding fewer properties into the same struct clears the others.
	var one BasicProperties
	one.SetPriority(0)
	if err := h.Decode(headerPayload(t, 0, &one)); err != nil {
		t.Fatal(err)
	}
	if err := h.Properties(&got); err != nil || !reflect.DeepEqual(got, one) {
		t.Errorf("reusing the struct: got %#v, %v; want %#v", got, err, one)
	}
}

// Derived by hand: class 60, weight 0, body size 5, flags 0x9004
// (content-type, delivery-mode, cluster-id), then the three properties in
// flag order.
func TestContentHeaderHasTheSpecLayout(t *testing.T) {
	var p BasicProperties
	p.SetContentType("text/plain")
	p.SetDeliveryMode(2)
	p.SetClusterID("c1")
	want := hexBytes(t, `00 3C | 00 00 | 00 00 00 00 00 00 00 05 | 90 04 | 0A "text/plain" | 02 | 02 "c1"`)
	if got := headerPayload(t, 5, &p); !bytes.Equal(got, want) {
		t.Errorf("payload:\n got % x\nwant % x", got, want)
	}
	if got := headerPayload(t, 0, nil); !bytes.Equal(got, hexBytes(t, `00 3C 00 00 00 00 00 00 00 00 00 00 00 00`)) {
		t.Errorf("no properties: got % x", got)
	}
}

func TestContentHeaderRejects(t *testing.T) {
	cases := []struct {
		name    string
		payload string
		reply   ReplyCode
		code    base.Code
	}{
		{"too short", `00 3C 00 00 00 00`, ReplyFrameError, base.CodeInvalidArgument},
		{"weight not zero", `00 3C 00 01 00 00 00 00 00 00 00 00 00 00`, ReplySyntaxError, base.CodeInvalidArgument},
		{"continuation bit", `00 3C 00 00 00 00 00 00 00 00 00 00 00 01 00 00`, ReplySyntaxError, base.CodeInvalidArgument},
		{"unknown class", `00 63 00 00 00 00 00 00 00 00 00 00 00 00`, ReplyUnexpectedFrame, base.CodeInvalidArgument},
		{"property cut short", `00 3C 00 00 00 00 00 00 00 00 00 00 80 00 05 "ab"`, ReplyFrameError, base.CodeInvalidArgument},
		{"trailing bytes", `00 3C 00 00 00 00 00 00 00 00 00 00 00 00 FF`, ReplyFrameError, base.CodeInvalidArgument},
		{"bad headers table", `00 3C 00 00 00 00 00 00 00 00 00 00 20 00 00 00 00 03 01 "k" "?"`, ReplyFrameError, base.CodeInvalidArgument},
		{"properties on a class without any", `00 0A 00 00 00 00 00 00 00 00 00 00 80 00 00`, ReplyFrameError, base.CodeInvalidArgument},
	}
	for _, c := range cases {
		var h ContentHeader
		err := h.Decode(hexBytes(t, c.payload))
		if err == nil {
			t.Errorf("%s: accepted", c.name)
			continue
		}
		if e := replyOf(t, err); e.ReplyCode != c.reply || base.CodeOf(err) != c.code {
			t.Errorf("%s: got %v (code %v), want reply %d code %v", c.name, err, base.CodeOf(err), c.reply, c.code)
		}
		if h.RawProperties != nil {
			t.Errorf("%s: RawProperties set after a failed decode", c.name)
		}
	}
}

func TestContentBodySizeLimitEdge(t *testing.T) {
	var h ContentHeader
	if err := h.Decode(headerPayload(t, base.AMQPMessageBytesMax, nil)); err != nil {
		t.Errorf("body of AMQPMessageBytesMax: got %v, want it accepted", err)
	}
	err := h.Decode(headerPayload(t, base.AMQPMessageBytesMax+1, nil))
	if err == nil || replyOf(t, err).ReplyCode != ReplyFrameError || base.CodeOf(err) != base.CodeTooLarge {
		t.Errorf("body of AMQPMessageBytesMax+1: got %v, want a frame error with code too_large", err)
	}
}

func TestUnusedPropertyFlagBitIsIgnoredAsRabbitMQDoes(t *testing.T) {
	var h ContentHeader
	if err := h.Decode(hexBytes(t, `00 3C 00 00 00 00 00 00 00 00 00 00 00 02`)); err != nil {
		t.Fatalf("flag bit 1 set: got %v, want it ignored", err)
	}
	var p BasicProperties
	if err := h.Properties(&p); err != nil || p.Flags != 0 {
		t.Errorf("flag bit 1 set: got flags %016b, %v; want none", p.Flags, err)
	}
	var conn ContentHeader
	if err := conn.Decode(hexBytes(t, `00 0A 00 00 00 00 00 00 00 00 00 00 00 00`)); err != nil {
		t.Fatalf("a header of a class without properties: %v", err)
	}
	if err := conn.Properties(&p); err == nil || replyOf(t, err).ReplyCode != ReplyUnexpectedFrame {
		t.Errorf("basic properties of class 10: got %v, want unexpected-frame", err)
	}
}

func TestContentHeaderDecodeAllocatesNothing(t *testing.T) {
	payload := headerPayload(t, 100, allProperties())
	var h ContentHeader
	allocs := testing.AllocsPerRun(100, func() {
		if err := h.Decode(payload); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("decoding a content header with all 14 properties: %v allocations, want 0", allocs)
	}
}

func TestPropertiesDecodeReusesUnchangedStrings(t *testing.T) {
	p := allProperties()
	p.Headers, p.Flags = nil, p.Flags&^BasicFlagHeaders
	payload := headerPayload(t, 100, p)
	var h ContentHeader
	var got BasicProperties
	if err := h.Decode(payload); err != nil {
		t.Fatal(err)
	}
	if err := h.Properties(&got); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(100, func() {
		if err := h.Properties(&got); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("decoding the same 13 properties again: %v allocations, want 0", allocs)
	}
}

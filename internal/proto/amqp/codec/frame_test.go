package codec

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
	"testing/iotest"

	"github.com/ferry-mq/ferry/internal/base"
)

func TestReadProtocolHeader(t *testing.T) {
	if err := ReadProtocolHeader(bytes.NewReader(hexBytes(t, `"AMQP" 00 00 09 01`))); err != nil {
		t.Errorf("the 0-9-1 header: got %v, want nil", err)
	}
	for _, in := range []string{`"AMQP" 01 01 00 09`, `"AMQP" 00 00 09 00`, `"GET / HT"`, `16 03 01 00 A5 01 00 00`} {
		err := ReadProtocolHeader(bytes.NewReader(hexBytes(t, in)))
		var he *ProtocolHeaderError
		if !errors.As(err, &he) || !bytes.Equal(he.Got[:], hexBytes(t, in)) {
			t.Errorf("header %s: got %v, want a ProtocolHeaderError holding the bytes", in, err)
		}
		if base.CodeOf(err) != base.CodeNotSupported {
			t.Errorf("header %s: code %v, want not_supported", in, base.CodeOf(err))
		}
	}
	err := ReadProtocolHeader(bytes.NewReader([]byte("AMQ")))
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("3 bytes then EOF: got %v, want io.ErrUnexpectedEOF", err)
	}
	var buf bytes.Buffer
	if err := NewFrameWriter(&buf).WriteProtocolHeader(); err != nil || !bytes.Equal(buf.Bytes(), ProtocolHeader[:]) {
		t.Errorf("WriteProtocolHeader wrote % x, %v", buf.Bytes(), err)
	}
}

func TestFramesHaveTheSpecLayout(t *testing.T) {
	var buf bytes.Buffer
	fw := NewFrameWriter(&buf)
	if err := fw.WriteMethod(5, &ConnectionTune{ChannelMax: 2047, FrameMax: 131072, Heartbeat: 60}); err != nil {
		t.Fatal(err)
	}
	if err := fw.WriteHeartbeat(); err != nil {
		t.Fatal(err)
	}
	want := hexBytes(t, `01 | 00 05 | 00 00 00 0C | 00 0A 00 1E 07 FF 00 02 00 00 00 3C | CE
		08 | 00 00 | 00 00 00 00 | CE`)
	if !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("frames:\n got % x\nwant % x", buf.Bytes(), want)
	}
	fr := NewFrameReader(&buf)
	f, err := fr.ReadFrame()
	if err != nil || f.Type != FrameMethod || f.Channel != 5 || !bytes.Equal(f.Payload, want[7:19]) {
		t.Errorf("method frame: got %+v, %v", f, err)
	}
	f, err = fr.ReadFrame()
	if err != nil || f.Type != FrameHeartbeat || f.Channel != 0 || len(f.Payload) != 0 {
		t.Errorf("heartbeat: got %+v, %v", f, err)
	}
	if _, err := fr.ReadFrame(); err != io.EOF {
		t.Errorf("at the end of the stream: got %v, want io.EOF", err)
	}
}

func TestReadFrameRejectsBadFrames(t *testing.T) {
	cases := []struct {
		name  string
		in    string
		reply ReplyCode
	}{
		{"bad frame-end", `01 00 01 00 00 00 01 AA | 00`, ReplyFrameError},
		{"unknown frame type", `04 00 01 00 00 00 00 CE`, ReplyFrameError},
		{"heartbeat with a payload", `08 00 00 00 00 00 01 00 CE`, ReplyFrameError},
		{"heartbeat on channel 1", `08 00 01 00 00 00 00 CE`, ReplyUnexpectedFrame},
	}
	for _, c := range cases {
		_, err := NewFrameReader(bytes.NewReader(hexBytes(t, c.in))).ReadFrame()
		if err == nil || replyOf(t, err).ReplyCode != c.reply {
			t.Errorf("%s: got %v, want reply %d", c.name, err, c.reply)
		}
	}
	_, err := NewFrameReader(bytes.NewReader(hexBytes(t, `01 00 01 00 00 00 05 AA`))).ReadFrame()
	if err != io.ErrUnexpectedEOF {
		t.Errorf("stream ends inside a frame: got %v, want io.ErrUnexpectedEOF", err)
	}
}

// failingReader returns the header it is given, then fails the test if
// anything reads further: the size check must come before the payload.
type failingReader struct {
	t      *testing.T
	header []byte
}

func (r *failingReader) Read(p []byte) (int, error) {
	if len(r.header) == 0 {
		r.t.Fatalf("the payload of an oversized frame was read")
	}
	n := copy(p, r.header)
	r.header = r.header[n:]
	return n, nil
}

// sizedFrame returns a body frame with a payload of n bytes, built by hand
// since FrameWriter refuses to write frames over frame-max.
func sizedFrame(n int) []byte {
	b := binary.BigEndian.AppendUint32([]byte{FrameBody, 0, 1}, uint32(n))
	return append(append(b, make([]byte, n)...), FrameEnd)
}

func TestFrameSizeLimitEdge(t *testing.T) {
	// Before tune, frame-max is FrameMinSize; RabbitMQ's slack of 8 applies.
	largest := FrameMinSize - frameOverheadBytes + base.AMQPFrameSlackBytes
	if _, err := NewFrameReader(bytes.NewReader(sizedFrame(largest))).ReadFrame(); err != nil {
		t.Errorf("payload of %d before tune: got %v, want it read", largest, err)
	}
	fr := NewFrameReader(&failingReader{t: t, header: sizedFrame(largest + 1)[:7]})
	_, err := fr.ReadFrame()
	if err == nil || replyOf(t, err).ReplyCode != ReplyFrameError || base.CodeOf(err) != base.CodeTooLarge {
		t.Errorf("payload of %d before tune: got %v, want a frame error with code too_large", largest+1, err)
	}
	// After tune, the negotiated frame-max, up to AMQPFrameBytesMax.
	if err := fr.SetFrameMax(0); err != nil || fr.FrameMax() != base.AMQPFrameBytesMax {
		t.Fatalf("SetFrameMax(0): got %v, frame-max %d", err, fr.FrameMax())
	}
	largest = base.AMQPFrameBytesMax - frameOverheadBytes + base.AMQPFrameSlackBytes
	fr = NewFrameReader(bytes.NewReader(sizedFrame(largest)))
	_ = fr.SetFrameMax(base.AMQPFrameBytesMax)
	if f, err := fr.ReadFrame(); err != nil || len(f.Payload) != largest {
		t.Errorf("payload of %d at the largest frame-max: got %v", largest, err)
	}
	fr = NewFrameReader(&failingReader{t: t, header: sizedFrame(largest + 1)[:7]})
	_ = fr.SetFrameMax(base.AMQPFrameBytesMax)
	if _, err := fr.ReadFrame(); err == nil || base.CodeOf(err) != base.CodeTooLarge {
		t.Errorf("payload of %d at the largest frame-max: got %v, want too_large", largest+1, err)
	}
}

func TestAClaimedHugeFrameIsRejectedWithoutAllocatingForIt(t *testing.T) {
	header := hexBytes(t, `03 00 01 FF FF FF FF`) // a body frame claiming 4 GiB
	fr := NewFrameReader(&failingReader{t: t})
	var err error
	n := allocatedBytes(10, func() {
		fr.r = &failingReader{t: t, header: header}
		_, err = fr.ReadFrame()
	})
	if base.CodeOf(err) != base.CodeTooLarge {
		t.Fatalf("got %v, want too_large", err)
	}
	if n > 2048 {
		t.Errorf("rejecting a frame claiming 4 GiB allocated %d bytes, want only the error's", n)
	}
}

func TestSetFrameMaxBounds(t *testing.T) {
	cases := []struct {
		n     uint32
		valid bool
	}{
		{0, true}, {FrameMinSize - 1, false}, {FrameMinSize, true}, {131072, true},
		{base.AMQPFrameBytesMax, true}, {base.AMQPFrameBytesMax + 1, false},
	}
	for _, c := range cases {
		fr, fw := NewFrameReader(nil), NewFrameWriter(nil)
		errR, errW := fr.SetFrameMax(c.n), fw.SetFrameMax(c.n)
		if (errR == nil) != c.valid || (errW == nil) != c.valid {
			t.Errorf("SetFrameMax(%d): got %v / %v, want valid=%v", c.n, errR, errW, c.valid)
		}
		if !c.valid && (replyOf(t, errR).ReplyCode != ReplyNotAllowed || fr.FrameMax() != FrameMinSize) {
			t.Errorf("SetFrameMax(%d): got %v and frame-max %d, want not-allowed and no change", c.n, errR, fr.FrameMax())
		}
	}
}

func TestReaderBufferIsReusedAcrossFrames(t *testing.T) {
	var buf bytes.Buffer
	for range 5 { // one to size the buffer, one warm-up run, three measured
		buf.Write(sizedFrame(100))
	}
	fr := NewFrameReader(&buf)
	if _, err := fr.ReadFrame(); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(3, func() {
		if _, err := fr.ReadFrame(); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("reading a frame no larger than the last: %v allocations, want 0", allocs)
	}
}

func TestReadFrameWorksOverOneByteReads(t *testing.T) {
	var buf bytes.Buffer
	fw := NewFrameWriter(&buf)
	_ = fw.WriteMethod(1, &BasicPublish{Exchange: "x"})
	fr := NewFrameReader(iotest.OneByteReader(&buf))
	f, err := fr.ReadFrame()
	if err != nil || f.Type != FrameMethod {
		t.Fatalf("got %+v, %v", f, err)
	}
	if m, err := DecodeMethod(f.Payload); err != nil || m.(*BasicPublish).Exchange != "x" {
		t.Errorf("decoded %#v, %v", m, err)
	}
}

func TestWriteBodySplitsAtFrameMax(t *testing.T) {
	var buf bytes.Buffer
	fw := NewFrameWriter(&buf)
	chunk := FrameMinSize - frameOverheadBytes
	body := bytes.Repeat([]byte("0123456789"), (2*chunk+10)/10)
	if err := fw.WriteBody(3, body); err != nil {
		t.Fatal(err)
	}
	fr := NewFrameReader(&buf)
	var got []byte
	var sizes []int
	for {
		f, err := fr.ReadFrame()
		if err == io.EOF {
			break
		}
		if err != nil || f.Type != FrameBody || f.Channel != 3 {
			t.Fatalf("body frame: %+v, %v", f, err)
		}
		sizes = append(sizes, len(f.Payload))
		got = append(got, f.Payload...)
	}
	if !bytes.Equal(got, body) || len(sizes) != 3 || sizes[0] != chunk || sizes[1] != chunk || sizes[2] != len(body)-2*chunk {
		t.Errorf("split into frames of %v, want %d, %d, %d", sizes, chunk, chunk, len(body)-2*chunk)
	}
	buf.Reset()
	if err := fw.WriteBody(3, nil); err != nil || buf.Len() != 0 {
		t.Errorf("an empty body wrote %d bytes, %v; want no frame", buf.Len(), err)
	}
}

func TestWritingAFrameOverFrameMaxFails(t *testing.T) {
	var buf bytes.Buffer
	fw := NewFrameWriter(&buf)
	big := &ConnectionStart{Mechanisms: string(make([]byte, FrameMinSize))}
	if err := fw.WriteMethod(0, big); base.CodeOf(err) != base.CodeTooLarge || buf.Len() != 0 {
		t.Errorf("method over frame-max: got %v and %d bytes written, want too_large and nothing", err, buf.Len())
	}
	if err := fw.WriteFrame(Frame{Type: FrameBody, Payload: make([]byte, FrameMinSize-7)}); base.CodeOf(err) != base.CodeTooLarge {
		t.Errorf("raw frame over frame-max: got %v, want too_large", err)
	}
	bad := &BasicPublish{RoutingKey: string(make([]byte, 300))}
	if err := fw.WriteMethod(1, bad); base.CodeOf(err) != base.CodeInvalidArgument || buf.Len() != 0 {
		t.Errorf("unencodable method: got %v and %d bytes written", err, buf.Len())
	}
}

package codec

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// The fuzz targets check that decoders never panic, fail only with an
// *Error, agree with their allocation-free checkers, and that whatever
// decodes re-encodes to bytes that decode to the same bytes again (the
// encoding is canonical after one round: sorted table keys, 'l' for 'L',
// unused bits cleared). Run one with, for example:
//
//	go test -run '^$' -fuzz FuzzFrameReader -fuzztime 60s ./internal/proto/amqp/codec/

// methodSeeds returns the payload of every method, zero and populated.
func methodSeeds(t testing.TB) [][]byte {
	var out [][]byte
	for _, info := range Methods() {
		zero := NewMethod(info.Key)
		full := NewMethod(info.Key)
		populate(full, 1)
		out = append(out, encodeMethod(t, zero), encodeMethod(t, full))
	}
	return out
}

func asError(t *testing.T, what string, err error) *Error {
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("%s failed with %v (%T), not a *codec.Error", what, err, err)
	}
	if e.ReplyCode == 0 || e.Text == "" {
		t.Fatalf("%s: *Error without a reply code or text: %+v", what, e)
	}
	return e
}

func FuzzMethod(f *testing.F) {
	for _, seed := range methodSeeds(f) {
		f.Add(seed)
	}
	f.Add(hexBytes(f, `00 3C 00 63 00`))
	f.Add(hexBytes(f, `00 32 00 0A 00 00 01 FF 00 00 00 00 00`))
	var d MethodDecoder
	f.Fuzz(func(t *testing.T, payload []byte) {
		m, err := DecodeMethod(payload)
		m2, err2 := d.Decode(payload)
		if (err == nil) != (err2 == nil) {
			t.Fatalf("DecodeMethod and MethodDecoder disagree: %v vs %v", err, err2)
		}
		if err != nil {
			e := asError(t, "DecodeMethod", err)
			if e.ReplyCode != ReplyFrameError && e.ReplyCode != ReplyNotImplemented {
				t.Fatalf("method decode failed with reply %d: %v", e.ReplyCode, err)
			}
			return
		}
		first := encodeMethod(t, m)
		if !bytes.Equal(first, encodeMethod(t, m2)) {
			t.Fatalf("DecodeMethod and MethodDecoder decoded different methods")
		}
		again, err := DecodeMethod(first)
		if err != nil {
			t.Fatalf("re-encoded %s does not decode: %v", m.Key(), err)
		}
		if second := encodeMethod(t, again); !bytes.Equal(first, second) {
			t.Fatalf("%s: encoding is not stable:\n% x\n% x", m.Key(), first, second)
		}
	})
}

func FuzzTable(f *testing.F) {
	f.Add(encodeTable(f, sampleTable()))
	f.Add(encodeTable(f, nested(8)))
	f.Add(encodeTable(f, Table{"L": int64(1)}))
	f.Add(hexBytes(f, `00 00 00 0B 01 "v" "L" FF FF FF FF FF FF FF FE`))
	f.Add(hexBytes(f, `00 00 00 08 01 "v" "F" 00 00 00 09 01`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var r Reader
		r.Reset(data)
		r.skipTable()
		checked := r.finish(0)
		tbl, err := decodeTable(data)
		if (checked == nil) != (err == nil) {
			t.Fatalf("skipTable and table disagree: %v vs %v", checked, err)
		}
		if err != nil {
			asError(t, "table", err)
			return
		}
		var w Writer
		w.table(tbl)
		if w.Err() != nil {
			t.Fatalf("a decoded table does not encode: %v", w.Err())
		}
		first := bytes.Clone(w.Bytes())
		again, err := decodeTable(first)
		if err != nil {
			t.Fatalf("a re-encoded table does not decode: %v", err)
		}
		w.Reset()
		w.table(again)
		if !bytes.Equal(first, w.Bytes()) {
			t.Fatalf("table encoding is not stable:\n% x\n% x", first, w.Bytes())
		}
	})
}

func FuzzContentHeader(f *testing.F) {
	f.Add(headerPayloadF(f, 100, allProperties()))
	f.Add(headerPayloadF(f, 0, nil))
	f.Add(hexBytes(f, `00 3C 00 00 00 00 00 00 00 00 00 05 90 04 0A "text/plain" 02 02 "c1"`))
	f.Add(hexBytes(f, `00 3C 00 00 00 00 00 00 00 00 00 00 00 03`))
	f.Add(hexBytes(f, `00 0A 00 00 00 00 00 00 00 00 00 00 00 00`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		var h ContentHeader
		if err := h.Decode(payload); err != nil {
			asError(t, "ContentHeader.Decode", err)
			return
		}
		if h.ClassID != ClassBasic {
			return
		}
		var p BasicProperties
		if err := h.Properties(&p); err != nil {
			t.Fatalf("properties checked by Decode do not decode: %v", err)
		}
		first := headerPayloadF(t, h.BodySize, &p)
		var h2 ContentHeader
		var p2 BasicProperties
		if err := h2.Decode(first); err != nil {
			t.Fatalf("re-encoded header does not decode: %v", err)
		}
		if err := h2.Properties(&p2); err != nil {
			t.Fatalf("re-encoded properties do not decode: %v", err)
		}
		if second := headerPayloadF(t, h2.BodySize, &p2); !bytes.Equal(first, second) {
			t.Fatalf("content header encoding is not stable:\n% x\n% x", first, second)
		}
	})
}

// headerPayloadF is headerPayload for fuzz seeds and bodies.
func headerPayloadF(t testing.TB, bodySize uint64, p *BasicProperties) []byte {
	t.Helper()
	var w Writer
	w.short(ClassBasic)
	w.short(0)
	w.longlong(bodySize)
	if p == nil {
		w.short(0)
	} else {
		p.Encode(&w)
	}
	if w.Err() != nil {
		t.Fatalf("encoding a content header: %v", w.Err())
	}
	return bytes.Clone(w.Bytes())
}

func FuzzFrameReader(f *testing.F) {
	var stream bytes.Buffer
	fw := NewFrameWriter(&stream)
	_ = fw.WriteMethod(1, &BasicPublish{Exchange: "ex", RoutingKey: "rk"})
	_ = fw.WriteContentHeader(1, 5, allProperties())
	_ = fw.WriteBody(1, []byte("hello"))
	_ = fw.WriteHeartbeat()
	f.Add(stream.Bytes())
	f.Add(hexBytes(f, `08 00 00 00 00 00 00 CE 08 00 01 00 00 00 00 CE`))
	f.Add(hexBytes(f, `01 00 01 00 00 10 08 00`))
	f.Add(hexBytes(f, `03 00 01 00 00 00 01 AA BB`))
	f.Fuzz(func(t *testing.T, data []byte) {
		fr := NewFrameReader(bytes.NewReader(data))
		var methods MethodDecoder
		var out bytes.Buffer
		rw := NewFrameWriter(&out)
		_ = rw.SetFrameMax(0)
		consumed := 0
		for {
			frame, err := fr.ReadFrame()
			if err != nil {
				var e *Error
				if !errors.As(err, &e) && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("ReadFrame failed with %v (%T)", err, err)
				}
				break
			}
			consumed += frameOverheadBytes + len(frame.Payload)
			if err := rw.WriteFrame(frame); err != nil {
				t.Fatalf("a frame read does not write: %v", err)
			}
			switch frame.Type {
			case FrameMethod:
				_, _ = methods.Decode(frame.Payload)
			case FrameHeader:
				var h ContentHeader
				if h.Decode(frame.Payload) == nil && h.ClassID == ClassBasic {
					var p BasicProperties
					if err := h.Properties(&p); err != nil {
						t.Fatalf("properties checked by Decode do not decode: %v", err)
					}
				}
			}
		}
		if !bytes.Equal(out.Bytes(), data[:consumed]) {
			t.Fatalf("frames re-written differ from the frames read")
		}
	})
}

package codec

import (
	"bytes"
	"errors"
	"reflect"
	"slices"
	"testing"

	"github.com/ferry-mq/ferry/internal/base"
)

func TestEveryMethodRoundTrips(t *testing.T) {
	infos := Methods()
	if got := len(infos); got != 66 {
		t.Fatalf("spec methods: got %d, want 66", got)
	}
	for _, info := range infos {
		for seed := range 2 {
			want := NewMethod(info.Key)
			populate(want, seed)
			payload := encodeMethod(t, want)
			got, err := DecodeMethod(payload)
			if err != nil {
				t.Fatalf("%s seed %d: decoding: %v", info.Name, seed, err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s seed %d: round trip:\n got %#v\nwant %#v", info.Name, seed, got, want)
			}
			if again := encodeMethod(t, got); !bytes.Equal(again, payload) {
				t.Errorf("%s seed %d: re-encoding changed the bytes:\n got % x\nwant % x", info.Name, seed, again, payload)
			}
		}
		zero := NewMethod(info.Key)
		got, err := DecodeMethod(encodeMethod(t, zero))
		if err != nil || !reflect.DeepEqual(got, zero) {
			t.Errorf("%s zero value: got %#v, %v; want %#v", info.Name, got, err, zero)
		}
	}
}

func TestMethodDecoderOverwritesEveryFieldOfItsStruct(t *testing.T) {
	var d MethodDecoder
	for _, info := range Methods() {
		full := NewMethod(info.Key)
		populate(full, 0)
		if _, err := d.Decode(encodeMethod(t, full)); err != nil {
			t.Fatalf("%s: %v", info.Name, err)
		}
		zero := NewMethod(info.Key)
		got, err := d.Decode(encodeMethod(t, zero))
		if err != nil {
			t.Fatalf("%s: %v", info.Name, err)
		}
		if !reflect.DeepEqual(got, zero) {
			t.Errorf("%s: a decode after a populated one kept stale fields:\n got %#v\nwant %#v", info.Name, got, zero)
		}
	}
}

// The bytes below are derived by hand from the spec's method definitions
// (§4.2.5: big-endian integers, short strings with an octet length, bits
// packed from the low bit) and RabbitMQ's table type letters.
func TestMethodsEncodeToKnownBytes(t *testing.T) {
	cases := []struct {
		name string
		m    Method
		want string
	}{
		{"connection.tune", &ConnectionTune{ChannelMax: 2047, FrameMax: 131072, Heartbeat: 60},
			`00 0A 00 1E | 07 FF | 00 02 00 00 | 00 3C`},
		{"connection.close", &ConnectionClose{ReplyCode: 320, ReplyText: "bye", ClassID: 60, MethodID: 40},
			`00 0A 00 32 | 01 40 | 03 "bye" | 00 3C | 00 28`},
		{"channel.open", &ChannelOpen{}, `00 14 00 0A | 00`},
		{"basic.publish", &BasicPublish{Exchange: "ex", RoutingKey: "rk", Mandatory: true},
			`00 3C 00 28 | 00 00 | 02 "ex" | 02 "rk" | 01`},
		{"basic.deliver", &BasicDeliver{ConsumerTag: "ctag", DeliveryTag: 7, Redelivered: true, RoutingKey: "k"},
			`00 3C 00 3C | 04 "ctag" | 00 00 00 00 00 00 00 07 | 01 | 00 | 01 "k"`},
		{"basic.nack", &BasicNack{DeliveryTag: 0x0102030405060708, Multiple: false, Requeue: true},
			`00 3C 00 78 | 01 02 03 04 05 06 07 08 | 02`},
		{"queue.declare", &QueueDeclare{Queue: "q", Durable: true, AutoDelete: true, NoWait: true,
			Arguments: Table{"x-max-length": int32(10)}},
			`00 32 00 0A | 00 00 | 01 "q" | 1A | 00 00 00 12 | 0C "x-max-length" "I" 00 00 00 0A`},
		{"tx.select", &TxSelect{}, `00 5A 00 0A`},
		{"confirm.select", &ConfirmSelect{NoWait: true}, `00 55 00 0A | 01`},
	}
	for _, c := range cases {
		want := hexBytes(t, c.want)
		if got := encodeMethod(t, c.m); !bytes.Equal(got, want) {
			t.Errorf("%s: encoded\n got % x\nwant % x", c.name, got, want)
		}
		got, err := DecodeMethod(want)
		if err != nil {
			t.Errorf("%s: decoding the known bytes: %v", c.name, err)
			continue
		}
		if !reflect.DeepEqual(got, c.m) {
			t.Errorf("%s: decoded\n got %#v\nwant %#v", c.name, got, c.m)
		}
	}
}

func TestDecodeRejectsWithTheReplyCodeRabbitMQUses(t *testing.T) {
	cases := []struct {
		name    string
		payload string
		reply   ReplyCode
		method  MethodKey
		code    base.Code
	}{
		{"no method id", `00 3C 00`, ReplyFrameError, 0, base.CodeInvalidArgument},
		{"unknown method", `00 3C 00 63 | 00`, ReplyNotImplemented, NewMethodKey(60, 99), base.CodeNotSupported},
		{"unknown class", `01 00 00 0A`, ReplyNotImplemented, NewMethodKey(256, 10), base.CodeNotSupported},
		{"truncated argument", `00 3C 00 28 | 00 00 | 05 "ex"`, ReplyFrameError, MethodBasicPublish, base.CodeInvalidArgument},
		{"missing bits", `00 3C 00 28 | 00 00 | 00 | 00`, ReplyFrameError, MethodBasicPublish, base.CodeInvalidArgument},
		{"trailing bytes", `00 3C 00 28 | 00 00 | 00 | 00 | 00 | FF`, ReplyFrameError, MethodBasicPublish, base.CodeInvalidArgument},
		{"trailing bytes after no arguments", `00 5A 00 0A | 00`, ReplyFrameError, MethodTxSelect, base.CodeInvalidArgument},
		{"queue name not UTF-8", `00 32 00 0A | 00 00 | 01 FF | 00 | 00 00 00 00`, ReplyFrameError, MethodQueueDeclare, base.CodeInvalidArgument},
		{"unknown field type", `00 32 00 0A | 00 00 | 00 | 00 | 00 00 00 03 01 "a" "U"`, ReplyFrameError, MethodQueueDeclare, base.CodeInvalidArgument},
		{"table longer than the frame", `00 32 00 0A | 00 00 | 00 | 00 | FF FF FF FF`, ReplyFrameError, MethodQueueDeclare, base.CodeInvalidArgument},
		{"long string longer than the frame", `00 0A 00 14 | 7F FF FF FF "abc"`, ReplyFrameError, MethodConnectionSecure, base.CodeInvalidArgument},
	}
	var d MethodDecoder
	for _, c := range cases {
		payload := hexBytes(t, c.payload)
		for _, decode := range []func([]byte) (Method, error){d.Decode, DecodeMethod} {
			m, err := decode(payload)
			if err == nil {
				t.Errorf("%s: decoded %#v, want an error", c.name, m)
				continue
			}
			if m != nil {
				t.Errorf("%s: got method %#v with the error", c.name, m)
			}
			e := replyOf(t, err)
			if e.ReplyCode != c.reply || e.Method != c.method {
				t.Errorf("%s: got reply %d for %s (%v), want %d for %s", c.name, e.ReplyCode, e.Method, err, c.reply, c.method)
			}
			if got := base.CodeOf(err); got != c.code {
				t.Errorf("%s: Ferry code: got %v, want %v", c.name, got, c.code)
			}
		}
	}
}

func TestContentMethodsSkipTheUTF8CheckAsRabbitMQDoes(t *testing.T) {
	payload := hexBytes(t, `00 3C 00 28 | 00 00 | 01 FF | 02 C3 28 | 00`)
	m, err := DecodeMethod(payload)
	if err != nil {
		t.Fatalf("basic.publish with a non-UTF-8 routing key: got %v, want it accepted", err)
	}
	if got := m.(*BasicPublish).RoutingKey; got != "\xc3\x28" {
		t.Errorf("routing key: got %q, want %q", got, "\xc3\x28")
	}
}

func TestMethodDecoderAllocatesNothingForARepeatedPublish(t *testing.T) {
	payload := encodeMethod(t, &BasicPublish{Exchange: "orders", RoutingKey: "eu.new", Mandatory: true})
	var d MethodDecoder
	if _, err := d.Decode(payload); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := d.Decode(payload); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("allocations per decode of the same basic.publish: got %v, want 0", allocs)
	}
}

func TestMethodMetadataFollowsTheSpec(t *testing.T) {
	content := map[MethodKey]bool{MethodBasicPublish: true, MethodBasicReturn: true, MethodBasicDeliver: true, MethodBasicGetOk: true}
	syncCount := 0
	for _, info := range Methods() {
		if info.HasContent != content[info.Key] {
			t.Errorf("%s: HasContent got %v, want %v", info.Name, info.HasContent, content[info.Key])
		}
		if LookupMethod(info.Key) == nil || LookupMethod(info.Key).Name != info.Name || info.Key.String() != info.Name {
			t.Errorf("%s: lookup by key %d disagrees", info.Name, info.Key)
		}
		m := NewMethod(info.Key)
		if m.Key() != info.Key || m.Info().Name != info.Name {
			t.Errorf("%s: the struct's Key/Info are %v/%s", info.Name, m.Key(), m.Info().Name)
		}
		if m.Synchronous() != info.Synchronous {
			t.Errorf("%s: zero struct Synchronous() got %v, want the spec's %v", info.Name, m.Synchronous(), info.Synchronous)
		}
		if !info.Synchronous {
			if len(info.Responses) != 0 {
				t.Errorf("%s: asynchronous but has responses %v", info.Name, info.Responses)
			}
			continue
		}
		syncCount++
		if len(info.Responses) == 0 {
			t.Errorf("%s: synchronous with no responses", info.Name)
		}
		for _, r := range info.Responses {
			if r.ClassID() != info.Key.ClassID() || LookupMethod(r) == nil {
				t.Errorf("%s: response %v is not a method of its class", info.Name, r)
			}
		}
	}
	if syncCount != 28 {
		t.Errorf("synchronous methods: got %d, want 28", syncCount)
	}
	if got := LookupMethod(MethodBasicGet).Responses; !slices.Equal(got, []MethodKey{MethodBasicGetOk, MethodBasicGetEmpty}) {
		t.Errorf("basic.get responses: got %v, want get-ok and get-empty", got)
	}
	if got := LookupMethod(MethodConnectionStart).Responses; !slices.Equal(got, []MethodKey{MethodConnectionStartOk}) {
		t.Errorf("connection.start responses: got %v", got)
	}
	if LookupMethod(NewMethodKey(60, 99)) != nil || NewMethod(NewMethodKey(60, 99)) != nil {
		t.Errorf("an unknown key has metadata or a struct")
	}
	if got := NewMethodKey(60, 99).String(); got != "method 60.99" {
		t.Errorf("unknown key String: got %q", got)
	}
}

func TestNoWaitMakesASynchronousMethodAsynchronous(t *testing.T) {
	if !(&QueueDeclare{}).Synchronous() || (&QueueDeclare{NoWait: true}).Synchronous() {
		t.Errorf("queue.declare: Synchronous() should follow NoWait")
	}
	if !(&BasicGet{}).Synchronous() {
		t.Errorf("basic.get has no nowait and is always synchronous")
	}
	if (&BasicPublish{}).Synchronous() {
		t.Errorf("basic.publish is asynchronous")
	}
}

func TestErrorCarriesWhatConnectionCloseNeeds(t *testing.T) {
	_, err := DecodeMethod(hexBytes(t, `00 32 00 0A | 00 00 | 01 FF | 00 | 00 00 00 00`))
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("got %v, want a *codec.Error", err)
	}
	if !e.ReplyCode.Hard() {
		t.Errorf("frame-error is a hard error")
	}
	cl := e.ConnectionClose()
	if cl.ReplyCode != 501 || cl.ClassID != 50 || cl.MethodID != 10 {
		t.Errorf("connection.close: got %d %d.%d, want 501 50.10", cl.ReplyCode, cl.ClassID, cl.MethodID)
	}
	if want := "FRAME_ERROR - short string at offset 2 is not UTF-8"; cl.ReplyText != want {
		t.Errorf("reply text: got %q, want %q", cl.ReplyText, want)
	}
	if !errors.Is(err, &base.Error{Code: base.CodeInvalidArgument}) {
		t.Errorf("the error does not match base code invalid_argument")
	}
}

func TestServerErrorsShareTheType(t *testing.T) {
	err := error(NewError(ReplyCommandInvalid, base.CodeNotSupported, MethodBasicDeliver, "unimplemented method"))
	e := replyOf(t, err)
	cl := e.ConnectionClose()
	if cl.ReplyCode != 503 || cl.ReplyText != "COMMAND_INVALID - unimplemented method" || cl.ClassID != 60 || cl.MethodID != 60 {
		t.Errorf("connection.close: got %+v", cl)
	}
	if base.CodeOf(err) != base.CodeNotSupported {
		t.Errorf("Ferry code: got %v, want not_supported", base.CodeOf(err))
	}
	if want := "amqp COMMAND_INVALID (503) in basic.deliver: unimplemented method"; err.Error() != want {
		t.Errorf("message: got %q, want %q", err.Error(), want)
	}
}

func TestReplyTextIsCutToAShortStringOnARuneBoundary(t *testing.T) {
	e := frameError("%s", bytes.Repeat([]byte("é"), 200)) // 400 bytes of two-byte runes
	got := e.ReplyText()
	if len(got) > 255 || len(got) < 254 {
		t.Errorf("reply text length: got %d, want 254 or 255", len(got))
	}
	if !bytes.HasPrefix([]byte(got), []byte("FRAME_ERROR - é")) || got[len(got)-2:] != "é" {
		t.Errorf("reply text cut inside a rune: ends % x", got[len(got)-3:])
	}
	var w Writer
	w.shortStr(got)
	if w.Err() != nil {
		t.Errorf("the cut reply text does not fit a shortstr: %v", w.Err())
	}
}

func TestReplyCodeNamesAndClasses(t *testing.T) {
	cases := []struct {
		code ReplyCode
		name string
		hard bool
	}{
		{ReplySuccess, "REPLY_SUCCESS", false},
		{ReplyNotFound, "NOT_FOUND", false},
		{ReplyPreconditionFailed, "PRECONDITION_FAILED", false},
		{ReplyConnectionForced, "CONNECTION_FORCED", true},
		{ReplyFrameError, "FRAME_ERROR", true},
		{ReplyNotImplemented, "NOT_IMPLEMENTED", true},
		{ReplyCode(999), "REPLY_999", false},
	}
	for _, c := range cases {
		if c.code.String() != c.name || c.code.Hard() != c.hard {
			t.Errorf("code %d: got %s hard=%v, want %s hard=%v", uint16(c.code), c.code, c.code.Hard(), c.name, c.hard)
		}
	}
}

func TestEncodingAShortStringOverItsLimitFails(t *testing.T) {
	var w Writer
	EncodeMethod(&w, &BasicPublish{RoutingKey: string(bytes.Repeat([]byte{'k'}, 255))})
	if w.Err() != nil {
		t.Fatalf("a 255-byte routing key: got %v, want it encoded", w.Err())
	}
	w.Reset()
	EncodeMethod(&w, &BasicPublish{RoutingKey: string(bytes.Repeat([]byte{'k'}, 256))})
	if got := base.CodeOf(w.Err()); got != base.CodeInvalidArgument {
		t.Errorf("a 256-byte routing key: got %v (%v), want invalid_argument", w.Err(), got)
	}
}

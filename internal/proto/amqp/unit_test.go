package amqp

import (
	"bytes"
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/broker"
	"github.com/ferry-mq/ferry/internal/proto/amqp/codec"
)

func TestUnackedListTakesSingleMultipleAndAll(t *testing.T) {
	var l unackedList
	for tag := uint64(1); tag <= 5; tag++ {
		l.push(unackedEntry{tag: tag, id: tag * 10})
	}
	if _, ok := l.take(9, false); ok {
		t.Errorf("take of an unknown tag: got ok")
	}
	got, ok := l.take(2, false)
	if !ok || len(got) != 1 || got[0].id != 20 {
		t.Fatalf("take 2: %v %v", got, ok)
	}
	if _, ok := l.take(2, false); ok {
		t.Errorf("take of a settled tag: got ok, want unknown")
	}
	got, ok = l.take(4, true)
	if !ok || len(got) != 3 || got[0].tag != 1 || got[1].tag != 3 || got[2].tag != 4 {
		t.Fatalf("take 4 multiple: %+v %v, want tags 1 3 4", got, ok)
	}
	if l.live != 1 {
		t.Errorf("live %d, want 1", l.live)
	}
	l.restore(got)
	if l.live != 4 || l.find(3) < 0 {
		t.Errorf("after restore: live %d, find(3) %d", l.live, l.find(3))
	}
	got, _ = l.take(0, true)
	if len(got) != 4 || l.live != 0 {
		t.Errorf("take all: %d entries, live %d", len(got), l.live)
	}
}

func TestUnackedListCompactsTombstones(t *testing.T) {
	var l unackedList
	for tag := uint64(1); tag <= 1000; tag++ {
		l.push(unackedEntry{tag: tag})
	}
	for tag := uint64(2); tag <= 1000; tag += 2 { // every other one, out of order with the head
		if _, ok := l.take(tag, false); !ok {
			t.Fatalf("take %d", tag)
		}
	}
	if len(l.entries) > 2*l.live+32 {
		t.Errorf("%d entries held for %d live: tombstones not compacted", len(l.entries), l.live)
	}
	for tag := uint64(1); tag <= 1000; tag += 2 {
		if l.find(tag) < 0 {
			t.Fatalf("live tag %d lost by compaction", tag)
		}
	}
}

func TestSettlesForMergesPerConsumer(t *testing.T) {
	a, b := &consumer{sub: nil}, &consumer{}
	subA, subB := &recSub{}, &recSub{}
	a.sub, b.sub = subA, subB
	taken := []unackedEntry{{tag: 1, id: 7, cons: a}, {tag: 2, id: 3, cons: b}, {tag: 3, id: 8, cons: a}}
	runSettles(context.Background(), settlesFor(taken, opAck, false))
	if len(subA.acks) != 1 || subA.acks[0] != (recSettle{8, true}) {
		t.Errorf("consumer a: %+v, want one multiple ack of 8", subA.acks)
	}
	if len(subB.acks) != 1 || subB.acks[0] != (recSettle{3, false}) {
		t.Errorf("consumer b: %+v, want one single ack of 3", subB.acks)
	}
}

type recSettle struct {
	id       uint64
	multiple bool
}

type recSub struct{ acks, nacks []recSettle }

func (r *recSub) Cancel(context.Context) error { return nil }
func (r *recSub) Ack(id uint64, multiple bool) { r.acks = append(r.acks, recSettle{id, multiple}) }
func (r *recSub) Nack(id uint64, multiple, _ bool) {
	r.nacks = append(r.nacks, recSettle{id, multiple})
}
func (r *recSub) Stream() bool                              { return false }
func (r *recSub) SetPrefetch(context.Context, uint32) error { return nil }

func TestConfirmTrackerEmitsInOrderWithMultiple(t *testing.T) {
	var buf bytes.Buffer
	out := newFrameWriter(&buf)
	var tr confirmTracker
	for i := 0; i < 5; i++ {
		tr.assign()
	}
	tr.settle(2, true) // early: held until 1 is known
	tr.emit(out, 1)
	if len(out.pending.buf) != 0 {
		t.Fatalf("confirm emitted before the first publish settled")
	}
	tr.settle(1, true)
	tr.settle(3, false)
	tr.settle(4, true)
	tr.emit(out, 1)
	var methods []codec.Method
	fr := codec.NewFrameReader(bytes.NewReader(out.pending.buf))
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			break
		}
		m, err := codec.DecodeMethod(f.Payload)
		if err != nil {
			t.Fatal(err)
		}
		methods = append(methods, m)
	}
	want := []codec.Method{&codec.BasicAck{DeliveryTag: 2, Multiple: true}, &codec.BasicNack{DeliveryTag: 3},
		&codec.BasicAck{DeliveryTag: 4}}
	if len(methods) != len(want) {
		t.Fatalf("got %d confirms %+v, want %+v", len(methods), methods, want)
	}
	for i := range want {
		if methods[i].Key() != want[i].Key() {
			t.Errorf("confirm %d: got %+v, want %+v", i, methods[i], want[i])
		}
	}
	if a := methods[0].(*codec.BasicAck); a.DeliveryTag != 2 || !a.Multiple {
		t.Errorf("first: %+v", a)
	}
	if n := methods[1].(*codec.BasicNack); n.DeliveryTag != 3 || n.Multiple {
		t.Errorf("second: %+v", n)
	}
	if a := methods[2].(*codec.BasicAck); a.DeliveryTag != 4 || a.Multiple {
		t.Errorf("third: %+v", a)
	}
	if tr.emitted != 4 || len(tr.outcomes) != 1 {
		t.Errorf("emitted %d with %d outstanding, want 4 and 1", tr.emitted, len(tr.outcomes))
	}
}

func TestParseStreamOffset(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	ts := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   any
		want StreamOffset
		ok   bool
	}{
		{"first", StreamOffset{Kind: StreamFirst}, true},
		{"last", StreamOffset{Kind: StreamLast}, true},
		{"next", StreamOffset{Kind: StreamNext}, true},
		{int64(42), StreamOffset{Kind: StreamOffsetAt, Offset: 42}, true},
		{int32(7), StreamOffset{Kind: StreamOffsetAt, Offset: 7}, true},
		{ts, StreamOffset{Kind: StreamTimestamp, Timestamp: ts}, true},
		{"2h", StreamOffset{Kind: StreamInterval, Interval: 2 * time.Hour, Timestamp: now.Add(-2 * time.Hour)}, true},
		{"1D", StreamOffset{Kind: StreamInterval, Interval: 24 * time.Hour, Timestamp: now.Add(-24 * time.Hour)}, true},
		{int64(-1), StreamOffset{}, false},
		{"0s", StreamOffset{}, false},
		{"yesterday", StreamOffset{}, false},
		{"99999999999999h", StreamOffset{}, false},
		{true, StreamOffset{}, false},
	} {
		got, err := parseStreamOffset(tc.in, now)
		if (err == nil) != tc.ok || (tc.ok && got != tc.want) {
			t.Errorf("parseStreamOffset(%v): got %+v, %v; want %+v ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestReplyCodeTableCoversEveryBaseCode(t *testing.T) {
	for _, c := range base.Codes() {
		rc, ok := replyCodes[c]
		if !ok {
			t.Errorf("base code %v has no AMQP reply code", c)
			continue
		}
		if strings.HasPrefix(rc.String(), "REPLY_") {
			t.Errorf("code %v maps to unknown reply %d", c, rc)
		}
	}
	for code, want := range map[base.Code]codec.ReplyCode{
		base.CodeNotFound: 404, base.CodeAccessRefused: 403, base.CodeResourceLocked: 405,
		base.CodePreconditionFailed: 406, base.CodeNotSupported: 540, base.CodeStopped: 320,
	} {
		if got := replyCodeOf(base.Errorf(code, "x")); got != want {
			t.Errorf("%v: got %d, want %d", code, got, want)
		}
	}
	e := asReply(base.Errorf(base.CodeNotFound, "no queue 'q' in vhost '/'"), codec.MethodQueueDeclare)
	if e.ReplyText() != "NOT_FOUND - no queue 'q' in vhost '/'" || e.Method != codec.MethodQueueDeclare || e.ReplyCode.Hard() {
		t.Errorf("asReply: %q method %v hard %v", e.ReplyText(), e.Method, e.ReplyCode.Hard())
	}
}

func TestParseAMQPlain(t *testing.T) {
	var w codec.Writer
	codec.EncodeMethod(&w, &codec.ConnectionStartOk{ClientProperties: codec.Table{"LOGIN": "bob", "PASSWORD": "pw"}})
	// The table starts after the method key; AMQPLAIN drops its length.
	resp := string(w.Bytes()[8 : len(w.Bytes())-6])
	user, pw, err := parseAMQPlain(resp)
	if err != nil || user != "bob" || pw != "pw" {
		t.Errorf("got %q %q %v", user, pw, err)
	}
	for _, bad := range []string{"", "\x05LOGIN", "\x05LOGINS\x00\x00\x00\x05", "\x08PASSWORDS\x00\x00\x00\x01x"} {
		if _, _, err := parseAMQPlain(bad); err == nil {
			t.Errorf("parseAMQPlain(%q): no error", bad)
		}
	}
}

func TestPropertiesSurviveTheBrokerMapping(t *testing.T) {
	pub := allProperties()
	var p codec.BasicProperties
	p.SetContentType(pub.ContentType)
	p.SetContentEncoding(pub.ContentEncoding)
	h := codec.Table{}
	for k, v := range pub.Headers {
		switch x := v.(type) {
		case map[string]interface{}:
			h[k] = codec.Table(x)
		default:
			h[k] = v
		}
	}
	h["table"] = codec.Table{"nested": codec.Table{"deep": "yes"}}
	h["array"] = []any{"a", int32(1), codec.Table{"x": true}}
	h["time"] = time.Unix(1700000000, 0).UTC()
	h["decimal"] = codec.Decimal{Scale: 2, Value: 12345}
	p.SetHeaders(h)
	p.SetDeliveryMode(2)
	p.SetPriority(7)
	p.SetCorrelationID("c")
	p.SetReplyTo("r")
	p.SetExpiration("100")
	p.SetMessageID("m")
	p.SetTimestamp(time.Unix(1700000001, 0).UTC())
	p.SetType("t")
	p.SetUserID("u")
	p.SetAppID("a")
	in := Message{Exchange: "x", RoutingKey: "k", Properties: p, Body: []byte("b")}
	var bm broker.Message
	toBrokerMessage(&in, &bm)
	var out codec.BasicProperties
	fromBrokerProperties(&bm, &out)
	if !reflect.DeepEqual(out, p) {
		t.Errorf("round trip through broker.Message:\n got %+v\nwant %+v", out, p)
	}
}

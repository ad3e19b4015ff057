package amqp

import (
	"bytes"
	"context"
	"encoding/binary"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/proto/amqp/codec"
	amqp091 "github.com/rabbitmq/amqp091-go"
)

// frameBytes builds a frame by hand, with any frame-end octet.
func frameBytes(typ uint8, channel uint16, payload []byte, end byte) []byte {
	b := []byte{typ}
	b = binary.BigEndian.AppendUint16(b, channel)
	b = binary.BigEndian.AppendUint32(b, uint32(len(payload)))
	b = append(b, payload...)
	return append(b, end)
}

func methodPayload(m codec.Method) []byte {
	var w codec.Writer
	codec.EncodeMethod(&w, m)
	return append([]byte(nil), w.Bytes()...)
}

func methodFrame(channel uint16, m codec.Method) []byte {
	return frameBytes(codec.FrameMethod, channel, methodPayload(m), codec.FrameEnd)
}

func headerFrame(channel uint16, size uint64) []byte {
	p := binary.BigEndian.AppendUint16(nil, codec.ClassBasic)
	p = binary.BigEndian.AppendUint16(p, 0)
	p = binary.BigEndian.AppendUint64(p, size)
	p = binary.BigEndian.AppendUint16(p, 0)
	return frameBytes(codec.FrameHeader, channel, p, codec.FrameEnd)
}

// deepTable encodes a field table nested depth levels deep.
func deepTable(depth int) []byte {
	inner := []byte{0, 0, 0, 0}
	for i := 1; i < depth; i++ {
		entry := append([]byte{1, 'k', 'F'}, inner...)
		inner = binary.BigEndian.AppendUint32(nil, uint32(len(entry)))
		inner = append(inner, entry...)
	}
	return inner
}

func queueDeclareWithArgs(table []byte) []byte {
	p := binary.BigEndian.AppendUint32(nil, uint32(codec.MethodQueueDeclare))
	p = append(p, 0, 0, 1, 'q', 0)
	p = append(p, table...)
	return frameBytes(codec.FrameMethod, 1, p, codec.FrameEnd)
}

func TestBadInputGetsTheSpecsExceptionAndSparesOtherConnections(t *testing.T) {
	publishFrame := methodFrame(1, &codec.BasicPublish{RoutingKey: "q"})
	cases := []struct {
		name  string
		bytes []byte
		code  codec.ReplyCode
		text  string
	}{
		{"wrong frame-end octet", frameBytes(codec.FrameMethod, 1, methodPayload(&codec.BasicQos{}), 0xCD), codec.ReplyFrameError, "frame-end octet"},
		// Only the header of an oversize frame: the server refuses it from
		// the size alone, before reading (or allocating for) the payload.
		{"oversize frame", frameBytes(codec.FrameBody, 1, make([]byte, 131073), codec.FrameEnd)[:7], codec.ReplyFrameError, "exceeds frame-max"},
		{"unknown frame type", frameBytes(7, 1, nil, codec.FrameEnd), codec.ReplyFrameError, "unknown frame type"},
		{"malformed method", frameBytes(codec.FrameMethod, 1, []byte{0, 60}, codec.FrameEnd), codec.ReplyFrameError, ""},
		{"unknown class and method", frameBytes(codec.FrameMethod, 1, []byte{0, 99, 0, 1}, codec.FrameEnd), codec.ReplyNotImplemented, "unknown method"},
		{"method on an unopened channel", methodFrame(5, &codec.QueueDeclare{Queue: "q"}), codec.ReplyChannelError, "expected 'channel.open'"},
		{"second channel.open", methodFrame(1, &codec.ChannelOpen{}), codec.ReplyChannelError, "second 'channel.open'"},
		{"content header without publish", headerFrame(1, 3), codec.ReplyUnexpectedFrame, "expected method frame"},
		{"body before the content header", append(publishFrame, frameBytes(codec.FrameBody, 1, []byte("x"), codec.FrameEnd)...),
			codec.ReplyUnexpectedFrame, "expected content header"},
		{"method inside content", append(publishFrame, methodFrame(1, &codec.BasicQos{})...), codec.ReplyUnexpectedFrame, "expected content header"},
		{"body larger than announced", append(append(publishFrame, headerFrame(1, 2)...), frameBytes(codec.FrameBody, 1, []byte("xyz"), codec.FrameEnd)...),
			codec.ReplyFrameError, "exceed the content header's body size"},
		{"content header weight not 0", append(publishFrame, frameBytes(codec.FrameHeader, 1,
			[]byte{0, 60, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, codec.FrameEnd)...), codec.ReplySyntaxError, "weight"},
		{"heartbeat on a channel", frameBytes(codec.FrameHeartbeat, 1, nil, codec.FrameEnd), codec.ReplyUnexpectedFrame, "heartbeat"},
		{"table too deep", queueDeclareWithArgs(deepTable(base.AMQPTableDepthMax + 1)), codec.ReplyFrameError, "nested deeper"},
		{"channel over channel-max", methodFrame(2048, &codec.ChannelOpen{}), codec.ReplyNotAllowed, "exceeds the negotiated channel_max (2047)"},
		{"connection method on a channel", methodFrame(1, &codec.ConnectionTuneOk{FrameMax: 4096}), codec.ReplyCommandInvalid, ""},
		{"server-only method", methodFrame(1, &codec.BasicDeliver{}), codec.ReplyCommandInvalid, "unimplemented method"},
		{"immediate publish", methodFrame(1, &codec.BasicPublish{Immediate: true}), codec.ReplyNotImplemented, "immediate=true"},
		{"prefetch size", methodFrame(1, &codec.BasicQos{PrefetchSize: 10}), codec.ReplyNotImplemented, "prefetch_size!=0"},
	}
	ts := startServer(t)
	bystander := ts.channel(t)
	declareQueue(t, bystander, "bystander")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := dialRaw(t, ts)
			r.handshake(codec.ConnectionTuneOk{}, nil)
			r.openChannel(1)
			r.sendBytes(tc.bytes)
			cl := r.expectConnectionClose(tc.code)
			if !strings.Contains(cl.ReplyText, tc.text) || !strings.HasPrefix(cl.ReplyText, tc.code.String()+" - ") {
				t.Errorf("reply text %q, want %s - ...%s...", cl.ReplyText, tc.code, tc.text)
			}
			publish(t, bystander, "", "bystander", "still fine")
		})
	}
	waitFor(t, "the bystander's publishes", func() bool { n, _ := ts.depth("bystander"); return n == len(cases) })
}

func TestWrongProtocolHeaderIsAnsweredWithOurs(t *testing.T) {
	ts := startServer(t)
	for _, hdr := range []string{"AMQP\x01\x01\x00\x0a", "GET / HTTP/1.1\r\n"} {
		r := dialRaw(t, ts)
		r.sendBytes([]byte(hdr))
		got := make([]byte, 8)
		if _, err := r.nc.Read(got); err != nil {
			t.Fatalf("%q: %v", hdr, err)
		}
		if !bytes.Equal(got, codec.ProtocolHeader[:]) {
			t.Errorf("answer to %q: got %q, want %q", hdr, got, codec.ProtocolHeader[:])
		}
		r.expectEOF()
	}
}

func TestAuthFailureCloseCapabilityGets403(t *testing.T) {
	ts := startServer(t)
	refused := func() *rawClient {
		r := dialRaw(t, ts)
		r.sendBytes(codec.ProtocolHeader[:])
		expect[*codec.ConnectionStart](r)
		r.send(0, &codec.ConnectionStartOk{ClientProperties: codec.Table{"capabilities": codec.Table{"authentication_failure_close": true}},
			Mechanism: "PLAIN", Response: "\x00guest\x00nope", Locale: "en_US"})
		cl := expect[*codec.ConnectionClose](r)
		if cl.ReplyCode != 403 || cl.ReplyText != "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN. For details see the broker logfile." {
			t.Errorf("got %d %q", cl.ReplyCode, cl.ReplyText)
		}
		return r
	}
	// As after any hard error, the server reads on until close-ok, so the
	// client can answer before the socket goes: php-amqplib, whose
	// close-ok met a closed socket, reported a broken pipe instead of the
	// 403.
	r := refused()
	before := ts.srv.framesRead()
	r.sendBytes(frameBytes(codec.FrameHeartbeat, 0, nil, codec.FrameEnd))
	waitFor(t, "the server to read after its connection.close", func() bool { return ts.srv.framesRead() > before })
	r.send(0, &codec.ConnectionCloseOk{})
	r.expectEOF()
	// A client that never answers is dropped after AMQPCloseTimeout.
	r = refused()
	waitFor(t, "the close timer", func() bool { return ts.clock.ActiveTimers() >= 1 })
	ts.clock.Advance(base.AMQPCloseTimeout)
	r.expectEOF()
}

func TestTuneOkOutsideTheOfferIsNotAllowed(t *testing.T) {
	ts := startServer(t)
	for _, tc := range []struct {
		tune codec.ConnectionTuneOk
		text string
	}{
		{codec.ConnectionTuneOk{FrameMax: 1 << 20}, "negotiated frame_max = 1048576 is larger than the maximum allowed value (131072)"},
		{codec.ConnectionTuneOk{FrameMax: 1024}, "frame_max=1024 < 4096 min size"},
		{codec.ConnectionTuneOk{FrameMax: 4096, ChannelMax: 3000}, "negotiated channel_max = 3000 is higher than the maximum allowed value (2047)"},
	} {
		r := dialRaw(t, ts)
		r.sendBytes(codec.ProtocolHeader[:])
		expect[*codec.ConnectionStart](r)
		r.send(0, &codec.ConnectionStartOk{Mechanism: "PLAIN", Response: "\x00guest\x00guest"})
		expect[*codec.ConnectionTune](r)
		r.send(0, &tc.tune)
		cl := expect[*codec.ConnectionClose](r)
		if cl.ReplyCode != 530 || cl.ReplyText != "NOT_ALLOWED - "+tc.text {
			t.Errorf("got %d %q, want 530 %q", cl.ReplyCode, cl.ReplyText, tc.text)
		}
	}
}

func TestChannelsUpToTheNegotiatedMax(t *testing.T) {
	ts := startServer(t)
	r := dialRaw(t, ts)
	r.handshake(codec.ConnectionTuneOk{ChannelMax: 3}, nil)
	for id := uint16(1); id <= 3; id++ {
		r.openChannel(id)
	}
	r.send(4, &codec.ChannelOpen{})
	cl := r.expectConnectionClose(codec.ReplyNotAllowed)
	if cl.ReplyText != "NOT_ALLOWED - channel 4 exceeds the negotiated channel_max (3)" {
		t.Errorf("got %q", cl.ReplyText)
	}
}

func TestChannelLimitEdge(t *testing.T) {
	// channel-max 0 in tune-ok means the server's maximum: every one of
	// AMQPChannelsPerConnectionMax channels opens, the next is refused.
	ts := startServer(t)
	r := dialRaw(t, ts)
	r.handshake(codec.ConnectionTuneOk{}, nil)
	for id := uint16(1); id <= base.AMQPChannelsPerConnectionMax; id++ {
		if err := r.fw.WriteMethod(id, &codec.ChannelOpen{}); err != nil {
			t.Fatal(err)
		}
	}
	r.flush()
	for id := uint16(1); id <= base.AMQPChannelsPerConnectionMax; id++ {
		if ch, _ := r.method(); ch != id {
			t.Fatalf("open-ok on channel %d, want %d", ch, id)
		}
	}
	r.send(base.AMQPChannelsPerConnectionMax+1, &codec.ChannelOpen{})
	r.expectConnectionClose(codec.ReplyNotAllowed)
}

func TestConsumersPerChannelLimitEdge(t *testing.T) {
	ts := startServer(t)
	ch := ts.channel(t)
	declareQueue(t, ch, "many")
	for i := 0; i < base.AMQPConsumersPerChannelMax; i++ {
		if _, err := ch.Consume("many", "", false, false, false, false, nil); err != nil {
			t.Fatalf("consumer %d: %v", i+1, err)
		}
	}
	_, err := ch.Consume("many", "", false, false, false, false, nil)
	if e := amqpErr(t, err); e.Code != 406 || !strings.Contains(e.Reason, "reached maximum (1024) of consumers per channel") {
		t.Errorf("consumer %d: got %d %q", base.AMQPConsumersPerChannelMax+1, e.Code, e.Reason)
	}
}

func TestConfirmsUseMultipleOnTheWire(t *testing.T) {
	ts := startFakeServer(t) // the test double can hold the outcomes

	declarer := ts.channel(t)
	declareQueue(t, declarer, "q")
	r := dialRaw(t, ts)
	r.handshake(codec.ConnectionTuneOk{}, nil)
	r.openChannel(1)
	r.send(1, &codec.ConfirmSelect{})
	expect[*codec.ConfirmSelectOk](r)
	ts.b.mu.Lock()
	ts.b.holdPublish = true
	ts.b.mu.Unlock()
	var msgs []byte
	for i := 0; i < 3; i++ {
		msgs = append(msgs, methodFrame(1, &codec.BasicPublish{RoutingKey: "q"})...)
		msgs = append(msgs, headerFrame(1, 0)...)
	}
	r.sendBytes(msgs)
	waitFor(t, "three messages enqueued", func() bool { n, _ := ts.depth("q"); return n == 3 })
	ts.b.releaseHeld()
	got := expect[*codec.BasicAck](r)
	if got.DeliveryTag != 3 || !got.Multiple {
		t.Errorf("got ack %d multiple=%v, want 3 multiple=true", got.DeliveryTag, got.Multiple)
	}
}

func TestHeartbeatsBothWays(t *testing.T) {
	ts := startServer(t)
	r := dialRaw(t, ts)
	r.handshake(codec.ConnectionTuneOk{Heartbeat: 2}, nil)
	r.openChannel(1)
	// The monitor ticks every second (half the interval) and sends a
	// heartbeat when nothing was written since the tick before: within
	// two ticks of the last reply exactly one heartbeat goes out.
	for i := 0; i < 2; i++ {
		waitFor(t, "the heartbeat monitor", func() bool { return ts.clock.ActiveTimers() >= 1 })
		ts.clock.Advance(time.Second)
	}
	f, err := r.fr.ReadFrame()
	if err != nil || f.Type != codec.FrameHeartbeat || f.Channel != 0 {
		t.Fatalf("want a heartbeat from an idle server, got %+v %v", f, err)
	}
	// A client that keeps sending stays connected however long it is.
	for i := 0; i < 10; i++ {
		r.sendBytes(frameBytes(codec.FrameHeartbeat, 0, nil, codec.FrameEnd))
		waitFor(t, "the client's heartbeat read", func() bool { return ts.srv.framesRead() >= uint64(i+2) })
		waitFor(t, "the monitor's timer", func() bool { return ts.clock.ActiveTimers() >= 1 })
		ts.clock.Advance(time.Second)
	}
	// Let the monitor finish the last tick before the next frame arrives.
	waitFor(t, "the monitor's timer", func() bool { return ts.clock.ActiveTimers() >= 1 })
	r.openChannel(2)
	// Silence: after two intervals (four silent ticks, after the one that
	// sees channel.open) the server hangs up.
	for i := 0; i < 5; i++ {
		waitFor(t, "the monitor's timer", func() bool { return ts.clock.ActiveTimers() >= 1 })
		ts.clock.Advance(time.Second)
	}
	r.expectEOF()
}

func TestHandshakeTimeout(t *testing.T) {
	ts := startServer(t)
	r := dialRaw(t, ts)
	r.sendBytes(codec.ProtocolHeader[:])
	expect[*codec.ConnectionStart](r)
	waitFor(t, "the handshake timer", func() bool { return ts.clock.ActiveTimers() >= 1 })
	ts.clock.Advance(base.AMQPHandshakeTimeout)
	r.expectEOF()
}

func TestConnectionBlockedAndUnblocked(t *testing.T) {
	ts := startServer(t)
	c := ts.dial(t)
	blocks := c.NotifyBlocked(make(chan amqp091.Blocking, 2))
	ts.diskFree.Store(0) // under the broker's disk free limit
	if b := <-blocks; !b.Active || b.Reason == "" {
		t.Errorf("got %+v, want blocked with a reason", b)
	}
	ts.diskFree.Store(math.MaxUint64 / 2)
	if b := <-blocks; b.Active {
		t.Errorf("got %+v, want unblocked", b)
	}
}

func TestServerCloseAndBrokerKillSend320(t *testing.T) {
	ts := startServer(t)
	props := amqp091.NewConnectionProperties()
	props.SetClientConnectionName("orders-service")
	c := ts.dialConfig(t, amqp091.Config{Properties: props})
	if conns := ts.broker.Connections(); len(conns) != 1 || conns[0].Name != "orders-service" || conns[0].Protocol != "amqp" {
		t.Errorf("the broker's registry: %+v, want one amqp connection named orders-service", conns)
	}
	closed := c.NotifyClose(make(chan *amqp091.Error, 1))
	ts.killAll("closed via management plugin")
	if e := closeReason(t, closed); e.Code != 320 || e.Reason != "CONNECTION_FORCED - closed via management plugin" {
		t.Errorf("kill: got %d %q", e.Code, e.Reason)
	}
	c2 := ts.dial(t)
	closed2 := c2.NotifyClose(make(chan *amqp091.Error, 1))
	_ = ts.srv.Close()
	if e := closeReason(t, closed2); e.Code != 320 || !strings.Contains(e.Reason, "shutdown") {
		t.Errorf("server close: got %d %q", e.Code, e.Reason)
	}
	waitFor(t, "sessions released", func() bool { return ts.sessions() == 0 })
}

func TestClosingTheConnectionReturnsUnackedMessages(t *testing.T) {
	ts := startServer(t)
	c := ts.dial(t)
	ch, _ := c.Channel()
	declareQueue(t, ch, "back")
	msgs, _ := ch.Consume("back", "", false, false, false, false, nil)
	publish(t, ch, "", "back", "m")
	recv(t, msgs)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the message requeued", func() bool { n, _ := ts.depth("back"); return n == 1 })
}

func TestPrefetchLimitEdge(t *testing.T) {
	// No basic.qos ("no limit") and the largest prefetch a client can ask
	// for both reach the broker as AMQPPrefetchCountMax; a global limit
	// lowers it.
	ts := startFakeServer(t)
	ch := ts.channel(t)
	declareQueue(t, ch, "p")
	if _, err := ch.Consume("p", "unlimited", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.Qos(base.AMQPPrefetchCountMax, 0, false); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.Consume("p", "max", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.Qos(10, 0, true); err != nil {
		t.Fatal(err)
	}
	ts.b.mu.Lock()
	defer ts.b.mu.Unlock()
	if len(ts.b.subs) != 2 {
		t.Fatalf("%d subscriptions, want 2", len(ts.b.subs))
	}
	for _, s := range ts.b.subs {
		if s.opts.PrefetchCount != base.AMQPPrefetchCountMax {
			t.Errorf("consumer %s subscribed with prefetch %d, want %d", s.opts.Tag, s.opts.PrefetchCount, base.AMQPPrefetchCountMax)
		}
		if s.prefetch != 10 {
			t.Errorf("consumer %s after a global qos of 10: prefetch %d", s.opts.Tag, s.prefetch)
		}
	}
}

func TestPublishesInFlightAndBatchLimitEdges(t *testing.T) {
	// While the broker holds every outcome, the server admits at most
	// AMQPPublishesInFlightMax publishes of a connection and then stops
	// reading it; released, the rest follow. No broker call carries more
	// than AMQPPublishBatchMessagesMax messages.
	ts := startFakeServer(t)
	declarer := ts.channel(t)
	declareQueue(t, declarer, "inflight")
	ts.b.mu.Lock()
	ts.b.holdPublish = true
	ts.b.mu.Unlock()
	ch := ts.channel(t)
	total := base.AMQPPublishesInFlightMax + 100
	done := make(chan error, 1)
	go func() {
		for i := 0; i < total; i++ {
			if err := ch.PublishWithContext(context.Background(), "", "inflight", false, false, amqp091.Publishing{}); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	waitFor(t, "the in-flight window full", func() bool {
		n, _ := ts.depth("inflight")
		return n > base.AMQPPublishesInFlightMax-base.AMQPPublishBatchMessagesMax
	})
	// The reader is paused: the window does not grow however long the
	// client keeps writing. A round trip on another connection shows the
	// server is otherwise alive.
	declareQueue(t, declarer, "alive")
	if n, _ := ts.depth("inflight"); n > base.AMQPPublishesInFlightMax {
		t.Errorf("%d publishes admitted while the broker held them all, limit %d", n, base.AMQPPublishesInFlightMax)
	}
	ts.b.releaseHeld()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	waitFor(t, "every publish", func() bool {
		ts.b.releaseHeld() // later batches were held too
		n, _ := ts.depth("inflight")
		return n == total
	})
	ts.b.mu.Lock()
	defer ts.b.mu.Unlock()
	if ts.b.maxBatch > base.AMQPPublishBatchMessagesMax || ts.b.maxBatch < 2 {
		t.Errorf("largest broker call carried %d messages, want 2..%d", ts.b.maxBatch, base.AMQPPublishBatchMessagesMax)
	}
}

func TestCloseTimeoutDropsAPeerThatNeverAnswers(t *testing.T) {
	ts := startServer(t)
	r := dialRaw(t, ts)
	r.handshake(codec.ConnectionTuneOk{}, nil)
	r.send(9, &codec.BasicQos{})
	if cl := expect[*codec.ConnectionClose](r); cl.ReplyCode != uint16(codec.ReplyChannelError) {
		t.Fatalf("got %d %q", cl.ReplyCode, cl.ReplyText)
	}
	// No close-ok: the server keeps the socket for AMQPCloseTimeout.
	waitFor(t, "the close timer", func() bool { return ts.clock.ActiveTimers() >= 1 })
	ts.clock.Advance(base.AMQPCloseTimeout)
	r.expectEOF()
}

func TestTransactionMessageLimitEdge(t *testing.T) {
	// AMQPTxMessagesMax publishes fit in one transaction; one more closes
	// the channel with 406, before anything reaches the broker.
	ts := startServer(t)
	r := dialRaw(t, ts)
	r.handshake(codec.ConnectionTuneOk{}, nil)
	r.openChannel(1)
	r.send(1, &codec.TxSelect{})
	expect[*codec.TxSelectOk](r)
	one := append(methodFrame(1, &codec.BasicPublish{RoutingKey: "tx-limit"}), headerFrame(1, 0)...)
	batch := bytes.Repeat(one, base.AMQPTxMessagesMax)
	r.sendBytes(batch)
	r.send(1, &codec.BasicQos{PrefetchCount: 1}) // a round trip: all of them were taken
	expect[*codec.BasicQosOk](r)
	r.sendBytes(one)
	cl := expect[*codec.ChannelClose](r)
	if cl.ReplyCode != uint16(codec.ReplyPreconditionFailed) || !strings.Contains(cl.ReplyText, "transaction over its limit") {
		t.Errorf("publish %d in a transaction: got %d %q", base.AMQPTxMessagesMax+1, cl.ReplyCode, cl.ReplyText)
	}
}

// confirmingRawClient opens a raw connection with channel 1 in confirm
// mode, after declaring queue q on it.
func confirmingRawClient(t *testing.T, ts *testServer, q string) *rawClient {
	t.Helper()
	r := dialRaw(t, ts)
	r.handshake(codec.ConnectionTuneOk{}, nil)
	r.openChannel(1)
	r.send(1, &codec.QueueDeclare{Queue: q})
	expect[*codec.QueueDeclareOk](r)
	r.send(1, &codec.ConfirmSelect{})
	expect[*codec.ConfirmSelectOk](r)
	return r
}

// closeInBackground starts Server.Close and waits until it waits on its
// settle timer; the returned channel is closed when Close returns.
func closeInBackground(t *testing.T, ts *testServer) <-chan struct{} {
	t.Helper()
	timers := ts.clock.ActiveTimers()
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		_ = ts.srv.Close()
	}()
	waitFor(t, "Close waiting for the publishes in flight", func() bool { return ts.clock.ActiveTimers() > timers })
	return closed
}

// TestCloseConfirmsThePublishesInFlightBeforeItsConnectionClose: at
// shutdown the server lets the publishes it handed to the broker get
// their outcome and sends their confirms before connection.close 320; a
// publish that arrives meanwhile is not admitted.
func TestCloseConfirmsThePublishesInFlightBeforeItsConnectionClose(t *testing.T) {
	ts := startFakeServer(t) // the test double can hold the outcomes
	r := confirmingRawClient(t, ts, "q")
	ts.b.mu.Lock()
	ts.b.holdPublish = true
	ts.b.mu.Unlock()
	one := append(methodFrame(1, &codec.BasicPublish{RoutingKey: "q"}), headerFrame(1, 0)...)
	r.sendBytes(bytes.Repeat(one, 3))
	waitFor(t, "three messages handed to the broker", func() bool { n, _ := ts.depth("q"); return n == 3 })

	closed := closeInBackground(t, ts)
	read := ts.srv.framesRead()
	r.sendBytes(one)
	waitFor(t, "the late publish read", func() bool { return ts.srv.framesRead() >= read+2 })
	select {
	case <-closed:
		t.Fatal("Close returned while publishes were in flight")
	default:
	}
	ts.b.releaseHeld()
	if ack := expect[*codec.BasicAck](r); ack.DeliveryTag != 3 || !ack.Multiple {
		t.Errorf("confirm at shutdown: got ack %d multiple=%v, want 3 multiple=true", ack.DeliveryTag, ack.Multiple)
	}
	cl := r.expectConnectionClose(codec.ReplyConnectionForced)
	if !strings.Contains(cl.ReplyText, "shutdown") {
		t.Errorf("close text %q, want the shutdown named", cl.ReplyText)
	}
	<-closed
	if n, _ := ts.depth("q"); n != 3 {
		t.Errorf("queue depth %d, want 3: the publish read during the shutdown must not be admitted", n)
	}
}

// TestCloseWaitsForPublishesInFlightAtMostItsSettleTimeout: an outcome
// that never comes holds the shutdown for AMQPShutdownSettleTimeout, no
// longer; the client gets 320 without a confirm.
func TestCloseWaitsForPublishesInFlightAtMostItsSettleTimeout(t *testing.T) {
	ts := startFakeServer(t)
	r := confirmingRawClient(t, ts, "q")
	ts.b.mu.Lock()
	ts.b.holdPublish = true
	ts.b.mu.Unlock()
	t.Cleanup(ts.b.releaseHeld)
	r.sendBytes(append(methodFrame(1, &codec.BasicPublish{RoutingKey: "q"}), headerFrame(1, 0)...))
	waitFor(t, "the message handed to the broker", func() bool { n, _ := ts.depth("q"); return n == 1 })
	closed := closeInBackground(t, ts)
	ts.clock.Advance(base.AMQPShutdownSettleTimeout - time.Nanosecond)
	select {
	case <-closed:
		t.Fatal("Close returned before its settle timeout")
	default:
	}
	ts.clock.Advance(time.Nanosecond)
	<-closed
	if ch, m := r.method(); ch != 0 || m.Key() != codec.MethodConnectionClose {
		t.Fatalf("got %s on channel %d, want connection.close and no confirm", m.Key(), ch)
	}
}

package amqp

import (
	"bytes"
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/proto/amqp/codec"
	amqp091 "github.com/rabbitmq/amqp091-go"
)

func TestPubBufClassesStopAtTheBufferLimit(t *testing.T) {
	for _, tc := range []struct{ n, wantCap int }{
		{0, pubBufBytesMin},
		{pubBufBytesMin + 1, 2 * pubBufBytesMin},
		// Every batch fits the largest class: flushed at
		// AMQPPublishBatchBytesMax, plus one inline message.
		{base.AMQPPublishBatchBytesMax - 1 + base.AMQPPublishInlineBytesMax, base.AMQPPublishBufferBytesMax},
		{base.AMQPPublishBufferBytesMax + 1, base.AMQPPublishBufferBytesMax + 1}, // not pooled
	} {
		if p := pubBufs.Get(tc.n); cap(*p) != tc.wantCap || len(*p) != 0 {
			t.Errorf("pubBufs.Get(%d): got len %d cap %d, want len 0 cap %d", tc.n, len(*p), cap(*p), tc.wantCap)
		}
	}
}

func TestPubBufGrowKeepsItsBytes(t *testing.T) {
	p := pubBufs.Get(1)
	var want []byte
	for i := 0; len(want) < 3*pubBufBytesMin; i++ {
		chunk := bytes.Repeat([]byte{byte(i)}, 1000)
		growPubBuf(p, len(chunk))
		*p = append(*p, chunk...)
		want = append(want, chunk...)
	}
	if !bytes.Equal(*p, want) {
		t.Fatalf("after growing to %d bytes the buffer differs from what was appended", len(want))
	}
	if cap(*p) != 4*pubBufBytesMin {
		t.Errorf("got cap %d, want the class of %d bytes (%d)", cap(*p), len(want), 4*pubBufBytesMin)
	}
}

// newBatchChannel is a channel of a connection with no socket, enough for
// a publishBatch that is never flushed.
func newBatchChannel() *channel {
	return newChannel(&conn{frameMax: 1 << 20, cfg: &Config{MessageBytesMax: base.AMQPMessageBytesMax}}, 1)
}

func TestPublishBatchCopiesInlineMessagesAndKeepsLargeOnesApart(t *testing.T) {
	ch := newBatchChannel()
	var b publishBatch
	scratchRaw := []byte{0x80, 0x00, 3, 'a', '/', 'b'}
	inline := make([]byte, base.AMQPPublishInlineBytesMax-len(scratchRaw)) // raw + body at the limit
	for i := range inline {
		inline[i] = byte(i)
	}
	wantInline := bytes.Clone(inline)
	// A large message comes with buffers of its own (completePublish
	// copies it), which the batch keeps as they are.
	largeRaw := bytes.Clone(scratchRaw)
	large := make([]byte, base.AMQPPublishInlineBytesMax-len(largeRaw)+1)
	b.add(ch, Message{RoutingKey: "q", RawProperties: scratchRaw, Body: inline}, false, 1)
	b.add(ch, Message{RoutingKey: "q", RawProperties: largeRaw, Body: large}, false, 2)
	b.add(ch, Message{RoutingKey: "q", Body: []byte("no raw list")}, false, 3)
	b.add(ch, Message{RoutingKey: "q", RawProperties: scratchRaw, Body: []byte{}}, false, 4)
	// The scratch of inline messages is reused by the next frame.
	clear(scratchRaw)
	clear(inline)
	took, tookSeqs, buf := b.take()
	msgs, seqs := *took, *tookSeqs
	if len(msgs) != 4 || len(seqs) != 4 || seqs[0] != 1 || seqs[3] != 4 {
		t.Fatalf("took %d messages with seqs %v, want 4 with 1..4", len(msgs), seqs)
	}
	wantRaw := []byte{0x80, 0x00, 3, 'a', '/', 'b'}
	if !bytes.Equal(msgs[0].RawProperties, wantRaw) || !bytes.Equal(msgs[0].Body, wantInline) {
		t.Errorf("inline message at the limit: got raw %x and a body of %d bytes, want raw %x and the published body",
			msgs[0].RawProperties, len(msgs[0].Body), wantRaw)
	}
	if !inBuf(buf, msgs[0].Body) || !inBuf(buf, msgs[0].RawProperties) {
		t.Errorf("a message of raw+body = AMQPPublishInlineBytesMax is not in the batch buffer")
	}
	if &msgs[1].Body[0] != &large[0] || &msgs[1].RawProperties[0] != &largeRaw[0] {
		t.Errorf("a message one byte over AMQPPublishInlineBytesMax was not kept in its own buffers")
	}
	if msgs[2].RawProperties != nil || string(msgs[2].Body) != "no raw list" {
		t.Errorf("message without raw properties: got raw %x body %q, want nil and %q", msgs[2].RawProperties, msgs[2].Body, "no raw list")
	}
	if msgs[3].Body == nil || len(msgs[3].Body) != 0 || !bytes.Equal(msgs[3].RawProperties, wantRaw) {
		t.Errorf("empty body: got body %v raw %x, want empty and not nil, raw %x", msgs[3].Body, msgs[3].RawProperties, wantRaw)
	}
	if len(b.msgs) != 0 || b.buf != nil || b.bytes != 0 {
		t.Errorf("after take: %d messages, buffer %v, %d bytes left in the batch, want none", len(b.msgs), b.buf != nil, b.bytes)
	}
}

// inBuf reports whether s starts inside p's bytes.
func inBuf(p *[]byte, s []byte) bool {
	if p == nil || len(s) == 0 {
		return false
	}
	whole := (*p)[:cap(*p)]
	for i := range whole {
		if &whole[i] == &s[0] {
			return true
		}
	}
	return false
}

// contentHeaderWithRaw encodes a content header of class basic whose raw
// property list is exactly n bytes (n >= 13): a headers table holding one
// long string.
func contentHeaderWithRaw(t *testing.T, n int, bodySize uint64) []byte {
	t.Helper()
	var p codec.BasicProperties
	p.SetHeaders(codec.Table{"k": strings.Repeat("x", n-13)})
	var out bytes.Buffer
	fw := codec.NewFrameWriter(&out)
	if err := fw.SetFrameMax(1 << 20); err != nil {
		t.Fatal(err)
	}
	if err := fw.WriteContentHeader(1, bodySize, &p); err != nil {
		t.Fatal(err)
	}
	payload := out.Bytes()[7 : out.Len()-1]
	if raw := len(payload) - 12; raw != n {
		t.Fatalf("encoded a raw list of %d bytes, want %d", raw, n)
	}
	return payload
}

func TestContentHeaderKeepsOnlySmallRawListsInTheChannelScratch(t *testing.T) {
	for _, tc := range []struct {
		n           int
		wantScratch bool
	}{
		{base.AMQPPropertiesScratchBytesMax, true},
		{base.AMQPPropertiesScratchBytesMax + 1, false},
	} {
		ch := newBatchChannel()
		ch.asm = assembly{active: true, routingKey: "q"}
		payload := contentHeaderWithRaw(t, tc.n, 10)
		want := bytes.Clone(payload[12:])
		if err := ch.contentHeader(payload); err != nil {
			t.Fatalf("raw list of %d bytes: %v", tc.n, err)
		}
		clear(payload) // the frame reader's buffer is reused by the next frame
		if !bytes.Equal(ch.asm.raw, want) {
			t.Errorf("raw list of %d bytes: kept bytes differ from the header's", tc.n)
		}
		inScratch := len(ch.rawScratch) > 0 && &ch.rawScratch[0] == &ch.asm.raw[0]
		if inScratch != tc.wantScratch {
			t.Errorf("raw list of %d bytes: got in the channel's scratch %v, want %v", tc.n, inScratch, tc.wantScratch)
		}
	}
}

// TestPipelinedPublishesOfEverySizeArriveIntact sends messages of every
// path through the recycled buffers (one frame, several frames, inline or
// not, empty, with and without properties) on two channels of one
// connection, confirms pipelined, and reads every one back. Under
// ferry_invariants a buffer recycled while the broker still read it would
// be overwritten, and the bodies would differ.
func TestPipelinedPublishesOfEverySizeArriveIntact(t *testing.T) {
	ts := startServer(t)
	conn := ts.dialConfig(t, amqp091.Config{FrameSize: 16 << 10})
	sizes := []int{0, 1, 100, 5000, 16<<10 - 8, 16 << 10, 40 << 10, base.AMQPPublishInlineBytesMax, base.AMQPPublishInlineBytesMax + 1, 200 << 10}
	const rounds = 6
	chans := make([]*amqp091.Channel, 2)
	confirms := make([]chan amqp091.Confirmation, 2)
	for i := range chans {
		ch, err := conn.Channel()
		if err != nil {
			t.Fatal(err)
		}
		if err := ch.Confirm(false); err != nil {
			t.Fatal(err)
		}
		confirms[i] = ch.NotifyPublish(make(chan amqp091.Confirmation, rounds*len(sizes)))
		chans[i] = ch
		declareQueue(t, ch, fmt.Sprintf("sizes-%d", i))
	}
	body := func(ch, round, size int) []byte {
		b := make([]byte, size)
		for j := range b {
			b[j] = byte(ch*7 + round*31 + size + j)
		}
		return b
	}
	for round := range rounds {
		for _, size := range sizes {
			for i, ch := range chans {
				p := amqp091.Publishing{Body: body(i, round, size), MessageId: fmt.Sprintf("%d/%d/%d", i, round, size)}
				if round%2 == 1 {
					p.Headers = amqp091.Table{"round": int32(round), "pad": strings.Repeat("h", size%900)}
				}
				if err := ch.PublishWithContext(context.Background(), "", fmt.Sprintf("sizes-%d", i), false, false, p); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	for i := range chans {
		for range rounds * len(sizes) {
			if c := <-confirms[i]; !c.Ack {
				t.Fatalf("channel %d: publish %d was nacked", i, c.DeliveryTag)
			}
		}
	}
	for i, ch := range chans {
		msgs, err := ch.Consume(fmt.Sprintf("sizes-%d", i), "", true, false, false, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		for round := range rounds {
			for _, size := range sizes {
				d := recv(t, msgs)
				want := fmt.Sprintf("%d/%d/%d", i, round, size)
				if d.MessageId != want || !bytes.Equal(d.Body, body(i, round, size)) {
					t.Fatalf("channel %d: got message %q with a body of %d bytes (equal %v), want %q",
						i, d.MessageId, len(d.Body), bytes.Equal(d.Body, body(i, round, size)), want)
				}
				if round%2 == 1 && d.Headers["pad"] != strings.Repeat("h", size%900) {
					t.Fatalf("channel %d: message %q lost its headers: %v", i, want, d.Headers)
				}
			}
		}
	}
}

// TestInterleavedContentOfTwoChannelsKeepsEachMessage sends the frames of
// two messages interleaved across channels (header on 1, a whole message
// on 2, then 1's body), which a client may do: each channel's raw
// properties wait in its own scratch.
func TestInterleavedContentOfTwoChannelsKeepsEachMessage(t *testing.T) {
	ts := startServer(t)
	setup := ts.channel(t)
	declareQueue(t, setup, "interleaved")
	r := dialRaw(t, ts)
	r.handshake(codec.ConnectionTuneOk{ChannelMax: 16}, nil)
	r.openChannel(1)
	r.openChannel(2)
	header := func(ch uint16, id string, body string) {
		var p codec.BasicProperties
		p.SetMessageID(id)
		if err := r.fw.WriteContentHeader(ch, uint64(len(body)), &p); err != nil {
			t.Fatal(err)
		}
	}
	publishOn := func(ch uint16) {
		if err := r.fw.WriteMethod(ch, &codec.BasicPublish{RoutingKey: "interleaved"}); err != nil {
			t.Fatal(err)
		}
	}
	publishOn(1)
	header(1, "first", "body one")
	publishOn(2)
	header(2, "second", "body two")
	if err := r.fw.WriteBody(2, []byte("body two")); err != nil {
		t.Fatal(err)
	}
	if err := r.fw.WriteBody(1, []byte("body one")); err != nil {
		t.Fatal(err)
	}
	r.flush()
	msgs, err := setup.Consume("interleaved", "", true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for range 2 {
		d := recv(t, msgs)
		got[d.MessageId] = string(d.Body)
	}
	if got["first"] != "body one" || got["second"] != "body two" {
		t.Errorf("got %v, want first: body one, second: body two", got)
	}
}

func TestCallSlicesAreClassedUpToTheBatchLimit(t *testing.T) {
	p := newCallPool[Message]()
	for _, tc := range []struct{ n, wantCap int }{
		{1, 1}, {2, 2}, {3, 4}, {base.AMQPPublishBatchMessagesMax, base.AMQPPublishBatchMessagesMax},
		{base.AMQPPublishBatchMessagesMax + 1, base.AMQPPublishBatchMessagesMax + 1}, // a transaction's run: not pooled
	} {
		if cs := p.Make(tc.n); len(*cs) != tc.n || cap(*cs) != tc.wantCap {
			t.Errorf("Make(%d): got len %d cap %d, want cap %d", tc.n, len(*cs), cap(*cs), tc.wantCap)
		}
	}
	cs := p.Make(2)
	(*cs)[0] = Message{RoutingKey: "kept", Body: []byte("x")}
	p.Put(cs)
	if m := (*cs)[:1][0]; m.RoutingKey != "" || m.Body != nil {
		t.Errorf("Put kept a message's fields alive: %+v", m)
	}
}

func TestNextBatchBufferStartsAtThePreviousBatchSize(t *testing.T) {
	ch := newBatchChannel()
	var b publishBatch
	for range 40 {
		b.add(ch, Message{RoutingKey: "q", Body: make([]byte, 1000)}, false, 0)
	}
	_, _, first := b.take()
	b.add(ch, Message{RoutingKey: "q", Body: []byte("small")}, false, 0)
	if cap(*b.buf) < len(*first) {
		t.Errorf("the batch after one of %d bytes started with a buffer of %d", len(*first), cap(*b.buf))
	}
	_, _, second := b.take()
	b.add(ch, Message{RoutingKey: "q", Body: []byte("small")}, false, 0)
	if cap(*b.buf) != pubBufBytesMin {
		t.Errorf("the batch after one of %d bytes started with a buffer of %d, want the smallest class %d",
			len(*second), cap(*b.buf), pubBufBytesMin)
	}
}

// callCounter is a Session recording how many messages each PublishAsync
// call carried; it never settles them.
type callCounter struct {
	Session // the calls the tests do not make
	calls   []int
}

func (s *callCounter) PublishAsync(_ string, msgs []Message, _ PublishOptions, _ func([]PublishResult, error)) {
	s.calls = append(s.calls, len(msgs))
}

// TestPublishBatchFlushesAtTheBatchBytesLimit pins
// AMQPPublishBatchBytesMax: a batch is handed to the broker once the raw
// properties and bodies of its messages, inline or kept apart, reach it,
// and not a byte before.
func TestPublishBatchFlushesAtTheBatchBytesLimit(t *testing.T) {
	ch := newBatchChannel()
	calls := &callCounter{}
	ch.c.session = calls
	b := &ch.c.pub
	const inline = base.AMQPPublishInlineBytesMax
	for range base.AMQPPublishBatchBytesMax/inline - 2 {
		b.add(ch, Message{RoutingKey: "q", Body: make([]byte, inline)}, false, 0)
	}
	// Kept apart (one byte over inline): its raw properties count too.
	b.add(ch, Message{RoutingKey: "q", RawProperties: make([]byte, 100), Body: make([]byte, inline-99)}, false, 0)
	b.add(ch, Message{RoutingKey: "q", Body: make([]byte, inline-2)}, false, 0)
	if len(calls.calls) != 0 || b.bytes != base.AMQPPublishBatchBytesMax-1 {
		t.Fatalf("at one byte under the limit: got %d broker calls and %d bytes batched, want none and %d",
			len(calls.calls), b.bytes, base.AMQPPublishBatchBytesMax-1)
	}
	b.add(ch, Message{RoutingKey: "q", Body: []byte{1}}, false, 0)
	if want := []int{base.AMQPPublishBatchBytesMax/inline + 1}; !reflect.DeepEqual(calls.calls, want) || len(b.msgs) != 0 {
		t.Errorf("at the limit: got broker calls of %v messages, %d left batched; want %v, none", calls.calls, len(b.msgs), want)
	}
}

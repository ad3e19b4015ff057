package amqp

import (
	"bytes"
	"strings"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/ferry-mq/ferry/internal/proto/amqp/codec"
)

// TestStatsCountBytesBothWaysAndErrorsByCode: the counters behind the
// node's ferry_network_*_bytes_total and ferry_errors_total families.
func TestStatsCountBytesBothWaysAndErrorsByCode(t *testing.T) {
	ts := startFakeServer(t)
	if st := ts.srv.Stats(); st.BytesIn != 0 || st.BytesOut != 0 || len(st.Errors) != 0 {
		t.Fatalf("a new server's stats = %+v, want zeros", st)
	}
	ch := ts.channel(t)
	q := declareQueue(t, ch, "counted")
	before := ts.srv.Stats()
	body := bytes.Repeat([]byte("x"), 100_000)
	publish(t, ch, "", q.Name, string(body))
	waitFor(t, "the message enqueued", func() bool { n, _ := ts.depth(q.Name); return n == 1 })
	if got := ts.srv.Stats().BytesIn - before.BytesIn; got < uint64(len(body)) {
		t.Errorf("bytes in grew by %d after a %d-byte publish", got, len(body))
	}
	msgs, _ := ch.Consume(q.Name, "", true, false, false, false, nil)
	recv(t, msgs)
	if got := ts.srv.Stats().BytesOut - before.BytesOut; got < uint64(len(body)) {
		t.Errorf("bytes out grew by %d after a %d-byte delivery", got, len(body))
	}

	_, err := ts.channel(t).QueueDeclarePassive("ghost", false, false, false, false, nil)
	amqpErr(t, err)
	bad := strings.Replace(ts.url, "guest:guest", "guest:wrong", 1)
	if _, err := amqp091.DialConfig(bad, amqp091.Config{Heartbeat: time.Hour}); err == nil {
		t.Fatal("a wrong password logged in")
	}
	r := dialRaw(t, ts)
	r.handshake(codec.ConnectionTuneOk{}, nil)
	r.sendBytes(frameBytes(codec.FrameMethod, 0, methodPayload(&codec.BasicQos{}), 0xCD))
	r.expectConnectionClose(codec.ReplyFrameError)

	errs := ts.srv.Stats().Errors
	for code, want := range map[string]uint64{"not_found": 1, "unauthenticated": 1, "invalid_argument": 1} {
		if errs[code] != want {
			t.Errorf("errors[%s] = %d, want %d (all: %v)", code, errs[code], want, errs)
		}
	}
}

package rabbitdiff

import (
	"fmt"
	"sort"
	"strings"

	amqp "github.com/rabbitmq/amqp091-go"
)

// streamDeclare declares a stream and publishes n confirmed messages
// "m0".."m(n-1)" on ch.
func streamDeclare(r *run, ch *amqp.Channel, name string, n int, args amqp.Table) {
	if args == nil {
		args = amqp.Table{}
	}
	args["x-queue-type"] = "stream"
	_, err := ch.QueueDeclare(name, true, false, false, false, args)
	r.Say("declare stream: %s", E(err))
	if err != nil {
		return
	}
	if err := ch.Confirm(false); err != nil {
		r.Say("confirm: %s", E(err))
		return
	}
	for i := 0; i < n; i++ {
		dc, err := ch.PublishWithDeferredConfirm("", name, false, false, amqp.Publishing{Body: []byte(fmt.Sprintf("m%d", i))})
		if err != nil {
			r.Say("publish: %s", E(err))
			return
		}
		if !dc.Wait() {
			r.Say("nacked %d", i)
		}
	}
}

func streamHdr(d *amqp.Delivery) string {
	keys := make([]string, 0, len(d.Headers))
	for k := range d.Headers {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var s strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&s, "%s:%T ", k, d.Headers[k])
	}
	return s.String()
}

// streamRead consumes the stream from the x-stream-offset offset (none
// when nil) and says what arrives up to and including the message last.
// A stream delivers in order, so what came before last is everything the
// consumer read of what was there; last is a message of the stream, or,
// when sentinel is set, a message published once the consumer is
// attached (for offsets that read only what comes next).
func streamRead(r *run, name string, offset any, last string, sentinel bool) {
	ch := r.Ch()
	if err := ch.Qos(100, 0, false); err != nil {
		r.Say("qos: %s", E(err))
		return
	}
	args := amqp.Table{}
	if offset != nil {
		args["x-stream-offset"] = offset
	}
	ds, err := ch.Consume(name, "", false, false, false, false, args)
	r.Say("consume offset=%v: %s", offset, E(err))
	if err != nil {
		return
	}
	if sentinel {
		r.pub(name, last)
	}
	got := []string{}
	for d := recv(ds); d != nil; d = recv(ds) {
		if len(got) == 0 {
			r.Say("  headers: %s redelivered=%v", streamHdr(d), d.Redelivered)
		}
		got = append(got, string(d.Body))
		_ = d.Ack(false)
		if string(d.Body) == last {
			break
		}
	}
	r.Say("  got %v", got)
}

func streamScenarios() []scenario {
	return []scenario{
		{"stream.offsets", func(r *run) {
			ch := r.Ch()
			q := r.N("s")
			streamDeclare(r, ch, q, 5, nil)
			for _, o := range []any{"first", "last", int64(2), int32(3)} {
				streamRead(r, q, o, "m4", false)
			}
			// These read only what comes after they attach.
			for _, o := range []any{nil, "next", int64(99)} {
				streamRead(r, q, o, fmt.Sprintf("after-%v", o), true)
			}
		}},

		{"stream.bad-offset", func(r *run) {
			ch := r.Ch()
			q := r.N("s")
			streamDeclare(r, ch, q, 1, nil)
			for _, o := range []any{"bogus", true, int64(-1)} {
				streamRead(r, q, o, "m0", false)
			}
		}},

		{"stream.no-qos", func(r *run) {
			ch := r.Ch()
			q := r.N("s")
			streamDeclare(r, ch, q, 1, nil)
			ch2 := r.Ch()
			_, err := ch2.Consume(q, "", false, false, false, false, nil)
			r.Say("consume without qos: %s", E(err))
			ch3 := r.Ch()
			_ = ch3.Qos(10, 0, false)
			_, err = ch3.Consume(q, "", true, false, false, false, nil)
			r.Say("consume no-ack: %s", E(err))
		}},

		{"stream.get-purge", func(r *run) {
			ch := r.Ch()
			q := r.N("s")
			streamDeclare(r, ch, q, 1, nil)
			_, _, err := r.Ch().Get(q, false)
			r.Say("get: %s", E(err))
			_, err = r.Ch().QueuePurge(q, false)
			r.Say("purge: %s", E(err))
		}},

		// nack and reject of a stream delivery close the connection (540).
		{"stream.nack-reject", func(r *run) {
			q, c2, cl, ds := streamReader(r)
			ms := recvN(ds, 3)
			r.Say("got %d", len(ms))
			if len(ms) < 3 {
				return
			}
			r.Say("nack requeue %s: %s", ms[0].Body, E(ms[0].Nack(false, true)))
			if state := r.State(c2, cl); state != "open" {
				r.Say("channel: %s", state)
				return
			}
			r.Say("reject %s: %s", ms[1].Body, E(ms[1].Reject(false)))
			if state := r.State(c2, cl); state != "open" {
				r.Say("channel: %s", state)
				return
			}
			streamNext(r, q, ds)
		}},

		// basic.recover of a stream consumer's deliveries.
		{"stream.recover", func(r *run) {
			q, c2, cl, ds := streamReader(r)
			r.Say("got %d", len(recvN(ds, 3)))
			r.Say("recover: %s", E(c2.Recover(true)))
			r.Say("channel: %s", r.State(c2, cl))
			streamNext(r, q, ds)
		}},

		{"stream.declare-args", func(r *run) {
			ch := r.Ch()
			for i, a := range []amqp.Table{
				{"x-max-age": "1D"},
				{"x-max-age": "bogus"},
				{"x-max-length-bytes": int64(1 << 30)},
				{"x-stream-max-segment-size-bytes": int64(1 << 20)},
				{"x-message-ttl": int32(1000)},
				{"x-dead-letter-exchange": "x"},
				{"x-max-length": int32(10)},
				{"x-overflow": "reject-publish"},
				{"x-single-active-consumer": true},
			} {
				a["x-queue-type"] = "stream"
				_, err := ch.QueueDeclare(r.N(fmt.Sprint("s", i)), true, false, false, false, a)
				r.Say("declare %v: %s", a, E(err))
				if err != nil {
					ch = r.Ch()
				}
			}
			_, err := ch.QueueDeclare(r.N("nd"), false, false, false, false, amqp.Table{"x-queue-type": "stream"})
			r.Say("non-durable stream: %s", E(err))
			ch = r.Ch()
			_, err = ch.QueueDeclare(r.N("ex"), true, true, false, false, amqp.Table{"x-queue-type": "stream"})
			r.Say("exclusive stream: %s", E(err))
			ch = r.Ch()
			_, err = ch.QueueDeclare(r.N("ad"), true, false, true, false, amqp.Table{"x-queue-type": "stream"})
			r.Say("auto-delete stream: %s", E(err))
		}},

		{"stream.counts", func(r *run) {
			ch := r.Ch()
			q := r.N("s")
			streamDeclare(r, ch, q, 3, nil)
			// RabbitMQ counts a stream's messages from counters it updates
			// every few seconds: what a queue.declare-ok says right after
			// the publishes is a race, what it comes to is not.
			r.Say("passive: %s", r.waitCountWithin(countersPatience, q, "msgs=3 consumers=0"))
			ch2 := r.Ch()
			n, err := ch2.QueueDelete(q, false, false, false)
			r.Say("delete: %s n=%d", E(err), n)
		}},
	}
}

// streamReader declares a stream of three messages and starts a consumer
// of it from the first, on a channel of its own with a prefetch of 10.
func streamReader(r *run) (q string, ch *amqp.Channel, closed chan *amqp.Error, ds <-chan amqp.Delivery) {
	q = r.N("s")
	streamDeclare(r, r.Ch(), q, 3, nil)
	ch, closed = r.ChCl()
	_ = ch.Qos(10, 0, false)
	ds, err := ch.Consume(q, "", false, false, false, false, amqp.Table{"x-stream-offset": "first"})
	r.Say("consume: %s", E(err))
	return q, ch, closed, ds
}

// streamNext publishes "end" to stream q and says what ds delivers next.
func streamNext(r *run, q string, ds <-chan amqp.Delivery) {
	r.pub(q, "end")
	if d := recv(ds); d != nil {
		r.Say("then %s redelivered=%v", d.Body, d.Redelivered)
	} else {
		r.Say("then nothing")
	}
}

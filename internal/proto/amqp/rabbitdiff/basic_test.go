package rabbitdiff

import (
	"bytes"
	"fmt"
	"sort"
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// basicQ declares a quorum queue r.N(name).
func basicQ(r *run, ch *amqp.Channel, name string, extra amqp.Table) string {
	args := amqp.Table{"x-queue-type": "quorum"}
	for k, v := range extra {
		args[k] = v
	}
	n := r.N(name)
	if _, err := ch.QueueDeclare(n, true, false, false, false, args); err != nil {
		r.Say("declare %s: %s", name, E(err))
	}
	return n
}

// basicCQ declares a classic queue r.N(name), which other connections may
// use (the scenarios consume it from other connections).
func basicCQ(r *run, ch *amqp.Channel, name string) string {
	n := r.N(name)
	if _, err := ch.QueueDeclare(n, false, false, false, false, amqp.Table{"x-queue-type": "classic"}); err != nil {
		r.Say("declare %s: %s", name, E(err))
	}
	return n
}

// confirming opens a channel in confirm mode and returns it with its
// confirmations.
func confirming(r *run) (*amqp.Channel, chan amqp.Confirmation) {
	c := r.Ch()
	pc := c.NotifyPublish(make(chan amqp.Confirmation, 10))
	_ = c.Confirm(false)
	return c, pc
}

// exclusiveConsumers walks queue q through exclusive consumption: an
// exclusive consumer beside a plain one (on ch), then alone, then a
// second consumer beside it. It returns the exclusive consumer's channel.
func exclusiveConsumers(r *run, ch *amqp.Channel, q string) *amqp.Channel {
	_, err := ch.Consume(q, "plain", false, false, false, false, nil)
	r.Say("plain consume: %s", E(err))
	c2, cl2 := r.ChCl()
	_, err = c2.Consume(q, "excl", false, true, false, false, nil)
	r.Say("exclusive when other exists: %s", E(err))
	r.Say("closed: %s", r.State(c2, cl2))
	r.Say("cancel plain: %s", E(ch.Cancel("plain", false)))
	c3 := r.Ch()
	_, err = c3.Consume(q, "excl", false, true, false, false, nil)
	r.Say("exclusive alone: %s", E(err))
	c4, cl4 := r.ChCl()
	_, err = c4.Consume(q, "second", false, false, false, false, nil)
	r.Say("second consumer on exclusive: %s", E(err))
	r.Say("closed: %s", r.State(c4, cl4))
	return c3
}

func basicDesc(ms []amqp.Delivery) string {
	var s []string
	for _, m := range ms {
		s = append(s, fmt.Sprintf("%s/tag%d/r%v", m.Body, m.DeliveryTag, m.Redelivered))
	}
	return strings.Join(s, " ")
}

func basicBodies(ms []amqp.Delivery) string {
	var s []string
	for _, m := range ms {
		s = append(s, string(m.Body))
	}
	return strings.Join(s, ",")
}

func basicFmtTable(tb amqp.Table) string {
	keys := make([]string, 0, len(tb))
	for k := range tb {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var s []string
	for _, k := range keys {
		s = append(s, fmt.Sprintf("%s=%s", k, basicFmtVal(tb[k])))
	}
	return "{" + strings.Join(s, " ") + "}"
}

func basicFmtVal(v any) string {
	switch x := v.(type) {
	case amqp.Table:
		return basicFmtTable(x)
	case []any:
		var s []string
		for _, e := range x {
			s = append(s, basicFmtVal(e))
		}
		return "[" + strings.Join(s, ",") + "]"
	case time.Time:
		return fmt.Sprintf("time(%d)", x.Unix())
	case []byte:
		return fmt.Sprintf("bytes(%q)", x)
	case nil:
		return "nil"
	default:
		return fmt.Sprintf("%T(%v)", v, v)
	}
}

func basicFmtProps(m *amqp.Delivery) string {
	return fmt.Sprintf("ct=%q ce=%q dm=%d prio=%d corr=%q replyto=%q exp=%q mid=%q ts=%d type=%q uid=%q app=%q headers=%s",
		m.ContentType, m.ContentEncoding, m.DeliveryMode, m.Priority, m.CorrelationId, m.ReplyTo, m.Expiration,
		m.MessageId, m.Timestamp.Unix(), m.Type, m.UserId, m.AppId, basicFmtTable(m.Headers))
}

// recvEither waits for n deliveries that must come to either of two
// consumers, and returns how many came.
func recvEither(n int, a, b <-chan amqp.Delivery) int {
	got := 0
	for got < n && (a != nil || b != nil) {
		select {
		case _, ok := <-a:
			if !ok {
				a = nil
				continue
			}
		case _, ok := <-b:
			if !ok {
				b = nil
				continue
			}
		case <-time.After(patience):
			return got
		}
		got++
	}
	return got
}

func basicScenarios() []scenario {
	return []scenario{
		// ---------------------------------------------------------------- qos
		{"basic.qos-per-consumer", func(r *run) {
			ch := r.Ch()
			q1 := basicQ(r, ch, "q1", nil)
			q2 := basicQ(r, ch, "q2", nil)
			defer r.del(q1, q2)
			for i := 0; i < 5; i++ {
				r.pub(q1, fmt.Sprint("a", i))
				r.pub(q2, fmt.Sprint("b", i))
			}
			c := r.Ch()
			r.Say("qos: %s", E(c.Qos(2, 0, false)))
			d1, err := c.Consume(q1, "c1", false, false, false, false, nil)
			r.Say("consume1: %s", E(err))
			d2, err := c.Consume(q2, "c2", false, false, false, false, nil)
			r.Say("consume2: %s", E(err))
			m1 := recvN(d1, 2)
			m2 := recvN(d2, 2)
			r.Say("c1 got %d: %s", len(m1), basicBodies(m1))
			r.Say("c2 got %d: %s", len(m2), basicBodies(m2))
			// What is still ready says that no more than the prefetch went out.
			r.Say("q1: %s", r.count(q1))
			r.Say("q2: %s", r.count(q2))
			if len(m1) > 0 {
				r.Say("ack: %s", E(m1[0].Ack(false)))
				if m := recv(d1); m != nil {
					r.Say("after ack c1 got %s", m.Body)
				} else {
					r.Say("after ack nothing")
				}
			}
			// A new prefetch applies to consumers created later only.
			r.Say("qos 3: %s", E(c.Qos(3, 0, false)))
			r.Say("q1 after qos change: %s", r.count(q1))
		}},

		{"basic.qos-global-classic", func(r *run) {
			ch := r.Ch()
			q1 := basicCQ(r, ch, "q1")
			q2 := basicCQ(r, ch, "q2")
			defer r.del(q1, q2)
			for i := 0; i < 5; i++ {
				r.pub(q1, fmt.Sprint("a", i))
				r.pub(q2, fmt.Sprint("b", i))
			}
			c := r.Ch()
			r.Say("qos global: %s", E(c.Qos(3, 0, true)))
			d1, err := c.Consume(q1, "c1", false, false, false, false, nil)
			r.Say("consume1: %s", E(err))
			m1 := recvN(d1, 3)
			r.Say("c1 got %d", len(m1))
			d2, err := c.Consume(q2, "c2", false, false, false, false, nil)
			r.Say("consume2: %s", E(err))
			r.Say("q1: %s", r.count(q1))
			r.Say("q2: %s", r.count(q2))
			if len(m1) > 0 {
				r.Say("ack multiple: %s", E(c.Ack(m1[len(m1)-1].DeliveryTag, true)))
				// Which queue fills the window again is RabbitMQ's choice.
				r.Say("after ack %d more", recvEither(3, d1, d2))
			}
		}},

		{"basic.qos-both-classic", func(r *run) {
			ch := r.Ch()
			qs := []string{basicCQ(r, ch, "q1"), basicCQ(r, ch, "q2"), basicCQ(r, ch, "q3")}
			defer r.del(qs...)
			for _, q := range qs {
				for i := 0; i < 5; i++ {
					r.pub(q, fmt.Sprint(q[len(q)-2:], i))
				}
			}
			c := r.Ch()
			r.Say("qos global 5: %s", E(c.Qos(5, 0, true)))
			r.Say("qos consumer 2: %s", E(c.Qos(2, 0, false)))
			// Each consumer gets its own prefetch while the channel's
			// window lasts: 2, 2, then the 1 left. Each consumer's share
			// is taken before the next consumes, so the split is fixed.
			for i, q := range qs {
				d, err := c.Consume(q, fmt.Sprint("c", i), false, false, false, false, nil)
				r.Say("consume %d: %s", i, E(err))
				r.Say("c%d: %d", i, len(recvN(d, min(2, 5-2*i))))
			}
			// What is still ready says that no more went out.
			for _, q := range qs {
				r.Say("%s: %s", q[len(r.prefix):], r.count(q))
			}
		}},

		{"basic.qos-global-quorum", func(r *run) {
			ch := r.Ch()
			q := basicQ(r, ch, "q", nil)
			defer r.del(q)
			c, cl := r.ChCl()
			r.Say("qos global: %s", E(c.Qos(3, 0, true)))
			_, err := c.Consume(q, "c1", false, false, false, false, nil)
			r.Say("consume: %s", E(err))
			r.Say("closed: %s", r.State(c, cl))
		}},

		{"basic.qos-prefetch-size", func(r *run) {
			c, cl := r.ChCl()
			r.Say("qos size: %s", E(c.Qos(1, 1000, false)))
			r.Say("closed: %s", r.State(c, cl))
		}},

		{"basic.qos-get-ignores-prefetch", func(r *run) {
			ch := r.Ch()
			q := basicQ(r, ch, "q", nil)
			defer r.del(q)
			r.pubN(q, "m", 3)
			c := r.Ch()
			r.Say("qos: %s", E(c.Qos(1, 0, false)))
			for i := 0; i < 3; i++ {
				m, ok, err := c.Get(q, false)
				r.Say("get %d: ok=%v %s body=%s tag=%d count=%d", i, ok, E(err), m.Body, m.DeliveryTag, m.MessageCount)
			}
		}},

		// ------------------------------------------------------- consume rules
		{"basic.consume-exclusive", func(r *run) {
			ch := r.Ch()
			q := basicQ(r, ch, "q", nil)
			defer r.del(q)
			c3 := exclusiveConsumers(r, ch, q)
			_, err := c3.Consume(q, "same-ch", false, false, false, false, nil)
			r.Say("second consumer same channel: %s", E(err))
			c5 := r.Ch()
			_, err = c5.Consume(q, "excl2", false, true, false, false, nil)
			r.Say("second exclusive: %s", E(err))
		}},

		{"basic.consume-dup-tag", func(r *run) {
			ch := r.Ch()
			q := basicQ(r, ch, "q", nil)
			defer r.del(q)
			conn := r.Dial()
			cc := conn.NotifyClose(make(chan *amqp.Error, 1))
			c, err := conn.Channel()
			if err != nil {
				r.abort("channel: %v", err)
			}
			_, err = c.Consume(q, "tag", false, false, false, false, nil)
			r.Say("first: %s", E(err))
			_, err = c.Consume(q, "tag", false, false, false, false, nil)
			r.Say("dup: %s", E(err))
			r.Say("conn: %s", r.ConnState(conn, cc))
			// The same tag on another channel of one connection is fine.
			conn2 := r.Dial()
			a, _ := conn2.Channel()
			b, _ := conn2.Channel()
			_, err = a.Consume(q, "tag", false, false, false, false, nil)
			r.Say("ch a: %s", E(err))
			_, err = b.Consume(q, "tag", false, false, false, false, nil)
			r.Say("ch b same tag: %s", E(err))
		}},

		{"basic.consume-server-tag", func(r *run) {
			ch := r.Ch()
			q := basicQ(r, ch, "q", nil)
			defer r.del(q)
			r.pub(q, "x")
			d, err := ch.Consume(q, "", false, false, false, false, nil)
			r.Say("consume: %s", E(err))
			if m := recv(d); m != nil {
				r.Say("ctag prefix amq.ctag-: %v len>9: %v", strings.HasPrefix(m.ConsumerTag, "amq.ctag-"), len(m.ConsumerTag) > 9)
			} else {
				r.Say("no delivery")
			}
		}},

		{"basic.consume-missing-queue", func(r *run) {
			c, cl := r.ChCl()
			_, err := c.Consume(r.N("nope"), "", false, false, false, false, nil)
			r.Say("consume: %s", E(err))
			r.Say("closed: %s", r.State(c, cl))
		}},

		{"basic.cancel", func(r *run) {
			ch := r.Ch()
			q := basicQ(r, ch, "q", nil)
			defer r.del(q)
			c := r.Ch()
			d, err := c.Consume(q, "c", false, false, false, false, nil)
			r.Say("consume: %s", E(err))
			r.pub(q, "1")
			m := recv(d)
			r.Say("got: %v", m != nil)
			r.Say("cancel: %s", E(c.Cancel("c", false)))
			r.Say("deliveries: %s", ended(d))
			r.pub(q, "2")
			// The delivery of the cancelled consumer stays unacknowledged
			// and can still be acknowledged.
			if m != nil {
				r.Say("ack after cancel: %s", E(m.Ack(false)))
			}
			r.Say("count: %s", r.waitCount(q, "msgs=1 consumers=0"))
			r.Say("cancel unknown: %s", E(c.Cancel("nosuch", false)))
			r.Say("cancel again: %s", E(c.Cancel("c", false)))
			_, err = c.QueueDeclarePassive(q, true, false, false, false, nil)
			r.Say("channel ok: %s", E(err))
		}},

		{"basic.cancel-on-queue-delete", func(r *run) {
			ch := r.Ch()
			q := basicQ(r, ch, "q", nil)
			c, cl := r.ChCl()
			cn := c.NotifyCancel(make(chan string, 2))
			d, err := c.Consume(q, "ctag1", false, false, false, false, nil)
			r.Say("consume: %s", E(err))
			r.pub(q, "x")
			m := recv(d)
			r.Say("got: %v", m != nil)
			_, err = ch.QueueDelete(q, false, false, false)
			r.Say("delete: %s", E(err))
			select {
			case tag := <-cn:
				r.Say("cancel notify: %s", tag)
			case <-time.After(patience):
				r.Say("no cancel notify")
			}
			r.Say("deliveries: %s", ended(d))
			if m != nil {
				r.Say("ack after delete: %s", E(m.Ack(false)))
			}
			r.Say("channel: %s", r.State(c, cl))
			_, err = c.QueueDeclarePassive("amq.gen-nope", false, false, false, false, nil)
			r.Say("later passive: %s", E(err))
		}},

		// ------------------------------------------------------------- get
		{"basic.get", func(r *run) {
			ch := r.Ch()
			q := basicQ(r, ch, "q", nil)
			defer r.del(q)
			m, ok, err := ch.Get(q, false)
			r.Say("get empty: ok=%v %s", ok, E(err))
			r.pubN(q, "m", 3)
			r.Say("count: %s", r.count(q))
			for i := 0; i < 4; i++ {
				m, ok, err = ch.Get(q, i == 2)
				r.Say("get: ok=%v %s body=%s tag=%d count=%d redeliv=%v ex=%q rk-ok=%v", ok, E(err), m.Body, m.DeliveryTag, m.MessageCount, m.Redelivered, m.Exchange, m.RoutingKey == q)
			}
			r.Say("ack tag 2: %s", E(ch.Ack(2, false)))
			r.Say("nack tag 1 requeue: %s", E(ch.Nack(1, false, true)))
			m, ok, err = ch.Get(q, false)
			r.Say("get again: ok=%v %s body=%s tag=%d count=%d redeliv=%v", ok, E(err), m.Body, m.DeliveryTag, m.MessageCount, m.Redelivered)
			_, _, err = ch.Get(r.N("missing"), false)
			r.Say("get missing: %s", E(err))
		}},

		// ----------------------------------------------------------- ack
		{"basic.ack-multiple", func(r *run) {
			ch := r.Ch()
			q := basicQ(r, ch, "q", nil)
			defer r.del(q)
			r.pubN(q, "m", 5)
			c := r.Ch()
			d, _ := c.Consume(q, "c", false, false, false, false, nil)
			r.Say("got: %s", basicDesc(recvN(d, 5)))
			r.Say("ack 3 multiple: %s", E(c.Ack(3, true)))
			r.Say("cancel: %s", E(c.Cancel("c", false)))
			_ = c.Close()
			r.Say("count: %s", r.waitCount(q, "msgs=2 consumers=0"))
			c = r.Ch()
			m1, _, _ := c.Get(q, false)
			m2, _, _ := c.Get(q, false)
			r.Say("left: %s/%v %s/%v", m1.Body, m1.Redelivered, m2.Body, m2.Redelivered)
		}},

		{"basic.ack-zero-multiple", func(r *run) {
			ch := r.Ch()
			q := basicQ(r, ch, "q", nil)
			defer r.del(q)
			r.pubN(q, "m", 3)
			c, cl := r.ChCl()
			for i := 0; i < 3; i++ {
				_, _, _ = c.Get(q, false)
			}
			r.Say("ack 0 multiple: %s", E(c.Ack(0, true)))
			r.Say("closed: %s", r.State(c, cl))
			_ = c.Close()
			r.Say("count: %s", r.waitCount(q, "msgs=0 consumers=0"))
			// ack 0 without multiple
			r.pub(q, "x")
			c, cl = r.ChCl()
			_, _, _ = c.Get(q, false)
			r.Say("ack 0 single: %s", E(c.Ack(0, false)))
			r.Say("closed: %s", r.State(c, cl))
			// nack 0 multiple requeue
			c = r.Ch()
			r.pub(q, "y")
			_, _, _ = c.Get(q, false)
			_, _, _ = c.Get(q, false)
			r.Say("nack 0 multiple: %s", E(c.Nack(0, true, true)))
			_, err := c.QueueDeclarePassive(q, true, false, false, false, nil)
			r.Say("sync: %s", E(err))
			r.Say("count: %s", r.waitCount(q, "msgs=2 consumers=0"))
		}},

		{"basic.ack-unknown-tag", func(r *run) {
			ch := r.Ch()
			q := basicQ(r, ch, "q", nil)
			defer r.del(q)
			c, cl := r.ChCl()
			r.Say("ack 7: %s", E(c.Ack(7, false)))
			r.Say("closed: %s", r.State(c, cl))
			r.pub(q, "x")
			c, cl = r.ChCl()
			m, ok, _ := c.Get(q, false)
			r.Say("get ok=%v", ok)
			r.Say("ack: %s", E(c.Ack(m.DeliveryTag, false)))
			r.Say("double ack: %s", E(c.Ack(m.DeliveryTag, false)))
			r.Say("closed: %s", r.State(c, cl))
			c, cl = r.ChCl()
			r.Say("nack unknown: %s", E(c.Nack(3, false, true)))
			r.Say("closed: %s", r.State(c, cl))
			c, cl = r.ChCl()
			r.Say("reject unknown: %s", E(c.Reject(3, false)))
			r.Say("closed: %s", r.State(c, cl))
			c, cl = r.ChCl()
			r.Say("ack unknown multiple: %s", E(c.Ack(5, true)))
			r.Say("closed: %s", r.State(c, cl))
		}},

		{"basic.ack-noack-tag", func(r *run) {
			ch := r.Ch()
			q := basicQ(r, ch, "q", nil)
			defer r.del(q)
			r.pub(q, "a")
			r.pub(q, "b")
			c, cl := r.ChCl()
			d, err := c.Consume(q, "c", true, false, false, false, nil)
			r.Say("consume no-ack: %s", E(err))
			r.Say("got: %s", basicDesc(recvN(d, 2)))
			r.Say("count: %s", r.waitCount(q, "msgs=0 consumers=1"))
			r.Say("ack no-ack tag: %s", E(c.Ack(1, false)))
			r.Say("closed: %s", r.State(c, cl))
		}},

		// ------------------------------------------------------ nack/reject
		{"basic.nack-requeue-order", func(r *run) {
			ch := r.Ch()
			q := basicQ(r, ch, "q", nil)
			defer r.del(q)
			for _, b := range []string{"A", "B", "C"} {
				r.pub(q, b)
			}
			c := r.Ch()
			a, _, _ := c.Get(q, false)
			r.Say("got %s tag=%d", a.Body, a.DeliveryTag)
			r.Say("nack requeue: %s", E(a.Nack(false, true)))
			r.Say("count: %s", r.waitReady(q, 3))
			var got []string
			for i := 0; i < 3; i++ {
				if m, ok, _ := c.Get(q, true); ok {
					got = append(got, fmt.Sprintf("%s/r%v/tag%d", m.Body, m.Redelivered, m.DeliveryTag))
				}
			}
			r.Say("order after nack: %s", strings.Join(got, " "))
		}},

		{"basic.nack-requeue-consumer", func(r *run) {
			ch := r.Ch()
			q := basicQ(r, ch, "q", nil)
			defer r.del(q)
			for _, b := range []string{"A", "B", "C"} {
				r.pub(q, b)
			}
			c := r.Ch()
			_ = c.Qos(1, 0, false)
			d, _ := c.Consume(q, "c", false, false, false, false, nil)
			// Three messages and the redelivery of the first.
			var got []string
			for i := 0; i < 4; i++ {
				m := recv(d)
				if m == nil {
					break
				}
				got = append(got, fmt.Sprintf("%s/r%v/tag%d", m.Body, m.Redelivered, m.DeliveryTag))
				if i == 0 {
					_ = m.Nack(false, true)
				} else {
					_ = m.Ack(false)
				}
			}
			r.Say("sequence: %s", strings.Join(got, " "))
			r.Say("count: %s", r.waitCount(q, "msgs=0 consumers=1"))
		}},

		{"basic.nack-multiple", func(r *run) {
			ch := r.Ch()
			q := basicQ(r, ch, "q", nil)
			defer r.del(q)
			r.pubN(q, "m", 4)
			r.Say("count: %s", r.count(q))
			c := r.Ch()
			for i := 0; i < 4; i++ {
				_, _, _ = c.Get(q, false)
			}
			r.Say("nack 3 multiple requeue: %s", E(c.Nack(3, true, true)))
			r.Say("count: %s", r.waitReady(q, 3))
			r.Say("nack 4 no requeue: %s", E(c.Nack(4, false, false)))
			var got []string
			for i := 0; i < 4; i++ {
				if m, ok, _ := c.Get(q, true); ok {
					got = append(got, fmt.Sprintf("%s/r%v", m.Body, m.Redelivered))
				}
			}
			sort.Strings(got)
			r.Say("remaining: %s", strings.Join(got, " "))
		}},

		{"basic.reject", func(r *run) {
			ch := r.Ch()
			q := basicQ(r, ch, "q", nil)
			defer r.del(q)
			r.pub(q, "a")
			r.pub(q, "b")
			c := r.Ch()
			m, _, _ := c.Get(q, false)
			r.Say("reject drop %s: %s", m.Body, E(m.Reject(false)))
			m, _, _ = c.Get(q, false)
			r.Say("reject requeue %s: %s", m.Body, E(m.Reject(true)))
			r.waitReady(q, 1)
			m, ok, _ := c.Get(q, true)
			r.Say("get: ok=%v %s r=%v count=%d", ok, m.Body, m.Redelivered, m.MessageCount)
			_, ok, _ = c.Get(q, true)
			r.Say("get: ok=%v", ok)
		}},

		{"basic.recover", func(r *run) {
			ch := r.Ch()
			q := basicQ(r, ch, "q", nil)
			defer r.del(q)
			r.pubN(q, "m", 3)
			c, cl := r.ChCl()
			d, _ := c.Consume(q, "c", false, false, false, false, nil)
			r.Say("first: %s", basicDesc(recvN(d, 3)))
			r.Say("recover: %s", E(c.Recover(true)))
			ms := recvN(d, 3)
			sort.Slice(ms, func(i, j int) bool { return string(ms[i].Body) < string(ms[j].Body) })
			var s []string
			for _, m := range ms {
				s = append(s, fmt.Sprintf("%s/r%v/tag>3:%v", m.Body, m.Redelivered, m.DeliveryTag > 3))
			}
			r.Say("after recover: %s", strings.Join(s, " "))
			// The tags from before the recover are gone.
			r.Say("ack old tag 1 on c: %s", E(c.Ack(1, false)))
			r.Say("closed: %s", r.State(c, cl))
		}},

		{"basic.recover-no-requeue", func(r *run) {
			conn := r.Dial()
			cc := conn.NotifyClose(make(chan *amqp.Error, 1))
			c, err := conn.Channel()
			if err != nil {
				r.abort("channel: %v", err)
			}
			cl := c.NotifyClose(make(chan *amqp.Error, 1))
			r.Say("recover false: %s", E(c.Recover(false)))
			r.Say("ch: %s", r.State(c, cl))
			r.Say("conn: %s", r.ConnState(conn, cc))
		}},

		{"basic.recover-get", func(r *run) {
			ch := r.Ch()
			q := basicQ(r, ch, "q", nil)
			defer r.del(q)
			r.pub(q, "g")
			c := r.Ch()
			m, _, _ := c.Get(q, false)
			r.Say("got %s r=%v", m.Body, m.Redelivered)
			r.Say("recover: %s", E(c.Recover(true)))
			r.Say("count: %s", r.waitCount(q, "msgs=1 consumers=0"))
			m, ok, _ := c.Get(q, false)
			r.Say("get again: ok=%v %s r=%v", ok, m.Body, m.Redelivered)
		}},

		{"basic.delivery-tags", func(r *run) {
			ch := r.Ch()
			q := basicQ(r, ch, "q", nil)
			q2 := basicQ(r, ch, "q2", nil)
			defer r.del(q, q2)
			for i := 0; i < 4; i++ {
				r.pub(q, fmt.Sprint("m", i))
				r.pub(q2, fmt.Sprint("n", i))
			}
			conn := r.Dial()
			a, _ := conn.Channel()
			b, _ := conn.Channel()
			m, _, _ := a.Get(q, false)
			r.Say("a get tag=%d", m.DeliveryTag)
			m, _, _ = a.Get(q, true)
			r.Say("a get noack tag=%d", m.DeliveryTag)
			m, _, _ = b.Get(q2, false)
			r.Say("b get tag=%d", m.DeliveryTag)
			tags := func(ms []amqp.Delivery) string {
				var s []string
				for _, x := range ms {
					s = append(s, fmt.Sprint(x.DeliveryTag))
				}
				return strings.Join(s, ",")
			}
			// What is left of each queue: 3 of q2, 2 of q.
			d, _ := a.Consume(q2, "c", false, false, false, false, nil)
			r.Say("a consume tags: %s", tags(recvN(d, 3)))
			d2, _ := a.Consume(q, "c2", true, false, false, false, nil)
			r.Say("a noack consume tags: %s", tags(recvN(d2, 2)))
		}},

		{"basic.redeliver-on-close", func(r *run) {
			ch := r.Ch()
			q := basicQ(r, ch, "q", nil)
			defer r.del(q)
			r.pubN(q, "m", 3)
			c := r.Ch()
			d, _ := c.Consume(q, "c", false, false, false, false, nil)
			ms := recvN(d, 3)
			r.Say("first: %s", basicDesc(ms))
			if len(ms) > 1 {
				_ = ms[1].Ack(false)
			}
			// The ack is sent before the close, on the same channel.
			_ = c.Close()
			c2 := r.Ch()
			d2, _ := c2.Consume(q, "c", false, false, false, false, nil)
			r.Say("again: %s", basicDesc(recvN(d2, 2)))
			x, err := cancelDrain(c2, "c", d2)
			r.Say("cancel: %s, more: %s", E(err), basicDesc(x))
		}},

		{"basic.redeliver-on-conn-close", func(r *run) {
			ch := r.Ch()
			q := basicQ(r, ch, "q", nil)
			defer r.del(q)
			r.pubN(q, "m", 2)
			conn := r.Dial()
			c, _ := conn.Channel()
			d, _ := c.Consume(q, "c", false, false, false, false, nil)
			r.Say("first: %s", basicDesc(recvN(d, 2)))
			_ = conn.Close()
			r.Say("count: %s", r.waitCount(q, "msgs=2 consumers=0"))
			m, _, _ := ch.Get(q, true)
			r.Say("get: %s r=%v", m.Body, m.Redelivered)
		}},

		{"basic.consumer-priority", func(r *run) {
			ch := r.Ch()
			q := basicQ(r, ch, "q", nil)
			defer r.del(q)
			lo := r.Ch()
			hi := r.Ch()
			dl, err := lo.Consume(q, "lo", false, false, false, false, amqp.Table{"x-priority": int32(1)})
			r.Say("lo: %s", E(err))
			dh, err := hi.Consume(q, "hi", false, false, false, false, amqp.Table{"x-priority": int32(10)})
			r.Say("hi: %s", E(err))
			r.pubN(q, "m", 4)
			r.Say("hi=%d", len(recvN(dh, 4)))
			// With the highest-priority consumer's prefetch full, the next
			// one down gets the rest.
			hi2 := r.Ch()
			_ = hi2.Qos(1, 0, false)
			dh2, _ := hi2.Consume(q, "hi2", false, false, false, false, amqp.Table{"x-priority": int64(20)})
			r.pubN(q, "n", 3)
			r.Say("hi2=%d hi=%d", len(recvN(dh2, 1)), len(recvN(dh, 2)))
			ml, err := cancelDrain(lo, "lo", dl)
			r.Say("cancel lo: %s, lo got %d", E(err), len(ml))
			c, cl := r.ChCl()
			_, err = c.Consume(q, "bad", false, false, false, false, amqp.Table{"x-priority": "high"})
			r.Say("string priority: %s", E(err))
			r.Say("closed: %s", r.State(c, cl))
		}},

		{"basic.noack-consumer", func(r *run) {
			ch := r.Ch()
			q := basicQ(r, ch, "q", nil)
			defer r.del(q)
			r.pubN(q, "m", 3)
			c := r.Ch()
			_ = c.Qos(1, 0, false)
			d, _ := c.Consume(q, "c", true, false, false, false, nil)
			r.Say("got %s", basicDesc(recvN(d, 3)))
			_ = c.Close()
			r.Say("count: %s", r.waitCount(q, "msgs=0 consumers=0"))
		}},

		// ------------------------------------------------------- properties
		{"basic.properties-roundtrip", func(r *run) {
			ch := r.Ch()
			q := basicQ(r, ch, "q", nil)
			defer r.del(q)
			ts := time.Unix(1700000000, 0)
			hdr := amqp.Table{
				"bool":    true,
				"boolf":   false,
				"i8":      int8(-5),
				"i16":     int16(-300),
				"i32":     int32(-70000),
				"i64":     int64(-5000000000),
				"f32":     float32(1.5),
				"f64":     float64(2.25),
				"dec":     amqp.Decimal{Scale: 2, Value: 12345},
				"str":     "hello",
				"bytes":   []byte{0, 1, 2, 255},
				"time":    ts,
				"table":   amqp.Table{"inner": "x", "n": int32(1), "deep": amqp.Table{"z": true}},
				"array":   []any{"a", int32(1), true, amqp.Table{"k": "v"}, []any{int64(2)}},
				"nil":     nil,
				"emptys":  "",
				"emptyt":  amqp.Table{},
				"emptya":  []any{},
				"unicode": "héllo ✓",
				"u8":      uint8(200),
				"u16":     uint16(60000),
				"u32":     uint32(4000000000),
			}
			p := amqp.Publishing{
				ContentType:     "application/json",
				ContentEncoding: "gzip",
				Headers:         hdr,
				DeliveryMode:    2,
				Priority:        7,
				CorrelationId:   "corr-1",
				ReplyTo:         "reply-q",
				Expiration:      "600000",
				MessageId:       "mid-1",
				Timestamp:       ts,
				Type:            "my.type",
				UserId:          "guest",
				AppId:           "app-1",
				Body:            []byte("body"),
			}
			r.Say("publish: %s", E(ch.Publish("", q, false, false, p)))
			r.Say("count: %s", r.waitCount(q, "msgs=1 consumers=0"))
			m, ok, err := ch.Get(q, true)
			r.Say("get: ok=%v %s", ok, E(err))
			r.Say("props: %s", basicFmtProps(&m))
			// through a consumer too
			r.Say("publish: %s", E(ch.Publish("", q, false, false, p)))
			d, _ := ch.Consume(q, "c", true, false, false, false, nil)
			if mm := recv(d); mm != nil {
				r.Say("consume props: %s", basicFmtProps(mm))
			} else {
				r.Say("no delivery")
			}
		}},

		{"basic.properties-empty", func(r *run) {
			ch := r.Ch()
			q := basicQ(r, ch, "q", nil)
			defer r.del(q)
			r.Say("publish: %s", E(ch.Publish("", q, false, false, amqp.Publishing{})))
			r.Say("count: %s", r.waitCount(q, "msgs=1 consumers=0"))
			m, ok, err := ch.Get(q, true)
			r.Say("get: ok=%v %s len=%d", ok, E(err), len(m.Body))
			r.Say("props: %s hdrnil=%v", basicFmtProps(&m), m.Headers == nil)
		}},

		{"basic.user-id", func(r *run) {
			ch := r.Ch()
			q := basicQ(r, ch, "q", nil)
			defer r.del(q)
			c, cl := r.ChCl()
			r.Say("publish bad user: %s", E(c.Publish("", q, false, false, amqp.Publishing{UserId: "admin", Body: []byte("x")})))
			r.Say("closed: %s", r.State(c, cl))
			c, cl = r.ChCl()
			_ = c.Confirm(false)
			r.Say("publish bad user confirm: %s", E(c.Publish("", q, false, false, amqp.Publishing{UserId: "Guest", Body: []byte("x")})))
			r.Say("closed: %s", r.State(c, cl))
			r.Say("count: %s", r.count(q))
		}},

		{"basic.expiration", func(r *run) {
			ch := r.Ch()
			q := basicQ(r, ch, "q", nil)
			defer r.del(q)
			for _, e := range []string{"abc", "-1", "1.5", " 100", "99999999999999999999"} {
				c, cl := r.ChCl()
				_ = c.Publish("", q, false, false, amqp.Publishing{Expiration: e, Body: []byte("x")})
				r.Say("expiration %q: %s", e, r.State(c, cl))
			}
			c := r.Ch()
			pc := c.NotifyPublish(make(chan amqp.Confirmation, 2))
			_ = c.Confirm(false)
			r.Say("exp 0: %s", E(c.Publish("", q, false, false, amqp.Publishing{Expiration: "0", Body: []byte("zero")})))
			r.Say("exp 100: %s", E(c.Publish("", q, false, false, amqp.Publishing{Expiration: "100", Body: []byte("short")})))
			for range 2 {
				select {
				case cf := <-pc:
					r.Say("confirm %d %v", cf.DeliveryTag, cf.Ack)
				case <-time.After(patience):
					r.Say("no confirm")
				}
			}
			// Both expire: the first at once, the second after 100 ms.
			r.Say("count: %s", r.waitCount(q, "msgs=0 consumers=0"))
		}},

		{"basic.empty-and-large-body", func(r *run) {
			ch := r.Ch()
			q := basicQ(r, ch, "q", nil)
			defer r.del(q)
			r.Say("publish empty: %s", E(ch.Publish("", q, false, false, amqp.Publishing{ContentType: "text/plain"})))
			big := make([]byte, 1<<20+17)
			for i := range big {
				big[i] = byte(i * 7)
			}
			r.Say("publish big: %s", E(ch.Publish("", q, false, false, amqp.Publishing{Body: big})))
			big5 := bytes.Repeat([]byte("abcdefgh"), 5<<20/8)
			r.Say("publish 5MiB: %s", E(ch.Publish("", q, false, false, amqp.Publishing{Body: big5})))
			c := r.Ch()
			d, _ := c.Consume(q, "c", true, false, false, false, nil)
			for i := 0; i < 3; i++ {
				m := recv(d)
				if m == nil {
					r.Say("missing")
					continue
				}
				r.Say("got len=%d eq=%v ct=%q", len(m.Body), bytes.Equal(m.Body, big) || bytes.Equal(m.Body, big5) || len(m.Body) == 0, m.ContentType)
			}
		}},

		{"basic.priority-message", func(r *run) {
			ch := r.Ch()
			q := r.N("pq")
			_, err := ch.QueueDeclare(q, false, false, false, false, amqp.Table{"x-max-priority": int32(5), "x-queue-type": "classic"})
			r.Say("declare: %s", E(err))
			defer r.del(q)
			for i, p := range []uint8{1, 9, 3, 0, 5} {
				_ = ch.Publish("", q, false, false, amqp.Publishing{Priority: p, Body: []byte(fmt.Sprint("m", i, "p", p))})
			}
			r.Say("count: %s", r.waitCount(q, "msgs=5 consumers=0"))
			var got []string
			for i := 0; i < 5; i++ {
				if m, ok, _ := ch.Get(q, true); ok {
					got = append(got, fmt.Sprintf("%s(%d)", m.Body, m.Priority))
				}
			}
			r.Say("order: %s", strings.Join(got, " "))
		}},

		// ------------------------------------------------------ publish
		{"basic.mandatory-return", func(r *run) {
			ch := r.Ch()
			rc := ch.NotifyReturn(make(chan amqp.Return, 4))
			x := r.N("x")
			_ = ch.ExchangeDeclare(x, "direct", false, true, false, false, nil)
			r.Say("publish mandatory: %s", E(ch.Publish(x, "nokey", true, false, amqp.Publishing{MessageId: "m1", Body: []byte("r")})))
			r.Say("publish non-mandatory: %s", E(ch.Publish(x, "nokey", false, false, amqp.Publishing{Body: []byte("s")})))
			r.Say("publish default mandatory: %s", E(ch.Publish("", r.N("noqueue"), true, false, amqp.Publishing{Body: []byte("d")})))
			r.Say("fence: %s", E(r.Fence(ch)))
			for done := false; !done; {
				select {
				case ret, ok := <-rc:
					if !ok {
						r.Say("returns ended")
						done = true
						break
					}
					r.Say("return code=%d text=%s ex-ok=%v rk=%s body=%s mid=%s", ret.ReplyCode, ret.ReplyText, ret.Exchange == x, strings.TrimPrefix(ret.RoutingKey, r.prefix), ret.Body, ret.MessageId)
				default:
					done = true
				}
			}
			_ = ch.ExchangeDelete(x, false, false)
		}},

		{"basic.immediate", func(r *run) {
			ch := r.Ch()
			q := basicQ(r, ch, "q", nil)
			defer r.del(q)
			conn := r.Dial()
			cc := conn.NotifyClose(make(chan *amqp.Error, 1))
			c, err := conn.Channel()
			if err != nil {
				r.abort("channel: %v", err)
			}
			_ = c.Publish("", q, false, true, amqp.Publishing{Body: []byte("x")})
			r.Say("conn: %s", r.ConnState(conn, cc))
		}},

		{"basic.publish-missing-exchange", func(r *run) {
			c, cl := r.ChCl()
			_ = c.Publish(r.N("nox"), "k", false, false, amqp.Publishing{Body: []byte("x")})
			r.Say("closed: %s", r.State(c, cl))
			c, cl = r.ChCl()
			r.Say("confirm: %s", E(c.Confirm(false)))
			pc := c.NotifyPublish(make(chan amqp.Confirmation, 4))
			_ = c.Publish(r.N("nox"), "k", false, false, amqp.Publishing{Body: []byte("x")})
			r.Say("closed: %s", r.State(c, cl))
			// amqp091-go ends the confirms of a closed channel.
			select {
			case cf, ok := <-pc:
				r.Say("confirm: ok=%v tag=%d ack=%v", ok, cf.DeliveryTag, cf.Ack)
			case <-time.After(patience):
				r.Say("confirms not ended")
			}
		}},

		{"basic.publish-amq-default-and-internal", func(r *run) {
			ch := r.Ch()
			q := basicQ(r, ch, "q", nil)
			defer r.del(q)
			x := r.N("ix")
			_ = ch.ExchangeDeclare(x, "fanout", false, true, true, false, nil)
			c, cl := r.ChCl()
			_ = c.Publish(x, "", false, false, amqp.Publishing{Body: []byte("x")})
			r.Say("publish internal: %s", r.State(c, cl))
			c, cl = r.ChCl()
			_ = c.Publish("amq.default", q, false, false, amqp.Publishing{Body: []byte("x")})
			r.Say("publish amq.default: %s", r.State(c, cl))
			r.Say("count: %s", r.count(q))
			_ = ch.ExchangeDelete(x, false, false)
		}},

		// ------------------------------------------------------ confirms
		{"basic.confirm-tags", func(r *run) {
			ch := r.Ch()
			q := basicQ(r, ch, "q", nil)
			defer r.del(q)
			c := r.Ch()
			pc := c.NotifyPublish(make(chan amqp.Confirmation, 100))
			r.Say("confirm: %s", E(c.Confirm(false)))
			r.Say("confirm again: %s", E(c.Confirm(false)))
			r.Say("next seq: %d", c.GetNextPublishSeqNo())
			for i := 0; i < 20; i++ {
				_ = c.Publish("", q, false, false, amqp.Publishing{Body: []byte(fmt.Sprint(i))})
			}
			// Unroutable ones are acknowledged too.
			_ = c.Publish("", r.N("nowhere"), false, false, amqp.Publishing{Body: []byte("u")})
			_ = c.Publish("", r.N("nowhere"), true, false, amqp.Publishing{Body: []byte("m")})
			var tags []int
			acks := 0
		collect:
			for len(tags) < 22 {
				select {
				case cf := <-pc:
					tags = append(tags, int(cf.DeliveryTag))
					if cf.Ack {
						acks++
					}
				case <-time.After(patience):
					break collect
				}
			}
			r.Say("confirms=%d acks=%d sorted=%v first=%v last=%v", len(tags), acks, sort.IntsAreSorted(tags), tags[:min(1, len(tags))], tags[max(0, len(tags)-1):])
		}},

		{"basic.confirm-return-order", func(r *run) {
			c := r.Ch()
			var ev []string
			rc := c.NotifyReturn(make(chan amqp.Return, 1))
			pc := c.NotifyPublish(make(chan amqp.Confirmation, 1))
			_ = c.Confirm(false)
			_ = c.Publish("", r.N("nowhere"), true, false, amqp.Publishing{Body: []byte("m")})
			for i := 0; i < 2; i++ {
				select {
				case ret := <-rc:
					ev = append(ev, fmt.Sprintf("return%d", ret.ReplyCode))
				case cf := <-pc:
					ev = append(ev, fmt.Sprintf("confirm%d/%v", cf.DeliveryTag, cf.Ack))
				case <-time.After(patience):
					ev = append(ev, "none")
				}
			}
			r.Say("events: %s", strings.Join(ev, " "))
		}},

		{"basic.confirm-nack-reject-publish", func(r *run) {
			ch := r.Ch()
			q := basicQ(r, ch, "q", amqp.Table{"x-max-length": int32(1), "x-overflow": "reject-publish"})
			defer r.del(q)
			c, pc := confirming(r)
			for i := 0; i < 3; i++ {
				_ = c.Publish("", q, false, false, amqp.Publishing{Body: []byte(fmt.Sprint(i))})
				r.Say("%s", nextConfirm(pc))
			}
			// A mandatory publish the queue refuses: a nack, and a
			// basic.return (which would come before the nack) or not.
			rc := c.NotifyReturn(make(chan amqp.Return, 1))
			_ = c.Publish("", q, true, false, amqp.Publishing{Body: []byte("m")})
			select {
			case cf := <-pc:
				r.Say("mandatory overflow: %s, confirm%d/%v", returned(rc), cf.DeliveryTag, cf.Ack)
			case <-time.After(patience):
				r.Say("mandatory overflow: no confirm")
			}
			r.Say("count: %s", r.count(q))
		}},

		// A fanout publish one of whose queues refuses it. That queue is
		// classic: a quorum queue of RabbitMQ 3.10 takes one message past
		// its limit, and whether it refuses the next depends on when the
		// channel hears that it is full (basic.confirm-nack-reject-publish
		// shows the extra message).
		{"basic.confirm-fanout-partial", func(r *run) {
			ch := r.Ch()
			full := r.N("full")
			_, err := ch.QueueDeclare(full, false, false, false, false, amqp.Table{"x-queue-type": "classic", "x-max-length": int32(1), "x-overflow": "reject-publish"})
			r.Say("declare: %s", E(err))
			ok := basicQ(r, ch, "ok", nil)
			defer r.del(full, ok)
			r.pub(full, "pre")
			r.pub(full, "pre2")
			r.Say("full prefilled: %s", r.count(full))
			x := r.N("fx")
			_ = ch.ExchangeDeclare(x, "fanout", false, true, false, false, nil)
			_ = ch.QueueBind(full, "", x, false, nil)
			_ = ch.QueueBind(ok, "", x, false, nil)
			c, pc := confirming(r)
			_ = c.Publish(x, "", false, false, amqp.Publishing{Body: []byte("f")})
			r.Say("%s", nextConfirm(pc))
			// RabbitMQ sends the nack when the full queue refuses, before
			// the other queue's enqueue is applied.
			r.Say("ok count: %s", r.waitCount(ok, "msgs=1 consumers=0"))
			r.Say("full count: %s", r.count(full))
			_ = ch.ExchangeDelete(x, false, false)
		}},

		// ------------------------------------------------------ tx
		{"basic.tx-publish", func(r *run) {
			ch := r.Ch()
			q := basicQ(r, ch, "q", nil)
			defer r.del(q)
			c := r.Ch()
			r.Say("tx.select: %s", E(c.Tx()))
			r.Say("tx.select again: %s", E(c.Tx()))
			_ = c.Publish("", q, false, false, amqp.Publishing{Body: []byte("rolled")})
			r.Say("fence: %s", E(r.Fence(c)))
			r.Say("before rollback: %s", r.count(q))
			r.Say("rollback: %s", E(c.TxRollback()))
			_ = c.Publish("", q, false, false, amqp.Publishing{Body: []byte("committed")})
			r.Say("commit: %s", E(c.TxCommit()))
			r.Say("after commit: %s", r.waitCount(q, "msgs=1 consumers=0"))
			m, _, _ := ch.Get(q, true)
			r.Say("body: %s", m.Body)
			r.Say("empty commit: %s", E(c.TxCommit()))
			r.Say("empty rollback: %s", E(c.TxRollback()))
		}},

		{"basic.tx-mandatory-return", func(r *run) {
			c := r.Ch()
			rc := c.NotifyReturn(make(chan amqp.Return, 2))
			_ = c.Tx()
			_ = c.Publish("", r.N("nowhere"), true, false, amqp.Publishing{Body: []byte("m")})
			r.Say("fence: %s", E(r.Fence(c)))
			r.Say("before commit: %s", returned(rc))
			r.Say("commit: %s", E(c.TxCommit()))
			r.Say("after commit: %s", returned(rc))
			_ = c.Publish("", r.N("nowhere"), true, false, amqp.Publishing{Body: []byte("m")})
			r.Say("rollback: %s", E(c.TxRollback()))
			r.Say("fence: %s", E(r.Fence(c)))
			r.Say("after rollback: %s", returned(rc))
		}},

		{"basic.tx-ack", func(r *run) {
			ch := r.Ch()
			q := basicQ(r, ch, "q", nil)
			defer r.del(q)
			r.pub(q, "a")
			r.pub(q, "b")
			c := r.Ch()
			r.Say("tx: %s", E(c.Tx()))
			m, _, _ := c.Get(q, false)
			r.Say("get %s tag=%d", m.Body, m.DeliveryTag)
			r.Say("ack: %s", E(m.Ack(false)))
			r.Say("rollback: %s", E(c.TxRollback()))
			// The rolled-back ack leaves the delivery unacknowledged:
			// acknowledge it again and commit.
			r.Say("ack again: %s", E(m.Ack(false)))
			r.Say("commit: %s", E(c.TxCommit()))
			r.Say("count: %s", r.waitCount(q, "msgs=1 consumers=0"))
			m2, _, _ := c.Get(q, false)
			r.Say("get %s tag=%d", m2.Body, m2.DeliveryTag)
			r.Say("ack: %s", E(m2.Ack(false)))
			r.Say("rollback: %s", E(c.TxRollback()))
			_ = c.Close()
			r.Say("after close: %s", r.waitCount(q, "msgs=1 consumers=0"))
			m3, ok, _ := ch.Get(q, true)
			r.Say("left: ok=%v %s r=%v", ok, m3.Body, m3.Redelivered)
		}},

		{"basic.tx-ack-then-close", func(r *run) {
			ch := r.Ch()
			q := basicQ(r, ch, "q", nil)
			defer r.del(q)
			r.pub(q, "a")
			r.Say("count: %s", r.count(q))
			conn := r.Dial()
			c, _ := conn.Channel()
			r.Say("tx: %s", E(c.Tx()))
			m, ok, err := c.Get(q, false)
			r.Say("get: ok=%v %s %s", ok, E(err), m.Body)
			r.Say("ack: %s", E(m.Ack(false)))
			_ = c.Publish("", q, false, false, amqp.Publishing{Body: []byte("p")})
			r.Say("channel close: %s", E(c.Close())) // uncommitted
			r.Say("count after channel close: %s", r.waitCount(q, "msgs=1 consumers=0"))
			_ = conn.Close()
			r.Say("count after conn close: %s", r.waitCount(q, "msgs=1 consumers=0"))
			m2, _, _ := ch.Get(q, true)
			r.Say("left %s r=%v", m2.Body, m2.Redelivered)
		}},

		{"basic.tx-nack-reject", func(r *run) {
			ch := r.Ch()
			q := basicQ(r, ch, "q", nil)
			defer r.del(q)
			r.pub(q, "a")
			r.pub(q, "b")
			c := r.Ch()
			_ = c.Tx()
			a, _, _ := c.Get(q, false)
			b, _, _ := c.Get(q, false)
			r.Say("reject a: %s", E(a.Reject(false)))
			r.Say("nack b requeue: %s", E(b.Nack(false, true)))
			r.Say("fence: %s", E(r.Fence(c)))
			r.Say("before commit: %s", r.count(q))
			r.Say("commit: %s", E(c.TxCommit()))
			r.Say("after commit: %s", r.waitCount(q, "msgs=1 consumers=0"))
			m, _, _ := ch.Get(q, true)
			r.Say("left %s r=%v", m.Body, m.Redelivered)
		}},

		{"basic.tx-unknown-ack", func(r *run) {
			c, cl := r.ChCl()
			_ = c.Tx()
			r.Say("ack 9: %s", E(c.Ack(9, false)))
			r.Say("commit: %s", E(c.TxCommit()))
			r.Say("closed: %s", r.State(c, cl))
		}},

		{"basic.tx-errors", func(r *run) {
			c, cl := r.ChCl()
			r.Say("commit without select: %s", E(c.TxCommit()))
			r.Say("closed: %s", r.State(c, cl))
			c, cl = r.ChCl()
			r.Say("rollback without select: %s", E(c.TxRollback()))
			r.Say("closed: %s", r.State(c, cl))
			c, cl = r.ChCl()
			r.Say("tx: %s", E(c.Tx()))
			r.Say("confirm on tx: %s", E(c.Confirm(false)))
			r.Say("closed: %s", r.State(c, cl))
			c, cl = r.ChCl()
			r.Say("confirm: %s", E(c.Confirm(false)))
			r.Say("tx on confirm: %s", E(c.Tx()))
			r.Say("closed: %s", r.State(c, cl))
		}},

		{"basic.tx-publish-missing-exchange", func(r *run) {
			c, cl := r.ChCl()
			_ = c.Tx()
			_ = c.Publish(r.N("nox"), "", false, false, amqp.Publishing{Body: []byte("x")})
			// RabbitMQ closes the channel at the publish, and the commit
			// races that close (its error is the close's 404 or the
			// client's 504); both brokers fail it, and the close says why.
			r.Say("commit failed: %v", c.TxCommit() != nil)
			r.Say("closed: %s", r.State(c, cl))
		}},

		{"basic.tx-consume-ack-commit", func(r *run) {
			ch := r.Ch()
			q := basicQ(r, ch, "q", nil)
			defer r.del(q)
			r.pubN(q, "m", 4)
			c := r.Ch()
			_ = c.Qos(2, 0, false)
			_ = c.Tx()
			d, _ := c.Consume(q, "c", false, false, false, false, nil)
			ms := recvN(d, 2)
			r.Say("first: %s", basicDesc(ms))
			if len(ms) > 0 {
				_ = c.Ack(ms[len(ms)-1].DeliveryTag, true)
			}
			// Uncommitted, the acks free no prefetch: nothing more is
			// handed out.
			r.Say("fence: %s", E(r.Fence(c)))
			r.Say("before commit: %s", r.count(q))
			r.Say("commit: %s", E(c.TxCommit()))
			r.Say("after commit: %s", basicDesc(recvN(d, 2)))
		}},

		// ------------------------------------------------------ direct reply-to
		{"basic.direct-reply-to", func(r *run) {
			ch := r.Ch()
			q := basicQ(r, ch, "rpc", nil)
			defer r.del(q)
			client := r.Ch()
			rd, err := client.Consume("amq.rabbitmq.reply-to", "", true, false, false, false, nil)
			r.Say("consume reply-to: %s", E(err))
			r.Say("publish: %s", E(client.Publish("", q, false, false, amqp.Publishing{ReplyTo: "amq.rabbitmq.reply-to", CorrelationId: "c1", Body: []byte("req")})))
			sd, _ := ch.Consume(q, "srv", true, false, false, false, nil)
			req := recv(sd)
			if req == nil {
				r.Say("server got nothing")
				return
			}
			r.Say("server got: replyto-prefix=%v", strings.HasPrefix(req.ReplyTo, "amq.rabbitmq.reply-to."))
			r.Say("reply: %s", E(ch.Publish("", req.ReplyTo, false, false, amqp.Publishing{CorrelationId: req.CorrelationId, Body: []byte("resp")})))
			if m := recv(rd); m != nil {
				r.Say("reply: %s corr=%s ex=%q rk-prefix=%v redeliv=%v tag=%d", m.Body, m.CorrelationId, m.Exchange, strings.HasPrefix(m.RoutingKey, "amq.rabbitmq.reply-to"), m.Redelivered, m.DeliveryTag)
			} else {
				r.Say("no reply")
			}
			// a reply to a token nobody holds
			ch2, cl2 := r.ChCl()
			rc := ch2.NotifyReturn(make(chan amqp.Return, 1))
			r.Say("reply bogus: %s", E(ch2.Publish("", "amq.rabbitmq.reply-to.bogus", true, false, amqp.Publishing{Body: []byte("x")})))
			r.Say("bogus closed: %s", r.State(ch2, cl2))
			r.Say("bogus: %s", returned(rc))
			// a passive declaration of the pseudo-queue
			_, err = client.QueueDeclarePassive("amq.rabbitmq.reply-to", false, false, false, false, nil)
			r.Say("passive declare: %s", E(err))
		}},

		{"basic.direct-reply-to-errors", func(r *run) {
			c, cl := r.ChCl()
			_, err := c.Consume("amq.rabbitmq.reply-to", "", false, false, false, false, nil)
			r.Say("consume ack mode: %s", E(err))
			r.Say("closed: %s", r.State(c, cl))
			c, cl = r.ChCl()
			r.Say("publish without consumer: %s", E(c.Publish("", "whatever", false, false, amqp.Publishing{ReplyTo: "amq.rabbitmq.reply-to", Body: []byte("x")})))
			r.Say("closed: %s", r.State(c, cl))
			c, cl = r.ChCl()
			_, err = c.Consume("amq.rabbitmq.reply-to", "a", true, false, false, false, nil)
			r.Say("first: %s", E(err))
			_, err = c.Consume("amq.rabbitmq.reply-to", "b", true, false, false, false, nil)
			r.Say("second: %s", E(err))
			r.Say("closed: %s", r.State(c, cl))
			c, cl = r.ChCl()
			_, err = c.Consume("amq.rabbitmq.reply-to", "a", true, false, false, false, nil)
			r.Say("again: %s", E(err))
			r.Say("cancel: %s", E(c.Cancel("a", false)))
			r.Say("publish after cancel: %s", E(c.Publish("", "whatever", false, false, amqp.Publishing{ReplyTo: "amq.rabbitmq.reply-to", Body: []byte("x")})))
			r.Say("closed: %s", r.State(c, cl))
		}},

		// Reduced: a basic.get or a passive queue.declare right after an
		// unconfirmed publish to a quorum queue finds the message on Ferry,
		// and on RabbitMQ only if the queue applied it first (a race), so
		// only the classic queue, where RabbitMQ orders them too, is kept.
		{"basic.get-right-after-publish", func(r *run) {
			ch := r.Ch()
			cq := basicCQ(r, ch, "cq")
			defer r.del(cq)
			empties := 0
			for i := 0; i < 20; i++ {
				_ = ch.Publish("", cq, false, false, amqp.Publishing{Body: []byte("m")})
				if _, ok, _ := ch.Get(cq, true); !ok {
					empties++
				}
			}
			r.Say("classic: %d/20 empty", empties)
		}},

		{"basic.tx-consume-ack-then-close", func(r *run) {
			ch := r.Ch()
			q := basicQ(r, ch, "q", nil)
			defer r.del(q)
			r.pub(q, "a")
			r.pub(q, "b")
			r.Say("count: %s", r.count(q))
			conn := r.Dial()
			c, _ := conn.Channel()
			_ = c.Tx()
			d, _ := c.Consume(q, "c", false, false, false, false, nil)
			r.Say("got: %s", basicDesc(recvN(d, 2)))
			r.Say("ack all: %s", E(c.Ack(0, true)))
			r.Say("channel close: %s", E(c.Close()))
			r.Say("count after channel close: %s", r.waitCount(q, "msgs=2 consumers=0"))
			// A consumer on another channel of the connection gets them.
			c2, _ := conn.Channel()
			d2, _ := c2.Consume(q, "c2", true, false, false, false, nil)
			r.Say("same-conn new channel got: %s", basicDesc(recvN(d2, 2)))
		}},

		{"basic.consume-exclusive-classic", func(r *run) {
			ch := r.Ch()
			q := basicCQ(r, ch, "q")
			defer r.del(q)
			c3 := exclusiveConsumers(r, ch, q)
			c5, cl5 := r.ChCl()
			_, err := c5.Consume(q, "excl2", false, true, false, false, nil)
			r.Say("second exclusive: %s", E(err))
			r.Say("closed: %s", r.State(c5, cl5))
			_, err = c3.Consume(q, "same-ch", false, false, false, false, nil)
			r.Say("second consumer same channel: %s", E(err))
			r.Say("cancel excl: %s", E(c3.Cancel("excl", false)))
			c6 := r.Ch()
			_, err = c6.Consume(q, "after", false, false, false, false, nil)
			r.Say("consume after exclusive cancelled: %s", E(err))
		}},

		{"basic.nack-requeue-order-classic", func(r *run) {
			ch := r.Ch()
			q := basicCQ(r, ch, "q")
			defer r.del(q)
			for _, b := range []string{"A", "B", "C"} {
				r.pub(q, b)
			}
			r.Say("count: %s", r.count(q))
			c := r.Ch()
			a, _, _ := c.Get(q, false)
			b, _, _ := c.Get(q, false)
			r.Say("got %s %s", a.Body, b.Body)
			r.Say("nack B requeue: %s", E(b.Nack(false, true)))
			r.Say("nack A requeue: %s", E(a.Nack(false, true)))
			r.Say("count: %s", r.waitReady(q, 3))
			var got []string
			for i := 0; i < 3; i++ {
				if m, ok, _ := c.Get(q, true); ok {
					got = append(got, fmt.Sprintf("%s/r%v", m.Body, m.Redelivered))
				}
			}
			r.Say("order after nack: %s", strings.Join(got, " "))
		}},

		{"basic.confirm-nack-reject-publish-classic", func(r *run) {
			ch := r.Ch()
			q := r.N("q")
			_, err := ch.QueueDeclare(q, false, false, false, false, amqp.Table{"x-queue-type": "classic", "x-max-length": int32(1), "x-overflow": "reject-publish"})
			r.Say("declare: %s", E(err))
			defer r.del(q)
			c, pc := confirming(r)
			for i := 0; i < 3; i++ {
				_ = c.Publish("", q, false, false, amqp.Publishing{Body: []byte(fmt.Sprint(i))})
				r.Say("%s", nextConfirm(pc))
			}
			r.Say("count: %s", r.count(q))
		}},

		{"basic.redelivery-headers", func(r *run) {
			ch := r.Ch()
			q := basicQ(r, ch, "q", nil)
			defer r.del(q)
			_ = ch.Publish("", q, false, false, amqp.Publishing{Headers: amqp.Table{"h": "v"}, Body: []byte("x")})
			r.Say("count: %s", r.waitCount(q, "msgs=1 consumers=0"))
			c := r.Ch()
			d, _ := c.Consume(q, "c", false, false, false, false, nil)
			for i := 0; i < 3; i++ {
				m := recv(d)
				if m == nil {
					r.Say("nothing")
					return
				}
				r.Say("delivery %d: r=%v headers=%s", i, m.Redelivered, basicFmtTable(m.Headers))
				if i < 2 {
					_ = m.Nack(false, true)
				} else {
					_ = m.Ack(false)
				}
			}
		}},

		// A cancelled consumer's unacknowledged deliveries stay with the
		// channel, and can be acknowledged or returned.
		{"basic.cancel-noack-pending", func(r *run) {
			ch := r.Ch()
			q := basicQ(r, ch, "q", nil)
			defer r.del(q)
			r.pubN(q, "m", 3)
			r.Say("count: %s", r.count(q))
			c := r.Ch()
			_ = c.Qos(2, 0, false)
			d, _ := c.Consume(q, "c", false, false, false, false, nil)
			r.Say("got: %s", basicDesc(recvN(d, 2)))
			r.Say("cancel: %s", E(c.Cancel("c", false)))
			r.Say("count after cancel: %s", r.count(q))
			r.Say("nack 1 requeue: %s", E(c.Nack(1, false, true)))
			r.Say("ack 2: %s", E(c.Ack(2, false)))
			r.Say("count: %s", r.waitCount(q, "msgs=2 consumers=0"))
			_, err := c.QueueDeclarePassive(q, true, false, false, false, nil)
			r.Say("channel ok: %s", E(err))
		}},

		{"basic.qos-zero-and-raise", func(r *run) {
			ch := r.Ch()
			q := basicQ(r, ch, "q", nil)
			defer r.del(q)
			r.pubN(q, "m", 6)
			r.Say("count: %s", r.count(q))
			c := r.Ch()
			r.Say("qos 1: %s", E(c.Qos(1, 0, false)))
			d, _ := c.Consume(q, "c", false, false, false, false, nil)
			r.Say("with 1: %d", len(recvN(d, 1)))
			d2, _ := c.Consume(q, "c2", false, false, false, false, nil)
			r.Say("second consumer with 1: %d", len(recvN(d2, 1)))
			r.Say("count: %s", r.count(q))
			r.Say("qos 0: %s", E(c.Qos(0, 0, false)))
			d3, _ := c.Consume(q, "c3", false, false, false, false, nil)
			r.Say("third consumer unlimited: %d", len(recvN(d3, 4)))
			more, err := cancelDrain(c, "c", d)
			r.Say("cancel first: %s, more: %d", E(err), len(more))
		}},

		{"basic.consume-nowait-missing", func(r *run) {
			c, cl := r.ChCl()
			_, err := c.Consume(r.N("nope"), "c", false, false, false, true, nil)
			r.Say("consume nowait: %s", E(err))
			r.Say("closed: %s", r.State(c, cl))
			ch := r.Ch()
			q := basicQ(r, ch, "q", nil)
			defer r.del(q)
			c = r.Ch()
			d, err := c.Consume(q, "c", false, false, false, true, nil)
			r.Say("consume nowait ok: %s", E(err))
			r.pub(q, "x")
			r.Say("got: %v", recv(d) != nil)
			r.Say("cancel nowait: %s", E(c.Cancel("c", true)))
			// y is published on another connection: the fence makes sure
			// the cancel was handled first.
			r.Say("fence: %s", E(r.Fence(c)))
			r.pub(q, "y")
			r.Say("count: %s", r.count(q))
		}},

		{"basic.get-exclusive-consumed-classic", func(r *run) {
			ch := r.Ch()
			q := basicCQ(r, ch, "q")
			defer r.del(q)
			r.pub(q, "a")
			r.pub(q, "b")
			c := r.Ch()
			_ = c.Qos(1, 0, false)
			_, err := c.Consume(q, "ex", false, true, false, false, nil)
			r.Say("exclusive consume: %s", E(err))
			g, cl := r.ChCl()
			m, ok, err := g.Get(q, true)
			r.Say("get: ok=%v %s %s", ok, E(err), m.Body)
			r.Say("closed: %s", r.State(g, cl))
		}},

		{"basic.tx-get-before-commit", func(r *run) {
			ch := r.Ch()
			q := basicQ(r, ch, "q", nil)
			defer r.del(q)
			c := r.Ch()
			_ = c.Tx()
			_ = c.Publish("", q, false, false, amqp.Publishing{Body: []byte("t")})
			_, ok, err := c.Get(q, true)
			r.Say("get before commit: ok=%v %s", ok, E(err))
			r.Say("commit: %s", E(c.TxCommit()))
			m, ok, err := c.Get(q, true)
			r.Say("get after commit: ok=%v %s %s", ok, E(err), m.Body)
		}},

		{"basic.direct-reply-to-other-channel", func(r *run) {
			ch := r.Ch()
			q := basicQ(r, ch, "rpc", nil)
			defer r.del(q)
			conn := r.Dial()
			a, _ := conn.Channel()
			b, _ := conn.Channel()
			clb := b.NotifyClose(make(chan *amqp.Error, 1))
			_, err := a.Consume("amq.rabbitmq.reply-to", "", true, false, false, false, nil)
			r.Say("consume on a: %s", E(err))
			_ = b.Publish("", q, false, false, amqp.Publishing{ReplyTo: "amq.rabbitmq.reply-to", Body: []byte("x")})
			r.Say("publish on b: %s", r.State(b, clb))
			// reply-to with a suffix, published from a channel that consumes
			_, _ = ch.Consume("amq.rabbitmq.reply-to", "", true, false, false, false, nil)
			pc := ch.NotifyPublish(make(chan amqp.Confirmation, 1))
			_ = ch.Confirm(false)
			err = ch.Publish("", q, false, false, amqp.Publishing{ReplyTo: "amq.rabbitmq.reply-to.x", Body: []byte("y")})
			r.Say("publish with other reply-to: %s", E(err))
			select {
			case cf := <-pc:
				r.Say("confirm: %v", cf.Ack)
			case <-time.After(patience):
				r.Say("no confirm")
			}
			var s []string
			for {
				m, ok, err := r.admin().Get(q, true)
				if err != nil || !ok {
					break
				}
				s = append(s, fmt.Sprintf("%s:%v", m.Body, strings.HasPrefix(m.ReplyTo, "amq.rabbitmq.reply-to")))
			}
			r.Say("requests: %s", strings.Join(s, " "))
		}},

		{"basic.reject-to-dlx", func(r *run) {
			ch := r.Ch()
			dlq := basicQ(r, ch, "dlq", nil)
			q := basicQ(r, ch, "q", amqp.Table{"x-dead-letter-exchange": "", "x-dead-letter-routing-key": dlq})
			defer r.del(q, dlq)
			_ = ch.Publish("", q, false, false, amqp.Publishing{MessageId: "m1", Headers: amqp.Table{"k": "v"}, Body: []byte("r")})
			r.Say("count: %s", r.waitCount(q, "msgs=1 consumers=0"))
			m, ok, _ := ch.Get(q, false)
			r.Say("got: %v", ok)
			r.Say("reject: %s", E(m.Reject(false)))
			r.Say("dlq: %s", r.waitCount(dlq, "msgs=1 consumers=0"))
			d, ok, _ := ch.Get(dlq, true)
			if !ok {
				r.Say("dlq empty")
				return
			}
			death, _ := d.Headers["x-death"].([]any)
			var reason, queue, count any
			if len(death) > 0 {
				if tb, ok := death[0].(amqp.Table); ok {
					reason, queue, count = tb["reason"], tb["queue"] == q, tb["count"]
				}
			}
			r.Say("dead: mid=%s r=%v reason=%v queue-ok=%v count=%T(%v) k=%v first-reason=%v", d.MessageId, d.Redelivered, reason, queue, count, count, d.Headers["k"], d.Headers["x-first-death-reason"])
		}},
	}
}

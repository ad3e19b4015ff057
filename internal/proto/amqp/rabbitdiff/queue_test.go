package rabbitdiff

import (
	"fmt"
	"sort"
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// queueFmt renders a header value with its type, table keys sorted and
// the scenario's name replaced by P (it is in x-death's queue names).
func queueFmt(r *run, v any) string {
	switch x := v.(type) {
	case nil:
		return "nil"
	case amqp.Table:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var b []string
		for _, k := range keys {
			b = append(b, k+"="+queueFmt(r, x[k]))
		}
		return "{" + strings.Join(b, ",") + "}"
	case []any:
		var b []string
		for _, e := range x {
			b = append(b, queueFmt(r, e))
		}
		return "[" + strings.Join(b, ",") + "]"
	case string:
		return fmt.Sprintf("str(%s)", strings.ReplaceAll(x, r.prefix+".", "P."))
	case []byte:
		return fmt.Sprintf("bytes(%s)", string(x))
	case time.Time:
		return "time"
	default:
		return fmt.Sprintf("%T(%v)", v, v)
	}
}

// queueHdrs renders headers with queueFmt; x-last-death-* (added by
// RabbitMQ 3.13, not 3.10) are left out.
func queueHdrs(r *run, h amqp.Table) string {
	c := amqp.Table{}
	for k, v := range h {
		if !strings.HasPrefix(k, "x-last-death-") {
			c[k] = v
		}
	}
	return queueFmt(r, c)
}

// queueQ returns queue arguments: x-queue-type kind (none when empty) and extra.
func queueQ(kind string, extra amqp.Table) amqp.Table {
	a := amqp.Table{}
	if kind != "" {
		a["x-queue-type"] = kind
	}
	for k, v := range extra {
		a[k] = v
	}
	return a
}

func queueDeclare(r *run, ch *amqp.Channel, name string, args amqp.Table) {
	q, err := ch.QueueDeclare(name, true, false, false, false, args)
	r.Say("declare %s: %s msgs=%d cons=%d", strings.ReplaceAll(name, r.prefix+".", "P."), E(err), q.Messages, q.Consumers)
}

// queueDrainGet gets messages until the queue is empty, and says their bodies.
func queueDrainGet(r *run, ch *amqp.Channel, q, label string) {
	var bodies []string
	for i := 0; i < 50; i++ {
		m, ok, err := ch.Get(q, true)
		if err != nil {
			r.Say("%s get: %s", label, E(err))
			return
		}
		if !ok {
			break
		}
		bodies = append(bodies, string(m.Body))
	}
	r.Say("%s got %v", label, bodies)
}

func queueShowMsg(r *run, label string, m *amqp.Delivery) {
	if m == nil {
		r.Say("%s: none", label)
		return
	}
	r.Say("%s: body=%q ex=%s rk=%s redeliv=%v exp=%q prio=%d mode=%d ctype=%q", label, m.Body,
		queueFmt(r, m.Exchange), queueFmt(r, m.RoutingKey), m.Redelivered, m.Expiration, m.Priority, m.DeliveryMode, m.ContentType)
	r.Say("%s headers: %s", label, queueHdrs(r, m.Headers))
}

func queueGet(r *run, ch *amqp.Channel, q, label string) {
	m, ok, err := ch.Get(q, true)
	switch {
	case err != nil:
		r.Say("%s get: %s", label, E(err))
	case !ok:
		r.Say("%s: empty", label)
	default:
		queueShowMsg(r, label, &m)
	}
}

// queueConfirms publishes bodies to q on ch, in confirm mode, one at a
// time, and returns each one's outcome as "TAG:ACK".
func queueConfirms(ch *amqp.Channel, cf chan amqp.Confirmation, q string, bodies ...string) []string {
	var out []string
	for _, b := range bodies {
		if err := ch.Publish("", q, false, false, amqp.Publishing{Body: []byte(b)}); err != nil {
			out = append(out, "publish "+E(err))
			continue
		}
		select {
		case c := <-cf:
			out = append(out, fmt.Sprintf("%d:%v", c.DeliveryTag, c.Ack))
		case <-time.After(patience):
			out = append(out, "no confirm")
		}
	}
	return out
}

func queueScenarios() []scenario {
	var out []scenario
	for _, kind := range []string{"quorum", "classic"} {
		out = append(out, queueByKind(kind)...)
	}
	out = append(out, queueBadArgs()...)
	return append(out, queueOthers()...)
}

// queueByKind returns the scenarios run on both queue types.
func queueByKind(kind string) []scenario {
	return []scenario{
		{"queue.basics." + kind, func(r *run) {
			ch := r.Ch()
			_, err := ch.QueueDeclarePassive(r.N("missing"), true, false, false, false, nil)
			r.Say("passive missing: %s", E(err))
			ch = r.Ch()
			q := r.N("q")
			queueDeclare(r, ch, q, queueQ(kind, nil))
			for i := 0; i < 3; i++ {
				_ = ch.Publish("", q, false, false, amqp.Publishing{Body: []byte(fmt.Sprint(i))})
			}
			// RabbitMQ's quorum queues count unconfirmed publishes only
			// once they applied them.
			r.waitReady(q, 3)
			p, err := ch.QueueDeclarePassive(q, true, false, false, false, nil)
			r.Say("passive: %s msgs=%d cons=%d", E(err), p.Messages, p.Consumers)
			ch2 := r.Ch()
			_, err = ch2.Consume(q, "c1", false, false, false, false, nil)
			r.Say("consume: %s", E(err))
			r.waitCount(q, "msgs=0 consumers=1")
			p, err = ch.QueueDeclarePassive(q, true, false, false, false, nil)
			r.Say("passive w/consumer: %s msgs=%d cons=%d", E(err), p.Messages, p.Consumers)
			p, err = ch.QueueDeclare(q, true, false, false, false, queueQ(kind, nil))
			r.Say("redeclare: %s msgs=%d cons=%d", E(err), p.Messages, p.Consumers)
			_ = ch2.Close()
			r.waitCount(q, "msgs=3 consumers=0")
			p, err = ch.QueueDeclarePassive(q, true, false, false, false, nil)
			r.Say("passive after consumer close: %s msgs=%d cons=%d", E(err), p.Messages, p.Consumers)
			var n int
			if kind == "classic" {
				n, err = ch.QueueDelete(q, false, true, false)
				r.Say("delete if-empty: %s n=%d", E(err), n)
				ch = r.Ch()
			}
			n, err = ch.QueuePurge(q, false)
			r.Say("purge: %s n=%d", E(err), n)
			n, err = ch.QueuePurge(q, false)
			r.Say("purge again: %s n=%d", E(err), n)
			r.pub(q, "x")
			r.pub(q, "y")
			ch3 := r.Ch()
			_, err = ch3.Consume(q, "c2", false, false, false, false, nil)
			r.Say("consume: %s", E(err))
			if kind == "classic" {
				n, err = ch.QueueDelete(q, true, false, false)
				r.Say("delete if-unused: %s n=%d", E(err), n)
				ch = r.Ch()
			}
			_ = ch3.Close()
			r.waitCount(q, "msgs=2 consumers=0")
			if kind == "classic" {
				n, err = ch.QueueDelete(q, true, false, false)
			} else {
				n, err = ch.QueueDelete(q, false, false, false)
			}
			r.Say("delete (no consumer): %s n=%d", E(err), n)
			n, err = ch.QueueDelete(q, false, false, false)
			r.Say("delete missing: %s n=%d", E(err), n)
			ch = r.Ch()
			n, err = ch.QueuePurge(q, false)
			r.Say("purge missing: %s n=%d", E(err), n)
		}},

		{"queue.ttl-dlx." + kind, func(r *run) {
			ch := r.Ch()
			q, dlq := r.N("q"), r.N("dlq")
			queueDeclare(r, ch, dlq, queueQ(kind, nil))
			queueDeclare(r, ch, q, queueQ(kind, amqp.Table{"x-message-ttl": int32(20), "x-dead-letter-exchange": "", "x-dead-letter-routing-key": dlq}))
			r.publish(q, "a", amqp.Publishing{ContentType: "text/plain", DeliveryMode: 2, Headers: amqp.Table{"h": "v", "CC": []any{"nothere"}}})
			r.publish(q, "b", amqp.Publishing{Expiration: "60000"})
			// Both expire after the queue's 20 ms.
			r.Say("dlq: %s", r.waitReady(dlq, 2))
			p, err := ch.QueueDeclarePassive(q, true, false, false, false, nil)
			r.Say("q passive: %s msgs=%d", E(err), p.Messages)
			queueGet(r, ch, q, "q")
			queueGet(r, ch, dlq, "dlq1")
			queueGet(r, ch, dlq, "dlq2")
			queueGet(r, ch, dlq, "dlq3")
		}},

		// A message's expiration: short expires alone at the head of the
		// queue. Then zero, behind long and none: RabbitMQ expires a
		// message only once it reaches the head, Ferry when its time comes
		// wherever it waits. Which one happened is polled for, up to
		// patience, which RabbitMQ reaches.
		{"queue.expiration." + kind, func(r *run) {
			ch := r.Ch()
			q, dlq := r.N("q"), r.N("dlq")
			queueDeclare(r, ch, dlq, queueQ(kind, nil))
			queueDeclare(r, ch, q, queueQ(kind, amqp.Table{"x-dead-letter-exchange": "", "x-dead-letter-routing-key": dlq}))
			r.publish(q, "short", amqp.Publishing{Expiration: "20"})
			r.Say("dlq: %s", r.waitReady(dlq, 1))
			queueGet(r, ch, dlq, "dlq1")
			r.publish(q, "long", amqp.Publishing{Expiration: "60000"})
			r.publish(q, "none", amqp.Publishing{})
			r.publish(q, "zero", amqp.Publishing{Expiration: "0"})
			r.Say("q with zero behind the others: %s", r.waitReady(q, 2))
			queueGet(r, ch, q, "q1")
			queueGet(r, ch, q, "q2")
			queueGet(r, ch, q, "q3")
			r.Say("dlq: %s", r.waitReady(dlq, 1))
			queueGet(r, ch, dlq, "dlq2")
			queueGet(r, ch, dlq, "dlq3")
			_ = ch.Publish("", q, false, false, amqp.Publishing{Expiration: "abc", Body: []byte("bad")})
			_, err := ch.QueueDeclarePassive(q, true, false, false, false, nil)
			r.Say("after bad expiration: %s", E(err))
			ch = r.Ch()
			_ = ch.Publish("", q, false, false, amqp.Publishing{Expiration: "-5", Body: []byte("neg")})
			_, err = ch.QueueDeclarePassive(q, true, false, false, false, nil)
			r.Say("after negative expiration: %s", E(err))
		}},

		{"queue.reject-dlx." + kind, func(r *run) {
			ch := r.Ch()
			q1, q2 := r.N("q1"), r.N("q2")
			dlx := r.N("dlx")
			if err := ch.ExchangeDeclare(dlx, "topic", false, true, false, false, nil); err != nil {
				r.Say("xdecl %s", E(err))
			}
			queueDeclare(r, ch, q1, queueQ(kind, amqp.Table{"x-dead-letter-exchange": dlx}))
			queueDeclare(r, ch, q2, queueQ(kind, amqp.Table{"x-dead-letter-exchange": "", "x-dead-letter-routing-key": q1}))
			_ = ch.QueueBind(q2, "#", dlx, false, nil)
			r.publish(q1, "m", amqp.Publishing{Headers: amqp.Table{"CC": []any{"cc1"}}, Expiration: "60000"})
			// rejected from q1, through dlx, to q2
			m, ok, err := ch.Get(q1, false)
			r.Say("get q1: %s %v", E(err), ok)
			if ok {
				r.Say("reject: %s", E(m.Reject(false)))
			}
			c2 := r.Ch()
			dd, err := c2.Consume(q2, "", false, false, false, false, nil)
			r.Say("consume q2: %s", E(err))
			d := recv(dd)
			queueShowMsg(r, "q2 first", d)
			if d != nil {
				r.Say("nack: %s", E(d.Nack(false, false)))
			}
			// nacked from q2, back to q1
			r.waitReady(q1, 1)
			m, ok, err = ch.Get(q1, false)
			r.Say("get q1 again: %s %v", E(err), ok)
			if ok {
				queueShowMsg(r, "q1 second", &m)
				r.Say("nack: %s", E(m.Nack(false, false)))
			}
			d = recv(dd)
			queueShowMsg(r, "q2 second", d)
			if d != nil {
				_ = d.Ack(false)
			}
		}},

		{"queue.maxlen-drophead." + kind, func(r *run) {
			ch := r.Ch()
			q, dlq := r.N("q"), r.N("dlq")
			queueDeclare(r, ch, dlq, queueQ(kind, nil))
			queueDeclare(r, ch, q, queueQ(kind, amqp.Table{"x-max-length": int32(2), "x-dead-letter-exchange": "", "x-dead-letter-routing-key": dlq}))
			_ = ch.Confirm(false)
			cf := ch.NotifyPublish(make(chan amqp.Confirmation, 10))
			for i := 1; i <= 4; i++ {
				_ = ch.Publish("", q, false, false, amqp.Publishing{Body: []byte(fmt.Sprint(i))})
			}
			var acks []bool
			for i := 0; i < 4; i++ {
				select {
				case c := <-cf:
					acks = append(acks, c.Ack)
				case <-time.After(patience):
				}
			}
			r.Say("confirms %v", acks)
			p, _ := ch.QueueDeclarePassive(q, true, false, false, false, nil)
			r.Say("q msgs=%d", p.Messages)
			queueDrainGet(r, ch, q, "q")
			// The dropped heads are dead-lettered after the publishes'
			// confirms.
			r.waitReady(dlq, 2)
			queueGet(r, ch, dlq, "dlq1")
			queueGet(r, ch, dlq, "dlq2")
			queueGet(r, ch, dlq, "dlq3")
		}},

		// Published one at a time: RabbitMQ's quorum queues learn that they
		// are full after taking the message that fills them, so what
		// pipelined publishes find depends on timing.
		{"queue.maxlen-reject-publish." + kind, func(r *run) {
			ch := r.Ch()
			q, dlq := r.N("q"), r.N("dlq")
			queueDeclare(r, ch, dlq, queueQ(kind, nil))
			queueDeclare(r, ch, q, queueQ(kind, amqp.Table{"x-max-length": int32(2), "x-overflow": "reject-publish", "x-dead-letter-exchange": "", "x-dead-letter-routing-key": dlq}))
			_ = ch.Confirm(false)
			cf := ch.NotifyPublish(make(chan amqp.Confirmation, 10))
			r.Say("confirms %v", queueConfirms(ch, cf, q, "1", "2", "3", "4"))
			// another channel, in confirm mode too
			ch2 := r.Ch()
			_ = ch2.Confirm(false)
			cf2 := ch2.NotifyPublish(make(chan amqp.Confirmation, 1))
			r.Say("other channel: %v", queueConfirms(ch2, cf2, q, "5"))
			queueDrainGet(r, ch, q, "q")
			queueDrainGet(r, ch, dlq, "dlq")
			// drained: room again
			r.Say("confirm after drain: %v", queueConfirms(ch, cf, q, "6"))
		}},

		{"queue.maxlenbytes." + kind, func(r *run) {
			ch := r.Ch()
			q := r.N("q")
			queueDeclare(r, ch, q, queueQ(kind, amqp.Table{"x-max-length-bytes": int32(10)}))
			for _, b := range []string{"aaaa", "bbbb", "cccc", ""} {
				r.pub(q, b)
			}
			p, _ := ch.QueueDeclarePassive(q, true, false, false, false, nil)
			r.Say("q msgs=%d", p.Messages)
			queueDrainGet(r, ch, q, "q")
			r.pub(q, "0123456789A")
			queueDrainGet(r, ch, q, "q big")
			rq := r.N("r")
			queueDeclare(r, ch, rq, queueQ(kind, amqp.Table{"x-max-length-bytes": int32(10), "x-overflow": "reject-publish"}))
			_ = ch.Confirm(false)
			cf := ch.NotifyPublish(make(chan amqp.Confirmation, 10))
			r.Say("confirms %v", queueConfirms(ch, cf, rq, "aaaa", "bbbb", "cccc", "0123456789AB"))
			queueDrainGet(r, ch, rq, "r")
		}},

		// x-expires, against time: touched is declared passively again and
		// again, consumed has a consumer, idle neither, and expires long
		// after the others would if nothing kept them: its x-expires
		// exceeds theirs by more than RabbitMQ's quorum-queue tick (5 s),
		// at which RabbitMQ checks a quorum queue's expiry, so the order
		// does not depend on when the ticks fall.
		{"queue.xexpires." + kind, func(r *run) {
			idleMs := int32(6000)
			if kind == "quorum" {
				idleMs = 10000
			}
			ch := r.Ch()
			cc := r.Ch()
			touched, consumed, idle := r.N("touched"), r.N("consumed"), r.N("idle")
			// 3 s are far more than the time between two declarations of
			// touched, or between consumed's declaration and its consumer,
			// even on a loaded machine.
			queueDeclare(r, ch, touched, queueQ(kind, amqp.Table{"x-expires": int32(3000)}))
			queueDeclare(r, ch, consumed, queueQ(kind, amqp.Table{"x-expires": int32(3000)}))
			_, err := cc.Consume(consumed, "", false, false, false, false, nil)
			r.Say("consume: %s", E(err))
			queueDeclare(r, ch, idle, queueQ(kind, amqp.Table{"x-expires": idleMs}))
			var touchErr error
			r.waitForWithin(expiryPatience, func() bool {
				_, touchErr = ch.QueueDeclarePassive(touched, true, false, false, false, nil)
				return touchErr != nil || !r.exists(idle)
			})
			r.Say("touched: %s", E(touchErr))
			r.Say("idle: %s", r.gone(idle, expiryPatience))
			r.Say("consumed: exists=%v", r.exists(consumed))
			_ = cc.Close()
			r.Say("consumed, after its consumer left: %s", r.gone(consumed, expiryPatience))
			r.Say("touched, left alone: %s", r.gone(touched, expiryPatience))
		}},

		{"queue.sac." + kind, func(r *run) {
			ch := r.Ch()
			q := r.N("q")
			queueDeclare(r, ch, q, queueQ(kind, amqp.Table{"x-single-active-consumer": true}))
			c1, c2 := r.Ch(), r.Ch()
			_ = c1.Qos(10, 0, false)
			_ = c2.Qos(10, 0, false)
			d1, err := c1.Consume(q, "c1", false, false, false, false, nil)
			r.Say("c1: %s", E(err))
			d2, err := c2.Consume(q, "c2", false, false, false, false, nil)
			r.Say("c2: %s", E(err))
			p, _ := ch.QueueDeclarePassive(q, true, false, false, false, nil)
			r.Say("consumers=%d", p.Consumers)
			for i := 1; i <= 3; i++ {
				r.pub(q, fmt.Sprint(i))
			}
			var got1 []string
			for _, m := range recvN(d1, 3) {
				got1 = append(got1, string(m.Body))
			}
			r.Say("c1 got %v", got1)
			// c1's deliveries stay unacknowledged with it.
			r.Say("cancel c1: %s", E(c1.Cancel("c1", false)))
			r.pub(q, "4")
			// c2 gets 4; what it got before 4 came before it.
			var before []string
			newMsg := false
			for m := recv(d2); m != nil; m = recv(d2) {
				if string(m.Body) == "4" {
					newMsg = true
					break
				}
				before = append(before, fmt.Sprintf("%s/redeliv=%v", m.Body, m.Redelivered))
			}
			r.Say("c2 got %v before the new message", before)
			r.Say("c2 new msg: %v", newMsg)
			c3 := r.Ch()
			_, err = c3.Consume(q, "c3", false, true, false, false, nil)
			r.Say("exclusive consume on SAC with consumer: %s", E(err))
		}},

		// The TTL passes while m is unacknowledged: s, published just
		// after it, expires first, and then m is returned. The TTL is far
		// more than the time between m's publish and its basic.get.
		{"queue.ttl-requeue." + kind, func(r *run) {
			ch := r.Ch()
			q, dlq := r.N("q"), r.N("dlq")
			queueDeclare(r, ch, dlq, queueQ(kind, nil))
			queueDeclare(r, ch, q, queueQ(kind, amqp.Table{"x-message-ttl": int32(2000), "x-dead-letter-exchange": "", "x-dead-letter-routing-key": dlq}))
			r.pub(q, "m")
			m, ok, _ := ch.Get(q, false)
			r.Say("got %v", ok)
			r.pub(q, "s")
			r.Say("s expired: %s", r.waitReady(dlq, 1))
			if ok {
				r.Say("nack requeue: %s", E(m.Nack(false, true)))
			}
			r.Say("m expired: %s", r.waitReady(dlq, 2))
			queueDrainGet(r, ch, q, "q")
			queueGet(r, ch, dlq, "dlq")
			queueGet(r, ch, dlq, "dlq")
		}},

		{"queue.purge-unacked." + kind, func(r *run) {
			ch := r.Ch()
			q := r.N("q")
			queueDeclare(r, ch, q, queueQ(kind, nil))
			for i := 0; i < 4; i++ {
				r.pub(q, fmt.Sprint(i))
			}
			c := r.Dial()
			cch, err := c.Channel()
			if err != nil {
				r.abort("channel: %v", err)
			}
			_ = cch.Qos(2, 0, false)
			dd, _ := cch.Consume(q, "", false, false, false, false, nil)
			r.Say("consumer got %d", len(recvN(dd, 2)))
			p, _ := ch.QueueDeclarePassive(q, true, false, false, false, nil)
			r.Say("before purge msgs=%d cons=%d", p.Messages, p.Consumers)
			n, err := ch.QueuePurge(q, false)
			r.Say("purge: %s n=%d", E(err), n)
			_ = c.Close()
			r.Say("after close %s", r.waitCount(q, "msgs=2 consumers=0"))
			queueDrainGet(r, ch, q, "q")
		}},

		// The nacks' requeues are polled for until both messages are back,
		// as Ferry keeps them; RabbitMQ drops from the head to keep the
		// limit, and reaches patience.
		{"queue.maxlen-unacked." + kind, func(r *run) {
			ch := r.Ch()
			q := r.N("q")
			queueDeclare(r, ch, q, queueQ(kind, amqp.Table{"x-max-length": int32(2)}))
			r.pub(q, "1")
			r.pub(q, "2")
			m1, _, _ := ch.Get(q, false)
			m2, _, _ := ch.Get(q, false)
			for i := 3; i <= 5; i++ {
				r.pub(q, fmt.Sprint(i))
			}
			p, _ := ch.QueueDeclarePassive(q, true, false, false, false, nil)
			r.Say("msgs=%d", p.Messages)
			_ = m1.Nack(false, true)
			_ = m2.Nack(false, true)
			r.Say("after requeue %s", r.waitReady(q, 4))
			queueDrainGet(r, ch, q, "q")
		}},

		{"queue.dlx-missing-exchange." + kind, func(r *run) {
			ch := r.Ch()
			q := r.N("q")
			queueDeclare(r, ch, q, queueQ(kind, amqp.Table{"x-dead-letter-exchange": r.N("nox")}))
			r.pub(q, "m")
			m, ok, _ := ch.Get(q, false)
			if ok {
				r.Say("reject: %s", E(m.Reject(false)))
			}
			r.Say("after: %s", r.waitCount(q, "msgs=0 consumers=0"))
		}},

		// Dead-letter cycles: a message that expires back into a queue it
		// expired from is dropped; a rejection in the cycle lets it go on.
		{"queue.dlx-cycle." + kind, func(r *run) {
			ch := r.Ch()
			q1, q2 := r.N("q1"), r.N("q2")
			queueDeclare(r, ch, q1, queueQ(kind, amqp.Table{"x-message-ttl": int32(20), "x-dead-letter-exchange": "", "x-dead-letter-routing-key": q2}))
			queueDeclare(r, ch, q2, queueQ(kind, amqp.Table{"x-message-ttl": int32(20), "x-dead-letter-exchange": "", "x-dead-letter-routing-key": q1}))
			r.pub(q1, "m")
			r.waitFor(func() bool { return r.count(q1) == "msgs=0 consumers=0" && r.count(q2) == "msgs=0 consumers=0" })
			r.Say("q1=%s q2=%s", r.count(q1), r.count(q2))
			// with no dead-letter routing key: back into itself
			q3 := r.N("q3")
			queueDeclare(r, ch, q3, queueQ(kind, amqp.Table{"x-message-ttl": int32(20), "x-dead-letter-exchange": ""}))
			r.pub(q3, "m")
			r.Say("q3=%s", r.waitReady(q3, 0))
			q4 := r.N("q4")
			queueDeclare(r, ch, q4, queueQ(kind, amqp.Table{"x-dead-letter-exchange": ""}))
			r.pub(q4, "m")
			for i := 0; i < 3; i++ {
				r.waitReady(q4, 1)
				m, ok, _ := ch.Get(q4, false)
				if !ok {
					r.Say("q4 get %d: empty", i)
					break
				}
				var cnt string
				if xd, ok := m.Headers["x-death"].([]any); ok && len(xd) > 0 {
					if tb, ok := xd[0].(amqp.Table); ok {
						cnt = queueFmt(r, tb["count"])
					}
				}
				r.Say("q4 get %d: count=%s", i, cnt)
				_ = m.Reject(false)
			}
		}},
	}
}

// queueBadArgs returns a scenario per queue argument value that one of
// the brokers might refuse.
func queueBadArgs() []scenario {
	bads := []struct {
		name string
		kind string
		args amqp.Table
	}{
		{"maxlen-string", "quorum", amqp.Table{"x-max-length": "5"}},
		{"maxlen-neg", "quorum", amqp.Table{"x-max-length": int32(-1)}},
		{"maxlen-zero", "quorum", amqp.Table{"x-max-length": int32(0)}},
		{"maxlen-float", "quorum", amqp.Table{"x-max-length": float64(5)}},
		{"maxlen-bool", "quorum", amqp.Table{"x-max-length": true}},
		{"maxlenbytes-neg", "quorum", amqp.Table{"x-max-length-bytes": int64(-5)}},
		{"ttl-neg", "quorum", amqp.Table{"x-message-ttl": int32(-1)}},
		{"ttl-string", "quorum", amqp.Table{"x-message-ttl": "100"}},
		{"ttl-zero", "quorum", amqp.Table{"x-message-ttl": int32(0)}},
		{"ttl-huge", "quorum", amqp.Table{"x-message-ttl": int64(1) << 33}},
		{"expires-zero", "quorum", amqp.Table{"x-expires": int32(0)}},
		{"expires-neg", "quorum", amqp.Table{"x-expires": int32(-10)}},
		{"overflow-unknown", "quorum", amqp.Table{"x-overflow": "drop-tail"}},
		{"overflow-int", "quorum", amqp.Table{"x-overflow": int32(1)}},
		{"overflow-rejectdlx-quorum", "quorum", amqp.Table{"x-overflow": "reject-publish-dlx"}},
		{"dlrk-no-dlx", "quorum", amqp.Table{"x-dead-letter-routing-key": "k"}},
		{"dlx-int", "quorum", amqp.Table{"x-dead-letter-exchange": int32(1)}},
		{"sac-string", "quorum", amqp.Table{"x-single-active-consumer": "true"}},
		{"sac-int", "quorum", amqp.Table{"x-single-active-consumer": int32(1)}},
		{"deliverylimit-neg", "quorum", amqp.Table{"x-delivery-limit": int32(-5)}},
		{"deliverylimit-string", "quorum", amqp.Table{"x-delivery-limit": "3"}},
		{"maxprio-quorum", "quorum", amqp.Table{"x-max-priority": int32(5)}},
		{"maxprio-neg", "classic", amqp.Table{"x-max-priority": int32(-1)}},
		{"maxprio-256", "classic", amqp.Table{"x-max-priority": int32(256)}},
		{"maxprio-string", "classic", amqp.Table{"x-max-priority": "5"}},
		{"maxprio-zero", "classic", amqp.Table{"x-max-priority": int32(0)}},
		{"deliverylimit-classic", "classic", amqp.Table{"x-delivery-limit": int32(3)}},
		{"maxlen-zero-classic", "classic", amqp.Table{"x-max-length": int32(0)}},
		{"ttl-zero-classic", "classic", amqp.Table{"x-message-ttl": int32(0)}},
		{"maxlen-int8", "quorum", amqp.Table{"x-max-length": int8(3)}},
		{"maxlen-uint8", "quorum", amqp.Table{"x-max-length": uint8(3)}},
		{"maxlen-int16", "quorum", amqp.Table{"x-max-length": int16(3)}},
		{"queuemode-bad", "classic", amqp.Table{"x-queue-mode": "fast"}},
		{"queuemode-lazy-quorum", "quorum", amqp.Table{"x-queue-mode": "lazy"}},
		{"queueversion-3", "classic", amqp.Table{"x-queue-version": int32(3)}},
		{"max-age-classic", "classic", amqp.Table{"x-max-age": "1D"}},
		{"unknown-x", "quorum", amqp.Table{"x-whatever": int32(5)}},
		{"dlstrategy-bad", "quorum", amqp.Table{"x-dead-letter-strategy": "never"}},
		{"dlstrategy-alo-quorum", "quorum", amqp.Table{"x-dead-letter-strategy": "at-least-once"}},
		{"initial-group-size-0", "quorum", amqp.Table{"x-quorum-initial-group-size": int32(0)}},
		{"consumer-timeout-neg", "quorum", amqp.Table{"x-consumer-timeout": int32(-1)}},
	}
	var out []scenario
	for _, b := range bads {
		out = append(out, scenario{"queue.badarg." + b.name, func(r *run) {
			ch := r.Ch()
			_, err := ch.QueueDeclare(r.N("q"), true, false, false, false, queueQ(b.kind, b.args))
			r.Say("declare: %s", E(err))
			if err == nil {
				_, _ = ch.QueueDelete(r.N("q"), false, false, false)
			}
		}})
	}
	return out
}

// queueOthers returns the scenarios of one queue type or none.
func queueOthers() []scenario {
	return []scenario{
		{"queue.quorum-flags", func(r *run) {
			ch := r.Ch()
			_, err := ch.QueueDeclare(r.N("nd"), false, false, false, false, queueQ("quorum", nil))
			r.Say("quorum non-durable: %s", E(err))
			ch = r.Ch()
			_, err = ch.QueueDeclare(r.N("ex"), true, false, true, false, queueQ("quorum", nil))
			r.Say("quorum exclusive: %s", E(err))
			ch = r.Ch()
			_, err = ch.QueueDeclare(r.N("ad"), true, true, false, false, queueQ("quorum", nil))
			r.Say("quorum auto-delete: %s", E(err))
			ch = r.Ch()
			_, err = ch.QueueDeclare("", true, false, false, false, queueQ("quorum", nil))
			r.Say("quorum server-named: %s", E(err))
			ch = r.Ch()
			_, err = ch.QueueDeclare(r.N("bad"), true, false, false, false, queueQ("nonsense", nil))
			r.Say("bad queue type: %s", E(err))
			ch = r.Ch()
			_, err = ch.QueueDeclare(r.N("q"), true, false, false, false, queueQ("quorum", nil))
			r.Say("quorum: %s", E(err))
			_, err = ch.QueueDeclare(r.N("q"), true, false, false, false, queueQ("classic", nil))
			r.Say("redeclare as classic: %s", E(err))
			ch = r.Ch()
			_, err = ch.QueueDeclare(r.N("q"), true, false, false, false, nil)
			r.Say("redeclare no type: %s", E(err))
			ch = r.Ch()
			_, err = ch.QueueDeclarePassive(r.N("q"), false, false, false, false, queueQ("classic", nil))
			r.Say("passive with other flags/args: %s", E(err))
			ch = r.Ch()
			_, err = ch.QueueDeclare(r.N("c"), true, false, false, false, nil)
			r.Say("classic: %s", E(err))
			_, err = ch.QueueDeclare(r.N("c"), true, false, false, false, queueQ("classic", nil))
			r.Say("redeclare classic explicit: %s", E(err))
			_, err = ch.QueueDeclare(r.N("c"), true, false, false, false, queueQ("quorum", nil))
			r.Say("redeclare classic as quorum: %s", E(err))
			r.del(r.N("q"), r.N("c"))
		}},

		{"queue.classic-flags", func(r *run) {
			c1 := r.Dial()
			ch, err := c1.Channel()
			if err != nil {
				r.abort("channel: %v", err)
			}
			q, err := ch.QueueDeclare("", false, false, true, false, nil)
			r.Say("server-named: %s prefix=%v", E(err), strings.HasPrefix(q.Name, "amq.gen-"))
			ex := r.N("ex")
			_, err = ch.QueueDeclare(ex, false, false, true, false, nil)
			r.Say("exclusive: %s", E(err))
			ch2 := r.Ch()
			_, err = ch2.QueueDeclare(ex, false, false, true, false, nil)
			r.Say("exclusive from other conn: %s", E(err))
			ch2 = r.Ch()
			_, err = ch2.QueueDeclarePassive(ex, false, false, true, false, nil)
			r.Say("passive exclusive from other conn: %s", E(err))
			ch2 = r.Ch()
			_, err = ch2.Consume(ex, "", false, false, false, false, nil)
			r.Say("consume exclusive from other conn: %s", E(err))
			ch2 = r.Ch()
			_, err = ch2.QueueDelete(ex, false, false, false)
			r.Say("delete exclusive from other conn: %s", E(err))
			ch2 = r.Ch()
			_, err = ch2.QueuePurge(ex, false)
			r.Say("purge exclusive from other conn: %s", E(err))
			ch2 = r.Ch()
			_ = ch2.Confirm(false)
			cf := ch2.NotifyPublish(make(chan amqp.Confirmation, 1))
			r.Say("publish to exclusive from other conn: %v", queueConfirms(ch2, cf, ex, "x"))
			m, ok, err := ch.Get(ex, true)
			r.Say("owner get: %s ok=%v body=%q", E(err), ok, m.Body)
			// the owner redeclares its exclusive queue non-exclusively
			_, err = ch.QueueDeclare(ex, false, false, false, false, nil)
			r.Say("owner redeclare non-exclusive: %s", E(err))
			_ = c1.Close()
			r.Say("after owner closed: %s", r.gone(ex, patience))
			r.Say("server-named after owner closed: %s", r.gone(q.Name, patience))

			// auto-delete
			ch3 := r.Ch()
			ad := r.N("ad")
			_, err = ch3.QueueDeclare(ad, false, true, false, false, nil)
			r.Say("auto-delete: %s", E(err))
			_, err = ch3.QueueDeclarePassive(ad, false, true, false, false, nil)
			r.Say("auto-delete never consumed still there: %s", E(err))
			cc := r.Ch()
			_, err = cc.Consume(ad, "a", false, false, false, false, nil)
			r.Say("consume a: %s", E(err))
			_, err = cc.Consume(ad, "b", false, false, false, false, nil)
			r.Say("consume b: %s", E(err))
			r.Say("cancel a: %s", E(cc.Cancel("a", false)))
			r.Say("after cancel a: %s", r.waitCount(ad, "msgs=0 consumers=1"))
			r.Say("cancel b: %s", E(cc.Cancel("b", false)))
			r.Say("after cancel b: %s", r.gone(ad, patience))
		}},

		{"queue.redeclare-args", func(r *run) {
			ch := r.Ch()
			q := r.N("q")
			queueDeclare(r, ch, q, queueQ("quorum", amqp.Table{"x-max-length": int32(10), "x-message-ttl": int32(60000)}))
			try := func(what string, autoDelete bool, args amqp.Table) {
				_, err := ch.QueueDeclare(q, true, autoDelete, false, false, queueQ("quorum", args))
				r.Say("%s: %s", what, E(err))
				if err != nil {
					ch = r.Ch()
				}
			}
			try("same values, other int width", false, amqp.Table{"x-max-length": int64(10), "x-message-ttl": int32(60000)})
			try("other max-length", false, amqp.Table{"x-max-length": int32(11), "x-message-ttl": int32(60000)})
			try("missing max-length", false, amqp.Table{"x-message-ttl": int32(60000)})
			try("extra unknown arg", false, amqp.Table{"x-max-length": int32(10), "x-message-ttl": int32(60000), "x-foo": "bar"})
			try("extra overflow default", false, amqp.Table{"x-max-length": int32(10), "x-message-ttl": int32(60000), "x-overflow": "drop-head"})
			try("extra dlx", false, amqp.Table{"x-max-length": int32(10), "x-message-ttl": int32(60000), "x-dead-letter-exchange": "dlx"})
			try("max-length as string", false, amqp.Table{"x-max-length": "10", "x-message-ttl": int32(60000)})
			try("auto-delete differs", true, amqp.Table{"x-max-length": int32(10), "x-message-ttl": int32(60000)})
			n, err := ch.QueueDelete(q, false, false, false)
			r.Say("delete: %s n=%d", E(err), n)
			// a classic queue: unknown arguments that differ
			ch = r.Ch()
			c := r.N("c")
			queueDeclare(r, ch, c, amqp.Table{"x-foo": "bar"})
			_, err = ch.QueueDeclare(c, true, false, false, false, amqp.Table{"x-foo": "baz"})
			r.Say("classic unknown arg differs: %s", E(err))
			_, err = ch.QueueDeclare(c, true, false, false, false, amqp.Table{"x-max-priority": int32(5)})
			r.Say("classic add priority: %s", E(err))
			r.del(c)
		}},

		{"queue.delivery-limit.quorum", func(r *run) {
			ch := r.Ch()
			q, dlq := r.N("q"), r.N("dlq")
			queueDeclare(r, ch, dlq, queueQ("quorum", nil))
			queueDeclare(r, ch, q, queueQ("quorum", amqp.Table{"x-delivery-limit": int32(2), "x-dead-letter-exchange": "", "x-dead-letter-routing-key": dlq}))
			r.publish(q, "m", amqp.Publishing{Headers: amqp.Table{"h": int32(1)}})
			c := r.Ch()
			dd, err := c.Consume(q, "", false, false, false, false, nil)
			r.Say("consume: %s", E(err))
			// a delivery and two redeliveries, then the limit
			for i := 0; i < 3; i++ {
				m := recv(dd)
				if m == nil {
					r.Say("delivery %d: none", i)
					break
				}
				r.Say("delivery %d: redeliv=%v headers=%s", i, m.Redelivered, queueHdrs(r, m.Headers))
				_ = m.Nack(false, true)
			}
			r.Say("dlq: %s", r.waitReady(dlq, 1))
			queueGet(r, ch, dlq, "dlq")
			// basic.get, and reject with requeue
			r.pub(q, "g")
			r.Say("consumer got g before close: %v", recv(dd) != nil)
			_ = c.Close()
			for i := 0; i < 3; i++ {
				// back in the queue, or dead-lettered
				r.waitFor(func() bool {
					return strings.HasPrefix(r.count(q), "msgs=1 ") || strings.HasPrefix(r.count(dlq), "msgs=1 ")
				})
				m, ok, err := ch.Get(q, false)
				if err != nil || !ok {
					r.Say("get %d: %s ok=%v", i, E(err), ok)
					break
				}
				r.Say("get %d: body=%s redeliv=%v headers=%s", i, m.Body, m.Redelivered, queueHdrs(r, m.Headers))
				_ = m.Reject(true)
			}
			queueGet(r, ch, dlq, "dlq2")
		}},

		{"queue.delivery-count-no-limit.quorum", func(r *run) {
			ch := r.Ch()
			q := r.N("q")
			queueDeclare(r, ch, q, queueQ("quorum", nil))
			r.pub(q, "m")
			for i := 0; i < 3; i++ {
				r.waitReady(q, 1)
				m, ok, err := ch.Get(q, false)
				if err != nil || !ok {
					r.Say("get %d: %s ok=%v", i, E(err), ok)
					break
				}
				r.Say("get %d: redeliv=%v headers=%s", i, m.Redelivered, queueHdrs(r, m.Headers))
				_ = m.Nack(false, true)
			}
			// returned when its connection closes
			r.waitReady(q, 1)
			c := r.Dial()
			cc, err := c.Channel()
			if err != nil {
				r.abort("channel: %v", err)
			}
			m, ok, _ := cc.Get(q, false)
			r.Say("get before close: %v %s", ok, queueHdrs(r, m.Headers))
			_ = c.Close()
			r.waitReady(q, 1)
			m, ok, _ = ch.Get(q, false)
			r.Say("get after close: %v redeliv=%v %s", ok, m.Redelivered, queueHdrs(r, m.Headers))
		}},

		{"queue.priority.classic", func(r *run) {
			ch := r.Ch()
			q := r.N("q")
			queueDeclare(r, ch, q, amqp.Table{"x-max-priority": int32(5)})
			for i, p := range []uint8{0, 3, 9, 1, 5, 3, 0} {
				r.publish(q, fmt.Sprintf("%d-p%d", i, p), amqp.Publishing{Priority: p})
			}
			queueDrainGet(r, ch, q, "prio")
			// no x-max-priority: FIFO in RabbitMQ
			q2 := r.N("q2")
			queueDeclare(r, ch, q2, nil)
			for i, p := range []uint8{0, 3, 9, 1} {
				r.publish(q2, fmt.Sprintf("%d-p%d", i, p), amqp.Publishing{Priority: p})
			}
			queueDrainGet(r, ch, q2, "noprio")
			q3 := r.N("q3")
			queueDeclare(r, ch, q3, queueQ("quorum", nil))
			for i, p := range []uint8{0, 3, 9, 1, 5} {
				r.publish(q3, fmt.Sprintf("%d-p%d", i, p), amqp.Publishing{Priority: p})
			}
			queueDrainGet(r, ch, q3, "quorum")
		}},

		{"queue.reject-publish-dlx.classic", func(r *run) {
			ch := r.Ch()
			q, dlq := r.N("q"), r.N("dlq")
			queueDeclare(r, ch, dlq, nil)
			queueDeclare(r, ch, q, amqp.Table{"x-max-length": int32(1), "x-overflow": "reject-publish-dlx", "x-dead-letter-exchange": "", "x-dead-letter-routing-key": dlq})
			_ = ch.Confirm(false)
			cf := ch.NotifyPublish(make(chan amqp.Confirmation, 10))
			for i := 1; i <= 3; i++ {
				_ = ch.Publish("", q, false, false, amqp.Publishing{Body: []byte(fmt.Sprint(i))})
			}
			var acks []bool
			for i := 0; i < 3; i++ {
				select {
				case c := <-cf:
					acks = append(acks, c.Ack)
				case <-time.After(patience):
				}
			}
			r.Say("confirms %v", acks)
			queueDrainGet(r, ch, q, "q")
			r.waitReady(dlq, 2)
			queueGet(r, ch, dlq, "dlq1")
			queueGet(r, ch, dlq, "dlq2")
			queueGet(r, ch, dlq, "dlq3")
		}},

		// The empty queue name stands for the queue last declared on the
		// channel. The purge, passive declaration and deletion come after
		// publishes on the same channel, which both brokers answer after.
		{"queue.names", func(r *run) {
			ch := r.Ch()
			_, err := ch.QueueDeclare("amq.foo."+r.prefix, false, false, false, false, nil)
			r.Say("declare amq.*: %s", E(err))
			ch = r.Ch()
			_, err = ch.QueueDeclarePassive("amq.foo."+r.prefix, false, false, false, false, nil)
			r.Say("passive amq.* missing: %s", E(err))
			ch = r.Ch()
			q, err := ch.QueueDeclare("", false, true, true, false, nil)
			r.Say("server-named: %s len=%d", E(err), len(q.Name))
			_ = ch.Publish("", q.Name, false, false, amqp.Publishing{Body: []byte("x")})
			n, err := ch.QueuePurge("", false)
			r.Say("purge '': %s n=%d", E(err), n)
			_ = ch.Publish("", q.Name, false, false, amqp.Publishing{Body: []byte("x")})
			p, err := ch.QueueDeclarePassive("", false, false, false, false, nil)
			r.Say("passive '': %s msgs=%d same=%v", E(err), p.Messages, p.Name == q.Name)
			n, err = ch.QueueDelete("", false, false, false)
			r.Say("delete '': %s n=%d", E(err), n)
			ch = r.Ch()
			_, err = ch.QueuePurge("", false)
			r.Say("purge '' with none declared: %s", E(err))
			ch = r.Ch()
			_, err = ch.QueueDeclare(strings.Repeat("x", 255), false, true, true, false, nil)
			r.Say("255 char name: %s", E(err))
			ch = r.Ch()
			_, err = ch.QueueDeclare(r.N("sp ace/ü"), false, true, true, false, nil)
			r.Say("odd chars: %s", E(err))
		}},

		{"queue.cc-bcc", func(r *run) {
			ch := r.Ch()
			a, b, c := r.N("a"), r.N("b"), r.N("c")
			for _, q := range []string{a, b, c} {
				queueDeclare(r, ch, q, nil)
			}
			r.publish(a, "m", amqp.Publishing{Headers: amqp.Table{"CC": []any{b}, "BCC": []any{c}}})
			queueGet(r, ch, a, "a")
			queueGet(r, ch, b, "b")
			queueGet(r, ch, c, "c")
		}},

		{"queue.dlrk-strips-cc", func(r *run) {
			ch := r.Ch()
			q, dlq, other := r.N("q"), r.N("dlq"), r.N("other")
			queueDeclare(r, ch, dlq, nil)
			queueDeclare(r, ch, other, nil)
			queueDeclare(r, ch, q, queueQ("quorum", amqp.Table{"x-dead-letter-exchange": "", "x-dead-letter-routing-key": dlq}))
			r.publish(q, "m", amqp.Publishing{Headers: amqp.Table{"CC": []any{other}}})
			if m, ok, _ := ch.Get(q, false); ok {
				_ = m.Reject(false)
			}
			r.waitReady(dlq, 1)
			queueDrainGet(r, ch, q, "q")
			queueDrainGet(r, ch, dlq, "dlq")
			queueDrainGet(r, ch, other, "other")
		}},

		// q1 expires into q2 and q2, rejecting, back into q1: x-death
		// counts both; q3 and q4 expire into each other, and the message
		// is dropped when it comes back to where it expired.
		{"queue.dlx-cycle-count", func(r *run) {
			ch := r.Ch()
			q1, q2 := r.N("q1"), r.N("q2")
			queueDeclare(r, ch, q1, queueQ("quorum", amqp.Table{"x-message-ttl": int32(20), "x-dead-letter-exchange": "", "x-dead-letter-routing-key": q2}))
			queueDeclare(r, ch, q2, queueQ("quorum", amqp.Table{"x-dead-letter-exchange": "", "x-dead-letter-routing-key": q1}))
			r.pub(q1, "m")
			r.waitReady(q2, 1)
			m, ok, _ := ch.Get(q2, false)
			r.Say("q2 get: %v", ok)
			if ok {
				queueShowMsg(r, "q2", &m)
				_ = m.Reject(false) // rejected: back to q1, which it may enter again
			}
			r.waitReady(q2, 1)
			m, ok, _ = ch.Get(q2, false)
			r.Say("q2 get again: %v", ok)
			if ok {
				queueShowMsg(r, "q2 again", &m)
			}
			q3, q4 := r.N("q3"), r.N("q4")
			queueDeclare(r, ch, q3, queueQ("quorum", amqp.Table{"x-message-ttl": int32(20), "x-dead-letter-exchange": "", "x-dead-letter-routing-key": q4}))
			queueDeclare(r, ch, q4, queueQ("quorum", amqp.Table{"x-message-ttl": int32(20), "x-dead-letter-exchange": "", "x-dead-letter-routing-key": q3}))
			r.pub(q3, "m")
			r.waitFor(func() bool { return r.count(q3) == "msgs=0 consumers=0" && r.count(q4) == "msgs=0 consumers=0" })
			r.Say("q3=%s q4=%s", r.count(q3), r.count(q4))
		}},

		{"queue.sac-close.quorum", func(r *run) {
			ch := r.Ch()
			q := r.N("q")
			queueDeclare(r, ch, q, queueQ("quorum", amqp.Table{"x-single-active-consumer": true}))
			c1, c2 := r.Ch(), r.Ch()
			d1, _ := c1.Consume(q, "c1", false, false, false, false, nil)
			d2, _ := c2.Consume(q, "c2", false, false, false, false, nil)
			for i := 1; i <= 3; i++ {
				r.pub(q, fmt.Sprint(i))
			}
			r.Say("c1 got %d", len(recvN(d1, 3)))
			_ = c1.Close()
			var after []string
			for _, m := range recvN(d2, 3) {
				after = append(after, fmt.Sprintf("%s/redeliv=%v", m.Body, m.Redelivered))
				_ = m.Ack(false)
			}
			r.Say("c2 after c1 closed got %v", after)
			r.Say("count: %s", r.waitCount(q, "msgs=0 consumers=1"))
		}},

		{"example.declare-redeclare-mismatch", func(r *run) {
			ch := r.Ch()
			q, err := ch.QueueDeclare(r.N("q"), true, false, false, false, nil)
			r.Say("declare: %s msgs=%d consumers=%d", E(err), q.Messages, q.Consumers)
			_, err = ch.QueueDeclare(r.N("q"), false, false, false, false, nil)
			r.Say("redeclare non-durable: %s", E(err))
			ch = r.Ch()
			_, err = ch.QueueDeclare(r.N("q"), true, false, false, false, amqp.Table{"x-max-length": int32(5)})
			r.Say("redeclare with new arg: %s", E(err))
			ch = r.Ch()
			_, err = ch.QueueDelete(r.N("q"), false, false, false)
			r.Say("delete: %s", E(err))
		}},

		{"queue.names2", func(r *run) {
			ch := r.Ch()
			q, err := ch.QueueDeclare("", false, true, true, false, nil)
			r.Say("server-named: %s", E(err))
			_ = ch.Publish("", q.Name, false, false, amqp.Publishing{Body: []byte("x")})
			n, err := ch.QueueDelete("", false, false, false)
			r.Say("delete '': %s n=%d", E(err), n)
			ch = r.Ch()
			q, err = ch.QueueDeclare("", false, true, true, false, nil)
			if err != nil {
				r.abort("declare: %v", err)
			}
			r.Say("bind '' '': %s", E(ch.QueueBind("", "", "amq.direct", false, nil)))
			_ = ch.Publish("amq.direct", q.Name, false, false, amqp.Publishing{Body: []byte("y")})
			m, ok, err := ch.Get("", true)
			r.Say("get '': %s %v %q", E(err), ok, m.Body)
		}},
	}
}

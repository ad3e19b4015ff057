package rabbitdiff

import (
	"fmt"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// The conn scenarios publish and then read the queues with basic.get on
// the publishing channel: both brokers answer a basic.get after the
// channel's earlier publishes have reached the queues (RabbitMQ for its
// classic queues, which these are, Ferry for every queue), so what the
// gets find is exactly what was routed.

// connURL returns r.url with user, password and vhost replaced.
func connURL(r *run, user, pass, vhost string) string {
	u, err := url.Parse(r.url)
	if err != nil {
		r.abort("parsing %s: %v", r.url, err)
	}
	u.User = url.UserPassword(user, pass)
	u.Path = "/" + url.PathEscape(vhost)
	u.RawPath = ""
	return u.String()
}

// connDrain gets every message from q with basic.get and returns the
// bodies, sorted.
func connDrain(ch *amqp.Channel, q string) string {
	var bodies []string
	for i := 0; i < 100; i++ {
		m, ok, err := ch.Get(q, true)
		if err != nil {
			return "get-err " + E(err)
		}
		if !ok {
			break
		}
		bodies = append(bodies, string(m.Body))
	}
	sort.Strings(bodies)
	return "[" + strings.Join(bodies, ",") + "]"
}

// connQ declares a fresh classic queue.
func connQ(r *run, ch *amqp.Channel, name string) string {
	q := r.N(name)
	if _, err := ch.QueueDeclare(q, false, true, false, false, nil); err != nil {
		r.Say("declare queue %s: %s", name, E(err))
	}
	return q
}

// connConfirmsLeft returns the confirms that come until the channel's
// confirms end, as they do when it is closed.
func connConfirmsLeft(acks chan amqp.Confirmation) []string {
	var got []string
	for {
		select {
		case a, ok := <-acks:
			if !ok {
				return got
			}
			got = append(got, fmt.Sprintf("%d:%v", a.DeliveryTag, a.Ack))
		case <-time.After(patience):
			return append(got, "confirms not ended")
		}
	}
}

// connGone polls until a passive declaration of exchange x fails, as it
// must once x was deleted (an auto-delete exchange goes with its last
// binding), and returns the last outcome.
func connGone(r *run, x, kind string) string {
	var err error
	r.waitFor(func() bool {
		err = r.admin().ExchangeDeclarePassive(x, kind, false, true, false, false, nil)
		return err != nil
	})
	return E(err)
}

func connScenarios() []scenario {
	return []scenario{
		{"conn.vhost-missing", func(r *run) {
			c, err := amqp.Dial(connURL(r, "guest", "guest", "no-such-vhost-"+r.prefix))
			r.Say("dial missing vhost: %s", E(err))
			if c != nil {
				_ = c.Close()
			}
			c, err = amqp.Dial(connURL(r, "guest", "guest", "/"))
			r.Say("dial / vhost: %s", E(err))
			if c != nil {
				_ = c.Close()
			}
		}},

		{"conn.bad-password", func(r *run) {
			var dials []connDial
			for _, who := range []struct{ what, user, pass string }{
				{"bad password", "guest", "wrong"},
				{"unknown user", "nobody-" + r.prefix, "x"},
				{"empty password", "guest", ""},
			} {
				dials = append(dials, connDial{"dial " + who.what, connURL(r, who.user, who.pass, "/"), amqp.Config{Heartbeat: 10 * time.Second, Locale: "en_US"}})
			}
			for i, err := range connDialAll(dials) {
				r.Say("%s: %s", dials[i].what, E(err))
			}
		}},

		{"conn.server-props", func(r *run) {
			c := r.Dial()
			caps, _ := c.Properties["capabilities"].(amqp.Table)
			var keys []string
			for k, v := range caps {
				keys = append(keys, fmt.Sprintf("%s=%v", k, v))
			}
			sort.Strings(keys)
			r.Say("caps: %s", strings.Join(keys, " "))
			r.Say("channel-max=%d frame=%d hb=%v", c.Config.ChannelMax, c.Config.FrameSize, c.Config.Heartbeat)
			r.Say("locales %v", c.Locales)
		}},

		{"conn.channel-flow", func(r *run) {
			ch := r.Ch()
			r.Say("flow true: %s", E(ch.Flow(true)))
			ch = r.Ch()
			r.Say("flow false: %s", E(ch.Flow(false)))
		}},

		{"conn.closed-channel-ops", func(r *run) {
			c := r.Dial()
			ch, err := c.Channel()
			if err != nil {
				r.abort("channel: %v", err)
			}
			r.Say("close: %s", E(ch.Close()))
			_, err = ch.QueueDeclare(r.N("q"), false, true, false, false, nil)
			r.Say("declare on closed: %s", E(err))
			r.Say("close again: %s", E(ch.Close()))
			ch2, err := c.Channel()
			r.Say("new channel: %s", E(err))
			if err != nil {
				return
			}
			_, err = ch2.QueueDeclare(r.N("q"), false, true, false, false, nil)
			r.Say("declare on new: %s", E(err))
			// A channel error on one channel leaves another alone.
			ch3, err := c.Channel()
			if err != nil {
				r.abort("channel: %v", err)
			}
			r.Say("ex on ch3: %s", E(ch3.ExchangeDeclare(r.N("x"), "direct", false, true, false, false, nil)))
			r.Say("passive missing on ch3: %s", E(ch3.ExchangeDeclarePassive(r.N("missing"), "direct", false, true, false, false, nil)))
			_, err = ch3.QueueDeclare(r.N("q2"), false, true, false, false, nil)
			r.Say("ch3 after error: %s", E(err))
			_, err = ch2.QueueDeclarePassive(r.N("q"), false, true, false, false, nil)
			r.Say("ch2 after ch3 error: %s", E(err))
			r.Say("conn closed? %v", c.IsClosed())
			_ = c.Close()
			_, err = ch2.QueueDeclarePassive(r.N("q"), false, true, false, false, nil)
			r.Say("ch2 after conn close: %s", E(err))
			_, err = c.Channel()
			r.Say("channel after conn close: %s", E(err))
		}},

		{"conn.hard-error-kills-other-channels", func(r *run) {
			c := r.Dial()
			ch1, err1 := c.Channel()
			ch2, err2 := c.Channel()
			if err1 != nil || err2 != nil {
				r.abort("channels: %v %v", err1, err2)
			}
			cc := c.NotifyClose(make(chan *amqp.Error, 1))
			r.Say("unknown type: %s", E(ch1.ExchangeDeclare(r.N("x"), "no-such-type", false, true, false, false, nil)))
			r.Say("conn close: %s", closeReason(cc))
			_, err := ch2.QueueDeclare(r.N("q"), false, true, false, false, nil)
			r.Say("other channel: %s", E(err))
			r.Say("closed: %v", c.IsClosed())
		}},

		{"conn.exchange-types", func(r *run) {
			for _, typ := range []string{"direct", "fanout", "topic", "headers", "x-consistent-hash", "x-delayed-message", "Direct", "", "x-random", "x-local-random", "x-jms-topic", "x-recent-history", "x-modulus-hash"} {
				ch := r.Ch()
				err := ch.ExchangeDeclare(r.N("x-"+typ), typ, false, true, false, false, nil)
				r.Say("declare type %q: %s", typ, E(err))
				if err == nil {
					r.Say("  delete: %s", E(ch.ExchangeDelete(r.N("x-"+typ), false, false)))
				}
			}
		}},

		{"conn.exchange-declare-flags", func(r *run) {
			ch := r.Ch()
			x := r.N("x")
			r.Say("declare durable: %s", E(ch.ExchangeDeclare(x, "direct", true, false, false, false, nil)))
			r.Say("redeclare same: %s", E(ch.ExchangeDeclare(x, "direct", true, false, false, false, nil)))
			r.Say("redeclare other args: %s", E(ch.ExchangeDeclare(x, "direct", true, false, false, false, amqp.Table{"foo": "bar"})))
			r.Say("passive other type: %s", E(ch.ExchangeDeclarePassive(x, "fanout", false, true, true, false, nil)))
			r.Say("redeclare other type: %s", E(ch.ExchangeDeclare(x, "fanout", true, false, false, false, nil)))
			ch = r.Ch()
			r.Say("redeclare non-durable: %s", E(ch.ExchangeDeclare(x, "direct", false, false, false, false, nil)))
			ch = r.Ch()
			r.Say("redeclare auto-delete: %s", E(ch.ExchangeDeclare(x, "direct", true, true, false, false, nil)))
			ch = r.Ch()
			r.Say("redeclare internal: %s", E(ch.ExchangeDeclare(x, "direct", true, false, true, false, nil)))
			ch = r.Ch()
			r.Say("redeclare with AE: %s", E(ch.ExchangeDeclare(x, "direct", true, false, false, false, amqp.Table{"alternate-exchange": "ae"})))
			ch = r.Ch()
			r.Say("redeclare unknown type: %s", E(ch.ExchangeDeclare(x, "nope", true, false, false, false, nil)))
			ch = r.Ch()
			r.Say("delete: %s", E(ch.ExchangeDelete(x, false, false)))
			// declared with an AE, redeclared without or with another
			x2 := r.N("x2")
			r.Say("declare with AE: %s", E(ch.ExchangeDeclare(x2, "fanout", false, false, false, false, amqp.Table{"alternate-exchange": "ae1"})))
			r.Say("redeclare same AE: %s", E(ch.ExchangeDeclare(x2, "fanout", false, false, false, false, amqp.Table{"alternate-exchange": "ae1"})))
			r.Say("redeclare no AE: %s", E(ch.ExchangeDeclare(x2, "fanout", false, false, false, false, nil)))
			ch = r.Ch()
			r.Say("redeclare other AE: %s", E(ch.ExchangeDeclare(x2, "fanout", false, false, false, false, amqp.Table{"alternate-exchange": "ae2"})))
			ch = r.Ch()
			r.Say("delete x2: %s", E(ch.ExchangeDelete(x2, false, false)))
		}},

		{"conn.exchange-passive", func(r *run) {
			ch := r.Ch()
			r.Say("passive missing: %s", E(ch.ExchangeDeclarePassive(r.N("missing"), "direct", false, false, false, false, nil)))
			ch = r.Ch()
			r.Say("passive missing unknown type: %s", E(ch.ExchangeDeclarePassive(r.N("missing"), "bogus", false, false, false, false, nil)))
			for _, x := range []string{"amq.direct", "amq.fanout", "amq.topic", "amq.headers", "amq.match", "amq.rabbitmq.trace", "amq.rabbitmq.log", "amq.nope"} {
				ch := r.Ch()
				r.Say("passive %s: %s", x, E(ch.ExchangeDeclarePassive(x, "direct", false, false, false, false, nil)))
			}
			ch = r.Ch()
			r.Say("passive default: %s", E(ch.ExchangeDeclarePassive("", "direct", true, false, false, false, nil)))
		}},

		{"conn.exchange-amq-names", func(r *run) {
			try := func(what string, f func(ch *amqp.Channel) error) {
				r.Say("%s: %s", what, E(f(r.Ch())))
			}
			try("declare amq.foo", func(ch *amqp.Channel) error {
				return ch.ExchangeDeclare("amq.foo"+r.prefix, "direct", false, true, false, false, nil)
			})
			try("declare AMQ.foo", func(ch *amqp.Channel) error {
				return ch.ExchangeDeclare("AMQ.foo"+r.prefix, "direct", false, true, false, false, nil)
			})
			try("declare amqfoo", func(ch *amqp.Channel) error {
				err := ch.ExchangeDeclare("amqfoo"+r.prefix, "direct", false, true, false, false, nil)
				_ = ch.ExchangeDelete("amqfoo"+r.prefix, false, false)
				return err
			})
			try("declare amq.direct same", func(ch *amqp.Channel) error {
				return ch.ExchangeDeclare("amq.direct", "direct", true, false, false, false, nil)
			})
			try("declare amq.direct non-durable", func(ch *amqp.Channel) error {
				return ch.ExchangeDeclare("amq.direct", "direct", false, false, false, false, nil)
			})
			try("declare amq.direct as fanout", func(ch *amqp.Channel) error {
				return ch.ExchangeDeclare("amq.direct", "fanout", true, false, false, false, nil)
			})
			try("declare amq.topic same", func(ch *amqp.Channel) error {
				return ch.ExchangeDeclare("amq.topic", "topic", true, false, false, false, nil)
			})
			try("declare amq.match same", func(ch *amqp.Channel) error {
				return ch.ExchangeDeclare("amq.match", "headers", true, false, false, false, nil)
			})
			try("declare default", func(ch *amqp.Channel) error {
				return ch.ExchangeDeclare("", "direct", true, false, false, false, nil)
			})
			try("delete amq.direct", func(ch *amqp.Channel) error { return ch.ExchangeDelete("amq.direct", false, false) })
			try("delete amq.missing", func(ch *amqp.Channel) error { return ch.ExchangeDelete("amq.missing"+r.prefix, false, false) })
			try("delete default", func(ch *amqp.Channel) error { return ch.ExchangeDelete("", false, false) })
			try("delete missing", func(ch *amqp.Channel) error { return ch.ExchangeDelete(r.N("missing"), false, false) })
			try("delete missing if-unused", func(ch *amqp.Channel) error { return ch.ExchangeDelete(r.N("missing"), true, false) })
			try("amq.direct still there", func(ch *amqp.Channel) error {
				return ch.ExchangeDeclarePassive("amq.direct", "direct", true, false, false, false, nil)
			})
		}},

		{"conn.default-exchange-bind", func(r *run) {
			ch := r.Ch()
			q := connQ(r, ch, "q")
			r.Say("bind to default: %s", E(ch.QueueBind(q, "k", "", false, nil)))
			ch = r.Ch()
			r.Say("unbind from default: %s", E(ch.QueueUnbind(q, q, "", nil)))
			ch = r.Ch()
			x := r.N("x")
			_ = ch.ExchangeDeclare(x, "direct", false, true, false, false, nil)
			r.Say("e2e from default: %s", E(ch.ExchangeBind(x, "k", "", false, nil)))
			ch = r.Ch()
			r.Say("e2e to default: %s", E(ch.ExchangeBind("", "k", x, false, nil)))
			ch = r.Ch()
			r.Say("delete x: %s", E(ch.ExchangeDelete(x, false, false)))
		}},

		{"conn.exchange-delete-if-unused", func(r *run) {
			ch := r.Ch()
			x := r.N("x")
			y := r.N("y")
			q := connQ(r, ch, "q")
			_ = ch.ExchangeDeclare(x, "direct", false, false, false, false, nil)
			_ = ch.ExchangeDeclare(y, "direct", false, false, false, false, nil)
			r.Say("bind q: %s", E(ch.QueueBind(q, "k", x, false, nil)))
			r.Say("delete x if-unused: %s", E(ch.ExchangeDelete(x, true, false)))
			ch = r.Ch()
			r.Say("unbind q: %s", E(ch.QueueUnbind(q, "k", x, nil)))
			// y is only the destination of a binding from x
			r.Say("bind y<-x: %s", E(ch.ExchangeBind(y, "k", x, false, nil)))
			r.Say("delete y (destination only) if-unused: %s", E(ch.ExchangeDelete(y, true, false)))
			ch = r.Ch()
			r.Say("passive y: %s", E(ch.ExchangeDeclarePassive(y, "direct", false, false, false, false, nil)))
			ch = r.Ch()
			r.Say("delete x if-unused after: %s", E(ch.ExchangeDelete(x, true, false)))
			ch = r.Ch()
			r.Say("passive x: %s", E(ch.ExchangeDeclarePassive(x, "direct", false, false, false, false, nil)))
			ch = r.Ch()
			// The queue deleted, its binding goes, and if-unused succeeds.
			z := r.N("z")
			_ = ch.ExchangeDeclare(z, "fanout", false, false, false, false, nil)
			q2 := connQ(r, ch, "q2")
			_ = ch.QueueBind(q2, "", z, false, nil)
			_, err := ch.QueueDelete(q2, false, false, false)
			r.Say("delete q2: %s", E(err))
			r.Say("delete z if-unused: %s", E(ch.ExchangeDelete(z, true, false)))
		}},

		{"conn.e2e-bindings", func(r *run) {
			ch := r.Ch()
			src := r.N("src")
			mid := r.N("mid")
			q := connQ(r, ch, "q")
			r.Say("src: %s", E(ch.ExchangeDeclare(src, "topic", false, true, false, false, nil)))
			r.Say("mid: %s", E(ch.ExchangeDeclare(mid, "fanout", false, true, false, false, nil)))
			r.Say("bind mid<-src a.*: %s", E(ch.ExchangeBind(mid, "a.*", src, false, nil)))
			r.Say("bind mid<-src a.* again: %s", E(ch.ExchangeBind(mid, "a.*", src, false, nil)))
			r.Say("bind mid<-src #: %s", E(ch.ExchangeBind(mid, "#", src, false, nil)))
			r.Say("bind q<-mid: %s", E(ch.QueueBind(q, "", mid, false, nil)))
			_ = ch.Publish(src, "a.b", false, false, amqp.Publishing{Body: []byte("1")})
			_ = ch.Publish(src, "c", false, false, amqp.Publishing{Body: []byte("2")})
			r.Say("q got: %s", connDrain(ch, q))
			r.Say("unbind #: %s", E(ch.ExchangeUnbind(mid, "#", src, false, nil)))
			_ = ch.Publish(src, "a.b", false, false, amqp.Publishing{Body: []byte("3")})
			_ = ch.Publish(src, "c", false, false, amqp.Publishing{Body: []byte("4")})
			r.Say("q got: %s", connDrain(ch, q))
			r.Say("unbind not bound: %s", E(ch.ExchangeUnbind(mid, "zzz", src, false, nil)))
			r.Say("unbind missing src: %s", E(ch.ExchangeUnbind(mid, "zzz", r.N("nosrc"), false, nil)))
			ch = r.Ch()
			r.Say("unbind missing dst: %s", E(ch.ExchangeUnbind(r.N("nodst"), "zzz", src, false, nil)))
			ch = r.Ch()
			r.Say("bind missing src: %s", E(ch.ExchangeBind(mid, "k", r.N("nosrc"), false, nil)))
			ch = r.Ch()
			r.Say("bind missing dst: %s", E(ch.ExchangeBind(r.N("nodst"), "k", src, false, nil)))
			ch = r.Ch()
			// a binding to itself, and a cycle
			r.Say("bind self: %s", E(ch.ExchangeBind(mid, "", mid, false, nil)))
			r.Say("bind cycle src<-mid: %s", E(ch.ExchangeBind(src, "", mid, false, nil)))
			_ = ch.Publish(src, "a.x", false, false, amqp.Publishing{Body: []byte("5")})
			_ = ch.Publish(mid, "", false, false, amqp.Publishing{Body: []byte("6")})
			r.Say("q got (cycle): %s", connDrain(ch, q))
			r.Say("delete mid: %s", E(ch.ExchangeDelete(mid, false, false)))
			r.Say("delete src: %s", E(ch.ExchangeDelete(src, false, false)))
		}},

		{"conn.queue-bind-missing", func(r *run) {
			ch := r.Ch()
			q := connQ(r, ch, "q")
			x := r.N("x")
			_ = ch.ExchangeDeclare(x, "direct", false, true, false, false, nil)
			r.Say("bind missing queue: %s", E(ch.QueueBind(r.N("noq"), "k", x, false, nil)))
			ch = r.Ch()
			r.Say("bind missing exchange: %s", E(ch.QueueBind(q, "k", r.N("nox"), false, nil)))
			ch = r.Ch()
			r.Say("unbind not bound: %s", E(ch.QueueUnbind(q, "k", x, nil)))
			ch = r.Ch()
			r.Say("unbind missing queue: %s", E(ch.QueueUnbind(r.N("noq"), "k", x, nil)))
			ch = r.Ch()
			r.Say("unbind missing exchange: %s", E(ch.QueueUnbind(q, "k", r.N("nox"), nil)))
			ch = r.Ch()
			r.Say("bind: %s", E(ch.QueueBind(q, "k", x, false, nil)))
			r.Say("bind again: %s", E(ch.QueueBind(q, "k", x, false, nil)))
			r.Say("bind with args: %s", E(ch.QueueBind(q, "k", x, false, amqp.Table{"a": "b"})))
			_ = ch.Publish(x, "k", false, false, amqp.Publishing{Body: []byte("1")})
			r.Say("q got: %s", connDrain(ch, q))
			r.Say("unbind without args: %s", E(ch.QueueUnbind(q, "k", x, nil)))
			_ = ch.Publish(x, "k", false, false, amqp.Publishing{Body: []byte("2")})
			r.Say("q got: %s", connDrain(ch, q))
			r.Say("unbind with other args: %s", E(ch.QueueUnbind(q, "k", x, amqp.Table{"a": "c"})))
			_ = ch.Publish(x, "k", false, false, amqp.Publishing{Body: []byte("3")})
			r.Say("q got: %s", connDrain(ch, q))
			r.Say("unbind with args: %s", E(ch.QueueUnbind(q, "k", x, amqp.Table{"a": "b"})))
			_ = ch.Publish(x, "k", false, false, amqp.Publishing{Body: []byte("4")})
			r.Say("q got: %s", connDrain(ch, q))
		}},

		{"conn.topic-routing", func(r *run) {
			ch := r.Ch()
			x := r.N("x")
			r.Say("x: %s", E(ch.ExchangeDeclare(x, "topic", false, true, false, false, nil)))
			patterns := []string{"#", "*", "a.#", "#.b", "a.#.b", "#.#", "a.*", "*.b", "a.*.b", "a..b", "", "*.*", "a", "a.#.#.b", "#.a.#", "*.#", "#.*", "a.b", "a.*.#"}
			topicRoutes(r, ch, x, patterns, []string{"", "a", "b", "a.b", "a.c.b", "a.c.d.b", "a..b", ".", "a.", ".b", "a.b.c", "c.a.d", "A.b", "a.b.b", "..", "#", "*"})
		}},

		{"conn.direct-fanout-routing", func(r *run) {
			ch := r.Ch()
			d := r.N("d")
			f := r.N("f")
			_ = ch.ExchangeDeclare(d, "direct", false, true, false, false, nil)
			_ = ch.ExchangeDeclare(f, "fanout", false, true, false, false, nil)
			q1 := connQ(r, ch, "q1")
			q2 := connQ(r, ch, "q2")
			_ = ch.QueueBind(q1, "k", d, false, nil)
			_ = ch.QueueBind(q1, "K", d, false, nil)
			_ = ch.QueueBind(q2, "", d, false, nil)
			_ = ch.QueueBind(q1, "ignored", f, false, nil)
			_ = ch.QueueBind(q2, "", f, false, nil)
			for _, k := range []string{"k", "K", "", "k ", "x"} {
				_ = ch.Publish(d, k, false, false, amqp.Publishing{Body: []byte("d=" + k)})
				_ = ch.Publish(f, k, false, false, amqp.Publishing{Body: []byte("f=" + k)})
			}
			// the default exchange
			_ = ch.Publish("", q1, false, false, amqp.Publishing{Body: []byte("def")})
			r.Say("q1: %s", connDrain(ch, q1))
			r.Say("q2: %s", connDrain(ch, q2))
			// A message to a queue bound twice is delivered once.
			q3 := connQ(r, ch, "q3")
			_ = ch.QueueBind(q3, "k", d, false, nil)
			_ = ch.QueueBind(q3, "k", d, false, amqp.Table{"a": int32(1)})
			_ = ch.ExchangeBind(f, "k", d, false, nil)
			_ = ch.QueueBind(q3, "", f, false, nil)
			_ = ch.Publish(d, "k", false, false, amqp.Publishing{Body: []byte("once")})
			r.Say("q3: %s", connDrain(ch, q3))
		}},

		{"conn.headers-routing", func(r *run) {
			ch := r.Ch()
			x := r.N("x")
			r.Say("x: %s", E(ch.ExchangeDeclare(x, "headers", false, true, false, false, nil)))
			binds := []struct {
				n string
				a amqp.Table
			}{
				{"all-ab", amqp.Table{"x-match": "all", "a": "1", "b": "2"}},
				{"any-ab", amqp.Table{"x-match": "any", "a": "1", "b": "2"}},
				{"default-ab", amqp.Table{"a": "1", "b": "2"}},
				{"all-empty", amqp.Table{"x-match": "all"}},
				{"any-empty", amqp.Table{"x-match": "any"}},
				{"none", nil},
				{"all-void", amqp.Table{"x-match": "all", "a": nil}},
				{"all-int32", amqp.Table{"x-match": "all", "n": int32(1)}},
				{"all-int64", amqp.Table{"x-match": "all", "n": int64(1)}},
				{"all-bool", amqp.Table{"x-match": "all", "f": true}},
				{"all-x", amqp.Table{"x-match": "all", "x-h": "1"}},
				{"any-x", amqp.Table{"x-match": "any", "x-h": "1"}},
				{"all-with-x", amqp.Table{"x-match": "all-with-x", "x-h": "1"}},
				{"any-with-x", amqp.Table{"x-match": "any-with-x", "x-h": "1", "a": "9"}},
				{"all-bytes", amqp.Table{"x-match": "all", "a": []byte("1")}},
			}
			qs := map[string]string{}
			for _, b := range binds {
				q := connQ(r, ch, b.n)
				qs[b.n] = q
				if err := ch.QueueBind(q, "", x, false, b.a); err != nil {
					r.Say("bind %s: %s", b.n, E(err))
					ch = r.Ch()
				}
			}
			msgs := []struct {
				n string
				h amqp.Table
			}{
				{"m-a1b2", amqp.Table{"a": "1", "b": "2"}},
				{"m-a1", amqp.Table{"a": "1"}},
				{"m-a1b3", amqp.Table{"a": "1", "b": "3"}},
				{"m-a2", amqp.Table{"a": "2"}},
				{"m-none", nil},
				{"m-n32", amqp.Table{"n": int32(1)}},
				{"m-n64", amqp.Table{"n": int64(1)}},
				{"m-n16", amqp.Table{"n": int16(1)}},
				{"m-ftrue", amqp.Table{"f": true}},
				{"m-xh1", amqp.Table{"x-h": "1"}},
				{"m-xh2", amqp.Table{"x-h": "2"}},
				{"m-abytes", amqp.Table{"a": []byte("1")}},
				{"m-xmatch", amqp.Table{"x-match": "any", "a": "1"}},
			}
			for _, m := range msgs {
				_ = ch.Publish(x, "rk", false, false, amqp.Publishing{Headers: m.h, Body: []byte(m.n)})
			}
			for _, b := range binds {
				r.Say("%s got %s", b.n, connDrain(ch, qs[b.n]))
			}
		}},

		{"conn.headers-bad-xmatch", func(r *run) {
			ch := r.Ch()
			x := r.N("x")
			_ = ch.ExchangeDeclare(x, "headers", false, true, false, false, nil)
			q := connQ(r, ch, "q")
			r.Say("bind x-match=foo: %s", E(ch.QueueBind(q, "", x, false, amqp.Table{"x-match": "foo"})))
			ch = r.Ch()
			r.Say("bind x-match=int: %s", E(ch.QueueBind(q, "", x, false, amqp.Table{"x-match": int32(1)})))
			ch = r.Ch()
			r.Say("bind x-match=ALL: %s", E(ch.QueueBind(q, "", x, false, amqp.Table{"x-match": "ALL"})))
			ch = r.Ch()
			r.Say("bind x-match bytes any: %s", E(ch.QueueBind(q, "", x, false, amqp.Table{"x-match": []byte("any"), "a": "1"})))
			ch = r.Ch()
			r.Say("amq.headers bind: %s", E(ch.QueueBind(q, "", "amq.headers", false, amqp.Table{"x-match": "any", "zz" + r.prefix: "1"})))
			_ = ch.Publish("amq.headers", "", false, false, amqp.Publishing{Headers: amqp.Table{"zz" + r.prefix: "1"}, Body: []byte("h")})
			_ = ch.Publish("amq.match", "", false, false, amqp.Publishing{Headers: amqp.Table{"zz" + r.prefix: "1"}, Body: []byte("m")})
			r.Say("q: %s", connDrain(ch, q))
			_ = ch.QueueUnbind(q, "", "amq.headers", amqp.Table{"x-match": "any", "zz" + r.prefix: "1"})
		}},

		// A basic.return comes before the confirm of its message, so once
		// the confirm is in, the return is too, if there is one.
		{"conn.mandatory-return", func(r *run) {
			ch := r.Ch()
			x := r.N("x")
			_ = ch.ExchangeDeclare(x, "direct", false, true, false, false, nil)
			rets := ch.NotifyReturn(make(chan amqp.Return, 10))
			_ = ch.Confirm(false)
			acks := ch.NotifyPublish(make(chan amqp.Confirmation, 10))
			sayReturns := func() {
				for done := false; !done; {
					select {
					case ret, ok := <-rets:
						if !ok {
							r.Say("returns ended")
							done = true
							break
						}
						r.Say("return code=%d text=%q ex-ok=%v key-ok=%v ct=%q h=%v mid=%q prio=%d body=%q", ret.ReplyCode, ret.ReplyText,
							ret.Exchange == x, ret.RoutingKey == "nokey" || ret.RoutingKey == r.N("noq"), ret.ContentType, ret.Headers, ret.MessageId, ret.Priority, ret.Body)
					default:
						done = true
					}
				}
			}
			p := amqp.Publishing{ContentType: "text/plain", Headers: amqp.Table{"h": "v"}, MessageId: "mid", Priority: 3, Body: []byte("body")}
			r.Say("publish mandatory: %s", E(ch.Publish(x, "nokey", true, false, p)))
			cf := nextConfirm(acks)
			sayReturns()
			r.Say("%s", cf)
			// not mandatory: no return, but an ack
			_ = ch.Publish(x, "nokey", false, false, p)
			cf = nextConfirm(acks)
			sayReturns()
			r.Say("%s", cf)
			// the default exchange, to a missing queue
			_ = ch.Publish("", r.N("noq"), true, false, amqp.Publishing{Body: []byte("b2")})
			cf = nextConfirm(acks)
			sayReturns()
			r.Say("%s", cf)
			// mandatory and routed: no return
			q := connQ(r, ch, "q")
			_ = ch.Publish("", q, true, false, amqp.Publishing{Body: []byte("b3")})
			cf = nextConfirm(acks)
			sayReturns()
			r.Say("%s", cf)
		}},

		// Without confirms, the returns come, and a routed publish after
		// them arrives.
		{"conn.mandatory-return-order", func(r *run) {
			ch := r.Ch()
			rets := ch.NotifyReturn(make(chan amqp.Return, 10))
			q := connQ(r, ch, "q")
			for i := 0; i < 5; i++ {
				_ = ch.Publish("", r.N("noq"), true, false, amqp.Publishing{Body: []byte(fmt.Sprint(i))})
			}
			var got []string
			for i := 0; i < 5; i++ {
				select {
				case ret := <-rets:
					got = append(got, string(ret.Body))
				case <-time.After(patience):
				}
			}
			r.Say("returns: %v", got)
			_ = ch.Publish("", q, true, false, amqp.Publishing{Body: []byte("ok")})
			r.Say("q: %s", connDrain(ch, q))
		}},

		{"conn.immediate", func(r *run) {
			ch := r.Ch()
			q := connQ(r, ch, "q")
			cc := ch.NotifyClose(make(chan *amqp.Error, 1))
			_ = ch.Publish("", q, false, true, amqp.Publishing{Body: []byte("x")})
			r.Say("close: %s", closeReason(cc))
		}},

		{"conn.publish-missing-exchange", func(r *run) {
			ch := r.Ch()
			cc := ch.NotifyClose(make(chan *amqp.Error, 1))
			r.Say("publish: %s", E(ch.Publish(r.N("nox"), "k", false, false, amqp.Publishing{Body: []byte("x")})))
			r.Say("close: %s", closeReason(cc))
			// in confirm mode, mandatory
			ch = r.Ch()
			_ = ch.Confirm(false)
			cc = ch.NotifyClose(make(chan *amqp.Error, 1))
			acks := ch.NotifyPublish(make(chan amqp.Confirmation, 1))
			rets := ch.NotifyReturn(make(chan amqp.Return, 1))
			_ = ch.Publish(r.N("nox"), "k", true, false, amqp.Publishing{Body: []byte("x")})
			r.Say("close: %s", closeReason(cc))
			// amqp091-go ends a closed channel's confirms and returns; what
			// came before the close would come first.
			r.Say("%s", nextConfirm(acks))
			select {
			case ret, ok := <-rets:
				r.Say("return ok=%v code=%d", ok, ret.ReplyCode)
			case <-time.After(patience):
				r.Say("returns not ended")
			}
			// A queue.declare after the publish fails: with the channel's
			// close as its answer, or, when amqp091-go has handled that
			// close first, with its own "channel/connection is not open".
			// Either way the close says why.
			ch = r.Ch()
			cc = ch.NotifyClose(make(chan *amqp.Error, 1))
			_ = ch.Publish(r.N("nox"), "k", false, false, amqp.Publishing{Body: []byte("x")})
			_, err := ch.QueueDeclare(r.N("q"), false, true, false, false, nil)
			r.Say("declare after bad publish failed: %v", err != nil)
			r.Say("close: %s", closeReason(cc))
		}},

		{"conn.internal-exchange", func(r *run) {
			ch := r.Ch()
			src := r.N("src")
			in := r.N("in")
			q := connQ(r, ch, "q")
			r.Say("declare internal: %s", E(ch.ExchangeDeclare(in, "fanout", false, true, true, false, nil)))
			_ = ch.ExchangeDeclare(src, "fanout", false, true, false, false, nil)
			_ = ch.ExchangeBind(in, "", src, false, nil)
			_ = ch.QueueBind(q, "", in, false, nil)
			_ = ch.Publish(src, "", false, false, amqp.Publishing{Body: []byte("via-src")})
			r.Say("q: %s", connDrain(ch, q))
			cc := ch.NotifyClose(make(chan *amqp.Error, 1))
			_ = ch.Publish(in, "", false, false, amqp.Publishing{Body: []byte("direct")})
			r.Say("close: %s", closeReason(cc))
			ch = r.Ch()
			r.Say("q after: %s", connDrain(ch, q))
			r.Say("passive internal: %s", E(ch.ExchangeDeclarePassive(in, "fanout", false, true, true, false, nil)))
			// an internal exchange as an alternate exchange
			x := r.N("x")
			_ = ch.ExchangeDeclare(x, "direct", false, true, false, false, amqp.Table{"alternate-exchange": in})
			_ = ch.Publish(x, "nokey", false, false, amqp.Publishing{Body: []byte("via-ae")})
			r.Say("q via ae: %s", connDrain(ch, q))
		}},

		{"conn.alternate-exchange", func(r *run) {
			ch := r.Ch()
			x := r.N("x")
			ae := r.N("ae")
			ae2 := r.N("ae2")
			qa := connQ(r, ch, "qa")
			qx := connQ(r, ch, "qx")
			qb := connQ(r, ch, "qb")
			r.Say("ae: %s", E(ch.ExchangeDeclare(ae, "direct", false, false, false, false, amqp.Table{"alternate-exchange": ae2})))
			_ = ch.ExchangeDeclare(ae2, "fanout", false, false, false, false, nil)
			r.Say("x: %s", E(ch.ExchangeDeclare(x, "direct", false, false, false, false, amqp.Table{"alternate-exchange": ae})))
			_ = ch.QueueBind(qx, "k", x, false, nil)
			_ = ch.QueueBind(qa, "k2", ae, false, nil)
			_ = ch.QueueBind(qb, "", ae2, false, nil)
			rets := ch.NotifyReturn(make(chan amqp.Return, 10))
			_ = ch.Publish(x, "k", true, false, amqp.Publishing{Body: []byte("1")})
			_ = ch.Publish(x, "k2", true, false, amqp.Publishing{Body: []byte("2")})
			_ = ch.Publish(x, "k3", true, false, amqp.Publishing{Body: []byte("3")})
			r.Say("qx=%s qa=%s qb=%s", connDrain(ch, qx), connDrain(ch, qa), connDrain(ch, qb))
			// The gets were answered after any return due.
			r.Say("%s", returned(rets))
			// A missing AE: returned when mandatory.
			y := r.N("y")
			_ = ch.ExchangeDeclare(y, "direct", false, true, false, false, amqp.Table{"alternate-exchange": r.N("noae")})
			_ = ch.Publish(y, "k", true, false, amqp.Publishing{Body: []byte("4")})
			r.Say("fence: %s", E(r.Fence(ch)))
			r.Say("%s", returned(rets))
			// An AE cycle: z's AE is w, w's is z.
			z := r.N("z")
			w := r.N("w")
			_ = ch.ExchangeDeclare(z, "direct", false, true, false, false, amqp.Table{"alternate-exchange": w})
			_ = ch.ExchangeDeclare(w, "direct", false, true, false, false, amqp.Table{"alternate-exchange": z})
			_ = ch.Publish(z, "k", true, false, amqp.Publishing{Body: []byte("5")})
			r.Say("fence: %s", E(r.Fence(ch)))
			r.Say("%s", returned(rets))
			// an AE that is not a string
			v := r.N("v")
			err := ch.ExchangeDeclare(v, "direct", false, true, false, false, amqp.Table{"alternate-exchange": int32(5)})
			r.Say("AE int: %s", E(err))
			if err != nil {
				ch = r.Ch()
			}
			// the default exchange as the AE
			u := r.N("u")
			err = ch.ExchangeDeclare(u, "direct", false, true, false, false, amqp.Table{"alternate-exchange": ""})
			r.Say("AE empty: %s", E(err))
			if err == nil {
				rets = ch.NotifyReturn(make(chan amqp.Return, 10))
				_ = ch.Publish(u, qa, true, false, amqp.Publishing{Body: []byte("6")})
				r.Say("fence: %s", E(r.Fence(ch)))
				r.Say("%s", returned(rets))
				r.Say("qa=%s", connDrain(ch, qa))
			}
			ch = r.Ch()
			_ = ch.ExchangeDelete(x, false, false)
			_ = ch.ExchangeDelete(ae, false, false)
			_ = ch.ExchangeDelete(ae2, false, false)
		}},

		// An auto-delete exchange goes with its last binding: where it
		// must be gone, its absence is polled for.
		{"conn.auto-delete-exchange", func(r *run) {
			ch := r.Ch()
			x := r.N("x")
			q := connQ(r, ch, "q")
			r.Say("declare ad: %s", E(ch.ExchangeDeclare(x, "direct", false, true, false, false, nil)))
			r.Say("passive unbound: %s", E(ch.ExchangeDeclarePassive(x, "direct", false, true, false, false, nil)))
			r.Say("bind: %s", E(ch.QueueBind(q, "a", x, false, nil)))
			r.Say("bind 2: %s", E(ch.QueueBind(q, "b", x, false, nil)))
			r.Say("unbind a: %s", E(ch.QueueUnbind(q, "a", x, nil)))
			r.Say("passive one left: %s", E(ch.ExchangeDeclarePassive(x, "direct", false, true, false, false, nil)))
			r.Say("unbind b: %s", E(ch.QueueUnbind(q, "b", x, nil)))
			r.Say("passive none left: %s", connGone(r, x, "direct"))
			// through the queue's deletion
			y := r.N("y")
			q2 := connQ(r, ch, "q2")
			_ = ch.ExchangeDeclare(y, "fanout", false, true, false, false, nil)
			_ = ch.QueueBind(q2, "", y, false, nil)
			_, _ = ch.QueueDelete(q2, false, false, false)
			r.Say("passive after queue delete: %s", connGone(r, y, "fanout"))
			// An auto-delete source loses its binding to an exchange.
			s := r.N("s")
			d := r.N("d")
			_ = ch.ExchangeDeclare(s, "fanout", false, true, false, false, nil)
			_ = ch.ExchangeDeclare(d, "fanout", false, true, false, false, nil)
			_ = ch.ExchangeBind(d, "", s, false, nil)
			r.Say("delete d: %s", E(ch.ExchangeDelete(d, false, false)))
			r.Say("passive s: %s", connGone(r, s, "fanout"))
			// an auto-delete exchange whose only binding was as destination
			s2 := r.N("s2")
			d2 := r.N("d2")
			_ = ch.ExchangeDeclare(s2, "fanout", false, true, false, false, nil)
			_ = ch.ExchangeDeclare(d2, "fanout", false, true, false, false, nil)
			_ = ch.ExchangeBind(d2, "", s2, false, nil)
			_ = ch.ExchangeUnbind(d2, "", s2, false, nil)
			r.Say("passive s2 after unbind: %s", connGone(r, s2, "fanout"))
			ch = r.Ch()
			r.Say("passive d2 after unbind: %s", E(ch.ExchangeDeclarePassive(d2, "fanout", false, true, false, false, nil)))
		}},

		{"conn.exchange-delete-removes-bindings", func(r *run) {
			ch := r.Ch()
			x := r.N("x")
			q := connQ(r, ch, "q")
			_ = ch.ExchangeDeclare(x, "fanout", false, false, false, false, nil)
			_ = ch.QueueBind(q, "", x, false, nil)
			r.Say("delete: %s", E(ch.ExchangeDelete(x, false, false)))
			r.Say("redeclare: %s", E(ch.ExchangeDeclare(x, "fanout", false, false, false, false, nil)))
			_ = ch.Publish(x, "", false, false, amqp.Publishing{Body: []byte("1")})
			r.Say("q: %s", connDrain(ch, q))
			_ = ch.ExchangeDelete(x, false, false)
		}},

		{"conn.nowait", func(r *run) {
			ch := r.Ch()
			cc := ch.NotifyClose(make(chan *amqp.Error, 1))
			x := r.N("x")
			r.Say("declare nowait: %s", E(ch.ExchangeDeclare(x, "direct", false, true, false, true, nil)))
			r.Say("passive: %s", E(ch.ExchangeDeclarePassive(x, "direct", false, true, false, false, nil)))
			r.Say("redeclare mismatch nowait: %s", E(ch.ExchangeDeclare(x, "fanout", false, true, false, true, nil)))
			r.Say("close: %s", closeReason(cc))
			ch = r.Ch()
			cc = ch.NotifyClose(make(chan *amqp.Error, 1))
			r.Say("delete amq.direct nowait: %s", E(ch.ExchangeDelete("amq.direct", false, true)))
			r.Say("close: %s", closeReason(cc))
		}},

		{"conn.exchange-names", func(r *run) {
			for _, n := range []string{"with space", "with/slash", "ünï", strings.Repeat("y", 255-len(r.prefix)-1), "tab\there", "cr\rlf\n"} {
				ch := r.Ch()
				name := r.N(n)
				err := ch.ExchangeDeclare(name, "fanout", false, true, false, false, nil)
				r.Say("declare %q: %s", n, E(err))
				if err == nil {
					r.Say("  passive: %s", E(ch.ExchangeDeclarePassive(name, "fanout", false, true, false, false, nil)))
					r.Say("  delete: %s", E(ch.ExchangeDelete(name, false, false)))
				}
			}
		}},

		{"conn.sasl-malformed", func(r *run) {
			u, err := url.Parse(r.url)
			if err != nil {
				r.abort("parsing %s: %v", r.url, err)
			}
			base := "amqp://" + u.Host + "/"
			var dials []connDial
			dial := func(what string, a amqp.Authentication) {
				dials = append(dials, connDial{what, base, amqp.Config{SASL: []amqp.Authentication{a}}})
			}
			for _, resp := range []string{
				"\x00guest\x00guest",
				"\x00guest\x00wrong",
				"garbage",
				"\x00\x00guest",
				"\x00guest\x00",
				"\x00guest\x00guest\x00x",
				"guest\x00guest\x00guest",
				"other\x00guest\x00guest",
			} {
				dial(fmt.Sprintf("PLAIN %q", resp), connSASL{"PLAIN", resp})
			}
			dial("AMQPLAIN wrong", &amqp.AMQPlainAuth{Username: "guest", Password: "wrong"})
			dial("AMQPLAIN empty user", &amqp.AMQPlainAuth{Username: "", Password: "guest"})
			dial("AMQPLAIN ok", &amqp.AMQPlainAuth{Username: "guest", Password: "guest"})
			for i, err := range connDialAll(dials) {
				r.Say("%s: %s", dials[i].what, E(err))
			}
		}},

		{"conn.publish-missing-exchange-confirm", func(r *run) {
			for _, kind := range []string{"missing", "internal"} {
				ch := r.Ch()
				in := r.N("in")
				_ = ch.ExchangeDeclare(in, "fanout", false, true, true, false, nil)
				ex := r.N("nox")
				if kind == "internal" {
					ex = in
				}
				_ = ch.Confirm(false)
				acks := ch.NotifyPublish(make(chan amqp.Confirmation, 10))
				cc := ch.NotifyClose(make(chan *amqp.Error, 1))
				q := connQ(r, ch, "q-"+kind)
				// Confirmed before the bad publish: whether the brokers
				// confirm a publish pipelined just before one that closes
				// the channel is a race in both.
				_ = ch.Publish("", q, false, false, amqp.Publishing{Body: []byte("ok1")})
				r.Say("%s first: %s", kind, nextConfirm(acks))
				_ = ch.Publish(ex, "k", false, false, amqp.Publishing{Body: []byte("bad")})
				r.Say("%s close: %s", kind, closeReason(cc))
				r.Say("%s confirms: %v", kind, connConfirmsLeft(acks))
			}
		}},

		{"conn.amq-default", func(r *run) {
			ch := r.Ch()
			q := connQ(r, ch, "q")
			r.Say("passive amq.default: %s", E(ch.ExchangeDeclarePassive("amq.default", "direct", true, false, false, false, nil)))
			ch, cc := r.ChCl()
			_ = ch.Publish("amq.default", q, false, false, amqp.Publishing{Body: []byte("x")})
			state := r.State(ch, cc)
			r.Say("publish amq.default: %s", state)
			if state != "open" {
				ch = r.Ch()
			}
			r.Say("q: %s", connDrain(ch, q))
			r.Say("bind amq.default: %s", E(ch.QueueBind(q, "k", "amq.default", false, nil)))
		}},

		{"conn.topic-literal-words", func(r *run) {
			ch := r.Ch()
			x := r.N("x")
			_ = ch.ExchangeDeclare(x, "topic", false, true, false, false, nil)
			patterns := []string{"a.#b", "a*", "*a", "##", "a.**", "#a.b", "a.#.*", "*.*.*", "#.*.#", "a.*.*.#"}
			topicRoutes(r, ch, x, patterns, []string{"a.#b", "a.xb", "a*", "ab", "*a", "ba", "##", "x", "a.**", "a.b", "#a.b", "a.b.c", "a", "a.b.c.d", "", ".", "..", "a.b.", "a..", "a...."})
		}},

		{"conn.headers-types", func(r *run) {
			ch := r.Ch()
			x := r.N("x")
			_ = ch.ExchangeDeclare(x, "headers", false, true, false, false, nil)
			ts := time.Unix(1700000000, 0)
			binds := []struct {
				n string
				v any
			}{
				{"table", amqp.Table{"k": "v"}},
				{"array", []any{"a", int32(1)}},
				{"decimal", amqp.Decimal{Scale: 1, Value: 15}},
				{"timestamp", ts},
				{"float64", float64(1.5)},
				{"float32", float32(1.5)},
				{"int", int32(1700000000)},
				{"bool", false},
				{"string", "1.5"},
				{"empty-table", amqp.Table{}},
			}
			qs := map[string]string{}
			for _, b := range binds {
				q := connQ(r, ch, b.n)
				qs[b.n] = q
				if err := ch.QueueBind(q, "", x, false, amqp.Table{"x-match": "all", "v": b.v}); err != nil {
					r.Say("bind %s: %s", b.n, E(err))
					ch = r.Ch()
				}
			}
			msgs := []struct {
				n string
				v any
			}{
				{"m-table", amqp.Table{"k": "v"}},
				{"m-table2", amqp.Table{"k": "w"}},
				{"m-array", []any{"a", int32(1)}},
				{"m-array2", []any{"a"}},
				{"m-decimal", amqp.Decimal{Scale: 1, Value: 15}},
				{"m-decimal2", amqp.Decimal{Scale: 2, Value: 150}},
				{"m-timestamp", ts},
				{"m-int", int64(1700000000)},
				{"m-float64", float64(1.5)},
				{"m-float32", float32(1.5)},
				{"m-string", "zzz"},
				{"m-bool", false},
				{"m-int0", int32(0)},
				{"m-empty-table", amqp.Table{}},
			}
			for _, m := range msgs {
				_ = ch.Publish(x, "", false, false, amqp.Publishing{Headers: amqp.Table{"v": m.v}, Body: []byte(m.n)})
			}
			for _, b := range binds {
				r.Say("%s got %s", b.n, connDrain(ch, qs[b.n]))
			}
		}},

		{"conn.e2e-mandatory", func(r *run) {
			ch := r.Ch()
			src := r.N("src")
			dst := r.N("dst")
			_ = ch.ExchangeDeclare(src, "direct", false, true, false, false, nil)
			_ = ch.ExchangeDeclare(dst, "fanout", false, true, false, false, nil)
			_ = ch.ExchangeBind(dst, "k", src, false, nil)
			rets := ch.NotifyReturn(make(chan amqp.Return, 10))
			_ = ch.Publish(src, "k", true, false, amqp.Publishing{Body: []byte("1")})
			r.Say("fence: %s", E(r.Fence(ch)))
			r.Say("%s", returned(rets))
			// dst gets a queue; deleting dst removes src's binding to it
			q := connQ(r, ch, "q")
			_ = ch.QueueBind(q, "", dst, false, nil)
			_ = ch.Publish(src, "k", true, false, amqp.Publishing{Body: []byte("2")})
			r.Say("q: %s", connDrain(ch, q))
			r.Say("delete dst: %s", E(ch.ExchangeDelete(dst, false, false)))
			r.Say("redeclare dst: %s", E(ch.ExchangeDeclare(dst, "fanout", false, true, false, false, nil)))
			_ = ch.QueueBind(q, "", dst, false, nil)
			_ = ch.Publish(src, "k", true, false, amqp.Publishing{Body: []byte("3")})
			r.Say("fence: %s", E(r.Fence(ch)))
			r.Say("%s", returned(rets))
			r.Say("q: %s", connDrain(ch, q))
			// if-unused on src, bound only to an exchange
			_ = ch.ExchangeBind(dst, "k", src, false, nil)
			r.Say("delete src if-unused: %s", E(ch.ExchangeDelete(src, true, false)))
		}},

		{"conn.bind-shortcuts", func(r *run) {
			ch := r.Ch()
			x := r.N("x")
			_ = ch.ExchangeDeclare(x, "direct", false, true, false, false, nil)
			r.Say("bind empty queue, none declared: %s", E(ch.QueueBind("", "k", x, false, nil)))
			ch = r.Ch()
			_ = ch.ExchangeDeclare(x, "direct", false, true, false, false, nil)
			q := connQ(r, ch, "q")
			r.Say("bind empty queue & key: %s", E(ch.QueueBind("", "", x, false, nil)))
			r.Say("bind empty queue key k: %s", E(ch.QueueBind("", "k", x, false, nil)))
			_ = ch.Publish(x, q, false, false, amqp.Publishing{Body: []byte("byname")})
			_ = ch.Publish(x, "k", false, false, amqp.Publishing{Body: []byte("byk")})
			_ = ch.Publish(x, "", false, false, amqp.Publishing{Body: []byte("byempty")})
			r.Say("q: %s", connDrain(ch, q))
			r.Say("unbind empty queue & key: %s", E(ch.QueueUnbind("", "", x, nil)))
			_ = ch.Publish(x, q, false, false, amqp.Publishing{Body: []byte("byname2")})
			r.Say("q: %s", connDrain(ch, q))
			// A queue named with an empty key is bound with the empty key.
			r.Say("bind q empty key: %s", E(ch.QueueBind(q, "", x, false, nil)))
			_ = ch.Publish(x, "", false, false, amqp.Publishing{Body: []byte("byempty2")})
			_ = ch.Publish(x, q, false, false, amqp.Publishing{Body: []byte("byname3")})
			r.Say("q: %s", connDrain(ch, q))
		}},

		{"conn.declare-table-args", func(r *run) {
			ch := r.Ch()
			r.Say("exchange table arg: %s", E(ch.ExchangeDeclare(r.N("x1"), "direct", false, true, false, false, amqp.Table{"my-arg": amqp.Table{"a": "b"}})))
			ch = r.Ch()
			r.Say("exchange array arg: %s", E(ch.ExchangeDeclare(r.N("x2"), "direct", false, true, false, false, amqp.Table{"my-arg": []any{"a"}})))
			ch = r.Ch()
			r.Say("exchange decimal arg: %s", E(ch.ExchangeDeclare(r.N("x3"), "direct", false, true, false, false, amqp.Table{"my-arg": amqp.Decimal{Scale: 1, Value: 2}})))
			ch = r.Ch()
			x := r.N("x4")
			_ = ch.ExchangeDeclare(x, "direct", false, true, false, false, nil)
			q := connQ(r, ch, "q")
			r.Say("direct bind table arg: %s", E(ch.QueueBind(q, "k", x, false, amqp.Table{"my-arg": amqp.Table{"a": "b"}})))
			ch = r.Ch()
			r.Say("e2e bind array arg: %s", E(ch.ExchangeBind(r.N("x4"), "k", "amq.direct", false, amqp.Table{"my-arg": []any{"a"}})))
		}},

		{"conn.publish-missing-exchange-nack", func(r *run) {
			ch := r.Ch()
			_ = ch.Confirm(false)
			acks := ch.NotifyPublish(make(chan amqp.Confirmation, 10))
			cc := ch.NotifyClose(make(chan *amqp.Error, 1))
			q := connQ(r, ch, "q")
			_ = ch.Publish("", q, false, false, amqp.Publishing{Body: []byte("ok1")})
			r.Say("first: %s", nextConfirm(acks))
			_ = ch.Publish(r.N("nox"), "k", false, false, amqp.Publishing{Body: []byte("bad")})
			r.Say("close: %s", closeReason(cc))
			r.Say("confirms after: %v", connConfirmsLeft(acks))
		}},

		{"conn.ae-e2e", func(r *run) {
			ch := r.Ch()
			src := r.N("src")
			dst := r.N("dst")
			ae := r.N("ae")
			q := connQ(r, ch, "q")
			qs := connQ(r, ch, "qs")
			_ = ch.ExchangeDeclare(ae, "fanout", false, true, false, false, nil)
			_ = ch.ExchangeDeclare(src, "direct", false, true, false, false, nil)
			_ = ch.ExchangeDeclare(dst, "direct", false, true, false, false, amqp.Table{"alternate-exchange": ae})
			_ = ch.ExchangeBind(dst, "k", src, false, nil)
			_ = ch.QueueBind(q, "", ae, false, nil)
			_ = ch.QueueBind(qs, "k", src, false, nil)
			rets := ch.NotifyReturn(make(chan amqp.Return, 10))
			_ = ch.Publish(src, "k", true, false, amqp.Publishing{Body: []byte("1")})
			_ = ch.Publish(src, "z", true, false, amqp.Publishing{Body: []byte("2")})
			r.Say("q=%s qs=%s", connDrain(ch, q), connDrain(ch, qs))
			// The gets were answered after any return due.
			r.Say("%s", returned(rets))
			// A queue bound to src and, through dst's AE, to dst gets one copy.
			_ = ch.QueueBind(q, "k", src, false, nil)
			_ = ch.Publish(src, "k", false, false, amqp.Publishing{Body: []byte("3")})
			r.Say("q=%s", connDrain(ch, q))
		}},
	}
}

// connDial is a connection attempt of connDialAll.
type connDial struct {
	what string
	url  string
	cfg  amqp.Config
}

// connDialAll makes the attempts at once, and returns their errors in
// order, closing the connections that opened: RabbitMQ answers a failed
// login only after 3 s (to a client that, as amqp091-go, does not announce
// authentication_failure_close), so one after the other they take long.
func connDialAll(dials []connDial) []error {
	errs := make([]error, len(dials))
	var wg sync.WaitGroup
	for i, d := range dials {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := amqp.DialConfig(d.url, d.cfg)
			errs[i] = err
			if c != nil {
				_ = c.Close()
			}
		}()
	}
	wg.Wait()
	return errs
}

// connSASL is a SASL mechanism with a raw response.
type connSASL struct{ mech, resp string }

func (a connSASL) Mechanism() string { return a.mech }
func (a connSASL) Response() string  { return a.resp }

// topicRoutes binds a queue of its own to topic exchange x with each of
// patterns, publishes a message with each of keys, and says which keys
// each pattern's queue got. A binding refused closes ch; the rest go on
// on a new channel.
func topicRoutes(r *run, ch *amqp.Channel, x string, patterns, keys []string) {
	qs := map[string]string{}
	for i, p := range patterns {
		q := connQ(r, ch, fmt.Sprintf("q%d", i))
		qs[p] = q
		if err := ch.QueueBind(q, p, x, false, nil); err != nil {
			r.Say("bind %q: %s", p, E(err))
			ch = r.Ch()
		}
	}
	for _, k := range keys {
		_ = ch.Publish(x, k, false, false, amqp.Publishing{Body: []byte("k=" + k)})
	}
	for _, p := range patterns {
		r.Say("pattern %q got %s", p, connDrain(ch, qs[p]))
	}
}

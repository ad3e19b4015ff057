"""Drives Ferry's AMQP front end with pika, Python's RabbitMQ client.

Run by TestPikaClient (clients_test.go) as: python3 pika_client.py URL.
Each check prints "ok NAME"; the Go test requires every name it knows,
so a check that stops early fails the test. Any exception exits non-zero.
"""
import datetime
import decimal
import sys

import pika
from checks import expect, namer, ok
from pika.exceptions import (ChannelClosedByBroker, NackError,
                             ProbableAccessDeniedError,
                             ProbableAuthenticationError, UnroutableError)

URL = sys.argv[1]
name = namer("pika")


def connect(**kw):
    params = pika.URLParameters(URL)
    for k, v in kw.items():
        setattr(params, k, v)
    return pika.BlockingConnection(params)


def closed_with(code, fn):
    """Runs fn, which must close its channel with code."""
    try:
        fn()
    except ChannelClosedByBroker as e:
        expect(e.reply_code == code, "reply %d %s, want %d" % (e.reply_code, e.reply_text, code))
        return
    raise AssertionError("no channel error, want %d" % code)


# Connection: negotiation and the server's properties.
conn = connect(frame_max=4096, channel_max=100, heartbeat=30)
props = conn._impl.server_properties
caps = props["capabilities"]
for cap in ("publisher_confirms", "exchange_exchange_bindings", "basic.nack",
            "consumer_cancel_notify", "connection.blocked",
            "authentication_failure_close", "per_consumer_qos", "direct_reply_to"):
    expect(caps.get(cap) is True, "capability %s: %r" % (cap, caps.get(cap)))
expect(conn._impl.params.frame_max == 4096, "frame_max %d" % conn._impl.params.frame_max)
expect(conn._impl.params.channel_max == 100, "channel_max %d" % conn._impl.params.channel_max)
expect(conn._impl.params.heartbeat == 30, "heartbeat %r" % conn._impl.params.heartbeat)
ok("negotiation")

# pika names the stage at which the broker closed the connection.
try:
    connect(credentials=pika.PlainCredentials("guest", "wrong"))
    raise AssertionError("a wrong password connected")
except ProbableAuthenticationError as e:
    expect("(403)" in str(e), "wrong password: %s" % e)
ok("wrong-password")

try:
    connect(virtual_host="no-such-vhost")
    raise AssertionError("a missing vhost connected")
except ProbableAccessDeniedError as e:
    expect("(530)" in str(e), "missing vhost: %s" % e)
ok("wrong-vhost")

# Content: every property, every field type pika writes, a body split
# into many frames of 4 KiB.
ch = conn.channel()
ch.confirm_delivery()
q = ch.queue_declare(queue="", exclusive=True).method.queue
expect(q.startswith("amq.gen-"), "server-named queue %r" % q)
headers = {"str": "s", "int": 42, "neg": -7, "long": 2**40, "bool": True, "void": None,
           "list": [1, "a", {"nested": [True]}], "table": {"k": "v"},
           "decimal": decimal.Decimal("3.14"), "time": datetime.datetime(2020, 1, 2, 3, 4, 5),
           "bytes": b"\x00\xff"}
sent = pika.BasicProperties(content_type="text/plain", content_encoding="utf-8", headers=headers,
                            delivery_mode=2, priority=3, correlation_id="corr", reply_to="reply",
                            expiration="60000", message_id="mid", timestamp=1600000000,
                            type="kind", user_id="guest", app_id="app", cluster_id="")
body = bytes(range(256)) * 1200  # 300 KiB: 75 body frames
ch.basic_publish("", q, body, sent, mandatory=True)
m, got, b = ch.basic_get(q, auto_ack=True)
expect(b == body, "body of %d bytes came back as %d" % (len(body), len(b)))
for attr in ("content_type", "content_encoding", "delivery_mode", "priority", "correlation_id",
             "reply_to", "expiration", "message_id", "timestamp", "type", "user_id", "app_id"):
    expect(getattr(got, attr) == getattr(sent, attr), "%s: %r" % (attr, getattr(got, attr)))
expect(got.headers == headers, "headers %r" % got.headers)
ok("content")

# Mandatory publish with no route: basic.return, which pika raises.
try:
    ch.basic_publish("", name("nowhere"), b"x", mandatory=True)
    raise AssertionError("unroutable mandatory publish confirmed")
except UnroutableError as e:
    expect(len(e.messages) == 1 and e.messages[0].method.reply_code == 312, "returned %r" % e.messages)
ok("mandatory-return")

# A queue that refuses publishes when full: the confirm is a nack.
full = name("full")
ch.queue_declare(full, arguments={"x-max-length": 1, "x-overflow": "reject-publish"}, auto_delete=True)
ch.basic_publish("", full, b"first")
try:
    ch.basic_publish("", full, b"second")
    raise AssertionError("a publish to a full reject-publish queue was confirmed")
except NackError:
    pass
ch.queue_delete(full)
ok("confirm-nack")

# Exchanges: every type, exchange-to-exchange bindings, passive, if-unused.
ex_topic, ex_fan, ex_hdr = name("topic"), name("fanout"), name("headers")
ch.exchange_declare(ex_topic, "topic")
ch.exchange_declare(ex_fan, "fanout", auto_delete=True)
ch.exchange_declare(ex_hdr, "headers")
ch.exchange_declare(ex_topic, passive=True)
ch.exchange_bind(ex_fan, ex_topic, "a.#")
ch.queue_bind(q, ex_fan)
ch.queue_bind(q, ex_hdr, arguments={"x-match": "any", "colour": "red", "size": 1})
ch.basic_publish(ex_topic, "a.b.c", b"topic-match")
ch.basic_publish(ex_topic, "b.a", b"topic-miss")
ch.basic_publish(ex_hdr, "", b"headers-match", pika.BasicProperties(headers={"colour": "red"}))
ch.basic_publish(ex_hdr, "", b"headers-miss", pika.BasicProperties(headers={"colour": "blue"}))
ch.basic_publish("amq.direct", q, b"amq-direct-miss")
got = []
while True:
    m, _, b = ch.basic_get(q, auto_ack=True)
    if m is None:
        break
    got.append(b)
expect(got == [b"topic-match", b"headers-match"], "routed %r" % got)
closed_with(406, lambda: conn.channel().exchange_delete(ex_hdr, if_unused=True))
ch.exchange_unbind(ex_fan, ex_topic, "a.#")
ch.basic_publish(ex_topic, "a.b", b"unbound")
expect(ch.queue_declare(q, passive=True).method.message_count == 0, "routed after exchange.unbind")
ch.queue_unbind(q, ex_hdr, arguments={"x-match": "any", "colour": "red", "size": 1})
ch.exchange_delete(ex_hdr, if_unused=True)
ch.exchange_delete(ex_topic)
closed_with(404, lambda: conn.channel().exchange_declare(name("missing"), passive=True))
closed_with(406, lambda: conn.channel().exchange_declare("amq.direct", "fanout"))
closed_with(403, lambda: conn.channel().exchange_declare("amq.custom", "direct"))
ok("exchanges")

# Queues: counts, purge, the conditions of delete.
dq = name("durable")
ch.queue_declare(dq, durable=True)
for i in range(5):
    ch.basic_publish("", dq, b"%d" % i, pika.BasicProperties(delivery_mode=2))
r = ch.queue_declare(dq, passive=True).method
expect((r.message_count, r.consumer_count) == (5, 0), "counts %r" % r)
closed_with(406, lambda: conn.channel().queue_declare(dq, durable=False))
closed_with(406, lambda: conn.channel().queue_delete(dq, if_empty=True))
expect(ch.queue_purge(dq).method.message_count == 5, "purge count")
expect(ch.queue_delete(dq, if_empty=True).method.message_count == 0, "delete count")
closed_with(404, lambda: conn.channel().queue_declare(dq, passive=True))
ok("queues")

# Acks: multiple, nack with and without requeue, reject, recover.
aq = name("acks")
ch.queue_declare(aq, auto_delete=False)
for i in range(6):
    ch.basic_publish("", aq, b"%d" % i)
tags = [ch.basic_get(aq)[0].delivery_tag for _ in range(6)]
ch.basic_ack(tags[1], multiple=True)             # 0 and 1
ch.basic_nack(tags[3], multiple=True, requeue=True)  # 2 and 3 back
ch.basic_reject(tags[4], requeue=False)          # 4 gone
ch.basic_recover(requeue=True)                   # 5 back
left = []
while True:
    m, _, b = ch.basic_get(aq)
    if m is None:
        break
    expect(m.redelivered, "message %r not marked redelivered" % b)
    left.append(b)
    ch.basic_ack(m.delivery_tag)
expect(sorted(left) == [b"2", b"3", b"5"], "left %r" % left)


def ack_unknown_tag():
    c = conn.channel()
    c.basic_ack(999)  # no reply: the error closes the channel
    c.basic_qos(prefetch_count=1)


closed_with(406, ack_unknown_tag)
ok("acks")

# Consumers: prefetch, priorities, exclusive, cancel both ways.
cq = name("consume")
ch.queue_declare(cq)
for i in range(10):
    ch.basic_publish("", cq, b"%d" % i)
c2 = conn.channel()
c2.basic_qos(prefetch_count=3)
seen = []
c2.basic_consume(cq, lambda c, m, p, b: seen.append(m.delivery_tag), consumer_tag="low",
                 arguments={"x-priority": 1})
while len(seen) < 3:
    conn.process_data_events(time_limit=0.05)
conn.process_data_events(time_limit=0.1)
expect(len(seen) == 3, "prefetch 3 delivered %d" % len(seen))
closed_with(403, lambda: conn.channel().basic_consume(cq, lambda *a: None, exclusive=True))
c2.basic_ack(seen[-1], multiple=True)
while len(seen) < 6:
    conn.process_data_events(time_limit=0.05)
c2.basic_cancel("low")
cancelled = []
c3 = conn.channel()
c3.add_on_cancel_callback(lambda frame: cancelled.append(frame.method.consumer_tag))
c3.basic_consume(cq, lambda c, m, p, b: None, consumer_tag="doomed", auto_ack=True)
ch.queue_delete(cq)
while not cancelled:
    conn.process_data_events(time_limit=0.05)
expect(cancelled == ["doomed"], "server cancel %r" % cancelled)
ok("consumers")

# Transactions cover publishes and acks.
tq = name("tx")
ch.queue_declare(tq)
t = conn.channel()
t.tx_select()
t.basic_publish("", tq, b"rolled-back")
t.tx_rollback()
t.basic_publish("", tq, b"committed")
expect(ch.queue_declare(tq, passive=True).method.message_count == 0, "publish visible before commit")
t.tx_commit()
m, _, b = t.basic_get(tq)
expect(b == b"committed", "got %r" % b)
t.basic_ack(m.delivery_tag)
t.tx_rollback()
t.basic_recover(requeue=True)
m, _, b = t.basic_get(tq)
t.basic_ack(m.delivery_tag)
t.tx_commit()
expect(ch.queue_declare(tq, passive=True).method.message_count == 0, "ack not committed")
ok("transactions")

# Arguments: TTL and dead-lettering, priorities, an alternate exchange.
dlx, dlq, src = name("dlx"), name("dlq"), name("ttl")
ch.exchange_declare(dlx, "fanout")
ch.queue_declare(dlq)
ch.queue_bind(dlq, dlx)
ch.queue_declare(src, arguments={"x-message-ttl": 1, "x-dead-letter-exchange": dlx})
ch.basic_publish("", src, b"expires")
for m, p, b in ch.consume(dlq, inactivity_timeout=10):
    expect(m is not None, "nothing dead-lettered")
    expect(b == b"expires" and p.headers["x-death"][0]["reason"] == "expired", "dead letter %r %r" % (b, p.headers))
    ch.basic_ack(m.delivery_tag)
    break
ch.cancel()
pq = name("prio")
ch.queue_declare(pq, arguments={"x-max-priority": 9})
for pr in (1, 9, 5):
    ch.basic_publish("", pq, b"%d" % pr, pika.BasicProperties(priority=pr))
order = [ch.basic_get(pq, auto_ack=True)[2] for _ in range(3)]
expect(order == [b"9", b"5", b"1"], "priority order %r" % order)
ae, main = name("ae"), name("main")
ch.exchange_declare(ae, "fanout")
ch.queue_bind(pq, ae)
ch.exchange_declare(main, "direct", arguments={"alternate-exchange": ae})
ch.basic_publish(main, "unbound-key", b"to-ae", mandatory=True)
expect(ch.basic_get(pq, auto_ack=True)[2] == b"to-ae", "alternate exchange")
ok("arguments")

# Direct reply-to: an RPC round trip through amq.rabbitmq.reply-to.
srvq = name("rpc")
ch.queue_declare(srvq)
client = conn.channel()
client.confirm_delivery()  # the request is queued before the server looks
replies = []
client.basic_consume("amq.rabbitmq.reply-to", lambda c, m, p, b: replies.append((p.correlation_id, b)), auto_ack=True)
client.basic_publish("", srvq, b"ping", pika.BasicProperties(reply_to="amq.rabbitmq.reply-to", correlation_id="42"))
m, p, b = ch.basic_get(srvq, auto_ack=True)
expect(p.reply_to.startswith("amq.rabbitmq.reply-to."), "reply_to %r" % p.reply_to)
ch.basic_publish("", p.reply_to, b"pong", pika.BasicProperties(correlation_id=p.correlation_id))
while not replies:
    conn.process_data_events(time_limit=0.05)
expect(replies == [("42", b"pong")], "replies %r" % replies)
ok("direct-reply-to")

# A stream queue, read from its first offset.
sq = name("stream")
ch.queue_declare(sq, durable=True, arguments={"x-queue-type": "stream"})
for i in range(3):
    ch.basic_publish("", sq, b"s%d" % i)
s = conn.channel()
s.basic_qos(prefetch_count=10)
read = []
for m, p, b in s.consume(sq, arguments={"x-stream-offset": "first"}, inactivity_timeout=10):
    expect(m is not None, "stream read stalled after %r" % read)
    read.append(b)
    s.basic_ack(m.delivery_tag)
    if len(read) == 3:
        break
s.cancel()
expect(read == [b"s0", b"s1", b"s2"], "stream %r" % read)
ch.queue_delete(sq)
ok("stream")

for qn in (aq, tq, dlq, src, pq, srvq):
    ch.queue_delete(qn)
for en in (dlx, ae, main):
    ch.exchange_delete(en)
conn.close()
ok("close")

"""Drives Ferry's AMQP front end with py-amqp, the client under Celery and
kombu.

Run by TestPyAMQPClient (clients_test.go) as: python3 pyamqp_client.py
HOST:PORT. Each check prints "ok NAME"; the Go test requires every name it
knows. Any exception exits non-zero.
"""
import datetime
import decimal
import sys

import amqp
from checks import expect, namer, ok

HOST = sys.argv[1]
name = namer("pyamqp")


def connect(**kw):
    kw.setdefault("userid", "guest")
    kw.setdefault("password", "guest")
    c = amqp.Connection(HOST, **kw)
    c.connect()
    return c


# AMQPLAIN, the SASL mechanism py-amqp offers besides PLAIN.
# py-amqp takes the server's frame-max whatever it asked for.
conn = connect(login_method="AMQPLAIN", confirm_publish=True, heartbeat=20)
expect(conn.server_properties["product"] == "Ferry", "product %r" % conn.server_properties.get("product"))
expect(conn.frame_max == 131072 and conn.heartbeat == 20, "tune %d %d" % (conn.frame_max, conn.heartbeat))
ok("amqplain")

try:
    connect(password="wrong")
    raise AssertionError("a wrong password connected")
except amqp.exceptions.AccessRefused as e:
    expect(e.reply_code == 403, "wrong password: %r" % e)
ok("wrong-password")

# Content with the field types py-amqp writes (a float among them), in
# frames of 128 KiB; publishes confirmed one by one (confirm_publish).
ch = conn.channel()
q, count, consumers = ch.queue_declare("", exclusive=True)
expect(q.startswith("amq.gen-") and (count, consumers) == (0, 0), "declare %r %r %r" % (q, count, consumers))
headers = {"str": "s", "int": 42, "float": 1.5, "bool": False, "void": None, "list": [1, "a"],
           "table": {"k": {"deep": 1}}, "decimal": decimal.Decimal("-2.50"),
           "time": datetime.datetime(2021, 6, 7, 8, 9, 10)}
body = b"\x01\x02" * 150000
sent = amqp.Message(body, content_type="application/octet-stream", application_headers=headers,
                    delivery_mode=2, priority=4, correlation_id="c", reply_to="r", expiration="60000",
                    message_id="m", timestamp=1640995200, type="t", app_id="a")
ch.basic_publish(sent, exchange="", routing_key=q)
got = ch.basic_get(q, no_ack=True)
expect(got.body == body, "body %d bytes, want %d" % (len(got.body), len(body)))
for k in ("content_type", "delivery_mode", "priority", "correlation_id", "reply_to", "expiration",
          "message_id", "timestamp", "type", "app_id"):
    expect(got.properties.get(k) == sent.properties.get(k), "%s: %r" % (k, got.properties.get(k)))
expect(got.properties["application_headers"] == headers, "headers %r" % got.properties["application_headers"])
ok("content")

full = name("full")
ch.queue_declare(full, auto_delete=True, arguments={"x-max-length": 1, "x-overflow": "reject-publish"})
ch.basic_publish(amqp.Message("first"), exchange="", routing_key=full)
try:
    ch.basic_publish(amqp.Message("second"), exchange="", routing_key=full)
    raise AssertionError("a publish to a full reject-publish queue was confirmed")
except amqp.exceptions.MessageNacked:
    pass
ch.queue_delete(full)
ok("confirm-nack")

# Consuming with callbacks, prefetch, ack multiple, reject, channel.flow.
wq = name("work")
ch.queue_declare(wq, durable=True, auto_delete=False)
for i in range(20):
    ch.basic_publish(amqp.Message(str(i), delivery_mode=2), exchange="", routing_key=wq)
w = conn.channel()
w.basic_qos(prefetch_size=0, prefetch_count=5, a_global=False)
seen = []
tag = w.basic_consume(wq, callback=lambda m: seen.append(m))
while len(seen) < 5:
    conn.drain_events(timeout=10)
try:
    conn.drain_events(timeout=0.1)
except TimeoutError:
    pass
expect(len(seen) == 5, "prefetch 5 delivered %d" % len(seen))
w.basic_ack(seen[3].delivery_tag, multiple=True)
w.basic_reject(seen[4].delivery_tag, requeue=True)
while len(seen) < 10:
    conn.drain_events(timeout=10)
w.flow(False)
for m in seen[5:]:
    w.basic_ack(m.delivery_tag)
try:
    conn.drain_events(timeout=0.2)
except TimeoutError:
    pass
expect(len(seen) == 10, "delivered %d with flow off" % len(seen))
w.flow(True)  # deliveries may come before flow-ok: py-amqp runs them at once
acked = 10
while True:
    for m in seen[acked:]:
        w.basic_ack(m.delivery_tag)
    acked = len(seen)
    if acked == 21:
        break
    conn.drain_events(timeout=10)
bodies = sorted(int(m.body) for m in seen)
expect(bodies == sorted(list(range(20)) + [4]), "bodies %r" % bodies)
w.basic_cancel(tag)
_, count, _ = ch.queue_declare(wq, passive=True)
expect(count == 0, "%d left" % count)
ch.queue_delete(wq)
ok("consume")

# A channel error closes its channel; a connection error (as RabbitMQ, an
# unknown exchange type is one) its connection; neither touches the rest.
try:
    conn.channel().queue_declare(name("missing"), passive=True)
    raise AssertionError("passive declare of a missing queue succeeded")
except amqp.exceptions.NotFound as e:
    expect(e.reply_code == 404, "reply %r" % e)
ch.queue_declare(q, passive=True)
other = connect()
try:
    other.channel().exchange_declare(name("x"), "no-such-type")
    raise AssertionError("an unknown exchange type was declared")
except amqp.exceptions.InvalidCommand as e:
    expect(e.reply_code == 503, "reply %r" % e)
expect(not other.connected, "the connection survived a connection error")
ch.queue_declare(q, passive=True)
ok("errors")

conn.close()
ok("close")

"""Drives Ferry's AMQP front end with aio-pika, Python's asyncio client
(on aiormq and pamqp, a codec of its own).

Run by TestAioPikaClient (clients_test.go) as: python3 aiopika_client.py
URL. Each check prints "ok NAME"; the Go test requires every name it
knows. Any exception exits non-zero.
"""
import asyncio
import datetime
import decimal
import sys

import aio_pika
import aiormq
from checks import expect, namer, ok

URL = sys.argv[1]
name = namer("aiopika")


async def main():
    conn = await aio_pika.connect(URL + "?heartbeat=20")
    ok("connect")

    try:
        await aio_pika.connect(URL.replace("guest:guest", "guest:wrong"))
        raise AssertionError("a wrong password connected")
    except aiormq.exceptions.ProbableAuthenticationError:
        pass
    ok("wrong-password")

    # Content and the field types pamqp writes, with publisher confirms
    # (aio-pika's channels confirm by default).
    ch = await conn.channel()
    q = await ch.declare_queue(exclusive=True)
    expect(q.name.startswith("amq.gen-"), "server-named queue %r" % q.name)
    headers = {"str": "s", "int": 42, "long": 2**40, "float": 1.5, "bool": True, "void": None,
               "list": [1, "a"], "table": {"k": "v"}, "decimal": decimal.Decimal("3.14"),
               "time": datetime.datetime(2020, 1, 2, 3, 4, 5),  # pamqp reads UTC, naive
               "bytes": b"\x00\xff"}
    body = bytes(range(256)) * 600
    await ch.default_exchange.publish(aio_pika.Message(
        body, headers=headers, content_type="application/octet-stream", content_encoding="identity",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT, priority=3, correlation_id="corr", reply_to="reply",
        expiration=60, message_id="mid", timestamp=1600000000, type="kind", user_id="guest", app_id="app"),
        routing_key=q.name)
    m = await q.get(no_ack=True)
    expect(m.body == body, "body")
    expect((m.content_type, m.content_encoding, m.delivery_mode, m.priority, m.correlation_id, m.reply_to,
            m.message_id, m.type, m.user_id, m.app_id) ==
           ("application/octet-stream", "identity", aio_pika.DeliveryMode.PERSISTENT, 3, "corr", "reply", "mid",
            "kind", "guest", "app"), "properties %r" % m.info())
    expect(m.timestamp == datetime.datetime.fromtimestamp(1600000000, datetime.timezone.utc).replace(tzinfo=None)
           or m.timestamp.timestamp() == 1600000000, "timestamp %r" % m.timestamp)
    # aio-pika sends floats and decimals as JSON text in byte arrays: the
    # headers come back as it sent them.
    sent = aio_pika.message.format_headers(headers)
    expect(sent["float"] == bytearray(b"1.5"), "aio-pika sent a float as %r" % sent["float"])
    for k, v in sent.items():
        expect(m.headers[k] == v, "header %s: %r, sent %r" % (k, m.headers[k], v))
    ok("content")

    full = await ch.declare_queue(name("full"), auto_delete=True,
                                  arguments={"x-max-length": 1, "x-overflow": "reject-publish"})
    await ch.default_exchange.publish(aio_pika.Message(b"first"), routing_key=full.name)
    try:
        await ch.default_exchange.publish(aio_pika.Message(b"second"), routing_key=full.name)
        raise AssertionError("a publish to a full reject-publish queue was confirmed")
    except aio_pika.exceptions.DeliveryError:
        pass
    await full.delete(if_unused=False, if_empty=False)  # aio-pika defaults both to True
    ok("confirm-nack")

    # An iterator consumer with prefetch, each message acked as processed.
    wq = await ch.declare_queue(name("work"), durable=True)
    for i in range(30):
        await ch.default_exchange.publish(aio_pika.Message(b"%d" % i), routing_key=wq.name)
    c = await conn.channel()
    await c.set_qos(prefetch_count=5)
    wq2 = await c.get_queue(wq.name)
    got = []
    async with wq2.iterator() as it:
        async for msg in it:
            async with msg.process():
                got.append(int(msg.body))
            if len(got) == 30:
                break
    expect(got == list(range(30)), "order %r" % got)
    await wq.delete(if_unused=False, if_empty=False)
    ok("consume")

    # A topic exchange, and a channel error that leaves the connection.
    ex = await ch.declare_exchange(name("topic"), aio_pika.ExchangeType.TOPIC, auto_delete=True)
    await q.bind(ex, "a.*")
    await ex.publish(aio_pika.Message(b"matched"), routing_key="a.b")
    await ex.publish(aio_pika.Message(b"missed"), routing_key="b.a")
    m = await q.get(no_ack=True)
    expect(m.body == b"matched" and await q.get(no_ack=True, fail=False) is None, "topic routing")
    bad = await conn.channel()
    try:
        await bad.declare_queue(name("missing"), passive=True)
        raise AssertionError("passive declare of a missing queue succeeded")
    except aiormq.exceptions.ChannelNotFoundEntity:
        pass
    await ch.declare_queue(q.name, passive=True)
    ok("errors")

    await conn.close()
    ok("close")


asyncio.run(main())

"""Drives a Celery worker through Ferry, as TestCeleryWorkerAndClient
(clients_test.go) runs it: the worker runs celery_tasks in another
process. Each check prints "ok NAME"; any exception exits non-zero. It
ends by asking the worker to shut down."""
from celery import group
from celery_tasks import add, app, flaky
from checks import expect, ok


# Tasks and their results (the worker may still be starting: get waits).
results = [add.delay(i, i) for i in range(50)]
expect([r.get(timeout=60) for r in results] == [2 * i for i in range(50)], "task results")
expect(group(add.s(i, 1) for i in range(10))().get(timeout=30) == list(range(1, 11)), "group results")
ok("tasks")

# A task that retries (republished with a countdown of 0) twice.
expect(flaky.delay(2).get(timeout=30) == 2, "retries")
ok("retry")

# Remote control: a broadcast over the pidbox fanout exchange, answered
# on a reply queue with an expiry.
replies = app.control.ping(timeout=30, limit=1)  # returns at the first reply
expect(any("pong" in str(r) for r in replies), "ping replies %r" % replies)
queues = app.control.inspect(timeout=30, limit=1).active_queues()
expect(queues and any(q["name"] == "celery" for qs in queues.values() for q in qs), "active queues %r" % queues)
ok("control")

app.control.shutdown()
ok("shutdown")

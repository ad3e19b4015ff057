"""A Celery application for TestCeleryWorkerAndClient (clients_test.go):
its broker is Ferry, at the URL in FERRY_AMQP_URL, and its results come
back over AMQP too (the rpc:// backend)."""
import os

from celery import Celery

app = Celery("celery_tasks", broker=os.environ["FERRY_AMQP_URL"], backend="rpc://")
app.conf.update(broker_connection_retry_on_startup=True, worker_hijack_root_logger=False,
                task_acks_late=True, worker_prefetch_multiplier=4)


@app.task
def add(x, y):
    return x + y


@app.task(bind=True, max_retries=3, default_retry_delay=0)
def flaky(self, attempts_before_success):
    if self.request.retries < attempts_before_success:
        raise self.retry()
    return self.request.retries

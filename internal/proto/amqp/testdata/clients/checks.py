"""What the Python client scripts here share: the "ok NAME" line
clienttest.Run reads after each check, and names unique to a run."""
import uuid

RUN = uuid.uuid4().hex[:8]  # names of this run, so a rerun starts afresh


def ok(name):
    print("ok", name, flush=True)


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


def namer(prefix):
    """Returns a function naming queues and exchanges prefix-s-RUN."""
    return lambda s: "%s-%s-%s" % (prefix, s, RUN)

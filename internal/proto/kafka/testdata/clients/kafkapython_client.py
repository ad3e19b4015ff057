"""Drives Ferry's Kafka front end with kafka-python, a pure-Python Kafka
client (Debian's python3-kafka).

Run by TestKafkaPythonClient (clients_test.go) as: python3
kafkapython_client.py HOST:PORT. Each check prints "ok NAME"; the Go test
requires every name it knows. Any exception exits non-zero.
"""
import sys
import threading
import time
import uuid

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewPartitions, NewTopic
from kafka.errors import TopicAlreadyExistsError

BOOTSTRAP = sys.argv[1]
RUN = uuid.uuid4().hex[:8]
TOPIC = "kpy-" + RUN
GROUP = "kpy-group-" + RUN


def ok(name):
    print("ok", name, flush=True)


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP, client_id="ferry-test")
admin.create_topics([NewTopic(TOPIC, num_partitions=3, replication_factor=1)])
expect(TOPIC in admin.list_topics(), "created topic not listed")
try:
    admin.create_topics([NewTopic(TOPIC, num_partitions=3, replication_factor=1)])
    raise AssertionError("a topic was created twice")
except TopicAlreadyExistsError:
    pass
ok("admin")

# Keyed records with headers, gzip-compressed and not, acks=all: the same
# key always lands on the same partition.
start_ms = int(time.time() * 1000)
sent = {}
for compression in (None, "gzip"):
    p = KafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all", compression_type=compression, linger_ms=2,
                      key_serializer=str.encode, value_serializer=str.encode)
    futures = [(i, p.send(TOPIC, key="key-%d" % (i % 7), value="%s-%d" % (compression, i),
                          headers=[("n", b"%d" % i), ("c", str(compression).encode())]))
               for i in range(60)]
    p.flush()
    for i, f in futures:
        md = f.get(timeout=30)
        sent["%s-%d" % (compression, i)] = (md.partition, md.offset)
    p.close()
partitions_of_key = {}
for value, (partition, _) in sent.items():
    key = int(value.split("-")[-1]) % 7
    partitions_of_key.setdefault(key, set()).add(partition)
expect(all(len(ps) == 1 for ps in partitions_of_key.values()), "a key on two partitions: %r" % partitions_of_key)
ok("produce")

# A group of two consumers, each polling in a thread of its own (a
# consumer's poll blocks while its group rebalances): both get
# partitions, and between them read every record once, with its key,
# value, headers and offset.
consumers = [KafkaConsumer(TOPIC, bootstrap_servers=BOOTSTRAP, group_id=GROUP, auto_offset_reset="earliest",
                           enable_auto_commit=False, key_deserializer=bytes.decode,
                           value_deserializer=bytes.decode, max_poll_interval_ms=60000) for _ in range(2)]
got = {}
lock = threading.Lock()
done = threading.Event()
failures = []


def consume(c):
    try:
        while not done.is_set():
            for tp, records in c.poll(timeout_ms=100).items():
                with lock:
                    for r in records:
                        expect(r.value not in got, "record %s read twice" % r.value)
                        got[r.value] = (r.partition, r.offset)
                        n = r.value.split("-")[-1]
                        expect(r.key == "key-%d" % (int(n) % 7), "key %r of %r" % (r.key, r.value))
                        expect(dict(r.headers)["n"] == n.encode(), "headers %r" % r.headers)
            with lock:
                if len(got) == len(sent) and all(x.assignment() for x in consumers):
                    done.set()
        c.commit()
    except Exception as e:  # reported by the main thread
        failures.append(e)
        done.set()


threads = [threading.Thread(target=consume, args=(c,)) for c in consumers]
for t in threads:
    t.start()
done.wait(90)
done.set()
for t in threads:
    t.join()
if failures:
    raise failures[0]
expect(got == sent, "read %d of %d records, or at other offsets" % (len(got), len(sent)))
assignments = [c.assignment() for c in consumers]
expect(all(assignments) and not (assignments[0] & assignments[1]), "assignments %r" % assignments)
ok("group")

ends = consumers[0].end_offsets([TopicPartition(TOPIC, i) for i in range(3)])
committed = admin.list_consumer_group_offsets(GROUP)
expect({tp.partition: om.offset for tp, om in committed.items()} ==
       {i: max(o for p, o in sent.values() if p == i) + 1 for i in range(3)},
       "committed %r" % committed)
# The group read and committed everything: its lag (end - committed) is 0.
expect(all(ends[tp] == committed[tp].offset for tp in committed), "ends %r, committed %r" % (ends, committed))
groups = dict(admin.list_consumer_groups())
expect(groups.get(GROUP) == "consumer", "groups %r" % groups)
desc = admin.describe_consumer_groups([GROUP])[0]
expect(desc.state == "Stable" and len(desc.members) == 2, "group %s with %d members" % (desc.state, len(desc.members)))
for c in consumers:
    c.close()
ok("offsets")

# Seeking by time: offsets_for_times finds the first record at or after a
# timestamp; a lone consumer with no group reads from there.
c = KafkaConsumer(bootstrap_servers=BOOTSTRAP, enable_auto_commit=False, value_deserializer=bytes.decode)
tps = [TopicPartition(TOPIC, i) for i in range(3)]
c.assign(tps)
found = c.offsets_for_times({tp: start_ms for tp in tps})
expect(all(found[tp] is not None and found[tp].offset == min(o for p, o in sent.values() if p == tp.partition)
           for tp in tps), "offsets_for_times %r" % found)
# The end offset comes after the last record, though the group's commits
# are in the log after it: seeking one back reads that record.
c.seek_to_end(tps[0])
end = c.position(tps[0])
expect(end == max(o for p, o in sent.values() if p == 0) + 1, "end of partition 0: %d" % end)
c.seek(tps[0], end - 1)
last = c.poll(timeout_ms=10000)
expect([r.offset for r in last.get(tps[0], [])] == [end - 1], "poll after seeking to end - 1: %r" % last)
ok("seek")
c.close()

admin.create_partitions({TOPIC: NewPartitions(total_count=4)})
expect(len(KafkaConsumer(bootstrap_servers=BOOTSTRAP).partitions_for_topic(TOPIC)) == 4, "partitions after growth")
admin.delete_topics([TOPIC])
expect(TOPIC not in admin.list_topics(), "deleted topic still listed")
admin.close()
ok("close")

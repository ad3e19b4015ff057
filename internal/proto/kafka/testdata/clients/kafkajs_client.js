// Drives Ferry's Kafka front end with KafkaJS, Node's Kafka client (its
// own implementation of the protocol).
//
// Run by TestKafkaJSClient (clients_test.go) as: node kafkajs_client.js
// HOST:PORT. Each check prints "ok NAME"; the Go test requires every name
// it knows. Any failure exits non-zero.
'use strict';
const { Kafka, CompressionTypes, logLevel } = require('kafkajs');
const crypto = require('crypto');

const RUN = crypto.randomBytes(4).toString('hex');
const TOPIC = `kjs-${RUN}`;
const GROUP = `kjs-group-${RUN}`;
const ok = (check) => console.log('ok', check);
function expect(cond, what) {
  if (!cond) throw new Error(what);
}

async function main() {
  const kafka = new Kafka({ clientId: 'ferry-test', brokers: [process.argv[2]], logLevel: logLevel.ERROR });
  const admin = kafka.admin();
  await admin.connect();
  const cluster = await admin.describeCluster();
  expect(cluster.brokers.some((b) => b.nodeId === cluster.controller), `cluster ${JSON.stringify(cluster)}`);
  expect(await admin.createTopics({ topics: [{ topic: TOPIC, numPartitions: 3 }], waitForLeaders: true }), 'createTopics');
  expect((await admin.listTopics()).includes(TOPIC), 'topic not listed');
  const md = await admin.fetchTopicMetadata({ topics: [TOPIC] });
  expect(md.topics[0].partitions.length === 3, `metadata ${JSON.stringify(md)}`);
  ok('admin');

  // An idempotent producer (InitProducerId, sequence numbers), gzip and
  // plain batches with keys and headers.
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: require('kafkajs').Partitioners.DefaultPartitioner });
  await producer.connect();
  const sent = new Map(); // value -> key
  for (const compression of [CompressionTypes.None, CompressionTypes.GZIP]) {
    const messages = [];
    for (let i = 0; i < 50; i++) {
      const value = `${compression}-${i}`;
      sent.set(value, `key-${i % 7}`);
      messages.push({ key: `key-${i % 7}`, value, headers: { n: String(i) } });
    }
    const res = await producer.send({ topic: TOPIC, messages, acks: -1, compression });
    expect(res.every((r) => r.errorCode === 0), `produce ${JSON.stringify(res)}`);
  }
  await producer.disconnect();
  ok('produce');

  // Two consumers in one group share the partitions and read every record
  // once; then they commit.
  const got = new Map(); // value -> partition
  const partitionOfKey = new Map();
  let resolveAll;
  const all = new Promise((resolve) => { resolveAll = resolve; });
  const consumers = [];
  for (let i = 0; i < 2; i++) {
    const consumer = kafka.consumer({ groupId: GROUP, sessionTimeout: 10000, heartbeatInterval: 500, maxWaitTimeInMs: 200 });
    await consumer.connect();
    await consumer.subscribe({ topic: TOPIC, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        const value = message.value.toString();
        const key = message.key.toString();
        expect(!got.has(value), `${value} read twice`);
        expect(sent.get(value) === key && message.headers.n.toString() === value.split('-')[1], `record ${value}`);
        expect(!partitionOfKey.has(key) || partitionOfKey.get(key) === partition, `key ${key} on two partitions`);
        partitionOfKey.set(key, partition);
        got.set(value, partition);
        if (got.size === sent.size) resolveAll();
      },
    });
    consumers.push(consumer);
  }
  await all;
  ok('group');

  // Both members are in the group; once they leave, the committed offsets
  // are the partitions' ends (KafkaJS commits what it processed).
  const described = await admin.describeGroups([GROUP]);
  expect(described.groups[0].protocolType === 'consumer', `group ${JSON.stringify(described)}`);
  for (const c of consumers) await c.disconnect();
  const ends = await admin.fetchTopicOffsets(TOPIC);
  const committed = await admin.fetchOffsets({ groupId: GROUP, topics: [TOPIC] });
  for (const p of committed[0].partitions) {
    const end = ends.find((e) => e.partition === p.partition);
    expect(end && p.offset === end.offset, `partition ${p.partition}: committed ${p.offset}, end ${end && end.offset}`);
  }
  ok('offsets');

  // Reset the group to the earliest offsets: KafkaJS commits -2, as it
  // would to Kafka, which its consumers take for "no offset" and resolve
  // by their subscription's fromBeginning: a consumer of the group then
  // reads everything again.
  await admin.resetOffsets({ groupId: GROUP, topic: TOPIC, earliest: true });
  const reset = await admin.fetchOffsets({ groupId: GROUP, topics: [TOPIC] });
  expect(reset[0].partitions.every((p) => p.offset === '-2'), `after reset: ${JSON.stringify(reset)}`);
  const again = new Set();
  let resolveAgain;
  const allAgain = new Promise((resolve) => { resolveAgain = resolve; });
  const rereader = kafka.consumer({ groupId: GROUP, maxWaitTimeInMs: 200 });
  await rereader.connect();
  await rereader.subscribe({ topic: TOPIC, fromBeginning: true });
  await rereader.run({
    eachMessage: async ({ message }) => {
      again.add(message.value.toString());
      if (again.size === sent.size) resolveAgain();
    },
  });
  await allAgain;
  await rereader.disconnect();
  ok('reset');

  await admin.deleteGroups([GROUP]);
  expect(!(await admin.listGroups()).groups.some((g) => g.groupId === GROUP), 'group still listed');
  await admin.deleteTopics({ topics: [TOPIC] });
  expect(!(await admin.listTopics()).includes(TOPIC), 'topic still listed');
  await admin.disconnect();
  ok('close');
}

main().catch((e) => { console.error('FAIL', e); process.exit(1); });

// Drives Ferry's AMQP front end with amqplib, Node's RabbitMQ client.
//
// Run by TestAmqplibClient (clients_test.go) as: node amqplib_client.js
// URL. Each check prints "ok NAME"; the Go test requires every name it
// knows. Any failure exits non-zero.
'use strict';
const amqp = require('amqplib');
const crypto = require('crypto');

const URL = process.argv[2];
const RUN = crypto.randomBytes(4).toString('hex');
const name = (s) => `amqplib-${s}-${RUN}`;
const ok = (check) => console.log('ok', check);
function expect(cond, what) {
  if (!cond) throw new Error(what);
}
// inbox holds what a consumer callback gets until the test takes it;
// next fails after ms with nothing.
function inbox() {
  const items = [];
  const waiters = [];
  return {
    push(x) {
      const w = waiters.shift();
      if (w) w(x); else items.push(x);
    },
    next(ms = 10000) {
      if (items.length) return Promise.resolve(items.shift());
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`nothing came in ${ms} ms`)), ms);
        waiters.push((x) => { clearTimeout(timer); resolve(x); });
      });
    },
  };
}

async function main() {
  const conn = await amqp.connect(`${URL}?frameMax=4096&heartbeat=15&channelMax=64`);
  const props = conn.connection.serverProperties;
  expect(props.product === 'Ferry', `product ${props.product}`);
  expect(props.capabilities.publisher_confirms === true && props.capabilities['basic.nack'] === true, 'capabilities');
  expect(conn.connection.frameMax === 4096 && conn.connection.heartbeat === 15 && conn.connection.channelMax === 64,
    `tune ${conn.connection.frameMax} ${conn.connection.heartbeat} ${conn.connection.channelMax}`);
  ok('negotiation');

  await amqp.connect(URL.replace('guest:guest', 'guest:wrong')).then(
    () => { throw new Error('a wrong password connected'); },
    (e) => expect(/ACCESS_REFUSED|403/.test(e.message), `wrong password: ${e.message}`));
  ok('wrong-password');

  // Content: the properties and the field types amqplib writes, a body
  // split into frames of 4 KiB, publishes confirmed.
  const ch = await conn.createConfirmChannel();
  const q = (await ch.assertQueue('', { exclusive: true })).queue;
  expect(q.startsWith('amq.gen-'), `server-named queue ${q}`);
  const headers = {
    str: 's', int: 42, float: 1.5, bool: true, void: null, list: [1, 'a', { nested: [false] }],
    table: { k: 'v' }, long: { '!': 'int64', value: 2 ** 40 },
    decimal: { '!': 'decimal', value: { places: 2, digits: 314 } },
    time: { '!': 'timestamp', value: 1600000000 }, bytes: Buffer.from([0, 255]),
  };
  const body = Buffer.alloc(100000, 'ab');
  const sent = {
    contentType: 'text/plain', contentEncoding: 'utf-8', headers, persistent: true, priority: 3,
    correlationId: 'corr', replyTo: 'reply', expiration: '60000', messageId: 'mid',
    timestamp: 1600000000, type: 'kind', userId: 'guest', appId: 'app',
  };
  ch.sendToQueue(q, body, sent);
  await ch.waitForConfirms();
  const m = await ch.get(q, { noAck: true });
  expect(m && m.content.equals(body), 'body');
  const p = m.properties;
  for (const k of ['contentType', 'contentEncoding', 'priority', 'correlationId', 'replyTo', 'expiration',
    'messageId', 'timestamp', 'type', 'userId', 'appId']) {
    expect(p[k] === sent[k], `${k}: ${p[k]}`);
  }
  expect(p.deliveryMode === 2, `deliveryMode ${p.deliveryMode}`);
  const h = p.headers;
  expect(h.str === 's' && h.int === 42 && h.float === 1.5 && h.bool === true && h.void === null, 'scalars');
  expect(JSON.stringify(h.list) === '[1,"a",{"nested":[false]}]' && h.table.k === 'v', 'list and table');
  expect(h.long === 2 ** 40 && h.decimal.value.digits === 314 && h.decimal.value.places === 2, 'long and decimal');
  expect(h.time.value === 1600000000 && h.bytes.equals(Buffer.from([0, 255])), 'timestamp and bytes');
  ok('content');

  // A mandatory publish with no route comes back; a full reject-publish
  // queue nacks.
  const returned = new Promise((resolve) => ch.once('return', resolve));
  ch.publish('', name('nowhere'), Buffer.from('lost'), { mandatory: true });
  const r = await returned;
  expect(r.fields.replyCode === 312 && r.content.toString() === 'lost', `return ${r.fields.replyCode}`);
  const full = name('full');
  await ch.assertQueue(full, { autoDelete: true, arguments: { 'x-max-length': 1, 'x-overflow': 'reject-publish' } });
  const outcome = (body) => new Promise((resolve) => ch.sendToQueue(full, Buffer.from(body), {}, (err) => resolve(err ? 'nack' : 'ack')));
  expect(await outcome('first') === 'ack', 'first publish nacked');
  expect(await outcome('second') === 'nack', 'a publish to a full queue was confirmed');
  await ch.deleteQueue(full);
  ok('confirms');

  // Consumers: per-consumer prefetch, priorities, nack multiple, and the
  // server's cancel when the queue goes.
  const cq = name('consume');
  await ch.assertQueue(cq);
  for (let i = 0; i < 10; i++) ch.sendToQueue(cq, Buffer.from(String(i)));
  await ch.waitForConfirms();
  const c = await conn.createChannel();
  await c.prefetch(4);
  const box = inbox();
  await c.consume(cq, (msg) => box.push(msg), { priority: 5 });
  const firstFour = [];
  for (let i = 0; i < 4; i++) firstFour.push(await box.next());
  expect(firstFour.map((msg) => msg.content.toString()).join() === '0,1,2,3', 'first four in order');
  c.nack(firstFour[3], true, true); // all four back
  const bodies = new Set();
  let redelivered = 0;
  while (bodies.size < 10) {
    const msg = await box.next();
    expect(msg !== null, 'cancelled early');
    bodies.add(msg.content.toString());
    if (msg.fields.redelivered) redelivered++;
    c.ack(msg);
  }
  expect(redelivered === 4, `${redelivered} redelivered, want 4`);
  await ch.deleteQueue(cq);
  expect(await box.next() === null, 'no cancel from the server'); // amqplib's form of basic.cancel
  ok('consumers');

  // Direct reply-to.
  const rpc = name('rpc');
  await ch.assertQueue(rpc);
  const replies = inbox();
  await ch.consume('amq.rabbitmq.reply-to', (msg) => replies.push(msg), { noAck: true });
  ch.sendToQueue(rpc, Buffer.from('ping'), { replyTo: 'amq.rabbitmq.reply-to', correlationId: '7' });
  await ch.waitForConfirms();
  const req = await ch.get(rpc, { noAck: true });
  expect(req && req.properties.replyTo.startsWith('amq.rabbitmq.reply-to.'), 'replyTo');
  ch.sendToQueue(req.properties.replyTo, Buffer.from('pong'), { correlationId: req.properties.correlationId });
  const reply = await replies.next();
  expect(reply.content.toString() === 'pong' && reply.properties.correlationId === '7', 'reply');
  await ch.deleteQueue(rpc);
  ok('direct-reply-to');

  // A stream read from its first offset.
  const sq = name('stream');
  await ch.assertQueue(sq, { durable: true, arguments: { 'x-queue-type': 'stream' } });
  for (let i = 0; i < 3; i++) ch.sendToQueue(sq, Buffer.from(`s${i}`));
  await ch.waitForConfirms();
  const s = await conn.createChannel();
  await s.prefetch(10);
  const stream = inbox();
  await s.consume(sq, (msg) => stream.push(msg), { arguments: { 'x-stream-offset': 'first' } });
  const read = [];
  for (let i = 0; i < 3; i++) {
    const msg = await stream.next();
    read.push(msg.content.toString());
    s.ack(msg);
  }
  expect(read.join() === 's0,s1,s2', `stream ${read}`);
  await s.close();
  await ch.deleteQueue(sq);
  ok('stream');

  // A channel error closes only its channel.
  const bad = await conn.createChannel();
  const badClosed = new Promise((resolve) => bad.on('close', resolve));
  bad.on('error', () => {});
  await bad.checkQueue(name('missing')).then(
    () => { throw new Error('checkQueue of a missing queue succeeded'); },
    (e) => expect(e.code === 404, `code ${e.code}`));
  await badClosed;
  await ch.checkQueue(q);
  ok('errors');

  await conn.close();
  ok('close');
}

main().catch((e) => { console.error('FAIL', e); process.exit(1); });

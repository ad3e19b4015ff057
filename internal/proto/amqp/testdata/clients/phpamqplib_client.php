<?php
// Drives Ferry's AMQP front end with php-amqplib, PHP's RabbitMQ client
// (Debian's php-amqplib).
//
// Run by TestPHPAMQPLibClient (clients_test.go) as: php
// phpamqplib_client.php HOST PORT. Each check prints "ok NAME"; the Go
// test requires every name it knows. Any uncaught exception exits
// non-zero.

require_once '/usr/share/php/PhpAmqpLib/autoload.php';

use PhpAmqpLib\Connection\AMQPStreamConnection;
use PhpAmqpLib\Exception\AMQPProtocolChannelException;
use PhpAmqpLib\Message\AMQPMessage;
use PhpAmqpLib\Wire\AMQPTable;

error_reporting(E_ALL);
set_error_handler(function ($no, $str, $file, $line) {
    throw new ErrorException($str, 0, $no, $file, $line);
});

$run = bin2hex(random_bytes(4));
function name($s) { global $run; return "php-$s-$run"; }
function ok($check) { echo "ok $check\n"; }
function expect($cond, $what) { if (!$cond) { throw new Exception($what); } }

[$host, $port] = [$argv[1], (int) $argv[2]];
$conn = new AMQPStreamConnection($host, $port, 'guest', 'guest', '/', false, 'AMQPLAIN', null, 'en_US',
    3.0, 10.0, null, false, 30);
expect($conn->getServerProperties()['product'][1] === 'Ferry', 'product');
ok('connect');

try {
    new AMQPStreamConnection($host, $port, 'guest', 'wrong');
    throw new Exception('a wrong password connected');
} catch (PhpAmqpLib\Exception\AMQPConnectionClosedException $e) {
    expect($e->getCode() === 403, 'wrong password: ' . $e->getCode() . ' ' . $e->getMessage());
}
ok('wrong-password');

// Content: properties and the field types php-amqplib writes, confirmed.
$ch = $conn->channel();
$ch->confirm_select();
$acks = $nacks = 0;
$ch->set_ack_handler(function () use (&$acks) { $acks++; });
$ch->set_nack_handler(function () use (&$nacks) { $nacks++; });
[$q] = $ch->queue_declare('', false, false, true, true);
expect(str_starts_with($q, 'amq.gen-'), "server-named queue $q");
$headers = new AMQPTable(['str' => 's', 'int' => 42, 'neg' => -7, 'long' => 1 << 40, 'bool' => true,
    'float' => 1.5, 'list' => [1, 'a'], 'table' => ['k' => 'v']]);
$body = str_repeat("\x00\x01\x02", 100000);
$ch->basic_publish(new AMQPMessage($body, ['content_type' => 'application/octet-stream', 'delivery_mode' => 2,
    'priority' => 3, 'correlation_id' => 'corr', 'reply_to' => 'reply', 'expiration' => '60000',
    'message_id' => 'mid', 'timestamp' => 1600000000, 'type' => 'kind', 'app_id' => 'app',
    'application_headers' => $headers]), '', $q);
$ch->wait_for_pending_acks(10);
expect($acks === 1 && $nacks === 0, "acks $acks nacks $nacks");
$m = $ch->basic_get($q, true);
expect($m->getBody() === $body, 'body of ' . strlen($m->getBody()) . ' bytes');
foreach (['content_type' => 'application/octet-stream', 'delivery_mode' => 2, 'priority' => 3,
    'correlation_id' => 'corr', 'reply_to' => 'reply', 'expiration' => '60000', 'message_id' => 'mid',
    'timestamp' => 1600000000, 'type' => 'kind', 'app_id' => 'app'] as $k => $v) {
    expect($m->get($k) === $v, "$k: " . var_export($m->get($k), true));
}
$h = $m->get('application_headers')->getNativeData();
expect($h['str'] === 's' && $h['int'] === 42 && $h['neg'] === -7 && $h['long'] === 1 << 40 && $h['bool'] === true,
    'scalars ' . var_export($h, true));
// php-amqplib writes a float as a decimal, and reads a decimal as its digits.
expect($h['float'] === '1.5' && $h['list'] === [1, 'a'] && $h['table'] === ['k' => 'v'], 'float, list and table ' . var_export($h, true));
ok('content');

// A nack from a full reject-publish queue.
$full = name('full');
$ch->queue_declare($full, false, false, false, true, false,
    new AMQPTable(['x-max-length' => 1, 'x-overflow' => 'reject-publish']));
$ch->basic_publish(new AMQPMessage('first'), '', $full);
$ch->basic_publish(new AMQPMessage('second'), '', $full);
$ch->wait_for_pending_acks(10);
expect($acks === 2 && $nacks === 1, "acks $acks nacks $nacks");
ok('confirm-nack');

// A work queue consumed with prefetch and acks, as in RabbitMQ's PHP
// tutorials.
$wq = name('work');
$ch->queue_declare($wq, false, true, false, false);
for ($i = 0; $i < 20; $i++) {
    $ch->basic_publish(new AMQPMessage("$i", ['delivery_mode' => AMQPMessage::DELIVERY_MODE_PERSISTENT]), '', $wq);
}
$ch->wait_for_pending_acks(10);
$w = $conn->channel();
$w->basic_qos(null, 5, null);
$seen = [];
$w->basic_consume($wq, 'php-worker', false, false, false, false, function ($msg) use (&$seen) {
    $seen[] = $msg->getBody();
    $msg->ack();
});
while (count($seen) < 20) {
    $w->wait(null, false, 10);
}
$w->basic_cancel('php-worker');
expect($seen === array_map('strval', range(0, 19)), 'order ' . implode(',', $seen));
[, $count] = $ch->queue_declare($wq, true);
expect($count === 0, "$count left");
$ch->queue_delete($wq);
ok('consume');

// Topic routing through an exchange-to-exchange binding, and a
// transaction.
$ex = name('topic');
$ch->exchange_declare($ex, 'topic', false, false, true);
$ch->exchange_declare(name('fan'), 'fanout', false, false, true);
$ch->exchange_bind(name('fan'), $ex, 'logs.*');
$ch->queue_bind($q, name('fan'));
$t = $conn->channel();
$t->tx_select();
$t->basic_publish(new AMQPMessage('rolled-back'), $ex, 'logs.error');
$t->tx_rollback();
$t->basic_publish(new AMQPMessage('committed'), $ex, 'logs.error');
$t->basic_publish(new AMQPMessage('no route'), $ex, 'other');
$t->tx_commit();
$m = $ch->basic_get($q, true);
expect($m !== null && $m->getBody() === 'committed', 'routed ' . ($m ? $m->getBody() : 'nothing'));
expect($ch->basic_get($q, true) === null, 'more than one routed');
ok('routing-and-tx');

// A channel error closes only its channel.
try {
    $conn->channel()->queue_declare(name('missing'), true);
    throw new Exception('passive declare of a missing queue succeeded');
} catch (AMQPProtocolChannelException $e) {
    expect($e->getCode() === 404, 'code ' . $e->getCode());
}
$ch->queue_declare($q, true);
ok('errors');

$ch->close();
$conn->close();
ok('close');

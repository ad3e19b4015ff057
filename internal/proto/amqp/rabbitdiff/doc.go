// Package rabbitdiff holds the differential test of the AMQP 0-9-1 front
// end: the same scenarios, written with amqp091-go, run against a private
// RabbitMQ 3.10 (the Debian package rabbitmq-server) and against Ferry, and
// their transcripts are compared. Every scenario whose transcripts differ
// is listed in testdata/differences.txt with the item of docs/amqp.md that
// documents the difference, and the differing lines; the test fails when a
// difference is new, changed or gone, so that docs/amqp.md's list of
// differences from RabbitMQ is checked rather than asserted.
//
// It owns only tests: it must never hold code that Ferry runs, nor
// start a RabbitMQ it does not stop.
package rabbitdiff

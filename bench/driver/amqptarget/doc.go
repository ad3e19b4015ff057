// Package amqptarget drives an AMQP 0-9-1 broker (RabbitMQ, and Ferry's
// AMQP front end) for internal/loadgen through github.com/rabbitmq/amqp091-go.
//
// It owns the mapping of a loadgen topology onto AMQP: a durable fanout
// exchange named after the route, bound to durable queues of the
// configured type (quorum, classic); persistent messages; publisher
// confirms; a channel per consumer with basic.qos and one basic.ack per
// message. It must never acknowledge a delivery before the load generator
// has accounted for it, and never publish transiently.
package amqptarget

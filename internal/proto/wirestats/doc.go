// Package wirestats holds the counters every front end keeps for the
// node's metrics: the bytes read from and written to client sockets and
// the errors answered to clients, by code.
//
// It owns only the counting: what counts as an error answered, and the
// name of a code, are each front end's (a base.Code for AMQP, Kafka's
// ErrorCode for Kafka). It must never import a front end, block a
// connection's reader or writer beyond one atomic add per socket call,
// or keep more than one entry per distinct code.
package wirestats

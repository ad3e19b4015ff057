// Package auth owns who may connect and what they may do: password hashes
// (argon2id) and SCRAM credentials, the SASL server mechanisms (PLAIN,
// SCRAM-SHA-256/512, AMQPLAIN's login and password), RabbitMQ-style
// permissions per user and tenant (vhost) with user tags, and RabbitMQ-style
// policies and how they merge with an entity's own arguments.
//
// It is pure: no I/O, no clock reads, no randomness drawn inside (salts and
// nonces come from the caller), no goroutines of its own (x/crypto's argon2
// runs one per lane and waits for them). Users, permissions and policies
// come from the controller's replicated state; this package compiles them
// once and answers questions about them. It must never import anything of
// Ferry but internal/base, and never log or return a password.
package auth

// Package ferry embeds a Ferry broker in a Go program — for tests of
// applications that use a broker, and for services that want one in
// process — and gives that program a small client for it.
//
//	srv, err := ferry.NewServer(ferry.Config{DataDir: dir})
//	...
//	defer srv.Close()
//	amqpURL := "amqp://guest:guest@" + srv.Addr("amqp") + "/" // for any AMQP client
//	c, err := srv.Connect(ctx)                                  // or in process
//	err = c.DeclareQueue(ctx, "jobs")
//	err = c.Publish(ctx, "", "jobs", ferry.Message{Body: []byte("hi")})
//
// The server is the same node `ferry serve` runs (durable: Publish returns
// once the message is fsynced), with its listeners on free loopback ports
// by default so tests never collide.
//
// The client is in process, over the broker itself rather than over a
// protocol: it needs no socket or codec, works with every listener turned
// off, and keeps this package's API to a handful of calls. Programs that
// talk to a remote Ferry use the standard clients of the protocol they
// prefer (AMQP, Kafka, MQTT, STOMP, HTTP) — that is the point of Ferry
// speaking them.
//
// This package owns only the embedding API. It must never hold broker
// logic (it delegates to internal/server) nor write to the host program's
// stderr unless given a logger.
package ferry

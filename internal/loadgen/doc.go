// Package loadgen is Ferry's protocol-neutral load generator: the core that
// bench/ (side by side with peer brokers) and `ferry bench` drive.
//
// It owns producers and consumers as goroutines under one context, the pacer
// (open loop at a fixed rate, so that a stalled broker shows its stall as
// latency instead of hiding it: coordinated omission), the bound on confirms
// in flight, end-to-end latency histograms (the intended send time travels in
// the message body), the accounting of every message by producer and
// sequence number (sent, confirmed, nacked, received, lost, duplicated) in
// compact bitmaps, live progress, and the Result of a run.
//
// A broker is reached through a Target. The core knows Targets only
// through target.go's interfaces. The two Targets that bench/driver and
// `ferry bench` share live here so that there is one implementation of
// each: AMQPTarget (amqp091-go; RabbitMQ and Ferry) in target_amqp.go and
// KafkaTarget (franz-go; Ferry) in target_kafka.go. They are the only files
// that import a protocol's client library (test/layering gives a
// subpackage no layer of its own). The peers' other protocols (NATS
// JetStream, MQTT) and the in-process floor are bench/driver's, and the
// HTTP API's target is the CLI's.
//
// The core must never refer to a concrete Target, never read the wall
// clock except through base.Clock, and never decide a run's pass or fail
// on timing: a run fails only when its accounting does (a confirmed message
// was not received, or a message arrived that was never sent).
package loadgen

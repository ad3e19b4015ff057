// Package loadgen is Ferry's protocol-neutral load generator: the core that
// bench/ (side by side with peer brokers) and, later, `ferry bench` drive.
//
// It owns producers and consumers as goroutines under one context, the pacer
// (open loop at a fixed rate, so that a stalled broker shows its stall as
// latency instead of hiding it: coordinated omission), the bound on confirms
// in flight, end-to-end latency histograms (the intended send time travels in
// the message body), the accounting of every message by producer and
// sequence number (sent, confirmed, nacked, received, lost, duplicated) in
// compact bitmaps, live progress, and the Result of a run.
//
// What it does not own: protocols. A broker is reached through a Target,
// implemented per protocol outside this package (bench/ has AMQP 0-9-1, NATS
// JetStream, MQTT and Kafka). loadgen must never import a client library of
// a protocol, never read the wall clock except through base.Clock, and never
// decide a run's pass or fail on timing: a run fails only when its
// accounting does (a confirmed message was not received, or a message
// arrived that was never sent).
package loadgen

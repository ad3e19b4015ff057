// Package mqtttarget drives an MQTT 3.1.1 broker (mosquitto, and later
// Ferry's MQTT front end) for internal/loadgen through
// github.com/eclipse/paho.mqtt.golang.
//
// It owns the mapping of a loadgen topology onto MQTT: the route is a
// topic; each queue is a persistent session (clean session off, client id
// derived from the queue name) subscribed to it at QoS 1, so messages
// queue while the consumer is away and every session gets a copy.
// Publishes are QoS 1; the PUBACK is the confirm. Consumers acknowledge
// (PUBACK) only after the handler returned. MQTT 3.1.1 has no per-client
// prefetch: the broker's own in-flight window (mosquitto's
// max_inflight_messages) plays that part and the benchmark configures it.
// It must never publish at QoS 0.
package mqtttarget

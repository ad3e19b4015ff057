package kafka

import (
	"testing"

	"github.com/ferry-mq/ferry/internal/proto/clienttest"
)

// These tests drive the real broker with Kafka clients beside franz-go,
// sarama, kafka-go and kcat, each its own implementation of the protocol:
// kafka-python (pure Python) and KafkaJS (Node). Each runs a program from
// testdata/clients through clienttest.Run. .ci/run installs the Debian
// package python3-kafka and runs npm ci in testdata/clients.

const clientsDir = "testdata/clients"

func TestKafkaPythonClient(t *testing.T) {
	t.Parallel()
	python := clienttest.Python(t, "kafka", "python3-kafka")
	_, srv := startBroker(t, nil)
	clienttest.Run(t, clientsDir, []string{"admin", "produce", "group", "offsets", "seek", "close"},
		nil, python, "kafkapython_client.py", srv.addr)
}

func TestKafkaJSClient(t *testing.T) {
	t.Parallel()
	node := clienttest.Node(t, clientsDir, "kafkajs")
	_, srv := startBroker(t, nil)
	clienttest.Run(t, clientsDir, []string{"admin", "produce", "group", "offsets", "reset", "close"},
		nil, node, "kafkajs_client.js", srv.addr)
}

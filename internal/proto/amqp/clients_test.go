package amqp

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ferry-mq/ferry/internal/proto/clienttest"
)

// These tests drive the server with AMQP clients other than amqp091-go, each
// its own implementation of the protocol: RabbitMQ's Java client (the one
// under Spring AMQP), pika (Python's RabbitMQ client), py-amqp (the client
// under Celery and kombu), aio-pika (Python's asyncio client, on pamqp),
// php-amqplib (PHP's), Bunny (Ruby's) and amqplib (Node's), and a Celery
// worker with its client. Each runs a program from testdata/clients through
// clienttest.Run. .ci/run installs the Debian packages
// librabbitmq-client-java, python3-pika, python3-amqp, python3-aio-pika,
// php-cli, php-amqplib, ruby-bunny and python3-celery, and runs npm ci in
// testdata/clients.

const clientsDir = "testdata/clients"

func TestPikaClient(t *testing.T) {
	python := clienttest.Python(t, "pika", "python3-pika")
	ts := startServer(t)
	clienttest.Run(t, clientsDir, []string{"negotiation", "wrong-password", "wrong-vhost", "content", "mandatory-return",
		"confirm-nack", "exchanges", "queues", "acks", "consumers", "transactions", "arguments",
		"direct-reply-to", "stream", "close"},
		nil, python, "pika_client.py", ts.url+"%2F")
}

func TestPyAMQPClient(t *testing.T) {
	python := clienttest.Python(t, "amqp", "python3-amqp")
	ts := startServer(t)
	hostPort := strings.TrimSuffix(strings.TrimPrefix(ts.url, "amqp://guest:guest@"), "/")
	clienttest.Run(t, clientsDir, []string{"amqplain", "wrong-password", "content", "confirm-nack", "consume", "errors", "close"},
		nil, python, "pyamqp_client.py", hostPort)
}

func TestAioPikaClient(t *testing.T) {
	python := clienttest.Python(t, "aio_pika", "python3-aio-pika")
	ts := startServer(t)
	clienttest.Run(t, clientsDir, []string{"connect", "wrong-password", "content", "confirm-nack", "consume", "errors", "close"},
		nil, python, "aiopika_client.py", ts.url)
}

func TestPHPAMQPLibClient(t *testing.T) {
	php, err := exec.LookPath("php")
	if err != nil {
		t.Skip("php not found: install the Debian packages php-cli and php-amqplib")
	}
	if _, err := os.Stat("/usr/share/php/PhpAmqpLib/autoload.php"); err != nil {
		t.Skip("php-amqplib not found: install the Debian package php-amqplib")
	}
	ts := startServer(t)
	host, port, _ := strings.Cut(strings.TrimSuffix(strings.TrimPrefix(ts.url, "amqp://guest:guest@"), "/"), ":")
	clienttest.Run(t, clientsDir, []string{"connect", "wrong-password", "content", "confirm-nack", "consume", "routing-and-tx",
		"errors", "close"},
		nil, php, "phpamqplib_client.php", host, port)
}

func TestAmqplibClient(t *testing.T) {
	node := clienttest.Node(t, clientsDir, "amqplib")
	ts := startServer(t)
	clienttest.Run(t, clientsDir, []string{"negotiation", "wrong-password", "content", "confirms", "consumers",
		"direct-reply-to", "stream", "errors", "close"},
		nil, node, "amqplib_client.js", strings.TrimSuffix(ts.url, "/"))
}

func TestJavaClient(t *testing.T) {
	java, err := exec.LookPath("java")
	if err != nil {
		t.Skip("java not found: install a JDK (11 or later)")
	}
	jars := []string{"/usr/share/java/amqp-client.jar", "/usr/share/java/slf4j-api.jar"}
	for _, jar := range jars {
		if _, err := os.Stat(jar); err != nil {
			t.Skipf("%s not found: install the Debian package librabbitmq-client-java", jar)
		}
	}
	ts := startServer(t)
	// The JDK compiles and runs the one source file (JEP 330).
	clienttest.Run(t, clientsDir, []string{"negotiation", "wrong-password", "content", "confirms", "consumers",
		"transactions-and-errors", "direct-reply-to", "close", "ready-for-close", "recovery"},
		map[string]func(){"ready-for-close": func() { ts.killAll("closed by the test") }},
		java, "-cp", strings.Join(jars, ":"), "JavaClient.java", strings.TrimSuffix(ts.url, "/"))
}

func TestBunnyClient(t *testing.T) {
	ruby, err := exec.LookPath("ruby")
	if err != nil || exec.Command(ruby, "-e", "require 'bunny'").Run() != nil {
		t.Skip("ruby with bunny not found: install the Debian package ruby-bunny")
	}
	ts := startServer(t)
	clienttest.Run(t, clientsDir, []string{"negotiation", "wrong-password", "content", "confirm-nack", "consume",
		"close", "ready-for-close", "recovery"},
		map[string]func(){"ready-for-close": func() { ts.killAll("closed by the test") }},
		ruby, "bunny_client.rb", strings.TrimSuffix(ts.url, "/"))
}

// TestCeleryWorkerAndClient runs a Celery worker (Celery on kombu and
// py-amqp, the largest user of RabbitMQ among Python frameworks) against
// the server and a client that sends it tasks, gets their results over
// the rpc:// backend, has one retried, pings and inspects the worker over
// its broadcast exchange, and shuts it down.
func TestCeleryWorkerAndClient(t *testing.T) {
	python := clienttest.Python(t, "celery", "python3-celery")
	ts := startServer(t)
	env := append(os.Environ(), "FERRY_AMQP_URL="+strings.TrimSuffix(ts.url, "/")+"//")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	worker := exec.CommandContext(ctx, python, "-m", "celery", "-A", "celery_tasks", "worker",
		"--pool=solo", "--events", "--hostname=ferry@test", "--loglevel=warning")
	worker.Dir, worker.Env = clientsDir, env
	var workerOut strings.Builder
	worker.Stdout, worker.Stderr = &workerOut, &workerOut
	worker.WaitDelay = 10 * time.Second // for output pipes a killed worker's children hold
	if err := worker.Start(); err != nil {
		t.Fatal(err)
	}
	var workerErr error
	workerDone := make(chan struct{})
	go func() {
		workerErr = worker.Wait()
		close(workerDone)
	}()
	t.Cleanup(func() {
		cancel() // kills a worker the client did not shut down
		<-workerDone
	})
	clienttest.RunEnv(t, clientsDir, env, []string{"tasks", "retry", "control", "shutdown"}, nil,
		python, "celery_client.py")
	<-workerDone
	if workerErr != nil {
		t.Errorf("the worker ended with %v after its shutdown\n%s", workerErr, workerOut.String())
	}
}

package amqp

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// These tests drive the server with AMQP clients other than amqp091-go,
// each its own implementation of the protocol: RabbitMQ's Java client (the
// one under Spring AMQP), pika (Python's RabbitMQ client), py-amqp (the
// client under Celery and kombu), aio-pika (Python's asyncio client, on
// pamqp), php-amqplib (PHP's) and amqplib (Node's). Each runs a script from testdata/clients that prints
// "ok NAME" after each check and exits non-zero on any failure; the test
// requires every check, in order. They skip when the client is missing:
// .ci/run installs the Debian packages librabbitmq-client-java,
// python3-pika, python3-amqp, python3-aio-pika, php-cli and php-amqplib,
// and runs npm ci in testdata/clients.

const clientsDir = "testdata/clients"

// pythonWith returns a python3 that can import module: the one on PATH
// (which may be a pyenv build without Debian's packages) or Debian's.
func pythonWith(t *testing.T, module, debianPackage string) string {
	t.Helper()
	for _, name := range []string{"python3", "/usr/bin/python3"} {
		path, err := exec.LookPath(name)
		if err != nil {
			continue
		}
		if exec.Command(path, "-c", "import "+module).Run() == nil {
			return path
		}
	}
	t.Skipf("no python3 that imports %s: install the Debian package %s", module, debianPackage)
	return ""
}

// runClient runs a client script and checks that it passed every check
// in want, in order. When the script reports a check that hooks names,
// the hook runs before the script reads on (the script waits for what
// the hook does, such as a connection closed by the broker).
func runClient(t *testing.T, want []string, hooks map[string]func(), name string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = clientsDir
	var out, stderr strings.Builder // stdout's lines, and what exec copies from stderr
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var passed []string
	lines := bufio.NewScanner(stdout)
	for lines.Scan() {
		line := lines.Text()
		out.WriteString(line + "\n")
		if check, ok := strings.CutPrefix(strings.TrimSpace(line), "ok "); ok {
			passed = append(passed, check)
			if hook := hooks[check]; hook != nil {
				hook()
			}
		}
	}
	err = cmd.Wait()
	out.WriteString(stderr.String())
	if err != nil {
		t.Fatalf("%s %s: %v after %v\n%s", name, strings.Join(args, " "), err, passed, out.String())
	}
	if !slices.Equal(passed, want) {
		t.Fatalf("checks passed %v, want %v\n%s", passed, want, out.String())
	}
}

func TestPikaClient(t *testing.T) {
	python := pythonWith(t, "pika", "python3-pika")
	ts := startServer(t)
	runClient(t, []string{"negotiation", "wrong-password", "wrong-vhost", "content", "mandatory-return",
		"confirm-nack", "exchanges", "queues", "acks", "consumers", "transactions", "arguments",
		"direct-reply-to", "stream", "close"},
		nil, python, "pika_client.py", ts.url+"%2F")
}

func TestPyAMQPClient(t *testing.T) {
	python := pythonWith(t, "amqp", "python3-amqp")
	ts := startServer(t)
	hostPort := strings.TrimSuffix(strings.TrimPrefix(ts.url, "amqp://guest:guest@"), "/")
	runClient(t, []string{"amqplain", "wrong-password", "content", "confirm-nack", "consume", "errors", "close"},
		nil, python, "pyamqp_client.py", hostPort)
}

func TestAioPikaClient(t *testing.T) {
	python := pythonWith(t, "aio_pika", "python3-aio-pika")
	ts := startServer(t)
	runClient(t, []string{"connect", "wrong-password", "content", "confirm-nack", "consume", "errors", "close"},
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
	runClient(t, []string{"connect", "wrong-password", "content", "confirm-nack", "consume", "routing-and-tx",
		"errors", "close"},
		nil, php, "phpamqplib_client.php", host, port)
}

func TestAmqplibClient(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not found: install Node.js, then run npm ci in " + clientsDir)
	}
	if _, err := os.Stat(filepath.Join(clientsDir, "node_modules", "amqplib")); err != nil {
		t.Skip("amqplib is not installed: run npm ci --prefix internal/proto/amqp/" + clientsDir)
	}
	ts := startServer(t)
	runClient(t, []string{"negotiation", "wrong-password", "content", "confirms", "consumers",
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
	runClient(t, []string{"negotiation", "wrong-password", "content", "confirms", "consumers",
		"transactions-and-errors", "direct-reply-to", "close", "ready-for-close", "recovery"},
		map[string]func(){"ready-for-close": func() { ts.killAll("closed by the test") }},
		java, "-cp", strings.Join(jars, ":"), "JavaClient.java", strings.TrimSuffix(ts.url, "/"))
}

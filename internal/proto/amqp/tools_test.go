package amqp

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// These tests drive Debian's amqp-tools (librabbitmq's command-line
// clients) against the server, as CI does. They skip when the tools are
// missing: apt-get install amqp-tools.

func amqpTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not found: install the Debian package amqp-tools", name)
	}
	return path
}

func runTool(t *testing.T, path string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", path, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestAMQPToolsPublishGetAndConsume(t *testing.T) {
	publishTool := amqpTool(t, "amqp-publish")
	getTool := amqpTool(t, "amqp-get")
	consumeTool := amqpTool(t, "amqp-consume")
	declareTool := amqpTool(t, "amqp-declare-queue")
	ts := startServer(t)
	url := strings.TrimSuffix(ts.url, "/")
	if out := runTool(t, declareTool, "-u", url, "-d", "-q", "tools"); strings.TrimSpace(out) != "tools" {
		t.Errorf("amqp-declare-queue printed %q, want tools", out)
	}
	runTool(t, publishTool, "-u", url, "-r", "tools", "-p", "-C", "text/plain", "-H", "origin: cli", "-b", "from amqp-publish")
	runTool(t, publishTool, "-u", url, "-r", "tools", "-b", "second")
	waitFor(t, "two messages", func() bool { n, _ := ts.depth("tools"); return n == 2 })
	if out := runTool(t, getTool, "-u", url, "-q", "tools"); out != "from amqp-publish" {
		t.Errorf("amqp-get printed %q", out)
	}
	// amqp-consume runs a command per message with the body on stdin.
	if out := runTool(t, consumeTool, "-u", url, "-q", "tools", "-c", "1", "cat"); out != "second" {
		t.Errorf("amqp-consume printed %q", out)
	}
	if n, _ := ts.depth("tools"); n != 0 {
		t.Errorf("%d messages left, want 0", n)
	}
}

package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferry-mq/ferry/internal/testnet"
)

// readmeBlock returns the fenced code block that follows the line
// "<!-- quickstart:name -->" in the README.
func readmeBlock(t *testing.T, readme, name string) string {
	t.Helper()
	marker := "<!-- quickstart:" + name + " -->\n"
	_, after, ok := strings.Cut(readme, marker)
	if !ok {
		t.Fatalf("README.md has no %q marker", strings.TrimSpace(marker))
	}
	fence, rest, ok := strings.Cut(after, "\n")
	if !ok || !strings.HasPrefix(fence, "```") {
		t.Fatalf("README.md: %q is not followed by a fenced block", strings.TrimSpace(marker))
	}
	body, _, ok := strings.Cut(rest, "```")
	if !ok {
		t.Fatalf("README.md: the block after %q is not closed", strings.TrimSpace(marker))
	}
	return body
}

// standardPorts are the ports the README uses, with the variable that
// moves each.
var standardPorts = []struct {
	port int
	env  string
}{{5672, "FERRY_LISTENERS_AMQP"}, {9092, "FERRY_LISTENERS_KAFKA"}, {8080, "FERRY_LISTENERS_HTTP"}}

// portsFor returns the environment that moves every standard port that is
// taken on this machine to a free one, and the replacements of
// "localhost:<port>" the client commands then need.
func portsFor(t *testing.T) (env []string, replace []string) {
	t.Helper()
	for _, p := range standardPorts {
		ln, err := net.Listen("tcp", fmt.Sprintf(":%d", p.port))
		if err == nil {
			ln.Close()
			continue
		}
		port := testnet.FreePorts(t, 1)[0]
		env = append(env, fmt.Sprintf("%s=127.0.0.1:%d", p.env, port))
		if p.port == 8080 {
			env = append(env, fmt.Sprintf("FERRY_SERVER=http://127.0.0.1:%d", port)) // where the client commands find the API
		}
		replace = append(replace, fmt.Sprintf("localhost:%d", p.port), fmt.Sprintf("localhost:%d", port))
		t.Logf("port %d is taken here; using %d (%s)", p.port, port, p.env)
	}
	return env, replace
}

// TestReadmeQuickStart runs the README's quick start as a new user would:
// the serve block from the repository root, then the client block in a
// shell, and compares what it prints with the README's output block.
func TestReadmeQuickStart(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles and runs the README's commands; skipped with -short")
	}
	for tool, pkg := range map[string]string{"kcat": "kcat", "amqp-publish": "amqp-tools", "amqp-consume": "amqp-tools",
		"amqp-declare-queue": "amqp-tools", "bash": "bash"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed: apt-get install %s (.ci/run installs it)", tool, pkg)
		}
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	serveBlock := readmeBlock(t, string(readme), "serve")
	clientBlock := readmeBlock(t, string(readme), "client")
	want := strings.TrimSpace(readmeBlock(t, string(readme), "output"))
	if strings.TrimSpace(serveBlock) != "go run ./cmd/ferry serve" {
		t.Errorf("the README's first command is %q, want go run ./cmd/ferry serve", strings.TrimSpace(serveBlock))
	}
	portEnv, replace := portsFor(t)
	clientBlock = strings.NewReplacer(replace...).Replace(clientBlock)

	serve := exec.Command("bash", "-c", serveBlock)
	serve.Dir = root
	serve.Env = append(append(os.Environ(), "FERRY_DATA_DIR="+t.TempDir()), portEnv...)
	serve.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // go run's child joins the group, so one signal reaches both
	stderr, err := serve.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	var log syncBuffer
	ready := make(chan struct{})
	eof := make(chan struct{})
	go func() {
		defer close(eof)
		sc := bufio.NewScanner(stderr)
		seen := false
		for sc.Scan() {
			log.Write([]byte(sc.Text() + "\n"))
			if !seen && strings.HasPrefix(sc.Text(), "ferry: ready") {
				seen = true
				close(ready)
			}
		}
	}()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		_ = syscall.Kill(-serve.Process.Pid, syscall.SIGTERM)
		select {
		case <-eof:
		case <-time.After(60 * time.Second): // bounds a hang
			_ = syscall.Kill(-serve.Process.Pid, syscall.SIGKILL)
			<-eof
			t.Errorf("the README's serve command did not stop within 60s of SIGTERM")
		}
		_ = serve.Wait()
	}
	defer stop()
	select {
	case <-ready:
	case <-eof:
		t.Fatalf("the README's serve command exited before ready:\n%s", log.String())
	case <-time.After(5 * time.Minute): // go run compiles first; bounds a hang
		t.Fatalf("no ready line within 5 minutes:\n%s", log.String())
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	client := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", clientBlock)
	client.Dir = root // go run ./cmd/ferry, as a user in a clone of the repository
	client.Env = append(os.Environ(), portEnv...)
	var out, cerr bytes.Buffer
	client.Stdout, client.Stderr = &out, &cerr
	if err := client.Run(); err != nil {
		t.Fatalf("the README's client commands failed: %v\nstdout:\n%s\nstderr:\n%s\nserver:\n%s", err, out.String(), cerr.String(), log.String())
	}
	if got := strings.TrimSpace(out.String()); got != want {
		t.Errorf("the README's client commands printed:\n%s\nwant (the README's output block):\n%s", got, want)
	}
	stop()
	if !strings.Contains(log.String(), "stopped cleanly") {
		t.Errorf("the server did not stop cleanly on SIGTERM:\n%s", log.String())
	}
}

package rabbitdiff

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/ferry-mq/ferry/internal/server"
	"github.com/ferry-mq/ferry/internal/testnet"
)

// rabbitScriptGlob is where the Debian package rabbitmq-server puts the
// script that starts a node in the foreground.
const rabbitScriptGlob = "/usr/lib/rabbitmq/lib/rabbitmq_server-*/sbin/rabbitmq-server"

// brokerStartMax bounds the wait for a broker to take connections: a bound
// on a hang, not a synchronisation (RabbitMQ boots in a few seconds).
const brokerStartMax = 2 * time.Minute

// brokerStopMax bounds a graceful stop before the processes are killed.
const brokerStopMax = time.Minute

// startRabbitMQ starts a RabbitMQ node of its own on free loopback ports,
// with its own epmd, home, database and logs in a temporary directory,
// as bench/compare.sh does, and returns its URL; the node and its epmd
// are stopped when the test ends. It skips the test when the Debian
// package rabbitmq-server is not installed.
func startRabbitMQ(t *testing.T) string {
	t.Helper()
	scripts, _ := filepath.Glob(rabbitScriptGlob)
	if len(scripts) == 0 {
		t.Skip("RabbitMQ not found: install the Debian package rabbitmq-server")
	}
	slices.Sort(scripts)
	script := scripts[len(scripts)-1]
	epmdPath, err := exec.LookPath("epmd")
	if err != nil {
		t.Skip("epmd not found: install the Debian package rabbitmq-server (epmd comes with its Erlang)")
	}
	dir := t.TempDir()
	for _, d := range []string{"home", "mnesia", "log"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ports := testnet.FreePorts(t, 3)
	amqpPort, distPort, epmdPort := ports[0], ports[1], ports[2]
	files := map[string]string{
		"rabbitmq.conf": fmt.Sprintf("listeners.tcp.1 = 127.0.0.1:%d\nloopback_users = none\n"+
			"disk_free_limit.absolute = 100MB\nlog.file.level = warning\n", amqpPort),
		// No plugins: the scenarios use only the core broker.
		"enabled_plugins": "[].\n",
		// Empty, so that /etc/rabbitmq/rabbitmq-env.conf is not read.
		"rabbitmq-env.conf": "",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// Our own epmd, in the foreground, so that it is ours to stop; a node
	// that found none on its port would start a daemon nobody stops.
	epmd := exec.Command(epmdPath, "-port", fmt.Sprint(epmdPort), "-address", "127.0.0.1")
	epmdDone := startProcess(t, epmd, filepath.Join(dir, "epmd.log"))
	t.Cleanup(func() { stopProcess(t, "epmd", epmd, epmdDone) })
	epmdAddr := fmt.Sprintf("127.0.0.1:%d", epmdPort)
	if _, err := waitTaking(epmdDone, func() error {
		c, err := net.DialTimeout("tcp", epmdAddr, time.Second)
		if err == nil {
			err = c.Close()
		}
		return err
	}); err != nil {
		t.Fatalf("epmd (%s): %v", epmdAddr, err)
	}

	srv := exec.Command(script)
	srv.Env = append(os.Environ(),
		"HOME="+filepath.Join(dir, "home"),
		fmt.Sprintf("ERL_EPMD_PORT=%d", epmdPort),
		fmt.Sprintf("RABBITMQ_NODENAME=ferrydiff%d@localhost", os.Getpid()),
		"RABBITMQ_NODE_IP_ADDRESS=127.0.0.1",
		fmt.Sprintf("RABBITMQ_NODE_PORT=%d", amqpPort),
		fmt.Sprintf("RABBITMQ_DIST_PORT=%d", distPort),
		"RABBITMQ_CONFIG_FILE="+filepath.Join(dir, "rabbitmq.conf"),
		"RABBITMQ_ADVANCED_CONFIG_FILE="+filepath.Join(dir, "advanced.config"), // absent: none
		"RABBITMQ_CONF_ENV_FILE="+filepath.Join(dir, "rabbitmq-env.conf"),
		"RABBITMQ_ENABLED_PLUGINS_FILE="+filepath.Join(dir, "enabled_plugins"),
		"RABBITMQ_MNESIA_BASE="+filepath.Join(dir, "mnesia"),
		"RABBITMQ_LOG_BASE="+filepath.Join(dir, "log"),
		"RABBITMQ_PID_FILE="+filepath.Join(dir, "beam.pid"),
	)
	out := filepath.Join(dir, "out.log")
	srvDone := startProcess(t, srv, out)
	// The script traps SIGTERM and stops the Erlang VM gracefully.
	t.Cleanup(func() { stopProcess(t, "rabbitmq-server", srv, srvDone) })

	url := fmt.Sprintf("amqp://guest:guest@127.0.0.1:%d/", amqpPort)
	took, err := waitTaking(srvDone, func() error {
		c, err := amqp.Dial(url)
		if err == nil {
			err = c.Close()
		}
		return err
	})
	if err != nil {
		t.Fatalf("rabbitmq-server: %v; its output:\n%s", err, tail(out))
	}
	t.Logf("RabbitMQ (%s) took connections after %v", script, took.Round(time.Millisecond))
	return url
}

// startProcess starts cmd in a process group of its own, its output to
// logPath, and returns the channel its Wait result arrives on.
func startProcess(t *testing.T, cmd *exec.Cmd, logPath string) chan error {
	t.Helper()
	log, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	// Setpgid: stopProcess kills what is left of the group (the Erlang VM
	// and its helpers) if a graceful stop fails. Pdeathsig: a test binary
	// killed by go test's timeout does not leave a node running.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		_ = log.Close()
		t.Fatalf("starting %s: %v", cmd.Path, err)
	}
	done := make(chan error, 1) // holds the result until stopProcess takes it
	go func() {
		err := cmd.Wait()
		_ = log.Close()
		done <- err
	}()
	return done
}

// stopProcess stops a process started by startProcess: SIGTERM, then,
// after brokerStopMax, SIGKILL; either way the rest of its process group
// is killed and its Wait has returned when stopProcess does.
func stopProcess(t *testing.T, name string, cmd *exec.Cmd, done chan error) {
	t.Helper()
	pgid := cmd.Process.Pid
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(brokerStopMax):
		t.Errorf("%s did not stop within %v of SIGTERM; killing it", name, brokerStopMax)
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-done
	}
	// Whatever of the group outlived its leader (none when the stop was
	// graceful).
	if err := syscall.Kill(-pgid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		t.Errorf("killing what is left of %s: %v", name, err)
	}
}

// waitTaking polls dial, a connection to a process just started, until it
// succeeds, and returns how long that took; it fails when the process
// (whose Wait result arrives on done) exits first, or after
// brokerStartMax.
func waitTaking(done chan error, dial func() error) (time.Duration, error) {
	began := time.Now()
	for {
		err := dial()
		if err == nil {
			return time.Since(began), nil
		}
		select {
		case werr := <-done:
			done <- werr // for stopProcess
			return 0, fmt.Errorf("exited (%v) before it took connections", werr)
		default:
		}
		if time.Since(began) > brokerStartMax {
			return 0, fmt.Errorf("took no connection within %v: %w", brokerStartMax, err)
		}
		time.Sleep(10 * time.Millisecond) // a poll interval, not synchronisation: the dial decides
	}
}

// tail returns the last lines of a log file, for a failure message.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 40 {
		lines = lines[len(lines)-40:]
	}
	return strings.Join(lines, "\n")
}

// startFerry starts a Ferry node in this process as `ferry serve` runs it
// (the server's defaults), with only its AMQP listener, on a free
// loopback port, and returns its URL; it is shut down when the test ends.
func startFerry(t *testing.T) string {
	t.Helper()
	cfg := server.Defaults()
	cfg.DataDir = t.TempDir()
	cfg.Listeners = server.ListenersConfig{AMQP: "127.0.0.1:0"}
	cfg.Flow.DiskFreeLimit = 1 // the test machine's free space must not block publishers
	s, err := server.Start(cfg, server.Options{Logger: slog.New(slog.DiscardHandler), Announce: io.Discard})
	if err != nil {
		t.Fatalf("starting Ferry: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), brokerStopMax)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutting Ferry down: %v", err)
		}
	})
	select {
	case <-s.Ready():
	case <-s.Failed():
		t.Fatalf("Ferry failed before it was ready: %v", s.Err())
	case <-time.After(brokerStartMax): // a bound on a hang, not a synchronisation
		t.Fatalf("Ferry not ready within %v", brokerStartMax)
	}
	addr, ok := s.Addr("amqp")
	if !ok {
		t.Fatal("Ferry has no AMQP listener")
	}
	return "amqp://guest:guest@" + addr + "/"
}

package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

// ferryBin is the binary built once by TestMain for the tests that run it.
var ferryBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ferry-cli-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ferryBin = filepath.Join(dir, "ferry")
	build := exec.Command("go", "build", "-o", ferryBin, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building ferry:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// result is what one run of the binary did.
type result struct {
	code           int
	stdout, stderr string
}

// runFerry runs the binary with args and extra environment variables
// (on top of a clean environment: PATH and HOME only) and waits for it.
func runFerry(t *testing.T, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, ferryBin, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running ferry %q: %v", args, err)
	}
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

// allCommands returns every command of the tree but help and completion.
func allCommands(c *cobra.Command) []*cobra.Command {
	var out []*cobra.Command
	for _, sub := range c.Commands() {
		if sub.Name() == "help" || sub.Name() == "completion" {
			continue
		}
		out = append(out, sub)
		out = append(out, allCommands(sub)...)
	}
	return out
}

func TestEveryCommandHasHelpWithExamples(t *testing.T) {
	root := newRootCommand(nil, io.Discard, io.Discard)
	cmds := append([]*cobra.Command{root}, allCommands(root)...)
	for _, c := range cmds {
		path := strings.Fields(c.CommandPath())[1:]
		t.Run(strings.Join(append([]string{"ferry"}, path...), "_"), func(t *testing.T) {
			if c.Short == "" || c.Example == "" {
				t.Errorf("%s: Short %q, Example %q; every command needs both", c.CommandPath(), c.Short, c.Example)
			}
			r := runFerry(t, nil, append(path, "--help")...)
			if r.code != ExitOK {
				t.Fatalf("%s --help exited %d: %s", c.CommandPath(), r.code, r.stderr)
			}
			desc := c.Long
			if desc == "" {
				desc = c.Short
			}
			desc, _, _ = strings.Cut(desc, "\n")
			for _, want := range []string{"Usage:", "Examples:", desc} {
				if !strings.Contains(r.stdout, want) {
					t.Errorf("%s --help lacks %q:\n%s", c.CommandPath(), want, r.stdout)
				}
			}
		})
	}
}

func TestVersionCommandAndFlag(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		r := runFerry(t, nil, args...)
		if r.code != ExitOK || !regexp.MustCompile(`^ferry dev \(commit \S+.*, go1\.\d+.*, \w+/\w+\)\n$`).MatchString(r.stdout) {
			t.Errorf("ferry %v: exit %d, stdout %q; want the version line", args, r.code, r.stdout)
		}
	}
}

func TestUsageErrorsExit2AndPointAtHelp(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"bogus"}, `unknown command "bogus" for "ferry"`},
		{[]string{"serve", "--nope"}, "unknown flag: --nope"},
		{[]string{"serve", "extra"}, `ferry serve takes no arguments, got ["extra"]`},
		{[]string{"version", "extra"}, `ferry version takes no arguments`},
	} {
		r := runFerry(t, nil, tt.args...)
		if r.code != ExitUsage || !strings.Contains(r.stderr, tt.want) || !strings.Contains(r.stderr, "--help") {
			t.Errorf("ferry %q: exit %d, stderr %q; want exit %d, %q and a pointer to --help", tt.args, r.code, r.stderr, ExitUsage, tt.want)
		}
	}
}

func TestServePrintConfigShowsValuesAndSources(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "ferry.yaml")
	if err := os.WriteFile(file, []byte("node:\n  id: 4\nlisteners:\n  kafka: \":19092\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := runFerry(t, []string{"FERRY_CONFIG=" + file, "FERRY_LISTENERS_AMQP=:15999", "FERRY_LISTENERS_KAFKA=:19093"},
		"serve", "--print-config", "--log-level", "debug")
	if r.code != ExitOK {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	for _, want := range []string{
		`id: 4 # config file`,
		`kafka: ":19093" # env FERRY_LISTENERS_KAFKA`,
		`amqp: ":15999" # env FERRY_LISTENERS_AMQP`,
		`level: "debug" # flag --log-level`,
		`data_dir: "./data" # default`,
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("--print-config lacks %q:\n%s", want, r.stdout)
		}
	}
	if _, err := os.Stat("data"); err == nil {
		t.Errorf("--print-config created ./data; it must touch nothing")
	}
}

func TestServeRejectsBadConfigurationNamingTheKey(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	badPort := write("port.yaml", "listeners:\n  amqp: \"localhost:99999\"\n")
	typo := write("typo.yaml", "listners:\n  amqp: \":5672\"\n")
	for _, tt := range []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"port out of range in a file", nil, []string{"serve", "--config", badPort},
			`listeners.amqp: "localhost:99999": port out of range (0-65535) (set by file ` + badPort + `)`},
		{"file named by FERRY_CONFIG", []string{"FERRY_CONFIG=" + typo}, []string{"serve"},
			`listners.amqp: "": unknown configuration key; did you mean listeners.amqp?`},
		{"missing file", nil, []string{"serve", "--config", filepath.Join(dir, "none.yaml")},
			"cannot read the config file " + filepath.Join(dir, "none.yaml")},
		{"bad environment value", []string{"FERRY_SHUTDOWN_TIMEOUT=soon"}, []string{"serve"},
			`shutdown.timeout: "soon": not a duration (use a unit: 500ms, 30s, 5m) (set by env FERRY_SHUTDOWN_TIMEOUT)`},
		{"bad flag value", nil, []string{"serve", "--node-id", "0"},
			`node.id: "0": must be between 1`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := runFerry(t, append(tt.env, "FERRY_DATA_DIR="+filepath.Join(dir, "data")), tt.args...)
			if r.code != ExitUsage || !strings.Contains(r.stderr, tt.want) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", r.code, r.stderr, ExitUsage, tt.want)
			}
			if _, err := os.Stat(filepath.Join(dir, "data")); err == nil {
				t.Errorf("a rejected configuration created the data directory")
			}
		})
	}
}

// node is a `ferry serve` process started by a test.
type node struct {
	cmd    *exec.Cmd
	stderr syncBuffer
	ready  chan struct{} // closed at the ready line
	exited chan struct{} // closed once the process exited and stderr is read
	code   int           // written before exited is closed

	mu    sync.Mutex
	addrs map[string]string // guarded by mu: protocol → bound address, from the announce lines
}

var listeningRE = regexp.MustCompile(`^ferry: (\w+) listening on (\S+)`)

// startNode runs `ferry serve` on dataDir with every listener on a free
// loopback port and waits for its ready line, collecting the listener
// lines on the way. It never sleeps: it reads stderr until the line comes.
func startNode(t *testing.T, dataDir string, extraEnv ...string) *node {
	t.Helper()
	n := launchNode(t, dataDir, extraEnv...)
	n.waitReady(t)
	return n
}

// launchNode is startNode without the wait for the ready line: the nodes
// of a cluster are ready only once enough of them run.
func launchNode(t *testing.T, dataDir string, extraEnv ...string) *node {
	t.Helper()
	n := &node{ready: make(chan struct{}), exited: make(chan struct{}), addrs: map[string]string{}}
	n.cmd = exec.Command(ferryBin, "serve")
	n.cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "FERRY_DATA_DIR=" + dataDir,
		"FERRY_LISTENERS_AMQP=127.0.0.1:0", "FERRY_LISTENERS_KAFKA=127.0.0.1:0", "FERRY_LISTENERS_HTTP=127.0.0.1:0",
		"FERRY_FLOW_DISK_FREE_LIMIT=1"}, extraEnv...)
	pipe, err := n.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go n.read(pipe)
	t.Cleanup(func() {
		select {
		case <-n.exited:
		default:
			_ = n.cmd.Process.Kill()
			<-n.exited
		}
	})
	return n
}

// waitReady waits for the node's ready line.
func (n *node) waitReady(t *testing.T) {
	t.Helper()
	timeout := time.NewTimer(60 * time.Second) // bounds a hang; the ready line is the event waited for
	defer timeout.Stop()
	select {
	case <-n.ready:
	case <-n.exited:
		t.Fatalf("ferry serve exited (%d) before ready:\n%s", n.code, n.stderr.String())
	case <-timeout.C:
		t.Fatalf("no ready line within 60s:\n%s", n.stderr.String())
	}
}

// read consumes stderr until EOF, then waits for the process (Wait must
// follow the last read of a StderrPipe).
func (n *node) read(pipe io.Reader) {
	defer close(n.exited)
	sc := bufio.NewScanner(pipe)
	readySeen := false
	for sc.Scan() {
		line := sc.Text()
		n.stderr.Write([]byte(line + "\n"))
		if m := listeningRE.FindStringSubmatch(line); m != nil {
			n.mu.Lock()
			n.addrs[m[1]] = m[2]
			n.mu.Unlock()
		}
		if !readySeen && strings.HasPrefix(line, "ferry: ready") {
			readySeen = true
			close(n.ready)
		}
	}
	err := n.cmd.Wait()
	if ee, ok := err.(*exec.ExitError); ok {
		n.code = ee.ExitCode()
	}
}

// addr returns the bound address of a protocol, "" when it does not listen.
func (n *node) addr(proto string) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.addrs[proto]
}

// stop sends sig and waits for the process to exit, returning its code.
func (n *node) stop(t *testing.T, sig syscall.Signal) int {
	t.Helper()
	if err := n.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case <-n.exited:
	case <-time.After(60 * time.Second): // bounds a hang
		t.Fatalf("ferry serve did not exit within 60s of %v:\n%s", sig, n.stderr.String())
	}
	return n.code
}

// syncBuffer is a bytes.Buffer safe for one writer and concurrent readers.
//
// internal/server's tests have the same type. It is not shared: test
// files cannot be imported from another package, so one copy would have
// to be production code of a package both may import (cmd/ may import
// internal/server, internal/base, internal/loadgen and sdk, none a place
// for test helpers), or a new test-helper package, which needs its own
// layer in test/layering first.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

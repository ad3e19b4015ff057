// Package clienttest runs third-party client programs (scripts for
// Python, Node.js, Java, PHP or Ruby clients) against a front end in the
// front ends' tests, so that each protocol is checked with several independent
// implementations of its client side, unmodified. Only tests import it.
//
// A script prints "ok NAME" after each check and exits non-zero on any
// failure; Run requires every check, in order, so a script that stops
// early fails the test. Tests skip, naming what to install, when a client
// is missing: .ci/run installs them all.
package clienttest

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

// scriptTimeout bounds one script's run.
const scriptTimeout = 3 * time.Minute

// Python returns a python3 that can import module: the one on PATH (which
// may be a build without Debian's packages, such as pyenv's) or Debian's.
// It skips the test when there is none.
func Python(t testing.TB, module, debianPackage string) string {
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

// Node returns node, after checking that npm ci installed module in dir
// (relative to the test's package, as Go runs tests). It skips the test
// otherwise.
func Node(t testing.TB, dir, module string) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not found: install Node.js (Debian packages nodejs and npm), then run npm ci in " + dir)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", module)); err != nil {
		t.Skipf("%s is not installed: run npm ci in the package's %s", module, dir)
	}
	return node
}

// Run runs a client program in dir and checks that it passed every check
// in want, in order. When the program reports a check that hooks names,
// the hook runs before the program's output is read on (the program
// waits for what the hook does, such as a connection the broker closes).
func Run(t testing.TB, dir string, want []string, hooks map[string]func(), name string, args ...string) {
	t.Helper()
	RunEnv(t, dir, nil, want, hooks, name, args...)
}

// RunEnv is Run with the program's environment (nil: the test's).
func RunEnv(t testing.TB, dir string, env, want []string, hooks map[string]func(), name string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), scriptTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir, cmd.Env = dir, env
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

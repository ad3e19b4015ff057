package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestProfiledWritesTheProfileAndTheTrace: run -cpuprofile and -trace
// each leave a file their tool reads: a gzipped profile, a Go execution
// trace (its header names the format).
func TestProfiledWritesTheProfileAndTheTrace(t *testing.T) {
	dir := t.TempDir()
	cpu, trace := filepath.Join(dir, "cpu.pprof"), filepath.Join(dir, "run.trace")
	ran := false
	if code := profiled(cpu, trace, func() int { ran = true; return 3 }); code != 3 || !ran {
		t.Fatalf("profiled returned %d (ran %v), want f's 3", code, ran)
	}
	for _, c := range []struct{ path, magic string }{{cpu, "\x1f\x8b"}, {trace, "go 1."}} {
		b, err := os.ReadFile(c.path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(b, []byte(c.magic)) {
			t.Errorf("%s starts with %q, want %q", c.path, b[:min(len(b), 8)], c.magic)
		}
	}
}

// TestProfiledWithoutPathsWritesNothing: neither flag, no file.
func TestProfiledWithoutPathsWritesNothing(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	if code := profiled("", "", func() int { return 0 }); code != 0 {
		t.Fatalf("profiled returned %d, want 0", code)
	}
	if ents, err := os.ReadDir(dir); err != nil || len(ents) != 0 {
		t.Errorf("files written without a path: %v (%v)", ents, err)
	}
}

package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ferry-mq/ferry/internal/base"
)

func TestParseStatCPUCountsFromTheLastParenthesis(t *testing.T) {
	stat := []byte("4242 (beam (smp) x) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 30 0 100 0 0\n")
	got, err := parseStatCPU(stat)
	if want := 3 * time.Second; err != nil || got != want {
		t.Errorf("got %v, %v, want %v (300 ticks)", got, err, want)
	}
	for _, bad := range []string{"", "1 (x", "1 (x) S 1 2", "1 (x) S 1 1 1 0 -1 0 0 0 0 0 a b"} {
		if _, err := parseStatCPU([]byte(bad)); err == nil {
			t.Errorf("parseStatCPU(%q): got no error", bad)
		}
	}
}

func TestParseStatusRSS(t *testing.T) {
	got, err := parseStatusRSS([]byte("Name:\tbeam.smp\nVmPeak:\t 1 kB\nVmRSS:\t  123456 kB\nThreads: 4\n"))
	if want := uint64(123456 << 10); err != nil || got != want {
		t.Errorf("got %d, %v, want %d", got, err, want)
	}
	for _, bad := range []string{"", "VmRSS: 12 MB", "VmRSS: x kB"} {
		if _, err := parseStatusRSS([]byte(bad)); err == nil {
			t.Errorf("parseStatusRSS(%q): got no error", bad)
		}
	}
}

func TestReadsThisProcessFromProc(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc here")
	}
	if _, err := readCPU(os.Getpid()); err != nil {
		t.Errorf("readCPU(self): %v", err)
	}
	if rss, err := readRSS(os.Getpid()); err != nil || rss == 0 {
		t.Errorf("readRSS(self): got %d, %v", rss, err)
	}
}

func FuzzParseProc(f *testing.F) {
	f.Add([]byte("1 (x) S 1 1 1 0 -1 0 0 0 0 0 7 8 0"))
	f.Add([]byte("VmRSS:\t 10 kB\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if d, err := parseStatCPU(b); err == nil && d < 0 {
			t.Fatalf("negative CPU time %v", d)
		}
		_, _ = parseStatusRSS(b)
	})
}

func TestReadBoundedStopsAtTheLimit(t *testing.T) {
	dir := t.TempDir()
	for _, size := range []int{0, 10, base.LoadgenProcFileBytesMax, base.LoadgenProcFileBytesMax + 100} {
		path := filepath.Join(dir, "f")
		if err := os.WriteFile(path, make([]byte, size), 0o644); err != nil {
			t.Fatal(err)
		}
		b, err := readBounded(path)
		if want := min(size, base.LoadgenProcFileBytesMax); err != nil || len(b) != want {
			t.Errorf("file of %d bytes: got %d bytes, %v, want %d", size, len(b), err, want)
		}
	}
}

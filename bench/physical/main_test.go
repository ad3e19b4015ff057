package main

import (
	"os"
	"testing"
	"time"
)

func TestAppendSyncedWrapsAtTheFileBound(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "scratch")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const chunk, fileMax = 4096, 3 * 4096
	written, err := appendSynced(f, chunk, 50*time.Millisecond, fileMax)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() > fileMax || fi.Size() == 0 || written < fi.Size() || written%chunk != 0 {
		t.Errorf("got a file of %d bytes after writing %d, want at most %d and whole chunks", fi.Size(), written, fileMax)
	}
}

func TestMeasureReportsEveryLimit(t *testing.T) {
	l, err := measure(t.TempDir(), 20*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if l.FdatasyncPer1MiBBps <= 0 || l.FdatasyncPer4KiBBps <= 0 || l.FdatasyncsPerSec <= 0 || l.LoopbackTCPBps <= 0 || l.MemcpyBps <= 0 {
		t.Errorf("got %+v, want every limit measured (positive)", l)
	}
	fl := l.FdatasyncLatency
	if fl.Count == 0 || fl.P50 <= 0 || fl.P50 > fl.P99 || fl.P99 > fl.Max {
		t.Errorf("fdatasync latency: got %+v, want a count and 0 < p50 <= p99 <= max", fl)
	}
}

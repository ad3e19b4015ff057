package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/loadgen"
)

// Limits is the JSON this program prints. Bandwidths are in bytes/s.
type Limits struct {
	Dir                 string  `json:"dir"`
	FdatasyncPer1MiBBps float64 `json:"fdatasync_per_1mib_bytes_per_sec"`
	FdatasyncPer4KiBBps float64 `json:"fdatasync_per_4kib_bytes_per_sec"`
	FdatasyncsPerSec    float64 `json:"fdatasyncs_per_sec"`
	// FdatasyncLatency is the spread of those fdatasyncs' durations: a
	// broker that syncs before it confirms cannot have a confirm latency
	// tail below it.
	FdatasyncLatency      loadgen.Percentiles `json:"fdatasync_latency"`
	LoopbackTCPBps        float64             `json:"loopback_tcp_bytes_per_sec"`
	MemcpyBps             float64             `json:"memcpy_bytes_per_sec"`
	SecondsPerMeasurement float64             `json:"seconds_per_measurement"`
}

func main() {
	dir := flag.String("dir", os.TempDir(), "directory on the brokers' file system")
	d := flag.Duration("duration", 3*time.Second, "length of each measurement")
	flag.Parse()
	l, err := measure(*dir, *d)
	if err != nil {
		fmt.Fprintln(os.Stderr, "physical:", err)
		os.Exit(1)
	}
	if err := json.NewEncoder(os.Stdout).Encode(l); err != nil {
		fmt.Fprintln(os.Stderr, "physical:", err)
		os.Exit(1)
	}
}

func measure(dir string, d time.Duration) (Limits, error) {
	l := Limits{Dir: dir, SecondsPerMeasurement: d.Seconds()}
	var err error
	if l.FdatasyncPer1MiBBps, err = syncedAppend(dir, 1<<20, d, base.LoadgenScratchFileBytesMax); err != nil {
		return l, err
	}
	if l.FdatasyncPer4KiBBps, err = syncedAppend(dir, 4<<10, d, base.LoadgenScratchFileBytesMax); err != nil {
		return l, err
	}
	if l.FdatasyncsPerSec, l.FdatasyncLatency, err = syncedOverwrite(dir, d); err != nil {
		return l, err
	}
	if l.LoopbackTCPBps, err = loopback(d); err != nil {
		return l, err
	}
	l.MemcpyBps = memcpy(d)
	return l, nil
}

// syncedAppend measures appendSynced on a scratch file in dir, which it
// removes, and returns bytes per second.
func syncedAppend(dir string, chunk int, d time.Duration, fileMax int64) (float64, error) {
	f, err := os.CreateTemp(dir, "physical-*.dat")
	if err != nil {
		return 0, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	start := time.Now()
	written, err := appendSynced(f, chunk, d, fileMax)
	if err != nil {
		return 0, err
	}
	return float64(written) / time.Since(start).Seconds(), nil
}

// appendSynced writes chunk-sized blocks sequentially, each followed by
// fdatasync, for d, and returns the bytes written. The file never grows
// past fileMax: writing wraps to its start.
func appendSynced(f *os.File, chunk int, d time.Duration, fileMax int64) (int64, error) {
	buf := make([]byte, chunk)
	for i := range buf {
		buf[i] = byte(i*7 + 1)
	}
	var written, pos int64
	start := time.Now()
	for time.Since(start) < d {
		if pos+int64(chunk) > fileMax {
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				return written, err
			}
			pos = 0
		}
		if _, err := f.Write(buf); err != nil {
			return written, err
		}
		if err := unix.Fdatasync(int(f.Fd())); err != nil {
			return written, fmt.Errorf("fdatasync: %w", err)
		}
		written += int64(chunk)
		pos += int64(chunk)
	}
	return written, nil
}

// syncedOverwrite rewrites the same 4 KiB block and fdatasyncs it, for d,
// and returns fdatasyncs per second and the spread of their durations (in
// a fixed-size histogram: the count of syncs does not grow memory).
func syncedOverwrite(dir string, d time.Duration) (float64, loadgen.Percentiles, error) {
	var none loadgen.Percentiles
	f, err := os.CreateTemp(dir, "physical-*.dat")
	if err != nil {
		return 0, none, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := make([]byte, 4<<10)
	if _, err := f.WriteAt(buf, 0); err != nil {
		return 0, none, err
	}
	if err := f.Sync(); err != nil {
		return 0, none, err
	}
	lat := loadgen.NewLatency()
	n := 0
	start := time.Now()
	for time.Since(start) < d {
		buf[0] = byte(n)
		if _, err := f.WriteAt(buf, 0); err != nil {
			return 0, none, err
		}
		t0 := time.Now()
		if err := unix.Fdatasync(int(f.Fd())); err != nil {
			return 0, none, fmt.Errorf("fdatasync: %w", err)
		}
		lat.Record(time.Since(t0))
		n++
	}
	return float64(n) / time.Since(start).Seconds(), lat.Percentiles(), nil
}

// loopback sends 1 MiB writes over one TCP connection on 127.0.0.1 for d
// and returns the bytes per second the receiver read.
func loopback(d time.Duration) (float64, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	type result struct {
		n   int64
		err error
	}
	got := make(chan result, 1)
	go func() { // owned here: ends when the sender closes the connection
		c, err := ln.Accept()
		if err != nil {
			got <- result{err: err}
			return
		}
		defer c.Close()
		n, err := io.CopyBuffer(io.Discard, c, make([]byte, 1<<20))
		got <- result{n, err}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return 0, err
	}
	buf := make([]byte, 1<<20)
	start := time.Now()
	for time.Since(start) < d {
		if _, err := c.Write(buf); err != nil {
			c.Close()
			return 0, err
		}
	}
	if err := c.Close(); err != nil {
		return 0, err
	}
	r := <-got
	if r.err != nil && !errors.Is(r.err, net.ErrClosed) {
		return 0, r.err
	}
	return float64(r.n) / time.Since(start).Seconds(), nil
}

// memcpy copies a 64 MiB buffer (past the caches) for d and returns bytes
// copied per second.
func memcpy(d time.Duration) float64 {
	src, dst := make([]byte, 64<<20), make([]byte, 64<<20)
	for i := range src {
		src[i] = byte(i)
	}
	copy(dst, src) // fault dst's pages in first: a VM's first touch of memory is not memcpy
	var n int64
	start := time.Now()
	for time.Since(start) < d {
		n += int64(copy(dst, src))
	}
	return float64(n) / time.Since(start).Seconds()
}

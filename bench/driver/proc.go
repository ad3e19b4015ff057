package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/ferry-mq/ferry/internal/base"
)

// clockTicksPerSec is Linux's USER_HZ, the unit of /proc/<pid>/stat's CPU
// times: 100 on every architecture Go supports on Linux.
const clockTicksPerSec = 100

func readProc(pid int, name string) ([]byte, error) {
	return readBounded(fmt.Sprintf("/proc/%d/%s", pid, name))
}

// readBounded reads at most base.LoadgenProcFileBytesMax of a file. Files
// in /proc are generated in one read; a regular file's first bytes are
// read the same way.
func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := make([]byte, base.LoadgenProcFileBytesMax)
	n, err := io.ReadFull(f, buf)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF { // short files are whole
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return buf[:n], nil
}

func readCPU(pid int) (time.Duration, error) {
	b, err := readProc(pid, "stat")
	if err != nil {
		return 0, err
	}
	return parseStatCPU(b)
}

func readRSS(pid int) (uint64, error) {
	b, err := readProc(pid, "status")
	if err != nil {
		return 0, err
	}
	return parseStatusRSS(b)
}

// parseStatCPU returns utime+stime (all threads) from /proc/<pid>/stat.
// The command name (field 2) may hold spaces and parentheses, so fields
// are counted from the last ')'.
func parseStatCPU(b []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("proc stat: no command name")
	}
	fields := bytes.Fields(b[i+1:])
	// After the name: state is field 3; utime and stime are fields 14, 15.
	const utime, stime = 14 - 3, 15 - 3
	if len(fields) <= stime {
		return 0, fmt.Errorf("proc stat: %d fields after the name, want more than %d", len(fields), stime)
	}
	u, err1 := strconv.ParseUint(string(fields[utime]), 10, 63)
	s, err2 := strconv.ParseUint(string(fields[stime]), 10, 63)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("proc stat: utime %q stime %q", fields[utime], fields[stime])
	}
	ticks := u + s
	if ticks > uint64(1<<62)/uint64(time.Second) {
		return 0, fmt.Errorf("proc stat: %d ticks out of range", ticks)
	}
	return time.Duration(ticks) * time.Second / clockTicksPerSec, nil
}

// parseStatusRSS returns VmRSS in bytes from /proc/<pid>/status.
func parseStatusRSS(b []byte) (uint64, error) {
	for line := range bytes.SplitSeq(b, []byte("\n")) {
		rest, ok := bytes.CutPrefix(line, []byte("VmRSS:"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) != 2 || string(f[1]) != "kB" {
			return 0, fmt.Errorf("proc status: VmRSS line %q", line)
		}
		kb, err := strconv.ParseUint(string(f[0]), 10, 53)
		if err != nil {
			return 0, fmt.Errorf("proc status: VmRSS %q: %w", f[0], err)
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("proc status: no VmRSS line")
}

//go:build ferry_pprof

package main

// A profiling build for benchmarks, never the released binary: built with
// -tags ferry_pprof, every ferry command serves net/http/pprof on the
// address in BENCH_PPROF_ADDR (when set), e.g.
//
//	go build -tags ferry_pprof -o /tmp/ferry ./cmd/ferry
//	BENCH_PPROF_ADDR=127.0.0.1:6060 /tmp/ferry serve ...
//	go tool pprof -seconds 10 http://127.0.0.1:6060/debug/pprof/profile
//
// bench/compare.sh --pprof builds this way (docs/benchmarks.md). The
// variable is not FERRY_*: those are configuration keys.

import (
	"fmt"
	"net"
	"net/http"
	_ "net/http/pprof" // registers /debug/pprof on http.DefaultServeMux
	"os"
)

func init() {
	addr := os.Getenv("BENCH_PPROF_ADDR")
	if addr == "" {
		return
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "ferry: pprof listener on %s: %v\n", addr, err)
		os.Exit(ExitError)
	}
	fmt.Fprintf(os.Stderr, "ferry: pprof on http://%s/debug/pprof/ (profiling build)\n", ln.Addr())
	// The listener lives as long as the process, which is its owner: a
	// profiling build is stopped by stopping the process.
	go func() { _ = http.Serve(ln, nil) }()
}

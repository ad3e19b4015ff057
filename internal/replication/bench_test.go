package replication

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ferry-mq/ferry/internal/base/vfs"
	seglog "github.com/ferry-mq/ferry/internal/storage/log"
	"github.com/ferry-mq/ferry/internal/storage/log/batch"
	"github.com/ferry-mq/ferry/internal/storage/meta"
)

// The benchmarks run on the real disk (b.TempDir) unless said otherwise;
// docs/benchmarks.md ("Replication") records their results and commands.

const proposers = 64

// runWorkers runs n operations spread over workers goroutines.
func runWorkers(n, workers int, op func(worker int) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				if err := op(w); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// productionNode is a goroutine-mode engine on the segmented log and
// Pebble in dir.
func productionNode(b *testing.B, dir string, loops int) (*Engine, func()) {
	b.Helper()
	store, err := meta.Open(meta.Options{Dir: filepath.Join(dir, "meta"), Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	e, err := New(Config{NodeID: 1, FS: vfs.Default, Dir: dir, Logger: quiet, Loops: loops,
		Logs:  &SegmentLogs{FS: benchLogFS(b), Dir: filepath.Join(dir, "logs"), Logger: quiet},
		State: MetaState{store}, QuiesceTicks: -1})
	if err != nil {
		b.Fatal(err)
	}
	e.Start()
	return e, func() { e.Stop(); store.Close() }
}

func waitLeaderOf(b *testing.B, e *Engine, g GroupID) {
	for {
		if st, err := e.Status(g); err == nil && st.IsLeader {
			return
		}
		waitFor(time.Millisecond)
	}
}

// benchDir returns a directory for benchmark files: $FERRY_BENCH_DIR (so
// they can go to a chosen disk) or the test's temporary directory.
func benchDir(b *testing.B) string {
	if root := os.Getenv("FERRY_BENCH_DIR"); root != "" {
		dir, err := os.MkdirTemp(root, "replication-bench-")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(dir) })
		return dir
	}
	return b.TempDir()
}

// benchLogFS is the file system of the benchmarks' segmented logs: the
// real one, or, with FERRY_BENCH_FSYNC_US=n, the real one with n µs added
// to every fsync of a segment file (the sleep stands for a device's flush).
// On tmpfs (FERRY_BENCH_DIR=/dev/shm) that is a disk of known flush
// latency, which the shared disk of a busy machine is not: it measures the
// fast-disk case of OneGroupVsRawLog reproducibly. Both sides get it.
func benchLogFS(b *testing.B) vfs.FS {
	us, _ := strconv.Atoi(os.Getenv("FERRY_BENCH_FSYNC_US"))
	if us <= 0 {
		return vfs.Default
	}
	delay := time.Duration(us) * time.Microsecond
	return vfs.WithFaults(vfs.Default, vfs.InjectorFunc(func(p vfs.Point) error {
		if p.Op == vfs.OpSync && !p.After && strings.HasSuffix(p.Path, ".seg") {
			waitFor(delay)
		}
		return nil
	}))
}

// BenchmarkOneGroupVsRawLog compares the committed throughput of one group
// on one node (64 concurrent proposers of 1 KiB commands: propose, persist
// with fsync, apply) with the raw durable append throughput of the
// segmented log under the same load (64 appenders of 1 KiB records). The
// two alternate in ten rounds, so both see the same disk conditions; it
// reports both rates and their ratio. b.N is the operations of each side.
//
//	go test -run '^$' -bench 'OneGroupVsRawLog' -benchtime 20000x ./internal/replication
//
// With FERRY_BENCH_DIR=/dev/shm FERRY_BENCH_FSYNC_US=400 both sides run on
// an emulated disk whose fsync takes 400 µs (see benchLogFS).
func BenchmarkOneGroupVsRawLog(b *testing.B) {
	payload := make([]byte, 1024)
	dir := benchDir(b)
	l, err := seglog.Open(seglog.Options{FS: benchLogFS(b), Dir: filepath.Join(dir, "raw")})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	var bld batch.Builder
	bld.Begin(nil, batch.Header{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1})
	bld.Add(0, nil, payload, nil)
	rec, _ := bld.Finish()
	e, stop := productionNode(b, filepath.Join(dir, "engine"), 1)
	defer stop()
	if err := e.OpenGroup(1, discardFSM{}, []NodeID{1}); err != nil {
		b.Fatal(err)
	}
	waitLeaderOf(b, e, 1)
	before := e.Metrics()
	const rounds = 10
	var rawTime, engineTime time.Duration
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	b.ResetTimer()
	for r := range rounds {
		n := b.N / rounds
		if r == rounds-1 {
			n += b.N % rounds
		}
		start := time.Now()
		if err := runWorkers(n, proposers, func(int) error {
			_, err := l.Append(context.Background(), 1, rec)
			return err
		}); err != nil {
			b.Fatal(err)
		}
		rawTime += time.Since(start)
		start = time.Now()
		if err := runWorkers(n, proposers, func(int) error {
			_, err := e.Propose(context.Background(), 1, payload)
			return err
		}); err != nil {
			b.Fatal(err)
		}
		engineTime += time.Since(start)
	}
	b.StopTimer()
	m := e.Metrics()
	rawRate, engineRate := float64(b.N)/rawTime.Seconds(), float64(b.N)/engineTime.Seconds()
	b.ReportMetric(rawRate*1024/1e6, "raw-MB/s")
	b.ReportMetric(engineRate*1024/1e6, "engine-MB/s")
	b.ReportMetric(engineRate/rawRate, "engine/raw")
	b.ReportMetric(float64(m.Fsyncs()-before.Fsyncs())/float64(b.N), "engine-fsyncs/op")
	b.ReportMetric(float64(b.N)/float64(m.Iterations-before.Iterations), "proposals/iteration")
}

// BenchmarkOneGroupPropose is the engine half of OneGroupVsRawLog alone (64
// proposers of 1 KiB commands on one single-voter group), for profiling the
// engine's own CPU without the raw log's in the same profile: on tmpfs
// (FERRY_BENCH_DIR=/dev/shm) it measures the engine's CPU bound.
//
//	FERRY_BENCH_DIR=/dev/shm go test -run '^$' -bench 'OneGroupPropose' -benchtime 200000x -cpuprofile cpu.prof ./internal/replication
func BenchmarkOneGroupPropose(b *testing.B) {
	payload := make([]byte, 1024)
	e, stop := productionNode(b, benchDir(b), 1)
	defer stop()
	if err := e.OpenGroup(1, discardFSM{}, []NodeID{1}); err != nil {
		b.Fatal(err)
	}
	waitLeaderOf(b, e, 1)
	before := e.Metrics()
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	b.ResetTimer()
	if err := runWorkers(b.N, proposers, func(int) error {
		_, err := e.Propose(context.Background(), 1, payload)
		return err
	}); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	m := e.Metrics()
	b.ReportMetric(float64(b.N)/float64(m.Iterations-before.Iterations), "proposals/iteration")
}

// discardFSM applies nothing; benchmarks measure the engine.
type discardFSM struct{}

func (discardFSM) Apply(entries []Entry, results []any) {}
func (discardFSM) Snapshot(w io.Writer) error           { return nil }
func (discardFSM) Restore(r io.Reader) error            { _, err := io.Copy(io.Discard, r); return err }
func (discardFSM) RetainFrom() uint64                   { return 0 }

// BenchmarkManyGroupsPaced runs groups that each receive 10 proposals a
// second for a fixed window, and reports fsyncs and loop iterations per
// second and the CPU used: fsyncs follow iterations, not the group count.
//
//	go test -run '^$' -bench 'ManyGroupsPaced' -benchtime 1x ./internal/replication
func BenchmarkManyGroupsPaced(b *testing.B) {
	for _, groups := range []int{100, 1000} {
		b.Run(fmt.Sprintf("groups=%d", groups), func(b *testing.B) {
			e, stop := productionNode(b, benchDir(b), 2)
			defer stop()
			if err := openManyGroups(e, groups); err != nil {
				b.Fatal(err)
			}
			for g := 1; g <= groups; g++ {
				waitLeaderOf(b, e, GroupID(g))
			}
			const window = 5 * time.Second
			b.ResetTimer()
			for range b.N {
				pacedLoad(b, e, groups, window)
			}
		})
	}
}

// openManyGroups opens single-voter groups 1..n, 32 at a time.
func openManyGroups(e *Engine, n int) error {
	var next atomic.Int64
	return runWorkers(n, 32, func(int) error {
		return e.OpenGroup(GroupID(next.Add(1)), discardFSM{}, []NodeID{1})
	})
}

// waitFor blocks for d: the benchmarks measure over wall-clock windows and
// poll other processes; no unit test uses it.
func waitFor(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	<-t.C
}

func waitABit() { waitFor(200 * time.Millisecond) }

// pacedLoad proposes 10 times a second to each group for the window and
// reports the rates it saw.
func pacedLoad(b *testing.B, e *Engine, groups int, window time.Duration) {
	before, cpu0, start := e.Metrics(), cpuTime(), time.Now()
	var acked, failed atomic.Int64
	var wg sync.WaitGroup
	payload := make([]byte, 1024)
	const pacers = 50
	for p := range pacers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(100 * time.Millisecond) // 10 per second per group
			defer tick.Stop()
			for time.Since(start) < window {
				for g := p + 1; g <= groups; g += pacers {
					e.ProposeAsync(GroupID(g), payload, func(r Result) {
						if r.Err != nil {
							failed.Add(1)
						} else {
							acked.Add(1)
						}
					})
				}
				<-tick.C
			}
		}()
	}
	wg.Wait()
	elapsed, cpu := time.Since(start).Seconds(), cpuTime()-cpu0
	m := e.Metrics()
	iters := float64(m.Iterations - before.Iterations)
	b.ReportMetric(float64(acked.Load())/elapsed, "proposals/s")
	b.ReportMetric(float64(m.LogSyncs-before.LogSyncs)/elapsed, "logsyncs/s")
	b.ReportMetric(float64(m.Fsyncs()-before.Fsyncs())/elapsed, "fsyncs/s")
	b.ReportMetric(iters/elapsed, "iterations/s")
	b.ReportMetric(float64(m.Fsyncs()-before.Fsyncs())/iters, "fsyncs/iteration")
	b.ReportMetric(cpu.Seconds()/elapsed, "cpu-cores")
	if failed.Load() > 0 {
		b.Errorf("%d proposals failed", failed.Load())
	}
}

// threeProcs starts three node processes on 127.0.0.1-3 and returns them
// with the client address of the leader of group 1.
func threeProcs(b *testing.B, root string, env ...string) (map[NodeID]*nodeProc, string) {
	port := freePort(b)
	var parts []string
	for i := 1; i <= 3; i++ {
		parts = append(parts, fmt.Sprintf("%d=127.0.0.%d:%d", i, i, port))
	}
	addrs := strings.Join(parts, ",")
	procs := map[NodeID]*nodeProc{}
	var wg sync.WaitGroup
	var mu sync.Mutex
	for id := NodeID(1); id <= 3; id++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := startNodeProc(b, id, filepath.Join(root, fmt.Sprint(id)), addrs, env...)
			mu.Lock()
			procs[id] = p
			mu.Unlock()
		}()
	}
	wg.Wait()
	clients := func() []string {
		return []string{procs[1].client, procs[2].client, procs[3].client}
	}
	lead := waitProcLeader(b, clients)
	return procs, procs[lead].client
}

// BenchmarkThreeProcesses64Proposers runs three node processes on loopback
// (the real disk, the segmented log, Pebble, TCP) with one group and 64
// proposers of 1 KiB on persistent connections to the leader; it reports
// throughput and commit latency percentiles as the client sees them.
//
//	go test -run '^$' -bench 'ThreeProcesses64Proposers' -benchtime 20000x ./internal/replication
func BenchmarkThreeProcesses64Proposers(b *testing.B) {
	procs, leader := threeProcs(b, benchDir(b))
	defer func() {
		for _, p := range procs {
			p.kill()
		}
	}()
	payload := strings.Repeat("x", 1024)
	conns := make([]*bufio.ReadWriter, proposers)
	for i := range conns {
		c, err := net.Dial("tcp", leader)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		conns[i] = bufio.NewReadWriter(bufio.NewReader(c), bufio.NewWriter(c))
	}
	lat := make([][]time.Duration, proposers)
	b.SetBytes(1024)
	b.ResetTimer()
	err := runWorkers(b.N, proposers, func(w int) error {
		start := time.Now()
		rw := conns[w]
		fmt.Fprintf(rw, "P %s\n", payload)
		if err := rw.Flush(); err != nil {
			return err
		}
		reply, err := rw.ReadString('\n')
		if err != nil {
			return err
		}
		if !strings.HasPrefix(reply, "OK ") {
			return fmt.Errorf("proposal: %s", reply)
		}
		lat[w] = append(lat[w], time.Since(start))
		return nil
	})
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	pct := func(p float64) float64 { return float64(all[int(p*float64(len(all)-1))].Microseconds()) / 1000 }
	b.ReportMetric(pct(0.5), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}

// BenchmarkTenThousandQuiescedGroups starts three node processes with
// 10,000 groups each, waits until every group sleeps, and reports the CPU
// each process then uses. The groups' data lives on /dev/shm (tmpfs) with
// SimpleLogs, to keep the setup of 30,000 replicas short and within the
// file descriptor limit (see docs/benchmarks.md); nothing is written once
// they sleep.
//
//	go test -run '^$' -bench 'TenThousandQuiescedGroups' -benchtime 1x -timeout 30m ./internal/replication
func BenchmarkTenThousandQuiescedGroups(b *testing.B) {
	root, err := os.MkdirTemp("/dev/shm", "ferry-quiesce-")
	if err != nil {
		b.Skip("no /dev/shm:", err)
	}
	defer os.RemoveAll(root)
	groups := 10_000
	if s := os.Getenv("FERRY_BENCH_GROUPS"); s != "" {
		groups, _ = strconv.Atoi(s)
	}
	procs, _ := threeProcs(b, root, groupsEnv+"="+strconv.Itoa(groups), simpleEnv+"=1")
	defer func() {
		for _, p := range procs {
			p.kill()
		}
	}()
	deadline := time.Now().Add(10 * time.Minute)
	for {
		total, lead, downs, wakes := 0, 0, 0, 0
		for _, p := range procs {
			reply, err := call(p.client, "Q")
			var q, l, n, d, w, s int
			if err == nil {
				fmt.Sscanf(reply, "OK %d %d %d %d %d %d", &q, &l, &n, &d, &w, &s)
			}
			total, lead, downs, wakes = total+q, lead+l, downs+d, wakes+w
		}
		if total == 3*groups && lead == groups {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("after 10 minutes %d of %d replicas sleep, %d leaders", total, 3*groups, lead)
		}
		b.Logf("%d of %d replicas sleep, %d leaders, %d peer-down reports, %d wake-ups", total, 3*groups, lead, downs, wakes)
		waitABit()
	}
	b.ResetTimer()
	for range b.N {
		const window = 10 * time.Second
		before := map[NodeID]time.Duration{}
		for id, p := range procs {
			before[id] = procCPU(b, p.cmd.Process.Pid)
		}
		waitFor(window)
		worst := 0.0
		for id, p := range procs {
			share := (procCPU(b, p.cmd.Process.Pid) - before[id]).Seconds() / window.Seconds()
			b.ReportMetric(100*share, fmt.Sprintf("cpu%%-node%d", id))
			worst = max(worst, share)
		}
		b.ReportMetric(100*worst, "cpu%-worst")
	}
}

// procCPU returns the user and system CPU time of a process (Linux).
func procCPU(b *testing.B, pid int) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	s := string(data)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond // USER_HZ is 100 on Linux
}

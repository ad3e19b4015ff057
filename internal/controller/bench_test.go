package controller

import (
	"fmt"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/ferry-mq/ferry/internal/auth"
	"github.com/ferry-mq/ferry/internal/routing"
)

// Benchmarks of the metadata path at 100,000 queues. Run with
//
//	go test ./internal/controller -run '^$' -bench . -benchtime 5x
//
// (no ferry_invariants tag: its whole-state check after every command
// makes declaring quadratic).

const benchQueues = 100_000

func benchController(b *testing.B) *Controller {
	c := New(Options{})
	nodes := []Node{{ID: 1, Addr: "n1:7946"}, {ID: 2, Addr: "n2:7946"}, {ID: 3, Addr: "n3:7946"}}
	if r := c.Apply(&Bootstrap{Now: 1, Nodes: nodes}); r.Err != nil {
		b.Fatal(r.Err)
	}
	return c
}

// benchDeclare is a typical declaration: a durable queue with two
// arguments, as applications declare them.
func benchDeclare(i int) *DeclareQueue {
	return &DeclareQueue{Now: int64(i), Tenant: "/", Name: fmt.Sprintf("orders.%07d", i), Durable: true,
		Args: []routing.Field{{Key: "x-max-length", Value: routing.IntValue(10_000)},
			{Key: "x-dead-letter-exchange", Value: routing.StringValue("dlx")}}}
}

func declareQueues(b *testing.B, c *Controller, n int) {
	for i := range n {
		if r := c.Apply(benchDeclare(i)); r.Err != nil {
			b.Fatal(r.Err)
		}
	}
}

// cpuTime returns the process's user and system CPU time: on a shared
// machine it shows the work done where wall time shows the wait too.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func heapInUse() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkDeclare100kQueues declares 100,000 queues into a fresh
// controller per iteration and reports the time per declaration and the
// heap the controller keeps per queue (its state, not garbage).
func BenchmarkDeclare100kQueues(b *testing.B) {
	b.ReportAllocs()
	var perQueue float64
	var cpu time.Duration
	for b.Loop() {
		b.StopTimer()
		before := heapInUse()
		c := benchController(b)
		cpu0 := cpuTime()
		b.StartTimer()
		declareQueues(b, c, benchQueues)
		b.StopTimer()
		cpu += cpuTime() - cpu0
		perQueue = float64(heapInUse()-before) / benchQueues
		runtime.KeepAlive(c)
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchQueues), "ns/queue")
	b.ReportMetric(perQueue, "state-B/queue")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N*benchQueues), "cpu-ns/queue")
}

// BenchmarkDeclareQueue is one declaration into a growing controller.
func BenchmarkDeclareQueue(b *testing.B) {
	c := benchController(b)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if r := c.Apply(benchDeclare(i)); r.Err != nil {
			b.Fatal(r.Err)
		}
		i++
	}
}

// BenchmarkSnapshot100kQueues snapshots a controller of 100,000 queues.
func BenchmarkSnapshot100kQueues(b *testing.B) {
	c := benchController(b)
	declareQueues(b, c, benchQueues)
	size := len(c.Snapshot())
	b.SetBytes(int64(size))
	b.ReportAllocs()
	for b.Loop() {
		c.Snapshot()
	}
	b.ReportMetric(float64(size)/benchQueues, "snapshot-B/queue")
}

// BenchmarkRestore100kQueues restores that snapshot.
func BenchmarkRestore100kQueues(b *testing.B) {
	c := benchController(b)
	declareQueues(b, c, benchQueues)
	data := c.Snapshot()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if err := New(Options{}).Restore(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPolicyChange100kQueues puts a policy matching every queue of a
// 100,000-queue tenant: every effective configuration is recomputed.
func BenchmarkPolicyChange100kQueues(b *testing.B) {
	c := benchController(b)
	declareQueues(b, c, benchQueues)
	b.ReportAllocs()
	n := int64(0)
	for b.Loop() {
		n++
		r := c.Apply(&PutPolicy{Now: 1 << 40, Policy: policyWithMaxLength(500 + n)})
		if r.Err != nil || len(r.Reconfigured) != benchQueues {
			b.Fatalf("policy: %v, %d reconfigured", r.Err, len(r.Reconfigured))
		}
	}
}

func policyWithMaxLength(n int64) auth.Policy {
	return auth.Policy{Tenant: "/", Name: "cap", Pattern: "^orders", ApplyTo: auth.ApplyQueues,
		Definition: map[string]auth.Value{"max-length": auth.Int(n)}}
}

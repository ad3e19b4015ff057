package loadgen

import (
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/ferry-mq/ferry/internal/base"
)

// latencySigFigs is the histogram's precision: values are recorded to
// within 0.1%, far finer than run-to-run spread.
const latencySigFigs = 3

// Latency records end-to-end latencies in nanoseconds. It is safe for
// concurrent use (one mutex; consumers each record once per message, far
// below the rate at which an uncontended mutex costs anything).
type Latency struct {
	mu        sync.Mutex
	h         *hdrhistogram.Histogram // guarded by mu
	clamped   uint64                  // guarded by mu; values above base.LoadgenLatencyMax, recorded as the max
	negatives uint64                  // guarded by mu; values below zero (a receipt before its intended send: clock misuse), recorded as 0
}

// NewLatency returns an empty recorder covering 1 ns to
// base.LoadgenLatencyMax.
func NewLatency() *Latency {
	return &Latency{h: hdrhistogram.New(1, int64(base.LoadgenLatencyMax), latencySigFigs)}
}

// Record adds one latency.
func (l *Latency) Record(d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case d < 0:
		l.negatives++
		d = 0
	case d > base.LoadgenLatencyMax:
		l.clamped++
		d = base.LoadgenLatencyMax
	}
	_ = l.h.RecordValue(int64(d)) // within the histogram's range by the clamps above
}

// Percentiles is a latency summary; durations are in nanoseconds when
// marshalled.
type Percentiles struct {
	Count   int64         `json:"count"`
	P50     time.Duration `json:"p50_ns"`
	P90     time.Duration `json:"p90_ns"`
	P99     time.Duration `json:"p99_ns"`
	P999    time.Duration `json:"p999_ns"`
	Max     time.Duration `json:"max_ns"`
	Clamped uint64        `json:"clamped,omitempty"` // latencies above LoadgenLatencyMax, counted as it
}

// Percentiles summarises what was recorded so far.
func (l *Latency) Percentiles() Percentiles {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.h.TotalCount() == 0 {
		return Percentiles{}
	}
	return Percentiles{
		Count:   l.h.TotalCount(),
		P50:     time.Duration(l.h.ValueAtQuantile(50)),
		P90:     time.Duration(l.h.ValueAtQuantile(90)),
		P99:     time.Duration(l.h.ValueAtQuantile(99)),
		P999:    time.Duration(l.h.ValueAtQuantile(99.9)),
		Max:     time.Duration(l.h.Max()),
		Clamped: l.clamped,
	}
}

package broker

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/metrics"
	"sync"

	"github.com/ferry-mq/ferry/internal/base"
	"time"
)

// FlowConfig configures publisher flow control: while heap memory in use
// is above the memory limit, or free disk space below the disk limit,
// publishes wait (Publish, PublishAsync, ProduceBatch) and Blocked
// reports it, as RabbitMQ's memory and disk alarms do. Consumers and
// settlements are never held back: they are what frees memory and disk.
type FlowConfig struct {
	// MemoryLimitBytes is the heap-in-use high watermark; 0 means
	// BrokerMemoryHighWatermarkDefault (a fraction) of TotalMemory().
	MemoryLimitBytes uint64
	// DiskFreeLimitBytes is the free-space low watermark of the data
	// directory; 0 means BrokerDiskFreeLimitDefault.
	DiskFreeLimitBytes uint64
	// SampleInterval is how often memory and disk are measured; 0 means
	// BrokerFlowSampleIntervalDefault.
	SampleInterval time.Duration
	// MemoryInUse, DiskFree and TotalMemory measure; nil means the
	// runtime's heap statistics, statfs of the data directory and the
	// machine's RAM. Tests inject their own.
	MemoryInUse func() uint64
	DiskFree    func() (uint64, error)
	TotalMemory func() uint64
	// Disabled turns flow control off (benchmarks of other parts).
	Disabled bool
}

func (c *FlowConfig) setDefaults() error {
	if c.SampleInterval <= 0 {
		c.SampleInterval = base.BrokerFlowSampleIntervalDefault
	}
	if c.MemoryInUse == nil {
		c.MemoryInUse = heapInUse
	}
	if c.TotalMemory == nil {
		c.TotalMemory = totalMemory
	}
	if c.MemoryLimitBytes == 0 {
		c.MemoryLimitBytes = uint64(float64(c.TotalMemory()) * base.BrokerMemoryHighWatermarkDefault)
	}
	if c.DiskFreeLimitBytes == 0 {
		c.DiskFreeLimitBytes = base.BrokerDiskFreeLimitDefault
	}
	return nil
}

// heapInUse reads the bytes of live and not yet swept heap objects from
// runtime/metrics: what the collector has not been able to give back.
func heapInUse() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// flowControl is the node's publisher alarm.
type flowControl struct {
	cfg   *FlowConfig
	clock base.Clock
	log   *slog.Logger
	dir   string

	mu      sync.Mutex
	blocked bool          // guarded by mu
	reason  string        // guarded by mu
	changed chan struct{} // guarded by mu: closed and replaced on every change
	stopCh  <-chan struct{}
}

func newFlowControl(cfg *FlowConfig, clock base.Clock, log *slog.Logger) *flowControl {
	return &flowControl{cfg: cfg, clock: clock, log: log, changed: make(chan struct{})}
}

// run samples until the broker stops (owned by the broker).
func (b *Broker) runFlow() {
	f := b.flow
	if f.cfg.Disabled {
		return
	}
	if f.cfg.DiskFree == nil {
		dir := b.cfg.Dir
		f.cfg.DiskFree = func() (uint64, error) { return diskFree(dir) }
	}
	t := f.clock.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C():
		}
		// Armed before sampling: whoever a sample's change wakes may move
		// a fake clock at once, and a timer armed after that move would
		// count from it and skip a period.
		t.Reset(f.cfg.SampleInterval)
		f.sample()
	}
}

// sample measures once and updates the alarm.
func (f *flowControl) sample() {
	var reasons []string
	if mem := f.cfg.MemoryInUse(); mem > f.cfg.MemoryLimitBytes {
		reasons = append(reasons, fmt.Sprintf("memory in use %d bytes is over the watermark %d", mem, f.cfg.MemoryLimitBytes))
	}
	if free, err := f.cfg.DiskFree(); err == nil && free < f.cfg.DiskFreeLimitBytes {
		reasons = append(reasons, fmt.Sprintf("free disk space %d bytes is under the limit %d", free, f.cfg.DiskFreeLimitBytes))
	}
	f.set(len(reasons) > 0, joinReasons(reasons))
}

func joinReasons(rs []string) string {
	out := ""
	for i, r := range rs {
		if i > 0 {
			out += "; "
		}
		out += r
	}
	return out
}

func (f *flowControl) set(blocked bool, reason string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.blocked == blocked && f.reason == reason {
		return
	}
	if f.blocked != blocked {
		if blocked {
			f.log.Warn("publishers blocked", "reason", reason)
		} else {
			f.log.Info("publishers unblocked")
		}
	}
	f.blocked, f.reason = blocked, reason
	close(f.changed)
	f.changed = make(chan struct{})
}

// state reports the alarm and a channel closed at its next change.
func (f *flowControl) state() (bool, string, <-chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.blocked, f.reason, f.changed
}

// wait returns once publishers may proceed, or CodeOverloaded when ctx
// ends first.
func (f *flowControl) wait(ctx context.Context) error {
	for {
		blocked, reason, ch := f.state()
		if !blocked {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return base.Errorf(base.CodeOverloaded, "broker: publishers are blocked (%s): %w", reason, ctx.Err())
		}
	}
}

// Blocked returns a function reporting whether publishers are blocked and
// why, and a channel closed at the next change of that state (call
// Blocked again for the next one). AMQP sends connection.blocked and
// connection.unblocked from it; Kafka reports throttle time.
func (b *Broker) Blocked() (state func() (blocked bool, reason string), changed <-chan struct{}) {
	_, _, ch := b.flow.state()
	return func() (bool, string) {
		bl, r, _ := b.flow.state()
		return bl, r
	}, ch
}

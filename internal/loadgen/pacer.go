package loadgen

import (
	"context"
	"time"

	"github.com/ferry-mq/ferry/internal/base"
)

// Pacer is an open-loop schedule: message i is due at start + i/rate,
// whatever happened to message i-1. A producer that falls behind (the
// broker stalled, the confirm window was full) sends the overdue messages
// at once, each stamped with its due time, so their latency includes the
// wait: measuring from the actual send instead would hide a stall behind
// the few messages that happened to be in flight (coordinated omission).
type Pacer struct {
	start    time.Time
	interval float64 // ns between two messages; 0 means no pacing
}

// NewPacer returns the schedule of a producer starting at start and
// sending rate messages a second; a rate of 0 or less sends as fast as the
// confirm window allows (every message due at once).
func NewPacer(start time.Time, rate float64) Pacer {
	p := Pacer{start: start}
	if rate > 0 {
		p.interval = float64(time.Second) / rate
	}
	return p
}

// Due returns when message i is due. Unpaced, every message is due at the
// start.
func (p Pacer) Due(i uint64) time.Time {
	return p.start.Add(time.Duration(float64(i) * p.interval))
}

// Paced reports whether the schedule has a rate.
func (p Pacer) Paced() bool { return p.interval > 0 }

// waiter sleeps until a due time on a clock, reusing one timer.
type waiter struct {
	clock base.Clock
	timer base.Timer // nil until the first wait that needs one
}

// until returns when the clock reaches t, at once if it has, or ctx's
// error when ctx ends first.
func (w *waiter) until(ctx context.Context, t time.Time) error {
	d := t.Sub(w.clock.Now())
	if d <= 0 {
		return ctx.Err()
	}
	if w.timer == nil {
		w.timer = w.clock.NewTimer(d)
	} else {
		w.timer.Reset(d)
	}
	select {
	case <-w.timer.C():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (w *waiter) stop() {
	if w.timer != nil {
		w.timer.Stop()
	}
}

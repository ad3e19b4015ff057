package base

import (
	"context"
	"sync"
	"time"
)

// Clock is the only way Ferry code reads time or waits for it, so tests and
// the simulator can drive time by hand. State machines never hold a Clock:
// their time comes stamped in commands.
type Clock interface {
	Now() time.Time
	// NewTimer returns a timer that delivers the time on C() once d has
	// passed, like time.NewTimer.
	NewTimer(d time.Duration) Timer
}

// Timer is the part of *time.Timer that Ferry uses.
type Timer interface {
	C() <-chan time.Time
	// Stop prevents the timer from firing; it reports whether it was active.
	Stop() bool
	// Reset changes the timer to fire after d; it reports whether it was
	// active. As with time.Timer since Go 1.23, no stale value is received
	// after Reset or Stop returns.
	Reset(d time.Duration) bool
}

// RealClock is the wall clock.
type RealClock struct{}

func (RealClock) Now() time.Time { return time.Now() }

func (RealClock) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

type realTimer struct{ t *time.Timer }

func (r realTimer) C() <-chan time.Time        { return r.t.C }
func (r realTimer) Stop() bool                 { return r.t.Stop() }
func (r realTimer) Reset(d time.Duration) bool { return r.t.Reset(d) }

// WithTimeout is context.WithTimeout on clock: the context ends, its Err
// context.DeadlineExceeded, once clock has moved d on, so that a bounded
// wait in Ferry's code ends when a test's fake clock says so. On the wall
// clock it is context.WithTimeout itself; on another clock it costs a
// goroutine until the context ends.
func WithTimeout(parent context.Context, clock Clock, d time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := clock.(RealClock); ok {
		return context.WithTimeout(parent, d)
	}
	inner, cancel := context.WithCancelCause(parent)
	t := clock.NewTimer(d)
	go func() {
		defer t.Stop()
		select {
		case <-t.C():
			cancel(context.DeadlineExceeded)
		case <-inner.Done():
		}
	}()
	return clockCtx{inner}, func() { cancel(context.Canceled) }
}

// clockCtx is WithTimeout's context: a cancelable one whose Err says
// DeadlineExceeded when the clock ended it, as a deadline's would.
type clockCtx struct{ context.Context }

func (c clockCtx) Err() error {
	err := c.Context.Err()
	if err != nil && context.Cause(c.Context) == context.DeadlineExceeded {
		return context.DeadlineExceeded
	}
	return err
}

// FakeClock is a Clock that moves only when told to. Timers fire, in
// deadline order, during Advance and Set. It is safe for concurrent use.
type FakeClock struct {
	mu     sync.Mutex
	now    time.Time    // guarded by mu
	timers []*fakeTimer // guarded by mu; the active timers, unordered
	seq    uint64       // guarded by mu; breaks deadline ties in creation order
}

// NewFakeClock returns a fake clock reading start.
func NewFakeClock(start time.Time) *FakeClock { return &FakeClock{now: start} }

func (c *FakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *FakeClock) NewTimer(d time.Duration) Timer {
	t := &fakeTimer{clock: c, ch: make(chan time.Time, 1)} // size one, as time.Timer's channel
	c.mu.Lock()
	defer c.mu.Unlock()
	c.armLocked(t, d)
	return t
}

// Advance moves the clock forward by d, firing every timer due on the way.
func (c *FakeClock) Advance(d time.Duration) {
	Assert(d >= 0, "FakeClock.Advance(%v): time cannot go backwards", d)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.setLocked(c.now.Add(d))
}

// Set moves the clock to t, which must not be before Now, firing every
// timer due on the way.
func (c *FakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	Assert(!t.Before(c.now), "FakeClock.Set(%v) is before now %v", t, c.now)
	c.setLocked(t)
}

// NextDeadline returns the earliest deadline of an active timer, and false
// when no timer is active. The simulator uses it to jump straight to the
// next event.
func (c *FakeClock) NextDeadline() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	next := c.earliestLocked()
	if next == nil {
		return time.Time{}, false
	}
	return next.deadline, true
}

// ActiveTimers returns how many timers are armed.
func (c *FakeClock) ActiveTimers() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

func (c *FakeClock) setLocked(target time.Time) {
	for {
		next := c.earliestLocked()
		if next == nil || next.deadline.After(target) {
			break
		}
		c.now = next.deadline
		c.removeLocked(next)
		select {
		case next.ch <- c.now:
		default: // a value is already waiting, as with time.Timer
		}
	}
	c.now = target
}

func (c *FakeClock) earliestLocked() *fakeTimer {
	var next *fakeTimer
	for _, t := range c.timers {
		if next == nil || t.deadline.Before(next.deadline) ||
			(t.deadline.Equal(next.deadline) && t.seq < next.seq) {
			next = t
		}
	}
	return next
}

func (c *FakeClock) armLocked(t *fakeTimer, d time.Duration) {
	c.seq++
	t.seq = c.seq
	t.deadline = c.now.Add(d)
	t.active = true
	c.timers = append(c.timers, t)
}

func (c *FakeClock) removeLocked(t *fakeTimer) {
	for i, x := range c.timers {
		if x == t {
			c.timers[i] = c.timers[len(c.timers)-1]
			c.timers = c.timers[:len(c.timers)-1]
			break
		}
	}
	t.active = false
}

type fakeTimer struct {
	clock    *FakeClock
	ch       chan time.Time
	deadline time.Time // guarded by clock.mu
	seq      uint64    // guarded by clock.mu
	active   bool      // guarded by clock.mu
}

func (t *fakeTimer) C() <-chan time.Time { return t.ch }

func (t *fakeTimer) Stop() bool {
	t.clock.mu.Lock()
	defer t.clock.mu.Unlock()
	was := t.active
	if was {
		t.clock.removeLocked(t)
	}
	t.drain()
	return was
}

func (t *fakeTimer) Reset(d time.Duration) bool {
	t.clock.mu.Lock()
	defer t.clock.mu.Unlock()
	was := t.active
	if was {
		t.clock.removeLocked(t)
	}
	t.drain()
	t.clock.armLocked(t, d)
	return was
}

func (t *fakeTimer) drain() {
	select {
	case <-t.ch:
	default:
	}
}

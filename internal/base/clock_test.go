package base

import (
	"context"
	"testing"
	"time"
)

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func TestFakeClockFiresTimersInDeadlineOrder(t *testing.T) {
	c := NewFakeClock(epoch)
	late := c.NewTimer(3 * time.Second)
	early := c.NewTimer(1 * time.Second)
	never := c.NewTimer(time.Hour)

	c.Advance(2 * time.Second)
	select {
	case got := <-early.C():
		if want := epoch.Add(time.Second); !got.Equal(want) {
			t.Errorf("early fired with %v, want %v", got, want)
		}
	default:
		t.Fatalf("early timer did not fire after 2s")
	}
	select {
	case <-late.C():
		t.Fatalf("late timer fired before its deadline")
	default:
	}

	c.Advance(time.Second)
	select {
	case <-late.C():
	default:
		t.Fatalf("late timer did not fire at its deadline")
	}
	if got := c.ActiveTimers(); got != 1 {
		t.Errorf("active timers: got %d, want 1", got)
	}
	if !never.Stop() {
		t.Errorf("Stop of an active timer: got false, want true")
	}
	if _, ok := c.NextDeadline(); ok {
		t.Errorf("NextDeadline after stopping the last timer: got ok")
	}
}

func TestFakeTimerResetDropsStaleValue(t *testing.T) {
	c := NewFakeClock(epoch)
	tm := c.NewTimer(time.Second)
	c.Advance(time.Second) // fires; the value waits in the channel
	if tm.Reset(5 * time.Second) {
		t.Errorf("Reset of a fired timer: got active, want inactive")
	}
	select {
	case <-tm.C():
		t.Fatalf("stale value received after Reset")
	default:
	}
	if d, ok := c.NextDeadline(); !ok || !d.Equal(epoch.Add(6*time.Second)) {
		t.Errorf("NextDeadline: got %v %v, want %v", d, ok, epoch.Add(6*time.Second))
	}
}

// TestWithTimeoutEndsWhenTheClockSays pins the bounded waits written
// with WithTimeout to the clock they are given: a fake clock's context
// ends at the Advance that reaches its deadline, never before, with
// DeadlineExceeded, and a cancel or the parent's end says Canceled.
func TestWithTimeoutEndsWhenTheClockSays(t *testing.T) {
	c := NewFakeClock(epoch)
	ctx, cancel := WithTimeout(context.Background(), c, time.Second)
	defer cancel()
	c.Advance(999 * time.Millisecond)
	if err := ctx.Err(); err != nil {
		t.Fatalf("before the deadline: %v, want nil", err)
	}
	c.Advance(time.Millisecond)
	<-ctx.Done() // the test's own timeout bounds this
	if err := ctx.Err(); err != context.DeadlineExceeded {
		t.Fatalf("at the deadline: %v, want context.DeadlineExceeded", err)
	}

	ctx, cancel = WithTimeout(context.Background(), c, time.Second)
	cancel()
	if err := ctx.Err(); err != context.Canceled {
		t.Fatalf("canceled: %v, want context.Canceled", err)
	}
	c.Advance(time.Second)
	if err := ctx.Err(); err != context.Canceled {
		t.Fatalf("canceled, then past the deadline: %v, want context.Canceled", err)
	}

	parent, stop := context.WithCancel(context.Background())
	ctx, cancel = WithTimeout(parent, c, time.Second)
	defer cancel()
	stop()
	<-ctx.Done()
	if err := ctx.Err(); err != context.Canceled {
		t.Fatalf("the parent canceled: %v, want context.Canceled", err)
	}

	ctx, cancel = WithTimeout(context.Background(), RealClock{}, time.Hour)
	defer cancel()
	if _, ok := ctx.Deadline(); !ok {
		t.Fatalf("on the wall clock: no deadline, want context.WithTimeout's")
	}
}

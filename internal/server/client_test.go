package server

import (
	"context"
	"testing"
	"time"

	"github.com/ferry-mq/ferry/internal/base"
)

// firedClock is a clock whose timers have always already fired, so a
// retry loop runs without waiting.
type firedClock struct{ base.RealClock }

type firedTimer struct{ ch chan time.Time }

func (firedClock) NewTimer(time.Duration) base.Timer {
	t := firedTimer{ch: make(chan time.Time, 1)}
	t.ch <- time.Time{}
	return t
}
func (t firedTimer) C() <-chan time.Time    { return t.ch }
func (firedTimer) Stop() bool               { return false }
func (firedTimer) Reset(time.Duration) bool { return false }

func TestClientRetriesUnavailableUpToItsLimit(t *testing.T) {
	c := &Client{clock: firedClock{}}
	calls := 0
	err := c.retry(context.Background(), func() error {
		calls++
		return base.Errorf(base.CodeUnavailable, "leader starting")
	})
	if calls != base.ClientRetriesMax || base.CodeOf(err) != base.CodeUnavailable {
		t.Errorf("always unavailable: %d calls, err %v; want %d calls and the last error", calls, err, base.ClientRetriesMax)
	}
	calls = 0
	err = c.retry(context.Background(), func() error {
		calls++
		if calls < 3 {
			return base.Errorf(base.CodeUnavailable, "leader starting")
		}
		return nil
	})
	if calls != 3 || err != nil {
		t.Errorf("unavailable twice then fine: %d calls, err %v; want 3 calls, nil", calls, err)
	}
	calls = 0
	err = c.retry(context.Background(), func() error {
		calls++
		return base.Errorf(base.CodeNotFound, "no queue")
	})
	if calls != 1 || base.CodeOf(err) != base.CodeNotFound {
		t.Errorf("not found: %d calls, err %v; want one call, no retry", calls, err)
	}
}

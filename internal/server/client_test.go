package server

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/broker"
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

// fakeConn is a broker connection whose DeleteQueue and Publish answer
// from scripts, one entry per call, and record what they were given.
type fakeConn struct {
	brokerConn // the calls the tests do not make
	deletes    []error
	published  [][]string // the bodies of each Publish call
	publishes  []func(n int) ([]broker.PublishResult, error)
}

func (f *fakeConn) DeleteQueue(context.Context, string, bool, bool) (uint64, error) {
	err := f.deletes[0]
	if len(f.deletes) > 1 {
		f.deletes = f.deletes[1:]
	}
	if err != nil {
		return 0, err
	}
	return 7, nil
}

func (f *fakeConn) Publish(_ context.Context, _ string, msgs []broker.Message, _ broker.PublishOptions) ([]broker.PublishResult, error) {
	var bodies []string
	for _, m := range msgs {
		bodies = append(bodies, string(m.Body))
	}
	f.published = append(f.published, bodies)
	next := f.publishes[0]
	if len(f.publishes) > 1 {
		f.publishes = f.publishes[1:]
	}
	return next(len(msgs))
}

// results answers a Publish of n messages with per-message errors: errs
// by position, nil for stored.
func results(errs ...error) func(n int) ([]broker.PublishResult, error) {
	return func(n int) ([]broker.PublishResult, error) {
		res := make([]broker.PublishResult, n)
		for i := range res {
			if i < len(errs) {
				res[i].Err = errs[i]
			}
		}
		return res, nil
	}
}

func bodies(ms ...string) []Message {
	out := make([]Message, len(ms))
	for i, m := range ms {
		out[i] = Message{Body: []byte(m)}
	}
	return out
}

var (
	errUnavailable = base.Errorf(base.CodeUnavailable, "no leader yet")
	errNotLeader   = base.Errorf(base.CodeNotLeader, "proposal refused")
	errTimeout     = base.Errorf(base.CodeTimeout, "outcome unknown")
)

func TestClientDeleteQueueRetriesUnavailableAsDeclareDoes(t *testing.T) {
	f := &fakeConn{deletes: []error{errUnavailable, errUnavailable, nil}}
	c := &Client{c: f, clock: firedClock{}}
	n, err := c.DeleteQueue(context.Background(), "q")
	if err != nil || n != 7 || len(f.deletes) != 1 {
		t.Errorf("DeleteQueue after two unavailable answers: %d, %v (%d scripted answers left); want 7, nil after 3 calls", n, err, len(f.deletes))
	}
	f = &fakeConn{deletes: []error{base.Errorf(base.CodeAccessRefused, "no configure permission"), nil}}
	c = &Client{c: f, clock: firedClock{}}
	if _, err := c.DeleteQueue(context.Background(), "q"); base.CodeOf(err) != base.CodeAccessRefused || len(f.deletes) != 1 {
		t.Errorf("DeleteQueue refused: %v, want access_refused after one call", err)
	}
}

func TestClientPublishRetriesOnlyTheMessagesProvenNotStored(t *testing.T) {
	f := &fakeConn{publishes: []func(int) ([]broker.PublishResult, error){
		results(nil, errNotLeader, nil, errNotLeader), // m1 and m3 were refused
		results(errNotLeader),                         // m1 refused again, m3 stored
		results(),
	}}
	c := &Client{c: f, clock: firedClock{}}
	if err := c.Publish(context.Background(), "", "q", bodies("m0", "m1", "m2", "m3")...); err != nil {
		t.Fatalf("Publish: %v, want nil", err)
	}
	want := [][]string{{"m0", "m1", "m2", "m3"}, {"m1", "m3"}, {"m1"}}
	if !reflect.DeepEqual(f.published, want) {
		t.Errorf("calls made: %v, want %v (stored messages never sent again)", f.published, want)
	}
}

func TestClientPublishDoesNotRetryAFailureThatMayHaveStored(t *testing.T) {
	for _, err := range []error{errUnavailable, errTimeout} {
		f := &fakeConn{publishes: []func(int) ([]broker.PublishResult, error){results(nil, err), results()}}
		c := &Client{c: f, clock: firedClock{}}
		got := c.Publish(context.Background(), "", "q", bodies("m0", "m1")...)
		if base.CodeOf(got) != base.CodeOf(err) || len(f.published) != 1 {
			t.Errorf("message failing with %v: %v after %d calls; want that error after 1 call", base.CodeOf(err), got, len(f.published))
		}
		if got != nil && !strings.Contains(got.Error(), "message 1") {
			t.Errorf("error %q does not name message 1", got)
		}
	}
}

func TestClientPublishRetriesARefusedCallAsWholeUpToItsLimit(t *testing.T) {
	f := &fakeConn{publishes: []func(int) ([]broker.PublishResult, error){
		func(int) ([]broker.PublishResult, error) { return nil, errUnavailable },
		results(errNotLeader),
	}}
	c := &Client{c: f, clock: firedClock{}}
	err := c.Publish(context.Background(), "", "q", bodies("m0")...)
	if base.CodeOf(err) != base.CodeNotLeader || len(f.published) != base.ClientRetriesMax {
		t.Errorf("always refused: %v after %d calls; want not_leader after %d", err, len(f.published), base.ClientRetriesMax)
	}
	if !reflect.DeepEqual(f.published[0], []string{"m0"}) || !reflect.DeepEqual(f.published[1], []string{"m0"}) {
		t.Errorf("first calls: %v, want m0 sent again after the call was refused", f.published[:2])
	}
}

package loadgen

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ferry-mq/ferry/internal/base"
)

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func fanout(route string, queues ...string) Topology { return Topology{Route: route, Queues: queues} }

func baseSpec() Spec {
	return Spec{
		Topologies: []Topology{fanout("r", "q")},
		Producers:  1,
		BodyBytes:  64,
		InFlight:   8,
		Prefetch:   10,
		Messages:   100,
		RunID:      7,
	}
}

func TestRunAccountsForEveryMessageOfAFanout(t *testing.T) {
	for _, mode := range []ConsumeMode{ConsumeDuring, ConsumeAfter} {
		spec := baseSpec()
		spec.Topologies = []Topology{fanout("fan", "a", "b", "c")}
		spec.Producers = 2
		spec.Consume = mode
		spec.Clock = base.NewFakeClock(epoch) // never moves: nothing here may wait on time
		var phases []Phase
		spec.Observe = func(p Phase) { phases = append(phases, p) }
		res, err := Run(context.Background(), newMemBroker(), spec)
		if err != nil {
			t.Fatalf("mode %d: Run: %v", mode, err)
		}
		want := Tally{Sent: 200, Confirmed: 200, Received: 600}
		if res.Tally != want {
			t.Errorf("mode %d: tally: got %+v, want %+v", mode, res.Tally, want)
		}
		if res.Publish.Messages != 200 || res.Consume.Messages != 600 || res.Consume.Bytes != 600*64 {
			t.Errorf("mode %d: publish %+v consume %+v: want 200 confirmed, 600 received of 64 bytes", mode, res.Publish, res.Consume)
		}
		wantPhases := "publish-start publish-end consume-end"
		if mode == ConsumeAfter {
			wantPhases = "publish-start publish-end consume-start consume-end"
		}
		if got := joinPhases(phases); got != wantPhases {
			t.Errorf("mode %d: phases: got %q, want %q", mode, got, wantPhases)
		}
	}
}

func joinPhases(ps []Phase) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = string(p)
	}
	return strings.Join(s, " ")
}

func TestRunFailsWhenAConfirmedMessageIsLost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newMemBroker()
		b.dropAt[41] = true
		spec := baseSpec()
		spec.DrainIdle = 5 * time.Second
		res, err := Run(context.Background(), b, spec)
		if !errors.Is(err, ErrAccounting) || !strings.Contains(err.Error(), "1 confirmed messages lost") {
			t.Fatalf("Run error: got %v, want an accounting failure with a loss of 1", err)
		}
		if res.Tally.Lost != 1 || res.Tally.Received != 99 || !res.DrainTimedOut {
			t.Errorf("got tally %+v timed out %v, want 1 lost, 99 received, drain timed out", res.Tally, res.DrainTimedOut)
		}
	})
}

func TestRunReportsDuplicatesAndNacksWithoutFailing(t *testing.T) {
	b := newMemBroker()
	b.dupAt[3], b.dupAt[50] = true, true
	b.nackAt[10] = true
	spec := baseSpec()
	spec.Clock = base.NewFakeClock(epoch)
	res, err := Run(context.Background(), b, spec)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	want := Tally{Sent: 100, Confirmed: 99, Nacked: 1, Received: 99, Duplicated: 2}
	if res.Tally != want {
		t.Errorf("tally: got %+v, want %+v", res.Tally, want)
	}
}

// TestOpenLoopLatencyCountsAStallFromTheIntendedSendTime is the guard
// against coordinated omission: the broker stalls one publish for 50 ms
// while the schedule wants a message every millisecond. The 49 messages
// due during the stall must show latencies from 49 ms down to 1 ms, though
// each was delivered at once after it was actually sent.
func TestOpenLoopLatencyCountsAStallFromTheIntendedSendTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newMemBroker()
		b.stallAt[10] = 50 * time.Millisecond
		spec := baseSpec()
		spec.Rate = 1000
		spec.Messages = 100
		spec.InFlight = 256
		res, err := Run(context.Background(), b, spec)
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		lat := res.Latency
		// 50 zeros, then 1..50 ms: the 90th value is 40 ms, the 99th 49 ms.
		within := func(got, want time.Duration) bool { return got >= want*999/1000 && got <= want*1001/1000 }
		if lat.Count != 100 || !within(lat.Max, 50*time.Millisecond) || !within(lat.P99, 49*time.Millisecond) ||
			!within(lat.P90, 40*time.Millisecond) || lat.P50 > time.Millisecond {
			t.Errorf("latency: got %+v, want count 100, max 50ms, p99 49ms, p90 40ms, p50 <= 1ms", lat)
		}
		if got, want := res.Publish.Seconds, 0.1; got < want*0.99 || got > want*1.01 {
			t.Errorf("publish phase: got %vs, want 0.1s: the schedule, not the stall, sets the pace", got)
		}
	})
}

func TestDurationEndsAPacedScheduleAtItsDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		spec := baseSpec()
		spec.Messages = 0
		spec.Rate = 200
		spec.Duration = 2 * time.Second
		spec.Producers = 3
		res, err := Run(context.Background(), newMemBroker(), spec)
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		if res.Tally.Sent != 3*400 {
			t.Errorf("sent: got %d, want %d (3 producers x 200/s x 2s)", res.Tally.Sent, 3*400)
		}
	})
}

func TestProgressReportsLiveRates(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		spec := baseSpec()
		spec.Messages = 0
		spec.Rate = 100
		spec.Duration = 3 * time.Second
		spec.ProgressEvery = time.Second
		var got []Progress
		spec.Progress = func(p Progress) { got = append(got, p) }
		if _, err := Run(context.Background(), newMemBroker(), spec); err != nil {
			t.Fatalf("Run: %v", err)
		}
		if len(got) < 2 {
			t.Fatalf("progress reports: got %d, want at least 2", len(got))
		}
		for _, p := range got[:2] {
			if p.SentPerSec < 99 || p.SentPerSec > 101 || p.ReceivedPerSec < 99 || p.ReceivedPerSec > 101 {
				t.Errorf("progress %+v: want about 100/s sent and received", p)
			}
		}
	})
}

func TestRunEndsWithAnErrorWhenConfirmsNeverCome(t *testing.T) {
	// 100 messages fill the window of 8 (the wait for a free slot times
	// out); 5 do not (the final wait for the last confirms times out).
	for _, msgs := range []uint64{100, 5} {
		synctest.Test(t, func(t *testing.T) {
			spec := baseSpec()
			spec.Messages = msgs
			spec.ConfirmWait = time.Second
			start := time.Now()
			res, err := Run(context.Background(), silentBroker{newMemBroker()}, spec)
			if base.CodeOf(err) != base.CodeTimeout || errors.Is(err, ErrAccounting) {
				t.Errorf("%d messages: Run error: got %v, want a timeout and no accounting verdict on a run that broke", msgs, err)
			}
			if got, want := res.Publish.Seconds, 1.0; got != want {
				t.Errorf("%d messages: publish phase: got %vs, want %vs, the confirm wait", msgs, got, want)
			}
			if got := time.Since(start); got != time.Second {
				t.Errorf("%d messages: Run took %v of virtual time, want 1s", msgs, got)
			}
		})
	}
}

// silentBroker never confirms: its futures wait until the session closes.
type silentBroker struct{ *memBroker }

func (b silentBroker) Connect(ctx context.Context) (Session, error) {
	s, _ := b.memBroker.Connect(ctx)
	return silentSession{s.(*memSession)}, nil
}

type silentSession struct{ *memSession }

func (s silentSession) Publish(ctx context.Context, _ string, _ []byte, done func(error)) error {
	return s.conf.Add(ctx, func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }, done)
}

func TestSpecLimitsAreEnforcedAtTheirEdges(t *testing.T) {
	cases := []struct {
		name string
		edit func(*Spec)
		ok   bool
	}{
		{"in flight at max", func(s *Spec) { s.InFlight = base.LoadgenInFlightMax }, true},
		{"in flight over max", func(s *Spec) { s.InFlight = base.LoadgenInFlightMax + 1 }, false},
		{"prefetch at max", func(s *Spec) { s.Prefetch = base.LoadgenPrefetchMax }, true},
		{"prefetch over max", func(s *Spec) { s.Prefetch = base.LoadgenPrefetchMax + 1 }, false},
		{"body of one header", func(s *Spec) { s.BodyBytes = HeaderBytes }, true},
		{"body under a header", func(s *Spec) { s.BodyBytes = HeaderBytes - 1 }, false},
		{"body at max", func(s *Spec) { s.BodyBytes = base.LoadgenBodyBytesMax }, true},
		{"body over max", func(s *Spec) { s.BodyBytes = base.LoadgenBodyBytesMax + 1 }, false},
		{"producers at max", func(s *Spec) { s.Producers = base.LoadgenProducersMax }, true},
		{"producers over max", func(s *Spec) { s.Producers = base.LoadgenProducersMax + 1 }, false},
		{"messages at max", func(s *Spec) { s.Messages = base.LoadgenSequencesMax }, true},
		{"messages over max", func(s *Spec) { s.Messages = base.LoadgenSequencesMax + 1 }, false},
		{"no end", func(s *Spec) { s.Messages = 0 }, false},
		{"queue twice", func(s *Spec) { s.Topologies = []Topology{fanout("a", "q"), fanout("b", "q")} }, false},
	}
	for _, c := range cases {
		s := baseSpec()
		c.edit(&s)
		err := s.validate()
		if (err == nil) != c.ok {
			t.Errorf("%s: validate: got %v, want ok=%v", c.name, err, c.ok)
		}
		if err != nil && base.CodeOf(err) != base.CodeInvalidArgument {
			t.Errorf("%s: code: got %v, want invalid_argument", c.name, base.CodeOf(err))
		}
	}
}

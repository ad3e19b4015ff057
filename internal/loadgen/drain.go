package loadgen

import (
	"context"
	"fmt"

	"github.com/ferry-mq/ferry/internal/base"
)

// awaitReceipts waits until every message sent and not nacked has been
// received in each of its queues, or until no new message arrived for
// DrainIdle (then timedOut is true: the tally will say what is missing).
func (r *run) awaitReceipts(ctx context.Context, consumers *group) (timedOut bool, err error) {
	idle := orDefault(r.spec.DrainIdle, base.LoadgenDrainIdleDefault)
	timer := r.clock.NewTimer(idle)
	defer timer.Stop()
	for {
		if all, _ := r.ledger.Expected(); r.ledger.Received() >= all {
			return false, nil
		}
		select {
		case <-r.ledger.Notify():
			timer.Reset(idle)
		case <-timer.C():
			return true, nil
		case <-consumers.failed():
			if err := consumers.firstErr(); err != nil {
				return false, err
			}
			return false, ctx.Err()
		}
	}
}

func (r *run) reportProgress(ctx context.Context) {
	timer := r.clock.NewTimer(r.spec.ProgressEvery)
	defer timer.Stop()
	var prevSent, prevRecv uint64
	for {
		select {
		case <-timer.C():
		case <-ctx.Done():
			return
		}
		timer.Reset(r.spec.ProgressEvery)
		elapsed := r.clock.Now().Sub(r.epoch)
		sent, recv, conf := r.sent.Load(), r.ledger.Received(), r.confirmed.Load()
		every := r.spec.ProgressEvery.Seconds()
		r.spec.Progress(Progress{
			Elapsed:            elapsed,
			Sent:               sent,
			Confirmed:          conf,
			Received:           recv,
			SentPerSec:         float64(sent-prevSent) / every,
			ReceivedPerSec:     float64(recv-prevRecv) / every,
			ConfirmedPerSecAvg: float64(conf) / max(elapsed.Seconds(), 1e-9),
		})
		prevSent, prevRecv = sent, recv
	}
}

func connectN(ctx context.Context, target Target, n int) ([]Session, error) {
	out := make([]Session, 0, n)
	for range n {
		s, err := target.Connect(ctx)
		if err != nil {
			closeAll(out)
			return nil, fmt.Errorf("loadgen: connecting session %d of %d: %w", len(out)+1, n, err)
		}
		out = append(out, s)
	}
	return out, nil
}

func closeAll(ss []Session) {
	for _, s := range ss {
		_ = s.Close() // the run's outcome is already decided; a close error adds nothing
	}
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

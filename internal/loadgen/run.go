package loadgen

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/ferry-mq/ferry/internal/base"
)

// Throughput is what went through in one phase.
type Throughput struct {
	Messages    uint64  `json:"messages"`
	Bytes       uint64  `json:"bytes"`
	Seconds     float64 `json:"seconds"`
	MsgsPerSec  float64 `json:"msgs_per_sec"`
	BytesPerSec float64 `json:"bytes_per_sec"`
}

func throughput(msgs, bytes uint64, d time.Duration) Throughput {
	t := Throughput{Messages: msgs, Bytes: bytes, Seconds: d.Seconds()}
	if d > 0 {
		t.MsgsPerSec = float64(msgs) / d.Seconds()
		t.BytesPerSec = float64(bytes) / d.Seconds()
	}
	return t
}

// Result is the outcome of a run. Publish counts confirmed messages over the
// publish phase (first send to last outcome); Consume counts distinct
// receipts over the consume phase (from its start to the last receipt);
// Latency is end-to-end from each message's intended send time, recorded
// only when consumers run during the publish phase.
type Result struct {
	Tally   Tally       `json:"tally"`
	Publish Throughput  `json:"publish"`
	Consume Throughput  `json:"consume"`
	Latency Percentiles `json:"latency"`
	// DrainTimedOut says the consume phase ended because no message came
	// for DrainIdle, not because every expected one had arrived.
	DrainTimedOut bool `json:"drain_timed_out,omitempty"`
}

// Progress is a run's live state.
type Progress struct {
	Elapsed            time.Duration
	Sent               uint64
	Confirmed          uint64
	Received           uint64
	SentPerSec         float64 // over the last interval
	ReceivedPerSec     float64
	ConfirmedPerSecAvg float64 // since the start
}

// run is the state of one Run.
type run struct {
	spec   Spec
	clock  base.Clock
	epoch  time.Time // latencies and intended send times count from here
	ledger *Ledger
	lat    *Latency
	queues []string // every queue, in topology order; a queue's index is its ledger index

	sent          atomic.Uint64
	confirmed     atomic.Uint64
	recvBytes     atomic.Uint64
	lastReceiptNs atomic.Int64 // ns since epoch of the latest distinct receipt
}

// Run declares spec's topologies on target, publishes and consumes as spec
// says, and accounts for every message. The error is non-nil when the run
// could not be carried out (a session failed, ctx ended), or, for a run
// carried out to its end, when its accounting failed (Tally.Err, matching
// ErrAccounting); the Result is filled as far as the run got in all cases.
func Run(ctx context.Context, target Target, spec Spec) (Result, error) {
	if err := spec.validate(); err != nil {
		return Result{}, err
	}
	r, err := newRun(spec)
	if err != nil {
		return Result{}, err
	}
	if err := r.declare(ctx, target); err != nil {
		return Result{}, err
	}
	pubs, err := connectN(ctx, target, orDefault(spec.PublisherSessions, spec.Producers))
	if err != nil {
		return Result{}, err
	}
	defer closeAll(pubs)
	subs, err := connectN(ctx, target, orDefault(spec.ConsumerSessions, len(r.queues)))
	if err != nil {
		return Result{}, err
	}
	defer closeAll(subs)
	res, err := r.execute(ctx, pubs, subs)
	res.Tally = r.ledger.Tally()
	if err != nil {
		// The run broke before every message could be looked for: its
		// tally is partial, and a message not yet consumed is not lost.
		return res, err
	}
	return res, res.Tally.Err()
}

func newRun(spec Spec) (*run, error) {
	r := &run{spec: spec, clock: spec.Clock, lat: NewLatency()}
	if r.clock == nil {
		r.clock = base.RealClock{}
	}
	index := map[string]int{}
	for _, t := range spec.Topologies {
		for _, q := range t.Queues {
			index[q] = len(r.queues)
			r.queues = append(r.queues, q)
		}
	}
	var flows []Flow
	for p := range spec.Producers {
		for _, q := range spec.Topologies[p%len(spec.Topologies)].Queues {
			flows = append(flows, Flow{Producer: uint32(p), Queue: index[q]})
		}
	}
	var err error
	r.ledger, err = NewLedger(spec.Producers, len(r.queues), flows)
	return r, err
}

func (r *run) declare(ctx context.Context, target Target) error {
	s, err := target.Connect(ctx)
	if err != nil {
		return fmt.Errorf("loadgen: connecting to declare: %w", err)
	}
	defer s.Close()
	for _, t := range r.spec.Topologies {
		if err := s.Declare(ctx, t); err != nil {
			return fmt.Errorf("loadgen: declaring %q: %w", t.Route, err)
		}
	}
	return nil
}

func (r *run) execute(ctx context.Context, pubs, subs []Session) (Result, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	consumers := newGroup(ctx)
	defer consumers.stop()
	progress := newGroup(ctx)
	defer progress.stop()
	r.epoch = r.clock.Now()
	if r.spec.Progress != nil && r.spec.ProgressEvery > 0 {
		progress.run(func(ctx context.Context) error { r.reportProgress(ctx); return nil })
	}
	if r.spec.Consume == ConsumeDuring {
		r.startConsumers(consumers, subs)
	}
	r.observe(PhasePublishStart)
	pubStart := r.clock.Now()
	err := r.publish(ctx, pubs)
	pubEnd := r.clock.Now()
	r.observe(PhasePublishEnd)
	var res Result
	res.Publish = throughput(r.confirmed.Load(), r.confirmed.Load()*uint64(r.spec.BodyBytes), pubEnd.Sub(pubStart))
	if err != nil {
		return res, err
	}
	consStart := pubStart
	if r.spec.Consume == ConsumeAfter {
		r.observe(PhaseConsumeStart)
		consStart = r.clock.Now()
		r.startConsumers(consumers, subs)
	}
	res.DrainTimedOut, err = r.awaitReceipts(ctx, consumers)
	r.observe(PhaseConsumeEnd)
	if cerr := consumers.stop(); err == nil { // handlers have returned: the counts are final
		err = cerr
	}
	last := r.epoch.Add(time.Duration(r.lastReceiptNs.Load()))
	res.Consume = throughput(r.ledger.Received(), r.recvBytes.Load(), max(last.Sub(consStart), 0))
	if r.spec.Consume == ConsumeDuring {
		res.Latency = r.lat.Percentiles()
	}
	return res, err
}

func (r *run) observe(p Phase) {
	if r.spec.Observe != nil {
		r.spec.Observe(p)
	}
}

// publish runs every producer to the end of its schedule and waits for
// their confirms.
func (r *run) publish(ctx context.Context, pubs []Session) error {
	g := newGroup(ctx)
	for p := range r.spec.Producers {
		sess := pubs[p%len(pubs)]
		route := r.spec.Topologies[p%len(r.spec.Topologies)].Route
		g.run(func(ctx context.Context) error { return r.produce(ctx, uint32(p), sess, route) })
	}
	return g.wait()
}

// produce is one logical producer: paced sends, at most InFlight
// unconfirmed, then a bounded wait for the last confirms.
func (r *run) produce(ctx context.Context, p uint32, sess Session, route string) error {
	body := make([]byte, r.spec.BodyBytes)
	for i := HeaderBytes; i < len(body); i++ {
		body[i] = byte(i) // a fixed, non-zero payload: compression would flatter a run of zeros
	}
	window := make(chan struct{}, r.spec.InFlight) // a token per publish awaiting its confirm
	start := r.clock.Now()
	pacer := NewPacer(start, r.spec.Rate)
	deadline := start.Add(r.spec.Duration) // one start: n seconds at r/s is n*r messages, not one more
	w := waiter{clock: r.clock}
	defer w.stop()
	stall := r.clock.NewTimer(time.Hour)
	stall.Stop()
	for i := uint64(0); r.spec.Messages == 0 || i < r.spec.Messages; i++ {
		intended := pacer.Due(i)
		if pacer.Paced() {
			if r.spec.Duration > 0 && !intended.Before(deadline) {
				break
			}
			if w.until(ctx, intended) != nil {
				break
			}
		} else if now := r.clock.Now(); r.spec.Duration > 0 && !now.Before(deadline) {
			break
		}
		if err := r.acquire(ctx, p, window, stall); err != nil {
			return err
		}
		if !pacer.Paced() {
			intended = r.clock.Now()
		}
		if err := r.publishOne(ctx, p, sess, route, body, intended, window); err != nil {
			return err
		}
	}
	return r.awaitConfirms(ctx, p, window)
}

func (r *run) publishOne(ctx context.Context, p uint32, sess Session, route string, body []byte, intended time.Time, window chan struct{}) error {
	seq, err := r.ledger.Send(p)
	if err != nil {
		<-window
		return err
	}
	EncodeHeader(body, Header{RunID: r.spec.RunID, Producer: p, Seq: seq, IntendedNs: int64(intended.Sub(r.epoch))})
	err = sess.Publish(ctx, route, body, func(err error) {
		if err == nil {
			r.ledger.Confirm(p, seq)
			r.confirmed.Add(1)
		} else {
			r.ledger.Nack(p, seq)
		}
		<-window
	})
	if err != nil {
		<-window // done will not be called; the message stays sent and unconfirmed
		return fmt.Errorf("loadgen: producer %d: publishing message %d: %w", p, seq, err)
	}
	r.sent.Add(1)
	return nil
}

// acquire takes a token of the confirm window, waiting at most ConfirmWait
// for a confirm to free one: a broker that stops confirming fails the run
// instead of hanging it.
// stall is the producer's own timer, reused so that a full window costs
// no allocation.
func (r *run) acquire(ctx context.Context, p uint32, window chan struct{}, stall base.Timer) error {
	select {
	case window <- struct{}{}:
		return nil
	default:
	}
	wait := orDefault(r.spec.ConfirmWait, base.LoadgenConfirmWaitDefault)
	stall.Reset(wait)
	defer stall.Stop()
	select {
	case window <- struct{}{}:
		return nil
	case <-stall.C():
		return base.Errorf(base.CodeTimeout, "loadgen: producer %d: no confirm for %v with %d outstanding", p, wait, len(window))
	case <-ctx.Done():
		return ctx.Err()
	}
}

// awaitConfirms waits until no publish of the producer awaits its outcome,
// at most ConfirmWait.
func (r *run) awaitConfirms(ctx context.Context, p uint32, window chan struct{}) error {
	timer := r.clock.NewTimer(orDefault(r.spec.ConfirmWait, base.LoadgenConfirmWaitDefault))
	defer timer.Stop()
	for range cap(window) {
		select {
		case window <- struct{}{}:
		case <-timer.C():
			return base.Errorf(base.CodeTimeout, "loadgen: producer %d: %d confirms outstanding after %v", p, len(window), orDefault(r.spec.ConfirmWait, base.LoadgenConfirmWaitDefault))
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (r *run) startConsumers(g *group, subs []Session) {
	for q, name := range r.queues {
		sess := subs[q%len(subs)]
		g.run(func(ctx context.Context) error {
			err := sess.Consume(ctx, name, r.spec.Prefetch, func(body []byte) { r.receive(q, body) })
			if err != nil && ctx.Err() == nil {
				return fmt.Errorf("loadgen: consuming %q: %w", name, err)
			}
			return nil
		})
	}
}

func (r *run) receive(q int, body []byte) {
	h, receipt := r.ledger.Receive(q, r.spec.RunID, body)
	if receipt != ReceiptFresh {
		return // foreign, phantom or duplicate: counted by the ledger, not as throughput
	}
	now := r.clock.Now().Sub(r.epoch)
	r.recvBytes.Add(uint64(len(body)))
	for { // keep the latest receipt time, whatever order consumers run in
		last := r.lastReceiptNs.Load()
		if int64(now) <= last || r.lastReceiptNs.CompareAndSwap(last, int64(now)) {
			break
		}
	}
	if r.spec.Consume == ConsumeDuring {
		r.lat.Record(now - time.Duration(h.IntendedNs))
	}
}

package loadgen

import (
	"time"

	"github.com/ferry-mq/ferry/internal/base"
)

// ConsumeMode says when a run's consumers read.
type ConsumeMode int

const (
	// ConsumeDuring runs consumers alongside producers: end-to-end latency
	// and fan-out.
	ConsumeDuring ConsumeMode = iota
	// ConsumeAfter fills the queues first and drains them once producers
	// are done: publish throughput alone, then drain throughput.
	ConsumeAfter
)

// Spec describes a run.
type Spec struct {
	// Topologies are declared before the run; logical producer i
	// publishes to Topologies[i % len(Topologies)].
	Topologies []Topology
	// Producers is the number of logical producers, each a goroutine with
	// its own sequence numbers, pacer and confirm window.
	Producers int
	// PublisherSessions is how many sessions the producers share
	// (producer i uses session i % PublisherSessions); 0 means one per
	// producer.
	PublisherSessions int
	// ConsumerSessions is how many sessions the queues' consumers share;
	// 0 means one per queue.
	ConsumerSessions int

	// BodyBytes is the size of every message body, at least HeaderBytes.
	BodyBytes int
	// InFlight bounds each producer's publishes awaiting their confirm.
	InFlight int
	// Rate is each producer's messages per second, open loop; 0 means as
	// fast as the confirm window allows.
	Rate float64
	// Duration and Messages end the publish phase: after Duration (of the
	// schedule, when paced), or once a producer sent Messages; whichever
	// comes first. At least one must be set.
	Duration time.Duration
	Messages uint64

	Consume  ConsumeMode
	Prefetch int
	// DrainIdle gives up waiting for the last messages after this long
	// without a new one; 0 means base.LoadgenDrainIdleDefault.
	DrainIdle time.Duration
	// ConfirmWait bounds the wait for outstanding confirms after the last
	// publish; 0 means base.LoadgenConfirmWaitDefault.
	ConfirmWait time.Duration

	// RunID tags this run's messages so leftovers of another run are
	// recognised; choose it at random.
	RunID uint32
	// Clock is the source of all time; nil means base.RealClock.
	Clock base.Clock

	// Progress, when set, is called every ProgressEvery from a goroutine of
	// the run with the counts so far.
	Progress      func(Progress)
	ProgressEvery time.Duration
	// Observe, when set, is called synchronously on Run's goroutine at each
	// phase boundary, so a caller can sample the broker's CPU time or
	// memory exactly around a phase.
	Observe func(Phase)
}

// Phase is a boundary of a run.
type Phase string

const (
	PhasePublishStart Phase = "publish-start" // queues declared, sessions open, producers about to start
	PhasePublishEnd   Phase = "publish-end"   // every producer stopped and its confirms resolved
	PhaseConsumeStart Phase = "consume-start" // ConsumeAfter only: consumers about to start
	PhaseConsumeEnd   Phase = "consume-end"   // every expected message received, or the drain gave up
)

func (s *Spec) validate() error {
	bad := func(format string, args ...any) error {
		return base.Errorf(base.CodeInvalidArgument, "loadgen: spec: "+format, args...)
	}
	switch {
	case len(s.Topologies) == 0:
		return bad("no topology")
	case s.Producers < 1 || s.Producers > base.LoadgenProducersMax:
		return bad("%d producers, want 1 to %d", s.Producers, base.LoadgenProducersMax)
	case s.BodyBytes < HeaderBytes || s.BodyBytes > base.LoadgenBodyBytesMax:
		return bad("body of %d bytes, want %d to %d", s.BodyBytes, HeaderBytes, base.LoadgenBodyBytesMax)
	case s.InFlight < 1 || s.InFlight > base.LoadgenInFlightMax:
		return bad("%d confirms in flight, want 1 to %d", s.InFlight, base.LoadgenInFlightMax)
	case s.Prefetch < 1 || s.Prefetch > base.LoadgenPrefetchMax:
		return bad("prefetch %d, want 1 to %d", s.Prefetch, base.LoadgenPrefetchMax)
	case s.Duration <= 0 && s.Messages == 0:
		return bad("neither a duration nor a message count")
	case s.Messages > base.LoadgenSequencesMax:
		return bad("%d messages per producer, at most %d", s.Messages, uint64(base.LoadgenSequencesMax))
	case s.Rate < 0:
		return bad("negative rate %v", s.Rate)
	case s.PublisherSessions < 0 || s.ConsumerSessions < 0:
		return bad("negative session count")
	}
	seen := map[string]bool{}
	for _, t := range s.Topologies {
		if t.Route == "" || len(t.Queues) == 0 {
			return bad("topology %q needs a route and a queue", t.Route)
		}
		for _, q := range t.Queues {
			if seen[q] {
				return bad("queue %q appears twice", q)
			}
			seen[q] = true
		}
	}
	if len(seen) > base.LoadgenQueuesMax {
		return bad("%d queues, at most %d", len(seen), base.LoadgenQueuesMax)
	}
	return nil
}

package loadgen

import (
	"context"
	"errors"
	"sync"
	"time"
)

// memBroker is an in-memory broker for tests: routes copy each message into
// their queues' channels, confirms go through a Confirmer as a real
// target's would, and faults are injected by the publish count.
type memBroker struct {
	mu      sync.Mutex
	routes  map[string][]string    // guarded by mu
	queues  map[string]chan []byte // guarded by mu; buffered deep enough for every test
	count   int                    // guarded by mu; publishes so far
	dropAt  map[int]bool           // confirmed but never stored: loss
	dupAt   map[int]bool           // stored twice: duplicate
	nackAt  map[int]bool           // refused and not stored
	stallAt map[int]time.Duration  // Publish blocks this long (on the time package: run under synctest)
}

const memQueueDepth = 1 << 16

func newMemBroker() *memBroker {
	return &memBroker{routes: map[string][]string{}, queues: map[string]chan []byte{},
		dropAt: map[int]bool{}, dupAt: map[int]bool{}, nackAt: map[int]bool{}, stallAt: map[int]time.Duration{}}
}

func (b *memBroker) Connect(context.Context) (Session, error) {
	return &memSession{b: b, conf: NewConfirmer()}, nil
}

type memSession struct {
	b    *memBroker
	conf *Confirmer
}

func (s *memSession) Declare(_ context.Context, t Topology) error {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	s.b.routes[t.Route] = t.Queues
	for _, q := range t.Queues {
		s.b.queues[q] = make(chan []byte, memQueueDepth)
	}
	return nil
}

var errNack = errors.New("memBroker: nack")

func (s *memSession) Publish(ctx context.Context, route string, body []byte, done func(error)) error {
	b := s.b
	b.mu.Lock()
	n := b.count
	b.count++
	stall := b.stallAt[n]
	b.mu.Unlock()
	if stall > 0 {
		time.Sleep(stall) // the broker's pause, in the bubble's virtual time
	}
	b.mu.Lock()
	var outcome error
	switch {
	case b.nackAt[n]:
		outcome = errNack
	case b.dropAt[n]:
	default:
		copies := 1
		if b.dupAt[n] {
			copies = 2
		}
		for _, q := range b.routes[route] {
			for range copies {
				b.queues[q] <- append([]byte(nil), body...)
			}
		}
	}
	b.mu.Unlock()
	return s.conf.Add(ctx, func(context.Context) error { return outcome }, done)
}

func (s *memSession) Consume(ctx context.Context, queue string, _ int, handle func([]byte)) error {
	s.b.mu.Lock()
	ch := s.b.queues[queue]
	s.b.mu.Unlock()
	for {
		select {
		case body := <-ch:
			handle(body)
		case <-ctx.Done():
			return nil
		}
	}
}

func (s *memSession) Close() error {
	s.conf.Close()
	return nil
}

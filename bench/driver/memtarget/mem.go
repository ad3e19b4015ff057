package memtarget

import (
	"context"
	"fmt"
	"sync"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/loadgen"
)

// Target holds the queues; all sessions of a run share it.
type Target struct {
	mu     sync.Mutex
	routes map[string][]chan []byte // guarded by mu
	queues map[string]chan []byte   // guarded by mu
}

func (t *Target) Connect(context.Context) (loadgen.Session, error) {
	return &session{t: t, confirms: loadgen.NewConfirmer()}, nil
}

type session struct {
	t        *Target
	confirms *loadgen.Confirmer
}

func (s *session) Declare(_ context.Context, topo loadgen.Topology) error {
	s.t.mu.Lock()
	defer s.t.mu.Unlock()
	if s.t.routes == nil {
		s.t.routes, s.t.queues = map[string][]chan []byte{}, map[string]chan []byte{}
	}
	chans := make([]chan []byte, len(topo.Queues))
	for i, q := range topo.Queues {
		chans[i] = make(chan []byte, base.LoadgenMemQueueDepth)
		s.t.queues[q] = chans[i]
	}
	s.t.routes[topo.Route] = chans
	return nil
}

// Publish copies body into every queue of the route, waiting while one is
// full (base.LoadgenMemQueueDepth), and confirms at once.
func (s *session) Publish(ctx context.Context, route string, body []byte, done func(error)) error {
	s.t.mu.Lock()
	chans, ok := s.t.routes[route]
	s.t.mu.Unlock()
	if !ok {
		return fmt.Errorf("memtarget: no route %q", route)
	}
	for _, ch := range chans {
		select {
		case ch <- append([]byte(nil), body...):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return s.confirms.Add(ctx, func(context.Context) error { return nil }, done)
}

func (s *session) Consume(ctx context.Context, queue string, _ int, handle func([]byte)) error {
	s.t.mu.Lock()
	ch, ok := s.t.queues[queue]
	s.t.mu.Unlock()
	if !ok {
		return fmt.Errorf("memtarget: no queue %q", queue)
	}
	for {
		select {
		case b := <-ch:
			handle(b)
		case <-ctx.Done():
			return nil
		}
	}
}

func (s *session) Close() error {
	s.confirms.Close()
	return nil
}

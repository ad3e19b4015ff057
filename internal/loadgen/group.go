package loadgen

import (
	"context"
	"sync"
)

// group owns goroutines that share a context: the first error cancels the
// others, and stop cancels and waits for all of them.
type group struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	err    error // guarded by mu; the first error
}

func newGroup(parent context.Context) *group {
	ctx, cancel := context.WithCancel(parent)
	return &group{ctx: ctx, cancel: cancel}
}

func (g *group) run(f func(ctx context.Context) error) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		if err := f(g.ctx); err != nil {
			g.mu.Lock()
			if g.err == nil {
				g.err = err
			}
			g.mu.Unlock()
			g.cancel()
		}
	}()
}

// failed is closed once any goroutine failed (or the parent ended).
func (g *group) failed() <-chan struct{} { return g.ctx.Done() }

func (g *group) firstErr() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.err
}

// wait waits for every goroutine to return, without cancelling them.
func (g *group) wait() error {
	g.wg.Wait()
	g.cancel()
	return g.firstErr()
}

// stop cancels every goroutine and waits for them. It may be called more
// than once.
func (g *group) stop() error {
	g.cancel()
	g.wg.Wait()
	return g.firstErr()
}

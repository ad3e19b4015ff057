package loadgen

import (
	"context"
	"errors"
	"sync"

	"github.com/ferry-mq/ferry/internal/base"
)

// ErrSessionClosed is what a done callback receives for a publish whose
// outcome was still unknown when its session closed.
var ErrSessionClosed = errors.New("loadgen: session closed before the broker confirmed")

// Confirmer turns a client library's per-publish futures (a deferred
// confirmation, an ack future, a token) into the done callbacks of
// Session.Publish: one goroutine waits for the futures in publish order,
// which is the order brokers confirm in. Targets own one per session.
type Confirmer struct {
	pending chan pendingConfirm // bounded by LoadgenConfirmQueueMax: Add blocks when full
	ctx     context.Context     // cancelled by Close; every wait is given it
	cancel  context.CancelFunc
	stopped chan struct{} // closed when the waiting goroutine has returned

	mu     sync.RWMutex
	closed bool // guarded by mu; no Add succeeds once set
}

type pendingConfirm struct {
	wait func(context.Context) error
	done func(error)
}

// NewConfirmer starts a confirmer's goroutine; Close stops it.
func NewConfirmer() *Confirmer {
	ctx, cancel := context.WithCancel(context.Background())
	c := &Confirmer{
		pending: make(chan pendingConfirm, base.LoadgenConfirmQueueMax),
		ctx:     ctx,
		cancel:  cancel,
		stopped: make(chan struct{}),
	}
	go c.loop()
	return c
}

func (c *Confirmer) loop() {
	defer close(c.stopped)
	for {
		select {
		case p := <-c.pending:
			if c.ctx.Err() != nil { // closed while p waited in the queue
				p.done(ErrSessionClosed)
				continue
			}
			p.done(p.wait(c.ctx))
		case <-c.ctx.Done():
			return
		}
	}
}

// Add queues a publish's future: wait blocks until the broker's outcome is
// known (nil for a confirm) or its context ends, and done receives that
// outcome. Add blocks while LoadgenConfirmQueueMax futures wait, and fails
// (never calling done) when ctx ends first or the confirmer is closed.
func (c *Confirmer) Add(ctx context.Context, wait func(context.Context) error, done func(error)) error {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed {
		return ErrSessionClosed
	}
	select {
	case c.pending <- pendingConfirm{wait, done}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-c.ctx.Done():
		return ErrSessionClosed
	}
}

// Close stops waiting: the future being waited for gets a cancelled
// context, and every queued one's done receives ErrSessionClosed. Close
// returns once no done callback will be called any more.
func (c *Confirmer) Close() {
	c.cancel()
	c.mu.Lock() // waits out Adds in progress; none starts after
	c.closed = true
	c.mu.Unlock()
	<-c.stopped
	for {
		select {
		case p := <-c.pending:
			p.done(ErrSessionClosed)
		default:
			return
		}
	}
}

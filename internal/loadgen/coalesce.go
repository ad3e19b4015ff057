package loadgen

import (
	"net"
	"sync"
	"time"

	"github.com/ferry-mq/ferry/internal/base"
)

// CoalescingConn is a net.Conn whose writes are queued for one flusher
// goroutine, which writes in one write(2) everything that was queued while
// its previous write ran. A client library that flushes each message with
// a write of its own (amqp091-go writes every publish so) then costs one
// system call per burst instead of one per message, and an idle connection
// still sends each write at once: the flusher sleeps only while nothing is
// queued. It is the design of nats.go's flusher; docs/benchmarks.md says
// what it changes in a run.
//
// Write copies its bytes and returns before they are sent. It blocks only
// while the queue holds base.LoadgenWriteQueueBytesMax bytes; a write
// error is returned by the Writes after it. Reads, deadlines and addresses
// are the wrapped connection's (a write deadline bounds the flusher's
// writes).
type CoalescingConn struct {
	net.Conn

	mu      sync.Mutex
	queued  []byte     // guarded by mu; the flusher's next write
	ready   *sync.Cond // on mu: the flusher waits for bytes or close
	room    *sync.Cond // on mu: writers wait for the flusher to take the queue
	err     error      // guarded by mu; the first write error, then every Write's
	closed  bool       // guarded by mu; no Write succeeds once set
	flushed chan struct{}

	limit  int    // the queue's bound: base.LoadgenWriteQueueBytesMax, or a test's
	onWait func() // tests: called under mu when a Write starts waiting for room
}

// NewCoalescingConn wraps c and starts its flusher; Close stops it.
func NewCoalescingConn(c net.Conn) *CoalescingConn {
	return newCoalescingConn(c, base.LoadgenWriteQueueBytesMax, nil)
}

func newCoalescingConn(c net.Conn, limit int, onWait func()) *CoalescingConn {
	cc := &CoalescingConn{Conn: c, flushed: make(chan struct{}), limit: limit, onWait: onWait}
	cc.ready = sync.NewCond(&cc.mu)
	cc.room = sync.NewCond(&cc.mu)
	go cc.flush() // owned by cc: Close waits for it
	return cc
}

// Write queues a copy of p. A write larger than the bound waits for an
// empty queue and is then queued whole.
func (c *CoalescingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.err == nil && !c.closed && len(c.queued) > 0 && len(c.queued)+len(p) > c.limit {
		if c.onWait != nil {
			c.onWait()
		}
		c.room.Wait()
	}
	switch {
	case c.err != nil:
		return 0, c.err
	case c.closed:
		return 0, net.ErrClosed
	}
	if len(c.queued) == 0 {
		c.ready.Signal()
	}
	c.queued = append(c.queued, p...)
	return len(p), nil
}

// flush writes the queue until the connection is closed and the queue is
// empty, or a write fails. Two buffers alternate: writers fill one while
// the other is on the wire.
func (c *CoalescingConn) flush() {
	defer close(c.flushed)
	var spare []byte
	for {
		c.mu.Lock()
		for len(c.queued) == 0 && !c.closed {
			c.ready.Wait()
		}
		if len(c.queued) == 0 { // closed, and everything written
			c.mu.Unlock()
			return
		}
		out := c.queued
		c.queued = spare[:0]
		c.room.Broadcast()
		c.mu.Unlock()

		_, err := c.Conn.Write(out)
		spare = out
		if err != nil {
			c.mu.Lock()
			c.err = err
			c.queued = nil
			c.room.Broadcast()
			c.mu.Unlock()
			return
		}
	}
}

// Close stops accepting writes, lets the flusher write what is queued
// (for at most base.LoadgenCloseFlushMax, so that a peer that stopped
// reading cannot hold it), then closes the wrapped connection. Closing
// twice returns net.ErrClosed, as a net.Conn does.
func (c *CoalescingConn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return net.ErrClosed
	}
	c.closed = true
	c.ready.Signal()
	c.room.Broadcast()
	c.mu.Unlock()
	// SetWriteDeadline fails only on a closed connection, whose writes
	// fail at once anyway.
	_ = c.Conn.SetWriteDeadline(time.Now().Add(base.LoadgenCloseFlushMax))
	<-c.flushed
	return c.Conn.Close()
}

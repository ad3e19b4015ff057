package amqp

import (
	"io"
	"sync"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/proto/amqp/codec"
)

// pendingBuf is the io.Writer the frame encoder appends to.
type pendingBuf struct{ buf []byte }

func (p *pendingBuf) Write(b []byte) (int, error) {
	p.buf = append(p.buf, b...)
	return len(b), nil
}

// frameWriter is a connection's outgoing side: any goroutine encodes
// frames into a shared pending buffer under mu, and one goroutine (run)
// swaps the buffer out and writes all of it with one Write call, so frames
// produced while a write is in progress are coalesced into the next one.
//
// Replies from the connection's reader wait while more than
// base.AMQPWriteBufferBytes are pending (backpressure reaches the client
// through TCP); deliveries and confirms, produced by broker goroutines
// that must not block, never wait: prefetch and AMQPPublishesInFlightMax
// bound them.
type frameWriter struct {
	w io.Writer

	mu      sync.Mutex
	space   sync.Cond          // on mu: broadcast when pending shrinks or the writer stops
	pending pendingBuf         // guarded by mu: encoded frames waiting for run
	enc     *codec.FrameWriter // guarded by mu: encodes into pending
	closing bool               // guarded by mu: finish was called; run exits when pending is empty
	err     error              // guarded by mu: the first write failure; nothing more is written
	writes  uint64             // guarded by mu: completed or begun writes, for the heartbeat monitor

	wake chan struct{} // size one: a pending wake-up is enough
	done chan struct{} // closed when run returns
}

func newFrameWriter(w io.Writer) *frameWriter {
	fw := &frameWriter{w: w, wake: make(chan struct{}, 1), done: make(chan struct{})}
	fw.space.L = &fw.mu
	fw.enc = codec.NewFrameWriter(&fw.pending)
	return fw
}

// setFrameMax sets the negotiated frame-max for later frames.
func (fw *frameWriter) setFrameMax(n uint32) error {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	return fw.enc.SetFrameMax(n)
}

// send encodes frames with encode under the writer's lock. With wait, it
// first waits while the pending buffer is over base.AMQPWriteBufferBytes.
// An encoding failure drops the partly encoded frames and is returned (a
// local mistake: the caller closes with 541). After the writer failed or
// finished, send returns errConnClosed and encodes nothing.
func (fw *frameWriter) send(wait bool, encode func(enc *codec.FrameWriter) error) error {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	for wait && len(fw.pending.buf) > base.AMQPWriteBufferBytes && fw.err == nil && !fw.closing {
		fw.space.Wait()
	}
	if fw.err != nil || fw.closing {
		return errConnClosed
	}
	mark := len(fw.pending.buf)
	if err := encode(fw.enc); err != nil {
		fw.pending.buf = fw.pending.buf[:mark]
		return err
	}
	if mark == 0 {
		select {
		case fw.wake <- struct{}{}:
		default:
		}
	}
	return nil
}

// sendMethod sends one method frame.
func (fw *frameWriter) sendMethod(wait bool, channel uint16, m codec.Method) error {
	return fw.send(wait, func(enc *codec.FrameWriter) error { return enc.WriteMethod(channel, m) })
}

// sendLast sends a final method (connection.close or close-ok) even while
// closing, so a connection that is ending can still say why.
func (fw *frameWriter) sendLast(channel uint16, m codec.Method) error {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	if fw.err != nil {
		return fw.err
	}
	mark := len(fw.pending.buf)
	if err := fw.enc.WriteMethod(channel, m); err != nil {
		fw.pending.buf = fw.pending.buf[:mark]
		return err
	}
	select {
	case fw.wake <- struct{}{}:
	default:
	}
	return nil
}

// sendHeartbeatIfIdle sends a heartbeat frame unless something was written
// since the monitor last looked (writes == seen); it returns the write
// count to compare with next time.
func (fw *frameWriter) sendHeartbeatIfIdle(seen uint64) uint64 {
	fw.mu.Lock()
	idle := fw.writes == seen && len(fw.pending.buf) == 0
	now := fw.writes
	fw.mu.Unlock()
	if idle {
		_ = fw.send(false, func(enc *codec.FrameWriter) error { return enc.WriteHeartbeat() })
	}
	return now
}

// writeCount returns the writes begun so far.
func (fw *frameWriter) writeCount() uint64 {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	return fw.writes
}

// finish makes run write what is pending and return; later sends fail.
func (fw *frameWriter) finish() {
	fw.mu.Lock()
	fw.closing = true
	fw.space.Broadcast()
	fw.mu.Unlock()
	select {
	case fw.wake <- struct{}{}:
	default:
	}
}

// run is the writer goroutine: it writes pending bytes until finish was
// called and nothing is pending, or a write fails. The connection owns it
// and waits for done.
func (fw *frameWriter) run() {
	defer close(fw.done)
	var spare []byte
	for range fw.wake {
		for {
			fw.mu.Lock()
			out := fw.pending.buf
			closing := fw.closing
			if len(out) == 0 {
				fw.mu.Unlock()
				if closing {
					return
				}
				break
			}
			fw.pending.buf = spare[:0]
			fw.writes++
			fw.space.Broadcast()
			fw.mu.Unlock()
			_, err := fw.w.Write(out)
			if err != nil {
				fw.mu.Lock()
				fw.err = err
				fw.pending.buf = nil
				fw.space.Broadcast()
				fw.mu.Unlock()
				return
			}
			// Keep the larger buffer for reuse, but not a huge one a
			// single large message left behind.
			if cap(out) <= 2*base.AMQPWriteBufferBytes {
				spare = out
			} else {
				spare = nil
			}
		}
	}
}

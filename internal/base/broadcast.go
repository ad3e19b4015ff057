package base

import "sync"

// Broadcast wakes every goroutine waiting for "something changed": a
// waiter takes Changed, reads the state it cares about, and waits on the
// channel if it is not satisfied; Signal, called after each change,
// closes that channel. Taking the channel before reading the state is
// what makes a change in between impossible to miss. The zero value is
// ready to use.
type Broadcast struct {
	mu sync.Mutex
	// ch is closed at the next Signal and then dropped; nil while nobody
	// waits, so that a change nobody watches costs no allocation.
	ch chan struct{} // guarded by mu
}

// Changed returns a channel that the next Signal closes.
func (b *Broadcast) Changed() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ch == nil {
		b.ch = make(chan struct{})
	}
	return b.ch
}

// Signal wakes the waiters of every channel Changed returned so far.
func (b *Broadcast) Signal() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ch != nil {
		close(b.ch)
		b.ch = nil
	}
}

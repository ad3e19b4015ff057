package replication

import "sync"

// leaderWatch broadcasts leadership changes of the engine's groups: a
// group's known leader, whether this node leads it, its first applied
// entry. The engine has no per-group callback (its loops must not call
// out); a watcher takes the channel, reads Status, and waits.
type leaderWatch struct {
	mu sync.Mutex
	// ch is closed at the next change and then dropped; nil while nobody
	// waits, so that a change nobody watches costs no allocation.
	ch chan struct{} // guarded by mu
}

func (w *leaderWatch) changed() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ch == nil {
		w.ch = make(chan struct{})
	}
	return w.ch
}

func (w *leaderWatch) signal() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ch != nil {
		close(w.ch)
		w.ch = nil
	}
}

// LeadershipChanged returns a channel closed at the next change, in any
// group of this node, of what Status reports as Leader or IsLeader, or of
// Applied leaving 0. Take it before reading Status: a change between the
// read and the wait then closes the channel taken, and is not missed.
// Without it a waiter must poll, and a poll on a clock that does not move
// (a fake clock in tests) never comes.
func (e *Engine) LeadershipChanged() <-chan struct{} { return e.leaders.changed() }

// leadershipMoved reports whether the status published after old changes
// what LeadershipChanged announces.
func leadershipMoved(old, st *GroupStatus) bool {
	if old == nil {
		return st.Leader != 0 || st.IsLeader || st.Applied != 0
	}
	return old.Leader != st.Leader || old.IsLeader != st.IsLeader || (old.Applied == 0) != (st.Applied == 0)
}

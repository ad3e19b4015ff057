package replication

// LeadershipChanged returns a channel closed at the next change, in any
// group of this node, of what Status reports as Leader or IsLeader, or of
// Applied leaving 0. Take it before reading Status: a change between the
// read and the wait then closes the channel taken, and is not missed.
// Without it a waiter must poll, and a poll on a clock that does not move
// (a fake clock in tests) never comes.
func (e *Engine) LeadershipChanged() <-chan struct{} { return e.leaders.Changed() }

// leadershipMoved reports whether the status published after old changes
// what LeadershipChanged announces.
func leadershipMoved(old, st *GroupStatus) bool {
	if old == nil {
		return st.Leader != 0 || st.IsLeader || st.Applied != 0
	}
	return old.Leader != st.Leader || old.IsLeader != st.IsLeader || (old.Applied == 0) != (st.Applied == 0)
}

package base

import "testing"

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// TestBroadcastWakesEveryChannelTakenBeforeTheSignalOnly: channels taken
// before a Signal are closed by it, one taken after waits for the next.
func TestBroadcastWakesEveryChannelTakenBeforeTheSignalOnly(t *testing.T) {
	var b Broadcast
	b.Signal() // nobody waits: nothing to close, nothing allocated
	a, c := b.Changed(), b.Changed()
	if isClosed(a) {
		t.Fatal("channel closed before any Signal")
	}
	b.Signal()
	if !isClosed(a) || !isClosed(c) {
		t.Fatalf("after Signal: closed %v and %v, want both", isClosed(a), isClosed(c))
	}
	d := b.Changed()
	if isClosed(d) {
		t.Fatal("a channel taken after the Signal is already closed")
	}
	b.Signal()
	if !isClosed(d) {
		t.Fatal("the second Signal did not close the channel taken after the first")
	}
}

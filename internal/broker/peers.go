package broker

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/replication"
)

// releaseDownNodes runs on every node and acts while it leads the
// controller: it deletes the exclusive queues of the connections of a
// node that its transport has not heard for Config.DownNodeRelease, as
// RabbitMQ deletes them when it sees their node go down. Those
// connections are gone with their node, or cut off from the cluster, and
// their queues, placed on that node alone, answer nobody meanwhile; a
// node that comes back applies the deletes and closes the queues' groups.
// It wakes when a peer goes down or comes back, when leadership changes,
// and when an outage reaches the delay: an idle cluster costs it nothing.
func (b *Broker) releaseDownNodes() {
	t := b.clock.NewTimer(time.Hour)
	t.Stop()
	defer t.Stop()
	released := map[NodeID]time.Time{} // the outage (its start) whose release succeeded, per node
	for {
		// Taken before the checks, so that a change between a check and
		// the wait is not missed.
		changed, moved := b.peers.changes.Changed(), b.engine.LeadershipChanged()
		down := b.peers.down()
		maps.DeleteFunc(released, func(n NodeID, _ time.Time) bool { _, ok := down[n]; return !ok })
		var wake time.Duration // until the next outage to act on; 0: none
		if st, err := b.engine.Status(controllerGroup); err == nil && st.IsLeader {
			wake = b.releaseDown(down, released)
		}
		t.Stop()
		if wake > 0 {
			t.Reset(wake)
		}
		select {
		case <-b.stop:
			return
		case <-changed:
		case <-moved:
		case <-t.C():
		}
	}
}

// releaseDown releases the nodes of down (each with the start of its
// outage) that have been down for Config.DownNodeRelease and are not in
// released yet, adding them there; it returns how long until the next
// one is due, or until a failed release is tried again (0: nothing left).
func (b *Broker) releaseDown(down, released map[NodeID]time.Time) time.Duration {
	now := b.clock.Now()
	var wake time.Duration
	soonest := func(d time.Duration) {
		if wake == 0 || d < wake {
			wake = d
		}
	}
	for _, n := range slices.Sorted(maps.Keys(down)) {
		since := down[n]
		if released[n].Equal(since) {
			continue
		}
		if left := since.Add(b.cfg.DownNodeRelease).Sub(now); left > 0 {
			soonest(left)
			continue
		}
		prefix := fmt.Sprintf("%d.", n)
		if b.releaseOwners(b.ctx(), fmt.Sprintf("a connection of node %d, down since %v", n, since),
			func(owner string) bool { return strings.HasPrefix(owner, prefix) }) {
			released[n] = since
		} else {
			soonest(base.BrokerReleaseRetryInterval)
		}
	}
	return wake
}

// peerWatch passes the transport's events on to the engine, notes since
// when each peer has been down, for releaseDownNodes, and tells onDown.
type peerWatch struct {
	replication.Handler
	clock  base.Clock
	onDown func(NodeID) // also told of a peer down

	// changes is signalled at every report of a peer down or up
	// (releaseDownNodes waits on it).
	changes base.Broadcast

	mu    sync.Mutex
	since map[NodeID]time.Time // guarded by mu: peers reported down and not up since
}

// isDown reports whether peer n is down, as the transport last reported.
func (w *peerWatch) isDown(n NodeID) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, ok := w.since[n]
	return ok
}

func (w *peerWatch) PeerDown(n NodeID) {
	w.mu.Lock()
	if _, ok := w.since[n]; !ok {
		w.since[n] = w.clock.Now()
	}
	w.mu.Unlock()
	w.changes.Signal()
	w.Handler.PeerDown(n)
	if w.onDown != nil {
		w.onDown(n)
	}
}

func (w *peerWatch) PeerUp(n NodeID) {
	w.mu.Lock()
	delete(w.since, n)
	w.mu.Unlock()
	w.changes.Signal()
	w.Handler.PeerUp(n)
}

// down returns the peers down, each with the start of its outage.
func (w *peerWatch) down() map[NodeID]time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return maps.Clone(w.since)
}

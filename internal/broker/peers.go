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
func (b *Broker) releaseDownNodes() {
	t := b.clock.NewTimer(b.cfg.LeaderPollInterval)
	defer t.Stop()
	released := map[NodeID]time.Time{} // the outage (its start) whose release succeeded, per node
	for {
		select {
		case <-b.stop:
			return
		case <-t.C():
			t.Reset(b.cfg.LeaderPollInterval)
		}
		down := b.peers.downSince(b.clock.Now().Add(-b.cfg.DownNodeRelease))
		maps.DeleteFunc(released, func(n NodeID, _ time.Time) bool { _, ok := down[n]; return !ok })
		if len(down) == 0 {
			continue
		}
		if st, err := b.engine.Status(controllerGroup); err != nil || !st.IsLeader {
			continue
		}
		for _, n := range slices.Sorted(maps.Keys(down)) {
			if released[n].Equal(down[n]) {
				continue
			}
			prefix := fmt.Sprintf("%d.", n)
			if b.releaseOwners(b.ctx(), fmt.Sprintf("a connection of node %d, down since %v", n, down[n]),
				func(owner string) bool { return strings.HasPrefix(owner, prefix) }) {
				released[n] = down[n]
			}
		}
	}
}

// peerWatch passes the transport's events on to the engine, notes since
// when each peer has been down, for releaseDownNodes, and tells onDown.
type peerWatch struct {
	replication.Handler
	clock  base.Clock
	onDown func(NodeID) // also told of a peer down

	// changes is signalled at every report of a peer down or up.
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

// downSince returns the peers down since before t, each with the start of
// its outage.
func (w *peerWatch) downSince(t time.Time) map[NodeID]time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.since) == 0 {
		return nil
	}
	out := map[NodeID]time.Time{}
	for n, since := range w.since {
		if since.Before(t) {
			out[n] = since
		}
	}
	return out
}

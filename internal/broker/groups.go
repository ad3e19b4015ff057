package broker

import (
	"errors"
	"fmt"
	"path"
	"sync"
	"sync/atomic"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/controller"
	"github.com/ferry-mq/ferry/internal/queue"
	"github.com/ferry-mq/ferry/internal/replication"
	"github.com/ferry-mq/ferry/internal/stream"
)

type groupKind uint8

const (
	kindController groupKind = iota + 1
	kindQueue
	kindPartition
	kindCoordinator
)

// localGroup is a group with a replica on this node, and its leader
// runtime while this node leads it.
type localGroup struct {
	id   GroupID
	kind groupKind
	fsm  replication.FSM
	info controller.GroupInfo

	mu     sync.Mutex
	leader leaderRuntime // guarded by mu; nil while not leading

	seenLeader NodeID // owned by checkLeaders: the leader it last saw

	// replayed is set once a read through the group (ReadIndex) has
	// returned on this replica: it has applied everything committed
	// before (after a restart, its whole log), so reads of it are no
	// older than before the restart (awaitLeader). Never cleared.
	replayed atomic.Bool
}

// leaderRuntime is what a node runs for a group it leads: timers,
// deliveries, batching. Stop returns once its goroutines have ended.
type leaderRuntime interface {
	stop()
}

func (g *localGroup) stopLeader() {
	g.mu.Lock()
	lr := g.leader
	g.leader = nil
	g.mu.Unlock()
	if lr != nil {
		lr.stop()
	}
}

func (g *localGroup) currentLeader() leaderRuntime {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.leader
}

// group returns the local group g, or nil.
func (b *Broker) group(g GroupID) *localGroup {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.groups[g]
}

// queueLeaderOf returns the running leader runtime of queue group g on
// this node, or nil.
func (b *Broker) queueLeaderOf(g GroupID) *queueLeader {
	lg := b.group(g)
	if lg == nil {
		return nil
	}
	ql, _ := lg.currentLeader().(*queueLeader)
	return ql
}

func (b *Broker) partitionLeaderOf(g GroupID) *partitionLeader {
	lg := b.group(g)
	if lg == nil {
		return nil
	}
	pl, _ := lg.currentLeader().(*partitionLeader)
	return pl
}

func (b *Broker) coordinatorLeaderOf(g GroupID) *coordinatorLeader {
	lg := b.group(g)
	if lg == nil {
		return nil
	}
	cl, _ := lg.currentLeader().(*coordinatorLeader)
	return cl
}

// leaderLoop starts and stops leader runtimes as this node gains and loses
// the leadership of its groups: at every leadership change the engine
// announces, at once when kicked, and every LeaderPollInterval besides
// (DESIGN.md "Leadership").
func (b *Broker) leaderLoop() {
	t := b.clock.NewTimer(b.cfg.LeaderPollInterval)
	defer t.Stop()
	for {
		// Taken before the check: a change during it closes this channel,
		// so the loop checks again instead of waiting for a poll that a
		// fake clock never brings.
		moved := b.engine.LeadershipChanged()
		b.checkLeaders()
		select {
		case <-b.stop:
			return
		case <-t.C():
			t.Reset(b.cfg.LeaderPollInterval)
		case <-b.leaderKick:
		case <-moved:
		}
	}
}

func (b *Broker) checkLeaders() {
	b.mu.Lock()
	groups := make([]*localGroup, 0, len(b.groups))
	for _, g := range b.groups {
		groups = append(groups, g)
	}
	b.mu.Unlock()
	for _, g := range groups {
		st, err := b.engine.Status(g.id)
		if err == nil && st.Leader != g.seenLeader {
			g.seenLeader = st.Leader
			b.ready.Signal() // awaitLeader watches remote leaders, and the controller's, too
		}
		if g.kind == kindController {
			continue // no runtime
		}
		leading := err == nil && st.IsLeader && st.Applied >= 1
		running := g.currentLeader() != nil
		switch {
		case leading && !running:
			b.startLeader(g)
		case !leading && running:
			g.stopLeader()
			b.ready.Signal()
		}
	}
}

func (b *Broker) startLeader(g *localGroup) {
	var lr leaderRuntime
	switch g.kind {
	case kindQueue:
		lr = newQueueLeader(b, g)
	case kindPartition:
		lr = newPartitionLeader(b, g)
	case kindCoordinator:
		lr = newCoordinatorLeader(b, g)
	default:
		return
	}
	g.mu.Lock()
	if g.leader == nil {
		g.leader = lr
		lr = nil
	}
	g.mu.Unlock()
	if lr != nil {
		lr.stop() // lost a race with another start
	}
	b.ready.Signal()
}

// reconcileLoop opens and closes this node's groups as the controller's
// placement says, after every controller change and every
// ReconcileInterval.
func (b *Broker) reconcileLoop() {
	t := b.clock.NewTimer(b.cfg.ReconcileInterval)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C():
			t.Reset(b.cfg.ReconcileInterval)
		case <-b.reconcileKick:
		}
		b.reconcile()
	}
}

func (b *Broker) reconcile() {
	var want []controller.GroupInfo
	var queues map[GroupID]controller.QueueInfo
	var streams map[GroupID]controller.StreamInfo
	b.ctrl.read(func(c *controller.Controller) {
		want = c.Groups(controller.NodeID(b.node))
		queues = map[GroupID]controller.QueueInfo{}
		streams = map[GroupID]controller.StreamInfo{}
		for _, gi := range want {
			switch {
			case gi.Coordinator >= 0:
			case gi.Entity.Kind == routingQueue:
				if q, ok := c.Queue(gi.Entity.Tenant, gi.Entity.Name); ok {
					queues[GroupID(gi.Group)] = q
				}
			default:
				if s, ok := c.Stream(gi.Entity.Tenant, gi.Entity.Name); ok {
					streams[GroupID(gi.Group)] = s
				}
			}
		}
	})
	wanted := map[GroupID]bool{controllerGroup: true}
	for _, gi := range want {
		id := GroupID(gi.Group)
		wanted[id] = true
		if lg := b.group(id); lg != nil {
			b.refresh(lg, gi, queues[id], streams[id])
			continue
		}
		if err := b.openGroup(gi, queues[id], streams[id]); err != nil && !b.stopped() {
			b.log.Warn("opening a group failed", "group", id, "err", err)
		}
	}
	b.mu.Lock()
	var gone []*localGroup
	for id, g := range b.groups {
		if !wanted[id] {
			gone = append(gone, g)
			delete(b.groups, id)
		}
	}
	b.mu.Unlock()
	for _, g := range gone {
		b.closeGroup(g)
	}
	kick(b.leaderKick)
}

func (b *Broker) openGroup(gi controller.GroupInfo, q controller.QueueInfo, s controller.StreamInfo) error {
	id := GroupID(gi.Group)
	lg := &localGroup{id: id, info: gi}
	switch {
	case gi.Coordinator >= 0:
		lg.kind, lg.fsm = kindCoordinator, newCoordinatorFSM(b, id)
	case gi.Entity.Kind == routingQueue:
		if q.Name == "" {
			return nil // the queue went away in between
		}
		f, err := newQueueFSM(b, id, q)
		if err != nil {
			return err
		}
		lg.kind, lg.fsm = kindQueue, f
	default:
		if s.Name == "" {
			return nil
		}
		if err := b.logs.setRolling(id, partitionRolling(s.Config)); err != nil {
			return fmt.Errorf("broker: the segments of group %d: %w", id, err)
		}
		lg.kind, lg.fsm = kindPartition, newPartitionFSM(b, id, s, gi.Partition)
	}
	voters := make([]NodeID, len(gi.Replicas))
	for i, n := range gi.Replicas {
		voters[i] = NodeID(n)
	}
	if err := b.engine.OpenGroup(id, lg.fsm, voters); err != nil {
		if errors.Is(err, &base.Error{Code: base.CodeConflict}) {
			return nil // still closing from an earlier incarnation of this node's view
		}
		return fmt.Errorf("broker: opening group %d: %w", id, err)
	}
	b.mu.Lock()
	b.groups[id] = lg
	b.mu.Unlock()
	if len(voters) > 1 && NodeID(gi.Preferred) == b.node {
		// The preferred replica stands at once (and at every tick until
		// a leader is known) instead of after an election timeout: a
		// queue declared on a cluster is usable in a few ticks, not a
		// second. After a restart the others' leader keeps its place
		// (PreVote).
		b.engine.Campaign(id)
	}
	b.ready.Signal()
	return nil
}

// refresh brings a running group up to date with the controller: a
// stream's segment settings on every replica, the entity's effective
// configuration on its leader.
func (b *Broker) refresh(lg *localGroup, gi controller.GroupInfo, q controller.QueueInfo, s controller.StreamInfo) {
	if lg.kind == kindPartition && s.Name != "" {
		if err := b.logs.setRolling(lg.id, partitionRolling(s.Config)); err != nil {
			b.log.Warn("changing a partition's segment settings failed", "group", lg.id, "err", err)
		}
	}
	lg.mu.Lock()
	lg.info = gi
	lr := lg.leader
	lg.mu.Unlock()
	switch l := lr.(type) {
	case *queueLeader:
		if q.Name != "" {
			l.configure(q)
		}
	case *partitionLeader:
		if s.Name != "" {
			l.configure(s)
		}
	}
}

// closeGroup stops a group this node no longer hosts (its entity was
// deleted, or its replica moved) and deletes its data once the engine has
// let go of it.
func (b *Broker) closeGroup(g *localGroup) {
	g.stopLeader()
	// A call in awaitLeader that saw the group open and is waiting for
	// its runtime must look again (and find the group gone): nothing else
	// signals it, and on a fake clock no poll comes.
	b.ready.Signal()
	b.engine.CloseGroup(g.id)
	b.cache.dropGroup(g.id)
	b.spawn(func() { b.deleteGroupData(g.id) })
}

// deleteGroupData waits for the engine to close the group, then removes
// its log, snapshots and Raft state.
func (b *Broker) deleteGroupData(id GroupID) {
	t := b.clock.NewTimer(0)
	defer t.Stop()
	for {
		if _, err := b.engine.Status(id); err != nil {
			break
		}
		select {
		case <-b.stop:
			return
		case <-t.C():
			t.Reset(b.cfg.LeaderPollInterval)
		}
	}
	b.logs.forget(id)
	fs := b.cfg.FS
	for _, dir := range []string{
		path.Join(b.cfg.Dir, "logs", fmt.Sprintf("%020d", id)),
		path.Join(b.cfg.Dir, "raft", "snap", fmt.Sprintf("%020d", id)),
	} {
		if err := fs.RemoveAll(dir); err != nil {
			b.log.Warn("removing a deleted group's files failed", "group", id, "dir", dir, "err", err)
		}
	}
	if err := (replication.MetaState{Store: b.meta}).Commit([]replication.StateUpdate{{Group: id, Delete: true}}); err != nil {
		b.log.Warn("removing a deleted group's state failed", "group", id, "err", err)
	}
}

// queueConfigEqual compares the parts of two queue configurations that
// Configure sets.
func queueConfigEqual(a, b queue.Config) bool {
	if len(a.Retry.Reasons) != len(b.Retry.Reasons) {
		return false
	}
	for i := range a.Retry.Reasons {
		if a.Retry.Reasons[i] != b.Retry.Reasons[i] {
			return false
		}
	}
	return a.MaxPriority == b.MaxPriority && a.MaxLength == b.MaxLength && a.MaxLengthBytes == b.MaxLengthBytes &&
		a.Overflow == b.Overflow && a.MessageTTLms == b.MessageTTLms && a.ExpiresMs == b.ExpiresMs &&
		a.AckTimeoutMs == b.AckTimeoutMs && a.DeadLetterTarget == b.DeadLetterTarget &&
		a.SingleActiveConsumer == b.SingleActiveConsumer && a.DedupeWindowMs == b.DedupeWindowMs &&
		a.Retry.DeliveryLimit == b.Retry.DeliveryLimit && a.Retry.Default == b.Retry.Default
}

// partitionConfigEqual is == for stream partition configurations.
func partitionConfigEqual(a, b stream.PartitionConfig) bool { return a == b }

package broker

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/controller"
	"github.com/ferry-mq/ferry/internal/replication"
	"github.com/ferry-mq/ferry/internal/routing"
)

// entity is a queue or a stream as the controller describes it now.
type entity struct {
	tenant, name string
	isStream     bool
	group        GroupID // a queue's group
	queue        controller.QueueInfo
	stream       controller.StreamInfo
}

// groups returns the entity's groups: the queue's, or every partition's.
func (e entity) groups() []GroupID {
	if !e.isStream {
		return []GroupID{e.group}
	}
	out := make([]GroupID, len(e.stream.Partitions))
	for i, p := range e.stream.Partitions {
		out[i] = GroupID(p.Group)
	}
	return out
}

// lookupQueue finds a queue or a stream by name (they share a namespace).
// A missing one is RabbitMQ's CodeNotFound.
func (b *Broker) lookupQueue(tenant, name string) (entity, error) {
	var e entity
	ok := false
	b.ctrl.read(func(c *controller.Controller) {
		if q, found := c.Queue(tenant, name); found {
			e, ok = entity{tenant: tenant, name: name, group: GroupID(q.Placement.Group), queue: q}, true
			return
		}
		if s, found := c.Stream(tenant, name); found {
			e, ok = entity{tenant: tenant, name: name, isStream: true, stream: s}, true
		}
	})
	if !ok {
		return entity{}, base.Errorf(base.CodeNotFound, "no queue '%s' in vhost '%s'", name, tenant)
	}
	return e, nil
}

// lookupEntity finds a routing destination.
func (b *Broker) lookupEntity(tenant string, kind routing.DestKind, name string) (entity, error) {
	e, err := b.lookupQueue(tenant, name)
	if err != nil {
		return e, err
	}
	if (kind == routing.Stream) != e.isStream {
		return entity{}, base.Errorf(base.CodeNotFound, "no %s '%s' in vhost '%s'", kind, name, tenant)
	}
	return e, nil
}

// lookupStream finds a stream by name: Kafka's UNKNOWN_TOPIC_OR_PARTITION
// is CodeNotFound.
func (b *Broker) lookupStream(tenant, name string) (controller.StreamInfo, error) {
	var s controller.StreamInfo
	ok := false
	b.ctrl.read(func(c *controller.Controller) { s, ok = c.Stream(tenant, name) })
	if !ok {
		return s, base.Errorf(base.CodeNotFound, "no stream '%s' in vhost '%s'", name, tenant)
	}
	return s, nil
}

// waitReady returns once every group of a just-declared entity can take
// calls: on a node hosting a replica, the group is open here and has a
// leader (and, when the leader is this node, its runtime runs). A node
// without a replica does not wait: its calls find the leader when they
// are forwarded.
func (b *Broker) waitReady(ctx context.Context, e entity) error {
	for _, g := range e.groups() {
		if err := b.waitGroupReady(ctx, g); err != nil {
			return err
		}
	}
	return nil
}

// waitGroupReady waits until a call to group g can be made (see
// awaitLeader); for a group without a replica here it returns at once.
func (b *Broker) waitGroupReady(ctx context.Context, g GroupID) error {
	_, err := b.awaitLeader(ctx, g, 0)
	return err
}

// awaitLeader is the one wait of every call that must reach a group's
// leader (DESIGN.md "Waiting for a leader"). It returns the node to send
// the call to, other than avoid (0: any), once that can be done:
//
//   - for a group the controller places on this node: once the group is
//     open here (the reconciler opens it after a restart or a declare),
//     its replica knows a leader other than avoid (or avoid again: in a
//     later term than the one this node knew at the start, as a leader
//     whose node failed the call can restart and win the next election,
//     or after BrokerSameLeaderRetryAfter while the transport does not
//     report avoid's node down, as when only the forwarding connection to
//     a live leader broke) and has replayed its
//     log (localGroup.replayed: reads of the replica, stats and fetches,
//     are then no older than before a restart), and, when that leader is
//     this node, once its leader runtime runs;
//   - for a group without a replica here: at once, the preferred replica
//     (or the one after avoid); a forwarded call is redirected from there.
//
// It waits on the node's ready signal (groups opening, runtimes starting
// and stopping, leaders of any group changing, as leaderLoop sees them at
// the engine's announcement) and polls every LeaderPollInterval besides.
// Errors: CodeNotFound (no
// such group), CodeUnavailable (ctx ended first: no leader was elected in
// time), CodeStopped.
func (b *Broker) awaitLeader(ctx context.Context, g GroupID, avoid NodeID) (NodeID, error) {
	var t base.Timer
	defer func() {
		if t != nil {
			t.Stop()
		}
	}()
	var avoidTerm uint64 // the term this node knew at its first look
	var lookedAt time.Time
	looked := false
	for {
		ch := b.readyChanged()
		lg := b.group(g)
		var st replication.GroupStatus
		var stErr error
		if lg != nil {
			if st, stErr = b.engine.Status(g); stErr == nil && !looked {
				avoidTerm, looked, lookedAt = st.Term, true, b.clock.Now()
			}
		}
		if lg == nil {
			p, found := b.placementOf(g)
			if !found {
				return 0, base.Errorf(base.CodeNotFound, "broker: no group %d", g)
			}
			if !slices.Contains(p.Replicas, controller.NodeID(b.node)) {
				return otherReplica(p, avoid), nil
			}
			kick(b.reconcileKick) // placed here, not open yet
		} else if stErr == nil && st.Leader != 0 && (st.Leader != avoid || st.Term > avoidTerm || b.avoidedLongEnough(avoid, lookedAt)) &&
			(st.Leader != b.node || lg.kind == kindController || lg.currentLeader() != nil) {
			if lg.kind == kindController || lg.replayed.Load() {
				return st.Leader, nil
			}
			// Once per group and run: a read through the group, so that
			// the replica has replayed its log (a restart's persisted
			// commit index lags what was committed).
			if _, err := b.engine.ReadIndex(ctx, g); err == nil {
				lg.replayed.Store(true)
				return st.Leader, nil
			} else if ctx.Err() != nil {
				return 0, base.Errorf(base.CodeUnavailable, "broker: group %d has not replayed its log yet: %w", g, err)
			}
		}
		kick(b.leaderKick)
		if t == nil {
			t = b.clock.NewTimer(b.cfg.LeaderPollInterval)
		} else {
			t.Reset(b.cfg.LeaderPollInterval)
		}
		select {
		case <-ch:
		case <-t.C():
		case <-ctx.Done():
			return 0, base.Errorf(base.CodeUnavailable, "broker: group %d has no leader yet: %w", g, ctx.Err())
		case <-b.stop:
			return 0, base.Errorf(base.CodeStopped, "broker: node %d is stopping", b.node)
		}
	}
}

// avoidedLongEnough reports whether node avoid, which failed a call
// without answering it and still leads in the same term, may be sent the
// call again: BrokerSameLeaderRetryAfter has passed since the wait began
// and the transport does not report the node down.
func (b *Broker) avoidedLongEnough(avoid NodeID, since time.Time) bool {
	return avoid != b.node && b.clock.Now().Sub(since) >= base.BrokerSameLeaderRetryAfter && !b.peers.isDown(avoid)
}

// placementOf returns group g's placement as the controller has it. It
// scans every group: callers use it only for groups not open here.
func (b *Broker) placementOf(g GroupID) (controller.Placement, bool) {
	var p controller.Placement
	found := false
	b.ctrl.read(func(c *controller.Controller) {
		for _, gi := range c.Groups(0) {
			if GroupID(gi.Group) == g {
				p, found = gi.Placement, true
				return
			}
		}
	})
	return p, found
}

// otherReplica is where to send a call for a group without a replica
// here: the preferred replica, or, when that is avoid, the next one.
func otherReplica(p controller.Placement, avoid NodeID) NodeID {
	if avoid == 0 || NodeID(p.Preferred) != avoid {
		return NodeID(p.Preferred)
	}
	for i, r := range p.Replicas {
		if NodeID(r) == avoid {
			return NodeID(p.Replicas[(i+1)%len(p.Replicas)])
		}
	}
	return NodeID(p.Preferred)
}

func (b *Broker) readyChanged() <-chan struct{} { return b.ready.Changed() }

// leaderOf returns the node leading group g as far as this node can
// tell, waiting (bounded by ctx) as awaitLeader does.
func (b *Broker) leaderOf(ctx context.Context, g GroupID) (NodeID, error) {
	return b.awaitLeader(ctx, g, 0)
}

// retriableElsewhere reports whether a call that failed with err may be
// sent again to the group's (new) leader: the node was not the leader, or
// could not be reached, or is stopping.
func retriableElsewhere(err error) bool {
	switch base.CodeOf(err) {
	case base.CodeNotLeader, base.CodeUnavailable, base.CodeStopped:
		return true
	}
	return false
}

// nextLeader returns where to send a call to group g again after it
// failed on node avoid (0: none) with err: the leader err names, or else
// what awaitLeader finds other than avoid.
func (b *Broker) nextLeader(ctx context.Context, g GroupID, avoid NodeID, err error) (NodeID, error) {
	if hint := leaderHint(err); hint != 0 && hint != avoid {
		return hint, nil
	}
	return b.awaitLeader(ctx, g, avoid)
}

// notHere is the error of a call that must run on a group's leader when
// this node is not it.
func (b *Broker) notHere(g GroupID, what string) error {
	lead := NodeID(0)
	if st, err := b.engine.Status(g); err == nil {
		lead = st.Leader
	}
	nl := &replication.NotLeaderError{Group: g, Leader: lead, Address: b.peer(lead).ForwardAddr}
	return base.Errorf(base.CodeUnavailable, "broker: cannot %s on node %d: connect to the leader (%w)", what, b.node, nl)
}

// leaderHint extracts the leader named by a CodeNotLeader error.
func leaderHint(err error) NodeID {
	var nl *replication.NotLeaderError
	if errors.As(err, &nl) {
		return nl.Leader
	}
	return 0
}

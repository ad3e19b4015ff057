package broker

import (
	"context"
	"errors"
	"runtime"
	"sync"

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

func (b *Broker) waitGroupReady(ctx context.Context, g GroupID) error {
	hosted := false
	b.ctrl.read(func(c *controller.Controller) {
		for _, gi := range c.Groups(controller.NodeID(b.node)) {
			if GroupID(gi.Group) == g {
				hosted = true
				return
			}
		}
	})
	if !hosted {
		return nil
	}
	for {
		ch := b.readyChanged()
		if lg := b.group(g); lg != nil {
			if st, err := b.engine.Status(g); err == nil && st.Leader != 0 &&
				(st.Leader != b.node || lg.currentLeader() != nil) {
				return nil
			}
		}
		kick(b.reconcileKick)
		kick(b.leaderKick)
		select {
		case <-ch:
		case <-ctx.Done():
			return base.Errorf(base.CodeTimeout, "broker: group %d is not running yet: %w", g, ctx.Err())
		case <-b.stop:
			return base.Errorf(base.CodeStopped, "broker: node %d is stopping", b.node)
		}
	}
}

// readyState is a broadcast of "a group opened or a leader runtime
// started or stopped".
type readyState struct {
	mu sync.Mutex
	ch chan struct{} // guarded by mu; closed and replaced on every change
}

func (r *readyState) changed() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ch == nil {
		r.ch = make(chan struct{})
	}
	return r.ch
}

func (r *readyState) signal() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ch != nil {
		close(r.ch)
	}
	r.ch = make(chan struct{})
}

func (b *Broker) readyChanged() <-chan struct{} { return b.ready.changed() }

// spinForLeader waits, without the clock, for a group whose only voter is
// this node to elect itself: the engine campaigns at once for such a
// group, so this takes a few engine iterations. It gives up after
// BrokerLeaderSpinsMax yields (the leader poll finds it later). The
// engine has no leadership notification; DESIGN.md "Leadership".
func (b *Broker) spinForLeader(g GroupID, voters []NodeID) {
	if len(voters) != 1 || voters[0] != b.node {
		return
	}
	for range base.BrokerLeaderSpinsMax {
		st, err := b.engine.Status(g)
		if err != nil || st.IsLeader {
			break
		}
		runtime.Gosched()
	}
	kick(b.leaderKick)
}

// leaderOf returns the node leading group g as far as this node can tell:
// the engine's view for a group hosted here (waiting for an election), the
// preferred replica otherwise (a forwarded call is redirected from there).
func (b *Broker) leaderOf(ctx context.Context, g GroupID) (NodeID, error) {
	if b.group(g) != nil {
		return b.waitLeader(ctx, g)
	}
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
	if !found {
		return 0, base.Errorf(base.CodeNotFound, "broker: no group %d", g)
	}
	return NodeID(p.Preferred), nil
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
// failed on node avoid (0: none) with err: the leader err names, or, for
// a group hosted here, the first leader other than avoid this node sees
// (waiting for the election), or else the next replica after avoid.
func (b *Broker) nextLeader(ctx context.Context, g GroupID, avoid NodeID, err error) (NodeID, error) {
	if hint := leaderHint(err); hint != 0 && hint != avoid {
		return hint, nil
	}
	if b.group(g) != nil {
		for {
			ch := b.readyChanged()
			if st, serr := b.engine.Status(g); serr == nil && st.Leader != 0 && st.Leader != avoid {
				return st.Leader, nil
			}
			kick(b.leaderKick)
			select {
			case <-ch:
			case <-ctx.Done():
				return 0, base.Errorf(base.CodeUnavailable, "broker: group %d has no leader: %w", g, ctx.Err())
			case <-b.stop:
				return 0, base.Errorf(base.CodeStopped, "broker: node %d is stopping", b.node)
			}
		}
	}
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
	if !found || len(p.Replicas) == 0 {
		return 0, base.Errorf(base.CodeNotFound, "broker: no group %d", g)
	}
	for i, r := range p.Replicas {
		if NodeID(r) == avoid {
			return NodeID(p.Replicas[(i+1)%len(p.Replicas)]), nil
		}
	}
	return NodeID(p.Preferred), nil
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

package broker

import (
	"context"
	"strings"

	"github.com/ferry-mq/ferry/internal/auth"
	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/controller"
	"github.com/ferry-mq/ferry/internal/queue"
	"github.com/ferry-mq/ferry/internal/routing"
	"github.com/ferry-mq/ferry/internal/stream"
)

// ExchangeSpec is an exchange declaration (AMQP exchange.declare).
type ExchangeSpec struct {
	Name, Type                    string // direct, fanout, topic, headers
	Durable, AutoDelete, Internal bool
	Arguments                     Headers // alternate-exchange
	Passive                       bool
}

// QueueSpec is a queue declaration (AMQP queue.declare).
type QueueSpec struct {
	Name                                    string // "" = server-named amq.gen-...
	Durable, Exclusive, AutoDelete, Passive bool
	// Arguments are RabbitMQ's x-* and Ferry's x-ferry-* (docs/queues.md,
	// docs/arguments.md); x-queue-type=stream declares a stream.
	Arguments Headers
}

// QueueInfo answers a queue declaration.
type QueueInfo struct {
	Name      string
	IsStream  bool
	Messages  uint64 // ready messages (streams: retained records)
	Consumers uint64
}

// StreamSpec is a stream creation (Kafka CreateTopics).
type StreamSpec struct {
	Name              string
	Partitions        int
	ReplicationFactor int
	// Config holds Kafka topic configs: retention.ms, retention.bytes,
	// max.message.bytes, segment.bytes, cleanup.policy...
	Config map[string]string
}

// BindingSpec is a binding (AMQP queue.bind and exchange.bind, MQTT
// subscriptions).
type BindingSpec struct {
	Source, Destination string
	DestinationKind     EntityKind // queue, stream, exchange
	RoutingKey          string
	Arguments           Headers
	// MQTT marks an MQTT topic filter ('/' levels, '+' and '#').
	MQTT bool
}

// DeclareExchange declares an exchange with RabbitMQ's semantics. Errors:
// CodePreconditionFailed (inequivalent redeclaration), CodeNotFound
// (passive, missing), CodeAccessRefused, CodeInvalidArgument.
func (c *Conn) DeclareExchange(ctx context.Context, s ExchangeSpec) error {
	if err := c.usable(); err != nil {
		return err
	}
	if err := c.Authorize(ActionConfigure, EntityExchange, s.Name); err != nil {
		return err
	}
	if s.Passive {
		if err := routing.CheckNotDefault(s.Name); err != nil {
			return err
		}
		ok := false
		c.b.ctrl.read(func(ctl *controller.Controller) { _, ok = ctl.Exchange(c.p.Tenant, s.Name) })
		if !ok {
			return base.Errorf(base.CodeNotFound, "no exchange '%s' in vhost '%s'", s.Name, c.p.Tenant)
		}
		return nil
	}
	typ, err := routing.ParseExchangeType(s.Type)
	if err != nil {
		return err
	}
	args := argFields(s.Arguments)
	return c.b.controllerCall(ctx, &controller.DeclareExchange{Now: c.b.nowMs(), Tenant: c.p.Tenant,
		Exchange: routing.Exchange{Name: s.Name, Type: typ, Durable: s.Durable, AutoDelete: s.AutoDelete,
			Internal: s.Internal, Args: args}})
}

// DeleteExchange deletes an exchange and its bindings.
func (c *Conn) DeleteExchange(ctx context.Context, name string, ifUnused bool) error {
	if err := c.usable(); err != nil {
		return err
	}
	if err := c.Authorize(ActionConfigure, EntityExchange, name); err != nil {
		return err
	}
	return c.b.controllerCall(ctx, &controller.DeleteExchange{Now: c.b.nowMs(), Tenant: c.p.Tenant, Name: name, IfUnused: ifUnused})
}

// DeclareQueue declares a queue (or, with x-queue-type=stream, a stream)
// and returns once it can be used: its group runs and has a leader.
func (c *Conn) DeclareQueue(ctx context.Context, s QueueSpec) (QueueInfo, error) {
	if err := c.usable(); err != nil {
		return QueueInfo{}, err
	}
	if s.Passive {
		return c.passiveDeclare(ctx, s.Name)
	}
	serverNamed := s.Name == ""
	if serverNamed {
		s.Name = serverQueueName()
	}
	if err := c.Authorize(ActionConfigure, EntityQueue, s.Name); err != nil {
		return QueueInfo{}, err
	}
	args := argFields(s.Arguments)
	// Owner is the asker also when the queue is not exclusive, for the
	// exclusive check of a redeclaration.
	cmd := &controller.DeclareQueue{Now: c.b.nowMs(), Tenant: c.p.Tenant, Name: s.Name, ServerNamed: serverNamed,
		Durable: s.Durable, Exclusive: s.Exclusive, Owner: c.owner, AutoDelete: s.AutoDelete, Args: args}
	if s.Exclusive {
		cmd.Node = controller.NodeID(c.b.node)
	}
	if err := c.b.controllerCall(ctx, cmd); err != nil {
		return QueueInfo{}, err
	}
	ent, err := c.b.lookupQueue(c.p.Tenant, s.Name)
	if err != nil {
		return QueueInfo{}, err
	}
	if err := c.b.waitReady(ctx, ent); err != nil {
		return QueueInfo{}, err
	}
	if !ent.isStream {
		c.touch(ent.group)
	}
	c.b.touchQueue(ent)
	return c.b.queueInfo(ctx, ent)
}

func (c *Conn) passiveDeclare(ctx context.Context, name string) (QueueInfo, error) {
	var err error
	c.b.ctrl.read(func(ctl *controller.Controller) { _, _, err = ctl.PassiveDeclare(c.p.Tenant, name, c.owner) })
	if err != nil {
		return QueueInfo{}, err
	}
	ent, err := c.b.lookupQueue(c.p.Tenant, name)
	if err != nil {
		return QueueInfo{}, err
	}
	c.b.touchQueue(ent) // a passive declare is a use, as in RabbitMQ
	return c.b.queueInfo(ctx, ent)
}

// queueCounts are a queue's counts in queue.declare-ok: its ready
// messages and consumers, or a stream partition's retained records.
type queueCounts struct{ ready, consumers uint64 }

// queueInfo returns a declared queue with its counts, read after a read
// through its group (so they count every publish, ack and consumer
// acknowledged before the call): from the replica on this node, or, in a
// cluster, from a node that has one. A stream's count is the sum of its
// partitions' records.
func (b *Broker) queueInfo(ctx context.Context, ent entity) (QueueInfo, error) {
	qi := QueueInfo{Name: ent.name, IsStream: ent.isStream}
	for _, g := range ent.groups() {
		c, err := b.fwd.queueCounts(ctx, g)
		if err != nil {
			return qi, err
		}
		qi.Messages += c.ready
		qi.Consumers += c.consumers
	}
	return qi, nil
}

// localQueueCounts reads queue or partition group g's counts from its
// replica on this node after a read through the group. A node without a
// replica answers CodeNotLeader.
func (b *Broker) localQueueCounts(ctx context.Context, g GroupID) (queueCounts, error) {
	var f interface{ counts() queueCounts }
	if lg := b.group(g); lg != nil {
		f, _ = lg.fsm.(interface{ counts() queueCounts })
	}
	if f == nil {
		return queueCounts{}, base.Errorf(base.CodeNotLeader, "broker: node %d has no replica of group %d: %w",
			b.node, g, leaderErr(g, b.otherLeader(g)))
	}
	if _, err := b.engine.ReadIndex(ctx, g); err != nil {
		return queueCounts{}, err
	}
	return f.counts(), nil
}

// counts are the queue's counts in queue.declare-ok.
func (f *queueFSM) counts() queueCounts {
	var c queueCounts
	f.read(func(q *queue.Queue) {
		st := q.Stats()
		c = queueCounts{ready: uint64(st.Ready), consumers: uint64(st.Consumers)}
	})
	return c
}

// counts are the partition's share of its stream's queue.declare-ok:
// its retained records.
func (f *partitionFSM) counts() queueCounts {
	var c queueCounts
	f.with(func(p *stream.Partition) { c.ready = uint64(p.Records()) })
	return c
}

// touchQueue restarts an existing queue's idle expiry (a redeclare uses
// it, as in RabbitMQ).
func (b *Broker) touchQueue(ent entity) {
	if ent.isStream || ent.queue.Config.Queue.ExpiresMs == 0 {
		return
	}
	if ql := b.queueLeaderOf(ent.group); ql != nil {
		ql.proposeAsync(&queue.Touch{Now: b.nowMs()}, nil)
	}
}

// serverQueueName draws an "amq.gen-" name as RabbitMQ does.
func serverQueueName() string { return "amq.gen-" + randomID() }

// DeleteQueue deletes a queue (or a stream declared as a queue) and
// returns how many messages it held. ifUnused fails with
// CodePreconditionFailed while it has consumers, ifEmpty while it has
// messages. The queue's group decides those (it has the counts), then the
// controller deletes the queue.
func (c *Conn) DeleteQueue(ctx context.Context, name string, ifUnused, ifEmpty bool) (uint64, error) {
	return c.deleteQueue(ctx, name, ifUnused, ifEmpty, false)
}

// DeleteQueueAsOperator is DeleteQueue for the management API: a caller
// with the administrator tag may delete another connection's exclusive
// queue too (its consumers there are cancelled), as with RabbitMQ's
// management API; that is the way out for the exclusive queues of a node
// that will not come back. Such a queue's only replica is on that node,
// so without if-unused or if-empty the delete waits for the queue's group
// at most Config.OperatorDeleteWait, and when the group fails to answer
// (its node down or unreachable) deletes the queue without it (and returns
// a count of 0). Others get DeleteQueue's answers.
func (c *Conn) DeleteQueueAsOperator(ctx context.Context, name string, ifUnused, ifEmpty bool) (uint64, error) {
	tags := c.callerTags()
	return c.deleteQueue(ctx, name, ifUnused, ifEmpty, tags.Is(auth.TagAdministrator))
}

func (c *Conn) deleteQueue(ctx context.Context, name string, ifUnused, ifEmpty, anyOwner bool) (uint64, error) {
	if err := c.usable(); err != nil {
		return 0, err
	}
	if err := c.Authorize(ActionConfigure, EntityQueue, name); err != nil {
		return 0, err
	}
	ent, err := c.b.lookupQueue(c.p.Tenant, name)
	if err != nil {
		if base.CodeOf(err) == base.CodeNotFound {
			return 0, nil // RabbitMQ: deleting a missing queue succeeds
		}
		return 0, err
	}
	owner := c.owner
	if anyOwner {
		owner = ent.queue.Owner // the controller's check then passes
	}
	if ent.queue.Exclusive && ent.queue.Owner != owner {
		return 0, lockedErr(name, c.p.Tenant)
	}
	var count uint64
	if !ent.isStream {
		cmd := &queue.Delete{Now: c.b.nowMs(), IfUnused: ifUnused, IfEmpty: ifEmpty}
		qctx := ctx
		override := ent.queue.Exclusive && ent.queue.Owner != c.owner && !ifUnused && !ifEmpty
		if override {
			var cancel context.CancelFunc
			qctx, cancel = base.WithTimeout(ctx, c.b.clock, c.b.cfg.OperatorDeleteWait)
			defer cancel()
		}
		n, err := c.b.queueCount(qctx, ent.group, cmd)
		if err != nil {
			switch {
			case base.CodeOf(err) == base.CodePreconditionFailed && ifUnused && strings.Contains(err.Error(), "consumer"):
				return 0, base.Errorf(base.CodePreconditionFailed, "queue '%s' in vhost '%s' in use", name, c.p.Tenant)
			case base.CodeOf(err) == base.CodePreconditionFailed:
				return 0, base.Errorf(base.CodePreconditionFailed, "queue '%s' in vhost '%s' is not empty", name, c.p.Tenant)
			case override && base.CodeOf(err) != base.CodeNotFound && ctx.Err() == nil:
				c.b.log.Warn("deleting an exclusive queue whose group did not answer", "queue", name,
					"vhost", c.p.Tenant, "owner", ent.queue.Owner, "waited", c.b.cfg.OperatorDeleteWait, "err", err)
				n = 0
			case base.CodeOf(err) != base.CodeNotFound:
				return 0, err
			}
		}
		count = uint64(n)
	}
	err = c.b.controllerCall(ctx, &controller.DeleteQueue{Now: c.b.nowMs(), Tenant: c.p.Tenant, Name: name,
		Owner: owner, Group: controller.GroupID(ent.group), Reason: controller.DeleteExplicit})
	return count, err
}

// PurgeQueue removes a queue's ready messages and returns how many.
func (c *Conn) PurgeQueue(ctx context.Context, name string) (uint64, error) {
	if err := c.usable(); err != nil {
		return 0, err
	}
	if err := c.Authorize(ActionRead, EntityQueue, name); err != nil {
		return 0, err
	}
	ent, err := c.b.lookupQueue(c.p.Tenant, name)
	if err != nil {
		return 0, err
	}
	if ent.isStream {
		return 0, base.Errorf(base.CodeNotSupported, "purge is not supported on stream '%s'", name)
	}
	if ent.queue.Exclusive && ent.queue.Owner != c.owner {
		return 0, lockedErr(name, c.p.Tenant)
	}
	n, err := c.b.queueCount(ctx, ent.group, &queue.Purge{Now: c.b.nowMs()})
	return uint64(n), err
}

// queueCount proposes a command to a queue's leader and returns its
// Result.Count.
func (b *Broker) queueCount(ctx context.Context, g GroupID, cmd queue.Command) (int, error) {
	if ql := b.queueLeaderOf(g); ql != nil {
		res, err := ql.propose(ctx, cmd)
		return res.Count, err
	}
	data, err := encodeQueueCommand(cmd)
	if err != nil {
		return 0, err
	}
	out, err := b.propose(ctx, g, data)
	if err != nil {
		return 0, err
	}
	if r, ok := out.local.(*queueCmdResult); ok {
		return r.res.Count, r.res.Err
	}
	return int(out.count), out.err
}

// Bind adds a binding (idempotent).
func (c *Conn) Bind(ctx context.Context, s BindingSpec) error {
	b, err := c.binding(s)
	if err != nil {
		return err
	}
	return c.b.controllerCall(ctx, &controller.Bind{Now: c.b.nowMs(), Tenant: c.p.Tenant, Binding: b, Owner: c.owner})
}

// Unbind removes a binding (a no-op when missing).
func (c *Conn) Unbind(ctx context.Context, s BindingSpec) error {
	b, err := c.binding(s)
	if err != nil {
		return err
	}
	return c.b.controllerCall(ctx, &controller.Unbind{Now: c.b.nowMs(), Tenant: c.p.Tenant, Binding: b, Owner: c.owner})
}

// binding checks RabbitMQ's permissions for a binding (write on the
// destination, read on the source) and converts it.
func (c *Conn) binding(s BindingSpec) (routing.Binding, error) {
	if err := c.usable(); err != nil {
		return routing.Binding{}, err
	}
	kind := s.DestinationKind
	if kind == 0 {
		kind = EntityQueue
	}
	if err := c.Authorize(ActionWrite, kind, s.Destination); err != nil {
		return routing.Binding{}, err
	}
	if err := c.Authorize(ActionRead, EntityExchange, s.Source); err != nil {
		return routing.Binding{}, err
	}
	args := argFields(s.Arguments)
	b := routing.Binding{Source: s.Source, Key: s.RoutingKey, Args: args}
	if s.MQTT {
		b.Syntax = routing.SyntaxMQTT
	}
	switch kind {
	case EntityExchange:
		b.Destination = routing.Destination{Kind: routing.ToExchange, Name: s.Destination}
	default:
		// Queues and streams share a namespace: the controller finds which.
		dk := routing.Queue
		if ent, err := c.b.lookupQueue(c.p.Tenant, s.Destination); err == nil && ent.isStream {
			dk = routing.Stream
		}
		b.Destination = routing.Destination{Kind: dk, Name: s.Destination}
	}
	return b, nil
}

// DeclareStream creates a stream the Kafka way (CreateTopics): an existing
// stream is CodeConflict (TOPIC_ALREADY_EXISTS).
func (c *Conn) DeclareStream(ctx context.Context, s StreamSpec) error {
	if err := c.usable(); err != nil {
		return err
	}
	if err := c.Authorize(ActionConfigure, EntityStream, s.Name); err != nil {
		return err
	}
	if _, err := c.b.lookupQueue(c.p.Tenant, s.Name); err == nil {
		return topicExists(s.Name)
	}
	res, err := c.b.changeController(ctx, &controller.DeclareStream{Now: c.b.nowMs(), Tenant: c.p.Tenant,
		Name: s.Name, Partitions: s.Partitions, ReplicationFactor: s.ReplicationFactor, Args: configArgs(s.Config)})
	if err == nil {
		err = res.Err
	}
	if err != nil {
		return err
	}
	if res.Stream != nil && !res.Created {
		return topicExists(s.Name)
	}
	ent, err := c.b.lookupQueue(c.p.Tenant, s.Name)
	if err != nil {
		return err
	}
	return c.b.waitReady(ctx, ent)
}

func topicExists(name string) error {
	return base.Errorf(base.CodeConflict, "Topic '%s' already exists.", name)
}

// DeleteStream deletes a stream and its data.
func (c *Conn) DeleteStream(ctx context.Context, name string) error {
	if err := c.usable(); err != nil {
		return err
	}
	if err := c.Authorize(ActionConfigure, EntityStream, name); err != nil {
		return err
	}
	return c.b.controllerCall(ctx, &controller.DeleteStream{Now: c.b.nowMs(), Tenant: c.p.Tenant, Name: name})
}

// AddPartitions grows a stream to total partitions.
func (c *Conn) AddPartitions(ctx context.Context, name string, total int) error {
	if err := c.usable(); err != nil {
		return err
	}
	if err := c.Authorize(ActionConfigure, EntityStream, name); err != nil {
		return err
	}
	if err := c.b.controllerCall(ctx, &controller.AddPartitions{Now: c.b.nowMs(), Tenant: c.p.Tenant, Name: name, Total: total}); err != nil {
		return err
	}
	ent, err := c.b.lookupQueue(c.p.Tenant, name)
	if err != nil {
		return err
	}
	return c.b.waitReady(ctx, ent)
}

// AlterStream replaces a stream's configuration (Kafka AlterConfigs).
func (c *Conn) AlterStream(ctx context.Context, name string, config map[string]string) error {
	if err := c.usable(); err != nil {
		return err
	}
	if err := c.Authorize(ActionConfigure, EntityStream, name); err != nil {
		return err
	}
	return c.b.controllerCall(ctx, &controller.AlterStream{Now: c.b.nowMs(), Tenant: c.p.Tenant, Name: name, Args: configArgs(config)})
}

// controllerCall makes a change a client asked for (changeController)
// and returns its error.
func (b *Broker) controllerCall(ctx context.Context, cmd controller.Command) error {
	res, err := b.changeController(ctx, cmd)
	if err != nil {
		return err
	}
	return res.Err
}

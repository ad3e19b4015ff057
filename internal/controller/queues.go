package controller

import (
	"slices"
	"strconv"
	"strings"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/routing"
)

func (c *Controller) declareQueue(cmd *DeclareQueue, r *Result) error {
	t, err := c.tenantOf(cmd.Tenant)
	if err != nil {
		return err
	}
	if err := checkName("queue", cmd.Name); err != nil {
		return err
	}
	if cmd.Exclusive && cmd.Owner == "" {
		return base.Errorf(base.CodeInvalidArgument, "an exclusive queue needs its owning connection")
	}
	if len(cmd.Owner) > base.QueueFieldBytesMax {
		return base.Errorf(base.CodeInvalidArgument, "owner of %d bytes exceeds the limit of %d (QueueFieldBytesMax)",
			len(cmd.Owner), base.QueueFieldBytesMax)
	}
	if !cmd.ServerNamed && strings.HasPrefix(cmd.Name, "amq.") {
		return base.Errorf(base.CodeAccessRefused, "queue name '%s' contains reserved prefix 'amq.*'", cmd.Name)
	}
	args, err := canonicalArgs(cmd.Args)
	if err != nil {
		return err
	}
	d := declaration{rs: rs("queue", cmd.Name, t.name), durable: cmd.Durable && !cmd.Exclusive,
		autoDelete: cmd.AutoDelete, args: args}
	if cmd.Exclusive {
		d.owner = cmd.Owner
	}
	if q, ok := t.queues[cmd.Name]; ok {
		if err := q.declared().equivalent(&d); err != nil {
			return err
		}
		info := q.info()
		r.Queue = &info
		return nil
	}
	if s, ok := t.streams[cmd.Name]; ok {
		if err := s.declared().equivalent(&d); err != nil {
			return err
		}
		info := s.info()
		r.Stream = &info
		return nil
	}
	typ, err := d.check(cmd.ServerNamed)
	if err != nil {
		return err
	}
	if typ == TypeStream {
		if err := checkKafkaConfigs(cmd.Name, args, false); err != nil {
			return err
		}
		return c.createStream(t, cmd.Name, false, 0, 0, args, r)
	}
	return c.createQueue(t, cmd, typ, &d, r)
}

// declaration is what a queue.declare says about a queue, in the form
// the equivalence check compares.
type declaration struct {
	rs         string // "queue 'q' in vhost '/'"
	durable    bool
	autoDelete bool
	owner      string // the exclusive owner, "" when not exclusive
	args       []routing.Field
	typ        QueueType // of an existing entity
}

// check checks a new declaration and returns its queue type. Errors are
// RabbitMQ's for a queue.declare of a new queue.
func (d *declaration) check(serverNamed bool) (QueueType, error) {
	if v, ok := lookupField(d.args, "x-dead-letter-exchange"); ok && !isString(v) {
		return 0, base.Errorf(base.CodePreconditionFailed, "invalid type '%s' for arg 'x-dead-letter-exchange' in %s",
			rabbitType(v), d.rs)
	}
	if v, ok := lookupField(d.args, "x-queue-type"); ok {
		if e := checkQueueType(v, d.args); e != "" {
			return 0, invalidArg("x-queue-type", d.rs, e)
		}
	}
	typ := typeOf(d.args)
	if serverNamed && typ != TypeClassic {
		return 0, base.Errorf(base.CodePreconditionFailed, "Cannot declare a server-named queue for type '%s'", typ)
	}
	if err := checkDeclareArgs(d.rs, typ, d.args); err != nil {
		return 0, err
	}
	if typ != TypeClassic {
		// rabbit_queue_type_util's checks for quorum queues and streams.
		for _, bad := range []struct {
			is   bool
			prop string
		}{{d.autoDelete, "auto-delete"}, {d.owner != "", "exclusive-owner"}, {!d.durable, "non-durable"}} {
			if bad.is {
				return 0, base.Errorf(base.CodePreconditionFailed, "invalid property '%s' for %s", bad.prop, d.rs)
			}
		}
	}
	return typ, nil
}

// equivalent compares a redeclaration d with the current entity cur in
// RabbitMQ's order and words (rabbit_amqqueue:assert_equivalence):
// exclusive ownership (CodeResourceLocked), durable, auto_delete, then
// the arguments of cur's type that RabbitMQ compares, all of argSpecs.
// Arguments Ferry does not know are not compared, as in RabbitMQ.
func (cur *declaration) equivalent(d *declaration) error {
	if cur.owner != d.owner {
		return base.Errorf(base.CodeResourceLocked, "cannot obtain exclusive access to locked %s. It could be originally "+
			"declared on another connection or the exclusive property value does not match that of the original declaration.", cur.rs)
	}
	if cur.durable != d.durable {
		return inequivalent("durable", cur.rs, quoteBool(d.durable), quoteBool(cur.durable))
	}
	if cur.autoDelete != d.autoDelete {
		return inequivalent("auto_delete", cur.rs, quoteBool(d.autoDelete), quoteBool(cur.autoDelete))
	}
	scope := scopeOf(cur.typ)
	for i := range argSpecs {
		s := &argSpecs[i]
		if s.scope&scope == 0 {
			continue
		}
		cv, cok := lookupField(cur.args, s.key)
		nv, nok := lookupField(d.args, s.key)
		if s.key == "x-queue-type" {
			if !cok && cur.typ == TypeStream {
				cv, cok = routing.StringValue("stream"), true // a stream created by Kafka
			}
			if isClassic(cv, cok) && isClassic(nv, nok) {
				continue // rabbitmq-common#341: absent and "classic" are equivalent
			}
		}
		if cok == nok && (!cok || cv == nv) {
			continue
		}
		return inequivalent(s.key, cur.rs, erlangVal(nv, nok, cok), erlangVal(cv, cok, nok))
	}
	return nil
}

func isClassic(v routing.Value, ok bool) bool { return !ok || isString(v) && v.Text() == "classic" }

func inequivalent(key, rs, received, current string) error {
	return base.Errorf(base.CodePreconditionFailed, "inequivalent arg '%s' for %s: received %s but current is %s",
		key, rs, received, current)
}

func quoteBool(b bool) string { return "'" + strconv.FormatBool(b) + "'" }

// erlangVal formats one side of an inequivalence as rabbit_misc:val does:
// "none" when absent; "'v'" when both sides are present (RabbitMQ then
// compares bare values); "the value 'v' of type 't'" otherwise.
func erlangVal(v routing.Value, ok, otherOK bool) string {
	if !ok {
		return "none"
	}
	if otherOK {
		return "'" + erlangText(v) + "'"
	}
	return "the value '" + erlangText(v) + "' of type '" + rabbitType(v) + "'"
}

func erlangText(v routing.Value) string {
	switch v.Kind() {
	case routing.KindString, routing.KindBytes:
		return v.Text()
	case routing.KindFloat:
		return strconv.FormatFloat(v.Float(), 'g', -1, 64)
	}
	return v.String()
}

func (q *queueEntity) declared() *declaration {
	return &declaration{rs: rs("queue", q.name, q.tenant), durable: q.durable, autoDelete: q.autoDelete,
		owner: q.owner, args: q.args, typ: q.typ}
}

func (s *streamEntity) declared() *declaration {
	return &declaration{rs: rs("queue", s.name, s.tenant), durable: true, args: s.args, typ: TypeStream}
}

// checkNewDestination checks that t can take one more queue or stream.
func (c *Controller) checkNewDestination(t *tenant, kind, name string) error {
	if n := t.routing.Stats().Destinations; n >= c.lim.queuesPerTenant {
		return base.Errorf(base.CodeTooLarge, "cannot declare %s: the vhost holds %d queues and streams, the limit (ControllerQueuesPerTenantMax)",
			rs(kind, name, t.name), n)
	}
	return nil
}

func (c *Controller) createQueue(t *tenant, cmd *DeclareQueue, typ QueueType, d *declaration, r *Result) error {
	if err := c.checkNewDestination(t, "queue", cmd.Name); err != nil {
		return err
	}
	s := defaultQueueSettings()
	applyQueueArgs(&s, d.args)
	local := cmd.Exclusive && c.isLive(cmd.Node)
	if local {
		s.rf = 1
	}
	rf, err := c.checkGroups(1, s.rf, true)
	if err != nil {
		return err
	}
	added, err := t.routing.AddDestination(routing.Destination{Kind: routing.Queue, Name: cmd.Name})
	base.Assert(err == nil && added, "adding checked queue %q to the routing table: %v", cmd.Name, err)
	q := &queueEntity{tenant: t.name, name: cmd.Name, typ: typ, durable: d.durable, exclusive: cmd.Exclusive,
		autoDelete: cmd.AutoDelete, serverNamed: cmd.ServerNamed, owner: d.owner, args: d.args,
		createdMs: c.nowMs}
	if local {
		q.place = c.placeOn(cmd.Node)
	} else {
		q.place = c.place(rf)
	}
	q.cfg, q.policy = effectiveQueue(t.policySet, t.name, q.name, q.args)
	t.queues[q.name] = q
	if q.exclusive {
		c.indexExclusive(q)
	}
	info := q.info()
	r.Created, r.Queue = true, &info
	r.NewGroups = append(r.NewGroups, q.place.clone())
	return nil
}

func (c *Controller) indexExclusive(q *queueEntity) {
	set, ok := c.exclusive[q.owner]
	if !ok {
		set = map[*queueEntity]struct{}{}
		c.exclusive[q.owner] = set
	}
	set[q] = struct{}{}
}

func (c *Controller) deleteQueue(cmd *DeleteQueue, r *Result) error {
	t, err := c.tenantOf(cmd.Tenant)
	if err != nil {
		return err
	}
	if q, ok := t.queues[cmd.Name]; ok {
		if cmd.Group != 0 && cmd.Group != q.place.Group {
			return nil // another incarnation: the one observed is gone
		}
		switch cmd.Reason {
		case DeleteExplicit:
			if err := checkExclusiveAccess(q, cmd.Owner); err != nil {
				return err
			}
		case DeleteAutoDelete:
			if !q.autoDelete {
				return base.Errorf(base.CodePreconditionFailed, "%s is not auto-delete", rs("queue", q.name, t.name))
			}
		case DeleteExpired:
		default:
			return base.Errorf(base.CodeInvalidArgument, "unknown delete reason %d", uint8(cmd.Reason))
		}
		c.removeQueue(t, q, r)
		return nil
	}
	if s, ok := t.streams[cmd.Name]; ok {
		if cmd.Group != 0 && !slices.Contains(s.groups(), cmd.Group) {
			return nil
		}
		if cmd.Reason != DeleteExplicit {
			return base.Errorf(base.CodePreconditionFailed, "%s is a stream: it is neither auto-delete nor expiring",
				rs("queue", s.name, t.name))
		}
		c.removeStream(t, s, r)
	}
	return nil
}

// removeQueue deletes q with its bindings.
func (c *Controller) removeQueue(t *tenant, q *queueEntity, r *Result) {
	ch, err := t.routing.RemoveDestination(routing.Destination{Kind: routing.Queue, Name: q.name})
	base.Assert(err == nil && ch.Removed, "removing queue %q from the routing table: %v", q.name, err)
	r.addChange(t.name, ch)
	c.forgetQueue(q)
	delete(t.queues, q.name)
	r.Removed = append(r.Removed, removedQueue(q))
}

// forgetQueue drops what the controller derives from q: its group's load
// and its place in the exclusive index.
func (c *Controller) forgetQueue(q *queueEntity) {
	c.dropLoad(q.place)
	if q.exclusive {
		set := c.exclusive[q.owner]
		delete(set, q)
		if len(set) == 0 {
			delete(c.exclusive, q.owner)
		}
	}
}

func removedQueue(q *queueEntity) Removed {
	return Removed{EntityRef: EntityRef{q.tenant, routing.Queue, q.name}, Groups: []GroupID{q.place.Group}}
}

func (c *Controller) connectionClosed(cmd *ConnectionClosed, r *Result) error {
	set := c.exclusive[cmd.Owner]
	qs := make([]*queueEntity, 0, len(set))
	for q := range set {
		qs = append(qs, q)
	}
	slices.SortFunc(qs, func(a, b *queueEntity) int {
		return compareRefs(EntityRef{a.tenant, routing.Queue, a.name}, EntityRef{b.tenant, routing.Queue, b.name})
	})
	for _, q := range qs {
		c.removeQueue(c.tenants[q.tenant], q, r)
	}
	return nil
}

func (q *queueEntity) info() QueueInfo {
	return QueueInfo{Tenant: q.tenant, Name: q.name, Type: q.typ, Durable: q.durable, Exclusive: q.exclusive,
		Owner: q.owner, AutoDelete: q.autoDelete, ServerNamed: q.serverNamed, Args: slices.Clone(q.args),
		CreatedMs: q.createdMs, Placement: q.place.clone(), Config: cloneQueueConfig(q.cfg), Policy: q.policy}
}

// Queue returns a queue, and whether it exists.
func (c *Controller) Queue(tenant, name string) (QueueInfo, bool) {
	if t, ok := c.tenants[tenant]; ok {
		if q, ok := t.queues[name]; ok {
			return q.info(), true
		}
	}
	return QueueInfo{}, false
}

// PassiveDeclare answers a passive queue.declare, and checks a
// basic.consume or basic.get before the broker forwards it to the queue's
// group: it returns the queue (or the stream) of that name if owner may
// use it. Errors: CodeNotFound ("no queue 'q' in vhost '/'") and, for an
// exclusive queue of another connection, CodeResourceLocked.
func (c *Controller) PassiveDeclare(tenant, name, owner string) (*QueueInfo, *StreamInfo, error) {
	t, err := c.tenantOf(tenant)
	if err != nil {
		return nil, nil, err
	}
	if q, ok := t.queues[name]; ok {
		if err := checkExclusiveAccess(q, owner); err != nil {
			return nil, nil, err
		}
		info := q.info()
		return &info, nil, nil
	}
	if s, ok := t.streams[name]; ok {
		info := s.info()
		return nil, &info, nil
	}
	return nil, nil, base.Errorf(base.CodeNotFound, "no %s", rs("queue", name, tenant))
}

// ListFilter selects entities by name for the List queries: names
// starting with Prefix, after After (for paging), at most Limit of them
// (0: all). Results are sorted by name.
type ListFilter struct {
	Prefix string
	After  string
	Limit  int
}

// filterNames applies f to the keys of m and returns them sorted.
func filterNames[V any](m map[string]V, f ListFilter) []string {
	var names []string
	for name := range m {
		if strings.HasPrefix(name, f.Prefix) && (f.After == "" || name > f.After) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	if f.Limit > 0 && len(names) > f.Limit {
		names = names[:f.Limit]
	}
	return names
}

// Queues lists the queues of tenant that f selects.
func (c *Controller) Queues(tenant string, f ListFilter) []QueueInfo {
	t, ok := c.tenants[tenant]
	if !ok {
		return nil
	}
	names := filterNames(t.queues, f)
	out := make([]QueueInfo, len(names))
	for i, name := range names {
		out[i] = t.queues[name].info()
	}
	return out
}

package controller

import (
	"bytes"
	"fmt"
	"hash/crc32"
	"slices"
	"strings"

	"github.com/ferry-mq/ferry/internal/auth"
	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/routing"
)

// The snapshot (wire.go's encoding; every list sorted by its key):
//
//	"FRCT" version=1 bootstrapped(bool) nowMs(varint) nextGroup
//	nodes: count, per node by id: id addr state(1 byte)
//	coordinators: count, per group: placement
//	tenants: count, per tenant by name:
//	    name createdMs routing-table-snapshot(bytes)
//	    policies: count, per policy by name: as in PutPolicy
//	    queues: count, per queue by name:
//	        name type(1 byte) flags(1 byte) owner args createdMs placement
//	    streams: count, per stream by name:
//	        name fromKafka args createdMs partitions: count, placements
//	users: count, per user by name:
//	    name credentials tags(count, sorted) permissions: count, per tenant
//	    by name: tenant configure write read
//	cluster id (string), only when not empty
//	CRC-32C of all the above, 4 bytes little-endian
//
// placement: group replicas(count, ascending node ids) preferred.
//
// Effective configurations, node loads and the exclusive-owner index are
// derived, so they are not in the snapshot: Restore recomputes them. The
// encoding is canonical: Restore accepts only what Snapshot would write,
// so equal states have equal bytes. The cluster id came after version 1
// without changing it: a snapshot written before has none, which is also
// how Snapshot writes a state without one.

const (
	snapshotMagic   = "FRCT"
	snapshotVersion = 1
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Snapshot returns the canonical snapshot of the state. Replicas that
// applied the same commands return the same bytes.
func (c *Controller) Snapshot() []byte {
	// About 90 bytes per group (a queue with two arguments): one
	// allocation for most snapshots.
	e := &encoder{buf: make([]byte, 0, 256+128*c.groups)}
	e.buf = append(e.buf, snapshotMagic...)
	e.u8(snapshotVersion)
	e.boolean(c.bootstrapped)
	e.varint(c.nowMs)
	e.uvarint(uint64(c.nextGroup))
	nodes := c.Nodes()
	e.count(len(nodes))
	for _, n := range nodes {
		e.uvarint(uint64(n.ID))
		e.str(n.Addr)
		e.u8(byte(n.State))
	}
	e.count(len(c.coordinators))
	for _, p := range c.coordinators {
		e.placement(p)
	}
	names := c.Tenants()
	e.count(len(names))
	for _, name := range names {
		e.tenant(c.tenants[name])
	}
	users := sortedKeys(c.users)
	e.count(len(users))
	for _, name := range users {
		e.user(c.users[name])
	}
	if c.clusterID != "" {
		e.str(c.clusterID)
	}
	e.uint32le(crc32.Checksum(e.buf, castagnoli))
	return e.buf
}

func (e *encoder) placement(p Placement) {
	e.uvarint(uint64(p.Group))
	e.count(len(p.Replicas))
	for _, n := range p.Replicas {
		e.uvarint(uint64(n))
	}
	e.uvarint(uint64(p.Preferred))
}

const (
	sflagDurable = 1 << iota
	sflagExclusive
	sflagAutoDelete
	sflagServerNamed
	sflagsAll = sflagDurable | sflagExclusive | sflagAutoDelete | sflagServerNamed
)

func (e *encoder) tenant(t *tenant) {
	e.str(t.name)
	e.varint(t.createdMs)
	rt, err := t.routing.MarshalBinary()
	base.Assert(err == nil, "routing table of %q does not marshal: %v", t.name, err)
	e.bytes(rt)
	pols := sortedKeys(t.policies)
	e.count(len(pols))
	for _, name := range pols {
		p := t.policies[name]
		e.policy(&p)
	}
	qs := sortedKeys(t.queues)
	e.count(len(qs))
	for _, name := range qs {
		q := t.queues[name]
		e.str(q.name)
		e.u8(byte(q.typ))
		var f byte
		for _, b := range []struct {
			on   bool
			flag byte
		}{{q.durable, sflagDurable}, {q.exclusive, sflagExclusive}, {q.autoDelete, sflagAutoDelete}, {q.serverNamed, sflagServerNamed}} {
			if b.on {
				f |= b.flag
			}
		}
		e.u8(f)
		e.str(q.owner)
		e.fields(q.args)
		e.varint(q.createdMs)
		e.placement(q.place)
	}
	ss := sortedKeys(t.streams)
	e.count(len(ss))
	for _, name := range ss {
		s := t.streams[name]
		e.str(s.name)
		e.boolean(s.fromKafka)
		e.fields(s.args)
		e.varint(s.createdMs)
		e.count(len(s.partitions))
		for _, p := range s.partitions {
			e.placement(p)
		}
	}
}

func (e *encoder) user(u *user) {
	e.str(u.name)
	e.credentials(&u.creds)
	e.count(len(u.tags))
	for _, t := range u.tags {
		e.str(string(t))
	}
	tenants := sortedKeys(u.perms)
	e.count(len(tenants))
	for _, tn := range tenants {
		p := u.perms[tn]
		e.str(tn)
		e.str(p.Configure)
		e.str(p.Write)
		e.str(p.Read)
	}
}

// Restore replaces the state with a snapshot. It is a parser of disk and
// network bytes: it refuses (CodeCorrupt) a bad checksum, a malformed or
// non-canonical encoding, and content the controller's own rules refuse
// (limits, unknown nodes in placements, duplicate groups, arguments that
// do not check, a routing table that disagrees with the queues and
// streams). On error the state is unchanged. Work and allocation are
// linear in len(data) (plus compiling the permission and policy patterns
// it holds): nothing is allocated for a count before the bytes backing
// it have been seen.
func (c *Controller) Restore(data []byte) error {
	fresh, err := decodeSnapshot(data, c.opts)
	if err != nil {
		return base.Errorf(base.CodeCorrupt, "controller snapshot: %w", err)
	}
	if base.InvariantsEnabled {
		base.Assert(bytes.Equal(fresh.Snapshot(), data), "controller snapshot accepted but not canonical")
		fresh.checkInvariants()
	}
	c.bootstrapped, c.nowMs, c.nextGroup, c.groups = fresh.bootstrapped, fresh.nowMs, fresh.nextGroup, fresh.groups
	c.tenants, c.users, c.nodes, c.coordinators = fresh.tenants, fresh.users, fresh.nodes, fresh.coordinators
	c.load, c.exclusive, c.clusterID = fresh.load, fresh.exclusive, fresh.clusterID
	c.invalidateDirectory()
	return nil
}

// snapshotDecoder carries what checks across sections need.
type snapshotDecoder struct {
	*decoder
	c      *Controller
	groups map[GroupID]bool // every group seen, to refuse duplicates
}

func decodeSnapshot(data []byte, opts Options) (*Controller, error) {
	if len(data) < len(snapshotMagic)+1+4 {
		return nil, fmt.Errorf("%d bytes is too short", len(data))
	}
	body := data[:len(data)-4]
	want := (&decoder{buf: data[len(body):]}).uint32le()
	if got := crc32.Checksum(body, castagnoli); got != want {
		return nil, fmt.Errorf("checksum %08x, want %08x", got, want)
	}
	if string(body[:4]) != snapshotMagic || body[4] != snapshotVersion {
		return nil, fmt.Errorf("not a version %d controller snapshot", snapshotVersion)
	}
	d := &snapshotDecoder{decoder: &decoder{buf: body, off: 5}, c: New(opts), groups: map[GroupID]bool{}}
	c := d.c
	c.bootstrapped = d.boolean()
	c.nowMs = d.varint()
	c.nextGroup = GroupID(d.uvarint())
	if d.err == nil && c.nextGroup == ControllerGroup {
		d.fail("next group 0")
	}
	for _, section := range []func() error{d.nodes, d.coordinators, d.tenants, d.users} {
		if d.err != nil {
			break
		}
		if err := section(); err != nil {
			return nil, err
		}
	}
	if d.err != nil {
		return nil, d.err
	}
	if d.left() != 0 {
		c.clusterID = d.str(base.ControllerClusterIDBytesMax)
		switch {
		case d.err != nil:
			return nil, d.err
		case c.clusterID == "" || !c.bootstrapped:
			return nil, fmt.Errorf("cluster id %q in a snapshot bootstrapped %v", c.clusterID, c.bootstrapped)
		case d.left() != 0:
			return nil, fmt.Errorf("%d bytes after the cluster id", d.left())
		}
		if err := checkClusterID(c.clusterID); err != nil {
			return nil, err
		}
	}
	if c.bootstrapped != (len(c.coordinators) > 0) {
		return nil, fmt.Errorf("bootstrapped %v with %d coordinator groups", c.bootstrapped, len(c.coordinators))
	}
	if !c.bootstrapped && (len(c.nodes) > 0 || len(c.tenants) > 0 || len(c.users) > 0 || c.nextGroup != ControllerGroup+1) {
		return nil, fmt.Errorf("a controller not bootstrapped holds state")
	}
	return c, nil
}

func (d *snapshotDecoder) nodes() error {
	var prev NodeID
	for i, n := 0, d.count(base.ControllerNodesMax, 3); i < n && d.err == nil; i++ {
		nd := &Node{ID: NodeID(d.uvarint()), Addr: d.str(base.ControllerNodeAddrBytesMax), State: NodeState(d.u8())}
		if d.err != nil {
			break
		}
		if err := checkNode(nd.ID, nd.Addr); err != nil {
			return err
		}
		if !nd.State.valid() || i > 0 && nd.ID <= prev {
			return fmt.Errorf("node %d out of order or in state %d", nd.ID, nd.State)
		}
		d.c.nodes[nd.ID] = nd
		prev = nd.ID
	}
	return nil
}

// placement reads a placement and counts its group.
func (d *snapshotDecoder) placement() (Placement, error) {
	p := Placement{Group: GroupID(d.uvarint())}
	n := d.count(base.ControllerReplicationFactorMax, 1)
	for range n {
		p.Replicas = append(p.Replicas, NodeID(d.uvarint()))
	}
	p.Preferred = NodeID(d.uvarint())
	if d.err != nil {
		return Placement{}, d.err
	}
	c := d.c
	if p.Group == ControllerGroup || p.Group >= c.nextGroup || d.groups[p.Group] {
		return Placement{}, fmt.Errorf("group %d is 0, not yet allocated (next %d) or placed twice", p.Group, c.nextGroup)
	}
	if n == 0 || !slices.Contains(p.Replicas, p.Preferred) {
		return Placement{}, fmt.Errorf("group %d: preferred leader %d is not among its %d replicas", p.Group, p.Preferred, n)
	}
	for i, r := range p.Replicas {
		if c.nodes[r] == nil || i > 0 && r <= p.Replicas[i-1] {
			return Placement{}, fmt.Errorf("group %d: replica %d unknown or out of order", p.Group, r)
		}
	}
	if c.groups >= base.ControllerGroupsMax {
		return Placement{}, fmt.Errorf("more than %d groups (ControllerGroupsMax)", base.ControllerGroupsMax)
	}
	d.groups[p.Group] = true
	c.addLoad(p)
	return p, nil
}

func (d *snapshotDecoder) coordinators() error {
	for i, n := 0, d.count(base.ControllerCoordinatorGroupsMax, 4); i < n && d.err == nil; i++ {
		p, err := d.placement()
		if err != nil {
			return err
		}
		d.c.coordinators = append(d.c.coordinators, p)
	}
	return nil
}

func (d *snapshotDecoder) tenants() error {
	prev := ""
	for i, n := 0, d.count(base.ControllerTenantsMax, 8); i < n && d.err == nil; i++ {
		name := d.str(base.ControllerNameBytesMax)
		createdMs := d.varint()
		rt := d.raw(d.left())
		if d.err != nil {
			break
		}
		if err := checkName("vhost", name); err != nil {
			return err
		}
		if i > 0 && name <= prev {
			return fmt.Errorf("vhost %q out of order", name)
		}
		prev = name
		t := newTenant(name, createdMs)
		if err := t.routing.UnmarshalBinary(rt); err != nil {
			return fmt.Errorf("vhost %q: %w", name, err)
		}
		if t.routing.VHost() != name {
			return fmt.Errorf("vhost %q holds the routing table of %q", name, t.routing.VHost())
		}
		if err := d.policies(t); err != nil {
			return fmt.Errorf("vhost %q: %w", name, err)
		}
		if err := d.queues(t); err != nil {
			return fmt.Errorf("vhost %q: %w", name, err)
		}
		if err := d.streams(t); err != nil {
			return fmt.Errorf("vhost %q: %w", name, err)
		}
		if got, want := t.routing.Stats().Destinations, len(t.queues)+len(t.streams); got != want {
			return fmt.Errorf("vhost %q: the routing table knows %d queues and streams, the vhost %d", name, got, want)
		}
		d.c.tenants[name] = t
	}
	return nil
}

func (d *snapshotDecoder) policies(t *tenant) error {
	prev := ""
	for i, n := 0, d.count(base.AuthPoliciesMax, 6); i < n && d.err == nil; i++ {
		p := d.policy()
		if d.err != nil {
			break
		}
		if p.Tenant != t.name || i > 0 && p.Name <= prev {
			return fmt.Errorf("policy %q of vhost %q out of order or misplaced", p.Name, p.Tenant)
		}
		if err := checkName("policy", p.Name); err != nil {
			return err
		}
		if err := checkPolicyDefinition(&p); err != nil {
			return err
		}
		t.policies[p.Name] = p
		prev = p.Name
	}
	set, err := compilePolicies(t.policies)
	if err != nil {
		return err
	}
	t.policySet = set
	return nil
}

// canonicalStored reads an arguments table that must already be
// canonical.
func (d *snapshotDecoder) canonicalStored() ([]routing.Field, error) {
	args := d.fields(base.ControllerArgsFieldsMax, base.ControllerArgsBytesMax)
	if d.err != nil {
		return nil, d.err
	}
	if !sortedFields(args) {
		return nil, fmt.Errorf("arguments not sorted by key")
	}
	if n := argsBytes(args); n > base.ControllerArgsBytesMax {
		return nil, fmt.Errorf("arguments of %d bytes", n)
	}
	return args, nil
}

func (d *snapshotDecoder) queues(t *tenant) error {
	prev := ""
	for i, n := 0, d.count(base.ControllerQueuesPerTenantMax, 8); i < n && d.err == nil; i++ {
		q := &queueEntity{tenant: t.name, name: d.str(base.ControllerNameBytesMax), typ: QueueType(d.u8())}
		f := d.u8()
		q.owner = d.str(base.QueueFieldBytesMax)
		args, err := d.canonicalStored()
		if err != nil {
			return err
		}
		q.args = args
		q.createdMs = d.varint()
		if q.place, err = d.placement(); err != nil {
			return err
		}
		q.durable, q.exclusive = f&sflagDurable != 0, f&sflagExclusive != 0
		q.autoDelete, q.serverNamed = f&sflagAutoDelete != 0, f&sflagServerNamed != 0
		if f&^sflagsAll != 0 || i > 0 && q.name <= prev {
			return fmt.Errorf("queue %q out of order or with flags %#x", q.name, f)
		}
		if err := checkStoredQueue(q); err != nil {
			return err
		}
		if !t.routing.HasDestination(routing.Destination{Kind: routing.Queue, Name: q.name}) {
			return fmt.Errorf("queue %q is not in the routing table", q.name)
		}
		q.cfg, q.policy = effectiveQueue(t.policySet, t.name, q.name, q.args)
		t.queues[q.name] = q
		if q.exclusive {
			d.c.indexExclusive(q)
		}
		prev = q.name
	}
	return nil
}

// checkStoredQueue checks what a declared queue satisfies.
func checkStoredQueue(q *queueEntity) error {
	if err := checkName("queue", q.name); err != nil {
		return err
	}
	if q.typ != TypeClassic && q.typ != TypeQuorum {
		return fmt.Errorf("queue %q: type %v", q.name, q.typ)
	}
	if q.exclusive == (q.owner == "") || q.exclusive && q.durable {
		return fmt.Errorf("queue %q: exclusive %v, durable %v, owner %q", q.name, q.exclusive, q.durable, q.owner)
	}
	if !q.serverNamed && strings.HasPrefix(q.name, "amq.") {
		return fmt.Errorf("queue %q has a reserved name", q.name)
	}
	d := declaration{rs: rs("queue", q.name, q.tenant), durable: q.durable, autoDelete: q.autoDelete, owner: q.owner, args: q.args}
	typ, err := d.check(q.serverNamed)
	if err != nil {
		return err
	}
	if typ != q.typ {
		return fmt.Errorf("queue %q: type %v, arguments say %v", q.name, q.typ, typ)
	}
	return nil
}

func (d *snapshotDecoder) streams(t *tenant) error {
	prev := ""
	for i, n := 0, d.count(base.ControllerQueuesPerTenantMax, 8); i < n && d.err == nil; i++ {
		s := &streamEntity{tenant: t.name, name: d.str(base.ControllerNameBytesMax), fromKafka: d.boolean()}
		args, err := d.canonicalStored()
		if err != nil {
			return err
		}
		s.args = args
		s.createdMs = d.varint()
		parts := d.count(base.ControllerStreamPartitionsMax, 4)
		for range parts {
			p, err := d.placement()
			if err != nil {
				return err
			}
			s.partitions = append(s.partitions, p)
		}
		if d.err != nil {
			break
		}
		if err := checkName("stream", s.name); err != nil {
			return err
		}
		if i > 0 && s.name <= prev || parts == 0 {
			return fmt.Errorf("stream %q out of order or without partitions", s.name)
		}
		if s.fromKafka {
			// Kafka's streams take their structure from the command.
			if err := refuseStructural("a Kafka stream's arguments", args); err != nil {
				return err
			}
		} else if typeOf(args) != TypeStream {
			return fmt.Errorf("stream %q has arguments of type %v", s.name, typeOf(args))
		}
		if err := checkStreamArgs(t, s.name, args, s.fromKafka); err != nil {
			return err
		}
		if !t.routing.HasDestination(routing.Destination{Kind: routing.Stream, Name: s.name}) {
			return fmt.Errorf("stream %q is not in the routing table", s.name)
		}
		s.cfg, s.policy = effectiveStream(t.policySet, t.name, s.name, s.fromKafka, s.args)
		t.streams[s.name] = s
		prev = s.name
	}
	return nil
}

func (d *snapshotDecoder) users() error {
	prev := ""
	for i, n := 0, d.count(base.ControllerUsersMax, 8); i < n && d.err == nil; i++ {
		u := &user{name: d.str(base.AuthIdentityBytesMax), creds: d.credentials(), perms: map[string]auth.Permission{}}
		for j, nt := 0, d.count(base.ControllerUserTagsMax, 1); j < nt; j++ {
			u.tags = append(u.tags, auth.Tag(d.str(base.ControllerNameBytesMax)))
		}
		prevTenant := ""
		for j, np := 0, d.count(base.ControllerTenantsMax, 4); j < np && d.err == nil; j++ {
			p := auth.Permission{Tenant: d.str(base.ControllerNameBytesMax), Configure: d.str(base.AuthPatternBytesMax),
				Write: d.str(base.AuthPatternBytesMax), Read: d.str(base.AuthPatternBytesMax)}
			if d.err == nil && (j > 0 && p.Tenant <= prevTenant || d.c.tenants[p.Tenant] == nil) {
				return fmt.Errorf("user %q: permission in vhost %q out of order or in no vhost", u.name, p.Tenant)
			}
			u.perms[p.Tenant] = p
			prevTenant = p.Tenant
		}
		if d.err != nil {
			break
		}
		if i > 0 && u.name <= prev || !slices.Equal(u.tags, canonicalTags(u.tags)) {
			return fmt.Errorf("user %q out of order or with unsorted tags", u.name)
		}
		if err := checkUser(u); err != nil {
			return err
		}
		d.c.users[u.name] = u
		prev = u.name
	}
	return nil
}

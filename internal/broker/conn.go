package broker

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/ferry-mq/ferry/internal/auth"
	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/controller"
	"github.com/ferry-mq/ferry/internal/queue"
	"github.com/ferry-mq/ferry/internal/routing"
)

// Principal is an authenticated user on one connection.
type Principal struct {
	User   string
	Tenant string // the virtual host the connection opened; "/" by default
	Tags   []string
}

// ConnInfo describes a client connection. The broker keeps a registry of
// them (Connections, CloseConnection) and owns exclusive queues and
// consumers by connection, so that everything a connection owned is
// cleaned up when it closes.
type ConnInfo struct {
	ID       string // unique per node: "<protocol>/<seq>" is enough; the broker adds its node and run
	Protocol string // "amqp", "kafka", "mqtt", "stomp", "http"
	Peer     netip.AddrPort
	User     string
	Tenant   string
	Name     string // client-provided connection name, if any
}

// Action is what a client does to a resource (RabbitMQ's permissions).
type Action = auth.Action

// The actions.
const (
	ActionConfigure = auth.ActionConfigure
	ActionWrite     = auth.ActionWrite
	ActionRead      = auth.ActionRead
)

// EntityKind is the kind of a named resource.
type EntityKind uint8

// The kinds.
const (
	EntityQueue EntityKind = iota + 1
	EntityStream
	EntityExchange
)

func (k EntityKind) resource() auth.ResourceKind {
	switch k {
	case EntityStream:
		return auth.ResourceStream
	case EntityExchange:
		return auth.ResourceExchange
	}
	return auth.ResourceQueue
}

const routingQueue = routing.Queue

// Authenticate checks a user name and password (PLAIN, AMQPLAIN, HTTP
// basic) against the user store; guest only from loopback. Errors:
// CodeUnauthenticated, CodeAccessRefused, CodeUnavailable (the cluster is
// not bootstrapped yet: there are no users to check against).
func (b *Broker) Authenticate(user, password string, peer netip.Addr) (Principal, error) {
	if !b.ctrl.bootstrapped() {
		// No user exists yet, not even guest: a refusal would tell a
		// client that starts with the node that its credentials are wrong.
		return Principal{}, base.Errorf(base.CodeUnavailable, "node %d is starting: the cluster is not bootstrapped yet; try again", b.node)
	}
	var dir *auth.Directory
	b.ctrl.read(func(c *controller.Controller) { dir = c.Directory() })
	p, err := dir.Authenticate(auth.MechPlain, user, password, peer)
	if err != nil {
		return Principal{}, err
	}
	return principalOf(p), nil
}

// Directory returns the compiled user directory, for SASL mechanisms the
// front ends run themselves (SCRAM: Directory().NewScram). It is a
// snapshot: users changed later are not in it.
func (b *Broker) Directory() *auth.Directory {
	var dir *auth.Directory
	b.ctrl.read(func(c *controller.Controller) { dir = c.Directory() })
	return dir
}

func principalOf(p *auth.Principal) Principal {
	out := Principal{User: p.Name, Tenant: controller.DefaultTenant}
	for _, t := range p.Tags {
		out.Tags = append(out.Tags, string(t))
	}
	return out
}

// Conn is one client connection's handle on the broker. Its methods are
// safe for concurrent use (an AMQP connection's channels share it).
type Conn struct {
	b     *Broker
	info  ConnInfo
	p     Principal
	owner string // unique across nodes and runs: the owner of its consumers and exclusive queues
	kill  func(reason string)

	subSeq atomic.Uint64

	part *lockedPartitioner // guarded by mu; created on first use

	mu     sync.Mutex
	subs   map[string]*Subscription // guarded by mu: live consumers by tag
	all    []*Subscription          // guarded by mu: every subscription, for Close
	queues map[GroupID]bool         // guarded by mu: queue groups where it may own consumers or get deliveries
	lanes  map[GroupID]*lane        // guarded by mu: its publishes to each group, in order
	closed bool                     // guarded by mu
}

// OpenConnection registers a connection of principal p to tenant
// p.Tenant (the user needs a permission there: CodeAccessRefused).
// Close on the returned handle unregisters it and releases everything it
// owned. kill is called when the management API closes the connection.
func (b *Broker) OpenConnection(info ConnInfo, p Principal, kill func(reason string)) (*Conn, error) {
	if p.Tenant == "" {
		p.Tenant = controller.DefaultTenant
	}
	var err error
	b.ctrl.read(func(c *controller.Controller) {
		if !c.HasTenant(p.Tenant) {
			err = base.Errorf(base.CodeNotFound, "vhost '%s' not found", p.Tenant)
			return
		}
		err = c.AuthorizeTenant(p.User, p.Tenant)
	})
	if err != nil {
		return nil, err
	}
	info.User, info.Tenant = p.User, p.Tenant
	c := &Conn{b: b, info: info, p: p, kill: kill, subs: map[string]*Subscription{}, queues: map[GroupID]bool{},
		owner: b.boot + "/" + info.ID + "/" + b.seqString()}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.closing:
		return nil, base.Errorf(base.CodeStopped, "broker: node %d is stopping", b.node)
	case len(b.conns) >= base.BrokerConnectionsMax:
		return nil, base.Errorf(base.CodeOverloaded, "broker: node %d has %d connections, the most it takes", b.node, base.BrokerConnectionsMax)
	}
	b.conns[c.owner] = c
	return c, nil
}

func (b *Broker) seqString() string {
	return strings.ToLower(strconvBase36(b.connSeq.Add(1)))
}

// Principal returns the connection's principal.
func (c *Conn) Principal() Principal { return c.p }

// Info returns the connection's description.
func (c *Conn) Info() ConnInfo { return c.info }

// ownerAlive reports whether owner is a live connection of this node's
// current run.
func (b *Broker) ownerAlive(owner string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, ok := b.conns[owner]
	return ok
}

// Authorize checks a permission of the connection's user on a named
// resource of its tenant, as RabbitMQ does: CodeAccessRefused.
func (c *Conn) Authorize(action Action, kind EntityKind, name string) error {
	var err error
	c.b.ctrl.read(func(ctl *controller.Controller) {
		err = ctl.Authorize(c.p.User, c.p.Tenant, action, kind.resource(), name)
	})
	return err
}

func (c *Conn) usable() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return base.Errorf(base.CodeStopped, "broker: connection %s is closed", c.info.ID)
	}
	return nil
}

func (c *Conn) addSub(s *Subscription) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.closed:
		return base.Errorf(base.CodeStopped, "broker: connection %s is closed", c.info.ID)
	case c.subs[s.opts.Tag] != nil:
		return base.Errorf(base.CodePreconditionFailed, "attempt to reuse consumer tag '%s'", s.opts.Tag)
	case len(c.subs) >= base.BrokerConsumersPerConnectionMax:
		return base.Errorf(base.CodeOverloaded, "broker: connection has %d consumers, the most it may", base.BrokerConsumersPerConnectionMax)
	}
	c.subs[s.opts.Tag] = s
	c.all = append(c.all, s)
	return nil
}

func (c *Conn) removeSub(s *Subscription) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.subs[s.opts.Tag] == s {
		delete(c.subs, s.opts.Tag)
	}
	c.all = slices.DeleteFunc(c.all, func(x *Subscription) bool { return x == s })
}

// releaseTag frees a cancelled consumer's tag for reuse; the subscription
// stays for settling its deliveries.
func (c *Conn) releaseTag(s *Subscription) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.subs[s.opts.Tag] == s {
		delete(c.subs, s.opts.Tag)
	}
}

// Subscription returns the live consumer with tag, if any.
func (c *Conn) Subscription(tag string) (*Subscription, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.subs[tag]
	return s, ok
}

// send hands items for group g over through the connection's lane to g.
func (c *Conn) send(ctx context.Context, g GroupID, items []*pubItem) {
	for !c.lane(g).send(ctx, items) {
		// The lane was dropped as idle after lane returned it: take the
		// new one.
	}
}

// lane returns the connection's lane to group g, creating it; creating
// one drops the idle lanes when BrokerIdleLanesPerConnectionMax are kept.
func (c *Conn) lane(g GroupID) *lane {
	c.mu.Lock()
	defer c.mu.Unlock()
	l := c.lanes[g]
	if l == nil {
		if c.lanes == nil {
			c.lanes = map[GroupID]*lane{}
		}
		if len(c.lanes) >= base.BrokerIdleLanesPerConnectionMax {
			for other, ol := range c.lanes {
				if ol.dropIfIdle() {
					delete(c.lanes, other)
				}
			}
		}
		l = newLane(c.b, g)
		c.lanes[g] = l
	}
	return l
}

func (c *Conn) touch(g GroupID) {
	c.mu.Lock()
	c.queues[g] = true
	c.mu.Unlock()
}

// Close unregisters the connection and releases what it owned: its
// consumers are removed and their unacknowledged deliveries returned, its
// exclusive queues deleted. It waits for the release until ctx ends; the
// release itself goes on past that, on a goroutine of the broker's, until
// it is done or the node stops: so a cluster that lost its quorum keeps
// neither the client nor a shutdown waiting, and what the connection held
// is still released once the groups have a leader again (a new leader
// also returns the deliveries of owners gone, queueLeader.takeOver).
func (c *Conn) Close(ctx context.Context) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	subs := slices.Clone(c.all)
	groups := make([]GroupID, 0, len(c.queues))
	for g := range c.queues {
		groups = append(groups, g)
	}
	c.mu.Unlock()
	slices.Sort(groups)
	for _, s := range subs {
		if s.stream != nil {
			s.stream.close()
			continue
		}
		if s.ql != nil {
			s.ql.removeSub(s)
		}
		if s.remote != nil {
			s.remote.forget()
		}
		s.mu.Lock()
		s.ended = true
		s.mu.Unlock()
	}
	c.b.mu.Lock()
	delete(c.b.conns, c.owner)
	c.b.mu.Unlock()
	released := make(chan error, 1) // size one: the release never blocks on it
	if !c.b.spawn(func() { released <- c.release(c.b.ctx(), groups) }) {
		return nil // the node is stopping: the groups' next leaders release it
	}
	select {
	case err := <-released:
		return err
	case <-ctx.Done():
		return base.Errorf(base.CodeTimeout, "broker: connection %s is closed; releasing what it held goes on: %w", c.info.ID, ctx.Err())
	}
}

// shutdown closes the connection for the broker (node closing): consumers
// are told reason; nothing is proposed.
func (c *Conn) shutdown(reason error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	subs := slices.Clone(c.all)
	c.mu.Unlock()
	for _, s := range subs {
		if s.stream != nil {
			s.stream.close()
		}
		s.end(reason)
	}
	c.b.mu.Lock()
	delete(c.b.conns, c.owner)
	c.b.mu.Unlock()
}

// release tells every queue the connection used, then the controller,
// that the connection is gone. A step that fails for want of a leader (a
// cluster without its quorum, a leader's node unreachable) is tried again
// every BrokerReleaseRetryInterval until it is done or ctx ends.
func (c *Conn) release(ctx context.Context, groups []GroupID) error {
	var firstErr error
	for _, g := range groups {
		err := c.b.untilLed(ctx, func() error {
			return c.b.proposeQueue(ctx, g, &queue.ConsumerDown{Now: c.b.nowMs(), Owner: c.owner})
		})
		if err != nil && base.CodeOf(err) != base.CodeNotFound && firstErr == nil {
			firstErr = err
		}
	}
	err := c.b.untilLed(ctx, func() error {
		res, err := c.b.proposeController(ctx, &controller.ConnectionClosed{Now: c.b.nowMs(), Owner: c.owner})
		if err == nil {
			err = res.Err
		}
		return err
	})
	if err != nil && firstErr == nil {
		firstErr = err
	}
	return firstErr
}

// untilLed runs call until it succeeds or fails for another reason than a
// missing or unreachable leader (retriableElsewhere), waiting
// BrokerReleaseRetryInterval between tries, or until ctx ends.
func (b *Broker) untilLed(ctx context.Context, call func() error) error {
	for {
		err := call()
		if err == nil || !retriableElsewhere(err) || ctx.Err() != nil {
			return err
		}
		t := b.clock.NewTimer(base.BrokerReleaseRetryInterval)
		select {
		case <-t.C():
		case <-ctx.Done():
			t.Stop()
			return err
		}
	}
}

// ConnectionView is one registered connection.
type ConnectionView struct {
	ConnInfo
	Consumers int
}

// Connections lists this node's connections.
func (b *Broker) Connections() []ConnectionView {
	b.mu.Lock()
	conns := make([]*Conn, 0, len(b.conns))
	for _, c := range b.conns {
		conns = append(conns, c)
	}
	b.mu.Unlock()
	out := make([]ConnectionView, 0, len(conns))
	for _, c := range conns {
		c.mu.Lock()
		out = append(out, ConnectionView{ConnInfo: c.info, Consumers: len(c.subs)})
		c.mu.Unlock()
	}
	slices.SortFunc(out, func(a, b ConnectionView) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// CloseConnection asks the front end owning connection id to close it
// (its kill function); the front end then calls Conn.Close.
func (b *Broker) CloseConnection(id, reason string) error {
	b.mu.Lock()
	var found *Conn
	for _, c := range b.conns {
		if c.info.ID == id {
			found = c
		}
	}
	b.mu.Unlock()
	if found == nil {
		return base.Errorf(base.CodeNotFound, "broker: no connection %q", id)
	}
	if found.kill != nil {
		found.kill(reason)
	}
	return nil
}

func lockedErr(queueName, tenant string) error {
	return base.Errorf(base.CodeResourceLocked, "cannot obtain exclusive access to locked queue '%s' in vhost '%s'. It could be originally declared on another connection or the exclusive property value does not match that of the original declaration.", queueName, tenant)
}

func strconvBase36(n uint64) string {
	const digits = "0123456789abcdefghijklmnopqrstuvwxyz"
	if n == 0 {
		return "0"
	}
	var buf [16]byte
	i := len(buf)
	for n > 0 {
		i--
		buf[i] = digits[n%36]
		n /= 36
	}
	return string(buf[i:])
}

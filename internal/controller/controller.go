package controller

import (
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/ferry-mq/ferry/internal/auth"
	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/routing"
)

// Controller is the replicated metadata state of a Ferry cluster. Apply
// commands to it in log order on every replica; the queries read it.
//
// A Controller is not safe for concurrent mutation: the owner serialises
// Apply and Restore with everything else (for example with a RWMutex held
// for writing). The queries only read the replicated state, so any number
// of them may run concurrently between mutations; the one cache they
// share (the compiled user directory) has its own mutex.
type Controller struct {
	opts Options
	lim  limits

	bootstrapped bool
	nowMs        int64   // the latest Now applied; never decreases
	nextGroup    GroupID // the next group id to allocate; starts at 1
	groups       int     // groups that exist (coordinators, queues, partitions)
	clusterID    string  // set by Bootstrap; "" for clusters bootstrapped before ids existed

	tenants      map[string]*tenant
	users        map[string]*user
	nodes        map[NodeID]*Node
	coordinators []Placement // the consumer-group coordinator groups, by index

	// Derived state, rebuilt by Restore.
	load      map[NodeID]*nodeLoad                 // replicas and preferred leaderships per node
	exclusive map[string]map[*queueEntity]struct{} // exclusive queues by owner

	dirMu sync.Mutex
	dir   *auth.Directory // guarded by dirMu; nil once users changed, rebuilt on demand
}

// Options are a node's local settings that queries use. They are not
// replicated, so every node must be given the same ones.
type Options struct {
	// Directory configures the auth.Directory that Authorize and
	// Directory use (loopback-only users, the SCRAM decoy key).
	Directory auth.DirectoryOptions
}

// tenant is one virtual host and everything in it.
type tenant struct {
	name      string
	createdMs int64
	routing   *routing.Table
	queues    map[string]*queueEntity
	streams   map[string]*streamEntity
	policies  map[string]auth.Policy // by name
	policySet *auth.PolicySet        // compiled policies; nil when there are none
}

// queueEntity is a declared queue (classic or quorum).
type queueEntity struct {
	tenant      string
	name        string
	typ         QueueType
	durable     bool
	exclusive   bool
	autoDelete  bool
	serverNamed bool
	owner       string
	args        []routing.Field // canonical
	createdMs   int64
	place       Placement
	cfg         QueueConfig // effective
	policy      string
}

// streamEntity is a declared stream.
type streamEntity struct {
	tenant     string
	name       string
	fromKafka  bool
	args       []routing.Field // canonical
	createdMs  int64
	partitions []Placement
	cfg        StreamConfig // effective
	policy     string
}

// user is a user with its permissions by tenant.
type user struct {
	name  string
	creds auth.Credentials
	tags  []auth.Tag
	perms map[string]auth.Permission
}

// limits are the controller's capacity bounds: the base maxima, lowered
// only by in-package tests so that edges can be tested without millions
// of entries.
type limits struct {
	tenants, users, nodes, groups, queuesPerTenant, bindingsPerTenant int
}

func defaultLimits() limits {
	return limits{
		tenants:           base.ControllerTenantsMax,
		users:             base.ControllerUsersMax,
		nodes:             base.ControllerNodesMax,
		groups:            base.ControllerGroupsMax,
		queuesPerTenant:   base.ControllerQueuesPerTenantMax,
		bindingsPerTenant: base.ControllerBindingsPerTenantMax,
	}
}

type nodeLoad struct {
	replicas  int // replicas of groups placed on the node
	preferred int // groups the node is the preferred leader of
}

// New returns an empty controller; its first command must be Bootstrap.
func New(opts Options) *Controller {
	return &Controller{
		opts:      opts,
		lim:       defaultLimits(),
		nextGroup: ControllerGroup + 1,
		tenants:   map[string]*tenant{},
		users:     map[string]*user{},
		nodes:     map[NodeID]*Node{},
		load:      map[NodeID]*nodeLoad{},
		exclusive: map[string]map[*queueEntity]struct{}{},
	}
}

// Apply applies one committed command and returns its outcome. A command
// that fails leaves the state unchanged and reports why in Result.Err;
// every replica fails it the same way. Before Bootstrap every other
// command fails with CodeUnavailable.
func (c *Controller) Apply(cmd Command) Result {
	if _, ok := cmd.(*Bootstrap); !ok && !c.bootstrapped {
		return Result{Err: base.Errorf(base.CodeUnavailable, "controller: not bootstrapped")}
	}
	prevNow := c.nowMs
	c.nowMs = max(c.nowMs, cmd.now()) // the clock never goes back
	var r Result
	r.Err = c.dispatch(cmd, &r)
	if r.Err != nil {
		c.nowMs = prevNow
		return Result{Err: r.Err}
	}
	r.sort()
	if base.InvariantsEnabled {
		c.checkInvariants()
	}
	return r
}

func (c *Controller) dispatch(cmd Command, r *Result) error {
	switch cmd := cmd.(type) {
	case *Bootstrap:
		return c.bootstrap(cmd, r)
	case *RegisterNode:
		return c.registerNode(cmd, r)
	case *SetNodeState:
		return c.setNodeState(cmd)
	case *CreateTenant:
		return c.createTenant(cmd, r)
	case *DeleteTenant:
		return c.deleteTenant(cmd, r)
	case *PutUser:
		return c.putUser(cmd, r)
	case *DeleteUser:
		return c.deleteUser(cmd)
	case *SetPermission:
		return c.setPermission(cmd)
	case *ClearPermission:
		return c.clearPermission(cmd)
	case *PutPolicy:
		return c.putPolicy(cmd, r)
	case *DeletePolicy:
		return c.deletePolicy(cmd, r)
	case *DeclareExchange:
		return c.declareExchange(cmd, r)
	case *DeleteExchange:
		return c.deleteExchange(cmd, r)
	case *Bind:
		return c.bind(cmd, r)
	case *Unbind:
		return c.unbind(cmd, r)
	case *DeclareQueue:
		return c.declareQueue(cmd, r)
	case *DeleteQueue:
		return c.deleteQueue(cmd, r)
	case *ConnectionClosed:
		return c.connectionClosed(cmd, r)
	case *DeclareStream:
		return c.declareStream(cmd, r)
	case *AddPartitions:
		return c.addPartitions(cmd, r)
	case *AlterStream:
		return c.alterStream(cmd, r)
	case *DeleteStream:
		return c.deleteStream(cmd, r)
	}
	base.Bugf("controller: Apply of unknown command %T", cmd)
	return nil
}

// sort puts the result's lists in their documented order.
func (r *Result) sort() {
	slices.SortFunc(r.NewGroups, func(a, b Placement) int { return compareUint(uint64(a.Group), uint64(b.Group)) })
	slices.SortFunc(r.Removed, func(a, b Removed) int { return compareRefs(a.EntityRef, b.EntityRef) })
	slices.SortFunc(r.Reconfigured, func(a, b Reconfigured) int { return compareRefs(a.EntityRef, b.EntityRef) })
	slices.SortFunc(r.ExchangesRemoved, func(a, b ExchangeRef) int {
		if c := strings.Compare(a.Tenant, b.Tenant); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
}

func compareRefs(a, b EntityRef) int {
	if c := strings.Compare(a.Tenant, b.Tenant); c != 0 {
		return c
	}
	if a.Kind != b.Kind {
		return int(a.Kind) - int(b.Kind)
	}
	return strings.Compare(a.Name, b.Name)
}

func compareUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// rs names a resource the way RabbitMQ's messages do.
func rs(kind, name, tenant string) string {
	return fmt.Sprintf("%s '%s' in vhost '%s'", kind, name, tenant)
}

// tenantOf returns the tenant named name or RabbitMQ's not-found error.
func (c *Controller) tenantOf(name string) (*tenant, error) {
	t, ok := c.tenants[name]
	if !ok {
		return nil, base.Errorf(base.CodeNotFound, "no vhost '%s'", name)
	}
	return t, nil
}

// checkName checks the name of a tenant, queue, stream or policy: not
// empty, at most ControllerNameBytesMax bytes (AMQP's shortstr).
func checkName(kind, name string) error {
	if name == "" {
		return base.Errorf(base.CodeInvalidArgument, "%s name is empty", kind)
	}
	if len(name) > base.ControllerNameBytesMax {
		return base.Errorf(base.CodeInvalidArgument, "%s name of %d bytes exceeds the limit of %d (ControllerNameBytesMax)",
			kind, len(name), base.ControllerNameBytesMax)
	}
	return nil
}

// invalidateDirectory drops the compiled user directory after a change of
// users or permissions.
func (c *Controller) invalidateDirectory() {
	c.dirMu.Lock()
	c.dir = nil
	c.dirMu.Unlock()
}

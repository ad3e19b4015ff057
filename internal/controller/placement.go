package controller

import (
	"hash/fnv"
	"slices"

	"github.com/ferry-mq/ferry/internal/auth"
	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/routing"
)

// DefaultTenant is the tenant Bootstrap creates, RabbitMQ's default vhost.
const DefaultTenant = "/"

// ReplicationFactorDefault is the replication factor of a new group when
// none is asked for, capped at the live nodes (DESIGN.md §4).
const ReplicationFactorDefault = 3

func (c *Controller) bootstrap(cmd *Bootstrap, r *Result) error {
	if c.bootstrapped {
		return base.Errorf(base.CodePreconditionFailed, "controller: already bootstrapped")
	}
	if len(cmd.Nodes) == 0 {
		return base.Errorf(base.CodeInvalidArgument, "controller: bootstrap needs at least one node")
	}
	if len(cmd.Nodes) > c.lim.nodes {
		return base.Errorf(base.CodeInvalidArgument, "controller: %d nodes exceed the limit of %d (ControllerNodesMax)",
			len(cmd.Nodes), c.lim.nodes)
	}
	n := cmd.CoordinatorGroups
	if n == 0 {
		n = 1
	}
	if n < 0 || n > base.ControllerCoordinatorGroupsMax {
		return base.Errorf(base.CodeInvalidArgument, "controller: %d coordinator groups, want 1 to %d (ControllerCoordinatorGroupsMax)",
			n, base.ControllerCoordinatorGroupsMax)
	}
	if err := checkClusterID(cmd.ClusterID); err != nil {
		return err
	}
	seen := map[NodeID]bool{}
	for _, nd := range cmd.Nodes {
		if err := checkNode(nd.ID, nd.Addr); err != nil {
			return err
		}
		if seen[nd.ID] {
			return base.Errorf(base.CodeInvalidArgument, "controller: node %d listed twice", nd.ID)
		}
		seen[nd.ID] = true
	}
	var guest *user
	if cmd.Guest != nil {
		guest = &user{name: "guest", creds: *cmd.Guest, tags: []auth.Tag{auth.TagAdministrator},
			perms: map[string]auth.Permission{DefaultTenant: {Tenant: DefaultTenant, Configure: ".*", Write: ".*", Read: ".*"}}}
		if err := checkUser(guest); err != nil {
			return err
		}
	}
	// Everything is checked: from here on nothing fails.
	for _, nd := range cmd.Nodes {
		c.nodes[nd.ID] = &Node{ID: nd.ID, Addr: nd.Addr, State: NodeLive}
	}
	rf, err := c.checkGroups(n, 0, true)
	base.Assert(err == nil, "placing coordinator groups on %d live nodes: %v", len(c.nodes), err)
	for range n {
		p := c.place(rf)
		c.coordinators = append(c.coordinators, p)
		r.NewGroups = append(r.NewGroups, p.clone())
	}
	c.tenants[DefaultTenant] = newTenant(DefaultTenant, cmd.Now)
	if guest != nil {
		c.users[guest.name] = guest
		c.invalidateDirectory()
	}
	c.bootstrapped = true
	c.clusterID = cmd.ClusterID
	r.Created = true
	return nil
}

// checkClusterID accepts an empty id (a Bootstrap from before cluster ids)
// or printable ASCII within ControllerClusterIDBytesMax.
func checkClusterID(id string) error {
	if len(id) > base.ControllerClusterIDBytesMax {
		return base.Errorf(base.CodeInvalidArgument, "controller: cluster id of %d bytes exceeds %d (ControllerClusterIDBytesMax)",
			len(id), base.ControllerClusterIDBytesMax)
	}
	for i := range len(id) {
		if id[i] < 0x21 || id[i] > 0x7e {
			return base.Errorf(base.CodeInvalidArgument, "controller: cluster id %q is not printable ASCII", id)
		}
	}
	return nil
}

// ClusterID returns the id Bootstrap gave the cluster: the same on every
// replica, "" before Bootstrap or when it carried none.
func (c *Controller) ClusterID() string { return c.clusterID }

func checkNode(id NodeID, addr string) error {
	if id == 0 {
		return base.Errorf(base.CodeInvalidArgument, "controller: node id 0 is not a node")
	}
	if addr == "" || len(addr) > base.ControllerNodeAddrBytesMax {
		return base.Errorf(base.CodeInvalidArgument, "controller: node %d address of %d bytes, want 1 to %d (ControllerNodeAddrBytesMax)",
			id, len(addr), base.ControllerNodeAddrBytesMax)
	}
	return nil
}

func (c *Controller) registerNode(cmd *RegisterNode, r *Result) error {
	if err := checkNode(cmd.ID, cmd.Addr); err != nil {
		return err
	}
	if nd, ok := c.nodes[cmd.ID]; ok {
		nd.Addr, nd.State = cmd.Addr, NodeLive
		return nil
	}
	if len(c.nodes) >= c.lim.nodes {
		return base.Errorf(base.CodeTooLarge, "controller: the cluster has %d nodes, the limit (ControllerNodesMax)", len(c.nodes))
	}
	c.nodes[cmd.ID] = &Node{ID: cmd.ID, Addr: cmd.Addr, State: NodeLive}
	r.Created = true
	return nil
}

func (c *Controller) setNodeState(cmd *SetNodeState) error {
	nd, ok := c.nodes[cmd.ID]
	if !ok {
		return base.Errorf(base.CodeNotFound, "controller: no node %d", cmd.ID)
	}
	if !cmd.State.valid() {
		return base.Errorf(base.CodeInvalidArgument, "controller: unknown node state %d", uint8(cmd.State))
	}
	nd.State = cmd.State
	return nil
}

// liveNodes returns the ids of the live nodes, ascending.
func (c *Controller) liveNodes() []NodeID {
	var ids []NodeID
	for id, nd := range c.nodes {
		if nd.State == NodeLive {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// replicationFactor resolves a requested replication factor (0: the
// default) against the live nodes: the default is
// min(ReplicationFactorDefault, live); a request above the live nodes is
// capped when capped is set (RabbitMQ's x-quorum-initial-group-size) and
// an error otherwise (Kafka's INVALID_REPLICATION_FACTOR).
func (c *Controller) replicationFactor(requested int, capped bool) (int, error) {
	live := 0
	for _, nd := range c.nodes {
		if nd.State == NodeLive {
			live++
		}
	}
	if live == 0 {
		return 0, base.Errorf(base.CodeUnavailable, "no live node to place a group on")
	}
	switch {
	case requested <= 0:
		return min(ReplicationFactorDefault, live), nil
	case requested > base.ControllerReplicationFactorMax:
		return 0, base.Errorf(base.CodeInvalidArgument, "replication factor %d exceeds the limit of %d (ControllerReplicationFactorMax)",
			requested, base.ControllerReplicationFactorMax)
	case requested > live && !capped:
		return 0, base.Errorf(base.CodeInvalidArgument, "Replication factor: %d larger than available brokers: %d.", requested, live)
	}
	return min(requested, live), nil
}

// checkGroups checks that n more groups fit within ControllerGroupsMax
// and that replicationFactor can place them; it returns the factor.
func (c *Controller) checkGroups(n, requested int, capped bool) (int, error) {
	if c.groups+n > c.lim.groups {
		return 0, base.Errorf(base.CodeTooLarge, "the cluster has %d groups; %d more exceed the limit of %d (ControllerGroupsMax)",
			c.groups, n, c.lim.groups)
	}
	return c.replicationFactor(requested, capped)
}

// place allocates a group id and chooses its replicas: the rf live nodes
// holding the fewest replicas, ties to the lowest node id; the preferred
// leader is the chosen node leading the fewest groups, ties to the lowest
// id. It depends only on the replicated state, so every replica chooses
// the same. rf comes from checkGroups, which the caller has called for
// all the groups it places, so place cannot fail.
func (c *Controller) place(rf int) Placement {
	live := c.liveNodes()
	base.Assert(rf >= 1 && rf <= len(live) && c.groups < c.lim.groups,
		"placing a group with replication factor %d on %d live nodes, %d groups", rf, len(live), c.groups)
	slices.SortStableFunc(live, func(a, b NodeID) int { return c.loadOf(a).replicas - c.loadOf(b).replicas })
	chosen := live[:rf]
	preferred := chosen[0]
	for _, n := range chosen[1:] {
		if lp, lq := c.loadOf(n).preferred, c.loadOf(preferred).preferred; lp < lq || lp == lq && n < preferred {
			preferred = n
		}
	}
	replicas := slices.Clone(chosen)
	slices.Sort(replicas)
	return c.allocate(replicas, preferred)
}

// placeOn allocates a group id for a group with node as its only
// replica; node is live (isLive) and checkGroups has been called.
func (c *Controller) placeOn(node NodeID) Placement {
	base.Assert(c.isLive(node) && c.groups < c.lim.groups, "placing a group on node %d, %d groups", node, c.groups)
	return c.allocate([]NodeID{node}, node)
}

// allocate gives a new group the next id and counts it.
func (c *Controller) allocate(replicas []NodeID, preferred NodeID) Placement {
	p := Placement{Group: c.nextGroup, Replicas: replicas, Preferred: preferred}
	c.nextGroup++
	c.addLoad(p)
	return p
}

// isLive says whether node is a live member of the cluster.
func (c *Controller) isLive(node NodeID) bool {
	nd, ok := c.nodes[node]
	return ok && nd.State == NodeLive
}

func (c *Controller) loadOf(n NodeID) *nodeLoad {
	l, ok := c.load[n]
	if !ok {
		l = &nodeLoad{}
		c.load[n] = l
	}
	return l
}

// addLoad counts a group that exists.
func (c *Controller) addLoad(p Placement) {
	c.groups++
	for _, n := range p.Replicas {
		c.loadOf(n).replicas++
	}
	c.loadOf(p.Preferred).preferred++
}

// dropLoad forgets a deleted group.
func (c *Controller) dropLoad(p Placement) {
	c.groups--
	for _, n := range p.Replicas {
		c.loadOf(n).replicas--
	}
	c.loadOf(p.Preferred).preferred--
}

// CoordinatorFor returns the coordinator group of a consumer group (Kafka
// consumer groups, server-side stream groups): a stable hash of its name
// (FNV-1a, 64 bits) modulo the number of coordinator groups, which never
// changes after Bootstrap.
func (c *Controller) CoordinatorFor(groupName string) (Placement, error) {
	if len(c.coordinators) == 0 {
		return Placement{}, base.Errorf(base.CodeUnavailable, "controller: not bootstrapped")
	}
	h := fnv.New64a()
	h.Write([]byte(groupName))
	return c.coordinators[h.Sum64()%uint64(len(c.coordinators))].clone(), nil
}

// Coordinators returns the coordinator groups, by index.
func (c *Controller) Coordinators() []Placement {
	out := make([]Placement, len(c.coordinators))
	for i, p := range c.coordinators {
		out[i] = p.clone()
	}
	return out
}

// Nodes returns the registered nodes by id.
func (c *Controller) Nodes() []Node {
	out := make([]Node, 0, len(c.nodes))
	for _, nd := range c.nodes {
		out = append(out, *nd)
	}
	slices.SortFunc(out, func(a, b Node) int { return compareUint(uint64(a.ID), uint64(b.ID)) })
	return out
}

// GroupInfo is one group and what runs on it.
type GroupInfo struct {
	Placement
	// Coordinator is the coordinator index for a coordinator group, -1
	// otherwise.
	Coordinator int
	// Entity is the queue or stream the group belongs to (zero for a
	// coordinator), and Partition the stream partition.
	Entity    EntityRef
	Partition int
}

// Groups returns every group, by id, optionally only those with a replica
// on node (0: all). A node calls it at start to know which groups to run.
func (c *Controller) Groups(node NodeID) []GroupInfo {
	var out []GroupInfo
	add := func(g GroupInfo) {
		if node == 0 || slices.Contains(g.Replicas, node) {
			g.Placement = g.Placement.clone()
			out = append(out, g)
		}
	}
	for i, p := range c.coordinators {
		add(GroupInfo{Placement: p, Coordinator: i})
	}
	for _, t := range c.tenants {
		for _, q := range t.queues {
			add(GroupInfo{Placement: q.place, Coordinator: -1, Entity: EntityRef{t.name, routing.Queue, q.name}})
		}
		for _, s := range t.streams {
			for i, p := range s.partitions {
				add(GroupInfo{Placement: p, Coordinator: -1, Entity: EntityRef{t.name, routing.Stream, s.name}, Partition: i})
			}
		}
	}
	slices.SortFunc(out, func(a, b GroupInfo) int { return compareUint(uint64(a.Group), uint64(b.Group)) })
	return out
}

package controller

import (
	"github.com/ferry-mq/ferry/internal/auth"
	"github.com/ferry-mq/ferry/internal/routing"
)

// Command is one entry of the controller's log. Every command carries Now,
// the leader's Unix time in ms when it proposed it: the only time the
// controller knows. Whatever must be random (server-generated queue names,
// password salts) is drawn by the proposer and carried in the command.
type Command interface {
	kind() cmdKind
	now() int64
	encode(e *encoder)
}

type cmdKind uint8

// Command kinds, as encoded. Append only; never renumber.
const (
	kindBootstrap cmdKind = iota + 1
	kindRegisterNode
	kindSetNodeState
	kindCreateTenant
	kindDeleteTenant
	kindPutUser
	kindDeleteUser
	kindSetPermission
	kindClearPermission
	kindPutPolicy
	kindDeletePolicy
	kindDeclareExchange
	kindDeleteExchange
	kindBind
	kindUnbind
	kindDeclareQueue
	kindDeleteQueue
	kindConnectionClosed
	kindDeclareStream
	kindAddPartitions
	kindAlterStream
	kindDeleteStream
	kindMax = kindDeleteStream
)

// Bootstrap initialises an empty controller: the nodes of the new
// cluster, the default tenant "/", the consumer-group coordinator groups
// and, when Guest is set, the user guest (tag administrator, full
// permissions on "/"; auth allows it only from loopback addresses). It is
// the first command of every controller log and is refused afterwards.
type Bootstrap struct {
	Now   int64
	Nodes []Node // registered live, whatever their State says
	// CoordinatorGroups is the number of consumer-group coordinator
	// groups; 0 means 1.
	CoordinatorGroups int
	// Guest holds guest's credentials (auth.NewCredentials("guest", ...),
	// computed by the proposer with its random salts); nil creates no
	// guest user.
	Guest *auth.Credentials
	// ClusterID names the cluster for as long as it lives, the same on
	// every node (Kafka's Metadata and DescribeCluster report it): drawn
	// at random by the proposer, since the controller draws nothing. It
	// is printable ASCII of at most ControllerClusterIDBytesMax bytes;
	// empty in a Bootstrap proposed before cluster ids existed.
	ClusterID string
}

// RegisterNode adds a node or updates its address; either way it is live
// afterwards (a node registers when it starts).
type RegisterNode struct {
	Now  int64
	ID   NodeID
	Addr string
}

// SetNodeState records a node as live, down or draining. Only live nodes
// receive new replicas; existing placements do not move.
type SetNodeState struct {
	Now   int64
	ID    NodeID
	State NodeState
}

// CreateTenant creates a tenant (RabbitMQ virtual host); creating one that
// exists succeeds with Created false.
type CreateTenant struct {
	Now  int64
	Name string
}

// DeleteTenant deletes a tenant and everything in it: queues, streams,
// exchanges, bindings, policies and every user's permissions there. The
// result lists what was removed. Deleting a missing tenant is CodeNotFound.
type DeleteTenant struct {
	Now  int64
	Name string
}

// PutUser creates a user or replaces its credentials and tags (its
// permissions stay). Credentials are computed by the proposer.
type PutUser struct {
	Now         int64
	Name        string
	Credentials auth.Credentials
	Tags        []auth.Tag
}

// DeleteUser deletes a user and its permissions; a missing user is
// CodeNotFound.
type DeleteUser struct {
	Now  int64
	Name string
}

// SetPermission sets a user's permission in Permission.Tenant, replacing
// any it had there.
type SetPermission struct {
	Now        int64
	User       string
	Permission auth.Permission
}

// ClearPermission removes a user's permission in a tenant (a no-op when it
// has none).
type ClearPermission struct {
	Now    int64
	User   string
	Tenant string
}

// PutPolicy creates or replaces a policy of Policy.Tenant; the result
// lists the queues and streams whose effective configuration changed.
type PutPolicy struct {
	Now    int64
	Policy auth.Policy
}

// DeletePolicy deletes a policy (a no-op when missing); the result lists
// the entities whose effective configuration changed.
type DeletePolicy struct {
	Now    int64
	Tenant string
	Name   string
}

// DeclareExchange declares an exchange with RabbitMQ's semantics
// (routing.Table.DeclareExchange).
type DeclareExchange struct {
	Now      int64
	Tenant   string
	Exchange routing.Exchange
}

// DeleteExchange deletes an exchange and its bindings; auto-delete
// exchanges that lose their last binding go too.
type DeleteExchange struct {
	Now      int64
	Tenant   string
	Name     string
	IfUnused bool
}

// Bind adds a binding. Owner is the connection asking: binding an
// exclusive queue of another connection is CodeResourceLocked.
type Bind struct {
	Now     int64
	Tenant  string
	Binding routing.Binding
	Owner   string
}

// Unbind removes a binding (a no-op when missing); Owner as for Bind.
type Unbind struct {
	Now     int64
	Tenant  string
	Binding routing.Binding
	Owner   string
}

// DeclareQueue declares a queue (or, with x-queue-type stream, a stream)
// with RabbitMQ's queue.declare semantics: idempotent, an inequivalent
// redeclaration is CodePreconditionFailed, an exclusive queue of another
// connection is CodeResourceLocked. A client's empty name is replaced by
// the proposer with a fresh "amq.gen-..." name and ServerNamed set (which
// also allows the reserved "amq." prefix). Passive declares are queries
// (Controller.PassiveDeclare), not commands.
type DeclareQueue struct {
	Now         int64
	Tenant      string
	Name        string
	ServerNamed bool
	Durable     bool
	Exclusive   bool
	Owner       string // the declaring connection; required when Exclusive
	// Node is the declaring connection's node (0: not given). A new
	// exclusive queue lives and dies with that connection, so it is
	// placed on that node alone when the node is live: replicas
	// elsewhere would add a consensus round trip to every publish and
	// survive nothing a client could use.
	Node       NodeID
	AutoDelete bool
	Args       []routing.Field
}

// DeleteReason says why a queue is deleted.
type DeleteReason uint8

const (
	// DeleteExplicit is a client's queue.delete (or an operator's). The
	// broker has already run the queue group's own Delete with the
	// client's if-unused and if-empty, which the controller cannot judge.
	DeleteExplicit DeleteReason = iota
	// DeleteAutoDelete: the last consumer of an auto-delete queue went.
	DeleteAutoDelete
	// DeleteExpired: the queue was unused for its x-expires.
	DeleteExpired
)

var deleteReasonNames = [...]string{"explicit", "auto-delete", "expired"}

func (r DeleteReason) String() string {
	if int(r) < len(deleteReasonNames) {
		return deleteReasonNames[r]
	}
	return "reason?"
}

// DeleteQueue deletes a queue, or a stream declared in the queue
// namespace, with its bindings. Deleting a missing one succeeds with
// nothing removed, as in RabbitMQ.
//
// Group, when not 0, names the incarnation the proposer observed: if the
// queue now has another group (it was deleted and declared again), the
// command does nothing. The broker sets it for DeleteAutoDelete and
// DeleteExpired, which it proposes on its own observations.
type DeleteQueue struct {
	Now    int64
	Tenant string
	Name   string
	// Owner is the connection asking: deleting another connection's
	// exclusive queue is CodeResourceLocked. An operator's delete (the
	// management API) passes the queue's own Owner.
	Owner  string
	Group  GroupID
	Reason DeleteReason
}

// ConnectionClosed deletes every exclusive queue that Owner declared.
type ConnectionClosed struct {
	Now   int64
	Owner string
}

// DeclareStream creates a stream the Kafka way (CreateTopics): it fails
// with nothing changed but Created false when the stream exists, and
// Kafka's topic defaults apply. Partitions <= 0 means 1;
// ReplicationFactor <= 0 means min(3, live nodes), more than the live
// nodes is CodeInvalidArgument. Args holds Kafka topic configs (string
// values) and x-arguments.
type DeclareStream struct {
	Now               int64
	Tenant            string
	Name              string
	Partitions        int
	ReplicationFactor int
	Args              []routing.Field
}

// AddPartitions grows a stream to Total partitions (never fewer).
type AddPartitions struct {
	Now    int64
	Tenant string
	Name   string
	Total  int
}

// AlterStream replaces a stream's configuration arguments (Kafka
// AlterConfigs): every key of Args, which may not name x-queue-type,
// x-ferry-partitions or x-initial-cluster-size (those are fixed at
// creation).
type AlterStream struct {
	Now    int64
	Tenant string
	Name   string
	Args   []routing.Field
}

// DeleteStream deletes a stream and its bindings; a missing stream is
// CodeNotFound (Kafka's UNKNOWN_TOPIC_OR_PARTITION).
type DeleteStream struct {
	Now    int64
	Tenant string
	Name   string
}

func (*Bootstrap) kind() cmdKind        { return kindBootstrap }
func (*RegisterNode) kind() cmdKind     { return kindRegisterNode }
func (*SetNodeState) kind() cmdKind     { return kindSetNodeState }
func (*CreateTenant) kind() cmdKind     { return kindCreateTenant }
func (*DeleteTenant) kind() cmdKind     { return kindDeleteTenant }
func (*PutUser) kind() cmdKind          { return kindPutUser }
func (*DeleteUser) kind() cmdKind       { return kindDeleteUser }
func (*SetPermission) kind() cmdKind    { return kindSetPermission }
func (*ClearPermission) kind() cmdKind  { return kindClearPermission }
func (*PutPolicy) kind() cmdKind        { return kindPutPolicy }
func (*DeletePolicy) kind() cmdKind     { return kindDeletePolicy }
func (*DeclareExchange) kind() cmdKind  { return kindDeclareExchange }
func (*DeleteExchange) kind() cmdKind   { return kindDeleteExchange }
func (*Bind) kind() cmdKind             { return kindBind }
func (*Unbind) kind() cmdKind           { return kindUnbind }
func (*DeclareQueue) kind() cmdKind     { return kindDeclareQueue }
func (*DeleteQueue) kind() cmdKind      { return kindDeleteQueue }
func (*ConnectionClosed) kind() cmdKind { return kindConnectionClosed }
func (*DeclareStream) kind() cmdKind    { return kindDeclareStream }
func (*AddPartitions) kind() cmdKind    { return kindAddPartitions }
func (*AlterStream) kind() cmdKind      { return kindAlterStream }
func (*DeleteStream) kind() cmdKind     { return kindDeleteStream }

func (c *Bootstrap) now() int64        { return c.Now }
func (c *RegisterNode) now() int64     { return c.Now }
func (c *SetNodeState) now() int64     { return c.Now }
func (c *CreateTenant) now() int64     { return c.Now }
func (c *DeleteTenant) now() int64     { return c.Now }
func (c *PutUser) now() int64          { return c.Now }
func (c *DeleteUser) now() int64       { return c.Now }
func (c *SetPermission) now() int64    { return c.Now }
func (c *ClearPermission) now() int64  { return c.Now }
func (c *PutPolicy) now() int64        { return c.Now }
func (c *DeletePolicy) now() int64     { return c.Now }
func (c *DeclareExchange) now() int64  { return c.Now }
func (c *DeleteExchange) now() int64   { return c.Now }
func (c *Bind) now() int64             { return c.Now }
func (c *Unbind) now() int64           { return c.Now }
func (c *DeclareQueue) now() int64     { return c.Now }
func (c *DeleteQueue) now() int64      { return c.Now }
func (c *ConnectionClosed) now() int64 { return c.Now }
func (c *DeclareStream) now() int64    { return c.Now }
func (c *AddPartitions) now() int64    { return c.Now }
func (c *AlterStream) now() int64      { return c.Now }
func (c *DeleteStream) now() int64     { return c.Now }

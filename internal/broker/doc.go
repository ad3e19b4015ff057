// Package broker is Ferry's protocol-neutral data plane: the one API every
// front end (AMQP, Kafka, MQTT, STOMP, HTTP) codes against, and the glue
// between the Raft engine (internal/replication), the state machines
// (internal/queue, internal/stream, internal/routing, internal/auth) and
// the metadata controller (internal/controller).
//
// It owns:
//   - the node: Open wires the stores (segmented logs, Pebble), the engine
//     and its transport, opens the controller group (bootstrapping a
//     fresh cluster: tenant "/", guest, the amq.* exchanges) and, through
//     the reconciler, every group the controller places on the node;
//   - the FSM adapters: controller (group 0), queues (a data batch is an
//     Enqueue of its records; commands ride in control batches),
//     stream partitions (every batch is an Append) and consumer-group
//     coordinators;
//   - the leader runtimes that act on the state machines' effects on the
//     node leading a group: deliveries, timers, dead-lettering,
//     settlement coalescing, the publish accumulators, retention ticks,
//     group ticks, and the coordinator's marks that make committed
//     offsets expire by group membership (group_expiry.go);
//   - forwarding of calls made on a node that does not lead the group,
//     consumers included (their deliveries and settlements cross the
//     node-to-node forwarding connection, credit-bound);
//   - flow control (memory and disk watermarks), message tracing, stats;
//   - the message mapping between Message and a Kafka record
//     (mapping.go; docs/messages.md).
//
// It must never: confirm a publish before every routed copy is durable on
// a quorum; block an engine loop (FSM Apply only copies effects for the
// leader runtimes); act on effects on a follower; read time other than
// through base.Clock or files other than through vfs.FS; keep a message
// body in memory beyond the bounded cache of recent batches (bodies stay
// in the log); start a goroutine without an owner that stops and waits
// for it.
//
// # API (what front ends use)
//
// Node: Open(Config) → *Broker; Close; Blocked (flow control); Trace and
// SetTrace (message history); QueueStats, StreamStats (and
// QueueStatsWait, StreamStatsWait, which wait for the replicas to open
// after a restart), EngineMetrics (Raft and fsync figures), Topology,
// Cluster, CoordinatorNode, DescribeGroup, ListGroups; Connections,
// CloseConnection; Authenticate and Directory (SCRAM); Tenants.
//
// Connection: OpenConnection(ConnInfo, Principal, kill) → *Conn; Close;
// Authorize. Topology: DeclareExchange, DeleteExchange, DeclareQueue,
// DeleteQueue, PurgeQueue, Bind, Unbind, DeclareStream, DeleteStream,
// AddPartitions, AlterStream, and their dry runs ValidateDeclareStream,
// ValidateAddPartitions, ValidateAlterStream (Kafka's validate_only).
// Publishing: Publish, PublishAsync.
// Consuming: Subscribe → *Subscription (Ack, Nack, Recover, SetPrefetch,
// Cancel), Get → *GetHandle (Ack, Nack). Streams: ProduceBatch, Fetch,
// ListOffset, InitProducerID. Administration (admin_api.go, checked
// against the caller's tags as RabbitMQ's management API does):
// CreateTenant, DeleteTenant, ListTenants, PutUser (hashed on this node
// before it is proposed), DeleteUser, ListUsers, SetPermission,
// ClearPermission, ListPermissions, PutPolicy, DeletePolicy, ListPolicies.
// Deleting a user or a tenant closes the connections it leaves orphaned
// on every node (revoke.go); deleting a tenant deletes everything in it.
// Consumer groups: JoinGroup, SyncGroup,
// Heartbeat, LeaveGroup (by member or instance id), DeleteGroup (with its
// offsets), CommitOffsets, FetchOffsets, DeleteOffsets, and
// server-side assignment with JoinAssigned, AssignedHeartbeat,
// LeaveAssigned. (*Broker).StreamConsumerLag reads every group's committed
// offsets from the local replicas, for metrics (lag.go); ClusterID is the
// id the bootstrapping node drew into the controller's Bootstrap
// (clusterid.go).
//
// Errors carry base codes that front ends map: NotFound (AMQP 404),
// PreconditionFailed (406), ResourceLocked (405), AccessRefused (403),
// InvalidArgument, NotLeader (Kafka calls that must reach a leader, with
// a replication.NotLeaderError naming it), Overloaded (flow control),
// Unavailable, Timeout. Consumer-group errors are *GroupError with the
// Kafka code.
//
// DESIGN.md lists the non-obvious invariants.
package broker

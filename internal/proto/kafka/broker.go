package kafka

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"slices"
	"strconv"
	"sync"

	"github.com/ferry-mq/ferry/internal/auth"
	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/broker"
	"github.com/ferry-mq/ferry/internal/proto/kafka/protocol"
	"github.com/ferry-mq/ferry/internal/storage/log/batch"
)

// BrokerBackend adapts internal/broker to Backend. See DESIGN.md
// ("The broker adapter") for what it emulates that the broker lacks.
type BrokerBackend struct {
	B *broker.Broker
	// ClusterID is what Metadata and DescribeCluster report; default
	// the broker's (*broker.Broker).ClusterID, the same on every node,
	// or "ferry" for a cluster bootstrapped before cluster ids existed.
	ClusterID string
	// KafkaAddr returns a node's Kafka listener address (host, port), or
	// false when unknown; the server's own advertised address is used for
	// this node regardless.
	KafkaAddr func(id int32) (string, int32, bool)
}

func (bb *BrokerBackend) Directory() *auth.Directory { return bb.B.Directory() }

func (bb *BrokerBackend) Open(info ConnInfo, p Principal, kill func(string)) (Session, error) {
	c, err := bb.B.OpenConnection(broker.ConnInfo{ID: info.ID, Protocol: "kafka", Peer: info.Peer, Name: info.ClientID},
		broker.Principal{User: p.User, Tenant: p.Tenant}, kill)
	if err != nil {
		return nil, err
	}
	return &brokerSession{bb: bb, c: c, tenant: p.Tenant, lanes: map[PartitionRef]*produceLane{},
		calls: make(chan struct{}, base.KafkaProduceCallsInflightMax)}, nil
}

// brokerSession is one connection's session on the broker.
type brokerSession struct {
	bb     *BrokerBackend
	c      *broker.Conn
	tenant string

	mu    sync.Mutex
	lanes map[PartitionRef]*produceLane // guarded by mu: idempotent produce order per partition
	wg    sync.WaitGroup                // produce goroutines
	calls chan struct{}                 // a token per produce call not yet settled
}

func (s *brokerSession) Authorize(action auth.Action, name string) error {
	return s.c.Authorize(action, broker.EntityStream, name)
}

func (s *brokerSession) Close(ctx context.Context) error {
	s.wg.Wait()
	return s.c.Close(ctx)
}

func (s *brokerSession) ClusterID() string {
	if s.bb.ClusterID != "" {
		return s.bb.ClusterID
	}
	if id := s.bb.B.ClusterID(); id != "" {
		return id
	}
	return "ferry"
}

func (s *brokerSession) Self() int32 { return int32(s.bb.B.NodeID()) }

// Controller is this node: every node takes admin requests and forwards
// them to the metadata group's leader, so clients need not find it.
func (s *brokerSession) Controller() int32 { return s.Self() }

func (s *brokerSession) Nodes() []Node {
	view := s.bb.B.Cluster(s.tenant)
	out := make([]Node, 0, len(view.Nodes))
	for _, n := range view.Nodes {
		node := Node{ID: int32(n.ID)}
		if s.bb.KafkaAddr != nil {
			if host, port, ok := s.bb.KafkaAddr(node.ID); ok {
				node.Host, node.Port = host, port
			}
		}
		out = append(out, node)
	}
	return out
}

// topicID derives a stream's Kafka topic id from its tenant, name and
// creation time: the same on every node, different after the stream is
// deleted and created again.
func topicID(tenant, name string, createdMs int64) protocol.UUID {
	h := sha256.New()
	h.Write([]byte(tenant))
	h.Write([]byte{0})
	h.Write([]byte(name))
	h.Write(binary.BigEndian.AppendUint64(nil, uint64(createdMs)))
	var id protocol.UUID
	copy(id[:], h.Sum(nil))
	id[6] = id[6]&0x0f | 0x40 // a version-4 layout, as Kafka's random ids
	id[8] = id[8]&0x3f | 0x80
	return id
}

func (s *brokerSession) Topics(names []string) []TopicInfo {
	view := s.bb.B.Topology(s.tenant)
	cluster := s.bb.B.Cluster(s.tenant)
	leaders := map[PartitionRef]int32{}
	for _, p := range cluster.Partitions {
		lead := int32(-1)
		if p.Leader != 0 {
			lead = int32(p.Leader)
		}
		leaders[PartitionRef{p.Stream, p.Partition}] = lead
	}
	var out []TopicInfo
	for _, st := range view.Streams {
		if names != nil && !slices.Contains(names, st.Name) {
			continue
		}
		t := TopicInfo{Name: st.Name, ID: topicID(st.Tenant, st.Name, st.CreatedMs)}
		for i, pl := range st.Partitions {
			pi := PartitionInfo{Index: int32(i), Leader: -1}
			if lead, ok := leaders[PartitionRef{st.Name, int32(i)}]; ok {
				pi.Leader = lead
			}
			for _, r := range pl.Replicas {
				pi.Replicas = append(pi.Replicas, int32(r))
			}
			pi.ISR = slices.Clone(pi.Replicas)
			t.Partitions = append(t.Partitions, pi)
		}
		out = append(out, t)
	}
	return out
}

func (s *brokerSession) CoordinatorFor(group string) (int32, error) {
	n := s.bb.B.CoordinatorNode(group)
	if n == 0 {
		return -1, base.Errorf(base.CodeUnavailable, "kafka: the coordinator of group %q has no leader yet", group)
	}
	return int32(n), nil
}

// produceLane submits one partition's idempotent batches of a session in
// submission order: the broker checks sequences per call, so two pipelined
// requests must reach it in order. A batch is started once the one before
// it was admitted (broker.Conn.ProduceBatchOrdered), not once it is
// committed, so a producer's pipelined batches share fsyncs.
type produceLane struct {
	queue []func(admitted func()) // guarded by brokerSession.mu
	busy  bool                    // guarded by brokerSession.mu
}

func (s *brokerSession) ProduceBatch(ctx context.Context, p PartitionRef, data []byte, acks int16, done func(ProduceResult)) {
	idempotent := len(data) >= batch.HeaderSize && int64(binary.BigEndian.Uint64(data[43:])) >= 0
	select {
	case s.calls <- struct{}{}:
	case <-ctx.Done():
		done(ProduceResult{Err: base.Errorf(base.CodeTimeout, "kafka: produce not started: %w", ctx.Err())})
		return
	}
	call := func(admitted func()) {
		off, appendTime, start, err := s.c.ProduceBatchOrdered(ctx, broker.PartitionRef{Stream: p.Stream, Partition: p.Partition}, data, acks, admitted)
		if err != nil {
			err = producerError(err)
		}
		<-s.calls
		done(ProduceResult{BaseOffset: off, LogAppendTime: appendTime, LogStartOffset: start, Err: err})
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.wg.Add(1)
	if !idempotent {
		go func() { // owned: Close waits on wg; ctx bounds the call
			defer s.wg.Done()
			call(func() {})
		}()
		return
	}
	lane := s.lanes[p]
	if lane == nil {
		lane = &produceLane{}
		s.lanes[p] = lane
	}
	lane.queue = append(lane.queue, call)
	if !lane.busy {
		lane.busy = true
		s.wg.Add(1)
		go s.runLane(p, lane) // owned: Close waits on wg; it ends when its queue is empty
	}
}

// runLane starts the lane's calls one at a time, each once the one before
// it was admitted.
func (s *brokerSession) runLane(p PartitionRef, lane *produceLane) {
	defer s.wg.Done()
	for {
		s.mu.Lock()
		if len(lane.queue) == 0 {
			lane.busy = false
			delete(s.lanes, p)
			s.mu.Unlock()
			return
		}
		call := lane.queue[0]
		lane.queue = lane.queue[1:]
		s.mu.Unlock()
		admitted := make(chan struct{})
		go func() { // owned: Close waits on wg (the call's count); ctx bounds the call
			defer s.wg.Done()
			call(func() { close(admitted) })
		}()
		<-admitted // ProduceBatchOrdered calls it exactly once, before it returns
	}
}

// producerError gives an idempotent producer's refusal (a
// *broker.ProducerError) its Kafka code; other errors are mapped by their
// base codes.
func producerError(err error) error {
	var pe *broker.ProducerError
	if !errors.As(err, &pe) {
		return err
	}
	switch pe.Refusal {
	case broker.RefusedOutOfOrder:
		return &KafkaError{Code: protocol.ErrorCodeOutOfOrderSequenceNumber, Msg: err.Error()}
	case broker.RefusedFenced:
		return &KafkaError{Code: protocol.ErrorCodeInvalidProducerEpoch, Msg: err.Error()}
	}
	return &KafkaError{Code: protocol.ErrorCodeInvalidRecord, Msg: err.Error()}
}

func (s *brokerSession) Fetch(ctx context.Context, p PartitionRef, offset int64, maxBytes int) (FetchResult, error) {
	res, err := s.c.Fetch(ctx, broker.PartitionRef{Stream: p.Stream, Partition: p.Partition}, offset, max(maxBytes, 1), 0, 0)
	out := FetchResult{Records: res.Records, HighWatermark: res.HighWatermark, DataEnd: res.DataEnd, LogStartOffset: res.LogStartOffset}
	if maxBytes <= 0 {
		out.Records = nil
	}
	return out, err
}

// WaitForData waits on every position at once, one broker long poll each,
// and returns when the first has data.
func (s *brokerSession) WaitForData(ctx context.Context, positions []FetchPosition) error {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for _, pos := range positions {
		wg.Add(1)
		go func() { // owned: waited for below; wctx ends it
			defer wg.Done()
			res, err := s.c.Fetch(wctx, broker.PartitionRef{Stream: pos.Stream, Partition: pos.Partition}, pos.Offset, 1, 1, base.BrokerFetchWaitMax)
			if err != nil || res.HighWatermark > pos.Offset {
				cancel()
			}
		}()
	}
	wg.Wait()
	return ctx.Err()
}

func (s *brokerSession) ListOffset(ctx context.Context, p PartitionRef, ts int64) (int64, int64, error) {
	return s.c.ListOffset(ctx, broker.PartitionRef{Stream: p.Stream, Partition: p.Partition}, ts)
}

// InitProducerID allocates a new id; a bump of an existing one (KIP-360)
// gets a new id too, which clients accept.
func (s *brokerSession) InitProducerID(ctx context.Context, id int64, epoch int16) (int64, int16, error) {
	return s.c.InitProducerID(ctx)
}

// groupError converts the broker's *GroupError to a *KafkaError.
func groupError(err error) error {
	var ge *broker.GroupError
	if errors.As(err, &ge) {
		return &KafkaError{Code: protocol.ErrorCode(ge.KafkaCode), Msg: ge.Error()}
	}
	return err
}

func answerCode(err error) protocol.ErrorCode {
	var ge *broker.GroupError
	if errors.As(err, &ge) {
		return protocol.ErrorCode(ge.KafkaCode)
	}
	return protocol.ErrorCodeNone
}

func (s *brokerSession) JoinGroup(ctx context.Context, req JoinRequest) (JoinResponse, error) {
	br := broker.JoinGroupRequest{Group: req.Group, MemberID: req.MemberID, InstanceID: req.InstanceID, ClientID: req.ClientID,
		ClientHost: req.ClientHost, ProtocolType: req.ProtocolType, SessionTimeout: req.SessionTimeout,
		RebalanceTimeout: req.RebalanceTime, RequireKnownMemberID: req.RequireKnownMemberID}
	for _, p := range req.Protocols {
		br.Protocols = append(br.Protocols, broker.GroupProtocol{Name: p.Name, Metadata: p.Metadata})
	}
	res, err := s.c.JoinGroup(ctx, br)
	if err != nil {
		return JoinResponse{}, groupError(err)
	}
	out := JoinResponse{Err: answerCode(res.Err), Generation: res.Generation, ProtocolType: res.ProtocolType,
		ProtocolName: res.ProtocolName, LeaderID: res.LeaderID, MemberID: res.MemberID, SkipAssignment: res.SkipAssignment}
	for _, m := range res.Members {
		out.Members = append(out.Members, JoinMember{MemberID: m.MemberID, InstanceID: m.InstanceID, Metadata: m.Metadata})
	}
	return out, nil
}

func (s *brokerSession) SyncGroup(ctx context.Context, req SyncRequest) (SyncResponse, error) {
	br := broker.SyncGroupRequest{Group: req.Group, MemberID: req.MemberID, InstanceID: req.InstanceID,
		Generation: req.Generation, ProtocolType: req.ProtocolType, ProtocolName: req.ProtocolName}
	if len(req.Assignments) > 0 {
		br.Assignments = map[string][]byte{}
		for _, a := range req.Assignments {
			br.Assignments[a.MemberID] = a.Assignment
		}
	}
	res, err := s.c.SyncGroup(ctx, br)
	if err != nil {
		return SyncResponse{}, groupError(err)
	}
	return SyncResponse{Err: answerCode(res.Err), ProtocolType: res.ProtocolType, ProtocolName: res.ProtocolName,
		Assignment: res.Assignment}, nil
}

func (s *brokerSession) Heartbeat(ctx context.Context, group, member, instance string, generation int32) error {
	return groupError(s.c.Heartbeat(ctx, group, member, generation, instance))
}

// LeaveGroup leaves by member id, by group.instance.id (a static member,
// KIP-345: LeaveGroup v3+), or both.
func (s *brokerSession) LeaveGroup(ctx context.Context, group string, members []LeavingMember) ([]LeaveResult, error) {
	leaving := make([]broker.LeavingMember, len(members))
	for i, m := range members {
		leaving[i] = broker.LeavingMember{MemberID: m.MemberID, InstanceID: m.InstanceID}
	}
	left, err := s.c.LeaveGroup(ctx, group, leaving)
	out := make([]LeaveResult, len(left))
	for i, l := range left {
		out[i] = LeaveResult{MemberID: l.MemberID, Err: groupError(l.Err)}
	}
	return out, groupError(err)
}

func (s *brokerSession) CommitOffsets(ctx context.Context, group, member, instance string, generation int32, offsets []OffsetCommit) ([]error, error) {
	m := make(map[broker.PartitionRef]broker.CommittedOffset, len(offsets))
	for _, o := range offsets {
		m[broker.PartitionRef{Stream: o.Stream, Partition: o.Partition}] = broker.CommittedOffset{Offset: o.Offset,
			LeaderEpoch: o.LeaderEpoch, Metadata: o.Metadata}
	}
	res := s.c.CommitOffsets(ctx, group, generation, member, instance, m)
	out := make([]error, len(offsets))
	for i, o := range offsets {
		out[i] = groupError(res[broker.PartitionRef{Stream: o.Stream, Partition: o.Partition}])
	}
	return out, nil
}

// FetchOffsets asks for parts, or for every partition of every stream of
// the tenant when parts is nil (the broker keeps offsets in the
// partitions, so "all" is a walk over them).
func (s *brokerSession) FetchOffsets(ctx context.Context, group string, parts []PartitionRef) ([]OffsetFetched, error) {
	all := parts == nil
	if all {
		for _, t := range s.Topics(nil) {
			if s.Authorize(auth.ActionRead, t.Name) != nil {
				continue
			}
			for _, p := range t.Partitions {
				parts = append(parts, PartitionRef{t.Name, p.Index})
			}
		}
	}
	out := make([]OffsetFetched, 0, len(parts))
	for _, p := range parts {
		f := OffsetFetched{PartitionRef: p, CommittedOffset: CommittedOffset{Offset: -1, LeaderEpoch: -1}}
		got, err := s.c.FetchOffsets(ctx, group, []broker.PartitionRef{{Stream: p.Stream, Partition: p.Partition}})
		if err != nil {
			if base.CodeOf(err) == base.CodeNotFound && !all {
				f.Err = err
				out = append(out, f)
				continue
			}
			if base.CodeOf(err) != base.CodeNotFound {
				return nil, err
			}
			continue
		}
		if o, ok := got[broker.PartitionRef{Stream: p.Stream, Partition: p.Partition}]; ok {
			f.CommittedOffset = CommittedOffset{Offset: o.Offset, LeaderEpoch: o.LeaderEpoch, Metadata: o.Metadata}
		} else if all {
			continue
		}
		out = append(out, f)
	}
	return out, nil
}

func (s *brokerSession) DescribeGroup(ctx context.Context, group string) (GroupDescription, error) {
	d, err := s.bb.B.DescribeGroup(ctx, group)
	if err != nil {
		return GroupDescription{}, groupError(err)
	}
	out := GroupDescription{Group: group, State: d.State.String(), ProtocolType: d.ProtocolType, Protocol: d.Protocol}
	for _, m := range d.Members {
		out.Members = append(out.Members, GroupMember{MemberID: m.MemberID, InstanceID: m.InstanceID, ClientID: m.ClientID,
			ClientHost: m.ClientHost, Metadata: m.Metadata, Assignment: m.Assignment})
	}
	return out, nil
}

func (s *brokerSession) ListGroups(ctx context.Context) ([]GroupListing, error) {
	var out []GroupListing
	for _, g := range s.bb.B.ListGroups() {
		out = append(out, GroupListing{Group: g.Group, ProtocolType: g.ProtocolType, State: g.State.String()})
	}
	return out, nil
}

func (s *brokerSession) DeleteGroup(ctx context.Context, group string) error {
	return groupError(s.c.DeleteGroup(ctx, group))
}

// DeleteOffsets deletes a group's offsets of parts, as Kafka's
// coordinator decides (GroupCoordinator.handleDeleteOffsets): a group
// neither the coordinator knows nor with an offset among parts is
// GROUP_ID_NOT_FOUND; an empty one (or one known only by its offsets)
// loses every offset asked for; a group with members using
// the consumer protocol keeps those of the topics its members subscribe
// to (GROUP_SUBSCRIBED_TO_TOPIC), and one with members of another
// protocol type keeps everything (NON_EMPTY_GROUP). The subscriptions are
// read from the members' metadata, which the coordinator shows only while
// the group is Stable: during a rebalance every topic counts as
// subscribed. The check and the deletion are two steps: a member joining
// in between does not stop the deletion (Kafka holds the group's lock).
func (s *brokerSession) DeleteOffsets(ctx context.Context, group string, parts []PartitionRef) ([]error, error) {
	d, err := s.bb.B.DescribeGroup(ctx, group)
	if err != nil {
		return nil, groupError(err)
	}
	metadata := make([][]byte, len(d.Members))
	for i, m := range d.Members {
		metadata[i] = m.Metadata
	}
	subscribed, all := subscribedTopics(metadata)
	if len(d.Members) > 0 && d.ProtocolType != "consumer" {
		return nil, kafkaErr(protocol.ErrorCodeNonEmptyGroup, "the group has members")
	}
	if d.State.String() == "Dead" && !s.hasOffsets(ctx, group, parts) {
		// Unknown to the coordinator and without offsets here: Kafka
		// has no such group.
		return nil, kafkaErr(protocol.ErrorCodeGroupIdNotFound, "no group "+group)
	}
	out := make([]error, len(parts))
	var del []broker.PartitionRef
	var at []int
	for i, p := range parts {
		if all || subscribed[p.Stream] {
			out[i] = kafkaErr(protocol.ErrorCodeGroupSubscribedToTopic, "a member of the group consumes "+p.Stream)
			continue
		}
		del = append(del, broker.PartitionRef{Stream: p.Stream, Partition: p.Partition})
		at = append(at, i)
	}
	for j, err := range s.c.DeleteOffsets(ctx, group, del) {
		out[at[j]] = err
	}
	return out, nil
}

// hasOffsets reports whether group has a committed offset on one of
// parts (those it cannot read count as none).
func (s *brokerSession) hasOffsets(ctx context.Context, group string, parts []PartitionRef) bool {
	for _, p := range parts {
		ref := broker.PartitionRef{Stream: p.Stream, Partition: p.Partition}
		if got, err := s.c.FetchOffsets(ctx, group, []broker.PartitionRef{ref}); err == nil && len(got) > 0 {
			return true
		}
	}
	return false
}

// subscribedTopics returns the topics that members with the given
// consumer-protocol metadata subscribe to, or all = true when they cannot
// be known: metadata not shown (the group is rebalancing) or that does not
// decode.
func subscribedTopics(metadata [][]byte) (topics map[string]bool, all bool) {
	topics = map[string]bool{}
	for _, md := range metadata {
		if len(md) < 2 {
			return nil, true
		}
		version := int16(binary.BigEndian.Uint16(md))
		var sub protocol.ConsumerProtocolSubscription
		if version < 0 || sub.Decode(md[2:], min(version, 3)) != nil {
			return nil, true
		}
		for _, t := range sub.Topics {
			topics[t] = true
		}
	}
	return topics, false
}

// kafkaConfigs are the topic configurations Ferry knows, with the
// defaults of a stream created through Kafka (controller/kafka.go).
var kafkaConfigs = []string{"cleanup.policy", "compression.type", "max.message.bytes", "min.insync.replicas",
	"retention.bytes", "retention.ms", "segment.bytes", "segment.ms"}

func (s *brokerSession) CreateTopic(ctx context.Context, spec TopicSpec, validateOnly bool) (TopicInfo, error) {
	bspec := broker.StreamSpec{Name: spec.Name, Partitions: int(max(spec.Partitions, 0)),
		ReplicationFactor: int(max(spec.ReplicationFactor, 0)), Config: spec.Configs}
	if validateOnly {
		// The controller's own checks, on a copy of its state.
		if err := s.c.ValidateDeclareStream(ctx, bspec); err != nil {
			return TopicInfo{}, err
		}
		info := TopicInfo{Name: spec.Name}
		for i := range max(spec.Partitions, 1) {
			info.Partitions = append(info.Partitions, PartitionInfo{Index: i, Leader: -1})
		}
		return info, nil
	}
	// DeclareStream succeeds for an existing stream (the controller's
	// declaration is idempotent); Kafka answers TOPIC_ALREADY_EXISTS. The
	// check and the declaration are two steps: two concurrent creations
	// may both succeed.
	if len(s.Topics([]string{spec.Name})) > 0 {
		return TopicInfo{}, base.Errorf(base.CodeConflict, "Topic '%s' already exists.", spec.Name)
	}
	if err := s.c.DeclareStream(ctx, bspec); err != nil {
		return TopicInfo{}, err
	}
	infos := s.Topics([]string{spec.Name})
	if len(infos) == 0 {
		return TopicInfo{}, base.Errorf(base.CodeNotFound, "kafka: stream %q vanished after its creation", spec.Name)
	}
	return infos[0], nil
}

func (s *brokerSession) DeleteTopic(ctx context.Context, name string) error {
	return s.c.DeleteStream(ctx, name)
}

func (s *brokerSession) AddPartitions(ctx context.Context, name string, total int32, validateOnly bool) error {
	if validateOnly {
		return s.c.ValidateAddPartitions(ctx, name, int(total))
	}
	return s.c.AddPartitions(ctx, name, int(total))
}

func (s *brokerSession) TopicConfig(ctx context.Context, name string) ([]ConfigEntry, error) {
	view := s.bb.B.Topology(s.tenant)
	for _, st := range view.Streams {
		if st.Name != name {
			continue
		}
		set := map[string]string{}
		for _, f := range st.Args {
			if slices.Contains(kafkaConfigs, f.Key) {
				set[f.Key] = f.Value.Text()
			}
		}
		unlimited := func(n int64) string {
			if n <= 0 {
				return "-1"
			}
			return strconv.FormatInt(n, 10)
		}
		effective := map[string]string{
			"cleanup.policy": "delete", "compression.type": "producer", "min.insync.replicas": "1",
			"max.message.bytes": strconv.FormatInt(st.Config.MaxMessageBytes, 10),
			"retention.bytes":   unlimited(st.Config.Partition.RetentionBytes),
			"retention.ms":      unlimited(st.Config.Partition.RetentionMs),
			"segment.bytes":     strconv.FormatInt(st.Config.SegmentBytes, 10),
			"segment.ms":        strconv.FormatInt(st.Config.SegmentMs, 10),
		}
		out := make([]ConfigEntry, 0, len(kafkaConfigs))
		for _, k := range kafkaConfigs {
			if v, ok := set[k]; ok {
				out = append(out, ConfigEntry{Name: k, Value: v})
			} else {
				out = append(out, ConfigEntry{Name: k, Value: effective[k], Default: true})
			}
		}
		return out, nil
	}
	return nil, base.Errorf(base.CodeNotFound, "no stream %s", name)
}

func (s *brokerSession) AlterTopicConfig(ctx context.Context, name string, set map[string]string, validateOnly bool) error {
	if validateOnly {
		return s.c.ValidateAlterStream(ctx, name, set)
	}
	return s.c.AlterStream(ctx, name, set)
}

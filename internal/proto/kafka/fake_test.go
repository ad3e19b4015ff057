package kafka

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ferry-mq/ferry/internal/auth"
	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/proto/kafka/protocol"
	"github.com/ferry-mq/ferry/internal/storage/log/batch"
	"github.com/ferry-mq/ferry/internal/stream"
)

// fakeBackend is the test double of the broker: streams in memory, with
// the real stream.Partition state machine deciding offsets and idempotent
// producers and the real stream.Coordinator running consumer groups, so
// that real clients meet the same answers they will get from the broker.
// It is never shipped; the integration tests on the real broker are in
// broker_test.go.
type fakeBackend struct {
	dir *auth.Directory

	mu       sync.Mutex
	topics   map[string]*fakeTopic // guarded by mu
	seq      int                   // guarded by mu: topic ids
	nextPID  int64                 // guarded by mu
	coord    *stream.Coordinator   // guarded by mu
	reqSeq   uint64                // guarded by mu
	waiters  map[uint64]chan stream.Effect
	offsets  map[string]map[PartitionRef]CommittedOffset // guarded by mu: by group
	changed  chan struct{}                               // guarded by mu: closed at every append
	produced int                                         // guarded by mu: batches appended
	topicsN  int                                         // guarded by mu: Topics calls

	stop chan struct{}
	wg   sync.WaitGroup
}

type fakeTopic struct {
	id      protocol.UUID
	parts   []*fakePartition
	configs map[string]string
}

type fakePartition struct {
	sm      *stream.Partition
	batches [][]byte // stored batches, base offsets stamped
	index   uint64
}

var fakeUsers = []struct {
	name, password string
	perm           auth.Permission
}{
	{"guest", "guest", auth.Permission{Tenant: "/", Configure: ".*", Write: ".*", Read: ".*"}},
	{"alice", "alice-secret", auth.Permission{Tenant: "/", Configure: ".*", Write: ".*", Read: ".*"}},
	{"reader", "reader-secret", auth.Permission{Tenant: "/", Configure: "^$", Write: "^$", Read: ".*"}},
}

// fakeDirectory is built once: argon2id hashing costs tens of
// milliseconds per user.
var fakeDirectory = sync.OnceValue(func() *auth.Directory {
	var users []auth.User
	for i, u := range fakeUsers {
		salt := func(label string) []byte {
			h := sha256.Sum256([]byte(fmt.Sprintf("%s/%d/%s", u.name, i, label)))
			return h[:16]
		}
		creds, err := auth.NewCredentials(u.password, auth.Salts{Argon2: salt("a"), ScramSHA256: salt("s256"), ScramSHA512: salt("s512")})
		if err != nil {
			panic(err)
		}
		users = append(users, auth.User{Name: u.name, Credentials: creds, Permissions: []auth.Permission{u.perm}})
	}
	dir, err := auth.NewDirectory(users, auth.DirectoryOptions{})
	if err != nil {
		panic(err)
	}
	return dir
})

func newFakeBackend(t testing.TB) *fakeBackend {
	b := &fakeBackend{dir: fakeDirectory(), topics: map[string]*fakeTopic{},
		coord:   stream.NewCoordinator(stream.CoordinatorConfig{InitialRebalanceDelayMs: 100}),
		waiters: map[uint64]chan stream.Effect{}, offsets: map[string]map[PartitionRef]CommittedOffset{},
		changed: make(chan struct{}), stop: make(chan struct{}), nextPID: 1000}
	b.wg.Add(1)
	go b.ticker() // owned: stopped and waited for by the cleanup below
	t.Cleanup(func() {
		close(b.stop)
		b.wg.Wait()
	})
	return b
}

// ticker lets time pass in the coordinator (session timeouts, rebalance
// deadlines), as the broker's coordinator leader does.
func (b *fakeBackend) ticker() {
	defer b.wg.Done()
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
			b.mu.Lock()
			b.applyGroupLocked(stream.GroupTick{Now: time.Now().UnixMilli()})
			b.mu.Unlock()
		}
	}
}

func (b *fakeBackend) Directory() *auth.Directory { return b.dir }

func (b *fakeBackend) Open(info ConnInfo, p Principal, kill func(string)) (Session, error) {
	if err := b.dir.AuthorizeTenant(p.User, p.Tenant); err != nil {
		return nil, err
	}
	return &fakeSession{b: b, p: p}, nil
}

// createTopic adds a topic directly (test setup).
func (b *fakeBackend) createTopic(name string, partitions int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.createLocked(name, partitions, nil)
}

func (b *fakeBackend) createLocked(name string, partitions int, configs map[string]string) *fakeTopic {
	b.seq++
	t := &fakeTopic{configs: configs}
	sum := sha256.Sum256([]byte(fmt.Sprintf("%s/%d", name, b.seq)))
	t.id = protocol.UUID(sum[:16])
	for range partitions {
		t.parts = append(t.parts, &fakePartition{sm: stream.NewPartition(stream.PartitionConfig{}, 1), index: 1})
	}
	b.topics[name] = t
	return t
}

type fakeSession struct {
	b *fakeBackend
	p Principal
}

func (s *fakeSession) Authorize(action auth.Action, name string) error {
	return s.b.dir.Authorize(s.p.User, s.p.Tenant, action, auth.ResourceStream, name)
}

func (s *fakeSession) Close(ctx context.Context) error { return nil }

func (s *fakeSession) ClusterID() string                    { return "ferry-test-cluster" }
func (s *fakeSession) Self() int32                          { return 1 }
func (s *fakeSession) Controller() int32                    { return 1 }
func (s *fakeSession) Nodes() []Node                        { return []Node{{ID: 1, Host: "unused", Port: 1}} }
func (s *fakeSession) CoordinatorFor(string) (int32, error) { return 1, nil }

func (s *fakeSession) Topics(names []string) []TopicInfo {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	s.b.topicsN++
	if names == nil {
		names = slices.Sorted(maps.Keys(s.b.topics))
	}
	var out []TopicInfo
	for _, n := range names {
		if t := s.b.topics[n]; t != nil {
			info := TopicInfo{Name: n, ID: t.id}
			for i := range t.parts {
				info.Partitions = append(info.Partitions, PartitionInfo{Index: int32(i), Leader: 1, Replicas: []int32{1}, ISR: []int32{1}})
			}
			out = append(out, info)
		}
	}
	return out
}

func (b *fakeBackend) partLocked(p PartitionRef) (*fakeTopic, *fakePartition, error) {
	t := b.topics[p.Stream]
	if t == nil || p.Partition < 0 || int(p.Partition) >= len(t.parts) {
		return nil, nil, base.Errorf(base.CodeNotFound, "no partition %s/%d", p.Stream, p.Partition)
	}
	return t, t.parts[p.Partition], nil
}

func (s *fakeSession) ProduceBatch(ctx context.Context, p PartitionRef, b []byte, acks int16, done func(ProduceResult)) {
	done(s.b.produce(p, b))
}

func (b *fakeBackend) produce(p PartitionRef, data []byte) ProduceResult {
	b.mu.Lock()
	defer b.mu.Unlock()
	t, fp, err := b.partLocked(p)
	if err != nil {
		return ProduceResult{Err: err}
	}
	maxBytes := int(base.ControllerKafkaMessageBytesDefault)
	if v, ok := t.configs["max.message.bytes"]; ok {
		fmt.Sscan(v, &maxBytes)
	}
	if len(data) > maxBytes {
		return ProduceResult{Err: base.Errorf(base.CodeTooLarge, "batch of %d bytes over max.message.bytes %d", len(data), maxBytes)}
	}
	h, err := batch.ParseHeader(data)
	if err != nil {
		return ProduceResult{Err: err}
	}
	a := stream.Append{Now: time.Now().UnixMilli(), Index: fp.index, LastOffsetDelta: h.LastOffsetDelta, MaxTimestamp: h.MaxTimestamp,
		Bytes: int64(len(data)), ProducerID: h.ProducerID, ProducerEpoch: h.ProducerEpoch, BaseSequence: h.BaseSequence}
	start, _ := fp.sm.LogStart()
	switch chk := fp.sm.Check(a, nil); chk.Status {
	case stream.AppendDuplicate:
		return ProduceResult{BaseOffset: chk.BaseOffset, LogAppendTime: -1, LogStartOffset: start}
	case stream.AppendOutOfOrder:
		return ProduceResult{Err: kafkaErr(protocol.ErrorCodeOutOfOrderSequenceNumber, "")}
	case stream.AppendFenced:
		return ProduceResult{Err: kafkaErr(protocol.ErrorCodeInvalidProducerEpoch, "")}
	case stream.AppendInvalid:
		return ProduceResult{Err: kafkaErr(protocol.ErrorCodeInvalidRecord, "")}
	}
	stored := bytes.Clone(data)
	batch.SetBaseOffset(stored, fp.sm.HighWatermark())
	res := fp.sm.ApplyAppend(a)
	fp.index++
	fp.batches = append(fp.batches, stored)
	b.produced++
	close(b.changed)
	b.changed = make(chan struct{})
	return ProduceResult{BaseOffset: res.BaseOffset, LogAppendTime: -1, LogStartOffset: start}
}

func (s *fakeSession) Fetch(ctx context.Context, p PartitionRef, offset int64, maxBytes int) (FetchResult, error) {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	_, fp, err := s.b.partLocked(p)
	if err != nil {
		return FetchResult{}, err
	}
	start, _ := fp.sm.LogStart()
	res := FetchResult{HighWatermark: fp.sm.HighWatermark(), DataEnd: fp.sm.DataEnd(), LogStartOffset: start}
	if offset < start || offset > res.HighWatermark {
		return res, base.Errorf(base.CodeOutOfRange, "offset %d outside [%d, %d]", offset, start, res.HighWatermark)
	}
	if maxBytes <= 0 {
		return res, nil
	}
	for _, bt := range fp.batches {
		h, _ := batch.ParseHeader(bt)
		if h.LastOffset() < offset {
			continue
		}
		if len(res.Records) > 0 && len(res.Records)+len(bt) > maxBytes {
			break
		}
		res.Records = append(res.Records, bt...)
	}
	return res, nil
}

func (s *fakeSession) WaitForData(ctx context.Context, positions []FetchPosition) error {
	for {
		s.b.mu.Lock()
		for _, pos := range positions {
			_, fp, err := s.b.partLocked(pos.PartitionRef)
			if err != nil || fp.sm.HighWatermark() > pos.Offset {
				s.b.mu.Unlock()
				return nil
			}
		}
		ch := s.b.changed
		s.b.mu.Unlock()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

func (s *fakeSession) ListOffset(ctx context.Context, p PartitionRef, ts int64) (int64, int64, error) {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	_, fp, err := s.b.partLocked(p)
	if err != nil {
		return 0, 0, err
	}
	start, _ := fp.sm.LogStart()
	switch ts {
	case -2:
		return start, -1, nil
	case -1:
		return fp.sm.DataEnd(), -1, nil
	}
	// -3 (max timestamp) and by timestamp: walk the records.
	bestOff, bestTs := int64(-1), int64(-1)
	for _, bt := range fp.batches {
		it, err := batch.Records(bt)
		if err != nil {
			return 0, 0, err
		}
		h, _ := batch.ParseHeader(bt)
		for r, ok := it.Next(); ok; r, ok = it.Next() {
			rts, off := h.BaseTimestamp+r.TimestampDelta, h.BaseOffset+int64(r.OffsetDelta)
			switch {
			case ts == -3 && rts > bestTs:
				bestOff, bestTs = off, rts
			case ts >= 0 && rts >= ts:
				return off, rts, nil
			}
		}
	}
	return bestOff, bestTs, nil
}

func (s *fakeSession) InitProducerID(ctx context.Context, id int64, epoch int16) (int64, int16, error) {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	if id >= 0 {
		return id, epoch + 1, nil
	}
	s.b.nextPID++
	return s.b.nextPID, 0, nil
}

// applyGroupLocked applies a coordinator command and hands the answers to
// the requests waiting for them.
func (b *fakeBackend) applyGroupLocked(cmd stream.GroupCommand) stream.GroupResult {
	res := b.coord.Apply(cmd)
	for _, e := range res.Effects {
		var id uint64
		switch x := e.(type) {
		case stream.JoinResponse:
			id = x.RequestID
		case stream.SyncResponse:
			id = x.RequestID
		default:
			continue
		}
		if ch := b.waiters[id]; ch != nil {
			ch <- e
			delete(b.waiters, id)
		}
	}
	return res
}

func (b *fakeBackend) await(ctx context.Context, cmd func(id uint64) stream.GroupCommand) (stream.Effect, error) {
	ch := make(chan stream.Effect, 1)
	b.mu.Lock()
	b.reqSeq++
	id := b.reqSeq
	b.waiters[id] = ch
	b.applyGroupLocked(cmd(id))
	b.mu.Unlock()
	select {
	case e := <-ch:
		return e, nil
	case <-ctx.Done():
		b.mu.Lock()
		delete(b.waiters, id)
		b.mu.Unlock()
		return nil, ctx.Err()
	}
}

func groupErr(e stream.GroupError) protocol.ErrorCode { return protocol.ErrorCode(e.KafkaCode()) }

func (s *fakeSession) JoinGroup(ctx context.Context, req JoinRequest) (JoinResponse, error) {
	e, err := s.b.await(ctx, func(id uint64) stream.GroupCommand {
		jg := stream.JoinGroup{Now: time.Now().UnixMilli(), RequestID: id, Group: req.Group, MemberID: req.MemberID,
			InstanceID: req.InstanceID, ClientID: req.ClientID, ClientHost: req.ClientHost, ProtocolType: req.ProtocolType,
			SessionMs: int32(req.SessionTimeout.Milliseconds()), RebalanceMs: int32(req.RebalanceTime.Milliseconds()),
			RequireKnownMemberID: req.RequireKnownMemberID, NewMemberID: fmt.Sprintf("%s-%d", req.ClientID, id)}
		for _, p := range req.Protocols {
			jg.Protocols = append(jg.Protocols, stream.Protocol{Name: p.Name, Metadata: p.Metadata})
		}
		return jg
	})
	if err != nil {
		return JoinResponse{}, err
	}
	x := e.(stream.JoinResponse)
	out := JoinResponse{Err: groupErr(x.Err), Generation: x.Generation, ProtocolType: x.ProtocolType, ProtocolName: x.ProtocolName,
		LeaderID: x.LeaderID, MemberID: x.MemberID, SkipAssignment: x.SkipAssignment}
	for _, m := range x.Members {
		out.Members = append(out.Members, JoinMember{MemberID: m.MemberID, InstanceID: m.InstanceID, Metadata: m.Metadata})
	}
	return out, nil
}

func (s *fakeSession) SyncGroup(ctx context.Context, req SyncRequest) (SyncResponse, error) {
	e, err := s.b.await(ctx, func(id uint64) stream.GroupCommand {
		sg := stream.SyncGroup{Now: time.Now().UnixMilli(), RequestID: id, Group: req.Group, MemberID: req.MemberID,
			InstanceID: req.InstanceID, Generation: req.Generation, ProtocolType: req.ProtocolType, ProtocolName: req.ProtocolName}
		for _, a := range req.Assignments {
			sg.Assignments = append(sg.Assignments, stream.MemberAssignment{MemberID: a.MemberID, Assignment: a.Assignment})
		}
		return sg
	})
	if err != nil {
		return SyncResponse{}, err
	}
	x := e.(stream.SyncResponse)
	return SyncResponse{Err: groupErr(x.Err), ProtocolType: x.ProtocolType, ProtocolName: x.ProtocolName, Assignment: x.Assignment}, nil
}

func codeErr(e stream.GroupError) error {
	if e == stream.ErrNone {
		return nil
	}
	return kafkaErr(groupErr(e), "")
}

func (s *fakeSession) Heartbeat(ctx context.Context, group, member, instance string, generation int32) error {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	return codeErr(s.b.applyGroupLocked(stream.Heartbeat{Now: time.Now().UnixMilli(), Group: group, MemberID: member,
		InstanceID: instance, Generation: generation}).Err)
}

func (s *fakeSession) LeaveGroup(ctx context.Context, group string, members []LeavingMember) ([]LeaveResult, error) {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	lg := stream.LeaveGroup{Now: time.Now().UnixMilli(), Group: group}
	for _, m := range members {
		lg.Members = append(lg.Members, stream.LeavingMember{MemberID: m.MemberID, InstanceID: m.InstanceID})
	}
	res := s.b.applyGroupLocked(lg)
	if res.Err != stream.ErrNone {
		return nil, codeErr(res.Err)
	}
	out := make([]LeaveResult, len(res.Leave))
	for i, e := range res.Leave {
		out[i] = LeaveResult{MemberID: res.LeftMemberIDs[i], Err: codeErr(e)}
	}
	return out, nil
}

func (s *fakeSession) CommitOffsets(ctx context.Context, group, member, instance string, generation int32, offsets []OffsetCommit) ([]error, error) {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	if e := s.b.coord.ValidateCommit(group, member, instance, generation); e != stream.ErrNone {
		return nil, codeErr(e)
	}
	m := s.b.offsets[group]
	if m == nil {
		m = map[PartitionRef]CommittedOffset{}
		s.b.offsets[group] = m
	}
	errs := make([]error, len(offsets))
	for _, o := range offsets {
		m[o.PartitionRef] = o.CommittedOffset
	}
	return errs, nil
}

func (s *fakeSession) FetchOffsets(ctx context.Context, group string, parts []PartitionRef) ([]OffsetFetched, error) {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	m := s.b.offsets[group]
	if parts == nil {
		parts = slices.SortedFunc(maps.Keys(m), func(a, b PartitionRef) int {
			if a.Stream != b.Stream {
				return cmpString(a.Stream, b.Stream)
			}
			return int(a.Partition - b.Partition)
		})
	}
	var out []OffsetFetched
	for _, p := range parts {
		o, ok := m[p]
		if !ok {
			o = CommittedOffset{Offset: -1, LeaderEpoch: -1}
		}
		out = append(out, OffsetFetched{PartitionRef: p, CommittedOffset: o})
	}
	return out, nil
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (s *fakeSession) DescribeGroup(ctx context.Context, group string) (GroupDescription, error) {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	d := s.b.coord.Describe(group)
	out := GroupDescription{Group: group, State: d.State.String(), ProtocolType: d.ProtocolType, Protocol: d.Protocol}
	for _, m := range d.Members {
		out.Members = append(out.Members, GroupMember{MemberID: m.MemberID, InstanceID: m.InstanceID, ClientID: m.ClientID,
			ClientHost: m.ClientHost, Metadata: m.Metadata, Assignment: m.Assignment})
	}
	return out, nil
}

func (s *fakeSession) ListGroups(ctx context.Context) ([]GroupListing, error) {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	var out []GroupListing
	for _, g := range s.b.coord.List() {
		out = append(out, GroupListing{Group: g.Group, ProtocolType: g.ProtocolType, State: g.State.String()})
	}
	return out, nil
}

func (s *fakeSession) DeleteGroup(ctx context.Context, group string) error {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	res := s.b.applyGroupLocked(stream.DeleteGroup{Now: time.Now().UnixMilli(), Group: group})
	if res.Err == stream.ErrGroupIDNotFound && s.b.offsets[group] != nil {
		res.Err = stream.ErrNone // a standalone consumer's offsets only
	}
	if res.Err == stream.ErrNone {
		delete(s.b.offsets, group)
	}
	return codeErr(res.Err)
}

func (s *fakeSession) DeleteOffsets(ctx context.Context, group string, parts []PartitionRef) ([]error, error) {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	d := s.b.coord.Describe(group)
	errs := make([]error, len(parts))
	for i, p := range parts {
		if d.State != stream.GroupEmpty && d.State != stream.GroupDead {
			errs[i] = kafkaErr(protocol.ErrorCodeGroupSubscribedToTopic, "")
			continue
		}
		delete(s.b.offsets[group], p)
	}
	return errs, nil
}

// fakeConfigDefaults are the topic configurations the fake reports.
var fakeConfigDefaults = map[string]string{
	"cleanup.policy": "delete", "max.message.bytes": "1048588", "retention.bytes": "-1",
	"retention.ms": "604800000", "segment.bytes": "1073741824",
}

func checkFakeConfigs(cfgs map[string]string) error {
	for k := range cfgs {
		if _, ok := fakeConfigDefaults[k]; !ok {
			return base.Errorf(base.CodeInvalidArgument, "Unknown topic config name: %s", k)
		}
	}
	if v, ok := cfgs["cleanup.policy"]; ok && v != "delete" {
		return base.Errorf(base.CodeNotSupported, "cleanup.policy %s: Ferry streams support only delete", v)
	}
	return nil
}

func (s *fakeSession) CreateTopic(ctx context.Context, spec TopicSpec, validateOnly bool) (TopicInfo, error) {
	if spec.ReplicationFactor > 1 {
		return TopicInfo{}, kafkaErr(protocol.ErrorCodeInvalidReplicationFactor, "one node")
	}
	if err := checkFakeConfigs(spec.Configs); err != nil {
		return TopicInfo{}, err
	}
	n := int(spec.Partitions)
	if n < 0 {
		n = 1
	}
	s.b.mu.Lock()
	if s.b.topics[spec.Name] != nil {
		s.b.mu.Unlock()
		return TopicInfo{}, base.Errorf(base.CodeConflict, "Topic '%s' already exists.", spec.Name)
	}
	if !validateOnly {
		s.b.createLocked(spec.Name, n, maps.Clone(spec.Configs))
	}
	s.b.mu.Unlock()
	if validateOnly {
		info := TopicInfo{Name: spec.Name}
		for i := range n {
			info.Partitions = append(info.Partitions, PartitionInfo{Index: int32(i), Leader: 1, Replicas: []int32{1}})
		}
		return info, nil
	}
	return s.Topics([]string{spec.Name})[0], nil
}

func (s *fakeSession) DeleteTopic(ctx context.Context, name string) error {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	if s.b.topics[name] == nil {
		return base.Errorf(base.CodeNotFound, "no stream %s", name)
	}
	delete(s.b.topics, name)
	return nil
}

func (s *fakeSession) AddPartitions(ctx context.Context, name string, total int32, validateOnly bool) error {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	t := s.b.topics[name]
	if t == nil {
		return base.Errorf(base.CodeNotFound, "no stream %s", name)
	}
	if int(total) <= len(t.parts) {
		return base.Errorf(base.CodeInvalidArgument, "Topic currently has %d partitions, which is higher than the requested %d.", len(t.parts), total)
	}
	for !validateOnly && len(t.parts) < int(total) {
		t.parts = append(t.parts, &fakePartition{sm: stream.NewPartition(stream.PartitionConfig{}, 1), index: 1})
	}
	return nil
}

func (s *fakeSession) TopicConfig(ctx context.Context, name string) ([]ConfigEntry, error) {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	t := s.b.topics[name]
	if t == nil {
		return nil, base.Errorf(base.CodeNotFound, "no stream %s", name)
	}
	var out []ConfigEntry
	for _, k := range slices.Sorted(maps.Keys(fakeConfigDefaults)) {
		if v, ok := t.configs[k]; ok {
			out = append(out, ConfigEntry{Name: k, Value: v})
		} else {
			out = append(out, ConfigEntry{Name: k, Value: fakeConfigDefaults[k], Default: true})
		}
	}
	return out, nil
}

func (s *fakeSession) AlterTopicConfig(ctx context.Context, name string, set map[string]string, validateOnly bool) error {
	if err := checkFakeConfigs(set); err != nil {
		return err
	}
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	t := s.b.topics[name]
	if t == nil {
		return base.Errorf(base.CodeNotFound, "no stream %s", name)
	}
	if !validateOnly {
		t.configs = maps.Clone(set)
	}
	return nil
}

func (b *fakeBackend) topicsCalls() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.topicsN
}

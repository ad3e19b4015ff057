package controller

import (
	"slices"
	"strings"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/routing"
)

// structuralKeys are the stream arguments fixed when the stream is
// created: DeclareStream carries them as fields and AlterStream may not
// change them.
var structuralKeys = []string{"x-queue-type", "x-ferry-partitions", "x-initial-cluster-size"}

func refuseStructural(what string, args []routing.Field) error {
	for _, k := range structuralKeys {
		if _, ok := lookupField(args, k); ok {
			return base.Errorf(base.CodeInvalidArgument, "%s cannot set %s", what, k)
		}
	}
	return nil
}

// checkStreamArgs checks the canonical args of a stream: the x-arguments
// as queue.declare would, the Kafka configurations as Kafka would (strict:
// unknown names refused).
func checkStreamArgs(t *tenant, name string, args []routing.Field, strict bool) error {
	if err := checkDeclareArgs(rs("queue", name, t.name), TypeStream, args); err != nil {
		return err
	}
	return checkKafkaConfigs(name, args, strict)
}

func (c *Controller) declareStream(cmd *DeclareStream, r *Result) error {
	t, err := c.tenantOf(cmd.Tenant)
	if err != nil {
		return err
	}
	if err := checkName("stream", cmd.Name); err != nil {
		return err
	}
	if strings.HasPrefix(cmd.Name, "amq.") {
		return base.Errorf(base.CodeAccessRefused, "stream name '%s' contains reserved prefix 'amq.*'", cmd.Name)
	}
	args, err := canonicalArgs(cmd.Args)
	if err != nil {
		return err
	}
	if err := refuseStructural("DeclareStream's arguments", args); err != nil {
		return err
	}
	if s, ok := t.streams[cmd.Name]; ok {
		info := s.info()
		r.Stream = &info
		return nil
	}
	if _, ok := t.queues[cmd.Name]; ok {
		return base.Errorf(base.CodePreconditionFailed, "%s exists and is a queue, not a stream", rs("queue", cmd.Name, t.name))
	}
	if err := checkStreamArgs(t, cmd.Name, args, true); err != nil {
		return err
	}
	return c.createStream(t, cmd.Name, true, cmd.Partitions, cmd.ReplicationFactor, args, r)
}

// createStream creates a stream from checked args. partitions and rf of 0
// take the arguments' (x-ferry-partitions, x-initial-cluster-size) or the
// defaults; a replication factor above the live nodes is capped for
// queue.declare (RabbitMQ) and refused for Kafka.
func (c *Controller) createStream(t *tenant, name string, fromKafka bool, partitions, rf int, args []routing.Field, r *Result) error {
	if err := c.checkNewDestination(t, "stream", name); err != nil {
		return err
	}
	var s streamSettings
	applyStreamArgs(&s, args)
	if partitions <= 0 {
		partitions = max(s.partitions, 1)
	}
	if partitions > base.ControllerStreamPartitionsMax {
		return base.Errorf(base.CodeInvalidArgument, "%d partitions exceed the limit of %d (ControllerStreamPartitionsMax)",
			partitions, base.ControllerStreamPartitionsMax)
	}
	if rf <= 0 {
		rf = s.rf
	}
	rf, err := c.checkGroups(partitions, rf, !fromKafka)
	if err != nil {
		return err
	}
	added, err := t.routing.AddDestination(routing.Destination{Kind: routing.Stream, Name: name})
	base.Assert(err == nil && added, "adding checked stream %q to the routing table: %v", name, err)
	st := &streamEntity{tenant: t.name, name: name, fromKafka: fromKafka, args: args, createdMs: c.nowMs}
	for range partitions {
		p := c.place(rf)
		st.partitions = append(st.partitions, p)
		r.NewGroups = append(r.NewGroups, p.clone())
	}
	st.cfg, st.policy = effectiveStream(t.policySet, t.name, name, fromKafka, args)
	t.streams[name] = st
	info := st.info()
	r.Created, r.Stream = true, &info
	return nil
}

func (c *Controller) streamOf(t *tenant, name string) (*streamEntity, error) {
	s, ok := t.streams[name]
	if !ok {
		return nil, base.Errorf(base.CodeNotFound, "no %s", rs("stream", name, t.name))
	}
	return s, nil
}

func (c *Controller) addPartitions(cmd *AddPartitions, r *Result) error {
	t, err := c.tenantOf(cmd.Tenant)
	if err != nil {
		return err
	}
	s, err := c.streamOf(t, cmd.Name)
	if err != nil {
		return err
	}
	cur := len(s.partitions)
	switch {
	case cmd.Total < cur:
		return base.Errorf(base.CodeInvalidArgument, "Topic currently has %d partitions, which is higher than the requested %d.", cur, cmd.Total)
	case cmd.Total == cur:
		return base.Errorf(base.CodeInvalidArgument, "Topic already has %d partitions.", cur)
	case cmd.Total > base.ControllerStreamPartitionsMax:
		return base.Errorf(base.CodeInvalidArgument, "%d partitions exceed the limit of %d (ControllerStreamPartitionsMax)",
			cmd.Total, base.ControllerStreamPartitionsMax)
	}
	rf, err := c.checkGroups(cmd.Total-cur, len(s.partitions[0].Replicas), true)
	if err != nil {
		return err
	}
	for range cmd.Total - cur {
		p := c.place(rf)
		s.partitions = append(s.partitions, p)
		r.NewGroups = append(r.NewGroups, p.clone())
	}
	info := s.info()
	r.Stream = &info
	return nil
}

func (c *Controller) alterStream(cmd *AlterStream, r *Result) error {
	t, err := c.tenantOf(cmd.Tenant)
	if err != nil {
		return err
	}
	s, err := c.streamOf(t, cmd.Name)
	if err != nil {
		return err
	}
	args, err := canonicalArgs(cmd.Args)
	if err != nil {
		return err
	}
	if err := refuseStructural("AlterStream", args); err != nil {
		return err
	}
	for _, k := range structuralKeys {
		if v, ok := lookupField(s.args, k); ok {
			args = append(args, routing.Field{Key: k, Value: v})
		}
	}
	if args, err = canonicalArgs(args); err != nil {
		return err
	}
	if err := checkStreamArgs(t, s.name, args, true); err != nil {
		return err
	}
	s.args = args
	cfg, policy := effectiveStream(t.policySet, t.name, s.name, s.fromKafka, args)
	s.policy = policy
	if cfg != s.cfg {
		s.cfg = cfg
		r.Reconfigured = append(r.Reconfigured, reconfiguredStream(s))
	}
	info := s.info()
	r.Stream = &info
	return nil
}

func (c *Controller) deleteStream(cmd *DeleteStream, r *Result) error {
	t, err := c.tenantOf(cmd.Tenant)
	if err != nil {
		return err
	}
	s, err := c.streamOf(t, cmd.Name)
	if err != nil {
		return err
	}
	c.removeStream(t, s, r)
	return nil
}

// removeStream deletes s with its bindings.
func (c *Controller) removeStream(t *tenant, s *streamEntity, r *Result) {
	ch, err := t.routing.RemoveDestination(routing.Destination{Kind: routing.Stream, Name: s.name})
	base.Assert(err == nil && ch.Removed, "removing stream %q from the routing table: %v", s.name, err)
	r.addChange(t.name, ch)
	c.forgetStream(s)
	delete(t.streams, s.name)
	r.Removed = append(r.Removed, removedStream(s))
}

func (c *Controller) forgetStream(s *streamEntity) {
	for _, p := range s.partitions {
		c.dropLoad(p)
	}
}

func removedStream(s *streamEntity) Removed {
	return Removed{EntityRef: EntityRef{s.tenant, routing.Stream, s.name}, Groups: s.groups()}
}

// groups returns the partitions' groups, by partition.
func (s *streamEntity) groups() []GroupID {
	out := make([]GroupID, len(s.partitions))
	for i, p := range s.partitions {
		out[i] = p.Group
	}
	return out
}

func (s *streamEntity) info() StreamInfo {
	parts := make([]Placement, len(s.partitions))
	for i, p := range s.partitions {
		parts[i] = p.clone()
	}
	return StreamInfo{Tenant: s.tenant, Name: s.name, FromKafka: s.fromKafka, Args: slices.Clone(s.args),
		CreatedMs: s.createdMs, Partitions: parts, Config: s.cfg, Policy: s.policy}
}

// Stream returns a stream, and whether it exists.
func (c *Controller) Stream(tenant, name string) (StreamInfo, bool) {
	if t, ok := c.tenants[tenant]; ok {
		if s, ok := t.streams[name]; ok {
			return s.info(), true
		}
	}
	return StreamInfo{}, false
}

// Streams lists the streams of tenant that f selects.
func (c *Controller) Streams(tenant string, f ListFilter) []StreamInfo {
	t, ok := c.tenants[tenant]
	if !ok {
		return nil
	}
	names := filterNames(t.streams, f)
	out := make([]StreamInfo, len(names))
	for i, name := range names {
		out[i] = t.streams[name].info()
	}
	return out
}

// Partition returns the placement of partition p of a stream.
func (c *Controller) Partition(tenant, name string, p int) (Placement, error) {
	t, err := c.tenantOf(tenant)
	if err != nil {
		return Placement{}, err
	}
	s, err := c.streamOf(t, name)
	if err != nil {
		return Placement{}, err
	}
	if p < 0 || p >= len(s.partitions) {
		return Placement{}, base.Errorf(base.CodeOutOfRange, "%s has %d partitions, not %d", rs("stream", name, tenant), len(s.partitions), p+1)
	}
	return s.partitions[p].clone(), nil
}

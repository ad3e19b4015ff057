package broker

import (
	"context"

	"github.com/ferry-mq/ferry/internal/controller"
	"github.com/ferry-mq/ferry/internal/stream"
)

// A consumer group's committed offsets live in the partitions they were
// committed to (a CommitOffset command in the partition's own log), not in
// its coordinator. Deleting them is therefore one DeleteOffsets command
// per partition, proposed to that partition's leader.

// DeleteOffsets deletes a group's committed offsets of parts (Kafka
// OffsetDelete). The result has one entry per partition, in order: nil or
// its error (CodeNotFound for a missing stream or partition,
// CodeAccessRefused without read permission). Deleting an offset the
// group never committed succeeds. The caller decides which partitions may
// lose their offsets: Kafka refuses those of topics a member of the group
// consumes (the front end knows the subscriptions; the coordinator does
// not parse them).
func (c *Conn) DeleteOffsets(ctx context.Context, group string, parts []PartitionRef) []error {
	out := make([]error, len(parts))
	if err := c.usable(); err != nil {
		for i := range out {
			out[i] = err
		}
		return out
	}
	cl := c.b.coordinatorHere(group)
	for i, p := range parts {
		g, _, err := c.partitionOf(p, ActionRead)
		if err == nil {
			_, err = c.b.deletePartitionOffset(ctx, g, group)
		}
		if err == nil && cl != nil {
			cl.marker.forget(group, g) // a later commit there must be marked again
		}
		out[i] = err
	}
	return out
}

// coordinatorHere returns the running leader runtime of group's
// coordinator on this node, or nil.
func (b *Broker) coordinatorHere(group string) *coordinatorLeader {
	p, err := b.coordinatorOf(group)
	if err != nil {
		return nil
	}
	return b.coordinatorLeaderOf(GroupID(p.Group))
}

// deleteGroupOffsets deletes group's committed offsets from every
// partition of every stream of the connection's tenant that holds one
// (DeleteGroups). found reports whether one was known to exist. A
// partition with a replica here is read first (after a ReadIndex, so the
// read sees every commit acknowledged before the call) and skipped when it
// holds no offset of the group, so that a deletion adds no entry to the
// logs of partitions the group never used; a partition without a replica
// here gets the command regardless (it is a no-op there).
func (c *Conn) deleteGroupOffsets(ctx context.Context, group string) (found bool, err error) {
	var streams []controller.StreamInfo
	c.b.ctrl.read(func(ctl *controller.Controller) { streams = ctl.Streams(c.p.Tenant, controller.ListFilter{}) })
	for _, s := range streams {
		for _, pl := range s.Partitions {
			g := GroupID(pl.Group)
			if lg := c.b.group(g); lg != nil {
				if _, err := c.b.engine.ReadIndex(ctx, g); err != nil {
					return found, err
				}
				has := false
				lg.fsm.(*partitionFSM).with(func(p *stream.Partition) { _, has = p.CommittedOffset(group) })
				if !has {
					continue
				}
				found = true
			}
			existed, err := c.b.deletePartitionOffset(ctx, g, group)
			if err != nil {
				return found, err
			}
			found = found || existed
		}
	}
	return found, nil
}

// deletePartitionOffset proposes DeleteOffsets to partition group g's
// leader. existed is whether the group had an offset there, known only
// when this node leads g (false when forwarded).
func (b *Broker) deletePartitionOffset(ctx context.Context, g GroupID, group string) (existed bool, err error) {
	out, err := b.propose(ctx, g, stream.EncodeCommand([]byte{tagPartition}, stream.DeleteOffsets{Group: group}))
	if err != nil {
		return false, err
	}
	if r, ok := out.local.(*partitionCmdResult); ok {
		return r.res.Existed, r.res.Err
	}
	return false, out.err
}

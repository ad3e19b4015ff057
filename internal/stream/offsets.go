package stream

import (
	"slices"

	"github.com/ferry-mq/ferry/internal/base"
)

// groupOffset is a consumer group's committed position on the partition and
// what decides its expiry.
type groupOffset struct {
	offset      int64
	leaderEpoch int32
	metadata    string
	commitMs    int64
	// active is true while the coordinator says the group has members;
	// emptyMs is when it last said the group became empty.
	active  bool
	emptyMs int64
}

// OffsetInfo is a committed offset as OffsetFetch answers it.
type OffsetInfo struct {
	Offset      int64
	LeaderEpoch int32
	Metadata    string
	CommitMs    int64
}

func validGroupID(g string) error {
	if g == "" {
		return errf(base.CodeInvalidArgument, "empty group id")
	}
	if len(g) > base.GroupIDBytesMax {
		return errf(base.CodeInvalidArgument, "group id of %d bytes is over the limit of %d", len(g), base.GroupIDBytesMax)
	}
	return nil
}

func (p *Partition) applyCommit(c CommitOffset) error {
	if err := validGroupID(c.Group); err != nil {
		return err
	}
	if len(c.Metadata) > base.StreamOffsetMetadataBytesMax {
		return errf(base.CodeTooLarge, "offset metadata of %d bytes is over the limit of %d",
			len(c.Metadata), base.StreamOffsetMetadataBytesMax)
	}
	g := p.groups[c.Group]
	if g == nil {
		if len(p.groups) >= base.StreamCommittedGroupsMax {
			return errf(base.CodeOverloaded, "partition holds offsets of %d groups, the most it may", len(p.groups))
		}
		g = &groupOffset{}
		p.groups[c.Group] = g
	}
	g.offset, g.leaderEpoch, g.metadata, g.commitMs = c.Offset, c.LeaderEpoch, c.Metadata, c.Now
	return nil
}

func (p *Partition) applyMarkGroup(c MarkGroup) {
	g := p.groups[c.Group]
	if g == nil {
		return
	}
	g.active = !c.Empty
	if c.Empty {
		g.emptyMs = c.Now
	}
}

// expireGroups removes the offsets of groups without members whose last
// commit and emptying are both OffsetsRetentionMs old, as Kafka 2.1+ does:
// a group with members never loses offsets; a standalone consumer's expire
// after its last commit.
func (p *Partition) expireGroups(now int64) []string {
	ret := p.cfg.offsetsRetentionMs()
	if ret < 0 {
		return nil
	}
	var expired []string
	for name, g := range p.groups {
		if g.expired(now, ret) {
			expired = append(expired, name)
		}
	}
	slices.Sort(expired)
	for _, name := range expired {
		delete(p.groups, name)
	}
	return expired
}

// expired reports whether the group's offsets expire at now with
// retention ret (negative: never).
func (g *groupOffset) expired(now, ret int64) bool {
	return ret >= 0 && !g.active && now-max(g.commitMs, g.emptyMs) >= ret
}

// CommittedOffset returns group's committed offset on the partition.
func (p *Partition) CommittedOffset(group string) (OffsetInfo, bool) {
	g := p.groups[group]
	if g == nil {
		return OffsetInfo{}, false
	}
	return OffsetInfo{Offset: g.offset, LeaderEpoch: g.leaderEpoch, Metadata: g.metadata, CommitMs: g.commitMs}, true
}

// Groups returns, sorted, the groups with a committed offset. The slice is
// the caller's.
func (p *Partition) Groups() []string {
	out := make([]string, 0, len(p.groups))
	for g := range p.groups {
		out = append(out, g)
	}
	slices.Sort(out)
	return out
}

package kafka

import (
	"context"

	"github.com/ferry-mq/ferry/internal/auth"
	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/proto/kafka/protocol"
)

// ListOffsets timestamps beyond Kafka's -1 (latest) and -2 (earliest).
const (
	listMaxTimestamp  = -3 // the record with the largest timestamp (v7+)
	listEarliestLocal = -4 // earliest offset on local storage (v8+): all of it, in Ferry
	listLatestTiered  = -5 // latest offset in tiered storage (v9+): none, in Ferry
	listLatest        = -1
	listEarliest      = -2
)

func handleListOffsets(c *conn, r *request) error {
	var req protocol.ListOffsetsRequest
	if err := req.Decode(r.body, r.hdr.APIVersion); err != nil {
		return err
	}
	v := r.hdr.APIVersion
	ctx, cancel := context.WithTimeout(c.ctx, base.KafkaAdminTimeoutMax)
	defer cancel()
	var resp protocol.ListOffsetsResponse
	resp.Default()
	for _, t := range req.Topics {
		tr := protocol.ListOffsetsResponseListOffsetsTopicResponse{Name: t.Name}
		denied := c.sess.Authorize(auth.ActionRead, t.Name)
		for _, p := range t.Partitions {
			var pr protocol.ListOffsetsResponseListOffsetsPartitionResponse
			pr.Default()
			pr.PartitionIndex = p.PartitionIndex
			offset, ts, err := int64(-1), int64(-1), denied
			if err == nil {
				offset, ts, err = c.listOffset(ctx, PartitionRef{t.Name, p.PartitionIndex}, p.Timestamp)
			}
			pr.ErrorCode = int16(errorCode(err, scopeData))
			if err == nil {
				pr.Offset, pr.Timestamp = offset, ts
			}
			if v < 4 {
				pr.LeaderEpoch = -1
			}
			tr.Partitions = append(tr.Partitions, pr)
		}
		resp.Topics = append(resp.Topics, tr)
	}
	c.respond(r, &resp)
	return nil
}

func (c *conn) listOffset(ctx context.Context, p PartitionRef, ts int64) (int64, int64, error) {
	switch {
	case ts == listEarliestLocal:
		ts = listEarliest
	case ts == listLatestTiered:
		return -1, -1, nil
	case ts < listLatestTiered:
		return 0, 0, base.Errorf(base.CodeInvalidArgument, "kafka: ListOffsets timestamp %d", ts)
	}
	return c.sess.ListOffset(ctx, p, ts)
}

// commitTopicCheck returns, per topic of an offset request, the error all
// its partitions get before the backend is asked: not readable, unknown,
// or (for partitions) out of range, found in one Topics call.
type topicChecker struct {
	c      *conn
	topics map[string]TopicInfo
	denied map[string]error
}

func (c *conn) newTopicChecker(names []string) *topicChecker {
	tc := &topicChecker{c: c, topics: map[string]TopicInfo{}, denied: map[string]error{}}
	for _, t := range c.sess.Topics(names) {
		tc.topics[t.Name] = t
	}
	return tc
}

func (tc *topicChecker) check(topic string, partition int32) error {
	err, seen := tc.denied[topic]
	if !seen {
		err = tc.c.sess.Authorize(auth.ActionRead, topic)
		tc.denied[topic] = err
	}
	if err != nil {
		return err
	}
	t, ok := tc.topics[topic]
	if !ok || partition < 0 || int(partition) >= len(t.Partitions) {
		return kafkaErr(protocol.ErrorCodeUnknownTopicOrPartition, "")
	}
	return nil
}

func handleOffsetCommit(c *conn, r *request) error {
	var req protocol.OffsetCommitRequest
	if err := req.Decode(r.body, r.hdr.APIVersion); err != nil {
		return err
	}
	var resp protocol.OffsetCommitResponse
	resp.Default()
	names := make([]string, 0, len(req.Topics))
	for _, t := range req.Topics {
		names = append(names, t.Name)
	}
	tc := c.newTopicChecker(names)
	var offsets []OffsetCommit
	codes := make([][]protocol.ErrorCode, len(req.Topics))
	for ti, t := range req.Topics {
		codes[ti] = make([]protocol.ErrorCode, len(t.Partitions))
		for pi, p := range t.Partitions {
			err := tc.check(t.Name, p.PartitionIndex)
			meta := derefString(p.CommittedMetadata)
			if err == nil && len(meta) > base.StreamOffsetMetadataBytesMax {
				err = kafkaErr(protocol.ErrorCodeOffsetMetadataTooLarge, "")
			}
			if err != nil {
				codes[ti][pi] = errorCode(err, scopeData)
				continue
			}
			offsets = append(offsets, OffsetCommit{PartitionRef{t.Name, p.PartitionIndex},
				CommittedOffset{Offset: p.CommittedOffset, LeaderEpoch: p.CommittedLeaderEpoch, Metadata: meta}})
		}
	}
	if len(offsets) > 0 {
		ctx, cancel := context.WithTimeout(c.ctx, base.KafkaAdminTimeoutMax)
		errs, err := c.sess.CommitOffsets(ctx, req.GroupId, req.MemberId, derefString(req.GroupInstanceId), req.GenerationIdOrMemberEpoch, offsets)
		cancel()
		k := 0
		for ti, t := range req.Topics {
			for pi := range t.Partitions {
				if codes[ti][pi] != protocol.ErrorCodeNone {
					continue
				}
				switch {
				case err != nil:
					codes[ti][pi] = errorCode(err, scopeGroup)
				case k < len(errs):
					codes[ti][pi] = errorCode(errs[k], scopeGroup)
				}
				k++
			}
		}
	}
	for ti, t := range req.Topics {
		tr := protocol.OffsetCommitResponseOffsetCommitResponseTopic{Name: t.Name}
		for pi, p := range t.Partitions {
			tr.Partitions = append(tr.Partitions, protocol.OffsetCommitResponseOffsetCommitResponsePartition{
				PartitionIndex: p.PartitionIndex, ErrorCode: int16(codes[ti][pi])})
		}
		resp.Topics = append(resp.Topics, tr)
	}
	c.respond(r, &resp)
	return nil
}

func derefString(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// fetchedGroup is one group's answer to OffsetFetch, by topic in request
// order (or in the backend's order when all were asked for).
type fetchedGroup struct {
	code   protocol.ErrorCode
	topics []fetchedTopic
}

type fetchedTopic struct {
	name  string
	parts []OffsetFetched
}

// offsetFetch answers one group: topics nil means every partition the
// group has committed.
func (c *conn) offsetFetch(ctx context.Context, group string, topics map[string][]int32, order []string) fetchedGroup {
	var parts []PartitionRef
	if topics != nil {
		parts = []PartitionRef{}
		for _, name := range order {
			for _, p := range topics[name] {
				parts = append(parts, PartitionRef{name, p})
			}
		}
	}
	got, err := c.sess.FetchOffsets(ctx, group, parts)
	if err != nil {
		return fetchedGroup{code: errorCode(err, scopeGroup)}
	}
	var out fetchedGroup
	index := map[string]int{}
	for _, f := range got {
		if f.Err == nil {
			if derr := c.sess.Authorize(auth.ActionRead, f.Stream); derr != nil {
				if topics == nil {
					continue // not listed: the user may not see it
				}
				f.Err = derr
			}
		}
		i, ok := index[f.Stream]
		if !ok {
			i = len(out.topics)
			index[f.Stream] = i
			out.topics = append(out.topics, fetchedTopic{name: f.Stream})
		}
		out.topics[i].parts = append(out.topics[i].parts, f)
	}
	return out
}

func handleOffsetFetch(c *conn, r *request) error {
	var req protocol.OffsetFetchRequest
	if err := req.Decode(r.body, r.hdr.APIVersion); err != nil {
		return err
	}
	v := r.hdr.APIVersion
	ctx, cancel := context.WithTimeout(c.ctx, base.KafkaAdminTimeoutMax)
	defer cancel()
	var resp protocol.OffsetFetchResponse
	resp.Default()
	if v < 8 {
		var topics map[string][]int32
		var order []string
		if req.Topics != nil {
			topics = map[string][]int32{}
			for _, t := range req.Topics {
				order = append(order, t.Name)
				topics[t.Name] = append(topics[t.Name], t.PartitionIndexes...)
			}
		}
		g := c.offsetFetch(ctx, req.GroupId, topics, order)
		if v >= 2 {
			resp.ErrorCode = int16(g.code)
		}
		for _, t := range g.topics {
			rt := protocol.OffsetFetchResponseOffsetFetchResponseTopic{Name: t.name}
			for _, p := range t.parts {
				var rp protocol.OffsetFetchResponseOffsetFetchResponsePartition
				rp.Default()
				rp.PartitionIndex, rp.CommittedOffset, rp.ErrorCode = p.Partition, p.Offset, int16(errorCode(p.Err, scopeData))
				if v >= 5 {
					rp.CommittedLeaderEpoch = p.LeaderEpoch
				}
				rp.Metadata = &p.Metadata
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		c.respond(r, &resp)
		return nil
	}
	for _, rg := range req.Groups {
		var topics map[string][]int32
		var order []string
		if rg.Topics != nil {
			topics = map[string][]int32{}
			for _, t := range rg.Topics {
				order = append(order, t.Name)
				topics[t.Name] = append(topics[t.Name], t.PartitionIndexes...)
			}
		}
		g := c.offsetFetch(ctx, rg.GroupId, topics, order)
		out := protocol.OffsetFetchResponseOffsetFetchResponseGroup{GroupId: rg.GroupId, ErrorCode: int16(g.code)}
		for _, t := range g.topics {
			rt := protocol.OffsetFetchResponseOffsetFetchResponseTopics{Name: t.name}
			for _, p := range t.parts {
				var rp protocol.OffsetFetchResponseOffsetFetchResponsePartitions
				rp.Default()
				rp.PartitionIndex, rp.CommittedOffset, rp.ErrorCode = p.Partition, p.Offset, int16(errorCode(p.Err, scopeData))
				rp.CommittedLeaderEpoch = p.LeaderEpoch
				rp.Metadata = &p.Metadata
				rt.Partitions = append(rt.Partitions, rp)
			}
			out.Topics = append(out.Topics, rt)
		}
		resp.Groups = append(resp.Groups, out)
	}
	c.respond(r, &resp)
	return nil
}

func handleOffsetDelete(c *conn, r *request) error {
	var req protocol.OffsetDeleteRequest
	if err := req.Decode(r.body, r.hdr.APIVersion); err != nil {
		return err
	}
	var resp protocol.OffsetDeleteResponse
	resp.Default()
	names := make([]string, 0, len(req.Topics))
	for _, t := range req.Topics {
		names = append(names, t.Name)
	}
	tc := c.newTopicChecker(names)
	var parts []PartitionRef
	codes := make([][]protocol.ErrorCode, len(req.Topics))
	for ti, t := range req.Topics {
		codes[ti] = make([]protocol.ErrorCode, len(t.Partitions))
		for pi, p := range t.Partitions {
			if err := tc.check(t.Name, p.PartitionIndex); err != nil {
				codes[ti][pi] = errorCode(err, scopeData)
				continue
			}
			parts = append(parts, PartitionRef{t.Name, p.PartitionIndex})
		}
	}
	ctx, cancel := context.WithTimeout(c.ctx, base.KafkaAdminTimeoutMax)
	errs, err := c.sess.DeleteOffsets(ctx, req.GroupId, parts)
	cancel()
	if err != nil {
		resp.ErrorCode = int16(errorCode(err, scopeGroup))
		c.respond(r, &resp)
		return nil
	}
	k := 0
	for ti, t := range req.Topics {
		rt := protocol.OffsetDeleteResponseOffsetDeleteResponseTopic{Name: t.Name}
		for pi, p := range t.Partitions {
			code := codes[ti][pi]
			if code == protocol.ErrorCodeNone {
				if k < len(errs) {
					code = errorCode(errs[k], scopeGroup)
				}
				k++
			}
			rt.Partitions = append(rt.Partitions, protocol.OffsetDeleteResponseOffsetDeleteResponsePartition{
				PartitionIndex: p.PartitionIndex, ErrorCode: int16(code)})
		}
		resp.Topics = append(resp.Topics, rt)
	}
	c.respond(r, &resp)
	return nil
}

package kafka

import (
	"context"

	"github.com/ferry-mq/ferry/internal/auth"
	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/proto/kafka/protocol"
)

// nodes returns the cluster's nodes with this node's advertised address in
// place of the one the backend knows.
func (c *conn) nodes() []Node {
	nodes := c.sess.Nodes()
	self := c.sess.Self()
	host, port := c.srv.advertised()
	found := false
	for i := range nodes {
		if nodes[i].ID == self {
			nodes[i].Host, nodes[i].Port, found = host, port, true
		}
	}
	if !found {
		nodes = append(nodes, Node{ID: self, Host: host, Port: port})
	}
	return nodes
}

func nodeByID(nodes []Node, id int32) (Node, bool) {
	for _, n := range nodes {
		if n.ID == id {
			return n, true
		}
	}
	return Node{}, false
}

func optString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func handleMetadata(c *conn, r *request) error {
	var req protocol.MetadataRequest
	if err := req.Decode(r.body, r.hdr.APIVersion); err != nil {
		return err
	}
	v := r.hdr.APIVersion
	var resp protocol.MetadataResponse
	resp.Default()
	for _, n := range c.nodes() {
		b := protocol.MetadataResponseMetadataResponseBroker{NodeId: n.ID, Host: n.Host, Port: n.Port}
		if v >= 1 {
			b.Rack = optString(n.Rack)
		}
		resp.Brokers = append(resp.Brokers, b)
	}
	if v >= 2 {
		id := c.sess.ClusterID()
		resp.ClusterId = &id
	}
	if v >= 1 {
		resp.ControllerId = c.sess.Controller()
	}
	// v0 asks for every topic with an empty list; v1+ with null.
	all := req.Topics == nil || (v == 0 && len(req.Topics) == 0)
	autoCreate := c.srv.cfg.AutoCreateTopics && (v < 4 || req.AllowAutoTopicCreation)
	if all {
		for _, t := range c.sess.Topics(nil) {
			resp.Topics = append(resp.Topics, metadataTopic(v, t, protocol.ErrorCodeNone))
		}
	} else {
		resp.Topics = c.metadataTopics(r, req.Topics, autoCreate)
	}
	c.respond(r, &resp)
	return nil
}

// metadataTopics answers the named topics in request order, creating the
// missing ones when autoCreate allows.
func (c *conn) metadataTopics(r *request, reqs []protocol.MetadataRequestMetadataRequestTopic, autoCreate bool) []protocol.MetadataResponseMetadataResponseTopic {
	v := r.hdr.APIVersion
	names := make([]string, 0, len(reqs))
	for _, t := range reqs {
		if t.Name != nil {
			names = append(names, *t.Name)
		}
	}
	known := map[string]TopicInfo{}
	for _, t := range c.sess.Topics(names) {
		known[t.Name] = t
	}
	out := make([]protocol.MetadataResponseMetadataResponseTopic, 0, len(reqs))
	for _, t := range reqs {
		if t.Name == nil {
			// Lookup by topic id alone, which Kafka does not serve either.
			mt := metadataTopic(v, TopicInfo{ID: t.TopicId}, protocol.ErrorCodeUnknownTopicId)
			mt.Name = nil
			out = append(out, mt)
			continue
		}
		name := *t.Name
		if info, ok := known[name]; ok {
			out = append(out, metadataTopic(v, info, protocol.ErrorCodeNone))
			continue
		}
		code := protocol.ErrorCodeUnknownTopicOrPartition
		var info TopicInfo
		switch {
		case !validTopicName(name):
			code = protocol.ErrorCodeInvalidTopicException
		case autoCreate:
			info, code = c.autoCreate(name)
		}
		info.Name = name
		out = append(out, metadataTopic(v, info, code))
	}
	return out
}

// autoCreate creates a topic named by a Metadata request. A new topic whose
// partitions have no leader yet is reported LEADER_NOT_AVAILABLE, which
// clients retry, as Kafka does for a topic it just created.
func (c *conn) autoCreate(name string) (TopicInfo, protocol.ErrorCode) {
	if err := c.sess.Authorize(auth.ActionConfigure, name); err != nil {
		return TopicInfo{}, protocol.ErrorCodeTopicAuthorizationFailed
	}
	ctx, cancel := context.WithTimeout(c.ctx, base.KafkaAdminTimeoutMax)
	defer cancel()
	info, err := c.sess.CreateTopic(ctx, TopicSpec{Name: name, Partitions: -1, ReplicationFactor: -1}, false)
	if err != nil && base.CodeOf(err) != base.CodeConflict && base.CodeOf(err) != base.CodePreconditionFailed {
		c.log.Info("auto-creating a topic failed", "topic", name, "err", err)
		return TopicInfo{}, protocol.ErrorCodeLeaderNotAvailable
	}
	if err != nil {
		infos := c.sess.Topics([]string{name})
		if len(infos) == 0 {
			return TopicInfo{}, protocol.ErrorCodeLeaderNotAvailable
		}
		info = infos[0]
	}
	for _, p := range info.Partitions {
		if p.Leader < 0 {
			return TopicInfo{Name: name, ID: info.ID}, protocol.ErrorCodeLeaderNotAvailable
		}
	}
	return info, protocol.ErrorCodeNone
}

func metadataTopic(v int16, t TopicInfo, code protocol.ErrorCode) protocol.MetadataResponseMetadataResponseTopic {
	var mt protocol.MetadataResponseMetadataResponseTopic
	mt.Default()
	mt.ErrorCode = int16(code)
	name := t.Name
	mt.Name = &name
	if v >= 10 {
		mt.TopicId = t.ID
	}
	mt.Partitions = make([]protocol.MetadataResponseMetadataResponsePartition, 0, len(t.Partitions))
	for _, p := range t.Partitions {
		var mp protocol.MetadataResponseMetadataResponsePartition
		mp.Default()
		mp.PartitionIndex = p.Index
		mp.LeaderId = p.Leader
		if p.Leader < 0 {
			mp.ErrorCode = int16(protocol.ErrorCodeLeaderNotAvailable)
		}
		mp.ReplicaNodes = nonNil(p.Replicas)
		mp.IsrNodes = nonNil(p.ISR)
		if v >= 5 {
			mp.OfflineReplicas = offline(p)
		}
		mt.Partitions = append(mt.Partitions, mp)
	}
	return mt
}

// offline returns the replicas not in the ISR.
func offline(p PartitionInfo) []int32 {
	out := []int32{}
	for _, r := range p.Replicas {
		in := false
		for _, i := range p.ISR {
			in = in || i == r
		}
		if !in {
			out = append(out, r)
		}
	}
	return out
}

func nonNil(s []int32) []int32 {
	if s == nil {
		return []int32{}
	}
	return s
}

// validTopicName is Kafka's rule: 1 to 249 characters of [a-zA-Z0-9._-],
// not "." or "..".
func validTopicName(name string) bool {
	if name == "" || name == "." || name == ".." || len(name) > 249 {
		return false
	}
	for i := 0; i < len(name); i++ {
		ch := name[i]
		if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '.' || ch == '_' || ch == '-') {
			return false
		}
	}
	return true
}

func handleDescribeCluster(c *conn, r *request) error {
	var req protocol.DescribeClusterRequest
	if err := req.Decode(r.body, r.hdr.APIVersion); err != nil {
		return err
	}
	var resp protocol.DescribeClusterResponse
	resp.Default()
	if r.hdr.APIVersion >= 1 {
		resp.EndpointType = req.EndpointType
	}
	if r.hdr.APIVersion >= 1 && req.EndpointType != 1 {
		// Ferry has no separate controller endpoints (KIP-919).
		resp.ErrorCode = int16(protocol.ErrorCodeUnsupportedEndpointType)
		c.respond(r, &resp)
		return nil
	}
	resp.ClusterId = c.sess.ClusterID()
	resp.ControllerId = c.sess.Controller()
	for _, n := range c.nodes() {
		resp.Brokers = append(resp.Brokers, protocol.DescribeClusterResponseDescribeClusterBroker{
			BrokerId: n.ID, Host: n.Host, Port: n.Port, Rack: optString(n.Rack)})
	}
	c.respond(r, &resp)
	return nil
}

func handleFindCoordinator(c *conn, r *request) error {
	var req protocol.FindCoordinatorRequest
	if err := req.Decode(r.body, r.hdr.APIVersion); err != nil {
		return err
	}
	v := r.hdr.APIVersion
	var resp protocol.FindCoordinatorResponse
	resp.Default()
	nodes := c.nodes()
	if v < 4 {
		n, code, msg := c.coordinator(req.Key, req.KeyType, nodes)
		resp.ErrorCode, resp.NodeId, resp.Host, resp.Port = int16(code), n.ID, n.Host, n.Port
		if v >= 1 {
			resp.ErrorMessage = msg
		}
		c.respond(r, &resp)
		return nil
	}
	for _, key := range req.CoordinatorKeys {
		n, code, msg := c.coordinator(key, req.KeyType, nodes)
		resp.Coordinators = append(resp.Coordinators, protocol.FindCoordinatorResponseCoordinator{
			Key: key, NodeId: n.ID, Host: n.Host, Port: n.Port, ErrorCode: int16(code), ErrorMessage: msg})
	}
	c.respond(r, &resp)
	return nil
}

// coordinator finds the node coordinating a key: only consumer groups
// (key type 0) have one in Ferry.
func (c *conn) coordinator(key string, keyType int8, nodes []Node) (Node, protocol.ErrorCode, *string) {
	none := Node{ID: -1, Host: "", Port: -1}
	if keyType != 0 {
		msg := "Ferry coordinates consumer groups only: transactions and share groups are not supported"
		return none, protocol.ErrorCodeInvalidRequest, &msg
	}
	id, err := c.sess.CoordinatorFor(key)
	if err != nil {
		return none, errorCode(err, scopeGroup), errorMessage(err)
	}
	n, ok := nodeByID(nodes, id)
	if !ok {
		msg := "the coordinator's node has no Kafka address"
		return none, protocol.ErrorCodeCoordinatorNotAvailable, &msg
	}
	return n, protocol.ErrorCodeNone, nil
}

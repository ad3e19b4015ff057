package kafka

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/proto/kafka/protocol"
)

// groupCode maps a group call's failure: a context that ended (the
// connection closing, or the coordinator not answering in time) is
// COORDINATOR_NOT_AVAILABLE, which makes the client find the coordinator
// again and retry, rather than REQUEST_TIMED_OUT.
func groupCode(err error) protocol.ErrorCode {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return protocol.ErrorCodeCoordinatorNotAvailable
	}
	return errorCode(err, scopeGroup)
}

// clientHost is the member's host as Kafka reports it: "/" and the IP.
func (c *conn) clientHost() string {
	if !c.peer.IsValid() {
		return ""
	}
	return "/" + c.peer.Addr().Unmap().String()
}

// groupWait bounds a JoinGroup or SyncGroup that waits for a rebalance:
// the coordinator answers within the rebalance timeout, this is a
// backstop for a coordinator that cannot (its node is partitioned away).
func groupWait(rebalance time.Duration) time.Duration {
	return min(rebalance, base.GroupSessionTimeoutMax) + base.KafkaAdminTimeoutMax
}

func handleJoinGroup(c *conn, r *request) error {
	req := new(protocol.JoinGroupRequest)
	if err := req.Decode(r.body, r.hdr.APIVersion); err != nil {
		return err
	}
	v := r.hdr.APIVersion
	jr := JoinRequest{Group: req.GroupId, MemberID: req.MemberId, InstanceID: derefString(req.GroupInstanceId),
		ClientID: c.clientID, ClientHost: c.clientHost(), ProtocolType: req.ProtocolType,
		SessionTimeout:       time.Duration(req.SessionTimeoutMs) * time.Millisecond,
		RebalanceTime:        time.Duration(req.RebalanceTimeoutMs) * time.Millisecond,
		RequireKnownMemberID: v >= 4}
	if v == 0 {
		jr.RebalanceTime = jr.SessionTimeout
	}
	for _, p := range req.Protocols {
		jr.Protocols = append(jr.Protocols, GroupProtocol{Name: p.Name, Metadata: p.Metadata})
	}
	c.delay(func() {
		ctx, cancel := context.WithTimeout(c.ctx, groupWait(jr.RebalanceTime))
		defer cancel()
		res, err := c.sess.JoinGroup(ctx, jr)
		var resp protocol.JoinGroupResponse
		resp.Default()
		if err != nil {
			resp.ErrorCode = int16(groupCode(err))
			resp.MemberId = req.MemberId
			if v < 7 {
				resp.ProtocolName = new(string)
			}
			c.respond(r, &resp)
			return
		}
		resp.ErrorCode = int16(res.Err)
		resp.GenerationId, resp.Leader, resp.MemberId = res.Generation, res.LeaderID, res.MemberID
		resp.ProtocolName = &res.ProtocolName
		if v >= 7 {
			resp.ProtocolType = &res.ProtocolType
			if res.ProtocolName == "" {
				resp.ProtocolName, resp.ProtocolType = nil, nil
			}
		}
		if v >= 9 {
			resp.SkipAssignment = res.SkipAssignment
		}
		for _, m := range res.Members {
			jm := protocol.JoinGroupResponseJoinGroupResponseMember{MemberId: m.MemberID, Metadata: m.Metadata}
			if v >= 5 {
				jm.GroupInstanceId = optString(m.InstanceID)
			}
			resp.Members = append(resp.Members, jm)
		}
		if resp.Members == nil {
			resp.Members = []protocol.JoinGroupResponseJoinGroupResponseMember{}
		}
		c.respond(r, &resp)
	})
	return nil
}

func handleSyncGroup(c *conn, r *request) error {
	req := new(protocol.SyncGroupRequest)
	if err := req.Decode(r.body, r.hdr.APIVersion); err != nil {
		return err
	}
	v := r.hdr.APIVersion
	sr := SyncRequest{Group: req.GroupId, MemberID: req.MemberId, InstanceID: derefString(req.GroupInstanceId),
		Generation: req.GenerationId, ProtocolType: derefString(req.ProtocolType), ProtocolName: derefString(req.ProtocolName)}
	for _, a := range req.Assignments {
		sr.Assignments = append(sr.Assignments, MemberAssignment{MemberID: a.MemberId, Assignment: a.Assignment})
	}
	c.delay(func() {
		ctx, cancel := context.WithTimeout(c.ctx, groupWait(base.GroupSessionTimeoutMax))
		defer cancel()
		res, err := c.sess.SyncGroup(ctx, sr)
		var resp protocol.SyncGroupResponse
		resp.Default()
		resp.Assignment = []byte{}
		if err != nil {
			resp.ErrorCode = int16(groupCode(err))
			c.respond(r, &resp)
			return
		}
		resp.ErrorCode = int16(res.Err)
		if res.Assignment != nil {
			resp.Assignment = res.Assignment
		}
		if v >= 5 && res.Err == protocol.ErrorCodeNone {
			resp.ProtocolType, resp.ProtocolName = &res.ProtocolType, &res.ProtocolName
		}
		c.respond(r, &resp)
	})
	return nil
}

func handleHeartbeat(c *conn, r *request) error {
	var req protocol.HeartbeatRequest
	if err := req.Decode(r.body, r.hdr.APIVersion); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.ctx, base.KafkaAdminTimeoutMax)
	defer cancel()
	err := c.sess.Heartbeat(ctx, req.GroupId, req.MemberId, derefString(req.GroupInstanceId), req.GenerationId)
	var resp protocol.HeartbeatResponse
	resp.Default()
	resp.ErrorCode = int16(groupCode(err))
	c.respond(r, &resp)
	return nil
}

func handleLeaveGroup(c *conn, r *request) error {
	var req protocol.LeaveGroupRequest
	if err := req.Decode(r.body, r.hdr.APIVersion); err != nil {
		return err
	}
	v := r.hdr.APIVersion
	members := []LeavingMember{{MemberID: req.MemberId}}
	if v >= 3 {
		members = members[:0]
		for _, m := range req.Members {
			members = append(members, LeavingMember{MemberID: m.MemberId, InstanceID: derefString(m.GroupInstanceId)})
		}
	}
	ctx, cancel := context.WithTimeout(c.ctx, base.KafkaAdminTimeoutMax)
	defer cancel()
	left, err := c.sess.LeaveGroup(ctx, req.GroupId, members)
	var resp protocol.LeaveGroupResponse
	resp.Default()
	resp.ErrorCode = int16(groupCode(err))
	if v < 3 && err == nil && len(left) == 1 {
		resp.ErrorCode = int16(groupCode(left[0].Err))
	}
	if v >= 3 && err == nil {
		resp.Members = make([]protocol.LeaveGroupResponseMemberResponse, len(members))
		for i, m := range members {
			rm := &resp.Members[i]
			rm.MemberId, rm.GroupInstanceId = m.MemberID, optString(m.InstanceID)
			if i < len(left) {
				rm.ErrorCode = int16(groupCode(left[i].Err))
				if rm.MemberId == "" {
					rm.MemberId = left[i].MemberID // Kafka names the static member removed
				}
			}
		}
	}
	c.respond(r, &resp)
	return nil
}

func handleDescribeGroups(c *conn, r *request) error {
	var req protocol.DescribeGroupsRequest
	if err := req.Decode(r.body, r.hdr.APIVersion); err != nil {
		return err
	}
	v := r.hdr.APIVersion
	ctx, cancel := context.WithTimeout(c.ctx, base.KafkaAdminTimeoutMax)
	defer cancel()
	var resp protocol.DescribeGroupsResponse
	resp.Default()
	for _, g := range req.Groups {
		var dg protocol.DescribeGroupsResponseDescribedGroup
		dg.Default()
		dg.GroupId = g
		d, err := c.sess.DescribeGroup(ctx, g)
		if err != nil {
			dg.ErrorCode = int16(groupCode(err))
			dg.GroupState = "Dead"
		} else {
			dg.GroupState, dg.ProtocolType, dg.ProtocolData = d.State, d.ProtocolType, d.Protocol
			for _, m := range d.Members {
				dm := protocol.DescribeGroupsResponseDescribedGroupMember{MemberId: m.MemberID, ClientId: m.ClientID,
					ClientHost: m.ClientHost, MemberMetadata: nonNilBytes(m.Metadata), MemberAssignment: nonNilBytes(m.Assignment)}
				if v >= 4 {
					dm.GroupInstanceId = optString(m.InstanceID)
				}
				dg.Members = append(dg.Members, dm)
			}
		}
		if dg.Members == nil {
			dg.Members = []protocol.DescribeGroupsResponseDescribedGroupMember{}
		}
		resp.Groups = append(resp.Groups, dg)
	}
	c.respond(r, &resp)
	return nil
}

func nonNilBytes(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

func handleListGroups(c *conn, r *request) error {
	var req protocol.ListGroupsRequest
	if err := req.Decode(r.body, r.hdr.APIVersion); err != nil {
		return err
	}
	v := r.hdr.APIVersion
	ctx, cancel := context.WithTimeout(c.ctx, base.KafkaAdminTimeoutMax)
	defer cancel()
	var resp protocol.ListGroupsResponse
	resp.Default()
	groups, err := c.sess.ListGroups(ctx)
	resp.ErrorCode = int16(groupCode(err))
	resp.Groups = []protocol.ListGroupsResponseListedGroup{}
	for _, g := range groups {
		if v >= 4 && len(req.StatesFilter) > 0 && !containsFold(req.StatesFilter, g.State) {
			continue
		}
		if v >= 5 && len(req.TypesFilter) > 0 && !containsFold(req.TypesFilter, "classic") {
			continue
		}
		lg := protocol.ListGroupsResponseListedGroup{GroupId: g.Group, ProtocolType: g.ProtocolType}
		if v >= 4 {
			lg.GroupState = g.State
		}
		if v >= 5 {
			lg.GroupType = "classic"
		}
		resp.Groups = append(resp.Groups, lg)
	}
	c.respond(r, &resp)
	return nil
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

func handleDeleteGroups(c *conn, r *request) error {
	var req protocol.DeleteGroupsRequest
	if err := req.Decode(r.body, r.hdr.APIVersion); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.ctx, base.KafkaAdminTimeoutMax)
	defer cancel()
	var resp protocol.DeleteGroupsResponse
	resp.Default()
	resp.Results = []protocol.DeleteGroupsResponseDeletableGroupResult{}
	for _, g := range req.GroupsNames {
		err := c.sess.DeleteGroup(ctx, g)
		resp.Results = append(resp.Results, protocol.DeleteGroupsResponseDeletableGroupResult{GroupId: g, ErrorCode: int16(groupCode(err))})
	}
	c.respond(r, &resp)
	return nil
}

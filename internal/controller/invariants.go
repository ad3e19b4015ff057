package controller

import (
	"maps"
	"reflect"
	"slices"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/routing"
)

// checkInvariants verifies what the controller derives and what its
// commands keep true, from scratch. It is expensive (linear in the whole
// state) and runs after every Apply and Restore when base.InvariantsEnabled.
func (c *Controller) checkInvariants() {
	seen := map[GroupID]bool{}
	load := map[NodeID]*nodeLoad{}
	count := func(p Placement) {
		base.Assert(p.Group != ControllerGroup && p.Group < c.nextGroup && !seen[p.Group],
			"group %d is 0, unallocated (next %d) or placed twice", p.Group, c.nextGroup)
		seen[p.Group] = true
		base.Assert(slices.Contains(p.Replicas, p.Preferred), "group %d: preferred leader %d is not a replica of %v",
			p.Group, p.Preferred, p.Replicas)
		for i, n := range p.Replicas {
			base.Assert(c.nodes[n] != nil && (i == 0 || n > p.Replicas[i-1]), "group %d: replica %d unknown or out of order", p.Group, n)
			l := load[n]
			if l == nil {
				l = &nodeLoad{}
				load[n] = l
			}
			l.replicas++
		}
		load[p.Preferred].preferred++ // the preferred leader is a replica, so load[p.Preferred] exists
	}
	for _, p := range c.coordinators {
		count(p)
	}
	exclusive := map[string]int{}
	for name, t := range c.tenants {
		base.Assert(t.name == name && t.routing.VHost() == name, "tenant %q is filed under %q", t.name, name)
		for qn, q := range t.queues {
			base.Assert(q.name == qn && q.tenant == name, "queue %q of %q is filed under %q", q.name, q.tenant, qn)
			base.Assert(t.routing.HasDestination(routing.Destination{Kind: routing.Queue, Name: qn}), "queue %q not routed", qn)
			base.Assert(t.streams[qn] == nil, "%q is both a queue and a stream", qn)
			count(q.place)
			if q.exclusive {
				exclusive[q.owner]++
				_, indexed := c.exclusive[q.owner][q]
				base.Assert(indexed, "exclusive queue %q of %q is not indexed", qn, q.owner)
			}
			cfg, policy := effectiveQueue(t.policySet, name, qn, q.args)
			base.Assert(queueConfigEqual(cfg, q.cfg) && policy == q.policy, "queue %q: effective config is stale", qn)
		}
		for sn, s := range t.streams {
			base.Assert(s.name == sn && s.tenant == name, "stream %q of %q is filed under %q", s.name, s.tenant, sn)
			base.Assert(t.routing.HasDestination(routing.Destination{Kind: routing.Stream, Name: sn}), "stream %q not routed", sn)
			base.Assert(len(s.partitions) > 0, "stream %q has no partitions", sn)
			for _, p := range s.partitions {
				count(p)
			}
			cfg, policy := effectiveStream(t.policySet, name, sn, s.fromKafka, s.args)
			base.Assert(cfg == s.cfg && policy == s.policy, "stream %q: effective config is stale", sn)
		}
		base.Assert(t.routing.Stats().Destinations == len(t.queues)+len(t.streams), "tenant %q: routing destinations differ", name)
	}
	base.Assert(len(seen) == c.groups, "%d groups placed, %d counted", len(seen), c.groups)
	for n, l := range c.load {
		if l.replicas == 0 && l.preferred == 0 {
			continue // a node whose groups all went
		}
		base.Assert(reflect.DeepEqual(load[n], l), "node %d: load %+v, recomputed %+v", n, *l, load[n])
	}
	base.Assert(len(load) <= len(c.load), "load of %d nodes, recomputed %d", len(c.load), len(load))
	base.Assert(len(exclusive) == len(c.exclusive), "exclusive index has %d owners, queues %d", len(c.exclusive), len(exclusive))
	for owner, n := range exclusive {
		base.Assert(len(c.exclusive[owner]) == n, "owner %q: %d indexed, %d exclusive", owner, len(c.exclusive[owner]), n)
	}
	for _, u := range c.users {
		for tn := range maps.Keys(u.perms) {
			base.Assert(c.tenants[tn] != nil, "user %q has a permission in missing vhost %q", u.name, tn)
		}
	}
}

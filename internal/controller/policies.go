package controller

import (
	"maps"
	"reflect"
	"slices"

	"github.com/ferry-mq/ferry/internal/auth"
	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/routing"
)

func (c *Controller) putPolicy(cmd *PutPolicy, r *Result) error {
	p := clonePolicy(cmd.Policy)
	t, err := c.tenantOf(p.Tenant)
	if err != nil {
		return err
	}
	if err := checkName("policy", p.Name); err != nil {
		return err
	}
	next := maps.Clone(t.policies)
	next[p.Name] = p
	set, err := compilePolicies(next)
	if err != nil {
		return err
	}
	if err := checkPolicyDefinition(&p); err != nil {
		return err
	}
	_, existed := t.policies[p.Name]
	t.policies, t.policySet = next, set
	c.recompute(t, r)
	r.Created = !existed
	return nil
}

func (c *Controller) deletePolicy(cmd *DeletePolicy, r *Result) error {
	t, err := c.tenantOf(cmd.Tenant)
	if err != nil {
		return err
	}
	if _, ok := t.policies[cmd.Name]; !ok {
		return nil
	}
	next := maps.Clone(t.policies)
	delete(next, cmd.Name)
	set, err := compilePolicies(next)
	base.Assert(err == nil, "policies that compiled do not compile without one: %v", err)
	t.policies, t.policySet = next, set
	c.recompute(t, r)
	return nil
}

// compilePolicies compiles a tenant's policies, in name order; it returns
// nil for none.
func compilePolicies(policies map[string]auth.Policy) (*auth.PolicySet, error) {
	if len(policies) == 0 {
		return nil, nil
	}
	list := make([]auth.Policy, 0, len(policies))
	for _, name := range sortedKeys(policies) {
		list = append(list, policies[name])
	}
	return auth.NewPolicySet(list)
}

func clonePolicy(p auth.Policy) auth.Policy {
	p.Definition = maps.Clone(p.Definition)
	return p
}

// recompute recomputes the effective configuration of every queue and
// stream of t after its policies changed, and reports those that changed.
func (c *Controller) recompute(t *tenant, r *Result) {
	for _, q := range t.queues {
		cfg, policy := effectiveQueue(t.policySet, t.name, q.name, q.args)
		q.policy = policy
		if !queueConfigEqual(cfg, q.cfg) {
			q.cfg = cfg
			r.Reconfigured = append(r.Reconfigured, reconfiguredQueue(q))
		}
	}
	for _, s := range t.streams {
		cfg, policy := effectiveStream(t.policySet, t.name, s.name, s.fromKafka, s.args)
		s.policy = policy
		if cfg != s.cfg {
			s.cfg = cfg
			r.Reconfigured = append(r.Reconfigured, reconfiguredStream(s))
		}
	}
}

func reconfiguredQueue(q *queueEntity) Reconfigured {
	cfg := cloneQueueConfig(q.cfg)
	return Reconfigured{EntityRef: EntityRef{q.tenant, routing.Queue, q.name}, Groups: []GroupID{q.place.Group}, Queue: &cfg}
}

func reconfiguredStream(s *streamEntity) Reconfigured {
	cfg := s.cfg
	return Reconfigured{EntityRef: EntityRef{s.tenant, routing.Stream, s.name}, Groups: s.groups(), Stream: &cfg}
}

// queueConfigEqual compares two queue configurations field by field
// (queue.Config holds a slice, so == does not apply).
func queueConfigEqual(a, b QueueConfig) bool { return reflect.DeepEqual(a, b) }

func cloneQueueConfig(c QueueConfig) QueueConfig {
	c.Queue.Retry.Reasons = slices.Clone(c.Queue.Retry.Reasons)
	return c
}

// Policies returns the policies of tenant, sorted by name; each has its
// own copy of its definition.
func (c *Controller) Policies(tenant string) []auth.Policy {
	t, ok := c.tenants[tenant]
	if !ok {
		return nil
	}
	out := make([]auth.Policy, 0, len(t.policies))
	for _, name := range sortedKeys(t.policies) {
		out = append(out, clonePolicy(t.policies[name]))
	}
	return out
}

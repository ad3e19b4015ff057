package controller

import (
	"fmt"
	"maps"
	"regexp"
	"slices"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/routing"
)

// model is a naive controller for the property test: plain maps, every
// rule written out directly, cascades by brute force. It covers tenants,
// queues (durable, exclusive, auto-delete, x-max-length, x-queue-type),
// streams, direct and fanout exchanges, bindings, a max-length policy
// and group allocation on one node.
type model struct {
	tenants   map[string]*mTenant
	nextGroup GroupID
}

type mTenant struct {
	queues    map[string]*mQueue
	streams   map[string][]GroupID
	exchanges map[string]*mExchange
	bindings  map[mBinding]bool
	policy    *mPolicy
}

type mQueue struct {
	durable, autoDelete bool
	owner               string // "" unless exclusive
	quorum              bool
	maxLen              int64 // 0: no x-max-length
	group               GroupID
}

type mExchange struct {
	typ        routing.ExchangeType
	autoDelete bool
}

type mBinding struct {
	src  string
	kind routing.DestKind
	dest string
	key  string
}

type mPolicy struct {
	pattern string
	maxLen  int64
}

// mResult is what the model predicts of a command.
type mResult struct {
	code    base.Code
	created bool
	removed []EntityRef
}

func newModel() *model {
	m := &model{tenants: map[string]*mTenant{}, nextGroup: 2} // group 1: the coordinator
	m.tenants["/"] = newMTenant()
	return m
}

func newMTenant() *mTenant {
	return &mTenant{queues: map[string]*mQueue{}, streams: map[string][]GroupID{},
		exchanges: map[string]*mExchange{}, bindings: map[mBinding]bool{}}
}

func (m *model) createTenant(name string) mResult {
	if m.tenants[name] != nil {
		return mResult{}
	}
	m.tenants[name] = newMTenant()
	return mResult{created: true}
}

func (m *model) deleteTenant(name string) mResult {
	t := m.tenants[name]
	if t == nil {
		return mResult{code: base.CodeNotFound}
	}
	var r mResult
	for q := range t.queues {
		r.removed = append(r.removed, EntityRef{name, routing.Queue, q})
	}
	for s := range t.streams {
		r.removed = append(r.removed, EntityRef{name, routing.Stream, s})
	}
	delete(m.tenants, name)
	return r
}

// effectiveMaxLen is a queue's x-max-length merged with the policy: the
// lower wins.
func (t *mTenant) effectiveMaxLen(name string, q *mQueue) int64 {
	n := q.maxLen
	if p := t.policy; p != nil && regexp.MustCompile(p.pattern).MatchString(name) && (n == 0 || p.maxLen < n) {
		n = p.maxLen
	}
	return n
}

func (m *model) declareQueue(tn, name string, q mQueue) mResult {
	t := m.tenants[tn]
	if t == nil {
		return mResult{code: base.CodeNotFound}
	}
	if _, ok := t.streams[name]; ok {
		if q.owner != "" {
			return mResult{code: base.CodeResourceLocked} // a stream has no owner
		}
		return mResult{code: base.CodePreconditionFailed} // durable, auto_delete or x-queue-type differ
	}
	if cur := t.queues[name]; cur != nil {
		switch {
		case cur.owner != q.owner:
			return mResult{code: base.CodeResourceLocked}
		case cur.durable != q.durable || cur.autoDelete != q.autoDelete || cur.maxLen != q.maxLen || cur.quorum != q.quorum:
			return mResult{code: base.CodePreconditionFailed}
		}
		return mResult{}
	}
	if q.quorum && (!q.durable || q.owner != "" || q.autoDelete) {
		return mResult{code: base.CodePreconditionFailed}
	}
	q.group = m.nextGroup
	m.nextGroup++
	t.queues[name] = &q
	return mResult{created: true}
}

func (m *model) deleteQueue(tn, name, owner string) mResult {
	t := m.tenants[tn]
	if t == nil {
		return mResult{code: base.CodeNotFound}
	}
	if q := t.queues[name]; q != nil {
		if q.owner != "" && q.owner != owner {
			return mResult{code: base.CodeResourceLocked}
		}
		m.removeDest(t, routing.Queue, name)
		return mResult{removed: []EntityRef{{tn, routing.Queue, name}}}
	}
	if _, ok := t.streams[name]; ok {
		m.removeDest(t, routing.Stream, name)
		return mResult{removed: []EntityRef{{tn, routing.Stream, name}}}
	}
	return mResult{}
}

func (m *model) connectionClosed(owner string) mResult {
	var r mResult
	for tn, t := range m.tenants {
		for name, q := range t.queues {
			if q.owner == owner {
				m.removeDest(t, routing.Queue, name)
				r.removed = append(r.removed, EntityRef{tn, routing.Queue, name})
			}
		}
	}
	return r
}

func (m *model) declareStream(tn, name string, partitions int) mResult {
	t := m.tenants[tn]
	if t == nil {
		return mResult{code: base.CodeNotFound}
	}
	if t.queues[name] != nil {
		return mResult{code: base.CodePreconditionFailed}
	}
	if _, ok := t.streams[name]; ok {
		return mResult{}
	}
	var groups []GroupID
	for range partitions {
		groups = append(groups, m.nextGroup)
		m.nextGroup++
	}
	t.streams[name] = groups
	return mResult{created: true}
}

func (m *model) deleteStream(tn, name string) mResult {
	t := m.tenants[tn]
	if t == nil {
		return mResult{code: base.CodeNotFound}
	}
	if _, ok := t.streams[name]; !ok {
		return mResult{code: base.CodeNotFound}
	}
	m.removeDest(t, routing.Stream, name)
	return mResult{removed: []EntityRef{{tn, routing.Stream, name}}}
}

// removeDest deletes a queue or stream with the bindings to it, then
// auto-deletes exchanges left without bindings.
func (m *model) removeDest(t *mTenant, kind routing.DestKind, name string) {
	if kind == routing.Queue {
		delete(t.queues, name)
	} else {
		delete(t.streams, name)
	}
	sources := map[string]bool{}
	for b := range t.bindings {
		if b.kind == kind && b.dest == name {
			delete(t.bindings, b)
			sources[b.src] = true
		}
	}
	t.autoDelete(sources)
}

// autoDelete deletes, to a fixpoint, the auto-delete exchanges among
// candidates that have no binding left as a source.
func (t *mTenant) autoDelete(candidates map[string]bool) {
	for len(candidates) > 0 {
		next := map[string]bool{}
		for name := range candidates {
			x := t.exchanges[name]
			if x == nil || !x.autoDelete || slices.ContainsFunc(slices.Collect(maps.Keys(t.bindings)), func(b mBinding) bool { return b.src == name }) {
				continue
			}
			delete(t.exchanges, name)
			for b := range t.bindings {
				if b.src == name || b.kind == routing.ToExchange && b.dest == name {
					delete(t.bindings, b)
					next[b.src] = true
				}
			}
			delete(next, name)
		}
		candidates = next
	}
}

func (m *model) declareExchange(tn, name string, x mExchange) mResult {
	t := m.tenants[tn]
	if t == nil {
		return mResult{code: base.CodeNotFound}
	}
	if cur := t.exchanges[name]; cur != nil {
		if *cur != x {
			return mResult{code: base.CodePreconditionFailed}
		}
		return mResult{}
	}
	t.exchanges[name] = &x
	return mResult{created: true}
}

func (m *model) deleteExchange(tn, name string) mResult {
	t := m.tenants[tn]
	if t == nil {
		return mResult{code: base.CodeNotFound}
	}
	if t.exchanges[name] == nil {
		return mResult{}
	}
	delete(t.exchanges, name)
	sources := map[string]bool{}
	for b := range t.bindings {
		if b.src == name || b.kind == routing.ToExchange && b.dest == name {
			delete(t.bindings, b)
			sources[b.src] = true
		}
	}
	delete(sources, name)
	t.autoDelete(sources)
	return mResult{}
}

// checkBinding applies Bind's and Unbind's checks in the controller's
// order: tenant, exclusive access, source, destination.
func (m *model) checkBinding(tn string, b mBinding, owner string) (*mTenant, base.Code) {
	t := m.tenants[tn]
	if t == nil {
		return nil, base.CodeNotFound
	}
	if q := t.queues[b.dest]; b.kind == routing.Queue && q != nil && q.owner != "" && q.owner != owner {
		return nil, base.CodeResourceLocked
	}
	if t.exchanges[b.src] == nil {
		return nil, base.CodeNotFound
	}
	exists := false
	switch b.kind {
	case routing.Queue:
		exists = t.queues[b.dest] != nil
	case routing.Stream:
		_, exists = t.streams[b.dest]
	case routing.ToExchange:
		exists = t.exchanges[b.dest] != nil
	}
	if !exists {
		return nil, base.CodeNotFound
	}
	return t, 0
}

func (m *model) bind(tn string, b mBinding, owner string) mResult {
	t, code := m.checkBinding(tn, b, owner)
	if code != 0 {
		return mResult{code: code}
	}
	if t.bindings[b] {
		return mResult{}
	}
	t.bindings[b] = true
	return mResult{created: true}
}

func (m *model) unbind(tn string, b mBinding, owner string) mResult {
	t, code := m.checkBinding(tn, b, owner)
	if code == base.CodeNotFound && m.tenants[tn] != nil {
		return mResult{} // RabbitMQ: unbinding from or to a missing resource is a no-op
	}
	if code != 0 {
		return mResult{code: code}
	}
	if t.bindings[b] {
		delete(t.bindings, b)
		t.autoDelete(map[string]bool{b.src: true})
	}
	return mResult{}
}

func (m *model) putPolicy(tn string, p mPolicy) (mResult, []string) {
	t := m.tenants[tn]
	if t == nil {
		return mResult{code: base.CodeNotFound}, nil
	}
	created := t.policy == nil
	return mResult{created: created}, m.setPolicy(t, &p)
}

func (m *model) deletePolicy(tn string) (mResult, []string) {
	t := m.tenants[tn]
	if t == nil {
		return mResult{code: base.CodeNotFound}, nil
	}
	return mResult{}, m.setPolicy(t, nil)
}

// setPolicy replaces t's policy and returns the queues whose effective
// max-length changed, sorted.
func (m *model) setPolicy(t *mTenant, p *mPolicy) []string {
	before := map[string]int64{}
	for name, q := range t.queues {
		before[name] = t.effectiveMaxLen(name, q)
	}
	t.policy = p
	var changed []string
	for name, q := range t.queues {
		if t.effectiveMaxLen(name, q) != before[name] {
			changed = append(changed, name)
		}
	}
	slices.Sort(changed)
	return changed
}

// describe lists the model's state the way describeController lists the
// controller's, for comparison.
func (m *model) describe() []string {
	var out []string
	for _, tn := range sortedKeys(m.tenants) {
		t := m.tenants[tn]
		out = append(out, "tenant "+tn)
		for _, name := range sortedKeys(t.queues) {
			q := t.queues[name]
			out = append(out, fmt.Sprintf("  queue %s group %d durable %v auto-delete %v owner %q quorum %v max-length %d",
				name, q.group, q.durable, q.autoDelete, q.owner, q.quorum, t.effectiveMaxLen(name, q)))
		}
		for _, name := range sortedKeys(t.streams) {
			out = append(out, fmt.Sprintf("  stream %s groups %v", name, t.streams[name]))
		}
		for _, name := range sortedKeys(t.exchanges) {
			x := t.exchanges[name]
			out = append(out, fmt.Sprintf("  exchange %s %s auto-delete %v", name, x.typ, x.autoDelete))
		}
		var bs []string
		for b := range t.bindings {
			bs = append(bs, fmt.Sprintf("  binding %s -> %s %s key %q", b.src, b.kind, b.dest, b.key))
		}
		slices.Sort(bs)
		out = append(out, bs...)
	}
	return out
}

// describeController lists the controller's state through its queries.
func describeController(c *Controller) []string {
	var out []string
	for _, tn := range c.Tenants() {
		out = append(out, "tenant "+tn)
		for _, q := range c.Queues(tn, ListFilter{}) {
			out = append(out, fmt.Sprintf("  queue %s group %d durable %v auto-delete %v owner %q quorum %v max-length %d",
				q.Name, q.Placement.Group, q.Durable, q.AutoDelete, q.Owner, q.Type == TypeQuorum, q.Config.Queue.MaxLength))
		}
		for _, s := range c.Streams(tn, ListFilter{}) {
			groups := make([]GroupID, len(s.Partitions))
			for i, p := range s.Partitions {
				groups[i] = p.Group
			}
			out = append(out, fmt.Sprintf("  stream %s groups %v", s.Name, groups))
		}
		for _, x := range c.Exchanges(tn, ListFilter{}) {
			if !isBuiltinExchange(x.Name) {
				out = append(out, fmt.Sprintf("  exchange %s %s auto-delete %v", x.Name, x.Type, x.AutoDelete))
			}
		}
		var bs []string
		for _, b := range c.Bindings(tn, BindingFilter{}) {
			bs = append(bs, fmt.Sprintf("  binding %s -> %s %s key %q", b.Source, b.Destination.Kind, b.Destination.Name, b.Key))
		}
		slices.Sort(bs)
		out = append(out, bs...)
	}
	return out
}

package controller

import (
	"slices"
	"sync"
	"testing"

	"github.com/ferry-mq/ferry/internal/auth"
	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/routing"
)

func queryController(t *testing.T) *Controller {
	c := New(Options{})
	mustApply(t, c, &Bootstrap{Now: 1, Nodes: []Node{{ID: 1, Addr: "n1:1"}, {ID: 2, Addr: "n2:1"}}, CoordinatorGroups: 3})
	for _, name := range []string{"a1", "a2", "a3", "b1"} {
		mustApply(t, c, &DeclareQueue{Tenant: "/", Name: name})
	}
	mustApply(t, c, &DeclareStream{Tenant: "/", Name: "s", Partitions: 2})
	mustApply(t, c, &DeclareExchange{Tenant: "/", Exchange: routing.Exchange{Name: "x", Type: routing.Direct}})
	for _, q := range []string{"a1", "b1"} {
		mustApply(t, c, &Bind{Tenant: "/", Binding: routing.Binding{Source: "x", Key: "k",
			Destination: routing.Destination{Kind: routing.Queue, Name: q}}})
	}
	mustApply(t, c, &Bind{Tenant: "/", Binding: routing.Binding{Source: "amq.fanout",
		Destination: routing.Destination{Kind: routing.Queue, Name: "a1"}}})
	return c
}

func names[T any](items []T, name func(T) string) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = name(it)
	}
	return out
}

func TestListFiltersSelectByPrefixAndPage(t *testing.T) {
	c := queryController(t)
	qname := func(q QueueInfo) string { return q.Name }
	for _, tc := range []struct {
		f    ListFilter
		want []string
	}{
		{ListFilter{}, []string{"a1", "a2", "a3", "b1"}},
		{ListFilter{Prefix: "a"}, []string{"a1", "a2", "a3"}},
		{ListFilter{Prefix: "a", Limit: 2}, []string{"a1", "a2"}},
		{ListFilter{Prefix: "a", After: "a2"}, []string{"a3"}},
		{ListFilter{Prefix: "z"}, []string{}},
	} {
		if got := names(c.Queues("/", tc.f), qname); !slices.Equal(got, tc.want) {
			t.Errorf("Queues(%+v): got %v, want %v", tc.f, got, tc.want)
		}
	}
	if got := c.Queues("missing", ListFilter{}); got != nil {
		t.Errorf("Queues of a missing tenant: got %v, want nil", got)
	}
	xs := names(c.Exchanges("/", ListFilter{Prefix: "amq.", Limit: 2}), func(x routing.Exchange) string { return x.Name })
	if want := []string{"amq.direct", "amq.fanout"}; !slices.Equal(xs, want) {
		t.Errorf("Exchanges(amq., 2): got %v, want %v", xs, want)
	}
	if got := names(c.Streams("/", ListFilter{}), func(s StreamInfo) string { return s.Name }); !slices.Equal(got, []string{"s"}) {
		t.Errorf("Streams: got %v, want [s]", got)
	}
}

func TestBindingFilter(t *testing.T) {
	c := queryController(t)
	bname := func(b routing.Binding) string { return b.Source + "->" + b.Destination.Name }
	for _, tc := range []struct {
		f    BindingFilter
		want []string
	}{
		{BindingFilter{}, []string{"amq.fanout->a1", "x->a1", "x->b1"}},
		{BindingFilter{Source: "x", HasSource: true}, []string{"x->a1", "x->b1"}},
		{BindingFilter{Destination: routing.Destination{Kind: routing.Queue, Name: "a1"}}, []string{"amq.fanout->a1", "x->a1"}},
		{BindingFilter{Source: "x", HasSource: true, Destination: routing.Destination{Kind: routing.Queue, Name: "b1"}}, []string{"x->b1"}},
		{BindingFilter{Source: "", HasSource: true}, []string{}},
	} {
		if got := names(c.Bindings("/", tc.f), bname); !slices.Equal(got, tc.want) {
			t.Errorf("Bindings(%+v): got %v, want %v", tc.f, got, tc.want)
		}
	}
}

func TestPlacementQueries(t *testing.T) {
	c := queryController(t)
	q, _ := c.Queue("/", "a2")
	p, err := c.Placement(EntityRef{Tenant: "/", Kind: routing.Queue, Name: "a2"}, 0)
	if err != nil || p.String() != q.Placement.String() {
		t.Fatalf("Placement of a2: got %v, %v; want %v", p, err, q.Placement)
	}
	s, _ := c.Stream("/", "s")
	p, err = c.Placement(EntityRef{Tenant: "/", Kind: routing.Stream, Name: "s"}, 1)
	if err != nil || p.String() != s.Partitions[1].String() {
		t.Fatalf("Placement of s/1: got %v, %v; want %v", p, err, s.Partitions[1])
	}
	if _, err := c.Partition("/", "s", 2); base.CodeOf(err) != base.CodeOutOfRange {
		t.Errorf("partition 2 of 2: got %v, want out_of_range", err)
	}
	if _, err := c.Placement(EntityRef{Tenant: "/", Kind: routing.Queue, Name: "nope"}, 0); base.CodeOf(err) != base.CodeNotFound {
		t.Errorf("Placement of a missing queue: got %v, want not_found", err)
	}
	all := c.Groups(0)
	if len(all) != 3+4+2 {
		t.Fatalf("Groups: got %d, want 9 (3 coordinators, 4 queues, 2 partitions)", len(all))
	}
	for i, g := range all {
		if g.Group != GroupID(i+1) {
			t.Fatalf("Groups not by id: %v", all)
		}
	}
	for _, g := range c.Groups(2) {
		if !slices.Contains(g.Replicas, 2) {
			t.Errorf("Groups(2) lists group %d on %v", g.Group, g.Replicas)
		}
	}
}

// TestQueriesReturnCopies checks the ownership contract: what a query
// returns may be modified by the caller without touching the state.
func TestQueriesReturnCopies(t *testing.T) {
	c := queryController(t)
	mustApply(t, c, &PutPolicy{Policy: auth.Policy{Tenant: "/", Name: "p", Pattern: ".*",
		Definition: map[string]auth.Value{"max-length": auth.Int(5)}}})
	mustApply(t, c, &DeclareQueue{Tenant: "/", Name: "args", Args: []routing.Field{
		{Key: "x-ferry-retry-reasons", Value: routing.StringValue("a=none")}}})
	before := c.Snapshot()

	q, _ := c.Queue("/", "args")
	q.Args[0].Key = "changed"
	q.Placement.Replicas[0] = 99
	q.Config.Queue.Retry.Reasons[0].Reason = "changed"
	s, _ := c.Stream("/", "s")
	s.Partitions[0].Replicas[0] = 99
	pols := c.Policies("/")
	pols[0].Definition["max-length"] = auth.Int(1)
	coord := c.Coordinators()
	coord[0].Replicas[0] = 99
	c.Groups(0)[0].Replicas[0] = 99

	if again, _ := c.Queue("/", "args"); again.Config.Queue.Retry.Reasons[0].Reason != "a" {
		t.Fatalf("changing a returned config changed the queue's")
	}
	if !slices.Equal(c.Snapshot(), before) {
		t.Fatalf("changing what queries returned changed the state")
	}
}

func TestTenantPermissionsAndUsers(t *testing.T) {
	c := queryController(t)
	for _, u := range []string{"zed", "amy"} {
		mustApply(t, c, &PutUser{Name: u, Tags: []auth.Tag{"b", "a", "b"}})
		mustApply(t, c, &SetPermission{User: u, Permission: auth.Permission{Tenant: "/", Read: ".*"}})
	}
	got := c.TenantPermissions("/")
	if len(got) != 2 || got[0].User != "amy" || got[1].User != "zed" || got[0].Read != ".*" {
		t.Fatalf("TenantPermissions: got %+v", got)
	}
	u, ok := c.User("amy")
	if !ok || !slices.Equal(u.Tags, []auth.Tag{"a", "b"}) || u.HasPassword || len(u.Permissions) != 1 {
		t.Fatalf("User(amy): got %+v, %v; want tags [a b] deduplicated, no password, one permission", u, ok)
	}
	if got := names(c.Users(), func(u UserInfo) string { return u.Name }); !slices.Equal(got, []string{"amy", "zed"}) {
		t.Fatalf("Users: got %v", got)
	}
}

// TestCoordinatorForIsFNV1aModuloCount pins the consumer-group mapping
// against an independent FNV-1a: it must never change for a cluster's
// life, or groups would lose their coordinator.
func TestCoordinatorForIsFNV1aModuloCount(t *testing.T) {
	c := queryController(t) // three coordinator groups
	fnv1a := func(s string) uint64 {
		h := uint64(14695981039346656037)
		for i := 0; i < len(s); i++ {
			h ^= uint64(s[i])
			h *= 1099511628211
		}
		return h
	}
	coords := c.Coordinators()
	for _, name := range []string{"", "orders", "billing-service", "group-42", "日本"} {
		p, err := c.CoordinatorFor(name)
		if err != nil {
			t.Fatal(err)
		}
		if want := coords[fnv1a(name)%3]; p.Group != want.Group {
			t.Errorf("CoordinatorFor(%q): got group %d, want %d", name, p.Group, want.Group)
		}
	}
	if _, err := New(Options{}).CoordinatorFor("x"); base.CodeOf(err) != base.CodeUnavailable {
		t.Errorf("CoordinatorFor before bootstrap: got %v, want unavailable", err)
	}
}

// TestQueriesRunConcurrently runs authorisations (which rebuild the
// shared directory cache) and other queries from several goroutines;
// -race checks the cache's locking.
func TestQueriesRunConcurrently(t *testing.T) {
	c := queryController(t)
	mustApply(t, c, &PutUser{Name: "u"})
	mustApply(t, c, &SetPermission{User: "u", Permission: auth.Permission{Tenant: "/", Configure: "^a", Write: ".*", Read: ".*"}})
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			var res routing.Result
			for range 100 {
				if err := c.Authorize("u", "/", auth.ActionConfigure, auth.ResourceQueue, "a1"); err != nil {
					errs[i] = err
					return
				}
				if err := c.Route("/", &res, "x", "k", nil); err != nil || len(res.Destinations) != 2 {
					errs[i] = err
					return
				}
				c.Queues("/", ListFilter{})
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Authorize("u", "/", auth.ActionConfigure, auth.ResourceQueue, "b1"); base.CodeOf(err) != base.CodeAccessRefused {
		t.Fatalf("configure b1: got %v, want access_refused", err)
	}
	// A change drops the cached directory; the next query sees it.
	mustApply(t, c, &SetPermission{User: "u", Permission: auth.Permission{Tenant: "/", Configure: ".*"}})
	if err := c.Authorize("u", "/", auth.ActionConfigure, auth.ResourceQueue, "b1"); err != nil {
		t.Fatalf("configure b1 after widening: %v", err)
	}
}

package controller

import (
	"flag"
	"fmt"
	"strings"
	"testing"

	"github.com/ferry-mq/ferry/internal/auth"
	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/routing"
)

// -long runs the capacity limit tests at the real maxima (millions of
// groups: minutes and GiB). Run it without -tags ferry_invariants, whose
// whole-state check after every command would make it quadratic:
//
//	go test ./internal/controller -run Limit -args -long
var long = flag.Bool("long", false, "run the limit tests at the real maxima")

// Name, partition, replication-factor and argument limits are also tested
// in the stories: testdata/queue_redeclare.txt (ControllerNameBytesMax),
// streams.txt (ControllerStreamPartitionsMax), queue_args.txt
// (ControllerReplicationFactorMax through x-quorum-initial-group-size).

func TestNewUsesTheBaseLimits(t *testing.T) {
	got := New(Options{}).lim
	want := limits{tenants: base.ControllerTenantsMax, users: base.ControllerUsersMax, nodes: base.ControllerNodesMax,
		groups: base.ControllerGroupsMax, queuesPerTenant: base.ControllerQueuesPerTenantMax,
		bindingsPerTenant: base.ControllerBindingsPerTenantMax}
	if got != want {
		t.Fatalf("controller limits: got %+v, want the base maxima %+v", got, want)
	}
}

// capacityLimits returns the limits to test at: the real maxima with
// -long, small ones otherwise (the same code path; limits only lower).
func capacityLimits() limits {
	if *long {
		return defaultLimits()
	}
	return limits{tenants: 50, users: 50, nodes: 20, groups: 100, queuesPerTenant: 60, bindingsPerTenant: 70}
}

// newAt returns a bootstrapped controller with one node and the capacity
// limits.
func newAt(t testing.TB, lim limits) *Controller {
	c := New(Options{})
	c.lim = lim
	mustApply(t, c, &Bootstrap{Now: 1, Nodes: []Node{{ID: 1, Addr: "n1:7946"}}})
	return c
}

func mustApply(t testing.TB, c *Controller, cmd Command) Result {
	t.Helper()
	r := c.Apply(cmd)
	if r.Err != nil {
		t.Fatalf("%T: %v", cmd, r.Err)
	}
	return r
}

func wantCode(t *testing.T, what string, r Result, code base.Code) {
	t.Helper()
	if got := base.CodeOf(r.Err); got != code {
		t.Fatalf("%s: got %v (%v), want %v", what, got, r.Err, code)
	}
}

func TestTenantsLimitEdge(t *testing.T) {
	lim := capacityLimits()
	c := newAt(t, lim)
	for i := 1; i < lim.tenants; i++ { // "/" is the first
		mustApply(t, c, &CreateTenant{Name: fmt.Sprintf("t%d", i)})
	}
	wantCode(t, "one tenant past the limit", c.Apply(&CreateTenant{Name: "one-more"}), base.CodeTooLarge)
	mustApply(t, c, &CreateTenant{Name: "t1"}) // existing: still fine
	mustApply(t, c, &DeleteTenant{Name: "t1"})
	mustApply(t, c, &CreateTenant{Name: "one-more"})
}

func TestUsersLimitEdge(t *testing.T) {
	lim := capacityLimits()
	c := newAt(t, lim)
	for i := range lim.users {
		mustApply(t, c, &PutUser{Name: fmt.Sprintf("u%d", i)})
	}
	wantCode(t, "one user past the limit", c.Apply(&PutUser{Name: "one-more"}), base.CodeTooLarge)
	mustApply(t, c, &PutUser{Name: "u1", Tags: []auth.Tag{"x"}}) // replacing one is fine
	mustApply(t, c, &DeleteUser{Name: "u1"})
	mustApply(t, c, &PutUser{Name: "one-more"})
}

func TestNodesLimitEdge(t *testing.T) {
	lim := capacityLimits()
	c := newAt(t, lim)
	for i := 2; i <= lim.nodes; i++ {
		mustApply(t, c, &RegisterNode{ID: NodeID(i), Addr: "n:1"})
	}
	wantCode(t, "one node past the limit", c.Apply(&RegisterNode{ID: 99_999, Addr: "n:1"}), base.CodeTooLarge)
	mustApply(t, c, &RegisterNode{ID: 2, Addr: "moved:1"}) // re-registering is fine

	nodes := make([]Node, lim.nodes+1)
	for i := range nodes {
		nodes[i] = Node{ID: NodeID(i + 1), Addr: "n:1"}
	}
	fresh := New(Options{})
	fresh.lim = lim
	wantCode(t, "bootstrap past the limit", fresh.Apply(&Bootstrap{Nodes: nodes}), base.CodeInvalidArgument)
	mustApply(t, fresh, &Bootstrap{Nodes: nodes[:lim.nodes]})
}

func TestGroupsLimitEdge(t *testing.T) {
	lim := capacityLimits()
	lim.queuesPerTenant = lim.groups + 10
	c := newAt(t, lim) // the coordinator is group 1 of lim.groups
	for i := 1; i < lim.groups-2; i++ {
		mustApply(t, c, &DeclareQueue{Tenant: "/", Name: fmt.Sprintf("q%d", i)})
	}
	// Two groups are left: a stream of three partitions does not fit and
	// takes none; one of two does.
	wantCode(t, "three partitions for two groups", c.Apply(&DeclareStream{Tenant: "/", Name: "s", Partitions: 3}), base.CodeTooLarge)
	mustApply(t, c, &DeclareStream{Tenant: "/", Name: "s", Partitions: 2})
	wantCode(t, "one group past the limit", c.Apply(&DeclareQueue{Tenant: "/", Name: "one-more"}), base.CodeTooLarge)
	wantCode(t, "a partition past the limit", c.Apply(&AddPartitions{Tenant: "/", Name: "s", Total: 3}), base.CodeTooLarge)
	mustApply(t, c, &DeleteQueue{Tenant: "/", Name: "q1"})
	mustApply(t, c, &DeclareQueue{Tenant: "/", Name: "one-more"})
}

func TestQueuesPerTenantLimitEdge(t *testing.T) {
	lim := capacityLimits()
	// Every queue and stream is a group, and at the real maxima the
	// cluster's groups bound equals one tenant's queue bound: leave the
	// tenant bound room to be the one that binds (by ten groups, with
	// -long the only limit a test raises).
	lim.groups = lim.queuesPerTenant + 10
	c := newAt(t, lim)
	for i := range lim.queuesPerTenant - 1 {
		mustApply(t, c, &DeclareQueue{Tenant: "/", Name: fmt.Sprintf("q%d", i)})
	}
	mustApply(t, c, &DeclareStream{Tenant: "/", Name: "s"}) // streams count too
	wantCode(t, "one queue past the limit", c.Apply(&DeclareQueue{Tenant: "/", Name: "one-more"}), base.CodeTooLarge)
	wantCode(t, "one stream past the limit", c.Apply(&DeclareStream{Tenant: "/", Name: "one-more"}), base.CodeTooLarge)
	mustApply(t, c, &DeclareQueue{Tenant: "/", Name: "q1"}) // redeclaring is fine
	mustApply(t, c, &CreateTenant{Name: "other"})
	mustApply(t, c, &DeclareQueue{Tenant: "other", Name: "q1"}) // the limit is per tenant
}

func TestBindingsPerTenantLimitEdge(t *testing.T) {
	lim := capacityLimits()
	c := newAt(t, lim)
	mustApply(t, c, &DeclareQueue{Tenant: "/", Name: "q"})
	mustApply(t, c, &DeclareExchange{Tenant: "/", Exchange: routing.Exchange{Name: "a", Type: routing.Direct}})
	mustApply(t, c, &DeclareExchange{Tenant: "/", Exchange: routing.Exchange{Name: "b", Type: routing.Direct}})
	q := routing.Destination{Kind: routing.Queue, Name: "q"}
	for i := range lim.bindingsPerTenant {
		src := []string{"a", "b"}[i%2] // across exchanges
		mustApply(t, c, &Bind{Tenant: "/", Binding: routing.Binding{Source: src, Destination: q, Key: fmt.Sprint(i)}})
	}
	wantCode(t, "one binding past the limit", c.Apply(&Bind{Tenant: "/", Binding: routing.Binding{Source: "a", Destination: q, Key: "x"}}),
		base.CodeTooLarge)
	mustApply(t, c, &Unbind{Tenant: "/", Binding: routing.Binding{Source: "a", Destination: q, Key: "0"}})
	mustApply(t, c, &Bind{Tenant: "/", Binding: routing.Binding{Source: "a", Destination: q, Key: "x"}})
}

// TestExchangesPerTenantLimitEdge runs at the real limit: the routing
// table enforces it and 65,536 declares take well under a second.
func TestExchangesPerTenantLimitEdge(t *testing.T) {
	if base.ControllerExchangesPerTenantMax != base.RoutingExchangesMax {
		t.Fatalf("ControllerExchangesPerTenantMax %d is not the routing table's %d", base.ControllerExchangesPerTenantMax,
			base.RoutingExchangesMax)
	}
	c := newAt(t, defaultLimits())
	have := len(c.Exchanges("/", ListFilter{}))
	for i := have; i < base.ControllerExchangesPerTenantMax; i++ {
		mustApply(t, c, &DeclareExchange{Tenant: "/", Exchange: routing.Exchange{Name: fmt.Sprintf("x%d", i), Type: routing.Fanout}})
	}
	wantCode(t, "one exchange past the limit",
		c.Apply(&DeclareExchange{Tenant: "/", Exchange: routing.Exchange{Name: "one-more", Type: routing.Fanout}}), base.CodeTooLarge)
}

func TestUserTagsLimitEdge(t *testing.T) {
	c := newAt(t, defaultLimits())
	tags := make([]auth.Tag, base.ControllerUserTagsMax+1)
	for i := range tags {
		tags[i] = auth.Tag(fmt.Sprintf("tag%d", i))
	}
	mustApply(t, c, &PutUser{Name: "u", Tags: tags[:base.ControllerUserTagsMax]})
	wantCode(t, "one tag past the limit", c.Apply(&PutUser{Name: "u", Tags: tags}), base.CodeInvalidArgument)
	long := auth.Tag(strings.Repeat("t", base.ControllerNameBytesMax))
	mustApply(t, c, &PutUser{Name: "u", Tags: []auth.Tag{long}})
	wantCode(t, "a tag over the name limit", c.Apply(&PutUser{Name: "u", Tags: []auth.Tag{long + "t"}}), base.CodeInvalidArgument)
}

func TestNodeAddrLimitEdge(t *testing.T) {
	c := newAt(t, defaultLimits())
	addr := strings.Repeat("a", base.ControllerNodeAddrBytesMax)
	mustApply(t, c, &RegisterNode{ID: 2, Addr: addr})
	wantCode(t, "an address over the limit", c.Apply(&RegisterNode{ID: 3, Addr: addr + "a"}), base.CodeInvalidArgument)
	wantCode(t, "no address", c.Apply(&RegisterNode{ID: 3}), base.CodeInvalidArgument)
	wantCode(t, "node 0", c.Apply(&RegisterNode{ID: 0, Addr: "x"}), base.CodeInvalidArgument)
}

func TestTenantNameLimitEdge(t *testing.T) {
	c := newAt(t, defaultLimits())
	name := strings.Repeat("v", base.ControllerNameBytesMax)
	mustApply(t, c, &CreateTenant{Name: name})
	wantCode(t, "a name over the limit", c.Apply(&CreateTenant{Name: name + "v"}), base.CodeInvalidArgument)
	mustApply(t, c, &PutPolicy{Policy: auth.Policy{Tenant: name, Name: name, Pattern: ".*",
		Definition: map[string]auth.Value{"max-length": auth.Int(1)}}})
	wantCode(t, "a policy name over the limit", c.Apply(&PutPolicy{Policy: auth.Policy{Tenant: name, Name: name + "p",
		Pattern: ".*", Definition: map[string]auth.Value{"max-length": auth.Int(1)}}}), base.CodeInvalidArgument)
}

func TestCoordinatorGroupsLimitEdge(t *testing.T) {
	boot := func(n int) Result {
		return New(Options{}).Apply(&Bootstrap{Nodes: []Node{{ID: 1, Addr: "n1:1"}}, CoordinatorGroups: n})
	}
	if r := boot(base.ControllerCoordinatorGroupsMax); r.Err != nil || len(r.NewGroups) != base.ControllerCoordinatorGroupsMax {
		t.Fatalf("bootstrap with %d coordinators: %v, %d groups", base.ControllerCoordinatorGroupsMax, r.Err, len(r.NewGroups))
	}
	wantCode(t, "one coordinator past the limit", boot(base.ControllerCoordinatorGroupsMax+1), base.CodeInvalidArgument)
	wantCode(t, "negative coordinators", boot(-1), base.CodeInvalidArgument)
}

func TestReplicationFactorLimitEdge(t *testing.T) {
	c := New(Options{})
	nodes := make([]Node, base.ControllerReplicationFactorMax+1)
	for i := range nodes {
		nodes[i] = Node{ID: NodeID(i + 1), Addr: "n:1"}
	}
	mustApply(t, c, &Bootstrap{Nodes: nodes})
	r := mustApply(t, c, &DeclareStream{Tenant: "/", Name: "s", ReplicationFactor: base.ControllerReplicationFactorMax})
	if got := len(r.NewGroups[0].Replicas); got != base.ControllerReplicationFactorMax {
		t.Fatalf("replicas: got %d, want %d", got, base.ControllerReplicationFactorMax)
	}
	wantCode(t, "a factor past the limit",
		c.Apply(&DeclareStream{Tenant: "/", Name: "t", ReplicationFactor: base.ControllerReplicationFactorMax + 1}),
		base.CodeInvalidArgument)
}

func TestCommandBytesLimitEdge(t *testing.T) {
	// A registration whose address pads the command to exactly the limit.
	cmd := &RegisterNode{Now: 1, ID: 1}
	for size := base.ControllerCommandBytesMax - 16; ; size++ {
		cmd.Addr = strings.Repeat("a", size)
		data, err := Encode(cmd)
		if err != nil {
			t.Fatalf("encoding a command of about %d bytes: %v", size, err)
		}
		if len(data) < base.ControllerCommandBytesMax {
			continue
		}
		if len(data) != base.ControllerCommandBytesMax {
			t.Fatalf("could not build a command of exactly %d bytes (got %d)", base.ControllerCommandBytesMax, len(data))
		}
		if _, err := Decode(data); err != nil {
			t.Fatalf("decoding a command of exactly the limit: %v", err)
		}
		break
	}
	cmd.Addr += "a"
	if _, err := Encode(cmd); base.CodeOf(err) != base.CodeTooLarge {
		t.Fatalf("encoding one byte past the limit: got %v, want too_large", err)
	}
	over := make([]byte, base.ControllerCommandBytesMax+1)
	if _, err := Decode(over); base.CodeOf(err) != base.CodeCorrupt {
		t.Fatalf("decoding one byte past the limit: got %v, want corrupt", err)
	}
}

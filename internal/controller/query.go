package controller

import (
	"slices"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/routing"
)

// The queries below read the replicated state; see Controller for when
// they may run. Everything they return is a copy the caller owns, except
// routing.Exchange.Args and routing.Binding.Args, which are the routing
// table's canonical slices: read them, never modify them.

// Exchange returns an exchange of tenant, and whether it exists.
func (c *Controller) Exchange(tenant, name string) (routing.Exchange, bool) {
	t, ok := c.tenants[tenant]
	if !ok {
		return routing.Exchange{}, false
	}
	return t.routing.Exchange(name)
}

// Exchanges lists the exchanges of tenant that f selects, built-in ones
// included.
func (c *Controller) Exchanges(tenant string, f ListFilter) []routing.Exchange {
	t, ok := c.tenants[tenant]
	if !ok {
		return nil
	}
	var out []routing.Exchange
	for _, x := range t.routing.Exchanges() { // sorted by name
		if len(x.Name) >= len(f.Prefix) && x.Name[:len(f.Prefix)] == f.Prefix && (f.After == "" || x.Name > f.After) {
			out = append(out, x)
			if f.Limit > 0 && len(out) == f.Limit {
				break
			}
		}
	}
	return out
}

// BindingFilter selects bindings: by source exchange when HasSource, by
// destination when Destination.Kind is set.
type BindingFilter struct {
	Source      string
	HasSource   bool
	Destination routing.Destination
}

// Bindings lists the bindings of tenant that f selects, in the routing
// table's canonical order.
func (c *Controller) Bindings(tenant string, f BindingFilter) []routing.Binding {
	t, ok := c.tenants[tenant]
	if !ok {
		return nil
	}
	all := t.routing.Bindings()
	return slices.DeleteFunc(all, func(b routing.Binding) bool {
		return f.HasSource && b.Source != f.Source || f.Destination.Kind != 0 && b.Destination != f.Destination
	})
}

// Route computes the destinations of a message published in tenant to
// exchange with routingKey and headers (routing.Table.Route; res is the
// caller's reusable Result). A missing tenant is CodeNotFound.
func (c *Controller) Route(tenant string, res *routing.Result, exchange, routingKey string, headers []routing.Field) error {
	keys := [1]string{routingKey}
	return c.RouteKeys(tenant, res, exchange, keys[:], headers)
}

// RouteKeys is Route for a message with several routing keys
// (routing.Table.RouteKeys).
func (c *Controller) RouteKeys(tenant string, res *routing.Result, exchange string, keys []string, headers []routing.Field) error {
	t, err := c.tenantOf(tenant)
	if err != nil {
		return err
	}
	return t.routing.RouteKeys(res, exchange, keys, headers)
}

// RoutingStats returns the counts of tenant's routing table.
func (c *Controller) RoutingStats(tenant string) (routing.Stats, error) {
	t, err := c.tenantOf(tenant)
	if err != nil {
		return routing.Stats{}, err
	}
	return t.routing.Stats(), nil
}

// Placement returns where the queue or stream partition ref runs:
// partition is ignored for a queue.
func (c *Controller) Placement(ref EntityRef, partition int) (Placement, error) {
	switch ref.Kind {
	case routing.Queue:
		q, ok := c.Queue(ref.Tenant, ref.Name)
		if !ok {
			return Placement{}, base.Errorf(base.CodeNotFound, "no %s", rs("queue", ref.Name, ref.Tenant))
		}
		return q.Placement, nil
	case routing.Stream:
		return c.Partition(ref.Tenant, ref.Name, partition)
	}
	return Placement{}, base.Errorf(base.CodeInvalidArgument, "a group hosts a queue or a stream partition, not %s", ref.Kind)
}

package controller

import (
	"slices"
	"strings"

	"github.com/ferry-mq/ferry/internal/auth"
	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/routing"
)

func newTenant(name string, nowMs int64) *tenant {
	return &tenant{
		name:      name,
		createdMs: nowMs,
		routing:   routing.NewTable(name),
		queues:    map[string]*queueEntity{},
		streams:   map[string]*streamEntity{},
		policies:  map[string]auth.Policy{},
	}
}

func (c *Controller) createTenant(cmd *CreateTenant, r *Result) error {
	if err := checkName("vhost", cmd.Name); err != nil {
		return err
	}
	if _, ok := c.tenants[cmd.Name]; ok {
		return nil
	}
	if len(c.tenants) >= c.lim.tenants {
		return base.Errorf(base.CodeTooLarge, "the cluster has %d vhosts, the limit (ControllerTenantsMax)", len(c.tenants))
	}
	c.tenants[cmd.Name] = newTenant(cmd.Name, cmd.Now)
	r.Created = true
	return nil
}

func (c *Controller) deleteTenant(cmd *DeleteTenant, r *Result) error {
	t, err := c.tenantOf(cmd.Name)
	if err != nil {
		return err
	}
	for _, q := range t.queues {
		c.forgetQueue(q)
		r.Removed = append(r.Removed, removedQueue(q))
	}
	for _, s := range t.streams {
		c.forgetStream(s)
		r.Removed = append(r.Removed, removedStream(s))
	}
	for _, x := range t.routing.Exchanges() {
		if !isBuiltinExchange(x.Name) {
			r.ExchangesRemoved = append(r.ExchangesRemoved, ExchangeRef{Tenant: t.name, Name: x.Name})
		}
	}
	r.BindingsRemoved = t.routing.Stats().Bindings
	changed := false
	for _, u := range c.users {
		if _, ok := u.perms[t.name]; ok {
			delete(u.perms, t.name)
			changed = true
		}
	}
	if changed {
		c.invalidateDirectory()
	}
	delete(c.tenants, t.name)
	return nil
}

// isBuiltinExchange reports whether name is one of the exchanges every
// routing table has: the default exchange and the amq.* ones (no other
// exchange may have a name starting with "amq.").
func isBuiltinExchange(name string) bool { return name == "" || strings.HasPrefix(name, "amq.") }

// Tenants returns the tenant names, sorted.
func (c *Controller) Tenants() []string {
	out := make([]string, 0, len(c.tenants))
	for name := range c.tenants {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// HasTenant reports whether a tenant exists.
func (c *Controller) HasTenant(name string) bool {
	_, ok := c.tenants[name]
	return ok
}

package controller

import (
	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/routing"
)

func (c *Controller) declareExchange(cmd *DeclareExchange, r *Result) error {
	t, err := c.tenantOf(cmd.Tenant)
	if err != nil {
		return err
	}
	created, err := t.routing.DeclareExchange(cmd.Exchange)
	if err != nil {
		return err
	}
	r.Created = created
	return nil
}

func (c *Controller) deleteExchange(cmd *DeleteExchange, r *Result) error {
	t, err := c.tenantOf(cmd.Tenant)
	if err != nil {
		return err
	}
	ch, err := t.routing.DeleteExchange(cmd.Name, cmd.IfUnused)
	if err != nil {
		return err
	}
	if ch.Removed {
		r.ExchangesRemoved = append(r.ExchangesRemoved, ExchangeRef{Tenant: t.name, Name: cmd.Name})
	}
	r.addChange(t.name, ch)
	return nil
}

// addChange records what a routing removal did beyond its target.
func (r *Result) addChange(tenant string, ch routing.Change) {
	r.BindingsRemoved += ch.BindingsRemoved
	for _, name := range ch.AutoDeleted {
		r.ExchangesRemoved = append(r.ExchangesRemoved, ExchangeRef{Tenant: tenant, Name: name})
	}
}

// checkExclusiveAccess refuses a connection other than the owner the use
// of an exclusive queue (RabbitMQ's check_exclusive_access, lax: a queue
// that is not exclusive is open to all).
func checkExclusiveAccess(q *queueEntity, owner string) error {
	if q.exclusive && q.owner != owner {
		return errLocked(q)
	}
	return nil
}

func errLocked(q *queueEntity) error {
	return base.Errorf(base.CodeResourceLocked, "cannot obtain exclusive access to locked %s. It could be originally "+
		"declared on another connection or the exclusive property value does not match that of the original declaration.",
		rs("queue", q.name, q.tenant))
}

// checkBindingAccess applies the exclusive rule to a binding's queue.
func (c *Controller) checkBindingAccess(t *tenant, b *routing.Binding, owner string) error {
	if b.Destination.Kind != routing.Queue {
		return nil
	}
	if q, ok := t.queues[b.Destination.Name]; ok {
		return checkExclusiveAccess(q, owner)
	}
	return nil
}

func (c *Controller) bind(cmd *Bind, r *Result) error {
	t, err := c.tenantOf(cmd.Tenant)
	if err != nil {
		return err
	}
	if err := c.checkBindingAccess(t, &cmd.Binding, cmd.Owner); err != nil {
		return err
	}
	if n := t.routing.Stats().Bindings; n >= c.lim.bindingsPerTenant {
		return base.Errorf(base.CodeTooLarge, "vhost '%s' has %d bindings, the limit (ControllerBindingsPerTenantMax)", t.name, n)
	}
	added, err := t.routing.Bind(cmd.Binding)
	if err != nil {
		return err
	}
	r.Created = added
	return nil
}

func (c *Controller) unbind(cmd *Unbind, r *Result) error {
	t, err := c.tenantOf(cmd.Tenant)
	if err != nil {
		return err
	}
	if err := c.checkBindingAccess(t, &cmd.Binding, cmd.Owner); err != nil {
		return err
	}
	ch, err := t.routing.Unbind(cmd.Binding)
	if err != nil {
		return err
	}
	r.addChange(t.name, ch)
	return nil
}

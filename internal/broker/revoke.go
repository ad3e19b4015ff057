package broker

import (
	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/controller"
)

// Revocation: RabbitMQ closes the connections of a deleted user and those
// to a deleted vhost. Every node applies the controller's log, so each
// closes its own: after applying a DeleteUser or DeleteTenant (or
// restoring a snapshot), the controller FSM calls revokeStale, which
// finds this node's connections whose user or tenant no longer exists and
// closes them on a broker-owned goroutine (kill may propose, and the
// engine loop that applied the command must never wait for a proposal).
//
// A connection that opens while the deletion applies (its OpenConnection
// checked the user before the command, and registered after the sweep)
// escapes the sweep; every call it makes is refused by the permission
// checks, which read the live directory, and the next deletion's sweep
// closes it.

// revokedConn is a connection to close and the reason told to its client.
type revokedConn struct {
	c      *Conn
	reason string
}

// revokeStale closes this node's connections whose user or tenant is gone.
// It must not be called with the controller FSM's lock held.
func (b *Broker) revokeStale() {
	b.mu.Lock()
	conns := make([]*Conn, 0, len(b.conns))
	for _, c := range b.conns {
		conns = append(conns, c)
	}
	b.mu.Unlock()
	var victims []revokedConn
	b.ctrl.read(func(ctl *controller.Controller) {
		for _, c := range conns {
			_, userOK := ctl.User(c.p.User)
			if !userOK || !ctl.HasTenant(c.p.Tenant) {
				victims = append(victims, revokedConn{c: c, reason: revokeReason(!userOK, c.p.User, c.p.Tenant)})
			}
		}
	})
	if len(victims) == 0 {
		return
	}
	b.spawn(func() {
		for _, v := range victims {
			b.log.Info("closing a connection: its user or tenant was deleted", "conn", v.c.info.ID, "reason", v.reason)
			if v.c.kill != nil {
				v.c.kill(v.reason)
				continue
			}
			// No front end to tell: release what it owned directly.
			ctx, cancel := base.WithTimeout(b.ctx(), b.clock, base.BrokerRevokeCloseTimeout)
			if err := v.c.Close(ctx); err != nil && !b.stopped() {
				b.log.Warn("closing a revoked connection failed", "conn", v.c.info.ID, "err", err)
			}
			cancel()
		}
	})
}

// revokes reports whether applying cmd may leave connections whose user
// or tenant is gone.
func revokes(cmd controller.Command) bool {
	switch cmd.(type) {
	case *controller.DeleteUser, *controller.DeleteTenant:
		return true
	}
	return false
}

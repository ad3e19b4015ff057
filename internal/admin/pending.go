package admin

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"sync"
	"time"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/broker"
)

// pendingTable holds the deliveries fetched over HTTP with manual acks
// until their ack, nack or expiry. Expiry is lazy: every add and take
// first returns the deliveries whose time is up to their queues (no
// goroutine); the queue's own ack timeout (QueueAckTimeoutDefault)
// returns any that the API never touches again, and Close returns the
// rest.
type pendingTable struct {
	clock   base.Clock
	timeout time.Duration
	prefix  string // random per Server: tokens of an earlier process are unknown, not misread

	mu    sync.Mutex
	seq   uint64                      // guarded by mu
	byTok map[string]*pendingDelivery // guarded by mu
	fifo  []*pendingDelivery          // guarded by mu: in order of deadline (the timeout is one value)
}

type pendingDelivery struct {
	token               string
	user, tenant, queue string
	h                   *broker.GetHandle
	deadline            time.Time
	settled             bool // guarded by pendingTable.mu: taken or expired
}

func newPendingTable(clock base.Clock, timeout time.Duration) *pendingTable {
	var b [6]byte
	_, _ = rand.Read(b[:]) // crypto/rand never fails on supported platforms
	return &pendingTable{clock: clock, timeout: timeout, prefix: hex.EncodeToString(b[:]), byTok: map[string]*pendingDelivery{}}
}

// add stores h and returns its token. Past AdminPendingDeliveriesMax it
// fails with CodeOverloaded (the caller returns h to the queue).
func (t *pendingTable) add(user, tenant, queue string, h *broker.GetHandle) (string, error) {
	expired := t.expire()
	defer nackAll(expired, "not acknowledged over the HTTP API in time")
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.byTok) >= base.AdminPendingDeliveriesMax {
		return "", base.Errorf(base.CodeOverloaded, "%d deliveries wait for an HTTP ack (AdminPendingDeliveriesMax); ack them or use ack_mode auto",
			base.AdminPendingDeliveriesMax)
	}
	t.seq++
	p := &pendingDelivery{token: t.prefix + "-" + strconv.FormatUint(t.seq, 36), user: user, tenant: tenant, queue: queue,
		h: h, deadline: t.clock.Now().Add(t.timeout)}
	t.byTok[p.token] = p
	t.fifo = append(t.fifo, p)
	return p.token, nil
}

// take removes and returns the handles of tokens, all or none: every
// token must be pending, fetched by user from tenant's queue.
func (t *pendingTable) take(user, tenant, queue string, tokens []string) ([]*broker.GetHandle, error) {
	expired := t.expire()
	defer nackAll(expired, "not acknowledged over the HTTP API in time")
	t.mu.Lock()
	defer t.mu.Unlock()
	seen := make(map[string]bool, len(tokens))
	for _, tok := range tokens {
		p := t.byTok[tok]
		switch {
		case p == nil:
			return nil, base.Errorf(base.CodeNotFound, "delivery token %q is unknown or expired (tokens live %v and only in the process that gave them); nothing was settled",
				tok, t.timeout)
		case p.user != user || p.tenant != tenant || p.queue != queue:
			return nil, base.Errorf(base.CodeNotFound, "delivery token %q was not fetched by user '%s' from queue '%s' in tenant '%s'; nothing was settled",
				tok, user, queue, tenant)
		case seen[tok]:
			return nil, invalid("delivery token %q is given twice", tok)
		}
		seen[tok] = true
	}
	out := make([]*broker.GetHandle, 0, len(tokens))
	for _, tok := range tokens {
		p := t.byTok[tok]
		delete(t.byTok, tok)
		p.settled = true
		out = append(out, p.h)
	}
	t.compactLocked()
	return out, nil
}

// sweep returns the deliveries past their deadline to their queues; a
// get calls it first, so that an expired delivery is fetchable again.
func (t *pendingTable) sweep() {
	nackAll(t.expire(), "not acknowledged over the HTTP API in time")
}

// expire removes the deliveries past their deadline; the caller nacks
// them outside the lock.
func (t *pendingTable) expire() []*broker.GetHandle {
	now := t.clock.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []*broker.GetHandle
	i := 0
	for ; i < len(t.fifo) && !now.Before(t.fifo[i].deadline); i++ {
		p := t.fifo[i]
		if !p.settled {
			p.settled = true
			delete(t.byTok, p.token)
			out = append(out, p.h)
		}
	}
	t.fifo = t.fifo[i:]
	t.compactLocked()
	return out
}

// compactLocked drops settled entries from the front of fifo and
// reallocates it when most of it is settled, so it stays within a
// constant factor of the pending count.
func (t *pendingTable) compactLocked() {
	for len(t.fifo) > 0 && t.fifo[0].settled {
		t.fifo = t.fifo[1:]
	}
	if len(t.fifo) > 64 && len(t.fifo) > 2*len(t.byTok) {
		live := make([]*pendingDelivery, 0, len(t.byTok))
		for _, p := range t.fifo {
			if !p.settled {
				live = append(live, p)
			}
		}
		t.fifo = live
	}
}

// len is the number of pending deliveries.
func (t *pendingTable) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.byTok)
}

// closeAll returns every pending delivery to its queue.
func (t *pendingTable) closeAll(ctx context.Context) {
	t.mu.Lock()
	hs := make([]*broker.GetHandle, 0, len(t.byTok))
	for _, p := range t.fifo {
		if !p.settled {
			p.settled = true
			hs = append(hs, p.h)
		}
	}
	t.byTok, t.fifo = map[string]*pendingDelivery{}, nil
	t.mu.Unlock()
	for _, h := range hs {
		_ = h.Nack(ctx, true, "the HTTP API is shutting down") // the connection's close returns it anyway
	}
}

func nackAll(hs []*broker.GetHandle, reason string) {
	if len(hs) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), base.AdminCloseTimeout)
	defer cancel()
	for _, h := range hs {
		_ = h.Nack(ctx, true, reason) // a failure leaves it to the queue's ack timeout
	}
}

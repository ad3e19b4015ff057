package admin

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/broker"
)

// authenticate checks the request's HTTP basic credentials against the
// user store (through the login cache).
func (s *Server) authenticate(r *http.Request, peer netip.AddrPort) (broker.Principal, error) {
	user, password, ok := r.BasicAuth()
	if !ok {
		return broker.Principal{}, base.Errorf(base.CodeUnauthenticated,
			"this request needs HTTP basic credentials (curl -u user:password; ferry --user and --password)")
	}
	if p, ok := s.logins.lookup(user, password, peer.Addr()); ok {
		return p, nil
	}
	p, err := s.b.Authenticate(user, password, peer.Addr())
	if err != nil {
		if base.CodeOf(err) == base.CodeInternal {
			return broker.Principal{}, err
		}
		return broker.Principal{}, base.Errorf(base.CodeOf(err), "login of user '%s' refused: %w", user, err)
	}
	s.logins.store(user, password, peer.Addr(), p)
	return p, nil
}

// loginCache remembers successful logins for a short TTL, so that the
// password hash (argon2id: tens of milliseconds) is not paid per request.
// It stores a salted SHA-256 of the password, never the password; an
// entry is tied to the peer address too, since guest may log in only from
// loopback.
type loginCache struct {
	clock base.Clock
	ttl   time.Duration // <= 0: disabled
	salt  [16]byte

	mu      sync.Mutex
	entries map[string]loginEntry // guarded by mu: by user name
}

type loginEntry struct {
	digest  [32]byte
	peer    netip.Addr
	p       broker.Principal
	expires time.Time
}

func newLoginCache(clock base.Clock, ttl time.Duration) *loginCache {
	c := &loginCache{clock: clock, ttl: ttl, entries: map[string]loginEntry{}}
	_, _ = rand.Read(c.salt[:]) // crypto/rand never fails on supported platforms
	return c
}

func (c *loginCache) digest(user, password string) [32]byte {
	h := sha256.New()
	h.Write(c.salt[:])
	h.Write([]byte(strconv.Itoa(len(user))))
	h.Write([]byte(user))
	h.Write([]byte(password))
	var out [32]byte
	h.Sum(out[:0])
	return out
}

func (c *loginCache) lookup(user, password string, peer netip.Addr) (broker.Principal, bool) {
	if c.ttl <= 0 {
		return broker.Principal{}, false
	}
	d := c.digest(user, password)
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[user]
	if !ok || !c.clock.Now().Before(e.expires) || e.peer != peer || subtle.ConstantTimeCompare(e.digest[:], d[:]) != 1 {
		return broker.Principal{}, false
	}
	return e.p, true
}

func (c *loginCache) store(user, password string, peer netip.Addr, p broker.Principal) {
	if c.ttl <= 0 {
		return
	}
	d := c.digest(user, password)
	now := c.clock.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= base.AdminLoginCacheEntriesMax {
		for k, e := range c.entries { // drop the expired; if none, any one
			if !now.Before(e.expires) {
				delete(c.entries, k)
			}
		}
		for k := range c.entries {
			if len(c.entries) < base.AdminLoginCacheEntriesMax {
				break
			}
			delete(c.entries, k)
		}
	}
	c.entries[user] = loginEntry{digest: d, peer: peer, p: p, expires: now.Add(c.ttl)}
}

// sessions are the broker connections the API opens on behalf of HTTP
// clients: one per (user, tenant), shared by that user's requests and
// kept open, since deliveries fetched with manual acks live on them.
type sessions struct {
	b Broker

	mu    sync.Mutex
	conns map[sessionKey]*broker.Conn // guarded by mu
	seq   uint64                      // guarded by mu
}

type sessionKey struct{ user, tenant string }

func newSessions(b Broker) *sessions {
	return &sessions{b: b, conns: map[sessionKey]*broker.Conn{}}
}

// get returns the connection of p's user in p.Tenant, opening it on first
// use. Errors: the broker's (CodeNotFound for an unknown tenant,
// CodeAccessRefused without a permission there); CodeOverloaded past
// AdminSessionsMax.
func (ss *sessions) get(p broker.Principal, peer netip.AddrPort) (*broker.Conn, error) {
	key := sessionKey{p.User, p.Tenant}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if c, ok := ss.conns[key]; ok {
		return c, nil
	}
	if len(ss.conns) >= base.AdminSessionsMax {
		return nil, base.Errorf(base.CodeOverloaded, "the HTTP API holds %d broker sessions (AdminSessionsMax), one per user and tenant", base.AdminSessionsMax)
	}
	ss.seq++
	info := broker.ConnInfo{ID: "http/" + strconv.FormatUint(ss.seq, 10), Protocol: "http", Peer: peer, Name: "HTTP API: " + p.User}
	c, err := ss.b.OpenConnection(info, p, func(string) { ss.drop(key) })
	if err != nil {
		return nil, err
	}
	ss.conns[key] = c
	return c, nil
}

// drop closes the session of key, when the management API closes its
// connection: the next request opens a new one.
func (ss *sessions) drop(key sessionKey) {
	ss.mu.Lock()
	c := ss.conns[key]
	delete(ss.conns, key)
	ss.mu.Unlock()
	if c != nil {
		ctx, cancel := context.WithTimeout(context.Background(), base.AdminCloseTimeout)
		defer cancel()
		_ = c.Close(ctx) // the connection is gone either way; its owner state is released by the broker
	}
}

func (ss *sessions) closeAll(ctx context.Context) error {
	ss.mu.Lock()
	conns := ss.conns
	ss.conns = map[sessionKey]*broker.Conn{}
	ss.mu.Unlock()
	var errs []error
	for _, c := range conns {
		if err := c.Close(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

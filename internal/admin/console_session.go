package admin

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/netip"
	"sync"
	"time"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/broker"
)

// consoleCookie names the console's session cookie. Its value is a
// random token; the table keys sessions by the token's SHA-256, so a
// lookup's timing says nothing about stored tokens.
const consoleCookie = "ferry_console"

// consoleSession is one operator logged in to the web console: the
// principal its login returned, the peer address it logged in from (a
// session is valid from there only, as the API's login cache: guest may
// log in only from loopback) and the token every form post must carry.
type consoleSession struct {
	p       broker.Principal
	peer    netip.Addr
	csrf    string
	created time.Time
	used    time.Time
	flash   string // a one-shot message for the next page: what the last action did
}

// consoleSessions is the table of console logins, bounded by
// AdminConsoleSessionsMax. Sessions expire lazily: each lookup and
// create drops the expired ones it meets, so nothing runs in the
// background.
type consoleSessions struct {
	clock base.Clock

	mu    sync.Mutex
	byKey map[[32]byte]*consoleSession // guarded by mu: by SHA-256 of the cookie token
}

func newConsoleSessions(clock base.Clock) *consoleSessions {
	return &consoleSessions{clock: clock, byKey: map[[32]byte]*consoleSession{}}
}

// randomToken returns 32 random bytes, base64url-encoded.
func randomToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand never fails on supported platforms
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func (cs *consoleSessions) expiredLocked(s *consoleSession, now time.Time) bool {
	return now.Sub(s.used) >= base.AdminConsoleSessionIdleTimeout || now.Sub(s.created) >= base.AdminConsoleSessionLifetimeMax
}

// create starts a session for p at peer and returns its cookie token.
// Errors: CodeOverloaded when AdminConsoleSessionsMax live sessions
// exist (an existing operator's session is never evicted for a new one).
func (cs *consoleSessions) create(p broker.Principal, peer netip.Addr) (string, error) {
	now := cs.clock.Now()
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if len(cs.byKey) >= base.AdminConsoleSessionsMax {
		for k, s := range cs.byKey {
			if cs.expiredLocked(s, now) {
				delete(cs.byKey, k)
			}
		}
		if len(cs.byKey) >= base.AdminConsoleSessionsMax {
			return "", base.Errorf(base.CodeOverloaded,
				"the console has %d sessions (AdminConsoleSessionsMax); log out of unused ones or wait for them to expire", len(cs.byKey))
		}
	}
	token := randomToken()
	cs.byKey[sha256.Sum256([]byte(token))] = &consoleSession{p: p, peer: peer, csrf: randomToken(), created: now, used: now}
	return token, nil
}

// lookup returns a copy of the live session of token used from peer and
// marks it used; false when there is none (unknown, expired, or another
// peer address).
func (cs *consoleSessions) lookup(token string, peer netip.Addr) (consoleSession, bool) {
	if token == "" {
		return consoleSession{}, false
	}
	key := sha256.Sum256([]byte(token))
	now := cs.clock.Now()
	cs.mu.Lock()
	defer cs.mu.Unlock()
	s, ok := cs.byKey[key]
	if !ok {
		return consoleSession{}, false
	}
	if cs.expiredLocked(s, now) {
		delete(cs.byKey, key)
		return consoleSession{}, false
	}
	if s.peer != peer {
		return consoleSession{}, false
	}
	s.used = now
	return *s, true
}

// takeFlash returns and clears the session's one-shot message.
func (cs *consoleSessions) takeFlash(token string) string {
	key := sha256.Sum256([]byte(token))
	cs.mu.Lock()
	defer cs.mu.Unlock()
	s, ok := cs.byKey[key]
	if !ok {
		return ""
	}
	f := s.flash
	s.flash = ""
	return f
}

func (cs *consoleSessions) setFlash(token, msg string) {
	key := sha256.Sum256([]byte(token))
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if s, ok := cs.byKey[key]; ok {
		s.flash = msg
	}
}

// remove ends the session of token (logout).
func (cs *consoleSessions) remove(token string) {
	key := sha256.Sum256([]byte(token))
	cs.mu.Lock()
	defer cs.mu.Unlock()
	delete(cs.byKey, key)
}

func (cs *consoleSessions) len() int {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return len(cs.byKey)
}

// csrfValid compares a posted token with the session's in constant time.
func csrfValid(s *consoleSession, posted string) bool {
	return posted != "" && subtle.ConstantTimeCompare([]byte(s.csrf), []byte(posted)) == 1
}

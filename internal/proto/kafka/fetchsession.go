package kafka

import (
	"sync"
	"time"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/proto/kafka/protocol"
)

// Incremental fetch sessions (KIP-227). A consumer fetching many
// partitions sends them all once (epoch 0) and afterwards only what
// changed; the server answers only the partitions with something new.
// Epochs:
//
//	-1  no session: a full fetch (and the end of the session named)
//	 0  create a session from this full fetch
//	>0  the session's next epoch: an incremental fetch
const (
	sessionEpochFinal   = -1
	sessionEpochInitial = 0
)

// sessionPartition is one partition of a session: what the client fetches
// and what it was last told, so unchanged partitions can be left out.
type sessionPartition struct {
	topic       string
	topicID     protocol.UUID
	partition   int32
	fetchOffset int64
	maxBytes    int32
	// The last values sent; -2 before the first response, so the first
	// response includes the partition.
	hwm, lso, logStart int64
}

type partKey struct {
	topic     string
	partition int32
}

// fetchSession is one client's session. A client sends one fetch at a time
// per session, and the epoch check refuses a second one, so the partition
// state is touched by one request at a time; mu still guards it against a
// misbehaving client.
type fetchSession struct {
	id int32

	mu       sync.Mutex
	epoch    int32                         // guarded by mu: the epoch the next request must carry
	parts    []*sessionPartition           // guarded by mu: in fetch order (rotated)
	index    map[partKey]*sessionPartition // guarded by mu
	lastUsed time.Time                     // guarded by the cache's mu
	busy     bool                          // guarded by mu: a request of the session is being served
}

// fetchSessionCache holds the server's sessions.
type fetchSessionCache struct {
	clock base.Clock

	mu       sync.Mutex
	sessions map[int32]*fetchSession // guarded by mu
	nextID   int32                   // guarded by mu
}

func newFetchSessionCache(clock base.Clock) *fetchSessionCache {
	return &fetchSessionCache{clock: clock, sessions: map[int32]*fetchSession{}}
}

// create makes a session, evicting the least recently used one idle for
// KafkaFetchSessionIdleTimeout when the cache is full; nil when it cannot.
func (fc *fetchSessionCache) create() *fetchSession {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	now := fc.clock.Now()
	if len(fc.sessions) >= base.KafkaFetchSessionsMax {
		var victim *fetchSession
		for _, s := range fc.sessions {
			if now.Sub(s.lastUsed) >= base.KafkaFetchSessionIdleTimeout && (victim == nil || s.lastUsed.Before(victim.lastUsed)) {
				victim = s
			}
		}
		if victim == nil {
			return nil
		}
		delete(fc.sessions, victim.id)
	}
	for {
		fc.nextID++
		if fc.nextID <= 0 {
			fc.nextID = 1
		}
		if fc.sessions[fc.nextID] == nil {
			break
		}
	}
	s := &fetchSession{id: fc.nextID, epoch: 1, index: map[partKey]*sessionPartition{}, lastUsed: now}
	fc.sessions[s.id] = s
	return s
}

// get returns a session and marks it used.
func (fc *fetchSessionCache) get(id int32) *fetchSession {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	s := fc.sessions[id]
	if s != nil {
		s.lastUsed = fc.clock.Now()
	}
	return s
}

func (fc *fetchSessionCache) remove(id int32) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	delete(fc.sessions, id)
}

func (fc *fetchSessionCache) len() int {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	return len(fc.sessions)
}

// upsertLocked adds or updates a partition of the session.
func (s *fetchSession) upsertLocked(p *sessionPartition) {
	k := partKey{p.topic, p.partition}
	if cur := s.index[k]; cur != nil {
		cur.fetchOffset, cur.maxBytes, cur.topicID = p.fetchOffset, p.maxBytes, p.topicID
		return
	}
	p.hwm, p.lso, p.logStart = -2, -2, -2
	s.index[k] = p
	s.parts = append(s.parts, p)
}

// forgetLocked removes a partition of the session.
func (s *fetchSession) forgetLocked(topic string, partition int32) {
	k := partKey{topic, partition}
	p := s.index[k]
	if p == nil {
		return
	}
	delete(s.index, k)
	for i, q := range s.parts {
		if q == p {
			s.parts = append(s.parts[:i], s.parts[i+1:]...)
			break
		}
	}
}

// rotateLocked moves the partitions that returned data to the end of the
// fetch order, so that a busy partition cannot take every response's byte
// budget and starve the ones after it.
func (s *fetchSession) rotateLocked(served map[*sessionPartition]bool) {
	if len(served) == 0 {
		return
	}
	out := make([]*sessionPartition, 0, len(s.parts))
	for _, p := range s.parts {
		if !served[p] {
			out = append(out, p)
		}
	}
	for _, p := range s.parts {
		if served[p] {
			out = append(out, p)
		}
	}
	s.parts = out
}

package amqp

import (
	"net"
	"sync"
	"sync/atomic"

	"github.com/ferry-mq/ferry/internal/base"
)

// Stats are a server's counters since NewServer, for the node's metrics.
type Stats struct {
	// BytesIn and BytesOut are the bytes read from and written to client
	// sockets (frames, protocol headers, heartbeats).
	BytesIn, BytesOut uint64
	// Errors counts the errors answered to clients, by base.Code name:
	// channel and connection exceptions and refused logins.
	Errors map[string]uint64
}

// serverStats are the counters behind Stats.
type serverStats struct {
	bytesIn, bytesOut atomic.Uint64

	mu     sync.Mutex
	errors map[base.Code]uint64 // guarded by mu
}

func (st *serverStats) countError(code base.Code) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.errors == nil {
		st.errors = map[base.Code]uint64{}
	}
	st.errors[code]++
}

// Stats returns a snapshot of the server's counters; the caller owns the
// returned map.
func (s *Server) Stats() Stats {
	out := Stats{BytesIn: s.stats.bytesIn.Load(), BytesOut: s.stats.bytesOut.Load()}
	s.stats.mu.Lock()
	defer s.stats.mu.Unlock()
	out.Errors = make(map[string]uint64, len(s.stats.errors))
	for c, n := range s.stats.errors {
		out.Errors[c.String()] += n
	}
	return out
}

// countingConn counts the bytes a connection reads and writes: one atomic
// add per socket call, not per frame.
type countingConn struct {
	net.Conn
	in, out *atomic.Uint64
}

func (c countingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.in.Add(uint64(n))
	return n, err
}

func (c countingConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.out.Add(uint64(n))
	return n, err
}

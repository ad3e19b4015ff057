package amqp

// Stats are a server's counters since NewServer, for the node's metrics.
type Stats struct {
	// BytesIn and BytesOut are the bytes read from and written to client
	// sockets (frames, protocol headers, heartbeats).
	BytesIn, BytesOut uint64
	// Errors counts the errors answered to clients, by base.Code name:
	// channel and connection exceptions and refused logins.
	Errors map[string]uint64
}

// Stats returns a snapshot of the server's counters; the caller owns the
// returned map.
func (s *Server) Stats() Stats {
	return Stats(s.stats.Snapshot())
}

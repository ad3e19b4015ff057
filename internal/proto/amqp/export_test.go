package amqp

// framesRead sums the frames read by the server's open connections after
// their handshakes (a test hook: it tells a test that the server has read
// what it sent).
func (s *Server) framesRead() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n uint64
	for c := range s.conns {
		n += c.framesRead.Load()
	}
	return n
}

package wirestats

import (
	"fmt"
	"net"
	"sync"
	"sync/atomic"
)

// Snapshot is a copy of Counters at one moment. A front end's Stats type
// has the same fields (with its own meaning of an error), so it converts
// from a Snapshot.
type Snapshot struct {
	BytesIn, BytesOut uint64
	Errors            map[string]uint64
}

// Counters counts one front end's socket bytes and errors answered, by
// code C. The zero value is ready; a Counters must not be copied after
// first use.
type Counters[C interface {
	comparable
	fmt.Stringer
}] struct {
	bytesIn, bytesOut atomic.Uint64

	mu     sync.Mutex
	errors map[C]uint64 // guarded by mu
}

// CountError counts one error with code answered to a client.
func (c *Counters[C]) CountError(code C) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.errors == nil {
		c.errors = map[C]uint64{}
	}
	c.errors[code]++
}

// Conn returns nc counting, into c, the bytes it reads and writes: one
// atomic add per socket call, not per frame. The returned conn is nc's:
// closing it closes nc.
func (c *Counters[C]) Conn(nc net.Conn) net.Conn {
	return countingConn{Conn: nc, in: &c.bytesIn, out: &c.bytesOut}
}

// Snapshot returns the counts so far, errors by their code's String();
// the caller owns the returned map.
func (c *Counters[C]) Snapshot() Snapshot {
	out := Snapshot{BytesIn: c.bytesIn.Load(), BytesOut: c.bytesOut.Load()}
	c.mu.Lock()
	defer c.mu.Unlock()
	out.Errors = make(map[string]uint64, len(c.errors))
	for code, n := range c.errors {
		out.Errors[code.String()] += n
	}
	return out
}

// countingConn is a net.Conn adding the bytes of every Read and Write to
// in and out.
type countingConn struct {
	net.Conn
	in, out *atomic.Uint64
}

func (c countingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.in.Add(uint64(n))
	return n, err
}

// Write counts b before writing it and takes back what was not written:
// a peer that has read the bytes then never sees a count without them
// (counting after the write would race with the peer's read).
func (c countingConn) Write(b []byte) (int, error) {
	c.out.Add(uint64(len(b)))
	n, err := c.Conn.Write(b)
	if n < len(b) {
		c.out.Add(^uint64(len(b) - n - 1)) // subtract the unwritten rest
	}
	return n, err
}

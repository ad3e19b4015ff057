package loadgen

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"slices"
	"sync"
	"testing"
	"time"
)

// gatedConn is the connection under a CoalescingConn in tests: each Write
// announces itself on entered and then waits for a value on release,
// which is the error it returns. Only Write, SetWriteDeadline and Close
// are called on it.
type gatedConn struct {
	net.Conn // nil: any other method panics

	entered chan []byte // a copy of each write, as it starts
	release chan error  // each write returns the next value
	closed  chan struct{}
}

func newGatedConn() *gatedConn {
	return &gatedConn{entered: make(chan []byte), release: make(chan error), closed: make(chan struct{})}
}

func (g *gatedConn) Write(p []byte) (int, error) {
	g.entered <- slices.Clone(p)
	if err := <-g.release; err != nil {
		return 0, err
	}
	return len(p), nil
}

func (g *gatedConn) SetWriteDeadline(time.Time) error { return nil }

func (g *gatedConn) Close() error {
	close(g.closed)
	return nil
}

// wire receives the flusher's next write and checks it carried want.
func (g *gatedConn) wire(t *testing.T, want, why string) {
	t.Helper()
	if got := string(<-g.entered); got != want {
		t.Fatalf("the flusher wrote %q, want %q: %s", got, want, why)
	}
}

func mustWrite(t *testing.T, c net.Conn, s string) {
	t.Helper()
	if n, err := c.Write([]byte(s)); n != len(s) || err != nil {
		t.Fatalf("Write(%q) = %d, %v", s, n, err)
	}
}

func TestCoalescingConnSendsWhatQueuedDuringAWriteInTheNextOne(t *testing.T) {
	g := newGatedConn()
	c := newCoalescingConn(g, 1<<10, nil)
	mustWrite(t, c, "a")
	g.wire(t, "a", "an idle connection sends at once")
	for _, s := range []string{"b", "cc", "ddd"} {
		mustWrite(t, c, s)
	}
	g.release <- nil
	g.wire(t, "bccddd", "the three writes queued during the first")
	g.release <- nil
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case <-g.closed:
	default:
		t.Fatal("Close returned without closing the wrapped connection")
	}
}

func TestCoalescingConnBlocksAWriteThatWouldOverfillItsQueue(t *testing.T) {
	g := newGatedConn()
	waiting := make(chan struct{})
	c := newCoalescingConn(g, 4, func() { close(waiting) })
	mustWrite(t, c, "x")
	g.wire(t, "x", "an idle connection sends at once") // on the wire; the queue is empty
	// Larger than the bound, into an empty queue: queued whole.
	mustWrite(t, c, "abcdef")
	wrote := make(chan error, 1)
	go func() { _, err := c.Write([]byte("e")); wrote <- err }()
	<-waiting
	select {
	case err := <-wrote:
		t.Fatalf("a write past the bound returned (%v) while the queue was full", err)
	default: // it waits under the queue's lock until the flusher takes the queue
	}
	g.release <- nil // "x" written: the flusher takes "abcdef", which makes room
	g.wire(t, "abcdef", "queued whole while the first was on the wire")
	if err := <-wrote; err != nil {
		t.Fatalf("the blocked write: %v", err)
	}
	g.release <- nil
	g.wire(t, "e", "the write that waited for room")
	g.release <- nil
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func TestCoalescingConnReturnsAWriteErrorToTheWritesAfterIt(t *testing.T) {
	g := newGatedConn()
	c := newCoalescingConn(g, 1<<10, nil)
	mustWrite(t, c, "a")
	g.wire(t, "a", "an idle connection sends at once")
	mustWrite(t, c, "b") // queued before the failure is known
	boom := errors.New("connection reset")
	g.release <- boom
	// Close waits for the flusher, which stops at the failed write: "b" is
	// never written.
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := c.Write([]byte("c")); !errors.Is(err, boom) {
		t.Fatalf("Write after a failed write = %v, want %v", err, boom)
	}
}

func TestCoalescingConnRefusesWritesOnceClosed(t *testing.T) {
	g := newGatedConn()
	c := newCoalescingConn(g, 1<<10, nil)
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := c.Write([]byte("late")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Write after Close = %v, want net.ErrClosed", err)
	}
	if err := c.Close(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("second Close = %v, want net.ErrClosed", err)
	}
}

// Many writers through a queue far smaller than their bytes, over a real
// (in-memory) connection: every record arrives whole, each writer's in its
// order, and Close sends everything queued before it closes.
func TestCoalescingConnKeepsEveryWritersRecordsWholeAndInOrder(t *testing.T) {
	const writers, records = 8, 500
	client, server := net.Pipe()
	c := newCoalescingConn(client, 64, nil)
	received := make(chan []byte, 1)
	go func() { // ends at the EOF of c.Close
		b, _ := io.ReadAll(server)
		received <- b
	}()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for seq := range records {
				// A record: writer, sequence, then seq%32 bytes of the writer's id.
				rec := binary.BigEndian.AppendUint16([]byte{byte(w)}, uint16(seq))
				for range seq % 32 {
					rec = append(rec, byte(w))
				}
				if _, err := c.Write(rec); err != nil {
					t.Errorf("writer %d record %d: %v", w, seq, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	b := <-received
	next := make([]int, writers)
	for len(b) > 0 {
		if len(b) < 3 {
			t.Fatalf("%d bytes left: a torn record", len(b))
		}
		w, seq := int(b[0]), int(binary.BigEndian.Uint16(b[1:3]))
		if w >= writers || seq != next[w] {
			t.Fatalf("record of writer %d with sequence %d, want sequence %d", w, seq, next[min(w, writers-1)])
		}
		n := seq % 32
		if len(b) < 3+n {
			t.Fatalf("writer %d record %d: torn body", w, seq)
		}
		for _, x := range b[3 : 3+n] {
			if int(x) != w {
				t.Fatalf("writer %d record %d: a byte of writer %d in its body", w, seq, x)
			}
		}
		b = b[3+n:]
		next[w]++
	}
	for w, n := range next {
		if n != records {
			t.Errorf("writer %d: %d records arrived, want %d", w, n, records)
		}
	}
}

package wirestats

import (
	"io"
	"net"
	"reflect"
	"sync"
	"testing"
)

type code int

func (c code) String() string { return [...]string{"zero", "one", "two"}[c] }

// TestConnCountsBytesBothWays: what the wrapped side writes counts out,
// what it reads counts in, over an in-memory pipe.
func TestConnCountsBytesBothWays(t *testing.T) {
	var c Counters[code]
	server, client := net.Pipe()
	defer client.Close()
	nc := c.Conn(server)
	defer nc.Close()

	done := make(chan error, 1)
	go func() {
		_, err := client.Write(make([]byte, 300))
		done <- err
	}()
	if _, err := io.ReadFull(nc, make([]byte, 300)); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	go func() {
		_, err := io.ReadFull(client, make([]byte, 70))
		done <- err
	}()
	if _, err := nc.Write(make([]byte, 70)); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := c.Snapshot(); got.BytesIn != 300 || got.BytesOut != 70 {
		t.Errorf("counted in %d out %d, want in 300 out 70", got.BytesIn, got.BytesOut)
	}
}

// TestErrorsCountByCodeNameAndTheSnapshotIsTheCallers: concurrent
// CountErrors all count (run with -race), a snapshot names codes by
// String, and changing a snapshot's map changes no counter.
func TestErrorsCountByCodeNameAndTheSnapshotIsTheCallers(t *testing.T) {
	var c Counters[code]
	if got := c.Snapshot(); got.BytesIn != 0 || got.BytesOut != 0 || len(got.Errors) != 0 {
		t.Fatalf("a zero Counters' snapshot = %+v, want zeros", got)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 25 {
				c.CountError(1)
			}
			c.CountError(2)
		})
	}
	wg.Wait()
	snap := c.Snapshot()
	want := map[string]uint64{"one": 100, "two": 4}
	if !reflect.DeepEqual(snap.Errors, want) {
		t.Errorf("errors %v, want %v", snap.Errors, want)
	}
	snap.Errors["one"] = 0
	if got := c.Snapshot().Errors["one"]; got != 100 {
		t.Errorf("after changing a snapshot, errors[one] = %d, want 100", got)
	}
}

// shortConn accepts only the first n bytes of a Write, then fails.
type shortConn struct {
	net.Conn
	n int
}

func (s shortConn) Write(b []byte) (int, error) {
	if len(b) > s.n {
		return s.n, io.ErrShortWrite
	}
	return len(b), nil
}

// TestShortWriteCountsOnlyWhatWasWritten: Write counts its bytes before
// writing (so a peer that read them never sees a count without them) and
// takes back what a failed write did not send.
func TestShortWriteCountsOnlyWhatWasWritten(t *testing.T) {
	var c Counters[code]
	nc := c.Conn(shortConn{n: 30})
	if n, err := nc.Write(make([]byte, 100)); n != 30 || err == nil {
		t.Fatalf("short write returned %d, %v; want 30 and an error", n, err)
	}
	if _, err := nc.Write(make([]byte, 20)); err != nil {
		t.Fatal(err)
	}
	if got := c.Snapshot().BytesOut; got != 50 {
		t.Errorf("bytes out after writes of 30 (of 100) and 20: got %d, want 50", got)
	}
}

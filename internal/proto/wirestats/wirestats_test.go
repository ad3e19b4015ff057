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

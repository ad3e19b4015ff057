package queue

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"testing"
)

// A snapshot of version 1, written before relocation existed, restores as
// the same queue with nothing moved.
func TestSnapshotVersionOneStillRestores(t *testing.T) {
	for i, q := range fuzzQueues(t)[:2] {
		var v2 bytes.Buffer
		if err := q.Snapshot(&v2); err != nil {
			t.Fatal(err)
		}
		b := v2.Bytes()
		// Version 1: the version varint is 1 and the relocation section
		// (mark, counter and count, all zero here) is absent.
		body := append([]byte{}, b[:len(b)-4-3]...)
		if !bytes.Equal(b[len(b)-7:len(b)-4], []byte{0, 0, 0}) || body[len(snapshotMagic)] != 2 {
			t.Fatalf("queue %d: unexpected snapshot layout", i)
		}
		body[len(snapshotMagic)] = 1
		v1 := binary.LittleEndian.AppendUint32(body, crc32.Checksum(body, castagnoli))
		r := newQueue(q.lim, Config{})
		if err := r.Restore(bytes.NewReader(v1)); err != nil {
			t.Fatalf("queue %d: restoring version 1: %v", i, err)
		}
		var again bytes.Buffer
		if err := r.Snapshot(&again); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again.Bytes(), b) {
			t.Fatalf("queue %d: the version 1 snapshot restored to another state", i)
		}
	}
}

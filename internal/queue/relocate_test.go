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

// A moved body's size in a snapshot is its message's: one that differs is
// refused, since the queue keeps no size of its own for moved bodies.
func TestSnapshotWithAMovedBodyOfTheWrongSizeIsRefused(t *testing.T) {
	q, err := New(DefaultConfig(), 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []Command{
		&Enqueue{Messages: []Message{{Ref: Ref{Index: 1}, Bytes: 5}, {Ref: Ref{Index: 2}, Bytes: 7}}},
		&Relocate{Index: 3, Cutoff: 2, Refs: []Ref{{Index: 1}}},
	} {
		if res, _ := q.Apply(cmd); res.Err != nil {
			t.Fatal(res.Err)
		}
	}
	var b bytes.Buffer
	if err := q.Snapshot(&b); err != nil {
		t.Fatal(err)
	}
	// The section ends with the one moved body's size, 5, before the CRC.
	body := b.Bytes()[:b.Len()-4]
	if body[len(body)-1] != 5 {
		t.Fatalf("unexpected snapshot layout: last byte %d", body[len(body)-1])
	}
	if err := newQueue(q.lim, Config{}).Restore(bytes.NewReader(withChecksum(body))); err != nil {
		t.Fatalf("the snapshot as written: %v", err)
	}
	body[len(body)-1] = 6
	if err := newQueue(q.lim, Config{}).Restore(bytes.NewReader(withChecksum(body))); err == nil {
		t.Fatal("a moved body of 6 bytes for a message of 5 was restored")
	}
}

package queue

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"testing"
)

// Snapshots of version 1, written before relocation existed, and of
// version 2, before senders, restore as the same queue with nothing moved
// and no senders.
func TestOlderSnapshotVersionsStillRestore(t *testing.T) {
	for i, q := range fuzzQueues(t)[:2] {
		var v3 bytes.Buffer
		if err := q.Snapshot(&v3); err != nil {
			t.Fatal(err)
		}
		b := v3.Bytes()
		// Each version lacks the last section of the next: the senders
		// (count and two counters) and the relocation (mark, counter and
		// count), all zero here.
		if !bytes.Equal(b[len(b)-4-6:len(b)-4], make([]byte, 6)) || b[len(snapshotMagic)] != snapshotVersion {
			t.Fatalf("queue %d: unexpected snapshot layout", i)
		}
		for version := 1; version < snapshotVersion; version++ {
			body := append([]byte{}, b[:len(b)-4-3*(snapshotVersion-version)]...)
			body[len(snapshotMagic)] = byte(version)
			old := binary.LittleEndian.AppendUint32(body, crc32.Checksum(body, castagnoli))
			r := newQueue(q.lim, Config{})
			if err := r.Restore(bytes.NewReader(old)); err != nil {
				t.Fatalf("queue %d: restoring version %d: %v", i, version, err)
			}
			var again bytes.Buffer
			if err := r.Snapshot(&again); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again.Bytes(), b) {
				t.Fatalf("queue %d: the version %d snapshot restored to another state", i, version)
			}
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
	// The section ends with the one moved body's size, 5, before the
	// empty senders section (three zeros) and the CRC.
	body := b.Bytes()[:b.Len()-4]
	size := len(body) - 1 - 3
	if body[size] != 5 {
		t.Fatalf("unexpected snapshot layout: byte %d", body[size])
	}
	if err := newQueue(q.lim, Config{}).Restore(bytes.NewReader(withChecksum(body))); err != nil {
		t.Fatalf("the snapshot as written: %v", err)
	}
	body[size] = 6
	if err := newQueue(q.lim, Config{}).Restore(bytes.NewReader(withChecksum(body))); err == nil {
		t.Fatal("a moved body of 6 bytes for a message of 5 was restored")
	}
}

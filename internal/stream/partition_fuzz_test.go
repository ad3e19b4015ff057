package stream

import (
	"bytes"
	"testing"
)

func partitionSeedCommands() []Command {
	return []Command{
		Append{Now: 1000, Index: 1, LastOffsetDelta: 4, MaxTimestamp: 999, Bytes: 512, ProducerID: 7, ProducerEpoch: 1, BaseSequence: 10},
		Append{Now: 1, Index: 9, Bytes: 1, ProducerID: NoProducerID},
		RetentionTick{Now: 123456},
		CommitOffset{Now: 5, Group: "group", Offset: 42, LeaderEpoch: 3, Metadata: "meta"},
		DeleteOffsets{Group: "group"},
		MarkGroup{Now: 9, Group: "group", Empty: true},
		Configure{Config: PartitionConfig{RetentionBytes: 1 << 30, RetentionMs: 3600_000, OffsetsRetentionMs: -1}},
	}
}

// FuzzDecodeCommand: decoding arbitrary bytes never panics; what decodes
// re-encodes to bytes that decode to the same command, and applies to a
// partition without breaking it.
func FuzzDecodeCommand(f *testing.F) {
	for _, c := range partitionSeedCommands() {
		f.Add(EncodeCommand(nil, c))
	}
	f.Add([]byte{})
	f.Add([]byte{tagAppend, 0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		cmd, err := DecodeCommand(b)
		if err != nil {
			return
		}
		enc := EncodeCommand(nil, cmd)
		again, err := DecodeCommand(enc)
		if err != nil {
			t.Fatalf("re-decode of %x: %v", enc, err)
		}
		if !bytes.Equal(EncodeCommand(nil, again), enc) {
			t.Fatalf("encoding not stable for %#v", cmd)
		}
		p := NewPartition(PartitionConfig{}, 1)
		if a, ok := cmd.(Append); ok {
			a.Index = p.NextIndex()
			cmd = a
		}
		p.Apply(cmd)
		checkSnapshot(t, p)
	})
}

// FuzzRestorePartition: restoring arbitrary bytes never panics and never
// allocates past the limits; a restored partition snapshots to the same
// bytes and keeps working.
func FuzzRestorePartition(f *testing.F) {
	p := NewPartition(PartitionConfig{RetentionBytes: 100}, 3)
	f.Add(p.Snapshot(nil))
	for _, c := range partitionSeedCommands() {
		if a, ok := c.(Append); ok {
			a.Index = p.NextIndex()
			c = a
		}
		p.Apply(c)
	}
	p.Apply(CommitOffset{Group: "other", Offset: 1})
	f.Add(p.Snapshot(nil))
	f.Add([]byte{partitionSnapshotVersion})
	f.Add(unhex(f, partitionSnapshotV1))
	f.Add(unhex(f, partitionSnapshotV2))
	f.Fuzz(func(t *testing.T, b []byte) {
		q, err := RestorePartition(b)
		if err != nil {
			return
		}
		snap := q.Snapshot(nil)
		r, err := RestorePartition(snap)
		if err != nil {
			t.Fatalf("restore of a re-snapshot: %v", err)
		}
		if !bytes.Equal(r.Snapshot(nil), snap) {
			t.Fatalf("snapshot not stable")
		}
		q.Apply(Append{Now: 1, Index: q.NextIndex(), Bytes: 1, ProducerID: 7, BaseSequence: 1})
		q.Apply(RetentionTick{Now: 1 << 40})
		q.Apply(CommitOffset{Group: "g", Offset: 1})
		checkSnapshot(t, q)
	})
}

package stream

import "testing"

// BenchmarkApplyAppend measures applying one 1 KiB batch of 10 records,
// without and with an idempotent producer. SetBytes is the batch size, so
// MB/s is the log bandwidth one partition's state machine can keep up with.
func BenchmarkApplyAppend(b *testing.B) {
	for _, bc := range []struct {
		name string
		pid  int64
	}{{"plain", NoProducerID}, {"idempotent", 7}} {
		b.Run(bc.name, func(b *testing.B) {
			p := NewPartition(PartitionConfig{RetentionBytes: 1 << 30}, 1)
			b.ReportAllocs()
			b.SetBytes(1024)
			seq := int32(0)
			for i := 0; b.Loop(); i++ {
				r := p.ApplyAppend(Append{Now: int64(i), Index: p.NextIndex(), LastOffsetDelta: 9,
					MaxTimestamp: int64(i), Bytes: 1024, ProducerID: bc.pid, BaseSequence: seq})
				if r.Status != AppendOK {
					b.Fatalf("append %d: %v", i, r.Status)
				}
				seq += 10
				if seq < 0 {
					seq = 0
				}
			}
		})
	}
}

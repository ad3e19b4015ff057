package stream

import (
	"testing"

	"pgregory.net/rapid"
)

type sentBatch struct {
	pid          int64
	epoch        int16
	seq, records int32
}

// TestLeaderCheckThenApplyNeverDuplicates plays the leader's protocol with
// producers that retry: every send is checked with Check against the
// applied state and the leader's in-flight appends, proposed only when OK,
// and applied later in proposal order. Then Apply must agree with every
// Check (never refuse what was proposed), and each producer's applied
// sequence ranges must follow one another without gap or repeat within an
// epoch.
func TestLeaderCheckThenApplyNeverDuplicates(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		p := NewPartition(PartitionConfig{}, 1)
		var inflight []Append
		sent := map[int64][]sentBatch{} // per producer, in send order
		next := map[int64]int32{}       // next new sequence per producer
		epoch := map[int64]int16{}
		lastApplied := map[int64]sentBatch{}
		offsets := map[sentBatch]int64{} // base offset of each applied batch
		now := int64(0)
		for range rapid.IntRange(1, 300).Draw(t, "steps") {
			now++
			pid := rapid.Int64Range(1, 2).Draw(t, "producer")
			switch rapid.IntRange(0, 9).Draw(t, "op") {
			case 0, 1, 2: // apply the oldest in-flight append
				if len(inflight) == 0 {
					continue
				}
				a := inflight[0]
				inflight = inflight[1:]
				a.Index = p.NextIndex()
				if r := p.ApplyAppend(a); r.Status != AppendOK {
					t.Fatalf("apply of a checked append %+v: %v", a, r.Status)
				}
				b := sentBatch{pid: a.ProducerID, epoch: a.ProducerEpoch, seq: a.BaseSequence, records: a.LastOffsetDelta + 1}
				if prev, ok := lastApplied[b.pid]; ok && prev.epoch == b.epoch && prev.seq+prev.records != b.seq {
					t.Fatalf("producer %d: applied seq %d after %d+%d", b.pid, b.seq, prev.seq, prev.records)
				}
				lastApplied[b.pid] = b
				offsets[b] = p.HighWatermark() - int64(b.records)
			case 3: // epoch bump, when none of the producer's batches is in flight
				if hasInflight(inflight, pid) {
					continue
				}
				epoch[pid]++
				next[pid] = 0
				sent[pid] = nil
			case 4, 5, 6: // a new batch
				b := sentBatch{pid: pid, epoch: epoch[pid], seq: next[pid], records: rapid.Int32Range(1, 4).Draw(t, "records")}
				next[pid] += b.records
				sent[pid] = append(sent[pid], b)
				propose(t, p, &inflight, b, now, offsets)
			default: // a retry of an earlier batch of this epoch
				if len(sent[pid]) == 0 {
					continue
				}
				b := rapid.SampledFrom(sent[pid]).Draw(t, "retry")
				propose(t, p, &inflight, b, now, offsets)
			}
		}
	})
}

func hasInflight(inflight []Append, pid int64) bool {
	for _, a := range inflight {
		if a.ProducerID == pid {
			return true
		}
	}
	return false
}

// propose checks b as the leader would and proposes it only when OK.
// A duplicate of an applied batch must name that batch's offsets.
func propose(t *rapid.T, p *Partition, inflight *[]Append, b sentBatch, now int64, offsets map[sentBatch]int64) {
	a := Append{Now: now, LastOffsetDelta: b.records - 1, Bytes: 1, ProducerID: b.pid,
		ProducerEpoch: b.epoch, BaseSequence: b.seq}
	r := p.Check(a, *inflight)
	switch r.Status {
	case AppendOK:
		*inflight = append(*inflight, a)
	case AppendDuplicate:
		if want, applied := offsets[b]; applied && r.BaseOffset != want {
			t.Fatalf("duplicate of %+v: got offset %d, want %d", b, r.BaseOffset, want)
		}
		if _, applied := offsets[b]; !applied && r.BaseOffset != -1 {
			t.Fatalf("duplicate of in-flight %+v: got offset %d, want -1", b, r.BaseOffset)
		}
	case AppendOutOfOrder:
		// a retry of something applied or in flight, or one that overtook
		// its predecessor: the producer is told, nothing is proposed
	default:
		t.Fatalf("check of %+v: %v", b, r.Status)
	}
}

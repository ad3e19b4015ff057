package broker

import (
	"fmt"
	"path"
	"slices"
	"strings"
	"testing"

	"github.com/ferry-mq/ferry/internal/storage/log/batch"
)

// leaderOfPartition returns the index of the running node leading the
// partition's group.
func (cl *cluster) leaderOfPartition(tenant string, p PartitionRef) int {
	cl.t.Helper()
	return cl.leaderWhere("stream "+p.Stream, func(b *Broker) bool {
		s, err := b.lookupStream(tenant, p.Stream)
		return err == nil && b.partitionLeaderOf(GroupID(s.Partitions[p.Partition].Group)) != nil
	})
}

// An idempotent producer pipelining five batches at a time, as Kafka
// clients do, loses its partition's leader mid-stream: the batches in
// flight fail, it resends from its first unconfirmed sequence on the new
// leader (as a Kafka client does), and the log ends up holding every
// batch once, in sequence order, at the offset its confirmation gave.
func TestClusterPipelinedIdempotentProducerSurvivesALeaderChange(t *testing.T) {
	cl := threeNodes(t)
	ctx := testCtx(t)
	conns := cl.conns()
	p, pid, epoch := idempotentStream(t, ctx, conns[0], StreamSpec{Name: "idem", Partitions: 1, ReplicationFactor: 3})
	const total, window = 300, 5
	data := func(seq int) []byte {
		return kafkaBatch(t, batch.Header{ProducerID: pid, ProducerEpoch: epoch, BaseSequence: int32(seq)}, []int64{1}, fmt.Sprintf("s%03d", seq))
	}
	type outcome struct {
		seq int
		off int64
		err error
	}
	offsets := make([]int64, total)
	confirmed := make([]bool, total)
	next := 0 // every sequence below is confirmed
	stopped := false
	rounds := 0
	for ; next < total; rounds++ {
		if rounds == 50 {
			t.Fatalf("50 rounds and only %d of %d batches confirmed", next, total)
		}
		lead := cl.leaderOfPartition(conns[0].p.Tenant, p)
		c := conns[lead]
		outcomes := make(chan outcome, total)
		sent, inflight, failed := next, 0, false
		for inflight > 0 || (!failed && sent < total) {
			for !failed && sent < total && inflight < window {
				seq := sent
				admitted := make(chan struct{})
				go func() {
					off, _, _, err := c.ProduceBatchOrdered(ctx, p, data(seq), -1, func() { close(admitted) })
					outcomes <- outcome{seq, off, err}
				}()
				<-admitted
				sent++
				inflight++
			}
			o := <-outcomes
			inflight--
			if o.err != nil {
				failed = true // let the batches in flight finish, then resend
				continue
			}
			if confirmed[o.seq] && offsets[o.seq] != o.off {
				t.Fatalf("sequence %d confirmed at offset %d, then at %d", o.seq, offsets[o.seq], o.off)
			}
			confirmed[o.seq], offsets[o.seq] = true, o.off
			if !stopped && o.seq >= total/3 {
				stopped = true
				cl.stop(lead) // with batches of the producer in flight
			}
		}
		for next < total && confirmed[next] {
			next++
		}
	}
	if !stopped || rounds < 2 {
		t.Fatalf("stopped the leader: %v; rounds: %d; want a resend after the stop", stopped, rounds)
	}
	c := conns[cl.leaderOfPartition(conns[0].p.Tenant, p)]
	var vals []string
	var offs []int64
	for from := int64(0); ; {
		res, err := c.Fetch(ctx, p, from, 1<<20, 1, 0)
		if err != nil {
			t.Fatal(err)
		}
		v, o := records(t, res.Records)
		if len(v) == 0 {
			break
		}
		vals, offs = append(vals, v...), append(offs, o...)
		from = o[len(o)-1] + 1
		if from >= res.HighWatermark {
			break
		}
	}
	want := make([]string, total)
	for i := range want {
		want[i] = fmt.Sprintf("s%03d", i)
	}
	if !slices.Equal(vals, want) {
		t.Fatalf("the log holds %d records %v, want s000 to s%03d once each, in order", len(vals), vals, total-1)
	}
	for i, off := range offs {
		if off != offsets[i] {
			t.Errorf("s%03d is at offset %d, its confirmation said %d", i, off, offsets[i])
		}
	}
}

// A stream's segment.bytes reaches its partition's log on every replica,
// followers included: each writes the entries it receives into segments
// of that size, not of the provider's.
func TestClusterEveryReplicaRollsAtTheStreamsSegmentBytes(t *testing.T) {
	cl := threeNodes(t)
	ctx := testCtx(t)
	conns := cl.conns()
	p := PartitionRef{Stream: "seg"}
	if err := conns[0].DeclareStream(ctx, StreamSpec{Name: "seg", Partitions: 1, ReplicationFactor: 3,
		Config: map[string]string{"segment.bytes": "65536"}}); err != nil {
		t.Fatal(err)
	}
	lead := cl.leaderOfPartition(conns[0].p.Tenant, p)
	body := strings.Repeat("x", 20<<10)
	for range 8 {
		if _, _, _, err := conns[lead].ProduceBatch(ctx, p, kafkaBatch(t, plainHeader(), []int64{1}, body), -1); err != nil {
			t.Fatal(err)
		}
	}
	s, err := cl.nodes[0].lookupStream(conns[0].p.Tenant, "seg")
	if err != nil {
		t.Fatal(err)
	}
	dir := path.Join("/data/logs", fmt.Sprintf("%020d", s.Partitions[0].Group))
	segments := func(i int) int {
		names, _ := cl.fs[i].List(dir)
		n := 0
		for _, name := range names {
			if strings.HasSuffix(name, ".seg") {
				n++
			}
		}
		return n
	}
	// Every replica signals its activity when it applies an entry, after
	// writing it.
	cl.waitFor(func() bool {
		return segments(0) >= 3 && segments(1) >= 3 && segments(2) >= 3
	}, "160 KiB in 64 KiB segments: fewer than 3 segment files on some node")
}

package broker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/base/vfs"
	"github.com/ferry-mq/ferry/internal/storage/log/batch"
)

// idempotentStream declares spec's stream through c and returns its first
// partition, and the id and epoch of a new idempotent producer.
func idempotentStream(t *testing.T, ctx context.Context, c *Conn, spec StreamSpec) (PartitionRef, int64, int16) {
	t.Helper()
	if err := c.DeclareStream(ctx, spec); err != nil {
		t.Fatal(err)
	}
	pid, epoch, err := c.InitProducerID(ctx)
	if err != nil || pid < 0 {
		t.Fatalf("InitProducerID: id %d, %v", pid, err)
	}
	return PartitionRef{Stream: spec.Name}, pid, epoch
}

// An idempotent producer's refused batch is a *ProducerError naming the
// reason, over the base code that front ends without producer semantics
// map.
func TestProduceRefusalsAreTypedProducerErrors(t *testing.T) {
	b := openNode(t, nodeOpts{})
	c := guestConn(t, b)
	ctx := testCtx(t)
	p, pid, _ := idempotentStream(t, ctx, c, StreamSpec{Name: "typed"})
	produce := func(epoch int16, seq int32) error {
		_, _, _, err := c.ProduceBatch(ctx, p, kafkaBatch(t, batch.Header{ProducerID: pid, ProducerEpoch: epoch, BaseSequence: seq}, []int64{1}, "v"), -1)
		return err
	}
	if err := produce(1, 0); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		epoch   int16
		seq     int32
		refusal ProducerRefusal
		code    base.Code
	}{
		{"a sequence gap", 1, 7, RefusedOutOfOrder, base.CodeInvalidArgument},
		{"an older epoch", 0, 1, RefusedFenced, base.CodeConflict},
	} {
		err := produce(tc.epoch, tc.seq)
		var pe *ProducerError
		if !errors.As(err, &pe) || pe.Refusal != tc.refusal || base.CodeOf(err) != tc.code {
			t.Errorf("%s: got %v (%T), want a ProducerError with refusal %d and code %v", tc.name, err, err, tc.refusal, tc.code)
		}
	}
	if err := produce(1, 1); err != nil {
		t.Errorf("the next batch in sequence after the refusals: %v", err)
	}
}

// Idempotent producers on one partition run concurrently (each one's
// batches one at a time): every producer's records land once each, in its
// sequence order, and each still gets its own duplicate and gap answers.
func TestConcurrentIdempotentProducersKeepTheirOwnSequences(t *testing.T) {
	b := openNode(t, nodeOpts{})
	c := guestConn(t, b)
	ctx := testCtx(t)
	if err := c.DeclareStream(ctx, StreamSpec{Name: "many"}); err != nil {
		t.Fatal(err)
	}
	p := PartitionRef{Stream: "many"}
	const producers, batches = 4, 15
	errs := make(chan error, producers*(batches+2))
	var wg sync.WaitGroup
	for i := range producers {
		pid, epoch, err := c.InitProducerID(ctx)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := range int32(batches) {
				data := kafkaBatch(t, batch.Header{ProducerID: pid, ProducerEpoch: epoch, BaseSequence: seq}, []int64{1}, fmt.Sprintf("p%d-%02d", i, seq))
				off, _, _, err := c.ProduceBatch(ctx, p, data, -1)
				if err != nil {
					errs <- fmt.Errorf("producer %d seq %d: %w", i, seq, err)
					return
				}
				if again, _, _, err := c.ProduceBatch(ctx, p, data, -1); err != nil || again != off {
					errs <- fmt.Errorf("producer %d seq %d duplicate: offset %d %v, want the original %d", i, seq, again, err, off)
				}
			}
			gap := kafkaBatch(t, batch.Header{ProducerID: pid, ProducerEpoch: epoch, BaseSequence: batches + 3}, []int64{1}, "gap")
			var pe *ProducerError
			if _, _, _, err := c.ProduceBatch(ctx, p, gap, -1); !errors.As(err, &pe) || pe.Refusal != RefusedOutOfOrder {
				errs <- fmt.Errorf("producer %d gap: %v, want out of order", i, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	res, err := c.Fetch(ctx, p, 0, 1<<20, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	vals, _ := records(t, res.Records)
	next := make([]int, producers)
	for _, v := range vals {
		var i, seq int
		if _, err := fmt.Sscanf(v, "p%d-%d", &i, &seq); err != nil || i >= producers || seq != next[i] {
			t.Fatalf("the log holds %q after producer %d's %d records: want each producer's records once, in order (log %v)", v, i, next[min(i, producers-1)], vals)
		}
		next[i]++
	}
	for i, n := range next {
		if n != batches {
			t.Errorf("producer %d: %d records in the log, want %d", i, n, batches)
		}
	}
}

// syncGate holds every fsync while it is closed, keeping the engine's
// loop, and so every proposal behind it, in flight.
type syncGate struct {
	mu   sync.Mutex
	open chan struct{} // nil while syncs pass; closed to let held ones go
}

func (g *syncGate) Inject(p vfs.Point) error {
	if p.Op == vfs.OpSync && !p.After {
		g.mu.Lock()
		open := g.open
		g.mu.Unlock()
		if open != nil {
			<-open
		}
	}
	return nil
}

func (g *syncGate) hold() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.open = make(chan struct{})
}

func (g *syncGate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	close(g.open)
	g.open = nil
}

// An idempotent producer's batches are pipelined: the next is checked and
// submitted once the one before it is admitted, while that one's fsync is
// still under way. The check counts the batches in flight, so a retry of
// one of them answers the original's offset and a gap after them is
// refused at once; once the fsyncs complete, every batch is in the log
// once, in sequence order.
func TestIdempotentBatchesArePipelined(t *testing.T) {
	gate := &syncGate{}
	b := openNode(t, nodeOpts{fs: vfs.WithFaults(vfs.NewMem(), gate)})
	c := guestConn(t, b)
	ctx := testCtx(t)
	p, pid, epoch := idempotentStream(t, ctx, c, StreamSpec{Name: "piped"})
	data := func(seq int32) []byte {
		return kafkaBatch(t, batch.Header{ProducerID: pid, ProducerEpoch: epoch, BaseSequence: seq}, []int64{1}, fmt.Sprintf("s%d", seq))
	}
	first, _, _, err := c.ProduceBatch(ctx, p, data(0), -1)
	if err != nil {
		t.Fatal(err)
	}

	type outcome struct {
		off int64
		err error
	}
	gate.hold()
	submit := func(b []byte) <-chan outcome {
		out := make(chan outcome, 1)
		admitted := make(chan struct{})
		go func() {
			off, _, _, err := c.ProduceBatchOrdered(ctx, p, b, -1, func() { close(admitted) })
			out <- outcome{off, err}
		}()
		<-admitted
		return out
	}
	one, two, retry, three := submit(data(1)), submit(data(2)), submit(data(1)), submit(data(3))
	var pe *ProducerError
	if _, _, _, err := c.ProduceBatch(ctx, p, data(9), -1); !errors.As(err, &pe) || pe.Refusal != RefusedOutOfOrder {
		t.Errorf("a gap after the batches in flight: %v, want out of order", err)
	}
	select {
	case o := <-one:
		t.Fatalf("batch 1 answered (%d, %v) with its fsync held", o.off, o.err)
	default:
	}
	gate.release()
	o1, o2, or, o3 := <-one, <-two, <-retry, <-three
	if o1.err != nil || o2.err != nil || or.err != nil || o3.err != nil {
		t.Fatalf("batches 1, 2, the retry of 1 and 3: %v, %v, %v, %v", o1.err, o2.err, or.err, o3.err)
	}
	if o1.off != first+1 || o2.off != first+2 || o3.off != first+3 || or.off != o1.off {
		t.Errorf("offsets: batch 0 %d, 1 %d, 2 %d, 3 %d, retry of 1 %d; want consecutive, the retry the original's", first, o1.off, o2.off, o3.off, or.off)
	}
	res, err := c.Fetch(ctx, p, 0, 1<<20, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if vals, _ := records(t, res.Records); !slices.Equal(vals, []string{"s0", "s1", "s2", "s3"}) {
		t.Errorf("the log holds %q, want s0 to s3", vals)
	}
}

// A chain refuses every batch after one that failed, with the failure's
// code, and every batch of a term other than its first's.
func TestProduceChainIsAllOrNothingInOrder(t *testing.T) {
	var c produceChain
	if err := c.admit(3); err != nil {
		t.Fatalf("first batch: %v", err)
	}
	if err := c.admit(3); err != nil {
		t.Fatalf("second batch, same term: %v", err)
	}
	if err := c.admit(4); base.CodeOf(err) != base.CodeNotLeader {
		t.Errorf("a batch of a later term: %v, want not leader", err)
	}
	if err := c.admit(3); base.CodeOf(err) != base.CodeNotLeader {
		t.Errorf("the first term again after the refusal: %v, want the chain broken", err)
	}

	var d produceChain
	if err := d.admit(5); err != nil {
		t.Fatal(err)
	}
	d.fail(base.Errorf(base.CodeOverloaded, "too many proposals"))
	d.fail(base.Errorf(base.CodeTimeout, "a later failure"))
	if !d.isBroken() {
		t.Error("chain not broken after a failure")
	}
	if err := d.admit(5); base.CodeOf(err) != base.CodeOverloaded {
		t.Errorf("a batch after a failure: %v, want the first failure's code", err)
	}
}

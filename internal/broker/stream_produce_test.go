package broker

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/storage/log/batch"
)

// An idempotent producer's refused batch is a *ProducerError naming the
// reason, over the base code that front ends without producer semantics
// map.
func TestProduceRefusalsAreTypedProducerErrors(t *testing.T) {
	b := openNode(t, nodeOpts{})
	c := guestConn(t, b)
	ctx := testCtx(t)
	if err := c.DeclareStream(ctx, StreamSpec{Name: "typed"}); err != nil {
		t.Fatal(err)
	}
	pid, _, err := c.InitProducerID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p := PartitionRef{Stream: "typed"}
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

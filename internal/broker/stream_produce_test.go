package broker

import (
	"errors"
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

package loadgen

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ferry-mq/ferry/internal/base"
)

func TestBitmapSetsDetectsDuplicatesAndRefusesPastTheLimit(t *testing.T) {
	var b Bitmap
	for _, seq := range []uint64{0, 63, 64, chunkBits - 1, chunkBits, base.LoadgenSequencesMax - 1} {
		if dup, ok := b.Set(seq); dup || !ok {
			t.Errorf("Set(%d) first time: got dup=%v ok=%v, want false true", seq, dup, ok)
		}
		if dup, ok := b.Set(seq); !dup || !ok {
			t.Errorf("Set(%d) second time: got dup=%v ok=%v, want true true", seq, dup, ok)
		}
		if !b.Has(seq) {
			t.Errorf("Has(%d): got false after Set", seq)
		}
	}
	if dup, ok := b.Set(base.LoadgenSequencesMax); dup || ok {
		t.Errorf("Set(LoadgenSequencesMax): got dup=%v ok=%v, want refused", dup, ok)
	}
	if b.Has(1) || b.Has(base.LoadgenSequencesMax) {
		t.Errorf("Has reports a sequence never set")
	}
	if got := b.Count(); got != 6 {
		t.Errorf("Count: got %d, want 6", got)
	}
	if got, want := len(b.snapshot()), int(base.LoadgenSequencesMax/chunkBits); got != want {
		t.Errorf("chunk table: got %d entries, want %d", got, want)
	}
	allocated := 0
	for _, c := range b.snapshot() {
		if c != nil {
			allocated++
		}
	}
	if allocated != 3 {
		t.Errorf("chunks allocated: got %d, want 3 (only those holding a set bit)", allocated)
	}
}

func TestBitmapCountsDifferencesBelowALimit(t *testing.T) {
	var a, b Bitmap
	for i := uint64(0); i < 200; i++ {
		a.Set(i)
		if i%3 == 0 {
			b.Set(i)
		}
	}
	a.Set(chunkBits + 5)
	cases := []struct{ limit, want uint64 }{
		{0, 0}, {1, 0}, {2, 1}, {64, 42}, {65, 43}, {200, 133}, {chunkBits + 5, 133}, {chunkBits + 6, 134},
	}
	for _, c := range cases {
		if got := a.CountAndNot(&b, c.limit); got != c.want {
			t.Errorf("CountAndNot(limit %d): got %d, want %d", c.limit, got, c.want)
		}
	}
	var empty Bitmap
	if got := a.CountAndNot(&empty, 1<<40); got != 201 {
		t.Errorf("CountAndNot(empty): got %d, want 201", got)
	}
	for _, c := range []struct{ from, want uint64 }{{0, 201}, {63, 138}, {64, 137}, {199, 2}, {200, 1}, {chunkBits + 6, 0}} {
		if got := a.CountFrom(c.from); got != c.want {
			t.Errorf("CountFrom(%d): got %d, want %d", c.from, got, c.want)
		}
	}
}

func TestBitmapConcurrentSetsCountEachSequenceOnce(t *testing.T) {
	var b Bitmap
	var wg sync.WaitGroup
	var dups [4]int
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := uint64(0); i < 3*chunkBits; i += 1 + uint64(g%2) { // odd goroutines overlap the even ones
				if dup, _ := b.Set(i); dup {
					dups[g]++
				}
			}
		}()
	}
	wg.Wait()
	if got := b.Count(); got != 3*chunkBits {
		t.Errorf("Count: got %d, want %d", got, 3*chunkBits)
	}
	total := dups[0] + dups[1] + dups[2] + dups[3]
	if want := 2*3*chunkBits + 2*3*chunkBits/2 - 3*chunkBits; total != want {
		t.Errorf("duplicates reported: got %d, want %d (every Set beyond the first)", total, want)
	}
}

func body(runID, producer uint32, seq uint64) []byte {
	b := make([]byte, HeaderBytes+4)
	EncodeHeader(b, Header{RunID: runID, Producer: producer, Seq: seq})
	return b
}

func TestLedgerClassifiesEveryReceipt(t *testing.T) {
	l, err := NewLedger(2, 2, []Flow{{0, 0}, {0, 1}, {1, 1}})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		l.Send(0)
	}
	l.Send(1)
	l.Confirm(0, 0)
	l.Confirm(0, 1)
	l.Nack(0, 2)
	l.Confirm(1, 0)
	steps := []struct {
		q    int
		body []byte
		want Receipt
	}{
		{0, body(9, 0, 0), ReceiptFresh},
		{0, body(9, 0, 0), ReceiptDuplicate},
		{1, body(9, 0, 0), ReceiptFresh}, // the other queue of the fan-out
		{1, body(9, 0, 1), ReceiptFresh},
		{0, body(9, 1, 0), ReceiptPhantom}, // producer 1 does not feed queue 0
		{1, body(9, 0, 3), ReceiptPhantom}, // never sent
		{1, body(9, 2, 0), ReceiptPhantom}, // no such producer
		{1, body(8, 0, 0), ReceiptForeign}, // another run
		{1, []byte("short"), ReceiptForeign},
	}
	for i, s := range steps {
		if _, got := l.Receive(s.q, 9, s.body); got != s.want {
			t.Errorf("step %d: got receipt %d, want %d", i, got, s.want)
		}
	}
	// Producer 0's message 1 never reached queue 0, producer 1's message 0
	// never reached queue 1: two confirmed messages lost. Message 2 was
	// nacked, so its absence is not a loss.
	want := Tally{Sent: 4, Confirmed: 3, Nacked: 1, Received: 3, Lost: 2, Duplicated: 1, Phantom: 3, Foreign: 2}
	if got := l.Tally(); got != want {
		t.Errorf("tally: got %+v, want %+v", got, want)
	}
	if l.Tally().Err() == nil {
		t.Errorf("Err of a tally with losses: got nil")
	}
	if all, confirmed := l.Expected(); all != 5 || confirmed != 5 {
		t.Errorf("Expected: got %d, %d, want 5 (two queues of producer 0's 2 unnacked, one of producer 1's), 5", all, confirmed)
	}
}

func TestLedgerCountsASecondSettlementAsABrokerBug(t *testing.T) {
	l, _ := NewLedger(1, 1, []Flow{{0, 0}})
	l.Send(0)
	l.Confirm(0, 0)
	l.Nack(0, 0)
	tally := l.Tally()
	if tally.DupSettles != 1 || tally.Unconfirmed != 0 || tally.Err() == nil {
		t.Errorf("got %+v err %v, want one double settlement failing the run", tally, tally.Err())
	}
}

func TestLedgerRefusesToSendPastTheSequenceLimit(t *testing.T) {
	l, _ := NewLedger(1, 1, []Flow{{0, 0}})
	l.producers[0].next.Store(base.LoadgenSequencesMax - 1)
	if seq, err := l.Send(0); err != nil || seq != base.LoadgenSequencesMax-1 {
		t.Fatalf("Send of the last sequence: got %d, %v", seq, err)
	}
	if _, err := l.Send(0); base.CodeOf(err) != base.CodeTooLarge {
		t.Errorf("Send past the limit: got %v, want too_large", err)
	}
	if got := l.Tally().Sent; got != base.LoadgenSequencesMax {
		t.Errorf("sent after a refused Send: got %d, want %d", got, uint64(base.LoadgenSequencesMax))
	}
}

func TestNewLedgerLimitsAtTheirEdges(t *testing.T) {
	if _, err := NewLedger(base.LoadgenProducersMax, base.LoadgenQueuesMax, nil); err != nil {
		t.Errorf("at the limits: %v", err)
	}
	if _, err := NewLedger(base.LoadgenProducersMax+1, 1, nil); base.CodeOf(err) != base.CodeInvalidArgument {
		t.Errorf("producers over the limit: got %v", err)
	}
	if _, err := NewLedger(1, base.LoadgenQueuesMax+1, nil); base.CodeOf(err) != base.CodeInvalidArgument {
		t.Errorf("queues over the limit: got %v", err)
	}
	if _, err := NewLedger(1, 1, []Flow{{1, 0}}); base.CodeOf(err) != base.CodeInvalidArgument {
		t.Errorf("flow from a missing producer: got %v", err)
	}
}

func TestLatencyPercentilesClampsAndNegatives(t *testing.T) {
	l := NewLatency()
	for i := 1; i <= 1000; i++ {
		l.Record(time.Duration(i) * time.Microsecond)
	}
	p := l.Percentiles()
	near := func(got, want time.Duration) bool { return got >= want*999/1000 && got <= want*1001/1000 }
	if p.Count != 1000 || !near(p.P50, 500*time.Microsecond) || !near(p.P90, 900*time.Microsecond) ||
		!near(p.P99, 990*time.Microsecond) || !near(p.P999, 999*time.Microsecond) || !near(p.Max, time.Millisecond) {
		t.Errorf("percentiles of 1..1000us: got %+v", p)
	}
	l.Record(2 * base.LoadgenLatencyMax)
	l.Record(-time.Second)
	p = l.Percentiles()
	if p.Count != 1002 || p.Clamped != 1 || !near(p.Max, base.LoadgenLatencyMax) {
		t.Errorf("after a clamped value: got %+v, want 1002 values, 1 clamped, max %v", p, base.LoadgenLatencyMax)
	}
	if got := NewLatency().Percentiles(); got != (Percentiles{}) {
		t.Errorf("empty recorder: got %+v", got)
	}
}

func TestPacerSchedulesByIntendedTime(t *testing.T) {
	p := NewPacer(epoch, 4000)
	for _, c := range []struct {
		i    uint64
		want time.Duration
	}{{0, 0}, {1, 250 * time.Microsecond}, {4000, time.Second}, {4_000_000, 1000 * time.Second}} {
		if got := p.Due(c.i).Sub(epoch); got != c.want {
			t.Errorf("Due(%d): got %v, want %v", c.i, got, c.want)
		}
	}
	if !p.Paced() {
		t.Errorf("a pacer with a rate: Paced false")
	}
	if u := NewPacer(epoch, 0); u.Paced() || !u.Due(1_000_000).Equal(epoch) {
		t.Errorf("unpaced: every message must be due at the start")
	}
}

func TestWaiterReturnsWhenTheClockReachesTheDueTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clock := base.NewFakeClock(epoch)
		w := waiter{clock: clock}
		done := make(chan error, 1)
		go func() { done <- w.until(context.Background(), epoch.Add(time.Second)) }()
		synctest.Wait()
		clock.Advance(999 * time.Millisecond)
		synctest.Wait()
		select {
		case <-done:
			t.Fatalf("waiter returned 1ms before its due time")
		default:
		}
		clock.Advance(time.Millisecond)
		if err := <-done; err != nil {
			t.Errorf("until: %v", err)
		}
		if err := w.until(context.Background(), epoch); err != nil {
			t.Errorf("until a past time: %v", err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := w.until(ctx, epoch.Add(time.Hour)); !errors.Is(err, context.Canceled) {
			t.Errorf("until with a cancelled context: got %v", err)
		}
	})
}

func TestSummarizeTakesTheMedianAndSpread(t *testing.T) {
	in := []float64{30, 10, 20}
	if got := Summarize(in); got != (Summary{Median: 20, Min: 10, Max: 30, N: 3}) {
		t.Errorf("odd: got %+v", got)
	}
	if !slices.Equal(in, []float64{30, 10, 20}) {
		t.Errorf("Summarize modified its input: %v", in)
	}
	if got := Summarize([]float64{4, 1, 3, 2}); got.Median != 2.5 || got.SpreadPct() != 120 {
		t.Errorf("even: got %+v spread %v, want median 2.5, spread 120%%", got, got.SpreadPct())
	}
	if got := Summarize(nil); got != (Summary{}) || got.SpreadPct() != 0 {
		t.Errorf("empty: got %+v", got)
	}
}

func TestConfirmerCallsDoneInOrderAndFailsWhatIsLeftOnClose(t *testing.T) {
	synctest.Test(t, testConfirmerClose)
}

func testConfirmerClose(t *testing.T) {
	c := NewConfirmer()
	release := make(chan struct{})
	var mu sync.Mutex
	var got []string
	record := func(name string) func(error) {
		return func(err error) {
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				name += ":err"
			}
			got = append(got, name)
		}
	}
	ok := func(context.Context) error { return nil }
	blocked := func(ctx context.Context) error {
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	ctx := context.Background()
	for _, step := range []struct {
		name string
		wait func(context.Context) error
	}{{"a", ok}, {"b", ok}, {"c", blocked}, {"d", ok}} {
		if err := c.Add(ctx, step.wait, record(step.name)); err != nil {
			t.Fatalf("Add %s: %v", step.name, err)
		}
	}
	synctest.Wait() // the confirmer is waiting for c
	c.Close()
	if want := []string{"a", "b", "c:err", "d:err"}; !slices.Equal(got, want) {
		t.Errorf("done calls: got %v, want %v", got, want)
	}
	if err := c.Add(ctx, ok, record("late")); !errors.Is(err, ErrSessionClosed) {
		t.Errorf("Add after Close: got %v, want ErrSessionClosed", err)
	}
}

func TestHeaderRoundTripsWithoutAllocating(t *testing.T) {
	b := make([]byte, 64)
	h := Header{RunID: 1, Producer: 2, Seq: 1<<40 + 3, IntendedNs: -5}
	EncodeHeader(b, h)
	var got Header
	allocs := testing.AllocsPerRun(100, func() { got, _ = DecodeHeader(b) })
	if got != h || allocs != 0 {
		t.Errorf("DecodeHeader: got %+v with %v allocations, want %+v with none", got, allocs, h)
	}
	if _, err := DecodeHeader(b[:HeaderBytes-1]); !errors.Is(err, ErrForeign) {
		t.Errorf("short body: got %v, want ErrForeign", err)
	}
	if _, err := DecodeHeader(make([]byte, HeaderBytes)); !errors.Is(err, ErrForeign) {
		t.Errorf("body without magic: got %v, want ErrForeign", err)
	}
}

func FuzzDecodeHeader(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("FLG1"))
	f.Add(body(1, 2, 3))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := DecodeHeader(b)
		if err != nil {
			return
		}
		re := make([]byte, HeaderBytes)
		EncodeHeader(re, h)
		if string(re) != string(b[:HeaderBytes]) {
			t.Fatalf("re-encoding %+v: got %x, want %x", h, re, b[:HeaderBytes])
		}
	})
}

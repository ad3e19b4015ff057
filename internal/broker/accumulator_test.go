package broker

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"

	"github.com/ferry-mq/ferry/internal/queue"
)

// TestAccumulatorSubmitsInOrderOneAtATimeWithinItsBound: with concurrent
// publishers and completions arriving from another goroutine, an
// accumulator submits one batch at a time, never more than inFlight
// unconfirmed, every publisher's items in the order it added them, and
// settles every item exactly once.
func TestAccumulatorSubmitsInOrderOneAtATimeWithinItsBound(t *testing.T) {
	const publishers, perPublisher, inFlight = 6, 300, 3
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup

	var mu sync.Mutex
	var submitted [][]*pubItem // batches in submission order
	submitting, unconfirmed, maxUnconfirmed := 0, 0, 0
	settled := map[*pubItem]int{}
	var settledAll sync.WaitGroup
	settledAll.Add(publishers * perPublisher)
	// The engine completes the batches in submission order, on a
	// goroutine of its own, as its loop would.
	completions := make(chan func(), publishers*perPublisher)
	a := newAccumulator(ctx, &wg, "test", inFlight, func(items []*pubItem, done func([]queue.Outcome, error)) {
		runtime.Gosched() // widens the window in which a second submitter would overlap
		mu.Lock()
		submitting++
		if submitting > 1 {
			t.Errorf("%d batches submitted at once", submitting)
		}
		unconfirmed++
		maxUnconfirmed = max(maxUnconfirmed, unconfirmed)
		submitted = append(submitted, items)
		mu.Unlock()
		completions <- func() { done(make([]queue.Outcome, len(items)), nil) }
		mu.Lock()
		submitting--
		mu.Unlock()
	})
	var engine sync.WaitGroup
	engine.Add(1)
	go func() {
		defer engine.Done()
		for complete := range completions {
			mu.Lock()
			unconfirmed--
			mu.Unlock()
			complete()
		}
	}()
	var pubs sync.WaitGroup
	names := map[*pubItem]string{}
	for p := range publishers {
		items := make([]*pubItem, perPublisher)
		for i := range items {
			it := &pubItem{rec: &encodedRecord{size: 100}}
			it.done = func(_ queue.Outcome, err error) {
				if err != nil {
					t.Errorf("item %s: %v", names[it], err)
				}
				mu.Lock()
				settled[it]++
				mu.Unlock()
				settledAll.Done()
			}
			items[i] = it
			names[it] = fmt.Sprint(p, "/", i)
		}
		pubs.Add(1)
		go func() {
			defer pubs.Done()
			for i := 0; i < perPublisher; i += 7 {
				a.add(ctx, items[i:min(i+7, perPublisher)])
			}
		}()
	}
	pubs.Wait()
	settledAll.Wait()
	close(completions)
	engine.Wait()
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	if maxUnconfirmed > inFlight {
		t.Errorf("%d batches unconfirmed at once, want at most %d", maxUnconfirmed, inFlight)
	}
	last := map[string]int{}
	for _, b := range submitted {
		for _, it := range b {
			var p, i int
			fmt.Sscanf(names[it], "%d/%d", &p, &i)
			key := fmt.Sprint(p)
			if prev, ok := last[key]; (ok && i != prev+1) || (!ok && i != 0) {
				t.Fatalf("publisher %d: item %d submitted after item %d (-1: none)", p, i, map[bool]int{true: prev, false: -1}[ok])
			}
			last[key] = i
		}
	}
	for it, n := range settled {
		if n != 1 {
			t.Errorf("item %s settled %d times", names[it], n)
		}
	}
	if len(settled) != publishers*perPublisher {
		t.Errorf("%d items settled, want %d", len(settled), publishers*perPublisher)
	}
}

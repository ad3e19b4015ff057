package admin

import (
	"sync"
	"time"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/broker"
)

// Rates are a queue's message rates per second over the interval between
// two observations of its counters (at least AdminRateIntervalMin apart).
type Rates struct {
	PublishPerSec   float64 `json:"publish_per_sec"`
	DeliverPerSec   float64 `json:"deliver_per_sec"`
	RedeliverPerSec float64 `json:"redeliver_per_sec"`
	AckPerSec       float64 `json:"ack_per_sec"`
	// IntervalSeconds is the interval measured; 0 before the second
	// observation, when every rate is 0.
	IntervalSeconds float64 `json:"interval_seconds"`
}

// rateTable keeps the last observation of each queue's counters. Rates
// are computed lazily when stats are read (by the API or a scrape), so
// nothing runs in the background; an interval shorter than
// AdminRateIntervalMin keeps the previous rates, so that two reads in
// quick succession do not give a noisy figure.
type rateTable struct {
	clock base.Clock

	mu      sync.Mutex
	entries map[rateKey]*rateEntry // guarded by mu
}

type rateKey struct{ tenant, queue string }

type rateEntry struct {
	at    time.Time
	stats broker.QueueStats
	rates Rates
}

func newRateTable(clock base.Clock) *rateTable {
	return &rateTable{clock: clock, entries: map[rateKey]*rateEntry{}}
}

// observe records st and returns the queue's current rates.
func (t *rateTable) observe(st broker.QueueStats) Rates {
	now := t.clock.Now()
	k := rateKey{st.Tenant, st.Name}
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.entries[k]
	if e == nil {
		if len(t.entries) >= base.AdminRateEntriesMax {
			for victim := range t.entries { // any one: its next read starts over
				delete(t.entries, victim)
				break
			}
		}
		t.entries[k] = &rateEntry{at: now, stats: st}
		return Rates{}
	}
	dt := now.Sub(e.at)
	if dt < base.AdminRateIntervalMin {
		return e.rates
	}
	if st.Counters.Enqueued < e.stats.Counters.Enqueued { // the queue was deleted and declared again
		*e = rateEntry{at: now, stats: st}
		return Rates{}
	}
	sec := dt.Seconds()
	per := func(now, then uint64) float64 {
		if now < then {
			return 0
		}
		return float64(now-then) / sec
	}
	c, p := st.Counters, e.stats.Counters
	e.rates = Rates{PublishPerSec: per(c.Enqueued, p.Enqueued), DeliverPerSec: per(c.Delivered, p.Delivered),
		RedeliverPerSec: per(c.Redelivered, p.Redelivered), AckPerSec: per(c.Acked, p.Acked), IntervalSeconds: sec}
	e.at, e.stats = now, st
	return e.rates
}

// forget drops a deleted queue's entry.
func (t *rateTable) forget(tenant, queue string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.entries, rateKey{tenant, queue})
}

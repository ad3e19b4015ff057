package broker

import (
	"sync"
	"unsafe"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/storage/log/batch"
)

// batchCache keeps recently applied data batches of queues, decoded into
// records, so that a delivery right after its enqueue does not read the
// disk. It is bounded by the bytes of the batches it holds
// (BrokerDeliveryCacheBytes, or less by configuration) and evicts the
// oldest first: deliveries follow enqueue order, so the oldest batch is
// the one least likely to be needed again.
type batchCache struct {
	maxBytes int

	mu    sync.Mutex
	items map[cacheKey]*cachedBatch // guarded by mu
	fifo  []cacheKey                // guarded by mu; insertion order, may hold evicted keys
	head  int                       // guarded by mu; first live position of fifo
	bytes int                       // guarded by mu
}

type cacheKey struct {
	group GroupID
	index uint64
}

// cachedBatch is one batch and its decoded records. The records alias
// data, which is never modified: a delivery may hand their slices to a
// front end.
type cachedBatch struct {
	data    []byte
	header  batch.Header
	records []batch.Record
}

// cost is what a cached batch is charged against the cache's bound: its
// bytes, its decoded records (whose slices alias the bytes), and its entry
// (the batch's struct, its key in the map and in the FIFO).
func (cb *cachedBatch) cost() int {
	return len(cb.data) + cap(cb.records)*recordBytes + entryBytes
}

const (
	recordBytes = int(unsafe.Sizeof(batch.Record{}))
	entryBytes  = int(unsafe.Sizeof(cachedBatch{})) + 2*int(unsafe.Sizeof(cacheKey{}))
)

func newBatchCache(maxBytes int) *batchCache {
	return &batchCache{maxBytes: maxBytes, items: map[cacheKey]*cachedBatch{}}
}

// decodeBatch decodes the records of a data batch. The batch comes from
// the Raft log (written by this broker, or by a Kafka client through
// ProduceBatch for streams) or from another node, so it is validated
// again: a damaged batch must not take the node down. The checks are
// batch.Validate's, with the records walked once: CheckCRC here, the
// structure of every record by the iteration below.
func decodeBatch(data []byte) (*cachedBatch, error) {
	h, err := batch.CheckCRC(data)
	if err != nil {
		return nil, err
	}
	it, err := batch.Records(data)
	if err != nil {
		return nil, err
	}
	cb := &cachedBatch{data: data, header: h, records: make([]batch.Record, 0, recordsCap(h, len(data)))}
	for r, ok := it.Next(); ok; r, ok = it.Next() {
		cb.records = append(cb.records, r)
	}
	if err := it.Err(); err != nil {
		return nil, err
	}
	return cb, nil
}

// recordsCap is how many records decodeBatch makes room for: the count
// the header claims, but no more than the batch's bytes can hold. Only
// the iteration checks the count against the records, so a header with a
// good CRC and a false count (a forwarded enqueue's frame) must not make
// the node allocate for BatchRecordsMax records of ~100 bytes each before
// it is refused.
func recordsCap(h batch.Header, batchBytes int) int {
	return max(0, min(int(h.RecordCount), (batchBytes-batch.HeaderSize)/batch.RecordSizeMin))
}

// decodeStoredBatch decodes a queue's entry as read back from its log: a
// data batch, or a control batch wrapping one (tagEnqueue, tagRelocate).
func decodeStoredBatch(data []byte) (*cachedBatch, error) {
	h, err := batch.ParseHeader(data)
	if err != nil {
		return nil, err
	}
	if h.Attributes.IsControl() {
		_, payload, err := batch.ParseControl(data)
		if err != nil {
			return nil, err
		}
		switch {
		case len(payload) > 0 && payload[0] == tagEnqueue:
			return decodeBatch(payload[1:])
		case len(payload) > 0 && payload[0] == tagRelocate:
			_, data, err := splitRelocate(payload[1:])
			if err != nil {
				return nil, err
			}
			return decodeBatch(data)
		}
		return nil, base.Errorf(base.CodeCorrupt, "broker: a message's entry is a command, not a batch")
	}
	return decodeBatch(data)
}

// keeps reports whether a batch just enqueued, behind readyBytes of ready
// messages in a queue with consumers subscribed, is worth caching: only if
// it can still be cached when its turn comes. Eviction is oldest first,
// across every queue, so a batch behind more than half the cache would
// mostly be gone by then, and in a queue with no consumer it waits for
// one that may never come. Caching those would only push out batches that
// are read soon, and hold the cache's memory against a filling queue
// (64 MiB, most of the RAM per ready message docs/benchmarks.md measured
// at a million). A batch read back from the log is cached as it is read.
func (c *batchCache) keeps(consumers int, readyBytes uint64) bool {
	return consumers > 0 && readyBytes < uint64(c.maxBytes/2)
}

func (c *batchCache) put(g GroupID, index uint64, cb *cachedBatch) {
	size := cb.cost()
	if c.maxBytes <= 0 || size > c.maxBytes/4 {
		return // too big to be worth caching
	}
	k := cacheKey{g, index}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.items[k]; ok {
		return
	}
	c.items[k] = cb
	c.fifo = append(c.fifo, k)
	c.bytes += size
	for c.bytes > c.maxBytes && c.head < len(c.fifo) {
		old := c.fifo[c.head]
		c.fifo[c.head] = cacheKey{}
		c.head++
		if ob, ok := c.items[old]; ok {
			c.bytes -= ob.cost()
			delete(c.items, old)
		}
	}
	if c.head > len(c.fifo)/2 && c.head > 64 {
		c.fifo = append(c.fifo[:0], c.fifo[c.head:]...)
		c.head = 0
	}
}

func (c *batchCache) get(g GroupID, index uint64) *cachedBatch {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.items[cacheKey{g, index}]
}

// dropGroup forgets a group's batches (the group closed or lost its
// leadership); the FIFO keeps their keys until they reach its head.
func (c *batchCache) dropGroup(g GroupID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, cb := range c.items {
		if k.group == g {
			c.bytes -= cb.cost()
			delete(c.items, k)
		}
	}
}

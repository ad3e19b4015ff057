package broker

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
	"unsafe"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/storage/log/batch"
)

// Offsets in a batch header (Kafka's RecordBatch v2), for tests that forge
// one.
const (
	batchCRCAt             = batch.CRCStart - 4
	batchLastOffsetDeltaAt = batch.CRCStart + 2
	batchRecordCountAt     = batch.HeaderSize - 4
)

// smallestRecordsBatch builds a batch of n records of batch.RecordSizeMin bytes
// each: null key and value, no headers, offset deltas under 64.
func smallestRecordsBatch(t testing.TB, n int) []byte {
	t.Helper()
	var bld batch.Builder
	bld.Begin(nil, plainHeader())
	for range n {
		if err := bld.Add(0, nil, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	data, err := bld.Finish()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(data)-batch.HeaderSize, n*batch.RecordSizeMin; got != want {
		t.Fatalf("%d null records take %d bytes, want %d: batch.RecordSizeMin is wrong", n, got, want)
	}
	return data
}

// withRecordCount returns a copy of data claiming count records, under a
// recomputed CRC, as a sender that forges a header would make it.
func withRecordCount(data []byte, count int32) []byte {
	forged := bytes.Clone(data)
	binary.BigEndian.PutUint32(forged[batchRecordCountAt:], uint32(count))
	binary.BigEndian.PutUint32(forged[batchCRCAt:], batch.Checksum(forged[batch.CRCStart:]))
	return forged
}

// TestDecodeBatchMakesRoomOnlyForTheRecordsItsBytesCanHold pins the
// bound on decodeBatch's allocation: a batch packed with the smallest
// records gets exactly their room, and a header claiming BatchRecordsMax
// records over a few bytes (good CRC) is refused without room for more
// than those bytes can hold. Sized by the header alone, that was ~1.8 GB.
func TestDecodeBatchMakesRoomOnlyForTheRecordsItsBytesCanHold(t *testing.T) {
	const n = 50
	data := smallestRecordsBatch(t, n)
	cb, err := decodeBatch(data)
	if err != nil {
		t.Fatalf("a batch of %d smallest records: %v", n, err)
	}
	if len(cb.records) != n || cap(cb.records) != n {
		t.Errorf("a batch of %d smallest records: got len %d cap %d, want %d and %d", n, len(cb.records), cap(cb.records), n, n)
	}
	forged := withRecordCount(data, base.BatchRecordsMax)
	h, err := batch.CheckCRC(forged)
	if err != nil {
		t.Fatalf("the forged header does not pass its CRC, so the test proves nothing: %v", err)
	}
	if got := recordsCap(h, len(forged)); got != n {
		t.Errorf("room for a header claiming %d records over %d records' bytes: got %d, want %d", h.RecordCount, n, got, n)
	}
	if _, err := decodeBatch(forged); base.CodeOf(err) != base.CodeCorrupt {
		t.Errorf("a header claiming %d records over %d: got %v, want CodeCorrupt", h.RecordCount, n, err)
	}
}

// FuzzDecodeBatch feeds decodeBatch arbitrary batches whose CRC is made
// to match (a sender can compute it; the CRC would otherwise stop almost
// every input at the door): it never panics, what it accepts has exactly
// the records its header counts, and it never makes room for more records
// than the bytes can hold.
func FuzzDecodeBatch(f *testing.F) {
	f.Add(smallestRecordsBatch(f, 3))
	f.Add(withRecordCount(smallestRecordsBatch(f, 3), base.BatchRecordsMax))
	good, err := buildBatch(encodeItems(f, []Message{{RoutingKey: "k", Body: []byte("body"), Headers: allKinds()}}), 5, true)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) >= batch.HeaderSize {
			binary.BigEndian.PutUint32(data[batchCRCAt:], batch.Checksum(data[batch.CRCStart:]))
		}
		cb, err := decodeBatch(data)
		if err != nil {
			return
		}
		if len(cb.records) != int(cb.header.RecordCount) {
			t.Fatalf("accepted %d records under a header counting %d", len(cb.records), cb.header.RecordCount)
		}
		if most := (len(data) - batch.HeaderSize) / batch.RecordSizeMin; cap(cb.records) > most {
			t.Fatalf("room for %d records in %d bytes, over the %d they can hold", cap(cb.records), len(data), most)
		}
	})
}

// cachedBodies returns the bodies of group g's batches in the cache.
func cachedBodies(c *batchCache, g GroupID) map[string]bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]bool{}
	for k, cb := range c.items {
		if k.group == g {
			for _, r := range cb.records {
				out[string(r.Value)] = true
			}
		}
	}
	return out
}

// TestDeliveryCacheTakesOnlyBatchesAConsumerWillSoonRead: an enqueued
// batch is cached when the queue has a consumer and less than half the
// cache of ready messages ahead of it, not in a queue nobody consumes nor
// behind a backlog that would push it out before its turn.
func TestDeliveryCacheTakesOnlyBatchesAConsumerWillSoonRead(t *testing.T) {
	const cacheBytes = 64 << 10
	b := openNode(t, nodeOpts{tweak: func(c *Config) { c.DeliveryCacheBytes = cacheBytes }})
	c := guestConn(t, b)
	declare(t, c, "q")
	ent, err := b.lookupQueue("/", "q")
	if err != nil {
		t.Fatal(err)
	}
	publishOne(t, c, "", "q", "nobody consumes")
	if got := cachedBodies(b.cache, ent.group); len(got) != 0 {
		t.Fatalf("with no consumer: cached %v, want nothing", got)
	}
	_, col := subscribe(t, c, SubscribeOptions{Queue: "q", Tag: "t", PrefetchCount: 1})
	if d := col.next(t); string(d.Message.Body) != "nobody consumes" {
		t.Fatalf("delivered %q", d.Message.Body)
	}
	// The consumer holds its one unacknowledged message, so from here on
	// every message stays ready and the backlog grows by 1 KiB a publish.
	const n = 48
	body := func(i int) string { return fmt.Sprintf("%04d%s", i, strings.Repeat("x", 1020)) }
	for i := range n {
		publishOne(t, c, "", "q", body(i))
	}
	got := cachedBodies(b.cache, ent.group)
	for i := range n {
		ahead := i * 1024 // the ready bytes ahead of it: the bodies before it
		if want := ahead < cacheBytes/2; got[body(i)] != want {
			t.Errorf("message %d, behind %d bytes: cached %v, want %v", i, ahead, got[body(i)], want)
		}
	}
}

// TestDeliveryCacheBoundCoversTheDecodedRecords: what the cache holds,
// its batches' bytes and their decoded records at their real size, stays
// within its bound. Batches of the smallest records are mostly decoded
// records, which an estimate per record below their size let overrun the
// bound.
func TestDeliveryCacheBoundCoversTheDecodedRecords(t *testing.T) {
	const maxBytes = 1 << 20
	c := newBatchCache(maxBytes)
	data := smallestRecordsBatch(t, 50)
	held := func() int {
		n := 0
		for _, cb := range c.items {
			n += len(cb.data) + cap(cb.records)*int(unsafe.Sizeof(batch.Record{}))
		}
		return n
	}
	for i := range 400 {
		cb, err := decodeBatch(data)
		if err != nil {
			t.Fatal(err)
		}
		c.put(1, uint64(i+1), cb)
		if got := held(); got > maxBytes {
			t.Fatalf("after %d batches the cache holds %d bytes of batches and records, over its bound of %d", i+1, got, maxBytes)
		}
	}
	if len(c.items) == 400 || len(c.items) == 0 {
		t.Fatalf("the cache kept %d of 400 batches: the test never reached its bound", len(c.items))
	}
}

// TestStoredQueueEntriesOfBothFormatsDecode: a queue's messages are read
// back from a data batch entry (written since 2026-11-21), from a
// command wrapping the batch (tagEnqueue, in older logs) and from a
// relocation (tagRelocate) alike; any other command at a message's index,
// or a relocation whose command length is wrong, is corrupt.
func TestStoredQueueEntriesOfBothFormatsDecode(t *testing.T) {
	data, err := buildBatch(encodeItems(t, []Message{{RoutingKey: "k", Body: []byte("one")}, {RoutingKey: "k", Body: []byte("two")}}), 5, true)
	if err != nil {
		t.Fatal(err)
	}
	command := func(payload []byte) []byte {
		b, err := batch.AppendControl(nil, batch.Header{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}, 5, batch.ControlFerryMin, payload)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	reloc := func(cmdLen uint64) []byte {
		p := binary.AppendUvarint([]byte{tagRelocate}, cmdLen)
		return command(append(append(p, "cmd"...), data...))
	}
	for name, entry := range map[string][]byte{
		"data batch":         data,
		"tagEnqueue command": command(append([]byte{tagEnqueue}, data...)),
		"relocation":         reloc(3),
	} {
		cb, err := decodeStoredBatch(entry)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(cb.records) != 2 || string(cb.records[0].Value) != "one" || string(cb.records[1].Value) != "two" {
			t.Errorf("%s: decoded %d records", name, len(cb.records))
		}
	}
	if _, err := decodeStoredBatch(command(append([]byte{tagQueue}, 1, 2, 3))); base.CodeOf(err) != base.CodeCorrupt {
		t.Errorf("a queue command read as messages: got %v, want corrupt", err)
	}
	if _, err := decodeStoredBatch(reloc(1 << 40)); base.CodeOf(err) != base.CodeCorrupt {
		t.Errorf("a relocation whose command runs past its end: got %v, want corrupt", err)
	}
}

// FuzzSplitRelocate: a relocation payload read back from the log never
// panics its splitter, and what it accepts is the payload's bytes after
// the length, split at the length.
func FuzzSplitRelocate(f *testing.F) {
	f.Add([]byte{3, 'c', 'm', 'd', 'b'})
	f.Add([]byte{0x80})
	f.Add(binary.AppendUvarint(nil, 1<<63))
	f.Fuzz(func(t *testing.T, p []byte) {
		cmd, data, err := splitRelocate(p)
		if err != nil {
			return
		}
		n, k := binary.Uvarint(p)
		if uint64(len(cmd)) != n || !bytes.Equal(append(append([]byte{}, cmd...), data...), p[k:]) {
			t.Fatalf("split %x into %x and %x", p, cmd, data)
		}
	})
}

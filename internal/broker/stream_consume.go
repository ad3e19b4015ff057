package broker

import (
	"context"
	"sync"
	"time"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/storage/log/batch"
	"github.com/ferry-mq/ferry/internal/storage/log/batch/compress"
)

// StreamStartKind says where a stream consumer starts.
type StreamStartKind uint8

// The starts (RabbitMQ's x-stream-offset values).
const (
	StreamNext      StreamStartKind = iota // only messages published from now on
	StreamFirst                            // the first retained message
	StreamLast                             // the last message
	StreamOffset                           // Offset
	StreamTimestamp                        // the first message at or after Timestamp
)

// StreamStart is a stream consumer's start.
type StreamStart struct {
	Kind      StreamStartKind
	Offset    int64
	Timestamp time.Time
}

// streamSub delivers a stream's messages to one subscription: one reader
// goroutine per partition, reading the partition's log on this node,
// with at most the subscription's credit unacknowledged.
type streamSub struct {
	s      *Subscription
	b      *Broker
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	dmu       sync.Mutex // serialises deliveries across the partition readers
	mu        sync.Mutex
	credit    uint32        // guarded by mu: the most unacknowledged deliveries
	unacked   []uint64      // guarded by mu: delivery ids, ascending
	nextID    uint64        // guarded by mu
	freed     chan struct{} // guarded by mu: closed when credit frees
	closeOnce sync.Once
}

func (c *Conn) subscribeStream(ctx context.Context, o SubscribeOptions, ent entity, deliver func(Delivery), cancelled func(error)) (*Subscription, error) {
	s := &Subscription{c: c, opts: o, deliverFn: deliver, cancelFn: cancelled}
	if s.opts.Tag == "" {
		s.opts.Tag = "amq.ctag-" + strconvBase36(c.b.reqSeq.Add(1))
	}
	credit := o.PrefetchCount
	if credit == 0 || o.NoAck {
		credit = base.BrokerStreamCreditDefault
	}
	ss := &streamSub{s: s, b: c.b, credit: credit, freed: make(chan struct{})}
	ss.ctx, ss.cancel = context.WithCancel(c.b.ctx())
	s.stream = ss
	var fsms []*partitionFSM
	for _, g := range ent.groups() {
		if err := c.b.waitGroupReady(ctx, g); err != nil {
			return nil, err
		}
		lg := c.b.group(g)
		if lg == nil {
			return nil, c.b.notHere(g, "consume from stream '"+o.Queue+"'")
		}
		fsms = append(fsms, lg.fsm.(*partitionFSM))
	}
	starts := make([]int64, len(fsms))
	for i, f := range fsms {
		off, err := c.b.streamStart(f, o.StreamOffset)
		if err != nil {
			return nil, err
		}
		starts[i] = off
	}
	if err := c.addSub(s); err != nil {
		return nil, err
	}
	for i, f := range fsms {
		ss.wg.Add(1)
		go func() {
			defer ss.wg.Done()
			ss.read(f, starts[i])
		}()
	}
	return s, nil
}

// streamStart resolves a start to an offset of one partition.
func (b *Broker) streamStart(f *partitionFSM, st *StreamStart) (int64, error) {
	if st == nil {
		st = &StreamStart{Kind: StreamNext}
	}
	start, _, err := b.listOffset(f, OffsetEarliest)
	if err != nil {
		return 0, err
	}
	end, _, err := b.listOffset(f, OffsetLatest) // the end of the data
	if err != nil {
		return 0, err
	}
	switch st.Kind {
	case StreamFirst:
		return start, nil
	case StreamLast:
		return max(start, end-1), nil
	case StreamOffset:
		return max(start, min(st.Offset, end)), nil
	case StreamTimestamp:
		off, _, err := b.listOffset(f, st.Timestamp.UnixMilli())
		if err != nil {
			return 0, err
		}
		if off < 0 {
			return end, nil
		}
		return off, nil
	}
	return end, nil
}

// read delivers one partition's records from offset on.
func (ss *streamSub) read(f *partitionFSM, offset int64) {
	for ss.ctx.Err() == nil {
		if !ss.waitCredit() {
			return
		}
		changed := f.hwChanged()
		res, err := ss.b.readPartition(f, offset, base.BrokerStreamReadBytes)
		if err != nil {
			if base.CodeOf(err) == base.CodeOutOfRange && offset < res.LogStartOffset {
				offset = res.LogStartOffset // retention overtook the consumer
				continue
			}
			ss.end(err)
			return
		}
		if len(res.Records) == 0 {
			select {
			case <-changed:
			case <-ss.ctx.Done():
				return
			}
			continue
		}
		if offset, err = ss.deliverBatches(f, res.Records, offset); err != nil {
			ss.end(err)
			return
		}
	}
}

// deliverBatches hands over the records at or after offset and returns
// the offset to read next. The records of a compressed batch are
// decompressed (recordsOf); a batch whose records cannot be read ends the
// subscription with an error naming it, rather than skipping its
// messages.
func (ss *streamSub) deliverBatches(f *partitionFSM, data []byte, offset int64) (int64, error) {
	for len(data) > 0 {
		h, err := batch.ParseHeader(data)
		if err != nil || h.Size() > len(data) {
			return offset, nil
		}
		b := data[:h.Size()]
		data = data[h.Size():]
		next := h.NextOffset()
		if h.Attributes.IsControl() || next <= offset {
			offset = max(offset, next)
			continue
		}
		it, err := recordsOf(b, h)
		if err != nil {
			return offset, unreadableBatch(f, h, err)
		}
		for r, ok := it.Next(); ok; r, ok = it.Next() {
			off := h.BaseOffset + int64(r.OffsetDelta)
			if off < offset {
				continue
			}
			if !ss.waitCredit() {
				return offset, nil
			}
			m := decodeRecord(&r, h.BaseTimestamp)
			ss.deliver(Delivery{Queue: f.stream, ConsumerTag: ss.s.opts.Tag, Message: m, StreamOffset: off, Partition: f.partition})
			offset = off + 1
		}
		if err := it.Err(); err != nil {
			return offset, unreadableBatch(f, h, err)
		}
		offset = max(offset, next)
	}
	return offset, nil
}

// recordsOf returns an iterator over the records of the stored batch b
// with header h: over b itself when it is uncompressed, else over a fresh
// decompressed copy of at most BrokerStreamDecompressedBytesMax record
// bytes. Messages decoded from the records alias the bytes iterated, so a
// copy is never reused. Errors: CodeTooLarge past the limit, CodeCorrupt,
// CodeNotSupported for an unknown codec.
func recordsOf(b []byte, h batch.Header) (batch.Iter, error) {
	if h.Attributes.Compression() != batch.CompressionNone {
		var err error
		b, err = compress.DecompressBatch(nil, b, base.BrokerStreamDecompressedBytesMax)
		if err != nil {
			return batch.Iter{}, err
		}
	}
	return batch.Records(b)
}

// unreadableBatch is the error of a stored batch whose records cannot be
// read, keeping the cause's code.
func unreadableBatch(f *partitionFSM, h batch.Header, err error) error {
	return base.Errorf(base.CodeOf(err), "stream '%s' partition %d: the batch at offsets %d-%d cannot be read: %w",
		f.stream, f.partition, h.BaseOffset, h.LastOffset(), err)
}

// waitCredit waits until fewer deliveries than the credit are
// unacknowledged; false means the subscription ended.
func (ss *streamSub) waitCredit() bool {
	for {
		ss.mu.Lock()
		if uint32(len(ss.unacked)) < ss.credit {
			ss.mu.Unlock()
			return true
		}
		freed := ss.freed
		ss.mu.Unlock()
		select {
		case <-freed:
		case <-ss.ctx.Done():
			return false
		}
	}
}

func (ss *streamSub) deliver(d Delivery) {
	ss.dmu.Lock()
	defer ss.dmu.Unlock()
	ss.mu.Lock()
	if ss.ctx.Err() != nil {
		ss.mu.Unlock()
		return
	}
	ss.nextID++
	d.DeliveryID = ss.nextID
	if !ss.s.opts.NoAck {
		ss.unacked = append(ss.unacked, d.DeliveryID)
	}
	ss.mu.Unlock()
	ss.s.deliverFn(d)
}

// ack releases credit: acknowledgements on a stream only move the
// window (the stream keeps every message).
func (ss *streamSub) ack(id uint64, multiple bool) error {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	n := 0
	for _, x := range ss.unacked {
		if x == id || multiple && (x <= id || id == 0) {
			continue
		}
		ss.unacked[n] = x
		n++
	}
	if n == len(ss.unacked) {
		return unknownTag(id)
	}
	ss.unacked = ss.unacked[:n]
	close(ss.freed)
	ss.freed = make(chan struct{})
	return nil
}

func (ss *streamSub) setCredit(n uint32) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if n == 0 {
		n = base.BrokerStreamCreditDefault
	}
	ss.credit = n
	close(ss.freed)
	ss.freed = make(chan struct{})
}

func (ss *streamSub) end(err error) {
	ss.cancel()
	ss.s.end(err)
}

// close stops the readers and waits for them.
func (ss *streamSub) close() {
	ss.closeOnce.Do(func() {
		ss.cancel()
		ss.wg.Wait()
	})
}

package kafka

import (
	"context"
	"sync"
	"time"

	"github.com/ferry-mq/ferry/internal/auth"
	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/proto/kafka/protocol"
	"github.com/ferry-mq/ferry/internal/storage/log/batch"
)

// fetchOp is one Fetch request being served.
type fetchOp struct {
	c             *conn
	r             *request
	v             int16
	minBytes      int
	maxBytes      int
	wait          time.Duration
	readCommitted bool

	// parts are the partitions to read, in order: the request's, or the
	// session's. sess is nil for a sessionless fetch; incremental is set
	// when only changed partitions are answered.
	parts       []*sessionPartition
	sess        *fetchSession
	sessionID   int32
	incremental bool

	// Per request: the authorization of each topic, and which topic ids
	// did not resolve.
	denied  map[string]error
	unknown map[protocol.UUID]bool
}

// fetchRead is one partition's outcome in one pass.
type fetchRead struct {
	p   *sessionPartition
	res FetchResult
	err error
	// waitOffset is where a long poll waits for data: the fetch offset,
	// or past the control batches the read stepped over.
	waitOffset int64
}

func handleFetch(c *conn, r *request) error {
	req := new(protocol.FetchRequest)
	if err := req.Decode(r.body, r.hdr.APIVersion); err != nil {
		return err
	}
	op := &fetchOp{c: c, r: r, v: r.hdr.APIVersion, minBytes: int(max(req.MinBytes, 0)),
		maxBytes: base.KafkaFetchResponseBytesMax, readCommitted: req.IsolationLevel == 1,
		wait:   min(time.Duration(max(req.MaxWaitMs, 0))*time.Millisecond, base.KafkaFetchWaitMax),
		denied: map[string]error{}, unknown: map[protocol.UUID]bool{}}
	if op.v >= 3 && req.MaxBytes >= 0 {
		op.maxBytes = min(int(req.MaxBytes), op.maxBytes)
	}
	requested := op.requestedParts(req)
	if code := op.openSession(req, requested); code != protocol.ErrorCodeNone {
		var resp protocol.FetchResponse
		resp.Default()
		resp.ErrorCode = int16(code)
		c.respond(r, &resp)
		return nil
	}
	c.delay(op.run)
	return nil
}

// requestedParts returns the request's partitions, topic names resolved.
func (op *fetchOp) requestedParts(req *protocol.FetchRequest) []*sessionPartition {
	var out []*sessionPartition
	for _, t := range req.Topics {
		name := t.Topic
		if op.v >= 13 {
			name = op.c.topicName(t.TopicId)
			if name == "" {
				op.unknown[t.TopicId] = true
			}
		}
		for _, p := range t.Partitions {
			out = append(out, &sessionPartition{topic: name, topicID: t.TopicId, partition: p.Partition,
				fetchOffset: p.FetchOffset, maxBytes: p.PartitionMaxBytes})
		}
	}
	return out
}

// topicName resolves a topic id of Fetch v13+, refreshing the connection's
// id map once when the id is not in it; "" when no stream has the id.
func (c *conn) topicName(id protocol.UUID) string {
	if name, ok := c.topicIDs[id]; ok {
		return name
	}
	c.topicIDs = map[protocol.UUID]string{}
	for _, t := range c.sess.Topics(nil) {
		c.topicIDs[t.ID] = t.Name
	}
	return c.topicIDs[id]
}

// openSession applies the request's session fields (KIP-227) and decides
// the partitions to read. A non-zero code is the top-level error to
// answer with instead.
func (op *fetchOp) openSession(req *protocol.FetchRequest, requested []*sessionPartition) protocol.ErrorCode {
	cache := op.c.srv.sessions
	if op.v < 7 || req.SessionEpoch == sessionEpochFinal {
		if op.v >= 7 && req.SessionId != 0 {
			cache.remove(req.SessionId)
		}
		op.parts = requested
		return protocol.ErrorCodeNone
	}
	if req.SessionEpoch == sessionEpochInitial {
		if req.SessionId != 0 {
			cache.remove(req.SessionId)
		}
		op.parts = requested
		if len(requested) > base.KafkaFetchSessionPartitionsMax {
			return protocol.ErrorCodeNone // served sessionless
		}
		if s := cache.create(); s != nil {
			s.mu.Lock()
			for _, p := range requested {
				s.upsertLocked(p)
			}
			s.busy = true
			op.parts = append([]*sessionPartition(nil), s.parts...)
			s.mu.Unlock()
			op.sess, op.sessionID = s, s.id
		}
		return protocol.ErrorCodeNone
	}
	s := cache.get(req.SessionId)
	if s == nil {
		return protocol.ErrorCodeFetchSessionIdNotFound
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.busy || req.SessionEpoch != s.epoch {
		return protocol.ErrorCodeInvalidFetchSessionEpoch
	}
	for _, p := range requested {
		s.upsertLocked(p)
	}
	for _, t := range req.ForgottenTopicsData {
		name := t.Topic
		if op.v >= 13 {
			name = op.c.topicName(t.TopicId)
		}
		for _, p := range t.Partitions {
			s.forgetLocked(name, p)
		}
	}
	if len(s.parts) > base.KafkaFetchSessionPartitionsMax {
		cache.remove(s.id)
		return protocol.ErrorCodeFetchSessionIdNotFound
	}
	s.epoch = nextEpoch(s.epoch)
	s.busy = true
	op.sess, op.sessionID, op.incremental = s, s.id, true
	op.parts = append([]*sessionPartition(nil), s.parts...)
	return protocol.ErrorCodeNone
}

// nextEpoch increments a session epoch, wrapping to 1 as Kafka does.
func nextEpoch(e int32) int32 {
	if e == 1<<31-1 {
		return 1
	}
	return e + 1
}

// run serves the fetch: read every partition; answer when there are
// minBytes, an error, or the wait is over; otherwise wait for new data and
// read again. It runs on a delayed goroutine of the connection.
func (op *fetchOp) run() {
	waitCtx, cancel := context.WithCancel(op.c.ctx)
	defer cancel()
	timer := op.c.srv.cfg.Clock.NewTimer(op.wait)
	defer timer.Stop()
	var timerWG sync.WaitGroup
	timerWG.Add(1)
	go func() { // owned: ends with waitCtx, which run cancels on return
		defer timerWG.Done()
		select {
		case <-timer.C():
			cancel()
		case <-waitCtx.Done():
		}
	}()
	defer timerWG.Wait()

	waited := op.wait <= 0
	for {
		reads, total, failed := op.readAll()
		if total >= op.minBytes || failed || waited || op.c.ctx.Err() != nil {
			op.answer(reads)
			return
		}
		positions := make([]FetchPosition, 0, len(reads))
		for _, rd := range reads {
			positions = append(positions, FetchPosition{PartitionRef{rd.p.topic, rd.p.partition}, rd.waitOffset})
		}
		if len(positions) == 0 {
			<-waitCtx.Done()
		} else if err := op.c.sess.WaitForData(waitCtx, positions); err != nil {
			waited = true
		}
		if waitCtx.Err() != nil {
			waited = true
		}
	}
}

// readAll reads every partition once. The first partition with data may
// return a batch larger than the budget (so a client always progresses);
// later ones only what fits, as Kafka does.
func (op *fetchOp) readAll() (reads []fetchRead, total int, failed bool) {
	reads = make([]fetchRead, 0, len(op.parts))
	for _, p := range op.parts {
		rd := fetchRead{p: p, waitOffset: p.fetchOffset}
		rd.err = op.check(p)
		if rd.err == nil {
			budget := min(int(max(p.maxBytes, 0)), op.maxBytes-total)
			if total > 0 && budget <= 0 {
				budget = 0 // watermarks only
			}
			rd.res, rd.waitOffset, rd.err = op.readPartition(p, budget)
			if total > 0 && len(rd.res.Records) > budget {
				rd.res.Records = nil // does not fit; it comes first in a later fetch
			}
			total += len(rd.res.Records)
		}
		if rd.err != nil {
			failed = true
		}
		reads = append(reads, rd)
	}
	return reads, total, failed
}

// readPartition reads one partition from its fetch offset, leaving out
// control batches. Ferry's logs hold control batches of their own (Raft
// entries, offset commits), which Kafka clients are meant to skip but some
// (kafka-go) hand to the application as records; without them the
// client sees an offset gap, as after compaction. A read that found only
// control batches reads again after them, so a consumer is never stuck
// behind them. It returns the offset to wait beyond when nothing was found.
func (op *fetchOp) readPartition(p *sessionPartition, budget int) (FetchResult, int64, error) {
	offset := p.fetchOffset
	ref := PartitionRef{p.topic, p.partition}
	for skips := 0; ; skips++ {
		res, err := op.c.sess.Fetch(op.c.ctx, ref, offset, budget)
		if err != nil {
			return res, offset, err
		}
		var next int64
		res.Records, next = stripControl(res.Records)
		if len(res.Records) > 0 || next <= offset || next >= res.HighWatermark || skips >= base.KafkaFetchControlSkipsMax {
			return res, max(offset, next), nil
		}
		offset = next
	}
}

// stripControl removes the control batches of b in place and returns what
// is left, and the offset after the last batch (-1 for none). b holds
// whole batches; bytes after one whose header does not parse are kept as
// they are.
func stripControl(b []byte) ([]byte, int64) {
	next := int64(-1)
	out := 0
	for at := 0; at < len(b); {
		h, err := batch.ParseHeader(b[at:])
		if err != nil || at+h.Size() > len(b) {
			out += copy(b[out:], b[at:])
			break
		}
		size := h.Size()
		next = h.NextOffset()
		if !h.Attributes.IsControl() {
			if out != at {
				copy(b[out:], b[at:at+size])
			}
			out += size
		}
		at += size
	}
	return b[:out], next
}

// check returns the error a partition gets before it is read: a topic id
// no stream has, a topic the user may not read.
func (op *fetchOp) check(p *sessionPartition) error {
	if p.topic == "" {
		return kafkaErr(protocol.ErrorCodeUnknownTopicId, "")
	}
	err, seen := op.denied[p.topic]
	if !seen {
		err = op.c.sess.Authorize(auth.ActionRead, p.topic)
		op.denied[p.topic] = err
	}
	return err
}

// answer builds and sends the response from one pass's reads, then
// releases the session.
func (op *fetchOp) answer(reads []fetchRead) {
	if op.c.ctx.Err() != nil {
		op.release(nil)
		op.r.slot.complete(nil, true)
		return
	}
	var resp protocol.FetchResponse
	resp.Default()
	if op.v >= 7 {
		resp.SessionId = op.sessionID
	}
	served := map[*sessionPartition]bool{}
	size := 1 << 10
	for _, rd := range reads {
		size += len(rd.res.Records) + 96 // a partition's fields, at most
	}
	for _, rd := range reads {
		pd, include := op.partitionData(rd)
		if !include {
			continue
		}
		if len(rd.res.Records) > 0 {
			served[rd.p] = true
		}
		n := len(resp.Responses)
		if n == 0 || resp.Responses[n-1].Topic != rd.p.topic || resp.Responses[n-1].TopicId != rd.p.topicID {
			t := protocol.FetchResponseFetchableTopicResponse{}
			if op.v >= 13 {
				t.TopicId = rd.p.topicID
			} else {
				t.Topic = rd.p.topic
			}
			resp.Responses = append(resp.Responses, t)
			n++
		}
		resp.Responses[n-1].Partitions = append(resp.Responses[n-1].Partitions, pd)
	}
	op.release(served)
	op.c.respondSized(op.r, &resp, size)
}

// partitionData is one partition's answer, and whether an incremental
// response includes it (new records, an error, or changed watermarks).
func (op *fetchOp) partitionData(rd fetchRead) (protocol.FetchResponsePartitionData, bool) {
	var pd protocol.FetchResponsePartitionData
	pd.Default()
	pd.PartitionIndex = rd.p.partition
	pd.HighWatermark, pd.Records = -1, rd.res.Records
	if pd.Records == nil {
		pd.Records = []byte{}
	}
	code := errorCode(rd.err, scopeData)
	pd.ErrorCode = int16(code)
	if rd.err == nil || code == protocol.ErrorCodeOffsetOutOfRange {
		pd.HighWatermark = rd.res.DataEnd
		pd.LastStableOffset = rd.res.DataEnd // no transactions: everything is stable
		if op.v >= 5 {
			pd.LogStartOffset = rd.res.LogStartOffset
		}
	}
	if op.readCommitted {
		pd.AbortedTransactions = []protocol.FetchResponseAbortedTransaction{}
	}
	if op.v < 5 {
		pd.LogStartOffset = -1
	}
	include := !op.incremental || rd.err != nil || len(rd.res.Records) > 0 ||
		pd.HighWatermark != rd.p.hwm || pd.LastStableOffset != rd.p.lso || pd.LogStartOffset != rd.p.logStart
	if op.sess != nil {
		rd.p.hwm, rd.p.lso, rd.p.logStart = pd.HighWatermark, pd.LastStableOffset, pd.LogStartOffset
	}
	return pd, include
}

// release ends the request's use of its session, rotating the partitions
// that were served to the end.
func (op *fetchOp) release(served map[*sessionPartition]bool) {
	if op.sess == nil {
		return
	}
	op.sess.mu.Lock()
	op.sess.rotateLocked(served)
	op.sess.busy = false
	op.sess.mu.Unlock()
}

package stream

import (
	"math"

	"github.com/ferry-mq/ferry/internal/base"
)

// AppendStatus is the outcome of an idempotent producer's batch, as Kafka's
// produce checks decide it.
type AppendStatus uint8

const (
	// AppendOK: the batch is new and in sequence (or not idempotent).
	AppendOK AppendStatus = iota
	// AppendDuplicate: the batch repeats one of the producer's last
	// base.StreamProducerBatchesMax batches; answer with the original's
	// offsets and do not append it again.
	AppendDuplicate
	// AppendOutOfOrder: the base sequence does not follow the producer's
	// last one (Kafka's OUT_OF_ORDER_SEQUENCE_NUMBER).
	AppendOutOfOrder
	// AppendFenced: the producer epoch is older than the one the partition
	// knows (Kafka's INVALID_PRODUCER_EPOCH).
	AppendFenced
	// AppendInvalid: an idempotent batch with a negative epoch or sequence.
	AppendInvalid
)

var statusNames = [...]string{"ok", "duplicate", "out-of-order", "fenced", "invalid"}

func (s AppendStatus) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return "status?"
}

// Err returns the client-visible error of a refused batch, nil for OK and
// Duplicate (a duplicate is a success with the original offsets).
func (s AppendStatus) Err(producerID int64) error {
	switch s {
	case AppendOK, AppendDuplicate:
		return nil
	case AppendOutOfOrder:
		return errf(base.CodeInvalidArgument, "out of order sequence number for producer %d", producerID)
	case AppendFenced:
		return errf(base.CodeConflict, "producer %d: epoch is older than the current one (fenced)", producerID)
	default:
		return errf(base.CodeInvalidArgument, "producer %d: invalid epoch or sequence", producerID)
	}
}

// AppendResult is the outcome of an Append or a Check.
type AppendResult struct {
	Status AppendStatus
	// BaseOffset and LastOffset are the batch's offsets for AppendOK (from
	// Apply; Check leaves them -1), the original batch's for
	// AppendDuplicate (-1 when the original is still in flight, from
	// Check), and -1 otherwise.
	BaseOffset, LastOffset int64
}

// producer is what the partition remembers of one idempotent producer.
type producer struct {
	epoch   int16
	n       int                                      // batches held, newest last
	batches [base.StreamProducerBatchesMax]batchMeta // oldest first
	lastMs  int64                                    // Now of its last accepted batch
}

type batchMeta struct {
	firstSeq, lastSeq      int32
	baseOffset, lastOffset int64
}

// lastSequence is Kafka's: sequences wrap from MaxInt32 to 0.
func lastSequence(baseSeq, delta int32) int32 {
	if baseSeq > math.MaxInt32-delta {
		return delta - (math.MaxInt32 - baseSeq) - 1
	}
	return baseSeq + delta
}

func inSequence(last, next int32) bool {
	return int64(next) == int64(last)+1 || (next == 0 && last == math.MaxInt32)
}

// checkProducer decides an idempotent batch against what is known of its
// producer (pr may be nil). It reads only.
func checkProducer(pr *producer, a Append) AppendResult {
	refused := func(s AppendStatus) AppendResult { return AppendResult{Status: s, BaseOffset: -1, LastOffset: -1} }
	if a.ProducerEpoch < 0 || a.BaseSequence < 0 {
		return refused(AppendInvalid)
	}
	if pr == nil {
		// Unknown producer: accept any sequence, as Kafka does since
		// KIP-360, because its state may have expired or been retained away.
		return AppendResult{Status: AppendOK, BaseOffset: -1, LastOffset: -1}
	}
	if a.ProducerEpoch < pr.epoch {
		return refused(AppendFenced)
	}
	first := a.BaseSequence
	last := lastSequence(first, a.LastOffsetDelta)
	if a.ProducerEpoch > pr.epoch {
		if first != 0 {
			return refused(AppendOutOfOrder) // a new epoch starts at sequence 0
		}
		return AppendResult{Status: AppendOK, BaseOffset: -1, LastOffset: -1}
	}
	for _, b := range pr.batches[:pr.n] {
		if b.firstSeq == first && b.lastSeq == last {
			return AppendResult{Status: AppendDuplicate, BaseOffset: b.baseOffset, LastOffset: b.lastOffset}
		}
	}
	if pr.n > 0 && !inSequence(pr.batches[pr.n-1].lastSeq, first) {
		return refused(AppendOutOfOrder)
	}
	return AppendResult{Status: AppendOK, BaseOffset: -1, LastOffset: -1}
}

// record adds an accepted batch to pr, dropping the oldest beyond the limit.
func (pr *producer) record(a Append, baseOffset, lastOffset int64) {
	if a.ProducerEpoch != pr.epoch {
		pr.epoch, pr.n = a.ProducerEpoch, 0
	}
	if pr.n == len(pr.batches) {
		copy(pr.batches[:], pr.batches[1:])
		pr.n--
	}
	pr.batches[pr.n] = batchMeta{
		firstSeq: a.BaseSequence, lastSeq: lastSequence(a.BaseSequence, a.LastOffsetDelta),
		baseOffset: baseOffset, lastOffset: lastOffset,
	}
	pr.n++
	pr.lastMs = a.Now
}

func (p *Partition) recordProducer(pr *producer, a Append, baseOffset, lastOffset int64) {
	if pr == nil {
		if len(p.producers) >= base.StreamProducersMax {
			p.evictProducer()
		}
		pr = &producer{epoch: a.ProducerEpoch}
		p.producers[a.ProducerID] = pr
	}
	pr.record(a, baseOffset, lastOffset)
}

// evictProducer forgets the least recently used producer (ties: the lowest
// id), so the choice does not depend on map order.
func (p *Partition) evictProducer() {
	victim, found := int64(0), false
	for id, pr := range p.producers {
		if !found || pr.lastMs < p.producers[victim].lastMs ||
			(pr.lastMs == p.producers[victim].lastMs && id < victim) {
			victim, found = id, true
		}
	}
	delete(p.producers, victim)
}

// expireProducers forgets producers idle for the expiry period and those
// whose every remembered batch is below the log start (Kafka drops those
// when the log start passes them).
func (p *Partition) expireProducers(now int64) int {
	n := 0
	for id, pr := range p.producers {
		if p.producerExpired(pr, now) {
			delete(p.producers, id)
			n++
		}
	}
	return n
}

func (p *Partition) producerExpired(pr *producer, now int64) bool {
	expiry := p.cfg.producerExpiryMs()
	idle := expiry >= 0 && now-pr.lastMs >= expiry
	gone := pr.n > 0 && pr.batches[pr.n-1].lastOffset < p.start
	return idle || gone
}

// Check decides, without changing anything, what applying a would answer
// for its producer. The leader calls it before proposing an idempotent
// batch and proposes only on AppendOK; on AppendDuplicate it answers the
// producer with the original offsets (waiting for the original to apply
// when they are -1).
//
// inflight are the leader's own Appends of the same producer that it has
// proposed but not yet applied, in proposal order: Check applies them to a
// copy of the producer's state first. Two rules keep Check and Apply in
// agreement: the leader must not accept idempotent batches until it has
// applied every entry up to the start of its term (so that state includes
// all its predecessors' batches), and it must pass every in-flight Append of
// the producer.
func (p *Partition) Check(a Append, inflight []Append) AppendResult {
	if a.ProducerID < 0 {
		return AppendResult{Status: AppendOK, BaseOffset: -1, LastOffset: -1}
	}
	var shadow producer
	var pr *producer
	if cur := p.producers[a.ProducerID]; cur != nil {
		shadow = *cur
		pr = &shadow
	}
	for _, f := range inflight {
		if f.ProducerID != a.ProducerID {
			continue
		}
		if checkProducer(pr, f).Status != AppendOK {
			continue // it will be refused at apply too
		}
		if pr == nil {
			shadow = producer{epoch: f.ProducerEpoch}
			pr = &shadow
		}
		pr.record(f, -1, -1) // offsets unknown until applied
	}
	return checkProducer(pr, a)
}

// ProducerInfo describes one remembered idempotent producer.
type ProducerInfo struct {
	Epoch        int16
	LastSequence int32
	LastOffset   int64
	LastMs       int64
}

// Producer returns what the partition remembers of producer id.
func (p *Partition) Producer(id int64) (ProducerInfo, bool) {
	pr := p.producers[id]
	if pr == nil || pr.n == 0 {
		return ProducerInfo{}, false
	}
	b := pr.batches[pr.n-1]
	return ProducerInfo{Epoch: pr.epoch, LastSequence: b.lastSeq, LastOffset: b.lastOffset, LastMs: pr.lastMs}, true
}

// ProducerCount returns how many producers the partition remembers.
func (p *Partition) ProducerCount() int { return len(p.producers) }

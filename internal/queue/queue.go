package queue

import (
	"slices"

	"github.com/ferry-mq/ferry/internal/base"
)

// Queue is one queue's replicated state machine. Every replica applies the
// same commands in the same order and so holds the same state and produces
// the same results and effects. It is not safe for concurrent use: the
// broker applies committed entries from one goroutine.
type Queue struct {
	cfg     Config
	now     int64 // latest Now seen; time never goes backwards
	lastRef Ref   // highest Ref ever enqueued (valid when hasRef)
	hasRef  bool
	deleted bool

	arena    *arena
	levels   []level      // by clamped priority, 0 = lowest
	nonEmpty [4]uint64    // bit l set when levels[l].live > 0
	ttl      heap[uint32] // ready messages with a TTL, by (expireAt, Ref); 4 bytes each
	delay    heap[timed]
	acks     heap[ackTimer]

	keys   *keyTable
	parked heap[uint32] // key ids whose ready messages all wait behind an outstanding one

	consumers  map[ConsumerID]*consumer
	service    heap[*consumer] // consumers that may receive now, best first
	active     *consumer       // single active consumer (nil: none, or SAC off)
	exclusive  *consumer       // the subscribed exclusive consumer, if any
	nextReg    uint64
	nextTicket uint64
	lastID     uint64 // highest delivery id issued to any consumer
	subscribed int

	dlx      map[Ref]uint32 // dead-letter pending messages
	dlxOrder ring[Ref]      // dlx refs in dead-letter order; refs no longer in dlx are skipped

	dedupe  dedupeWindow
	senders senderTable
	reloc   relocation
	places  places // live bodies by log index: Floor

	lastUsed    int64 // when the queue was last used, for idle expiry
	expiredSent bool  // QueueExpired has been emitted since lastUsed
	lastWake    int64 // AtMs of the last Wake effect

	ready, delayed, unacked                int
	readyBytes, delayedBytes, unackedBytes uint64
	tombs                                  int
	ctr                                    Counters

	// Output buffers, owned by the Queue and reused by every Apply.
	effects  []Effect
	outcomes []Outcome
	scratch  []uint64

	lim limits
}

// limits are the hard bounds of base, held per Queue so that tests can
// lower them to reach their edges with small inputs.
type limits struct {
	messages     int
	consumers    int
	dedupeIDs    int
	senders      int
	senderRanges int
	// Compaction thresholds (see needsCompaction); tests lower them to
	// compact on every command.
	compactSlots int
	compactTombs int
}

func defaultLimits() limits {
	return limits{messages: base.QueueMessagesMax, consumers: base.QueueConsumersMax, dedupeIDs: base.QueueDedupeIDsMax,
		senders: base.QueueSendersMax, senderRanges: base.QueueSenderRangesMax,
		compactSlots: 4 * arenaChunkLen, compactTombs: 4096}
}

// timed is an entry of the TTL and delay heaps, ordered by (at, Ref).
type timed struct {
	at   int64
	slot uint32
}

// ackTimer is an entry of the ack-timeout heap, ordered by (at, Ref).
type ackTimer struct {
	at   int64
	id   uint64
	c    *consumer
	slot uint32
}

// Counters are monotonic; the broker computes rates from them.
type Counters struct {
	Enqueued             uint64 // accepted by Enqueue
	Delivered            uint64 // deliveries to consumers and Gets
	Redelivered          uint64 // deliveries of messages delivered before
	Acked                uint64 // settled (including AutoAck Gets)
	Returned             uint64 // failed attempts: returns with requeue, ack timeouts, consumer down, recover
	Expired              uint64 // TTL passed (then dead-lettered or dropped)
	DeadLettered         uint64 // entered dead-letter pending
	Dropped              uint64 // left for a dead-letter reason with no target
	Deduplicated         uint64 // publishes answered "duplicate"
	Rejected             uint64 // publishes refused
	OverflowDeadLettered uint64 // publishes refused and dead-lettered (reject-publish-dlx)
	DeadLetterDone       uint64 // left after the broker moved them to the target
	Purged               uint64
	Deleted              uint64 // messages discarded by Delete
	AckTimeouts          uint64
	DedupeEvicted        uint64 // dedupe ids forgotten early at QueueDedupeIDsMax
	Relocated            uint64 // bodies moved by Relocate (a message moved twice counts twice)
	Resent               uint64 // messages their sender sent again after they were applied, not enqueued again
	SendersEvicted       uint64 // senders forgotten at QueueSendersMax before they went idle
}

// Stats is a point-in-time view of the queue.
type Stats struct {
	Ready             int // deliverable now (including those waiting behind their ordering key)
	Unacked           int
	Delayed           int // not-before delays and retry backoffs
	DeadLetterPending int
	Consumers         int // subscribed consumers
	ReadyBytes        uint64
	UnackedBytes      uint64
	DelayedBytes      uint64
	// LastUsedMs is when the queue was last used (declared, consumed
	// from, read by a get), Unix ms: x-expires runs from it.
	LastUsedMs int64
	Counters
}

// New returns an empty queue with cfg, created at createdMs (Unix ms, from
// the controller's metadata so that every replica uses the same value: the
// idle-expiry clock starts there). cfg must be valid (Config.Validate).
func New(cfg Config, createdMs int64) (*Queue, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if createdMs < 0 || createdMs > base.QueueTimeMsMax {
		return nil, base.Errorf(base.CodeInvalidArgument, "queue: creation time %d out of range", createdMs)
	}
	cfg.Retry.Reasons = slices.Clone(cfg.Retry.Reasons) // the queue owns its config
	q := newQueue(defaultLimits(), cfg)
	q.now, q.lastUsed = createdMs, createdMs
	return q, nil
}

func newQueue(lim limits, cfg Config) *Queue {
	q := &Queue{lim: lim, cfg: cfg, nextReg: 1, nextTicket: 1}
	q.resetState()
	return q
}

// resetState makes every container empty, keeping config, time, counters
// and output buffers.
func (q *Queue) resetState() {
	a := &arena{}
	kt := newKeyTable()
	q.arena, q.keys = a, kt
	q.ttl = heap[uint32]{less: a.expiresBefore, moved: a.noteSlot}
	q.delay = heap[timed]{less: a.timedLess}
	q.acks = heap[ackTimer]{less: a.ackLess, moved: a.noteAck}
	q.parked = heap[uint32]{less: kt.parkedLess(a), moved: kt.noteParked}
	q.consumers = map[ConsumerID]*consumer{}
	q.service = heap[*consumer]{less: consumerBefore, moved: func(c *consumer, pos int) { c.hidx = pos }}
	q.active, q.exclusive, q.subscribed = nil, nil, 0
	q.dlx, q.dlxOrder = map[Ref]uint32{}, ring[Ref]{}
	q.dedupe = dedupeWindow{seen: map[dedupeKey]int64{}}
	q.reloc = relocation{}
	q.places = places{}
	q.ready, q.delayed, q.unacked, q.tombs = 0, 0, 0, 0
	q.readyBytes, q.delayedBytes, q.unackedBytes = 0, 0, 0
	q.nonEmpty = [4]uint64{}
	q.levels = make([]level, int(q.cfg.MaxPriority)+1)
	for i := range q.levels {
		q.levels[i].back = heap[uint32]{less: a.slotLess}
	}
}

func (a *arena) timedLess(x, y timed) bool {
	return x.at < y.at || x.at == y.at && a.at(x.slot).refLess(a.at(y.slot))
}

func (a *arena) expiresBefore(x, y uint32) bool {
	mx, my := a.at(x), a.at(y)
	return mx.expireAt < my.expireAt || mx.expireAt == my.expireAt && mx.refLess(my)
}

func (a *arena) noteSlot(s uint32, pos int) { a.at(s).hidx = uint32(pos) }

func (a *arena) ackLess(x, y ackTimer) bool {
	return x.at < y.at || x.at == y.at && a.at(x.slot).refLess(a.at(y.slot))
}

func (a *arena) noteAck(x ackTimer, pos int) { a.at(x.slot).hidx = uint32(pos) }

func (a *arena) slotLess(x, y uint32) bool { return a.at(x).refLess(a.at(y)) }

// Apply applies one committed command and returns its result and the
// effects the leader must carry out, in order. The returned slices are
// owned by the Queue and valid until the next call. Followers apply the
// same command and discard the effects.
func (q *Queue) Apply(cmd Command) (Result, []Effect) {
	q.effects = q.effects[:0]
	if q.deleted {
		return Result{Err: base.Errorf(base.CodeNotFound, "queue: deleted")}, q.effects
	}
	now := cmd.now()
	if now < 0 || now > base.QueueTimeMsMax {
		return Result{Err: base.Errorf(base.CodeInvalidArgument, "queue: command time %d out of range", now)}, q.effects
	}
	if q.needsCompaction() {
		q.compact()
	}
	q.now = max(q.now, now)
	q.advance()
	res := q.exec(cmd)
	if !q.deleted {
		q.checkIdle()
		q.dispatch()
	}
	q.emitWake()
	if base.InvariantsEnabled {
		q.mustCheck()
	}
	return res, q.effects
}

func (q *Queue) exec(cmd Command) Result {
	switch c := cmd.(type) {
	case *Enqueue:
		return q.enqueue(c)
	case *Subscribe:
		return q.subscribe(c)
	case *Cancel:
		return q.cancel(c)
	case *ConsumerDown:
		return q.consumerDown(c)
	case *Get:
		return q.get(c)
	case *Settle:
		return q.settle(c.Consumer, c.DeliveryIDs, c.UpTo, nil)
	case *Return:
		return q.settle(c.Consumer, c.DeliveryIDs, c.UpTo, c)
	case *Recover:
		return q.recoverAll(c)
	case *Tick:
		return Result{}
	case *Touch:
		q.use()
		return Result{}
	case *DeadLetterDone:
		return q.deadLetterDone(c)
	case *Purge:
		return Result{Count: q.purge()}
	case *Delete:
		return q.deleteQueue(c)
	case *Configure:
		return q.configure(c)
	case *Relocate:
		return q.relocate(c)
	}
	base.Bugf("queue: unknown command %T", cmd)
	return Result{}
}

// advance does the work that time makes due, in a fixed order: ack
// timeouts, then delay releases, then TTL expiries (each in (deadline, Ref)
// order), then dedupe expiry and queue expiry. Everything it computes from
// time uses q.now.
func (q *Queue) advance() {
	now := q.now
	for q.acks.Len() > 0 && q.acks.Top().at <= now {
		q.ackTimeout(q.acks.Pop())
	}
	for q.delay.Len() > 0 && q.delay.Top().at <= now {
		q.release(q.delay.Pop().slot)
	}
	for q.ttl.Len() > 0 && q.arena.at(q.ttl.Top()).expireAt <= now {
		q.expireReady(q.ttl.Pop())
	}
	q.dedupe.expire(now)
	q.checkIdle()
}

// checkIdle emits QueueExpired when the idle deadline has passed. Apply
// calls it again after the command, since Configure can move the deadline
// into the past.
func (q *Queue) checkIdle() {
	if at, ok := q.idleDeadline(); ok && at <= q.now {
		q.expiredSent = true
		q.emit(Effect{Kind: EffectQueueExpired})
	}
}

func (q *Queue) idleDeadline() (int64, bool) {
	if q.cfg.ExpiresMs == 0 || q.subscribed > 0 || q.expiredSent || q.deleted {
		return 0, false
	}
	return q.lastUsed + int64(q.cfg.ExpiresMs), true
}

// use records a use of the queue (subscribe, get, redeclare, or the last
// consumer leaving), restarting its idle expiry.
func (q *Queue) use() {
	q.lastUsed = q.now
	q.expiredSent = false
}

// dedupeSweepMs coarsens the wake-ups that only forget old dedupe ids:
// forgetting is memory housekeeping (lookups compare deadlines), so one
// Tick a second is enough.
const dedupeSweepMs = 1000

// nextDeadline is the earliest time at which something is due, 0 if none.
func (q *Queue) nextDeadline() int64 {
	next := int64(0)
	consider := func(at int64) {
		if next == 0 || at < next {
			next = at
		}
	}
	if q.delay.Len() > 0 {
		consider(q.delay.Top().at)
	}
	if q.ttl.Len() > 0 {
		consider(q.arena.at(q.ttl.Top()).expireAt)
	}
	if q.acks.Len() > 0 {
		consider(q.acks.Top().at)
	}
	if q.dedupe.order.Len() > 0 {
		at := q.dedupe.order.Front().deadline
		consider((at + dedupeSweepMs - 1) / dedupeSweepMs * dedupeSweepMs)
	}
	if at, ok := q.idleDeadline(); ok {
		consider(at)
	}
	return next
}

func (q *Queue) emitWake() {
	next := q.nextDeadline()
	if next == q.lastWake {
		return
	}
	if next != 0 && next <= q.now {
		base.Bugf("queue: next deadline %d is not after now %d", next, q.now)
	}
	q.lastWake = next
	q.emit(Effect{Kind: EffectWake, AtMs: next})
}

func (q *Queue) emit(e Effect) { q.effects = append(q.effects, e) }

// NextWake returns when the owner should propose a Tick (false: no timer
// needed). A new leader calls it to arm its timer.
func (q *Queue) NextWake() (int64, bool) {
	next := q.nextDeadline()
	return next, next != 0
}

// Now returns the queue's time: the latest Now it has seen.
func (q *Queue) Now() int64 { return q.now }

// Config returns the queue's current configuration. Its Retry.Reasons
// slice is shared with the queue: do not modify it.
func (q *Queue) Config() Config { return q.cfg }

// Deleted reports whether the queue has been deleted.
func (q *Queue) Deleted() bool { return q.deleted }

// Stats returns counts and counters.
func (q *Queue) Stats() Stats {
	return Stats{
		Ready: q.ready, Unacked: q.unacked, Delayed: q.delayed, DeadLetterPending: len(q.dlx),
		Consumers: q.subscribed, ReadyBytes: q.readyBytes, UnackedBytes: q.unackedBytes,
		DelayedBytes: q.delayedBytes, LastUsedMs: q.lastUsed, Counters: q.ctr,
	}
}

// live is the number of messages in every state.
func (q *Queue) live() int { return q.ready + q.delayed + q.unacked + len(q.dlx) }

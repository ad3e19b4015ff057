package queue

import (
	"bytes"
	"fmt"
	"slices"
	"testing"

	"github.com/ferry-mq/ferry/internal/base"
	"pgregory.net/rapid"
)

// TestQueueMatchesModel runs random command sequences on the Queue and on
// the naive model and requires the same results, effects, stats, floor,
// wake-up and pending dead-letters after every step. Snapshot/restore and
// compaction happen at random in the middle; history invariants are
// checked from the effects alone. Longer runs: -rapid.checks=20000.
func TestQueueMatchesModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		lim := defaultLimits()
		lim.messages = rapid.IntRange(3, 40).Draw(t, "maxMessages")
		lim.consumers = rapid.IntRange(2, 6).Draw(t, "maxConsumers")
		lim.dedupeIDs = rapid.IntRange(1, 8).Draw(t, "maxDedupe")
		lim.senders = rapid.IntRange(1, 3).Draw(t, "maxSenders")
		lim.senderRanges = rapid.IntRange(1, 3).Draw(t, "maxSenderRanges")
		if rapid.Bool().Draw(t, "compactAlways") {
			lim.compactSlots, lim.compactTombs = 0, 1
		}
		cfg := genConfig(t, rapid.IntRange(0, 3).Draw(t, "maxPriority"))
		start := int64(rapid.IntRange(0, 10_000).Draw(t, "start"))
		q := newQueue(lim, cfg)
		q.now, q.lastUsed = start, start
		m := newModel(cfg, start, lim)
		g := &gen{now: start, q: q}
		h := newHistory()
		steps := rapid.IntRange(1, 120).Draw(t, "steps")
		for i := 0; i < steps; i++ {
			if rapid.IntRange(0, 15).Draw(t, "snapshot?") == 0 {
				q = snapshotRestore(t, q)
				g.q = q
				continue
			}
			cmd := g.command(t)
			h.before(q, cmd)
			got, gotEff := q.Apply(cmd)
			want, wantEff := m.apply(cmd)
			compare(t, i, cmd, got, gotEff, want, wantEff)
			if err := q.check(); err != nil {
				t.Fatalf("step %d %T: invariant: %v", i, cmd, err)
			}
			h.after(t, q, cmd, got, gotEff)
			compareViews(t, i, q, m)
			g.observe(cmd, got, gotEff)
		}
	})
}

func snapshotRestore(t *rapid.T, q *Queue) *Queue {
	var b1, b2 bytes.Buffer
	if err := q.Snapshot(&b1); err != nil {
		t.Fatal(err)
	}
	r := newQueue(q.lim, Config{})
	if err := r.Restore(bytes.NewReader(b1.Bytes())); err != nil {
		t.Fatalf("restore: %v", err)
	}
	if err := r.Snapshot(&b2); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b1.Bytes(), b2.Bytes()) {
		t.Fatalf("restored queue snapshots differently")
	}
	return r
}

func compare(t *rapid.T, step int, cmd Command, got Result, gotEff []Effect, want Result, wantEff []Effect) {
	if gc, wc := base.CodeOf(got.Err), base.CodeOf(want.Err); gc != wc {
		t.Fatalf("step %d %T %+v: error code got %v (%v), want %v (%v)", step, cmd, cmd, gc, got.Err, wc, want.Err)
	}
	if !slices.Equal(got.Outcomes, want.Outcomes) || got.Count != want.Count || got.Found != want.Found || got.Delivery != want.Delivery {
		t.Fatalf("step %d %T %+v: result got %+v, want %+v", step, cmd, cmd, got, want)
	}
	if !slices.Equal(gotEff, wantEff) {
		t.Fatalf("step %d %T %+v: effects\ngot  %v\nwant %v", step, cmd, cmd, gotEff, wantEff)
	}
}

func compareViews(t *rapid.T, step int, q *Queue, m *model) {
	if got, want := q.Stats(), m.stats(); got != want {
		t.Fatalf("step %d: stats\ngot  %+v\nwant %+v", step, got, want)
	}
	if got, want := q.Floor(), m.floor(); got != want {
		t.Fatalf("step %d: floor got %d, want %d", step, got, want)
	}
	gw, _ := q.NextWake()
	if want := m.wake(); gw != want {
		t.Fatalf("step %d: next wake got %d, want %d", step, gw, want)
	}
	if got, want := q.DeadLetterPending(), m.pending(); !slices.Equal(got, want) {
		t.Fatalf("step %d: pending dead-letters\ngot  %v\nwant %v", step, got, want)
	}
	if got, want := q.Browse(Ref{}, 1000), m.browse(Ref{}, 1000); !slices.Equal(got, want) {
		t.Fatalf("step %d: browse\ngot  %v\nwant %v", step, got, want)
	}
	for _, mm := range m.msgs {
		if got := q.Locate(mm.ref); got != mm.loc() {
			t.Fatalf("step %d: message %s located at %s, model %s", step, mm.ref, got, mm.loc())
		}
	}
	// Relocatable, with small budgets: sorted by place, all below the
	// cut, every message whose body lies below the cut listed, at most
	// max+1 of them.
	for _, max := range []int{0, 3} {
		list, cut := q.Relocatable(FloorNone, max, 200)
		listed := map[Ref]bool{}
		for i, p := range list {
			if i > 0 && !list[i-1].At.Less(p.At) || p.At.Index >= cut || p.At != q.Locate(p.Ref) {
				t.Fatalf("step %d: relocatable(max %d) %v with cut %d", step, max, list, cut)
			}
			listed[p.Ref] = true
		}
		for _, mm := range m.msgs {
			if mm.loc().Index < cut && !listed[mm.ref] {
				t.Fatalf("step %d: relocatable(max %d) cut at %d leaves out %s at %s", step, max, cut, mm.ref, mm.loc())
			}
		}
		if len(list) > max+1 {
			t.Fatalf("step %d: relocatable(max %d) listed %d", step, max, len(list))
		}
	}
	gotC := q.Consumers()
	if len(gotC) != len(m.consumers) {
		t.Fatalf("step %d: %d consumer records, model %d", step, len(gotC), len(m.consumers))
	}
}

func genSchedule(t *rapid.T, label string) Schedule {
	return Schedule{
		Kind:       BackoffKind(rapid.IntRange(0, 3).Draw(t, label+"Kind")),
		DelayMs:    uint64(rapid.IntRange(0, 300).Draw(t, label+"Delay")),
		MaxDelayMs: uint64(rapid.IntRange(0, 1000).Draw(t, label+"Max")),
		Jitter:     rapid.Bool().Draw(t, label+"Jitter"),
	}
}

func genConfig(t *rapid.T, maxPriority int) Config {
	cfg := Config{MaxPriority: uint8(maxPriority)}
	if rapid.Bool().Draw(t, "limitLength") {
		cfg.MaxLength = uint64(rapid.IntRange(1, 8).Draw(t, "maxLength"))
	}
	if rapid.IntRange(0, 3).Draw(t, "limitBytes") == 0 {
		cfg.MaxLengthBytes = uint64(rapid.IntRange(1, 300).Draw(t, "maxBytes"))
	}
	cfg.Overflow = Overflow(rapid.IntRange(0, 2).Draw(t, "overflow"))
	if rapid.Bool().Draw(t, "queueTTL") {
		cfg.MessageTTLms = uint64(rapid.IntRange(1, 2000).Draw(t, "ttl"))
	}
	if rapid.IntRange(0, 3).Draw(t, "expires?") == 0 {
		cfg.ExpiresMs = uint64(rapid.IntRange(1, 3000).Draw(t, "expires"))
	}
	if rapid.Bool().Draw(t, "ackTimeout?") {
		cfg.AckTimeoutMs = uint64(rapid.IntRange(1, 1500).Draw(t, "ackTimeout"))
	}
	if rapid.Bool().Draw(t, "dlx?") {
		cfg.DeadLetterTarget = "dlx"
	}
	cfg.SingleActiveConsumer = rapid.IntRange(0, 3).Draw(t, "sac") == 0
	if rapid.Bool().Draw(t, "dedupe?") {
		cfg.DedupeWindowMs = uint64(rapid.IntRange(60_000, 120_000).Draw(t, "window"))
	}
	cfg.Retry.DeliveryLimit = uint32(rapid.IntRange(0, 3).Draw(t, "deliveryLimit"))
	cfg.Retry.Default = genSchedule(t, "default")
	for _, r := range []string{ReturnReasonAckTimeout, "poison", "transient"} {
		if rapid.Bool().Draw(t, "reason "+r) {
			cfg.Retry.Reasons = append(cfg.Retry.Reasons, ReasonSchedule{Reason: r, Schedule: genSchedule(t, r)})
		}
	}
	return cfg
}

// gen draws commands that are mostly valid for the current state.
type gen struct {
	now     int64
	nextIdx uint64
	q       *Queue
	refs    []Ref // enqueued so far, for dead-letter done
}

var (
	genOwners = []string{"a", "b", "c"}
	genNames  = []string{"1", "2"}
	genKeys   = []string{"", "", "k1", "k2"}
)

func (g *gen) consumer(t *rapid.T) ConsumerID {
	return ConsumerID{Owner: rapid.SampledFrom(genOwners).Draw(t, "owner"), Name: rapid.SampledFrom(genNames).Draw(t, "name")}
}

func (g *gen) ids(t *rapid.T, c ConsumerID) ([]uint64, uint64) {
	last := uint64(0)
	if rec := g.q.consumers[c]; rec != nil {
		last = rec.lastID
	}
	if rapid.IntRange(0, 3).Draw(t, "upTo?") == 0 {
		return nil, uint64(rapid.IntRange(0, int(last)+1).Draw(t, "upTo"))
	}
	n := rapid.IntRange(0, 3).Draw(t, "nIDs")
	var ids []uint64
	for i := 0; i < n; i++ {
		ids = append(ids, uint64(rapid.IntRange(1, int(last)+1).Draw(t, "id")))
	}
	return ids, 0
}

func (g *gen) command(t *rapid.T) Command {
	switch rapid.IntRange(0, 19).Draw(t, "timeStep") {
	case 19:
		g.now += int64(rapid.IntRange(60_000, 130_000).Draw(t, "jump")) // past dedupe windows
	case 0:
		g.now -= int64(rapid.IntRange(0, 50).Draw(t, "back")) // a new leader's clock may lag
	case 1, 2, 3:
	default:
		g.now += int64(rapid.IntRange(1, 400).Draw(t, "forward"))
	}
	now := g.now
	switch k := rapid.IntRange(0, 99).Draw(t, "kind"); {
	case k < 25:
		return g.enqueue(t, now)
	case k < 33:
		return &Subscribe{Now: now, Consumer: g.consumer(t), PrefetchCount: uint32(rapid.IntRange(0, 3).Draw(t, "prefetch")),
			PrefetchBytes: uint64(rapid.SampledFrom([]int{0, 0, 50, 200}).Draw(t, "prefetchBytes")),
			Priority:      int32(rapid.IntRange(0, 2).Draw(t, "cprio")), Exclusive: rapid.IntRange(0, 5).Draw(t, "exclusive") == 0}
	case k < 37:
		return &Cancel{Now: now, Consumer: g.consumer(t)}
	case k < 40:
		return &ConsumerDown{Now: now, Owner: rapid.SampledFrom(genOwners).Draw(t, "owner")}
	case k < 46:
		c := Get{Now: now, AutoAck: rapid.Bool().Draw(t, "autoack")}
		if !c.AutoAck || rapid.Bool().Draw(t, "named") {
			c.Consumer = g.consumer(t)
		}
		return &c
	case k < 60:
		c := g.consumer(t)
		ids, upTo := g.ids(t, c)
		return &Settle{Now: now, Consumer: c, DeliveryIDs: ids, UpTo: upTo}
	case k < 70:
		c := g.consumer(t)
		ids, upTo := g.ids(t, c)
		return &Return{Now: now, Consumer: c, DeliveryIDs: ids, UpTo: upTo, Requeue: rapid.IntRange(0, 3).Draw(t, "requeue") > 0,
			Reason: rapid.SampledFrom([]string{"", "transient", "poison", "other"}).Draw(t, "reason")}
	case k < 72:
		return &Recover{Now: now, Consumer: g.consumer(t)}
	case k < 84:
		return &Tick{Now: now}
	case k < 86:
		return &Touch{Now: now}
	case k < 91:
		var refs []Ref
		for _, r := range g.refs {
			if rapid.IntRange(0, 2).Draw(t, "done?") == 0 {
				refs = append(refs, r)
			}
		}
		return &DeadLetterDone{Now: now, Refs: refs}
	case k < 92:
		return g.relocate(t, now)
	case k < 93:
		return &Purge{Now: now}
	case k < 94:
		return &Delete{Now: now, IfUnused: rapid.Bool().Draw(t, "ifUnused"), IfEmpty: rapid.Bool().Draw(t, "ifEmpty")}
	default:
		cfg := genConfig(t, int(g.q.cfg.MaxPriority))
		if rapid.IntRange(0, 9).Draw(t, "badPriority") == 0 {
			cfg.MaxPriority++
		}
		return &Configure{Now: now, Config: cfg}
	}
}

// relocate moves a random choice of recent messages into the next entry,
// below a random cutoff (sometimes above the entry: refused).
func (g *gen) relocate(t *rapid.T, now int64) Command {
	g.nextIdx++
	c := &Relocate{Now: now, Index: g.nextIdx, Cutoff: uint64(rapid.IntRange(0, int(g.nextIdx)).Draw(t, "cutoff"))}
	if rapid.IntRange(0, 20).Draw(t, "badCutoff") == 0 {
		c.Cutoff = g.nextIdx + 1
	}
	for _, r := range g.refs {
		if rapid.IntRange(0, 3).Draw(t, "move?") > 0 {
			c.Refs = append(c.Refs, r)
		}
	}
	slices.SortFunc(c.Refs, Ref.Compare)
	c.Refs = slices.Compact(c.Refs)
	if len(c.Refs) > 1 && rapid.IntRange(0, 20).Draw(t, "badOrder") == 0 {
		c.Refs[0], c.Refs[1] = c.Refs[1], c.Refs[0]
	}
	return c
}

func (g *gen) enqueue(t *rapid.T, now int64) Command {
	c := &Enqueue{Now: now}
	n := rapid.IntRange(0, 3).Draw(t, "nMessages")
	for i := 0; i < n; i++ {
		if i == 0 || rapid.Bool().Draw(t, "newIndex") {
			g.nextIdx++
		}
		m := Message{Ref: Ref{Index: g.nextIdx, Slot: uint32(i)}, Bytes: uint32(rapid.IntRange(0, 120).Draw(t, "bytes")),
			Priority: uint8(rapid.IntRange(0, 4).Draw(t, "prio")), OrderingKey: rapid.SampledFrom(genKeys).Draw(t, "key")}
		if rapid.IntRange(0, 3).Draw(t, "ttl?") == 0 {
			m.TTLms = uint64(rapid.IntRange(1, 1500).Draw(t, "mttl"))
		}
		if rapid.IntRange(0, 4).Draw(t, "delay?") == 0 {
			m.NotBeforeMs = now + int64(rapid.IntRange(-100, 1000).Draw(t, "notBefore"))
			m.NotBeforeMs = max(m.NotBeforeMs, 0)
		}
		if rapid.IntRange(0, 2).Draw(t, "dedupe?") == 0 {
			m.DedupeID = rapid.SampledFrom([]string{"d1", "d2", "d3", "a-dedupe-id-longer-than-sixteen-bytes"}).Draw(t, "dedupe")
		}
		if rapid.Bool().Draw(t, "msgid?") {
			m.MessageID = fmt.Sprintf("m%d", rapid.IntRange(0, 5).Draw(t, "msgid"))
		}
		if rapid.Bool().Draw(t, "sender?") {
			// Few lanes and numbers: resends, holes and runs of both kinds.
			m.Sender = SenderID{Lane: uint64(rapid.IntRange(1, 3).Draw(t, "lane")), Seq: uint64(rapid.IntRange(1, 8).Draw(t, "seq"))}
			if rapid.IntRange(0, 40).Draw(t, "badSender") == 0 {
				m.Sender.Lane = 0 // refused: a number without a lane
			}
		}
		c.Messages = append(c.Messages, m)
	}
	if n > 0 && rapid.IntRange(0, 30).Draw(t, "staleRef") == 0 {
		c.Messages[0].Ref = Ref{} // refused: not above the last ref
	}
	return c
}

func (g *gen) observe(cmd Command, res Result, _ []Effect) {
	if c, ok := cmd.(*Enqueue); ok && res.Err == nil {
		for _, m := range c.Messages {
			g.refs = append(g.refs, m.Ref)
		}
		if len(g.refs) > 30 {
			g.refs = g.refs[len(g.refs)-30:]
		}
	}
}

// history checks invariants over the sequence of effects: a message is
// out with at most one consumer at a time, it is dead-lettered only for a
// documented reason, and never both acknowledged and dead-lettered.
type history struct {
	out      map[Ref]ConsumerID // outstanding deliveries
	byID     map[ConsumerID]map[uint64]Ref
	ended    map[Ref]string // "acked" or "dead-lettered"
	info     map[Ref]Message
	acked    []ackCandidate // deliveries the command being applied may settle
	rejected []ackCandidate // deliveries it may return without requeue
	expires  map[Ref]int64  // effective expiry of each message, from its enqueue
	now      int64
	cfg      Config // before the command: a Configure applies after the effects of time
}

type ackCandidate struct {
	c   ConsumerID
	id  uint64
	ref Ref
}

func newHistory() *history {
	return &history{out: map[Ref]ConsumerID{}, byID: map[ConsumerID]map[uint64]Ref{}, ended: map[Ref]string{},
		info: map[Ref]Message{}, expires: map[Ref]int64{}}
}

// before notes, from the queue's state, which deliveries a settle or
// return is about to end.
func (h *history) before(q *Queue, cmd Command) {
	h.acked, h.rejected = h.acked[:0], h.rejected[:0]
	pick := func(c ConsumerID, ids []uint64, upTo uint64) (out []ackCandidate) {
		for id, ref := range h.byID[c] {
			if (upTo > 0 && id <= upTo) || slices.Contains(ids, id) {
				out = append(out, ackCandidate{c, id, ref})
			}
		}
		return out
	}
	switch c := cmd.(type) {
	case *Settle:
		h.acked = pick(c.Consumer, c.DeliveryIDs, c.UpTo)
	case *Return:
		if !c.Requeue {
			h.rejected = pick(c.Consumer, c.DeliveryIDs, c.UpTo)
		}
	}
	h.cfg = q.Config()
}

func (h *history) deliver(t *rapid.T, c ConsumerID, id uint64, ref Ref) {
	if prev, ok := h.out[ref]; ok {
		t.Fatalf("message %s delivered to %s while still out with %s", ref, c, prev)
	}
	if h.ended[ref] != "" {
		t.Fatalf("message %s delivered after it was %s", ref, h.ended[ref])
	}
	h.out[ref] = c
	if h.byID[c] == nil {
		h.byID[c] = map[uint64]Ref{}
	}
	h.byID[c][id] = ref
}

func (h *history) end(c ConsumerID, id uint64) {
	if ref, ok := h.byID[c][id]; ok {
		delete(h.out, ref)
		delete(h.byID[c], id)
	}
}

func (h *history) after(t *rapid.T, q *Queue, cmd Command, res Result, effects []Effect) {
	if e, ok := cmd.(*Enqueue); ok && res.Err == nil {
		for _, m := range e.Messages {
			h.info[m.Ref] = m
			ttl := m.TTLms
			if h.cfg.MessageTTLms > 0 && (ttl == 0 || h.cfg.MessageTTLms < ttl) {
				ttl = h.cfg.MessageTTLms
			}
			if ttl > 0 {
				h.expires[m.Ref] = q.Now() + int64(ttl)
			}
		}
	}
	if res.Err == nil {
		h.endByCommand(q, cmd)
	}
	for _, e := range effects {
		switch e.Kind {
		case EffectDeliver:
			h.deliver(t, e.Consumer, e.DeliveryID, e.Ref)
		case EffectAckTimeout:
			h.end(e.Consumer, e.DeliveryID)
		case EffectDeadLetter, EffectDrop:
			if _, out := h.out[e.Ref]; out {
				t.Fatalf("message %s dead-lettered while out with a consumer", e.Ref)
			}
			if h.ended[e.Ref] == "acked" {
				t.Fatalf("message %s dead-lettered after it was acked", e.Ref)
			}
			h.checkReason(t, q, cmd, e)
			h.ended[e.Ref] = "dead-lettered"
		}
	}
	if g, ok := cmd.(*Get); ok && res.Found {
		if g.AutoAck {
			h.ended[res.Delivery.Ref] = "acked"
		} else {
			h.deliver(t, g.Consumer, res.Delivery.DeliveryID, res.Delivery.Ref)
		}
	}
	// A return without requeue dead-letters (or drops) every message it
	// returns, with reason rejected.
	for _, a := range h.rejected {
		timedOut := slices.ContainsFunc(effects, func(e Effect) bool {
			return e.Kind == EffectAckTimeout && e.Consumer == a.c && e.DeliveryID == a.id
		})
		rejected := slices.ContainsFunc(effects, func(e Effect) bool {
			return (e.Kind == EffectDeadLetter || e.Kind == EffectDrop) && e.Ref == a.ref && e.Reason == ReasonRejected
		})
		if res.Err == nil && !timedOut && !rejected {
			t.Fatalf("message %s returned without requeue but not dead-lettered: %v", a.ref, effects)
		}
	}
	for _, a := range h.acked {
		timedOut := slices.ContainsFunc(effects, func(e Effect) bool {
			return e.Kind == EffectAckTimeout && e.Consumer == a.c && e.DeliveryID == a.id
		})
		if res.Err != nil || timedOut {
			continue
		}
		if h.ended[a.ref] == "dead-lettered" {
			t.Fatalf("message %s acked after it was dead-lettered", a.ref)
		}
		h.ended[a.ref] = "acked"
	}
	s := q.Stats()
	c := s.Counters
	if in, out := c.Enqueued+c.OverflowDeadLettered, uint64(s.Ready+s.Unacked+s.Delayed+s.DeadLetterPending)+c.Acked+c.DeadLetterDone+c.Dropped+c.Purged+c.Deleted; in != out {
		t.Fatalf("counts do not add up: %d in, %d accounted for: %+v", in, out, s)
	}
	if len(h.out) != s.Unacked && !q.Deleted() {
		t.Fatalf("%d deliveries outstanding by the effects, %d unacked by the stats", len(h.out), s.Unacked)
	}
}

// endByCommand ends the deliveries a successful command settles or returns.
func (h *history) endByCommand(q *Queue, cmd Command) {
	endAll := func(c ConsumerID, keep func(uint64) bool) {
		for id := range h.byID[c] {
			if keep(id) {
				h.end(c, id)
			}
		}
	}
	switch c := cmd.(type) {
	case *Settle:
		endAll(c.Consumer, func(id uint64) bool { return id <= c.UpTo || slices.Contains(c.DeliveryIDs, id) })
	case *Return:
		endAll(c.Consumer, func(id uint64) bool { return id <= c.UpTo || slices.Contains(c.DeliveryIDs, id) })
	case *Recover:
		endAll(c.Consumer, func(uint64) bool { return true })
	case *ConsumerDown:
		for cid := range h.byID {
			if cid.Owner == c.Owner {
				endAll(cid, func(uint64) bool { return true })
			}
		}
	case *Delete:
		h.out = map[Ref]ConsumerID{}
		h.byID = map[ConsumerID]map[uint64]Ref{}
	}
}

// checkReason: a message is dead-lettered only when its reason holds.
func (h *history) checkReason(t *rapid.T, q *Queue, cmd Command, e Effect) {
	cfg := h.cfg
	switch e.Reason {
	case ReasonExpired:
		if exp := h.expires[e.Ref]; exp == 0 || exp > e.AtMs {
			t.Fatalf("%s dead-lettered as expired at %d, its expiry is %d (0: none)", e.Ref, e.AtMs, exp)
		}
	case ReasonDeliveryLimit:
		if cfg.Retry.DeliveryLimit == 0 || e.DeliveryCount <= cfg.Retry.DeliveryLimit {
			t.Fatalf("%s dead-lettered for delivery-limit with count %d, limit %d", e.Ref, e.DeliveryCount, cfg.Retry.DeliveryLimit)
		}
	case ReasonMaxLen:
		if cfg.MaxLength == 0 && cfg.MaxLengthBytes == 0 {
			t.Fatalf("%s dead-lettered for maxlen without a length limit", e.Ref)
		}
	case ReasonRejected:
		// Rejected: returned without requeue, or a failed attempt whose
		// reason's schedule dead-letters.
		reasons := []string{ReturnReasonAckTimeout}
		switch c := cmd.(type) {
		case *Return:
			if !c.Requeue {
				return
			}
			reasons = append(reasons, c.Reason)
		case *ConsumerDown:
			reasons = append(reasons, ReturnReasonConsumerDown)
		case *Recover:
			reasons = append(reasons, ReturnReasonRecover)
		}
		if !slices.ContainsFunc(reasons, func(r string) bool { return cfg.Retry.schedule(r).Kind == BackoffDeadLetter }) {
			t.Fatalf("%s dead-lettered as rejected by %T with no dead-letter schedule", e.Ref, cmd)
		}
	}
	if e.Kind == EffectDeadLetter && cfg.DeadLetterTarget == "" || e.Kind == EffectDrop && cfg.DeadLetterTarget != "" {
		t.Fatalf("%s: %s with dead-letter target %q", e.Ref, e.Kind, cfg.DeadLetterTarget)
	}
}

// TestReplicasAgree applies the same commands to two replicas, one of
// which is restored from snapshots and compacted at random points (as a
// follower that installs a snapshot, or a node that restarts), and
// requires byte-identical snapshots and identical effects after every
// command.
func TestReplicasAgree(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		lim := defaultLimits()
		lim.messages = rapid.IntRange(3, 40).Draw(t, "maxMessages")
		cfg := genConfig(t, rapid.IntRange(0, 3).Draw(t, "maxPriority"))
		a, b := newQueue(lim, cfg), newQueue(lim, cfg)
		g := &gen{q: a}
		steps := rapid.IntRange(1, 100).Draw(t, "steps")
		for i := 0; i < steps; i++ {
			switch rapid.IntRange(0, 9).Draw(t, "disturb") {
			case 0:
				b = snapshotRestore(t, b)
			case 1:
				b.compact()
			}
			cmd := g.command(t)
			_, ea := a.Apply(cmd)
			ea = slices.Clone(ea)
			_, eb := b.Apply(cmd)
			if !slices.Equal(ea, eb) {
				t.Fatalf("step %d %T: effects differ\nreplica a %v\nreplica b %v", i, cmd, ea, eb)
			}
			var sa, sb bytes.Buffer
			if err := a.Snapshot(&sa); err != nil {
				t.Fatal(err)
			}
			if err := b.Snapshot(&sb); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(sa.Bytes(), sb.Bytes()) {
				t.Fatalf("step %d %T: replicas hold different states", i, cmd)
			}
			g.observe(cmd, Result{}, nil)
		}
	})
}

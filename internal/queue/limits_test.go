package queue

import (
	"bytes"
	"encoding/binary"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/ferry-mq/ferry/internal/base"
)

// Tests at the edge of every limit the queue enforces (internal/base,
// "Queues" section). Limits too large to reach in a unit test are lowered
// through the Queue's limits, which share the code path.

func mustNew(t *testing.T, cfg Config) *Queue {
	t.Helper()
	q, err := New(cfg, 0)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func apply(t *testing.T, q *Queue, cmd Command) (Result, []Effect) {
	t.Helper()
	res, eff := q.Apply(cmd)
	if err := q.check(); err != nil {
		t.Fatalf("%T: invariant broken: %v", cmd, err)
	}
	return res, eff
}

func msgs(index uint64, n int) []Message {
	out := make([]Message, n)
	for i := range out {
		out[i] = Message{Ref: Ref{Index: index, Slot: uint32(i)}}
	}
	return out
}

func TestMessagesMaxRefusesThePublishPastIt(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DeadLetterTarget = "dlq"
	q := mustNew(t, cfg)
	q.lim.messages = 3
	apply(t, q, &Enqueue{Messages: msgs(1, 2)})
	apply(t, q, &Get{Consumer: ConsumerID{"a", "1"}})             // unacked counts
	apply(t, q, &Return{Consumer: ConsumerID{"a", "1"}, UpTo: 1}) // dead-letter pending counts
	res, _ := apply(t, q, &Enqueue{Messages: msgs(2, 2)})
	if got := res.Outcomes; len(got) != 2 || got[0] != OutcomeEnqueued || got[1] != OutcomeRejected {
		t.Fatalf("outcomes at the limit: got %v, want [enqueued rejected]", got)
	}
	if s := q.Stats(); s.Ready+s.Unacked+s.DeadLetterPending != 3 || s.Rejected != 1 {
		t.Fatalf("stats: got %+v, want 3 live, 1 rejected", s)
	}
}

func TestConsumersMaxRefusesTheRecordPastIt(t *testing.T) {
	q := mustNew(t, DefaultConfig())
	q.lim.consumers = 2
	apply(t, q, &Enqueue{Messages: msgs(1, 2)})
	if res, _ := apply(t, q, &Subscribe{Consumer: ConsumerID{"a", "1"}, PrefetchCount: 1}); res.Err != nil {
		t.Fatal(res.Err)
	}
	if res, _ := apply(t, q, &Get{Consumer: ConsumerID{"a", "get"}}); res.Err != nil || !res.Found {
		t.Fatalf("get at the limit: %+v", res)
	}
	if res, _ := apply(t, q, &Subscribe{Consumer: ConsumerID{"b", "1"}}); base.CodeOf(res.Err) != base.CodeOverloaded {
		t.Fatalf("subscribe past the limit: got %v, want overloaded", res.Err)
	}
	if res, _ := apply(t, q, &Get{Consumer: ConsumerID{"b", "get"}}); base.CodeOf(res.Err) != base.CodeOverloaded {
		t.Fatalf("get past the limit: got %v, want overloaded", res.Err)
	}
	// An existing record may still get, and a forgotten one frees a place.
	apply(t, q, &Settle{Consumer: ConsumerID{"a", "get"}, UpTo: 100})
	if res, _ := apply(t, q, &Subscribe{Consumer: ConsumerID{"b", "1"}}); res.Err != nil {
		t.Fatalf("subscribe after a record went: %v", res.Err)
	}
}

func TestDedupeIDsMaxForgetsTheOldestEarly(t *testing.T) {
	q := mustNew(t, DefaultConfig())
	q.lim.dedupeIDs = 2
	apply(t, q, &Enqueue{Messages: []Message{{Ref: Ref{1, 0}, DedupeID: "a"}, {Ref: Ref{1, 1}, DedupeID: "b"}}})
	res, _ := apply(t, q, &Enqueue{Messages: []Message{{Ref: Ref{2, 0}, DedupeID: "b"}, {Ref: Ref{2, 1}, DedupeID: "c"}, {Ref: Ref{2, 2}, DedupeID: "a"}}})
	want := []Outcome{OutcomeDuplicate, OutcomeEnqueued, OutcomeEnqueued}
	for i, o := range res.Outcomes {
		if o != want[i] {
			t.Fatalf("outcomes: got %v, want %v (a was evicted by c)", res.Outcomes, want)
		}
	}
	if s := q.Stats(); s.DedupeEvicted != 2 || q.dedupe.order.Len() != 2 {
		t.Fatalf("evicted %d, remembered %d; want 2 and 2", s.DedupeEvicted, q.dedupe.order.Len())
	}
}

func TestDedupeIDsUpToSixteenBytesAreStoredRawAndLongerHashed(t *testing.T) {
	raw := strings.Repeat("r", base.QueueDedupeIDRawBytes)
	long := raw + "x"
	if k := dedupeKeyOf(raw); k.n != base.QueueDedupeIDRawBytes || string(k.b[:]) != raw {
		t.Fatalf("16-byte id stored as %+v", k)
	}
	if k := dedupeKeyOf(long); k.n != hashedKey {
		t.Fatalf("17-byte id not hashed: %+v", k)
	}
	// A raw id equal to the hash bytes of a long id is still a different key.
	h := dedupeKeyOf(long)
	if dedupeKeyOf(string(h.b[:])) == h {
		t.Fatalf("a raw id collides with a hashed one")
	}
}

func TestFieldBytesMaxInCommands(t *testing.T) {
	at := strings.Repeat("x", base.QueueFieldBytesMax)
	over := at + "x"
	q := mustNew(t, DefaultConfig())
	for _, f := range []func(m *Message, s string){
		func(m *Message, s string) { m.DedupeID = s },
		func(m *Message, s string) { m.OrderingKey = s },
		func(m *Message, s string) { m.MessageID = s },
	} {
		var m Message
		f(&m, over)
		m.Ref = Ref{Index: 1}
		if res, _ := apply(t, q, &Enqueue{Messages: []Message{m}}); base.CodeOf(res.Err) != base.CodeInvalidArgument {
			t.Fatalf("enqueue with a field over the limit: got %v", res.Err)
		}
	}
	if res, _ := apply(t, q, &Enqueue{Messages: []Message{{Ref: Ref{Index: 1}, DedupeID: at, OrderingKey: at, MessageID: at}}}); res.Err != nil {
		t.Fatalf("enqueue with fields at the limit: %v", res.Err)
	}
	if res, _ := apply(t, q, &Subscribe{Consumer: ConsumerID{at, at}, Tag: at}); res.Err != nil {
		t.Fatalf("subscribe at the limit: %v", res.Err)
	}
	for _, cmd := range []Command{
		&Subscribe{Consumer: ConsumerID{over, "n"}}, &Subscribe{Consumer: ConsumerID{"o", "n"}, Tag: over},
		&Return{Consumer: ConsumerID{at, at}, UpTo: 1, Requeue: true, Reason: over},
	} {
		if res, _ := apply(t, q, cmd); base.CodeOf(res.Err) != base.CodeInvalidArgument {
			t.Fatalf("%T over the limit: got %v", cmd, res.Err)
		}
	}
	cfg := DefaultConfig()
	cfg.DeadLetterTarget = over
	if err := cfg.Validate(); base.CodeOf(err) != base.CodeInvalidArgument {
		t.Fatalf("dead-letter target over the limit: got %v", err)
	}
}

func TestSettleIDsMaxInApply(t *testing.T) {
	q := mustNew(t, DefaultConfig())
	c := ConsumerID{"a", "1"}
	apply(t, q, &Enqueue{Messages: msgs(1, 1)})
	apply(t, q, &Subscribe{Consumer: c})
	ids := make([]uint64, base.QueueSettleIDsMax+1)
	if res, _ := apply(t, q, &Settle{Consumer: c, DeliveryIDs: ids}); base.CodeOf(res.Err) != base.CodeInvalidArgument {
		t.Fatalf("settle past the limit: got %v", res.Err)
	}
	// At the limit the ids are checked: here they are unknown.
	if res, _ := apply(t, q, &Settle{Consumer: c, DeliveryIDs: ids[1:]}); base.CodeOf(res.Err) != base.CodePreconditionFailed {
		t.Fatalf("settle at the limit: got %v", res.Err)
	}
	if res, _ := apply(t, q, &DeadLetterDone{Refs: make([]Ref, base.QueueSettleIDsMax+1)}); base.CodeOf(res.Err) != base.CodeInvalidArgument {
		t.Fatalf("dead-letter done past the limit: got %v", res.Err)
	}
	if res, _ := apply(t, q, &DeadLetterDone{Refs: make([]Ref, base.QueueSettleIDsMax)}); res.Err != nil {
		t.Fatalf("dead-letter done at the limit: %v", res.Err)
	}
}

func TestPriorityMaxAndClamping(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxPriority = base.QueuePriorityMax
	q := mustNew(t, cfg)
	apply(t, q, &Enqueue{Messages: []Message{{Ref: Ref{1, 0}, Priority: 254}, {Ref: Ref{1, 1}, Priority: 255}, {Ref: Ref{1, 2}}}})
	res, _ := apply(t, q, &Get{AutoAck: true})
	if res.Delivery.Ref != (Ref{1, 1}) {
		t.Fatalf("first out of 256 levels: got %s, want 1.1 (priority 255)", res.Delivery.Ref)
	}
	cfg.MaxPriority = 2
	q = mustNew(t, cfg)
	apply(t, q, &Enqueue{Messages: []Message{{Ref: Ref{1, 0}, Priority: 2}, {Ref: Ref{1, 1}, Priority: 200}}})
	if res, _ := apply(t, q, &Get{AutoAck: true}); res.Delivery.Ref != (Ref{1, 0}) {
		t.Fatalf("a priority above the maximum counts as the maximum: got %s first, want 1.0", res.Delivery.Ref)
	}
}

func TestRetryReasonsMax(t *testing.T) {
	cfg := DefaultConfig()
	for i := 0; i < base.QueueRetryReasonsMax; i++ {
		cfg.Retry.Reasons = append(cfg.Retry.Reasons, ReasonSchedule{Reason: string(rune('A'+i/26)) + string(rune('a'+i%26))})
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("at the limit: %v", err)
	}
	cfg.Retry.Reasons = append(cfg.Retry.Reasons, ReasonSchedule{Reason: "zz"})
	if err := cfg.Validate(); base.CodeOf(err) != base.CodeInvalidArgument {
		t.Fatalf("past the limit: got %v", err)
	}
	cfg.Retry.Reasons = []ReasonSchedule{{Reason: "b"}, {Reason: "a"}}
	if err := cfg.Validate(); base.CodeOf(err) != base.CodeInvalidArgument {
		t.Fatalf("unsorted reasons: got %v", err)
	}
}

func TestBrowseMax(t *testing.T) {
	q := mustNew(t, DefaultConfig())
	apply(t, q, &Enqueue{Messages: msgs(1, base.QueueBrowseMax+5)})
	if got := len(q.Browse(Ref{}, base.QueueBrowseMax+5)); got != base.QueueBrowseMax {
		t.Fatalf("browse past the limit returned %d, want %d", got, base.QueueBrowseMax)
	}
	if got := q.Browse(Ref{1, 3}, 2); len(got) != 2 || got[0].Ref != (Ref{1, 3}) {
		t.Fatalf("browse from 1.3: got %v", got)
	}
}

func TestTimeAndDurationLimits(t *testing.T) {
	q := mustNew(t, DefaultConfig())
	if res, _ := apply(t, q, &Tick{Now: base.QueueTimeMsMax}); res.Err != nil {
		t.Fatalf("now at the limit: %v", res.Err)
	}
	if res, _ := apply(t, q, &Tick{Now: base.QueueTimeMsMax + 1}); base.CodeOf(res.Err) != base.CodeInvalidArgument {
		t.Fatalf("now past the limit: got %v", res.Err)
	}
	res, _ := apply(t, q, &Enqueue{Now: base.QueueTimeMsMax, Messages: []Message{
		{Ref: Ref{1, 0}, TTLms: base.QueueDurationMsMax, NotBeforeMs: base.QueueTimeMsMax}}})
	if res.Err != nil {
		t.Fatalf("ttl and not-before at the limits: %v", res.Err)
	}
	for _, m := range []Message{{Ref: Ref{2, 0}, TTLms: base.QueueDurationMsMax + 1}, {Ref: Ref{2, 0}, NotBeforeMs: base.QueueTimeMsMax + 1}, {Ref: Ref{2, 0}, NotBeforeMs: -1}} {
		if res, _ := apply(t, q, &Enqueue{Now: base.QueueTimeMsMax, Messages: []Message{m}}); base.CodeOf(res.Err) != base.CodeInvalidArgument {
			t.Fatalf("message %+v past the limits: got %v", m, res.Err)
		}
	}
	cfg := DefaultConfig()
	cfg.ExpiresMs = base.QueueDurationMsMax
	if err := cfg.Validate(); err != nil {
		t.Fatalf("expiry at the limit: %v", err)
	}
	cfg.AckTimeoutMs = base.QueueDurationMsMax + 1
	if err := cfg.Validate(); base.CodeOf(err) != base.CodeInvalidArgument {
		t.Fatalf("ack timeout past the limit: got %v", err)
	}
	cfg = DefaultConfig()
	cfg.Retry.Default = Schedule{Kind: BackoffExponential, DelayMs: base.QueueDurationMsMax, MaxDelayMs: base.QueueDurationMsMax}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("backoff at the limit: %v", err)
	}
	if d := backoffDelay(cfg.Retry.Default, math.MaxUint16, 1); d != base.QueueDurationMsMax {
		t.Fatalf("exponential backoff at the last attempt: got %d, want the cap %d", d, uint64(base.QueueDurationMsMax))
	}
}

func TestDedupeWindowLimitsAndDefault(t *testing.T) {
	cfg := DefaultConfig()
	if cfg.DedupeWindowMs != uint64(base.QueueDedupeWindowDefault.Milliseconds()) || cfg.AckTimeoutMs != uint64(base.QueueAckTimeoutDefault.Milliseconds()) ||
		cfg.MaxPriority != base.QueuePriorityDefault {
		t.Fatalf("defaults: %+v", cfg)
	}
	for _, w := range []struct {
		ms uint64
		ok bool
	}{
		{0, true}, {uint64(base.QueueDedupeWindowMin.Milliseconds()), true}, {uint64(base.QueueDedupeWindowMin.Milliseconds()) - 1, false},
		{uint64(base.QueueDedupeWindowMax.Milliseconds()), true}, {uint64(base.QueueDedupeWindowMax.Milliseconds()) + 1, false},
	} {
		cfg.DedupeWindowMs = w.ms
		if err := cfg.Validate(); (err == nil) != w.ok {
			t.Errorf("window %d ms: got %v, want ok=%v", w.ms, err, w.ok)
		}
	}
}

func TestDeliveryLimitMaxAndSaturatingCount(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Retry.DeliveryLimit = base.QueueDeliveryLimitMax
	if err := cfg.Validate(); err != nil {
		t.Fatalf("at the limit: %v", err)
	}
	cfg.Retry.DeliveryLimit++
	if err := cfg.Validate(); base.CodeOf(err) != base.CodeInvalidArgument {
		t.Fatalf("past the limit: got %v", err)
	}
	cfg.Retry.DeliveryLimit = base.QueueDeliveryLimitMax
	q := mustNew(t, cfg)
	c := ConsumerID{"a", "1"}
	apply(t, q, &Enqueue{Messages: msgs(1, 1)})
	apply(t, q, &Subscribe{Consumer: c, PrefetchCount: 1})
	var effects []Effect
	for i := uint64(1); i <= base.QueueDeliveryLimitMax+1; i++ {
		_, effects = q.Apply(&Return{Consumer: c, DeliveryIDs: []uint64{i}, Requeue: true})
	}
	if len(effects) == 0 || effects[0].Kind != EffectDrop || effects[0].Reason != ReasonDeliveryLimit || effects[0].DeliveryCount != base.QueueDeliveryLimitMax+1 {
		t.Fatalf("after %d failed attempts: got %v, want a delivery-limit drop", base.QueueDeliveryLimitMax+1, effects)
	}
}

func TestEnqueueMessagesMaxInTheDecoder(t *testing.T) {
	b := binary.AppendUvarint([]byte{byte(kindEnqueue), 0}, base.QueueEnqueueMessagesMax+1)
	_, err := Decode(b)
	if base.CodeOf(err) != base.CodeCorrupt || !strings.Contains(err.Error(), "over the limit") {
		t.Fatalf("count past the limit: got %v", err)
	}
}

// TestCompactionFreesTheArenaAfterABurst: a drained burst does not pin
// its memory.
func TestCompactionFreesTheArenaAfterABurst(t *testing.T) {
	q := mustNew(t, DefaultConfig())
	q.lim.compactSlots = 2 * arenaChunkLen // the default is 4 chunks; 2 keeps the test small
	const n = 3 * arenaChunkLen
	for i := 0; i < n/1024; i++ {
		q.Apply(&Enqueue{Messages: msgs(uint64(i+1), 1024)})
	}
	if q.arena.capacity() < n {
		t.Fatalf("arena capacity %d for %d messages", q.arena.capacity(), n)
	}
	q.Apply(&Subscribe{Consumer: ConsumerID{"a", "1"}})
	q.Apply(&Settle{Consumer: ConsumerID{"a", "1"}, UpTo: n - 10})
	var before bytes.Buffer
	q.Snapshot(&before)
	apply(t, q, &Tick{}) // compaction happens at the start of a command
	if got := q.arena.capacity(); got != arenaChunkLen {
		t.Fatalf("arena capacity after draining to 10 messages: got %d, want %d", got, arenaChunkLen)
	}
	var after bytes.Buffer
	q.Snapshot(&after)
	if !bytes.Equal(before.Bytes(), after.Bytes()) {
		t.Fatalf("compaction changed the state")
	}
}

func TestDeliveryCountSaturatesWithoutALimit(t *testing.T) {
	q := mustNew(t, DefaultConfig())
	c := ConsumerID{"a", "1"}
	apply(t, q, &Enqueue{Messages: msgs(1, 1)})
	apply(t, q, &Subscribe{Consumer: c, PrefetchCount: 1})
	var effects []Effect
	for i := uint64(1); i <= math.MaxUint16+2; i++ {
		_, effects = q.Apply(&Return{Consumer: c, DeliveryIDs: []uint64{i}, Requeue: true})
	}
	if effects[0].Kind != EffectDeliver || effects[0].DeliveryCount != math.MaxUint16 {
		t.Fatalf("after %d returns: got %v, want a delivery with count %d", math.MaxUint16+2, effects, math.MaxUint16)
	}
}

// sent enqueues one message at index per SenderID and returns the
// outcomes.
func sent(t *testing.T, q *Queue, index uint64, ids ...SenderID) []Outcome {
	t.Helper()
	ms := msgs(index, len(ids))
	for i := range ms {
		ms[i].Sender = ids[i]
	}
	res, _ := apply(t, q, &Enqueue{Messages: ms})
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	return res.Outcomes
}

// Past QueueSendersMax the sender applied to longest ago is forgotten:
// its next resend is enqueued again (at least once), the others' are not.
func TestSendersMaxForgetsTheSenderAppliedToLongestAgo(t *testing.T) {
	q := mustNew(t, DefaultConfig())
	q.lim.senders = 2
	sent(t, q, 1, SenderID{1, 1}, SenderID{2, 1})
	sent(t, q, 2, SenderID{1, 2}) // lane 1 is now the newer
	sent(t, q, 3, SenderID{3, 1}) // forgets lane 2
	got := sent(t, q, 4, SenderID{1, 1}, SenderID{3, 1}, SenderID{2, 1})
	if want := []Outcome{OutcomeDuplicate, OutcomeDuplicate, OutcomeEnqueued}; !slices.Equal(got, want) {
		t.Fatalf("resends: got %v, want %v", got, want)
	}
	if c := q.Stats().Counters; c.SendersEvicted != 2 || c.Resent != 2 {
		t.Fatalf("counters: %d evicted, %d resent; want 2 (lanes 2, then 1 for lane 2 again) and 2", c.SendersEvicted, c.Resent)
	}
}

// Past QueueSenderRangesMax a sender's lowest range is forgotten.
func TestSenderRangesMaxForgetsTheLowestRange(t *testing.T) {
	q := mustNew(t, DefaultConfig())
	q.lim.senderRanges = 2
	sent(t, q, 1, SenderID{1, 1}, SenderID{1, 3}, SenderID{1, 5}) // three ranges: [1] is forgotten
	got := sent(t, q, 2, SenderID{1, 1}, SenderID{1, 3}, SenderID{1, 5}, SenderID{1, 4})
	if want := []Outcome{OutcomeEnqueued, OutcomeDuplicate, OutcomeDuplicate, OutcomeEnqueued}; !slices.Equal(got, want) {
		t.Fatalf("resends: got %v, want %v", got, want)
	}
	// 1 came back as a third range, the lowest, so it was forgotten at
	// once; 4 joined [3,4) and [5,6).
	if r := q.senders.byLane[1].ranges; !slices.Equal(r, []seqRange{{from: 3, to: 6}}) {
		t.Fatalf("ranges: %v", r)
	}
}

// A sender id that could not be recorded (no lane, or a number whose
// range would overflow) makes the Enqueue invalid.
func TestEnqueueRefusesAnInvalidSender(t *testing.T) {
	q := mustNew(t, DefaultConfig())
	for _, id := range []SenderID{{Lane: 0, Seq: 1}, {Lane: 1, Seq: math.MaxUint64}} {
		ms := msgs(1, 1)
		ms[0].Sender = id
		if res, _ := apply(t, q, &Enqueue{Messages: ms}); base.CodeOf(res.Err) != base.CodeInvalidArgument {
			t.Fatalf("sender %+v: got %v, want invalid_argument", id, res.Err)
		}
	}
}

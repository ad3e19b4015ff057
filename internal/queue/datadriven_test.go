package queue

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
	"github.com/ferry-mq/ferry/internal/base"
)

// TestDataDriven runs the stories in testdata/*.txt, one file per feature.
// Rewrite the expected output with: go test ./internal/queue -run DataDriven -rewrite
//
// The command language (times in ms; "now=" is optional and defaults to
// the previous command's time):
//
//	new [config args] [now=T]               a queue; ack timeouts off unless ack-timeout= is given
//	  input lines "reason NAME KIND [delay=D] [max=M] [jitter]" add retry reasons
//	configure [config args]                 same arguments as new
//	enqueue [now=T]                         input: one message a line:
//	  REF [bytes=N] [prio=P] [ttl=D] [not-before=T] [dedupe=ID] [key=K] [id=MSGID] [sender=LANE.SEQ]
//	subscribe c=OWNER/NAME [prefetch=N] [prefetch-bytes=N] [prio=P] [exclusive] [tag=T]
//	cancel c=..., down owner=O, recover c=..., get [c=...] [autoack]
//	settle c=... (ids=(1,2) | up-to=N)
//	return c=... (ids=(..) | up-to=N) [requeue] [reason=R]
//	tick, touch, purge, delete [if-unused] [if-empty], dlx-done refs=(1.0,2.0)
//	stats, dump, floor, browse [from=REF] [max=N], pending, consumers, wake
//	senders                                 the sender table, applied to longest ago first
//	snapshot                                snapshot, restore into a new queue, continue on it
//
// After every command the harness runs the full invariant check.
func TestDataDriven(t *testing.T) {
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		if !strings.HasSuffix(path, ".txt") {
			t.Skip()
		}
		h := &harness{}
		datadriven.RunTest(t, path, h.run)
	})
}

type harness struct {
	q   *Queue
	now int64
}

func (h *harness) run(t *testing.T, d *datadriven.TestData) string {
	if v, ok := d.Arg("now"); ok {
		h.now = int64(mustInt(t, v.SingleVal(t)))
	}
	if d.Cmd == "new" {
		cfg := DefaultConfig()
		cfg.AckTimeoutMs = 0
		applyConfigArgs(t, d, &cfg)
		q, err := New(cfg, h.now)
		if err != nil {
			return "error: " + err.Error()
		}
		h.q = q
		return ""
	}
	if h.q == nil {
		t.Fatalf("%s: no queue; start with new", d.Pos)
	}
	out := h.command(t, d)
	if err := h.q.check(); err != nil {
		t.Fatalf("%s: after %s: invariant broken: %v", d.Pos, d.Cmd, err)
	}
	return out
}

func (h *harness) command(t *testing.T, d *datadriven.TestData) string {
	q := h.q
	switch d.Cmd {
	case "stats":
		return formatStats(q.Stats())
	case "dump":
		return dump(q)
	case "floor":
		if f := q.Floor(); f != FloorNone {
			return fmt.Sprintf("floor %d", f)
		}
		return "floor none"
	case "wake":
		if at, ok := q.NextWake(); ok {
			return fmt.Sprintf("wake at=%d", at)
		}
		return "wake none"
	case "pending":
		var b strings.Builder
		for _, e := range q.DeadLetterPending() {
			fmt.Fprintln(&b, e)
		}
		return b.String()
	case "consumers":
		return formatConsumers(q.Consumers())
	case "senders":
		return formatSenders(&q.senders)
	case "browse":
		return h.browse(t, d)
	case "snapshot":
		return h.snapshot(t)
	case "locate":
		v, _ := d.Arg("ref")
		return "at " + q.Locate(parseRef(t, v.SingleVal(t))).String()
	case "relocatable":
		list, cut := q.Relocatable(uint64(intArg(t, d, "cutoff", 0)), intArg(t, d, "max", 100), uint64(intArg(t, d, "max-bytes", 1<<20)))
		var b strings.Builder
		for _, p := range list {
			fmt.Fprintf(&b, "%s at %s bytes=%d\n", p.Ref, p.At, p.Bytes)
		}
		fmt.Fprintf(&b, "cut %d", cut)
		return b.String()
	}
	cmd := h.parseCommand(t, d)
	// Every command must survive its own encoding.
	enc, err := Encode(nil, cmd)
	if err != nil {
		t.Fatalf("%s: encode: %v", d.Pos, err)
	}
	dec, err := Decode(enc)
	if err != nil {
		t.Fatalf("%s: decode: %v", d.Pos, err)
	}
	if r, ok := dec.(*Relocate); ok {
		r.Index = cmd.(*Relocate).Index // the entry's index is not encoded
	}
	res, effects := q.Apply(dec)
	return formatResult(dec, res) + formatEffects(effects)
}

func (h *harness) parseCommand(t *testing.T, d *datadriven.TestData) Command {
	now := h.now
	switch d.Cmd {
	case "enqueue":
		c := &Enqueue{Now: now}
		for _, line := range strings.Split(strings.TrimSpace(d.Input), "\n") {
			if line = strings.TrimSpace(line); line != "" {
				c.Messages = append(c.Messages, parseMessage(t, line))
			}
		}
		return c
	case "subscribe":
		c := &Subscribe{Now: now, Consumer: consumerArg(t, d, "c")}
		c.PrefetchCount = uint32(intArg(t, d, "prefetch", 0))
		c.PrefetchBytes = uint64(intArg(t, d, "prefetch-bytes", 0))
		c.Priority = int32(intArg(t, d, "prio", 0))
		c.Exclusive = d.HasArg("exclusive")
		if v, ok := d.Arg("tag"); ok {
			c.Tag = v.SingleVal(t)
		}
		return c
	case "cancel":
		return &Cancel{Now: now, Consumer: consumerArg(t, d, "c")}
	case "down":
		v, _ := d.Arg("owner")
		return &ConsumerDown{Now: now, Owner: v.SingleVal(t)}
	case "recover":
		return &Recover{Now: now, Consumer: consumerArg(t, d, "c")}
	case "get":
		c := &Get{Now: now, AutoAck: d.HasArg("autoack")}
		if d.HasArg("c") {
			c.Consumer = consumerArg(t, d, "c")
		}
		return c
	case "settle":
		return &Settle{Now: now, Consumer: consumerArg(t, d, "c"), DeliveryIDs: idsArg(t, d), UpTo: uint64(intArg(t, d, "up-to", 0))}
	case "return":
		c := &Return{Now: now, Consumer: consumerArg(t, d, "c"), DeliveryIDs: idsArg(t, d), UpTo: uint64(intArg(t, d, "up-to", 0)),
			Requeue: d.HasArg("requeue")}
		if v, ok := d.Arg("reason"); ok {
			c.Reason = v.SingleVal(t)
		}
		return c
	case "tick":
		return &Tick{Now: now}
	case "touch":
		return &Touch{Now: now}
	case "purge":
		return &Purge{Now: now}
	case "delete":
		return &Delete{Now: now, IfUnused: d.HasArg("if-unused"), IfEmpty: d.HasArg("if-empty")}
	case "dlx-done":
		c := &DeadLetterDone{Now: now}
		if v, ok := d.Arg("refs"); ok {
			for _, r := range v.Vals {
				c.Refs = append(c.Refs, parseRef(t, r))
			}
		}
		return c
	case "relocate":
		c := &Relocate{Now: now, Index: uint64(intArg(t, d, "index", 0)), Cutoff: uint64(intArg(t, d, "cutoff", 0))}
		if v, ok := d.Arg("refs"); ok {
			for _, r := range v.Vals {
				c.Refs = append(c.Refs, parseRef(t, r))
			}
		}
		return c
	case "configure":
		cfg := h.q.Config()
		cfg.Retry.Reasons = nil
		applyConfigArgs(t, d, &cfg)
		return &Configure{Now: now, Config: cfg}
	}
	t.Fatalf("%s: unknown command %q", d.Pos, d.Cmd)
	return nil
}

func (h *harness) browse(t *testing.T, d *datadriven.TestData) string {
	from := Ref{}
	if v, ok := d.Arg("from"); ok {
		from = parseRef(t, v.SingleVal(t))
	}
	var b strings.Builder
	for _, m := range h.q.Browse(from, intArg(t, d, "max", 100)) {
		fmt.Fprintf(&b, "%s bytes=%d prio=%d", m.Ref, m.Bytes, m.Priority)
		if m.Redelivered {
			fmt.Fprintf(&b, " redelivered count=%d", m.DeliveryCount)
		}
		if m.ExpireAtMs != 0 {
			fmt.Fprintf(&b, " expires=%d", m.ExpireAtMs)
		}
		if m.OrderingKey != "" {
			fmt.Fprintf(&b, " key=%s", m.OrderingKey)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// snapshot replaces the queue by one restored from its snapshot, checking
// that the restored queue snapshots to the same bytes.
func (h *harness) snapshot(t *testing.T) string {
	var b1, b2 bytes.Buffer
	if err := h.q.Snapshot(&b1); err != nil {
		t.Fatal(err)
	}
	r := newQueue(defaultLimits(), Config{})
	if err := r.Restore(bytes.NewReader(b1.Bytes())); err != nil {
		t.Fatalf("restore: %v", err)
	}
	if err := r.Snapshot(&b2); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b1.Bytes(), b2.Bytes()) {
		t.Fatalf("snapshot of the restored queue differs from the original")
	}
	h.q = r
	return fmt.Sprintf("restored from a %d-byte snapshot", b1.Len())
}

func applyConfigArgs(t *testing.T, d *datadriven.TestData, cfg *Config) {
	for _, a := range d.CmdArgs {
		val := func() uint64 { return uint64(mustInt(t, a.SingleVal(t))) }
		switch a.Key {
		case "now":
		case "max-priority":
			cfg.MaxPriority = uint8(val())
		case "max-length":
			cfg.MaxLength = val()
		case "max-length-bytes":
			cfg.MaxLengthBytes = val()
		case "overflow":
			cfg.Overflow = Overflow(slices.Index(overflowNames[:], a.SingleVal(t)))
		case "ttl":
			cfg.MessageTTLms = val()
		case "expires":
			cfg.ExpiresMs = val()
		case "ack-timeout":
			cfg.AckTimeoutMs = val()
		case "dlx":
			cfg.DeadLetterTarget = a.SingleVal(t)
		case "no-dlx":
			cfg.DeadLetterTarget = ""
		case "sac":
			cfg.SingleActiveConsumer = true
		case "no-sac":
			cfg.SingleActiveConsumer = false
		case "dedupe-window":
			cfg.DedupeWindowMs = val()
		case "delivery-limit":
			cfg.Retry.DeliveryLimit = uint32(val())
		case "backoff":
			cfg.Retry.Default = parseSchedule(t, a.SingleVal(t), d.CmdArgs)
		case "backoff-delay", "backoff-max", "jitter":
		default:
			t.Fatalf("%s: unknown config argument %q", d.Pos, a.Key)
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(d.Input), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if f[0] != "reason" || len(f) < 3 {
			t.Fatalf("%s: bad config line %q", d.Pos, line)
		}
		args := []datadriven.CmdArg{}
		for _, kv := range f[3:] {
			k, v, _ := strings.Cut(kv, "=")
			args = append(args, datadriven.CmdArg{Key: "backoff-" + k, Vals: []string{v}})
		}
		cfg.Retry.Reasons = append(cfg.Retry.Reasons, ReasonSchedule{Reason: f[1], Schedule: parseSchedule(t, f[2], args)})
	}
	slices.SortFunc(cfg.Retry.Reasons, func(a, b ReasonSchedule) int { return strings.Compare(a.Reason, b.Reason) })
}

func parseSchedule(t *testing.T, kind string, args []datadriven.CmdArg) Schedule {
	s := Schedule{Kind: BackoffKind(slices.Index(backoffNames[:], kind))}
	for _, a := range args {
		switch a.Key {
		case "backoff-delay":
			s.DelayMs = uint64(mustInt(t, a.Vals[0]))
		case "backoff-max":
			s.MaxDelayMs = uint64(mustInt(t, a.Vals[0]))
		case "jitter", "backoff-jitter":
			s.Jitter = true
		}
	}
	return s
}

func parseMessage(t *testing.T, line string) Message {
	f := strings.Fields(line)
	m := Message{Ref: parseRef(t, f[0])}
	for _, kv := range f[1:] {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "bytes":
			m.Bytes = uint32(mustInt(t, v))
		case "prio":
			m.Priority = uint8(mustInt(t, v))
		case "ttl":
			m.TTLms = uint64(mustInt(t, v))
		case "not-before":
			m.NotBeforeMs = int64(mustInt(t, v))
		case "dedupe":
			m.DedupeID = v
		case "key":
			m.OrderingKey = v
		case "id":
			m.MessageID = v
		case "sender":
			lane, seq, _ := strings.Cut(v, ".")
			m.Sender = SenderID{Lane: uint64(mustInt(t, lane)), Seq: uint64(mustInt(t, seq))}
		default:
			t.Fatalf("bad message field %q", kv)
		}
	}
	return m
}

func parseRef(t *testing.T, s string) Ref {
	idx, slot, _ := strings.Cut(s, ".")
	r := Ref{Index: uint64(mustInt(t, idx))}
	if slot != "" {
		r.Slot = uint32(mustInt(t, slot))
	}
	return r
}

func mustInt(t *testing.T, s string) int {
	v, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("bad number %q", s)
	}
	return v
}

func intArg(t *testing.T, d *datadriven.TestData, key string, def int) int {
	if v, ok := d.Arg(key); ok {
		return mustInt(t, v.SingleVal(t))
	}
	return def
}

func consumerArg(t *testing.T, d *datadriven.TestData, key string) ConsumerID {
	v, ok := d.Arg(key)
	if !ok {
		t.Fatalf("%s: missing %s=", d.Pos, key)
	}
	owner, name, _ := strings.Cut(v.SingleVal(t), "/")
	return ConsumerID{Owner: owner, Name: name}
}

func idsArg(t *testing.T, d *datadriven.TestData) []uint64 {
	v, ok := d.Arg("ids")
	if !ok {
		return nil
	}
	var ids []uint64
	for _, s := range v.Vals {
		ids = append(ids, uint64(mustInt(t, s)))
	}
	return ids
}

func formatResult(cmd Command, res Result) string {
	if res.Err != nil {
		return fmt.Sprintf("error: %s: %v\n", base.CodeOf(res.Err), res.Err)
	}
	var b strings.Builder
	switch c := cmd.(type) {
	case *Enqueue:
		for i, o := range res.Outcomes {
			fmt.Fprintf(&b, "%s: %s\n", c.Messages[i].Ref, o)
		}
	case *Get:
		if !res.Found {
			fmt.Fprintf(&b, "empty\n")
		} else {
			dl := res.Delivery
			fmt.Fprintf(&b, "got ref=%s id=%d bytes=%d", dl.Ref, dl.DeliveryID, dl.Bytes)
			if dl.At != dl.Ref {
				fmt.Fprintf(&b, " at=%s", dl.At)
			}
			if dl.Redelivered {
				fmt.Fprintf(&b, " redelivered count=%d", dl.DeliveryCount)
			}
			fmt.Fprintf(&b, " (ready %d)\n", res.Count)
		}
	case *Settle:
		fmt.Fprintf(&b, "settled %d\n", res.Count)
	case *Return:
		fmt.Fprintf(&b, "returned %d\n", res.Count)
	case *Recover, *ConsumerDown:
		fmt.Fprintf(&b, "returned %d\n", res.Count)
	case *Purge:
		fmt.Fprintf(&b, "purged %d\n", res.Count)
	case *Relocate:
		fmt.Fprintf(&b, "relocated %d\n", res.Count)
	case *Delete:
		fmt.Fprintf(&b, "deleted with %d messages\n", res.Count)
	case *DeadLetterDone:
		fmt.Fprintf(&b, "done %d\n", res.Count)
	}
	return b.String()
}

func formatEffects(effects []Effect) string {
	var b strings.Builder
	for _, e := range effects {
		fmt.Fprintf(&b, "> %s\n", e)
	}
	return b.String()
}

func formatStats(s Stats) string {
	var b strings.Builder
	fmt.Fprintf(&b, "ready=%d (%d bytes) unacked=%d (%d bytes) delayed=%d (%d bytes) dlx-pending=%d consumers=%d\n",
		s.Ready, s.ReadyBytes, s.Unacked, s.UnackedBytes, s.Delayed, s.DelayedBytes, s.DeadLetterPending, s.Consumers)
	c := s.Counters
	fmt.Fprintf(&b, "enqueued=%d delivered=%d redelivered=%d acked=%d returned=%d expired=%d\n",
		c.Enqueued, c.Delivered, c.Redelivered, c.Acked, c.Returned, c.Expired)
	fmt.Fprintf(&b, "dead-lettered=%d dropped=%d dlx-done=%d deduplicated=%d rejected=%d overflow-dlx=%d\n",
		c.DeadLettered, c.Dropped, c.DeadLetterDone, c.Deduplicated, c.Rejected, c.OverflowDeadLettered)
	fmt.Fprintf(&b, "purged=%d deleted=%d ack-timeouts=%d dedupe-evicted=%d relocated=%d\n", c.Purged, c.Deleted, c.AckTimeouts, c.DedupeEvicted, c.Relocated)
	if c.Resent > 0 || c.SendersEvicted > 0 {
		fmt.Fprintf(&b, "resent=%d senders-evicted=%d\n", c.Resent, c.SendersEvicted)
	}
	return b.String()
}

// formatSenders lists a sender table, applied to longest ago first, a
// sender a line: its lane, when it was last applied to, and its ranges
// of applied numbers ("dl" marks dead-lettered ones).
func formatSenders(t *senderTable) string {
	var b strings.Builder
	for s := t.oldest; s != nil; s = s.newer {
		fmt.Fprintf(&b, "lane=%d last=%d", s.lane, s.lastMs)
		for _, r := range s.ranges {
			fmt.Fprintf(&b, " [%d,%d)", r.from, r.to)
			if r.lettered {
				b.WriteString("dl")
			}
		}
		b.WriteByte('\n')
	}
	if b.Len() == 0 {
		return "none"
	}
	return b.String()
}

func formatConsumers(cs []ConsumerInfo) string {
	var b strings.Builder
	for _, c := range cs {
		fmt.Fprintf(&b, "%s prio=%d prefetch=%d", c.ID, c.Priority, c.PrefetchCount)
		if c.PrefetchBytes > 0 {
			fmt.Fprintf(&b, " prefetch-bytes=%d", c.PrefetchBytes)
		}
		if c.Tag != "" {
			fmt.Fprintf(&b, " tag=%s", c.Tag)
		}
		for _, f := range []struct {
			on   bool
			name string
		}{{c.Exclusive, "exclusive"}, {!c.Subscribed, "cancelled"}, {c.Active, "active"}} {
			if f.on {
				b.WriteString(" " + f.name)
			}
		}
		fmt.Fprintf(&b, " unacked=%d (%d bytes)\n", c.Unacked, c.UnackedBytes)
	}
	return b.String()
}

// dump shows where every message is, in the order it would leave.
func dump(q *Queue) string {
	var b strings.Builder
	dumpReady(q, &b)
	dumpOthers(q, &b)
	if b.Len() == 0 {
		return "empty\n"
	}
	return b.String()
}

func describe(q *Queue) func(s uint32) string {
	return func(s uint32) string {
		m := q.arena.at(s)
		var f strings.Builder
		f.WriteString(m.ref().String())
		if m.key != 0 {
			fmt.Fprintf(&f, "(%s)", q.keys.keys[m.key].name)
		}
		if m.count > 0 {
			fmt.Fprintf(&f, "x%d", m.count)
		}
		return f.String()
	}
}

func dumpReady(q *Queue, b *strings.Builder) {
	desc := describe(q)
	for l := len(q.levels) - 1; l >= 0; l-- {
		lv := &q.levels[l]
		var refs []uint32
		for i := 0; i < lv.fifo.Len(); i++ {
			refs = append(refs, lv.fifo.At(i))
		}
		refs = append(refs, lv.back.items...)
		refs = slices.DeleteFunc(refs, func(s uint32) bool { return q.arena.at(s).state() == stTomb })
		if len(refs) == 0 {
			continue
		}
		slices.SortFunc(refs, func(x, y uint32) int { return q.arena.at(x).ref().Compare(q.arena.at(y).ref()) })
		fmt.Fprintf(b, "ready[%d]:", l)
		for _, s := range refs {
			b.WriteString(" " + desc(s))
		}
		b.WriteString("\n")
	}
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range q.keys.byName {
			if !yield(n) {
				return
			}
		}
	})
	for _, n := range names {
		k := &q.keys.keys[q.keys.byName[n]]
		fmt.Fprintf(b, "key %s:", n)
		if k.eligible != noSlot {
			fmt.Fprintf(b, " eligible=%s", desc(k.eligible))
		}
		if k.out != noSlot {
			fmt.Fprintf(b, " out=%s", desc(k.out))
		}
		if k.waiting.Len() > 0 {
			b.WriteString(" waiting:")
		}
		for i := 0; i < k.waiting.Len(); i++ {
			if s := k.waiting.At(i); q.arena.at(s).state() != stTomb {
				fmt.Fprintf(b, " %s", desc(s))
			}
		}
		b.WriteString("\n")
	}
}

func dumpOthers(q *Queue, b *strings.Builder) {
	desc := describe(q)
	delayed := slices.Clone(q.delay.items)
	slices.SortFunc(delayed, func(x, y timed) int {
		if q.arena.timedLess(x, y) {
			return -1
		}
		return 1
	})
	for _, t := range delayed {
		kind := "delayed"
		if q.arena.at(t.slot).state() == stBackoff {
			kind = "backoff"
		}
		fmt.Fprintf(b, "%s until %d: %s\n", kind, t.at, desc(t.slot))
	}
	for _, c := range q.sortedConsumers(func(*consumer) bool { return true }) {
		fmt.Fprintf(b, "unacked %s:", c.id)
		for i := 0; i < c.unacked.Len(); i++ {
			if e := c.unacked.At(i); e.slot != noSlot {
				fmt.Fprintf(b, " %d=%s", e.id, desc(e.slot))
			}
		}
		b.WriteString("\n")
	}
	for i := 0; i < q.dlxOrder.Len(); i++ {
		if s, ok := q.dlx[q.dlxOrder.At(i)]; ok {
			m := q.arena.at(s)
			fmt.Fprintf(b, "dlx-pending %s reason=%s\n", m.ref(), m.reason())
		}
	}
}

package queue

// Command is one operation on the queue, decoded from one committed Raft
// entry. Every command carries Now, the leader's Unix time in ms when it
// proposed the command; the queue never reads a clock. Time never goes
// backwards inside the queue: a Now below the latest one seen counts as the
// latest.
//
// The command types are the pointer types below (*Enqueue, *Subscribe...).
type Command interface {
	kind() cmdKind
	now() int64
}

type cmdKind uint8

// Wire kinds; the numbers are part of the encoding and never change.
const (
	kindEnqueue cmdKind = iota + 1
	kindSubscribe
	kindCancel
	kindConsumerDown
	kindGet
	kindSettle
	kindReturn
	kindRecover
	kindTick
	kindTouch
	kindDeadLetterDone
	kindPurge
	kindDelete
	kindConfigure
	kindRelocate
	kindEnd // one past the last kind
)

// Delivery ids are per consumer and increase; a consumer record created
// anew (after it was forgotten) starts above every id the queue issued, so
// an id is never reused for a consumer id.

// Enqueue adds messages. Their Refs must be strictly increasing and above
// every Ref of an earlier Enqueue (they are the Raft index and batch
// position of this entry); otherwise the whole command is refused with
// CodeInvalidArgument. Result.Outcomes has one outcome per message.
type Enqueue struct {
	Now      int64
	Messages []Message
}

// Subscribe registers a consumer. PrefetchCount and PrefetchBytes bound its
// unacknowledged deliveries (0: unlimited); the byte bound may be exceeded
// by one message, so a message larger than it is still delivered. Consumers
// of higher Priority receive while they have credit. Exclusive fails with
// CodeResourceLocked if the queue has another consumer, and while it exists
// other subscriptions fail the same way. Subscribing a consumer that is
// already subscribed fails with CodePreconditionFailed; subscribing again
// after Cancel, while old deliveries are still unacknowledged, resumes the
// same delivery-id sequence.
type Subscribe struct {
	Now           int64
	Consumer      ConsumerID
	PrefetchCount uint32
	PrefetchBytes uint64
	Priority      int32
	Exclusive     bool
	Tag           string // shown in listings; opaque to the queue
}

// Cancel stops deliveries to a consumer. Its unacknowledged deliveries stay
// with it and may still be settled or returned.
type Cancel struct {
	Now      int64
	Consumer ConsumerID
}

// ConsumerDown says a connection died: every consumer record of Owner is
// removed and all its unacknowledged deliveries are returned (failed
// attempts, reason ReturnReasonConsumerDown). Result.Count is the number of
// deliveries returned.
type ConsumerDown struct {
	Now   int64
	Owner string
}

// Get pulls one ready message (AMQP basic.get): the next one dispatch
// would deliver, whatever the consumers (single active consumer and
// exclusivity govern subscriptions only). With AutoAck it is settled at
// once; otherwise it becomes an unacknowledged delivery of Consumer (which
// need not be subscribed; prefetch does not apply). An anonymous Get (zero
// Consumer) must be AutoAck. Result.Found and Result.Delivery give the
// message, Result.Count the ready messages left.
type Get struct {
	Now      int64
	Consumer ConsumerID
	AutoAck  bool
}

// Settle acknowledges deliveries of Consumer: the listed DeliveryIDs, or,
// when UpTo is non-zero, every delivery with an id up to UpTo (AMQP's
// multiple flag). Giving both is CodeInvalidArgument. A listed id that is not
// an unacknowledged delivery of the consumer fails the whole command with
// CodePreconditionFailed (AMQP's "unknown delivery tag"). Result.Count is
// the number settled.
type Settle struct {
	Now         int64
	Consumer    ConsumerID
	DeliveryIDs []uint64
	UpTo        uint64
}

// Return gives deliveries back (nack/reject), chosen as in Settle. With
// Requeue each is a failed attempt handled by the retry policy (Reason picks
// the schedule); without Requeue each is dead-lettered with reason rejected
// (or dropped). Result.Count is the number returned.
type Return struct {
	Now         int64
	Consumer    ConsumerID
	DeliveryIDs []uint64
	UpTo        uint64
	Requeue     bool
	Reason      string
}

// Recover returns all unacknowledged deliveries of Consumer (AMQP
// basic.recover with requeue); each is a failed attempt with reason
// ReturnReasonRecover. Result.Count is the number returned.
type Recover struct {
	Now      int64
	Consumer ConsumerID
}

// Tick lets time pass: the owner proposes it at the time a Wake effect
// named. Every command does the same time work first; Tick does nothing
// else.
type Tick struct{ Now int64 }

// Touch marks the queue used (a redeclare), restarting its idle expiry.
type Touch struct{ Now int64 }

// DeadLetterDone says the broker has durably appended these dead-lettered
// messages to the dead-letter target; only now do they leave the queue.
// Refs not pending are ignored, so the broker may repeat it. Result.Count is
// the number removed.
type DeadLetterDone struct {
	Now  int64
	Refs []Ref
}

// Purge removes every ready and delayed message (not unacknowledged or
// dead-letter pending ones), without dead-lettering. Result.Count is the
// number removed.
type Purge struct{ Now int64 }

// Delete deletes the queue. IfUnused fails (CodePreconditionFailed) when
// the queue has consumers, IfEmpty when it has ready or delayed messages.
// Afterwards every command fails with CodeNotFound. Result.Count is the
// number of messages discarded (in every state).
type Delete struct {
	Now      int64
	IfUnused bool
	IfEmpty  bool
}

// Configure replaces the queue's policy. Changing MaxPriority fails with
// CodePreconditionFailed.
type Configure struct {
	Now    int64
	Config Config
}

// Relocate moves the bodies of old messages into its own entry, so that
// the log below Cutoff can be released: a message held for long (an
// unacknowledged delivery, a delayed message, a retry backoff, a message
// waiting behind its ordering key) would otherwise keep every entry after
// its own on disk until it leaves (DESIGN.md "Queue log relocation").
//
// Refs, strictly increasing, name the messages whose bodies the entry
// carries, in the order of the entry's records: record k of entry Index
// holds the body of Refs[k]. Every live message whose body lies below
// Cutoff and whose Ref is listed reads it from there afterwards (Locate).
// A listed Ref no longer live, or whose body already lies at or above
// Cutoff, is ignored; a live message below Cutoff that is not listed
// keeps its body where it is, and the floor with it. Index is the Raft
// index of the entry carrying the bodies: the broker sets it when it
// applies the entry (it is not encoded, like an Enqueue's Refs); Cutoff
// must not be above it. Result.Count is the number of messages moved.
type Relocate struct {
	Now    int64
	Cutoff uint64
	Refs   []Ref
	Index  uint64
}

func (*Enqueue) kind() cmdKind        { return kindEnqueue }
func (*Subscribe) kind() cmdKind      { return kindSubscribe }
func (*Cancel) kind() cmdKind         { return kindCancel }
func (*ConsumerDown) kind() cmdKind   { return kindConsumerDown }
func (*Get) kind() cmdKind            { return kindGet }
func (*Settle) kind() cmdKind         { return kindSettle }
func (*Return) kind() cmdKind         { return kindReturn }
func (*Recover) kind() cmdKind        { return kindRecover }
func (*Tick) kind() cmdKind           { return kindTick }
func (*Touch) kind() cmdKind          { return kindTouch }
func (*DeadLetterDone) kind() cmdKind { return kindDeadLetterDone }
func (*Purge) kind() cmdKind          { return kindPurge }
func (*Delete) kind() cmdKind         { return kindDelete }
func (*Configure) kind() cmdKind      { return kindConfigure }
func (*Relocate) kind() cmdKind       { return kindRelocate }

func (c *Enqueue) now() int64        { return c.Now }
func (c *Subscribe) now() int64      { return c.Now }
func (c *Cancel) now() int64         { return c.Now }
func (c *ConsumerDown) now() int64   { return c.Now }
func (c *Get) now() int64            { return c.Now }
func (c *Settle) now() int64         { return c.Now }
func (c *Return) now() int64         { return c.Now }
func (c *Recover) now() int64        { return c.Now }
func (c *Tick) now() int64           { return c.Now }
func (c *Touch) now() int64          { return c.Now }
func (c *DeadLetterDone) now() int64 { return c.Now }
func (c *Purge) now() int64          { return c.Now }
func (c *Delete) now() int64         { return c.Now }
func (c *Configure) now() int64      { return c.Now }
func (c *Relocate) now() int64       { return c.Now }

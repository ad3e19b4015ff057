package queue

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/ferry-mq/ferry/internal/base"
)

// Ref names a message by where its body lives in the queue's Raft log: the
// index of the Enqueue entry and the message's position in that entry's
// batch. Refs order messages by enqueue order; the state machine requires
// every Enqueue to carry Refs above all earlier ones (see Enqueue).
type Ref struct {
	Index uint64 // Raft index of the Enqueue entry
	Slot  uint32 // position within that entry's batch
}

// Compare orders refs by Index, then Slot.
func (r Ref) Compare(o Ref) int {
	switch {
	case r.Index < o.Index:
		return -1
	case r.Index > o.Index:
		return 1
	case r.Slot < o.Slot:
		return -1
	case r.Slot > o.Slot:
		return 1
	}
	return 0
}

// Less reports whether r was enqueued before o.
func (r Ref) Less(o Ref) bool { return r.Compare(o) < 0 }

func (r Ref) String() string { return fmt.Sprintf("%d.%d", r.Index, r.Slot) }

// ConsumerID identifies a consumer. The broker chooses it; the queue treats
// both parts as opaque. Owner groups the consumers of one connection (or
// session) so that ConsumerDown can cancel them all; Name is unique within
// the owner (for example channel number and consumer tag).
type ConsumerID struct {
	Owner string
	Name  string
}

// IsZero reports whether c names no consumer (an anonymous Get, or "no
// active consumer" in an ActiveConsumer effect).
func (c ConsumerID) IsZero() bool { return c.Owner == "" && c.Name == "" }

func (c ConsumerID) String() string {
	if c.IsZero() {
		return "-"
	}
	return c.Owner + "/" + c.Name
}

// Message is the metadata of one enqueued message. The body stays in the
// log; only what the state machine decides on is here.
type Message struct {
	Ref   Ref
	Bytes uint32 // body size, for byte limits and byte prefetch
	// Priority above the queue's MaxPriority counts as MaxPriority.
	Priority uint8
	// TTLms is the message's time to live from enqueue (0: none); the
	// queue's MessageTTLms also applies and the smaller wins.
	TTLms uint64
	// NotBeforeMs is the Unix time in ms before which the message is not
	// delivered (0 or a past time: deliverable at once).
	NotBeforeMs int64
	// DedupeID, when set, makes a second message with the same id within
	// the queue's dedupe window a duplicate.
	DedupeID string
	// OrderingKey, when set, orders the message with the others of its
	// key: one at a time, in order (see DESIGN.md).
	OrderingKey string
	// MessageID, when set, seeds the backoff jitter instead of the Ref, so
	// a message moved between queues keeps its retry schedule.
	MessageID string
	// Sender, when its Lane is set, names the message as its sender
	// numbered it: a message whose Sender was applied before is answered
	// as it was then (OutcomeDuplicate for one enqueued, or dead-lettered
	// again) and not enqueued again.
	Sender SenderID
}

// SenderID names one message of one sender: the broker's publish lane
// (Lane, never 0 when set) and the message's number in it (Seq). A lane
// numbers its messages in the order it sends them and sends a message
// again, with the same SenderID, when it cannot know whether the leader it
// sent it to applied it (DESIGN.md "Senders").
type SenderID struct {
	Lane uint64
	Seq  uint64
}

// Valid reports whether Enqueue accepts id as a message's sender: a lane,
// and a number whose range end ([Seq, Seq+1)) does not overflow.
func (id SenderID) Valid() bool { return id.Lane != 0 && id.Seq < math.MaxUint64 }

// Reason says why a message was dead-lettered or dropped; the broker writes
// it into the message's history (x-death).
type Reason uint8

const (
	ReasonRejected      Reason = iota // returned without requeue, or by a dead-letter schedule
	ReasonExpired                     // TTL passed
	ReasonMaxLen                      // length limit overflow
	ReasonDeliveryLimit               // failed delivery attempts exceeded the delivery limit
)

// reasonNames are RabbitMQ's x-death reasons.
var reasonNames = [...]string{"rejected", "expired", "maxlen", "delivery_limit"}

func (r Reason) String() string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return fmt.Sprintf("reason(%d)", uint8(r))
}

// Return reasons the queue itself uses when it returns a delivery; a retry
// policy may give them their own schedules.
const (
	ReturnReasonAckTimeout   = "ack-timeout"
	ReturnReasonConsumerDown = "consumer-down"
	ReturnReasonRecover      = "recover"
)

// Overflow is what happens to a publish that would exceed a length limit.
type Overflow uint8

const (
	// OverflowDropHead accepts the new message and drops (or dead-letters
	// with reason maxlen) the message at the head until the queue fits.
	OverflowDropHead Overflow = iota
	// OverflowRejectPublish refuses the new message (publisher nack).
	OverflowRejectPublish
	// OverflowRejectPublishDLX refuses the new message and dead-letters it.
	OverflowRejectPublishDLX
)

var overflowNames = [...]string{"drop-head", "reject-publish", "reject-publish-dlx"}

func (o Overflow) String() string {
	if int(o) < len(overflowNames) {
		return overflowNames[o]
	}
	return fmt.Sprintf("overflow(%d)", uint8(o))
}

// BackoffKind is what a retry schedule does with a returned delivery.
type BackoffKind uint8

const (
	BackoffNone        BackoffKind = iota // back to the queue at once
	BackoffFixed                          // back after DelayMs
	BackoffExponential                    // back after min(MaxDelayMs, DelayMs*2^(attempt-1))
	BackoffDeadLetter                     // dead-letter at once, reason rejected
)

var backoffNames = [...]string{"none", "fixed", "exponential", "dead-letter"}

func (k BackoffKind) String() string {
	if int(k) < len(backoffNames) {
		return backoffNames[k]
	}
	return fmt.Sprintf("backoff(%d)", uint8(k))
}

// Schedule is one retry schedule.
type Schedule struct {
	Kind       BackoffKind
	DelayMs    uint64 // fixed delay, or the exponential base
	MaxDelayMs uint64 // exponential cap; 0 means QueueDurationMsMax
	// Jitter draws the delay uniformly from [0, delay] ("full jitter")
	// with a hash of the message (MessageID or Ref) and the attempt, so
	// every replica computes the same time.
	Jitter bool
}

// ReasonSchedule maps a return reason to its schedule.
type ReasonSchedule struct {
	Reason   string
	Schedule Schedule
}

// RetryPolicy decides what happens to a delivery that comes back: an
// explicit return with requeue, an ack timeout, a consumer going down or a
// recover. Each such return is a failed attempt.
type RetryPolicy struct {
	// DeliveryLimit dead-letters a message (reason delivery_limit) when
	// its failed attempts exceed it; 0 means no limit (RabbitMQ's
	// x-delivery-limit).
	DeliveryLimit uint32
	// Default applies to reasons without their own schedule.
	Default Schedule
	// Reasons are sorted by Reason, without duplicates.
	Reasons []ReasonSchedule
}

func (p *RetryPolicy) schedule(reason string) Schedule {
	i, ok := slices.BinarySearchFunc(p.Reasons, reason, func(r ReasonSchedule, s string) int {
		return strings.Compare(r.Reason, s)
	})
	if ok {
		return p.Reasons[i].Schedule
	}
	return p.Default
}

// Config is a queue's policy. DefaultConfig gives RabbitMQ-like defaults;
// Configure changes it at runtime (new values apply from then on).
type Config struct {
	// MaxPriority is the highest priority level; 0 turns priorities off
	// (one level). It cannot change once the queue exists.
	MaxPriority uint8
	// MaxLength and MaxLengthBytes bound the messages waiting in the queue
	// (ready and delayed; not unacknowledged or dead-letter pending);
	// 0 means no limit. They are checked when messages are enqueued.
	MaxLength      uint64
	MaxLengthBytes uint64
	Overflow       Overflow
	// MessageTTLms is the queue's message TTL (0: none).
	MessageTTLms uint64
	// ExpiresMs expires the queue after this long unused (0: never).
	ExpiresMs uint64
	// AckTimeoutMs returns deliveries unacknowledged this long (0: never).
	AckTimeoutMs uint64
	// DeadLetterTarget is where dead-lettered messages go, opaque to the
	// queue and passed to the broker in DeadLetter effects; empty means
	// none, and dead-lettered messages are dropped instead.
	DeadLetterTarget string
	// SingleActiveConsumer delivers to one consumer at a time.
	SingleActiveConsumer bool
	// DedupeWindowMs is how long dedupe ids are remembered; 0 turns
	// deduplication off.
	DedupeWindowMs uint64
	Retry          RetryPolicy
}

// DefaultConfig is the configuration of a queue declared without arguments.
func DefaultConfig() Config {
	return Config{
		MaxPriority:    base.QueuePriorityDefault,
		AckTimeoutMs:   uint64(base.QueueAckTimeoutDefault.Milliseconds()),
		DedupeWindowMs: uint64(base.QueueDedupeWindowDefault.Milliseconds()),
	}
}

// Validate checks c against the limits; the error has CodeInvalidArgument.
func (c *Config) Validate() error {
	durations := []struct {
		name string
		v    uint64
	}{
		{"message ttl", c.MessageTTLms}, {"expires", c.ExpiresMs}, {"ack timeout", c.AckTimeoutMs},
		{"dedupe window", c.DedupeWindowMs},
	}
	for _, d := range durations {
		if d.v > base.QueueDurationMsMax {
			return base.Errorf(base.CodeInvalidArgument, "queue config: %s %d ms is over the limit %d ms", d.name, d.v, uint64(base.QueueDurationMsMax))
		}
	}
	if c.DedupeWindowMs != 0 && (c.DedupeWindowMs < uint64(base.QueueDedupeWindowMin.Milliseconds()) ||
		c.DedupeWindowMs > uint64(base.QueueDedupeWindowMax.Milliseconds())) {
		return base.Errorf(base.CodeInvalidArgument, "queue config: dedupe window %d ms is outside [%d, %d] ms",
			c.DedupeWindowMs, base.QueueDedupeWindowMin.Milliseconds(), base.QueueDedupeWindowMax.Milliseconds())
	}
	if c.Overflow > OverflowRejectPublishDLX {
		return base.Errorf(base.CodeInvalidArgument, "queue config: unknown overflow %d", uint8(c.Overflow))
	}
	if len(c.DeadLetterTarget) > base.QueueFieldBytesMax {
		return base.Errorf(base.CodeInvalidArgument, "queue config: dead-letter target of %d bytes is over the limit %d", len(c.DeadLetterTarget), base.QueueFieldBytesMax)
	}
	return c.Retry.validate()
}

func (p *RetryPolicy) validate() error {
	if p.DeliveryLimit > base.QueueDeliveryLimitMax {
		return base.Errorf(base.CodeInvalidArgument, "queue config: delivery limit %d is over the limit %d", p.DeliveryLimit, base.QueueDeliveryLimitMax)
	}
	if err := p.Default.validate("default"); err != nil {
		return err
	}
	if len(p.Reasons) > base.QueueRetryReasonsMax {
		return base.Errorf(base.CodeInvalidArgument, "queue config: %d retry reasons is over the limit %d", len(p.Reasons), base.QueueRetryReasonsMax)
	}
	for i, r := range p.Reasons {
		if len(r.Reason) > base.QueueFieldBytesMax {
			return base.Errorf(base.CodeInvalidArgument, "queue config: retry reason of %d bytes is over the limit %d", len(r.Reason), base.QueueFieldBytesMax)
		}
		if i > 0 && p.Reasons[i-1].Reason >= r.Reason {
			return base.Errorf(base.CodeInvalidArgument, "queue config: retry reasons must be sorted and unique (%q after %q)", r.Reason, p.Reasons[i-1].Reason)
		}
		if err := r.Schedule.validate(r.Reason); err != nil {
			return err
		}
	}
	return nil
}

func (s *Schedule) validate(name string) error {
	if s.Kind > BackoffDeadLetter {
		return base.Errorf(base.CodeInvalidArgument, "queue config: schedule %q: unknown kind %d", name, uint8(s.Kind))
	}
	if s.DelayMs > base.QueueDurationMsMax || s.MaxDelayMs > base.QueueDurationMsMax {
		return base.Errorf(base.CodeInvalidArgument, "queue config: schedule %q: delay over the limit %d ms", name, uint64(base.QueueDurationMsMax))
	}
	return nil
}

// Outcome is what happened to one message of an Enqueue.
type Outcome uint8

const (
	// OutcomeEnqueued: accepted; confirm to the publisher.
	OutcomeEnqueued Outcome = iota
	// OutcomeDuplicate: its dedupe id was seen within the window; confirm
	// to the publisher, nothing was enqueued.
	OutcomeDuplicate
	// OutcomeRejected: refused (reject-publish overflow, or the queue is at
	// QueueMessagesMax); nack the publisher.
	OutcomeRejected
	// OutcomeDeadLettered: refused and dead-lettered (reject-publish-dlx);
	// nack the publisher. A DeadLetter or Drop effect names it.
	OutcomeDeadLettered
)

var outcomeNames = [...]string{"enqueued", "duplicate", "rejected", "dead-lettered"}

func (o Outcome) String() string {
	if int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return fmt.Sprintf("outcome(%d)", uint8(o))
}

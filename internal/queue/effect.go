package queue

import (
	"fmt"
	"strings"
)

// EffectKind says what an Effect asks the broker to do.
type EffectKind uint8

const (
	// EffectDeliver: send message Ref to Consumer as DeliveryID.
	EffectDeliver EffectKind = iota + 1
	// EffectDeadLetter: append message Ref to Target (with its history
	// built from Reason, AtMs and DeliveryCount), then propose
	// DeadLetterDone. The message stays pending until then.
	EffectDeadLetter
	// EffectDrop: message Ref left the queue for Reason without being
	// dead-lettered (no target); for history and metrics only.
	EffectDrop
	// EffectAckTimeout: delivery DeliveryID of Consumer was not
	// acknowledged in time and has been returned; the front end decides
	// what to tell the client (RabbitMQ closes the channel).
	EffectAckTimeout
	// EffectActiveConsumer: with single active consumer, Consumer is now
	// the one receiving (zero: none).
	EffectActiveConsumer
	// EffectConsumerCancelled: the queue cancelled Consumer (the queue was
	// deleted); tell the client (AMQP basic.cancel from the server).
	EffectConsumerCancelled
	// EffectQueueExpired: the queue has been unused for its expiry period;
	// the controller should delete it.
	EffectQueueExpired
	// EffectWake: propose a Tick at AtMs (0: no timer is needed any more).
	// It is emitted whenever the earliest deadline changes; NextWake gives
	// it again after a leader change.
	EffectWake
)

var effectNames = [...]string{"", "deliver", "dead-letter", "drop", "ack-timeout", "active-consumer",
	"consumer-cancelled", "queue-expired", "wake"}

func (k EffectKind) String() string {
	if int(k) < len(effectNames) && k != 0 {
		return effectNames[k]
	}
	return fmt.Sprintf("effect(%d)", uint8(k))
}

// Effect is one thing the leader must do after applying a command. It is a
// flat union: each kind uses the fields its comment names.
type Effect struct {
	Kind          EffectKind
	Consumer      ConsumerID // Deliver, AckTimeout, ActiveConsumer, ConsumerCancelled
	DeliveryID    uint64     // Deliver, AckTimeout
	Ref           Ref        // Deliver, DeadLetter, Drop, AckTimeout
	Redelivered   bool       // Deliver
	DeliveryCount uint32     // Deliver, DeadLetter, Drop: failed attempts so far
	Bytes         uint32     // Deliver, DeadLetter, Drop
	Reason        Reason     // DeadLetter, Drop
	Target        string     // DeadLetter: the queue's dead-letter target
	AtMs          int64      // DeadLetter, Drop: when; Wake: when to Tick
}

func (e Effect) String() string {
	var b strings.Builder
	b.WriteString(e.Kind.String())
	switch e.Kind {
	case EffectDeliver:
		fmt.Fprintf(&b, " %s id=%d ref=%s", e.Consumer, e.DeliveryID, e.Ref)
		if e.Bytes > 0 {
			fmt.Fprintf(&b, " bytes=%d", e.Bytes)
		}
		if e.Redelivered {
			fmt.Fprintf(&b, " redelivered count=%d", e.DeliveryCount)
		}
	case EffectDeadLetter:
		fmt.Fprintf(&b, " ref=%s reason=%s target=%s at=%d count=%d", e.Ref, e.Reason, e.Target, e.AtMs, e.DeliveryCount)
	case EffectDrop:
		fmt.Fprintf(&b, " ref=%s reason=%s at=%d count=%d", e.Ref, e.Reason, e.AtMs, e.DeliveryCount)
	case EffectAckTimeout:
		fmt.Fprintf(&b, " %s id=%d ref=%s", e.Consumer, e.DeliveryID, e.Ref)
	case EffectActiveConsumer, EffectConsumerCancelled:
		fmt.Fprintf(&b, " %s", e.Consumer)
	case EffectWake:
		if e.AtMs == 0 {
			b.WriteString(" none")
		} else {
			fmt.Fprintf(&b, " at=%d", e.AtMs)
		}
	}
	return b.String()
}

// Delivery is a message handed out by Get.
type Delivery struct {
	Consumer   ConsumerID
	DeliveryID uint64 // 0 for an AutoAck Get: nothing to settle
	Ref        Ref
	// At is where the body lies: Ref, unless a Relocate moved it. An
	// AutoAck Get's message has left the queue, so Locate no longer knows.
	At            Ref
	Redelivered   bool
	DeliveryCount uint32
	Bytes         uint32
}

// Result is the answer to the command's proposer.
type Result struct {
	// Err is nil on success; otherwise a *base.Error whose code says why,
	// and the command changed nothing (time-driven work it did first, and
	// the effects of that work, still happened).
	Err error
	// Outcomes has one outcome per message of an Enqueue. It is owned by
	// the Queue and valid until the next Apply.
	Outcomes []Outcome
	// Count is the command's count (see each command).
	Count int
	// Found and Delivery answer a Get.
	Found    bool
	Delivery Delivery
}

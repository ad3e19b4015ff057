package amqp

import (
	"sync"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/proto/amqp/codec"
)

// txState is a transactional channel's uncommitted work (tx.select): the
// messages published and the acknowledgements given since the last commit
// or rollback. Reader goroutine only, except settles, guarded by the
// channel's mu (acks are taken under it).
type txState struct {
	pubs    []txPublish
	bytes   uint64
	settles []txSettle // guarded by the channel's mu
}

type txPublish struct {
	msg       Message
	mandatory bool
}

// txSettle is one ack, nack or reject: the entries it took off the
// unacked list, settled together at commit.
type txSettle struct {
	taken   []unackedEntry
	kind    settleKind
	requeue bool
}

func (t *txState) addPublish(m Message, mandatory bool) error {
	if len(t.pubs)+len(t.settles) >= base.AMQPTxMessagesMax || t.bytes+uint64(len(m.Body)) > base.AMQPTxBytesMax {
		return protoErr(codec.ReplyPreconditionFailed, codec.MethodBasicPublish,
			"transaction over its limit of %d messages or %d bytes", base.AMQPTxMessagesMax, base.AMQPTxBytesMax)
	}
	t.pubs = append(t.pubs, txPublish{m, mandatory})
	t.bytes += uint64(len(m.Body))
	return nil
}

func (t *txState) addSettle(taken []unackedEntry, kind settleKind, requeue bool) {
	t.settles = append(t.settles, txSettle{taken, kind, requeue})
}

func (ch *channel) txSelect() error {
	ch.mu.Lock()
	confirming := ch.confirming
	ch.mu.Unlock()
	if confirming {
		return protoErr(codec.ReplyPreconditionFailed, codec.MethodTxSelect, "cannot switch from confirm to tx mode")
	}
	if ch.tx == nil {
		ch.tx = &txState{}
	}
	return ch.reply(&codec.TxSelectOk{})
}

// txCommit publishes the transaction's messages and waits until each is
// durable or failed (returning unroutable mandatory ones), then applies
// its acknowledgements, then answers commit-ok. The reader waits: a
// commit is synchronous for the client too.
func (ch *channel) txCommit() error {
	if ch.tx == nil {
		return protoErr(codec.ReplyPreconditionFailed, codec.MethodTxCommit, "channel is not transactional")
	}
	c := ch.c
	pubs := ch.tx.pubs
	ch.mu.Lock()
	settles := ch.tx.settles
	ch.tx = &txState{}
	ch.mu.Unlock()

	var wg sync.WaitGroup
	var mu sync.Mutex
	var fail error
	for start := 0; start < len(pubs); {
		// One call per run of messages to one exchange with one flag.
		end := start + 1
		for end < len(pubs) && end-start < base.AMQPPublishBatchMessagesMax &&
			pubs[end].msg.Exchange == pubs[start].msg.Exchange && pubs[end].mandatory == pubs[start].mandatory {
			end++
		}
		run := pubs[start:end]
		start = end
		msgs := make([]Message, len(run))
		for i, p := range run {
			msgs[i] = p.msg
		}
		if !c.acquirePublish(len(msgs)) {
			return errConnClosed
		}
		wg.Add(1)
		mandatory := run[0].mandatory
		c.session.PublishAsync(msgs[0].Exchange, msgs, PublishOptions{Mandatory: mandatory}, func(res []PublishResult, err error) {
			defer wg.Done()
			defer c.releasePublish(len(msgs))
			ch.mu.Lock()
			defer ch.mu.Unlock()
			for i := range msgs {
				r := PublishResult{Err: err}
				if err == nil && i < len(res) {
					r = res[i]
				}
				switch {
				case r.Err != nil:
					mu.Lock()
					if fail == nil {
						fail = r.Err
					}
					mu.Unlock()
				case r.Unroutable && mandatory:
					ch.sendReturnLocked(&msgs[i], codec.ReplyNoRoute, "NO_ROUTE")
				}
			}
		})
	}
	wg.Wait()
	if fail != nil {
		return fail
	}
	for _, s := range settles {
		runSettles(ch.ctx(), settlesFor(s.taken, s.kind, s.requeue))
	}
	return ch.reply(&codec.TxCommitOk{})
}

// txRollback discards the transaction's publishes; its acknowledgements
// are undone: those deliveries are unacknowledged again, as in RabbitMQ.
func (ch *channel) txRollback() error {
	if ch.tx == nil {
		return protoErr(codec.ReplyPreconditionFailed, codec.MethodTxRollback, "channel is not transactional")
	}
	ch.mu.Lock()
	ch.rollbackLocked()
	ch.mu.Unlock()
	return ch.reply(&codec.TxRollbackOk{})
}

// rollbackLocked starts a new transaction, its predecessor's
// acknowledgements undone (their deliveries unacknowledged again) and its
// publishes dropped. ch.tx must not be nil.
func (ch *channel) rollbackLocked() {
	for _, s := range ch.tx.settles {
		ch.unacked.restore(s.taken)
	}
	ch.tx = &txState{}
}

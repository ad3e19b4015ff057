package rabbitdiff

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// How the scenarios wait. Nothing waits a fixed time to see what happens:
//
//   - Something that must happen (a delivery, a confirm, a close, a count
//     reaching what a correct broker reaches) is waited for up to
//     patience, which only a broken broker, or a difference, reaches; the
//     transcript then records what did happen.
//   - That something did not happen is seen through a fence: a
//     synchronous round trip that both brokers order after the event, on
//     the same channel or connection (a queue.declare, which both answer
//     after the connection's earlier publishes; a confirm, which follows
//     its message's basic.return; a basic.cancel, after whose cancel-ok
//     its consumer gets nothing), a message published after the event,
//     whose delivery shows what came before it, or a queue's counts,
//     which both read from the queue's state after the operations they
//     answered for.
//   - Where a scenario is about elapsed time (TTL, x-expires), it uses
//     short values, with margins far above the machine's delays where the
//     order of two deadlines matters, and polls for the outcome.
const (
	patience = 10 * time.Second
	// pollInterval spaces the reads of a condition that is polled; it is
	// not synchronisation: the condition decides.
	pollInterval = 5 * time.Millisecond
	// scenarioMax bounds a scenario; one that takes longer has its
	// connections closed, which ends every wait it is in.
	scenarioMax = 3 * time.Minute
	// expiryPatience bounds the wait for a queue's x-expires: RabbitMQ
	// checks a quorum queue's expiry only on its tick, every 5 s.
	expiryPatience = 30 * time.Second
	// countersPatience bounds the wait for RabbitMQ's stream counters,
	// which it updates every few seconds.
	countersPatience = 20 * time.Second
)

// abortPrefix starts the transcript line of a scenario that could not go
// on (a connection refused); the test fails on it.
const abortPrefix = "ABORT: "

// scenario is one sequence of AMQP operations whose observable outcome,
// the lines recorded with run.Say, is compared between the brokers.
type scenario struct {
	name string
	fn   func(r *run)
}

// allScenarios returns every scenario.
func allScenarios() []scenario {
	return slices.Concat(basicScenarios(), connScenarios(), queueScenarios(), streamScenarios())
}

// run is one scenario's run against one broker. Its methods are called by
// the scenario's goroutine only, except closeAll.
type run struct {
	url    string
	prefix string   // the scenario's name: every queue and exchange name starts with it
	lines  []string // the transcript

	mu    sync.Mutex         // guards conns
	conns []*amqp.Connection // closed when the scenario ends

	adminConn  *amqp.Connection
	adminCh    *amqp.Channel // reopened after a channel error (see admin)
	fenceQueue string        // declared by fence on first use
	pubCh      *amqp.Channel // the confirm channel of pub
	pubConfirm chan amqp.Confirmation

	probeCh      *amqp.Channel // the confirm channel of exists
	probeConfirm chan amqp.Confirmation
	probeReturn  chan amqp.Return
}

// runScenario runs s against the broker at url and returns its transcript.
func runScenario(s scenario, url string) []string {
	r := &run{url: url, prefix: s.name}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.fn(r)
	}()
	select {
	case <-done:
	case <-time.After(scenarioMax): // a bound on a hang, not a synchronisation
		r.closeAll()
		<-done
		r.lines = append(r.lines, abortPrefix+fmt.Sprintf("the scenario took longer than %v", scenarioMax))
	}
	r.closeAll()
	return r.lines
}

func (r *run) closeAll() {
	r.mu.Lock()
	conns := r.conns
	r.conns = nil
	r.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
}

// Say records an observable fact; the transcripts of both brokers are
// compared line by line.
func (r *run) Say(format string, args ...any) {
	r.lines = append(r.lines, fmt.Sprintf(format, args...))
}

// abort records why the scenario cannot go on and ends its goroutine
// (its deferred calls run), as testing.T.FailNow does.
func (r *run) abort(format string, args ...any) {
	r.lines = append(r.lines, abortPrefix+fmt.Sprintf(format, args...))
	runtime.Goexit()
}

// N returns the name of the scenario's queue or exchange s.
func (r *run) N(s string) string { return r.prefix + "." + s }

// Dial opens a connection, closed when the scenario ends.
func (r *run) Dial() *amqp.Connection {
	c, err := amqp.DialConfig(r.url, amqp.Config{Heartbeat: 10 * time.Second})
	if err != nil {
		r.abort("dial: %v", err)
	}
	r.mu.Lock()
	r.conns = append(r.conns, c)
	r.mu.Unlock()
	return c
}

// Ch opens a channel on a new connection.
func (r *run) Ch() *amqp.Channel {
	ch, err := r.Dial().Channel()
	if err != nil {
		r.abort("channel: %v", err)
	}
	return ch
}

// ChCl opens a channel on a new connection with a close notification.
func (r *run) ChCl() (*amqp.Channel, chan *amqp.Error) {
	ch := r.Ch()
	return ch, ch.NotifyClose(make(chan *amqp.Error, 1))
}

// admin returns the scenario's channel for counts and clean-up, on a
// connection of its own.
func (r *run) admin() *amqp.Channel {
	if r.adminCh != nil && !r.adminCh.IsClosed() {
		return r.adminCh
	}
	if r.adminConn == nil || r.adminConn.IsClosed() {
		r.adminConn = r.Dial()
	}
	ch, err := r.adminConn.Channel()
	if err != nil {
		r.abort("admin channel: %v", err)
	}
	r.adminCh = ch
	return ch
}

// fence returns a queue that exists for the whole scenario, for the
// passive declarations that fence a channel (see State).
func (r *run) fence() string {
	if r.fenceQueue == "" {
		q := r.N("fence")
		if _, err := r.admin().QueueDeclare(q, false, false, false, false, nil); err != nil {
			r.abort("declaring the fence queue: %v", err)
		}
		r.fenceQueue = q
	}
	return r.fenceQueue
}

// Fence makes a round trip on ch that both brokers answer after the
// channel's and the connection's earlier methods and publishes, with their
// basic.return frames: a passive queue.declare. amqp091-go hands a return
// to NotifyReturn before it reads the reply, so once Fence has returned,
// every return due is in the scenario's channel.
func (r *run) Fence(ch *amqp.Channel) error {
	_, err := ch.QueueDeclarePassive(r.fence(), false, false, false, false, nil)
	return err
}

// State says whether the channel is still open, or why it was closed
// (cl is its close notification). It is a fence: a passive queue.declare
// on the channel, which both brokers answer after the channel's and the
// connection's earlier methods and publishes, so a close they caused
// comes first.
func (r *run) State(ch *amqp.Channel, cl chan *amqp.Error) string {
	if r.Fence(ch) == nil {
		return "open"
	}
	return closeReason(cl)
}

// ConnState says whether the connection is still open, or why it was
// closed (cc is its close notification), through a channel opened on it
// and a passive queue.declare, as State.
func (r *run) ConnState(c *amqp.Connection, cc chan *amqp.Error) string {
	q := r.fence()
	if ch, err := c.Channel(); err == nil {
		_, err = ch.QueueDeclarePassive(q, false, false, false, false, nil)
		if err == nil {
			_ = ch.Close()
			return "open"
		}
	}
	return closeReason(cc)
}

// closeReason waits for a close notification that must come.
func closeReason(cl chan *amqp.Error) string {
	select {
	case e, ok := <-cl:
		if !ok || e == nil {
			return "closed-clean"
		}
		return E(e)
	case <-time.After(patience):
		return "no close notification"
	}
}

// nextConfirm waits for the next confirm, which must come, or for the
// confirms to end (the channel closed).
func nextConfirm(acks chan amqp.Confirmation) string {
	select {
	case a, ok := <-acks:
		if !ok {
			return "confirms ended"
		}
		return fmt.Sprintf("confirm tag=%d ack=%v", a.DeliveryTag, a.Ack)
	case <-time.After(patience):
		return "no confirm"
	}
}

// count returns a queue's ready messages and consumers, or the error.
func (r *run) count(q string) string {
	x, err := r.admin().QueueDeclarePassive(q, true, false, false, false, nil)
	if err != nil {
		return E(err)
	}
	return fmt.Sprintf("msgs=%d consumers=%d", x.Messages, x.Consumers)
}

// waitCount polls a queue's counts until they are want, which a correct
// broker reaches (RabbitMQ's quorum queues apply acknowledgements and
// cancellations after answering for them), and returns the last read.
func (r *run) waitCount(q, want string) string {
	return r.waitCountWithin(patience, q, want)
}

// waitCountWithin is waitCount with another bound.
func (r *run) waitCountWithin(bound time.Duration, q, want string) string {
	var s string
	r.waitForWithin(bound, func() bool {
		s = r.count(q)
		return s == want
	})
	return s
}

// waitFor polls cond until it holds or patience runs out, and says which.
func (r *run) waitFor(cond func() bool) bool {
	return r.waitForWithin(patience, cond)
}

// waitForWithin is waitFor with another bound.
func (r *run) waitForWithin(bound time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(pollInterval) // a poll interval, not synchronisation: cond decides
	}
	return true
}

// pub publishes body to q on the scenario's own confirm channel and waits
// for the confirm, so that whatever follows sees the message.
func (r *run) pub(q, body string) {
	r.publish(q, body, amqp.Publishing{})
}

// pubN publishes prefix0 .. prefix(n-1) to q, as pub does.
func (r *run) pubN(q, prefix string, n int) {
	for i := range n {
		r.pub(q, fmt.Sprint(prefix, i))
	}
}

// publish is pub with properties.
func (r *run) publish(q, body string, p amqp.Publishing) {
	if r.pubCh == nil {
		r.pubCh = r.Ch()
		if err := r.pubCh.Confirm(false); err != nil {
			r.abort("confirm.select: %v", err)
		}
		r.pubConfirm = r.pubCh.NotifyPublish(make(chan amqp.Confirmation, 1))
	}
	p.Body = []byte(body)
	if err := r.pubCh.Publish("", q, false, false, p); err != nil {
		r.Say("publish %s: %s", body, E(err))
		return
	}
	select {
	case c := <-r.pubConfirm:
		if !c.Ack {
			r.Say("publish %s nacked", body)
		}
	case <-time.After(patience):
		r.Say("publish %s: no confirm", body)
	}
}

// del deletes queues, for a scenario's clean-up.
func (r *run) del(names ...string) {
	for _, n := range names {
		_, _ = r.admin().QueueDelete(n, false, false, false)
	}
}

// recv waits for a delivery that must come; nil when none came, or the
// consumer ended.
func recv(ds <-chan amqp.Delivery) *amqp.Delivery {
	select {
	case m, ok := <-ds:
		if !ok {
			return nil
		}
		return &m
	case <-time.After(patience):
		return nil
	}
}

// recvN waits for n deliveries that must come, and returns those that did.
func recvN(ds <-chan amqp.Delivery, n int) []amqp.Delivery {
	var out []amqp.Delivery
	for len(out) < n {
		m := recv(ds)
		if m == nil {
			break
		}
		out = append(out, *m)
	}
	return out
}

// E normalises an error: an *amqp.Error by its code and flags, others by
// kind; texts differ between the brokers and are not compared.
func E(err error) string {
	if err == nil {
		return "ok"
	}
	var ae *amqp.Error
	if errors.As(err, &ae) {
		return fmt.Sprintf("amqp-error code=%d server=%v recover=%v", ae.Code, ae.Server, ae.Recover)
	}
	if errors.Is(err, amqp.ErrClosed) {
		return "ErrClosed"
	}
	return "error " + strings.SplitN(err.Error(), ":", 2)[0]
}

// waitReady polls a queue's counts until it has n ready messages (a
// requeue or an expiry applied), and returns them.
func (r *run) waitReady(q string, n int) string {
	var s string
	want := fmt.Sprintf("msgs=%d ", n)
	r.waitFor(func() bool {
		s = r.count(q)
		return strings.HasPrefix(s, want)
	})
	return s
}

// ended waits for a consumer's deliveries to end, as amqp091-go ends them
// when the consumer is cancelled, and says how they ended.
func ended(ds <-chan amqp.Delivery) string {
	select {
	case _, ok := <-ds:
		if !ok {
			return "ended"
		}
		return "a delivery came instead"
	case <-time.After(patience):
		return "not ended"
	}
}

// cancelDrain cancels a consumer and returns what it was delivered
// before the cancel-ok. basic.cancel fences a consumer's deliveries: the
// brokers send none after cancel-ok, and amqp091-go ends the consumer's
// channel once it has handed over those that came before.
func cancelDrain(ch *amqp.Channel, tag string, ds <-chan amqp.Delivery) ([]amqp.Delivery, error) {
	if err := ch.Cancel(tag, false); err != nil {
		return nil, err
	}
	var out []amqp.Delivery
	for m := recv(ds); m != nil; m = recv(ds) {
		out = append(out, *m)
	}
	return out, nil
}

// returned says which basic.return frames are waiting in rc, without
// waiting: call it after a Fence or a confirm, which follow the returns
// they are due.
func returned(rc chan amqp.Return) string {
	var s []string
	for {
		select {
		case ret, ok := <-rc:
			if ok {
				s = append(s, fmt.Sprintf("return %d %s", ret.ReplyCode, ret.Body))
				continue
			}
			s = append(s, "returns ended") // the channel was closed
		default:
		}
		break
	}
	if len(s) == 0 {
		return "no return"
	}
	return strings.Join(s, ", ")
}

// exists says whether queue q exists without using it, as a passive
// declaration would (one restarts the queue's x-expires idle time): a
// mandatory publish to the default exchange, confirmed, which is returned
// when there is no such queue. The message expires at once.
func (r *run) exists(q string) bool {
	for attempt := 0; ; attempt++ {
		if r.probeCh == nil || r.probeCh.IsClosed() {
			r.probeCh = r.admin()
			r.adminCh = nil // the probe channel is the admin channel no more
			if err := r.probeCh.Confirm(false); err != nil {
				r.abort("confirm.select: %v", err)
			}
			r.probeConfirm = r.probeCh.NotifyPublish(make(chan amqp.Confirmation, 1))
			r.probeReturn = r.probeCh.NotifyReturn(make(chan amqp.Return, 1))
		}
		err := r.probeCh.Publish("", q, true, false, amqp.Publishing{Expiration: "0", Body: []byte("probe")})
		if err == nil {
			select {
			case _, ok := <-r.probeConfirm:
				if !ok {
					err = amqp.ErrClosed
				}
			case <-time.After(patience):
				r.abort("probe publish: no confirm")
			}
		}
		if err == nil {
			// A return comes before the confirm of its message.
			select {
			case <-r.probeReturn:
				return false
			default:
				return true
			}
		}
		// RabbitMQ closes a channel that published to a quorum queue
		// being deleted (504); open another, once.
		if attempt > 0 {
			r.abort("probe publish: %v", err)
		}
	}
}

// gone polls until queue q no longer exists (see exists), as it must
// once it expired or was deleted, and says which.
func (r *run) gone(q string, bound time.Duration) string {
	if r.waitForWithin(bound, func() bool { return !r.exists(q) }) {
		return "gone"
	}
	return "still there"
}

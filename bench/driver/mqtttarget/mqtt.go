package mqtttarget

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/ferry-mq/ferry/internal/loadgen"
)

// Target is an MQTT broker at Broker (tcp://host:port).
type Target struct {
	Broker string
	// ConnectTimeout bounds connecting and subscribing; 0 means 30 s.
	ConnectTimeout time.Duration
}

var clientSeq atomic.Uint64 // distinguishes the publisher sessions of one process

func (t *Target) timeout() time.Duration {
	if t.ConnectTimeout > 0 {
		return t.ConnectTimeout
	}
	return 30 * time.Second
}

func (t *Target) options(clientID string, clean bool) *mqtt.ClientOptions {
	return mqtt.NewClientOptions().AddBroker(t.Broker).SetClientID(clientID).
		SetCleanSession(clean).SetAutoReconnect(false).SetKeepAlive(30 * time.Second).
		SetOrderMatters(true)
}

func (t *Target) connect(opts *mqtt.ClientOptions) (mqtt.Client, error) {
	c := mqtt.NewClient(opts)
	if err := wait(c.Connect(), t.timeout()); err != nil {
		return nil, fmt.Errorf("mqtt: connecting to %s as %q: %w", t.Broker, opts.ClientID, err)
	}
	return c, nil
}

func wait(tok mqtt.Token, d time.Duration) error {
	if !tok.WaitTimeout(d) {
		return fmt.Errorf("no answer within %v", d)
	}
	return tok.Error()
}

// sessionID is the client id of a queue's persistent session.
func sessionID(queue string) string { return "loadgen-q-" + queue }

// Connect opens a clean publishing connection.
func (t *Target) Connect(ctx context.Context) (loadgen.Session, error) {
	id := fmt.Sprintf("loadgen-pub-%x-%d", rand.Uint64(), clientSeq.Add(1))
	c, err := t.connect(t.options(id, true))
	if err != nil {
		return nil, err
	}
	return &session{t: t, c: c, confirms: loadgen.NewConfirmer()}, nil
}

type session struct {
	t        *Target
	c        mqtt.Client
	confirms *loadgen.Confirmer
}

// Declare makes each queue a fresh persistent session subscribed to the
// route: a clean connect first discards what an earlier run left.
func (s *session) Declare(ctx context.Context, topo loadgen.Topology) error {
	for _, q := range topo.Queues {
		c, err := s.t.connect(s.t.options(sessionID(q), true))
		if err != nil {
			return err
		}
		c.Disconnect(0)
		c, err = s.t.connect(s.t.options(sessionID(q), false))
		if err != nil {
			return err
		}
		err = wait(c.Subscribe(topo.Route, 1, nil), s.t.timeout())
		c.Disconnect(100)
		if err != nil {
			return fmt.Errorf("mqtt: subscribing %q to %q: %w", q, topo.Route, err)
		}
	}
	return nil
}

// Publish copies body: paho keeps the payload until the PUBACK arrives.
func (s *session) Publish(ctx context.Context, route string, body []byte, done func(error)) error {
	tok := s.c.Publish(route, 1, false, append([]byte(nil), body...))
	return s.confirms.Add(ctx, func(ctx context.Context) error {
		select {
		case <-tok.Done():
			return tok.Error()
		case <-ctx.Done():
			return ctx.Err()
		}
	}, done)
}

var errConnectionLost = errors.New("mqtt: connection lost")

func (s *session) Consume(ctx context.Context, queue string, _ int, handle func([]byte)) error {
	lost := make(chan error, 1)
	opts := s.t.options(sessionID(queue), false).SetAutoAckDisabled(true).
		SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) {
			handle(m.Payload())
			m.Ack()
		}).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			select {
			case lost <- fmt.Errorf("%w: %w", errConnectionLost, err):
			default:
			}
		})
	c, err := s.t.connect(opts)
	if err != nil {
		return err
	}
	defer c.Disconnect(250) // waits for the handler in progress to finish
	select {
	case <-ctx.Done():
		return nil
	case err := <-lost:
		return fmt.Errorf("mqtt: consumer %q: %w", queue, err)
	}
}

func (s *session) Close() error {
	s.c.Disconnect(250)
	s.confirms.Close()
	return nil
}

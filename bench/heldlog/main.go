// Command heldlog measures what one long-held delivery costs a broker on
// disk. It holds the first message of a durable queue unacknowledged
// (prefetch 1, no ack), publishes -messages confirmed messages of -size
// bytes through the same queue while an auto-ack consumer drains them,
// then prints the size of the broker's data directory every -every for
// -watch, one JSON object per line.
//
//	heldlog -addr amqp://guest:guest@127.0.0.1:5672/ -dir ./data -messages 300000 -size 4096
//
// A broker that keeps every log segment from its oldest live message on
// holds the whole run on disk for as long as the delivery is held; one
// that moves old messages forward frees it. It needs the data directory on
// this machine, so it runs only against a local broker. It talks AMQP
// 0-9-1 through amqp091-go and declares its queue with x-queue-type
// quorum, so it runs unchanged against RabbitMQ.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// confirmsInFlight bounds the confirms the publisher waits for at once,
// as in the side-by-side workloads.
const confirmsInFlight = 256

type options struct {
	addr, dir, queue string
	messages, size   int
	watch, every     time.Duration
}

// Sample is one line of output.
type Sample struct {
	Phase     string  `json:"phase"`
	Seconds   float64 `json:"seconds"`
	DataBytes int64   `json:"data_bytes"`
	Messages  int     `json:"messages,omitempty"`
}

func main() {
	var o options
	flag.StringVar(&o.addr, "addr", "amqp://guest:guest@127.0.0.1:5672/", "broker URL")
	flag.StringVar(&o.dir, "dir", "./data", "the broker's data directory")
	flag.StringVar(&o.queue, "queue", "heldlog", "queue to declare (durable, x-queue-type quorum)")
	flag.IntVar(&o.messages, "messages", 300000, "messages to publish past the held one")
	flag.IntVar(&o.size, "size", 4096, "body size in bytes")
	flag.DurationVar(&o.watch, "watch", 90*time.Second, "how long to watch the data directory after publishing")
	flag.DurationVar(&o.every, "every", 5*time.Second, "interval between samples")
	flag.Parse()
	if err := run(o, json.NewEncoder(os.Stdout)); err != nil {
		fmt.Fprintln(os.Stderr, "heldlog:", err)
		os.Exit(1)
	}
}

func run(o options, out *json.Encoder) error {
	if o.messages < 1 || o.size < 0 || o.every <= 0 {
		return errors.New("want -messages ≥ 1, -size ≥ 0 and -every > 0")
	}
	conn, err := amqp.Dial(o.addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	if _, err := ch.QueueDeclare(o.queue, true, false, false, false, amqp.Table{"x-queue-type": "quorum"}); err != nil {
		return err
	}
	p, err := newPublisher(conn)
	if err != nil {
		return err
	}
	if err := p.publish(o.queue, []byte("held"), 1); err != nil {
		return err
	}
	if err := ch.Qos(1, 0, false); err != nil {
		return err
	}
	held, err := ch.Consume(o.queue, "heldlog-holder", false, false, false, false, nil)
	if err != nil {
		return err
	}
	if _, ok := <-held; !ok {
		return errors.New("the holder's delivery channel closed before its first delivery")
	}
	drain, err := conn.Channel()
	if err != nil {
		return err
	}
	drained, err := drain.Consume(o.queue, "heldlog-drain", true, false, false, false, nil)
	if err != nil {
		return err
	}
	go func() {
		for range drained {
		}
	}()
	start := time.Now()
	if err := p.publish(o.queue, make([]byte, o.size), o.messages); err != nil {
		return err
	}
	size, err := dirSize(o.dir)
	if err != nil {
		return err
	}
	if err := out.Encode(Sample{Phase: "published", Seconds: time.Since(start).Seconds(), DataBytes: size, Messages: o.messages}); err != nil {
		return err
	}
	watchStart := time.Now()
	tick := time.NewTicker(o.every)
	defer tick.Stop()
	for time.Since(watchStart) < o.watch {
		<-tick.C
		size, err := dirSize(o.dir)
		if err != nil {
			return err
		}
		if err := out.Encode(Sample{Phase: "watch", Seconds: time.Since(watchStart).Seconds(), DataBytes: size}); err != nil {
			return err
		}
	}
	return nil
}

// publisher publishes persistent messages on a confirm-mode channel with
// at most confirmsInFlight unconfirmed.
type publisher struct {
	ch       *amqp.Channel
	confirms chan amqp.Confirmation
}

func newPublisher(conn *amqp.Connection) (*publisher, error) {
	ch, err := conn.Channel()
	if err != nil {
		return nil, err
	}
	if err := ch.Confirm(false); err != nil {
		return nil, err
	}
	return &publisher{ch: ch, confirms: ch.NotifyPublish(make(chan amqp.Confirmation, confirmsInFlight))}, nil
}

func (p *publisher) publish(queue string, body []byte, n int) error {
	msg := amqp.Publishing{Body: body, DeliveryMode: amqp.Persistent}
	inflight := 0
	wait := func() error {
		c, ok := <-p.confirms
		if !ok {
			return errors.New("the publishing channel closed")
		}
		if !c.Ack {
			return fmt.Errorf("publish %d was nacked", c.DeliveryTag)
		}
		inflight--
		return nil
	}
	for i := 0; i < n; i++ {
		if err := p.ch.PublishWithContext(context.Background(), "", queue, false, false, msg); err != nil {
			return err
		}
		inflight++
		if inflight == confirmsInFlight {
			if err := wait(); err != nil {
				return err
			}
		}
	}
	for inflight > 0 {
		if err := wait(); err != nil {
			return err
		}
	}
	return nil
}

// dirSize is the total size of the regular files under dir. A file removed
// while it walks is skipped: the broker deletes segments as it goes.
func dirSize(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		fi, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		n += fi.Size()
		return nil
	})
	return n, err
}

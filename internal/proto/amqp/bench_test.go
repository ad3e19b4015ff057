package amqp

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// Benchmarks of the front end over real sockets with amqp091-go:
//
//	go test -run '^$' -bench . -benchtime 20000x ./internal/proto/amqp/
//
// "Broker" variants go through the real broker (fsync before confirm, on
// the disk of os.TempDir); "Double" variants through the in-memory test
// double, which measures the front end and the client alone.

// confirmedPublish publishes b.N messages of size bytes from producers
// connections, each keeping window confirms in flight.
func confirmedPublish(b *testing.B, ts *testServer, queue string, size, producers, window int) {
	setup := ts.channel(b)
	if _, err := setup.QueueDeclare(queue, true, false, false, false, nil); err != nil {
		b.Fatal(err)
	}
	body := make([]byte, size)
	per := (b.N + producers - 1) / producers
	chans := make([]*amqp091.Channel, producers)
	for i := range chans {
		chans[i] = ts.channel(b)
		if err := chans[i].Confirm(false); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	var wg sync.WaitGroup
	var nacks atomic.Int64
	for _, ch := range chans {
		wg.Add(1)
		go func(ch *amqp091.Channel) {
			defer wg.Done()
			confirms := ch.NotifyPublish(make(chan amqp091.Confirmation, window))
			inFlight := 0
			for i := 0; i < per; i++ {
				if inFlight == window {
					if c := <-confirms; !c.Ack {
						nacks.Add(1)
					}
					inFlight--
				}
				if err := ch.PublishWithContext(context.Background(), "", queue, false, false, amqp091.Publishing{Body: body}); err != nil {
					b.Error(err)
					return
				}
				inFlight++
			}
			for ; inFlight > 0; inFlight-- {
				if c := <-confirms; !c.Ack {
					nacks.Add(1)
				}
			}
		}(ch)
	}
	wg.Wait()
	b.StopTimer()
	if n := nacks.Load(); n > 0 {
		b.Fatalf("%d nacks", n)
	}
	if _, err := setup.QueueDelete(queue, false, false, false); err != nil {
		b.Fatal(err)
	}
}

func BenchmarkConfirmedPublish(b *testing.B) {
	for _, backend := range []string{"Broker", "Double"} {
		for _, size := range []int{128, 1024} {
			for _, producers := range []int{1, 4} {
				name := fmt.Sprintf("%s/%dB/%dp", backend, size, producers)
				b.Run(name, func(b *testing.B) {
					var ts *testServer
					if backend == "Broker" {
						ts = startServer(b)
					} else {
						ts = startFakeServer(b)
					}
					confirmedPublish(b, ts, fmt.Sprintf("bench-%d-%d", size, producers), size, producers, 256)
				})
			}
		}
	}
}

// BenchmarkDrain consumes b.N messages of 128 bytes with manual acks and
// prefetch 1000, acknowledging every 100th with multiple.
func BenchmarkDrain(b *testing.B) {
	for _, backend := range []string{"Broker", "Double"} {
		b.Run(backend, func(b *testing.B) {
			var ts *testServer
			if backend == "Broker" {
				ts = startServer(b)
			} else {
				ts = startFakeServer(b)
			}
			queue := "drain"
			pub := ts.channel(b)
			if _, err := pub.QueueDeclare(queue, true, false, false, false, nil); err != nil {
				b.Fatal(err)
			}
			if err := pub.Confirm(false); err != nil {
				b.Fatal(err)
			}
			confirms := pub.NotifyPublish(make(chan amqp091.Confirmation, b.N+1))
			body := make([]byte, 128)
			for i := 0; i < b.N; i++ {
				_ = pub.PublishWithContext(context.Background(), "", queue, false, false, amqp091.Publishing{Body: body})
			}
			for i := 0; i < b.N; i++ {
				<-confirms
			}
			ch := ts.channel(b)
			if err := ch.Qos(1000, 0, false); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(128)
			b.ReportAllocs()
			b.ResetTimer()
			msgs, err := ch.Consume(queue, "", false, false, false, false, nil)
			if err != nil {
				b.Fatal(err)
			}
			for i := 1; i <= b.N; i++ {
				d := <-msgs
				if i%100 == 0 || i == b.N {
					_ = d.Ack(true)
				}
			}
			b.StopTimer()
		})
	}
}

package amqp

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/ferry-mq/ferry/internal/proto/amqp/codec"
)

// Benchmarks of the front end over real sockets with amqp091-go:
//
//	go test -run '^$' -bench . -benchtime 20000x ./internal/proto/amqp/
//
// "Broker" variants go through the real broker (fsync before confirm, on
// the disk of os.TempDir); "Double" variants through the in-memory test
// double, which measures the front end and the client alone; "Null"
// variants of the confirmed publish through nullServer, which measures
// the client alone.

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
	for _, backend := range []string{"Broker", "Double", "Null"} {
		for _, size := range []int{128, 1024} {
			for _, producers := range []int{1, 4} {
				name := fmt.Sprintf("%s/%dB/%dp", backend, size, producers)
				b.Run(name, func(b *testing.B) {
					var ts *testServer
					switch backend {
					case "Broker":
						ts = startServer(b)
					case "Double":
						ts = startFakeServer(b)
					default:
						ts = startNullServer(b)
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

// startNullServer serves the least an AMQP server can for
// confirmedPublish: it answers the handshake and the methods the
// benchmark sends, and confirms every message as soon as it has read it,
// with one basic.ack (multiple) per channel for all it read in one go. No
// routing, no storage, no broker: what amqp091-go reaches against it is
// the client's ceiling on this machine, which a broker's throughput
// cannot exceed (docs/benchmarks.md "The ceiling without a broker").
func startNullServer(b *testing.B) *testServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	b.Cleanup(func() {
		_ = ln.Close()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := nullServe(c); err != nil && !errors.Is(err, io.EOF) {
					b.Error(err)
				}
			}()
		}
	}()
	return &testServer{url: "amqp://guest:guest@" + ln.Addr().String() + "/"}
}

// nullServe is startNullServer's side of one connection, until the client
// closes it.
func nullServe(c net.Conn) error {
	defer c.Close()
	const frameMax = 128 << 10
	br := bufio.NewReaderSize(c, 64<<10)
	bw := bufio.NewWriterSize(c, 64<<10)
	fw := codec.NewFrameWriter(bw)
	if err := codec.ReadProtocolHeader(br); err != nil {
		return err
	}
	if err := fw.WriteMethod(0, &codec.ConnectionStart{VersionMinor: 9, Mechanisms: "PLAIN", Locales: "en_US"}); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	fr := codec.NewFrameReader(br)
	if err := errors.Join(fr.SetFrameMax(frameMax), fw.SetFrameMax(frameMax)); err != nil {
		return err
	}
	read := map[uint16]uint64{} // messages read per channel: its last delivery tag
	unacked := map[uint16]bool{}
	var hdr codec.ContentHeader
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return err
		}
		var reply codec.Method
		switch f.Type {
		case codec.FrameMethod:
			m, err := codec.DecodeMethod(f.Payload)
			if err != nil {
				return err
			}
			switch m := m.(type) {
			case *codec.ConnectionStartOk:
				reply = &codec.ConnectionTune{ChannelMax: 16, FrameMax: frameMax}
			case *codec.ConnectionOpen:
				reply = &codec.ConnectionOpenOk{}
			case *codec.ChannelOpen:
				reply = &codec.ChannelOpenOk{}
			case *codec.ConfirmSelect:
				reply = &codec.ConfirmSelectOk{}
			case *codec.QueueDeclare:
				reply = &codec.QueueDeclareOk{Queue: m.Queue}
			case *codec.QueueDelete:
				reply = &codec.QueueDeleteOk{}
			case *codec.ChannelClose:
				reply = &codec.ChannelCloseOk{}
			case *codec.ConnectionClose:
				if err := fw.WriteMethod(0, &codec.ConnectionCloseOk{}); err != nil {
					return err
				}
				return bw.Flush()
			}
		case codec.FrameHeader:
			if err := hdr.Decode(f.Payload); err != nil {
				return err
			}
			if hdr.BodySize == 0 {
				read[f.Channel]++
				unacked[f.Channel] = true
			}
		case codec.FrameBody:
			// confirmedPublish's bodies fit one frame.
			read[f.Channel]++
			unacked[f.Channel] = true
		}
		if reply != nil {
			if err := fw.WriteMethod(f.Channel, reply); err != nil {
				return err
			}
		}
		if br.Buffered() > 0 {
			continue
		}
		for ch := range unacked {
			if err := fw.WriteMethod(ch, &codec.BasicAck{DeliveryTag: read[ch], Multiple: true}); err != nil {
				return err
			}
			delete(unacked, ch)
		}
		if err := bw.Flush(); err != nil {
			return err
		}
	}
}

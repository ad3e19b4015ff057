package loadgen

import (
	"context"
	"errors"
	"net"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The shared targets run against real brokers in `go test ./cmd/ferry -run
// Bench` (an in-process Ferry node, AMQP and Kafka) and in bench/driver's
// tests and bench/compare.sh (RabbitMQ and Ferry); these tests pin what
// can be checked without a broker.

func TestKafkaTopicOfIsTheQueueNameUpToItsFirstSlash(t *testing.T) {
	for _, c := range []struct{ queue, want string }{
		{"orders", "orders"}, {"orders/0", "orders"}, {"orders/a/b", "orders"}, {"/x", ""}, {"", ""},
	} {
		if got := KafkaTopicOf(c.queue); got != c.want {
			t.Errorf("KafkaTopicOf(%q): got %q, want %q", c.queue, got, c.want)
		}
	}
}

func TestKafkaTargetProducesWithAcksAllWhateverTheCallersClientSays(t *testing.T) {
	var seen int
	target := &KafkaTarget{NewClient: func(opts ...kgo.Opt) (*kgo.Client, error) {
		seen = len(opts)
		// A caller whose own options ask for a leader ack only.
		return kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers("127.0.0.1:1"), kgo.RequiredAcks(kgo.LeaderAck()),
			kgo.DisableIdempotentWrite()}, opts...)...)
	}}
	s, err := target.Connect(context.Background())
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	defer s.Close()
	cl := s.(*kafkaSession).cl
	if got, want := cl.OptValue(kgo.RequiredAcks), kgo.AllISRAcks(); got != want {
		t.Errorf("required acks: got %v, want %v (acks=all)", got, want)
	}
	if seen == 0 {
		t.Errorf("NewClient got no options, want at least acks=all")
	}
}

func TestKafkaTargetErrorsGoThroughWrapErr(t *testing.T) {
	sentinel := errors.New("classified")
	target := &KafkaTarget{WrapErr: func(err error) error { return errors.Join(sentinel, err) }}
	if err := target.wrap(errors.New("fetch failed")); !errors.Is(err, sentinel) {
		t.Errorf("wrap with WrapErr: got %v, want it to wrap the caller's error", err)
	}
	plain := (&KafkaTarget{}).wrap(errors.New("fetch failed"))
	if got, want := plain.Error(), "kafka: fetch failed"; got != want {
		t.Errorf("wrap without WrapErr: got %q, want %q", got, want)
	}
}

func TestAMQPQueuesAreDeclaredWithTheirTypeOnlyWhenOneIsSet(t *testing.T) {
	if got := (&AMQPTarget{}).queueArgs(); got != nil {
		t.Errorf("no QueueType: got %v, want no arguments", got)
	}
	got := (&AMQPTarget{QueueType: "quorum"}).queueArgs()
	if want := (amqp.Table{"x-queue-type": "quorum"}); len(got) != 1 || got["x-queue-type"] != want["x-queue-type"] {
		t.Errorf("QueueType quorum: got %v, want %v", got, want)
	}
}

func TestAMQPTargetReturnsTheDialersErrorUnchanged(t *testing.T) {
	refused := errors.New("login refused")
	var dialed string
	target := &AMQPTarget{URL: "amqp://u:p@127.0.0.1:1/", Dial: func(url string, _ NetDial) (*amqp.Connection, error) {
		dialed = url
		return nil, refused
	}}
	if _, err := target.Connect(context.Background()); !errors.Is(err, refused) {
		t.Errorf("Connect: got %v, want the dialer's error", err)
	}
	if dialed != target.URL {
		t.Errorf("dialed %q, want %q", dialed, target.URL)
	}
}

// CoalesceWrites reaches a caller's Dial as the network dialer it must
// use, and that dialer's connections coalesce their writes; without it
// Dial is given nil (amqp091-go's own dialer).
func TestAMQPTargetHandsItsDialTheCoalescingDialer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for _, coalesce := range []bool{false, true} {
		var given NetDial
		target := &AMQPTarget{URL: "amqp://u:p@" + ln.Addr().String() + "/", CoalesceWrites: coalesce,
			Dial: func(_ string, netDial NetDial) (*amqp.Connection, error) {
				given = netDial
				return nil, errors.New("not dialing")
			}}
		if _, err := target.Connect(context.Background()); err == nil {
			t.Fatal("Connect succeeded with a failing Dial")
		}
		if !coalesce {
			if given != nil {
				t.Errorf("CoalesceWrites off: Dial was given a network dialer, want nil")
			}
			continue
		}
		if given == nil {
			t.Fatal("CoalesceWrites on: Dial was given no network dialer")
		}
		c, err := given("tcp", ln.Addr().String())
		if err != nil {
			t.Fatalf("the coalescing dialer: %v", err)
		}
		if _, ok := c.(*CoalescingConn); !ok {
			t.Errorf("the coalescing dialer made a %T, want *CoalescingConn", c)
		}
		c.Close()
	}
}

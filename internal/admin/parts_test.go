package admin

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/broker"
	"github.com/ferry-mq/ferry/internal/queue"
)

func TestRatesAreMeasuredBetweenObservationsAtLeastASecondApart(t *testing.T) {
	clock := fakeClock()
	rt := newRateTable(clock)
	st := broker.QueueStats{Tenant: "/", Name: "q"}
	if r := rt.observe(st); r != (Rates{}) {
		t.Errorf("first observation = %+v, want zero rates", r)
	}
	clock.Advance(2 * time.Second)
	st.Counters = queue.Counters{Enqueued: 100, Delivered: 50, Acked: 40, Redelivered: 4}
	want := Rates{PublishPerSec: 50, DeliverPerSec: 25, AckPerSec: 20, RedeliverPerSec: 2, IntervalSeconds: 2}
	if r := rt.observe(st); r != want {
		t.Errorf("after 2 s = %+v, want %+v", r, want)
	}
	clock.Advance(base.AdminRateIntervalMin - time.Millisecond)
	st.Counters.Enqueued = 1000
	if r := rt.observe(st); r != want {
		t.Errorf("a read under AdminRateIntervalMin later = %+v, want the previous %+v", r, want)
	}
	clock.Advance(time.Millisecond)
	if r := rt.observe(st); r.PublishPerSec <= 50 {
		t.Errorf("at AdminRateIntervalMin = %+v, want a new measurement", r)
	}
	st.Counters = queue.Counters{Enqueued: 1} // deleted and declared again
	clock.Advance(time.Second)
	if r := rt.observe(st); r != (Rates{}) {
		t.Errorf("after the counters went back = %+v, want a fresh start", r)
	}
}

func TestRateTableStaysWithinItsBound(t *testing.T) {
	rt := newRateTable(fakeClock())
	for i := range base.AdminRateEntriesMax + 1 {
		rt.observe(broker.QueueStats{Tenant: "/", Name: fmt.Sprint(i)})
	}
	if n := len(rt.entries); n != base.AdminRateEntriesMax {
		t.Errorf("%d entries after AdminRateEntriesMax+1 queues, want %d", n, base.AdminRateEntriesMax)
	}
}

func TestLoginCacheTrustsOnlyTheSamePasswordAndPeerUntilItsTTL(t *testing.T) {
	clock := fakeClock()
	c := newLoginCache(clock, 10*time.Second)
	lo, other := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("10.0.0.1")
	p := broker.Principal{User: "u", Tags: []string{"administrator"}}
	c.store("u", "pw", lo, p)
	if got, ok := c.lookup("u", "pw", lo); !ok || got.User != "u" {
		t.Errorf("cached login not found")
	}
	for _, tt := range []struct {
		pw   string
		peer netip.Addr
	}{{"PW", lo}, {"pw", other}, {"", lo}} {
		if _, ok := c.lookup("u", tt.pw, tt.peer); ok {
			t.Errorf("lookup(%q, %v) hit the cache", tt.pw, tt.peer)
		}
	}
	clock.Advance(10 * time.Second)
	if _, ok := c.lookup("u", "pw", lo); ok {
		t.Errorf("a login older than the TTL was trusted")
	}
	off := newLoginCache(clock, -1)
	off.store("u", "pw", lo, p)
	if _, ok := off.lookup("u", "pw", lo); ok {
		t.Errorf("a disabled cache answered")
	}
}

func TestLoginCacheStaysWithinItsBound(t *testing.T) {
	c := newLoginCache(fakeClock(), time.Minute)
	lo := netip.MustParseAddr("127.0.0.1")
	for i := range base.AdminLoginCacheEntriesMax + 1 {
		c.store(fmt.Sprint("u", i), "pw", lo, broker.Principal{})
	}
	if n := len(c.entries); n > base.AdminLoginCacheEntriesMax {
		t.Errorf("%d entries, want at most %d", n, base.AdminLoginCacheEntriesMax)
	}
	if _, ok := c.lookup(fmt.Sprint("u", base.AdminLoginCacheEntriesMax), "pw", lo); !ok {
		t.Errorf("the newest login was evicted")
	}
}

func TestPendingTableRefusesPastItsBoundAndChecksOwnership(t *testing.T) {
	pt := newPendingTable(fakeClock(), time.Minute)
	var first string
	for i := range base.AdminPendingDeliveriesMax {
		tok, err := pt.add("u", "/", "q", nil) // nil handles: nothing is settled in this test
		if err != nil {
			t.Fatalf("add %d: %v", i, err)
		}
		if i == 0 {
			first = tok
		}
	}
	if _, err := pt.add("u", "/", "q", nil); base.CodeOf(err) != base.CodeOverloaded {
		t.Errorf("add past AdminPendingDeliveriesMax: %v, want overloaded", err)
	}
	for _, tt := range []struct{ user, tenant, queue string }{{"v", "/", "q"}, {"u", "t", "q"}, {"u", "/", "r"}} {
		if _, err := pt.take(tt.user, tt.tenant, tt.queue, []string{first}); base.CodeOf(err) != base.CodeNotFound {
			t.Errorf("take by %+v: %v, want not_found", tt, err)
		}
	}
	if _, err := pt.take("u", "/", "q", []string{first, first}); base.CodeOf(err) != base.CodeInvalidArgument {
		t.Errorf("a token given twice: %v, want invalid_argument", err)
	}
	if hs, err := pt.take("u", "/", "q", []string{first}); err != nil || len(hs) != 1 {
		t.Errorf("take by the owner: %v, %d handles", err, len(hs))
	}
	if _, err := pt.add("u", "/", "q", nil); err != nil {
		t.Errorf("add after a take freed a slot: %v", err)
	}
}

func TestHeadersRoundTripThroughJSON(t *testing.T) {
	var in map[string]any
	dec := json.NewDecoder(strings.NewReader(`{"s":"x","i":42,"f":1.5,"b":false,"n":null,"t":{"k":[1,"two",true]}}`))
	dec.UseNumber()
	if err := dec.Decode(&in); err != nil {
		t.Fatal(err)
	}
	h, err := headersFromJSON(in, 0)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := h.Get("i"); v.Kind() != broker.KindInt64 || v.Int() != 42 {
		t.Errorf("i = %v %v, want int64 42", v.Kind(), v.Int())
	}
	if v, _ := h.Get("f"); v.Kind() != broker.KindFloat64 {
		t.Errorf("f kind %v, want float64", v.Kind())
	}
	out, _ := json.Marshal(headersToJSON(h))
	if want := `{"b":false,"f":1.5,"i":42,"n":null,"s":"x","t":{"k":[1,"two",true]}}`; string(out) != want {
		t.Errorf("round trip = %s, want %s", out, want)
	}
}

func TestHeaderNestingBoundAtItsEdge(t *testing.T) {
	nest := func(levels int) map[string]any {
		v := map[string]any{"leaf": "x"}
		for range levels {
			v = map[string]any{"k": v}
		}
		return v
	}
	if _, err := headersFromJSON(nest(base.AdminHeaderDepthMax-1), 0); err != nil {
		t.Errorf("nesting just inside AdminHeaderDepthMax: %v", err)
	}
	if _, err := headersFromJSON(nest(base.AdminHeaderDepthMax), 0); base.CodeOf(err) != base.CodeInvalidArgument {
		t.Errorf("nesting at AdminHeaderDepthMax: %v, want invalid_argument", err)
	}
}

func TestDecimalsPrintExactly(t *testing.T) {
	for _, tt := range []struct {
		scale uint8
		v     int32
		want  string
	}{{2, 12345, "123.45"}, {3, 5, "0.005"}, {0, -7, "-7"}, {2, -5, "-0.05"}} {
		if got := decimalString(tt.scale, tt.v); got != tt.want {
			t.Errorf("decimal(%d, %d) = %q, want %q", tt.scale, tt.v, got, tt.want)
		}
	}
}

// FuzzDecodePublishRequest feeds arbitrary request bodies through the
// publish decoding path: it must never panic, and whatever it accepts
// must respect the message and header bounds.
func FuzzDecodePublishRequest(f *testing.F) {
	f.Add([]byte(`{"messages":[{"body":"x","headers":{"a":1,"b":[1,{"c":null}]},"properties":{"priority":3}}]}`))
	f.Add([]byte(`{"messages":[{"body":"eA==","body_encoding":"base64","key":"k"}],"mandatory":true}`))
	f.Add([]byte(`{"messages":[{"body":"x","properties":{"expiration":"99999999999"}}]}`))
	f.Add([]byte(`{"messages":[]}`))
	f.Add([]byte(`{"messages":[{"body":"x","headers":{"n":1e400}}]}`))
	f.Add([]byte(`[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var req PublishRequest
		if err := decodeJSON(data, &req, false); err != nil {
			return
		}
		msgs, err := messagesFromJSON(req.Messages)
		if err != nil {
			return
		}
		if len(msgs) > base.AdminPublishMessagesMax {
			t.Fatalf("accepted %d messages", len(msgs))
		}
		for _, m := range msgs {
			if len(m.Headers) > base.RecordHeadersMax {
				t.Fatalf("accepted %d headers", len(m.Headers))
			}
		}
	})
}

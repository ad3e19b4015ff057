package broker

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/ferry-mq/ferry/internal/base"
)

func TestForwardFramesRoundTrip(t *testing.T) {
	var w wireWriter
	w.uvarint(42)
	w.bytes([]byte("cmd"))
	buf := appendFrame(nil, opPropose, 7, w.b)
	var hdr [frameHeaderBytes]byte
	fr, err := readFrame(bytes.NewReader(buf), &hdr)
	if err != nil || fr.typ != opPropose || fr.id != 7 {
		t.Fatalf("readFrame: %+v %v", fr, err)
	}
	req, err := decodeProposeReq(fr.payload)
	if err != nil || req.g != 42 || string(req.payload) != "cmd" {
		t.Fatalf("decodeProposeReq: %+v %v", req, err)
	}
	var rw wireWriter
	rw.err(base.Errorf(base.CodeNotLeader, "moved: %w", leaderErr(42, 3)))
	rw.uvarint(9)
	rw.err(base.Errorf(base.CodePreconditionFailed, "inequivalent"))
	rw.varint(-1)
	out, callErr, err := decodeProposeResp(rw.b)
	if err != nil || out.index != 9 || base.CodeOf(out.err) != base.CodePreconditionFailed || out.count != -1 {
		t.Fatalf("decodeProposeResp: %+v %v", out, err)
	}
	if base.CodeOf(callErr) != base.CodeNotLeader || leaderHint(callErr) != 3 {
		t.Fatalf("the call error lost its code or leader hint: %v (hint %d)", callErr, leaderHint(callErr))
	}
}

func TestForwardFrameLengthAtTheLimit(t *testing.T) {
	var hdr [frameHeaderBytes]byte
	over := binary.BigEndian.AppendUint32(nil, base.BrokerForwardFrameBytesMax+1)
	over = append(over, make([]byte, 9)...)
	if _, err := readFrame(bytes.NewReader(over), &hdr); base.CodeOf(err) != base.CodeCorrupt {
		t.Fatalf("a length over BrokerForwardFrameBytesMax: %v, want CodeCorrupt before allocating", err)
	}
	at := binary.BigEndian.AppendUint32(nil, base.BrokerForwardFrameBytesMax)
	at = append(at, make([]byte, 9)...)
	// The length is accepted; the short body then fails to read.
	if _, err := readFrame(bytes.NewReader(at), &hdr); err == nil || base.CodeOf(err) == base.CodeCorrupt {
		t.Fatalf("a length at the limit: %v, want a short read, not a refusal", err)
	}
}

// FuzzForwardFrame feeds arbitrary bytes to every decoder of the
// forwarding protocol: frames, each request and each response. None may
// panic or allocate beyond the frame.
func FuzzForwardFrame(f *testing.F) {
	var w wireWriter
	w.uvarint(5)
	w.str("owner")
	w.str("get")
	w.bool(true)
	f.Add(appendFrame(nil, opGet, 1, w.b))
	var e wireWriter
	e.err(base.Errorf(base.CodeNotLeader, "x: %w", leaderErr(1, 2)))
	e.bytes([]byte{0, 1, 2})
	f.Add(appendFrame(nil, respFlag|opEnqueue, 2, e.b))
	var o wireWriter
	o.err(nil)
	o.bool(true)
	o.varint(-2)
	o.varint(-1)
	o.str("metadata")
	o.varint(1700000000000)
	f.Add(appendFrame(nil, respFlag|opOffset, 3, o.b))
	var q wireWriter
	q.err(nil)
	q.uvarint(7)
	q.uvarint(1)
	f.Add(appendFrame(nil, respFlag|opQueueCounts, 4, q.b))
	f.Fuzz(func(t *testing.T, data []byte) {
		var hdr [frameHeaderBytes]byte
		fr, err := readFrame(bytes.NewReader(data), &hdr)
		payload := data
		if err == nil {
			payload = fr.payload
		}
		decodeProposeReq(payload)
		decodeEnqueueReq(payload)
		decodeGetReq(payload)
		decodeProposeResp(payload)
		decodeEnqueueResp(payload)
		decodeGetResponse(payload)
		decodeOffsetReq(payload)
		decodeOffsetResponse(payload)
		decodeNumberReq(payload)
		decodeQueueCountsResponse(payload)
	})
}

func TestForwardCreditIsCappedAtTheLimit(t *testing.T) {
	for _, tc := range []struct{ prefetch, want uint32 }{
		{0, base.BrokerForwardCreditMax},
		{1, 1},
		{base.BrokerForwardCreditMax, base.BrokerForwardCreditMax},
		{base.BrokerForwardCreditMax + 1, base.BrokerForwardCreditMax},
	} {
		if got := forwardCredit(tc.prefetch); got != tc.want {
			t.Errorf("forwardCredit(%d) = %d, want %d", tc.prefetch, got, tc.want)
		}
	}
}

// A leader that sends more deliveries than the credit allows breaks the
// protocol: the proxy refuses the one over BrokerForwardCreditMax.
func TestForwardedConsumerQueueRefusesDeliveriesOverTheCredit(t *testing.T) {
	r := &remoteSub{cl: &fwdClient{node: 2}, wake: make(chan struct{}, 1), stop: make(chan struct{})}
	for i := range base.BrokerForwardCreditMax {
		if err := r.push(Delivery{DeliveryID: uint64(i + 1)}); err != nil {
			t.Fatalf("delivery %d of %d: %v", i+1, base.BrokerForwardCreditMax, err)
		}
	}
	if err := r.push(Delivery{DeliveryID: base.BrokerForwardCreditMax + 1}); base.CodeOf(err) != base.CodeCorrupt {
		t.Fatalf("delivery over the credit: %v, want CodeCorrupt", err)
	}
}

func TestForwardedSettlementsRoundTripAndRefuseBadKinds(t *testing.T) {
	var w wireWriter
	w.u8(byte(settleReject))
	w.uvarint(42)
	w.bool(true)
	w.str("why")
	st, err := decodeSubSettle(w.b)
	if err != nil || st != (subSettle{kind: settleReject, id: 42, multiple: true, reason: "why"}) {
		t.Fatalf("decodeSubSettle: %+v %v", st, err)
	}
	w.b[0] = 0
	if _, err := decodeSubSettle(w.b); base.CodeOf(err) != base.CodeCorrupt {
		t.Fatalf("kind 0: %v, want CodeCorrupt", err)
	}
}

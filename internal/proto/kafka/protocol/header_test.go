package protocol

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestRequestsFromKmsgFormatterParse frames a request of every API and
// version both codecs know the way franz-go's client does (size, header
// with client id, body), and reads it back with ReadFrame,
// ParseRequestHeader and our decoder: the body must re-encode to the same
// bytes.
func TestRequestsFromKmsgFormatterParse(t *testing.T) {
	formatter := kmsg.NewRequestFormatter(kmsg.FormatterClientID("ferry-test"))
	checked := 0
	for _, api := range APIs() {
		kreq := kmsg.RequestForKey(int16(api.Key))
		for v := api.Versions.Min; kreq != nil && v <= min(api.Versions.Max, kreq.MaxVersion()); v++ {
			if _, diverges := kmsgDivergences[api.Name+" request v"+itoa(v)]; diverges {
				continue
			}
			if api.Key == APIKeyControlledShutdown && v == 0 {
				// kmsg's formatter writes only the header, with a zero size,
				// for this version; TestRequestHeaderRoundTripsEveryVersion
				// covers header v0.
				continue
			}
			newFiller(uint64(api.Key)<<16 | uint64(v)).fillMessage(kreq)
			kreq.SetVersion(v)
			wire := formatter.AppendRequest(nil, kreq, 0x01020304)
			frame, err := ReadFrame(bytes.NewReader(wire), nil, base.KafkaRequestBytesMax)
			if err != nil {
				t.Fatalf("%s v%d: ReadFrame: %v", api.Name, v, err)
			}
			h, body, err := ParseRequestHeader(frame)
			if err != nil {
				t.Errorf("%s v%d: ParseRequestHeader: %v", api.Name, v, err)
				continue
			}
			wantHeader := int16(1)
			switch {
			case kreq.IsFlexible():
				wantHeader = 2
			case api.Key == APIKeyControlledShutdown && v == 0:
				wantHeader = 0
			}
			clientID := "ferry-test"
			if wantHeader == 0 {
				clientID = ""
			}
			if h.APIKey != api.Key || h.APIVersion != v || h.CorrelationID != 0x01020304 || h.ClientID != clientID ||
				h.ClientIDNull || h.HeaderVersion != wantHeader {
				t.Errorf("%s v%d: header %+v, want key %d version %d correlation 0x01020304 client %q header v%d",
					api.Name, v, h, api.Key, v, clientID, wantHeader)
			}
			req, _ := NewRequest(api.Key)
			if err := req.Decode(body, v); err != nil {
				t.Errorf("%s v%d: body: %v", api.Name, v, err)
				continue
			}
			if got, want := req.Encode(nil, v), kreq.AppendTo(nil); !bytes.Equal(got, want) {
				t.Errorf("%s v%d: body re-encodes differently at %d", api.Name, v, firstDiff(got, want))
			}
			checked++
		}
	}
	t.Logf("framed requests checked against kmsg's formatter: %d key/version pairs", checked)
}

func itoa(v int16) string {
	if v < 10 {
		return string(rune('0' + v))
	}
	return itoa(v/10) + string(rune('0'+v%10))
}

func TestRequestHeaderRoundTripsEveryVersion(t *testing.T) {
	for _, h := range []RequestHeader{
		{APIKey: APIKeyControlledShutdown, APIVersion: 0, CorrelationID: 7, HeaderVersion: 0},
		{APIKey: APIKeyProduce, APIVersion: 8, CorrelationID: -1, ClientIDNull: true, HeaderVersion: 1},
		{APIKey: APIKeyProduce, APIVersion: 9, CorrelationID: 1, ClientID: "c", HeaderVersion: 2,
			UnknownTags: []TaggedField{{Tag: 3, Data: []byte("x")}}},
		{APIKey: APIKeyApiVersions, APIVersion: 3, CorrelationID: 2, ClientID: "", HeaderVersion: 2},
	} {
		wire := append(AppendRequestHeader(nil, &h), 0xaa, 0xbb)
		got, body, err := ParseRequestHeader(wire)
		if err != nil {
			t.Errorf("%+v: %v", h, err)
			continue
		}
		if !bytes.Equal(body, []byte{0xaa, 0xbb}) || !bytes.Equal(AppendRequestHeader(nil, &got), wire[:len(wire)-2]) {
			t.Errorf("%+v: parsed %+v, body %x", h, got, body)
		}
	}
}

func TestRequestHeaderErrors(t *testing.T) {
	h, body, err := ParseRequestHeader(be{}.i16(999).i16(0).i32(42).str("c").bytes())
	if !errors.Is(err, ErrUnknownAPIKey) || base.CodeOf(err) != base.CodeNotSupported || body != nil || h.CorrelationID != 42 {
		t.Errorf("unknown key: got %+v, %x, %v; want ErrUnknownAPIKey with correlation id 42", h, body, err)
	}
	// ApiVersions v99: header v2 (flexible from v3), parsed in full so the
	// server can answer UNSUPPORTED_VERSION.
	h, body, err = ParseRequestHeader(be{}.i16(18).i16(99).i32(5).str("cli").tags(0).raw(0xcc).bytes())
	if !errors.Is(err, ErrUnsupportedVersion) || h.ClientID != "cli" || h.HeaderVersion != 2 || !bytes.Equal(body, []byte{0xcc}) {
		t.Errorf("ApiVersions v99: got %+v, %x, %v", h, body, err)
	}
	for name, frame := range map[string][]byte{
		"7 bytes":             be{}.i16(0).i16(3).raw(0, 0, 1).bytes(),
		"client id truncated": be{}.i16(0).i16(3).i32(1).i16(5).raw('a').bytes(),
		"client id negative":  be{}.i16(0).i16(3).i32(1).i16(-3).bytes(),
		"v2 tags truncated":   be{}.i16(0).i16(9).i32(1).i16(-1).uv(1).bytes(),
	} {
		if _, _, err := ParseRequestHeader(frame); base.CodeOf(err) != base.CodeCorrupt {
			t.Errorf("%s: got %v, want a corrupt error", name, err)
		}
	}
}

func TestHeaderVersionRules(t *testing.T) {
	for _, c := range []struct {
		key       APIKey
		version   int16
		req, resp int16
	}{
		{APIKeyProduce, 8, 1, 0},
		{APIKeyProduce, 9, 2, 1},
		{APIKeyControlledShutdown, 0, 0, 0},
		{APIKeyControlledShutdown, 1, 1, 0},
		{APIKeyApiVersions, 2, 1, 0},
		{APIKeyApiVersions, 3, 2, 0}, // ApiVersions responses always use header v0
		{APIKeyFetch, 12, 2, 1},
	} {
		api, _ := LookupAPI(c.key)
		if got := api.RequestHeaderVersion(c.version); got != c.req {
			t.Errorf("%s v%d request header: got v%d, want v%d", api.Name, c.version, got, c.req)
		}
		if got := api.ResponseHeaderVersion(c.version); got != c.resp {
			t.Errorf("%s v%d response header: got v%d, want v%d", api.Name, c.version, got, c.resp)
		}
	}
}

func TestResponseHeaders(t *testing.T) {
	for _, hv := range []int16{0, 1} {
		wire := append(AppendResponseHeader(nil, 77, hv), 1, 2)
		id, body, err := ParseResponseHeader(wire, hv)
		if err != nil || id != 77 || !bytes.Equal(body, []byte{1, 2}) || len(wire) != 6+int(hv) {
			t.Errorf("header v%d: got %d %x %v from %x", hv, id, body, err, wire)
		}
	}
	if _, _, err := ParseResponseHeader([]byte{0, 0, 0, 1}, 2); !errors.Is(err, ErrUnsupportedVersion) {
		t.Errorf("response header v2: got %v", err)
	}
}

// TestAPITableMatchesKmsg checks the generated API table against kmsg's
// names and version knowledge.
func TestAPITableMatchesKmsg(t *testing.T) {
	apis := APIs()
	if len(apis) == 0 || apis[0].Key != APIKeyProduce || apis[0].Name != "Produce" {
		t.Fatalf("APIs(): first is %+v", apis[0])
	}
	for _, api := range apis {
		kreq := kmsg.RequestForKey(int16(api.Key))
		if kreq == nil {
			continue
		}
		// kmsg capitalises initialisms (LeaderAndISR) and names two APIs
		// its own way.
		renamed := map[string]string{"ListClientMetricsResources": "ListConfigResources", "AlterPartitionReassignments": "AlterPartitionAssignments"}
		if got, want := api.Name, kmsg.NameForKey(int16(api.Key)); !strings.EqualFold(got, want) && renamed[got] != want {
			t.Errorf("key %d: name %q, kmsg %q", api.Key, got, want)
		}
		for v := api.Versions.Min; v <= min(api.Versions.Max, kreq.MaxVersion()); v++ {
			kreq.SetVersion(v)
			if got := api.IsFlexible(v); got != kreq.IsFlexible() {
				t.Errorf("%s v%d: flexible %v, kmsg %v", api.Name, v, got, kreq.IsFlexible())
			}
		}
		if r, ok := NewRequest(api.Key); !ok || r.APIKey() != api.Key {
			t.Errorf("NewRequest(%d): %T %v", api.Key, r, ok)
		}
		if r, ok := NewResponse(api.Key); !ok || r.APIKey() != api.Key {
			t.Errorf("NewResponse(%d): %T %v", api.Key, r, ok)
		}
	}
	if _, ok := NewRequest(-1); ok {
		t.Errorf("NewRequest(-1) succeeded")
	}
	if _, ok := LookupAPI(apiKeyMax + 1); ok {
		t.Errorf("LookupAPI(%d) succeeded", apiKeyMax+1)
	}
	if got := APIKeyFetch.String(); got != "Fetch" {
		t.Errorf("APIKeyFetch.String(): %q", got)
	}
	produce, _ := LookupAPI(APIKeyProduce)
	if produce.Versions != (VersionRange{0, 11}) || produce.FlexibleFrom != 9 || produce.Deprecated != (VersionRange{0, 6}) ||
		produce.Listeners != ListenerZKBroker|ListenerBroker {
		t.Errorf("Produce: %+v", produce)
	}
}

// kerrDisagreements are the codes where franz-go's kerr differs from Kafka
// itself; the test checks they still differ.
var kerrDisagreements = map[ErrorCode]string{
	ErrorCodeNotLeaderOrFollower:      "kerr keeps the pre-2.7 name NOT_LEADER_FOR_PARTITION",
	ErrorCodeBrokerNotAvailable:       "Kafka's BrokerNotAvailableException is not a RetriableException",
	ErrorCodeConcurrentTransactions:   "Kafka's ConcurrentTransactionsException is a RetriableException since 3.4",
	ErrorCodeShareSessionNotFound:     "Kafka's ShareSessionNotFoundException is a RetriableException",
	ErrorCodeInvalidShareSessionEpoch: "Kafka's InvalidShareSessionEpochException is a RetriableException",
}

// TestErrorCodesMatchKerr compares our error-code table with franz-go's
// kerr, code by code.
func TestErrorCodesMatchKerr(t *testing.T) {
	compared := 0
	for c := ErrorCode(-1); c <= errorCodeMax; c++ {
		if !c.Known() {
			t.Errorf("code %d is missing from error_codes.txt", c)
			continue
		}
		if c == ErrorCodeNone {
			if kerr.ErrorForCode(0) != nil {
				t.Errorf("kerr has an error for code 0")
			}
			continue
		}
		var ke *kerr.Error
		if !errors.As(kerr.ErrorForCode(int16(c)), &ke) || ke.Code != int16(c) {
			t.Errorf("code %d (%s): kerr does not know it", c, c)
			continue
		}
		agree := ke.Message == c.String() && ke.Retriable == c.Retriable()
		if _, known := kerrDisagreements[c]; known == agree {
			t.Errorf("code %d: ours (%s, retriable %v), kerr (%s, retriable %v); listed as a known disagreement: %v",
				c, c, c.Retriable(), ke.Message, ke.Retriable, known)
		}
		compared++
	}
	var newer []string
	for c := int16(errorCodeMax + 1); kerr.ErrorForCode(c) != kerr.UnknownServerError; c++ {
		newer = append(newer, kerr.ErrorForCode(c).Error())
	}
	t.Logf("error codes compared with kerr: %d (%d known disagreements); codes newer than our table: %d", compared, len(kerrDisagreements), len(newer))
	if ErrorCode(errorCodeMax+1).Known() || ErrorCode(-2).Known() || ErrorCode(-2).String() != "ERROR_CODE_-2" {
		t.Errorf("codes outside the table are known")
	}
	if !ErrorCodeNotLeaderOrFollower.Retriable() || ErrorCodeInvalidRequest.Retriable() || ErrorCodeCorruptMessage.String() != "CORRUPT_MESSAGE" {
		t.Errorf("spot checks failed")
	}
}

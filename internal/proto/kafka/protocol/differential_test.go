package protocol

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// differentialSeeds is how many random messages each direction checks per
// API, version and kind. Raise it with -args -long (see long_test.go).
func differentialSeeds() int {
	if *long {
		return 200
	}
	return 6
}

// kmsgDivergences are the (API, version, kind) triples where kmsg v1.15.0
// disagrees with the Apache definitions we generate from. The test checks
// that each still disagrees, so an entry cannot outlive its reason.
var kmsgDivergences = map[string]string{
	// StopReplicaRequest.json puts isKRaftController (v4+) between
	// ControllerId and ControllerEpoch; kmsg writes it after
	// ControllerEpoch. StopReplica is a ZooKeeper-era inter-broker API.
	"StopReplica request v4": "kmsg orders isKRaftController after ControllerEpoch",
}

// pairCoverage counts what the differential test checked.
type pairCoverage struct {
	pairs    int // (key, version, request|response) triples checked
	messages int // messages compared, both directions
	keys     map[APIKey]bool
}

// TestDifferentialAgainstKmsg checks our codec byte for byte against
// franz-go's kmsg, the independent implementation of the same definitions:
// for every API key and version both know, for requests and responses,
// random kmsg messages (every field filled, nullable fields null and not,
// unknown tagged fields) must decode with ours and re-encode to the same
// bytes, and random messages of ours must decode with kmsg and re-encode to
// the same bytes.
func TestDifferentialAgainstKmsg(t *testing.T) {
	cov := pairCoverage{keys: map[APIKey]bool{}}
	var onlyOurs, unstable []string
	for _, api := range APIs() {
		kreq := kmsg.RequestForKey(int16(api.Key))
		if kreq == nil {
			onlyOurs = append(onlyOurs, api.Name)
			continue
		}
		hi := min(api.Versions.Max, kreq.MaxVersion())
		for v := api.Versions.Min; v <= hi; v++ {
			for _, isReq := range []bool{true, false} {
				name := fmt.Sprintf("%s %s v%d", api.Name, kindName(isReq), v)
				n, err := checkDifferential(api, v, isReq)
				cov.messages += n
				_, diverges := kmsgDivergences[name]
				switch {
				case diverges && err == nil:
					t.Errorf("%s: listed as a kmsg divergence but now agrees: remove it from kmsgDivergences", name)
				case diverges:
				case err != nil && api.LatestVersionUnstable && v == api.Versions.Max:
					// Kafka was still changing this version when the
					// definitions were copied; kmsg follows a later draft.
					unstable = append(unstable, name)
				case err != nil:
					t.Errorf("%s: %v", name, err)
				default:
					cov.pairs++
					cov.keys[api.Key] = true
				}
			}
		}
	}
	t.Logf("kmsg differential: %d key/version/kind triples agree, over %d API keys, %d messages compared; "+
		"known divergences %d; unstable versions that differ %v; APIs kmsg lacks %v",
		cov.pairs, len(cov.keys), cov.messages, len(kmsgDivergences), unstable, onlyOurs)
	// Every API kmsg knows must have been compared, in both kinds.
	if got, want := len(cov.keys), len(APIs())-len(onlyOurs); got != want {
		t.Errorf("APIs compared: got %d, want %d", got, want)
	}
}

func kindName(isReq bool) string {
	if isReq {
		return "request"
	}
	return "response"
}

// checkDifferential compares both directions for one API, version and
// kind; it returns the number of messages compared and the first
// disagreement.
func checkDifferential(api API, version int16, isReq bool) (int, error) {
	n := 0
	for seed := range differentialSeeds() {
		s := uint64(seed)<<32 | uint64(uint16(api.Key))<<16 | uint64(uint16(version))
		if isReq {
			s |= 1 << 63
		}
		for _, dir := range []func(API, int16, bool, uint64) error{kmsgToOurs, oursToKmsg} {
			n++
			if err := dir(api, version, isReq, s); err != nil {
				return n, fmt.Errorf("seed %#x: %w", s, err)
			}
		}
	}
	return n, nil
}

func kmsgMessage(key APIKey, isReq bool) interface {
	SetVersion(int16)
	AppendTo([]byte) []byte
	ReadFrom([]byte) error
} {
	if isReq {
		return kmsg.RequestForKey(int16(key))
	}
	return kmsg.ResponseForKey(int16(key))
}

func ourMessage(key APIKey, isReq bool) Message {
	if isReq {
		m, _ := NewRequest(key)
		return m
	}
	m, _ := NewResponse(key)
	return m
}

// kmsgToOurs: kmsg encodes, we decode and re-encode.
func kmsgToOurs(api API, version int16, isReq bool, seed uint64) error {
	km := kmsgMessage(api.Key, isReq)
	newFiller(seed).fillMessage(km)
	km.SetVersion(version)
	want := km.AppendTo(nil)
	ours := ourMessage(api.Key, isReq)
	if err := ours.Decode(want, version); err != nil {
		return fmt.Errorf("kmsg -> ours: decoding kmsg's %d bytes: %w\n%x", len(want), err, want)
	}
	if got := ours.Encode(nil, version); !bytes.Equal(got, want) {
		return fmt.Errorf("kmsg -> ours: re-encoded bytes differ at %d:\ngot  %x\nwant %x", firstDiff(got, want), got, want)
	}
	return nil
}

// oursToKmsg: we encode, kmsg decodes and re-encodes.
func oursToKmsg(api API, version int16, isReq bool, seed uint64) error {
	ours := ourMessage(api.Key, isReq)
	newFiller(seed).fillMessage(ours)
	want := ours.Encode(nil, version)
	km := kmsgMessage(api.Key, isReq)
	km.SetVersion(version)
	if err := km.ReadFrom(want); err != nil {
		return fmt.Errorf("ours -> kmsg: kmsg decoding our %d bytes: %w\n%x", len(want), err, want)
	}
	if got := km.AppendTo(nil); !bytes.Equal(got, want) {
		return fmt.Errorf("ours -> kmsg: kmsg's re-encoding differs at %d:\ngot  %x\nwant %x", firstDiff(got, want), got, want)
	}
	return nil
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

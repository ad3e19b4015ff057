package kafka

import (
	"reflect"
	"sync"

	"github.com/ferry-mq/ferry/internal/base"
	"github.com/ferry-mq/ferry/internal/proto/kafka/protocol"
	"github.com/ferry-mq/ferry/internal/proto/wirestats"
)

// Stats are a server's counters since NewServer, for the node's metrics.
type Stats struct {
	// BytesIn and BytesOut are the bytes read from and written to client
	// sockets (frames with their size prefixes, SASL tokens).
	BytesIn, BytesOut uint64
	// Errors counts the error codes answered to clients, by Kafka's name
	// for the code (protocol.ErrorCode.String(), e.g.
	// "NOT_LEADER_OR_FOLLOWER"): one per non-zero ErrorCode field of a
	// response, so a Produce failing on three partitions counts three.
	// Connections closed without an answer (a malformed request, a
	// failed acks-0 produce) count nothing.
	Errors map[string]uint64
}

// serverStats are the counters behind Stats.
type serverStats struct {
	wirestats.Counters[protocol.ErrorCode]
}

// countResponse counts the non-zero error codes of msg.
func (st *serverStats) countResponse(msg protocol.Response) {
	if walk := errorCodeWalker(reflect.TypeOf(msg)); walk != nil {
		walk(reflect.ValueOf(msg), st)
	}
}

// code counts one error code field's value; zero, success, counts nothing.
func (st *serverStats) code(code int16) {
	if code != 0 {
		st.CountError(protocol.ErrorCode(code))
	}
}

// Stats returns a snapshot of the server's counters; the caller owns the
// returned map.
func (s *Server) Stats() Stats {
	return Stats(s.stats.Snapshot())
}

// codeWalk passes the value of every ErrorCode field reachable from v,
// zero or not, to the sink.
type codeWalk func(v reflect.Value, to codeSink)

// codeSink receives the error codes of a walk: an interface, not a func,
// so that the walk of every response does not allocate a closure over its
// server's counters.
type codeSink interface{ code(int16) }

// walkers caches a codeWalk per response type (reflect.Type → codeWalk,
// nil when the type holds no ErrorCode field): the generated messages
// have no common accessor for their error codes, and reflecting over a
// type's fields once keeps each response's walk to the fields that lead
// to an error code.
var walkers sync.Map

// errorCodeWalker returns the walk of t's error codes, nil for none.
func errorCodeWalker(t reflect.Type) codeWalk {
	if w, ok := walkers.Load(t); ok {
		return w.(codeWalk)
	}
	w := buildWalker(t, 0)
	walkers.Store(t, w)
	return w
}

// buildWalker returns the walk of the error codes of t (a struct, a
// pointer to one or a slice of them), nil when it holds none. A struct
// nested deeper than KafkaStatsWalkDepthMax is a BUG.
func buildWalker(t reflect.Type, depth int) codeWalk {
	switch t.Kind() {
	case reflect.Pointer:
		elem := buildWalker(t.Elem(), depth)
		if elem == nil {
			return nil
		}
		return func(v reflect.Value, to codeSink) {
			if !v.IsNil() {
				elem(v.Elem(), to)
			}
		}
	case reflect.Slice:
		elem := buildWalker(t.Elem(), depth)
		if elem == nil {
			return nil
		}
		return func(v reflect.Value, to codeSink) {
			for i := range v.Len() {
				elem(v.Index(i), to)
			}
		}
	case reflect.Struct:
		base.Assert(depth <= base.KafkaStatsWalkDepthMax, "kafka: message type %v nests deeper than %d structs", t, base.KafkaStatsWalkDepthMax)
		return buildStructWalker(t, depth)
	}
	return nil
}

func buildStructWalker(t reflect.Type, depth int) codeWalk {
	var codes []int
	type nested struct {
		field int
		walk  codeWalk
	}
	var inner []nested
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		if f.Name == "ErrorCode" && f.Type.Kind() == reflect.Int16 {
			codes = append(codes, i)
			continue
		}
		if w := buildWalker(f.Type, depth+1); w != nil {
			inner = append(inner, nested{i, w})
		}
	}
	if len(codes) == 0 && len(inner) == 0 {
		return nil
	}
	return func(v reflect.Value, to codeSink) {
		for _, i := range codes {
			to.code(int16(v.Field(i).Int()))
		}
		for _, n := range inner {
			n.walk(v.Field(n.field), to)
		}
	}
}

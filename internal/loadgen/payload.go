package loadgen

import (
	"encoding/binary"
	"errors"
)

// HeaderBytes is the size of the header every generated message body
// starts with; bodies are at least this long.
const HeaderBytes = 28

// magic marks a body made by this package, so that a stray message in a
// benchmark queue is counted as foreign rather than misread.
var magic = [4]byte{'F', 'L', 'G', '1'}

// Header is what a body carries to let the receiver account for it and
// measure its latency.
type Header struct {
	RunID    uint32 // distinguishes this run from leftovers of earlier ones
	Producer uint32 // index of the logical producer in the run
	Seq      uint64 // the producer's sequence number, from 0
	// IntendedNs is when the message was due to be sent, in ns since the
	// run's epoch: the pacer's schedule, not when Publish was called, so a
	// send delayed by a stalled broker still counts its wait as latency.
	IntendedNs int64
}

// ErrForeign is returned by DecodeHeader for a body this package did not
// make (too short or without the magic).
var ErrForeign = errors.New("loadgen: message body has no load-generator header")

// EncodeHeader writes h into the first HeaderBytes of body, which must be
// at least that long. The rest of body is left as it is (the payload).
func EncodeHeader(body []byte, h Header) {
	_ = body[HeaderBytes-1] // one bounds check; panics on a short body, a caller bug
	copy(body[0:4], magic[:])
	binary.BigEndian.PutUint32(body[4:8], h.RunID)
	binary.BigEndian.PutUint32(body[8:12], h.Producer)
	binary.BigEndian.PutUint64(body[12:20], h.Seq)
	binary.BigEndian.PutUint64(body[20:28], uint64(h.IntendedNs))
}

// DecodeHeader reads the header at the start of body, a message received
// from a broker and so untrusted. It never allocates and reads only the
// first HeaderBytes bytes.
func DecodeHeader(body []byte) (Header, error) {
	if len(body) < HeaderBytes {
		return Header{}, ErrForeign
	}
	if [4]byte(body[0:4]) != magic {
		return Header{}, ErrForeign
	}
	return Header{
		RunID:      binary.BigEndian.Uint32(body[4:8]),
		Producer:   binary.BigEndian.Uint32(body[8:12]),
		Seq:        binary.BigEndian.Uint64(body[12:20]),
		IntendedNs: int64(binary.BigEndian.Uint64(body[20:28])),
	}, nil
}

package batch

import "encoding/binary"

// Control record types. Kafka's are 0 (abort) and 1 (commit); Ferry's own,
// which wrap non-message Raft entries and queue commands, start at
// ControlFerryMin so they never collide with Kafka's.
const (
	ControlAbort    int16 = 0
	ControlCommit   int16 = 1
	ControlFerryMin int16 = 100
)

// controlKeySize is the control record key: int16 version (0), int16 type.
const controlKeySize = 4

// AppendControl appends to dst a control batch (attribute bit 5) holding one
// control record whose key is version 0 and ctype and whose value is
// payload. h supplies the fields Builder.Begin takes; the control bit is
// added. The payload must fit the batch limit.
func AppendControl(dst []byte, h Header, ts int64, ctype int16, payload []byte) ([]byte, error) {
	var key [controlKeySize]byte
	binary.BigEndian.PutUint16(key[2:], uint16(ctype))
	h.Attributes |= AttrControl
	var b Builder
	b.Begin(dst, h)
	if payload == nil {
		payload = []byte{}
	}
	if err := b.Add(ts, key[:], payload, nil); err != nil {
		b.Finish() // ends the builder; the batch is abandoned
		return dst, err
	}
	return b.Finish()
}

// ParseControl returns the type and payload of the control batch b, which
// must be exactly one validated batch: uncompressed, control bit set, one
// record with a version-0 control key. The payload aliases b.
func ParseControl(b []byte) (ctype int16, payload []byte, err error) {
	it, err := Records(b)
	if err != nil {
		return 0, nil, err
	}
	h, _ := ParseHeader(b) // Records checked it
	if !h.Attributes.IsControl() || h.RecordCount != 1 {
		return 0, nil, errCorrupt("not a control batch of one record (attributes %#x, %d records)", uint16(h.Attributes), h.RecordCount)
	}
	r, ok := it.Next()
	if !ok {
		return 0, nil, it.Err()
	}
	if len(r.Key) != controlKeySize || binary.BigEndian.Uint16(r.Key) != 0 {
		return 0, nil, errCorrupt("control key %x is not version 0 + type", r.Key)
	}
	if _, more := it.Next(); more {
		return 0, nil, errCorrupt("control batch has a second record")
	}
	if err := it.Err(); err != nil {
		return 0, nil, err
	}
	return int16(binary.BigEndian.Uint16(r.Key[2:])), r.Value, nil
}

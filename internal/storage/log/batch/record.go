package batch

import (
	"encoding/binary"
	"math"

	"github.com/ferry-mq/ferry/internal/base"
)

// Record is one decoded record of an uncompressed batch. Key, Value and the
// headers alias the batch's bytes: they are valid as long as the batch is
// and must be copied to be kept past it.
type Record struct {
	Attributes     int8
	TimestampDelta int64 // add the batch's BaseTimestamp for the timestamp
	OffsetDelta    int32 // add the batch's BaseOffset for the offset
	Key            []byte
	Value          []byte
	KeyNull        bool // Key is null (length -1), not empty
	ValueNull      bool // Value is null (length -1): a tombstone
	HeaderCount    int
	headers        []byte // the encoded headers, already checked
}

// Headers returns an iterator over the record's headers.
func (r *Record) Headers() HeaderIter { return HeaderIter{b: r.headers, left: r.HeaderCount} }

// HeaderIter walks a record's headers. Its zero value is empty.
type HeaderIter struct {
	b    []byte
	left int
}

// Next returns the next header. A null value is returned as nil with
// valueNull true. The headers were checked when the record was decoded, so
// Next cannot fail.
func (it *HeaderIter) Next() (key, value []byte, valueNull, ok bool) {
	if it.left == 0 {
		return nil, nil, false, false
	}
	it.left--
	var rest []byte
	var err error
	key, _, rest, err = readBytes(it.b)
	base.Assert(err == nil, "header decoded on Record but not on HeaderIter: %v", err)
	value, valueNull, rest, err = readBytes(rest)
	base.Assert(err == nil, "header value decoded on Record but not on HeaderIter: %v", err)
	it.b = rest
	return key, value, valueNull, true
}

// Iter walks the records of one uncompressed batch without allocating. Use
// it as:
//
//	it, err := batch.Records(b)
//	for r, ok := it.Next(); ok; r, ok = it.Next() { ... }
//	if err := it.Err(); err != nil { ... }
type Iter struct {
	b         []byte // the records not yet read
	left      int32  // records still expected
	lastDelta int32
	prevDelta int64
	err       error
}

// Records returns an iterator over the records of the batch at the start
// of b (len(b) may exceed the batch). It checks the header but not the CRC:
// call Validate first on bytes that are not known good. A compressed batch
// fails with CodeNotSupported: Ferry stores and serves those as they are.
func Records(b []byte) (Iter, error) {
	h, err := ParseHeader(b)
	if err != nil {
		return Iter{}, err
	}
	if h.Size() > len(b) {
		return Iter{}, errCorrupt("batch of %d bytes truncated to %d", h.Size(), len(b))
	}
	if c := h.Attributes.Compression(); c != CompressionNone {
		return Iter{}, base.Errorf(base.CodeNotSupported, "batch: records compressed with codec %d cannot be iterated", c)
	}
	return newIter(b[HeaderSize:h.Size()], h), nil
}

func newIter(records []byte, h Header) Iter {
	return Iter{b: records, left: h.RecordCount, lastDelta: h.LastOffsetDelta, prevDelta: -1}
}

// Next decodes the next record. It returns false at the end or on an error;
// Err tells which.
func (it *Iter) Next() (Record, bool) {
	if it.err != nil {
		return Record{}, false
	}
	if it.left == 0 {
		if len(it.b) != 0 {
			it.err = errCorrupt("%d bytes after the last record", len(it.b))
		}
		return Record{}, false
	}
	r, rest, err := decodeRecord(it.b)
	if err != nil {
		it.err = err
		return Record{}, false
	}
	if int64(r.OffsetDelta) <= it.prevDelta || r.OffsetDelta > it.lastDelta {
		it.err = errCorrupt("record offsetDelta %d after %d, lastOffsetDelta %d", r.OffsetDelta, it.prevDelta, it.lastDelta)
		return Record{}, false
	}
	it.prevDelta = int64(r.OffsetDelta)
	it.b = rest
	it.left--
	return r, true
}

// Err returns the error that stopped the iteration, or nil at a clean end.
func (it *Iter) Err() error { return it.err }

// decodeRecord decodes the record at the start of b and returns the bytes
// after it.
func decodeRecord(b []byte) (Record, []byte, error) {
	length, n := binary.Varint(b)
	if n <= 0 || length < 0 || length > int64(len(b)-n) {
		return Record{}, nil, errCorrupt("record length %d (varint %d bytes) with %d bytes left", length, n, len(b))
	}
	body, rest := b[n:n+int(length)], b[n+int(length):]
	if len(body) < 1 {
		return Record{}, nil, errCorrupt("empty record")
	}
	r := Record{Attributes: int8(body[0])}
	p := body[1:]
	var err error
	if r.TimestampDelta, p, err = readVarlong(p); err != nil {
		return Record{}, nil, err
	}
	var delta int64
	if delta, p, err = readVarlong(p); err != nil {
		return Record{}, nil, err
	}
	if delta < 0 || delta > math.MaxInt32 {
		return Record{}, nil, errCorrupt("record offsetDelta %d", delta)
	}
	r.OffsetDelta = int32(delta)
	if r.Key, r.KeyNull, p, err = readBytes(p); err != nil {
		return Record{}, nil, err
	}
	if r.Value, r.ValueNull, p, err = readBytes(p); err != nil {
		return Record{}, nil, err
	}
	var count int64
	if count, p, err = readVarlong(p); err != nil {
		return Record{}, nil, err
	}
	if count < 0 || count > base.RecordHeadersMax {
		return Record{}, nil, errCorrupt("record header count %d outside [0, %d]", count, base.RecordHeadersMax)
	}
	r.HeaderCount, r.headers = int(count), p
	for range count {
		var key []byte
		var keyNull bool
		if key, keyNull, p, err = readBytes(p); err != nil {
			return Record{}, nil, err
		}
		if keyNull {
			return Record{}, nil, errCorrupt("record header with a null key %q", key)
		}
		if _, _, p, err = readBytes(p); err != nil {
			return Record{}, nil, err
		}
	}
	if len(p) != 0 {
		return Record{}, nil, errCorrupt("record has %d bytes after its headers", len(p))
	}
	return r, rest, nil
}

func readVarlong(b []byte) (int64, []byte, error) {
	v, n := binary.Varint(b)
	if n <= 0 {
		return 0, nil, errCorrupt("bad varint")
	}
	return v, b[n:], nil
}

// readBytes reads a varint length and that many bytes; length -1 is null.
func readBytes(b []byte) (v []byte, null bool, rest []byte, err error) {
	l, rest, err := readVarlong(b)
	if err != nil {
		return nil, false, nil, err
	}
	switch {
	case l == -1:
		return nil, true, rest, nil
	case l < -1 || l > int64(len(rest)):
		return nil, false, nil, errCorrupt("field length %d with %d bytes left", l, len(rest))
	}
	return rest[:l:l], false, rest[l:], nil
}

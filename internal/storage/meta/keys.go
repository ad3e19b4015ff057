package meta

import (
	"bytes"
	"encoding/binary"

	"github.com/ferry-mq/ferry/internal/base"
)

// Kind is the first byte of every key: what the key holds. doc.go lists the
// layout of each kind. Kinds are stable on disk: never reuse a letter.
type Kind byte

const (
	KindHardState Kind = 'h' // h/<group>: a Raft group's HardState
	KindConfState Kind = 'c' // c/<group>: a Raft group's ConfState
	KindOffset    Kind = 'o' // o/<stream>/<consumer group>/<partition>: a committed offset
	KindNode      Kind = 'n' // n/<fact>: a fact about this node (its cluster's id)
)

// keySep follows the kind byte, so that dumps of the store read "h/...".
const keySep = '/'

// The encoding of string components: bytes as they are, except that 0x00 is
// written 0x00 0xFF, and 0x00 0x01 ends the string. Keys then sort by their
// components in order (a shorter string before its extensions), and the
// encoding of a tuple's leading components is a prefix of the tuple's, so a
// prefix scan finds exactly the keys that share them.
const (
	strEscape     = 0x00
	strEscapedNul = 0xFF
	strEnd        = 0x01
)

// KindPrefix returns the prefix of every key of kind k, to scan them all.
func KindPrefix(k Kind) []byte { return []byte{byte(k), keySep} }

// groupKey returns <k>/<group> in one allocation: the replication engine
// builds one per group per loop.
func groupKey(k Kind, group uint64) []byte {
	return binary.BigEndian.AppendUint64(append(make([]byte, 0, 10), byte(k), keySep), group)
}

// HardStateKey returns h/<group>, the key of group's Raft HardState. The
// group id is 8 bytes big-endian, so that keys sort by group.
func HardStateKey(group uint64) []byte { return groupKey(KindHardState, group) }

// ConfStateKey returns c/<group>, the key of group's Raft ConfState.
func ConfStateKey(group uint64) []byte { return groupKey(KindConfState, group) }

// OffsetKey returns o/<stream>/<consumer group>/<partition>, the key of the
// offset consumerGroup committed on one partition of stream. The partition
// is 4 bytes big-endian.
func OffsetKey(stream, consumerGroup string, partition uint32) []byte {
	return binary.BigEndian.AppendUint32(OffsetGroupPrefix(stream, consumerGroup), partition)
}

// OffsetStreamPrefix returns the prefix of every offset committed on stream.
func OffsetStreamPrefix(stream string) []byte {
	return appendString(KindPrefix(KindOffset), stream)
}

// OffsetGroupPrefix returns the prefix of every offset consumerGroup
// committed on stream.
func OffsetGroupPrefix(stream, consumerGroup string) []byte {
	return appendString(OffsetStreamPrefix(stream), consumerGroup)
}

// NodeKey returns n/<fact>, the key of a fact about this node that its
// owner must know before anything else is read (the broker's "cluster-id").
func NodeKey(fact string) []byte { return appendString(KindPrefix(KindNode), fact) }

// ParseHardStateKey returns the group of a key made by HardStateKey. Like
// every Parse function here it is a decoder of bytes read from disk: it
// fails with CodeCorrupt on anything else, allocates at most the key's
// length, and works in time linear in it.
func ParseHardStateKey(key []byte) (group uint64, err error) {
	r := keyReader{key: key}
	r.kind(KindHardState)
	group = r.uint64()
	return group, r.done()
}

// ParseConfStateKey returns the group of a key made by ConfStateKey.
func ParseConfStateKey(key []byte) (group uint64, err error) {
	r := keyReader{key: key}
	r.kind(KindConfState)
	group = r.uint64()
	return group, r.done()
}

// ParseOffsetKey returns the components of a key made by OffsetKey.
func ParseOffsetKey(key []byte) (stream, consumerGroup string, partition uint32, err error) {
	r := keyReader{key: key}
	r.kind(KindOffset)
	stream = r.string()
	consumerGroup = r.string()
	partition = r.uint32()
	if err := r.done(); err != nil {
		return "", "", 0, err
	}
	return stream, consumerGroup, partition, nil
}

// ParseNodeKey returns the fact named by a key made by NodeKey.
func ParseNodeKey(key []byte) (fact string, err error) {
	r := keyReader{key: key}
	r.kind(KindNode)
	fact = r.string()
	if err := r.done(); err != nil {
		return "", err
	}
	return fact, nil
}

// PrefixEnd returns the smallest key greater than every key that starts
// with prefix: the exclusive upper bound of a prefix scan. It returns nil
// when there is none (prefix is empty or all 0xFF bytes). The result is a
// new slice.
func PrefixEnd(prefix []byte) []byte {
	end := bytes.Clone(prefix)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] != 0xFF {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if s[i] == strEscape {
			b = append(b, strEscape, strEscapedNul)
		} else {
			b = append(b, s[i])
		}
	}
	return append(b, strEscape, strEnd)
}

// keyReader decodes a key component by component; the first error sticks
// and later reads return zero values.
type keyReader struct {
	key []byte
	pos int
	err error
}

func (r *keyReader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = base.Errorf(base.CodeCorrupt, "meta: key %q: "+format, append([]any{r.key}, args...)...)
	}
}

func (r *keyReader) kind(k Kind) {
	if len(r.key) > base.MetaKeyBytesMax {
		r.fail("%d bytes, over the limit of %d", len(r.key), base.MetaKeyBytesMax)
		return
	}
	if len(r.key) < 2 || r.key[0] != byte(k) || r.key[1] != keySep {
		r.fail("not a key of kind %q", byte(k))
		return
	}
	r.pos = 2
}

func (r *keyReader) fixed(n int) []byte {
	if r.err != nil {
		return nil
	}
	if len(r.key)-r.pos < n {
		r.fail("truncated at byte %d", r.pos)
		return nil
	}
	b := r.key[r.pos : r.pos+n]
	r.pos += n
	return b
}

func (r *keyReader) uint64() uint64 {
	if b := r.fixed(8); b != nil {
		return binary.BigEndian.Uint64(b)
	}
	return 0
}

func (r *keyReader) uint32() uint32 {
	if b := r.fixed(4); b != nil {
		return binary.BigEndian.Uint32(b)
	}
	return 0
}

func (r *keyReader) string() string {
	if r.err != nil {
		return ""
	}
	var out []byte
	for i := r.pos; i < len(r.key); i++ {
		if r.key[i] != strEscape {
			continue
		}
		if i+1 == len(r.key) {
			break
		}
		switch r.key[i+1] {
		case strEnd:
			out = append(out, r.key[r.pos:i]...)
			r.pos = i + 2
			return string(out)
		case strEscapedNul:
			out = append(out, r.key[r.pos:i+1]...) // up to and with the 0x00
			r.pos = i + 2
			i++
		default:
			r.fail("bad escape 0x00 0x%02x at byte %d", r.key[i+1], i)
			return ""
		}
	}
	r.fail("unterminated string at byte %d", r.pos)
	return ""
}

// done fails unless the whole key was read.
func (r *keyReader) done() error {
	if r.err == nil && r.pos != len(r.key) {
		r.fail("%d bytes left over", len(r.key)-r.pos)
	}
	return r.err
}

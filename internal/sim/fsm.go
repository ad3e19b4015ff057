package sim

import (
	"encoding/binary"
	"errors"
	"hash/fnv"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/ferry-mq/ferry/internal/replication"
)

// rec is one applied entry in a test FSM's history: the entry's position,
// and a digest that two replicas agree on exactly when they applied the same
// entry to the same state.
type rec struct {
	Index, Term uint64
	Digest      uint64
}

// historyFSM is what the checkers need from a test FSM: its whole applied
// history (kept in its snapshots, so a restored replica still has it).
type historyFSM interface {
	replication.FSM
	History() []rec
	// Contains reports whether the FSM applied a command with this payload.
	Contains(payload []byte) bool
}

// ListFSM is an append-only list: every command is appended, and the
// result of an entry is the list's length after it. Its digest is a hash of
// the entry's data.
type ListFSM struct {
	hist  []rec
	items map[string]uint64 // payload -> index
}

func NewListFSM() *ListFSM { return &ListFSM{items: map[string]uint64{}} }

func digest(parts ...[]byte) uint64 {
	h := fnv.New64a()
	for _, p := range parts {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(p)))
		h.Write(n[:])
		h.Write(p)
	}
	return h.Sum64()
}

func (f *ListFSM) Apply(entries []replication.Entry, results []any) {
	for i, e := range entries {
		f.hist = append(f.hist, rec{e.Index, e.Term, digest([]byte{byte(e.Kind)}, e.Data)})
		f.items[string(e.Data)] = e.Index
		results[i] = len(f.hist)
	}
}

func (f *ListFSM) History() []rec { return f.hist }

func (f *ListFSM) Contains(p []byte) bool { _, ok := f.items[string(p)]; return ok }

func (f *ListFSM) Snapshot(w io.Writer) error {
	keys := make([]string, 0, len(f.items))
	for k := range f.items {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b := appendHist(nil, f.hist)
	b = binary.AppendUvarint(b, uint64(len(keys)))
	for _, k := range keys {
		b = appendStr(b, k)
		b = binary.AppendUvarint(b, f.items[k])
	}
	_, err := w.Write(b)
	return err
}

func (f *ListFSM) Restore(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	hist, b, err := readHist(b)
	if err != nil {
		return err
	}
	n, b, err := readUvarint(b)
	if err != nil {
		return err
	}
	items := map[string]uint64{}
	for range n {
		var k string
		var idx uint64
		if k, b, err = readStr(b); err != nil {
			return err
		}
		if idx, b, err = readUvarint(b); err != nil {
			return err
		}
		items[k] = idx
	}
	f.hist, f.items = hist, items
	return nil
}

// RetainFrom keeps no log: the list holds its data itself.
func (f *ListFSM) RetainFrom() uint64 { return 0 }

// KVFSM is a map of counters: the command "key" increments key and returns
// the new value. Its digest is a running hash of the whole state, so two
// replicas with equal digests at an index have equal states. It retains
// the log from the entry that last incremented the least recently touched
// key, to exercise retained entries in snapshots.
type KVFSM struct {
	hist    []rec
	vals    map[string]uint64
	touched map[string]uint64 // key -> index of its last increment
	seen    map[string]bool   // full payloads applied
	state   uint64            // running digest
}

func NewKVFSM() *KVFSM {
	return &KVFSM{vals: map[string]uint64{}, touched: map[string]uint64{}, seen: map[string]bool{}}
}

// kvKey is the key a KV command increments: the payload up to its first
// '/', so payloads can be unique while keys repeat.
func kvKey(p []byte) string {
	s := string(p)
	if i := strings.IndexByte(s, '/'); i >= 0 {
		return s[:i]
	}
	return s
}

func (f *KVFSM) Apply(entries []replication.Entry, results []any) {
	for i, e := range entries {
		k := kvKey(e.Data)
		f.vals[k]++
		f.touched[k] = e.Index
		f.seen[string(e.Data)] = true
		f.state = digest(binary.BigEndian.AppendUint64(nil, f.state), []byte(k), []byte(strconv.FormatUint(f.vals[k], 10)))
		f.hist = append(f.hist, rec{e.Index, e.Term, f.state})
		results[i] = f.vals[k]
	}
}

func (f *KVFSM) History() []rec         { return f.hist }
func (f *KVFSM) Contains(p []byte) bool { return f.seen[string(p)] }

func (f *KVFSM) RetainFrom() uint64 {
	lowest := uint64(0)
	for _, idx := range f.touched {
		if lowest == 0 || idx < lowest {
			lowest = idx
		}
	}
	return lowest
}

func (f *KVFSM) Snapshot(w io.Writer) error {
	b := appendHist(nil, f.hist)
	b = binary.AppendUvarint(b, f.state)
	for _, m := range []map[string]uint64{f.vals, f.touched} {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b = binary.AppendUvarint(b, uint64(len(keys)))
		for _, k := range keys {
			b = appendStr(b, k)
			b = binary.AppendUvarint(b, m[k])
		}
	}
	seen := make([]string, 0, len(f.seen))
	for k := range f.seen {
		seen = append(seen, k)
	}
	slices.Sort(seen)
	b = binary.AppendUvarint(b, uint64(len(seen)))
	for _, k := range seen {
		b = appendStr(b, k)
	}
	_, err := w.Write(b)
	return err
}

func (f *KVFSM) Restore(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	g := NewKVFSM()
	if g.hist, b, err = readHist(b); err != nil {
		return err
	}
	if g.state, b, err = readUvarint(b); err != nil {
		return err
	}
	for _, m := range []map[string]uint64{g.vals, g.touched} {
		var n uint64
		if n, b, err = readUvarint(b); err != nil {
			return err
		}
		for range n {
			var k string
			var v uint64
			if k, b, err = readStr(b); err != nil {
				return err
			}
			if v, b, err = readUvarint(b); err != nil {
				return err
			}
			m[k] = v
		}
	}
	var n uint64
	if n, b, err = readUvarint(b); err != nil {
		return err
	}
	for range n {
		var k string
		if k, b, err = readStr(b); err != nil {
			return err
		}
		g.seen[k] = true
	}
	*f = *g
	return nil
}

var errShort = errors.New("sim: snapshot truncated")

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func readUvarint(b []byte) (uint64, []byte, error) {
	v, n := binary.Uvarint(b)
	if n <= 0 {
		return 0, nil, errShort
	}
	return v, b[n:], nil
}

func readStr(b []byte) (string, []byte, error) {
	n, b, err := readUvarint(b)
	if err != nil || n > uint64(len(b)) {
		return "", nil, errShort
	}
	return string(b[:n]), b[n:], nil
}

func appendHist(b []byte, h []rec) []byte {
	b = binary.AppendUvarint(b, uint64(len(h)))
	for _, r := range h {
		b = binary.AppendUvarint(b, r.Index)
		b = binary.AppendUvarint(b, r.Term)
		b = binary.AppendUvarint(b, r.Digest)
	}
	return b
}

func readHist(b []byte) ([]rec, []byte, error) {
	n, b, err := readUvarint(b)
	if err != nil || n > uint64(len(b)) {
		return nil, nil, errShort
	}
	h := make([]rec, 0, n)
	for range n {
		var r rec
		if r.Index, b, err = readUvarint(b); err != nil {
			return nil, nil, err
		}
		if r.Term, b, err = readUvarint(b); err != nil {
			return nil, nil, err
		}
		if r.Digest, b, err = readUvarint(b); err != nil {
			return nil, nil, err
		}
		h = append(h, r)
	}
	return h, b, nil
}

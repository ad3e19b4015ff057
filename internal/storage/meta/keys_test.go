package meta

import (
	"bytes"
	"cmp"
	"strings"
	"testing"

	"pgregory.net/rapid"

	"github.com/ferry-mq/ferry/internal/base"
)

func TestKeysRoundTrip(t *testing.T) {
	for _, g := range []uint64{0, 1, 1 << 40, ^uint64(0)} {
		if got, err := ParseHardStateKey(HardStateKey(g)); err != nil || got != g {
			t.Errorf("hard state key of group %d parsed as %d, %v", g, got, err)
		}
		if got, err := ParseConfStateKey(ConfStateKey(g)); err != nil || got != g {
			t.Errorf("conf state key of group %d parsed as %d, %v", g, got, err)
		}
	}
	for _, tc := range []struct {
		stream, group string
		partition     uint32
	}{
		{"orders", "billing", 0},
		{"", "", ^uint32(0)},
		{"a/b", "c/d", 7},
		{"nul\x00in\x00it", "\x00", 1},
		{"\x00\x01", "\x00\xff", 2},
		{"\xff\xff", "é", 3},
	} {
		key := OffsetKey(tc.stream, tc.group, tc.partition)
		stream, group, p, err := ParseOffsetKey(key)
		if err != nil || stream != tc.stream || group != tc.group || p != tc.partition {
			t.Errorf("offset key %q parsed as (%q, %q, %d, %v), want (%q, %q, %d)",
				key, stream, group, p, err, tc.stream, tc.group, tc.partition)
		}
		if !bytes.HasPrefix(key, OffsetGroupPrefix(tc.stream, tc.group)) || !bytes.HasPrefix(key, OffsetStreamPrefix(tc.stream)) {
			t.Errorf("offset key %q lacks its stream or group prefix", key)
		}
	}
	for _, fact := range []string{"cluster-id", "", "a\x00b"} {
		if got, err := ParseNodeKey(NodeKey(fact)); err != nil || got != fact {
			t.Errorf("node key of %q parsed as %q, %v", fact, got, err)
		}
	}
	if got := string(NodeKey("cluster-id")); got != "n/cluster-id\x00\x01" {
		t.Errorf("node key layout: got %q", got)
	}
	if got := string(HardStateKey(0x0102)); got != "h/\x00\x00\x00\x00\x00\x00\x01\x02" {
		t.Errorf("hard state key layout: got %q", got)
	}
	if got := string(OffsetKey("s\x00", "g", 5)); got != "o/s\x00\xff\x00\x01g\x00\x01\x00\x00\x00\x05" {
		t.Errorf("offset key layout: got %q", got)
	}
}

// TestOffsetKeysSortByComponents checks, on random tuples, that key order is
// tuple order and that prefixes select exactly the keys sharing components.
func TestOffsetKeysSortByComponents(t *testing.T) {
	str := rapid.StringOfN(rapid.SampledFrom([]rune{0, 1, 'a', 'b', 0xff}), 0, 4, -1)
	rapid.Check(t, func(t *rapid.T) {
		s1, g1, p1 := str.Draw(t, "s1"), str.Draw(t, "g1"), rapid.Uint32Range(0, 3).Draw(t, "p1")
		s2, g2, p2 := str.Draw(t, "s2"), str.Draw(t, "g2"), rapid.Uint32Range(0, 3).Draw(t, "p2")
		want := cmp.Or(strings.Compare(s1, s2), strings.Compare(g1, g2), cmp.Compare(p1, p2))
		if got := bytes.Compare(OffsetKey(s1, g1, p1), OffsetKey(s2, g2, p2)); got != want {
			t.Fatalf("order of (%q,%q,%d) and (%q,%q,%d): got %d, want %d", s1, g1, p1, s2, g2, p2, got, want)
		}
		if got := bytes.HasPrefix(OffsetKey(s2, g2, p2), OffsetStreamPrefix(s1)); got != (s1 == s2) {
			t.Fatalf("stream prefix %q matches key of stream %q: got %v, want %v", s1, s2, got, s1 == s2)
		}
		if got := bytes.HasPrefix(OffsetKey(s2, g2, p2), OffsetGroupPrefix(s1, g1)); got != (s1 == s2 && g1 == g2) {
			t.Fatalf("group prefix (%q,%q) matches key of (%q,%q): got %v", s1, g1, s2, g2, got)
		}
	})
}

func TestParseRefusesMalformedKeys(t *testing.T) {
	long := append(KindPrefix(KindHardState), make([]byte, base.MetaKeyBytesMax)...)
	for _, tc := range []struct {
		name string
		key  []byte
		kind Kind
	}{
		{"empty", nil, KindHardState},
		{"other kind", ConfStateKey(1), KindHardState},
		{"no separator", []byte("h\x00\x00\x00\x00\x00\x00\x00\x01"), KindHardState},
		{"short group", HardStateKey(1)[:9], KindHardState},
		{"trailing byte", append(HardStateKey(1), 0), KindHardState},
		{"over the key limit", long, KindHardState},
		{"unterminated string", []byte("o/abc"), KindOffset},
		{"string ends in a lone escape", []byte("o/abc\x00"), KindOffset},
		{"bad escape", []byte("o/a\x00\x02g\x00\x01\x00\x00\x00\x00"), KindOffset},
		{"missing partition", OffsetGroupPrefix("s", "g"), KindOffset},
		{"missing group", OffsetStreamPrefix("s"), KindOffset},
	} {
		var err error
		switch tc.kind {
		case KindHardState:
			_, err = ParseHardStateKey(tc.key)
		case KindOffset:
			_, _, _, err = ParseOffsetKey(tc.key)
		}
		wantCode(t, tc.name, err, base.CodeCorrupt)
	}
}

func TestPrefixEnd(t *testing.T) {
	for _, tc := range []struct{ prefix, want []byte }{
		{[]byte("h/"), []byte("h0")},
		{[]byte{'a', 0xFF}, []byte{'b'}},
		{[]byte{'a', 0xFE, 0xFF, 0xFF}, []byte{'a', 0xFF}},
		{[]byte{0xFF}, nil},
		{nil, nil},
	} {
		if got := PrefixEnd(tc.prefix); !bytes.Equal(got, tc.want) || (got == nil) != (tc.want == nil) {
			t.Errorf("PrefixEnd(%q): got %q, want %q", tc.prefix, got, tc.want)
		}
	}
	p := []byte("h/")
	PrefixEnd(p)
	if string(p) != "h/" {
		t.Errorf("PrefixEnd modified its argument: %q", p)
	}
}

// FuzzParseKeys feeds every key parser arbitrary bytes: none may panic, each
// must refuse keys over the limit, and whatever one accepts must re-encode
// to the same bytes (the encoding is canonical, so two different keys never
// mean the same thing).
func FuzzParseKeys(f *testing.F) {
	for _, seed := range [][]byte{
		HardStateKey(42), ConfStateKey(^uint64(0)), OffsetKey("orders", "billing", 3),
		OffsetKey("a\x00b", "\x00", 0), []byte("o/a\x00\x02"), []byte("h/"), {}, NodeKey("cluster-id"),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, key []byte) {
		if g, err := ParseHardStateKey(key); err == nil {
			if !bytes.Equal(HardStateKey(g), key) {
				t.Fatalf("hard state key %q parsed as %d, which encodes as %q", key, g, HardStateKey(g))
			}
		} else if base.CodeOf(err) != base.CodeCorrupt {
			t.Fatalf("hard state parse error without CodeCorrupt: %v", err)
		}
		if g, err := ParseConfStateKey(key); err == nil && !bytes.Equal(ConfStateKey(g), key) {
			t.Fatalf("conf state key %q parsed as %d, which encodes as %q", key, g, ConfStateKey(g))
		}
		if fact, err := ParseNodeKey(key); err == nil && !bytes.Equal(NodeKey(fact), key) {
			t.Fatalf("node key %q parsed as %q, which encodes as %q", key, fact, NodeKey(fact))
		}
		stream, group, p, err := ParseOffsetKey(key)
		if err == nil {
			if again := OffsetKey(stream, group, p); !bytes.Equal(again, key) {
				t.Fatalf("offset key %q parsed as (%q, %q, %d), which encodes as %q", key, stream, group, p, again)
			}
			if len(key) > base.MetaKeyBytesMax {
				t.Fatalf("offset key of %d bytes accepted, over the limit", len(key))
			}
		} else if base.CodeOf(err) != base.CodeCorrupt {
			t.Fatalf("offset parse error without CodeCorrupt: %v", err)
		}
	})
}

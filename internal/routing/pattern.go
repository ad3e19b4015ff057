package routing

import (
	"strings"
	"unicode/utf8"

	"github.com/ferry-mq/ferry/internal/base"
)

// tokenKind is one element of a parsed topic pattern.
type tokenKind uint8

const (
	tokWord tokenKind = iota // a literal word, matched by equality
	tokOne                   // AMQP '*', MQTT '+': exactly one word
	tokMany                  // '#': zero or more words
)

type token struct {
	kind tokenKind
	word string // tokWord only; a substring of the pattern
}

// pattern is a parsed topic binding key.
type pattern struct {
	// exact is set when the pattern has no wildcard: it then matches
	// exactly the routing key equal to it, in either syntax, and lives in
	// the topic index's hash map rather than in the trie.
	exact bool
	// tokens is the normalised token sequence for the trie (nil when
	// exact): in AMQP every run of wildcards becomes its '*'s followed by
	// at most one '#', which matches the same keys with fewer states.
	tokens []token
}

func separator(s Syntax) byte {
	if s == SyntaxMQTT {
		return '/'
	}
	return '.'
}

// ValidateTopicPattern reports whether pattern is a valid binding key for a
// topic exchange in the given syntax, as Bind would judge it: a
// CodeInvalidArgument error says what is wrong. Front ends can use it to
// refuse an MQTT SUBSCRIBE before creating anything.
func ValidateTopicPattern(syntax Syntax, pattern string) error {
	_, err := parsePattern(syntax, pattern)
	return err
}

// parsePattern validates and tokenises a topic binding key. Its cost is
// linear in the pattern's length.
func parsePattern(syntax Syntax, p string) (pattern, error) {
	if err := checkKeyBytes("binding key", p); err != nil {
		return pattern{}, err
	}
	switch syntax {
	case SyntaxAMQP:
		return parseAMQPPattern(p), nil
	case SyntaxMQTT:
		return parseMQTTFilter(p)
	}
	return pattern{}, base.Errorf(base.CodeInvalidArgument, "unknown pattern syntax %d", uint8(syntax))
}

func checkKeyBytes(what, key string) error {
	if len(key) > base.RoutingKeyBytesMax {
		return base.Errorf(base.CodeInvalidArgument, "%s of %d bytes exceeds the limit of %d (RoutingKeyBytesMax)",
			what, len(key), base.RoutingKeyBytesMax)
	}
	return nil
}

// parseAMQPPattern accepts any key: '*' and '#' are wildcards only as
// whole words ("a*" is a literal word), and empty words are words. The
// empty key has zero words, as in RabbitMQ, so it matches only the empty
// routing key (and '#').
func parseAMQPPattern(p string) pattern {
	if !hasWord(p, '.', "*") && !hasWord(p, '.', "#") {
		return pattern{exact: true}
	}
	var toks []token
	stars, hash := 0, false
	flush := func() {
		for ; stars > 0; stars-- {
			toks = append(toks, token{kind: tokOne})
		}
		if hash {
			toks = append(toks, token{kind: tokMany})
			hash = false
		}
	}
	for w := range strings.SplitSeq(p, ".") {
		switch w {
		case "*":
			stars++
		case "#":
			hash = true
		default:
			flush()
			toks = append(toks, token{kind: tokWord, word: w})
		}
	}
	flush()
	base.Assert(len(toks) <= base.TopicWordsMax, "pattern of %d bytes has %d words", len(p), len(toks))
	return pattern{tokens: toks}
}

// parseMQTTFilter applies MQTT 3.1.1 §4.7: a filter is at least one byte
// of UTF-8 without U+0000; '+' and '#' occupy whole levels; '#' is last.
func parseMQTTFilter(p string) (pattern, error) {
	if p == "" {
		return pattern{}, base.Errorf(base.CodeInvalidArgument, "invalid MQTT topic filter: empty")
	}
	if !utf8.ValidString(p) || strings.IndexByte(p, 0) >= 0 {
		return pattern{}, base.Errorf(base.CodeInvalidArgument, "invalid MQTT topic filter %q: not UTF-8 without U+0000", p)
	}
	if !strings.ContainsAny(p, "+#") {
		return pattern{exact: true}, nil
	}
	var toks []token
	rest := p
	for {
		level, tail, more := strings.Cut(rest, "/")
		switch {
		case level == "+":
			toks = append(toks, token{kind: tokOne})
		case level == "#" && !more:
			toks = append(toks, token{kind: tokMany})
		case strings.Contains(level, "#"):
			return pattern{}, base.Errorf(base.CodeInvalidArgument,
				"invalid MQTT topic filter %q: '#' must be the whole last level", p)
		case strings.Contains(level, "+"):
			return pattern{}, base.Errorf(base.CodeInvalidArgument,
				"invalid MQTT topic filter %q: '+' must be a whole level", p)
		default:
			toks = append(toks, token{kind: tokWord, word: level})
		}
		if !more {
			break
		}
		rest = tail
	}
	return pattern{tokens: toks}, nil
}

// hasWord reports whether the sep-separated key has w as one of its words.
func hasWord(key string, sep byte, w string) bool {
	for i := 0; ; {
		j := strings.IndexByte(key[i:], sep)
		if j < 0 {
			return key[i:] == w
		}
		if key[i:i+j] == w {
			return true
		}
		i += j + 1
	}
}
